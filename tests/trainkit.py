"""Shared helpers of the trainer-wiring tests (test_trainloop, test_trainsetup, test_runfiles).

Everything a test compares with is recomputed here from the files a run leaves (metrics.jsonl read as
plain JSON lines, models read back with ``load_model``) and from first principles (the split by hand,
the loss parts of a saved model on chosen structures) — never taken from the trainer's own bookkeeping.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np

from alw_ref import train as train_mod
from alw_ref.data import read_dataset, write_dataset
from alw_ref.describe import compute_descriptors
from alw_ref.loss import loss_and_gradient
from alw_ref.model import make_batch
from alw_ref.potential import load_model

ROOT = Path(__file__).resolve().parents[1]
#: Small and fast: the paper's protocol with a tiny network (every test states the options it varies).
SMALL = dict(train_mod.PAPER_PROTOCOL, weights=(1 / 3, 1 / 3, 1 / 3), rc=4.0, hidden=(8, 8), batch_size=8, quiet=True,
             plots=False, cache_dir="")   # the paper's protocol and initial weights, as --protocol paper gives
#: The same as command-line options.
SMALL_ARGS = ["--protocol", "paper", "--rc", "4", "--hidden", "8,8", "--batch-size", "8", "--quiet", "--no-plots",
              "--cache-dir", ""]
COMPONENTS = ("energy", "forces", "stress")
GPA_PER_EV_A3 = 1.602176634e-19 / 1e-30 / 1e9   # 1 eV/Å³ in GPa: e (exact since SI 2019) J / 1e-30 m³, typed in here


def write_small(path, n=40, start=0, step=4):
    """``n`` structures (every ``step``-th from ``start``) of the bundled mlearn Mo training file."""
    data = read_dataset(train_mod.example_path(train_mod.EXAMPLE_TRAIN))
    write_dataset(data.subset(np.arange(start, start + n * step, step)), path)
    return Path(path)


def rows_of(out):
    """The rows of ``out``/metrics.jsonl, parsed line by line (not with the trainer's reader)."""
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


def strip_time(rows):
    return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]


def col(rows, prefix):
    """(n_rows, 3) array of the columns prefix+component (e.g. "w_", "train_L_")."""
    return np.array([[r[prefix + c] for c in COMPONENTS] for r in rows])


def split_by_hand(n, fractions, seed):
    """(train, val, test) as data.split_indices documents it, written out here: sizes floor(f n + ½)."""
    perm = np.random.default_rng(seed).permutation(n)
    n_tr = int(np.floor(fractions[0] * n + 0.5))
    n_va = min(int(np.floor(fractions[1] * n + 0.5)), n - n_tr)
    return np.sort(perm[:n_tr]), np.sort(perm[n_tr:n_tr + n_va]), np.sort(perm[n_tr + n_va:])


def model_parts(model_path, data_path, indices, form="rmse"):
    """Loss parts (L_E, L_F, L_S) of a saved model on structures ``indices`` of a dataset file, loss units."""
    model = load_model(model_path)
    data = read_dataset(data_path).subset(np.asarray(indices, np.int64))
    desc = compute_descriptors(data, model.spec)
    batch = make_batch(data, desc, np.arange(len(data)), model.spec.species_index(data.numbers))
    res = loss_and_gradient(model, batch, dict.fromkeys(COMPONENTS, 1.0), form, gradient=False)
    return np.array([res.parts[c] for c in COMPONENTS])


def file_bytes(folder):
    """{name: bytes} of every file in ``folder`` but the lock file (whose content is the holder's pid)."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file() and p.name != ".lock"}


def subprocess_env():
    """Environment of a child Python that imports this worktree's alw_ref, on one thread."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
               NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return env


PYTHON = sys.executable
