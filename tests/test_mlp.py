"""Tests of alw_ref/mlp.py: activations and their derivatives, input gradient, reverse-over-forward."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alw_ref import mlp
from fd import central_difference


@pytest.mark.parametrize("name", sorted(mlp.ACTIVATIONS))
def test_activation_derivatives_match_finite_differences(name):
    """σ' and σ'' against 4th-order central differences of σ and σ' (h = 1e-4, error ≲ 1e-12)."""
    f, f_d, f_dd = mlp.ACTIVATIONS[name]
    a = np.linspace(-6.0, 6.0, 241)
    d_fd = np.array([central_difference(f, np.array([v]), 1e-4)[0, 0] for v in a])
    dd_fd = np.array([central_difference(f_d, np.array([v]), 1e-4)[0, 0] for v in a])
    np.testing.assert_allclose(f_d(a), d_fd, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(f_dd(a), dd_fd, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", sorted(mlp.ACTIVATIONS))
def test_activations_finite_for_huge_inputs(name):
    f, f_d, f_dd = mlp.ACTIVATIONS[name]
    a = np.array([-1e4, -800.0, 800.0, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for fn in (f, f_d, f_dd):
            assert np.all(np.isfinite(fn(a)))


def test_unknown_activation_lists_choices():
    with pytest.raises(ValueError, match="unknown activation 'relu'.*silu.*softplus.*tanh"):
        mlp.activation_functions("relu")


def _random_layers(rng, sizes):
    return [(rng.normal(size=(sizes[k], sizes[k + 1])), rng.normal(size=sizes[k + 1])) for k in range(len(sizes) - 1)]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), hidden=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       name=st.sampled_from(sorted(mlp.ACTIVATIONS)), with_tangent=st.booleans())
def test_gradients_match_finite_differences(seed, hidden, name, with_tangent):
    """input_gradient = ∂y/∂x and parameter_gradient = ∂J/∂θ, J = Σ u y + t·∂y/∂x, by central differences."""
    rng = np.random.default_rng(seed)
    n, D = 4, 3
    layers = _random_layers(rng, [D, *hidden, 1])
    x, u = rng.normal(size=(n, D)), rng.normal(size=n)
    t = rng.normal(size=(n, D)) if with_tangent else None

    y, a_list, z_list = mlp.forward(layers, x, name)
    g = mlp.input_gradient(layers, a_list, name)
    g_fd = central_difference(lambda xx: mlp.forward(layers, xx, name)[0], x, 1e-4)  # (n, D, n)
    np.testing.assert_allclose(g, np.einsum("idi->id", g_fd), rtol=1e-8, atol=1e-9)

    def J():
        yy, aa, _ = mlp.forward(layers, x, name)
        val = np.dot(u, yy)
        return val + (np.sum(t * mlp.input_gradient(layers, aa, name)) if t is not None else 0.0)

    grads = mlp.parameter_gradient(layers, a_list, z_list, u, t, name)
    for (W, b), (dW, db) in zip(layers, grads):
        for P, dP in ((W, dW), (b, db)):
            p0 = P.copy()

            def J_of(p):
                P[...] = p
                return J()

            fd = central_difference(J_of, p0, 1e-4)
            P[...] = p0
            np.testing.assert_allclose(dP, fd, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("name", sorted(mlp.ACTIVATIONS))
def test_slopes_from_the_forward_pass_equal_the_activation_derivatives(name):
    """activation_slopes (tanh: 1 − z² from the kept activations) equals σ'(a), and the curvature used by
    parameter_gradient equals σ''(a), to 1e-15 relative, on a range of pre-activations."""
    rng = np.random.default_rng(1)
    layers = _random_layers(rng, [3, 7, 5, 1])
    x = rng.normal(0, 3, size=(40, 3))
    _, a_list, z_list = mlp.forward(layers, x, name)
    _, f_d, f_dd = mlp.ACTIVATIONS[name]
    for a, z, sd in zip(a_list, z_list[1:], mlp.activation_slopes(a_list, z_list, name)):
        np.testing.assert_allclose(sd, f_d(a), rtol=1e-15, atol=1e-300)
        np.testing.assert_allclose(mlp._curvature(a, z, sd, name), f_dd(a), rtol=1e-14, atol=1e-300)
