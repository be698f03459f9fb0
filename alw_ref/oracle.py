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

Layout and comparison. The file's layout (``LAYOUT``) and ``compare_files`` (``--compare``) live in
``alw_ref.oracle_format`` (its docstring says what a comparison checks); their names are re-exported
here. This module computes the arrays, writes the file and runs the command line.
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
from .acsf_spec import PRESET_HELP, PRESET_RC_HELP, PRESETS, ACSFSpec
from .atomic import atomic_write
from .describe import compute_descriptors
from .elements import chemical_symbol
from .cli import interrupts_raise
from .errors import ALWError, DataError, SpecError
from .loss import COMPONENTS, FORMS, loss_and_gradient
from .mlp import ACTIVATIONS
from .model import Model, fit_reference_energies, fit_standardization, make_batch
from .neighbors import neighbor_list
from .oracle_format import (COMPARED_ATTRS, DESCRIPTOR_QUANTITIES, LAYOUT, MODEL_LAYOUT,  # noqa: F401 (re-exported)
                            MODEL_QUANTITIES, ORACLE_FORMAT, ORACLE_FORMAT_VERSION, Difference, compare_files,
                            comparison_passed, format_report, layout_entry, loss_unit, parse_quantities)
from .train import comma_floats

ORDERS = ("native", "dscribe")
#: (η, R_s) of the radial function that is G1 = Σ_j f_c(R_ij).
G1_PARAMS = (0.0, 0.0)


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
            raise SpecError("--rc only goes with --preset auto/trainer/default/rich (a spec file states its own rc)")
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
    a("--preset", choices=PRESETS, help=PRESET_HELP + ", instead of --spec (default: none)")
    a("--rc", type=float, help=PRESET_RC_HELP)
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
