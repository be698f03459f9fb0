"""Benchmark: seconds per epoch and peak memory of training, and where the time goes.

Every run is the trainer itself, ``alw_ref.train.train(...)`` (``cache_dir=''``, ``quiet=True``, ``plots=False``),
with the fixed settings ``SETTINGS``: the paper's protocol (2 × 30 tanh per element, batches of 30 structures,
Adam at a constant lr 1e-3, SoftAdapt ``l2`` with β = 1 over one epoch, raw RMSE terms, no EMA, split
0.7/0.2/0.1, seed 0) on ``ACSFSpec.default`` at R_c = 5 Å (``--preset default --rc 5``). Cases:
  example   — the bundled mlearn Mo set (``alw_ref.data.example_dataset_path()``, 217 structures);
  generated — ``--atoms`` atoms (default 15 000) of rattled Mo/Te rock-salt cells of ``--cell-atoms``
              atoms each (``bench_acsf.rocksalt``) with random labels (``bench_model.labelled_dataset``:
              energy, forces and stress on every structure), written to a temporary dataset.h5;
  mote2-1000 — 1 000 structures of AtomDNN's MoTe2 set (``../shared/data/atomdnn``, drawn with seed 0 as in
              ``bench_accuracy.py``) with the paper's 36 MoTe2 descriptors (``ACSFSpec.mote2_paper``, R_c 6.5 Å)
              in place of the default set: the paper sweep's epoch at a quarter of its size.

``--code DIR`` times another alw_ref tree (e.g. an older commit, ``git worktree add DIR <commit>``) with the
same data and settings, for before/after tables: only the plain train() call runs there (the timers of the
loop name this tree's functions), and options its ``train()`` does not know are left out (named in the
output; they are the paper protocol's no-ops, such as ``ema_decay=0``).

For each case, three fresh processes (so that each has its own peak RSS):
  loop   — ``train()`` for ``--epochs`` epochs with time.perf_counter timers around the functions it calls,
           swapped in for the run (module attributes looked up at call time; restored at the end):
           data loading (``read_dataset``), descriptors (``describe_dataset``, no cache), setup
           (``trainloop.fresh_state``: model, standardisation, reference energies, the initial loss L_k(0)),
           the epochs (``trainloop.run_epochs``) and the final evaluation (``trainloop.finish``). Inside the
           epochs: batch assembly (``model.load_batch``; the first call builds the dataset's compact copy of
           dG/dr), forward (``predict_batch``/``predict_with_adjoints``: E, F, σ and, fused with them, the
           force/stress adjoints), gradient (the rest of ``loss.loss_and_gradient``: residuals, loss, batch
           scalars, ∂L/∂θ), optimizer (``Adam.step``), validation (``trainloop._validate``), epoch I/O
           (``append_row``, ``best.h5`` when the validation loss improves, the checkpoints) and, as the
           remainder of the epochs' own ``time_s``, weighting and bookkeeping (SoftAdapt, EMA, schedule,
           shuffling, finiteness checks, pooled sums). The Numba kernels ``forces.forces_and_virials``,
           ``forces.forces_virials_adjoints`` and ``forces.descriptor_adjoint`` are shown as "of which" rows.
           Epoch compute = the trainer's ``time_s`` of each metrics row (everything in an epoch but its I/O);
  train  — the same ``train()`` call without timers, timed as a whole: its ``time_s`` rows and wall time
           show what the timers cost;
  memory — the loop again for one epoch under ``tracemalloc`` (kept out of the timed runs: tracing
           slows allocation).

Memory, two different numbers:
  * tracemalloc peak — bytes of Python objects and NumPy arrays (also the arrays Numba kernels return,
    checked with Numba 0.68) allocated after tracing started (after the imports), per phase;
  * ru_maxrss — the process's peak resident set size (``resource.getrusage``, KiB on Linux): everything,
    including the interpreter, imported libraries, Numba's loaded kernels and freed-but-kept heap. It is
    also reported right after the imports, so the growth is visible.

µs/atom per epoch = epoch compute time / atoms of the training split (each epoch also evaluates the
validation split, 2/7 as many atoms, without gradients). Numba threads: ``--threads`` (default: all
cores, as ``train``). NumPy's BLAS threads matter (its threads compete with Numba's on a small or
shared machine): the loop and the train() call run once per entry of ``--blas-threads`` (default
``default,1``: the BLAS library's own thread count, and one thread, which is what ``python -m
alw_ref.train`` sets, through OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS in the child's
environment); the memory run uses the first entry. Prints three tables and writes JSON (default
``benchmarks/results/bench_train.json``). Times on a shared machine vary by 2× or more between runs:
the load average at start and end is printed and stored.

    python benchmarks/bench_train.py [--atoms 15000] [--cell-atoms 64] [--epochs 3] [--threads N]
                                     [--blas-threads default,1] [--cases example,generated]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

# Only the standard library at module level: the parent process stays small, so that the children's
# ru_maxrss (which on Linux starts at the parent's RSS when the child is spawned) is their own.
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: train() options of every run: the paper's protocol (``alw_ref.train.PAPER_PROTOCOL``, written out: this
#: process imports no alw_ref) with SoftAdapt at β = 1 and equal initial weights, on ``ACSFSpec.default`` at 5 Å.
SETTINGS = dict(weighting="softadapt", weights=(1 / 3, 1 / 3, 1 / 3), beta=1.0, softadapt_variant="l2",
                slope_window=1, softadapt_prior=False, loss_weighted=False, average_epochs=1, loss="rmse",
                loss_scale="none", hidden=(30, 30), activation="tanh", preset="default", rc=5.0, batch_size=30,
                lr=1e-3, lr_schedule="constant", lr_decay=1.0, min_lr=0.0, ema_decay=0.0, seed=0,
                split=(0.7, 0.2, 0.1))
CASES = ("example", "generated", "mote2-1000")
#: Per-epoch pieces of the loop, in table order (keys of ``Clock.seconds``).
EPOCH_PIECES = ("batch", "forward", "force_kernel", "gradient", "adjoint_kernel", "optimizer", "validation",
                "weighting", "io")
PIECE_NAMES = {"load": "read dataset.h5", "descriptors": "descriptors (describe_dataset)",
               "setup": "setup + initial loss L_k(0)", "batch": "batch assembly (load_batch)",
               "forward": "forward (predict_batch: E, F, σ)",
               "force_kernel": "  of which force/virial kernel (fused with the adjoint)",
               "gradient": "gradient (rest of loss_and_gradient)",
               "adjoint_kernel": "  of which separate descriptor-adjoint kernel",
               "optimizer": "optimizer (Adam.step)", "validation": "validation (no gradient)",
               "weighting": "weighting + bookkeeping (rest)", "io": "epoch I/O (row, best.h5, checkpoint)",
               "final": "final evaluation (finish)", "untimed": "untimed remainder"}
MIB = 2.0 ** 20
#: Environment variables that set the thread count of NumPy's BLAS (read when NumPy loads).
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _maxrss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is in KiB on Linux), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Clock:
    """Accumulated time.perf_counter seconds per piece; ``phase`` prefixes the pieces timed by wrappers."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.phase = "setup"

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


class Memory:
    """tracemalloc peak per phase (bytes) when ``enabled``; otherwise does nothing."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.peak: dict[str, int] = {}
        self.held: dict[str, int] = {}
        if enabled:
            import tracemalloc

            self._tm = tracemalloc
            tracemalloc.start()

    @contextmanager
    def phase(self, name: str):
        if self.enabled:
            self._tm.reset_peak()
        yield
        if self.enabled:
            current, peak = self._tm.get_traced_memory()
            self.peak[name] = max(self.peak.get(name, 0), peak)
            self.held[name] = current


def timed(clock: Clock, piece: str, fn, phase: str | None = None):
    """``fn`` with its time added to ``clock`` under "<clock.phase>:<piece>"; with ``phase``, the pieces timed
    inside ``fn`` count under that phase."""
    def wrapper(*a, **k):
        outer = clock.phase
        clock.phase = phase or outer
        try:
            with clock(f"{outer}:{piece}"):
                return fn(*a, **k)
        finally:
            clock.phase = outer
    return wrapper


def write_text(path, text: str) -> None:
    """``alw_ref.atomic.write_text``, imported on use (the workers time their own imports of alw_ref)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from alw_ref.atomic import write_text as atomic_write_text

    atomic_write_text(path, text)


# ---------------------------------------------------------------------------------------- workers

def case_settings(case: str, data: str) -> dict:
    """train() options of a case: ``SETTINGS``, with the MoTe2 case's spec file (written by the prepare worker)."""
    if case == "mote2-1000":
        return dict(SETTINGS, preset=None, spec=data + ".spec.json")
    return dict(SETTINGS)


def worker_prepare(args) -> dict:
    """Write the case's dataset to ``args.data``: rock-salt cells with random labels, or the MoTe2 subset and
    its spec file."""
    sys.path[:0] = [str(HERE), str(REPO)]
    from alw_ref.data import write_dataset

    if args.case == "mote2-1000":
        from bench_accuracy import mote2_subset

        from alw_ref.acsf_spec import ACSFSpec

        dataset = mote2_subset(1000, seed=0)
        write_text(Path(args.data + ".spec.json"), ACSFSpec.mote2_paper().to_json())
        write_dataset(dataset, args.data)
        return {"n_structures": len(dataset), "n_atoms": int(dataset.n_atoms.sum())}
    from bench_model import labelled_dataset

    n_structures = max(1, -(-args.atoms // args.cell_atoms))
    dataset = labelled_dataset(n_structures, args.cell_atoms, seed=0)
    write_dataset(dataset, args.data)
    return {"n_structures": len(dataset), "n_atoms": int(dataset.n_atoms.sum())}


def worker_train(args) -> dict:
    """One ``train()`` call without timers, timed as a whole, of this tree or of ``--code``'s."""
    sys.path.insert(0, str(Path(args.code).resolve() if args.code else REPO))
    import inspect

    import alw_ref
    from alw_ref.train import train

    rss0 = _maxrss_mib()
    known = inspect.signature(train).parameters
    settings = case_settings(args.case, args.data)
    left_out = {k: v for k, v in settings.items() if k not in known}
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = train(args.data, out=out, epochs=args.epochs, cache_dir="", quiet=True, plots=False,
                       threads=args.threads, **{k: v for k, v in settings.items() if k in known})
        wall = time.perf_counter() - t0
    return {"wall_s": wall, "epoch_time_s": [r["time_s"] for r in result.rows], "code": str(alw_ref.__file__),
            "options_left_out": {k: str(v) for k, v in left_out.items()},
            "maxrss_after_imports_mib": rss0, "maxrss_mib": _maxrss_mib()}


def worker_loop(args) -> dict:
    """``train()`` with timers around the functions it calls (module docstring)."""
    sys.path.insert(0, str(REPO))
    import inspect

    import numba

    import alw_ref.forces as forces_module
    import alw_ref.loss as loss_module
    import alw_ref.train as train_module
    import alw_ref.trainloop as loop_module
    from alw_ref.optim import Adam

    rss = {"after_imports": _maxrss_mib()}
    clock, mem, seen = Clock(), Memory(args.trace), {}

    def stage(name, phase, rss_key=None):
        """Wrapper maker: a top-level step of train(), timed and traced as ``name``; the pieces inside it are
        timed under ``phase``; its arguments (by name) and result are kept in ``seen``."""
        def make(fn):
            def wrapper(*a, **k):
                clock.phase = phase
                with mem.phase(name), clock(name):
                    out = fn(*a, **k)
                seen[name] = (inspect.signature(fn).bind(*a, **k).arguments, out)
                if rss_key:
                    rss[rss_key] = _maxrss_mib()
                return out
            return wrapper
        return make

    def piece(name, phase=None):
        return lambda fn: timed(clock, name, fn, phase)

    io = piece("io")
    swaps = [(train_module, "read_dataset", stage("load", "load")),
             (train_module, "describe_dataset", stage("descriptors", "descriptors", "after_descriptors")),
             (train_module, "fresh_state", stage("setup", "init")),
             (train_module, "run_epochs", stage("epochs", "train", "after_epochs")),
             (train_module, "finish", stage("final", "final")),
             (train_module, "load_batch", piece("batch")),
             (loop_module, "loss_and_gradient", piece("loss")),
             (loop_module, "_validate", piece("validation", phase="val")),
             (loop_module, "append_row", io), (loop_module, "_update_best", io), (loop_module, "_checkpoint", io),
             (Adam, "step", piece("optimizer")),
             (loss_module, "predict_batch", piece("forward")),
             (loss_module, "predict_with_adjoints", piece("forward")),
             (forces_module, "forces_and_virials", piece("force kernel")),
             (forces_module, "forces_virials_adjoints", piece("force kernel")),
             (forces_module, "descriptor_adjoint", piece("adjoint kernel"))]
    originals = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in swaps]
    for (owner, attr, make), (_, _, fn) in zip(swaps, originals):
        setattr(owner, attr, make(fn))
    try:
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            result = train_module.train(args.data, out=out, epochs=args.epochs, cache_dir="", quiet=True,
                                        plots=False, threads=args.threads, **case_settings(args.case, args.data))
            wall = time.perf_counter() - t0
    finally:
        for owner, attr, fn in originals:
            setattr(owner, attr, fn)
    data, (described, desc), (fresh, st) = seen["load"][1], seen["descriptors"], seen["setup"]
    train_idx, val_idx = fresh["train_idx"], seen["epochs"][0]["val_idx"]
    desc_bytes = sum(a.nbytes for a in (desc.G_ig, desc.block_first_i, desc.block_j, desc.dG_dr_bgc,
                                        desc.dG_deps_igcc))
    return {"wall_s": wall, "seconds": clock.seconds, "epoch_compute_s": [r["time_s"] for r in result.rows],
            "n_structures": len(data), "n_atoms": int(data.n_atoms.sum()),
            "n_train_atoms": int(data.n_atoms[train_idx].sum()), "n_val_atoms": int(data.n_atoms[val_idx].sum()),
            "n_features": described["spec"].n_features, "n_params": st["model"].n_params,
            "n_batches_per_epoch": -(-len(train_idx) // SETTINGS["batch_size"]), "threads": numba.get_num_threads(),
            "blas_threads": blas_threads(),
            "descriptor_array_mib": desc_bytes / MIB, "maxrss_mib": rss, "maxrss_end_mib": _maxrss_mib(),
            "tracemalloc_peak_mib": {k: v / MIB for k, v in mem.peak.items()},
            "tracemalloc_held_mib": {k: v / MIB for k, v in mem.held.items()}}


WORKERS = {"prepare": worker_prepare, "train": worker_train, "loop": worker_loop}


def run_worker(mode: str, args, data: str, epochs: int, blas: str = "default", trace: bool = False) -> dict:
    """Run one worker in a fresh Python process (BLAS threads from the environment) and return its result."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result_path = f.name
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--data", data, "--result", result_path,
           "--epochs", str(epochs), "--atoms", str(args.atoms), "--cell-atoms", str(args.cell_atoms),
           "--case", args.case]
    if args.code:
        cmd += ["--code", args.code]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if trace:
        cmd.append("--trace")
    env = dict(os.environ)
    if blas != "default":
        env.update({k: blas for k in BLAS_ENV})
    try:
        subprocess.run(cmd, check=True, env=env)
        return json.loads(Path(result_path).read_text())
    finally:
        os.unlink(result_path)


def blas_threads() -> int | None:
    """Threads of NumPy's BLAS in this process (threadpoolctl, when installed; else None)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return max((d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"), default=None)


# ---------------------------------------------------------------------------------------- report

def breakdown(loop: dict) -> dict:
    """Seconds per table piece from the loop's raw timers (forward/gradient split as in the docstring)."""
    get = loop["seconds"].get
    out = {"load": get("load", 0.0), "descriptors": get("descriptors", 0.0), "setup": get("setup", 0.0),
           "batch": get("train:batch", 0.0), "forward": get("train:forward", 0.0),
           "force_kernel": get("train:force kernel", 0.0),
           "gradient": get("train:loss", 0.0) - get("train:forward", 0.0),
           "adjoint_kernel": get("train:adjoint kernel", 0.0),
           "optimizer": get("train:optimizer", 0.0),
           "validation": get("train:validation", 0.0), "io": get("train:io", 0.0), "final": get("final", 0.0)}
    # the rest of run_epochs: weighting, EMA, schedule, shuffling, finiteness checks, pooled sums, log
    out["weighting"] = get("epochs", 0.0) - sum(out[k] for k in ("batch", "forward", "gradient", "optimizer",
                                                                   "validation", "io"))
    out["untimed"] = loop["wall_s"] - sum(v for k, v in out.items() if not k.endswith("_kernel"))
    return out


def summarize(loop: dict, plain: dict) -> dict:
    """Per-epoch figures of one timed configuration, and the check against the plain train() call."""
    ep, tr = loop["epoch_compute_s"], plain["epoch_time_s"]
    return {"loop": loop, "train": plain, "breakdown": breakdown(loop),
            "s_per_epoch": sum(ep) / len(ep), "s_per_epoch_min": min(ep),
            "train_s_per_epoch": sum(tr) / len(tr), "train_s_per_epoch_min": min(tr),
            "us_per_atom_epoch": 1e6 * sum(ep) / len(ep) / loop["n_train_atoms"],
            "loop_over_train_wall": loop["wall_s"] / plain["wall_s"]}


def print_tables(cases: dict, epochs: int) -> None:
    runs = [(f"{name} B={'def' if blas == 'default' else blas}", r)
            for name, c in cases.items() for blas, r in c["runs"].items()]
    first = runs[0][1]["loop"]
    print(f"\nTraining benchmark: {epochs} epochs, default ACSF at R_c 5 Å (mote2-1000: the paper's 36 features "
          f"at 6.5 Å), 2×30 tanh, batches of 30 structures, "
          f"{first['threads']} Numba thread(s); B = BLAS threads, def = NumPy's BLAS default "
          f"({first['blas_threads']} here)")
    print(f"{'run':<24} {'structs':>7} {'atoms':>6} {'train':>6} {'D':>3} {'s/epoch':>8} {'(min)':>6} "
          f"{'train()':>8} {'(min)':>6} {'µs/atom':>8} {'desc s':>7} {'run s':>6} {'train()':>8}")
    for label, r in runs:
        lp, tr = r["loop"], r["train"]
        print(f"{label:<24} {lp['n_structures']:>7} {lp['n_atoms']:>6} {lp['n_train_atoms']:>6} "
              f"{lp['n_features']:>3} {r['s_per_epoch']:>8.3f} {r['s_per_epoch_min']:>6.3f} "
              f"{r['train_s_per_epoch']:>8.3f} {r['train_s_per_epoch_min']:>6.3f} {r['us_per_atom_epoch']:>8.2f} "
              f"{lp['seconds']['descriptors']:>7.2f} {lp['wall_s']:>6.2f} {tr['wall_s']:>8.2f}")
    print("s/epoch (min): mean (fastest) time_s of the epochs of train() with timers (epoch I/O excluded) | "
          "train() (min): the same without timers\nµs/atom: mean epoch / atoms of the training split | "
          "desc s: describe_dataset, no cache | run s: the whole train() call with timers | train(): "
          "wall time of the train() call without timers")
    print(f"\n{'memory, MiB':<24} {'desc arrays':>11} {'tracemalloc':>11} {'rss imports':>11} {'rss desc':>9} "
          f"{'rss peak':>9} {'train() rss':>11}")
    for name, c in cases.items():
        lp, tr = next(iter(c["runs"].values()))["loop"], next(iter(c["runs"].values()))["train"]
        print(f"{name:<24} {lp['descriptor_array_mib']:>11.1f} {c['tracemalloc_peak_mib']:>11.1f} "
              f"{lp['maxrss_mib']['after_imports']:>11.0f} {lp['maxrss_mib']['after_descriptors']:>9.0f} "
              f"{lp['maxrss_end_mib']:>9.0f} {tr['maxrss_mib']:>11.0f}")
    print("desc arrays: G, dG/dr, dG/dε and index arrays | tracemalloc: peak of Python/NumPy allocations after "
          "the imports (run of 1 epoch) | rss: ru_maxrss, the whole process's peak resident set, after the "
          "imports / after describe_dataset / at the end; train() rss: the plain train() process")
    for name, c in cases.items():
        print(f"  {name}: tracemalloc peak per phase: "
              + ", ".join(f"{k} {v:.1f}" for k, v in c["memory"]["tracemalloc_peak_mib"].items()))
    print(f"\n{'piece (seconds over the run)':<38}" + "".join(f" {lab:>13} {'% run':>6} {'% ep':>6}"
                                                           for lab, _ in runs))
    for piece, label in PIECE_NAMES.items():
        line = f"{label:<38}"
        for _, r in runs:
            sec = r["breakdown"][piece]
            epoch_total = r["loop"]["seconds"]["epochs"]
            per_epoch = f"{100 * sec / epoch_total:>5.1f}%" if piece in EPOCH_PIECES else " " * 6
            line += f" {sec:>13.3f} {100 * sec / r['loop']['wall_s']:>5.1f}% {per_epoch}"
        print(line)
    print("% run: share of the whole train() call | % ep: share of run_epochs (incl. epoch I/O)")


def print_train_only(cases: dict) -> None:
    """The epoch times of plain train() calls of another tree (``--code``)."""
    print(f"\n{'run':<24} {'s/epoch':>8} {'(min)':>6} {'wall s':>7}  code; options its train() does not know")
    for name, c in cases.items():
        for blas, r in c["runs"].items():
            ep = r["epoch_time_s"]
            print(f"{name + ' B=' + blas:<24} {sum(ep) / len(ep):>8.3f} {min(ep):>6.3f} {r['wall_s']:>7.1f}  "
                  f"{r['code']}; {', '.join(r['options_left_out']) or 'none'}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--atoms", type=int, default=15000, help="atoms of the generated dataset (default: %(default)s)")
    p.add_argument("--cell-atoms", type=int, default=64, help="atoms per generated cell (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=3, help="epochs of the timed runs (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="Numba threads (default: all cores, as train())")
    p.add_argument("--blas-threads", default="default,1",
                   help="comma-separated BLAS thread counts of the timed runs, 'default' = NumPy's own "
                        "(default: %(default)s)")
    p.add_argument("--cases", default="example,generated",
                   help=f"comma-separated cases, of {', '.join(CASES)} (default: %(default)s)")
    p.add_argument("--code", metavar="DIR", help="time the alw_ref tree in DIR instead of this one (plain train() "
                   "only; for before/after tables)")
    p.add_argument("--json", default=str(HERE / "results" / "bench_train.json"),
                   help="where to write the JSON results (default: %(default)s)")
    p.add_argument("--worker", choices=tuple(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--case", default="generated", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        write_text(Path(args.result), json.dumps(WORKERS[args.worker](args)))
        return 0
    blas_list = [b.strip() for b in args.blas_threads.split(",")]
    if args.atoms < 1 or args.cell_atoms < 8 or args.epochs < 1:
        p.error("--atoms ≥ 1, --cell-atoms ≥ 8 and --epochs ≥ 1 are needed")
    if any(b != "default" and not (b.isdigit() and int(b) > 0) for b in blas_list):
        p.error(f"--blas-threads: 'default' or positive integers, got {args.blas_threads!r}")
    names = args.cases.split(",")
    if set(names) - set(CASES):
        p.error(f"--cases: choose from {', '.join(CASES)} (got {args.cases!r})")
    if args.code and not (Path(args.code) / "alw_ref" / "train.py").is_file():
        p.error(f"--code: {args.code} holds no alw_ref/train.py")
    t_all, load0 = time.perf_counter(), os.getloadavg()
    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            args.case = name
            if name == "example":
                data = _example_path()
            else:
                data = str(Path(tmp) / f"{name}.h5")
                info = run_worker("prepare", args, data, args.epochs)
                print(f"{name} dataset: {info['n_structures']} structures, {info['n_atoms']} atoms", flush=True)
            if args.code:
                cases[name] = {"code": args.code, "runs": {blas: run_worker("train", args, data, args.epochs, blas)
                                                           for blas in blas_list}}
                continue
            runs = {}
            for blas in blas_list:
                runs[blas] = summarize(run_worker("loop", args, data, args.epochs, blas),
                                       run_worker("train", args, data, args.epochs, blas))
                print(f"done {name}, BLAS {blas}: {runs[blas]['s_per_epoch']:.3f} s/epoch "
                      f"(train(): {runs[blas]['train_s_per_epoch']:.3f})", flush=True)
            memory = run_worker("loop", args, data, 1, blas_list[0], trace=True)
            cells = f", rock-salt cells of {args.cell_atoms} atoms" if name == "generated" else ""
            described = data if name == "example" else f"{name}: {info['n_structures']} structures{cells}"
            cases[name] = {"dataset": described,
                           "runs": runs, "memory": memory,
                           "tracemalloc_peak_mib": max(memory["tracemalloc_peak_mib"].values())}
    if args.code:
        print_train_only(cases)
    else:
        print_tables(cases, args.epochs)
    load1 = os.getloadavg()
    print(f"load average {load0[0]:.2f} at start, {load1[0]:.2f} at end; total {time.perf_counter() - t_all:.0f} s")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, json.dumps({"benchmark": "train", "machine": platform.platform(), "cpu_count": os.cpu_count(),
                               "python": platform.python_version(), "epochs": args.epochs, "settings": SETTINGS,
                               "load_average_start_end": [load0[0], load1[0]], "cases": cases}, indent=2))
    print(f"wrote {out}")
    return 0


def _example_path() -> str:
    """Path of the bundled example, found without importing alw_ref into this (parent) process."""
    out = subprocess.run([sys.executable, "-c", "from alw_ref.data import example_dataset_path as p; print(p())"],
                         cwd=REPO, check=True, capture_output=True, text=True)
    return out.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
