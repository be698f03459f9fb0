"""Tests of alw_ref.convert against the original files of ../shared/data (units, sign, component order),
parsed here independently of the converter (plain json / text), plus synthetic files for the virial
rule, missing labels, missing ASE, the CLI and the bundled example's reproducibility.

Constants are written out here on purpose (not imported from alw_ref.units) so that a wrong constant
there would fail these tests: 1 kbar = 0.1 GPa, 1 eV/Å³ = 160.2176634 GPa.
"""

import dataclasses
import json
import re
import shlex
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from alw_ref import convert as conv
from alw_ref.convert import convert, main, read_atomdnn_raw
from alw_ref.data import Dataset, example_dataset_path, read_dataset
from alw_ref.elements import ATOMIC_NUMBERS
from alw_ref.errors import DataError, MissingDependencyError

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data"
MLEARN = DATA / "mlearn-mvl"
MOSE2 = DATA / "mose2-despinosa"
ATOMDNN = DATA / "atomdnn"
GPA_PER_EV_A3 = 160.2176634
KBAR_IN_GPA = 0.1
VOIGT = ["xx", "yy", "zz", "yz", "xz", "xy"]
INDEX = {"x": 0, "y": 1, "z": 2}


def need(path):
    if not Path(path).exists():
        pytest.skip(f"{path} not present: the shared data folder (../shared/data next to the "
                    "project) is needed for this test")


def voigt_of(t):
    """Voigt xx yy zz yz xz xy of a 3×3 array, by component names."""
    return np.array([t[INDEX[c[0]]][INDEX[c[1]]] for c in VOIGT])


def assert_close(a, b, rtol, atol, what):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


# --------------------------------------------------------------------------------------------
# mlearn: extxyz converted through ASE vs the original JSON


#: Per-element component order of mlearn's ``virial_stress`` (shared/data/mlearn-mvl/README.md).
MLEARN_ORDER = {"Mo": ["xx", "yy", "zz", "xy", "xz", "yz"],
                "Si": ["xx", "yy", "zz", "xy", "yz", "xz"],
                "Ge": ["xx", "yy", "zz", "xy", "yz", "xz"]}


@pytest.mark.parametrize("element", ["Mo", "Si", "Ge"])
@pytest.mark.parametrize("split, json_name", [("train", "training"), ("test", "test")])
def test_mlearn_extxyz_matches_original_json(element, split, json_name, tmp_path):
    pytest.importorskip("ase", reason="the ase extra is needed to read extended XYZ")
    xyz = MLEARN / "extxyz" / f"{element}_{split}.xyz"
    original = MLEARN / element / f"{json_name}.json"
    need(xyz)
    need(original)
    ds = convert([xyz], tmp_path / "out.h5")
    assert_datasets_equal(read_dataset(tmp_path / "out.h5"), ds)
    entries = json.loads(original.read_text())
    assert len(ds) == len(entries)
    order = MLEARN_ORDER[element]
    for k, (entry, s) in enumerate(zip(entries, ds)):
        where = f"{xyz.name} frame {k}"
        sites = entry["structure"]["sites"]
        assert s.name == f"{xyz.name}:{k}"
        assert s.config_type == entry["group"]
        assert s.numbers.tolist() == [ATOMIC_NUMBERS[site["species"][0]["element"]]
                                      for site in sites], where
        assert_close(s.positions, [site["xyz"] for site in sites], 0, 1e-8, where)
        assert_close(s.cell, entry["structure"]["lattice"]["matrix"], 0, 1e-8, where)
        assert s.pbc.all()
        assert_close(s.energy, entry["outputs"]["energy"], 1e-12, 0, where)  # eV, total
        assert_close(s.forces, entry["outputs"]["forces"], 0, 1e-8, where)  # eV/Å
        # virial_stress: kbar, VASP sign (compression positive), per-element order
        raw = dict(zip(order, entry["outputs"]["virial_stress"]))
        expected = np.array([-raw[c] * KBAR_IN_GPA / GPA_PER_EV_A3 for c in VOIGT])
        assert_close(s.stress, expected, 1e-6, 1e-12, where)


# --------------------------------------------------------------------------------------------
# MoSe2 (Espinosa): 52 extxyz files, stress 3×3 in eV/Å³ → Voigt


def plain_extxyz(path):
    """Frames of an extended XYZ file with species/pos/forces columns, parsed with shlex only:
    list of dicts with numbers, positions, forces, cell, energy and the raw 9-number stress."""
    lines = path.read_text().splitlines()
    frames, i = [], 0
    while i < len(lines) and lines[i].strip():
        n = int(lines[i])
        info = dict(token.split("=", 1) for token in shlex.split(lines[i + 1]))
        assert info["Properties"] == "species:S:1:pos:R:3:forces:R:3", path
        rows = [line.split() for line in lines[i + 2:i + 2 + n]]
        frames.append(dict(
            numbers=[ATOMIC_NUMBERS[r[0]] for r in rows],
            positions=np.array([r[1:4] for r in rows], float),
            forces=np.array([r[4:7] for r in rows], float),
            cell=np.array(info["Lattice"].split(), float).reshape(3, 3),
            energy=float(info["energy"]),
            stress9=np.array(info["stress"].split(), float),
            info=info))
        i += n + 2
    return frames


MOSE2_FILES = sorted(p.name for p in MOSE2.glob("*.xyz")) or ["(absent)"]


def test_mose2_has_all_52_files():
    need(MOSE2)
    assert len(MOSE2_FILES) == 52


@pytest.mark.parametrize("name", MOSE2_FILES)
def test_mose2_file_matches_plain_parse(name, tmp_path):
    pytest.importorskip("ase", reason="the ase extra is needed to read extended XYZ")
    path = MOSE2 / name
    need(path)
    ds = convert([path], tmp_path / "out.h5")
    frames = plain_extxyz(path)
    assert len(ds) == len(frames)
    for k, (f, s) in enumerate(zip(frames, ds)):
        where = f"{name} frame {k}"
        assert s.numbers.tolist() == f["numbers"], where
        assert_close(s.positions, f["positions"], 0, 0, where)
        assert_close(s.cell, f["cell"], 0, 0, where)
        assert_close(s.energy, f["energy"], 0, 0, where)
        assert_close(s.forces, f["forces"], 0, 0, where)
        # 9 numbers row-major, symmetric, already eV/Å³ with ASE sign
        t = f["stress9"].reshape(3, 3)
        assert_close(t, t.T, 0, 0, where)
        assert_close(s.stress, voigt_of(t), 0, 0, where)
        assert s.name == f"{name}:{k}"


# --------------------------------------------------------------------------------------------
# AtomDNN MoTe2: raw XYZ_<n> (−σ, kbar, xx yy zz yz xz xy) vs the ASE-convention extxyz


@pytest.fixture(scope="module")
def atomdnn_pair(tmp_path_factory):
    pytest.importorskip("ase", reason="the ase extra is needed to read extended XYZ")
    raw, ext = ATOMDNN / "mote2_2021_raw_xyz.tar.gz", ATOMDNN / "mote2_2021.extxyz"
    need(raw)
    need(ext)
    out = tmp_path_factory.mktemp("atomdnn")
    # format auto → atomdnn-raw for the .tar.gz; the written files' round trip is tested elsewhere
    raw_ds = convert([raw], out / "raw.h5")
    ext_ds = convert([ext], out / "ext.h5", fmt="ase")
    assert (out / "raw.h5").is_file() and (out / "ext.h5").is_file()
    return raw_ds, ext_ds, ext


def test_atomdnn_raw_equals_ase_extxyz(atomdnn_pair):
    raw, ext, ext_path = atomdnn_pair
    assert len(raw) == len(ext) == 3832
    # raw frames ordered by the number n of XYZ_<n>, matching the extxyz's source= field
    sources = re.findall(r"source=(XYZ_\d+)", ext_path.read_text())
    assert raw.name.tolist() == sources == [f"XYZ_{n}" for n in range(1, 3833)]
    assert set(ext.config_type.tolist()) == {"2H", "1Tp"}  # from info "phase"
    for key in ("numbers", "pbc", "n_atoms", "has_stress"):
        assert np.array_equal(getattr(raw, key), getattr(ext, key)), key
    for key in ("positions", "cell", "energy", "forces"):
        assert_close(getattr(raw, key), getattr(ext, key), 1e-6, 1e-9, key)
    # the stress rule (−σ, kbar → eV/Å³, Voigt order) against the independently converted file
    assert_close(raw.stress, ext.stress, 1e-6, 1e-9, "stress")
    assert np.abs(raw.stress).max() > 1e-3  # not trivially zero


def test_atomdnn_raw_one_frame_by_hand(tmp_path):
    tar = ATOMDNN / "mote2_2021_raw_xyz.tar.gz"
    need(tar)
    with tarfile.open(tar) as t:
        for n in (1, 2, 10, 11):  # 1, 2, 10: quoted stress and free_energy; 11: unquoted
            member = t.getmember(f"extxyz_mote2/XYZ_{n}")
            (tmp_path / f"XYZ_{n}").write_bytes(t.extractfile(member).read())
    structures = read_atomdnn_raw(tmp_path)  # a folder of XYZ_<n> files
    assert [s.name for s in structures] == ["XYZ_1", "XYZ_2", "XYZ_10", "XYZ_11"]  # numeric order
    for s in structures:
        lines = (tmp_path / s.name).read_text().splitlines()
        header = lines[1]
        raw = np.array(re.search(r'stress=\s*"?([-0-9.eE ]+)"?', header).group(1).split(), float)
        energy = float(re.search(r"energy=(\S+)", header).group(1))
        rows = [line.split() for line in lines[2:]]
        assert s.energy == energy
        assert s.numbers.tolist() == [ATOMIC_NUMBERS[r[0]] for r in rows]
        assert_close(s.forces, np.array([r[5:8] for r in rows], float), 0, 0, s.name)
        # raw stress = −σ in kbar, order xx yy zz yz xz xy
        assert_close(s.stress, -raw * KBAR_IN_GPA / GPA_PER_EV_A3, 1e-12, 0, s.name)
    single = read_atomdnn_raw(tmp_path / "XYZ_11")
    assert len(single) == 1 and single[0].name == "XYZ_11"
    np.testing.assert_array_equal(single[0].stress, structures[3].stress)


def test_atomdnn_raw_malformed_header(tmp_path):
    path = tmp_path / "XYZ_7"
    path.write_text('1\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3:tags:I:1:forces:R:3 '
                    'energy=-1.0 pbc="T T T"\nMo 0 0 0 1 0 0 0\n')
    with pytest.raises(DataError, match=r"XYZ_7: header has no stress= field"):
        read_atomdnn_raw(path)
    path.write_text('1\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3:tags:I:1:forces:R:3 '
                    'energy=-1.0 stress= 1 2 3 4 5 pbc="T T T"\nMo 0 0 0 1 0 0 0\n')
    with pytest.raises(DataError, match=r"XYZ_7: stress: 5 numbers, expected 6"):
        read_atomdnn_raw(path)


# --------------------------------------------------------------------------------------------
# synthetic files: virial rule, labels from info/arrays, missing labels


def write_xyz(path, frames):
    """Hand-written extended XYZ: frames = list of (header extras, [(symbol, xyz, force)])."""
    out = []
    for extras, atoms in frames:
        cols = "species:S:1:pos:R:3" + (":forces:R:3" if atoms[0][2] is not None else "")
        out.append(str(len(atoms)))
        out.append(f'Lattice="4 0 0 0.5 5 0 0 0 6" Properties={cols} {extras} pbc="T T T"')
        for sym, x, f in atoms:
            out.append(" ".join([sym, *map(str, x)] + ([*map(str, f)] if f is not None else [])))
    path.write_text("\n".join(out) + "\n")


ATOMS = [("Mo", (0.0, 0.0, 0.0), (0.1, -0.2, 0.3)), ("Te", (1.0, 1.5, 2.0), (-0.1, 0.2, -0.3))]


def test_virial_becomes_stress(tmp_path):
    pytest.importorskip("ase", reason="the ase extra is needed to read extended XYZ")
    w = np.array([[1.0, 0.2, 0.3], [0.2, -2.0, 0.4], [0.3, 0.4, 3.0]])  # eV
    stress9 = np.array([[0.01, 0.002, 0.003], [0.002, 0.02, 0.004], [0.003, 0.004, 0.03]])
    write_xyz(tmp_path / "v.xyz", [
        (f'energy=-3.5 virial="{" ".join(map(str, w.ravel()))}" config_type=strained', ATOMS),
        (f'energy=-3.0 stress="{" ".join(map(str, stress9.ravel()))}" phase=2H', ATOMS),
        ("energy=-2.5", ATOMS),
    ])
    ds = convert([tmp_path / "v.xyz"], tmp_path / "v.h5")
    volume = 4 * 5 * 6  # det of the lower-triangular Lattice
    # σ = −W / V, Voigt xx yy zz yz xz xy
    expected = -np.array([1.0, -2.0, 3.0, 0.4, 0.3, 0.2]) / volume
    assert_close(ds.stress[0], expected, 1e-14, 0, "virial")
    assert_close(ds.stress[1], [0.01, 0.02, 0.03, 0.004, 0.003, 0.002], 1e-14, 0, "stress")
    assert ds.has_stress.tolist() == [True, True, False] and np.isnan(ds.stress[2]).all()
    assert ds.config_type.tolist() == ["strained", "2H", ""]
    assert ds.name.tolist() == ["v.xyz:0", "v.xyz:1", "v.xyz:2"]
    assert_close(ds.energy, [-3.5, -3.0, -2.5], 0, 0, "energy")
    assert_close(ds.forces[:2], [a[2] for a in ATOMS], 0, 0, "forces")
    assert ds.numbers[:2].tolist() == [42, 52]


def test_asymmetric_virial_is_rejected(tmp_path):
    pytest.importorskip("ase", reason="the ase extra is needed to read extended XYZ")
    write_xyz(tmp_path / "a.xyz", [("energy=-1", ATOMS), ('energy=-1 virial="1 0 0 0.5 1 0 0 0 1"',
                                                         ATOMS)])
    with pytest.raises(DataError, match=r"a\.xyz: frame 1: virial: 3×3 tensor is not symmetric"):
        convert([tmp_path / "a.xyz"], tmp_path / "a.h5")
    assert not (tmp_path / "a.h5").exists()


def test_missing_energy_or_forces_names_file_and_frame(tmp_path):
    pytest.importorskip("ase", reason="the ase extra is needed to read extended XYZ")
    write_xyz(tmp_path / "e.xyz", [("energy=-1", ATOMS), ("config_type=x", ATOMS)])
    with pytest.raises(DataError, match=r"e\.xyz: frame 1: no energy"):
        convert([tmp_path / "e.xyz"], tmp_path / "e.h5")
    no_forces = [(s, x, None) for s, x, _ in ATOMS]
    write_xyz(tmp_path / "f.xyz", [("energy=-1", no_forces)])
    with pytest.raises(DataError, match=r"f\.xyz: frame 0: no forces"):
        convert([tmp_path / "f.xyz"], tmp_path / "f.h5")


def test_invalid_structure_is_reported_and_not_written(tmp_path, capsys):
    pytest.importorskip("ase", reason="the ase extra is needed to read extended XYZ")
    close = [ATOMS[0], ("Te", (0.05, 0.0, 0.0), (0.0, 0.0, 0.0))]
    write_xyz(tmp_path / "c.xyz", [("energy=-1", ATOMS), ("energy=-1", close)])
    assert main([str(tmp_path / "c.xyz"), str(tmp_path / "c.h5")]) == 2
    err = capsys.readouterr().err
    assert "structure 1 ('c.xyz:1'): field 'positions': atoms 0 and 1 are 0.050 Å apart" in err
    assert not (tmp_path / "c.h5").exists()


# --------------------------------------------------------------------------------------------
# ASE missing, CLI


def test_missing_ase_gives_install_hint(tmp_path, monkeypatch, capsys):
    write_xyz(tmp_path / "m.xyz", [("energy=-1", ATOMS)])
    monkeypatch.setitem(sys.modules, "ase", None)  # makes "import ase" raise ImportError
    monkeypatch.setitem(sys.modules, "ase.io", None)
    with pytest.raises(MissingDependencyError, match=r"pip install alw_ref\[ase\]"):
        conv.read_ase(tmp_path / "m.xyz")
    assert main([str(tmp_path / "m.xyz"), str(tmp_path / "m.h5")]) == 2
    assert "pip install alw_ref[ase]" in capsys.readouterr().err
    assert not (tmp_path / "m.h5").exists()


def test_raw_format_needs_no_ase(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ase", None)
    monkeypatch.setitem(sys.modules, "ase.io", None)
    path = tmp_path / "XYZ_3"
    path.write_text('2\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3:tags:I:1:forces:R:3 '
                    'energy=-2.0 stress= 10 20 30 40 50 60 pbc="T T T"\n'
                    'Mo 0 0 0 1 0.1 0.2 0.3\nTe 1 1 1 2 -0.1 -0.2 -0.3\n')
    ds = convert([path], tmp_path / "r.h5")
    assert ds.numbers.tolist() == [42, 52] and ds.name.tolist() == ["XYZ_3"]
    assert_close(ds.stress[0], -np.array([10, 20, 30, 40, 50, 60]) * 0.1 / GPA_PER_EV_A3, 1e-14, 0,
                 "stress")


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("IN", "OUT.h5", "--format", "auto", "ase", "atomdnn-raw", "pip install alw_ref[ase]",
                   "kbar", "virial", "eV/Å³", "atomically"):
        assert phrase in text, phrase


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "nope.xyz"), str(tmp_path / "o.h5")]) == 2
    assert "nope.xyz: no such file or folder" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# bundled example is reproducible


def assert_datasets_equal(a, b):
    for f in dataclasses.fields(Dataset):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert x.shape == y.shape and x.dtype.kind == y.dtype.kind, f.name
        assert np.array_equal(x, y, equal_nan=(x.dtype.kind == "f")), f.name


def test_reconverting_mlearn_mo_reproduces_bundled_example(tmp_path, monkeypatch):
    pytest.importorskip("ase", reason="the ase extra is needed to read extended XYZ")
    root = Path(__file__).resolve().parents[1]
    need(MLEARN / "extxyz" / "Mo_train.xyz")
    monkeypatch.chdir(root)  # the exact command of alw_ref/examples/README.md
    readme = (root / "alw_ref" / "examples" / "README.md").read_text()
    command = re.search(r"^python -m alw_ref\.convert (.+)$", readme, re.M).group(1).split()
    assert command[-1] == "alw_ref/examples/mlearn_Mo.h5"
    assert main(command[:-1] + [str(tmp_path / "mo.h5")]) == 0
    assert_datasets_equal(read_dataset(tmp_path / "mo.h5"), read_dataset(example_dataset_path()))


# --------------------------------------------------------------------------------------------
# label keys of other codes (issue 13): MACE's REF_*, GAP's dft_*


def write_keyed_xyz(path, header, force_key="forces"):
    """Two-atom extended XYZ frame whose forces column is called ``force_key``."""
    path.write_text(f'2\nLattice="4 0 0 0.5 5 0 0 0 6" Properties=species:S:1:pos:R:3:{force_key}:R:3 '
                    f'{header} pbc="T T T"\n'
                    "Mo 0 0 0 0.1 -0.2 0.3\nTe 1 1.5 2 -0.1 0.2 -0.3\n")


def test_mace_ref_keys_are_found_and_reported(tmp_path, capsys):
    pytest.importorskip("ase", reason="the ase extra is needed to read extended XYZ")
    write_keyed_xyz(tmp_path / "m.xyz", 'REF_energy=-4.25 REF_stress="0.01 0.002 0.003 0.002 0.02 0.004 '
                                        '0.003 0.004 0.03" config_type=bulk', "REF_forces")
    assert main([str(tmp_path / "m.xyz"), str(tmp_path / "m.h5")]) == 0
    out = capsys.readouterr().out
    assert "energy <- REF_energy" in out and "forces <- REF_forces" in out and "stress <- REF_stress" in out
    ds = read_dataset(tmp_path / "m.h5")
    assert ds.energy.tolist() == [-4.25]
    assert_close(ds.forces, [[0.1, -0.2, 0.3], [-0.1, 0.2, -0.3]], 0, 0, "forces")
    assert_close(ds.stress[0], [0.01, 0.02, 0.03, 0.004, 0.003, 0.002], 0, 0, "stress")


def test_gap_keys_need_naming_and_the_error_lists_the_keys(tmp_path, capsys):
    pytest.importorskip("ase", reason="the ase extra is needed to read extended XYZ")
    w = "1 0.2 0.3 0.2 -2 0.4 0.3 0.4 3"
    write_keyed_xyz(tmp_path / "g.xyz", f'dft_energy=-3.5 dft_virial="{w}"', "dft_force")
    assert main([str(tmp_path / "g.xyz"), str(tmp_path / "g.h5")]) == 2
    err = capsys.readouterr().err
    assert "frame 0: no energy (looked for 'energy' and 'REF_energy'" in err
    assert "dft_energy" in err and "dft_virial" in err and "--energy-key" in err
    assert not (tmp_path / "g.h5").exists()
    assert main([str(tmp_path / "g.xyz"), str(tmp_path / "g.h5"), "--energy-key", "dft_energy",
                 "--forces-key", "dft_force", "--virial-key", "dft_virial"]) == 0
    assert "virial <- dft_virial" in capsys.readouterr().out
    ds = read_dataset(tmp_path / "g.h5")
    assert ds.energy.tolist() == [-3.5]
    assert_close(ds.forces[0], [0.1, -0.2, 0.3], 0, 0, "forces")
    # σ = −W / V with V = 4·5·6 Å³, Voigt xx yy zz yz xz xy
    assert_close(ds.stress[0], -np.array([1.0, -2.0, 3.0, 0.4, 0.3, 0.2]) / 120.0, 1e-14, 0, "virial")


def test_named_stress_key_missing_from_every_frame_is_an_error(tmp_path):
    pytest.importorskip("ase", reason="the ase extra is needed to read extended XYZ")
    write_keyed_xyz(tmp_path / "s.xyz", "energy=-1.0")
    with pytest.raises(DataError, match=r"no frame has the stress key 'dft_stress' given with --stress-key"):
        convert([tmp_path / "s.xyz"], tmp_path / "s.h5", keys={"stress": "dft_stress"})


# --------------------------------------------------------------------------------------------
# issue 12, item 9: nothing dropped, nothing silently repaired


RAW_FRAME = ('1\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3:tags:I:1:forces:R:3 '
             'energy={e} stress= 1 2 3 4 5 6 pbc="T T T"\nMo 0 0 0 1 0 0 0\n')


@pytest.mark.parametrize("container", ["folder", "tar"])
def test_atomdnn_frames_with_colliding_numbers_are_all_kept(tmp_path, container):
    files = {"set1/XYZ_1": -1.0, "set2/XYZ_1": -2.0, "XYZ_01": -3.0, "XYZ_2": -4.0}
    root = tmp_path / "raw"
    for rel, e in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(RAW_FRAME.format(e=e))
    source = root
    if container == "tar":
        source = tmp_path / "raw.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            for rel in files:
                tar.add(root / rel, arcname=rel)
    structures = read_atomdnn_raw(source)
    # 4 in, 4 out: ordered by n, then by path; a shared file name gets its path
    assert [s.name for s in structures] == ["XYZ_01", "set1/XYZ_1", "set2/XYZ_1", "XYZ_2"]
    assert [s.energy for s in structures] == [-3.0, -1.0, -2.0, -4.0]


def test_asymmetric_nine_number_stress_is_refused(tmp_path):
    pytest.importorskip("ase", reason="the ase extra is needed to read extended XYZ")
    # ASE itself would turn these 9 numbers into a Voigt 6 without a word (dropping 4, 7, 8)
    write_keyed_xyz(tmp_path / "a.xyz", 'energy=-1 stress="1 2 3 4 5 6 7 8 9"')
    with pytest.raises(DataError, match=r"a\.xyz: frame 0: stress: 3×3 tensor is not symmetric"):
        convert([tmp_path / "a.xyz"], tmp_path / "a.h5")
    assert not (tmp_path / "a.h5").exists()


def test_symmetric_nine_number_stress_keeps_every_component(tmp_path):
    pytest.importorskip("ase", reason="the ase extra is needed to read extended XYZ")
    write_keyed_xyz(tmp_path / "s.xyz", 'energy=-1 stress="1 2 3 2 5 6 3 6 9"')
    ds = convert([tmp_path / "s.xyz"], tmp_path / "s.h5")
    assert ds.stress[0].tolist() == [1.0, 5.0, 9.0, 6.0, 3.0, 2.0]  # xx yy zz yz xz xy by hand


# --------------------------------------------------------------------------------------------
# issue 12, item 10: a message naming the problem, not a traceback


def test_energy_that_is_not_a_number_is_named(tmp_path, capsys):
    pytest.importorskip("ase", reason="the ase extra is needed to read extended XYZ")
    write_keyed_xyz(tmp_path / "e.xyz", "energy=abc")
    assert main([str(tmp_path / "e.xyz"), str(tmp_path / "e.h5")]) == 2
    assert "e.xyz: frame 0: energy='abc' is not a number" in capsys.readouterr().err


def raw_input(tmp_path):
    path = tmp_path / "XYZ_1"
    path.write_text(RAW_FRAME.format(e=-1.0))
    return str(path)


def test_output_that_is_a_folder_is_named(tmp_path, capsys):
    (tmp_path / "outdir").mkdir()
    assert main([raw_input(tmp_path), str(tmp_path / "outdir")]) == 2
    assert "outdir: is a folder; give a file name" in capsys.readouterr().err


def test_output_below_a_file_is_named(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    assert main([raw_input(tmp_path), str(tmp_path / "plain" / "o.h5")]) == 2
    assert "plain is a file, not a folder" in capsys.readouterr().err


def test_output_name_too_long_for_the_temporary_file(tmp_path, capsys):
    name = "d" * 240 + ".h5"  # 243 bytes: allowed by the file system (255), not with the 14 extra
    assert main([raw_input(tmp_path), str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert "is 243 bytes long; at most 241 are possible here" in err
    assert list(tmp_path.iterdir()) == [tmp_path / "XYZ_1"]
    assert main([raw_input(tmp_path), str(tmp_path / ("d" * 238 + ".h5"))]) == 0  # 241 bytes: fits


def test_output_write_failure_is_a_message(tmp_path, capsys, monkeypatch):
    import alw_ref.atomic

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(alw_ref.atomic.tempfile, "mkstemp", refuse)  # as root, chmod would not stop us
    assert main([raw_input(tmp_path), str(tmp_path / "o.h5")]) == 2
    assert "o.h5: cannot write it (Permission denied)" in capsys.readouterr().err
