"""Tests of the model file and Potential (alw_ref/potential.py) and the ASE calculator (alw_ref/ase.py)."""

import h5py
import numpy as np
import pytest

from alw_ref.data import Structure
from alw_ref.errors import DataError, ModelError, SpecError
from alw_ref.model import fit_descriptor_range
from alw_ref.potential import Potential, load_model, save_model
from test_model import random_model

try:
    import ase
except ImportError:  # only the ASE calculator tests need it
    ase = None
needs_ase = pytest.mark.skipif(ase is None, reason="the ASE calculator tests need the `ase` extra")


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


def test_descriptor_range_saved_and_loaded(tmp_path):
    """g_min/g_max: fitted per element (checked against a hand-made table), written, read back bit for bit;
    a file without them loads with None (older files); inconsistent ones are named."""
    G = np.array([[1.0, 5.0], [3.0, -2.0], [2.0, 0.5], [7.0, 7.0]])
    lo, hi = fit_descriptor_range(G, np.array([0, 0, 0, 2]), 3)
    np.testing.assert_array_equal(lo, [[1.0, -2.0], [0.0, 0.0], [7.0, 7.0]])
    np.testing.assert_array_equal(hi, [[3.0, 5.0], [0.0, 0.0], [7.0, 7.0]])
    m = random_model((42, 52), seed=3)
    path = tmp_path / "old.h5"
    save_model(m, path)
    assert load_model(path).g_min_eg is None and load_model(path).g_max_eg is None
    rng = np.random.default_rng(0)
    m.g_min_eg = rng.uniform(-1, 0, m.g_mean_eg.shape)
    m.g_max_eg = m.g_min_eg + rng.uniform(0, 1, m.g_mean_eg.shape)
    save_model(m, tmp_path / "new.h5")
    loaded = load_model(tmp_path / "new.h5")
    np.testing.assert_array_equal(loaded.g_min_eg, m.g_min_eg)
    np.testing.assert_array_equal(loaded.g_max_eg, m.g_max_eg)
    with h5py.File(tmp_path / "new.h5", "a") as f:
        f["g_min"][0, 0] = f["g_max"][0, 0] + 1.0
    with pytest.raises(ModelError, match="'g_min' exceeds 'g_max'"):
        load_model(tmp_path / "new.h5")
    with h5py.File(tmp_path / "new.h5", "a") as f:
        del f["g_max"]
    with pytest.raises(ModelError, match="'g_min' without 'g_max'"):
        load_model(tmp_path / "new.h5")


@pytest.mark.parametrize("pbc, shift, message", [
    ((True,) * 3, [0.05, 0.0, 0.0], "atoms 0 and 1 are 0.050 Å apart"),
    ((False,) * 3, [0.0, 0.0, 0.099], "atoms 0 and 1 are 0.099 Å apart"),
    ((True,) * 3, [np.nan, 0.0, 0.0], "non-finite value at atom 1"),
])
def test_predict_refuses_atoms_closer_than_the_dataset_minimum(pbc, shift, message):
    """The 0.1 Å rule of the dataset loader (data.MIN_DISTANCE) holds for predictions too (issue 12.14)."""
    s = bcc_mo()
    pos = s.positions.copy()
    pos[1] = pos[0] + np.array(shift)
    bad = Structure(numbers=s.numbers, positions=pos, cell=s.cell, pbc=np.array(pbc))
    with pytest.raises(DataError, match=message):
        Potential(random_model((42,), seed=0)).predict(bad)
    pos[1] = pos[0] + [0.0, 0.0, 0.1001]  # just above the minimum: predicted
    ok = Structure(numbers=s.numbers, positions=pos, cell=s.cell, pbc=np.array(pbc))
    assert np.isfinite(Potential(random_model((42,), seed=0)).predict(ok)["energy"])


def test_predict_refuses_an_atom_next_to_its_own_image():
    s = Structure(numbers=np.array([42]), positions=np.zeros((1, 3)), cell=np.diag([0.08, 5.0, 5.0]),
                  pbc=np.array([True, False, False]))
    with pytest.raises(DataError, match="atom 0 is 0.080 Å from its own periodic image"):
        Potential(random_model((42,), seed=0)).predict(s)


# ------------------------------------------------------------------ ASE calculator


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


@needs_ase
def test_calculator_against_ase_numerical_forces_and_stress():
    from ase.calculators.calculator import PropertyNotImplementedError
    from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
    from alw_ref.ase import ALWCalculator

    atoms = _atoms(seed=1)
    atoms.cell[1, 0] = 0.4  # triclinic
    atoms.calc = ALWCalculator(_mild_model())
    f_num = calculate_numerical_forces(atoms, eps=1e-4)
    s_num = calculate_numerical_stress(atoms, eps=1e-5, voigt=True)
    f, s = atoms.get_forces(), atoms.get_stress()
    assert np.abs(f - f_num).max() <= 1e-6 * np.abs(f).max()
    assert np.abs(s - s_num).max() <= 1e-6 * np.abs(s).max()
    assert atoms.get_potential_energy() == atoms.get_potential_energy(force_consistent=True)
    molecule = ase.Atoms("Mo2", positions=[[0, 0, 0], [2.6, 0, 0]])
    molecule.calc = ALWCalculator(atoms.calc.model)
    assert np.isfinite(molecule.get_forces()).all()
    with pytest.raises(PropertyNotImplementedError):
        molecule.get_stress()


@needs_ase
def test_nve_conserves_energy(tmp_path):
    """Velocity Verlet, 1 fs, 200 steps from 300 K: the total energy stays within 0.3 meV/atom while the
    kinetic energy swings by > 0.1 eV/atom (forces inconsistent with the energy would break this)."""
    from ase import units
    from ase.md.verlet import VelocityVerlet
    from alw_ref.ase import ALWCalculator

    path = tmp_path / "m.h5"
    save_model(_mild_model(), path)
    atoms = _atoms(seed=3)
    atoms.calc = ALWCalculator(str(path))
    # Maxwell-Boltzmann momenta at 300 K, drawn here (ASE's helper changed name across the supported versions)
    masses = atoms.get_masses()[:, None]
    atoms.set_momenta(np.sqrt(masses * units.kB * 300.0) * np.random.default_rng(0).standard_normal((len(atoms), 3)))
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    energies, kinetic = [], []
    dyn.attach(lambda: (energies.append(atoms.get_total_energy()), kinetic.append(atoms.get_kinetic_energy())))
    dyn.run(200)
    assert np.ptp(kinetic) / len(atoms) > 0.1
    assert np.ptp(energies) / len(atoms) <= 3e-4
