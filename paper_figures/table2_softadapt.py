"""The paper's Table 2: SoftAdapt (L2-normalised slopes) with β = 0.01, 0.1, 1, 2 from weights ⅓ each.

``python -m paper_figures.table2_softadapt [--quick] [--dataset mote2 mose2] ...`` (options:
``paper_figures.sweep``) writes ``table2_softadapt.csv``, ``.png`` and ``.md`` to ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from paper_figures import configs as cfgs
from paper_figures import sweep

NAME = "table2_softadapt"


def configs(args=None) -> list:
    return cfgs.table2()


def label(row) -> str:
    return f"β = {float(row['beta']):g}"


def finish(args, results, run_configs) -> None:
    sweep.write_summary(args, results, run_configs, NAME, label, "Table 2 — SoftAdapt",
                        "SoftAdapt (l2), initial weights ⅓: test RMSE")


def main(argv=None) -> int:
    return sweep.script_main(argv, NAME, __doc__.splitlines()[0], configs, finish)


if __name__ == "__main__":
    sys.exit(main())
