"""Correctness oracle: every intermediate alw_ref computes, in one HDF5 file another code can diff.

    python -m alw_ref.oracle STRUCTURES --spec spec.json --random-model 0 -o oracle.h5
    python -m alw_ref.oracle --compare ref.h5 other.h5 [--rtol 1e-8 --atol 1e-10]

For every structure the file holds its neighbour list at R_c (``neighbors.neighbor_list``), the
ACSF descriptors G, the sparse dG/dr blocks and dG/dε (``acsf``); with a model, the atomic energies,
E, F and σ (paper Eqs. 1–3) and the loss parts of the structure alone; for the whole input as one
batch the loss parts, L = Σ_k w_k L_k (paper Eq. 4/5, ``loss``) and ∂L/∂θ for every parameter with
a map from flat index to (element, layer, W/b, row, col). The layout (``LAYOUT``, one table of
path, axes, dtype, unit, meaning) is reproduced in docs/oracle_format.md.

Model. ``--model FILE`` reads a model file (``potential``). ``--random-model SEED`` builds
``Model.create(spec, hidden, activation, SEED)`` (Glorot-uniform weights, zero biases), then sets
the standardisation to ``fit_standardization`` of the descriptors of *all* input structures and the
reference energies to ``fit_reference_energies`` (least squares) of their energies: a deterministic
function of (structures, spec, hidden, activation, SEED). Without either, only the descriptor part
is written.

Feature order. ``order="native"`` writes alw_ref's order (``acsf`` docstring). ``order="dscribe"``
writes DScribe 2.1's ACSF order (checked against dscribe 2.1.2): species sorted by atomic number;
for each element d: [G1_d, G2_d(η, R_s) in g2_params order, G3_d]; then for each element pair
(a, b) with a ≥ b in the order (0,0), (1,0), (1,1), (2,0), (2,1), (2,2), …: [G4_ab(params), G5_ab(params)].
DScribe always emits G1 = Σ_j f_c(R_ij). If the spec has a radial entry (η, R_s) = (0, 0) (our G1),
that column is DScribe's G1 and it is left out of g2_params; otherwise G1 is computed here (the
same kernel with (0, 0) added) and its ``feature_native_index`` is −1. The DScribe arguments that
reproduce the columns are stored in the root attribute ``dscribe_acsf``. G3 does not exist in
ACSFSpec (a spec with a g3 key is rejected by ``ACSFSpec.from_dict``). Model quantities never
depend on the order.

Comparison (``compare_files``): both files must say they are oracle files of this format version,
and the reference must hold structures and at least the quantities asked for (default: the
descriptor part every file has), so an empty or foreign reference cannot pass. Every dataset of the
reference file (or each quantity asked for) is a quantity; the per-structure ones are pooled over
structures (``structures/*/G``). The root attributes ``spec`` and ``loss_weights`` are compared as
parsed values (``ACSFSpec.from_dict(json.loads(…)).to_dict()``, a dict of floats), not as JSON text. Float arrays fail where
|other − ref| > atol + rtol·|ref| or NaN appears in only one; integer, bool and string arrays must
be equal. The report gives per quantity the largest absolute and relative difference and where
(structure, atom, feature label, …); missing quantities fail unless ``allow_missing``.
"""

from __future__ import annotations

if __name__ == "__main__":   # before the imports below (alw_ref/cli.py)
    from alw_ref.cli import prepare_command

    prepare_command("oracle")

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from . import __version__
from .acsf import PRESET_RC, PRESETS, ACSFSpec
from .atomic import atomic_write
from .describe import compute_descriptors
from .elements import chemical_symbol
from .cli import interrupts_raise
from .errors import ALWError, DataError, SpecError
from .loss import COMPONENTS, FORMS, RMSE_UNITS, loss_and_gradient
from .mlp import ACTIVATIONS
from .model import Model, fit_reference_energies, fit_standardization, make_batch
from .neighbors import neighbor_list
from .train import comma_floats

ORACLE_FORMAT = "alw_ref.oracle"
ORACLE_FORMAT_VERSION = 1
ORDERS = ("native", "dscribe")
#: (η, R_s) of the radial function that is G1 = Σ_j f_c(R_ij).
G1_PARAMS = (0.0, 0.0)
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


# ---------------------------------------------------------------- inputs
def load_structures(path, fmt: str = "auto"):
    """Dataset from a dataset.h5 (fmt "dataset", or "auto" for .h5/.hdf5) or via ``convert.read_structures``."""
    from .convert import read_structures
    from .data import Dataset, read_dataset

    path = Path(path)
    if fmt == "dataset" or (fmt == "auto" and path.suffix in (".h5", ".hdf5")):
        return read_dataset(path)
    return Dataset.from_structures(read_structures(path, fmt))


def resolve_spec(spec_path=None, preset=None, rc=None, elements=()) -> ACSFSpec:
    """The descriptor spec from a JSON file, or a preset (``ACSFSpec.preset``: ``trainer``/``default`` over
    ``elements`` with ``rc`` Å, 5.5 Å if None; ``mote2_paper``)."""
    if (spec_path is None) == (preset is None):
        raise SpecError("give exactly one of --spec FILE and --preset NAME")
    if spec_path is not None:
        if rc is not None:
            raise SpecError("--rc only goes with --preset trainer/default (a spec file states its own rc)")
        return ACSFSpec.from_json(Path(spec_path))
    return ACSFSpec.preset(preset, elements, rc)


def random_model(spec: ACSFSpec, dataset, G_ig, species_i, hidden=(30, 30), activation="tanh", seed=0) -> Model:
    """``Model.create(spec, hidden, activation, seed)`` standardised on ``G_ig`` (all atoms of ``dataset``,
    native order) with reference energies fitted by least squares to ``dataset.energy`` (module docstring)."""
    model = Model.create(spec, hidden, activation, seed)
    n_el = spec.n_elements
    model.g_mean_eg[:], model.g_scale_eg[:] = fit_standardization(G_ig, species_i, n_el)
    structure_i = np.repeat(np.arange(len(dataset)), dataset.n_atoms)
    counts_se = np.zeros((len(dataset), n_el))
    np.add.at(counts_se, (structure_i, species_i), 1.0)
    model.e_ref_e[:] = fit_reference_energies(dataset.energy, counts_se)
    model.meta["oracle_random_model"] = {"seed": int(seed), "hidden": list(model.hidden),
                                         "activation": activation, "fitted_on": "all input structures"}
    return model


# ---------------------------------------------------------------- feature orders
@dataclass(frozen=True)
class FeatureOrder:
    """How the written descriptor columns come from one descriptor computation.

    compute_spec : the spec actually computed (the native spec, plus G1 for DScribe order if absent)
    out_cols     : (D_out,) int64 columns of the computed G in the order written
    native_cols  : (D,) int64 columns of the computed G giving the native spec's features
    native_index : (D_out,) int64 native column of each written column, −1 if not in the spec
    labels       : D_out labels;  dscribe : DScribe ACSF keyword arguments, or None
    """

    compute_spec: ACSFSpec
    out_cols: np.ndarray
    native_cols: np.ndarray
    native_index: np.ndarray
    labels: list
    dscribe: dict | None


def native_order(spec: ACSFSpec) -> FeatureOrder:
    """The identity order of ``spec`` (``acsf`` docstring)."""
    idx = np.arange(spec.n_features, dtype=np.int64)
    return FeatureOrder(spec, idx, idx, idx, spec.feature_labels(), None)


def dscribe_order(spec: ACSFSpec) -> FeatureOrder:
    """DScribe 2.1's ACSF column order for ``spec`` (module docstring), G1 added when the spec lacks it."""
    has_g1 = G1_PARAMS in spec.radial
    radial = spec.radial if has_g1 else (G1_PARAMS,) + spec.radial
    comp = ACSFSpec(spec.elements, spec.rc, radial, spec.angular, spec.angular_g5)
    n_el, nr, n4, n5 = comp.n_elements, len(comp.radial), len(comp.angular), len(comp.angular_g5)
    pair_of = {ab: p for p, ab in enumerate(comp.element_pairs())}
    g2_rows = [k for k, r in enumerate(radial) if r != G1_PARAMS]
    by_z = sorted(range(n_el), key=lambda e: comp.elements[e])  # DScribe sorts species by Z
    cols = []
    for e in by_z:
        cols += [e * nr + radial.index(G1_PARAMS)] + [e * nr + k for k in g2_rows]
    for a in range(n_el):
        for b in range(a + 1):
            p = pair_of[tuple(sorted((by_z[a], by_z[b])))]
            cols += [n_el * nr + p * n4 + k for k in range(n4)]
            cols += [n_el * nr + comp.n_pairs * n4 + p * n5 + k for k in range(n5)]
    # native feature g: radial e·nr₀ + k → e·nr + k + added; angular columns move by n_el·(nr − nr₀)
    nr0, added = len(spec.radial), nr - len(spec.radial)
    native_cols = np.array([(g // nr0) * nr + g % nr0 + added if g < n_el * nr0 else g + n_el * added
                            for g in range(spec.n_features)], np.int64)
    lookup = {int(c): g for g, c in enumerate(native_cols)}
    out_cols = np.array(cols, np.int64)
    dscribe = {"species": [chemical_symbol(comp.elements[e]) for e in by_z], "r_cut": spec.rc,
               "g2_params": [list(radial[k]) for k in g2_rows] or None,
               "g4_params": [list(p) for p in spec.angular] or None,
               "g5_params": [list(p) for p in spec.angular_g5] or None}
    labels = comp.feature_labels()
    return FeatureOrder(comp, out_cols, native_cols,
                        np.array([lookup.get(int(c), -1) for c in out_cols], np.int64),
                        [labels[c] for c in out_cols], dscribe)


def theta_map(model: Model) -> dict:
    """(n_params,) int64 arrays element, layer, kind (0 W, 1 b), row (−1 for b), col of every θ_p.

    Built by laying flat indices out with ``Model.layers``, so it follows the model's own layout."""
    index = np.arange(model.n_params, dtype=np.float64)
    out = {k: np.full(model.n_params, -1, np.int64) for k in ("element", "layer", "kind", "row", "col")}
    for e in range(len(model.elements)):
        for layer, (W, b) in enumerate(model.layers(e, index)):
            rows, cols = np.indices(W.shape)
            for p, kind, r, c in ((W, 0, rows, cols), (b, 1, np.full(b.shape, -1), np.arange(b.size))):
                at = p.astype(np.int64).ravel()
                out["element"][at], out["layer"][at], out["kind"][at] = e, layer, kind
                out["row"][at], out["col"][at] = r.ravel(), c.ravel()
    return out


# ---------------------------------------------------------------- compute and write
def compute_oracle(dataset, spec: ACSFSpec, model: Model | None = None, weights=(1.0, 1.0, 1.0),
                   form: str = "rmse", order: str = "native") -> dict:
    """Every array of the oracle file: {LAYOUT path with <k> filled in: array}."""
    if order not in ORDERS:
        raise ValueError(f"unknown descriptor order {order!r}; choose one of {ORDERS}")
    if model is not None and model.spec != spec:
        raise SpecError(f"the model's descriptor spec differs from the given one:\n model: {model.spec}\n "
                        f"given: {spec}")
    fo = native_order(spec) if order == "native" else dscribe_order(spec)
    desc = compute_descriptors(dataset, fo.compute_spec, derivatives=True)
    species = spec.species_index(dataset.numbers)
    out = {"feature_labels": np.array(fo.labels, dtype=object), "feature_native_index": fo.native_index}
    off = dataset.atom_offset
    for k in range(len(dataset)):
        a0, a1 = off[k], off[k + 1]
        s, pre = dataset[k], f"structures/{k}/"
        nl = neighbor_list(s.positions, s.cell, s.pbc, spec.rc)
        b0, b1 = desc.block_first_i[a0], desc.block_first_i[a1]
        out.update({pre + "numbers": s.numbers, pre + "species": species[a0:a1], pre + "positions": s.positions,
                    pre + "cell": s.cell, pre + "pbc": s.pbc, pre + "nl_i": nl.i_n, pre + "nl_j": nl.j_n,
                    pre + "nl_shift": nl.shift_nc, pre + "nl_r": nl.r_nc, pre + "nl_d": nl.d_n,
                    pre + "G": desc.G_ig[a0:a1][:, fo.out_cols],
                    pre + "block_first": desc.block_first_i[a0:a1 + 1] - b0,
                    pre + "block_j": desc.block_j[b0:b1] - a0,
                    pre + "dG_dr": desc.dG_dr_bgc[b0:b1][:, fo.out_cols],
                    pre + "dG_deps": desc.dG_deps_igcc[a0:a1][:, fo.out_cols],
                    pre + "ref_energy": np.float64(dataset.energy[k]), pre + "ref_forces": s.forces,
                    pre + "ref_stress": dataset.stress[k], pre + "has_stress": np.bool_(dataset.has_stress[k])})
    if model is not None:
        out.update(_model_arrays(dataset, desc, fo.native_cols, species, model, weights, form))
    return out


def _model_arrays(dataset, desc, native_cols, species, model, weights, form) -> dict:
    """Predictions, per-structure and whole-set loss parts and ∂L/∂θ, and the θ map."""
    native = type(desc)(desc.spec, desc.atom_offset_s, desc.G_ig[:, native_cols], desc.block_first_i,
                        desc.block_j, desc.dG_dr_bgc[:, native_cols], desc.dG_deps_igcc[:, native_cols])
    w = dict(zip(COMPONENTS, (float(x) for x in weights)))
    whole = loss_and_gradient(model, make_batch(dataset, native, np.arange(len(dataset)), species), w, form)
    pred, off = whole.prediction, dataset.atom_offset
    out = {f"loss/{c}": np.float64(whole.parts[c]) for c in COMPONENTS}
    out["loss/total"], out["loss/gradient"] = np.float64(whole.total), whole.gradient
    out.update({f"theta_map/{key}": v for key, v in theta_map(model).items()})
    for k in range(len(dataset)):
        pre, a0, a1 = f"structures/{k}/", off[k], off[k + 1]
        one = loss_and_gradient(model, make_batch(dataset, native, [k], species), w, form)
        out.update({pre + "energies": pred.energies_i[a0:a1], pre + "energy": np.float64(pred.energy_s[k]),
                    pre + "forces": pred.forces_ic[a0:a1], pre + "stress": pred.stress_sv[k],
                    pre + "loss_total": np.float64(one.total), pre + "loss_gradient": one.gradient})
        out.update({pre + f"loss_{c}": np.float64(one.parts[c]) for c in COMPONENTS})
    return out


def layout_entry(path: str):
    """LAYOUT row of a concrete path (structures/3/G → structures/<k>/G), or None."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == "structures":
        path = f"structures/<k>/{parts[2]}"
    return LAYOUT.get(path)


def write_oracle(path, dataset, spec: ACSFSpec, model: Model | None = None, weights=(1.0, 1.0, 1.0),
                 form: str = "rmse", order: str = "native", model_source: str = "none") -> None:
    """Compute (``compute_oracle``) and write the oracle file atomically (layout: docs/oracle_format.md)."""
    if form not in FORMS:
        raise ValueError(f"unknown loss form {form!r}; choose one of {FORMS}")
    arrays = compute_oracle(dataset, spec, model, weights, form, order)
    fo = dscribe_order(spec) if order == "dscribe" else None
    with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update({"format": ORACLE_FORMAT, "format_version": ORACLE_FORMAT_VERSION,
                        "alw_ref_version": __version__, "spec": spec.to_json(), "descriptor_order": order,
                        "model_source": model_source, "loss_form": form,
                        "loss_weights": json.dumps(dict(zip(COMPONENTS, map(float, weights)))),
                        "n_structures": len(dataset),
                        "units": json.dumps({"energy": "eV", "length": "Å", "forces": "eV/Å",
                                             "stress": "eV/Å³", "loss": {c: loss_unit(c, form) for c in COMPONENTS}},
                                            ensure_ascii=False),
                        "stress_convention": "ASE: sigma = (1/V) dE/deps, tension positive, Voigt xx yy zz yz xz xy"})
        if fo is not None:
            f.attrs["dscribe_acsf"] = json.dumps(fo.dscribe)
        for name, value in arrays.items():
            axes, _, unit, meaning = layout_entry(name)
            if "(rmse)" in unit:
                unit = loss_unit(name.split("/")[-1].removeprefix("loss_"), form)
            data = value.astype(h5py.string_dtype()) if value.dtype == object else value
            ds = f.create_dataset(name, data=data)
            ds.attrs.update({"unit": unit, "axes": ",".join(axes), "meaning": meaning})
        if model is not None:
            from .potential import write_model

            write_model(model, f.create_group("model"))
            for name, (axes, unit) in MODEL_LAYOUT.items():
                if name in f["model"]:                  # g_min/g_max: only in models that recorded them
                    f["model"][name].attrs.update({"unit": unit, "axes": ",".join(axes)})


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


# ---------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m alw_ref.oracle",
        description="Write every intermediate quantity of alw_ref (neighbour list, ACSF G, dG/dr, dG/deps, "
                    "atomic energies, E, F, stress, loss parts, dL/dtheta) to one HDF5 file for other codes to "
                    "diff against (layout: docs/oracle_format.md), or compare two such files with --compare.",
        epilog="Units: energy eV, length Å, forces eV/Å, stress eV/Å³ (ASE sign, Voigt xx yy zz yz xz xy); "
               "loss parts in eV/atom, eV/Å, GPa (rmse) or their squares (mse). Exit codes: 0 ok, 1 comparison "
               "beyond tolerance or quantities missing, 2 bad input.")
    a = p.add_argument
    a("structures", nargs="?", help="input structures: dataset.h5 (alw_ref format), or extxyz / anything "
                                    "ASE reads (needs the ase extra), or AtomDNN raw files (see --format)")
    a("-o", "--output", help="oracle file to write (required unless --compare, no default; replaced atomically)")
    a("--format", default="auto", choices=("auto", "dataset", "ase", "atomdnn-raw"),
      help="input format (default: auto = dataset for .h5/.hdf5, else as python -m alw_ref.convert detects)")
    a("--spec", help="descriptor spec JSON (ACSFSpec.to_json). Default: the model's spec with --model")
    a("--preset", choices=PRESETS,
      help="named spec instead of --spec, the same in train, describe and oracle: trainer (ACSFSpec.trainer), "
           "default (the smaller ACSFSpec.default), rich (ACSFSpec.rich), over the input's elements with --rc; or mote2_paper "
           "(R_c 6.5 Å, Mo/Te, 36 features); default: none")
    a("--rc", type=float, help=f"cutoff radius in Å for --preset trainer/default (default: {PRESET_RC})")
    a("--model", help="model file (best.h5 of python -m alw_ref.train); its spec is used if --spec/--preset "
                       "absent (default: none)")
    a("--random-model", type=int, metavar="SEED",
      help="use Model.create(spec, --hidden, --activation, SEED) standardised on the input's descriptors, "
           "reference energies fitted by least squares to the input energies (default: no random model)")
    a("--hidden", type=lambda s: tuple(int(x) for x in s.split(",")), default=(30, 30),
      help="hidden layer widths of --random-model, comma-separated (default: 30,30)")
    a("--activation", default="tanh", choices=sorted(ACTIVATIONS),
      help="activation of --random-model (default: tanh)")
    a("--weights", type=lambda s: comma_floats(s, 3, "--weights"), default=(1.0, 1.0, 1.0),
      help="loss weights wE,wF,wS used as given, not normalised (default: 1,1,1)")
    a("--loss", default="rmse", choices=FORMS, help="loss form (default: rmse)")
    a("--order", default="native", choices=ORDERS,
      help="descriptor column order: native (alw_ref) or dscribe (DScribe 2.1 ACSF order, G1 per element "
           "added if the spec lacks it; default: native)")
    a("--compare", nargs=2, metavar=("REF", "OTHER"),
      help="compare oracle file OTHER against REF instead of computing; exit 1 beyond tolerance")
    a("--rtol", type=float, default=1e-8, help="relative tolerance of --compare (default: 1e-8)")
    a("--atol", type=float, default=1e-10, help="absolute tolerance of --compare (default: 1e-10)")
    a("--allow-missing", action="store_true",
      help="with --compare: quantities absent from OTHER are reported but do not fail, except those named by "
           "--quantities (default: they fail)")
    a("--quantities", type=_quantities_arg, metavar="Q1,Q2,...",
      help="with --compare: compare only these quantities (e.g. structures/*/G,structures/*/forces,loss/gradient, "
           "or the words descriptors and model); REF and OTHER must both hold them. Default: every quantity of "
           "REF, which must hold at least the descriptor part")
    return p


def _quantities_arg(text: str) -> tuple:
    """argparse type of --quantities: ``parse_quantities`` with its message kept."""
    try:
        return parse_quantities(text)
    except DataError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _run(args, parser) -> int:
    if args.compare:
        for path in args.compare:
            if not Path(path).is_file():
                raise DataError(f"{path}: no such file")
        diffs = compare_files(*args.compare, rtol=args.rtol, atol=args.atol, allow_missing=args.allow_missing,
                              quantities=args.quantities)
        print(format_report(diffs, args.rtol, args.atol))
        passed = comparison_passed(diffs)
        print("comparison PASSED" if passed else
              "comparison FAILED: differences beyond tolerance or missing quantities (see above)")
        return 0 if passed else 1
    if args.structures is None or args.output is None:
        parser.error("give STRUCTURES and --output (or --compare REF OTHER)")
    if args.model and args.random_model is not None:
        parser.error("give at most one of --model and --random-model")
    dataset = load_structures(args.structures, args.format)
    model, source = None, "none"
    if args.model:
        from .potential import load_model

        model, source = load_model(args.model), f"file: {args.model}"
    if model is not None and args.spec is None and args.preset is None:
        spec = model.spec
    else:
        spec = resolve_spec(args.spec, args.preset, args.rc, dataset.elements)
    if args.random_model is not None:
        desc = compute_descriptors(dataset, spec, derivatives=False)
        model = random_model(spec, dataset, desc.G_ig, spec.species_index(dataset.numbers), args.hidden,
                             args.activation, args.random_model)
        source = (f"random: Model.create(spec, hidden={list(model.hidden)}, activation={args.activation!r}, "
                  f"seed={args.random_model}), standardisation and e_ref fitted on the input")
    write_oracle(args.output, dataset, spec, model, args.weights, args.loss, args.order, source)
    print(f"wrote {args.output}: {len(dataset)} structures, {len(dataset.numbers)} atoms, order {args.order}, "
          f"model {source}")
    return 0


def main(argv=None) -> int:
    interrupts_raise()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args, parser)
    except (ALWError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
