"""PNG plots of a training run: learning curves, loss weights over epochs (paper Fig. 3), parity plots.

Uses matplotlib's non-interactive Agg backend (no screen needed). Units are on every axis; each
function returns the (closed) Figure so that tests can inspect it, and takes a ``title`` that should
name the model and the data.

- ``plot_learning_curves``: train and validation RMSE of E, F, S per epoch on log axes with labelled
  ticks at 1, 2, 5 × 10ⁿ when the range spans less than two decades; the best epoch (lowest
  ``val_loss``, or ``best_epoch``) as a dashed vertical line; the learning rate (rows' ``lr``) on a
  second y axis.
- ``plot_weights``: each raw per-epoch weight as a thin line and its trailing running mean over
  ``window`` epochs (default: a twentieth of the run) as a bold one.
- ``plot_parity``: predicted vs reference E, F components and the six stress components (each its own
  colour), with RMSE and MAE in each panel (meV/atom, meV/Å, GPa) and a hexagonal-bin density instead
  of points when a panel has more than ``hexbin_above`` points.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from .atomic import atomic_write  # noqa: E402
from .metrics import EPOCH_RMSE_COLUMNS  # noqa: E402
from .units import VOIGT_ORDER  # noqa: E402

_COMPONENTS = (("energy", "energy RMSE (meV/atom)"), ("forces", "force RMSE (meV/Å)"),
               ("stress", "stress RMSE (GPa)"))
_VOIGT_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def _save(fig, path):
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return fig


def readable_log_axis(ax, values, axis: str = "y") -> None:
    """Log scale whose labels are plain numbers (``%g``), with ticks at 1, 2, 5 × 10ⁿ when ``values``
    span less than two decades (matplotlib would otherwise show one ``10^3`` tick or none)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v) & (v > 0)]
    getattr(ax, f"set_{axis}scale")("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    if v.size and v.max() / v.min() < 100.0:
        target.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        target.set_minor_formatter(NullFormatter())
    target.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))


def best_epoch_of(rows: list):
    """Epoch of the lowest ``val_loss`` in the rows (the trainer's best.h5), or None without that column."""
    scored = [r for r in rows if np.isfinite(r.get("val_loss", np.nan))]
    return min(scored, key=lambda r: r["val_loss"])["epoch"] if scored else None


def plot_learning_curves(rows: list, path, title: str = "", best_epoch=None):
    """Train and validation RMSE of E, F, S per epoch (log scale), best epoch and learning rate marked."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    epochs = [r["epoch"] for r in rows]
    best = best_epoch if best_epoch is not None else best_epoch_of(rows)
    lr = np.array([r.get("lr", np.nan) for r in rows], float)
    for k, (ax, (key, label)) in enumerate(zip(axes, _COMPONENTS)):
        shown = []
        for split, style in (("train", "-"), ("val", "--")):
            y = np.array([r.get(f"{split}_{EPOCH_RMSE_COLUMNS[key]}", np.nan) for r in rows], float)
            if np.isfinite(y).any() and (y[np.isfinite(y)] > 0).any():
                ax.plot(epochs, y, style, label=split)
                shown.append(y)
        readable_log_axis(ax, np.concatenate(shown) if shown else [])
        if best is not None:
            ax.axvline(best, color="k", ls=":", lw=1, label=f"best epoch {best}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, which="major", alpha=0.3)
        if np.isfinite(lr).any():
            twin = ax.twinx()
            twin.plot(epochs, lr, color="0.5", lw=1, ls="-.", label="learning rate")
            twin.set_ylabel("learning rate", color="0.4")
            twin.tick_params(axis="y", colors="0.4", labelsize=8)
            if np.nanmax(lr) > np.nanmin(lr) > 0:
                readable_log_axis(twin, lr)
        if k == 0:  # one legend for the three panels
            handles, labels = ax.get_legend_handles_labels()
            for twin in ax.get_shared_x_axes().get_siblings(ax):
                if twin is not ax:
                    more = twin.get_legend_handles_labels()
                    handles, labels = handles + more[0], labels + more[1]
            ax.legend(handles, labels, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def running_mean(values, window: int) -> np.ndarray:
    """Trailing mean of the last ``window`` values at each position (fewer at the start)."""
    v = np.asarray(values, float)
    c = np.concatenate(([0.0], np.cumsum(v)))
    k = np.arange(1, len(v) + 1)
    start = np.maximum(k - window, 0)
    return (c[k] - c[start]) / (k - start)


def plot_weights(rows: list, path, title: str = "", window=None):
    """Loss weights w_E, w_F, w_S applied in each epoch (the paper's Fig. 3): raw and running mean."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    epochs = [r["epoch"] for r in rows]
    window = int(window) if window else max(1, len(rows) // 20)
    for (key, name), colour in zip((("energy", "$w_E$"), ("forces", "$w_F$"), ("stress", "$w_S$")),
                                   ("tab:blue", "tab:orange", "tab:green")):
        raw = [r[f"w_{key}"] for r in rows]
        if window > 1:
            ax.plot(epochs, raw, color=colour, lw=0.5, alpha=0.3)
            ax.plot(epochs, running_mean(raw, window), color=colour, lw=2,
                    label=f"{name} (running mean of {window} epochs)")
        else:
            ax.plot(epochs, raw, color=colour, lw=1.5, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss weight (dimensionless)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _errors_text(metrics: dict, key: str, unit: str, n: int) -> str:
    """RMSE and MAE of one quantity from ``Evaluation.metrics`` (report units; stress also in MPa)."""
    rmse, mae = (f"{metrics[f'{key}_{m}']:.4g} {unit}" + (f" ({metrics[f'{key}_{m}_mpa']:.4g} MPa)"
                                                            if key == "stress" else "") for m in ("rmse", "mae"))
    return f"RMSE {rmse}\nMAE {mae}\nn = {n}"


def _cloud(ax, ref, pred, hexbin_above: int, **scatter):
    if ref.size > hexbin_above:
        ax.hexbin(ref, pred, gridsize=60, mincnt=1, norm=LogNorm(), cmap="viridis")
    else:
        ax.scatter(ref, pred, s=5, alpha=0.6, **scatter)


def plot_parity(evaluation, path, title: str = "", hexbin_above: int = 5000):
    """Predicted vs reference energy (eV/atom), force components (eV/Å), stress components (GPa),
    each panel with its RMSE and MAE (meV/atom, meV/Å, GPa)."""
    ev = evaluation
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.6))
    panels = (("energy (eV/atom)", ev.energy_ref, ev.energy_pred, "energy", "meV/atom"),
              ("force component (eV/Å)", ev.forces_ref.ravel(), ev.forces_pred.ravel(), "forces", "meV/Å"),
              ("stress component (GPa)", ev.stress_ref, ev.stress_pred, "stress", "GPa"))
    for ax, (label, ref, pred, key, unit) in zip(axes, panels):
        ref, pred = np.asarray(ref), np.asarray(pred)
        if ref.size:
            if ref.ndim == 2:  # stress: one colour per Voigt component
                if ref.size > hexbin_above:
                    _cloud(ax, ref.ravel(), pred.ravel(), hexbin_above)
                else:
                    for v, (name, colour) in enumerate(zip(VOIGT_ORDER, _VOIGT_COLOURS)):
                        ax.scatter(ref[:, v], pred[:, v], s=6, alpha=0.7, color=colour, label=name)
                    ax.legend(fontsize=7, ncol=2, loc="lower right")
            else:
                _cloud(ax, ref, pred, hexbin_above)
            lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
            ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
            ax.text(0.04, 0.96, _errors_text(ev.metrics, key, unit, ref.size), transform=ax.transAxes, va="top",
                    fontsize=8, bbox=dict(boxstyle="round", fc="white", alpha=0.8))
        else:
            ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
        ax.set_xlabel(f"reference {label}")
        ax.set_ylabel(f"predicted {label}")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
