"""Tests of alw_ref/plots.py: what a reader of the figures needs is on them (issue 13).

Each plot function returns its (closed) Figure; the tests read the axes' artists back: tick labels
inside the data range, the best-epoch marker, the learning-rate line, the running mean (recomputed
here with a plain loop), the RMSE/MAE text of each parity panel, one colour per stress component and
a density plot for dense clouds. The call signatures train.py uses stay valid.
"""

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from alw_ref import plots
from alw_ref.metrics import Evaluation, error_metrics


def rows_of_run(n=30, best=17):
    rng = np.random.default_rng(0)
    rows = []
    for e in range(1, n + 1):
        rows.append({"epoch": e, "lr": 1e-3 * 0.9 ** e, "val_loss": abs(e - best) + 1.0,
                     "w_energy": 0.3 + 0.05 * rng.standard_normal(), "w_forces": 0.4 + 0.05 * rng.standard_normal(),
                     "w_stress": 0.3 + 0.05 * rng.standard_normal(),
                     # forces 2500 → 1200 meV/Å: less than one decade, no power of ten inside (issue 13)
                     "train_energy_rmse_meV_atom": 50.0 / e, "val_energy_rmse_meV_atom": 60.0 / e,
                     "train_forces_rmse_meV_A": 2500 - 45 * e, "val_forces_rmse_meV_A": 2550 - 45 * e,
                     "train_stress_rmse_GPa": 1.0 / e, "val_stress_rmse_GPa": 1.1 / e})
    return rows


def labelled_ticks_inside(ax):
    lo, hi = ax.get_ylim()
    return [t for t in ax.get_yticks() if lo <= t <= hi]


def test_learning_curves_ticks_best_epoch_lr_and_title(tmp_path):
    rows = rows_of_run()
    fig = plots.plot_learning_curves(rows, tmp_path / "lc.png", title="model m.h5 on data.h5")
    assert (tmp_path / "lc.png").stat().st_size > 0
    main_axes, twins = fig.axes[:3], fig.axes[3:]
    force_ax = main_axes[1]
    ticks = labelled_ticks_inside(force_ax)
    assert len(ticks) >= 2, ticks  # e.g. 2000 (and 1000/5000 bounds): not a single 10^3
    assert force_ax.yaxis.get_major_formatter()(2000, 0) == "2000"
    for ax in main_axes:
        best = [ln for ln in ax.lines if ln.get_label() == "best epoch 17"]
        assert len(best) == 1 and list(best[0].get_xdata()) == [17, 17]
    assert len(twins) == 3
    for twin in twins:
        np.testing.assert_allclose(twin.lines[0].get_ydata(), [r["lr"] for r in rows], rtol=0, atol=0)
    assert fig._suptitle.get_text() == "model m.h5 on data.h5"


def test_learning_curves_old_rows_without_lr_or_val_loss(tmp_path):
    rows = [{k: v for k, v in r.items() if k not in ("lr", "val_loss")} for r in rows_of_run(5)]
    fig = plots.plot_learning_curves(rows, tmp_path / "lc.png")  # train.py's call
    assert len(fig.axes) == 3


def test_running_mean_by_hand():
    values = [1.0, 3.0, 2.0, 6.0, 4.0]
    expected = [1.0, 2.0, 2.0, 11 / 3, 4.0]  # window 3: mean of the last ≤ 3 values
    np.testing.assert_allclose(plots.running_mean(values, 3), expected, rtol=1e-15)


def test_weights_raw_trace_and_running_mean(tmp_path):
    rows = rows_of_run(100)
    fig = plots.plot_weights(rows, tmp_path / "w.png", title="softadapt β = 1")  # train.py's call
    ax = fig.axes[0]
    means = [ln for ln in ax.lines if "running mean of 5 epochs" in ln.get_label()]
    assert len(means) == 3 and len(ax.lines) == 6  # three raw traces under three running means
    raw = [r["w_forces"] for r in rows]
    by_hand = [sum(raw[max(0, k - 4):k + 1]) / len(raw[max(0, k - 4):k + 1]) for k in range(len(raw))]
    forces_mean = [ln for ln in means if "w_F" in ln.get_label()][0]
    np.testing.assert_allclose(forces_mean.get_ydata(), by_hand, rtol=1e-12)
    assert ax.get_title() == "softadapt β = 1"


def evaluation(n_structures=12, atoms_per=4, seed=0):
    rng = np.random.default_rng(seed)
    e_ref = rng.normal(-10, 0.1, n_structures)
    f_ref = rng.normal(0, 1, (n_structures * atoms_per, 3))
    s_ref = rng.normal(0, 2, (n_structures, 6))
    e_pred, f_pred, s_pred = e_ref + 0.004, f_ref + rng.normal(0, 0.05, f_ref.shape), s_ref + 0.1
    return Evaluation(e_pred, e_ref, f_pred, f_ref, s_pred, s_ref,
                      error_metrics(e_pred - e_ref, f_pred - f_ref, s_pred - s_ref))


def test_parity_panels_carry_errors_and_coloured_stress(tmp_path):
    ev = evaluation()
    fig = plots.plot_parity(ev, tmp_path / "p.png", title="m.h5 on data.h5 (test)")
    texts = [" ".join(t.get_text() for t in ax.texts) for ax in fig.axes]
    assert "RMSE 4 meV/atom" in texts[0] and "MAE 4 meV/atom" in texts[0]  # +4 meV/atom everywhere
    assert f"RMSE {ev.metrics['forces_rmse']:.4g} meV/Å" in texts[1] and "n = 144" in texts[1]
    assert "RMSE 0.1 GPa" in texts[2] and "MAE 0.1 GPa" in texts[2]
    labels = [c.get_label() for c in fig.axes[2].collections]
    assert labels == ["xx", "yy", "zz", "yz", "xz", "xy"]
    colours = {tuple(np.round(c.get_facecolor()[0][:3], 3)) for c in fig.axes[2].collections}
    assert len(colours) == 6
    np.testing.assert_array_equal(fig.axes[2].collections[3].get_offsets()[:, 0], ev.stress_ref[:, 3])
    assert fig._suptitle.get_text() == "m.h5 on data.h5 (test)"


def test_dense_parity_cloud_is_a_density(tmp_path):
    ev = evaluation()
    fig = plots.plot_parity(ev, tmp_path / "p.png", hexbin_above=50)
    # 12 energies stay points; 144 force components and 72 stress components become hexagon bins
    assert not any(isinstance(c, PolyCollection) for c in fig.axes[0].collections)
    for ax in fig.axes[1:3]:
        assert any(isinstance(c, PolyCollection) for c in ax.collections)


@pytest.mark.parametrize("values, decades", [([1200, 2500], "<1"), ([0.5, 400.0], "3")])
def test_readable_log_axis_labels_plain_numbers(values, decades):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], values)
    plots.readable_log_axis(ax, values)
    fig.canvas.draw()
    assert len(labelled_ticks_inside(ax)) >= 2, decades
    assert all("10^" not in t.get_text() and "mathdefault" not in t.get_text() for t in ax.get_yticklabels())
    plt.close(fig)
