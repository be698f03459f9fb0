"""Descriptors of a whole dataset: chunked driver, on-disk cache, and ``python -m alw_ref.describe``.

``describe_dataset(dataset, spec)`` runs ``neighbors.neighbor_list`` per structure, concatenates the
pair lists of a chunk of structures (global atom indices), and computes the ACSF values and
derivatives of the whole chunk in one call of the Numba kernel, which runs ``prange`` over every
atom of the chunk — so a dataset of many small cells uses all cores as well as one big cell does.
Chunks bound the peak memory of the kernel's work arrays; results are concatenated.

Result arrays (``DatasetDescriptors``), global atom index ``i`` over the dataset (structure ``s``
owns atoms ``atom_offset_s[s]:atom_offset_s[s+1]``):

    G_ig          (n_atoms, D) float64, dimensionless      descriptors (feature order: ``acsf`` docstring)
    block_first_i (n_atoms+1,) int64                       blocks of centre i: block_first_i[i]:block_first_i[i+1]
    block_j       (n_blocks,) int64                        global index of atom j of each block (j = i included)
    dG_dr_bgc     (n_blocks, D, 3) float64, Å⁻¹            ∂G_i/∂r_j, summed over the periodic images of j
    dG_deps_igcc  (n_atoms, D, 3, 3) float64               ∂G_i/∂ε_ab under r → (I+ε) r of positions and cell

Cache: with ``cache_dir`` set, the result is stored in ``cache_dir/acsf-<key>.h5`` where ``key`` is
a SHA-256 of the spec (JSON), the structures' numbers/positions/cells/pbc, the derivative flag and
``CACHE_VERSION``; a second run with the same spec and data loads it instead of recomputing. Files
are written to a temporary name and renamed, so an interrupted run never leaves a partial cache.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from . import __version__
from .acsf import ACSFSpec, descriptors_from_pairs
from .atomic import atomic_write
from .elements import chemical_symbol
from .errors import DataError, SpecError
from .neighbors import neighbor_list

#: Bump when the descriptor kernels change numerically: old cache files are then ignored.
CACHE_VERSION = 1
_CACHE_FORMAT = "alw_ref.descriptors"


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


def compute_descriptors(dataset, spec: ACSFSpec, derivatives: bool = True,
                        chunk_atoms: int = 20000, progress: bool = False) -> DatasetDescriptors:
    """ACSF values (and, if ``derivatives``, dG/dr and dG/dε) of every atom of ``dataset``.

    dataset : alw_ref.data.Dataset (validated).  spec : the descriptor specification.
    chunk_atoms : atoms per kernel call (bounds the peak memory of one call).
    progress : print a progress line per chunk to stderr.
    """
    species_i = _species_or_raise(dataset, spec)
    offset = dataset.atom_offset
    parts = []
    t0 = time.perf_counter()
    n_struct = len(dataset.n_atoms)
    for s0, s1 in _chunks(dataset.n_atoms, chunk_atoms):
        first_i, j_n, r_nc = _chunk_pairs(dataset, s0, s1, spec.rc)
        res = descriptors_from_pairs(spec, species_i[offset[s0]:offset[s1]], first_i, j_n, r_nc,
                                     derivatives=derivatives)
        parts.append((offset[s0], res))
        if progress:
            dt = time.perf_counter() - t0
            print(f"describe: {s1}/{n_struct} structures, {offset[s1]} atoms, {dt:.1f} s",
                  file=sys.stderr, flush=True)
    G_ig = (np.concatenate([r.G_ig for _, r in parts]) if parts
            else np.zeros((0, spec.n_features)))
    if not derivatives:
        return DatasetDescriptors(spec, offset.copy(), G_ig)
    block_first = [np.zeros(1, np.int64)]
    n_blocks = 0
    for a0, r in parts:
        block_first.append(r.block_first_i[1:] + n_blocks)
        n_blocks += len(r.block_j)
    return DatasetDescriptors(
        spec, offset.copy(), G_ig,
        block_first_i=np.concatenate(block_first),
        block_j=np.concatenate([r.block_j + a0 for a0, r in parts]) if parts else np.zeros(0, np.int64),
        dG_dr_bgc=(np.concatenate([r.dG_dr_bgc for _, r in parts]) if parts
                   else np.zeros((0, spec.n_features, 3))),
        dG_deps_igcc=(np.concatenate([r.dG_deps_igcc for _, r in parts]) if parts
                      else np.zeros((0, spec.n_features, 3, 3))),
    )


#: |∂G_i/∂r_j| above this (Å⁻¹) marks a structure as singular for its descriptor set.
SINGULAR_DERIVATIVE = 1e3


def singular_structures(desc: DatasetDescriptors, limit: float = SINGULAR_DERIVATIVE) -> np.ndarray:
    """Indices of the structures where some |∂G_i/∂r_j| exceeds ``limit`` Å⁻¹.

    G4/G5 with ζ < 1 (the paper's preset has ζ = 0.08) have d(1 + λ cos θ)^ζ/dθ → ∞ as
    1 + λ cos θ → 0, so perfect crystals with (nearly) collinear triplets (bcc, simple cubic) get
    derivatives up to ~1e11 Å⁻¹ and forces that swamp any loss. Smooth descriptor sets stay ≲ 10 Å⁻¹.
    """
    dG = desc.dG_dr_bgc
    block_max = np.maximum(dG.max(axis=(1, 2), initial=0.0), -dG.min(axis=(1, 2), initial=0.0))
    atom_of_block = np.repeat(np.arange(len(desc.G_ig)), np.diff(desc.block_first_i))
    structure_of_atom = np.repeat(np.arange(len(desc.atom_offset_s) - 1), np.diff(desc.atom_offset_s))
    return np.unique(structure_of_atom[atom_of_block[block_max > limit]])


def estimate_derivative_bytes(dataset, spec: ACSFSpec, sample: int = 32, seed: int = 0) -> float:
    """Estimated bytes of dG/dr + dG/dε (with block indices) for the whole dataset.

    Computed exactly for a seeded sample of up to ``sample`` structures and scaled by atom count.
    """
    n = len(dataset.n_atoms)
    if n == 0:
        return 0.0
    pick = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    desc = compute_descriptors(dataset.subset(pick), spec)
    return desc.derivative_bytes_per_atom * float(dataset.n_atoms.sum())


_ARRAYS = ("atom_offset_s", "G_ig", "block_first_i", "block_j", "dG_dr_bgc", "dG_deps_igcc")


def write_descriptors(desc: DatasetDescriptors, path, key: str = "") -> None:
    """Write ``desc`` to HDF5 at ``path`` atomically (temporary file in the same folder, then rename)."""
    with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = _CACHE_FORMAT
        f.attrs["cache_version"] = CACHE_VERSION
        f.attrs["alw_ref_version"] = __version__
        f.attrs["spec"] = json.dumps(desc.spec.to_dict())
        f.attrs["key"] = key
        for name in _ARRAYS:
            arr = getattr(desc, name)
            if arr is not None:
                f.create_dataset(name, data=arr)


def read_descriptors(path, expected_key: str | None = None) -> DatasetDescriptors:
    """Read a descriptor file written by ``write_descriptors``; DataError if it is not one (or stale)."""
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != _CACHE_FORMAT:
            raise DataError(f"{path}: not an alw_ref descriptor file (format={f.attrs.get('format')!r})")
        if int(f.attrs.get("cache_version", -1)) != CACHE_VERSION:
            raise DataError(f"{path}: descriptor file version {f.attrs.get('cache_version')} "
                            f"!= {CACHE_VERSION} of this alw_ref")
        if expected_key is not None and f.attrs.get("key") != expected_key:
            raise DataError(f"{path}: descriptor file key does not match the dataset and spec")
        spec = ACSFSpec.from_dict(json.loads(f.attrs["spec"]))
        arrays = {name: f[name][()] for name in _ARRAYS if name in f}
    return DatasetDescriptors(spec=spec, **arrays)


def describe_dataset(dataset, spec: ACSFSpec, derivatives: bool = True, cache_dir=None,
                     chunk_atoms: int = 20000, progress: bool = False) -> DatasetDescriptors:
    """``compute_descriptors`` with an optional on-disk cache in ``cache_dir`` (see module docstring)."""
    if cache_dir is None:
        return compute_descriptors(dataset, spec, derivatives, chunk_atoms, progress)
    key = dataset_key(dataset, spec, derivatives)
    path = Path(cache_dir) / f"acsf-{key[:24]}.h5"
    if path.exists():
        try:
            return read_descriptors(path, expected_key=key)
        except (DataError, OSError, KeyError) as err:  # stale or damaged cache: recompute, say so
            print(f"describe: ignoring cache file {path}: {err}", file=sys.stderr)
    desc = compute_descriptors(dataset, spec, derivatives, chunk_atoms, progress)
    write_descriptors(desc, path, key=key)
    return desc


def _parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m alw_ref.describe",
        description="Compute ACSF descriptors (and dG/dr, dG/dε) of a dataset.h5 and print a summary. "
                    "With no dataset, uses the bundled mlearn Mo example.")
    p.add_argument("dataset", nargs="?", default=None,
                   help="dataset.h5 to describe (default: the bundled example alw_ref/examples/mlearn_Mo.h5)")
    p.add_argument("--spec", default=None,
                   help="descriptor spec JSON file (default: ACSFSpec.default for the dataset's elements and --rc)")
    p.add_argument("--preset", choices=("default", "mote2_paper"), default="default",
                   help="named descriptor set when --spec is not given (default: %(default)s; "
                        "mote2_paper = AtomDNN's 36-feature Mo/Te set, R_c 6.5 Å)")
    p.add_argument("--rc", type=float, default=5.0,
                   help="cutoff radius in Å for --preset default (default: %(default)s)")
    p.add_argument("--no-derivatives", action="store_true",
                   help="compute descriptor values only, not dG/dr and dG/dε (default: compute them)")
    p.add_argument("--out", default=None,
                   help="write the descriptors to this HDF5 file (default: do not write)")
    p.add_argument("--cache-dir", default=None,
                   help="cache folder: reuse descriptors computed before for the same data and spec "
                        "(default: no cache)")
    p.add_argument("--chunk-atoms", type=int, default=20000,
                   help="atoms per kernel call; bounds peak memory (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress lines (default: show them)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    from .data import example_dataset_path, read_dataset

    args = _parse_args(argv)
    path = args.dataset or example_dataset_path()
    dataset = read_dataset(path)
    if args.spec:
        spec = ACSFSpec.from_json(Path(args.spec).read_text())
    elif args.preset == "mote2_paper":
        spec = ACSFSpec.mote2_paper()
    else:
        spec = ACSFSpec.default(tuple(int(z) for z in dataset.elements), rc=args.rc)
    t0 = time.perf_counter()
    desc = describe_dataset(dataset, spec, derivatives=not args.no_derivatives,
                            cache_dir=args.cache_dir, chunk_atoms=args.chunk_atoms,
                            progress=not args.quiet)
    dt = time.perf_counter() - t0
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
    if args.out:
        write_descriptors(desc, args.out, key=dataset_key(dataset, spec, desc.has_derivatives))
        print(f"wrote        {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
