"""PNG plots of a training run: learning curves, loss weights over epochs (paper Fig. 3), parity plots.

Uses matplotlib's non-interactive Agg backend (no screen needed). Units are on every axis.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .atomic import atomic_write  # noqa: E402
from .metrics import EPOCH_RMSE_COLUMNS  # noqa: E402

_COMPONENTS = (("energy", "energy RMSE (meV/atom)"), ("forces", "force RMSE (meV/Å)"),
               ("stress", "stress RMSE (GPa)"))


def _save(fig, path) -> None:
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def plot_learning_curves(rows: list, path) -> None:
    """Train and validation RMSE of E, F, S per epoch (log scale), from the metrics rows."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    epochs = [r["epoch"] for r in rows]
    for ax, (key, label) in zip(axes, _COMPONENTS):
        for split, style in (("train", "-"), ("val", "--")):
            y = np.array([r[f"{split}_{EPOCH_RMSE_COLUMNS[key]}"] for r in rows], float)
            if np.isfinite(y).any() and (y[np.isfinite(y)] > 0).any():
                ax.plot(epochs, y, style, label=split)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
    fig.tight_layout()
    _save(fig, path)


def plot_weights(rows: list, path, title: str = "") -> None:
    """Loss weights w_E, w_F, w_S applied in each epoch (the paper's Fig. 3)."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    epochs = [r["epoch"] for r in rows]
    for key, name in (("energy", "$w_E$"), ("forces", "$w_F$"), ("stress", "$w_S$")):
        ax.plot(epochs, [r[f"w_{key}"] for r in rows], label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss weight (dimensionless)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    _save(fig, path)


def plot_parity(evaluation, path, title: str = "") -> None:
    """Predicted vs reference energy (eV/atom), force components (eV/Å), stress components (GPa)."""
    ev = evaluation
    panels = (("energy (eV/atom)", ev.energy_ref, ev.energy_pred),
              ("force component (eV/Å)", ev.forces_ref.ravel(), ev.forces_pred.ravel()),
              ("stress component (GPa)", ev.stress_ref.ravel(), ev.stress_pred.ravel()))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, (label, ref, pred) in zip(axes, panels):
        if ref.size:
            ax.scatter(ref, pred, s=4, alpha=0.5)
            lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
            ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
        ax.set_xlabel(f"reference {label}")
        ax.set_ylabel(f"predicted {label}")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)
