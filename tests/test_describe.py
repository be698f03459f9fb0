"""Tests of the whole-dataset descriptor driver (alw_ref/describe.py): chunking, cache, CLI."""

from dataclasses import replace

import numpy as np
import pytest

from alw_ref import describe
from alw_ref.acsf import ACSFSpec, compute_acsf
from alw_ref.data import Dataset, Structure, read_dataset, write_dataset
from alw_ref.errors import DataError, SpecError

SPEC = ACSFSpec(elements=(42, 52), rc=4.0, radial=((0.0, 0.0), (0.5, 1.0)),
                angular=((0.05, 2.0, 1.0),), angular_g5=((0.05, 1.0, -1.0),))


def _structure(rng, n, cell, pbc, elements=(42, 52), name=""):
    """Random structure with atoms at least 1.2 Å apart (rejection sampling in the cell)."""
    pos = []
    while len(pos) < n:
        p = rng.random(3) @ cell if np.any(cell) else rng.random(3) * 6.0
        if all(np.linalg.norm(p - q) > 1.2 for q in pos):
            pos.append(p)
    numbers = rng.choice(elements, n)
    return Structure(numbers=np.asarray(numbers, np.int64), positions=np.array(pos), cell=cell,
                     pbc=np.asarray(pbc), energy=float(rng.normal()), forces=rng.normal(size=(n, 3)),
                     stress=None, name=name)


@pytest.fixture(scope="module")
def dataset():
    rng = np.random.default_rng(7)
    cells = [np.diag([3.1, 3.3, 3.5]), np.array([[4.0, 0, 0], [1.0, 4.2, 0], [0.5, 0.3, 3.9]]),
             np.zeros((3, 3)), np.diag([5.0, 5.0, 12.0])]
    pbcs = [(True, True, True), (True, True, True), (False, False, False), (True, True, False)]
    structures = [_structure(rng, n, c, p, name=f"s{k}")
                  for k, (n, c, p) in enumerate(zip((2, 5, 4, 6), cells, pbcs))]
    return Dataset.from_structures(structures)


def test_chunked_driver_equals_per_structure(dataset):
    """Every chunk size gives the per-structure results of compute_acsf, mapped to global indices."""
    for chunk_atoms in (1, 7, 10_000):
        desc = describe.compute_descriptors(dataset, SPEC, chunk_atoms=chunk_atoms)
        off = desc.atom_offset_s
        np.testing.assert_array_equal(off, dataset.atom_offset)
        for s, st in enumerate(dataset):
            ref = compute_acsf(SPEC, st.numbers, st.positions, st.cell, st.pbc)
            a, b = off[s], off[s + 1]
            np.testing.assert_array_equal(desc.G_ig[a:b], ref.G_ig)
            np.testing.assert_array_equal(desc.dG_deps_igcc[a:b], ref.dG_deps_igcc)
            blocks = slice(desc.block_first_i[a], desc.block_first_i[b])
            np.testing.assert_array_equal(desc.block_first_i[a:b + 1] - desc.block_first_i[a],
                                          ref.block_first_i)
            np.testing.assert_array_equal(desc.block_j[blocks] - a, ref.block_j)
            np.testing.assert_array_equal(desc.dG_dr_bgc[blocks], ref.dG_dr_bgc)


def test_values_only_matches(dataset):
    full = describe.compute_descriptors(dataset, SPEC)
    values = describe.compute_descriptors(dataset, SPEC, derivatives=False)
    assert not values.has_derivatives and values.derivative_bytes_per_atom == 0.0
    np.testing.assert_allclose(values.G_ig, full.G_ig, rtol=1e-14, atol=0)


def test_cache_reused_and_keyed(dataset, tmp_path, monkeypatch):
    first = describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path)
    files = list(tmp_path.glob("acsf-*.h5"))
    assert len(files) == 1
    assert not list(tmp_path.glob("*.tmp"))

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although a cache file exists")

    monkeypatch.setattr(describe, "compute_descriptors", fail)
    second = describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path)
    for name in ("G_ig", "block_first_i", "block_j", "dG_dr_bgc", "dG_deps_igcc", "atom_offset_s"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
    assert second.spec == SPEC
    monkeypatch.undo()

    # A different spec, different geometry or the values-only flag each gets its own key.
    other_spec = ACSFSpec(elements=(42, 52), rc=4.5, radial=SPEC.radial)
    moved = Dataset.from_structures([replace(st, positions=st.positions + 0.01)
                                     for st in dataset])
    keys = {describe.dataset_key(dataset, SPEC, True), describe.dataset_key(dataset, SPEC, False),
            describe.dataset_key(dataset, other_spec, True), describe.dataset_key(moved, SPEC, True)}
    assert len(keys) == 4


def test_damaged_cache_is_recomputed(dataset, tmp_path, capsys):
    desc = describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path)
    (path,) = tmp_path.glob("acsf-*.h5")
    path.write_bytes(b"not an hdf5 file")
    again = describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path)
    assert "ignoring cache file" in capsys.readouterr().err
    np.testing.assert_array_equal(again.G_ig, desc.G_ig)
    assert describe.read_descriptors(path).G_ig.shape == desc.G_ig.shape  # rewritten whole


def test_read_descriptors_rejects_foreign_file(tmp_path):
    import h5py

    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "something else"
    with pytest.raises(DataError, match="not an alw_ref descriptor file"):
        describe.read_descriptors(path)


def test_element_missing_from_spec_names_structure(dataset):
    spec = ACSFSpec(elements=(42,), rc=4.0, radial=((0.0, 0.0),))
    with pytest.raises(SpecError, match=r"structure \d+ \('s\d'\): field 'numbers': element Te \(Z=52\)"):
        describe.compute_descriptors(dataset, spec)


def test_cli_summary_and_output(dataset, tmp_path, capsys):
    data_path = tmp_path / "d.h5"
    write_dataset(dataset, data_path)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(SPEC.to_json())
    out = tmp_path / "desc.h5"
    assert describe.main([str(data_path), "--spec", str(spec_path), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert f"{SPEC.n_features} features per atom" in text
    assert f"{int(dataset.n_atoms.sum())} atoms" in text
    stored = describe.read_descriptors(out)
    np.testing.assert_array_equal(stored.G_ig, describe.compute_descriptors(read_dataset(data_path), SPEC).G_ig)


def test_cli_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        describe.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--spec", "--preset", "--rc", "--no-derivatives", "--out", "--cache-dir", "--chunk-atoms", "--quiet"):
        assert flag in text


def test_singular_structures_flags_collinear_triplets_with_small_zeta():
    """ζ = 0.08 (the paper's preset) is singular in a bcc crystal with nearly collinear triplets (atoms off
    their sites by 1e-7 Å, as rounding leaves them in real data; R_c = 6.5 Å as in the preset, so that
    f_c(R_jk) does not vanish for second neighbours 2a apart); ζ = 1 is not."""
    a = 3.16
    cell = np.eye(3) * 2 * a
    grid = np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    pos = np.concatenate([grid, grid + 0.5]) * a
    rng = np.random.default_rng(0)
    perfect = Structure(numbers=np.full(16, 42), positions=pos + rng.normal(0, 1e-7, pos.shape), cell=cell, pbc=np.array([True] * 3),
                        energy=0.0, forces=np.zeros((16, 3)), name="bcc")
    rattled = replace(perfect, positions=pos + rng.normal(0, 0.2, pos.shape), name="rattled")
    ds = Dataset.from_structures([rattled, perfect])
    for zeta, expected in ((0.08, [1]), (1.0, [])):
        spec = ACSFSpec(elements=(42,), rc=6.5, radial=((0.0, 0.0),), angular=((0.01, zeta, 1.0), (0.01, zeta, -1.0)))
        desc = describe.compute_descriptors(ds, spec)
        assert describe.singular_structures(desc).tolist() == expected
        assert np.all(np.isfinite(desc.dG_dr_bgc))


def test_first_compile_without_writable_numba_cache_folder(tmp_path):
    """Numba's in-tree __pycache__ and ~/.cache/numba both unwritable (here: a file where the folder
    should be, and HOME=/dev/null): ``import alw_ref.acsf`` used to raise "cannot cache function …: no
    locator available" at the first @njit(cache=True). alw_ref now points NUMBA_CACHE_DIR at a private
    folder in TMPDIR, and the kernel compiles and runs."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import alw_ref

    pkg = tmp_path / "pkg" / "alw_ref"
    shutil.copytree(Path(alw_ref.__file__).parent, pkg, ignore=shutil.ignore_patterns("__pycache__", "examples"))
    (pkg / "__pycache__").write_text("not a folder")
    (tmp_path / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_CACHE", "XDG_CACHE"))}
    env.update(HOME="/dev/null", TMPDIR=str(tmp_path / "tmp"), PYTHONPATH=str(pkg.parent),
               PYTHONDONTWRITEBYTECODE="1")
    code = ("import os, alw_ref.acsf as a\n"
            "print(a.cutoff_cosine(1.0, 2.0), os.environ['NUMBA_CACHE_DIR'])\n")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    value, folder = run.stdout.split()
    assert float(value) == 0.5  # ½[cos(π/2) + 1]
    assert Path(folder).parent == tmp_path / "tmp" and any(Path(folder).rglob("*.nbi"))
