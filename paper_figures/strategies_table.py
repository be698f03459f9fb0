"""Beyond the paper: every weighting strategy of the trainer in one table, same settings and seeds.

Rows: fixed ⅓ (Table 1 model 6), SoftAdapt β = 1 with the paper's L2-normalised slopes (Table 2),
the other SoftAdapt slope normalisations (``original`` = raw slopes, ``normalized``, ``relative``),
loss-weighted SoftAdapt (w_k ∝ L_k exp(β ŝ_k), the paper code's option), Dynamic Weight Average
(T = 2), Kendall uncertainty weighting, and a DeePMD-style linear schedule that starts force-heavy
(0.05, 0.9, 0.05) and ends at (0.45, 0.1, 0.45) (force weight falling, energy and stress rising,
as in the paper's reference [20]). The column ``worst_ratio`` is max over E, F, S of the test RMSE
divided by the best test RMSE of that component in this table: 1 = best at everything, larger =
less balanced. Writes ``strategies_table.csv``, ``.png`` and ``.md`` to ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from alw_ref.atomic import write_text
from paper_figures import configs as cfgs
from paper_figures import sweep

NAME = "strategies_table"


def configs(args=None) -> list:
    return cfgs.strategies()


def label(row) -> str:
    w = row["weighting"]
    if w == "softadapt":
        return f"SoftAdapt {row['variant']}{' loss-weighted' if str(row['loss_weighted']) == 'True' else ''} β=1"
    if w == "linear":
        return f"linear ({row['w_energy']:g}, {row['w_forces']:g}, {row['w_stress']:g}) → ({row['limit_weights']})"
    return {"fixed": "fixed ⅓ each", "dwa": "DWA T=2", "uncertainty": "uncertainty (Kendall)"}[w]


def add_worst_ratio(rows: list) -> None:
    for name in dict.fromkeys(r["dataset"] for r in rows):
        rs = [r for r in rows if r["dataset"] == name]
        best = {c: min(r[sweep.col(c) + "_mean"] for r in rs) for c in sweep.COMPONENTS}
        for r in rs:
            r["worst_ratio"] = max(r[sweep.col(c) + "_mean"] / best[c] for c in sweep.COMPONENTS)


def finish(args, results, run_configs) -> None:
    rows = sweep.summarize(results, run_configs, args)
    add_worst_ratio(rows)
    sweep.write_csv(rows, args.out / f"{NAME}.csv")
    sweep.bar_figure(rows, label, args.out / f"{NAME}.png", "Weighting strategies: test RMSE")
    header = ["dataset", "strategy"] + [f"test {c[0].upper()} ({sweep.UNITS[c]})" for c in sweep.COMPONENTS] + \
             ["worst ratio"]
    body = [[r["dataset"], label(r)] + [sweep.fmt(r[sweep.col(c) + "_mean"], r[sweep.col(c) + "_std"])
                                        for c in sweep.COMPONENTS] + [f"{r['worst_ratio']:.2f}"] for r in rows]
    text = ("## Beyond the paper — all weighting strategies\n\n" + sweep.markdown_table(header, body)
            + "\nworst ratio = max over E, F, S of (test RMSE / best test RMSE of that component in this table); "
            "1 = best at everything.\n\n" + sweep.caps_note(args) + f"\n\n![strategies]({NAME}.png)\n")
    write_text((args.out / f"{NAME}.md"), text)


def main(argv=None) -> int:
    return sweep.script_main(argv, NAME, __doc__.splitlines()[0], configs, finish)


if __name__ == "__main__":
    sys.exit(main())
