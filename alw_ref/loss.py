"""Training loss, paper Eq. 4/5: L = w_E L_E + w_F L_F + w_S L_S, its parts, and its exact gradient.

The weights only mean something together with the form and units of each term, so both are fixed
here and named in every log:

* ``form="rmse"`` (default; what the paper's code did, so Tables 1–2 are comparable):
    L_E = √(mean_s ((E_s − Ê_s)/N_s)²)            eV/atom, over the structures of the batch;
    L_F = √(mean over all 3·N force components)     eV/Å, no padding: every real atom counts once;
    L_S = √(mean over 6 Voigt components × structures that have stress)   GPa (masked, not zero-filled).
* ``form="mse"``: the squares of the same quantities (eV²/atom², eV²/Å², GPa²).

Gradients: with r_k the residuals of one term and K their number, ∂RMSE/∂r_k = r_k / (K · RMSE);
at RMSE = 0 (an exact fit) the subgradient 0 is used. ∂MSE/∂r_k = 2 r_k / K. Both are a batch scalar
times the residual, so ``model.predict_with_adjoints`` computes the force and stress adjoints from the
unscaled residuals in the same pass over the derivative blocks as the forces (issue 15), and the
scalars are applied here; ``model.loss_gradient`` takes general adjoints ∂L/∂E_s, ∂L/∂F, ∂L/∂σ.

For epoch metrics, ``LossResult.sse`` and ``.count`` hold each term's sum of squared residuals and
number of residuals (in the units above), so an epoch's RMSE is √(Σ sse / Σ count) over its batches
— every structure and force component weighted equally whatever the batch sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import Batch, Model, Prediction, parameter_gradient, predict_batch, predict_with_adjoints
from .units import EV_PER_A3_TO_GPA

#: The loss components, in the order of every weight vector.
COMPONENTS = ("energy", "forces", "stress")
#: Unit of each component's residual under ``form="rmse"``.
RMSE_UNITS = {"energy": "eV/atom", "forces": "eV/Å", "stress": "GPa"}
FORMS = ("rmse", "mse")


@dataclass(frozen=True)
class LossResult:
    """total L; parts {component: L_k}; sse/count {component: Σ r², number of residuals};
    gradient ∂L/∂θ (flat, or None); prediction (``model.Prediction``)."""

    total: float
    parts: dict
    sse: dict
    count: dict
    gradient: np.ndarray | None
    prediction: Prediction


def residuals(pred: Prediction, batch: Batch) -> dict:
    """Residual arrays of each component in the loss units: eV/atom, eV/Å, GPa (stress rows masked)."""
    mask = batch.has_stress_s
    return {
        "energy": (pred.energy_s - batch.energy_s) / batch.n_atoms_s,
        "forces": (pred.forces_ic - batch.forces_ic).ravel(),
        "stress": ((pred.stress_sv[mask] - batch.stress_sv[mask]) * EV_PER_A3_TO_GPA).ravel(),
    }


def term_value_and_factor(r: np.ndarray, form: str):
    """(L_k, f) of one term with ∂L_k/∂r = f · r: RMSE (f = 1/(K·RMSE), 0 at RMSE = 0) or MSE (f = 2/K)
    of residuals r (module docstring; empty r gives (0, 0))."""
    K = r.size
    if K == 0:
        return 0.0, 0.0
    mse = float(np.dot(r, r) / K)
    if form == "mse":
        return mse, 2.0 / K
    rmse = np.sqrt(mse)
    return rmse, (1.0 / (K * rmse) if rmse > 0 else 0.0)


def term_value_and_slope(r: np.ndarray, form: str):
    """(L_k, ∂L_k/∂r) of one term: RMSE or MSE of residuals r (module docstring; empty r gives 0)."""
    value, factor = term_value_and_factor(r, form)
    return value, factor * r


def check_weights(weights) -> dict:
    """{component: w} from a mapping with exactly the keys of COMPONENTS, finite and ≥ 0."""
    w = dict(weights)
    if set(w) != set(COMPONENTS):
        raise ValueError(f"loss weights need exactly the keys {COMPONENTS}, got {sorted(w)}")
    for k, v in w.items():
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"loss weight {k!r} must be finite and ≥ 0, got {v}")
    return {k: float(w[k]) for k in COMPONENTS}


def loss_and_gradient(model: Model, batch: Batch, weights, form: str = "rmse",
                      gradient: bool = True) -> LossResult:
    """One pass over a batch: E, F, σ, the loss parts, L = Σ_k w_k L_k, and (if ``gradient``) ∂L/∂θ.

    weights : {"energy": w_E, "forces": w_F, "stress": w_S};  form : "rmse" or "mse".
    """
    if form not in FORMS:
        raise ValueError(f"unknown loss form {form!r}; choose one of {FORMS}")
    w = check_weights(weights)
    if gradient:
        # Forces, stress and the unscaled descriptor adjoints of their residuals in one pass over the
        # derivative blocks (issue 15); every term is linear in its residuals up to a batch scalar.
        pred, fwd, vF_ig, vS_ig = predict_with_adjoints(model, batch, w["forces"] > 0, w["stress"] > 0)
    else:
        pred, fwd = predict_batch(model, batch)
    res = residuals(pred, batch)
    parts, factor = {}, {}
    for k in COMPONENTS:
        parts[k], factor[k] = term_value_and_factor(res[k], form)
    total = sum(w[k] * parts[k] for k in COMPONENTS)
    sse = {k: float(np.dot(res[k], res[k])) for k in COMPONENTS}
    count = {k: int(res[k].size) for k in COMPONENTS}
    grad = None
    if gradient:
        # ∂L/∂E_s = w_E f_E r_E,s / N_s with r_E,s = (E_s − E_ref,s)/N_s;  ∂L/∂F = w_F f_F (F − F_ref);
        # ∂L/∂σ (per eV/Å³) = w_S f_S k² (σ − σ_ref) with k = EV_PER_A3_TO_GPA (residuals in GPa).
        u_i = (w["energy"] * factor["energy"] * res["energy"] / batch.n_atoms_s)[batch.structure_i]
        v_ig = None  # v = α_F vF + α_S vS, formed in place (the arrays are this call's own)
        if vF_ig is not None:
            v_ig = np.multiply(vF_ig, w["forces"] * factor["forces"], out=vF_ig)
        if vS_ig is not None:
            vS_ig *= w["stress"] * factor["stress"] * EV_PER_A3_TO_GPA ** 2
            v_ig = vS_ig if v_ig is None else np.add(v_ig, vS_ig, out=v_ig)
        grad = parameter_gradient(model, batch, fwd, u_i, v_ig)
    return LossResult(float(total), parts, sse, count, grad, pred)
