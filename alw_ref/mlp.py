"""Dense multilayer perceptron with hand-written first- and second-order backpropagation.

One element's network maps standardised descriptors x (n_atoms, D) to atomic energies y (n_atoms,),
paper Fig. 1 / Eq. 1:

    a_l = z_{l-1} W_l + b_l,   z_l = σ(a_l)   (l = 1 … L-1, z_0 = x),   y = z_{L-1} W_L + b_L.

Three passes, all dense matrix products over every atom of the element at once (BLAS):

* ``forward``        — y and the pre-activations a_l (kept for the backward passes);
* ``input_gradient`` — g = ∂y/∂x (n_atoms, D), reverse mode with upstream 1: forces and stress need it
                       (paper Eq. 2–3);
* ``parameter_gradient`` — ∂J/∂θ of J = Σ_i [u_i y_i + t_i · g_i], where u_i is the energy adjoint and t_i
  the descriptor-space tangent carrying the force and stress adjoints. t_i · g_i is the directional
  derivative ẏ_i of y along t_i, so we propagate the tangent forward with the primal pass,

      ȧ_l = ż_{l-1} W_l  (ż_0 = t),   ż_l = σ'(a_l) ⊙ ȧ_l,   ẏ = ż_{L-1} W_L,

  and backpropagate J = Σ_i u_i y_i + ẏ_i through both chains (reverse over forward):

      ȳ = u,  ẏ̄ = 1
      ∂J/∂W_L = z_{L-1}ᵀ ȳ + ż_{L-1}ᵀ ẏ̄,   ∂J/∂b_L = Σ ȳ,   z̄_{L-1} = ȳ W_Lᵀ,   ż̄_{L-1} = ẏ̄ W_Lᵀ
      for l = L-1 … 1:
          ǡ_l = ż̄_l ⊙ σ'(a_l)                              (adjoint of the tangent pre-activation)
          ā_l = z̄_l ⊙ σ'(a_l) + ż̄_l ⊙ σ''(a_l) ⊙ ȧ_l       (σ'' enters through ż_l = σ'(a_l) ⊙ ȧ_l)
          ∂J/∂W_l = z_{l-1}ᵀ ā_l + ż_{l-1}ᵀ ǡ_l,   ∂J/∂b_l = Σ_i ā_l
          z̄_{l-1} = ā_l W_lᵀ,   ż̄_{l-1} = ǡ_l W_lᵀ

  (b_l does not enter the tangent chain, so ∂ẏ/∂b_l flows only through σ''.)

Weights are stored per layer as W_l (n_in, n_out) and b_l (n_out,), float64. Units: x dimensionless,
y in eV, g in eV per unit x.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------- activations, value and derivatives


def tanh(a):
    """σ(a) = tanh(a)."""
    return np.tanh(a)


def tanh_d(a):
    """σ'(a) = 1 − tanh²(a)."""
    t = np.tanh(a)
    return 1.0 - t * t


def tanh_dd(a):
    """σ''(a) = −2 tanh(a) (1 − tanh²(a))."""
    t = np.tanh(a)
    return -2.0 * t * (1.0 - t * t)


def _sigmoid(a):
    """1 / (1 + e^{−a}), without overflow for large |a|."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(a):
    """σ(a) = ln(1 + e^a), computed as max(a, 0) + ln(1 + e^{−|a|}) (no overflow)."""
    return np.maximum(a, 0.0) + np.log1p(np.exp(-np.abs(a)))


def softplus_d(a):
    """σ'(a) = 1 / (1 + e^{−a}) (the logistic sigmoid)."""
    return _sigmoid(a)


def softplus_dd(a):
    """σ''(a) = s (1 − s) with s the logistic sigmoid."""
    s = _sigmoid(a)
    return s * (1.0 - s)


def silu(a):
    """σ(a) = a · s(a) (SiLU / swish), s the logistic sigmoid."""
    return a * _sigmoid(a)


def silu_d(a):
    """σ'(a) = s + a s (1 − s)."""
    s = _sigmoid(a)
    return s + a * s * (1.0 - s)


def silu_dd(a):
    """σ''(a) = s (1 − s) (2 + a (1 − 2 s))."""
    s = _sigmoid(a)
    return s * (1.0 - s) * (2.0 + a * (1.0 - 2.0 * s))


#: name → (σ, σ', σ''); the names accepted by ``--activation``.
ACTIVATIONS = {
    "tanh": (tanh, tanh_d, tanh_dd),
    "softplus": (softplus, softplus_d, softplus_dd),
    "silu": (silu, silu_d, silu_dd),
}


def activation_functions(name: str):
    """(σ, σ', σ'') for an activation name; ValueError listing the known names otherwise."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


# ---------------------------------------------------------------- passes


def forward(layers, x, activation: str):
    """Primal pass. layers: [(W_l (n_in, n_out), b_l (n_out,)), …], at least one hidden layer, the last
    layer linear with n_out = 1.

    x : (n, D) float64.  Returns y (n,) and the lists a = [a_1 … a_{L-1}] of pre-activations and
    z = [z_0 = x, z_1 … z_{L-1}] of activations, each (n, n_l), kept for the backward passes.
    """
    act = activation_functions(activation)[0]
    a_list, z_list = [], [x]
    for W, b in layers[:-1]:
        a_list.append(z_list[-1] @ W + b)
        z_list.append(act(a_list[-1]))
    W, b = layers[-1]
    return (z_list[-1] @ W + b)[:, 0], a_list, z_list


def activation_slopes(a_list, z_list, activation: str) -> list:
    """[σ'(a_l)] for every hidden layer. For tanh from z_l = tanh(a_l) of ``forward``: σ' = 1 − z²
    (the same numbers as ``tanh_d``, without evaluating tanh again)."""
    if activation == "tanh":
        return [1.0 - z * z for z in z_list[1:]]
    act_d = activation_functions(activation)[1]
    return [act_d(a) for a in a_list]


def _curvature(a, z, sd, activation: str):
    """σ''(a) of one layer; for tanh −2 z σ' from z = tanh(a) and σ' = 1 − z² (as ``tanh_dd``)."""
    if activation == "tanh":
        return -2.0 * z * sd
    return activation_functions(activation)[2](a)


def input_gradient(layers, a_list, activation: str, sd_list=None):
    """g = ∂y/∂x (n, D) by reverse mode with upstream ȳ = 1, from the pre-activations of ``forward``:
    z̄_{L-1} = W_Lᵀ, then z̄_{l-1} = (z̄_l ⊙ σ'(a_l)) W_lᵀ down to z̄_0 = g.
    sd_list : the σ'(a_l) of ``activation_slopes``, when already at hand."""
    if sd_list is None:
        act_d = activation_functions(activation)[1]
        sd_list = [act_d(a) for a in a_list]
    zbar = layers[-1][0].T  # (1, n_{L-1}), broadcast over the atoms
    for (W, _), sd in zip(layers[-2::-1], sd_list[::-1]):
        zbar = (zbar * sd) @ W.T
    return zbar


def parameter_gradient(layers, a_list, z_list, u, t, activation: str, sd_list=None):
    """∂J/∂θ for J = Σ_i [u_i y_i + t_i · ∂y_i/∂x_i] (module docstring: reverse over forward).

    a_list, z_list : from ``forward``; u : (n,) energy adjoints (∂J/∂y_i);
    t : (n, D) descriptor-space tangents, or None when only the energy term is present;
    sd_list : the σ'(a_l) of ``activation_slopes``, when already at hand.
    Returns [(∂J/∂W_l, ∂J/∂b_l), …] with the shapes of ``layers``.
    """
    n = z_list[0].shape[0]
    # Tangent chain: ȧ_l = ż_{l-1} W_l, ż_l = σ'(a_l) ⊙ ȧ_l, from ż_0 = t.
    if sd_list is None:
        sd_list = activation_slopes(a_list, z_list, activation)
    adots, zdots = [], [t]
    if t is not None:
        for (W, _), sd in zip(layers[:-1], sd_list):
            adots.append(zdots[-1] @ W)
            zdots.append(sd * adots[-1])
    grads = [None] * len(layers)
    W_L = layers[-1][0]
    ybar = u.reshape(n, 1)
    dW = z_list[-1].T @ ybar
    if t is not None:
        dW = dW + zdots[-1].sum(axis=0)[:, None]  # ż_{L-1}ᵀ ẏ̄ with ẏ̄ = 1
    grads[-1] = (dW, ybar.sum(axis=0))
    zbar = ybar @ W_L.T
    zdotbar = W_L.T if t is not None else None  # (1, n_{L-1}): ẏ̄ = 1 for every atom, broadcast
    for l in range(len(layers) - 2, -1, -1):
        W = layers[l][0]
        abar = zbar * sd_list[l]
        if t is not None:
            adotbar = zdotbar * sd_list[l]
            abar = abar + zdotbar * _curvature(a_list[l], z_list[l + 1], sd_list[l], activation) * adots[l]
            dW = z_list[l].T @ abar + zdots[l].T @ adotbar
        else:
            dW = z_list[l].T @ abar
        grads[l] = (dW, abar.sum(axis=0))
        if l > 0:
            zbar = abar @ W.T
            if t is not None:
                zdotbar = adotbar @ W.T
    return grads
