"""Export a trained potential to n2p2's format, and read n2p2 potentials back.

    python -m alw_ref.export n2p2 MODEL.h5 OUTDIR          # writes input.nn, scaling.data, weights.ZZZ.data
    python -m alw_ref.export --from-n2p2 DIR MODEL.h5       # an n2p2 potential as an alw_ref model file

The folder runs in n2p2's ``nnp-predict`` and in LAMMPS (``pair_style hdnnp``, docs/lammps.md); the
agreement is tested against both engines (tests/test_export.py). The mapping, term by term:

* Descriptors (``acsf`` docstring): G2 (η, R_s) for neighbour element b → n2p2 type 2
  ``symfunction_short C 2 B η R_s R_c``; G4 (η, ζ, λ) of the pair {a, b} → type 3 (angular narrow, with
  f_c(R_jk) and R_jk² in the Gaussian) ``symfunction_short C 3 A B η λ ζ R_c``; G5 → type 9 (angular
  wide) with the same syntax. Both codes count each neighbour pair {j, k} once, normalise by 2^(1−ζ),
  set a term to 0 where 1 + λ cos θ ≤ 0 (AtomDNN's clipping) and use R_s = 0 in the angular terms
  (types 3 and 9 read no shift here). One difference: for an exactly collinear triplet (an atom and
  two of its own periodic images on a line, cells shorter than R_c/2) we get 1 + λ cos θ = 0 exactly,
  n2p2's dot product can give ±1e-16, so for ζ < 1 the engines add a spurious (1e-16)^ζ term there.
* Cutoff: ``cutoff_type 1 0.0`` (n2p2's cosine, no inner cutoff) = our f_c; one R_c for all functions.
* Standardisation x = (G − μ)/s: ``scale_symmetry_functions_sigma`` with ``scale_min_short 0``,
  ``scale_max_short 1`` (n2p2: Smin + (Smax − Smin)(G − G_mean)/G_sigma); ``scaling.data`` rows
  "element function G_min G_max G_mean G_sigma" hold μ as G_mean and s as G_sigma, and the training
  range (``Model.g_min_eg``/``g_max_eg``) as G_min/G_max, which the engines' extrapolation warnings use.
* Per-element reference energy ε → ``atom_energy``; n2p2 adds it to the network output as we do.
* Network: ``global_hidden_layers_short``, ``global_nodes_short``, activations tanh → ``t``,
  softplus → ``p`` (the same ln(1 + eᵃ)), output ``l``; SiLU has no n2p2 equivalent and is refused.
* Order: n2p2 numbers elements by atomic number and, within each element, sorts its symmetry functions
  by (type, cutoff type, R_c, η, R_s, ζ, λ, neighbour elements) whatever the order of the file
  (``n2p2_order``). We write input.nn in that order, and the first-layer weight rows and the scaling
  rows follow it. Weights file ``weights.ZZZ.data`` (Z = atomic number, 3 digits): layer by layer,
  W[j, k] for input j, output k (j slowest), then that layer's biases — our ``theta`` layout exactly.

Numbers are written with ``repr`` (shortest string that reads back bit for bit), so export → import
reproduces the model exactly. Reading (``read_n2p2``) accepts what this mapping can express: types 2, 3
and 9 with R_s = 0 in the angular ones, the cosine cutoff without inner cutoff, one R_c, the same
function set for every element and every neighbour element (pair), one hidden activation t or p, and the
scalings none/center/scale/scalecenter/sigma (a non-zero Smin folds into the first-layer biases);
anything else is a ``ModelError`` naming the keyword, line or function type.
"""

from __future__ import annotations

if __name__ == "__main__":   # before the imports below (alw_ref/cli.py)
    from alw_ref.cli import prepare_command

    prepare_command("export")

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import __version__
from .acsf_spec import ACSFSpec
from .atomic import current_umask, write_text
from .elements import atomic_number, chemical_symbol
from .cli import interrupts_raise
from .errors import ALWError, ModelError, SpecError
from .model import Model, n_params_per_element
from .potential import load_model, save_model

#: alw_ref activation → n2p2 activation letter.
N2P2_ACTIVATION = {"tanh": "t", "softplus": "p"}
#: n2p2 symmetry-function types we implement: type → our name.
N2P2_TYPES = {2: "G2 (radial)", 3: "G4 (angular narrow)", 9: "G5 (angular wide)"}
#: Keywords of input.nn we cannot map (reading refuses them by name).
UNSUPPORTED_KEYWORDS = ("mean_energy", "conv_energy", "conv_length", "normalize_nodes",
                        "element_nodes_short", "element_activation_short", "element_hidden_layers_short",
                        "global_symfunction_short", "element_symfunction_short")
SCALING_KEYWORDS = ("scale_symmetry_functions", "center_symmetry_functions", "scale_symmetry_functions_sigma")
FILES = ("input.nn", "scaling.data")


def _num(x) -> str:
    """Shortest text that reads back as the same float64 (Python's repr of a float)."""
    return repr(float(x))


# ---------------------------------------------------------------- the function table
def feature_functions(spec: ACSFSpec) -> list:
    """One n2p2 function per feature, in our feature order: (type, neighbour Zs sorted, η, R_s, ζ, λ).

    The same list holds for every central element (our spec is one set for all elements)."""
    out = [(2, (z,), eta, rs, 0.0, 0.0) for z in spec.elements for eta, rs in spec.radial]
    for n2p2_type, params in ((3, spec.angular), (9, spec.angular_g5)):
        for a, b in spec.element_pairs():
            zs = tuple(sorted((spec.elements[a], spec.elements[b])))
            out += [(n2p2_type, zs, eta, 0.0, zeta, lam) for eta, zeta, lam in params]
    return out


def n2p2_order(spec: ACSFSpec) -> np.ndarray:
    """perm (D,): n2p2's k-th symmetry function of every element is our feature perm[k].

    n2p2 sorts by type, cutoff type, R_c, η, R_s, ζ, λ, neighbour element indices (= atomic number order);
    cutoff type and R_c are shared here, and radial functions have no ζ, λ (0 in the key)."""
    funcs = feature_functions(spec)
    return np.array(sorted(range(len(funcs)), key=lambda k: (funcs[k][0], funcs[k][2], funcs[k][3],
                                                              funcs[k][4], funcs[k][5], funcs[k][1])), np.int64)


def symfunction_line(center: int, func, rc: float) -> str:
    """The ``symfunction_short`` line of one function (type 2: η R_s R_c; types 3, 9: η λ ζ R_c)."""
    n2p2_type, zs, eta, rs, zeta, lam = func
    names = " ".join(chemical_symbol(z) for z in zs)
    values = (eta, rs, rc) if n2p2_type == 2 else (eta, lam, zeta, rc)
    return f"symfunction_short {chemical_symbol(center)} {n2p2_type} {names} " + " ".join(map(_num, values))


# ---------------------------------------------------------------- export
def _check_exportable(model: Model, where: str) -> None:
    """ModelError before anything is written when the model cannot be expressed in n2p2's format."""
    if model.activation not in N2P2_ACTIVATION:
        raise ModelError(f"{where}: activation {model.activation!r} has no n2p2 equivalent (n2p2 has tanh 't' "
                         f"and softplus 'p'; exportable: {sorted(N2P2_ACTIVATION)}); retrain with --activation tanh")
    if model.g_min_eg is None or model.g_max_eg is None:
        raise ModelError(f"{where}: the model file has no training descriptor range (g_min/g_max), which "
                         f"scaling.data needs for the extrapolation warnings: it was written before alw_ref "
                         f"recorded it. Retrain, or pass --range-from DATASET.h5 (the training data)")


def n2p2_files(model: Model, source: str = "") -> dict:
    """{file name: text} of the n2p2 potential (module docstring); ModelError if not exportable."""
    _check_exportable(model, source or "model")
    spec, perm = model.spec, n2p2_order(model.spec)
    ours = feature_functions(spec)
    funcs = [ours[k] for k in perm]
    zs = sorted(spec.elements)
    sym = [chemical_symbol(z) for z in zs]
    act = N2P2_ACTIVATION[model.activation]
    lines = [f"# n2p2 potential written by alw_ref {__version__} (python -m alw_ref.export n2p2) from {source}",
             "# units: eV, Angstrom; symmetry functions in n2p2's own (sorted) order",
             "nnp_type 2G-HDNNP", f"number_of_elements {len(zs)}", "elements " + " ".join(sym)]
    lines += [f"atom_energy {chemical_symbol(z)} {_num(model.e_ref_e[spec.elements.index(z)])}" for z in zs]
    lines += ["cutoff_type 1 0.0", "scale_symmetry_functions_sigma", "scale_min_short 0.0", "scale_max_short 1.0",
              f"global_hidden_layers_short {len(model.hidden)}",
              "global_nodes_short " + " ".join(str(h) for h in model.hidden),
              "global_activation_short " + " ".join([act] * len(model.hidden) + ["l"])]
    scaling = ["# element function G_min G_max G_mean G_sigma (alw_ref: training range, mean mu, scale s)"]
    files = {}
    for n, z in enumerate(zs):
        e = spec.elements.index(z)
        lines += [symfunction_line(z, f, spec.rc) for f in funcs]
        scaling += [f"{n + 1} {k + 1} " + " ".join(_num(a[e, p]) for a in (model.g_min_eg, model.g_max_eg,
                                                                          model.g_mean_eg, model.g_scale_eg))
                    for k, p in enumerate(perm)]
        layers = model.layers(e)
        values = [layers[0][0][perm].ravel(), layers[0][1]] + [a for W, b in layers[1:] for a in (W.ravel(), b)]
        files[f"weights.{z:03d}.data"] = "".join(f"{x!r}\n" for x in np.concatenate(values).tolist())
    files["input.nn"] = "\n".join(lines) + "\n"
    files["scaling.data"] = "\n".join(scaling) + "\n"
    return files


def export_n2p2(model: Model, outdir, source: str = "", overwrite: bool = False) -> list:
    """Write the n2p2 files of ``model`` into ``outdir``: a new folder is filled under a temporary name and
    renamed (complete or absent); in an existing folder each file is replaced atomically.

    Refuses (ModelError) to replace existing n2p2 files unless ``overwrite``; returns the paths written."""
    files = n2p2_files(model, source)
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ModelError(f"{outdir}: exists and is not a folder")
    present = sorted(p.name for p in outdir.glob("*") if p.name in FILES or p.name.startswith("weights."))
    if present and not overwrite:
        raise ModelError(f"{outdir}: already holds {', '.join(present)}; pass --overwrite to replace them")
    if not outdir.exists():  # a new folder appears complete or not at all
        outdir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=outdir.parent, prefix=f".{outdir.name}.", suffix=".tmp"))
        try:
            for name, text in files.items():
                (tmp / name).write_text(text)
            tmp.chmod(0o777 & ~current_umask())
            os.replace(tmp, outdir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return [outdir / name for name in files]
    for name in present:
        if name not in files:  # a weights file of an element the new model does not have
            (outdir / name).unlink()
    for name, text in files.items():
        write_text(outdir / name, text)
    return [outdir / name for name in files]


def range_from_dataset(model: Model, dataset_path) -> None:
    """Set ``model.g_min_eg``/``g_max_eg`` from the descriptors of every structure of a dataset file
    (for model files written before the range was recorded; pass the training data)."""
    from .data import read_dataset
    from .describe import compute_descriptors
    from .model import fit_descriptor_range

    data = read_dataset(dataset_path)
    desc = compute_descriptors(data, model.spec, derivatives=False)
    model.g_min_eg, model.g_max_eg = fit_descriptor_range(desc.G_ig, model.spec.species_index(data.numbers),
                                                          len(model.elements))


# ---------------------------------------------------------------- import
def parse_input_nn(text: str, where: str) -> dict:
    """{keyword: [argument lists]} of an input.nn (comments after '#' dropped; repeated keywords kept)."""
    out = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            out.setdefault(words[0], []).append(words[1:])
    for key in UNSUPPORTED_KEYWORDS:
        if key in out:
            raise ModelError(f"{where}: keyword {key!r} is not supported by alw_ref's reader")
    if out.get("nnp_type", [["2"]])[0][0] not in ("2", "2G-HDNNP"):
        raise ModelError(f"{where}: nnp_type {out['nnp_type'][0][0]!r}: only short-range HDNNPs (2G-HDNNP) are read")
    for key in ("elements", "cutoff_type", "global_hidden_layers_short", "global_nodes_short",
                "global_activation_short", "symfunction_short"):
        if key not in out:
            raise ModelError(f"{where}: keyword {key!r} is missing")
    return out


def _parse_function(words, where: str, rc_seen: list):
    """(center Z, (type, neighbour Zs sorted, η, R_s, ζ, λ)) of one symfunction_short argument list."""
    text = "symfunction_short " + " ".join(words)
    try:
        n2p2_type = int(words[1])
        if n2p2_type not in N2P2_TYPES:
            raise ModelError(f"{where}: '{text}': symmetry function type {n2p2_type} is not implemented "
                             f"(alw_ref reads types {', '.join(f'{t} = {n}' for t, n in N2P2_TYPES.items())})")
        center = atomic_number(words[0])
        if n2p2_type == 2:
            zs, (eta, rs, rc), zeta, lam = (atomic_number(words[2]),), map(float, words[3:6]), 0.0, 0.0
            extra = words[6:]
        else:
            zs = tuple(sorted(atomic_number(w) for w in words[2:4]))
            eta, lam, zeta, rc = map(float, words[4:8])
            rs = float(words[8]) if len(words) > 8 else 0.0
            extra = words[9:]
            if rs != 0.0:
                raise ModelError(f"{where}: '{text}': angular shift R_s = {rs} (alw_ref's G4/G5 have R_s = 0)")
    except (ValueError, IndexError, ALWError) as err:
        if isinstance(err, ModelError):
            raise
        raise ModelError(f"{where}: '{text}': cannot read it ({err})") from None
    if extra:
        raise ModelError(f"{where}: '{text}': unexpected extra values {extra}")
    rc_seen.append(rc)
    return center, (n2p2_type, zs, eta, rs, zeta, lam)


def _spec_from_functions(elements, funcs_by_center, rc, where: str) -> ACSFSpec:
    """The ACSFSpec whose features are exactly the given functions for every centre; else ModelError."""
    radial = sorted({(f[2], f[3]) for fs in funcs_by_center.values() for f in fs if f[0] == 2})
    angular = {t: sorted({(f[2], f[4], f[5]) for fs in funcs_by_center.values() for f in fs if f[0] == t})
               for t in (3, 9)}
    try:
        spec = ACSFSpec(elements=tuple(elements), rc=rc, radial=tuple(radial), angular=tuple(angular[3]),
                        angular_g5=tuple(angular[9]))
    except SpecError as err:
        raise ModelError(f"{where}: the symmetry functions do not form an alw_ref descriptor set ({err})") from None
    want = set(feature_functions(spec))
    for z in elements:
        have = funcs_by_center.get(z, [])
        if len(set(have)) != len(have):
            raise ModelError(f"{where}: element {chemical_symbol(z)} lists a symmetry function twice")
        missing = sorted(want - set(have))
        if missing:
            raise ModelError(f"{where}: element {chemical_symbol(z)} lacks {symfunction_line(z, missing[0], rc)!r} "
                             f"and {len(missing) - 1} more: alw_ref needs the same functions for every element "
                             f"and every neighbour element (pair)")
    return spec


def _scaling(keys: dict, rows: np.ndarray, where: str):
    """(μ, s, S_min) with n2p2's scaled input = S_min + (G − μ)/s, from the scaling keywords and rows."""
    present = {k for k in SCALING_KEYWORDS if k in keys}
    try:
        s_min = float(keys.get("scale_min_short", [["0.0"]])[0][0])
        s_max = float(keys.get("scale_max_short", [["1.0"]])[0][0])
    except (ValueError, IndexError) as err:
        raise ModelError(f"{where}: scale_min_short/scale_max_short: {err}") from None
    if not s_max > s_min:
        raise ModelError(f"{where}: scale_max_short {s_max} must exceed scale_min_short {s_min}")
    g_min, g_max, g_mean, g_sigma = rows.T
    if present == {"scale_symmetry_functions_sigma"}:
        return g_mean, g_sigma / (s_max - s_min), s_min
    if present == {"scale_symmetry_functions"}:
        return g_min, (g_max - g_min) / (s_max - s_min), s_min
    if present == {"scale_symmetry_functions", "center_symmetry_functions"}:
        return g_mean, (g_max - g_min) / (s_max - s_min), s_min
    if present == {"center_symmetry_functions"}:
        return g_mean, np.ones_like(g_mean), 0.0
    if not present:
        return np.zeros_like(g_mean), np.ones_like(g_mean), 0.0
    raise ModelError(f"{where}: scaling keywords {sorted(present)} together are not an n2p2 scaling alw_ref reads")


def _read_table(path: Path, n_columns: int, where: str) -> np.ndarray:
    """Numeric rows of a whitespace table (lines starting with '#' skipped); ModelError if unreadable."""
    try:
        rows = [line.split() for line in path.read_text().splitlines() if line.strip() and line[0] != "#"]
        return np.array([[float(x) for x in r[:n_columns]] for r in rows], np.float64).reshape(len(rows), n_columns)
    except (OSError, ValueError) as err:
        raise ModelError(f"{where}: cannot read {path.name} ({err})") from None


def _read_network(keys: dict, where: str):
    """(elements Z sorted, {Z: ε eV}, hidden widths, activation name) from the input.nn keywords."""
    cutoff = keys["cutoff_type"][0]
    try:
        elements = sorted(atomic_number(s) for s in keys["elements"][0])
        e_ref = {atomic_number(w[0]): float(w[1]) for w in keys.get("atom_energy", [])}
        hidden = tuple(int(h) for h in keys["global_nodes_short"][0])
        n_hidden = int(keys["global_hidden_layers_short"][0][0])
        inner = float(cutoff[1]) if len(cutoff) > 1 else 0.0
    except (ALWError, ValueError, IndexError) as err:
        raise ModelError(f"{where}: cannot read the elements, atom_energy, cutoff or network keywords ({err})") from None
    if cutoff[0] != "1" or inner != 0.0:
        raise ModelError(f"{where}: cutoff_type {' '.join(cutoff)}: alw_ref implements only the cosine "
                         f"cutoff without inner cutoff ('cutoff_type 1 0.0')")
    acts = keys["global_activation_short"][0]
    names = {v: k for k, v in N2P2_ACTIVATION.items()}
    if len(hidden) != n_hidden or len(acts) != len(hidden) + 1 or acts[-1] != "l" or len(set(acts[:-1])) != 1 \
            or acts[0] not in names:
        raise ModelError(f"{where}: network {' '.join(keys['global_nodes_short'][0])} with activations "
                         f"{' '.join(acts)}: alw_ref needs one hidden activation, 't' or 'p', and a linear 'l' output")
    return elements, e_ref, hidden, names[acts[0]]


def read_n2p2(folder) -> Model:
    """The n2p2 potential in ``folder`` (input.nn, scaling.data, weights.ZZZ.data) as a Model.

    ModelError naming the file and what alw_ref cannot express (module docstring)."""
    folder = Path(folder)
    where = str(folder)
    try:
        keys = parse_input_nn((folder / "input.nn").read_text(), f"{folder / 'input.nn'}")
    except OSError as err:
        raise ModelError(f"{where}: cannot read input.nn ({err})") from None
    elements, e_ref, hidden, activation = _read_network(keys, f"{where}/input.nn")
    rcs, by_center = [], {}
    for words in keys["symfunction_short"]:
        center, func = _parse_function(words, f"{where}/input.nn", rcs)
        by_center.setdefault(center, []).append(func)
    if len(set(rcs)) != 1:
        raise ModelError(f"{where}/input.nn: cutoff radii {sorted(set(rcs))} Å: alw_ref uses one R_c for all functions")
    spec = _spec_from_functions(elements, by_center, rcs[0], f"{where}/input.nn")
    model = Model.create(spec, hidden, activation)
    perm, D = n2p2_order(spec), spec.n_features
    table = _read_table(folder / "scaling.data", 6, where)
    if table.shape[0] != len(elements) * D:
        raise ModelError(f"{where}/scaling.data: {table.shape[0]} rows, expected {len(elements) * D} "
                         f"({len(elements)} elements × {D} functions)")
    mu, scale, s_min = _scaling(keys, table[:, 2:], f"{where}/input.nn")
    model.g_min_eg, model.g_max_eg = np.zeros((len(elements), D)), np.zeros((len(elements), D))
    n_par = n_params_per_element(D, hidden)
    for e, z in enumerate(elements):
        rows = slice(e * D, (e + 1) * D)
        for ours, theirs in ((model.g_mean_eg, mu), (model.g_scale_eg, scale), (model.g_min_eg, table[:, 2]),
                             (model.g_max_eg, table[:, 3])):
            ours[e, perm] = theirs[rows]
        model.e_ref_e[e] = e_ref.get(z, 0.0)
        w = _read_table(folder / f"weights.{z:03d}.data", 1, where)[:, 0]
        if w.size != n_par:
            raise ModelError(f"{where}/weights.{z:03d}.data: {w.size} values, expected {n_par} for "
                             f"{D} inputs and hidden layers {hidden}")
        model.theta[e * n_par:(e + 1) * n_par] = w
        (W1, b1), = model.layers(e)[:1]
        W1[perm] = W1.copy()
        b1 += s_min * W1.sum(axis=0)
    finite = all(np.all(np.isfinite(a)) for a in (model.theta, model.g_mean_eg, model.g_scale_eg, model.e_ref_e))
    if not (finite and np.all(model.g_scale_eg > 0)):
        raise ModelError(f"{where}: non-finite weights or scaling values, or a scaling of zero width "
                         f"(G_max = G_min, or G_sigma <= 0)")
    model.meta["source"] = f"n2p2 potential {folder}"
    return model


# ---------------------------------------------------------------- command line
def main(argv=None) -> int:
    interrupts_raise()
    p = argparse.ArgumentParser(prog="python -m alw_ref.export", description=__doc__.split("\n\n")[0],
                                usage="python -m alw_ref.export n2p2 MODEL.h5 OUTDIR [--range-from DATA.h5]\n"
                                      "       python -m alw_ref.export --from-n2p2 DIR MODEL.h5")
    p.add_argument("args", nargs="*", help="n2p2 MODEL.h5 OUTDIR, or (with --from-n2p2) MODEL.h5")
    p.add_argument("--from-n2p2", metavar="DIR", help="read the n2p2 potential in DIR, write an alw_ref model file")
    p.add_argument("--range-from", metavar="DATA.h5",
                   help="training dataset to take G_min/G_max from, for model files that do not record them")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    args = p.parse_args(argv)
    if args.from_n2p2 is not None and len(args.args) != 1:
        p.error("--from-n2p2 DIR takes one more argument: the model file to write")
    if args.from_n2p2 is None and (len(args.args) != 3 or args.args[0] != "n2p2"):
        p.error("expected: n2p2 MODEL.h5 OUTDIR (the only export format is n2p2)")
    try:
        if args.from_n2p2 is not None:
            out = Path(args.args[0])
            if out.exists() and not args.overwrite:
                raise ModelError(f"{out}: exists; pass --overwrite to replace it")
            model = read_n2p2(args.from_n2p2)
            save_model(model, out)
            print(f"wrote {out} ({len(model.elements)} elements, {model.spec.n_features} features)")
            return 0
        model = load_model(args.args[1])
        if args.range_from:
            range_from_dataset(model, args.range_from)
        written = export_n2p2(model, args.args[2], source=args.args[1], overwrite=args.overwrite)
        print(f"wrote {', '.join(str(w) for w in written)}; in LAMMPS: pair_style hdnnp {_num(model.spec.rc)} dir "
              f"{args.args[2]}; pair_coeff * * <element of each atom type>")
        return 0
    except (ALWError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
