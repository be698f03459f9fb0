"""The paper's Fig. 2: test RMSE per component, the six fixed-weight models beside SoftAdapt (β = 1).

Reuses the runs of ``table1_fixed_weights`` and ``table2_softadapt`` (same folders). Writes
``fig2_comparison.csv`` (one row per dataset, model and component, with the ratio to the best fixed
model of that component), ``.png`` and ``.md`` to ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from alw_ref.atomic import atomic_write, write_text
from paper_figures import configs as cfgs
from paper_figures import sweep, table1_fixed_weights

NAME = "fig2_comparison"


def configs(args=None) -> list:
    return cfgs.fig2()


def label(row) -> str:
    return "SoftAdapt β=1" if row["weighting"] == "softadapt" else "fixed " + table1_fixed_weights.label(row)


def long_rows(rows: list, args) -> list:
    """One row per (dataset, model, component): test RMSE mean/std and ratio to the best fixed model."""
    out = []
    for name in args.dataset:
        rs = [r for r in rows if r["dataset"] == name]
        for comp in sweep.COMPONENTS:
            best_fixed = min(r[sweep.col(comp) + "_mean"] for r in rs if r["weighting"] == "fixed")
            for r in rs:
                out.append(dict(dataset=name, model=label(r), config=r["config"], component=comp,
                                unit=sweep.UNITS[comp], test_rmse_mean=r[sweep.col(comp) + "_mean"],
                                test_rmse_std=r[sweep.col(comp) + "_std"],
                                ratio_to_best_fixed=r[sweep.col(comp) + "_mean"] / best_fixed,
                                **sweep.settings_columns(args)))
    return out


def figure(rows: list, path: Path) -> None:
    """Grouped bars: per component, one bar per model (SoftAdapt last, hatched), per dataset a row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(len(datasets), 3, figsize=(13, 3.6 * len(datasets)), squeeze=False)
    for i, name in enumerate(datasets):
        for j, comp in enumerate(sweep.COMPONENTS):
            rs = [r for r in rows if r["dataset"] == name and r["component"] == comp]
            x = np.arange(len(rs))
            ax = axes[i, j]
            bars = ax.bar(x, [r["test_rmse_mean"] for r in rs], yerr=np.nan_to_num([r["test_rmse_std"] for r in rs]),
                          color=[f"C{k}" for k in range(len(rs))], capsize=3)
            for bar, r in zip(bars, rs):
                if r["model"].startswith("SoftAdapt"):
                    bar.set_hatch("//")
                    bar.set_edgecolor("k")
            ax.set_yscale("log")
            ax.set_xticks(x, [r["model"] for r in rs], rotation=60, ha="right", fontsize=7)
            ax.set_title(f"{name}: test {comp} RMSE", fontsize=9)
            ax.set_ylabel(sweep.UNITS[comp])
    fig.suptitle("Fixed weights (w_E, w_F, w_S) vs SoftAdapt β = 1 (paper Fig. 2)", fontsize=10)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def finish(args, results, run_configs) -> None:
    rows = long_rows(sweep.summarize(results, run_configs, args), args)
    sweep.write_csv(rows, args.out / f"{NAME}.csv")
    figure(rows, args.out / f"{NAME}.png")
    header = ["dataset", "model"] + [f"test {c[0].upper()} ({sweep.UNITS[c]}) [× best fixed]"
                                     for c in sweep.COMPONENTS]
    body = []
    for name in args.dataset:
        for model in dict.fromkeys(r["model"] for r in rows if r["dataset"] == name):
            cells = {r["component"]: r for r in rows if r["dataset"] == name and r["model"] == model}
            body.append([name, model] + [f"{sweep.fmt(cells[c]['test_rmse_mean'], cells[c]['test_rmse_std'])} "
                                         f"[{cells[c]['ratio_to_best_fixed']:.2f}]" for c in sweep.COMPONENTS])
    text = ("## Fig. 2 — fixed weights vs SoftAdapt\n\n" + sweep.markdown_table(header, body)
            + "\n[×] = test RMSE divided by the best fixed-weight model's for that component (1.00 = as good as "
            "the best fixed model).\n\n" + sweep.caps_note(args) + f"\n\n![Fig. 2]({NAME}.png)\n")
    write_text((args.out / f"{NAME}.md"), text)


def main(argv=None) -> int:
    return sweep.script_main(argv, NAME, __doc__.splitlines()[0], configs, finish)


if __name__ == "__main__":
    sys.exit(main())
