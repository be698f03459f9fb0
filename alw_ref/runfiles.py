"""The files of a training run folder: lock, metrics log, checkpoint, dataset fingerprint.

A run folder (``--out``) holds ``settings.json``, ``metrics.jsonl``/``metrics.csv`` (one row per epoch),
``checkpoint.h5`` (state only: model, optimiser, EMA, schedules, weighting, RNG), ``best.h5``,
``final.h5``, ``test_metrics.json`` and the plots. Guarantees:

* **One trainer per folder.** ``RunLock`` holds an exclusive ``fcntl.flock`` on ``.lock`` for the whole
  run; the kernel releases it when the process ends, however it ends (kill -9 included), so a stale lock
  never blocks a later run.
* **Bookkeeping costs O(1) per epoch.** A row is appended to both metrics files (one ``write`` of one
  line each, flushed) *before* the checkpoint that covers its epoch; the checkpoint holds no history. So
  after any kill the files hold every row up to the checkpoint's epoch and perhaps rows after it; resuming
  drops those (``truncate_rows``) and recomputes them bit for bit. No row can be lost.
* **Every other file is written atomically** (``alw_ref.atomic``).
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
from pathlib import Path

import h5py
import numpy as np

from .atomic import atomic_write
from .errors import DataError

CHECKPOINT_FORMAT = "alw_ref.checkpoint"
CHECKPOINT_VERSION = 2
METRICS_FILES = ("metrics.jsonl", "metrics.csv")


class RunLockedError(DataError):
    """Another trainer holds the run folder."""


class RunLock:
    """Exclusive lock on a run folder for the lifetime of the object (module docstring). ``name`` is the lock
    file's: the trainer's is ``.lock``; a driver that claims the folder around a training (the paper sweep)
    uses its own, so its claim and the trainer's do not exclude each other."""

    def __init__(self, out: Path, name: str = ".lock"):
        self.path = Path(out) / name
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise RunLockedError(f"{out}: another training run is using this folder (lock {self.path}); "
                                 "wait for it to finish or choose another --out") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def dataset_fingerprint(*datasets) -> str:
    """SHA-256 (hex) of the numbers of the datasets (n_atoms, numbers, positions, cell, pbc, energy, forces,
    stress, has_stress): the same data give the same fingerprint whatever the file's path or layout."""
    h = hashlib.sha256()
    for d in datasets:
        for name in ("n_atoms", "numbers", "positions", "cell", "pbc", "energy", "forces", "stress", "has_stress"):
            a = np.ascontiguousarray(getattr(d, name))
            h.update(f"{name}{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------- metrics log

def _csv_line(row: dict, header: bool) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(row), lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerow(row)
    return buf.getvalue()


def _append(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def append_row(out: Path, row: dict) -> None:
    """Append one epoch row to metrics.jsonl and metrics.csv (header written with the first row)."""
    out = Path(out)
    csv_path = out / "metrics.csv"
    _append(out / "metrics.jsonl", json.dumps(row) + "\n")
    _append(csv_path, _csv_line(row, header=not csv_path.exists() or csv_path.stat().st_size == 0))


def _csv_value(text: str):
    """A metrics.csv cell back to its JSON value: int, float (repr round-trips exactly) or str."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_rows(out: Path) -> list:
    """Every complete row of metrics.jsonl (a line cut by a kill is ignored), oldest first; from metrics.csv
    when metrics.jsonl is absent (e.g. a run folder kept in git with only its CSV)."""
    path = Path(out) / "metrics.jsonl"
    if not path.exists():
        csv_path = Path(out) / "metrics.csv"
        if not csv_path.exists():
            return []
        lines = csv_path.read_text().splitlines(keepends=True)
        complete = [ln for ln in lines if ln.endswith("\n")]
        return [{k: _csv_value(v) for k, v in r.items()} for r in csv.DictReader(complete)]
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def truncate_rows(out: Path, last_epoch: int) -> list:
    """Keep the rows of epochs ≤ ``last_epoch`` in both metrics files (rewritten atomically); returns them."""
    out = Path(out)
    rows = [r for r in read_rows(out) if r["epoch"] <= last_epoch]
    with atomic_write(out / "metrics.jsonl") as tmp:
        Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in rows))
    with atomic_write(out / "metrics.csv") as tmp:
        Path(tmp).write_text("".join(_csv_line(r, header=(k == 0)) for k, r in enumerate(rows)))
    return rows


# -------------------------------------------------------------------------------------- checkpoint

def jsonable(obj):
    """``obj`` with NumPy arrays and scalars turned into JSON-ready values (``from_jsonable`` inverts it)."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return {"__array__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def from_jsonable(obj):
    if isinstance(obj, dict):
        if "__array__" in obj:
            return np.asarray(obj["__array__"], dtype=obj["dtype"])
        return {k: from_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_jsonable(v) for v in obj]
    return obj


def save_checkpoint(path, *, settings: dict, epoch: int, state: dict, write_groups: dict) -> None:
    """Write the checkpoint atomically: JSON attributes ``settings``, ``epoch``, ``state`` (small, JSON-ready),
    and one HDF5 group per entry of ``write_groups`` ({name: callable(group)})."""
    with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = CHECKPOINT_FORMAT
        f.attrs["format_version"] = CHECKPOINT_VERSION
        f.attrs["settings"] = json.dumps(settings)
        f.attrs["epoch"] = epoch
        f.attrs["state"] = json.dumps(jsonable(state))
        for name, write in write_groups.items():
            write(f.create_group(name))


def checkpoint_progress(path) -> tuple:
    """(last finished epoch, epochs without a significant improvement) of a checkpoint file."""
    with h5py.File(path, "r") as f:
        state = json.loads(f.attrs["state"])
        return int(f.attrs["epoch"]), int(state["bad_epochs"])


#: What a damaged checkpoint's message advises.
RESTART_ADVICE = "this run cannot be continued: start it again with --overwrite, or choose another --out"


def _first_missing(f, state, paths):
    """A phrase naming the first of ``paths`` absent from file ``f`` (top-level groups, "group/dataset") or
    from its JSON ``state`` ("state:key")."""
    for name in paths:
        if name.startswith("state:"):
            if name[6:] not in state:
                return f"state entry '{name[6:]}' is missing"
        elif name not in f:
            return f"{'dataset' if '/' in name else 'group'} '{name}' is missing"
    return None


def load_checkpoint(path, read_groups: dict, required=None) -> dict:
    """{settings, epoch, state, <group name>: read(group) or None if absent}; DataError naming the file.

    ``required(header)`` ({settings, epoch, state} → names: HDF5 groups, "group/dataset", or "state:key" for
    an entry of the JSON state) names what must be present; the first absent one gives ``<path>: damaged
    checkpoint: group 'adam' is missing; …``.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"--resume: no checkpoint at {path}")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != CHECKPOINT_FORMAT:
                raise DataError(f"{path}: not an alw_ref checkpoint")
            if f.attrs.get("format_version") != CHECKPOINT_VERSION:
                raise DataError(f"{path}: checkpoint version {f.attrs.get('format_version')}, this alw_ref reads "
                                f"version {CHECKPOINT_VERSION}; continue that run with the alw_ref that wrote it")
            out = dict(settings=json.loads(f.attrs["settings"]), epoch=int(f.attrs["epoch"]),
                       state=from_jsonable(json.loads(f.attrs["state"])))
            missing = _first_missing(f, out["state"], required(out) if required is not None else ())
            if missing:
                raise DataError(f"{path}: damaged checkpoint: {missing}; {RESTART_ADVICE}")
            for name, read in read_groups.items():
                out[name] = read(f[name]) if name in f else None
            return out
    except (OSError, KeyError, ValueError, TypeError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{path}: damaged checkpoint ({type(err).__name__}: {err}); {RESTART_ADVICE}") from None
