"""Convert labelled structures to dataset.h5: ``python -m alw_ref.convert IN [IN ...] OUT.h5``.

Two readers, both returning ``alw_ref.data.Structure`` objects in alw_ref units (energy eV,
forces eV/Å, stress eV/Å³ with ASE sign, Voigt xx yy zz yz xz xy):

``read_ase(path, keys)`` — anything ``ase.io.read(path, index=":")`` reads (extended XYZ, VASP
OUTCAR, ...); needs the ``ase`` extra. Per frame, each label is taken from the frame's
SinglePointCalculator results if there, else from ``atoms.info`` / ``atoms.arrays``, under the key
named by ``keys`` (``--energy-key`` etc.: MACE writes ``REF_energy``, GAP ``dft_energy``,
``dft_force``, ``dft_virial``), else under the plain name, else under ``REF_<name>``
(``DEFAULT_KEYS``); ``used_keys`` reports which:
  - energy (eV, total) and forces (eV/Å): required; a frame without them, or with a value that is
    not a number, is a DataError naming the file, the frame and the keys the frame has;
  - stress (eV/Å³, ASE sign) as Voigt 6 (xx yy zz yz xz xy) or 3×3 (must be symmetric). ASE's
    extxyz reader turns a 9-number ``stress`` into Voigt 6 by dropping the lower triangle, so for
    extended XYZ files the 9 numbers are read from the frame's comment line
    (``ase.io.extxyz.key_val_str_to_dict``) and an asymmetric tensor is refused;
  - else virial W (eV, 3×3 or 9 numbers), converted with σ = −W / V (V = det(cell), Å³);
  - else no stress: the structure gets has_stress False (a key named explicitly must be found in
    at least one frame of the file).
  ``config_type`` = info["config_type"], else info["phase"], else ""; ``name`` = "<file name>:<frame>".

``read_atomdnn_raw(path)`` — the raw MoTe2 files of AtomDNN (``XYZ_<n>``; a ``.tar.gz`` of them,
a folder of them, or one file), no ASE needed. Header line:
``Lattice="9 numbers" Properties=species:S:1:pos:R:3:tags:I:1:forces:R:3 energy=<eV> stress= <6
numbers> pbc="T T T"`` (the six numbers may be quoted). Its stress is −σ in kbar (VASP sign,
compression positive) in the order xx yy zz yz xz xy, so σ = −raw · KBAR_TO_EV_PER_A3. Atom lines
are ``El x y z tag fx fy fz``; the element comes from the species column (tag 1 = Mo, 2 = Te is
not used). Every ``XYZ_<n>`` file found is kept (a folder and a tar archive are searched
recursively); frames are ordered by the number n, then by path; ``name`` = "XYZ_<n>" as written in
the file name, or its path inside the folder/archive (``set2/XYZ_1``) when two files share a
name; ``config_type`` = "".

``convert(inputs, output, fmt, keys)`` checks that ``output`` can be written (``check_output``),
concatenates the structures of all inputs in the given order, validates them and writes
``output`` atomically with ``data.write_dataset``.
"""

from __future__ import annotations

if __name__ == "__main__":   # before the imports below (alw_ref/cli.py)
    from alw_ref.cli import prepare_command

    prepare_command("convert")

import argparse
import os
import re
import sys
import tarfile
from pathlib import Path

import numpy as np

from .data import Dataset, Structure, write_dataset
from .elements import atomic_number
from .cli import interrupts_raise
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


#: Labels read from ASE frames and the keys tried for each when none is named (plain name first).
DEFAULT_KEYS = {"energy": ("energy", "REF_energy"), "forces": ("forces", "REF_forces"),
                "stress": ("stress", "REF_stress"), "virial": ("virial", "REF_virial")}
#: Characters ``atomic.atomic_write`` adds to the output's file name for its temporary file
#: (".<name>." + 8 random characters + ".tmp").
TEMP_NAME_EXTRA = 14


def _sources(atoms):
    """(where, mapping) of the places a label can be: calculator results, atoms.info, atoms.arrays."""
    calc = getattr(atoms, "calc", None)
    results = getattr(calc, "results", {}) if calc is not None else {}
    return (("calculator results", results), ("atoms.info", atoms.info), ("atoms.arrays", atoms.arrays))


def _label(atoms, keys):
    """(key, value) of the first of ``keys`` a frame has (results, then info, then arrays), or (None, None)."""
    for key in keys:
        for _, source in _sources(atoms):
            if key in source and source[key] is not None:
                return key, source[key]
    return None, None


def _keys_found(atoms) -> str:
    """The keys a frame has, per place, for error messages."""
    return "; ".join(f"{where}: {', '.join(sorted(map(str, src))) or '(none)'}" for where, src in _sources(atoms))


def _numbers(value, shape, where: str, key: str) -> np.ndarray:
    """``value`` as float64 of ``shape`` (None: flat, any length); DataError naming the key if it is
    not numbers (of that shape)."""
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {key}={value!r} is not a number") from None
    if shape is None:
        return array.reshape(-1)
    if array.size != int(np.prod(shape)):
        raise DataError(f"{where}: {key} has {array.size} numbers, expected {int(np.prod(shape))}")
    return array.reshape(shape)


def _stress_of_frame(atoms, where, stress_keys, virial_keys, comment):
    """((6,) eV/Å³ Voigt stress or None, key used) of an ASE frame from a stress or a virial key.

    comment : the frame's extxyz comment line parsed by ``key_val_str_to_dict`` (or {}); a 9-number
    stress found there is used instead of ASE's Voigt 6 (which dropped the lower triangle)."""
    key, stress = _label(atoms, stress_keys)
    if key is not None:
        if np.size(comment.get(key, ())) == 9:
            stress = comment[key]  # the raw 9 numbers, as written in the file
        stress = _numbers(stress, None, where, key)
        if stress.size == 6:
            return stress, key
        if stress.size == 9:
            return voigt_from_3x3(stress, f"{where}: {key}"), key
        raise DataError(f"{where}: {key} has {stress.size} numbers (expected 6 Voigt or 9)")
    key, virial = _label(atoms, virial_keys)
    if key is not None:
        virial = _numbers(virial, None, where, key)
        if virial.size != 9:
            raise DataError(f"{where}: {key} has {virial.size} numbers (expected 9)")
        return stress_from_virial(virial, float(np.linalg.det(atoms.cell.array)), f"{where}: {key}"), key
    return None, None


def _extxyz_comments(path, n_frames: int) -> list:
    """Parsed comment line of each frame of an extended XYZ file, or [{}]*n_frames for other formats."""
    from ase.io.extxyz import key_val_str_to_dict
    from ase.io.formats import filetype, open_with_compression

    if filetype(str(path), read=True) != "extxyz":
        return [{}] * n_frames
    try:
        with open_with_compression(str(path), "r") as handle:  # .gz, .bz2, .xz as ASE reads them
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the frame headers ({err})") from None
    comments, i = [], 0
    try:
        while i + 1 < len(lines) and lines[i].strip():
            comments.append(key_val_str_to_dict(lines[i + 1]))
            i += int(lines[i].split()[0]) + 2
    except ValueError as err:
        raise DataError(f"{path}: line {i + 1}: cannot read the frame header ({err})") from None
    if len(comments) != n_frames:  # ASE read the file differently: refuse rather than guess
        raise DataError(f"{path}: found {len(comments)} frame headers but ASE read {n_frames} frames")
    return comments


def _keys_to_try(keys, label):
    """The keys tried for ``label``: the one named in ``keys`` alone, else ``DEFAULT_KEYS[label]``."""
    named = (keys or {}).get(label)
    return (named,) if named else DEFAULT_KEYS[label]


def read_ase(path, keys=None, used_keys=None) -> list[Structure]:
    """Structures of every frame of an ASE-readable file (labels as in the module docstring).

    keys : {"energy"|"forces"|"stress"|"virial": key in the file} for labels not under their plain
    or REF_ name. used_keys : a dict to which {label: set of keys used} is added, or None.
    """
    ase_io = _import_ase_io()
    path = Path(path)
    try:
        frames = ase_io.read(path, index=":")
    except Exception as err:  # ASE raises many types for unreadable input
        raise DataError(f"{path}: ASE cannot read it ({type(err).__name__}: {err})") from None
    comments = _extxyz_comments(path, len(frames))
    tried = {label: _keys_to_try(keys, label) for label in DEFAULT_KEYS}
    used = {label: set() for label in DEFAULT_KEYS}
    structures = []
    for k, atoms in enumerate(frames):
        where = f"{path}: frame {k}"
        labels = {}
        for label, shape in (("energy", ()), ("forces", (len(atoms), 3))):
            key, value = _label(atoms, tried[label])
            if key is None:
                raise DataError(f"{where}: no {label} (looked for {' and '.join(map(repr, tried[label]))}; "
                                f"the frame has {_keys_found(atoms)}); name the key with --{label}-key")
            labels[label] = _numbers(value, shape, where, key)
            used[label].add(key)
        stress, key = _stress_of_frame(atoms, where, tried["stress"], tried["virial"], comments[k])
        if key is not None:
            used["stress" if key in tried["stress"] else "virial"].add(key)
        config_type = atoms.info.get("config_type", atoms.info.get("phase", ""))
        structures.append(Structure(
            numbers=np.asarray(atoms.numbers, dtype=np.int64),
            positions=np.array(atoms.positions, dtype=np.float64),
            cell=np.array(atoms.cell.array, dtype=np.float64),
            pbc=np.array(atoms.pbc, dtype=bool),
            energy=float(labels["energy"]),
            forces=labels["forces"],
            stress=stress,
            name=f"{path.name}:{k}",
            config_type=str(config_type),
        ))
    for label in ("stress", "virial"):
        named = (keys or {}).get(label)
        if named and frames and not used[label]:
            raise DataError(f"{path}: no frame has the {label} key {named!r} given with --{label}-key "
                            f"(frame 0 has {_keys_found(frames[0])})")
    if used_keys is not None:
        for label, found in used.items():
            used_keys.setdefault(label, set()).update(found)
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


def _raw_files(path: Path) -> list:
    """(n, relative path, text) of every ``XYZ_<n>`` file in a folder, a tar archive or one file."""
    found = []
    if path.is_dir():
        for p in path.rglob("*"):
            m = _RAW_NAME.match(p.name)
            if m and p.is_file():
                found.append((int(m.group(1)), p.relative_to(path).as_posix(), p.read_text()))
    elif tarfile.is_tarfile(path):
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                m = _RAW_NAME.match(Path(member.name).name)
                if m and member.isfile():
                    found.append((int(m.group(1)), member.name, tar.extractfile(member).read().decode("utf-8")))
    elif _RAW_NAME.match(path.name):
        found.append((int(_RAW_NAME.match(path.name).group(1)), path.name, path.read_text()))
    else:
        raise DataError(f"{path}: not an XYZ_<n> file, a folder or a tar archive of them")
    return found


def read_atomdnn_raw(path) -> list[Structure]:
    """Structures of AtomDNN raw ``XYZ_<n>`` files: a .tar.gz of them, a folder, or one file.

    Every file is kept, ordered by n then by path; a file's name is ``XYZ_<n>`` as written, or its
    path inside the folder/archive when another file has the same name (module docstring)."""
    path = Path(path)
    found = sorted(_raw_files(path))
    if not found:
        raise DataError(f"{path}: no XYZ_<n> files found")
    base = [Path(rel).name for _, rel, _ in found]
    shared = {b for b in base if base.count(b) > 1}
    return [parse_atomdnn_raw(text, rel if name in shared else name)
            for (_, rel, text), name in zip(found, base)]


def detect_format(path) -> str:
    """'atomdnn-raw' for a folder, a .tar.gz/.tgz/.tar or a file named XYZ_<n>; else 'ase'."""
    path = Path(path)
    if path.is_dir() or _RAW_NAME.match(path.name) or path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return "atomdnn-raw"
    return "ase"


def read_structures(path, fmt: str = "auto", keys=None, used_keys=None) -> list[Structure]:
    """Structures of one input with format ``fmt`` ('auto', 'ase' or 'atomdnn-raw'); keys and
    used_keys go to ``read_ase`` (the raw AtomDNN format has fixed keys)."""
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if fmt == "auto":
        fmt = detect_format(path)
    return read_atomdnn_raw(path) if fmt == "atomdnn-raw" else read_ase(path, keys, used_keys)


def _existing_ancestor(path: Path) -> Path:
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def check_output(output) -> Path:
    """Fail before any work if ``output`` cannot be written as a file: it is a folder, a folder on its
    path is a file or not writable, or its name leaves no room for the temporary file's 14 extra
    characters (``TEMP_NAME_EXTRA``) within the file system's limit. Returns the Path."""
    out = Path(output)
    if out.is_dir():
        raise DataError(f"output {out}: is a folder; give a file name, e.g. {out / 'dataset.h5'}")
    folder = _existing_ancestor(out)
    if not folder.is_dir():
        raise DataError(f"output {out}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"output {out}: no permission to write in the folder {folder}")
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    for part in out.parent.parts[len(folder.parts):] + (out.name,):
        extra = TEMP_NAME_EXTRA if part == out.name else 0
        if len(os.fsencode(part)) + extra > name_max:
            raise DataError(f"output {out}: the name {part[:20]}... is {len(os.fsencode(part))} bytes long; "
                            f"at most {name_max - extra} are possible here (the file system allows {name_max}"
                            + (f" and the atomic write adds {extra} for its temporary file)" if extra else ")"))
    return out


def convert(inputs, output, fmt: str = "auto", keys=None, used_keys=None) -> Dataset:
    """Check ``output``, read every input (in order), validate, write ``output`` atomically; returns the Dataset.

    keys, used_keys : as in ``read_ase`` (label keys for ASE inputs, and the keys used)."""
    output = check_output(output)
    structures = []
    for path in inputs:
        structures.extend(read_structures(path, fmt, keys, used_keys))
    if not structures:
        raise DataError("the inputs hold no structures")
    dataset = Dataset.from_structures(structures)
    try:
        write_dataset(dataset, output)
    except OSError as err:
        raise DataError(f"output {output}: cannot write it ({err.strerror or err})") from None
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
               "(energy, forces, stress as 3x3 or Voigt 6; a virial W in eV is converted with "
               "sigma = -W/V). Unless a key is named, each label is looked for under its plain name, then "
               "under REF_<name> (MACE), and the keys used are printed. GAP files: --energy-key dft_energy "
               "--forces-key dft_force --virial-key dft_virial. A frame without stress gets has_stress = False.")
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
    for label, unit, example in (("energy", "total energy, eV", "REF_energy, dft_energy"),
                                 ("forces", "eV/Å", "REF_forces, dft_force"),
                                 ("stress", "eV/Å³, ASE sign", "REF_stress"),
                                 ("virial", "eV, used when there is no stress", "REF_virial, dft_virial")):
        parser.add_argument(f"--{label}-key", metavar="KEY", default=None,
                            help=f"ASE inputs: key of the {label} label ({unit}), e.g. {example}; "
                                 f"if not given: '{label}', then 'REF_{label}'")
    return parser


def main(argv=None) -> int:
    interrupts_raise()
    args = build_parser().parse_args(argv)
    keys = {label: getattr(args, f"{label}_key") for label in DEFAULT_KEYS}
    used = {}
    try:
        dataset = convert(args.inputs, args.output, args.fmt, keys, used)
    except ALWError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if any(used.values()):
        print("labels read from: " + ", ".join(f"{label} <- {', '.join(sorted(found))}"
                                               for label, found in used.items() if found))
    print(f"wrote {len(dataset)} structures ({len(dataset.numbers)} atoms, "
          f"{int(dataset.has_stress.sum())} with stress) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
