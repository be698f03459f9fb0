"""The paper's Fig. 3: SoftAdapt (β = 1) weights over the epochs from three very different starts.

Starts (w_E, w_F, w_S) = (0.9, 0.05, 0.05), (0.05, 0.9, 0.05), (0.05, 0.05, 0.9), plus Table 2's ⅓
start (reused). The weights come from each run's ``metrics.csv`` (the weights applied in every
epoch). Writes ``fig3_weight_trajectories.csv`` (mean ± std over seeds per start and epoch),
``.png`` (faint: seed-mean weight per epoch; bold: its moving average) and ``.md`` (final weights
per start and their means over the last 20 % of the epochs) to ``--out``.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from alw_ref.atomic import atomic_write, write_text
from paper_figures import configs as cfgs
from paper_figures import sweep

NAME = "fig3_weight_trajectories"
STARTS = cfgs.FIG3_STARTS
WEIGHT_COLUMNS = tuple(f"w_{c}" for c in sweep.COMPONENTS)


def start_label(weights) -> str:
    return "(" + ", ".join(f"{w:.2g}" for w in weights) + ")"


def configs(args=None) -> list:
    return cfgs.fig3()


def trajectory(out: str) -> np.ndarray:
    """(epochs, 3) weights applied in every epoch of one run (its metrics.csv)."""
    with (Path(out) / "metrics.csv").open(newline="") as f:
        return np.array([[float(row[c]) for c in WEIGHT_COLUMNS] for row in csv.DictReader(f)])


def trajectory_rows(results: list, configs: list, args) -> list:
    rows = []
    for name in args.dataset:
        for cfg in configs:
            w = np.stack([trajectory(r["out"]) for r in results if r["dataset"] == name and r["config"] == cfg.name])
            mean, std = w.mean(axis=0), w.std(axis=0, ddof=1) if len(w) > 1 else np.full(w.shape[1:], np.nan)
            for e in range(w.shape[1]):
                rows.append(dict(dataset=name, start=start_label(cfg.options["weights"]), config=cfg.name, epoch=e + 1,
                                 **{f"{c}_mean": mean[e, k] for k, c in enumerate(WEIGHT_COLUMNS)},
                                 **{f"{c}_std": std[e, k] for k, c in enumerate(WEIGHT_COLUMNS)},
                                 n_runs=len(w), **sweep.settings_columns(args)))
    return rows


def figure(rows: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    starts = list(dict.fromkeys(r["start"] for r in rows))
    fig, axes = plt.subplots(len(datasets), len(starts), figsize=(3.6 * len(starts), 3.2 * len(datasets)),
                             squeeze=False, sharey=True)
    for i, name in enumerate(datasets):
        for j, start in enumerate(starts):
            rs = [r for r in rows if r["dataset"] == name and r["start"] == start]
            ep = np.array([r["epoch"] for r in rs])
            ax = axes[i, j]
            window = max(1, len(rs) // 15)
            for k, c in enumerate(WEIGHT_COLUMNS):
                m = np.array([r[f"{c}_mean"] for r in rs])
                ax.plot(ep, m, color=f"C{k}", alpha=0.3, lw=0.7)
                smooth = np.convolve(m, np.ones(window) / window, mode="valid")
                ax.plot(ep[window - 1:], smooth, color=f"C{k}", lw=1.8, label=f"{c} ({window}-epoch mean)")
            ax.set_title(f"{name}: start {start}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.set_ylim(0, 1)
        axes[i, 0].set_ylabel("weight (mean over seeds)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("SoftAdapt β = 1 weights from different initial weights (paper Fig. 3)", fontsize=10)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def finish(args, results, configs) -> None:
    rows = trajectory_rows(results, configs, args)
    sweep.write_csv(rows, args.out / f"{NAME}.csv")
    figure(rows, args.out / f"{NAME}.png")
    header = ["dataset", "start (w_E, w_F, w_S)"] + [f"final {c}" for c in WEIGHT_COLUMNS] + \
             [f"mean {c} over the last 20 % of epochs" for c in WEIGHT_COLUMNS]
    body = []
    for name in args.dataset:
        for start in dict.fromkeys(r["start"] for r in rows):
            rs = [r for r in rows if r["dataset"] == name and r["start"] == start]
            tail = rs[-max(1, len(rs) // 5):]
            body.append([name, start] + [sweep.fmt(rs[-1][f"{c}_mean"], rs[-1][f"{c}_std"]) for c in WEIGHT_COLUMNS]
                        + [f"{np.mean([r[f'{c}_mean'] for r in tail]):.3f}" for c in WEIGHT_COLUMNS])
    text = ("## Fig. 3 — SoftAdapt weight trajectories\n\n" + sweep.markdown_table(header, body)
            + "\n" + sweep.caps_note(args) + f"\n\n![Fig. 3]({NAME}.png)\n")
    write_text((args.out / f"{NAME}.md"), text)


def main(argv=None) -> int:
    return sweep.script_main(argv, NAME, __doc__.splitlines()[0], configs, finish)


if __name__ == "__main__":
    sys.exit(main())
