"""Learning-rate schedules and the parameter EMA (alw_ref/schedule.py) against their formulas, typed in here.

exponential: lr(e) = lr₀ (lr_min/lr₀)^(e/(N−1)); cosine: lr_min + ½(lr₀ − lr_min)(1 + cos(π e/(N−1)));
plateau: × factor after ``patience`` epochs without a lower validation loss, never below lr_min; all keep
lr_min after the N-th epoch. EMA: θ̄ ← d θ̄ + (1 − d) θ with d = min(decay, (1 + t)/(10 + t)).
Relative tolerance 1e-14 where the expected value is one closed-form expression (a few ulps of rounding).
"""

import math

import numpy as np
import pytest

from alw_ref.schedule import (
    LearningRateSchedule,
    cosine_to_floor,
    ema_decay_at,
    ema_update,
    exponential_to_floor,
)


@pytest.mark.parametrize("n", [2, 7, 50])
def test_exponential_endpoints_shape_and_floor(n):
    lr0, lr_min = 2e-3, 1e-5
    s = LearningRateSchedule("exponential", lr0, lr_min, n)
    lrs = np.array([s.lr(e) for e in range(n + 3)])
    assert lrs[0] == pytest.approx(lr0, rel=1e-15) and lrs[n - 1] == pytest.approx(lr_min, rel=1e-14)
    ratio = (lr_min / lr0) ** (1.0 / (n - 1))                  # geometric: the same factor every epoch
    np.testing.assert_allclose(lrs[1:n] / lrs[:n - 1], ratio, rtol=1e-12)
    np.testing.assert_allclose(lrs[:n], [lr0 * (lr_min / lr0) ** (e / (n - 1)) for e in range(n)], rtol=1e-14)
    np.testing.assert_allclose(lrs[n:], lr_min, rtol=1e-14)    # a resumed, longer run keeps the floor
    assert exponential_to_floor(lr0, lr_min, 0, 1) == lr0      # a single epoch runs at lr0


@pytest.mark.parametrize("n", [2, 9, 101])
def test_cosine_endpoints_shape_and_floor(n):
    lr0, lr_min = 1e-2, 1e-4
    s = LearningRateSchedule("cosine", lr0, lr_min, n)
    lrs = np.array([s.lr(e) for e in range(n + 2)])
    assert lrs[0] == pytest.approx(lr0, rel=1e-15) and lrs[n - 1] == pytest.approx(lr_min, rel=1e-12)
    np.testing.assert_allclose(lrs[:n] + lrs[:n][::-1], lr0 + lr_min, rtol=1e-13)   # point-symmetric about the middle
    assert np.all(np.diff(lrs[:n]) < 0)
    np.testing.assert_allclose(lrs[:n], [lr_min + 0.5 * (lr0 - lr_min) * (1 + math.cos(math.pi * e / (n - 1)))
                                         for e in range(n)], rtol=1e-14)
    if n % 2:
        assert lrs[(n - 1) // 2] == pytest.approx(0.5 * (lr0 + lr_min), rel=1e-14)
    np.testing.assert_allclose(lrs[n:], lr_min, rtol=1e-12)
    assert cosine_to_floor(lr0, lr_min, 3, 1) == pytest.approx(lr_min, rel=1e-15)


def test_constant_is_constant():
    s = LearningRateSchedule("constant", 3e-3, 0.0, 5)
    assert [s.lr(e) for e in range(8)] == [3e-3] * 8


def plateau_by_hand(lr0, factor, patience, lr_min, val_losses):
    """Rates of epochs 1..len(val_losses)+1 under the plateau rule, written out independently."""
    lr, best, bad, out = lr0, math.inf, 0, [lr0]
    for v in val_losses:
        if v < best:
            best, bad = v, 0
        else:
            bad += 1
            if bad >= patience:
                lr, bad = max(lr * factor, lr_min), 0
        out.append(lr)
    return out


def test_plateau_lowers_after_patience_and_stops_at_floor():
    s = LearningRateSchedule("plateau", 1e-2, 2e-3, 100, factor=0.5, patience=3)
    vals = [5, 4, 4, 4.5, 4, 3, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5, 2, 3, 3, 3]
    got = [s.lr(0)]
    for v in vals:
        s.end_epoch(v)
        got.append(s.lr(len(got)))
    want = plateau_by_hand(1e-2, 0.5, 3, 2e-3, vals)
    assert got == pytest.approx(want, rel=1e-15)
    # the first cut comes exactly after 3 epochs without improvement (epochs 3, 4, 5 do not beat 4)
    assert got[:5] == [1e-2] * 5 and got[5] == 5e-3
    assert min(got) == 2e-3 and got[-1] == 2e-3                 # 1e-2 · 0.5³ = 1.25e-3 is below the floor


def test_plateau_state_round_trip_continues_identically():
    a = LearningRateSchedule("plateau", 1e-2, 0.0, 10, factor=0.3, patience=2)
    for v in (3, 3, 2, 2.5):
        a.end_epoch(v)
    b = LearningRateSchedule.from_state_dict(a.state_dict())
    for v in (2.5, 2.6, 1.0, 1.5, 1.6):
        a.end_epoch(v)
        b.end_epoch(v)
        assert a.lr(0) == b.lr(0)
    assert a.lr(0) == pytest.approx(1e-2 * 0.3 ** 2, rel=1e-15)   # cut after 2.5 and after 1.6


def test_ema_update_against_the_formula():
    rng = np.random.default_rng(3)
    thetas = rng.normal(size=(40, 6))
    avg, want = thetas[0].copy(), thetas[0].copy()
    for t, theta in enumerate(thetas):
        d = min(0.95, (1.0 + t) / (10.0 + t))
        want = d * want + (1.0 - d) * theta
        ema_update(avg, theta, 0.95, t)
    np.testing.assert_allclose(avg, want, rtol=1e-14, atol=1e-15)
    assert ema_decay_at(0.99, 0) == pytest.approx(0.1, rel=1e-15)        # warm-up: early steps follow θ closely
    assert ema_decay_at(0.99, 10**6) == 0.99 and ema_decay_at(0.5, 20) == 0.5 and ema_decay_at(0.5, 5) == pytest.approx(0.4, rel=1e-15)


def test_ema_of_a_constant_is_that_constant_and_decay_zero_copies():
    avg = np.full(4, 7.0)
    for t in range(30):
        ema_update(avg, np.full(4, 7.0), 0.999, t)
    np.testing.assert_allclose(avg, 7.0, rtol=1e-14)
    avg = np.zeros(3)
    ema_update(avg, np.array([1.0, 2.0, 3.0]), 0.0, 100)
    np.testing.assert_array_equal(avg, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("args, match", [
    (("weekly", 1e-3), "unknown learning-rate schedule"),
    (("constant", 0.0), "--lr"),
    (("constant", float("nan")), "--lr"),
    (("cosine", 1e-3, 2e-3), "--min-lr"),
    (("exponential", 1e-3, 0.0), "--min-lr"),
    (("plateau", 1e-3, 0.0, 5, 1.0), "--lr-factor"),
    (("plateau", 1e-3, 0.0, 5, 0.5, 0), "--lr-patience"),
])
def test_bad_settings_name_the_option(args, match):
    with pytest.raises(ValueError, match=match):
        LearningRateSchedule(*args)
