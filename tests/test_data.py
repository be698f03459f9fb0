"""Tests of alw_ref.data: dataset.h5 round trip, iteration, subset, split, atomic write, every
validation error (message checked: structure index, name, field, value), wrong files, bundled example,
and the schema table of docs/dataset_format.md."""

import dataclasses
import json
import os
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from alw_ref import atomic, data
from alw_ref.data import (Dataset, Structure, example_dataset_path, read_dataset, split_indices,
                          validate_dataset, validate_structure, write_dataset)
from alw_ref.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def make_structure(rng, n_atoms, name="", stress=True, pbc=(True, True, True)):
    """A valid random structure: atoms on distinct sites of a 3×3×3 grid (2 Å apart) in a slightly
    sheared 6 Å cell, jittered by < 0.2 Å, so no two atoms (images included) are closer than 1.6 Å."""
    grid = np.array([(a, b, c) for a in range(3) for b in range(3) for c in range(3)], float) * 2.0
    sites = rng.choice(len(grid), size=n_atoms, replace=False)
    cell = np.diag([6.0, 6.0, 6.0]) + np.array([[0, 0, 0], [0.3, 0, 0], [0, 0.2, 0]])
    frac = grid[sites] / 6.0
    positions = frac @ cell + rng.uniform(-0.1, 0.1, (n_atoms, 3))
    return Structure(numbers=rng.choice([1, 8, 42], size=n_atoms).astype(np.int64),
                     positions=positions, cell=cell, pbc=np.array(pbc),
                     energy=float(rng.normal(-5.0, 1.0) * n_atoms),
                     forces=rng.normal(size=(n_atoms, 3)),
                     stress=rng.normal(size=6) * 0.01 if stress else None,
                     name=name, config_type=rng.choice(["bulk", "slab", "Élastic ünicode", ""]))


@pytest.fixture
def structures():
    rng = np.random.default_rng(42)
    return [make_structure(rng, n, name=f"s{k}", stress=(k % 3 != 1))
            for k, n in enumerate([1, 4, 2, 7, 3, 5])]


@pytest.fixture
def dataset(structures):
    return Dataset.from_structures(structures)


def assert_datasets_equal(a, b):
    for f in dataclasses.fields(Dataset):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert x.shape == y.shape, f.name
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x, y, err_msg=f.name)  # NaN == NaN here
            assert x.dtype == np.float64
        else:
            assert x.tolist() == y.tolist(), f.name


def assert_structures_equal(s, t):
    for key in ("numbers", "positions", "cell", "pbc", "forces"):
        np.testing.assert_array_equal(getattr(s, key), getattr(t, key), err_msg=key)
    assert s.energy == t.energy
    assert (s.stress is None) == (t.stress is None)
    if s.stress is not None:
        np.testing.assert_array_equal(s.stress, t.stress)
    assert (s.name, s.config_type) == (t.name, t.config_type)


# --------------------------------------------------------------------------------------------
# round trip, iteration, subset


def test_round_trip_all_fields(dataset, tmp_path):
    path = tmp_path / "d.h5"
    write_dataset(dataset, path)
    back = read_dataset(path)
    assert_datasets_equal(dataset, back)
    assert back.has_stress.tolist() == [True, False, True, True, False, True]
    assert np.isnan(back.stress[~back.has_stress]).all()
    with h5py.File(path) as f:
        assert f.attrs["format"] == "alw_ref.dataset"
        assert int(f.attrs["format_version"]) == 1
        assert json.loads(f.attrs["units"]) == {"energy": "eV", "length": "Å", "forces": "eV/Å",
                                                "stress": "eV/Å³"}
        assert "tension positive" in f.attrs["stress_convention"]
        assert f["stress"].attrs["unit"] == "eV/Å³"
        assert f["numbers"].dtype == np.int64 and f["pbc"].dtype == np.bool_
        assert sorted(f.keys()) == sorted(data.SCHEMA)


def test_iteration_gives_the_structures_back(structures, dataset):
    assert len(dataset) == len(structures)
    got = list(dataset)
    assert len(got) == len(structures)
    for s, t in zip(structures, got):
        assert_structures_equal(s, t)
    assert_structures_equal(dataset[-1], structures[-1])
    assert dataset[3].n_atoms == 7
    np.testing.assert_allclose(dataset[3].volume, np.linalg.det(structures[3].cell))
    with pytest.raises(IndexError, match="out of range"):
        dataset[6]
    with pytest.raises(TypeError):
        dataset[1.0]


def test_offsets_and_elements(dataset):
    assert dataset.atom_offset.tolist() == [0, 1, 5, 7, 14, 17, 22]
    assert dataset.atom_offset.dtype == np.int64
    assert dataset.elements.tolist() == sorted(set(dataset.numbers.tolist()))


def test_subset(structures, dataset):
    sub = dataset.subset([4, 0, 3])
    validate_dataset(sub)
    assert len(sub) == 3
    for k, t in zip([4, 0, 3], sub):
        assert_structures_equal(structures[k], t)
    empty = dataset.subset(np.array([], dtype=np.int64))
    assert len(empty) == 0 and empty.positions.shape == (0, 3)
    with pytest.raises(DataError, match="out of range"):
        dataset.subset([6])
    with pytest.raises(DataError, match="integer"):
        dataset.subset([0.5])


def test_from_structures_needs_energy_and_forces(structures):
    for key in ("energy", "forces"):
        bad = list(structures)
        bad[2] = dataclasses.replace(bad[2], **{key: None})
        with pytest.raises(DataError, match=rf"structure 2 \('s2'\): field '{key}': missing"):
            Dataset.from_structures(bad)


# --------------------------------------------------------------------------------------------
# split


@pytest.mark.parametrize("n", [0, 1, 2, 10, 217, 3832])
def test_split_sizes_disjoint_covering(n):
    train, val, test = split_indices(n, seed=3)
    n_train = int(np.floor(0.7 * n + 0.5))
    n_val = min(int(np.floor(0.2 * n + 0.5)), n - n_train)
    assert (len(train), len(val), len(test)) == (n_train, n_val, n - n_train - n_val)
    both = np.concatenate([train, val, test])
    assert sorted(both.tolist()) == list(range(n))  # disjoint and covering
    assert all(a.dtype == np.int64 for a in (train, val, test))


def test_split_deterministic_and_follows_default_rng():
    a = split_indices(217, seed=7)
    b = split_indices(217, seed=7)
    c = split_indices(217, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    perm = np.random.default_rng(7).permutation(217)
    assert set(a[0].tolist()) == set(perm[:152].tolist())
    assert set(a[1].tolist()) == set(perm[152:195].tolist())
    train, val, test = split_indices(10, fractions=(0.5, 0.5, 0.0))
    assert (len(train), len(val), len(test)) == (5, 5, 0)


@pytest.mark.parametrize("fractions", [(0.7, 0.2), (0.5, 0.5, 0.5), (-0.1, 0.6, 0.5),
                                       (np.nan, 0.5, 0.5), (0.7, 0.2, 0.2)])
def test_split_rejects_bad_fractions(fractions):
    with pytest.raises(DataError, match="fractions must be three finite numbers"):
        split_indices(10, fractions)


@pytest.mark.parametrize("n", [-1, 2.5, True])
def test_split_rejects_bad_count(n):
    with pytest.raises(DataError, match="n_structures must be an integer"):
        split_indices(n)


# --------------------------------------------------------------------------------------------
# atomic write


def _only_file(tmp_path, content):
    """Assert the folder holds exactly 'd.h5' with ``content`` (no temporary left behind)."""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]
    assert (tmp_path / "d.h5").read_bytes() == content


def test_failed_write_leaves_nothing(dataset, tmp_path, monkeypatch):
    original = data._write_hdf5

    def crash_after_writing(ds, filename):
        original(ds, filename)  # the temporary file exists and is complete here
        assert os.path.exists(filename)
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(data, "_write_hdf5", crash_after_writing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_dataset(dataset, tmp_path / "d.h5")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_existing_file(dataset, tmp_path, monkeypatch):
    path = tmp_path / "d.h5"
    write_dataset(dataset.subset([0]), path)
    before = path.read_bytes()

    def crash_midway(ds, filename):
        with h5py.File(filename, "w") as f:
            f.create_dataset("n_atoms", data=ds.n_atoms)
        raise KeyboardInterrupt  # even a BaseException cleans up

    monkeypatch.setattr(data, "_write_hdf5", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(dataset, path)
    _only_file(tmp_path, before)

    monkeypatch.undo()
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (_ for _ in ()).throw(OSError("disk gone")))
    with pytest.raises(OSError, match="disk gone"):
        write_dataset(dataset, path)
    _only_file(tmp_path, before)
    assert len(read_dataset(path)) == 1


def test_invalid_dataset_is_not_written(dataset, tmp_path):
    path = tmp_path / "d.h5"
    write_dataset(dataset.subset([0]), path)
    before = path.read_bytes()
    bad = dataclasses.replace(dataset, energy=np.where(np.arange(6) == 2, np.inf, dataset.energy))
    with pytest.raises(DataError, match=r"structure 2 \('s2'\): field 'energy'"):
        write_dataset(bad, path)
    _only_file(tmp_path, before)


def test_written_file_has_normal_permissions(dataset, tmp_path):
    path = tmp_path / "d.h5"
    write_dataset(dataset, path)
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


# --------------------------------------------------------------------------------------------
# validation: every error, message checked


def _base(**changes):
    """Valid 3-atom structure (cubic 5 Å cell) named 'w', with ``changes`` applied."""
    s = Structure(numbers=np.array([42, 8, 8]), positions=np.array([[0., 0, 0], [1.5, 0, 0],
                                                                    [0, 1.5, 0]]),
                  cell=np.eye(3) * 5.0, pbc=np.array([True, True, True]), energy=-10.0,
                  forces=np.zeros((3, 3)), stress=np.zeros(6), name="w")
    return dataclasses.replace(s, **changes)


def _inf_at(shape, index):
    a = np.zeros(shape)
    a[index] = np.inf
    return a


VALIDATION_CASES = [
    # (changes, regex of the message after "structure 5 ('w'): ")
    (dict(energy=float("nan")), r"field 'energy': non-finite value nan"),
    (dict(energy=float("inf")), r"field 'energy': non-finite value inf"),
    (dict(energy="abc"), r"field 'energy': expected a real number, got 'abc'"),
    (dict(positions=_inf_at((3, 3), (2, 1))),
     r"field 'positions': non-finite value inf at atom 2, component y"),
    (dict(forces=_inf_at((3, 3), (1, 2)) * -1),
     r"field 'forces': non-finite value -inf at atom 1, component z"),
    (dict(cell=np.eye(3) * 5.0 + np.where(_inf_at((3, 3), (1, 2)) > 0, np.nan, 0.0)),
     r"field 'cell': non-finite value nan at index \(1, 2\)"),
    (dict(stress=_inf_at(6, 4)), r"field 'stress': non-finite value inf at index 4"),
    (dict(positions=np.zeros((3, 2))), r"field 'positions': shape \(3, 2\), expected \(3, 3\)"),
    (dict(forces=np.zeros((2, 3))), r"field 'forces': shape \(2, 3\), expected \(3, 3\)"),
    (dict(stress=np.zeros((3, 3))), r"field 'stress': shape \(3, 3\), expected \(6,\)"),
    (dict(cell=np.eye(2)), r"field 'cell': shape \(2, 2\), expected \(3, 3\)"),
    (dict(pbc=np.array([True, True])), r"field 'pbc': shape \(2,\), expected \(3,\)"),
    (dict(pbc=np.array([1, 1, 1])), r"field 'pbc': expected bool, got dtype int64"),
    (dict(numbers=np.array([42.0, 8, 8])), r"field 'numbers': expected a 1-D integer array"),
    (dict(numbers=np.array([42, 119, 8])),
     r"field 'numbers': unknown element: atom 1 has atomic number 119 \(must be 1\.\.118\)"),
    (dict(numbers=np.array([42, 8, 0])),
     r"field 'numbers': unknown element: atom 2 has atomic number 0"),
    (dict(numbers=np.zeros(0, dtype=np.int64), positions=np.zeros((0, 3)),
          forces=np.zeros((0, 3))), r"field 'numbers': the structure has no atoms"),
    (dict(cell=np.diag([5.0, 5.0, 0.0])),
     r"field 'cell': volume 0 Å³ <= 0 with pbc \(True, True, True\)$"),
    (dict(cell=np.diag([5.0, 5.0, -5.0])),
     r"field 'cell': volume -125 Å³ <= 0 with pbc \(True, True, True\) \(det < 0: the lattice "
     r"vectors are left-handed\)"),
    (dict(pbc=np.array([False, False, False])),
     r"field 'stress': given for a structure without periodic directions"),
    (dict(cell=np.diag([5.0, 5.0, 0.0]), pbc=np.array([False, False, True])),
     r"field 'cell': volume 0 Å³ <= 0 with pbc \(False, False, True\)"),
    (dict(positions=np.array([[0., 0, 0], [1.5, 0, 0], [1.53, 0, 0]])),
     r"field 'positions': atoms 1 and 2 are 0\.030 Å apart \(minimum 0\.1 Å\)"),
    # through a periodic boundary: x = 0.01 and x = 4.98 in a 5 Å cell are 0.03 Å apart
    (dict(positions=np.array([[0.01, 0, 0], [2.5, 0, 0], [4.98, 0, 0]])),
     r"field 'positions': atoms 0 and 2 are 0\.030 Å apart \(minimum 0\.1 Å\)"),
    # coincident atoms
    (dict(positions=np.array([[0., 0, 0], [2.0, 2.0, 2.0], [2.0, 2.0, 2.0]])),
     r"field 'positions': atoms 1 and 2 are 0\.000 Å apart"),
    # a periodic lattice vector shorter than 0.1 Å puts an atom next to its own image
    (dict(cell=np.diag([0.05, 5.0, 5.0]), positions=np.array([[0., 0, 0], [0, 1.5, 0],
                                                              [0, 0, 1.5]])),
     r"field 'positions': atom 0 is 0\.050 Å from its own periodic image \(minimum 0\.1 Å\)"),
]


@pytest.mark.parametrize("changes, message", VALIDATION_CASES)
def test_validate_structure_errors(changes, message):
    with pytest.raises(DataError, match=r"^structure 5 \('w'\): " + message):
        validate_structure(_base(**changes), index=5)


def test_validate_structure_message_without_index_or_name():
    with pytest.raises(DataError, match=r"^structure \('w'\): field 'energy'"):
        validate_structure(_base(energy=float("nan")))
    with pytest.raises(DataError, match=r"^structure: field 'energy'"):
        validate_structure(_base(energy=float("nan"), name=""))
    with pytest.raises(DataError, match=r"^structure 3: field 'energy'"):
        validate_structure(_base(energy=float("nan"), name=""), index=3)


def test_valid_edge_cases_pass():
    validate_structure(_base())
    # isolated molecule: no periodic direction, zero cell, atoms beyond any cell
    validate_structure(_base(cell=np.zeros((3, 3)), pbc=np.array([False] * 3), stress=None,
                             positions=np.array([[0., 0, 0], [0.11, 0, 0], [40, 0, 0]])))
    # atoms 0.1 Å apart are allowed (the minimum is strict); labels may be absent
    validate_structure(_base(positions=np.array([[0., 0, 0], [0.1, 0, 0], [2, 2, 2]]),
                             forces=None, stress=None, energy=None))
    # unwrapped positions far outside the cell
    validate_structure(_base(positions=np.array([[0., 0, 0], [101.5, 0, 0], [0, -98.5, 0]])))


def test_structure_rejects_non_numeric_arrays():
    with pytest.raises(DataError, match=r"structure \('w'\): field 'positions': not numeric"):
        _base(positions=[["a", "b", "c"]] * 3)


def _broken(dataset, **changes):
    return dataclasses.replace(dataset, **changes)


def test_validate_dataset_names_the_structure(dataset):
    validate_dataset(dataset)
    positions = dataset.positions.copy()
    positions[dataset.atom_offset[3] + 5, 0] = np.nan  # atom 5 of structure 3
    with pytest.raises(DataError, match=r"^structure 3 \('s3'\): field 'positions': non-finite "
                                        r"value nan at atom 5, component x"):
        validate_dataset(_broken(dataset, positions=positions))
    numbers = dataset.numbers.copy()
    numbers[dataset.atom_offset[4] + 1] = 200
    with pytest.raises(DataError, match=r"^structure 4 \('s4'\): field 'numbers': unknown element: "
                                        r"atom 1 has atomic number 200"):
        validate_dataset(_broken(dataset, numbers=numbers))
    stress = dataset.stress.copy()
    stress[3, 2] = np.nan  # has_stress[3] is True
    with pytest.raises(DataError, match=r"^structure 3 \('s3'\): field 'stress': non-finite"):
        validate_dataset(_broken(dataset, stress=stress))


def test_validate_dataset_level_errors(dataset):
    n_atoms = dataset.n_atoms.copy()
    n_atoms[2] += 1
    with pytest.raises(DataError, match=r"field 'n_atoms': offsets inconsistent: sum\(n_atoms\) = "
                                        r"23 but the per-atom arrays have 22 rows"):
        validate_dataset(_broken(dataset, n_atoms=n_atoms))
    n_atoms = dataset.n_atoms.copy()
    n_atoms[0], n_atoms[1] = 0, n_atoms[1] + 1
    with pytest.raises(DataError, match=r"^structure 0 \('s0'\): field 'n_atoms': 0 atoms"):
        validate_dataset(_broken(dataset, n_atoms=n_atoms))
    with pytest.raises(DataError, match=r"field 'forces': shape \(21, 3\), expected \(22, 3\)"):
        validate_dataset(_broken(dataset, forces=dataset.forces[:-1]))
    with pytest.raises(DataError, match=r"field 'cell': shape \(6, 3\), expected \(6, 3, 3\)"):
        validate_dataset(_broken(dataset, cell=dataset.cell[:, 0]))
    with pytest.raises(DataError, match=r"field 'name': shape \(5,\), expected \(6,\)"):
        validate_dataset(_broken(dataset, name=dataset.name[:5]))
    with pytest.raises(DataError, match=r"field 'pbc': expected a bool array, got int64"):
        validate_dataset(_broken(dataset, pbc=dataset.pbc.astype(np.int64)))
    with pytest.raises(DataError, match=r"field 'energy': expected a float64 array, got list"):
        validate_dataset(_broken(dataset, energy=list(dataset.energy)))
    stress = dataset.stress.copy()
    stress[1] = 0.0  # has_stress[1] is False
    with pytest.raises(DataError, match=r"^structure 1 \('s1'\): field 'stress': has_stress is "
                                        r"False but the row is not NaN"):
        validate_dataset(_broken(dataset, stress=stress))


# --------------------------------------------------------------------------------------------
# wrong files


def test_read_rejects_foreign_and_future_files(dataset, tmp_path):
    path = tmp_path / "d.h5"
    write_dataset(dataset, path)
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 2
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: dataset format version 2 is not "
                                        r"supported \(this alw_ref reads format_version 1\)"):
        read_dataset(path)
    with h5py.File(path, "a") as f:
        f.attrs["format"] = "alw_ref.descriptors"
    with pytest.raises(DataError, match=r"not an alw_ref dataset file: found format "
                                        r"'alw_ref.descriptors' at the root"):
        read_dataset(path)
    with h5py.File(path, "a") as f:
        del f.attrs["format"]
    with pytest.raises(DataError, match=r"found no 'format' attribute"):
        read_dataset(path)
    text = tmp_path / "t.h5"
    text.write_text("not hdf5\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(text))}: not a readable HDF5 file"):
        read_dataset(text)
    with pytest.raises(FileNotFoundError, match="no such dataset file"):
        read_dataset(tmp_path / "missing.h5")


def test_read_rejects_missing_field_and_bad_content(dataset, tmp_path):
    path = tmp_path / "d.h5"
    write_dataset(dataset, path)
    with h5py.File(path, "a") as f:
        f["forces"][2, 1] = np.inf  # atom 1 of structure 1
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: structure 1 \('s1'\): field "
                                        r"'forces': non-finite value inf at atom 1, component y"):
        read_dataset(path)
    with h5py.File(path, "a") as f:
        del f["forces"]
    with pytest.raises(DataError, match=r"field 'forces': dataset missing from the file"):
        read_dataset(path)


# --------------------------------------------------------------------------------------------
# bundled example and documentation


def test_bundled_example_loads_and_validates():
    path = example_dataset_path()
    assert path.parent == ROOT / "alw_ref" / "examples"
    assert path.stat().st_size < 5 * 1024 * 1024
    assert (path.parent / "LICENSE.mlearn").read_text().startswith("BSD 3-Clause License")
    ds = read_dataset(path)  # validates
    validate_dataset(ds)
    assert len(ds) == 217 and ds.has_stress.all()
    assert ds.elements.tolist() == [42]
    assert set(ds.config_type.tolist()) == {"Elastic", "AIMD-NVT", "Vacancy", "Surface"}
    assert ds.name[0] == "Mo_train.xyz:0" and ds.name[-1] == "Mo_test.xyz:22"
    # total DFT energies of bcc-like Mo: about −10.9 eV/atom, not cohesive energies
    per_atom = ds.energy / ds.n_atoms
    assert -11.5 < per_atom.min() and per_atom.max() < -9.0


def test_docs_schema_table_matches_schema():
    text = (ROOT / "docs" / "dataset_format.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| \(([^)]*)\) \| (\w+) \| ([^|]*) \| ([^|]*) \|$", text, re.M)
    table = {name: (shape, dtype, unit.strip(), meaning.strip())
             for name, shape, dtype, unit, meaning in rows}
    assert list(table) == list(data.SCHEMA)
    for name, (shape, dtype, unit, meaning) in data.SCHEMA.items():
        doc_shape = tuple(s.strip() for s in table[name][0].split(",") if s.strip())
        assert doc_shape == tuple(str(d) for d in shape), name
        assert table[name][1] == dtype, name
        assert table[name][2] == (unit or "—"), name
        assert table[name][3] == meaning, name


# --------------------------------------------------------------------------------------------
# hostile files (issue 12, items 7, 10 and 13): refused from the headers, before any large read


def _rewrite(path, key, **create):
    """Replace dataset ``key`` of file ``path`` by ``h5py.create_dataset(key, **create)``."""
    with h5py.File(path, "a") as f:
        unit = f[key].attrs["unit"]
        del f[key]
        f.create_dataset(key, **create).attrs["unit"] = unit


def test_read_refuses_declared_sizes_the_file_does_not_hold(dataset, tmp_path):
    """Issue 12 item 7: an 11 kB file declaring 1e9 atoms made read_dataset allocate 7.45 GiB, then 22 GiB.
    The declared shapes are now checked against each other and against the bytes the file stores before
    any array is read (this test allocates nothing large; on the old code it asked for 7.45 GiB)."""
    path = tmp_path / "d.h5"
    write_dataset(dataset.subset([0]), path)                     # one structure of 1 atom
    n = 10**9
    _rewrite(path, "n_atoms", data=np.array([n]))
    for key, shape, dtype in (("numbers", (n,), "int64"), ("positions", (n, 3), "float64"),
                              ("forces", (n, 3), "float64")):
        _rewrite(path, key, shape=shape, dtype=dtype)             # declared, never written: 0 bytes stored
    assert path.stat().st_size < 64 * 1024
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: field 'numbers': declares shape "
                                        r"\(1000000000,\) \(7\.45 GiB\) but the file stores 0 bytes of it: "
                                        r"truncated or damaged file"):
        read_dataset(path)
    # sizes that disagree with each other are named from the headers, before reading
    write_dataset(dataset, path)
    _rewrite(path, "positions", shape=(n, 3), dtype="float64")
    with pytest.raises(DataError, match=r"field 'positions': declared shape \(1000000000, 3\), expected "
                                        r"\(22, 3\) from len\(n_atoms\) = 6 structures and len\(numbers\) = 22"):
        read_dataset(path)
    # compressed data can hold many values in few bytes: then the machine's memory is the bound
    write_dataset(dataset.subset([0]), path)
    n = 10**12
    _rewrite(path, "n_atoms", data=np.array([n]))
    for key, shape, dtype in (("numbers", (n,), "int64"), ("positions", (n, 3), "float64"),
                              ("forces", (n, 3), "float64")):
        _rewrite(path, key, shape=shape, dtype=dtype, chunks=True,
                 compression="gzip")
    with pytest.raises(DataError, match=r"the fields declare 1 structures and 1000000000000 atoms "
                                        r"\(5\.22e\+04 GiB\), more than this machine's memory"):
        read_dataset(path)


def test_read_refuses_inconsistent_atom_counts_before_reading_atoms(dataset, tmp_path, monkeypatch):
    path = tmp_path / "d.h5"
    write_dataset(dataset, path)
    _rewrite(path, "n_atoms", data=np.array([1, 4, 2, 7, 3, 2**40]))
    read = []
    original = data._read_field
    monkeypatch.setattr(data, "_read_field", lambda key, ds: read.append(key) or original(key, ds))
    with pytest.raises(DataError, match=r"structure 5: field 'n_atoms': 1099511627776 atoms \(must be ≥ 1 and "
                                        r"at most the 22 rows of the per-atom arrays\)"):
        read_dataset(path)
    assert read == []


@pytest.mark.parametrize("key, create, message", [
    ("name", dict(data=np.arange(6)), r"field 'name': expected UTF-8 strings, got dtype int64"),
    ("config_type", dict(data=np.zeros(6)), r"field 'config_type': expected UTF-8 strings, got dtype float64"),
    ("energy", dict(data=np.array(["a"] * 6, dtype=object), dtype=h5py.string_dtype()),
     r"field 'energy': expected float64 values, got strings"),
    ("pbc", dict(data=np.ones((6, 3), np.int64)), r"field 'pbc': expected bool values, got dtype int64"),
    ("name", dict(data=np.array([b"ok", b"\xff\xfe", b"", b"", b"", b""], dtype=object),
                  dtype=h5py.string_dtype("ascii")), r"field 'name': not valid UTF-8"),
    ("n_atoms", dict(data=5), r"field 'n_atoms': declared shape \(\), expected a 1-D array \(S,\)"),
    ("numbers", dict(data=h5py.Empty("i8")), r"field 'numbers': declared shape None, expected a 1-D array \(N,\)"),
    ("energy", dict(data=np.zeros(6, dtype=[("a", "f8")])), r"field 'energy': expected float64 values, got dtype"),
])
def test_read_refuses_fields_of_the_wrong_kind(dataset, tmp_path, key, create, message):
    """Issue 12 item 10: a non-string ``name`` gave a traceback; every field's kind and rank is checked from
    its header."""
    path = tmp_path / "d.h5"
    write_dataset(dataset, path)
    _rewrite(path, key, **create)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: {message}"):
        read_dataset(path)


def test_read_refuses_a_group_in_place_of_a_field(dataset, tmp_path):
    path = tmp_path / "d.h5"
    write_dataset(dataset, path)
    with h5py.File(path, "a") as f:
        del f["name"]
        f.create_group("name")
    with pytest.raises(DataError, match=r"field 'name': expected an HDF5 dataset, found a Group"):
        read_dataset(path)


def test_empty_dataset_is_refused_with_a_clear_message(dataset, tmp_path):
    """Issue 12 item 13: an empty dataset file was read silently; training then failed with 'ACSFSpec.elements:
    at least one element is required'."""
    empty = dataset.subset(np.zeros(0, np.int64))
    path = tmp_path / "empty.h5"
    data._write_hdf5(empty, path)                                 # as another writer could
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: dataset: no structures \(field 'n_atoms' "
                                        r"is empty"):
        read_dataset(path)
    with pytest.raises(DataError, match=r"^dataset: no structures"):
        write_dataset(empty, tmp_path / "other.h5")
    assert not (tmp_path / "other.h5").exists()


ABSURD_CASES = [
    (dict(energy=1e200), r"field 'energy': absurd value 1e\+200 eV for 3 atoms \(3\.33e\+199 eV/atom; "
                         r"\|E\|/n_atoms must be <= 1e\+07 eV/atom; check the units and the source\)"),
    (dict(energy=-3.1e7), r"field 'energy': absurd value -3\.1e\+07 eV for 3 atoms"),
    (dict(forces=np.where(_inf_at((3, 3), (2, 1)) > 0, 1e200, 0.0)),
     r"field 'forces': absurd value 1e\+200 eV/Å at atom 2, component y \(\|value\| must be <= 10000 eV/Å"),
    (dict(stress=np.where(_inf_at(6, 3) > 0, -2e3, 0.0)),
     r"field 'stress': absurd value -2000 eV/Å³ at index 3 \(\|value\| must be <= 1000 eV/Å³"),
    (dict(positions=np.array([[0., 0, 0], [1.5, 0, 0], [0, 1e200, 0]])),
     r"field 'positions': absurd value 1e\+200 Å at atom 2, component y"),
    (dict(cell=np.diag([5.0, 5.0, 3e6])), r"field 'cell': absurd value 3e\+06 Å at index \(2, 2\)"),
]


@pytest.mark.parametrize("changes, message", ABSURD_CASES)
def test_absurd_but_finite_values_are_named(changes, message):
    """Issue 12 item 13: finite but absurd labels (1e200) passed validation and broke training later."""
    with pytest.raises(DataError, match=r"^structure 5 \('w'\): " + message):
        validate_structure(_base(**changes), index=5)


def test_absurd_label_in_a_file_names_file_structure_and_field(dataset, tmp_path):
    path = tmp_path / "d.h5"
    write_dataset(dataset, path)
    with h5py.File(path, "a") as f:
        f["energy"][4] = 1e200
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: structure 4 \('s4'\): field 'energy': "
                                        r"absurd value 1e\+200 eV for 3 atoms"):
        read_dataset(path)
    # the limits leave real data alone: all-electron total energies of heavy atoms reach ~1.4e6 eV/atom
    validate_structure(_base(energy=-3 * 1.5e6, forces=np.full((3, 3), 500.0), stress=np.full(6, 5.0)))


def test_read_refuses_a_format_attribute_that_is_an_array(dataset, tmp_path):
    path = tmp_path / "d.h5"
    write_dataset(dataset, path)
    with h5py.File(path, "a") as f:
        f.attrs["format"] = np.array(["alw_ref.dataset"] * 2, dtype=object)
    with pytest.raises(DataError, match=r"not an alw_ref dataset file: found format \['alw_ref.dataset', "):
        read_dataset(path)
