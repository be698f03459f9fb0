"""Central finite differences for tests: wrt positions and wrt homogeneous strain.

All use the fourth-order central stencil
    f'(x) ≈ [8 (f(x+h) − f(x−h)) − (f(x+2h) − f(x−2h))] / (12 h),
truncation error h⁴ f⁽⁵⁾/30 and round-off ~ ε_machine |f| / h. With the default steps
(positions: h = 1e-4 Å; strain: h = 1e-5, dimensionless) and features whose length scales are
≳ 0.1 Å (η ≤ 10 Å⁻², ζ ≤ 100) the error is ≲ 1e-10 relative to the derivative's scale, far below
the 1e-6 tolerance the tests use. Functions with a kink within 2h of the point (a pair crossing
R_c, a collinear triplet with ζ < 1) are outside this estimate; tests avoid them.
"""

import numpy as np

STEP_POSITION = 1e-4   # Å
STEP_STRAIN = 1e-5     # dimensionless
STENCIL = ((1.0, 8.0), (-1.0, -8.0), (2.0, -1.0), (-2.0, 1.0))   # (offset in units of h, weight)


def central_difference(f, x0, step):
    """∂f/∂x at x0 for every component of x0: array of shape x0.shape + f(x0).shape."""
    x0 = np.asarray(x0, float)
    out = None
    for idx in np.ndindex(x0.shape):
        acc = 0.0
        for offset, weight in STENCIL:
            x = x0.copy()
            x[idx] += offset * step
            acc = acc + weight * np.asarray(f(x), float)
        d = acc / (12.0 * step)
        if out is None:
            out = np.zeros(x0.shape + d.shape)
        out[idx] = d
    return out


def fd_positions(f, positions, cell, step=STEP_POSITION):
    """∂f/∂r_j^c of f(positions, cell): shape (n_atoms, 3) + f.shape. Moving atom j moves all its images."""
    cell = np.asarray(cell, float)
    return central_difference(lambda p: f(p, cell), positions, step)


def strained(positions, cell, eps_cc):
    """Positions and cell under r → (I + ε) r (rows are vectors, so r_row → r_row (I + ε)ᵀ)."""
    m = np.eye(3) + eps_cc
    return np.asarray(positions, float) @ m.T, np.asarray(cell, float) @ m.T


def fd_strain(f, positions, cell, step=STEP_STRAIN):
    """∂f/∂ε_ab at ε = 0 of f(positions, cell) under r → (I + ε) r of positions and cell:
    shape (3, 3) + f.shape, ε general (not symmetrised)."""
    return central_difference(lambda e: f(*strained(positions, cell, e)), np.zeros((3, 3)), step)


def roundoff(f0, step):
    """Bound on the round-off of ``central_difference`` at a point where |f| = |f0|: the stencil's weights sum
    to 18/12 = 1.5 in units of 1/h, each f carries a few ε_machine |f| of its own rounding, so 10 ε |f0| / h.
    It dominates when the derivative is tiny beside f / h (a nearly stress-free cell of energy −15 eV)."""
    return 10.0 * np.finfo(float).eps * abs(float(f0)) / step


def scaled_error(actual, expected, scale_axes):
    """max |actual − expected| / scale, the scale being max |expected| over ``scale_axes`` (one scale per
    remaining index, e.g. per centre and feature), floored at 1e-12 × the overall max |expected| + 1e-300."""
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    scale = np.max(np.abs(expected), axis=scale_axes, keepdims=True)
    scale = np.maximum(scale, 1e-12 * np.max(np.abs(expected), initial=0.0) + 1e-300)
    return float(np.max(np.abs(actual - expected) / scale, initial=0.0))
