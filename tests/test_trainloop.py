"""The trainer's wiring (alw_ref/train.py, trainloop.py), recomputed from the rows and files a run leaves.

Each test runs a few epochs on 40 mlearn Mo structures (tiny network) and recomputes, independently of the
code under test: the weights of every epoch from the logged training losses and the loss scales in the model
file (SoftAdapt, linear, DWA, uncertainty), the validation loss from the logged parts, the learning-rate
column from the schedule's formula, the split from its documented rule, and the validation parts of best.h5
and final.h5 by evaluating them on the validation structures (so the parameters validated are the ones
saved: the EMA average when it is on). Tolerances: 1e-12 relative where a number is recomputed by the same
formula from logged values (JSON round-trips floats exactly), 1e-9 relative where a model is re-evaluated
(a different summation order of the same float64 sums).
"""

import json

import numpy as np
import pytest
from fd import central_difference
from trainkit import (
    COMPONENTS,
    SMALL,
    col,
    model_parts,
    rows_of,
    split_by_hand,
    write_small,
)

from alw_ref import train as train_mod
from alw_ref.loss import loss_and_gradient
from alw_ref.potential import load_model
from alw_ref.weighting import softadapt

#: A run with the trainer's own machinery switched on: unit-free terms, SoftAdapt "relative" over a
#: window of 2 epochs, averaged over 2, β = 1.5, uneven initial weights, EMA, exponential lr decay.
SOFTADAPT_RUN = dict(SMALL, weighting="softadapt", softadapt_variant="relative", slope_window=2, average_epochs=2,
                     beta=1.5, weights=(2.0, 1.0, 1.0), loss_scale="labels", ema_decay=0.9,
                     lr_schedule="exponential", lr=5e-3, min_lr=1e-4, epochs=8, seed=3)


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    return write_small(tmp_path_factory.mktemp("data") / "mo40.h5")


@pytest.fixture(scope="module")
def softadapt_run(data_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("sa") / "run"
    train_mod.train(data_path, out=out, **SOFTADAPT_RUN)
    return out


def scales_of(out):
    return np.array(load_model(out / "best.h5").meta["loss_scales"], float)


def test_split_is_70_20_10_and_the_validation_rows_are_those_structures(softadapt_run, data_path):
    tm = json.loads((softadapt_run / "test_metrics.json").read_text())
    assert (tm["train"]["n_structures"], tm["val"]["n_structures"], tm["test"]["n_structures"]) == (28, 8, 4)
    rows = rows_of(softadapt_run)
    _, val, test = split_by_hand(40, (0.7, 0.2, 0.1), SOFTADAPT_RUN["seed"])
    best = min(rows, key=lambda r: r["val_loss"])
    assert tm["best_epoch"] == best["epoch"]
    # best.h5 on the hand-split validation structures gives that row's validation parts: the saved model is
    # the validated one (with EMA: the average θ̄) and the validation set is the documented one
    np.testing.assert_allclose(model_parts(softadapt_run / "best.h5", data_path, val), col([best], "val_L_")[0],
                               rtol=1e-9)
    np.testing.assert_allclose(model_parts(softadapt_run / "final.h5", data_path, val),
                               col(rows[-1:], "val_L_")[0], rtol=1e-9)
    # the test table is the best model on the test structures (meV/atom)
    assert tm["test"]["energy_rmse"] == pytest.approx(1000 * model_parts(softadapt_run / "best.h5", data_path,
                                                                         test)[0], rel=1e-9)


def test_best_is_the_lowest_validation_loss_and_ema_is_what_is_saved(softadapt_run):
    import h5py

    rows = rows_of(softadapt_run)
    vl = [r["val_loss"] for r in rows]
    assert min(vl) < vl[0]                                  # the test sees a best that is not the first epoch
    with h5py.File(softadapt_run / "checkpoint.h5") as f:
        ema, raw = f["arrays/ema"][()], f["model/theta"][()]
    np.testing.assert_array_equal(load_model(softadapt_run / "final.h5").theta, ema)
    assert np.abs(raw - ema).max() > 1e-6                   # EMA on: the saved θ̄ is not the last θ


def test_validation_loss_is_initial_weights_times_scaled_parts(softadapt_run):
    rows = rows_of(softadapt_run)
    w0 = np.array(SOFTADAPT_RUN["weights"]) / sum(SOFTADAPT_RUN["weights"])
    want = col(rows, "val_L_") / scales_of(softadapt_run) @ w0
    np.testing.assert_allclose([r["val_loss"] for r in rows], want, rtol=1e-12)


def test_softadapt_weights_are_the_formula_of_the_logged_losses(softadapt_run):
    """w(t+1) = mean over the last 2 computed c_j, c_j = softadapt([L(j−2), L(j)] / s, β, relative)."""
    rows = rows_of(softadapt_run)
    w = col(rows, "w_")
    L = col(rows, "train_L_") / scales_of(softadapt_run)    # L[t-1] = L(t)
    np.testing.assert_allclose(w[0], np.array([0.5, 0.25, 0.25]), rtol=1e-15)

    def c(j):                                              # needs j − 2 ≥ 1: rows only (L(0) is not logged)
        return softadapt(np.stack([L[j - 3], L[j - 1]]), 1.5, "relative")
    checked = 0
    for t in range(4, len(rows)):                           # w(t+1) averages c_{t−1} and c_t
        np.testing.assert_allclose(w[t], (c(t - 1) + c(t)) / 2, rtol=1e-12, err_msg=f"epoch {t + 1}")
        checked += 1
    assert checked == 4
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-14)


def test_lr_column_follows_the_exponential_schedule(softadapt_run):
    rows = rows_of(softadapt_run)
    n, lr0, lr_min = SOFTADAPT_RUN["epochs"], SOFTADAPT_RUN["lr"], SOFTADAPT_RUN["min_lr"]
    np.testing.assert_allclose([r["lr"] for r in rows], [lr0 * (lr_min / lr0) ** (e / (n - 1)) for e in range(n)],
                               rtol=1e-14)


@pytest.fixture(scope="module")
def beta_runs(data_path, tmp_path_factory):
    base = tmp_path_factory.mktemp("beta")
    for beta in (2.0, -1.0):
        train_mod.train(data_path, out=base / str(beta), epochs=6, beta=beta, **SMALL)
    return {beta: rows_of(base / str(beta)) for beta in (2.0, -1.0)}


@pytest.mark.parametrize("beta", [2.0, -1.0])
def test_beta_reaches_the_paper_softadapt(beta_runs, beta):
    """Paper protocol (raw terms, l2, one epoch): w(t+1) = softadapt([L(t−1), L(t)], β, l2) for t ≥ 2."""
    rows = beta_runs[beta]
    w, L = col(rows, "w_"), col(rows, "train_L_")
    np.testing.assert_allclose(w[0], 1 / 3, rtol=1e-15)
    for t in range(2, len(rows)):
        np.testing.assert_allclose(w[t], softadapt(L[t - 2:t], beta, "l2"), rtol=1e-12, err_msg=f"epoch {t + 1}")
    other = -1.0 if beta == 2.0 else 2.0                    # the check can tell one β from another
    assert np.abs(w[2:] - np.array([softadapt(L[t - 2:t], other, "l2") for t in range(2, len(rows))])).max() > 1e-3
    assert np.abs(col(beta_runs[2.0], "w_")[2:] - col(beta_runs[-1.0], "w_")[2:]).max() > 1e-3


def test_linear_weights_and_cosine_lr(data_path, tmp_path):
    kw = dict(SMALL, weighting="linear", weights=(1.0, 1.0, 2.0), limit_weights=(0.1, 0.8, 0.1), epochs=5,
              lr_schedule="cosine", lr=4e-3, min_lr=1e-4)
    train_mod.train(data_path, out=tmp_path / "r", **kw)
    rows = rows_of(tmp_path / "r")
    start, limit = np.array([0.25, 0.25, 0.5]), np.array([0.1, 0.8, 0.1])
    for e, r in enumerate(rows):
        x = e / 4
        np.testing.assert_allclose(col([r], "w_")[0], (1 - x) * start + x * limit, rtol=1e-14)
        assert r["lr"] == pytest.approx(1e-4 + 0.5 * (4e-3 - 1e-4) * (1 + np.cos(np.pi * x)), rel=1e-14)


def test_dwa_weights_and_plateau_lr(data_path, tmp_path):
    kw = dict(SMALL, weighting="dwa", dwa_temperature=1.5, slope_window=1, epochs=7, lr=2e-2,
              lr_schedule="plateau", lr_factor=0.5, lr_patience=1, min_lr=4e-3, loss_scale="labels")
    train_mod.train(data_path, out=tmp_path / "r", **kw)
    rows = rows_of(tmp_path / "r")
    w, L = col(rows, "w_"), col(rows, "train_L_")
    for t in range(2, len(rows)):
        e = np.exp(L[t - 1] / L[t - 2] / 1.5)               # scales cancel in the ratio L(t)/L(t−1)
        np.testing.assert_allclose(w[t], e / e.sum(), rtol=1e-12, err_msg=f"epoch {t + 1}")
    lr, best, bad, want = 2e-2, np.inf, 0, []
    for r in rows:
        want.append(lr)
        if r["val_loss"] < best:
            best, bad = r["val_loss"], 0
        else:
            bad += 1
            if bad >= 1:
                lr, bad = max(lr * 0.5, 4e-3), 0
    assert [r["lr"] for r in rows] == pytest.approx(want, rel=1e-15)


def test_uncertainty_weights_move_as_kendall_rule(data_path, tmp_path):
    """w = exp(−s), s learned by Adam (lr) on 1 − w_k L_k/s_k per batch: w_1 = w⁰; in epoch 1 every weight
    moves against the sign of its gradient (all terms w L/s far from 1 there) and by at most the bound of
    Adam's steps (≤ 3.2 lr per step for β₁ = 0.9, β₂ = 0.999: Kingma & Ba §2.1)."""
    kw = dict(SMALL, weighting="uncertainty", weights=(0.2, 0.5, 0.3), loss_scale="labels", epochs=3, lr=1e-2)
    train_mod.train(data_path, out=tmp_path / "r", **kw)
    rows = rows_of(tmp_path / "r")
    w, L = col(rows, "w_"), col(rows, "train_L_") / scales_of(tmp_path / "r")
    np.testing.assert_allclose(w[0], [0.2, 0.5, 0.3], rtol=1e-14)
    n_steps = 4                                              # 28 training structures in batches of 8
    dlogw = np.log(w[1]) - np.log(w[0])
    assert np.all(np.abs(np.diff(np.log(w), axis=0)) <= 3.2 * n_steps * 1e-2)
    g = 1.0 - w[0] * L[0]                                    # ∂L/∂s_k at the epoch's start, pooled
    clear = np.abs(g) > 0.5
    assert clear.any()
    np.testing.assert_array_equal(np.sign(dlogw[clear]), np.sign(g[clear]))   # Δ log w = −Δs = +lr sign(g)


@pytest.mark.parametrize("form", ["rmse", "mse"])
def test_first_adam_step_follows_the_scaled_loss_gradient(data_path, tmp_path, form):
    """One batch holding every training structure, fixed weights w: the first Adam step is
    θ₁ = θ₀ − lr g/(|g| + 1e-8) with g = ∇ Σ_k (w_k/s_k^p) L_k (p = 1 RMSE, 2 MSE), s_k from the model file."""
    kw = dict(SMALL, weighting="fixed", weights=(0.2, 0.5, 0.3), loss_scale="labels", batch_size=64, lr=1e-3,
              loss=form)
    train_mod.train(data_path, out=tmp_path / "init", epochs=0, **kw)
    train_mod.train(data_path, out=tmp_path / "one", epochs=1, **kw)
    m0 = load_model(tmp_path / "init" / "best.h5")
    s = np.array(m0.meta["loss_scales"]) ** (2 if form == "mse" else 1)
    train_idx, _, _ = split_by_hand(40, (0.7, 0.2, 0.1), 0)
    g = _gradient(m0, data_path, train_idx, np.array([0.2, 0.5, 0.3]) / s, form)
    want = m0.theta - 1e-3 * g / (np.abs(g) + 1e-8)
    np.testing.assert_allclose(load_model(tmp_path / "one" / "final.h5").theta, want, rtol=0, atol=1e-9 * 1e-3)


def _batch(model, data_path, indices):
    from alw_ref.data import read_dataset
    from alw_ref.describe import compute_descriptors
    from alw_ref.model import make_batch

    data = read_dataset(data_path).subset(np.asarray(indices, np.int64))
    desc = compute_descriptors(data, model.spec)
    return make_batch(data, desc, np.arange(len(data)), model.spec.species_index(data.numbers))


def _gradient(model, data_path, indices, weights, form):
    return loss_and_gradient(model, _batch(model, data_path, indices), dict(zip(COMPONENTS, weights)),
                             form).gradient


def test_scaled_loss_gradient_matches_finite_differences(softadapt_run, data_path):
    """∂/∂θ of Σ_k (w_k/s_k) L_k with the run's label scales (s_E, s_F, s_S differ by orders of magnitude) and
    SoftAdapt-like weights, against 4th-order central differences (h = 1e-5) in float64:
    |Δ| ≤ 1e-6 |g_k| + 1e-9 max |g| for every parameter of the trained model."""
    model = load_model(softadapt_run / "final.h5")
    s = scales_of(softadapt_run)
    assert s.max() / s.min() > 10                            # the scales matter in this check
    weights = dict(zip(COMPONENTS, np.array([0.2, 0.5, 0.3]) / s))
    batch = _batch(model, data_path, [1, 6, 17])
    grad = loss_and_gradient(model, batch, weights).gradient
    theta0 = model.theta.copy()

    def total(theta):
        model.theta[:] = theta
        return loss_and_gradient(model, batch, weights, gradient=False).total

    fd = central_difference(total, theta0, 1e-5)
    err, tol = np.abs(fd - grad), 1e-6 * np.abs(grad) + 1e-9 * np.abs(grad).max()
    assert np.all(err <= tol), f"worst parameter {np.argmax(err / tol)}: {err.max():.3g}"


def test_third_adam_step_uses_the_logged_adaptive_weights(data_path, tmp_path):
    """SoftAdapt, one batch per epoch, no EMA: epoch 3's step is Adam's third update (β₁ 0.9, β₂ 0.999,
    ε 1e-8, typed in) from the state after epoch 2 (checkpoint: θ₂, m₂, v₂) along g = ∇ Σ_k (w_k(3)/s_k) L_k,
    with w(3) the weights logged in row 3: the weights logged are the weights the loss used. (Epoch 3, not 2:
    with one batch an epoch's pooled training loss is the loss before its step, so L(1) = L(0) and w(2) = w⁰.)"""
    import h5py

    kw = dict(SMALL, weighting="softadapt", softadapt_variant="relative", loss_scale="labels", batch_size=64,
              lr=1e-3, beta=30.0)
    train_mod.train(data_path, out=tmp_path / "two", epochs=2, **kw)
    train_mod.train(data_path, out=tmp_path / "three", epochs=3, **kw)
    w3 = col(rows_of(tmp_path / "three")[2:3], "w_")[0]
    assert np.abs(w3 - 1 / 3).max() > 0.05                   # the adaptive weights have moved
    with h5py.File(tmp_path / "two" / "checkpoint.h5") as f:
        m2, v2, t2 = f["adam/m"][()], f["adam/v"][()], int(f["adam"].attrs["t"])
    assert t2 == 2
    model = load_model(tmp_path / "two" / "final.h5")
    s = np.array(model.meta["loss_scales"])
    train_idx, _, _ = split_by_hand(40, (0.7, 0.2, 0.1), 0)
    g = _gradient(model, data_path, train_idx, w3 / s, "rmse")
    m = 0.9 * m2 + 0.1 * g
    v = 0.999 * v2 + 0.001 * g * g
    want = model.theta - 1e-3 * (m / (1 - 0.9 ** 3)) / (np.sqrt(v / (1 - 0.999 ** 3)) + 1e-8)
    np.testing.assert_allclose(load_model(tmp_path / "three" / "final.h5").theta, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("variant, loss_weighted", [("l2", False), ("relative", True)])
def test_softadapt_sees_the_scaled_losses(data_path, tmp_path, variant, loss_weighted):
    """Unit-free terms with a variant that is not invariant to each term's scale (l2; relative with the
    loss-weighted prefactor L_k): w(t+1) = softadapt([L(t−1), L(t)] / s) — not of the raw L (the "relative"
    slopes alone cannot tell L from L/s, so the run above cannot see which one the weighting gets)."""
    kw = dict(SMALL, weighting="softadapt", softadapt_variant=variant, loss_weighted=loss_weighted,
              loss_scale="labels", epochs=5, beta=2.0)
    train_mod.train(data_path, out=tmp_path / "r", **kw)
    rows = rows_of(tmp_path / "r")
    w, raw = col(rows, "w_"), col(rows, "train_L_")
    L = raw / scales_of(tmp_path / "r")
    for t in range(2, len(rows)):
        want = softadapt(L[t - 2:t], 2.0, variant, loss_weighted)
        np.testing.assert_allclose(w[t], want, rtol=1e-12, err_msg=f"epoch {t + 1}")
        assert np.abs(softadapt(raw[t - 2:t], 2.0, variant, loss_weighted) - want).max() > 1e-3
