"""Tests of the loss weighting (alw_ref/weighting.py): SoftAdapt (paper Eqs. 6–7) against hand-written
formulas for each variant and sign of β, its invariances and numerical robustness, the baselines
(DWA, linear schedule, Kendall uncertainty weighting) and the LossWeighting driver's protocol,
checkpoint round trip and input errors.

Expected values are written out here with math.exp on scalars, never by calling the code under test.
"""

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alw_ref.weighting import (SOFTADAPT_VARIANTS, STRATEGIES, LossWeighting, dwa_weights, linear_schedule,
                               softadapt, uncertainty_gradient, uncertainty_loss, uncertainty_weights)
from fd import central_difference

EPS = 1e-8
BETAS = (-3.0, 0.0, 2.5)
# Oldest row first; the first row must be ignored (only the last two enter s).
HISTORY = [[5.0, 5.0, 5.0], [1.0, 2.0, 0.5], [0.8, 1.9, 0.6]]


def hand_softmax(z, prefactor=None):
    """w_k = c_k e^{z_k} / Σ c_l e^{z_l}, plain scalar math (inputs small enough not to overflow)."""
    c = prefactor or [1.0] * len(z)
    e = [ck * math.exp(zk) for ck, zk in zip(c, z)]
    total = sum(e)
    return [x / total for x in e]


def hand_slopes(variant):
    """ŝ of HISTORY written out per variant (paper Eq. 7 and Heydari et al.)."""
    prev, last = HISTORY[-2], HISTORY[-1]
    s = [last[k] - prev[k] for k in range(3)]
    if variant == "l2":
        norm = math.sqrt(s[0] ** 2 + s[1] ** 2 + s[2] ** 2)
        return [x / (norm + EPS) for x in s]
    if variant == "original":
        return s
    if variant == "normalized":
        total = abs(s[0]) + abs(s[1]) + abs(s[2])
        return [x / (total + EPS) for x in s]
    return [s[k] / prev[k] for k in range(3)]      # relative; every L(t−1) here is ≫ ε


@pytest.mark.parametrize("variant", SOFTADAPT_VARIANTS)
@pytest.mark.parametrize("beta", BETAS)
def test_softadapt_hand_computed(variant, beta):
    expected = hand_softmax([beta * x for x in hand_slopes(variant)])
    got = softadapt(HISTORY, beta=beta, variant=variant)
    assert got.shape == (3,)
    assert got.tolist() == pytest.approx(expected, rel=1e-12)
    # stress rises (s > 0): favoured for β > 0; energy falls fastest in every variant: favoured for β < 0
    if beta > 0:
        assert np.argmax(got) == 2
    elif beta < 0:
        assert np.argmax(got) == 0
    else:
        assert got.tolist() == [1 / 3, 1 / 3, 1 / 3]


@pytest.mark.parametrize("variant", SOFTADAPT_VARIANTS)
@pytest.mark.parametrize("beta", BETAS)
def test_softadapt_loss_weighted_hand_computed(variant, beta):
    expected = hand_softmax([beta * x for x in hand_slopes(variant)], prefactor=HISTORY[-1])
    got = softadapt(HISTORY, beta=beta, variant=variant, loss_weighted=True)
    assert got.tolist() == pytest.approx(expected, rel=1e-12)


def test_softadapt_loss_weighted_zero_losses():
    # all L(t) = 0 → equal weights (documented); one L_k(t) = 0 → that weight is 0
    assert softadapt([[1.0, 2.0], [0.0, 0.0]], beta=1.0, loss_weighted=True).tolist() == [0.5, 0.5]
    w = softadapt([[1.0, 2.0, 3.0], [0.0, 1.0, 4.0]], beta=1.0, variant="original", loss_weighted=True)
    expected = hand_softmax([-1.0, -1.0, 1.0], prefactor=[0.0, 1.0, 4.0])
    assert w[0] == 0.0 and w.tolist() == pytest.approx(expected, rel=1e-12)
    # the support is found even where exp underflows on it: β ŝ = [+1000, −1000], L(t) = [0, 11]
    w = softadapt([[10.0, 1.0], [0.0, 11.0]], beta=-100.0, variant="original", loss_weighted=True)
    assert w.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("beta", BETAS)
def test_original_invariant_to_common_slope_shift(beta):
    h = np.array(HISTORY)
    for c in (0.3, 7.0):
        shifted = h.copy()
        shifted[-1] += c                   # every slope s_k → s_k + c
        np.testing.assert_allclose(softadapt(shifted, beta, "original"), softadapt(h, beta, "original"),
                                   rtol=1e-12)


def test_relative_invariant_to_one_component_scale():
    h = np.array(HISTORY)
    for k in range(3):
        scaled = h.copy()
        scaled[:, k] *= 1000.0
        for beta in BETAS:
            np.testing.assert_allclose(softadapt(scaled, beta, "relative"), softadapt(h, beta, "relative"),
                                       rtol=1e-12)


@pytest.mark.parametrize("variant", ["l2", "normalized"])
def test_l2_and_normalized_invariant_to_common_scale_only(variant):
    h = np.array(HISTORY)
    # common scale of all slopes: exact up to ε (tiny ε → exact to rounding; default ε → within ε/‖s‖)
    np.testing.assert_allclose(softadapt(1000 * h, 2.5, variant, eps=1e-300), softadapt(h, 2.5, variant, eps=1e-300),
                               rtol=1e-12)
    np.testing.assert_allclose(softadapt(1000 * h, 2.5, variant), softadapt(h, 2.5, variant), rtol=1e-6)
    # the claim "one component's history × 1000 changes nothing" does NOT hold for l2/normalized:
    # s_E × 1000 dominates the norm, ŝ_E → −1 and the other ŝ → 0
    scaled = h.copy()
    scaled[:, 0] *= 1000.0
    assert np.max(np.abs(softadapt(scaled, 2.5, variant) - softadapt(h, 2.5, variant))) > 0.05


def test_normalized_keeps_ordering_when_all_losses_fall():
    h = [[1.0, 1.0, 1.0], [0.5, 0.9, 0.99]]        # s = (−0.5, −0.1, −0.01): all fall, stress slowest
    s = [0.5 - 1.0, 0.9 - 1.0, 0.99 - 1.0]
    w = softadapt(h, beta=1.0, variant="normalized")
    assert list(np.argsort(w)) == [0, 1, 2]        # β > 0 favours the slowest learner
    assert list(np.argsort(softadapt(h, beta=1.0, variant="original"))) == [0, 1, 2]
    # the public code's signed sum would flip it: ŝ = s / Σ s > 0 for the fastest faller
    signed = hand_softmax([x / sum(s) for x in s])
    assert max(range(3), key=signed.__getitem__) == 0


@pytest.mark.parametrize("variant", SOFTADAPT_VARIANTS)
def test_zero_slopes_give_equal_weights(variant):
    for beta in (-50.0, 0.0, 50.0):
        w = softadapt([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], beta, variant)
        assert w.tolist() == [1 / 3, 1 / 3, 1 / 3]
        w = softadapt([[3.0, 1e300, 0.0, 2.0], [3.0, 1e300, 0.0, 2.0]], beta, variant)
        assert w.tolist() == [0.25] * 4


loss_values = st.one_of(st.just(0.0), st.just(1e300), st.just(1e-300), st.floats(0.0, 1e300),
                        st.floats(0.0, 10.0))


@st.composite
def histories(draw, values=loss_values, max_k=5):
    t = draw(st.integers(2, 4))
    k = draw(st.integers(1, max_k))
    return np.array([[draw(values) for _ in range(k)] for _ in range(t)])


@pytest.mark.parametrize("h,variant", [([[0.0, 1.0], [1e300, 1.0]], "relative"),       # ŝ = (1e308, 0)
                                       ([[0.0, 1e308], [1e308, 0.0]], "original")])    # ŝ = (1e308, −1e308)
def test_softadapt_extreme_slopes_give_the_exact_limit(h, variant):
    # β ŝ overflows float64; the limits of the softmax are one-hot
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert softadapt(h, 50.0, variant).tolist() == [1.0, 0.0]
        assert softadapt(h, -50.0, variant).tolist() == [0.0, 1.0]
        assert softadapt(h, 50.0, variant, loss_weighted=True).tolist() == [1.0, 0.0]


def test_l2_norm_of_huge_slopes_does_not_overflow():
    # ‖s‖₂ = 2.1e308 is not representable; ŝ = (1/√2, 1/√2, 0) is
    h = [[0.0, 0.0, 1.0], [1.5e308, 1.5e308, 1.0]]
    expected = hand_softmax([10.0 / math.sqrt(2.0), 10.0 / math.sqrt(2.0), 0.0])
    assert softadapt(h, 10.0, "l2").tolist() == pytest.approx(expected, rel=1e-12)
    expected = hand_softmax([10.0 * 0.5, 10.0 * 0.5, 0.0])
    assert softadapt(h, 10.0, "normalized").tolist() == pytest.approx(expected, rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(h=histories(), beta=st.floats(-50.0, 50.0), variant=st.sampled_from(SOFTADAPT_VARIANTS),
       loss_weighted=st.booleans())
def test_softadapt_never_overflows(h, beta, variant, loss_weighted):
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # no overflow / invalid-value warnings either
        w = softadapt(h, beta, variant, loss_weighted)
    assert w.shape == (h.shape[1],)
    assert np.all(np.isfinite(w)) and np.all(w >= 0)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(h=histories(values=st.floats(0.1, 10.0)), beta=st.floats(-5.0, 5.0),
       variant=st.sampled_from(SOFTADAPT_VARIANTS))
def test_softadapt_weights_positive_and_normalised(h, beta, variant):
    w = softadapt(h, beta, variant)
    assert np.all(w > 0)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(h=histories(), temperature=st.floats(0.01, 100.0))
def test_dwa_never_overflows(h, temperature):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = dwa_weights(h, temperature)
    assert np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("temperature", [2.0, 0.5])
def test_dwa_hand_computed(temperature):
    h = [[9.0, 9.0, 9.0], [2.0, 1.0, 4.0], [1.0, 0.9, 2.0]]
    r = [1.0 / 2.0, 0.9 / 1.0, 2.0 / 4.0]
    expected = hand_softmax([x / temperature for x in r])
    assert dwa_weights(h, temperature).tolist() == pytest.approx(expected, rel=1e-12)
    assert np.argmax(dwa_weights(h, temperature)) == 1     # forces fall slowest → largest weight


def test_linear_schedule_hand_computed():
    start, limit = (1.0, 0.0, 0.0), (0.2, 0.5, 0.3)
    assert linear_schedule(start, limit, 0.0).tolist() == [1.0, 0.0, 0.0]
    assert linear_schedule(start, limit, 1.0).tolist() == [0.2, 0.5, 0.3]
    assert linear_schedule(start, limit, 0.25).tolist() == pytest.approx([0.8, 0.125, 0.075], rel=1e-14)
    # DeePMD-style absolute prefactors are returned as given, not normalised
    assert linear_schedule((0.02, 1000.0, 0.0), (1.0, 1.0, 0.0), 0.5).tolist() == pytest.approx([0.51, 500.5, 0.0])
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="progress"):
            linear_schedule(start, limit, bad)
    with pytest.raises(ValueError, match="3 entries"):
        linear_schedule(start, (1.0, 0.0), 0.5)


def test_uncertainty_weights_and_gradient():
    s = np.array([0.3, -1.2, 2.0])
    parts = np.array([0.05, 0.4, 1.7])
    assert uncertainty_weights(s).tolist() == pytest.approx([math.exp(-0.3), math.exp(1.2), math.exp(-2.0)],
                                                            rel=1e-15)
    total = sum(math.exp(-sk) * lk + sk for sk, lk in zip(s, parts))
    assert uncertainty_loss(s, parts) == pytest.approx(total, rel=1e-14)
    fd = central_difference(lambda x: uncertainty_loss(x, parts), s, 1e-4)   # 4th order: error ~1e-16
    np.testing.assert_allclose(uncertainty_gradient(s, parts), fd, rtol=1e-9, atol=1e-11)
    # optimum s_k = log L_k
    np.testing.assert_allclose(uncertainty_gradient(np.log(parts), parts), 0.0, atol=1e-15)


def test_softadapt_input_errors():
    with pytest.raises(ValueError, match=r"T ≥ 2"):
        softadapt([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match=r"T ≥ 2"):
        softadapt([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="row 1, component 2 is nan"):
        softadapt([[1.0, 2.0, 3.0], [1.0, 2.0, float("nan")]])
    with pytest.raises(ValueError, match="row 0, component 0 is -1.0"):
        softadapt([[-1.0, 2.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match="unknown SoftAdapt variant 'l1'; choose one of l2, original"):
        softadapt(HISTORY, variant="l1")
    with pytest.raises(ValueError, match="beta"):
        softadapt(HISTORY, beta=float("inf"))
    with pytest.raises(ValueError, match="eps"):
        softadapt(HISTORY, eps=0.0)
    with pytest.raises(ValueError, match="relative change of component 0 overflows"):
        softadapt([[0.0, 1.0], [1e308, 1.0]], variant="relative")


# ----------------------------------------------------------------------------------------- driver

SCRIPT = [[1.0, 2.0, 0.5], [0.6, 1.8, 0.55], [0.5, 1.2, 0.5], [0.45, 1.1, 0.3], [0.44, 0.7, 0.29],
          [0.40, 0.69, 0.31]]     # L(0) … L(5), eV/atom, eV/Å, GPa


def test_driver_paper_protocol():
    d = LossWeighting()                     # softadapt, β = 1, l2, initial ⅓ each
    assert d.current().tolist() == [1 / 3, 1 / 3, 1 / 3]
    d.start(SCRIPT[0])
    assert d.current().tolist() == [1 / 3, 1 / 3, 1 / 3]
    d.end_epoch(SCRIPT[1])
    # first change L(1) − L(0), written out
    s = [SCRIPT[1][k] - SCRIPT[0][k] for k in range(3)]
    norm = math.sqrt(sum(x * x for x in s))
    assert d.current().tolist() == pytest.approx(hand_softmax([x / (norm + EPS) for x in s]), rel=1e-12)
    for t in range(2, len(SCRIPT)):
        d.end_epoch(SCRIPT[t])
        assert np.array_equal(d.current(), softadapt([SCRIPT[t - 1], SCRIPT[t]]))
    hist = d.history
    assert len(hist) == d.epoch == 5
    assert hist[0].tolist() == [1 / 3, 1 / 3, 1 / 3]
    for t in range(1, 5):                   # epoch t + 1 used the weights from L(t) − L(t−1)
        assert np.array_equal(hist[t], softadapt([SCRIPT[t - 1], SCRIPT[t]]))


def test_driver_softadapt_averaging():
    d = LossWeighting("softadapt", beta=2.0, variant="relative", average_epochs=3)
    d.start(SCRIPT[0])
    w = [None] + [softadapt([SCRIPT[t - 1], SCRIPT[t]], 2.0, "relative") for t in range(1, len(SCRIPT))]
    for t in range(1, len(SCRIPT)):
        d.end_epoch(SCRIPT[t])
        used = w[max(1, t - 2):t + 1]       # the last three computed (fewer at the start)
        np.testing.assert_allclose(d.current(), sum(used) / len(used), rtol=1e-14)
        assert d.current().sum() == pytest.approx(1.0)


def test_driver_without_start_and_dwa():
    d = LossWeighting("softadapt")
    d.end_epoch(SCRIPT[1])                  # no L(0): nothing to compare with yet
    assert d.current().tolist() == [1 / 3, 1 / 3, 1 / 3]
    d.end_epoch(SCRIPT[2])
    assert np.array_equal(d.current(), softadapt([SCRIPT[1], SCRIPT[2]]))

    d = LossWeighting("dwa", (0.5, 0.3, 0.2), temperature=2.0)
    d.end_epoch(SCRIPT[1])
    assert d.current().tolist() == [0.5, 0.3, 0.2]          # one row only: the initial weights
    d.end_epoch(SCRIPT[2])
    r = [SCRIPT[2][k] / SCRIPT[1][k] for k in range(3)]
    assert d.current().tolist() == pytest.approx(hand_softmax([x / 2.0 for x in r]), rel=1e-12)

    d = LossWeighting("dwa")
    d.start(SCRIPT[0])
    d.end_epoch(SCRIPT[1])                  # with L(0): first ratio L(1)/L(0)
    r = [SCRIPT[1][k] / SCRIPT[0][k] for k in range(3)]
    assert d.current().tolist() == pytest.approx(hand_softmax([x / 2.0 for x in r]), rel=1e-12)


def test_driver_linear_and_fixed():
    d = LossWeighting("linear", (1.0, 0.0, 0.0), limit=(0.2, 0.5, 0.3), n_epochs=5)
    d.start(SCRIPT[0])
    for t in range(1, 6):
        d.end_epoch(SCRIPT[t])
    d.end_epoch(SCRIPT[5])                  # beyond n_epochs: stays at the limit
    expected = [[1.0, 0.0, 0.0], [0.8, 0.125, 0.075], [0.6, 0.25, 0.15], [0.4, 0.375, 0.225], [0.2, 0.5, 0.3],
                [0.2, 0.5, 0.3]]
    for got, exp in zip(d.history, expected):
        assert got.tolist() == pytest.approx(exp, rel=1e-14, abs=1e-15)
    assert d.current().tolist() == [0.2, 0.5, 0.3]

    d = LossWeighting("fixed", (0.9, 0.05, 0.05))
    d.start(SCRIPT[0])
    for t in range(1, 4):
        d.end_epoch(SCRIPT[t])
    assert d.current().tolist() == [0.9, 0.05, 0.05]
    assert [h.tolist() for h in d.history] == [[0.9, 0.05, 0.05]] * 3


def test_driver_uncertainty():
    d = LossWeighting("uncertainty", (0.5, 0.25, 0.25))
    assert d.trainable
    np.testing.assert_array_equal(d.params, -np.log([0.5, 0.25, 0.25]))
    np.testing.assert_allclose(d.current(), [0.5, 0.25, 0.25], rtol=1e-15)
    d.start(SCRIPT[0])
    parts = np.array([0.1, 0.2, 0.3])
    s = d.params
    np.testing.assert_array_equal(d.param_gradient(parts), 1.0 - np.exp(-s) * parts)
    at_start = d.current()
    d.set_params(s - 0.1)
    np.testing.assert_allclose(d.current(), np.exp(-(s - 0.1)), rtol=1e-15)
    d.end_epoch(SCRIPT[1])
    assert np.array_equal(d.history[0], at_start)            # the weights the epoch began with
    np.testing.assert_allclose(d.current(), np.exp(-(s - 0.1)), rtol=1e-15)
    for name in ("fixed", "softadapt", "dwa"):
        other = LossWeighting(name)
        assert not other.trainable and other.params.size == 0
        with pytest.raises(ValueError, match="no trainable parameters"):
            other.param_gradient(parts)


ROUND_TRIP = [("softadapt", {"average_epochs": 2, "loss_weighted": True}), ("softadapt", {"variant": "relative"}),
              ("dwa", {}), ("fixed", {}), ("uncertainty", {}),
              ("linear", {"limit": (0.1, 0.8, 0.1), "n_epochs": 6})]


@pytest.mark.parametrize("strategy,kwargs", ROUND_TRIP)
def test_state_round_trip_is_exact(strategy, kwargs):
    d = LossWeighting(strategy, **kwargs)
    d.start(SCRIPT[0])
    for t in (1, 2):
        if d.trainable:
            d.set_params(d.params - 0.01 * d.param_gradient(SCRIPT[t]))
        d.end_epoch(SCRIPT[t])
    r = LossWeighting.from_state_dict(json.loads(json.dumps(d.state_dict())))
    assert r.describe() == d.describe()
    for t in (3, 4, 5):
        for drv in (d, r):
            if drv.trainable:
                drv.set_params(drv.params - 0.01 * drv.param_gradient(SCRIPT[t]))
            drv.end_epoch(SCRIPT[t])
        assert r.current().tolist() == d.current().tolist()
    assert [h.tolist() for h in r.history] == [h.tolist() for h in d.history]
    assert r.state_dict() == d.state_dict()


def test_fresh_state_round_trip():
    r = LossWeighting.from_state_dict(json.loads(json.dumps(LossWeighting("dwa").state_dict())))
    r.start(SCRIPT[0])
    r.end_epoch(SCRIPT[1])
    assert np.array_equal(r.current(), dwa_weights(SCRIPT[:2]))
    with pytest.raises(ValueError, match="not a LossWeighting state"):
        LossWeighting.from_state_dict({"strategy": "dwa"})


@pytest.mark.parametrize("args,kwargs,message", [
    (("softadapt2",), {}, "unknown weighting strategy 'softadapt2'; choose one of fixed, softadapt, linear, dwa, "
                          "uncertainty"),
    (("linear",), {"n_epochs": 10}, "linear weighting needs limit weights"),
    (("linear",), {"limit": (0.2, 0.4, 0.4)}, "linear weighting needs n_epochs ≥ 1"),
    (("linear",), {"limit": (0.2, 0.8), "n_epochs": 10}, "limit weights must have 3 entries"),
    (("fixed", (0.5, -0.1, 0.6)), {}, "initial weights must be finite and ≥ 0"),
    (("fixed", (0.5, float("nan"), 0.5)), {}, "initial weights must be finite and ≥ 0"),
    (("fixed", (0.0, 0.0, 0.0)), {}, "must not all be 0"),
    (("fixed", ()), {}, "non-empty 1-D"),
    (("softadapt", (1.0, 1.0, 1.0)), {}, "must sum to 1"),
    (("uncertainty", (1.0, 0.0, 0.0)), {}, "must be > 0"),
    (("softadapt",), {"variant": "l3"}, "unknown SoftAdapt variant 'l3'"),
    (("softadapt",), {"average_epochs": 0}, "average_epochs must be an integer ≥ 1"),
    (("softadapt",), {"beta": float("nan")}, "beta must be a finite number"),
    (("dwa",), {"temperature": 0.0}, "temperature must be > 0"),
    (("softadapt",), {"eps": -1.0}, "eps must be > 0"),
    (("softadapt",), {"loss_weighted": "yes"}, "loss_weighted must be True or False"),
])
def test_driver_rejects_bad_settings(args, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LossWeighting(*args, **kwargs)


def test_driver_rejects_bad_calls():
    d = LossWeighting()
    with pytest.raises(ValueError, match="training losses of epoch 1 must have 3 entries"):
        d.end_epoch([1.0, 2.0])
    with pytest.raises(ValueError, match="epoch-0 training losses must be finite and ≥ 0"):
        d.start([1.0, float("inf"), 2.0])
    d.start(SCRIPT[0])
    with pytest.raises(ValueError, match="start\\(\\) must be called once"):
        d.start(SCRIPT[0])
    u = LossWeighting("uncertainty")
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        u.set_params([0.0, 0.0])
    with pytest.raises(ValueError, match="infinite weights"):
        u.set_params([-800.0, 0.0, 0.0])


def test_describe_and_strategies():
    assert LossWeighting().describe() == "softadapt(beta=1.0, variant=l2, loss_weighted=False, slope_window=1, average=1)"
    assert LossWeighting("dwa").describe() == "dwa(temperature=2.0)"
    assert LossWeighting("fixed", (0.9, 0.05, 0.05)).describe() == "fixed(weights=0.9,0.05,0.05)"
    kw = {"limit": (0.2, 0.5, 0.3), "n_epochs": 10}
    for name in STRATEGIES:
        assert LossWeighting(name, (0.5, 0.25, 0.25), **kw).describe().startswith(name + "(")


def test_import_is_light():
    root = Path(__file__).resolve().parents[1]
    code = "import sys, alw_ref.weighting; print(sorted(m for m in ('numba', 'h5py', 'alw_ref.model') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
