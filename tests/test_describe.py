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


# ---------------------------------------------------------------- cache verification (issue 12, item 2)
def _edit(path, name, change):
    """Edit dataset ``name`` of an HDF5 file in place (as a user or a bad disk would)."""
    import h5py

    with h5py.File(path, "r+") as f:
        if change is None:
            del f[name]
        else:
            values = f[name][()]
            f[name][...] = change(values)


def _nan_first(a):
    a = a.copy()
    a.reshape(-1)[0] = np.nan
    return a


def _swap_first_two(a):
    a = a.copy()
    a[[0, 1]] = a[[1, 0]]
    return a


EDITS = {
    "block_j out of range": ("block_j", lambda a: a + 10**6),
    "block_j swapped within range": ("block_j", _swap_first_two),
    "G scaled by 1.01": ("G_ig", lambda a: a * 1.01),
    "NaN in dG/dr": ("dG_dr_bgc", _nan_first),
    "dG/deps deleted": ("dG_deps_igcc", None),
    "block_first_i decreasing": ("block_first_i", lambda a: a[::-1].copy()),
}


@pytest.mark.parametrize("mmap", [False, True], ids=["read", "mmap"])
@pytest.mark.parametrize("edit", list(EDITS))
def test_edited_cache_entry_is_reported_and_recomputed(dataset, tmp_path, capsys, edit, mmap):
    """Each edit used to be loaded as is (a segfault, silently wrong values, a NaN loss or a Numba
    typing error later). Now: one stderr line naming the file and what is wrong, then the
    descriptors are recomputed and the file replaced by a valid one."""
    fresh = describe.compute_descriptors(dataset, SPEC)
    describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path, mmap=mmap)
    (path,) = tmp_path.glob("acsf-*.h5")
    name, change = EDITS[edit]
    _edit(path, name, change)
    capsys.readouterr()
    again = describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path, mmap=mmap)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"describe: ignoring cache file {path}:"), err
    assert name in err[0] or "unreadable" in err[0], err
    for field in ("G_ig", "block_first_i", "block_j", "dG_dr_bgc", "dG_deps_igcc"):
        np.testing.assert_array_equal(getattr(again, field), getattr(fresh, field))
    describe.read_descriptors(path)  # the replacement verifies
    describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path, mmap=mmap)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("mmap", [False, True], ids=["read", "mmap"])
def test_cache_streamed_in_pieces_and_slices_reads_back_exactly(dataset, tmp_path, monkeypatch, mmap):
    """A cache miss writes the per-chunk pieces in slices of at most _SLICE_BYTES (here 1000 bytes,
    so pieces span several slices and slices never cross pieces); the file reads back bit for bit."""
    from alw_ref import descriptor_cache

    monkeypatch.setattr(descriptor_cache, "_SLICE_BYTES", 1000)
    fresh = describe.compute_descriptors(dataset, SPEC)
    first = describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path, chunk_atoms=3, mmap=mmap)
    (path,) = tmp_path.glob("acsf-*.h5")
    for d in (first, describe.read_descriptors(path), describe.read_descriptors(path, mmap=True)):
        for field in ("atom_offset_s", "G_ig", "block_first_i", "block_j", "dG_dr_bgc", "dG_deps_igcc"):
            np.testing.assert_array_equal(getattr(d, field), getattr(fresh, field))


def test_mmap_read_is_shared_read_only_and_accepted_by_the_kernels(dataset, tmp_path):
    """The mapped arrays are plain read-only ndarrays (not np.memmap), equal to the computed ones, and
    a training step (prediction, forces, stress, loss and its exact gradient through the force
    adjoint) gives bit-identical results on them: one extra, read-only signature per kernel."""
    from alw_ref.loss import loss_and_gradient
    from alw_ref.model import Model, make_batch

    fresh = describe.compute_descriptors(dataset, SPEC)
    first = describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path, mmap=True)
    mapped = describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path, mmap=True)
    for d in (first, mapped):
        for field in ("G_ig", "block_first_i", "block_j", "dG_dr_bgc", "dG_deps_igcc"):
            arr = getattr(d, field)
            assert type(arr) is np.ndarray and not arr.flags.writeable
            np.testing.assert_array_equal(arr, getattr(fresh, field))
    model = Model.create(SPEC, hidden=(5,), seed=0)
    species = SPEC.species_index(dataset.numbers)
    weights = {"energy": 0.5, "forces": 0.3, "stress": 0.2}
    want, got = (loss_and_gradient(model, make_batch(dataset, d, np.arange(len(dataset)), species), weights)
                 for d in (fresh, mapped))
    assert got.total == want.total
    np.testing.assert_array_equal(got.gradient, want.gradient)


def test_mmap_read_with_matching_stamp_skips_the_large_arrays(dataset, tmp_path, monkeypatch):
    """The full scan of dG/dr and dG/dε runs once per file state: the writer stamps its file, a mapped
    read with a matching stamp checks only the small arrays, and any rewrite (new ctime) rescans."""
    from alw_ref import descriptor_cache

    describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path, mmap=True)
    (path,) = tmp_path.glob("acsf-*.h5")
    assert descriptor_cache.stamp_matches(path)
    calls = []
    original = descriptor_cache.check_arrays
    monkeypatch.setattr(descriptor_cache, "check_arrays", lambda *a, **k: (calls.append(k["full"]), original(*a, **k)))
    describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path, mmap=True)
    _edit(path, "G_ig", lambda a: a)  # same bytes rewritten: the file state (ctime) changes
    describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path, mmap=True)
    describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path, mmap=False)
    assert calls == [False, True, True]


def test_file_replaced_while_mapped_is_not_mixed(dataset, tmp_path, monkeypatch):
    """Another process may replace the file (rename) between our map and our scan: the map would show
    the old file while the scan verifies the new one. The read is refused instead."""
    import os

    from alw_ref import descriptor_cache

    desc = describe.compute_descriptors(dataset, SPEC)
    path, other = tmp_path / "a.h5", tmp_path / "b.h5"
    describe.write_descriptors(desc, path)
    describe.write_descriptors(desc, other)
    original = descriptor_cache.check_arrays

    def replace_then_check(*args, **kwargs):
        os.replace(other, path)
        return original(*args, **kwargs)

    monkeypatch.setattr(descriptor_cache, "check_arrays", replace_then_check)
    with pytest.raises(DataError, match="replaced or modified while it was read"):
        describe.read_descriptors(path, mmap=True)


# ---------------------------------------------------------------- interruption, leftovers, unusable folders
def test_ctrl_c_while_the_cache_is_written_is_raised_and_leaves_no_file(dataset, tmp_path, monkeypatch):
    """Ctrl-C during h5py's write reached Python inside a weakref callback and was dropped: the run went
    on with exit 0 (issue 12, item 8). Simulated exactly so: SIGINT inside a weakref callback while a
    dataset is created."""
    import os
    import signal
    import time
    import weakref

    import h5py

    class Node:
        pass

    original = h5py.Group.create_dataset

    def create_and_interrupt(self, *args, **kwargs):
        dset = original(self, *args, **kwargs)
        node = Node()
        ref = weakref.ref(node, lambda _: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.05)))
        del node  # the callback runs here, called from C
        assert ref() is None
        return dset

    monkeypatch.setattr(h5py.Group, "create_dataset", create_and_interrupt)
    with pytest.raises(KeyboardInterrupt):
        describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_ctrl_c_while_descriptors_are_computed_is_raised(dataset, monkeypatch):
    """Ctrl-C during the computation is held and raised between kernel calls. Measured before the
    fix (CLI on 1 000 MoTe2 structures, SIGINT at 6-27 s): 2 runs of 6 ended in a 43-line
    "SystemError: CPUDispatcher(...) returned a result with an exception set" (the handler had raised
    inside a callback during a Numba call); after: 8 of 8 "describe: interrupted", exit 130. Simulated
    deterministically as above: SIGINT inside a weakref callback right after a kernel call, where the
    old code dropped it."""
    import os
    import signal
    import time
    import weakref

    class Node:
        pass

    original = describe.descriptors_from_pairs

    def kernel_then_interrupt(*args, **kwargs):
        res = original(*args, **kwargs)
        node = Node()
        ref = weakref.ref(node, lambda _: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.05)))
        del node
        assert ref() is None
        return res

    monkeypatch.setattr(describe, "descriptors_from_pairs", kernel_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        describe.compute_descriptors(dataset, SPEC, chunk_atoms=5)


def test_stale_temporary_of_a_killed_writer_is_removed(dataset, tmp_path, capsys):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    from alw_ref import atomic

    leftover = tmp_path / f".acsf-0123.h5.{dead}-{atomic._HOST}-abcdefgh.tmp"
    leftover.write_bytes(b"\0" * 1000)
    describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path)
    assert not leftover.exists()
    assert "removed 1 temporary file(s)" in capsys.readouterr().err


def test_cache_dir_that_is_a_file_runs_without_the_cache(dataset, tmp_path, capsys):
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("x")
    desc = describe.describe_dataset(dataset, SPEC, cache_dir=not_a_folder)
    np.testing.assert_array_equal(desc.G_ig, describe.compute_descriptors(dataset, SPEC).G_ig)
    assert f"describe: cache folder {not_a_folder} is a file, not a folder: running without the cache" \
        in capsys.readouterr().err
    assert not_a_folder.read_text() == "x"


def test_failed_cache_write_runs_without_the_cache(dataset, tmp_path, capsys, monkeypatch):
    import errno

    from alw_ref import descriptor_cache

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(descriptor_cache, "write_cache", disk_full)
    desc = describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path)
    assert desc.G_ig.shape == (int(dataset.n_atoms.sum()), SPEC.n_features)
    assert "No space left on device): running without the cache" in capsys.readouterr().err


def test_second_worker_waits_for_the_first_and_reads_its_file(dataset, tmp_path, monkeypatch, capsys):
    """Two workers missing the cache at once: one computes under the lock, the other waits and maps
    its file instead of computing (and holding) a second copy."""
    import fcntl
    import threading

    key = describe.dataset_key(dataset, SPEC, True)
    computed = describe.compute_descriptors(dataset, SPEC)
    holder = open(tmp_path / f"acsf-{key[:24]}.lock", "a+")
    fcntl.flock(holder, fcntl.LOCK_EX)

    def first_worker_finishes():
        describe.write_descriptors(computed, tmp_path / f"acsf-{key[:24]}.h5", key=key)
        holder.close()

    monkeypatch.setattr(describe, "compute_descriptors", lambda *a, **k: pytest.fail("computed twice"))
    timer = threading.Timer(0.5, first_worker_finishes)
    timer.start()
    desc = describe.describe_dataset(dataset, SPEC, cache_dir=tmp_path, mmap=True)
    timer.join()
    np.testing.assert_array_equal(desc.dG_dr_bgc, computed.dG_dr_bgc)
    assert "waiting for another process" in capsys.readouterr().err


# ---------------------------------------------------------------- singular structures (issue 12, item 14)
def test_singular_structures_looks_at_strain_derivatives():
    """An atom whose only neighbours are its own images has ∂G_i/∂r_i = 0 however singular its
    triplets: only |∂G/∂ε| shows it (7.2e9 in issue 12's reproducer). Hand-made arrays, 2 structures
    of one atom each; a limit of 1e3 1/Å flags |∂G/∂ε| above 1e3 · R_c = 4e3."""
    D = SPEC.n_features
    deps = np.zeros((2, D, 3, 3))
    deps[1, 2, 0, 1] = -7.2e9
    deps[0, 0, 0, 0] = 3.9e3  # below 4e3: smooth enough
    desc = describe.DatasetDescriptors(SPEC, np.array([0, 1, 2]), np.zeros((2, D)), np.array([0, 1, 2]),
                                       np.array([0, 1]), np.zeros((2, D, 3)), deps)
    assert describe.singular_structures(desc).tolist() == [1]
    assert describe.singular_structures(desc, limit=100.0).tolist() == [0, 1]


# ---------------------------------------------------------------- CLI errors (issue 12, item 10)
@pytest.mark.parametrize("case", ["missing dataset", "not hdf5", "missing spec", "spec not json",
                                  "spec bad field", "out is a folder", "cache dir is a file"])
def test_cli_errors_are_one_line(dataset, tmp_path, capsys, case):
    data_path = tmp_path / "d.h5"
    write_dataset(dataset, data_path)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(SPEC.to_json())
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    args = {"missing dataset": [str(tmp_path / "none.h5")],
            "not hdf5": [str(junk)],
            "missing spec": [str(data_path), "--spec", str(tmp_path / "none.json")],
            "spec not json": [str(data_path), "--spec", str(junk)],
            "spec bad field": [str(data_path), "--spec", str(tmp_path / "bad.json")],
            "out is a folder": [str(data_path), "--spec", str(spec_path), "--out", str(tmp_path)],
            "cache dir is a file": [str(data_path), "--spec", str(spec_path), "--cache-dir", str(junk)]}[case]
    (tmp_path / "bad.json").write_text(SPEC.to_json().replace('"rc": 4.0', '"rc": -1'))
    code = describe.main(args + ["--quiet"])
    err = capsys.readouterr().err
    if case == "cache dir is a file":
        assert code == 0 and "running without the cache" in err
        return
    assert code == 1 and err.count("\n") == 1 and err.startswith("describe: error: ") and "Traceback" not in err
    assert {"missing dataset": "none.h5", "not hdf5": "junk.h5", "missing spec": "none.json",
            "spec not json": "junk.h5", "spec bad field": "rc", "out is a folder": "--out"}[case] in err


@pytest.mark.parametrize("option", [["--chunk-atoms", "0"], ["--chunk-atoms", "x"], ["--rc", "-1"], ["--rc", "nan"]])
def test_cli_rejects_bad_numbers_naming_the_option(capsys, option):
    with pytest.raises(SystemExit) as stop:
        describe.main(option)
    assert stop.value.code == 2 and option[0] in capsys.readouterr().err
