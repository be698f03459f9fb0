"""``python -m alw_ref.evaluate model.h5 [dataset.h5]``: RMSE/MAE table and parity plots of a model.

Prints RMSE and MAE of energy (meV/atom), forces (meV/Å) and stress (GPa, MPa) over the chosen split
(or all structures) and writes ``parity.png`` (and ``metrics.json``) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .data import example_dataset_path, read_dataset, split_indices
from .describe import describe_dataset
from .errors import ALWError
from .metrics import evaluate, format_table
from .potential import load_model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m alw_ref.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help="model file (best.h5 of a training run)")
    p.add_argument("dataset", nargs="?", default=None, help="dataset.h5 (default: the bundled example)")
    p.add_argument("--split", default="all", choices=("all", "train", "val", "test"),
                   help="which structures: all, or one part of the split given by --seed and --fractions")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (as in training)")
    p.add_argument("--fractions", default="0.7,0.2,0.1", help="train,val,test fractions (as in training)")
    p.add_argument("--out", default="alw_eval", help="folder for parity.png and metrics.json")
    p.add_argument("--cache-dir", default="", help="descriptor cache folder ('' = none)")
    p.add_argument("--no-plots", dest="plots", action="store_false", help="do not write parity.png")
    args = p.parse_args(argv)
    try:
        model = load_model(args.model)
        data = read_dataset(args.dataset or example_dataset_path())
        fractions = tuple(float(x) for x in args.fractions.split(","))
        parts = dict(zip(("train", "val", "test"), split_indices(len(data), fractions, args.seed)))
        idx = np.arange(len(data)) if args.split == "all" else parts[args.split]
        desc = describe_dataset(data, model.spec, cache_dir=args.cache_dir or None)
        ev = evaluate(model, data, desc, idx, model.spec.species_index(data.numbers))
    except (ALWError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_table({args.split: ev}))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "metrics.json") as tmp:
        Path(tmp).write_text(json.dumps({"split": args.split, "units": {
            "energy": "meV/atom", "forces": "meV/Å", "stress": "GPa (and MPa where named)"}, **ev.metrics}, indent=1))
    if args.plots:
        from .plots import plot_parity

        plot_parity(ev, out / "parity.png", title=f"{args.model}: {args.split}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
