"""The oracle file format: its layout (``LAYOUT``, one table of path, axes, dtype, unit, meaning; reproduced
in docs/oracle_format.md) and the comparison of two oracle files (``compare_files``, ``format_report``).

``alw_ref.oracle`` computes and writes the files (and re-exports every public name of this module); this
module only reads them. Units: energy eV, length Å, forces eV/Å, stress eV/Å³ (ASE sign, Voigt xx yy zz yz
xz xy); loss parts in eV/atom, eV/Å, GPa (rmse) or their squares (mse), written per dataset as ``unit``.

Comparison (``compare_files``): both files must say they are oracle files of this format version,
and the reference must hold structures and at least the quantities asked for (default: the
descriptor part every file has), so an empty or foreign reference cannot pass. Every dataset of the
reference file (or each quantity asked for) is a quantity; the per-structure ones are pooled over
structures (``structures/*/G``). The root attributes ``spec`` and ``loss_weights`` are compared as
parsed values (``ACSFSpec.from_dict(json.loads(…)).to_dict()``, a dict of floats), not as JSON text.
Float arrays fail where |other − ref| > atol + rtol·|ref| or NaN appears in only one; integer, bool and
string arrays must be equal. The report gives per quantity the largest absolute and relative difference and where
(structure, atom, feature label, …); missing quantities fail unless ``allow_missing``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import h5py
import numpy as np

from .acsf_spec import ACSFSpec
from .errors import ALWError, DataError
from .loss import RMSE_UNITS

#: Root attributes ``format`` and ``format_version`` of every oracle file (``compare_files`` checks both).
ORACLE_FORMAT = "alw_ref.oracle"
ORACLE_FORMAT_VERSION = 1
#: Root attributes that must agree for two oracle files to be comparable (JSON ones compared parsed).
COMPARED_ATTRS = ("spec", "descriptor_order", "loss_form", "loss_weights", "n_structures")


def _loss_text(component):
    unit = RMSE_UNITS[component]
    return f"{unit} (rmse), ({unit})² (mse)"


#: Every dataset: path (``<k>`` = structure index, decimal) -> (axes, dtype, unit, meaning).
LAYOUT = {
    "feature_labels": (("feature",), "str", "", "label of each descriptor column, in the order written"),
    "feature_native_index": (("feature",), "int64", "1",
                             "column of the native alw_ref order (−1: G1 added for --order dscribe)"),
    "structures/<k>/numbers": (("atom",), "int64", "1", "atomic numbers"),
    "structures/<k>/species": (("atom",), "int64", "1", "species index = position in spec.elements"),
    "structures/<k>/positions": (("atom", "cartesian"), "float64", "Å", "Cartesian positions as given"),
    "structures/<k>/cell": (("lattice", "cartesian"), "float64", "Å", "rows are lattice vectors"),
    "structures/<k>/pbc": (("lattice",), "bool", "1", "periodic along each lattice vector"),
    "structures/<k>/nl_i": (("pair",), "int64", "1", "centre atom i of each pair (sorted by i, j, S)"),
    "structures/<k>/nl_j": (("pair",), "int64", "1", "neighbour atom j"),
    "structures/<k>/nl_shift": (("pair", "lattice"), "int64", "1", "image shift S"),
    "structures/<k>/nl_r": (("pair", "cartesian"), "float64", "Å", "r_ij = r_j − r_i + S·cell"),
    "structures/<k>/nl_d": (("pair",), "float64", "Å", "distance ‖r_ij‖ < R_c"),
    "structures/<k>/G": (("atom", "feature"), "float64", "1", "ACSF descriptors G_i"),
    "structures/<k>/block_first": (("atom_offset",), "int64", "1",
                                   "blocks of centre i are block_first[i]:block_first[i+1]"),
    "structures/<k>/block_j": (("block",), "int64", "1", "atom j of each block; j = i included, ascending"),
    "structures/<k>/dG_dr": (("block", "feature", "cartesian"), "float64", "Å⁻¹",
                             "∂G_i/∂r_j summed over the periodic images of j"),
    "structures/<k>/dG_deps": (("atom", "feature", "cartesian", "cartesian"), "float64", "1",
                               "∂G_i/∂ε_ab for r → (I+ε) r of positions and cell"),
    "structures/<k>/ref_energy": ((), "float64", "eV", "target total energy from the input"),
    "structures/<k>/ref_forces": (("atom", "cartesian"), "float64", "eV/Å", "target forces"),
    "structures/<k>/ref_stress": (("voigt",), "float64", "eV/Å³", "target stress, ASE sign; NaN if absent"),
    "structures/<k>/has_stress": ((), "bool", "1", "whether the structure has a stress target"),
    "structures/<k>/energies": (("atom",), "float64", "eV", "atomic energies E_i = ε_Z + NN_Z(x_i)"),
    "structures/<k>/energy": ((), "float64", "eV", "E = Σ_i E_i (paper Eq. 1)"),
    "structures/<k>/forces": (("atom", "cartesian"), "float64", "eV/Å", "F = −∂E/∂r (paper Eq. 2)"),
    "structures/<k>/stress": (("voigt",), "float64", "eV/Å³",
                              "σ = (1/V) ∂E/∂ε, ASE sign, Voigt xx yy zz yz xz xy (Eq. 3); NaN without pbc"),
    "structures/<k>/loss_energy": ((), "float64", _loss_text("energy"), "L_E of this structure alone"),
    "structures/<k>/loss_forces": ((), "float64", _loss_text("forces"), "L_F of this structure alone"),
    "structures/<k>/loss_stress": ((), "float64", _loss_text("stress"),
                                   "L_S of this structure alone (0 without target)"),
    "structures/<k>/loss_total": ((), "float64", "mixed", "w_E L_E + w_F L_F + w_S L_S of this structure"),
    "structures/<k>/loss_gradient": (("parameter",), "float64", "mixed",
                                     "∂(loss_total of this structure)/∂θ_p, flat θ layout of /model/theta"),
    "loss/energy": ((), "float64", _loss_text("energy"), "L_E, all structures as one batch"),
    "loss/forces": ((), "float64", _loss_text("forces"), "L_F, all structures as one batch"),
    "loss/stress": ((), "float64", _loss_text("stress"), "L_S, all structures as one batch"),
    "loss/total": ((), "float64", "mixed", "L = w_E L_E + w_F L_F + w_S L_S (paper Eq. 4/5)"),
    "loss/gradient": (("parameter",), "float64", "mixed", "∂L/∂θ_p in the flat θ layout of /model/theta"),
    "theta_map/element": (("parameter",), "int64", "1", "species index of the network owning θ_p"),
    "theta_map/layer": (("parameter",), "int64", "1", "layer l (0 = first hidden layer)"),
    "theta_map/kind": (("parameter",), "int64", "1", "0: weight W_l[row, col], 1: bias b_l[col]"),
    "theta_map/row": (("parameter",), "int64", "1", "input unit of W (layer 0: native feature index; −1 for a bias)"),
    "theta_map/col": (("parameter",), "int64", "1", "output unit of W or b"),
}
#: Quantities (LAYOUT paths, ``<k>`` → ``*``) every oracle file holds, and those only written with a model.
DESCRIPTOR_QUANTITIES = tuple(q.replace("<k>", "*") for q in LAYOUT if q.split("/")[-1] in (
    "feature_labels", "feature_native_index", "numbers", "species", "positions", "cell", "pbc", "nl_i", "nl_j",
    "nl_shift", "nl_r", "nl_d", "G", "block_first", "block_j", "dG_dr", "dG_deps", "ref_energy", "ref_forces",
    "ref_stress", "has_stress"))
MODEL_QUANTITIES = tuple(q.replace("<k>", "*") for q in LAYOUT if q.replace("<k>", "*") not in DESCRIPTOR_QUANTITIES)
#: Axes and units of the datasets ``potential.write_model`` puts in the /model group (native feature order).
MODEL_LAYOUT = {"g_mean": (("element", "native_feature"), "1"), "g_scale": (("element", "native_feature"), "1"),
                "e_ref": (("element",), "eV/atom"), "theta": (("parameter",), "mixed"),
                "g_min": (("element", "native_feature"), "1"), "g_max": (("element", "native_feature"), "1")}


def loss_unit(component: str, form: str) -> str:
    """Unit of loss part ``component`` ("energy", "forces", "stress") under ``form``."""
    unit = RMSE_UNITS[component]
    return unit if form == "rmse" else f"({unit})²"


def layout_entry(path: str):
    """LAYOUT row of a concrete path (structures/3/G → structures/<k>/G), or None."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == "structures":
        path = f"structures/<k>/{parts[2]}"
    return LAYOUT.get(path)



# ---------------------------------------------------------------- compare
@dataclass(frozen=True)
class Difference:
    """Comparison of one quantity: status "ok", "FAIL", "missing", "extra"; largest |Δ| and |Δ|/|ref| and where."""

    quantity: str
    status: str
    n_values: int = 0
    n_bad: int = 0
    max_abs: float = 0.0
    where_abs: str = ""
    max_rel: float = 0.0
    where_rel: str = ""


def _datasets(f) -> dict:
    found = {}
    f.visititems(lambda name, obj: found.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
    return found


def _quantity(name: str) -> tuple:
    """(pooled quantity name, structure index or None)."""
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "structures" and parts[1].isdigit():
        return f"structures/*/{parts[2]}", int(parts[1])
    return name, None


def _describe_index(ref, name: str, index: tuple) -> str:
    """Human-readable location of element ``index`` of dataset ``name`` of file ``ref``."""
    quantity, k = _quantity(name)
    axes = ref[name].attrs.get("axes", "")
    axes = axes.split(",") if axes else [f"axis{a}" for a in range(len(index))]
    words = [] if k is None else [f"structure {k}"]
    for axis, i in zip(axes, index):
        i = int(i)
        labels = ref.get("feature_labels")
        if axis == "feature" and isinstance(labels, h5py.Dataset) and h5py.check_string_dtype(labels.dtype) \
                and i < len(labels):
            words.append(f"feature {i} ({ref['feature_labels'].asstr()[i]})")
        elif axis == "block" and k is not None and f"structures/{k}/block_first" in ref:
            centre = int(np.searchsorted(ref[f"structures/{k}/block_first"][()], i, side="right") - 1)
            words.append(f"block {i} (centre atom {centre}, atom j {int(ref[f'structures/{k}/block_j'][i])})")
        elif axis == "parameter" and "theta_map/element" in ref:
            m = {key: int(ref[f"theta_map/{key}"][i]) for key in ("element", "layer", "kind", "row", "col")}
            what = f"W[{m['row']},{m['col']}]" if m["kind"] == 0 else f"b[{m['col']}]"
            words.append(f"parameter {i} (element {m['element']}, layer {m['layer']}, {what})")
        else:
            words.append(f"{axis} {i}")
    return ", ".join(words) or "(scalar)"


def _compare_arrays(a: np.ndarray, b: np.ndarray, rtol: float, atol: float):
    """(bad mask, |Δ|, |Δ|/|ref|) elementwise; non-float arrays compare exactly."""
    if a.dtype.kind not in "fc":
        bad = a != b
        diff = bad.astype(float) if a.dtype.kind in "OUSb" else np.abs(a.astype(float) - b.astype(float))
        return bad, diff, diff
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        diff = np.where(a == b, 0.0, np.abs(a - b))
        diff = np.where(nan_a | nan_b, np.where(nan_a & nan_b, 0.0, np.inf), diff)
        rel = np.where(diff == 0, 0.0, diff / np.abs(a))
        bad = (diff > atol + rtol * np.abs(a)) | (nan_a != nan_b)
    return bad, diff, rel


def parse_quantities(text: str) -> tuple:
    """Quantity names from a comma-separated list of LAYOUT quantities (``structures/*/G``, ``loss/gradient``)
    and the words ``descriptors`` and ``model`` (the two parts); DataError naming an unknown one."""
    known = DESCRIPTOR_QUANTITIES + MODEL_QUANTITIES
    out = []
    for word in (w.strip() for w in text.split(",")):
        names = {"descriptors": DESCRIPTOR_QUANTITIES, "model": MODEL_QUANTITIES}.get(word, (word,))
        for name in names:
            if name not in known:
                raise DataError(f"--quantities: unknown quantity {name!r} (choose from descriptors, model, "
                                f"{', '.join(known)})")
            if name not in out:
                out.append(name)
    return tuple(out)


def _check_oracle_file(path, f, role: str) -> None:
    """DataError unless ``f`` says it is an alw_ref oracle file of ORACLE_FORMAT_VERSION."""
    fmt, version = f.attrs.get("format"), f.attrs.get("format_version")
    if not isinstance(fmt, str) or fmt != ORACLE_FORMAT:
        found = "no 'format' attribute" if fmt is None else f"format {np.asarray(fmt).tolist()!r}"
        raise DataError(f"{path}: {role} is not an alw_ref oracle file: found {found} at the root, "
                        f"expected format {ORACLE_FORMAT!r}")
    if not isinstance(version, (int, np.integer)) or version != ORACLE_FORMAT_VERSION:
        raise DataError(f"{path}: {role} has oracle format_version {version!r}; this alw_ref compares "
                        f"format_version {ORACLE_FORMAT_VERSION}")


def _check_reference(path, f, quantities) -> None:
    """DataError unless reference ``f`` holds structures and every quantity in ``quantities`` (for every
    structure): an empty or partial reference must not pass a comparison with nothing compared."""
    n = f.attrs.get("n_structures")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError(f"{path}: the reference holds no structures (n_structures = {n!r}): nothing to compare")
    for q in quantities:
        names = [q.replace("*", str(k)) for k in range(int(n))] if q.startswith("structures/*/") else [q]
        absent = [name for name in names if not isinstance(f.get(name), h5py.Dataset)]
        if absent:
            more = f" (+{len(absent) - 1} more)" if len(absent) > 1 else ""
            raise DataError(f"{path}: the reference lacks {absent[0]}{more} of quantity {q} (asked for)")


def _attr_value(key: str, raw):
    """A root attribute as a comparable value: ``spec`` as ``ACSFSpec.from_dict(json.loads(…)).to_dict()`` and
    ``loss_weights`` as a dict of floats (parsed, so JSON formatting does not matter), others as is."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        if key == "spec":
            return ACSFSpec.from_dict(json.loads(str(raw))).to_dict()
        if key == "loss_weights":
            weights = json.loads(str(raw))
            return {str(k): float(v) for k, v in weights.items()} if isinstance(weights, dict) else weights
    except (ALWError, ValueError, TypeError, AttributeError) as err:
        return f"unparseable: {err}"
    return np.asarray(raw).tolist()


def _values(dset) -> np.ndarray:
    """Values of an HDF5 dataset; strings as an object array of str."""
    if h5py.check_string_dtype(dset.dtype):
        return np.asarray(dset.asstr()[()], object)
    return np.asarray(dset[()])


def _kind(a: np.ndarray) -> str:
    """'strings', 'numbers' or the dtype, for deciding whether two arrays can be compared value by value."""
    return "strings" if a.dtype.kind in "OUS" else "numbers" if a.dtype.kind in "biufc" else str(a.dtype)


def compare_files(ref_path, other_path, rtol: float = 1e-8, atol: float = 1e-10,
                  allow_missing: bool = False, quantities=None) -> list:
    """Difference per quantity of oracle file ``other_path`` against ``ref_path`` (module docstring).

    Both must be oracle files of this format version and the reference must hold structures and the
    quantities asked for (``quantities``, default DESCRIPTOR_QUANTITIES, the part every file has): DataError
    otherwise. With ``quantities`` only those are compared, and each must be in ``other_path`` whatever
    ``allow_missing`` says; without, every dataset of the reference is compared."""
    with h5py.File(ref_path, "r") as ref, h5py.File(other_path, "r") as other:
        _check_oracle_file(ref_path, ref, "the reference")
        _check_oracle_file(other_path, other, "the file to compare")
        _check_reference(ref_path, ref, DESCRIPTOR_QUANTITIES if quantities is None else quantities)
        out = []
        for key in COMPARED_ATTRS:
            va, vb = _attr_value(key, ref.attrs.get(key)), _attr_value(key, other.attrs.get(key))
            if va != vb:
                out.append(Difference(f"@{key}", "FAIL", 1, 1, where_abs=f"ref {va!r} vs other {vb!r}"))
        all_ref, ds_other = _datasets(ref), _datasets(other)
        ds_ref = all_ref if quantities is None else {
            name: d for name, d in all_ref.items() if _quantity(name)[0] in quantities}
        acc = {}
        for name, dset in ds_ref.items():
            quantity, _ = _quantity(name)
            d = acc.setdefault(quantity, {"n": 0, "bad": 0, "abs": (-1.0, ""), "rel": (-1.0, ""), "status": "ok",
                                          "absent": []})
            if name not in ds_other:
                d["status"] = "missing" if d["status"] != "FAIL" else "FAIL"
                d["absent"].append(name)
                continue
            a, b = _values(dset), _values(ds_other[name])
            if a.shape != b.shape or _kind(a) != _kind(b):
                d["status"], d["bad"] = "FAIL", d["bad"] + 1
                d["abs"] = (np.inf, f"{name}: {_kind(a)} {a.shape} vs {_kind(b)} {b.shape}")
                continue
            bad, diff, rel = _compare_arrays(np.asarray(a), np.asarray(b), rtol, atol)
            d["n"] += int(np.size(a))
            d["bad"] += int(np.count_nonzero(bad))
            if np.any(bad):
                d["status"] = "FAIL"
            for key, arr in (("abs", diff), ("rel", rel)):
                top = float(np.max(arr)) if np.size(arr) else 0.0
                if top > d[key][0]:
                    at = np.unravel_index(int(np.argmax(arr)), np.shape(arr))
                    d[key] = (top, _describe_index(ref, name, at) if top > 0 else "")
        for quantity, d in acc.items():
            where = d["abs"][1]
            if d["absent"]:
                more = f" (+{len(d['absent']) - 1} more)" if len(d["absent"]) > 1 else ""
                where = f"absent from other: {d['absent'][0]}{more}" + (f"; {where}" if where else "")
            out.append(Difference(quantity, d["status"], d["n"], d["bad"], max(d["abs"][0], 0.0), where,
                                  max(d["rel"][0], 0.0), d["rel"][1]))
        if quantities is None:
            extra = sorted({_quantity(n)[0] for n in ds_other if n not in all_ref})
            out += [Difference(q, "extra") for q in extra]
    if allow_missing:
        asked = () if quantities is None else quantities
        out = [d if d.status != "missing" or d.quantity in asked else Difference(d.quantity, "missing (allowed)")
               for d in out]
    return out


def format_report(diffs, rtol: float, atol: float) -> str:
    """Text table of ``compare_files`` results, failures first."""
    lines = [f"tolerance: |other - ref| <= {atol:g} + {rtol:g} |ref| (floats); exact for integers and strings",
             f"{'status':8} {'quantity':30} {'values':>8} {'bad':>6} {'max |diff|':>11}  {'max rel':>9}  where"]
    rank = {"FAIL": 0, "missing": 1}
    for d in sorted(diffs, key=lambda d: (rank.get(d.status, 2), d.quantity)):
        where = "; ".join(f"{k}: {w}" for k, w in (("abs", d.where_abs), ("rel", d.where_rel)) if w) or "-"
        lines.append(f"{d.status:8} {d.quantity:30} {d.n_values:8d} {d.n_bad:6d} {d.max_abs:11.3e}  "
                     f"{d.max_rel:9.2e}  {where}")
    return "\n".join(lines)


def comparison_passed(diffs) -> bool:
    """True when no quantity failed and none is missing (allowed omissions and extras pass)."""
    return all(d.status in ("ok", "extra", "missing (allowed)") for d in diffs)
