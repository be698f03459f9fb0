"""The descriptor cache file: HDF5 layout, checksums, verification and memory-mapped reading.

``describe`` decides *when* to use a cache file; this module owns *what* one is and when it can be
trusted. A file holds the arrays of ``describe.DatasetDescriptors`` (shapes in the ``describe``
docstring) as contiguous, uncompressed, native-endian HDF5 datasets, each with a ``sha256`` attribute
(hex SHA-256 of its raw bytes in C order), and the attributes ``format``, ``cache_version``, ``spec``
(JSON), ``key`` (the dataset key) and ``alw_ref_version``.

Verification (``check_arrays``), on every read:
  * dtypes (int64 / float64, native) and shapes: G (N, D) with D = the spec's feature count,
    block_first_i (N+1,), dG/dr (n_blocks, D, 3), dG/dε (N, D, 3, 3); derivatives all or none;
  * index ranges: atom_offset_s and block_first_i start at 0, never decrease and end at N and
    n_blocks; every block_j lies inside the structure of its centre atom (so a kernel can never
    index outside the arrays — an edited block_j used to segfault training);
  * the small arrays (atom_offset_s, G, block_first_i, block_j: ~2 % of the bytes): finite and
    matching their checksum, every time;
  * the large arrays (dG/dr, dG/dε): finite and matching their checksum — on every plain read (the
    bytes are all read anyway), but for a memory-mapped read *once per file state*: a full check is
    recorded in a stamp file ``<file>.verified`` holding the file's size, mtime,
    ctime, inode and device; a later mapped read whose stat matches the stamp skips the full scan. Any
    write to the file changes its ctime (which only a clock change can set back), so an edited file
    is always scanned again. A stamp that cannot be written (read-only folder) only costs a full
    scan next time.
The checks catch damage and edits by hand or by other tools; they are no defence against someone
who can write the cache folder on purpose (they could rewrite the checksums and the stamp too).
Cost, measured on 1 000 MoTe2 structures (54 000 atoms, ``ACSFSpec.mote2_paper``, 1.35 GiB file) on
the shared 2-core machine at load ~13: a mapped read with a matching stamp 0.26 s; a full scan
(SHA-256 + isfinite through one sequential read) 5.3 s, so ~20 s for all 3 832 structures (5.2 GiB);
a plain read 2.8 s of HDF5 reading + 4.5 s of checks. A writer stamps the file it just wrote (its
checksums come from the finite arrays it computed), so the first reader does not scan it again.

Memory mapping (``read_cache(..., mmap=True)``): each dataset is mapped read-only at its offset in
the file (``dset.id.get_offset()``) and handed out as a plain, non-writeable ``numpy.ndarray``;
processes that map the same file share its pages in the page cache instead of each holding a
copy. The full scan reads the file with ``readinto`` through a 64 MiB buffer, not through the map,
so it does not make the mapped pages resident in the scanning process. A mapped file must not be
truncated or rewritten in place (SIGBUS); alw_ref never does — it replaces files by rename, and a
process that mapped the old file keeps reading the old inode.
"""

from __future__ import annotations

import hashlib
import json
import os
from itertools import chain
from pathlib import Path

import h5py
import numpy as np

from . import __version__
from .acsf_spec import ACSFSpec
from .atomic import atomic_write, deferred_interrupt, interrupt_point, write_text

#: Bump when the descriptor kernels change numerically or the layout changes: old files are ignored.
#: Version 2 added the per-array checksums.
CACHE_VERSION = 2
CACHE_FORMAT = "alw_ref.descriptors"
#: name → (dtype, ndim); the first two are always present, the others all or none.
ARRAYS = {"atom_offset_s": (np.int64, 1), "G_ig": (np.float64, 2), "block_first_i": (np.int64, 1),
          "block_j": (np.int64, 1), "dG_dr_bgc": (np.float64, 3), "dG_deps_igcc": (np.float64, 4)}
DERIVATIVE_ARRAYS = ("block_first_i", "block_j", "dG_dr_bgc", "dG_deps_igcc")
#: Checked in full (finite, checksum) only when the stamp does not match (module docstring).
LARGE_ARRAYS = ("dG_dr_bgc", "dG_deps_igcc")
_SLICE_BYTES = 64 << 20


class CacheInvalid(Exception):
    """A cache file is not one, is from another version, or does not verify (message says why)."""


# ---------------------------------------------------------------- checksums and finiteness, in slices
def _scan_chunks(chunks, dtype) -> tuple[str, bool]:
    """SHA-256 (hex) of the concatenated byte chunks and whether every value (of ``dtype``) is finite."""
    h = hashlib.sha256()
    finite = True
    for chunk in chunks:
        h.update(chunk)
        if finite and np.dtype(dtype).kind == "f":
            finite = bool(np.isfinite(np.frombuffer(chunk, dtype=dtype)).all())
        interrupt_point()
    return h.hexdigest(), finite


def _memory_chunks(arr: np.ndarray):
    flat = np.ascontiguousarray(arr).reshape(-1)
    step = max(1, _SLICE_BYTES // max(flat.itemsize, 1))
    for a in range(0, flat.size, step):
        yield memoryview(flat[a:a + step]).cast("B")


def _file_chunks(path, offset: int, nbytes: int):
    """The bytes [offset, offset+nbytes) of ``path`` through one reused 64 MiB buffer."""
    buf = bytearray(min(_SLICE_BYTES, max(nbytes, 1)))
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        left = nbytes
        while left > 0:
            view = memoryview(buf)[:min(left, len(buf))]
            got = f.readinto(view)
            if not got:
                raise CacheInvalid(f"file ends {left} bytes before the end of an array")
            left -= got
            yield view[:got]


# ---------------------------------------------------------------- verification
def _check_layout(arrays: dict, n_features: int, derivatives: bool) -> None:
    """Dtypes, dimensions and shapes of the arrays (module docstring); CacheInvalid if wrong."""
    wanted = ("atom_offset_s", "G_ig") + (DERIVATIVE_ARRAYS if derivatives else ())
    missing = [n for n in wanted if n not in arrays]
    extra = [n for n in arrays if n not in wanted]
    if missing or extra:
        raise CacheInvalid(f"arrays missing {missing}, unexpected {extra} (derivatives={derivatives})")
    for name in wanted:
        dtype, ndim = ARRAYS[name]
        arr = arrays[name]
        if arr.dtype != np.dtype(dtype) or arr.ndim != ndim:
            raise CacheInvalid(f"{name}: {arr.dtype} with {arr.ndim} dimensions, expected {np.dtype(dtype)} "
                               f"with {ndim}")
    n = len(arrays["G_ig"])
    shapes = {"atom_offset_s": None, "G_ig": (n, n_features)}
    if derivatives:
        nb = len(arrays["block_j"])
        shapes.update(block_first_i=(n + 1,), block_j=(nb,), dG_dr_bgc=(nb, n_features, 3),
                      dG_deps_igcc=(n, n_features, 3, 3))
    for name, shape in shapes.items():
        if shape is not None and arrays[name].shape != shape:
            raise CacheInvalid(f"{name}: shape {arrays[name].shape}, expected {shape}")


def _check_offsets(name: str, off: np.ndarray, end: int) -> None:
    if len(off) == 0 or off[0] != 0 or off[-1] != end or np.any(np.diff(off) < 0):
        raise CacheInvalid(f"{name}: not offsets from 0 to {end} (first {off[:1].tolist()}, last "
                           f"{off[-1:].tolist()}, decreasing: {bool(np.any(np.diff(off) < 0))})")


def _check_indices(arrays: dict, derivatives: bool) -> None:
    """Offsets consistent, and each block_j inside its centre atom's structure (module docstring)."""
    n = len(arrays["G_ig"])
    off = arrays["atom_offset_s"]
    _check_offsets("atom_offset_s", off, n)
    if not derivatives:
        return
    first = arrays["block_first_i"]
    j = arrays["block_j"]
    _check_offsets("block_first_i", first, len(j))
    structure_i = np.repeat(np.arange(len(off) - 1), np.diff(off))
    counts = np.diff(first)
    lo = np.repeat(off[:-1][structure_i], counts)
    hi = np.repeat(off[1:][structure_i], counts)
    bad = np.flatnonzero((j < lo) | (j >= hi))
    if len(bad):
        b = int(bad[0])
        raise CacheInvalid(f"block_j[{b}] = {int(j[b])} lies outside the structure of its atom "
                           f"(atoms {int(lo[b])}..{int(hi[b]) - 1}); {len(bad)} such block(s)")


def check_arrays(arrays: dict, checksums: dict, n_features: int, derivatives: bool, full: bool = True,
                 locations: dict | None = None, path=None) -> None:
    """Verify cache arrays (module docstring); CacheInvalid naming the first problem.

    checksums : name → hex SHA-256 as stored.  full : also scan the large arrays.
    locations : name → (file offset, nbytes) of mapped arrays, scanned by file reads from ``path``.
    """
    _check_layout(arrays, n_features, derivatives)
    _check_indices(arrays, derivatives)
    for name, arr in arrays.items():
        if name in LARGE_ARRAYS and not full:
            continue
        if name not in checksums:
            raise CacheInvalid(f"{name}: no checksum stored")
        if locations and name in locations and arr.size:
            chunks = _file_chunks(path, *locations[name])
        else:
            chunks = _memory_chunks(arr)
        digest, finite = _scan_chunks(chunks, arr.dtype)
        if not finite:
            raise CacheInvalid(f"{name}: holds NaN or infinite values")
        if digest != checksums[name]:
            raise CacheInvalid(f"{name}: checksum does not match its contents (the file was modified)")


# ---------------------------------------------------------------- stamp of a fully verified file state
def _stamp_path(path) -> Path:
    return Path(f"{path}.verified")


def _file_state(path) -> dict:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "inode": st.st_ino, "device": st.st_dev}


def stamp_matches(path) -> bool:
    """True if ``<path>.verified`` records the current state of ``path`` (module docstring)."""
    try:
        return json.loads(_stamp_path(path).read_text()) == _file_state(path)
    except (OSError, ValueError):
        return False


def write_stamp(path) -> None:
    """Record that ``path`` in its current state passed the full check; silently skipped if unwritable."""
    try:
        write_text(_stamp_path(path), json.dumps(_file_state(path)))
    except OSError:
        pass


# ---------------------------------------------------------------- write and read
def parse_spec(spec_json: str) -> ACSFSpec:
    """The ACSFSpec of a file's ``spec`` attribute (JSON text only, never a path); CacheInvalid if not one."""
    try:
        return ACSFSpec.from_dict(json.loads(spec_json))
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise CacheInvalid(f"attribute 'spec' is not a descriptor spec: {err}") from None


def write_cache(path, arrays: dict, spec_json: str, key: str) -> None:
    """Write ``arrays`` atomically as a cache file with checksums.

    arrays : name → ndarray, or a list of ndarrays stacked along axis 0 in the file (``ARRAYS``), so
    that a caller holding per-chunk pieces never needs a stacked copy. Contiguous uncompressed
    datasets (so they can be memory-mapped), written in 64 MiB slices; Ctrl-C is honoured between
    slices and leaves no file (``atomic.atomic_write``).
    """
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = CACHE_FORMAT
            f.attrs["cache_version"] = CACHE_VERSION
            f.attrs["alw_ref_version"] = __version__
            f.attrs["spec"] = spec_json
            f.attrs["key"] = key
            for name, value in arrays.items():
                pieces = [np.ascontiguousarray(p, dtype=ARRAYS[name][0])
                          for p in (value if isinstance(value, list) else [value])]
                dset = f.create_dataset(name, shape=(sum(len(p) for p in pieces),) + pieces[0].shape[1:],
                                        dtype=pieces[0].dtype)
                row = 0
                for piece in pieces:
                    rows = max(1, _SLICE_BYTES // max(piece[:1].nbytes, 1))
                    for a in range(0, len(piece), rows):
                        b = min(a + rows, len(piece))
                        dset[row + a:row + b] = piece[a:b]
                        interrupt_point()
                    row += len(piece)
                dset.attrs["sha256"] = _scan_chunks(chain.from_iterable(map(_memory_chunks, pieces)), np.uint8)[0]


def _map(path, dset) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Read-only plain ndarray over ``dset``'s bytes in ``path`` and its (offset, nbytes) in the file."""
    if dset.size == 0:
        return np.zeros(dset.shape, dset.dtype), None
    offset = dset.id.get_offset()
    if dset.chunks is not None or dset.compression is not None or offset is None:
        raise CacheInvalid(f"{dset.name.lstrip('/')}: stored chunked or compressed, cannot be memory-mapped")
    arr = np.asarray(np.memmap(path, dtype=dset.dtype, mode="r", offset=offset, shape=dset.shape))
    return arr, (offset, arr.nbytes)


def _read_file(path, expected_key, mmap: bool) -> tuple[str, dict, dict, dict]:
    """(spec JSON, checksums, arrays, file locations of mapped arrays) of a cache file, unverified."""
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != CACHE_FORMAT:
                raise CacheInvalid(f"not an alw_ref descriptor file (format={f.attrs.get('format')!r})")
            if int(f.attrs.get("cache_version", -1)) != CACHE_VERSION:
                raise CacheInvalid(f"descriptor file version {f.attrs.get('cache_version')} != "
                                   f"{CACHE_VERSION} of this alw_ref")
            if expected_key is not None and f.attrs.get("key") != expected_key:
                raise CacheInvalid("descriptor file key does not match the dataset and spec")
            names = list(f.keys())
            unknown = [n for n in names if n not in ARRAYS or not isinstance(f[n], h5py.Dataset)]
            if unknown:
                raise CacheInvalid(f"unexpected entries {unknown}")
            checksums = {n: str(f[n].attrs["sha256"]) for n in names if "sha256" in f[n].attrs}
            arrays, locations = {}, {}
            for n in names:
                if mmap:
                    arrays[n], loc = _map(path, f[n])
                    if loc is not None:
                        locations[n] = loc
                else:
                    arrays[n] = f[n][()]
                interrupt_point()
            return str(f.attrs.get("spec", "")), checksums, arrays, locations
    except (OSError, ValueError, KeyError, TypeError) as err:  # h5py/numpy on a damaged file
        raise CacheInvalid(f"unreadable: {err}") from err


def read_cache(path, n_features: int | None = None, derivatives: bool | None = None, expected_key=None,
               mmap: bool = False) -> tuple[str, dict]:
    """Read and verify a cache file; return (spec JSON, arrays). CacheInvalid if it is not a valid one.

    n_features, derivatives : expected D and presence of derivatives (default: as the file says).
    mmap : map the arrays read-only instead of reading them (module docstring). A file replaced or
    modified while it is read (another process rewrote it) is reported as invalid, not mixed.
    """
    with deferred_interrupt():
        try:
            before = _file_state(path)
        except OSError as err:
            raise CacheInvalid(f"unreadable: {err}") from err
        spec_json, checksums, arrays, locations = _read_file(path, expected_key, mmap)
        if n_features is None or derivatives is None:
            n_features = parse_spec(spec_json).n_features if n_features is None else n_features
            derivatives = "dG_dr_bgc" in arrays if derivatives is None else derivatives
        full = not (mmap and stamp_matches(path))
        check_arrays(arrays, checksums, n_features, derivatives, full=full, locations=locations, path=path)
        try:
            unchanged = _file_state(path) == before
        except OSError:
            unchanged = False
        if not unchanged:
            raise CacheInvalid("the file was replaced or modified while it was read")
        if full and mmap:
            write_stamp(path)
    return spec_json, arrays
