"""Tests of the model (alw_ref/model.py, alw_ref/forces.py): Eq. 1–3 against finite differences and symmetry."""

from types import SimpleNamespace

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alw_ref.acsf import ACSFSpec
from alw_ref.model import Model, fit_reference_energies, fit_standardization, predict_structure
from fd import STEP_POSITION, STEP_STRAIN, fd_positions, fd_strain, roundoff
from hypothesis import assume

from strategies import away_from_cutoff, structures

RADIAL = ((0.0, 0.0), (0.6, 1.2), (2.0, 2.5))
ANGULAR = ((0.05, 1.0, 1.0), (0.2, 4.0, -1.0))
ANGULAR_G5 = ((0.1, 2.0, 1.0),)


def random_model(elements, seed, activation="tanh", hidden=(6, 5), rc=3.8):
    """A model with random weights, a random standardisation and random reference energies."""
    spec = ACSFSpec(elements=tuple(elements), rc=rc, radial=RADIAL, angular=ANGULAR, angular_g5=ANGULAR_G5)
    m = Model.create(spec, hidden=hidden, activation=activation, seed=seed)
    rng = np.random.default_rng(seed + 1)
    m.g_mean_eg[:] = rng.uniform(0.0, 1.0, m.g_mean_eg.shape)
    m.g_scale_eg[:] = rng.uniform(0.3, 2.0, m.g_scale_eg.shape)
    m.e_ref_e[:] = rng.normal(-3.0, 1.0, len(elements))
    m.theta[:] = rng.normal(0.0, 0.7, m.theta.shape)
    return m


def energy(model, s):
    return lambda p, c: predict_structure(model, s.numbers, p, c, s.pbc, forces_and_stress=False).energy_s[0]


@settings(max_examples=25, deadline=None)
@given(s=structures(n_atoms=(1, 5), n_elements=(1, 3)), seed=st.integers(0, 1000),
       activation=st.sampled_from(["tanh", "softplus", "silu"]))
def test_forces_are_minus_energy_gradient(s, seed, activation):
    """Eq. 2: F = −∂E/∂r (4th-order central differences, h = 1e-4 Å), error ≤ 1e-6 of max |F| plus the
    difference's round-off (``fd.roundoff``; it dominates when the forces nearly vanish)."""
    m = random_model(s.elements, seed, activation)
    assume(away_from_cutoff(s, m.spec.rc))
    pred = predict_structure(m, s.numbers, s.positions, s.cell, s.pbc)
    fd = -fd_positions(energy(m, s), s.positions, s.cell)
    tol = 1e-6 * np.abs(fd).max() + roundoff(pred.energy_s[0], STEP_POSITION)   # eV/Å
    assert np.abs(pred.forces_ic - fd).max() <= tol
    # Translation invariance: Σ_j F_j = 0.
    np.testing.assert_allclose(pred.forces_ic.sum(axis=0), 0.0, atol=1e-10 * (1 + np.abs(pred.forces_ic).max()))


#: CI's draw (2026-11-30) that failed the 1e-6 relative test without the round-off term: 4 Mo atoms, E = −15.0 eV,
#: V = 18.5 Å³, |σ| ~ 5e-6 eV/Å³, so the finite difference's round-off ε|E|/(hV) ≈ 1.8e-11 eV/Å³ is 3.6e-6 of σ.
NEARLY_STRESS_FREE = SimpleNamespace(
    numbers=np.array([42, 42, 42, 42]), pbc=np.array([True, True, True]), elements=(42,),
    positions=np.array([[0.85572655, 2.51649841, 2.74442201], [-1.55711767, 4.19279857, 3.57090118],
                        [0.23290932, 5.3157965, 4.47692201], [-3.09297886, 5.00808429, 3.73359313]]),
    cell=np.array([[-1.48973662, 1.21022118, 2.07177727], [1.73964774, 1.58216846, 1.80893682],
                   [-0.24463201, 2.72813831, -0.24477852]]))


@settings(max_examples=25, deadline=None)
@given(s=structures(n_atoms=(1, 5), n_elements=(1, 3), pbc=(True, True, True)), seed=st.integers(0, 1000))
@example(s=NEARLY_STRESS_FREE, seed=144)
def test_stress_is_strain_derivative_over_volume(s, seed):
    """Eq. 3: σ_ab = (1/V) ∂E/∂ε_ab under r → (I+ε) r (ASE sign), symmetric; finite strain h = 1e-5. Error ≤ 1e-6
    of max |σ| plus the difference's round-off (``fd.roundoff``) / V, which dominates for nearly stress-free
    cells."""
    m = random_model(s.elements, seed)
    assume(away_from_cutoff(s, m.spec.rc))
    pred = predict_structure(m, s.numbers, s.positions, s.cell, s.pbc)
    V = abs(np.linalg.det(s.cell))
    sigma_fd = fd_strain(energy(m, s), s.positions, s.cell) / V
    voigt_fd = np.array([sigma_fd[a, b] for a, b in ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))])
    tol = 1e-6 * np.abs(sigma_fd).max() + roundoff(pred.energy_s[0], STEP_STRAIN) / V   # eV/Å³
    assert np.abs(pred.stress_sv[0] - voigt_fd).max() <= tol
    assert np.abs(sigma_fd - sigma_fd.T).max() <= tol  # the lower triangle agrees with Voigt's upper


@settings(max_examples=20, deadline=None)
@given(s=structures(n_atoms=(2, 5), n_elements=(1, 3)), seed=st.integers(0, 1000))
def test_energy_invariances(s, seed):
    """E, F, σ under translation, rotation (F and σ rotate) and permutation of same-element atoms."""
    m = random_model(s.elements, seed)
    ref = predict_structure(m, s.numbers, s.positions, s.cell, s.pbc)
    rng = np.random.default_rng(seed)
    tol = 1e-10 * (1 + abs(ref.energy_s[0]))
    moved = predict_structure(m, s.numbers, s.positions + rng.normal(size=3), s.cell, s.pbc)
    assert abs(moved.energy_s[0] - ref.energy_s[0]) <= tol
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    R = q * np.sign(np.diag(r))
    rot = predict_structure(m, s.numbers, s.positions @ R.T, s.cell @ R.T, s.pbc)
    assert abs(rot.energy_s[0] - ref.energy_s[0]) <= tol
    np.testing.assert_allclose(rot.forces_ic, ref.forces_ic @ R.T, atol=1e-9 * (1 + np.abs(ref.forces_ic).max()))
    perm = np.arange(len(s.numbers))
    for z in np.unique(s.numbers):
        idx = np.flatnonzero(s.numbers == z)
        perm[idx] = rng.permutation(idx)
    p = predict_structure(m, s.numbers[perm], s.positions[perm], s.cell, s.pbc)
    assert abs(p.energy_s[0] - ref.energy_s[0]) <= tol
    np.testing.assert_allclose(p.forces_ic, ref.forces_ic[perm], atol=1e-10 * (1 + np.abs(ref.forces_ic).max()))
    # σ (eV/Å³, Voigt xx yy zz yz xz xy): unchanged by translation and permutation, R σ Rᵀ under rotation;
    # NaN exactly when the structure has no volume (then in every image too)
    sig = ref.stress_sv[0]
    if np.all(np.isnan(sig)):
        for other in (moved, rot, p):
            assert np.all(np.isnan(other.stress_sv[0]))
        return
    stol = 1e-9 * (1 + np.abs(sig).max())
    np.testing.assert_allclose(moved.stress_sv[0], sig, atol=stol)
    np.testing.assert_allclose(p.stress_sv[0], sig, atol=stol)

    def full(v):                                   # Voigt (xx yy zz yz xz xy) → 3×3, typed in here
        return np.array([[v[0], v[5], v[4]], [v[5], v[1], v[3]], [v[4], v[3], v[2]]])
    np.testing.assert_allclose(full(rot.stress_sv[0]), R @ full(sig) @ R.T, atol=stol)


def test_energy_is_sum_of_atomic_energies_with_reference():
    """Eq. 1: E = Σ_i (ε_Z + NN_Z(x_i)); a network with zero output weights gives E = Σ ε_Z."""
    m = random_model((42, 52), seed=3)
    last = m.layers(0)[-1][0].size + m.layers(0)[-1][1].size
    n_el_params = m.theta.size // 2
    for e in range(2):
        m.theta[(e + 1) * n_el_params - last:(e + 1) * n_el_params] = 0.0
    numbers = np.array([42, 52, 52])
    pos = np.array([[0.0, 0, 0], [2.2, 0.1, 0], [0.3, 2.4, 0.2]])
    pred = predict_structure(m, numbers, pos, np.eye(3) * 7.0, np.array([True] * 3))
    assert pred.energy_s[0] == m.e_ref_e[0] + 2 * m.e_ref_e[1]
    np.testing.assert_array_equal(pred.forces_ic, 0.0)


def test_stress_is_nan_without_periodicity():
    m = random_model((42,), seed=1)
    pred = predict_structure(m, np.array([42, 42]), np.array([[0.0, 0, 0], [2.5, 0, 0]]), np.zeros((3, 3)),
                             np.array([False] * 3))
    assert np.all(np.isnan(pred.stress_sv)) and np.all(np.isfinite(pred.forces_ic))


def test_fit_reference_energies_recovers_per_element_energies():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 20, (30, 3))
    eps = np.array([-3.1, -7.4, -0.5])
    np.testing.assert_allclose(fit_reference_energies(counts @ eps, counts), eps, rtol=1e-12)
    # Fixed stoichiometry: only the combination is determined; the fit reproduces the energies.
    counts = np.tile([18, 36], (5, 1))
    e = counts @ np.array([-10.0, -4.0]) + rng.normal(0, 1e-3, 5)
    fit = fit_reference_energies(e, counts)
    np.testing.assert_allclose(counts @ fit, e.mean(), atol=2e-3)


def test_fit_standardization_zero_variance_and_missing_element():
    G = np.array([[1.0, 5.0], [3.0, 5.0], [7.0, 2.0]])
    species = np.array([0, 0, 1])
    mean, scale = fit_standardization(G, species, n_elements=3)
    np.testing.assert_allclose(mean[0], [2.0, 5.0])
    np.testing.assert_allclose(scale[0], [1.0, 1.0])  # std of column 0 is 1; column 1 is constant → 1
    np.testing.assert_allclose(mean[1], [7.0, 2.0])
    np.testing.assert_allclose(scale[1], [1.0, 1.0])
    np.testing.assert_allclose(mean[2], 0.0)
    G[:, 0] *= 3.0
    assert fit_standardization(G, species, 3)[1][0, 0] == 3.0


def test_training_memory_estimate_counts_the_compact_copy():
    """The memory check's estimate (``estimate_training_derivative_bytes``, from 8 of 40 structures of the
    bundled Mo example) is within 1.25x of the real bytes training holds: describe_dataset's derivatives
    plus the compact copy make_batch builds. The stored derivatives alone (``estimate_derivative_bytes``,
    what the check used before) miss the copy: with one element it is as large as the stored blocks."""
    from alw_ref.data import read_dataset
    from alw_ref.describe import describe_dataset, estimate_derivative_bytes
    from alw_ref.model import derivative_layout, estimate_training_derivative_bytes, make_batch
    from alw_ref.train import EXAMPLE_TRAIN, example_path

    full = read_dataset(example_path(EXAMPLE_TRAIN))
    data = full.subset(np.arange(0, 160, 4))
    spec = ACSFSpec(elements=(42,), rc=4.0, radial=RADIAL, angular=ANGULAR)
    desc = describe_dataset(data, spec)
    species = spec.species_index(data.numbers)
    batch = make_batch(data, desc, np.arange(len(data)), species)
    assert batch.layout is derivative_layout(desc, species)
    real = desc.derivative_bytes_per_atom * len(desc.G_ig) + batch.layout.nbytes
    estimate = estimate_training_derivative_bytes(data, spec, sample=8)
    assert real / 1.25 <= estimate <= 1.25 * real, (estimate, real)
    assert estimate_derivative_bytes(data, spec, sample=8) < 0.6 * real  # the old estimate: about half
