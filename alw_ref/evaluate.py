"""``python -m alw_ref.evaluate RUN_DIR`` (or ``MODEL.h5 [DATASET.h5]``): error tables and parity plots.

Prints RMSE and MAE of energy (meV/atom), forces (meV/Å) and stress (GPa, MPa) over the chosen
structures, overall and per ``config_type``, and writes ``metrics.json`` and ``parity.png`` into ``--out``.

What is evaluated:
  - ``RUN_DIR`` (a folder written by ``python -m alw_ref.train``): the model ``RUN_DIR/best.h5`` and
    the run's data and split from ``RUN_DIR/settings.json`` (keys ``dataset``, ``split``, ``seed``,
    ``cache_dir``; ``test_file`` / ``valid_file`` when the run had separate test/validation files).
    Default ``--part test``: the run's ``test_file`` if set, else the test part of the run's split.
  - ``MODEL.h5 [DATASET.h5]``: that model on that dataset (default: the bundled example), default
    ``--part all``; ``--split`` and ``--seed`` (as in ``train``) choose a part's structures.
  - ``--models A.h5 B.h5 …``: a committee. The table is that of the committee mean; the spread of the
    models (standard deviation over models, ddof 0) is reported per structure in ``committee.csv``
    and ``metrics.json``: energy in meV/atom, the largest per-atom force deviation
    max_i √(⟨|F_i − ⟨F_i⟩|²⟩) in meV/Å (DeePMD's ``max_devi_f``), the largest stress component's in GPa.
    A positional ``.h5`` file is then the dataset.
Options given on the command line override the run's settings.
"""

from __future__ import annotations

if __name__ == "__main__":   # before the imports below (alw_ref/cli.py)
    from alw_ref.cli import prepare_command

    prepare_command("evaluate")

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from .atomic import atomic_write, write_text
from .data import FORMAT_NAME, example_dataset_path, read_dataset, split_indices
from .cli import interrupts_raise
from .errors import ALWError, DataError
from .metrics import Evaluation, committee_spread, error_metrics, evaluate, format_table, metrics_by_group
from .potential import load_model
from .trainsetup import SEED_RANGE, valid_seed

PARTS = ("all", "train", "val", "test")
#: settings.json key of a run's separate file for a part (``train --valid-file/--test-file``).
PART_FILES = {"val": "valid_file", "test": "test_file"}
DEFAULT_CACHE = Path.home() / ".cache" / "alw_ref"  # the same folder as train's --cache-dir default
UNITS = {"energy": "meV/atom", "forces": "meV/Å", "stress": "GPa (and MPa where named)"}


def _fractions(text: str):
    """--split: "a,b,c" train,val,test fractions (as in train); a part name is read as --part NAME."""
    if text in PARTS:
        return text
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"--split: expected three comma-separated fractions train,val,test "
                                         f"as in train (e.g. 0.7,0.2,0.1), got {text!r}; choose the "
                                         f"structures with --part {{{','.join(PARTS)}}}")
    return values


def _seed(text: str) -> int:
    """--seed: an integer in [0, 2⁶³), the range train accepts (``trainsetup.valid_seed``)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not valid_seed(value):
        raise argparse.ArgumentTypeError(f"expected {SEED_RANGE} as in train, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m alw_ref.evaluate", description=__doc__.split("\n\n")[0].replace("``", ""),
                                epilog=__doc__.split("\n\n", 2)[2].replace("``", ""), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="RUN_DIR | MODEL.h5 [DATASET.h5]",
                   help="a training run folder, or a model file and optionally a dataset file (default: the "
                        "bundled mlearn Mo example); with --models, a .h5 file here is the dataset")
    p.add_argument("--models", nargs="+", metavar="MODEL.h5", default=None,
                   help="several model files: evaluate their mean and report their spread per structure")
    p.add_argument("--part", choices=PARTS, default=None,
                   help="which structures: all, or one part of the split (default: test for a run folder, "
                        "all otherwise)")
    p.add_argument("--split", type=_fractions, default=None, metavar="TRAIN,VAL,TEST",
                   help="fractions of the split, as in train (default: the run's, else 0.7,0.2,0.1)")
    p.add_argument("--seed", type=_seed, default=None, help="seed of the split, as in train (default: the run's, "
                                                           "else 0)")
    p.add_argument("--cache-dir", default=None,
                   help=f"descriptor cache folder, '' = none (default: the run's, else {DEFAULT_CACHE})")
    p.add_argument("--out", default="alw_eval", help="folder for metrics.json and the plots (default: alw_eval)")
    p.add_argument("--no-plots", dest="plots", action="store_false", help="do not write parity.png")
    return p


def _run_settings(run: Path) -> dict:
    path = run / "settings.json"
    if not path.is_file():
        raise DataError(f"{run}: not a training run folder (no settings.json)")
    try:
        settings = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read it ({err})") from None
    if not isinstance(settings, dict):
        raise DataError(f"{path}: not a settings object")
    return settings


def _run_path(value, run: Path, key: str) -> Path:
    """A file named in settings.json: as written (relative to where train ran), else beside the run."""
    path = Path(value)
    if path.exists() or path.is_absolute():
        return path
    if (run / path).exists():
        return run / path
    raise DataError(f"{run / 'settings.json'}: {key} {value!r} not found (from here or from {run})")


def _is_dataset_file(path: Path) -> bool:
    """True for an alw_ref dataset.h5 (its ``format`` attribute), False for anything else."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT_NAME
    except OSError:
        return False


def resolve(args) -> dict:
    """Models, dataset file, structures and labels to evaluate, from the arguments and the run's settings."""
    if args.split in PARTS:  # an old command line: --split test
        args.part, args.split = args.split, None
    paths = [Path(p) for p in args.paths]
    runs = [p for p in paths if p.is_dir()]
    files = [p for p in paths if not p.is_dir()]
    if len(runs) > 1 or len(paths) > 2 or (runs and len(files) > 1):
        raise DataError(f"expected RUN_DIR or MODEL.h5 [DATASET.h5], got {' '.join(args.paths)}")
    settings = _run_settings(runs[0]) if runs else {}
    if args.models:
        models = [Path(m) for m in args.models]
        # `--models a.h5 b.h5 data.h5`: argparse gives the dataset to --models; take it back by its format
        data_files = files + [m for m in models if _is_dataset_file(m)]
        models = [m for m in models if not _is_dataset_file(m)]
    elif runs:
        models, data_files = [runs[0] / "best.h5"], files
    elif files:
        models, data_files = files[:1], files[1:]
    else:
        raise DataError("give a run folder, a model file, or --models")
    if len(data_files) > 1:
        raise DataError(f"one dataset file expected, got {' '.join(map(str, data_files))}")
    part = args.part or ("test" if runs else "all")
    split = tuple(args.split or settings.get("split") or (0.7, 0.2, 0.1))
    seed = args.seed if args.seed is not None else int(settings.get("seed", 0))
    cache = args.cache_dir if args.cache_dir is not None else settings.get("cache_dir", str(DEFAULT_CACHE))
    if data_files:
        dataset, source = data_files[0], "command line"
    elif runs and settings.get(PART_FILES.get(part, ""), None):
        key = PART_FILES[part]
        dataset, source = _run_path(settings[key], runs[0], key), f"the run's {key}"
        part = "all"  # the whole separate file is the part
    elif runs and settings.get("dataset"):
        dataset, source = _run_path(settings["dataset"], runs[0], "dataset"), "the run's dataset"
    else:
        dataset, source = example_dataset_path(), "the bundled example"
    return dict(models=models, dataset=Path(dataset), source=source, part=part, split=split, seed=seed,
                cache_dir=cache or None, label=args.part or part)


def select(n_structures: int, part: str, split, seed: int) -> np.ndarray:
    """Indices of ``part`` of a dataset of ``n_structures`` (``data.split_indices``); DataError if empty."""
    if part == "all":
        idx = np.arange(n_structures)
    else:
        try:
            parts = dict(zip(("train", "val", "test"), split_indices(n_structures, split, seed)))
        except DataError as err:
            raise DataError(f"--split: {err}") from None
        idx = parts[part]
    if len(idx) == 0:
        raise DataError(f"the {part} part of {n_structures} structures with --split "
                        f"{','.join(f'{f:g}' for f in split)} and --seed {seed} is empty: nothing to evaluate")
    return idx


def _nan_to_none(obj):
    """JSON has no NaN: metrics over an empty set (e.g. no stress labels) are written as null."""
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def evaluate_models(models, data, idx, cache_dir):
    """(Evaluation of the mean prediction, per-structure committee spread dict or None) of ``models``."""
    from .describe import describe_dataset

    evals = []
    for model in models:
        desc = describe_dataset(data, model.spec, cache_dir=cache_dir)
        evals.append(evaluate(model, data, desc, idx, model.spec.species_index(data.numbers)))
    if len(evals) == 1:
        return evals[0], None
    first = evals[0]
    spread = committee_spread(np.stack([e.energy_pred for e in evals]), np.stack([e.forces_pred for e in evals]),
                              np.stack([e.stress_pred for e in evals]), first.atom_row_s, first.stress_row_s,
                              len(idx))
    mean = {k: np.mean([getattr(e, k) for e in evals], axis=0) for k in ("energy_pred", "forces_pred", "stress_pred")}
    metrics = error_metrics(mean["energy_pred"] - first.energy_ref, mean["forces_pred"] - first.forces_ref,
                            mean["stress_pred"] - first.stress_ref)
    ev = Evaluation(mean["energy_pred"], first.energy_ref, mean["forces_pred"], first.forces_ref,
                    mean["stress_pred"], first.stress_ref, metrics, first.structure_s, first.atom_row_s,
                    first.stress_row_s)
    return ev, spread


def _spread_rows(spread, data, idx) -> list:
    return [{"index": int(s), "name": str(data.name[s]), "config_type": str(data.config_type[s]),
             "n_atoms": int(data.n_atoms[s]), "energy_std_meV_atom": float(spread["energy"][k]),
             "forces_max_devi_meV_A": float(spread["forces"][k]), "stress_max_std_GPa": float(spread["stress"][k])}
            for k, s in enumerate(idx)]


def _write_committee_csv(path, rows) -> None:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def main(argv=None) -> int:
    interrupts_raise()
    args = build_parser().parse_args(argv)
    try:
        job = resolve(args)
        models = [load_model(m) for m in job["models"]]
        data = read_dataset(job["dataset"])
        idx = select(len(data), job["part"], job["split"], job["seed"])
        ev, spread = evaluate_models(models, data, idx, job["cache_dir"])
    except (ALWError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    model_name = job["models"][0] if len(models) == 1 else f"committee of {len(models)} models"
    data_name = f"{job['dataset'].name} ({job['label']}, {len(idx)} structures)"
    groups = metrics_by_group(ev, data.config_type)
    print(f"model: {model_name}\ndata: {job['dataset']} from {job['source']}, {job['label']}: {len(idx)} structures")
    print(format_table({job["label"]: ev}))
    print(format_table(groups, label="config_type"))
    out = Path(args.out)
    report = {"model": [str(m) for m in job["models"]], "dataset": str(job["dataset"]), "part": job["label"],
              "split": list(job["split"]), "seed": job["seed"], "units": UNITS, **ev.metrics,
              "by_config_type": groups}
    if spread is not None:
        rows = _spread_rows(spread, data, idx)
        report["committee"] = {"units": {"energy_std": "meV/atom", "forces_max_devi": "meV/Å",
                                         "stress_max_std": "GPa"}, "structures": rows}
        _write_committee_csv(out / "committee.csv", rows)
        worst = sorted(rows, key=lambda r: -r["forces_max_devi_meV_A"])[:5]
        print("largest committee spread (max force deviation, meV/Å): "
              + ", ".join(f"{r['name']} {r['forces_max_devi_meV_A']:.1f}" for r in worst))
    with atomic_write(out / "metrics.json") as tmp:
        Path(tmp).write_text(json.dumps(_nan_to_none(report), indent=1, allow_nan=False))
    if args.plots:
        from .plots import plot_parity

        plot_parity(ev, out / "parity.png", title=f"{model_name} on {data_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
