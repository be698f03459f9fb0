"""A trained potential: the model file (save/load) and ``Potential.predict(structure)``.

Model file (HDF5, one file, written atomically: temporary file in the same folder, then rename):

    root attrs  format = "alw_ref.model", format_version = 1, alw_ref_version,
                spec (ACSFSpec JSON: element order, descriptor functions, R_c in Å),
                hidden (int array of hidden widths), activation (name), meta (JSON, free-form)
    g_mean      (n_el, D) float64   descriptor mean per element (units of G)
    g_scale     (n_el, D) float64   descriptor scale per element (units of G; 1 for zero variance)
    e_ref       (n_el,)   float64   reference energy per element, eV/atom
    theta       (n_params,) float64 all network parameters (layout: ``model`` docstring)
    g_min, g_max (n_el, D) float64  optional: per-element min and max of the training descriptors (units
                                    of G; ``model.fit_descriptor_range``); absent in files written before
                                    they were recorded (an exporter that needs them says so)

Loading checks the format name and version, that every array has the shape the spec and
architecture imply, and that every number is finite (and g_min ≤ g_max); anything else is a
``ModelError`` naming the file and what is wrong. Loading and predicting gives the same numbers bit for bit.

``Potential.predict`` applies the dataset's rule (``data.MIN_DISTANCE``): positions must be finite and no
two atoms (periodic images included) closer than 0.1 Å, else a ``DataError`` naming the atoms.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from . import __version__
from .acsf_spec import ACSFSpec
from .atomic import atomic_write
from .data import check_min_distance
from .errors import DataError, ModelError
from .model import Model, n_params_per_element, predict_structure

MODEL_FORMAT = "alw_ref.model"
MODEL_FORMAT_VERSION = 1


def write_model(model: Model, group) -> None:
    """Write ``model`` into an open h5py File or Group (layout in the module docstring)."""
    group.attrs["format"] = MODEL_FORMAT
    group.attrs["format_version"] = MODEL_FORMAT_VERSION
    group.attrs["alw_ref_version"] = __version__
    group.attrs["spec"] = model.spec.to_json()
    group.attrs["hidden"] = np.asarray(model.hidden, np.int64)
    group.attrs["activation"] = model.activation
    group.attrs["meta"] = json.dumps(model.meta)
    group.create_dataset("g_mean", data=model.g_mean_eg)
    group.create_dataset("g_scale", data=model.g_scale_eg)
    group.create_dataset("e_ref", data=model.e_ref_e)
    group.create_dataset("theta", data=model.theta)
    for name, value in (("g_min", model.g_min_eg), ("g_max", model.g_max_eg)):
        if value is not None:
            group.create_dataset(name, data=np.asarray(value, np.float64))


def save_model(model: Model, path) -> None:
    """Write ``model`` to ``path`` (HDF5, layout in the module docstring), atomically."""
    with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
        write_model(model, f)


def load_model(path) -> Model:
    """Read a model file; ModelError naming the file and the problem if it is not a valid one."""
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ModelError(f"{path}: cannot read the model file ({err})") from None
    with f:
        return read_model(f, where=str(path))


def read_model(group, where: str) -> Model:
    """Read a model from an open h5py File or Group; ModelError prefixed with ``where`` if invalid."""
    fmt, version = group.attrs.get("format"), group.attrs.get("format_version")
    version = version.item() if isinstance(version, np.generic) else version
    if fmt != MODEL_FORMAT:
        raise ModelError(f"{where}: not an alw_ref model file (format attribute {fmt!r})")
    if version != MODEL_FORMAT_VERSION:
        raise ModelError(f"{where}: model format version {version!r}; this alw_ref "
                         f"({__version__}) reads version {MODEL_FORMAT_VERSION}")
    try:
        spec = ACSFSpec.from_json(group.attrs["spec"])
        hidden = tuple(int(h) for h in group.attrs["hidden"])
        activation = str(group.attrs["activation"])
        meta = json.loads(group.attrs["meta"])
        arrays = {name: np.asarray(group[name][()], np.float64) for name in ("g_mean", "g_scale", "e_ref", "theta")}
        arrays.update({name: np.asarray(group[name][()], np.float64) for name in ("g_min", "g_max") if name in group})
    except (KeyError, ValueError, TypeError, OSError) as err:
        raise ModelError(f"{where}: damaged model file ({type(err).__name__}: {err})") from None
    n_el, D = len(spec.elements), spec.n_features
    expected = {"g_mean": (n_el, D), "g_scale": (n_el, D), "e_ref": (n_el,),
                "theta": (n_el * n_params_per_element(D, hidden),), "g_min": (n_el, D), "g_max": (n_el, D)}
    if ("g_min" in arrays) != ("g_max" in arrays):
        raise ModelError(f"{where}: field 'g_min' without 'g_max' or the reverse (both or neither)")
    for name, shape in expected.items():
        if name not in arrays:
            continue
        if arrays[name].shape != shape:
            raise ModelError(f"{where}: field {name!r} has shape {arrays[name].shape}, expected {shape} "
                             f"for {n_el} elements, {D} features and hidden layers {hidden}")
        if not np.all(np.isfinite(arrays[name])):
            raise ModelError(f"{where}: field {name!r} holds non-finite values")
    if np.any(arrays["g_scale"] <= 0):
        raise ModelError(f"{where}: field 'g_scale' must be > 0")
    if "g_min" in arrays and np.any(arrays["g_min"] > arrays["g_max"]):
        raise ModelError(f"{where}: field 'g_min' exceeds 'g_max' for some feature")
    try:
        model = Model.create(spec, hidden, activation)
    except ValueError as err:
        raise ModelError(f"{where}: {err}") from None
    model.g_mean_eg[:] = arrays["g_mean"]
    model.g_scale_eg[:] = arrays["g_scale"]
    model.e_ref_e[:] = arrays["e_ref"]
    model.theta[:] = arrays["theta"]
    model.meta.update(meta)
    if "g_min" in arrays:
        model.g_min_eg, model.g_max_eg = arrays["g_min"], arrays["g_max"]
    return model


def check_positions(positions, cell, pbc) -> None:
    """DataError if a position is not finite or two atoms (periodic images included) are closer than
    ``data.MIN_DISTANCE`` (0.1 Å), the rule every dataset structure obeys; the message names the atoms."""
    positions = np.asarray(positions, np.float64)
    bad = np.argwhere(~np.isfinite(positions))
    if bad.size:
        raise DataError(f"structure: field 'positions': non-finite value at atom {bad[0][0]}")
    check_min_distance("structure", positions, np.asarray(cell, np.float64), np.asarray(pbc, bool))


class Potential:
    """A model ready to predict: ``Potential.load(path).predict(structure)``.

    ``structure`` is an ``alw_ref.data.Structure`` (or anything with numbers, positions, cell, pbc).
    """

    def __init__(self, model: Model):
        self.model = model

    @classmethod
    def load(cls, path) -> "Potential":
        return cls(load_model(path))

    def save(self, path) -> None:
        save_model(self.model, path)

    def predict(self, structure, forces_and_stress: bool = True) -> dict:
        """{"energy": eV, "energies": (n,) eV, "forces": (n, 3) eV/Å, "stress": (6,) eV/Å³}.

        Stress: ASE sign (tension positive), Voigt xx yy zz yz xz xy; present only when some
        direction is periodic and the cell has a volume (a cell without full rank has no stress).
        DataError (``check_positions``) for non-finite positions or atoms closer than 0.1 Å.
        """
        check_positions(structure.positions, structure.cell, structure.pbc)
        pred = predict_structure(self.model, structure.numbers, structure.positions, structure.cell,
                                 structure.pbc, forces_and_stress)
        out = {"energy": float(pred.energy_s[0]), "energies": pred.energies_i}
        if forces_and_stress:
            out["forces"] = pred.forces_ic
            if np.all(np.isfinite(pred.stress_sv[0])):
                out["stress"] = pred.stress_sv[0]
        return out
