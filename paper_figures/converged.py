"""The paper's tables at the paper's scale (issue 16): every structure, trained until converged, resumable.

``python -m paper_figures.converged [--workers 1] [--priorities 1 2 3 4 5] [--status]`` trains issue
16's plan (``configs.plan``) in priority order on all structures of each dataset (70/20/10 per seed)
with ``alw_ref.train.PAPER_PROTOCOL``. Stopping: ``patience=PATIENCE`` epochs without lowering the
best validation loss by more than ``MIN_IMPROVEMENT`` (0.1 %) of it, no epoch cap (``EPOCHS``).

Why ``PATIENCE = 200``: with a constant learning rate of 1e-3 and SoftAdapt's weights flipping from
epoch to epoch, the validation loss is noisy and its gains come in steps tens of epochs apart (the
1 000-structure runs of ``results/mote2_n1000_e1000`` still improved by ~1 % per 100 epochs at epoch
1 000); 200 epochs without a 0.1 % gain means the remaining gain rate is below ~0.5 % per 1 000
epochs, "negligible learning gains" in the paper's words. The tail costs 200 epochs per run, about
10 % of a run that converges after ~2 000 epochs.

Resumable across sessions: the run folders live in the repository, ``results/converged/runs/
<dataset>/<config>/seed<k>/``. While a run trains, its folder holds ``settings.json``,
``checkpoint.h5`` (model, Adam, weighting and RNG state, all epochs' rows), ``best.h5``,
``metrics.csv`` and ``run_info.json``; ``metrics.jsonl`` and plots are git-ignored. When it finishes
(``test_metrics.json``), ``checkpoint.h5`` is deleted and ``best.h5`` kept (``Run.compact``; runs finished
before 2026-11-30 11:10 UTC lost their ``best.h5`` to an earlier rule). Committing
the folder at any time and starting the sweep again in a fresh checkout skips finished runs and
resumes unfinished ones from their checkpoints (``sweep.run_one``), bit for bit, in priority order.
The datasets and the descriptor cache are rebuilt in ``~/.cache/alw_ref`` (same paths, same bytes).

Two sweeps may run side by side (e.g. one per priority, or both on the same list): a sweep claims a
run folder while it trains there (``sweep.SWEEP_LOCK``, an ``flock`` the kernel drops when the process
dies), and one that reaches a claimed run skips it ("left to another sweep", not an error).

Memory: the descriptor derivatives (MoTe2: 5.3 GiB) are read memory-mapped from the shared cache, so
two workers share one copy in the page cache (peak RSS per worker in REPORT.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import os
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from alw_ref.atomic import write_text
from alw_ref.runfiles import RunLockedError
from paper_figures import configs as catalogue
from paper_figures import sweep

RESULTS = sweep.ROOT / "paper_figures" / "results" / "converged"
RUNS = RESULTS / "runs"
QUICK_RESULTS = sweep.QUICK_OUT / "converged"
PATIENCE = 200
MIN_IMPROVEMENT = 0.001
#: "No cap": the stopping criterion ends every run long before this.
EPOCHS = 1_000_000
DATASETS = ("mote2", "mose2")
#: --quick (CI): the bundled mlearn Mo set, small network, short patience, capped epochs.
QUICK = dict(datasets=("mlearn-mo",), hidden=(8, 8), patience=3, max_epochs=6)


def run_folder(runs: Path, dataset: str, config: str, seed: int) -> Path:
    return Path(runs) / dataset / config / f"seed{seed}"


def state_of(folder: Path) -> str:
    """'finished' (test_metrics.json), 'unfinished' (checkpoint.h5 only) or 'new'."""
    if (folder / "test_metrics.json").exists():
        return "finished"
    return "unfinished" if (folder / "checkpoint.h5").exists() else "new"


def epoch_cpu(path: Path):
    """Median CPU seconds per epoch from a run's epoch_cpu.csv (consecutive epochs of one segment), or None."""
    if not path.exists():
        return None
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    steps = [float(b["cpu_s"]) - float(a["cpu_s"]) for a, b in zip(rows, rows[1:])
             if a["segment"] == b["segment"] and int(b["epoch"]) == int(a["epoch"]) + 1]
    return float(statistics.median(steps)) if steps else None


def make_run(item, info: dict, runs: Path, patience=PATIENCE, epochs=EPOCHS, hidden=None) -> sweep.Run:
    """The ``sweep.Run`` of one plan item (priority, dataset, Config, seed)."""
    _, dataset, cfg, seed = item
    # a checkpoint every epoch (a small file; an epoch of the full set takes seconds): the CPU clock and a
    # resume after a kill lose nothing
    options = dict(epochs=epochs, patience=patience, min_improvement=MIN_IMPROVEMENT, checkpoint_every=0.0)
    if hidden is not None:
        options["hidden"] = tuple(hidden)
    kwargs = sweep.train_kwargs(cfg, info, seed, **options)
    return sweep.Run(dataset, cfg.name, seed, info["path"], str(run_folder(runs, dataset, cfg.name, seed)), kwargs,
                     compact=True)


def run_safely(run: sweep.Run) -> dict:
    """``sweep.run_one`` that returns an error record instead of raising (one bad run must not stop a
    night's sweep); the traceback goes to stderr and ``<run>/error.txt``. A run another sweep is training
    (its claim is held) is skipped: a ``busy`` record, no error, nothing written."""
    try:
        return sweep.run_one(run)
    except RunLockedError:
        return dict(dataset=run.dataset, config=run.config, seed=run.seed, out=run.out, busy=True)
    except Exception as err:  # reported, not swallowed: printed, written, and counted in the exit code
        text = traceback.format_exc()
        print(f"error in {run.out}:\n{text}", file=sys.stderr, flush=True)
        Path(run.out).mkdir(parents=True, exist_ok=True)
        write_text(Path(run.out) / "error.txt", text)
        return dict(dataset=run.dataset, config=run.config, seed=run.seed, out=run.out, error=repr(err))


def execute(runs: list, workers=1, scheduler=None, log=print) -> list:
    """Run ``runs`` in order: in this process (one worker), a process pool, or a Dask cluster."""
    if scheduler is None and (workers or 1) == 1:
        results = []
        for run in runs:
            log(f"{time.strftime('%H:%M:%S', time.gmtime())} start {run.out} ({state_of(Path(run.out))})")
            results.append(run_safely(run))
            log(f"{time.strftime('%H:%M:%S', time.gmtime())} done  {run.out}: " + _outcome(results[-1]))
        return results
    return sweep.execute(runs, workers, scheduler, fn=run_safely)


def _outcome(result: dict) -> str:
    if result.get("busy"):
        return "skipped, another sweep is training it"
    return result.get("error") or f"best epoch {result['best_epoch']}"


def status_rows(runs_dir: Path, items) -> list:
    """One row per plan item: its state, epochs so far, best epoch, Σ epoch times (s), segments."""
    rows = []
    for priority, dataset, cfg, seed in items:
        folder = run_folder(runs_dir, dataset, cfg.name, seed)
        state = state_of(folder)
        epochs, train_s, best = 0, 0.0, ""
        if (folder / "metrics.csv").exists():
            with (folder / "metrics.csv").open(newline="") as f:
                rows_ = list(csv.DictReader(f))
            epochs, train_s = len(rows_), sum(float(r["time_s"]) for r in rows_)
        if state == "finished":
            best = json.loads((folder / "test_metrics.json").read_text())["best_epoch"]
        info = folder / "run_info.json"
        segments = len(json.loads(info.read_text()).get("segments", [])) if info.exists() else 0
        rows.append(dict(priority=priority, dataset=dataset, config=cfg.name, seed=seed, state=state, epochs=epochs,
                         best_epoch=best, epoch_time_sum_s=round(train_s, 1), segments=segments))
    return rows


def prepare(datasets, record=None, log=print) -> dict:
    """Convert, check and describe every dataset (all structures); cached in ~/.cache/alw_ref. With
    ``record`` (a JSON path), the counts (structures, atoms, singular dropped) and the data's fingerprint
    (the descriptor cache key: spec and every structure's geometry) are merged into it; a dataset whose
    fingerprint differs from the recorded one is an error (the committed runs were trained on other data,
    and ``train(resume=True)`` compares only the file's path)."""
    from alw_ref.data import read_dataset
    from alw_ref.errors import DataError

    known = json.loads(Path(record).read_text()) if record is not None and Path(record).exists() else {}
    infos = {}
    for name in datasets:
        t0 = time.perf_counter()
        infos[name] = sweep.prepare_dataset(name, None)
        infos[name]["fingerprint"] = sweep.warm_descriptor_cache(infos[name])
        recorded = known.get(name, {}).get("fingerprint")
        if recorded not in (None, infos[name]["fingerprint"]):
            raise DataError(f"dataset {name} ({infos[name]['path']}): fingerprint {infos[name]['fingerprint'][:16]} "
                            f"differs from {recorded[:16]} recorded in {record} by the sweep that trained the runs "
                            "there; resuming them on other data would be silently wrong. Restore the data or move "
                            "the runs folder away.")
        infos[name]["n_atoms"] = int(read_dataset(infos[name]["path"]).n_atoms.sum())
        log(f"{name}: {infos[name]['n_used']} structures, {infos[name]['n_atoms']} atoms "
            f"({infos[name]['n_singular']} singular dropped), ready in {time.perf_counter() - t0:.0f} s")
    if record is not None:
        known.update({k: {f: v[f] for f in ("n_total", "n_singular", "n_used", "n_atoms", "sources", "fingerprint")}
                      for k, v in infos.items()})
        Path(record).parent.mkdir(parents=True, exist_ok=True)
        write_text(record, json.dumps(known, indent=1))
    return infos


def measure_epoch_time(item, info: dict, epochs=3, log=print) -> dict:
    """Train the plan item ``item`` for ``epochs`` epochs in a temporary folder; epoch wall times, this
    process's CPU share over the call (the machine is shared), peak RSS; written to epoch_time.json."""
    import resource
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(item, info, Path(tmp), epochs=epochs)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        sweep.run_one(run)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        with (Path(run.out) / "metrics.csv").open(newline="") as f:
            times = [float(r["time_s"]) for r in csv.DictReader(f)]
        cpu_per_epoch = epoch_cpu(Path(run.out) / "epoch_cpu.csv")
    result = dict(measured_utc=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), dataset=item[1], config=item[2].name,
                  n_structures=info["n_used"], epochs=epochs, epoch_wall_s=times, epoch_cpu_s=cpu_per_epoch,
                  call_wall_s=round(wall, 1), call_cpu_s=round(cpu, 1), cpu_share=round(cpu / wall, 3),
                  load_average=os.getloadavg(),
                  peak_rss_gib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2))
    log(json.dumps(result))
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m paper_figures.converged", description=__doc__.splitlines()[0])
    a = p.add_argument
    a("--priorities", type=int, nargs="+", choices=(1, 2, 3, 4, 5), default=[1, 2, 3, 4, 5],
      help="issue 16's priorities to run (5 = MoSe2)")
    a("--workers", type=sweep.int_at_least(1), default=1, help="local worker processes (1: in this process)")
    a("--scheduler", default=None, help="Dask scheduler address: run the trainings on that cluster")
    a("--runs", type=Path, default=None, help=f"run folders (default {RUNS.relative_to(sweep.ROOT)})")
    a("--patience", type=sweep.int_at_least(1), default=None,
      help=f"epochs without a {100 * MIN_IMPROVEMENT:g} %% gain (default {PATIENCE})")
    a("--status", action="store_true", help="print the plan's state and exit")
    a("--time-epochs", type=sweep.int_at_least(0), default=0, metavar="N",
      help=f"measure: train the first planned run for N epochs in a temporary folder, write "
           f"{(RESULTS / 'epoch_time.json').relative_to(sweep.ROOT)}, exit")
    a("--quick", action="store_true", help=f"CI-sized: {QUICK}")
    a("--max-epochs", type=sweep.int_at_least(1), default=None,
      help="cap the epochs (tests only; the sweep has no cap)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    quick = QUICK if args.quick else {}
    datasets = quick.get("datasets", DATASETS)
    if 5 not in args.priorities:
        datasets = datasets[:1]
    items = [i for i in catalogue.plan(datasets) if i[0] in args.priorities]
    runs_dir = Path(args.runs or (QUICK_RESULTS / "runs" if args.quick else RUNS))
    if args.status:
        rows = status_rows(runs_dir, items)
        print(sweep.markdown_table(list(rows[0]), [list(r.values()) for r in rows]) if rows else "nothing planned")
        return 0
    record = runs_dir.parent / "datasets.json"
    log = lambda text: print(text, flush=True)  # noqa: E731
    if args.time_epochs:
        infos = prepare([items[0][1]], record, log)
        result = measure_epoch_time(items[0], infos[items[0][1]], args.time_epochs)
        write_text(runs_dir.parent / "epoch_time.json", json.dumps(result, indent=1))
        return 0
    patience = args.patience or quick.get("patience", PATIENCE)
    epochs = args.max_epochs or quick.get("max_epochs", EPOCHS)
    todo = [i for i in items if state_of(run_folder(runs_dir, i[1], i[2].name, i[3])) != "finished"]
    log(f"{len(items)} runs planned, {len(items) - len(todo)} finished, "
        f"{sum(state_of(run_folder(runs_dir, i[1], i[2].name, i[3])) == 'unfinished' for i in todo)} to resume; "
        f"runs in {runs_dir}")
    if args.workers == 1 and not args.scheduler:  # one dataset prepared at a time, when its first run is due
        infos, results = {}, []
        for item in todo:
            if item[1] not in infos:
                infos.update(prepare([item[1]], record, log))
            results += execute([make_run(item, infos[item[1]], runs_dir, patience, epochs, quick.get("hidden"))],
                               log=log)
    else:
        infos = prepare(dict.fromkeys(i[1] for i in todo), record, log)
        results = execute([make_run(i, infos[i[1]], runs_dir, patience, epochs, quick.get("hidden")) for i in todo],
                          args.workers, args.scheduler, log)
    errors = [r for r in results if "error" in r]
    busy = sum(bool(r.get("busy")) for r in results)
    log(f"{len(results) - len(errors) - busy} runs finished, {busy} left to another sweep, {len(errors)} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.path.insert(0, str(sweep.ROOT))
    from paper_figures import converged as _converged  # the importable module, so workers can unpickle

    sys.exit(_converged.main())
