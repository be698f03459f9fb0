"""Shared machinery of the paper-figure scripts: datasets, the paper's settings, and the run sweep.

A *run* is one ``alw_ref.train.train(...)`` call, identified by (dataset, configuration name, seed)
and written to ``<runs>/<dataset>/<config>/seed<k>/``. A run whose ``test_metrics.json`` exists is
not trained again, so scripts share runs (Table 2's β = 1 run is Fig. 2's SoftAdapt run). ``<runs>``
is outside the repository (default ``~/.cache/alw_ref/paper_runs/<tag>``, the tag holding the
epochs, structure cap and hidden layers) because it holds the model files; the scripts' CSV, PNG
and Markdown go to ``--out`` (default ``paper_figures/results/``).

Datasets (``--dataset``), converted once into ``~/.cache/alw_ref/data/`` (never into the repository):
  mote2      ../shared/data/atomdnn/mote2_2021.extxyz — 3 832 Mo18Te36 structures (AtomDNN, 2021;
             an earlier relative of the paper's set: tensile strains only, every structure perturbed).
  mose2      ../shared/data/mose2-despinosa/*.xyz — all files except ``EOS_MOSE2.xyz`` (3-atom cells
             with b ≈ 2.62 Å and E/atom ≈ −3.9 eV, inconsistent with relaxed MoSe2; see its README)
             and the isolated single atoms ``Cohesive_Mo.xyz`` / ``Cohesive_Se.xyz`` (no neighbours,
             energy 0 by the file's reference): 1 673 structures.
  mlearn-mo  the package's bundled mlearn Mo example (217 structures), used by ``--quick``.
``--max-structures N`` keeps a seeded random subset of N structures (seed ``SUBSAMPLE_SEED``, the
same subset for every run); each run's own ``seed`` then sets its 70/20/10 split, initial network
weights and batch order. Structures on which the paper's descriptors are singular (exactly collinear
triplets with ζ = 0.08: ``singular_structures``) are then dropped and counted.

Parallelism: runs go to a ``concurrent.futures.ProcessPoolExecutor`` over local cores (spawned
workers, one Numba/BLAS thread each) or, with ``--scheduler ADDRESS``, to a Dask cluster
(``dask.distributed.Client(address).map``/``gather``; optional extra ``dask``). Both call
``run_one`` on the same ``Run`` objects, so results do not depend on where a run executed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from alw_ref.atomic import atomic_write, write_text
from alw_ref.runfiles import RunLock
from alw_ref.train import PAPER_PROTOCOL
from paper_figures import configs as catalogue
from paper_figures.configs import Config  # noqa: F401  (re-exported: sweep.Config)

ROOT = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    """``shared/data`` next to the project root (``../shared``), or next to a parent (git worktrees)."""
    for parent in ROOT.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return ROOT.parent / "shared" / "data"


SHARED_DATA = _shared_data()
CACHE = Path.home() / ".cache" / "alw_ref"
DATA_CACHE = CACHE / "data"
DEFAULT_OUT = ROOT / "paper_figures" / "results"
QUICK_OUT = CACHE / "paper_figures_quick"
DATASETS = ("mote2", "mose2", "mlearn-mo")
SUBSAMPLE_SEED = 0
MOSE2_DROPPED = ("EOS_MOSE2.xyz", "Cohesive_Mo.xyz", "Cohesive_Se.xyz")
#: |∂G/∂r| above this (Å⁻¹) marks a structure the paper's ζ = 0.08 descriptors cannot handle.
SINGULAR_LIMIT = 1e3
COMPONENTS = ("energy", "forces", "stress")
#: Report units (the paper's, inferred): energy meV/atom, forces meV/Å, stress MPa.
UNITS = {"energy": "meV/atom", "forces": "meV/Å", "stress": "MPa"}
#: Keys of test_metrics.json per component, in the report units above.
METRIC_KEYS = {"energy": "energy_rmse", "forces": "forces_rmse", "stress": "stress_rmse_mpa"}
#: The sweep of the committed results (measured epoch times: see REPORT.md); --quick overrides.
FULL = dict(epochs=100, max_structures=200, seeds=3, hidden=(30, 30), datasets=("mote2", "mose2"))
QUICK = dict(epochs=3, max_structures=None, seeds=2, hidden=(8, 8), datasets=("mlearn-mo",))


@dataclass(frozen=True)
class Run:
    """Everything ``run_one`` needs: the dataset file, spec, folder and all ``train`` keywords.

    ``compact``: once finished, delete what only resuming needs (checkpoint.h5, final.h5) and the
    copies (metrics.jsonl, plots), keeping settings.json, metrics.csv, test_metrics.json, run_info.json
    and best.h5 (the model the test metrics are of, 40-120 KiB: ``python -m alw_ref.evaluate <run>``).
    """

    dataset: str
    config: str
    seed: int
    dataset_path: str
    out: str
    kwargs: dict
    compact: bool = False


# ------------------------------------------------------------------------------------- datasets
def _mose2_files():
    folder = SHARED_DATA / "mose2-despinosa"
    return [p for p in sorted(folder.glob("*.xyz")) if p.name not in MOSE2_DROPPED]


def source_files(name: str) -> list:
    """Input files of a dataset (raises FileNotFoundError naming the missing shared data)."""
    if name == "mlearn-mo":
        from alw_ref.data import example_dataset_path

        return [example_dataset_path()]
    files = [SHARED_DATA / "atomdnn" / "mote2_2021.extxyz"] if name == "mote2" else _mose2_files()
    if not files or not all(p.exists() for p in files):
        raise FileNotFoundError(f"dataset {name}: shared data not found under {SHARED_DATA}")
    return files


def spec_for(name: str):
    """The paper's descriptor preset (AtomDNN's MoTe2 set) for the dataset's elements."""
    from alw_ref.acsf import ACSFSpec

    elements = {"mote2": ("Mo", "Te"), "mose2": ("Mo", "Se"), "mlearn-mo": ("Mo",)}[name]
    return ACSFSpec.mote2_paper(elements=elements)


def singular_structures(dataset, spec, limit=SINGULAR_LIMIT, cache_dir=CACHE) -> np.ndarray:
    """Indices of structures where some |∂G_i/∂r_j| of ``spec`` exceeds ``limit`` Å⁻¹.

    The paper's preset has G4 with ζ = 0.08: d(1 + λ cos θ)^ζ/dθ diverges as 1 + λ cos θ → 0, so
    perfect crystals with exactly collinear triplets (bcc Mo, sc Se, ...) get derivatives ~1e11 Å⁻¹
    and force predictions that swamp every RMSE. Those structures are dropped, and counted.
    """
    from alw_ref.describe import describe_dataset
    from alw_ref.describe import singular_structures as singular

    # through the descriptor cache: without singular structures the runs' dataset is this one, and
    # the runs then load these descriptors instead of computing them again
    return singular(describe_dataset(dataset, spec, cache_dir=str(cache_dir)), limit)


def prepare_dataset(name: str, max_structures=None, data_cache=DATA_CACHE) -> dict:
    """Convert (once), subsample, drop singular structures; write the spec JSON. Returns paths and counts.

    Returns {"name", "path" (dataset.h5 used by the runs), "spec" (spec JSON path), "n_total",
    "n_sampled", "n_singular", "n_used", "sources"}. Conversions and subsets are cached in ``data_cache``.
    """
    from alw_ref.convert import convert
    from alw_ref.data import read_dataset, write_dataset

    data_cache = Path(data_cache)
    data_cache.mkdir(parents=True, exist_ok=True)
    sources = source_files(name)
    full = sources[0] if name == "mlearn-mo" else data_cache / f"{name}_full.h5"
    if not Path(full).exists():
        convert(sources, full)
    spec = spec_for(name)
    spec_path = data_cache / f"spec_{name}.json"
    write_text(spec_path, spec.to_json())
    dataset = read_dataset(full)
    n_sampled = len(dataset) if max_structures is None else min(max_structures, len(dataset))
    path = data_cache / f"{name}_n{n_sampled}_s{SUBSAMPLE_SEED}_regular.h5"
    meta = path.with_suffix(".json")
    if not path.exists() or not meta.exists():
        keep = np.arange(len(dataset))
        if n_sampled < len(dataset):
            keep = np.sort(np.random.default_rng(SUBSAMPLE_SEED).choice(len(dataset), n_sampled, replace=False))
        sampled = dataset.subset(keep)
        singular = singular_structures(sampled, spec)
        regular = np.setdiff1d(np.arange(len(sampled)), singular)
        write_dataset(sampled.subset(regular), path)
        write_text(meta, json.dumps(dict(n_singular=len(singular),
                                        singular_names=[str(sampled.name[k]) for k in singular])))
    n_singular = json.loads(meta.read_text())["n_singular"]
    return dict(name=name, path=str(path), spec=str(spec_path), n_total=len(dataset), n_sampled=n_sampled,
                n_singular=n_singular, n_used=n_sampled - n_singular, sources=[Path(p).name for p in sources])


def warm_descriptor_cache(info: dict, cache_dir=CACHE) -> str:
    """Compute the dataset's descriptors once in this process so that parallel runs only load them.
    Returns the descriptor cache key (SHA-256 of the spec and every structure's geometry)."""
    from alw_ref.acsf import ACSFSpec
    from alw_ref.data import read_dataset
    from alw_ref.describe import dataset_key, describe_dataset

    dataset, spec = read_dataset(info["path"]), ACSFSpec.from_json(info["spec"])
    key = dataset_key(dataset, spec, True)
    if not (Path(cache_dir) / f"acsf-{key[:24]}.h5").exists():
        describe_dataset(dataset, spec, cache_dir=str(cache_dir))
    return key


# ------------------------------------------------------------------------------------- runs
def checkpoint_progress(path, patience) -> tuple:
    """(last finished epoch, whether --patience had already stopped the run) of a run's checkpoint.h5."""
    from alw_ref.runfiles import checkpoint_progress as progress

    epoch, bad_epochs = progress(path)
    return epoch, patience is not None and bad_epochs >= patience


#: Options of a finished run that may differ from the sweep's (they do not change its numbers); a different
#: --epochs or --patience does, once the run has finished.
NOT_COMPARED = ("quiet", "plots", "threads", "cache_dir", "memory_budget", "resume")
#: The lock file by which a sweep claims a run folder while it trains there (``run_one``).
SWEEP_LOCK = ".sweep_lock"
#: Files of a finished run deleted by ``Run.compact``.
RESUME_ONLY = ("checkpoint.h5", "final.h5", ".lock", SWEEP_LOCK, "metrics.jsonl", "learning_curves.png",
               "weights.png", "parity.png")


class EpochClock:
    """Logs this process's CPU time (s) each time a run's checkpoint.h5 advances an epoch, to
    ``<out>/epoch_cpu.csv`` (segment, epoch, cpu_s): per-epoch CPU cost on a shared machine, where wall
    times mostly measure the other jobs. A daemon thread polling every ``period`` s; exact when one
    process trains one run (one worker, or the process pool), approximate with Dask threads.
    ``memory``: the process's memory (``worker_memory``) at the epoch whose resident set was largest, so
    its shared and private parts are those of the peak, not of the end when the data are released."""

    def __init__(self, out: Path, segment: int, period: float = 0.2):
        import threading

        self.path, self.ckpt, self.segment, self.period = out / "epoch_cpu.csv", out / "checkpoint.h5", segment, period
        self.memory: dict = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def _poll(self):
        import h5py

        last, last_epoch = None, None
        while not self.stop.wait(self.period):
            try:
                stamp = os.stat(self.ckpt).st_mtime_ns
                if stamp == last:
                    continue
                cpu = time.process_time()
                with h5py.File(self.ckpt, "r") as f:
                    epoch = int(f.attrs["epoch"])
            except (OSError, KeyError):  # between the trainer's write and rename, or not there yet
                continue
            last = stamp
            if epoch == last_epoch:  # the same epoch written again (e.g. the final checkpoint): one line per epoch
                continue
            last_epoch = epoch
            sample = worker_memory()
            if sample.get("rss_gib", 0.0) >= self.memory.get("rss_gib", 0.0):
                self.memory = sample
            new = not self.path.exists()
            with self.path.open("a") as f:
                f.write(("segment,epoch,cpu_s\n" if new else "") + f"{self.segment},{epoch},{cpu:.3f}\n")


def run_one(run: Run) -> dict:
    """Train one run unless its test_metrics.json exists; return its metrics and wall time.

    A run folder with ``checkpoint.h5`` but no ``test_metrics.json`` is unfinished (interrupted, e.g.
    killed): it is resumed from the checkpoint, bit for bit (``train(..., resume=True)``, which refuses
    changed options). If its last checkpointed epoch had already met --patience, it is finished without
    another epoch. Each call appends a segment (start time, first epoch, wall time) to run_info.json.
    A finished run whose settings.json disagrees with ``run.kwargs`` (e.g. other epochs) is an error,
    not silently reused. The training is done under a claim on the folder (``SWEEP_LOCK``): a second
    sweep that reaches a run another one is training gets ``RunLockedError`` before it writes anything.
    """
    out = Path(run.out)
    done = out / "test_metrics.json"
    trained = not done.exists()
    if trained:
        out.mkdir(parents=True, exist_ok=True)
        claim = RunLock(out, SWEEP_LOCK)
        try:
            trained = not done.exists()  # another sweep may have finished it since the first look
            if trained:
                _train_claimed(run, out)
        finally:
            claim.release()
    if not trained:
        _check_finished(run, out)
    metrics = json.loads(done.read_text())
    info = out / "run_info.json"
    wall = json.loads(info.read_text())["wall_s"] if info.exists() else float("nan")
    return dict(dataset=run.dataset, config=run.config, seed=run.seed, out=str(out), trained=trained,
                wall_s=wall, best_epoch=metrics["best_epoch"], train=metrics["train"], test=metrics["test"])


def _train_claimed(run: Run, out: Path) -> None:
    """Train (or resume) ``run`` in ``out``, which this process has claimed; keep run_info.json's segments."""
    from alw_ref.train import train

    kwargs, first = dict(run.kwargs), 1
    resume = (out / "checkpoint.h5").exists()
    if resume:
        epoch, stopped = checkpoint_progress(out / "checkpoint.h5", kwargs.get("patience"))
        first = epoch + 1
        if stopped:
            kwargs["epochs"] = epoch
    segments = _segments(out) if resume else []
    segment = dict(started_utc=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), first_epoch=first, wall_s=None)
    if kwargs["epochs"] != run.kwargs["epochs"]:  # train() would run one more epoch past --patience
        segment["stopped_by_patience_at"] = kwargs["epochs"]
    write_text(out / "run_info.json", json.dumps(_run_info(segments + [segment])))
    t0 = time.perf_counter()
    with EpochClock(out, len(segments)) as clock:
        # a new run's folder holds only this sweep's run_info.json and claim (rewritten below): --overwrite
        train(run.dataset_path, out=str(out), resume=resume, overwrite=not resume, **kwargs)
    segment["wall_s"] = round(time.perf_counter() - t0, 2)
    segment.update({k: v for k, v in clock.memory.items() if k != "rss_gib"})
    segment["peak_rss_gib"] = worker_memory().get("peak_rss_gib")
    write_text(out / "run_info.json", json.dumps(_run_info(segments + [segment])))
    if run.compact:
        for name in RESUME_ONLY:
            (out / name).unlink(missing_ok=True)


def worker_memory() -> dict:
    """This process's peak resident memory, and its resident memory now with the file-backed and private
    parts (GiB), from /proc/self/status (Linux; {} elsewhere). File-backed pages are mostly the memory-mapped
    descriptor cache (plus ~0.1 GiB of libraries), one copy in RAM however many workers map it; private
    (anonymous) pages are each worker's own."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return {}
    kib = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in text.splitlines() if ":" in line)
           if k in ("VmHWM", "VmRSS", "RssFile", "RssAnon")}
    names = dict(VmHWM="peak_rss_gib", VmRSS="rss_gib", RssFile="rss_file_gib", RssAnon="rss_anon_gib")
    return {names[k]: round(v / 2**20, 2) for k, v in kib.items()}


def _check_finished(run: Run, out: Path) -> None:
    """Refuse a finished run whose settings.json disagrees with ``run.kwargs`` (epochs cut by --patience aside)."""
    saved = json.loads((out / "settings.json").read_text())
    stopped_at = [g["stopped_by_patience_at"] for g in _segments(out) if "stopped_by_patience_at" in g]
    for key, value in run.kwargs.items():
        if key in NOT_COMPARED or (key == "epochs" and saved.get(key) in stopped_at):
            continue
        if json.loads(json.dumps(value)) != saved.get(key):
            raise ValueError(f"{out}: finished run has {key}={saved.get(key)!r}, this sweep wants {value!r}; "
                             "use another --runs folder")


def _segments(out: Path) -> list:
    info = out / "run_info.json"
    return json.loads(info.read_text()).get("segments", []) if info.exists() else []


def _run_info(segments: list) -> dict:
    """run_info.json: the segments (one per call; wall_s None if it was killed) and their summed wall time."""
    return dict(wall_s=round(sum(g["wall_s"] or 0.0 for g in segments), 2), segments=segments)


def _single_thread_env():
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"


def execute(runs: list, workers=None, scheduler=None, fn=run_one) -> list:
    """Run every ``Run`` (in parallel) and return ``fn``'s results (default ``run_one``) in the order of ``runs``."""
    if not runs:
        return []
    if scheduler:
        try:
            from dask.distributed import Client
        except ImportError:
            from alw_ref.errors import MissingDependencyError

            raise MissingDependencyError("--scheduler needs dask.distributed: pip install 'alw_ref[dask]'") from None
        client = scheduler if not isinstance(scheduler, str) else Client(scheduler)
        try:
            return client.gather(client.map(fn, runs, pure=False))
        finally:
            if isinstance(scheduler, str):
                client.close()
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        return [fn(r) for r in runs]
    saved = dict(os.environ)
    _single_thread_env()  # inherited by the spawned workers before they import NumPy/Numba
    try:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            return list(pool.map(fn, runs))
    finally:
        os.environ.clear()
        os.environ.update(saved)


# ------------------------------------------------------------------------------------- CLI
def int_at_least(low: int):
    """argparse type: an integer ≥ ``low`` (argparse names the option in its message and exits 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an integer ≥ {low}, got {text!r}")
        return value
    parse.__name__ = "int"
    return parse


def _widths(text: str) -> tuple:
    """--hidden: comma-separated layer widths, each ≥ 1."""
    return tuple(int_at_least(1)(x) for x in text.split(","))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by every script (defaults: ``FULL``; ``--quick``: ``QUICK``)."""
    a = parser.add_argument
    a("--quick", action="store_true",
      help=f"CI-sized: {QUICK['datasets'][0]}, {QUICK['epochs']} epochs, {QUICK['seeds']} seeds, hidden "
           f"{QUICK['hidden']}, out {QUICK_OUT}")
    a("--dataset", nargs="+", choices=DATASETS, default=None,
      help=f"datasets (default {' '.join(FULL['datasets'])}; --quick: mlearn-mo)")
    a("--epochs", type=int_at_least(1), default=None, help=f"epochs per run (default {FULL['epochs']}; the paper's ~1500)")
    a("--max-structures", type=int_at_least(0), default=None,
      help=f"seeded random subset of the structures (default {FULL['max_structures']}; 0 = all)")
    a("--seeds", type=int_at_least(1), default=None, help=f"seeds per configuration (default {FULL['seeds']})")
    a("--hidden", type=_widths, default=None,
      help="hidden layer widths (default 30,30 as in the paper)")
    a("--out", type=Path, default=None, help=f"folder of the CSV, PNG and Markdown (default {DEFAULT_OUT})")
    a("--runs", type=Path, default=None, help="folder of the training runs (default ~/.cache/alw_ref/paper_runs/<tag>)")
    a("--workers", type=int_at_least(1), default=None, help="local worker processes (default: all cores)")
    a("--scheduler", default=None, help="Dask scheduler address: run the trainings on that cluster instead")


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options left unset from FULL or QUICK; create the folders."""
    base = QUICK if args.quick else FULL
    args.dataset = tuple(args.dataset or base["datasets"])
    args.epochs = args.epochs if args.epochs is not None else base["epochs"]
    cap = args.max_structures if args.max_structures is not None else base["max_structures"]
    args.max_structures = cap or None
    args.seeds = args.seeds if args.seeds is not None else base["seeds"]
    args.hidden = tuple(args.hidden or base["hidden"])
    args.out = Path(args.out or (QUICK_OUT if args.quick else DEFAULT_OUT))
    tag = f"e{args.epochs}_n{args.max_structures or 'all'}_h{'-'.join(map(str, args.hidden))}"
    args.runs = Path(args.runs or CACHE / "paper_runs" / tag)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def make_runs(args, configs, datasets_info: dict) -> list:
    """The Run of every (dataset, config, seed) with the paper's settings and the sweep's caps."""
    runs = []  # configuration-major: the first configurations finish first on every dataset
    for cfg in configs:
        for name in args.dataset:
            info = datasets_info[name]
            for seed in range(args.seeds):
                kwargs = train_kwargs(cfg, info, seed, hidden=args.hidden, epochs=args.epochs)
                runs.append(Run(name, cfg.name, seed, info["path"], str(args.runs / name / cfg.name / f"seed{seed}"),
                                kwargs))
    return runs


def train_kwargs(cfg, info: dict, seed: int, **sweep_options) -> dict:
    """Every ``train`` keyword of one run: the protocol (``PAPER_PROTOCOL`` and ``configs.EXPLICIT``, so
    no trainer default matters; or, for ``protocol="recommended"``, nothing), then the sweep's options
    (epochs, hidden, patience ...), then the configuration's, then the run's bookkeeping."""
    base = dict(PAPER_PROTOCOL, **catalogue.EXPLICIT) if cfg.protocol == "paper" else {}
    kwargs = {**base, **sweep_options, **cfg.options,
              **dict(spec=info["spec"], seed=seed, quiet=True, plots=False, threads=1, cache_dir=str(CACHE))}
    for key in ("weights", "limit_weights", "hidden", "split"):
        if kwargs.get(key) is not None:
            kwargs[key] = list(kwargs[key])
    return kwargs


def sweep(args, configs, script: str) -> list:
    """Prepare the datasets, run every configuration, log the timing; returns run_one's results."""
    t0 = time.perf_counter()
    infos = {}
    for name in args.dataset:
        infos[name] = prepare_dataset(name, args.max_structures)
        warm_descriptor_cache(infos[name])
    args.dataset_info = infos  # structure counts for the CSVs (summarize)
    runs = make_runs(args, configs, infos)
    results = execute(runs, args.workers, args.scheduler)
    wall = time.perf_counter() - t0
    _append_timing(args, script, results, wall, infos)
    return results


def _append_timing(args, script, results, wall, infos):
    """One row per script call in <out>/timings.csv (what ran where, and how long)."""
    path = args.out / "timings.csv"
    row = dict(script=script, finished_utc=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
               datasets=" ".join(args.dataset), n_structures=" ".join(str(infos[d]["n_used"]) for d in args.dataset),
               epochs=args.epochs, seeds=args.seeds, hidden="-".join(map(str, args.hidden)),
               runs=len(results), trained=sum(r["trained"] for r in results),
               train_s_sum=round(sum(r["wall_s"] for r in results if r["trained"]), 1), wall_s=round(wall, 1),
               workers=args.scheduler or args.workers or os.cpu_count())
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def settings_columns(args) -> dict:
    """Columns stating the sweep's caps, repeated in every CSV row."""
    return dict(epochs=args.epochs, max_structures=args.max_structures or "all", seeds=args.seeds,
                hidden="-".join(map(str, args.hidden)), batch_size=PAPER_PROTOCOL["batch_size"],
                lr=PAPER_PROTOCOL["lr"], loss=PAPER_PROTOCOL["loss"])


# ------------------------------------------------------------------------------------- aggregation
def summarize(results: list, configs, args) -> list:
    """Mean ± std over seeds of train/test RMSE per component (report units) per dataset and config."""
    rows = []
    for name in args.dataset:
        for cfg in configs:
            rs = [r for r in results if r["dataset"] == name and r["config"] == cfg.name]
            row = dict(dataset=name, config=cfg.name, **describe_config(cfg), n_runs=len(rs))
            for split in ("train", "test"):
                for comp in COMPONENTS:
                    vals = np.array([r[split][METRIC_KEYS[comp]] for r in rs], dtype=float)
                    col = f"{split}_{comp}_rmse_{UNITS[comp].replace('/', '_').replace('Å', 'A')}"
                    row[col + "_mean"] = float(np.mean(vals))
                    row[col + "_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")
            row["best_epoch_mean"] = float(np.mean([r["best_epoch"] for r in rs]))
            info = args.dataset_info[name]
            row.update(settings_columns(args), n_structures_total=info["n_total"], n_structures_used=info["n_used"],
                       n_singular_dropped=info["n_singular"])
            rows.append(row)
    return rows


def describe_config(cfg: Config) -> dict:
    o = cfg.options
    w = o.get("weights", (1 / 3, 1 / 3, 1 / 3))
    lim = o.get("limit_weights")
    return dict(weighting=o.get("weighting", "softadapt"), w_energy=round(w[0], 4), w_forces=round(w[1], 4),
                w_stress=round(w[2], 4), beta=o.get("beta", "") if o.get("weighting") == "softadapt" else "",
                variant=o.get("softadapt_variant", "l2") if o.get("weighting") == "softadapt" else "",
                loss_weighted=o.get("loss_weighted", False),
                limit_weights="" if lim is None else ",".join(f"{x:g}" for x in lim))


def write_csv(rows: list, path: Path) -> None:
    """Rows (dicts with the same keys) as CSV, written atomically."""
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: Path) -> list:
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def col(comp: str, split: str = "test") -> str:
    """CSV column stem of a component's RMSE (append _mean or _std)."""
    return f"{split}_{comp}_rmse_{UNITS[comp].replace('/', '_').replace('Å', 'A')}"


def fmt(mean, std) -> str:
    """'12.3 ± 0.4' with 3 significant digits (std omitted when NaN)."""
    mean, std = float(mean), float(std)
    text = f"{mean:.3g}" if abs(mean) < 1000 else f"{mean:.0f}"
    return text if not np.isfinite(std) else f"{text} ± {std:.2g}"


def markdown_table(header: list, rows: list) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def results_table(rows: list, label) -> str:
    """Markdown table of a summary CSV: train and test RMSE (mean ± std) per component."""
    header = ["dataset", "model"] + [f"train {c[0].upper()} ({UNITS[c]})" for c in COMPONENTS] + \
             [f"test {c[0].upper()} ({UNITS[c]})" for c in COMPONENTS]
    body = [[r["dataset"], label(r)] + [fmt(r[col(c, s) + "_mean"], r[col(c, s) + "_std"])
                                         for s in ("train", "test") for c in COMPONENTS] for r in rows]
    return markdown_table(header, body)


def script_main(argv, script, description, configs_fn, finish) -> int:
    """Common main: parse, resolve, sweep ``configs_fn(args)``, then ``finish(args, results, configs)``."""
    parser = argparse.ArgumentParser(prog=f"python -m paper_figures.{script}", description=description)
    add_arguments(parser)
    args = resolve(parser.parse_args(argv))
    configs = configs_fn(args)
    results = sweep(args, configs, script)
    finish(args, results, configs)
    return 0


def sweep_all_main(argv=None) -> int:
    """``python -m paper_figures.sweep``: every script's runs in one pool (no tail idling), nothing else."""
    parser = argparse.ArgumentParser(prog="python -m paper_figures.sweep",
                                     description="Train every run of every paper-figure script in one pool.")
    add_arguments(parser)
    args = resolve(parser.parse_args(argv))
    results = sweep(args, catalogue.every_script(), "sweep")
    print(f"{len(results)} runs ({sum(r['trained'] for r in results)} trained) in {args.runs}")
    return 0


# ------------------------------------------------------------------------------------- figures
def bar_figure(rows: list, label, path: Path, title: str, split: str = "test") -> None:
    """One panel per (dataset, component): the configurations' RMSE, mean ± std over seeds, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(len(datasets), 3, figsize=(13, 3.4 * len(datasets)), squeeze=False)
    for i, name in enumerate(datasets):
        rs = [r for r in rows if r["dataset"] == name]
        x = np.arange(len(rs))
        for j, comp in enumerate(COMPONENTS):
            ax = axes[i, j]
            mean = np.array([float(r[col(comp, split) + "_mean"]) for r in rs])
            std = np.nan_to_num(np.array([float(r[col(comp, split) + "_std"]) for r in rs]))
            ax.bar(x, mean, yerr=std, color=[f"C{k % 10}" for k in range(len(rs))], capsize=3)
            ax.set_yscale("log")
            ax.set_xticks(x, [label(r) for r in rs], rotation=60, ha="right", fontsize=7)
            ax.set_title(f"{name}: {split} {comp} RMSE", fontsize=9)
            ax.set_ylabel(UNITS[comp])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def caps_note(args) -> str:
    """One sentence stating the sweep's caps (repeated under every table)."""
    n = args.max_structures or "all"
    return (f"Settings: {args.epochs} epochs (paper: until converged, weights settle within ~1500), "
            f"{n} structures per dataset (seeded subset), {args.seeds} seeds (split, initial network and batch "
            f"order differ per seed), hidden {'×'.join(map(str, args.hidden))} tanh, Adam lr 1e-3, batch 30, "
            "70/20/10 split, loss = Σ w·RMSE (E eV/atom, F eV/Å, S GPa), AtomDNN MoTe2 descriptor preset. "
            "Values: mean ± sample std over seeds of the best-validation model.")


def write_summary(args, results, run_configs, name: str, label, heading: str, fig_title: str) -> list:
    """Summary CSV, bar figure and Markdown section (results table + caps) of a table script."""
    rows = summarize(results, run_configs, args)
    write_csv(rows, args.out / f"{name}.csv")
    bar_figure(rows, label, args.out / f"{name}.png", fig_title)
    write_text((args.out / f"{name}.md"), f"## {heading}\n\n" + results_table(rows, label) + "\n" + caps_note(args)
                                         + f"\n\n![{heading}]({name}.png)\n")
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from paper_figures import sweep as _sweep  # the importable module, so workers can unpickle run_one

    sys.exit(_sweep.sweep_all_main())
