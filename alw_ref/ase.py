"""ASE calculator for alw_ref potentials (needs the ``ase`` extra: ``pip install alw_ref[ase]``).

    from alw_ref.ase import ALWCalculator
    atoms.calc = ALWCalculator("model.h5")        # or a Model / Potential
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()

Properties in ASE units and conventions: ``energy`` and ``free_energy`` (the same number: the model
has no electronic entropy) in eV, ``energies`` per atom in eV, ``forces`` in eV/Å, ``stress`` in
eV/Å³ (σ = (1/V) ∂E/∂ε, tension positive, Voigt xx yy zz yz xz xy). A structure without a periodic
direction or without a cell volume has no stress (PropertyNotImplementedError, as in ASE's own
calculators).
"""

from __future__ import annotations

import numpy as np

from .errors import MissingDependencyError
from .model import Model, predict_structure
from .potential import Potential, load_model

try:
    from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(
        "alw_ref.ase needs ASE: install it with `pip install alw_ref[ase]` (or `pip install ase`)") from err


class ALWCalculator(Calculator):
    """ASE Calculator around an alw_ref model (a ``Model``, a ``Potential`` or a model file path)."""

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        if isinstance(model, Potential):
            model = model.model
        elif not isinstance(model, Model):
            model = load_model(model)
        self.model = model

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        need_derivatives = any(p in properties for p in ("forces", "stress"))
        pred = predict_structure(self.model, a.numbers, a.positions, np.asarray(a.cell), a.pbc,
                                 forces_and_stress=True if need_derivatives else False)
        energy = float(pred.energy_s[0])
        self.results = {"energy": energy, "free_energy": energy, "energies": pred.energies_i.copy()}
        if need_derivatives:
            self.results["forces"] = pred.forces_ic.copy()
            if np.all(np.isfinite(pred.stress_sv[0])):
                self.results["stress"] = pred.stress_sv[0].copy()
            elif "stress" in properties:
                raise PropertyNotImplementedError(
                    "stress needs a periodic cell with a volume (pbc and a cell of full rank)")
