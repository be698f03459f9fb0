"""The paper's Table 1: six models with fixed loss weights (w_E, w_F, w_S), train and test RMSE.

``python -m paper_figures.table1_fixed_weights [--quick] [--dataset mote2 mose2] ...`` (options:
``paper_figures.sweep``) writes ``table1_fixed_weights.csv``, ``.png`` and ``.md`` to ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from paper_figures import sweep

NAME = "table1_fixed_weights"
#: The paper's models 1-6 (Table 1), in its order.
FIXED_WEIGHTS = ((1.0, 0.0, 0.0), (0.9, 0.1, 0.0), (0.9, 0.05, 0.05), (0.05, 0.9, 0.05), (0.05, 0.05, 0.9),
                 (1 / 3, 1 / 3, 1 / 3))


def config_name(weights) -> str:
    return "fixed-equal" if weights[0] == 1 / 3 else "fixed-" + "-".join(f"{w:g}" for w in weights)


def configs(args=None) -> list:
    return [sweep.Config(config_name(w), dict(weighting="fixed", weights=w)) for w in FIXED_WEIGHTS]


def label(row) -> str:
    return f"({float(row['w_energy']):.2g}, {float(row['w_forces']):.2g}, {float(row['w_stress']):.2g})"


def finish(args, results, cfgs) -> None:
    sweep.write_summary(args, results, cfgs, NAME, label, "Table 1 — fixed loss weights",
                        "Fixed loss weights (w_E, w_F, w_S): test RMSE")


def main(argv=None) -> int:
    return sweep.script_main(argv, NAME, __doc__.splitlines()[0], configs, finish)


if __name__ == "__main__":
    sys.exit(main())
