"""Regenerate the frozen oracle reference files in tests/data/ — run only on purpose:

    cd /work/main && python tests/data/make_oracle_reference.py

Writes
    oracle_structures.h5  three small Mo/Te structures (dataset.h5 format): a triclinic periodic cell
                          with a stress target, an isolated molecule (no pbc, no stress), a slab
                          (pbc T T F, 12 Å along c) with a stress target; labels are arbitrary fixed numbers
    oracle_spec.json      a small descriptor spec (elements in the order Te, Mo; G1, two G2, three G4, one G5)
    oracle_reference.h5   ``python -m alw_ref.oracle`` with ``REFERENCE_ARGS`` (random 2×5 tanh model)

tests/test_oracle.py recomputes oracle_reference.h5 from the first two files with the same
REFERENCE_ARGS and requires agreement to 1e-12 relative. A change of any number alw_ref computes
therefore fails that test until this script is run again and the new files are committed.
"""

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from alw_ref.acsf import ACSFSpec  # noqa: E402
from alw_ref.data import Dataset, Structure, write_dataset  # noqa: E402

STRUCTURES = HERE / "oracle_structures.h5"
SPEC = HERE / "oracle_spec.json"
REFERENCE = HERE / "oracle_reference.h5"
#: Options (besides the structures, --spec and --output) of the reference run.
REFERENCE_ARGS = ["--random-model", "0", "--hidden", "5,5", "--activation", "tanh",
                  "--weights", "1.0,0.5,0.25", "--loss", "rmse"]

MO, TE = 42, 52


def reference_spec() -> ACSFSpec:
    """R_c = 4 Å (below the cell lengths' sum, so several periodic images enter); D = 2·3 + 3·4 = 18."""
    return ACSFSpec(elements=("Te", "Mo"), rc=4.0,
                    radial=((0.0, 0.0), (0.5, 0.0), (0.8, 2.5)),
                    angular=((0.02, 1.0, 1.0), (0.02, 1.0, -1.0), (0.01, 4.0, 1.0)),
                    angular_g5=((0.03, 2.0, -1.0),))


def reference_structures() -> list:
    """Fixed coordinates (Å), labels (eV, eV/Å, eV/Å³ Voigt xx yy zz yz xz xy, ASE sign)."""
    triclinic = Structure(
        numbers=np.array([MO, TE, TE, MO]),
        positions=np.array([[0.10, 0.20, 0.15], [1.95, 1.05, 1.40], [2.70, 2.45, 2.85], [3.90, 2.10, 0.55]]),
        cell=np.array([[3.50, 0.00, 0.00], [1.10, 3.30, 0.00], [0.60, -0.40, 3.90]]),
        pbc=np.array([True, True, True]), energy=-21.375,
        forces=np.array([[0.25, -0.5, 0.125], [-0.375, 0.25, 0.0], [0.0625, 0.125, -0.25], [0.0625, 0.125, 0.125]]),
        stress=np.array([0.012, -0.008, 0.005, 0.0015, -0.002, 0.003]), name="triclinic", config_type="bulk")
    molecule = Structure(
        numbers=np.array([TE, MO, TE]),
        positions=np.array([[-1.30, 0.90, 0.10], [0.05, -0.10, 0.00], [1.45, 0.75, -0.35]]),
        cell=np.zeros((3, 3)), pbc=np.array([False, False, False]), energy=-9.8125,
        forces=np.array([[0.5, -0.25, 0.0], [0.0, 0.375, 0.125], [-0.5, -0.125, -0.125]]),
        name="molecule", config_type="isolated")
    slab = Structure(
        numbers=np.array([MO, TE, TE]),
        positions=np.array([[0.00, 0.00, 6.00], [1.60, 0.95, 7.70], [1.55, 0.90, 4.35]]),
        cell=np.array([[3.20, 0.00, 0.00], [-1.55, 2.80, 0.00], [0.00, 0.00, 12.0]]),
        pbc=np.array([True, True, False]), energy=-15.25,
        forces=np.array([[0.0, 0.0, 0.25], [0.125, -0.125, -0.375], [-0.125, 0.125, 0.125]]),
        stress=np.array([-0.004, -0.0035, 0.0, 0.0, 0.0, 0.0005]), name="slab", config_type="2D")
    return [triclinic, molecule, slab]


def reference_argv(structures, spec, output) -> list:
    """argv of ``python -m alw_ref.oracle`` for the reference run."""
    return [str(structures), "--spec", str(spec), "-o", str(output), *REFERENCE_ARGS]


def main() -> int:
    from alw_ref import oracle

    write_dataset(Dataset.from_structures(reference_structures()), STRUCTURES)
    reference_spec().to_json(SPEC)
    return oracle.main(reference_argv(STRUCTURES, SPEC, REFERENCE))


if __name__ == "__main__":
    sys.exit(main())
