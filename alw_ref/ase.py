"""ASE calculator for alw_ref potentials (needs the ``ase`` extra: ``pip install alw_ref[ase]``).

    from alw_ref.ase import ALWCalculator
    atoms.calc = ALWCalculator("model.h5")        # or a Model / Potential
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    atoms.calc = ALWCalculator(["a.h5", "b.h5", "c.h5"])   # a committee: mean and spread
    atoms.get_forces(); atoms.calc.results["forces_deviation"]

Properties in ASE units and conventions: ``energy`` and ``free_energy`` (the same number: the model
has no electronic entropy) in eV, ``energies`` per atom in eV, ``forces`` in eV/Å, ``stress`` in
eV/Å³ (σ = (1/V) ∂E/∂ε, tension positive, Voigt xx yy zz yz xz xy). A structure without a periodic
direction or without a cell volume has no stress (PropertyNotImplementedError, as in ASE's own
calculators).

A committee (several models, e.g. trained with different seeds) gives the mean over the models of
every property, and their spread (standard deviation over the models, ddof 0) in ``calc.results``:
``energy_std`` (eV), ``forces_std`` ((n, 3) eV/Å, per component), ``forces_deviation`` ((n,) eV/Å,
d_i = √(⟨|F_i − ⟨F_i⟩|²⟩), DeePMD's model deviation; a large max_i d_i flags a structure the models do
not know) and ``stress_std`` ((6,) eV/Å³). A single model has zero spread.
"""

from __future__ import annotations

import numpy as np

from .errors import MissingDependencyError
from .metrics import force_deviation
from .model import Model, predict_structure
from .potential import Potential, load_model

try:
    from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(
        "alw_ref.ase needs ASE: install it with `pip install alw_ref[ase]` (or `pip install ase`)") from err


def _as_model(model) -> Model:
    if isinstance(model, Potential):
        return model.model
    if isinstance(model, Model):
        return model
    return load_model(model)


class ALWCalculator(Calculator):
    """ASE Calculator around an alw_ref model (a ``Model``, a ``Potential`` or a model file path), or
    around a committee of them (a list or tuple): mean properties and their spread (module docstring)."""

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        models = list(model) if isinstance(model, (list, tuple)) else [model]
        if not models:
            raise ValueError("ALWCalculator needs at least one model")
        self.models = [_as_model(m) for m in models]
        self.model = self.models[0]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        need_derivatives = any(p in properties for p in ("forces", "stress"))
        preds = [predict_structure(m, a.numbers, a.positions, np.asarray(a.cell), a.pbc,
                                   forces_and_stress=True if need_derivatives else False) for m in self.models]
        energy_m = np.array([float(p.energy_s[0]) for p in preds])
        energy = float(np.mean(energy_m))
        self.results = {"energy": energy, "free_energy": energy,
                        "energies": np.mean([p.energies_i for p in preds], axis=0),
                        "energy_std": float(np.std(energy_m))}
        if need_derivatives:
            forces_m = np.stack([p.forces_ic for p in preds])
            self.results.update(forces=forces_m.mean(axis=0), forces_std=forces_m.std(axis=0),
                                forces_deviation=force_deviation(forces_m))
            stress_m = np.stack([p.stress_sv[0] for p in preds])
            if np.all(np.isfinite(stress_m)):
                self.results.update(stress=stress_m.mean(axis=0), stress_std=stress_m.std(axis=0))
            elif "stress" in properties:
                raise PropertyNotImplementedError(
                    "stress needs a periodic cell with a volume (pbc and a cell of full rank)")
