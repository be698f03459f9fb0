"""dataset.h5: structures with DFT energies, forces and stresses — read, write, validate, split.

A dataset is stored as flat arrays with per-structure counts (no HDF5 group per structure): the
atoms of structure ``s`` are rows ``atom_offset[s]:atom_offset[s+1]`` of the per-atom arrays, with
``atom_offset = [0, cumsum(n_atoms)]``. ``SCHEMA`` below is the single table of every field
(name, shape, dtype, unit, sign); ``docs/dataset_format.md`` reproduces it.

Units (ASE's, converted once at the I/O boundary by ``alw_ref.convert``): energy eV (total energy
of the cell), length Å, force eV/Å, stress eV/Å³ with ASE's sign σ = (1/V) ∂E/∂ε (tension
positive), Voigt order xx yy zz yz xz xy. A structure without a stress label has ``has_stress``
False and a NaN stress row.

Validation (``validate_structure``, ``validate_dataset``) raises ``DataError`` naming the structure
(index and name) and the field, for: NaN/Inf values, wrong shapes or dtypes, per-atom arrays whose
length disagrees with ``n_atoms``, a cell of volume ≤ 0 when any direction is periodic, atoms closer
than ``MIN_DISTANCE`` (periodic images included) and atomic numbers outside 1..118. Nothing is
repaired silently.

Writing is atomic: the file is written under a temporary name in the target folder, flushed to
disk and renamed over the target with ``os.replace``; on any failure the temporary file is removed
and an existing target is left untouched.

The 70/20/10 train/validation/test split of the paper is ``split_indices(n, (0.7, 0.2, 0.1), seed)``.
"""

from __future__ import annotations

import importlib.resources
import json
import numbers as _numbers
import os
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from .atomic import atomic_write
from .errors import DataError
from .neighbors import neighbor_list

#: Root attribute ``format`` of every dataset.h5 file.
FORMAT_NAME = "alw_ref.dataset"
#: Root attribute ``format_version``; bump on any incompatible change of SCHEMA.
FORMAT_VERSION = 1
#: Root attribute ``units`` (stored as a JSON string).
UNITS = {"energy": "eV", "length": "Å", "forces": "eV/Å", "stress": "eV/Å³"}
#: Root attribute ``stress_convention``.
STRESS_CONVENTION = "ASE: sigma = (1/V) dE/deps, tension positive, Voigt xx yy zz yz xz xy"
#: Atoms closer than this (Å), periodic images included, are rejected as unphysical.
MIN_DISTANCE = 0.1
#: Largest accepted magnitude of each field (finite values beyond are refused as absurd: a unit or parsing
#: error, not a structure). Energy per atom: all-electron total energies reach ~1.4e6 eV/atom (Z = 118,
#: Thomas–Fermi −0.77 Z^(7/3) Ha); forces: DFT forces at close contact stay below ~1e3 eV/Å; stress:
#: 1e3 eV/Å³ = 1.6e5 GPa; coordinates: 1e6 Å = 0.1 mm.
LIMITS = {"energy": (1e7, "eV/atom"), "forces": (1e4, "eV/Å"), "stress": (1e3, "eV/Å³"),
          "positions": (1e6, "Å"), "cell": (1e6, "Å")}
#: File name of the bundled example inside ``alw_ref/examples``.
EXAMPLE_FILE = "mlearn_Mo.h5"

#: Every HDF5 dataset of dataset.h5 = every field of ``Dataset``, in order:
#: name -> (shape with S = structures and N = atoms, dtype, unit, meaning and sign).
SCHEMA = {
    "n_atoms": (("S",), "int64", "1", "number of atoms of each structure (≥ 1)"),
    "energy": (("S",), "float64", "eV", "total energy of the cell"),
    "cell": (("S", 3, 3), "float64", "Å", "rows are the lattice vectors a, b, c"),
    "pbc": (("S", 3), "bool", "1", "periodic along a, b, c"),
    "stress": (("S", 6), "float64", "eV/Å³",
               "Voigt xx yy zz yz xz xy, ASE sign σ = (1/V) ∂E/∂ε (tension > 0); NaN row if absent"),
    "has_stress": (("S",), "bool", "1", "False where the structure has no stress label"),
    "numbers": (("N",), "int64", "1", "atomic numbers 1..118"),
    "positions": (("N", 3), "float64", "Å", "Cartesian positions (need not be wrapped)"),
    "forces": (("N", 3), "float64", "eV/Å", "F = −∂E/∂r"),
    "name": (("S",), "str", "", "identifier, e.g. '<source file>:<frame>' (UTF-8)"),
    "config_type": (("S",), "str", "", "group label from the source, or '' (UTF-8)"),
}

_DTYPE_KINDS = {"int64": "iu", "float64": "f", "bool": "b", "str": "UO"}


# ---------------------------------------------------------------------------------------------
# Structure


@dataclass(frozen=True, eq=False)
class Structure:
    """One labelled structure (a view; validated on demand by ``validate_structure``).

    numbers   : (n_atoms,) int64, atomic numbers.
    positions : (n_atoms, 3) float64, Å, Cartesian.
    cell      : (3, 3) float64, Å, rows are the lattice vectors.
    pbc       : (3,) bool, periodic along each lattice vector.
    energy    : float, eV, total energy; or None.
    forces    : (n_atoms, 3) float64, eV/Å; or None.
    stress    : (6,) float64, eV/Å³, Voigt xx yy zz yz xz xy, ASE sign (tension > 0); or None.
    name, config_type : str.
    """

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    name: str = ""
    config_type: str = ""

    def __post_init__(self):
        # Float fields become float64 arrays; numbers and pbc keep their dtype so that validation
        # can reject e.g. fractional atomic numbers instead of truncating them.
        for key in ("numbers", "pbc"):
            object.__setattr__(self, key, np.asarray(getattr(self, key)))
        for key in ("positions", "cell", "forces", "stress"):
            value = getattr(self, key)
            if value is None:
                continue
            try:
                object.__setattr__(self, key, np.asarray(value, dtype=np.float64))
            except (TypeError, ValueError) as err:
                raise DataError(f"{_where(None, self.name)}: field {key!r}: not numeric ({err})") from None

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return int(self.numbers.shape[0]) if self.numbers.ndim else 0

    @property
    def volume(self) -> float:
        """Signed cell volume det(cell), Å³ (negative for left-handed lattice vectors)."""
        return float(np.linalg.det(self.cell))


def _where(index, name) -> str:
    """'structure 17 ('name')' — how every error message names a structure."""
    text = "structure" if index is None else f"structure {index}"
    return f"{text} ({str(name)!r})" if name else text


def _check_finite(where, field, array, per_atom):
    """DataError naming the first NaN/Inf entry of ``array`` (atom and component if per atom)."""
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
        pos = tuple(int(v) for v in bad[0])
        raise DataError(f"{where}: field {field!r}: non-finite value {array[pos]} at {_entry(pos, per_atom)}")


def _entry(pos, per_atom) -> str:
    """'atom 2, component y' (per-atom arrays) or 'index 4' / 'index (1, 2)' — how messages name an entry."""
    if per_atom:
        return f"atom {pos[0]}, component {'xyz'[pos[1]]}"
    return f"index {pos if len(pos) > 1 else pos[0]}"


def _check_magnitude(where, field, array, per_atom):
    """DataError naming the first entry of ``array`` with |value| > LIMITS[field] (finite but absurd)."""
    limit, unit = LIMITS[field]
    bad = np.argwhere(np.abs(array) > limit)
    if bad.size:
        pos = tuple(int(v) for v in bad[0])
        raise DataError(f"{where}: field {field!r}: absurd value {array[pos]:.6g} {unit} at "
                        f"{_entry(pos, per_atom)} (|value| must be <= {limit:g} {unit}; check the units and the source)")


def _check_shape(where, field, array, shape):
    """DataError if ``array.shape != shape``."""
    if array.shape != shape:
        raise DataError(f"{where}: field {field!r}: shape {array.shape}, expected {shape}")


def validate_structure(structure: Structure, index: int | None = None) -> None:
    """Raise DataError (naming structure ``index``, its name and the field) if ``structure`` is bad.

    Checks: dtypes and shapes; atomic numbers in 1..118; finite energy, positions, cell, forces and
    stress where present, each within ``LIMITS`` (energy per atom); det(cell) > 0 Å³ when any pbc is
    True; no stress without pbc; no two atoms (periodic images included) closer than ``MIN_DISTANCE``
    Å (via ``alw_ref.neighbors.neighbor_list``).
    """
    s = structure
    where = _where(index, s.name)
    z = s.numbers
    if z.ndim != 1 or not np.issubdtype(z.dtype, np.integer):
        raise DataError(f"{where}: field 'numbers': expected a 1-D integer array, got shape "
                        f"{z.shape} dtype {z.dtype}")
    n = z.shape[0]
    if n == 0:
        raise DataError(f"{where}: field 'numbers': the structure has no atoms")
    bad = np.flatnonzero((z < 1) | (z > 118))
    if bad.size:
        raise DataError(f"{where}: field 'numbers': unknown element: atom {bad[0]} has atomic "
                        f"number {z[bad[0]]} (must be 1..118)")
    _check_shape(where, "positions", s.positions, (n, 3))
    _check_finite(where, "positions", s.positions, per_atom=True)
    _check_magnitude(where, "positions", s.positions, per_atom=True)
    _check_shape(where, "cell", s.cell, (3, 3))
    _check_finite(where, "cell", s.cell, per_atom=False)
    _check_magnitude(where, "cell", s.cell, per_atom=False)
    _check_shape(where, "pbc", s.pbc, (3,))
    if s.pbc.dtype != np.bool_:
        raise DataError(f"{where}: field 'pbc': expected bool, got dtype {s.pbc.dtype}")
    if s.energy is not None:
        if isinstance(s.energy, (bool, np.bool_)) or not isinstance(s.energy, _numbers.Real):
            raise DataError(f"{where}: field 'energy': expected a real number, got {s.energy!r}")
        if not np.isfinite(s.energy):
            raise DataError(f"{where}: field 'energy': non-finite value {s.energy}")
        limit, unit = LIMITS["energy"]
        if abs(s.energy) > limit * n:
            raise DataError(f"{where}: field 'energy': absurd value {s.energy:.6g} eV for {n} atoms "
                            f"({s.energy / n:.3g} {unit}; |E|/n_atoms must be <= {limit:g} {unit}; check the "
                            "units and the source)")
    if s.forces is not None:
        _check_shape(where, "forces", s.forces, (n, 3))
        _check_finite(where, "forces", s.forces, per_atom=True)
        _check_magnitude(where, "forces", s.forces, per_atom=True)
    if s.stress is not None:
        _check_shape(where, "stress", s.stress, (6,))
        _check_finite(where, "stress", s.stress, per_atom=False)
        _check_magnitude(where, "stress", s.stress, per_atom=False)
    if s.pbc.any():
        volume = s.volume
        if not volume > 0.0:
            hand = " (det < 0: the lattice vectors are left-handed)" if volume < 0 else ""
            raise DataError(f"{where}: field 'cell': volume {volume:.6g} Å³ <= 0 with pbc "
                            f"{tuple(bool(p) for p in s.pbc)}{hand}")
    elif s.stress is not None:
        raise DataError(f"{where}: field 'stress': given for a structure without periodic directions "
                        f"(pbc all False): stress needs a cell volume; drop it or set pbc")
    check_min_distance(where, s.positions, s.cell, s.pbc)


def check_min_distance(where, positions, cell, pbc):
    """DataError naming the closest pair of atoms if any pair (images included) is < MIN_DISTANCE."""
    nl = neighbor_list(np.ascontiguousarray(positions, dtype=np.float64),
                       np.ascontiguousarray(cell, dtype=np.float64),
                       np.ascontiguousarray(pbc, dtype=np.bool_), MIN_DISTANCE)
    if nl.d_n.shape[0] == 0:
        return
    k = int(np.argmin(nl.d_n))
    i, j = sorted((int(nl.i_n[k]), int(nl.j_n[k])))
    d = float(nl.d_n[k])
    if i == j:
        what = f"atom {i} is {d:.3f} Å from its own periodic image"
    else:
        what = f"atoms {i} and {j} are {d:.3f} Å apart"
    raise DataError(f"{where}: field 'positions': {what} (minimum {MIN_DISTANCE} Å)")


# ---------------------------------------------------------------------------------------------
# Dataset


@dataclass(frozen=True, eq=False)
class Dataset:
    """Structures as flat arrays (fields = HDF5 datasets, see ``SCHEMA``); validated on demand.

    n_atoms (S,) int64 · energy (S,) float64 eV · cell (S, 3, 3) float64 Å · pbc (S, 3) bool ·
    stress (S, 6) float64 eV/Å³ (NaN rows where absent) · has_stress (S,) bool ·
    numbers (N,) int64 · positions (N, 3) float64 Å · forces (N, 3) float64 eV/Å ·
    name (S,) str · config_type (S,) str.
    """

    n_atoms: np.ndarray
    energy: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    stress: np.ndarray
    has_stress: np.ndarray
    numbers: np.ndarray
    positions: np.ndarray
    forces: np.ndarray
    name: np.ndarray
    config_type: np.ndarray

    @cached_property
    def atom_offset(self) -> np.ndarray:
        """(S + 1,) int64: atoms of structure s are rows atom_offset[s]:atom_offset[s+1]."""
        offset = np.zeros(len(self.n_atoms) + 1, dtype=np.int64)
        np.cumsum(self.n_atoms, out=offset[1:])
        return offset

    @property
    def elements(self) -> np.ndarray:
        """Sorted unique atomic numbers, (n_elements,) int64."""
        return np.unique(self.numbers).astype(np.int64)

    def __len__(self) -> int:
        return int(self.n_atoms.shape[0])

    def __getitem__(self, k) -> Structure:
        """Structure ``k`` (negative indices count from the end); arrays are views."""
        n = len(self)
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, _numbers.Integral):
            raise TypeError(f"Dataset index must be an integer, got {type(k).__name__}; "
                            "use subset() for several structures")
        if not -n <= k < n:
            raise IndexError(f"structure index {k} out of range for a dataset of {n} structures")
        k = int(k) % n
        a, b = self.atom_offset[k], self.atom_offset[k + 1]
        return Structure(numbers=self.numbers[a:b], positions=self.positions[a:b],
                         cell=self.cell[k], pbc=self.pbc[k], energy=float(self.energy[k]),
                         forces=self.forces[a:b],
                         stress=self.stress[k] if self.has_stress[k] else None,
                         name=str(self.name[k]), config_type=str(self.config_type[k]))

    def __iter__(self):
        for k in range(len(self)):
            yield self[k]

    def subset(self, indices) -> "Dataset":
        """New Dataset of structures ``indices`` (1-D integer array-like, in that order; copies)."""
        idx = np.asarray(indices)
        if idx.size == 0:
            idx = idx.astype(np.int64)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise DataError(f"subset: indices must be a 1-D integer array, got shape {idx.shape} "
                            f"dtype {idx.dtype}")
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise DataError(f"subset: index out of range for a dataset of {n} structures")
        idx = idx % max(n, 1)
        offset = self.atom_offset
        atoms = (np.concatenate([np.arange(offset[k], offset[k + 1]) for k in idx])
                 if idx.size else np.zeros(0, dtype=np.int64))
        per_atom = {"numbers", "positions", "forces"}
        return Dataset(**{f.name: getattr(self, f.name)[atoms if f.name in per_atom else idx]
                          for f in fields(self)})

    @classmethod
    def from_structures(cls, structures) -> "Dataset":
        """Validate and pack structures; energy and forces are required, stress is optional."""
        structures = list(structures)
        for k, s in enumerate(structures):
            for key in ("energy", "forces"):
                if getattr(s, key) is None:
                    raise DataError(f"{_where(k, s.name)}: field {key!r}: missing (a dataset needs "
                                    "energy and forces for every structure)")
            validate_structure(s, index=k)

        def stack(values, shape, dtype):
            return np.array(values, dtype=dtype).reshape(shape)

        S = len(structures)
        N = sum(s.n_atoms for s in structures)
        per_atom = {key: (np.concatenate([getattr(s, key) for s in structures]) if S
                          else np.zeros((0, 3) if key != "numbers" else (0,)))
                    for key in ("numbers", "positions", "forces")}
        nan6 = np.full(6, np.nan)
        return cls(
            n_atoms=stack([s.n_atoms for s in structures], (S,), np.int64),
            energy=stack([s.energy for s in structures], (S,), np.float64),
            cell=stack([s.cell for s in structures], (S, 3, 3), np.float64),
            pbc=stack([s.pbc for s in structures], (S, 3), np.bool_),
            stress=stack([nan6 if s.stress is None else s.stress for s in structures], (S, 6),
                         np.float64),
            has_stress=stack([s.stress is not None for s in structures], (S,), np.bool_),
            numbers=per_atom["numbers"].astype(np.int64).reshape(N),
            positions=per_atom["positions"].astype(np.float64).reshape(N, 3),
            forces=per_atom["forces"].astype(np.float64).reshape(N, 3),
            name=np.array([s.name for s in structures], dtype=str).reshape(S),
            config_type=np.array([s.config_type for s in structures], dtype=str).reshape(S),
        )


def validate_dataset(dataset: Dataset) -> None:
    """Raise DataError if ``dataset`` breaks ``SCHEMA`` or any structure fails validate_structure.

    Dataset-level checks: every field is an array of the schema's dtype kind and shape (S from
    ``n_atoms``, N from ``numbers``); at least one structure; n_atoms ≥ 1 and sum(n_atoms) == N
    (consistent offsets); stress rows are all NaN exactly where has_stress is False. Then each
    structure is validated.
    """
    for key, (shape, dtype, _, _) in SCHEMA.items():
        value = getattr(dataset, key)
        if not isinstance(value, np.ndarray) or value.dtype.kind not in _DTYPE_KINDS[dtype]:
            kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise DataError(f"dataset: field {key!r}: expected a {dtype} array, got {kind}")
    S = dataset.n_atoms.shape[0] if dataset.n_atoms.ndim == 1 else -1
    N = dataset.numbers.shape[0] if dataset.numbers.ndim == 1 else -1
    for key, (shape, _, _, _) in SCHEMA.items():
        expected = tuple(S if d == "S" else N if d == "N" else d for d in shape)
        got = getattr(dataset, key).shape
        if got != expected:
            raise DataError(f"dataset: field {key!r}: shape {got}, expected {expected} "
                            f"({len(dataset.n_atoms)} structures, {len(dataset.numbers)} atoms)")
    _check_atom_counts(dataset.n_atoms, N, dataset.name)
    absent_but_set = ~dataset.has_stress & ~np.isnan(dataset.stress).all(axis=1)
    if absent_but_set.any():
        k = int(np.flatnonzero(absent_but_set)[0])
        raise DataError(f"{_where(k, dataset.name[k])}: field 'stress': has_stress is False but "
                        f"the row is not NaN: {dataset.stress[k]}")
    for k in range(S):
        validate_structure(dataset[k], index=k)


# ---------------------------------------------------------------------------------------------
# HDF5 I/O


def write_dataset(dataset: Dataset, path) -> None:
    """Validate ``dataset`` and write it to ``path`` atomically (``atomic.atomic_write``: temporary
    file in the target folder, fsync, rename; nothing is left behind if anything fails)."""
    validate_dataset(dataset)
    with atomic_write(path) as tmp:
        _write_hdf5(dataset, tmp)


def _write_hdf5(dataset: Dataset, filename) -> None:
    """Write the SCHEMA datasets (each with a ``unit`` attribute) and the root attributes."""
    with h5py.File(filename, "w") as f:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["units"] = json.dumps(UNITS, ensure_ascii=False)
        f.attrs["stress_convention"] = STRESS_CONVENTION
        for key, (_, dtype, unit, _) in SCHEMA.items():
            value = getattr(dataset, key)
            if dtype == "str":
                ds = f.create_dataset(key, data=np.asarray(value, dtype=object),
                                      dtype=h5py.string_dtype("utf-8"))
            else:
                ds = f.create_dataset(key, data=np.asarray(value, dtype=dtype))
            ds.attrs["unit"] = unit


def read_dataset(path) -> Dataset:
    """Read and validate a dataset.h5 file.

    Raises DataError naming the file if it is not HDF5, not an alw_ref dataset (root attribute
    ``format``), of another ``format_version``, misses a field, declares sizes that disagree with each
    other or with the file (``_declared_fields``: checked before any array is read, so a damaged header
    cannot make it allocate gigabytes), has no structures, or fails ``validate_dataset``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such dataset file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file ({err})") from None
    try:
        with f:
            _check_format(f)
            fields_ = _declared_fields(f)
            n_atoms = fields_["n_atoms"][()]
            _check_atom_counts(n_atoms, fields_["numbers"].shape[0])
            arrays = {key: _read_field(key, ds) for key, ds in fields_.items()}
        dataset = Dataset(**arrays)
        validate_dataset(dataset)
    except DataError as err:
        raise DataError(f"{path}: {err}") from None
    except OSError as err:          # HDF5 metadata damaged past the header
        raise DataError(f"{path}: damaged HDF5 file, cannot read it ({err})") from None
    return dataset


def _check_format(f) -> None:
    """DataError unless the root attributes say alw_ref dataset, format_version FORMAT_VERSION."""
    fmt = f.attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode("utf-8", "replace")
    if not isinstance(fmt, str) or fmt != FORMAT_NAME:
        found = "no 'format' attribute" if fmt is None else f"format {np.asarray(fmt).tolist()!r}"
        raise DataError(f"not an alw_ref dataset file: found {found} at the root, expected format {FORMAT_NAME!r}")
    version = f.attrs.get("format_version")
    if version is None or np.ndim(version) != 0 or version != FORMAT_VERSION:
        found = ("no 'format_version' attribute" if version is None else
                 f"dataset format version {np.asarray(version).tolist()!r}")
        raise DataError(f"{found} is not supported (this alw_ref reads format_version {FORMAT_VERSION})")


def _declared_fields(f) -> dict:
    """The SCHEMA fields of open file ``f`` as h5py datasets, checked from their headers alone.

    DataError naming the field when one is missing or not a dataset, has the wrong kind of values
    (e.g. numbers for ``name``), a shape that disagrees with S = len(n_atoms) and N = len(numbers),
    stores fewer bytes in the file than its shape declares (uncompressed data), or when the arrays
    would not fit in this machine's memory."""
    out = {}
    for key, (_, dtype, _, _) in SCHEMA.items():
        ds = f.get(key)
        if ds is None:
            raise DataError(f"field {key!r}: dataset missing from the file")
        if not isinstance(ds, h5py.Dataset):
            raise DataError(f"field {key!r}: expected an HDF5 dataset, found a {type(ds).__name__}")
        is_str = h5py.check_string_dtype(ds.dtype) is not None
        if (dtype == "str") != is_str or (not is_str and ds.dtype.kind not in _DTYPE_KINDS[dtype]):
            got = "strings" if is_str else f"dtype {ds.dtype}"
            want = "UTF-8 strings" if dtype == "str" else f"{dtype} values"
            raise DataError(f"field {key!r}: expected {want}, got {got}")
        out[key] = ds
    for key, size in (("n_atoms", "S"), ("numbers", "N")):
        if out[key].shape is None or len(out[key].shape) != 1:
            raise DataError(f"field {key!r}: declared shape {out[key].shape}, expected a 1-D array ({size},)")
    S, N = out["n_atoms"].shape[0], out["numbers"].shape[0]
    for key, (shape, _, _, _) in SCHEMA.items():
        expected = tuple(S if d == "S" else N if d == "N" else d for d in shape)
        if out[key].shape != expected:
            raise DataError(f"field {key!r}: declared shape {out[key].shape}, expected {expected} from "
                            f"len(n_atoms) = {S} structures and len(numbers) = {N} atoms")
    total = 0
    for key, ds in out.items():
        nbytes = ds.size * (8 if h5py.check_string_dtype(ds.dtype) else ds.dtype.itemsize)
        total += nbytes
        if ds.id.get_create_plist().get_nfilters() == 0 and h5py.check_string_dtype(ds.dtype) is None:
            stored = ds.id.get_storage_size()
            if stored < nbytes:
                raise DataError(f"field {key!r}: declares shape {ds.shape} ({_gib(nbytes)}) but the file "
                                f"stores {stored} bytes of it: truncated or damaged file")
    memory = _physical_memory()
    if memory and total > memory:
        raise DataError(f"the fields declare {S} structures and {N} atoms ({_gib(total)}), more than this "
                        f"machine's memory ({_gib(memory)})")
    return out


def _gib(nbytes) -> str:
    return f"{nbytes / 2**30:.3g} GiB"


def _physical_memory() -> int:
    """Bytes of physical memory, or 0 when the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 0


def _check_atom_counts(n_atoms, n_rows, names=None) -> None:
    """DataError unless there is a structure, every n_atoms is in 1..n_rows and sum(n_atoms) == n_rows
    (``read_dataset`` checks this before it reads the per-atom arrays; ``names`` for the message)."""
    if n_atoms.shape[0] == 0:
        raise DataError("dataset: no structures (field 'n_atoms' is empty; an empty dataset can be neither "
                        "trained on nor evaluated)")
    bad = np.flatnonzero((n_atoms < 1) | (n_atoms > n_rows))
    if bad.size:
        k = int(bad[0])
        raise DataError(f"{_where(k, None if names is None else names[k])}: field 'n_atoms': {n_atoms[k]} "
                        f"atoms (must be ≥ 1 and at most the {n_rows} rows of the per-atom arrays)")
    total = int(n_atoms.sum())
    if total != n_rows:
        raise DataError(f"dataset: field 'n_atoms': offsets inconsistent: sum(n_atoms) = {total} "
                        f"but the per-atom arrays have {n_rows} rows")


def _read_field(key, ds) -> np.ndarray:
    """Values of one checked field; DataError naming it for strings that are not valid UTF-8."""
    if SCHEMA[key][1] != "str":
        return ds[()]
    try:
        return np.array(ds.asstr()[()], dtype=str).reshape(ds.shape)
    except UnicodeDecodeError as err:
        raise DataError(f"field {key!r}: not valid UTF-8 ({err})") from None


# ---------------------------------------------------------------------------------------------
# Split and bundled example


def split_indices(n_structures: int, fractions=(0.7, 0.2, 0.1), seed: int = 0):
    """Deterministic random train/validation/test split (the paper's 70/20/10 by default).

    perm = numpy.random.default_rng(seed).permutation(n_structures); with n = n_structures,
    n_train = floor(f_train·n + ½), n_val = min(floor(f_val·n + ½), n − n_train),
    n_test = n − n_train − n_val; train = perm[:n_train], val = the next n_val, test = the rest.
    Each returned (int64) array is sorted. Raises DataError for a negative n or fractions that
    are not three finite numbers ≥ 0 summing to 1 (within 1e-9).
    """
    if isinstance(n_structures, (bool, np.bool_)) or not isinstance(n_structures, _numbers.Integral) \
            or n_structures < 0:
        raise DataError(f"split_indices: n_structures must be an integer >= 0, got {n_structures!r}")
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or not np.isfinite(f).all() or (f < 0).any() or abs(f.sum() - 1.0) > 1e-9:
        raise DataError(f"split_indices: fractions must be three finite numbers >= 0 summing to 1 "
                        f"(train, val, test), got {tuple(fractions)}")
    n = int(n_structures)
    n_train = int(np.floor(f[0] * n + 0.5))
    n_train = min(n_train, n)
    n_val = min(int(np.floor(f[1] * n + 0.5)), n - n_train)
    perm = np.random.default_rng(seed).permutation(n).astype(np.int64)
    parts = perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]
    return tuple(np.sort(p) for p in parts)


def example_dataset_path() -> Path:
    """Path of the bundled example dataset (mlearn Mo, 217 structures; see examples/README.md)."""
    path = Path(str(importlib.resources.files("alw_ref").joinpath("examples", EXAMPLE_FILE)))
    if not path.is_file():
        raise FileNotFoundError(f"bundled example dataset missing: {path} (broken installation?)")
    return path
