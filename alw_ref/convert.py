"""Convert labelled structures to dataset.h5: ``python -m alw_ref.convert IN [IN ...] OUT.h5``.

Two readers, both returning ``alw_ref.data.Structure`` objects in alw_ref units (energy eV,
forces eV/Å, stress eV/Å³ with ASE sign, Voigt xx yy zz yz xz xy):

``read_ase(path)`` — anything ``ase.io.read(path, index=":")`` reads (extended XYZ, VASP OUTCAR,
...); needs the ``ase`` extra. Per frame, each label is taken from the frame's
SinglePointCalculator results if there, else from ``atoms.info`` / ``atoms.arrays``:
  - ``energy`` (eV, total) and ``forces`` (eV/Å): required; a frame without them is a DataError
    naming the file and the frame;
  - ``stress`` (eV/Å³, ASE sign) as Voigt 6 (xx yy zz yz xz xy) or 3×3 (must be symmetric; note
    that ASE's extxyz reader itself keeps the upper triangle of a 9-number ``stress``);
  - else ``virial`` W (eV, 3×3 or 9 numbers), converted with σ = −W / V (V = det(cell), Å³);
  - else no stress: the structure gets has_stress False.
  ``config_type`` = info["config_type"], else info["phase"], else ""; ``name`` = "<file name>:<frame>".

``read_atomdnn_raw(path)`` — the raw MoTe2 files of AtomDNN (``XYZ_<n>``; a ``.tar.gz`` of them,
a folder of them, or one file), no ASE needed. Header line:
``Lattice="9 numbers" Properties=species:S:1:pos:R:3:tags:I:1:forces:R:3 energy=<eV> stress= <6
numbers> pbc="T T T"`` (the six numbers may be quoted). Its stress is −σ in kbar (VASP sign,
compression positive) in the order xx yy zz yz xz xy, so σ = −raw · KBAR_TO_EV_PER_A3. Atom lines
are ``El x y z tag fx fy fz``; the element comes from the species column (tag 1 = Mo, 2 = Te is
not used). Frames are ordered by the number n of ``XYZ_<n>``; ``name`` = "XYZ_<n>",
``config_type`` = "".

``convert(inputs, output, fmt)`` concatenates the structures of all inputs in the given order,
validates them and writes ``output`` atomically with ``data.write_dataset``.
"""

from __future__ import annotations

import argparse
import re
import sys
import tarfile
from pathlib import Path

import numpy as np

from .data import Dataset, Structure, write_dataset
from .elements import atomic_number
from .errors import ALWError, DataError, MissingDependencyError
from .units import KBAR_TO_EV_PER_A3, VOIGT_PAIRS

FORMATS = ("auto", "ase", "atomdnn-raw")
_RAW_NAME = re.compile(r"^XYZ_(\d+)$")


def _import_ase_io():
    """``ase.io``, or MissingDependencyError with the install command."""
    try:
        import ase.io
    except ImportError:
        raise MissingDependencyError(
            "reading this file needs ASE, which is not installed: pip install alw_ref[ase]") from None
    return ase.io


def voigt_from_3x3(tensor, where: str) -> np.ndarray:
    """Voigt 6-vector (xx yy zz yz xz xy) of a symmetric 3×3 tensor; DataError if not symmetric.

    tensor : (3, 3) float64 (any unit). Returns (6,) float64 in the same unit.
    """
    t = np.asarray(tensor, dtype=np.float64).reshape(3, 3)
    scale = max(float(np.max(np.abs(t))), 1e-300)
    if np.max(np.abs(t - t.T)) > 1e-6 * scale:
        raise DataError(f"{where}: 3×3 tensor is not symmetric: {t.tolist()}")
    return np.array([t[a, b] for a, b in VOIGT_PAIRS])


def stress_from_virial(virial, volume: float, where: str) -> np.ndarray:
    """Cauchy stress from the virial: σ = −W / V (ASE sign, tension positive).

    virial : (3, 3) or (9,) float64, eV, symmetric — the extended-XYZ (libAtoms/GAP) convention
    W = −V σ, positive under compression. volume : det(cell), Å³ (> 0).
    Returns (6,) float64 Voigt xx yy zz yz xz xy, eV/Å³.
    """
    if not volume > 0.0:
        raise DataError(f"{where}: a virial needs a cell of positive volume, got {volume:.6g} Å³")
    return -voigt_from_3x3(virial, where) / volume


def _label(atoms, key):
    """Value of ``key`` from the calculator results, else from atoms.info / atoms.arrays."""
    calc = getattr(atoms, "calc", None)
    results = getattr(calc, "results", {}) if calc is not None else {}
    for source in (results, atoms.info, atoms.arrays):
        if key in source and source[key] is not None:
            return source[key]
    return None


def _stress_of_frame(atoms, where):
    """(6,) eV/Å³ Voigt stress of an ASE frame from 'stress' or 'virial', or None if neither."""
    stress = _label(atoms, "stress")
    if stress is not None:
        stress = np.asarray(stress, dtype=np.float64)
        if stress.size == 6:
            return stress.reshape(6)
        if stress.size == 9:
            return voigt_from_3x3(stress, f"{where}: stress")
        raise DataError(f"{where}: stress has {stress.size} numbers (expected 6 Voigt or 9)")
    virial = _label(atoms, "virial")
    if virial is not None:
        virial = np.asarray(virial, dtype=np.float64)
        if virial.size != 9:
            raise DataError(f"{where}: virial has {virial.size} numbers (expected 9)")
        return stress_from_virial(virial, float(np.linalg.det(atoms.cell.array)), f"{where}: virial")
    return None


def read_ase(path) -> list[Structure]:
    """Structures of every frame of an ASE-readable file (labels as in the module docstring)."""
    ase_io = _import_ase_io()
    path = Path(path)
    try:
        frames = ase_io.read(path, index=":")
    except Exception as err:  # ASE raises many types for unreadable input
        raise DataError(f"{path}: ASE cannot read it ({type(err).__name__}: {err})") from None
    structures = []
    for k, atoms in enumerate(frames):
        where = f"{path}: frame {k}"
        energy = _label(atoms, "energy")
        forces = _label(atoms, "forces")
        for key, value in (("energy", energy), ("forces", forces)):
            if value is None:
                raise DataError(f"{where}: no {key} (looked in the calculator results, atoms.info "
                                "and atoms.arrays)")
        config_type = atoms.info.get("config_type", atoms.info.get("phase", ""))
        structures.append(Structure(
            numbers=np.asarray(atoms.numbers, dtype=np.int64),
            positions=np.array(atoms.positions, dtype=np.float64),
            cell=np.array(atoms.cell.array, dtype=np.float64),
            pbc=np.array(atoms.pbc, dtype=bool),
            energy=float(np.asarray(energy, dtype=np.float64)),
            forces=np.array(forces, dtype=np.float64),
            stress=_stress_of_frame(atoms, where),
            name=f"{path.name}:{k}",
            config_type=str(config_type),
        ))
    return structures


def _header_fields(header: str, where: str) -> dict:
    """key -> value of an AtomDNN raw header (``key=value`` pairs, values optionally quoted).

    A value runs up to the next `` word=``, so both ``stress= 1 2 3 4 5 6`` and
    ``stress= "1 2 3 4 5 6"`` parse.
    """
    parts = re.split(r"(?:^|\s)([A-Za-z_]\w*)=", header.strip())
    if parts[0].strip():
        raise DataError(f"{where}: header does not start with key=value: {header.strip()!r}")
    return {key: value.strip().strip('"').strip() for key, value in zip(parts[1::2], parts[2::2])}


def _header_value(fields: dict, key: str, where: str) -> str:
    if key not in fields:
        raise DataError(f"{where}: header has no {key}= field (fields: {', '.join(fields)})")
    return fields[key]


def _floats(text: str, count: int, where: str, what: str) -> np.ndarray:
    try:
        values = np.array(text.split(), dtype=np.float64)
    except ValueError:
        raise DataError(f"{where}: {what}: not numbers: {text!r}") from None
    if values.size != count:
        raise DataError(f"{where}: {what}: {values.size} numbers, expected {count}")
    return values


def parse_atomdnn_raw(text: str, name: str) -> Structure:
    """One AtomDNN raw frame (the text of an ``XYZ_<n>`` file) as a Structure in alw_ref units."""
    lines = text.splitlines()
    try:
        n = int(lines[0])
    except (IndexError, ValueError):
        raise DataError(f"{name}: line 1 is not an atom count") from None
    if len(lines) < n + 2:
        raise DataError(f"{name}: {len(lines) - 2} atom lines, expected {n}")
    header = _header_fields(lines[1], name)
    properties = _header_value(header, "Properties", name)
    if properties != "species:S:1:pos:R:3:tags:I:1:forces:R:3":
        raise DataError(f"{name}: unexpected Properties={properties!r}")
    cell = _floats(_header_value(header, "Lattice", name), 9, name, "Lattice").reshape(3, 3)
    energy = float(_floats(_header_value(header, "energy", name), 1, name, "energy")[0])
    raw_stress = _floats(_header_value(header, "stress", name), 6, name, "stress")
    pbc_text = _header_value(header, "pbc", name).split()
    if len(pbc_text) != 3 or any(p not in "TF" for p in pbc_text):
        raise DataError(f"{name}: pbc must be three of T/F, got {pbc_text}")
    symbols, table = [], []
    for line in lines[2:2 + n]:
        cols = line.split()
        if len(cols) != 8:
            raise DataError(f"{name}: atom line {line!r} has {len(cols)} columns, expected 8")
        symbols.append(cols[0])
        table.append(cols[1:4] + cols[5:8])
    try:
        xf = np.array(table, dtype=np.float64).reshape(n, 6)
    except ValueError:
        raise DataError(f"{name}: non-numeric position or force") from None
    try:
        numbers = np.array([atomic_number(s) for s in symbols], dtype=np.int64)
    except DataError as err:
        raise DataError(f"{name}: {err}") from None
    return Structure(
        numbers=numbers, positions=xf[:, :3], cell=cell,
        pbc=np.array([p == "T" for p in pbc_text]), energy=energy, forces=xf[:, 3:],
        # Raw value is −σ in kbar (VASP sign, compression positive), already in Voigt order
        # xx yy zz yz xz xy: flip the sign and convert kbar → eV/Å³.
        stress=-raw_stress * KBAR_TO_EV_PER_A3,
        name=name, config_type="")


def read_atomdnn_raw(path) -> list[Structure]:
    """Structures of AtomDNN raw ``XYZ_<n>`` files: a .tar.gz of them, a folder, or one file."""
    path = Path(path)
    texts = {}  # n -> (name, text)
    if path.is_dir():
        for p in path.iterdir():
            m = _RAW_NAME.match(p.name)
            if m and p.is_file():
                texts[int(m.group(1))] = (p.name, p.read_text())
    elif tarfile.is_tarfile(path):
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                m = _RAW_NAME.match(Path(member.name).name)
                if m and member.isfile():
                    data = tar.extractfile(member).read().decode("utf-8")
                    texts[int(m.group(1))] = (Path(member.name).name, data)
    elif _RAW_NAME.match(path.name):
        texts[int(_RAW_NAME.match(path.name).group(1))] = (path.name, path.read_text())
    else:
        raise DataError(f"{path}: not an XYZ_<n> file, a folder or a tar archive of them")
    if not texts:
        raise DataError(f"{path}: no XYZ_<n> files found")
    return [parse_atomdnn_raw(text, name) for _, (name, text) in sorted(texts.items())]


def detect_format(path) -> str:
    """'atomdnn-raw' for a folder, a .tar.gz/.tgz/.tar or a file named XYZ_<n>; else 'ase'."""
    path = Path(path)
    if path.is_dir() or _RAW_NAME.match(path.name) or path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return "atomdnn-raw"
    return "ase"


def read_structures(path, fmt: str = "auto") -> list[Structure]:
    """Structures of one input with format ``fmt`` ('auto', 'ase' or 'atomdnn-raw')."""
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if fmt == "auto":
        fmt = detect_format(path)
    return read_atomdnn_raw(path) if fmt == "atomdnn-raw" else read_ase(path)


def convert(inputs, output, fmt: str = "auto") -> Dataset:
    """Read every input (in order), validate, write ``output`` atomically; returns the Dataset."""
    structures = []
    for path in inputs:
        structures.extend(read_structures(path, fmt))
    if not structures:
        raise DataError("the inputs hold no structures")
    dataset = Dataset.from_structures(structures)
    write_dataset(dataset, output)
    return dataset


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m alw_ref.convert",
        description="Convert labelled structures (energy, forces, optional stress) to an alw_ref "
                    "dataset.h5 (see docs/dataset_format.md). Units written: energy eV (as the source "
                    "gives it, nothing subtracted), "
                    "forces eV/Å, stress eV/Å³ with ASE sign (tension positive), Voigt xx yy zz yz "
                    "xz xy. Every structure is validated; the output is written atomically.",
        epilog="ASE inputs: labels come from the SinglePointCalculator results or atoms.info/arrays "
               "(energy, forces, stress as 3x3 or Voigt 6; a 'virial' W in eV is converted with "
               "sigma = -W/V). A frame without stress gets has_stress = False.")
    parser.add_argument("inputs", nargs="+", metavar="IN",
                        help="input files (or, for atomdnn-raw, a folder or .tar.gz of XYZ_<n> files); "
                             "their structures are concatenated in the order given")
    parser.add_argument("output", metavar="OUT.h5",
                        help="dataset file to write (replaced atomically if it exists)")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="auto",
                        help="input format: 'ase' = anything ase.io.read reads (needs pip install "
                             "alw_ref[ase]); 'atomdnn-raw' = AtomDNN's raw MoTe2 XYZ_<n> files, "
                             "stress = -sigma in kbar, order xx yy zz yz xz xy (no ASE needed); "
                             "'auto' (default) = atomdnn-raw for a folder, a .tar/.tar.gz/.tgz or a "
                             "file named XYZ_<n>, ase otherwise")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        dataset = convert(args.inputs, args.output, args.fmt)
    except ALWError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(dataset)} structures ({len(dataset.numbers)} atoms, "
          f"{int(dataset.has_stress.sum())} with stress) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
