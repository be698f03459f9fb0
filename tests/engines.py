"""Run exported potentials in the reference engines (n2p2's nnp-predict, LAMMPS + pair_style hdnnp).

The engines are built by ``bash ../shared/engines/build.sh`` (``.ci/run`` does it) into a prefix whose
``env.sh`` names them; ``find_engines`` reads the environment first (N2P2_PREDICT, LAMMPS_LMP,
HDNNP_PLUGIN), then ``$ALW_ENGINES_PREFIX/env.sh`` or ``~/.cache/alw_ref-engines/env.sh``.
Used by tests/test_export.py and benchmarks/bench_md.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from alw_ref.elements import chemical_symbol

#: LAMMPS metal units: bar per eV/Å³ (``force->nktv2p`` in LAMMPS's update.cpp; read from the engine with
#: ``lammps().extract_global("nktv2p")``). Our σ is converted with LAMMPS's own constant, so that the
#: comparison is of the virial itself and not of two roundings of the eV/Å³ → bar factor.
LAMMPS_NKTV2P = 1.6021765e6
#: Atomic masses (u) of the elements the tests use; any value works for run 0, MD needs real ones.
MASS = {42: 95.95, 52: 127.6}


def _env_file_values(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"export (\w+)=(.*)", line)
        if m:
            out[m.group(1)] = m.group(2).split("${")[0].rstrip(":")
    return out


def find_engines():
    """dict(predict, lmp, plugin, env, mpirun) or (None, reason) when they are not built."""
    keys = ("N2P2_PREDICT", "LAMMPS_LMP", "HDNNP_PLUGIN")
    values = {k: os.environ.get(k) for k in keys}
    if not all(values.values()):
        prefix = Path(os.environ.get("ALW_ENGINES_PREFIX", Path.home() / ".cache" / "alw_ref-engines"))
        if not (prefix / "env.sh").is_file():
            return None, (f"reference engines not built (no {prefix}/env.sh): run "
                          f"`bash ../shared/engines/build.sh` (needs g++ and Eigen 3; .ci/run does it)")
        values = _env_file_values(prefix / "env.sh")
    missing = [f"{k}={values.get(k)}" for k in keys if not values.get(k) or not Path(values[k]).exists()]
    if missing:
        return None, f"reference engines incomplete: {', '.join(missing)} missing (rerun build.sh)"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    libdir = str(Path(values["LAMMPS_LMP"]).parent.parent / "lib")
    env["LD_LIBRARY_PATH"] = libdir + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    mpirun = Path(values["LAMMPS_LMP"]).parent / "mpirun"
    return {"predict": values["N2P2_PREDICT"], "lmp": values["LAMMPS_LMP"], "plugin": values["HDNNP_PLUGIN"],
            "env": env, "mpirun": str(mpirun) if mpirun.exists() else shutil.which("mpirun")}, ""


def _run(cmd, cwd, env, timeout=600):
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({res.returncode}) in {cwd}:\n"
                           f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def nnp_predict(engines, potential_dir, numbers, positions, cell, workdir):
    """(energy eV, forces (n, 3) eV/Å) of one periodic structure from n2p2's nnp-predict."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for f in Path(potential_dir).iterdir():
        shutil.copy(f, workdir / f.name)
    lines = ["begin", "comment alw_ref test"]
    lines += ["lattice " + " ".join(repr(float(x)) for x in row) for row in cell]
    lines += [f"atom {' '.join(repr(float(x)) for x in p)} {chemical_symbol(z)} 0.0 0.0 0.0 0.0 0.0"
              for z, p in zip(numbers, positions)]
    lines += ["energy 0.0", "charge 0.0", "end"]
    (workdir / "input.data").write_text("\n".join(lines) + "\n")
    _run([engines["predict"], "0"], workdir, engines["env"])
    energy = float(_data_rows(workdir / "energy.out")[0][3])
    forces = np.array([[float(x) for x in r[5:8]] for r in _data_rows(workdir / "nnforces.out")])
    return energy, forces


def _data_rows(path):
    return [line.split() for line in Path(path).read_text().splitlines() if line.strip() and line[0] != "#"]


def lammps_data(numbers, positions, cell, elements) -> str:
    """A LAMMPS data file (atom_style atomic) of a structure whose cell is lower triangular (LAMMPS's
    restricted triclinic form: a along x, b in the xy plane); atom types = position in ``elements``."""
    cell = np.asarray(cell, float)
    if np.any(cell[np.triu_indices(3, 1)] != 0):
        raise ValueError("LAMMPS needs a lower-triangular cell (a along x, b in the xy plane)")
    types = [list(elements).index(z) + 1 for z in numbers]
    c = cell.tolist()
    lines = ["alw_ref structure", "", f"{len(numbers)} atoms", f"{len(elements)} atom types",
             f"0.0 {c[0][0]!r} xlo xhi", f"0.0 {c[1][1]!r} ylo yhi", f"0.0 {c[2][2]!r} zlo zhi",
             f"{c[1][0]!r} {c[2][0]!r} {c[2][1]!r} xy xz yz", "", "Masses", ""]
    lines += [f"{k + 1} {MASS.get(z, 1.0)}" for k, z in enumerate(elements)]
    lines += ["", "Atoms # atomic", ""]
    lines += [f"{i + 1} {t} " + " ".join(repr(float(x)) for x in p) for i, (t, p) in enumerate(zip(types, positions))]
    return "\n".join(lines) + "\n"


def lammps_input(potential_dir, rc, elements, plugin, body: str) -> str:
    """The common head of a LAMMPS input for an exported potential, then ``body``."""
    return "\n".join([
        f"plugin load {plugin}", "units metal", "atom_style atomic", "boundary p p p",
        "read_data data.lmp", f"pair_style hdnnp {rc!r} dir {Path(potential_dir).resolve()}",
        "pair_coeff * * " + " ".join(chemical_symbol(z) for z in elements), body]) + "\n"


def lammps_run(engines, workdir, data: str, script: str, ranks: int = 1, timeout=1200):
    """Run LAMMPS on ``data`` (data.lmp) and ``script`` (in.lmp) in ``workdir``; returns log.lammps text."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data.lmp").write_text(data)
    (workdir / "in.lmp").write_text(script)
    cmd = [engines["lmp"], "-in", "in.lmp", "-log", "log.lammps", "-screen", "none", "-nocite"]
    if ranks > 1:
        cmd = [engines["mpirun"], "-np", str(ranks)] + cmd
    _run(cmd, workdir, engines["env"], timeout)
    return (workdir / "log.lammps").read_text()


def thermo_rows(log: str, first: str = "Step"):
    """Numeric thermo rows (lists of floats) of every thermo block of a LAMMPS log."""
    rows, inside = [], False
    for line in log.splitlines():
        words = line.split()
        if words and words[0] == first:
            inside = True
            continue
        if inside:
            try:
                rows.append([float(w) for w in words])
            except ValueError:
                inside = False
    return rows


def lammps_single_point(engines, potential_dir, rc, numbers, positions, cell, elements, workdir, ranks=1):
    """(energy eV, forces (n, 3) eV/Å, pressure tensor (6,) bar: xx yy zz xy xz yz, virial part only)."""
    body = "\n".join([
        "compute pv all pressure NULL virial",
        "thermo_style custom step pe c_pv[1] c_pv[2] c_pv[3] c_pv[4] c_pv[5] c_pv[6]",
        "thermo_modify format float %.17g",
        "dump d all custom 1 forces.dump id fx fy fz", "dump_modify d sort id format float %.17g",
        "run 0"])
    log = lammps_run(engines, workdir, lammps_data(numbers, positions, cell, elements),
                     lammps_input(potential_dir, rc, elements, engines["plugin"], body), ranks)
    row = thermo_rows(log)[0]
    dump = (Path(workdir) / "forces.dump").read_text().splitlines()
    start = dump.index(next(line for line in dump if line.startswith("ITEM: ATOMS"))) + 1
    forces = np.array([[float(x) for x in line.split()[1:4]] for line in dump[start:]])
    return row[1], forces, np.array(row[2:8])


def loop_time(log: str):
    """(seconds, ranks, steps, atoms) from LAMMPS's 'Loop time of …' line (the last one)."""
    m = re.findall(r"Loop time of ([\d.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms", log)
    t, p, s, n = m[-1]
    return float(t), int(p), int(s), int(n)
