"""Tests of the model file and Potential (alw_ref/potential.py) and the ASE calculator (alw_ref/ase.py)."""

import h5py
import numpy as np
import pytest

from alw_ref.data import Structure
from alw_ref.errors import ModelError, SpecError
from alw_ref.potential import Potential, load_model, save_model
from test_model import random_model


def bcc_mo(rattle=0.05, seed=0, reps=2):
    """Rattled bcc Mo supercell (a = 3.16 Å), as a Structure without labels."""
    a = 3.16
    grid = np.stack(np.meshgrid(*[np.arange(reps)] * 3, indexing="ij"), -1).reshape(-1, 3)
    frac = np.concatenate([grid, grid + 0.5]) / reps
    cell = np.eye(3) * a * reps
    rng = np.random.default_rng(seed)
    pos = frac @ cell + rng.normal(0, rattle, (len(frac), 3))
    return Structure(numbers=np.full(len(pos), 42), positions=pos, cell=cell, pbc=np.array([True] * 3))


def test_save_load_predict_identical(tmp_path):
    m = random_model((42, 52), seed=4, activation="silu")
    m.meta["note"] = "test"
    path = tmp_path / "model.h5"
    save_model(m, path)
    assert not list(tmp_path.glob("*.tmp"))
    loaded = load_model(path)
    assert loaded.spec == m.spec and loaded.hidden == m.hidden and loaded.activation == "silu"
    assert loaded.meta == {"note": "test"}
    s = bcc_mo()
    s = Structure(numbers=np.where(np.arange(16) % 3 == 0, 52, 42), positions=s.positions, cell=s.cell, pbc=s.pbc)
    a, b = Potential(m).predict(s), Potential.load(path).predict(s)
    assert a["energy"] == b["energy"]
    np.testing.assert_array_equal(a["forces"], b["forces"])
    np.testing.assert_array_equal(a["stress"], b["stress"])
    np.testing.assert_array_equal(a["energies"], b["energies"])
    assert a["energies"].sum() == pytest.approx(a["energy"], rel=1e-13)


def _write_then_damage(tmp_path, damage):
    path = tmp_path / "m.h5"
    save_model(random_model((42,), seed=1), path)
    with h5py.File(path, "a") as f:
        damage(f)
    return path


@pytest.mark.parametrize("damage, message", [
    (lambda f: f.attrs.__setitem__("format", "something"), "not an alw_ref model file"),
    (lambda f: f.attrs.__setitem__("format_version", 99), "model format version 99"),
    (lambda f: f.__delitem__("theta"), "damaged model file"),
    (lambda f: (f.__delitem__("theta"), f.create_dataset("theta", data=np.zeros(5))), "field 'theta' has shape"),
    (lambda f: f["g_mean"].__setitem__((0, 0), np.nan), "field 'g_mean' holds non-finite"),
    (lambda f: f["g_scale"].__setitem__((0, 0), 0.0), "'g_scale' must be > 0"),
    (lambda f: f.attrs.__setitem__("activation", "relu"), "unknown activation 'relu'"),
])
def test_damaged_model_file_is_named(tmp_path, damage, message):
    path = _write_then_damage(tmp_path, damage)
    with pytest.raises(ModelError, match=message):
        load_model(path)


def test_truncated_or_missing_file(tmp_path):
    path = tmp_path / "m.h5"
    save_model(random_model((42,), seed=1), path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ModelError, match="cannot read the model file"):
        load_model(path)
    with pytest.raises(ModelError, match="cannot read the model file"):
        load_model(tmp_path / "absent.h5")


def test_element_without_network_is_named():
    s = bcc_mo()
    s = Structure(numbers=np.where(np.arange(16) == 3, 74, 42), positions=s.positions, cell=s.cell, pbc=s.pbc)
    with pytest.raises(SpecError, match=r"W \(Z=74\)"):
        Potential(random_model((42,), seed=0)).predict(s)


# ------------------------------------------------------------------ ASE calculator

ase = pytest.importorskip("ase", reason="the ASE calculator tests need the `ase` extra")


def _atoms(seed=0, reps=2, rattle=0.05):
    s = bcc_mo(rattle, seed, reps)
    return ase.Atoms(numbers=s.numbers, positions=s.positions, cell=s.cell, pbc=True)


def _mild_model():
    """Random Mo model, standardised on bcc Mo so its energy surface is smooth on that scale."""
    from alw_ref.acsf import compute_acsf

    m = random_model((42,), seed=2)
    a = _atoms(seed=5, rattle=0.15)
    G = compute_acsf(m.spec, a.numbers, a.positions, np.asarray(a.cell), a.pbc, derivatives=False).G_ig
    m.g_mean_eg[0] = G.mean(axis=0)
    m.g_scale_eg[0] = np.maximum(G.std(axis=0), 0.05)
    m.theta *= 0.5
    return m


def test_calculator_against_ase_numerical_forces_and_stress():
    from ase.calculators.calculator import PropertyNotImplementedError
    from alw_ref.ase import ALWCalculator

    atoms = _atoms(seed=1)
    atoms.cell[1, 0] = 0.4  # triclinic
    atoms.calc = ALWCalculator(_mild_model())
    f_num = atoms.calc.calculate_numerical_forces(atoms, d=1e-4)
    s_num = atoms.calc.calculate_numerical_stress(atoms, d=1e-5, voigt=True)
    f, s = atoms.get_forces(), atoms.get_stress()
    assert np.abs(f - f_num).max() <= 1e-6 * np.abs(f).max()
    assert np.abs(s - s_num).max() <= 1e-6 * np.abs(s).max()
    assert atoms.get_potential_energy() == atoms.get_potential_energy(force_consistent=True)
    molecule = ase.Atoms("Mo2", positions=[[0, 0, 0], [2.6, 0, 0]])
    molecule.calc = ALWCalculator(atoms.calc.model)
    assert np.isfinite(molecule.get_forces()).all()
    with pytest.raises(PropertyNotImplementedError):
        molecule.get_stress()


def test_nve_conserves_energy(tmp_path):
    """Velocity Verlet, 1 fs, 200 steps from 300 K: the total energy stays within 0.3 meV/atom while the
    kinetic energy swings by > 0.1 eV/atom (forces inconsistent with the energy would break this)."""
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet
    from alw_ref.ase import ALWCalculator

    path = tmp_path / "m.h5"
    save_model(_mild_model(), path)
    atoms = _atoms(seed=3)
    atoms.calc = ALWCalculator(str(path))
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    energies, kinetic = [], []
    dyn.attach(lambda: (energies.append(atoms.get_total_energy()), kinetic.append(atoms.get_kinetic_energy())))
    dyn.run(200)
    assert np.ptp(kinetic) / len(atoms) > 0.1
    assert np.ptp(energies) / len(atoms) <= 3e-4
