"""Tests of alw_ref.optim (Adam, Kingma & Ba 2015, Algorithm 1).

The reference update in ``_adam_by_hand`` is written out here from the paper, one parameter at a
time with Python floats and ``math``, independently of the vectorised code under test.
"""

import math

import h5py
import numpy as np
import pytest

from alw_ref.optim import Adam, AdamSettings, exponential_lr

# Quadratic f(θ) = ½ Σ_k a_k (θ_k − c_k)², gradient a_k (θ_k − c_k).
A_K = np.array([1.0, 10.0, 0.1, 3.0, 0.5])
C_K = np.array([0.3, -1.2, 2.0, 0.0, 5.0])


def quadratic_grad(theta):
    return A_K * (theta - C_K)


def _adam_by_hand(theta0, n_steps, alpha, beta1, beta2, eps):
    """Algorithm 1 of arXiv:1412.6980, scalar loops, constant step size α."""
    theta = [float(x) for x in theta0]
    m = [0.0] * len(theta)
    v = [0.0] * len(theta)
    for t in range(1, n_steps + 1):
        g = [A_K[k] * (theta[k] - C_K[k]) for k in range(len(theta))]
        for k in range(len(theta)):
            m[k] = beta1 * m[k] + (1 - beta1) * g[k]
            v[k] = beta2 * v[k] + (1 - beta2) * g[k] ** 2
            m_hat = m[k] / (1 - beta1**t)
            v_hat = v[k] / (1 - beta2**t)
            theta[k] = theta[k] - alpha * m_hat / (math.sqrt(v_hat) + eps)
    return np.array(theta), np.array(m), np.array(v)


def _run(opt, theta, n_steps):
    for _ in range(n_steps):
        theta = opt.step(theta, quadratic_grad(theta))
    return theta


@pytest.mark.parametrize(
    "settings",
    [AdamSettings(), AdamSettings(lr=0.05, beta1=0.5, beta2=0.9, eps=1e-3)],
)
def test_matches_hand_written_algorithm(settings):
    theta0 = np.array([1.0, 2.0, -3.0, 0.5, 0.0])
    opt = Adam(5, settings)
    theta = _run(opt, theta0.copy(), 7)
    ref_theta, ref_m, ref_v = _adam_by_hand(
        theta0, 7, settings.lr, settings.beta1, settings.beta2, settings.eps
    )
    np.testing.assert_allclose(theta, ref_theta, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(opt.m, ref_m, rtol=1e-13, atol=0)
    np.testing.assert_allclose(opt.v, ref_v, rtol=1e-13, atol=0)
    assert opt.t == 7
    # The parameters really moved (a no-op step would fail the comparison above only weakly).
    assert np.all(np.abs(theta - theta0) > 1e-4)


def test_first_step_is_lr_times_sign():
    lr = 0.01
    opt = Adam(4, AdamSettings(lr=lr))
    theta = np.array([0.0, 1.0, -2.0, 3.0])
    grad = np.array([3.0e-4, -7.0, 1.0e5, -0.02])
    new = opt.step(theta, grad)
    # Step = lr g/(|g| + eps): differs from lr sign(g) by at most lr eps/|g| (+ rounding).
    bound = lr * opt.settings.eps / np.abs(grad) + 1e-15
    assert np.all(np.abs((new - theta) - (-lr * np.sign(grad))) <= bound)


def test_does_not_modify_inputs():
    opt = Adam(3)
    theta = np.array([1.0, 2.0, 3.0])
    grad = np.array([0.5, -0.5, 1.0])
    theta_copy, grad_copy = theta.copy(), grad.copy()
    new = opt.step(theta, grad)
    assert new is not theta
    np.testing.assert_array_equal(theta, theta_copy)
    np.testing.assert_array_equal(grad, grad_copy)


def test_decay_schedule_values():
    s = AdamSettings(lr=0.1, decay_rate=0.5, decay_steps=4, min_lr=0.01)
    # lr · 0.5^(t/4), floored at 0.01; t = updates completed before the one using the rate.
    for t_done, expected in [(0, 0.1), (2, 0.1 * 0.5**0.5), (4, 0.05), (8, 0.025), (12, 0.0125)]:
        assert exponential_lr(s, t_done) == pytest.approx(expected, rel=1e-15)
    assert exponential_lr(s, 16) == 0.01  # 0.00625 floored
    assert exponential_lr(s, 1000) == 0.01
    assert exponential_lr(AdamSettings(lr=0.1), 10**6) == 0.1  # no decay by default


def test_learning_rate_counts_completed_updates():
    opt = Adam(5, AdamSettings(lr=0.1, decay_rate=0.5, decay_steps=2))
    theta = np.zeros(5)
    seen = []
    for _ in range(4):
        seen.append(opt.learning_rate())
        theta = _run(opt, theta, 1)
    # t_done = 0, 1, 2, 3: the first update uses exactly lr, the third lr·0.5.
    assert seen[0] == 0.1
    np.testing.assert_allclose(seen, [0.1, 0.1 * 0.5**0.5, 0.05, 0.05 * 0.5**0.5], rtol=1e-15)
    assert opt.t == 4 and opt.learning_rate() == pytest.approx(0.025, rel=1e-15)


def test_decayed_rate_enters_the_step():
    # Two updates with the same gradient: the second uses lr·decay_rate^(1/decay_steps).
    s = AdamSettings(lr=0.1, decay_rate=0.25, decay_steps=1, eps=1e-300)
    opt = Adam(1, s)
    g = np.array([2.0])
    th1 = opt.step(np.array([0.0]), g)
    th2 = opt.step(th1, g)
    # Constant gradient: m_hat = g and v_hat = g² exactly up to rounding, so step = lr_t.
    assert th1[0] == pytest.approx(-0.1, rel=1e-14)
    assert th2[0] - th1[0] == pytest.approx(-0.025, rel=1e-12)


def test_converges_on_quadratic():
    opt = Adam(5, AdamSettings(lr=0.05, decay_rate=0.1, decay_steps=1000))
    theta = _run(opt, np.zeros(5), 3000)
    np.testing.assert_allclose(theta, C_K, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": 0.0}, "lr must be > 0"),
        ({"lr": float("nan")}, "lr must be finite"),
        ({"beta1": 1.0}, r"beta1 must be in \[0, 1\)"),
        ({"beta2": -0.1}, r"beta2 must be in \[0, 1\)"),
        ({"eps": 0.0}, "eps must be > 0"),
        ({"decay_rate": 1.5}, r"decay_rate must be in \(0, 1\]"),
        ({"decay_rate": 0.0}, r"decay_rate must be in \(0, 1\]"),
        ({"decay_steps": 0}, "decay_steps must be >= 1"),
        ({"decay_steps": 2.5}, "decay_steps must be an int"),
        ({"min_lr": 0.1}, r"min_lr must be in \[0, lr="),
        ({"beta1": True}, "beta1 must be a real number"),
        ({"lr": "0.1"}, "lr must be a real number"),
    ],
)
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdamSettings(**kwargs)


def test_bad_step_inputs_raise_and_leave_state_unchanged():
    opt = Adam(4)
    theta = np.zeros(4)
    good = np.ones(4)
    with pytest.raises(ValueError, match=r"grad must have shape \(4,\), got \(3,\)"):
        opt.step(theta, np.ones(3))
    with pytest.raises(ValueError, match=r"theta must have shape \(4,\), got \(4, 1\)"):
        opt.step(np.zeros((4, 1)), good)
    with pytest.raises(ValueError, match="grad must have dtype float64, got float32"):
        opt.step(theta, good.astype(np.float32))
    with pytest.raises(ValueError, match="grad is not finite at index 1"):
        opt.step(theta, np.array([1.0, np.nan, np.inf, 1.0]))
    with pytest.raises(ValueError, match="theta is not finite at index 3"):
        opt.step(np.array([0.0, 0.0, 0.0, -np.inf]), good)
    with pytest.raises(ValueError, match="grad must be a numpy array, got list"):
        opt.step(theta, [1.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="n_params must be an int >= 1"):
        Adam(0)
    assert opt.t == 0
    assert not np.any(opt.m) and not np.any(opt.v)


def _ten_steps_settings():
    return AdamSettings(lr=0.02, beta1=0.8, beta2=0.99, decay_rate=0.7, decay_steps=3, min_lr=1e-3)


def test_state_dict_round_trip_bit_for_bit():
    theta0 = np.array([1.0, 2.0, -3.0, 0.5, 0.0])
    straight = _run(Adam(5, _ten_steps_settings()), theta0, 10)

    first = Adam(5, _ten_steps_settings())
    theta = _run(first, theta0, 4)
    state = first.state_dict()
    resumed = Adam.from_state_dict(state)
    assert resumed.settings == first.settings and resumed.t == 4
    # The state is a copy: later steps of `first` do not change it.
    _run(first, theta, 1)
    assert state["t"] == 4
    theta = _run(resumed, theta, 6)
    assert np.array_equal(theta, straight)


def test_hdf5_round_trip_bit_for_bit(tmp_path):
    theta0 = np.array([1.0, 2.0, -3.0, 0.5, 0.0])
    straight = _run(Adam(5, _ten_steps_settings()), theta0, 10)

    first = Adam(5, _ten_steps_settings())
    theta = _run(first, theta0, 4)
    path = tmp_path / "ckpt.h5"
    with h5py.File(path, "w") as f:
        first.write_state(f.create_group("optimizer"))
    with h5py.File(path, "r") as f:
        resumed = Adam.read_state(f["optimizer"])
    assert resumed.settings == first.settings
    assert resumed.t == 4 and isinstance(resumed.t, int)
    assert np.array_equal(resumed.m, first.m) and np.array_equal(resumed.v, first.v)
    theta = _run(resumed, theta, 6)
    assert np.array_equal(theta, straight)


def test_malformed_state_raises(tmp_path):
    opt = Adam(3)
    opt.step(np.zeros(3), np.ones(3))
    state = opt.state_dict()
    with pytest.raises(ValueError, match=r"missing entries \['v'\]"):
        Adam.from_state_dict({k: val for k, val in state.items() if k != "v"})
    with pytest.raises(ValueError, match="version is 2, this code reads 1"):
        Adam.from_state_dict({**state, "version": 2})
    with pytest.raises(ValueError, match="format is 'something'"):
        Adam.from_state_dict({**state, "format": "something"})
    with pytest.raises(ValueError, match=r"'m' must have shape \(3,\), got \(2,\)"):
        Adam.from_state_dict({**state, "m": np.zeros(2)})
    with pytest.raises(ValueError, match="'v' is negative at index 0"):
        Adam.from_state_dict({**state, "v": np.array([-1.0, 0.0, 0.0])})
    with pytest.raises(ValueError, match="'t' must be an int >= 0"):
        Adam.from_state_dict({**state, "t": -1})
    with pytest.raises(ValueError, match="beta2 must be in"):
        Adam.from_state_dict({**state, "beta2": 1.0})

    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("opt")
        opt.write_state(g)
        del g["m"]
    with h5py.File(path, "r") as f, pytest.raises(ValueError, match=r"'/opt'.*missing entries \['m'\]"):
        Adam.read_state(f["opt"])
