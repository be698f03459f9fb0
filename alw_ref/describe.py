"""Descriptors of a whole dataset: chunked driver, on-disk cache, and ``python -m alw_ref.describe``.

``describe_dataset(dataset, spec)`` runs ``neighbors.neighbor_list`` per structure, concatenates the
pair lists of a chunk of structures (global atom indices), and computes the ACSF values and
derivatives of the whole chunk in one call of the Numba kernel, which runs ``prange`` over every
atom of the chunk — so a dataset of many small cells uses all cores as well as one big cell does.
Chunks bound the peak memory of the kernel's work arrays; results are stacked, or streamed
chunk by chunk into the cache file.

Result arrays (``DatasetDescriptors``), global atom index ``i`` over the dataset (structure ``s``
owns atoms ``atom_offset_s[s]:atom_offset_s[s+1]``):

    G_ig          (n_atoms, D) float64, dimensionless      descriptors (feature order: ``acsf`` docstring)
    block_first_i (n_atoms+1,) int64                       blocks of centre i: block_first_i[i]:block_first_i[i+1]
    block_j       (n_blocks,) int64                        global index of atom j of each block (j = i included)
    dG_dr_bgc     (n_blocks, D, 3) float64, Å⁻¹            ∂G_i/∂r_j, summed over the periodic images of j
    dG_deps_igcc  (n_atoms, D, 3, 3) float64               ∂G_i/∂ε_ab under r → (I+ε) r of positions and cell

Cache: with ``cache_dir`` set, the result is stored in ``cache_dir/acsf-<key>.h5`` where ``key`` is
a SHA-256 of the spec (JSON), the structures' numbers/positions/cells/pbc, the derivative flag and
``CACHE_VERSION``; a later run with the same spec and data loads it instead of recomputing.
What the cache guarantees (file format and checks: ``descriptor_cache``):
  * Nothing half-written: files are written to a temporary name and renamed; Ctrl-C or an error
    while writing leaves no file, and Ctrl-C is re-raised, never swallowed (``atomic``). A kill -9
    leaves a temporary that the next ``describe_dataset`` on that folder removes once its writer is
    provably dead (``atomic.remove_stale_temporaries``); a live writer's file is never touched.
  * Nothing trusted blindly: every read checks dtypes, shapes, index ranges (no block_j outside its
    structure), finiteness and SHA-256 checksums written with the arrays, and that the stored key,
    spec and atom offsets are the requested ones. A file that fails is named in one stderr line with
    the reason, then recomputed and replaced. A plain read scans every array; with ``mmap=True``
    the large derivative arrays are scanned once per file state (stamp ``<file>.verified``: size,
    mtime, ctime, inode), later reads check the small arrays only (~2 % of the bytes).
  * Never fatal: a ``cache_dir`` that is a file or cannot be created gives one stderr line and the
    run goes on without the cache; a read-only folder is read, and a miss there (or a failed write:
    disk full) is computed, reported in one line, and not stored.
  * Shared, not copied: with ``mmap=True`` the arrays are read-only maps of the file (plain
    non-writeable ndarrays; the kernels take them with one extra signature each), so workers on the
    same cache share one copy in the page cache. Workers that miss the cache together take a lock
    (``acsf-<key>.lock``, released when its holder ends, even by kill -9): one computes and streams
    the chunks to the file without a stacked copy, the others wait and then map its file.
    Measured (1 000 MoTe2 structures, 54 000 atoms, 1.35 GiB of descriptors, two workers): per worker
    1.44 GiB of shared file pages and 0.10 GiB private (PSS 0.78 GiB) with ``mmap=True``, against
    1.46 GiB private each with plain reads.
"""

from __future__ import annotations

if __name__ == "__main__":   # before the imports below (alw_ref/cli.py)
    from alw_ref.cli import prepare_command

    prepare_command("describe")

import argparse
import hashlib
import json
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:  # not POSIX: no cache lock
    fcntl = None

from . import descriptor_cache as _cache
from .acsf import descriptors_from_pairs
from .acsf_spec import DEFAULT_PRESET, PRESET_HELP, PRESET_RC_HELP, PRESETS, ACSFSpec
from .atomic import deferred_interrupt, interrupt_point, remove_stale_temporaries
from .descriptor_cache import CACHE_VERSION
from .elements import chemical_symbol
from .cli import interrupts_raise
from .errors import ALWError, DataError, SpecError
from .neighbors import neighbor_list


@dataclass(frozen=True)
class DatasetDescriptors:
    """ACSF values and derivatives of every atom of a dataset (arrays documented in the module)."""

    spec: ACSFSpec
    atom_offset_s: np.ndarray
    G_ig: np.ndarray
    block_first_i: np.ndarray | None = None
    block_j: np.ndarray | None = None
    dG_dr_bgc: np.ndarray | None = None
    dG_deps_igcc: np.ndarray | None = None

    @property
    def has_derivatives(self) -> bool:
        return self.dG_dr_bgc is not None

    @property
    def derivative_bytes_per_atom(self) -> float:
        """Bytes of stored derivatives (dG/dr blocks + their indices + dG/dε) per atom."""
        if not self.has_derivatives:
            return 0.0
        n = len(self.G_ig)
        total = (self.dG_dr_bgc.nbytes + self.block_j.nbytes + self.block_first_i.nbytes
                 + self.dG_deps_igcc.nbytes)
        return total / max(n, 1)


def dataset_key(dataset, spec: ACSFSpec, derivatives: bool) -> str:
    """SHA-256 (hex) of everything the descriptors depend on: spec, geometry, flags, code version."""
    h = hashlib.sha256()
    h.update(json.dumps(spec.to_dict(), sort_keys=True).encode())
    h.update(f"derivatives={bool(derivatives)};cache_version={CACHE_VERSION}".encode())
    for arr, dtype in ((dataset.n_atoms, np.int64), (dataset.numbers, np.int64),
                       (dataset.positions, np.float64), (dataset.cell, np.float64),
                       (dataset.pbc, np.bool_)):
        h.update(np.ascontiguousarray(arr, dtype=dtype).tobytes())
    return h.hexdigest()


def _chunks(n_atoms_s: np.ndarray, chunk_atoms: int):
    """Consecutive structure ranges [s0, s1) holding about ``chunk_atoms`` atoms each (≥ 1 structure)."""
    s0, acc = 0, 0
    for s, n in enumerate(n_atoms_s):
        acc += int(n)
        if acc >= chunk_atoms:
            yield s0, s + 1
            s0, acc = s + 1, 0
    if s0 < len(n_atoms_s):
        yield s0, len(n_atoms_s)


def _chunk_pairs(dataset, s0: int, s1: int, rc: float):
    """Neighbour lists of structures s0..s1-1, concatenated with chunk-local atom indices.

    Returns first_i (n_chunk_atoms+1,), j_n (n_pairs,), r_nc (n_pairs, 3) Å.
    """
    offset = dataset.atom_offset
    first_parts, j_parts, r_parts = [np.zeros(1, np.int64)], [], []
    n_pairs = 0
    for s in range(s0, s1):
        a, b = offset[s], offset[s + 1]
        nl = neighbor_list(dataset.positions[a:b], dataset.cell[s], dataset.pbc[s], rc)
        interrupt_point()
        first_parts.append(nl.first_i[1:] + n_pairs)
        j_parts.append(nl.j_n + (a - offset[s0]))
        r_parts.append(nl.r_nc)
        n_pairs += len(nl.j_n)
    first_i = np.concatenate(first_parts)
    j_n = np.concatenate(j_parts) if j_parts else np.zeros(0, np.int64)
    r_nc = np.concatenate(r_parts) if r_parts else np.zeros((0, 3))
    return first_i, j_n, r_nc


def _species_or_raise(dataset, spec: ACSFSpec) -> np.ndarray:
    """Species index (position in ``spec.elements``) of every atom of the dataset.

    SpecError naming the first structure that holds an element the spec has no entry for.
    """
    known = np.isin(dataset.numbers, np.asarray(spec.elements))
    if not known.all():
        atom = int(np.flatnonzero(~known)[0])
        s = int(np.searchsorted(dataset.atom_offset, atom, side="right") - 1)
        z = int(dataset.numbers[atom])
        raise SpecError(f"structure {s} ({str(dataset.name[s])!r}): field 'numbers': element "
                        f"{chemical_symbol(z)} (Z={z}) of atom {atom - dataset.atom_offset[s]} has no "
                        f"entry in the descriptor spec (elements {list(spec.elements)})")
    return spec.species_index(dataset.numbers)


def _check_finite(dataset, s0: int, res) -> None:
    """DataError naming the first structure of a chunk (starting at structure s0) whose descriptors or
    derivatives hold NaN or ±inf: such values must not reach a model or a cache file."""
    bad_i = ~np.isfinite(res.G_ig).all(axis=1)
    if getattr(res, "dG_dr_bgc", None) is not None:
        bad_i |= ~np.isfinite(res.dG_deps_igcc).all(axis=(1, 2, 3))
        bad_b = ~np.isfinite(res.dG_dr_bgc).all(axis=(1, 2))
        bad_i[np.repeat(np.arange(len(bad_i)), np.diff(res.block_first_i))[bad_b]] = True
    if bad_i.any():
        atom = int(np.flatnonzero(bad_i)[0]) + int(dataset.atom_offset[s0])
        s = int(np.searchsorted(dataset.atom_offset, atom, side="right") - 1)
        raise DataError(f"structure {s} ({str(dataset.name[s])!r}): non-finite descriptors or derivatives "
                        f"at atom {atom - int(dataset.atom_offset[s])}")


def _computed_pieces(dataset, spec: ACSFSpec, derivatives: bool, chunk_atoms: int, progress: bool) -> dict:
    """Descriptor arrays of the whole dataset, each as a list of per-chunk pieces to be stacked along
    axis 0 (global atom and block indices already applied); ``compute_descriptors`` documents the
    arguments. Kept in pieces so that a cache writer can stream them to disk without a stacked copy.

    Ctrl-C is held while the kernels run and raised between structures and chunks: raised by
    Python's handler inside a callback during a Numba call, it surfaced as "SystemError:
    CPUDispatcher(...) returned a result with an exception set" (2 of 6 tries), or could be dropped
    (issue 12, item 8).
    """
    species_i = _species_or_raise(dataset, spec)
    offset = dataset.atom_offset
    D = spec.n_features
    pieces = {"atom_offset_s": [offset.copy()], "G_ig": [np.zeros((0, D))]}
    if derivatives:
        pieces.update(block_first_i=[np.zeros(1, np.int64)], block_j=[np.zeros(0, np.int64)],
                      dG_dr_bgc=[np.zeros((0, D, 3))], dG_deps_igcc=[np.zeros((0, D, 3, 3))])
    n_blocks = 0
    t0 = time.perf_counter()
    with deferred_interrupt():
        for s0, s1 in _chunks(dataset.n_atoms, chunk_atoms):
            first_i, j_n, r_nc = _chunk_pairs(dataset, s0, s1, spec.rc)
            res = descriptors_from_pairs(spec, species_i[offset[s0]:offset[s1]], first_i, j_n, r_nc,
                                         derivatives=derivatives)
            interrupt_point()
            _check_finite(dataset, s0, res)
            pieces["G_ig"].append(res.G_ig)
            if derivatives:
                pieces["block_first_i"].append(res.block_first_i[1:] + n_blocks)
                pieces["block_j"].append(res.block_j + offset[s0])
                pieces["dG_dr_bgc"].append(res.dG_dr_bgc)
                pieces["dG_deps_igcc"].append(res.dG_deps_igcc)
                n_blocks += len(res.block_j)
            if progress:
                print(f"describe: {s1}/{len(dataset.n_atoms)} structures, {offset[s1]} atoms, "
                      f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return pieces


def compute_descriptors(dataset, spec: ACSFSpec, derivatives: bool = True,
                        chunk_atoms: int = 20000, progress: bool = False) -> DatasetDescriptors:
    """ACSF values (and, if ``derivatives``, dG/dr and dG/dε) of every atom of ``dataset``.

    dataset : alw_ref.data.Dataset (validated).  spec : the descriptor specification.
    chunk_atoms : atoms per kernel call (bounds the peak memory of one call).
    progress : print a progress line per chunk to stderr.
    """
    return _stacked(spec, _computed_pieces(dataset, spec, derivatives, chunk_atoms, progress))


def _stacked(spec: ACSFSpec, pieces: dict) -> DatasetDescriptors:
    return DatasetDescriptors(spec, **{name: np.concatenate(p) for name, p in pieces.items()})


#: |∂G_i/∂r_j| above this (Å⁻¹) marks a structure as singular for its descriptor set; |∂G_i/∂ε_ab|
#: (dimensionless) is held to this times R_c in Å (∂G/∂ε = Σ_n ∂G/∂r_n ⊗ r_n with |r_n| ≤ R_c).
SINGULAR_DERIVATIVE = 1e3


def _max_abs(a: np.ndarray) -> np.ndarray:
    """max |a| over every axis but the first, without an |a| temporary of a's size."""
    axes = tuple(range(1, a.ndim))
    return np.maximum(a.max(axis=axes, initial=0.0), -a.min(axis=axes, initial=0.0))


def singular_structures(desc: DatasetDescriptors, limit: float = SINGULAR_DERIVATIVE) -> np.ndarray:
    """Indices of the structures where some |∂G_i/∂r_j| exceeds ``limit`` Å⁻¹ or some |∂G_i/∂ε_ab|
    exceeds ``limit`` · R_c (R_c in Å; see ``SINGULAR_DERIVATIVE``).

    G4/G5 with ζ < 1 (the paper's preset has ζ = 0.08) have d(1 + λ cos θ)^ζ/dθ → ∞ as
    1 + λ cos θ → 0, so perfect crystals with (nearly) collinear triplets (bcc, simple cubic) get
    derivatives up to ~1e11 Å⁻¹ and forces that swamp any loss. Smooth descriptor sets stay ≲ 10 Å⁻¹.
    |∂G/∂ε| is checked too: an atom whose only neighbours are its own periodic images has ∂G_i/∂r_i = 0
    (translation invariance) however singular its triplets, and the singularity shows only in the
    stress (issue 12, item 14: 7.2e9 instead of 1.9).
    """
    structure_i = np.repeat(np.arange(len(desc.atom_offset_s) - 1), np.diff(desc.atom_offset_s))
    atom_of_block = np.repeat(np.arange(len(desc.G_ig)), np.diff(desc.block_first_i))
    bad_i = np.zeros(len(desc.G_ig), bool)
    bad_i[atom_of_block[_max_abs(desc.dG_dr_bgc) > limit]] = True
    bad_i |= _max_abs(desc.dG_deps_igcc) > limit * desc.spec.rc
    return np.unique(structure_i[bad_i])


def sample_descriptors(dataset, spec: ACSFSpec, sample: int = 32, seed: int = 0):
    """(sub-dataset, its descriptors with derivatives) of a seeded sample of up to ``sample`` structures,
    or None for an empty dataset: what the memory estimates measure and scale by atom count."""
    n = len(dataset.n_atoms)
    if n == 0:
        return None
    pick = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    sub = dataset.subset(pick)
    return sub, compute_descriptors(sub, spec)


def estimate_derivative_bytes(dataset, spec: ACSFSpec, sample: int = 32, seed: int = 0) -> float:
    """Estimated bytes of the stored dG/dr + dG/dε (with block indices) for the whole dataset.

    Computed exactly for a seeded sample of up to ``sample`` structures and scaled by atom count. A
    training run holds more: ``model.estimate_training_derivative_bytes`` adds the compact copy.
    """
    picked = sample_descriptors(dataset, spec, sample, seed)
    if picked is None:
        return 0.0
    return picked[1].derivative_bytes_per_atom * float(dataset.n_atoms.sum())


def _arrays_of(desc: DatasetDescriptors) -> dict:
    names = ("atom_offset_s", "G_ig") + (_cache.DERIVATIVE_ARRAYS if desc.has_derivatives else ())
    return {name: getattr(desc, name) for name in names}


def write_descriptors(desc: DatasetDescriptors, path, key: str = "") -> None:
    """Write ``desc`` to HDF5 at ``path`` atomically, with checksums (``descriptor_cache.write_cache``)."""
    _cache.write_cache(path, _arrays_of(desc), json.dumps(desc.spec.to_dict()), key)


def read_descriptors(path, expected_key: str | None = None, mmap: bool = False) -> DatasetDescriptors:
    """Read and verify a descriptor file written by ``write_descriptors``.

    DataError (naming the file and the problem) if it is not one, is stale for ``expected_key`` or
    does not verify (``descriptor_cache``). mmap : read-only memory-mapped arrays instead of copies.
    """
    try:
        spec_json, arrays = _cache.read_cache(path, expected_key=expected_key, mmap=mmap)
        spec = _cache.parse_spec(spec_json)
    except _cache.CacheInvalid as err:
        raise DataError(f"{path}: {err}") from None
    return DatasetDescriptors(spec=spec, **arrays)


def _usable_cache_folder(cache_dir) -> Path | None:
    """``cache_dir`` created if needed, or None (after one stderr line) when it is not a folder and
    cannot be made one. A read-only folder is usable: its files are read, and a miss is computed and
    not stored (``describe_dataset`` says so)."""
    folder = Path(cache_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        reason = "is a file, not a folder" if folder.is_file() else f"cannot be used ({err.strerror or err})"
        print(f"describe: cache folder {folder} {reason}: running without the cache", file=sys.stderr)
        return None
    removed = remove_stale_temporaries(folder, target_prefix="acsf-")
    if removed:
        print(f"describe: removed {len(removed)} temporary file(s) left in {folder} by killed runs",
              file=sys.stderr)
    return folder


def _verified_read(path: Path, key: str, dataset, spec: ACSFSpec, derivatives: bool,
                   mmap: bool) -> DatasetDescriptors | None:
    """The cache file's descriptors if it exists and verifies for this dataset and spec, else None
    (after one stderr line naming the file and the reason, when it exists but does not verify)."""
    if not path.exists():
        return None
    try:
        spec_json, arrays = _cache.read_cache(path, spec.n_features, derivatives, expected_key=key, mmap=mmap)
        if _cache.parse_spec(spec_json) != spec:
            raise _cache.CacheInvalid("stored spec differs from the requested one")
        if not np.array_equal(arrays["atom_offset_s"], dataset.atom_offset):
            raise _cache.CacheInvalid("atom_offset_s differs from the dataset's structure sizes")
    except _cache.CacheInvalid as err:
        print(f"describe: ignoring cache file {path}: {err}; recomputing it", file=sys.stderr, flush=True)
        return None
    return DatasetDescriptors(spec=spec, **arrays)


def _file_id(path: Path):
    """(inode, size, mtime) of ``path``, None if absent: tells whether another process replaced it."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


@contextmanager
def _cache_lock(path: Path):
    """Exclusive lock on ``path`` (flock: released when the process ends, even by kill -9), waiting
    for the holder with one stderr line; no lock when the file cannot be opened."""
    try:
        handle = open(path, "a+")
    except OSError:
        handle = None
    if handle is None or fcntl is None:
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"describe: waiting for another process that computes this cache ({path})",
                  file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: go on unlocked
            pass
        yield


def describe_dataset(dataset, spec: ACSFSpec, derivatives: bool = True, cache_dir=None,
                     chunk_atoms: int = 20000, progress: bool = False, mmap: bool = False) -> DatasetDescriptors:
    """``compute_descriptors`` with an optional on-disk cache in ``cache_dir`` (module docstring).

    mmap : hand out the cached arrays as read-only memory maps of the cache file (shared between
    processes) instead of copies; without a usable ``cache_dir`` the arrays are computed in memory.
    """
    folder = None if cache_dir is None else _usable_cache_folder(cache_dir)
    if folder is None:
        return compute_descriptors(dataset, spec, derivatives, chunk_atoms, progress)
    key = dataset_key(dataset, spec, derivatives)
    path = folder / f"acsf-{key[:24]}.h5"
    desc = _verified_read(path, key, dataset, spec, derivatives, mmap)
    if desc is not None:
        return desc
    seen = _file_id(path)
    with _cache_lock(folder / f"acsf-{key[:24]}.lock"):
        if _file_id(path) not in (None, seen):  # written meanwhile by the process we waited for
            desc = _verified_read(path, key, dataset, spec, derivatives, mmap)
            if desc is not None:
                return desc
        pieces = _computed_pieces(dataset, spec, derivatives, chunk_atoms, progress)
        try:  # streamed from the pieces: no stacked copy while writing
            _cache.write_cache(path, pieces, json.dumps(spec.to_dict()), key)
        except OSError as err:
            print(f"describe: could not write cache file {path} ({err.strerror or err}): "
                  f"running without the cache", file=sys.stderr, flush=True)
            return _stacked(spec, pieces)
        _cache.write_stamp(path)  # its checksums were made from the finite arrays just computed
    mapped = _verified_read(path, key, dataset, spec, derivatives, mmap=True) if mmap else None
    return _stacked(spec, pieces) if mapped is None else mapped  # the map: this process's pieces are dropped


def _positive(kind, what: str):
    """argparse type: a finite number of ``kind`` > 0 (argparse names the option in its message)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} > 0, got {text!r}") from None
        if not np.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"expected {what} > 0, got {text!r}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m alw_ref.describe",
        description="Compute ACSF descriptors (and dG/dr, dG/dε) of a dataset.h5 and print a summary. "
                    "With no dataset, uses the bundled mlearn Mo example.")
    p.add_argument("dataset", nargs="?", default=None,
                   help="dataset.h5 to describe (default: the bundled example alw_ref/examples/mlearn_Mo.h5)")
    p.add_argument("--spec", default=None,
                   help="descriptor spec JSON file instead of --preset (default: none)")
    p.add_argument("--preset", choices=PRESETS, default=DEFAULT_PRESET, help=PRESET_HELP + " (default: %(default)s)")
    p.add_argument("--rc", type=_positive(float, "a cutoff in Å"), default=None, help=PRESET_RC_HELP)
    p.add_argument("--no-derivatives", action="store_true",
                   help="compute descriptor values only, not dG/dr and dG/dε (default: compute them)")
    p.add_argument("--out", default=None,
                   help="write the descriptors to this HDF5 file (default: do not write)")
    p.add_argument("--cache-dir", default=None,
                   help="cache folder: reuse descriptors computed before for the same data and spec "
                        "(default: no cache)")
    p.add_argument("--chunk-atoms", type=_positive(int, "a number of atoms"), default=20000,
                   help="atoms per kernel call; bounds peak memory (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress lines (default: show them)")
    return p.parse_args(argv)


def _load_spec(args, dataset) -> ACSFSpec:
    """The descriptor spec of the command line: --spec file, or --preset (SpecError/OSError naming the file)."""
    if args.spec:
        try:
            return ACSFSpec.from_dict(json.loads(Path(args.spec).read_text()))
        except SpecError as err:
            raise SpecError(f"--spec {args.spec}: {err}") from None
        except (ValueError, TypeError, KeyError, AttributeError) as err:  # JSON syntax, a field of the wrong kind
            raise SpecError(f"--spec {args.spec}: not a descriptor spec JSON file ({err})") from None
    return ACSFSpec.preset(args.preset, dataset.elements, args.rc)


def _summary(path, dataset, spec: ACSFSpec, desc: DatasetDescriptors, dt: float) -> None:
    n = len(desc.G_ig)
    print(f"dataset      {path}: {len(dataset)} structures, {n} atoms, elements {list(spec.elements)}")
    print(f"descriptors  {spec.n_features} features per atom, R_c = {spec.rc} Å, "
          f"derivatives {'yes' if desc.has_derivatives else 'no'}")
    print(f"time         {dt:.2f} s ({n / max(dt, 1e-12):.0f} atoms/s, includes JIT compile on a first run)")
    if desc.has_derivatives:
        print(f"memory       {desc.derivative_bytes_per_atom / 1024:.1f} KiB of derivatives per atom "
              f"({desc.dG_dr_bgc.nbytes / 2**20:.1f} MiB dG/dr, {desc.dG_deps_igcc.nbytes / 2**20:.1f} MiB dG/dε)")
    labels = spec.feature_labels()
    mean, std = desc.G_ig.mean(axis=0), desc.G_ig.std(axis=0)
    print("feature                                     mean         std")
    for g in range(spec.n_features):
        print(f"  {labels[g]:<40s} {mean[g]:11.4g} {std[g]:11.4g}")


def _run(args) -> None:
    from .data import example_dataset_path, read_dataset

    path = args.dataset or example_dataset_path()
    dataset = read_dataset(path)
    spec = _load_spec(args, dataset)
    if args.out and Path(args.out).is_dir():
        raise DataError(f"--out {args.out}: is a folder, expected a file name")
    t0 = time.perf_counter()
    desc = describe_dataset(dataset, spec, derivatives=not args.no_derivatives,
                            cache_dir=args.cache_dir, chunk_atoms=args.chunk_atoms,
                            progress=not args.quiet)
    _summary(path, dataset, spec, desc, time.perf_counter() - t0)
    if args.out:
        write_descriptors(desc, args.out, key=dataset_key(dataset, spec, desc.has_derivatives))
        print(f"wrote        {args.out}")


def main(argv=None) -> int:
    """``python -m alw_ref.describe``: every failure is one line on stderr and exit status 1 (130 on
    Ctrl-C), never a traceback; usage errors exit 2 with argparse's message."""
    interrupts_raise()
    args = _parse_args(argv)
    try:
        _run(args)
    except KeyboardInterrupt:
        print("describe: interrupted", file=sys.stderr)
        return 130
    except (ALWError, OSError, ValueError) as err:
        name = getattr(err, "filename", None)
        text = f"{name}: {err.strerror}" if isinstance(err, OSError) and name and err.strerror else str(err)
        print(f"describe: error: {text}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
