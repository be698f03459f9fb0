"""Profile: where the time of ``compute_acsf`` goes (the breakdown quoted in benchmarks/README.md).

Same system and spec as ``bench_acsf.py`` (rattled Mo/Te rock salt, R_c = 6 Å, D = 50). For each size
the script times, interleaved round by round on one Numba thread (best of ``--repeat``):
  - the neighbour list alone (``neighbor_list``);
  - ``descriptors_from_pairs`` on that list with parts of the spec: one radial function per element,
    all 16 radial functions, one G4 function, all six G4 functions (ζ = 1, 4, 16, λ = ±1), the full spec,
    and the full spec with dG/dr and dG/dε;
  - ``compute_acsf`` (values; values + derivatives);
and counts the minor page faults of each call (``resource.getrusage``), because first-touch faults of
freshly allocated memory are expensive on this virtual machine. Differences between the spec subsets
give the cost of each kind of term. Prints a table, writes JSON (default
``benchmarks/results/profile_acsf.json``).

    python benchmarks/profile_acsf.py [--sizes 100,1000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
from pathlib import Path

import numba

from bench_acsf import ANGULAR, RADIAL, RC, bench_spec, interleaved_best_times, rocksalt

from alw_ref.acsf import compute_acsf, descriptors_from_pairs
from alw_ref.atomic import write_text
from alw_ref.neighbors import neighbor_list

#: Spec subsets (name, radial rows, angular rows); the last is bench_acsf's full spec.
SUBSETS = (("1 radial", RADIAL[:1], ()), ("16 radial", RADIAL, ()), ("1 radial + 1 G4", RADIAL[:1], ANGULAR[:1]),
           ("1 radial + 6 G4", RADIAL[:1], ANGULAR), ("full (16 radial + 6 G4)", RADIAL, ANGULAR))


def profile(n_target: int, repeat: int) -> dict:
    """Best µs/atom and page faults per call of every piece for a structure of about n_target atoms."""
    numbers, positions, cell, pbc = rocksalt(n_target)
    n = len(numbers)
    full = bench_spec()
    nl = neighbor_list(positions, cell, pbc, RC)
    species = full.species_index(numbers)
    cases = {"neighbour list": lambda: neighbor_list(positions, cell, pbc, RC)}
    for name, radial, angular in SUBSETS:
        spec = dataclasses.replace(full, radial=radial, angular=angular)
        cases[f"kernel: {name}"] = (lambda s=spec: descriptors_from_pairs(s, species, nl.first_i, nl.j_n,
                                                                          nl.r_nc, derivatives=False))
    cases["kernel: full + dG/dr, dG/dε"] = lambda: descriptors_from_pairs(full, species, nl.first_i, nl.j_n,
                                                                           nl.r_nc, derivatives=True)
    cases["compute_acsf values"] = lambda: compute_acsf(full, numbers, positions, cell, pbc, derivatives=False)
    cases["compute_acsf + derivatives"] = lambda: compute_acsf(full, numbers, positions, cell, pbc)
    faults = {}
    best = interleaved_best_times(cases, repeat, faults)
    return {"n_atoms": n, "neighbours_per_atom": len(nl.j_n) / n,
            "us_per_atom": {k: 1e6 * v / n for k, v in best.items()},
            "page_faults_per_call": faults}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100,1000", help="target atoms per structure (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=7, help="timed rounds (default: %(default)s)")
    p.add_argument("--json", default=str(Path(__file__).parent / "results" / "profile_acsf.json"),
                   help="where to write the JSON results (default: %(default)s)")
    args = p.parse_args(argv)
    numba.set_num_threads(1)
    rows = [profile(int(s), args.repeat) for s in args.sizes.split(",")]
    names = list(rows[0]["us_per_atom"])
    print(f"\nACSF profile: R_c = {RC} Å, 1 Numba thread, best of {args.repeat}; µs/atom (page faults per call)")
    print(f"{'piece':<34}" + "".join(f"{str(r['n_atoms']) + ' atoms':>22}" for r in rows))
    for name in names:
        print(f"{name:<34}" + "".join(f"{r['us_per_atom'][name]:>12.2f} ({r['page_faults_per_call'][name]:>6.0f})"
                                      for r in rows))
    for r in rows:
        print(f"{r['n_atoms']} atoms: {r['neighbours_per_atom']:.1f} neighbours per atom")
    out = Path(args.json)
    write_text(out, json.dumps({"benchmark": "profile_acsf", "machine": platform.platform(),
                                "numba": numba.__version__, "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
