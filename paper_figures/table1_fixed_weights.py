"""The paper's Table 1: six models with fixed loss weights (w_E, w_F, w_S), train and test RMSE.

``python -m paper_figures.table1_fixed_weights [--quick] [--dataset mote2 mose2] ...`` (options:
``paper_figures.sweep``) writes ``table1_fixed_weights.csv``, ``.png`` and ``.md`` to ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from paper_figures import configs as cfgs
from paper_figures import sweep

NAME = "table1_fixed_weights"
FIXED_WEIGHTS = cfgs.FIXED_WEIGHTS


def configs(args=None) -> list:
    return cfgs.table1()


def label(row) -> str:
    return f"({float(row['w_energy']):.2g}, {float(row['w_forces']):.2g}, {float(row['w_stress']):.2g})"


def finish(args, results, run_configs) -> None:
    sweep.write_summary(args, results, run_configs, NAME, label, "Table 1 — fixed loss weights",
                        "Fixed loss weights (w_E, w_F, w_S): test RMSE")


def main(argv=None) -> int:
    return sweep.script_main(argv, NAME, __doc__.splitlines()[0], configs, finish)


if __name__ == "__main__":
    sys.exit(main())
