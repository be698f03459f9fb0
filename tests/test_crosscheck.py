"""Cross-checks against independent implementations (issue 6; ``pip install alw_ref[crosscheck]``).

Each group is skipped, with the reason, when its peer package is missing:

1. ACSF values and dG/dr against DScribe 2.x (``dscribe.descriptors.ACSF``, numerical derivatives with
   ``attach=True``) on rattled periodic rocksalt-like cells (cubic and triclinic, vacancies, 2–3 elements,
   R_c larger than the cell so that atoms see their own images).
2. E, F, σ through ``alw_ref.ase.ALWCalculator`` against ASE's ``FiniteDifferenceCalculator``
   (``ase.calculators.fd``: central differences of ``free_energy`` in positions and strain).
3. The full training gradient ∂L/∂θ (and E, F, σ) against the PyTorch autograd double-backward
   implementation in ``benchmarks/torch_reference.py``; that file is not part of the package, so the
   test inserts the project's ``benchmarks/`` folder into ``sys.path`` to import it.

Conventions that differ in DScribe and how they are mapped (``dscribe_columns``):
  * DScribe sorts its species by atomic number; our species order is ``spec.elements`` as given. The
    specs below list elements out of Z order (Te, Mo, S) so the mapping is exercised.
  * DScribe has no ``get_location`` for ACSF (2.1.2); its layout, from its C++ source
    (``dscribe/ext/acsf.cpp``): per species e (sorted Z): [G1, G2 for each (η, R_s), G3 …], then per
    species pair (e_j ≥ e_k; (0,0), (1,0), (1,1), (2,0), …, block index e_j(e_j+1)/2 + e_k):
    [G4 for each (η, ζ, λ), G5 for each (η, ζ, λ)]. Ours (alw_ref/acsf.py): [G2 per element per
    (η, R_s)] [G4 per pair (a ≤ b) row-major per params] [G5 likewise]: G4 and G5 are not interleaved.
  * DScribe always emits a G1 per element and rejects η = 0 in ``g2_params``; our G1 is the radial
    entry (η, R_s) = (0, 0), so the specs below include it and it maps onto DScribe's G1 column
    (the map is then a bijection, checked).
  * DScribe's angular term is 2·(½(1 + λ cos θ))^ζ = 2^(1−ζ)(1 + λ cos θ)^ζ, counted once per unordered
    neighbour pair, as ours; it does not clip 1 + λ cos θ at 0, which only matters for |λ| ≠ 1.
    Integer ζ is used: an atom and its images at ±a form exactly collinear triplets where DScribe's
    1 + cos θ may round to −1e-16, and a non-integer power of that is NaN in DScribe.
  * DScribe's derivative array is (n_centres, n_atoms, 3, n_features), d G_i / d r_j with every
    periodic image of j moved along (the extended system is rebuilt); ours are sparse blocks
    (i, j) of ∂G_i/∂r_j summed over the images of j: the same quantity once densified.
"""

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from alw_ref.acsf import ACSFSpec, compute_acsf
from alw_ref.data import Dataset, Structure
from alw_ref.describe import compute_descriptors
from alw_ref.loss import loss_and_gradient
from alw_ref.model import make_batch
from alw_ref.neighbors import neighbor_list
from test_model import random_model

EPS = np.finfo(np.float64).eps
ELEMENTS = (52, 42, 16)   # Te, Mo, S: deliberately not in ascending Z (DScribe sorts its species)

# Rocksalt conventional cell, fractional sites (two interpenetrating fcc lattices).
ROCKSALT_FRAC = np.array([[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5],
                          [.5, 0, 0], [0, .5, 0], [0, 0, .5], [.5, .5, .5]])


def rattled_crystal(seed, n_atoms, n_elements, triclinic, a=4.4, rattle=0.12):
    """(numbers (n,) int64, positions (n, 3) Å, cell (3, 3) Å): ``n_atoms`` ≤ 8 of the rocksalt sites of
    a cubic cell of edge ``a`` (vacancies elsewhere), displaced by N(0, rattle²) Å; ``triclinic`` applies
    a random general (non-symmetric) deformation of up to ±12 % to the cell. Every one of the first
    ``n_elements`` of ELEMENTS occurs (n_atoms ≥ n_elements)."""
    rng = np.random.default_rng(seed)
    cell = a * np.eye(3)
    if triclinic:
        cell = cell @ (np.eye(3) + rng.uniform(-0.12, 0.12, (3, 3))).T
    sites = rng.choice(len(ROCKSALT_FRAC), n_atoms, replace=False)
    positions = ROCKSALT_FRAC[sites] @ cell + rng.normal(0.0, rattle, (n_atoms, 3))
    numbers = rng.permutation(np.resize(np.array(ELEMENTS[:n_elements], np.int64), n_atoms))
    return numbers, positions, cell


def cutoff_in_gap(positions, cell, lo, hi, margin):
    """A cutoff R_c in [lo, hi] Å at the middle of the widest gap between interatomic distances (periodic
    images included), or None when that gap is narrower than 2·margin: every distance is then ≥ margin
    away from R_c, so finite-difference stencils spanning ≤ margin never cross the kink of f_c at R_c."""
    nl = neighbor_list(positions, cell, np.ones(3, bool), hi + margin)
    d = np.sort(np.concatenate(([lo - margin, hi + margin], nl.d_n[nl.d_n > lo - margin])))
    k = int(np.argmax(np.diff(d)))
    if d[k + 1] - d[k] < 2 * margin:
        return None
    return float(np.clip(0.5 * (d[k] + d[k + 1]), lo, hi))


# ==================================================================== 1. ACSF against DScribe
DSCRIBE_STEP = 1e-4   # Å; DescriptorLocal.derivatives_numerical: two-point central stencil ±h (DScribe 2.1)
THIRD_STEP = 1e-3     # Å; step of the five-point third-derivative stencil below

RADIAL = ((0.0, 0.0), (0.5, 0.0), (1.5, 2.2), (3.0, 3.0))          # (0, 0) is G1
ANGULAR = ((0.02, 1.0, 1.0), (0.05, 2.0, -1.0), (0.1, 4.0, 1.0))     # integer ζ, see module docstring
ANGULAR_G5 = ((0.03, 1.0, -1.0), (0.08, 2.0, 1.0))


@pytest.fixture(scope="module")
def dscribe_acsf():
    """DScribe's ACSF class; the DScribe tests are skipped when DScribe (or ASE) is missing."""
    pytest.importorskip("ase", reason="the crosscheck extra is not installed (needs ase)")
    mod = pytest.importorskip("dscribe.descriptors",
                              reason="the crosscheck extra is not installed (needs dscribe>=2.1)")
    return mod.ACSF


def acsf_spec(n_elements, rc):
    return ACSFSpec(elements=ELEMENTS[:n_elements], rc=rc, radial=RADIAL, angular=ANGULAR,
                    angular_g5=ANGULAR_G5)


def dscribe_for(ACSF, spec):
    """DScribe ACSF computing the same functions as ``spec`` (whose radial list holds G1 = (0, 0))."""
    return ACSF(species=list(spec.elements), r_cut=spec.rc,
                g2_params=[list(p) for p in spec.radial if p != (0.0, 0.0)],
                g4_params=[list(p) for p in spec.angular], g5_params=[list(p) for p in spec.angular_g5],
                periodic=True)


def dscribe_columns(spec, n_features_dscribe):
    """(D,) int64: the DScribe column of each of our features (layout in the module docstring)."""
    ds_index = {z: k for k, z in enumerate(sorted(spec.elements))}          # DScribe sorts by Z
    d_e = [ds_index[z] for z in spec.elements]
    g2 = [p for p in spec.radial if p != (0.0, 0.0)]
    n_g2, n_g4, n_g5, n_types = len(g2), len(spec.angular), len(spec.angular_g5), spec.n_elements
    cols = [d_e[e] * (1 + n_g2) + (0 if p == (0.0, 0.0) else 1 + g2.index(p))
            for e in range(n_types) for p in spec.radial]
    for first, params in ((0, spec.angular), (n_g4, spec.angular_g5)):
        for a, b in spec.element_pairs():
            hi, lo = max(d_e[a], d_e[b]), min(d_e[a], d_e[b])
            block = hi * (hi + 1) // 2 + lo
            cols += [n_types * (1 + n_g2) + block * (n_g4 + n_g5) + first + q for q in range(len(params))]
    cols = np.array(cols, np.int64)
    assert sorted(cols.tolist()) == list(range(n_features_dscribe)), "column map is not a bijection"
    return cols


def dense_dG_dr(result, n_atoms):
    """(n_atoms, n_atoms, D, 3) Å⁻¹: ∂G_i/∂r_j from the sparse blocks of an ACSFResult."""
    out = np.zeros((n_atoms, n_atoms, result.G_ig.shape[1], 3))
    centre_b = np.repeat(np.arange(n_atoms), np.diff(result.block_first_i))
    out[centre_b, result.block_j] = result.dG_dr_bgc   # block_j is unique per centre
    return out


def third_derivatives(create, atoms, step=THIRD_STEP):
    """(n, n, 3, D_dscribe): ∂³G_i/∂(r_j^c)³ from DScribe's values, moving atom j (and its images), by
    [G(x+2s) − 2G(x+s) + 2G(x−s) − G(x−2s)] / (2s³). Truncation (s²/4) G⁽⁵⁾, round-off ~3ε|G|/s³."""
    n = len(atoms)
    out = None
    for j in range(n):
        for c in range(3):
            acc = 0.0
            for offset, weight in ((2, 1.0), (1, -2.0), (-1, 2.0), (-2, -1.0)):
                moved = atoms.copy()
                p = moved.get_positions()
                p[j, c] += offset * step
                moved.set_positions(p)
                acc = acc + weight * create(moved)
            if out is None:
                out = np.zeros((n, n, 3, acc.shape[1]))
            out[:, j, c] = acc / (2 * step ** 3)
    return out


def dscribe_case(ACSF, seed, n_atoms, n_elements, triclinic):
    """(spec, ase.Atoms, DScribe ACSF, our-feature → DScribe-column map) for one rattled crystal."""
    from ase import Atoms

    numbers, positions, cell = rattled_crystal(seed, n_atoms, n_elements, triclinic)
    rc = cutoff_in_gap(positions, cell, 4.3, 4.9, margin=4 * THIRD_STEP)
    assume(rc is not None)
    spec = acsf_spec(n_elements, rc)
    acsf = dscribe_for(ACSF, spec)
    return spec, Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True), acsf, \
        dscribe_columns(spec, acsf.get_number_of_features())


crystal_args = dict(seed=st.integers(0, 2**32 - 1), n_elements=st.sampled_from([2, 3]),
                    n_atoms=st.integers(3, 8), triclinic=st.booleans())


@settings(max_examples=25, deadline=None)
@given(**crystal_args)
def test_acsf_values_match_dscribe(dscribe_acsf, seed, n_atoms, n_elements, triclinic):
    """G_ig equals DScribe's ``create`` in the mapped columns: |ΔG_ig| ≤ 1e-10 · max_i |G_ig| (per
    feature) + 1e-14 · max |G| (features that are all but zero)."""
    spec, atoms, acsf, cols = dscribe_case(dscribe_acsf, seed, n_atoms, n_elements, triclinic)
    ours = compute_acsf(spec, atoms.numbers, atoms.positions, np.asarray(atoms.cell), atoms.pbc,
                        derivatives=False).G_ig
    theirs = acsf.create(atoms)[:, cols]
    tol = 1e-10 * np.abs(theirs).max(axis=0) + 1e-14 * np.abs(theirs).max()
    err = np.abs(ours - theirs)
    assert np.all(err <= tol), f"worst feature {spec.feature_labels()[np.argmax((err / tol).max(0))]}"


@settings(max_examples=10, deadline=None)
@given(**crystal_args)
def test_acsf_derivatives_match_dscribe_numerical(dscribe_acsf, seed, n_atoms, n_elements, triclinic):
    """Analytic ∂G_i/∂r_j (blocks summed over images of j) against DScribe's numerical derivatives.

    DScribe differentiates with a two-point central stencil, h = 1e-4 Å, whose error is
    (h²/6) ∂³G/∂x³ + O(h⁴) (about 1e-7 of the derivative here, up to 1e-6) plus round-off ~ε|G_ig|/h.
    We estimate ∂³G/∂x³ from DScribe's own values (``third_derivatives``, s = 1e-3 Å; R_c is chosen so
    that no distance lies within 4s of it) and check twice:
      (a) the step's error bound: |ours − DScribe| ≤ 2 (h²/6) max_{j,c} |∂³G_ig/∂(r_j^c)³|
          + 64 ε |G_ig| / h + 1e-10 s_ig + f, with s_ig = max_{j,c} |∂G_ig/∂r_j^c| and the floor
          f = 1e-12 max |∂G/∂r| (exactly collinear triplets of an atom and its images: DScribe's
          1 + cos θ is ±1e-16 there, so its B^ζ terms are noise of order 1e-16ζ);
      (b) with the leading truncation term removed: |ours − (DScribe − (h²/6) ∂³G/∂x³)|
          ≤ 1e-9 s_g + 64 ε |G_ig| / h + f, s_g = max_{i,j,c} |∂G_ig/∂r_j^c|
          (what remains: O(h⁴) terms, round-off, and the s² error of the estimate).
    (b) is sensitive to errors ~1e-9 of the derivative and to a change of DScribe's step.
    """
    spec, atoms, acsf, cols = dscribe_case(dscribe_acsf, seed, n_atoms, n_elements, triclinic)
    n = len(atoms)
    res = compute_acsf(spec, atoms.numbers, atoms.positions, np.asarray(atoms.cell), atoms.pbc)
    ours = dense_dG_dr(res, n)                                              # (i, j, g, c)
    deriv, values = acsf.derivatives(atoms, method="numerical", attach=True)  # (i, j, c, g_dscribe)
    assert deriv.shape == (n, n, 3, acsf.get_number_of_features())
    theirs = deriv[..., cols].transpose(0, 1, 3, 2)
    third = third_derivatives(acsf.create, atoms)[..., cols].transpose(0, 1, 3, 2)
    h = DSCRIBE_STEP
    truncation = h * h / 6 * third
    roundoff = 64 * EPS * np.abs(values[:, cols])[:, None, :, None] / h
    s_ig = np.abs(theirs).max(axis=(1, 3), keepdims=True)
    err = np.abs(ours - theirs)
    floor = 1e-12 * np.abs(theirs).max()   # exactly collinear own-image triplets: DScribe's B ~ ±1e-16
    tol_a = 2 * np.abs(truncation).max(axis=(1, 3), keepdims=True) + roundoff + 1e-10 * s_ig + floor
    assert np.all(err <= tol_a), f"(a) worst ratio {np.max(err / tol_a):.3g}"
    err_b = np.abs(ours - (theirs - truncation))
    tol_b = 1e-9 * np.abs(theirs).max(axis=(0, 1, 3), keepdims=True) + roundoff + floor
    assert np.all(err_b <= tol_b), f"(b) worst ratio {np.max(err_b / tol_b):.3g}"


# ==================================================================== 2. ASE calculator against ase.calculators.fd
FD_DISPLACEMENT = 1e-5   # Å
FD_STRAIN = 2e-6         # dimensionless


@pytest.fixture(scope="module")
def ase_fd():
    """(ase.Atoms, FiniteDifferenceCalculator, ALWCalculator), skipping the group without ASE."""
    ase = pytest.importorskip("ase", reason="the crosscheck (or ase) extra is not installed (needs ase>=3.22)")
    fd = pytest.importorskip("ase.calculators.fd",
                             reason="ase.calculators.fd (FiniteDifferenceCalculator) needs ase>=3.24")
    from alw_ref.ase import ALWCalculator

    return ase.Atoms, fd.FiniteDifferenceCalculator, ALWCalculator


@settings(max_examples=8, deadline=None)
@given(**crystal_args, model_seed=st.integers(0, 1000), activation=st.sampled_from(["tanh", "softplus", "silu"]))
def test_ase_calculator_matches_ase_finite_differences(ase_fd, seed, n_atoms, n_elements, triclinic,
                                                       model_seed, activation):
    """ALWCalculator's forces and stress equal ASE's central differences of ``free_energy``
    (FiniteDifferenceCalculator, displacement h = 1e-5 Å, strain e = 2e-6; force_consistent=True, so
    the calculator must provide ``free_energy``, which must equal ``energy``).

    Error of a two-point central difference: truncation (h²/6) ∂³E/∂x³ ≈ 2e-11 Å² · |∂³E/∂x³|,
    ≲ 2e-10 of max |F| for the length scales ℓ ≳ 0.3 Å of these features; for strain ∂/∂ε ~ R ∂/∂r
    with R ≤ R_c, so (e²/6)(R_c/ℓ)² ≲ 2e-10 of max |σ|; plus round-off ~ ε Σ_i |E_i| / h (E summed over
    atoms, each with relative error ~ε). Measured: ≲ 1e-9 relative for both. Tolerances:
      |ΔF| ≤ 1e-8 max |F| + 100 ε Σ_i |E_i| / h,   |Δσ| ≤ 1e-8 max |σ| + 100 ε Σ_i |E_i| / (e V).
    R_c is placed ≥ 1e-3 Å from every distance so no stencil crosses the kink of f_c at R_c.
    """
    Atoms, FiniteDifferenceCalculator, ALWCalculator = ase_fd
    numbers, positions, cell = rattled_crystal(seed, n_atoms, n_elements, triclinic)
    rc = cutoff_in_gap(positions, cell, 4.3, 4.9, margin=1e-3)
    assume(rc is not None)
    model = random_model(ELEMENTS[:n_elements], model_seed, activation=activation, rc=rc)
    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)
    atoms.calc = ALWCalculator(model)
    energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    energies = atoms.get_potential_energies()
    assert atoms.calc.get_property("free_energy", atoms) == energy
    assert energy == pytest.approx(energies.sum(), rel=1e-13)

    reference = atoms.copy()
    reference.calc = FiniteDifferenceCalculator(ALWCalculator(model), eps_disp=FD_DISPLACEMENT,
                                                eps_strain=FD_STRAIN)
    roundoff = 100 * EPS * np.abs(energies).sum()
    forces_fd, stress_fd = reference.get_forces(), reference.get_stress()
    assert reference.get_potential_energy() == pytest.approx(energy, rel=1e-14)
    np.testing.assert_allclose(forces, forces_fd, rtol=0,
                               atol=1e-8 * np.abs(forces_fd).max() + roundoff / FD_DISPLACEMENT)
    np.testing.assert_allclose(stress, stress_fd, rtol=0,
                               atol=1e-8 * np.abs(stress_fd).max() + roundoff / (FD_STRAIN * atoms.get_volume()))


# ==================================================================== 3. training gradient against PyTorch
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def torch_reference():
    """benchmarks/torch_reference.py, imported by putting the benchmarks folder on sys.path for the import
    (it is not part of the package); the PyTorch tests are skipped when torch is missing."""
    pytest.importorskip("torch", reason="the crosscheck extra is not installed (needs torch==2.13.0)")
    if not (BENCHMARKS / "torch_reference.py").is_file():
        pytest.skip(f"{BENCHMARKS / 'torch_reference.py'} is missing")
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import torch_reference as module
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_torch_reference_has_its_own_constants_and_they_agree_with_ase(torch_reference):
    """Issue 14: the PyTorch reference must not take the Voigt pairs and the eV/Å³ → GPa factor from
    alw_ref.units (it could not catch an error in them). Its own constants against ASE: the GPa factor
    against 1/ase.units.GPa (CODATA 2014 there, 2018 here: 8e-9 relative apart), the Voigt order against
    ase.stress.full_3x3_to_voigt_6_stress of a symmetric tensor whose entries number their Voigt slot."""
    ase_units = pytest.importorskip("ase.units")
    from ase.stress import full_3x3_to_voigt_6_stress

    source = (BENCHMARKS / "torch_reference.py").read_text()
    assert not re.search(r"^\s*(from|import)\s+alw_ref\.units", source, re.M)
    assert torch_reference.EV_PER_A3_IN_GPA == pytest.approx(1.0 / ase_units.GPa, rel=1e-8)
    tensor = np.array([[0.0, 5.0, 4.0], [5.0, 1.0, 3.0], [4.0, 3.0, 2.0]])
    np.testing.assert_array_equal(full_3x3_to_voigt_6_stress(tensor), np.arange(6.0))
    np.testing.assert_array_equal(tensor[torch_reference._VOIGT_A, torch_reference._VOIGT_B], np.arange(6.0))


def mixed_dataset(seed):
    """Four labelled structures (random labels): two rattled triclinic/cubic crystals with stress, a
    periodic crystal of two elements without stress and a non-periodic cluster (no cell, no stress)."""
    rng = np.random.default_rng(seed)
    raw = [rattled_crystal(seed, 6, 3, True), rattled_crystal(seed + 1, 4, 2, False),
           rattled_crystal(seed + 2, 5, 3, True)]
    cluster = np.array([[0.0, 0.0, 0.0], [2.1, 0.3, 0.0], [0.4, 2.2, 0.5]]) + rng.normal(0, 0.1, (3, 3))
    raw.append((np.array([16, 42, 52]), cluster, np.zeros((3, 3))))
    with_stress = (True, False, True, False)
    out = []
    for k, ((numbers, positions, cell), has_stress) in enumerate(zip(raw, with_stress)):
        n = len(numbers)
        out.append(Structure(numbers=numbers, positions=positions, cell=cell, pbc=np.full(3, cell.any()),
                             energy=float(rng.normal(-3.0 * n, 1.0)), forces=rng.normal(0, 1.0, (n, 3)),
                             stress=rng.normal(0, 0.02, 6) if has_stress else None, name=f"s{k}"))
    return Dataset.from_structures(out)


@pytest.mark.parametrize("form", ["rmse", "mse"])
@pytest.mark.parametrize("activation", ["tanh", "softplus", "silu"])
def test_training_gradient_matches_torch_double_backward(torch_reference, activation, form):
    """L, its parts, E, F, σ and ∂L/∂θ (every parameter of the three elements' networks; random weights,
    standardisation, reference energies and loss weights) equal PyTorch autograd's double backward on
    the same descriptors: |Δ∂L/∂θ| ≤ 1e-10 max |∂L/∂θ|, L and parts to 1e-12 relative, E, F, σ to 1e-12
    of their largest magnitude. The shuffled batch has a periodic structure without a stress label and
    a non-periodic cluster (no volume, no stress)."""
    tr = torch_reference
    seed = {"tanh": 3, "softplus": 17, "silu": 29}[activation] + (form == "mse")
    model = random_model(ELEMENTS, seed, activation=activation)
    ds = mixed_dataset(seed)
    batch = make_batch(ds, compute_descriptors(ds, model.spec), np.random.default_rng(seed).permutation(len(ds)),
                       model.spec.species_index(ds.numbers))
    assert batch.has_stress_s.sum() == 2 and (batch.volume_s == 0).sum() == 1
    weights = dict(zip(("energy", "forces", "stress"), np.random.default_rng(seed).uniform(0.1, 3.0, 3)))
    ours = loss_and_gradient(model, batch, weights, form)
    total, parts, grad, pred = tr.loss_and_gradient(tr.TorchModel.from_model(model),
                                                    tr.TorchBatch.from_batch(batch, len(model.elements)),
                                                    weights, form)
    assert ours.total == pytest.approx(total, rel=1e-12)
    for k, v in parts.items():
        assert ours.parts[k] == pytest.approx(v, rel=1e-12), k
    p = ours.prediction
    has_volume = batch.volume_s > 0
    theirs = {k: getattr(pred, k).detach().numpy() for k in ("energy_s", "forces_ic", "stress_sv")}
    for k, mine, ref in (("energy_s", p.energy_s, theirs["energy_s"]), ("forces_ic", p.forces_ic, theirs["forces_ic"]),
                         ("stress_sv", p.stress_sv[has_volume], theirs["stress_sv"][has_volume])):
        np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-12 * np.abs(ref).max(), err_msg=k)
    assert grad.shape == ours.gradient.shape == model.theta.shape
    err = np.abs(ours.gradient - grad)
    assert err.max() <= 1e-10 * np.abs(grad).max(), f"worst parameter {np.argmax(err)}: {err.max():.3g}"
