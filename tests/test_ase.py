"""Tests of alw_ref.ase.ALWCalculator: the committee mode (several models: mean and spread) and the 0.1 Å rule.

The single-model calculator against ASE's finite differences is tested in tests/test_potential.py and
tests/test_crosscheck.py; here each committee number is recomputed from single-model calculators with
plain NumPy (mean, population standard deviation, per-atom deviation √(mean_m |F_mi − F̄_i|²)).
"""

import numpy as np
import pytest

ase = pytest.importorskip("ase", reason="the ALWCalculator needs the ase extra (pip install alw_ref[ase])")

from alw_ref.acsf import ACSFSpec  # noqa: E402
from alw_ref.ase import ALWCalculator  # noqa: E402
from alw_ref.model import Model  # noqa: E402
from alw_ref.potential import Potential, save_model  # noqa: E402


def bcc_mo(seed=0):
    a = 3.16
    grid = np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    frac = np.concatenate([grid, grid + 0.5]) / 2
    cell = np.eye(3) * 2 * a
    pos = frac @ cell + np.random.default_rng(seed).normal(0, 0.08, (len(frac), 3))
    return ase.Atoms(numbers=[42] * len(pos), positions=pos, cell=cell, pbc=True)


def models():
    spec = ACSFSpec.default((42,), 4.0)
    out = []
    for seed in (1, 2, 3):
        m = Model.create(spec, (5,), "tanh", seed=seed)
        m.g_scale_eg[:] = 2.0  # keep tanh out of saturation
        out.append(m)
    return out


def single_results(ms, atoms):
    res = []
    for m in ms:
        a = atoms.copy()
        a.calc = ALWCalculator(m)
        res.append((a.get_potential_energy(), a.get_forces(), a.get_stress()))
    return res


def test_committee_mean_and_spread_by_hand(tmp_path):
    ms = models()
    save_model(ms[2], tmp_path / "m3.h5")
    atoms = bcc_mo()
    singles = single_results(ms, atoms)
    # a mix of a Model, a Potential and a file path
    atoms.calc = ALWCalculator([ms[0], Potential(ms[1]), str(tmp_path / "m3.h5")])
    e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    E = np.array([x[0] for x in singles])
    F = np.stack([x[1] for x in singles])
    S = np.stack([x[2] for x in singles])
    r = atoms.calc.results
    assert e == pytest.approx(E.sum() / 3, rel=1e-14)
    np.testing.assert_allclose(f, F.sum(axis=0) / 3, rtol=0, atol=1e-14)
    np.testing.assert_allclose(s, S.sum(axis=0) / 3, rtol=0, atol=1e-16)
    assert r["energy_std"] == pytest.approx(np.sqrt(((E - E.mean()) ** 2).mean()), rel=1e-10)
    assert r["energy_std"] > 0
    np.testing.assert_allclose(r["forces_std"], np.sqrt(((F - F.mean(0)) ** 2).mean(0)), rtol=1e-10, atol=1e-16)
    by_hand = [np.sqrt(np.mean([np.sum((F[m, i] - F[:, i].mean(0)) ** 2) for m in range(3)]))
               for i in range(len(atoms))]
    np.testing.assert_allclose(r["forces_deviation"], by_hand, rtol=1e-10)
    np.testing.assert_allclose(r["stress_std"], np.sqrt(((S - S.mean(0)) ** 2).mean(0)), rtol=1e-10, atol=1e-18)
    assert r["free_energy"] == e and r["energies"].sum() == pytest.approx(e, rel=1e-12)


def test_single_model_is_unchanged_and_has_zero_spread():
    m = models()[0]
    atoms = bcc_mo(seed=1)
    (e, f, s), = single_results([m], atoms)
    atoms.calc = ALWCalculator([m])
    assert atoms.get_potential_energy() == e
    np.testing.assert_array_equal(atoms.get_forces(), f)
    np.testing.assert_array_equal(atoms.get_stress(), s)
    assert atoms.calc.results["energy_std"] == 0.0 and not atoms.calc.results["forces_deviation"].any()
    assert atoms.calc.model is m and atoms.calc.models == [m]


def test_committee_without_cell_has_no_stress():
    from ase.calculators.calculator import PropertyNotImplementedError

    molecule = ase.Atoms("Mo2", positions=[[0, 0, 0], [2.6, 0, 0]])
    molecule.calc = ALWCalculator(models()[:2])
    assert np.isfinite(molecule.get_forces()).all() and "stress_std" not in molecule.calc.results
    with pytest.raises(PropertyNotImplementedError):
        molecule.get_stress()


def test_empty_committee_is_an_error():
    with pytest.raises(ValueError, match="at least one model"):
        ALWCalculator([])


@pytest.mark.parametrize("positions, pbc", [
    ([[0, 0, 0], [0.05, 0, 0]], False),
    ([[0.02, 1, 1], [4.97, 1, 1]], True)])       # through the periodic boundary of the 5 Å cell
def test_atoms_closer_than_0_1_angstrom_are_refused(positions, pbc):
    """Issue 12 item 14: the calculator applies the dataset's 0.1 Å rule and names the pair."""
    from alw_ref.errors import DataError

    atoms = ase.Atoms("Mo2", positions=positions, cell=np.eye(3) * 5.0, pbc=pbc)
    atoms.calc = ALWCalculator(models()[0])
    with pytest.raises(DataError, match=r"^structure: field 'positions': atoms 0 and 1 are 0\.050 Å apart "
                                        r"\(minimum 0\.1 Å\)$"):
        atoms.get_potential_energy()
    atoms.positions[1, 0] += -0.06 if pbc else 0.06             # 0.11 Å apart: allowed
    assert np.isfinite(atoms.get_potential_energy())
