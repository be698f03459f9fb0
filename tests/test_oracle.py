"""Tests of the correctness oracle (alw_ref/oracle.py): frozen reference, round trip and --compare,
DScribe feature order (against DScribe itself), model file vs random model, θ map, layout docs, CLI."""

import importlib.util
import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from acsf_reference import reference_acsf
from alw_ref.acsf import ACSFSpec, compute_acsf
from alw_ref.data import Dataset, Structure, read_dataset
from alw_ref.describe import compute_descriptors
from alw_ref.loss import loss_and_gradient
from alw_ref.model import make_batch
from alw_ref.oracle import LAYOUT, build_parser, compare_files, comparison_passed, dscribe_order, main
from alw_ref.potential import read_model, save_model
from fd import fd_positions, fd_strain

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_oracle_reference", DATA / "make_oracle_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """The reference run recomputed now from the committed inputs."""
    out = tmp_path_factory.mktemp("oracle") / "fresh.h5"
    assert main(GEN.reference_argv(GEN.STRUCTURES, GEN.SPEC, out)) == 0
    return out


def _by_quantity(diffs):
    return {d.quantity: d for d in diffs}


# ---------------------------------------------------------------- frozen reference
def test_frozen_inputs_are_what_the_script_writes():
    ds = read_dataset(GEN.STRUCTURES)
    ref = Dataset.from_structures(GEN.reference_structures())
    for field in ("n_atoms", "numbers", "positions", "cell", "pbc", "energy", "forces", "has_stress"):
        np.testing.assert_array_equal(getattr(ds, field), getattr(ref, field))
    assert ACSFSpec.from_json(GEN.SPEC) == GEN.reference_spec()
    assert (DATA / "oracle_reference.h5").stat().st_size + GEN.STRUCTURES.stat().st_size < 300_000


def test_recomputed_reference_agrees_with_frozen_file(fresh):
    diffs = compare_files(GEN.REFERENCE, fresh, rtol=1e-12, atol=1e-14)
    failed = [d for d in diffs if d.status != "ok"]
    assert not failed, failed
    q = _by_quantity(diffs)
    # the file really holds every part of the layout, for all three structures
    for path in LAYOUT:
        name = path.replace("structures/<k>/", "structures/*/")
        assert name in q, f"{name} not written"
    assert q["structures/*/G"].n_values == 10 * 18
    assert q["loss/gradient"].n_values == 2 * (18 * 5 + 5 + 5 * 5 + 5 + 5 + 1)


def test_reference_physics_sanity():
    """Independent checks of the frozen numbers (not produced by comparing with themselves)."""
    with h5py.File(GEN.REFERENCE, "r") as f:
        for k in range(3):
            g = f[f"structures/{k}"]
            assert g["energies"][()].sum() == pytest.approx(g["energy"][()], rel=1e-13)
            np.testing.assert_allclose(g["forces"][()].sum(axis=0), 0.0, atol=1e-12)  # translation invariance
            d = g["nl_d"][()]
            np.testing.assert_allclose(np.linalg.norm(g["nl_r"][()], axis=1), d, rtol=1e-15)
            r = (g["positions"][()][g["nl_j"][()]] - g["positions"][()][g["nl_i"][()]]
                 + g["nl_shift"][()] @ g["cell"][()])
            np.testing.assert_allclose(r, g["nl_r"][()], atol=1e-13)
            assert d.max() < 4.0
        assert np.all(np.isnan(f["structures/1/stress"][()]))  # molecule: no volume, no stress
        assert np.all(np.isfinite(f["structures/0/stress"][()]))
        for ds_name in _all_datasets(f):
            assert "unit" in f[ds_name].attrs, f"{ds_name} has no unit attribute"
        w = {"energy": 1.0, "forces": 0.5, "stress": 0.25}
        parts = {c: f[f"loss/{c}"][()] for c in w}
        assert f["loss/total"][()] == pytest.approx(sum(w[c] * parts[c] for c in w), rel=1e-14)
        # whole-set RMSE of forces from the per-structure values (count-weighted pooling)
        n = np.array([f[f"structures/{k}/numbers"].shape[0] for k in range(3)])
        per = np.array([f[f"structures/{k}/loss_forces"][()] for k in range(3)])
        assert parts["forces"] == pytest.approx(np.sqrt((per ** 2 * 3 * n).sum() / (3 * n.sum())), rel=1e-13)


# ---------------------------------------------------------------- checks independent of the writer (issue 14)
#: Voigt order of the oracle's stress (docs/oracle_format.md), written out here, not imported: (a, b) of σ_ab.
VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def hand_energy(f, k):
    """E(positions, cell) of structure k of oracle file f from the documented layout alone: G of
    ``compute_acsf`` (checked against the slow reference below), x = (G − g_mean)/g_scale per element,
    θ element-major, per layer W (n_in × n_out, row-major) then b, tanh on hidden layers, linear output,
    E = Σ_i (e_ref[species_i] + NN(x_i)). Nothing of alw_ref's model, forces or oracle code is used."""
    spec = ACSFSpec.from_json(f.attrs["spec"])
    m = f["model"]
    assert m.attrs["activation"] == "tanh"
    sizes = [spec.n_features, *m.attrs["hidden"].tolist(), 1]
    theta, g_mean, g_scale, e_ref = (m[name][()] for name in ("theta", "g_mean", "g_scale", "e_ref"))
    n_el_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    g = f[f"structures/{k}"]
    numbers, pbc, species = g["numbers"][()], g["pbc"][()], g["species"][()]

    def energy(positions, cell):
        G = compute_acsf(spec, numbers, positions, cell, pbc, derivatives=False).G_ig
        E = 0.0
        for i, e in enumerate(species):
            a, pos = (G[i] - g_mean[e]) / g_scale[e], e * n_el_params
            for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                W = theta[pos:pos + n_in * n_out].reshape(n_in, n_out)
                b = theta[pos + n_in * n_out:pos + n_in * n_out + n_out]
                pos += n_in * n_out + n_out
                a = a @ W + b
                if layer < len(sizes) - 2:
                    a = np.tanh(a)
            E += e_ref[e] + a[0]
        return E
    return energy


@pytest.fixture(params=["frozen", "fresh"])
def oracle_file(request):
    """The frozen reference file and the one the writer produces now (a planted writer bug fails here, not
    only as a change)."""
    return GEN.REFERENCE if request.param == "frozen" else request.getfixturevalue("fresh")


def test_stored_energy_forces_stress_against_finite_differences_of_the_model(oracle_file):
    """Issue 14: stored E against the documented model evaluated by hand, stored F = −∂E/∂r and σ = (1/V) ∂E/∂ε
    (Voigt xx yy zz yz xz xy) against 4th-order central differences of that energy at the stored positions
    and strains (h = 1e-4 Å, 1e-5; error ≲ 1e-9 relative); tolerance 1e-7 of the largest |F| or |σ|."""
    with h5py.File(oracle_file, "r") as f:
        for k in range(int(f.attrs["n_structures"])):
            g = f[f"structures/{k}"]
            pos, cell = g["positions"][()], g["cell"][()]
            E = hand_energy(f, k)
            assert E(pos, cell) == pytest.approx(g["energy"][()], rel=1e-12, abs=1e-12)
            F_fd = -fd_positions(E, pos, cell)
            np.testing.assert_allclose(g["forces"][()], F_fd, rtol=0, atol=1e-7 * np.abs(F_fd).max())
            if not g["pbc"][()].any():
                assert np.all(np.isnan(g["stress"][()]))
                continue
            dE_deps = fd_strain(E, pos, cell)
            sigma_fd = np.array([dE_deps[a, b] for a, b in VOIGT]) / abs(np.linalg.det(cell))
            np.testing.assert_allclose(g["stress"][()], sigma_fd, rtol=0, atol=1e-7 * np.abs(sigma_fd).max())


def test_stored_forces_and_stress_signs_agree_with_ase(oracle_file):
    """Issue 14: the sign of the stored F (F = −∂E/∂r) and the sign (tension positive) and Voigt order of the
    stored σ against ASE's own numerical forces and stress (ase.calculators.fd.calculate_numerical_forces /
    calculate_numerical_stress, 2nd-order central differences, d = 1e-4 Å and ε = 1e-5: error ≲ 1e-8 of the
    largest value) of the same hand-evaluated energy; tolerance 1e-6 of the largest |F| or |σ|. Nothing of
    tests/fd.py is used, so a sign slip shared by that helper and the writer would show here."""
    ase = pytest.importorskip("ase")
    from ase.calculators.calculator import Calculator, all_changes
    from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

    with h5py.File(oracle_file, "r") as f:
        checked = 0
        for k in range(int(f.attrs["n_structures"])):
            g = f[f"structures/{k}"]
            E = hand_energy(f, k)

            class Hand(Calculator):
                implemented_properties = ["energy", "free_energy"]

                def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
                    super().calculate(atoms, properties, system_changes)
                    e = E(self.atoms.positions.copy(), self.atoms.cell.array.copy())
                    self.results.update(energy=e, free_energy=e)

            atoms = ase.Atoms(numbers=g["numbers"][()], positions=g["positions"][()], cell=g["cell"][()],
                              pbc=g["pbc"][()])
            atoms.calc = Hand()
            forces_ase = calculate_numerical_forces(atoms, eps=1e-4)
            np.testing.assert_allclose(g["forces"][()], forces_ase, rtol=0, atol=1e-6 * np.abs(forces_ase).max())
            if not g["pbc"][()].any():
                continue
            sigma_ase = calculate_numerical_stress(atoms, eps=1e-5, voigt=True)
            stored = g["stress"][()]
            np.testing.assert_allclose(stored, sigma_ase, rtol=0, atol=1e-6 * np.abs(sigma_ase).max())
            checked += 1
        assert checked == 2


def test_stored_descriptors_match_the_slow_reference(oracle_file):
    """Issue 14: stored G (native order) against tests/acsf_reference.py (pure Python, brute-force images)."""
    with h5py.File(oracle_file, "r") as f:
        spec = ACSFSpec.from_json(f.attrs["spec"])
        assert f.attrs["descriptor_order"] == "native"
        for k in range(int(f.attrs["n_structures"])):
            g = f[f"structures/{k}"]
            ref = reference_acsf(spec, g["numbers"][()].tolist(), g["positions"][()], g["cell"][()], g["pbc"][()])
            np.testing.assert_allclose(g["G"][()], ref, rtol=1e-12, atol=1e-14)


def _all_datasets(f):
    names = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return names


# ---------------------------------------------------------------- round trip and --compare
def test_compare_with_itself_passes(capsys):
    assert main(["--compare", str(GEN.REFERENCE), str(GEN.REFERENCE)]) == 0
    assert capsys.readouterr().out.strip().endswith("comparison PASSED")


def test_perturbed_number_fails_and_is_named(tmp_path, capsys):
    other = tmp_path / "other.h5"
    shutil.copy(GEN.REFERENCE, other)
    with h5py.File(other, "r+") as f:
        d = f["structures/2/dG_dr"]
        a = d[()]
        b, g, c = np.unravel_index(int(np.argmax(np.abs(a[:, 5:]))), a[:, 5:].shape)  # a large value
        g += 5
        a[b, g, c] *= 1 + 1e-6
        d[...] = a
        centre = int(np.searchsorted(f["structures/2/block_first"][()], b, side="right") - 1)
        j = int(f["structures/2/block_j"][b])
        label = f["feature_labels"].asstr()[g]
    assert main(["--compare", str(GEN.REFERENCE), str(other)]) == 1
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if "structures/*/dG_dr" in l)
    assert line.startswith("FAIL")
    assert f"structure 2, block {b} (centre atom {centre}, atom j {j}), feature {g} ({label}), cartesian {c}" in line
    assert sum(l.startswith("FAIL") for l in out.splitlines()) == 1  # only that quantity
    assert out.strip().endswith("(see above)")
    # a looser tolerance accepts it
    assert main(["--compare", str(GEN.REFERENCE), str(other), "--rtol", "1e-5"]) == 0


def test_compare_integers_nan_missing_and_attributes(tmp_path, capsys):
    other = tmp_path / "other.h5"
    shutil.copy(GEN.REFERENCE, other)
    with h5py.File(other, "r+") as f:
        a = f["structures/0/nl_j"][()]
        a[3] += 1
        f["structures/0/nl_j"][...] = a
        e = f["structures/0/energies"][()]
        e[1] = np.nan
        f["structures/0/energies"][...] = e
        del f["structures/1/dG_deps"]
        f.attrs["loss_form"] = "mse"
    q = _by_quantity(compare_files(GEN.REFERENCE, other))
    assert q["structures/*/nl_j"].status == "FAIL" and q["structures/*/nl_j"].n_bad == 1
    assert "structure 0, pair 3" in q["structures/*/nl_j"].where_abs
    assert q["structures/*/energies"].status == "FAIL" and "structure 0, atom 1" in q["structures/*/energies"].where_abs
    assert q["structures/*/dG_deps"].status == "missing"
    assert "structures/1/dG_deps" in q["structures/*/dG_deps"].where_abs
    assert q["@loss_form"].status == "FAIL"
    assert q["structures/*/G"].status == "ok"
    # NaN in both files at the same place is equal (the molecule's stress)
    assert q["structures/*/stress"].status == "ok"
    allowed = compare_files(GEN.REFERENCE, other, allow_missing=True)
    assert _by_quantity(allowed)["structures/*/dG_deps"].status == "missing (allowed)"
    assert not comparison_passed(allowed)  # the other failures remain
    assert main(["--compare", str(GEN.REFERENCE), str(tmp_path / "absent.h5")]) == 2
    capsys.readouterr()


def test_missing_alone_passes_only_when_allowed(tmp_path, capsys):
    other = tmp_path / "other.h5"
    shutil.copy(GEN.REFERENCE, other)
    with h5py.File(other, "r+") as f:
        del f["loss/gradient"]
        f.create_dataset("extra_quantity", data=np.zeros(2))
    assert main(["--compare", str(GEN.REFERENCE), str(other)]) == 1
    assert main(["--compare", str(GEN.REFERENCE), str(other), "--allow-missing"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^missing\s+loss/gradient", out, re.M) and re.search(r"^extra\s+extra_quantity", out, re.M)


def test_compare_refuses_an_empty_or_foreign_reference(tmp_path, capsys):
    """Issue 12 item 12: an empty or foreign reference gave "comparison PASSED" with 0 values compared."""
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.attrs.update({"format": "alw_ref.oracle", "format_version": 1, "n_structures": 0})
    foreign = GEN.STRUCTURES                                  # a dataset.h5, not an oracle file
    partial = tmp_path / "partial.h5"
    shutil.copy(GEN.REFERENCE, partial)
    with h5py.File(partial, "r+") as f:
        del f["structures/1/G"]
    cases = [((empty, empty), rf"{re.escape(str(empty))}: the reference holds no structures \(n_structures = "
                              r"np.int64\(0\)\): nothing to compare"),
             ((foreign, foreign), rf"{re.escape(str(foreign))}: the reference is not an alw_ref oracle file: "
                                  r"found format 'alw_ref.dataset' at the root"),
             ((GEN.REFERENCE, foreign), r"the file to compare is not an alw_ref oracle file"),
             ((partial, GEN.REFERENCE), r"the reference lacks structures/1/G of quantity structures/\*/G "
                                        r"\(asked for\)")]
    for (ref, other), message in cases:
        assert main(["--compare", str(ref), str(other)]) == 2
        err = capsys.readouterr().err
        assert re.search(message, err), err
        assert "PASSED" not in err
    # quantities asked for must be in the reference, and in the other file whatever --allow-missing says
    assert main(["--compare", str(empty), str(GEN.REFERENCE), "--quantities", "loss/gradient"]) == 2
    no_grad = tmp_path / "no_grad.h5"
    shutil.copy(GEN.REFERENCE, no_grad)
    with h5py.File(no_grad, "r+") as f:
        del f["loss/gradient"]
    assert main(["--compare", str(no_grad), str(GEN.REFERENCE), "--quantities", "loss/gradient"]) == 2
    assert "the reference lacks loss/gradient" in capsys.readouterr().err
    assert main(["--compare", str(GEN.REFERENCE), str(no_grad), "--quantities", "model", "--allow-missing"]) == 1
    assert re.search(r"^missing\s+loss/gradient", capsys.readouterr().out, re.M)
    with pytest.raises(SystemExit):
        main(["--compare", str(GEN.REFERENCE), str(no_grad), "--quantities", "structures/*/nonsense"])
    assert "--quantities: unknown quantity 'structures/*/nonsense'" in capsys.readouterr().err


def test_compare_only_the_quantities_asked_for(tmp_path, capsys):
    other = tmp_path / "other.h5"
    shutil.copy(GEN.REFERENCE, other)
    with h5py.File(other, "r+") as f:
        f["loss/total"][...] = f["loss/total"][()] * 2.0
    assert main(["--compare", str(GEN.REFERENCE), str(other)]) == 1
    assert main(["--compare", str(GEN.REFERENCE), str(other), "--quantities", "descriptors,structures/*/forces"]) == 0
    out = capsys.readouterr().out
    assert "loss/total" in out.split("comparison FAILED")[0] and "structures/*/forces" in out
    assert "loss/total" not in out.split("comparison FAILED")[1]


def test_compare_of_different_kinds_fails_without_a_traceback(tmp_path):
    """Numbers where the reference has strings (and the reverse, and a compound dtype) fail the quantity."""
    other = tmp_path / "other.h5"
    shutil.copy(GEN.REFERENCE, other)
    with h5py.File(other, "r+") as f:
        del f["feature_labels"], f["structures/0/G"], f["structures/1/G"]
        f.create_dataset("feature_labels", data=np.arange(18))
        f.create_dataset("structures/0/G", data=np.array(["a"] * 4, dtype=object), dtype=h5py.string_dtype())
        f.create_dataset("structures/1/G", data=np.zeros(3, dtype=[("a", "f8")]))
    for ref, oth in ((GEN.REFERENCE, other), (other, GEN.REFERENCE)):
        q = _by_quantity(compare_files(ref, oth))
        assert q["feature_labels"].status == "FAIL" and q["structures/*/G"].status == "FAIL"
        assert "strings (18,) vs numbers (18,)" in q["feature_labels"].where_abs or \
            "numbers (18,) vs strings (18,)" in q["feature_labels"].where_abs


def test_compare_parses_json_attributes(tmp_path):
    """Issue 12 item 12: ``spec`` and ``loss_weights`` were compared as JSON text, so another code had to copy
    our exact formatting. Now as parsed values: other formatting, key order, symbols for Z and 4 for 4.0 pass;
    a changed value still fails."""
    other = tmp_path / "other.h5"
    shutil.copy(GEN.REFERENCE, other)
    with h5py.File(GEN.REFERENCE, "r") as f:
        spec = json.loads(f.attrs["spec"])
    spec = {**spec, "elements": ["Te", "Mo"], "rc": 4}
    with h5py.File(other, "r+") as f:
        f.attrs["spec"] = json.dumps(dict(reversed(list(spec.items()))), separators=(",", ":"))
        f.attrs["loss_weights"] = '{"stress":0.25,  "forces": 0.5, "energy": 1}'
    assert comparison_passed(compare_files(GEN.REFERENCE, other, rtol=0.0, atol=0.0))
    for key, value in (("spec", json.dumps({**spec, "rc": 4.5})), ("loss_weights", '{"energy": 1, "forces": 0.5}'),
                       ("spec", "{not json")):
        with h5py.File(other, "r+") as f:
            before = f.attrs[key]
            f.attrs[key] = value
        q = _by_quantity(compare_files(GEN.REFERENCE, other))
        assert q[f"@{key}"].status == "FAIL", key
        with h5py.File(other, "r+") as f:
            f.attrs[key] = before


# ---------------------------------------------------------------- model file vs random model
def test_model_file_gives_the_same_file_as_the_random_model(tmp_path, fresh):
    """Bit for bit against the reference recomputed now (``fresh``): the frozen file may differ in the last
    bit after a change of summation order elsewhere (that is test_recomputed_reference_agrees_with_frozen_file's
    business, at 1e-12)."""
    model_path = tmp_path / "model.h5"
    with h5py.File(fresh, "r") as f:
        model = read_model(f["model"], "reference")
    save_model(model, model_path)
    out = tmp_path / "from_file.h5"
    # the spec comes from the model file; loss settings as in the reference run
    assert main([str(GEN.STRUCTURES), "-o", str(out), "--model", str(model_path), "--weights", "1.0,0.5,0.25"]) == 0
    assert comparison_passed(compare_files(fresh, out, rtol=0.0, atol=0.0))
    with h5py.File(out, "r") as f:
        assert f.attrs["model_source"] == f"file: {model_path}"
    # a different random seed gives a different model and loss gradient
    other = tmp_path / "seed1.h5"
    argv = GEN.reference_argv(GEN.STRUCTURES, GEN.SPEC, other)
    argv[argv.index("--random-model") + 1] = "1"
    assert main(argv) == 0
    q = _by_quantity(compare_files(GEN.REFERENCE, other))
    assert q["loss/gradient"].status == "FAIL" and q["structures/*/G"].status == "ok"


def test_model_with_other_spec_is_refused(tmp_path, capsys):
    with h5py.File(GEN.REFERENCE, "r") as f:
        model = read_model(f["model"], "reference")
    save_model(model, tmp_path / "m.h5")
    spec = ACSFSpec(("Te", "Mo"), 4.0, ((0.0, 0.0),))
    spec.to_json(tmp_path / "spec.json")
    code = main([str(GEN.STRUCTURES), "-o", str(tmp_path / "x.h5"), "--model", str(tmp_path / "m.h5"),
                 "--spec", str(tmp_path / "spec.json")])
    assert code == 2 and "spec differs" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_loss_gradient_matches_finite_differences_through_theta_map():
    """∂L/∂θ_p of the file against central differences of L, for parameters picked by their map entry."""
    ds = read_dataset(GEN.STRUCTURES)
    with h5py.File(GEN.REFERENCE, "r") as f:
        model = read_model(f["model"], "reference")
        grad = f["loss/gradient"][()]
        tmap = {k: f[f"theta_map/{k}"][()] for k in ("element", "layer", "kind", "row", "col")}
    desc = compute_descriptors(ds, model.spec)
    batch = make_batch(ds, desc, np.arange(len(ds)), model.spec.species_index(ds.numbers))
    w = {"energy": 1.0, "forces": 0.5, "stress": 0.25}
    h = 1e-6
    for element, layer, kind, row, col in ((1, 0, 0, 17, 3), (0, 1, 1, -1, 2), (1, 2, 0, 4, 0)):
        p = int(np.flatnonzero((tmap["element"] == element) & (tmap["layer"] == layer) & (tmap["kind"] == kind)
                               & (tmap["row"] == row) & (tmap["col"] == col))[0])
        W, b = model.layers(element)[layer]
        assert (W[row, col] if kind == 0 else b[col]) == model.theta[p]
        vals = []
        for step in (h, -h):
            m = _with_theta_copy(model)
            m.theta[p] += step
            vals.append(loss_and_gradient(m, batch, w, "rmse", gradient=False).total)
        assert grad[p] == pytest.approx((vals[0] - vals[1]) / (2 * h), rel=1e-6, abs=1e-8)


def test_per_structure_loss_gradient_matches_finite_differences():
    """structures/<k>/loss_gradient: ∂(that structure's loss_total)/∂θ_p against central differences."""
    ds = read_dataset(GEN.STRUCTURES)
    with h5py.File(GEN.REFERENCE, "r") as f:
        model = read_model(f["model"], "reference")
        grads = [f[f"structures/{k}/loss_gradient"][()] for k in range(len(ds))]
        totals = [f[f"structures/{k}/loss_total"][()] for k in range(len(ds))]
    desc = compute_descriptors(ds, model.spec)
    species = model.spec.species_index(ds.numbers)
    w = {"energy": 1.0, "forces": 0.5, "stress": 0.25}
    h = 1e-6
    rng = np.random.default_rng(1)
    for k in range(len(ds)):
        batch = make_batch(ds, desc, [k], species)
        assert loss_and_gradient(model, batch, w, "rmse", gradient=False).total == pytest.approx(totals[k], rel=1e-12)
        assert grads[k].shape == model.theta.shape and np.all(np.isfinite(grads[k]))
        for p in rng.choice(model.theta.size, 4, replace=False):
            vals = []
            for step in (h, -h):
                m = _with_theta_copy(model)
                m.theta[p] += step
                vals.append(loss_and_gradient(m, batch, w, "rmse", gradient=False).total)
            assert grads[k][p] == pytest.approx((vals[0] - vals[1]) / (2 * h), rel=1e-6, abs=1e-8)


def _with_theta_copy(model):
    from dataclasses import replace

    return replace(model, theta=model.theta.copy())


def test_theta_map_covers_every_parameter_once():
    with h5py.File(GEN.REFERENCE, "r") as f:
        tmap = {k: f[f"theta_map/{k}"][()] for k in ("element", "layer", "kind", "row", "col")}
    sizes = [18, 5, 5, 1]
    seen = set()
    for p in range(len(tmap["element"])):
        key = tuple(int(tmap[k][p]) for k in ("element", "layer", "kind", "row", "col"))
        e, layer, kind, row, col = key
        assert key not in seen
        seen.add(key)
        assert 0 <= col < sizes[layer + 1]
        assert (kind == 1 and row == -1) or (kind == 0 and 0 <= row < sizes[layer])
    assert len(seen) == 2 * sum(sizes[k] * sizes[k + 1] + sizes[k + 1] for k in range(3))


# ---------------------------------------------------------------- DScribe order
def _three_element_structures():
    rng = np.random.default_rng(7)
    cell = np.array([[4.3, 0.0, 0.0], [0.9, 4.0, 0.0], [-0.6, 0.4, 4.5]])
    frac = np.array([[0.1, 0.1, 0.1], [0.6, 0.2, 0.3], [0.3, 0.7, 0.2], [0.8, 0.8, 0.6], [0.2, 0.4, 0.8],
                     [0.6, 0.5, 0.9]]) + rng.uniform(-0.03, 0.03, (6, 3))
    bulk = Structure(np.array([1, 6, 8, 1, 8, 6]), frac @ cell, cell, np.ones(3, bool), energy=0.0,
                     forces=np.zeros((6, 3)))
    mol = Structure(np.array([8, 1, 1, 6]), np.array([[0.0, 0.0, 0.0], [0.96, 0.1, 0.0], [-0.3, 0.92, 0.05],
                                                      [0.2, -0.4, 1.3]]),
                    np.zeros((3, 3)), np.zeros(3, bool), energy=0.0, forces=np.zeros((4, 3)))
    return [bulk, mol]


SPEC_NO_G1 = ACSFSpec(("O", "H", "C"), 3.5, ((0.5, 0.0), (1.0, 1.5)),
                      angular=((0.01, 1.0, 1.0), (0.02, 2.0, -1.0)), angular_g5=((0.03, 1.0, -1.0),))
SPEC_G1 = ACSFSpec(("C", "O", "H"), 3.5, ((0.5, 0.0), (0.0, 0.0), (1.0, 1.5)),
                   angular=((0.01, 4.0, -1.0),), angular_g5=((0.03, 1.0, 1.0), (0.02, 2.0, -1.0)))


@pytest.mark.parametrize("spec", [SPEC_NO_G1, SPEC_G1], ids=["spec-without-G1", "spec-with-G1"])
def test_dscribe_order_is_a_permutation_plus_g1(spec):
    """Without DScribe: every written column is a native column (or G1 = Σ f_c, computed here)."""
    from alw_ref.oracle import compute_oracle

    ds = Dataset.from_structures(_three_element_structures())
    nat, dsc = compute_oracle(ds, spec), compute_oracle(ds, spec, order="dscribe")
    fo = dscribe_order(spec)
    idx = dsc["feature_native_index"]
    assert sorted(idx[idx >= 0].tolist()) == list(range(spec.n_features))
    assert (idx < 0).sum() == (0 if (0.0, 0.0) in spec.radial else 3)
    assert dsc["feature_labels"].tolist() == fo.labels
    for k in range(2):
        pre = f"structures/{k}/"
        for name, axis in (("G", 1), ("dG_dr", 1), ("dG_deps", 1)):
            np.testing.assert_array_equal(np.take(dsc[pre + name], np.flatnonzero(idx >= 0), axis=axis),
                                          np.take(nat[pre + name], idx[idx >= 0], axis=axis))
        # G1 of element Z (DScribe's first column of each element block, species sorted by Z)
        d, j = nat[pre + "nl_d"], nat[pre + "nl_j"]
        fc = 0.5 * (np.cos(np.pi * d / spec.rc) + 1)
        per_el = (1 + len([r for r in spec.radial if r != (0.0, 0.0)]))
        for rank, z in enumerate(sorted(spec.elements)):
            g1 = np.bincount(nat[pre + "nl_i"], weights=fc * (nat[pre + "numbers"][j] == z),
                             minlength=len(nat[pre + "numbers"]))
            np.testing.assert_allclose(dsc[pre + "G"][:, rank * per_el], g1, rtol=1e-13, atol=1e-15)
            assert fo.labels[rank * per_el].startswith("G1[")


@pytest.mark.parametrize("spec", [SPEC_NO_G1, SPEC_G1], ids=["spec-without-G1", "spec-with-G1"])
def test_dscribe_order_matches_dscribe(spec, tmp_path):
    pytest.importorskip("ase", reason="the DScribe comparison needs ASE (pip install alw_ref[ase])")
    pytest.importorskip("dscribe", reason="the DScribe comparison needs dscribe>=2.1 (pip install dscribe)")
    import json

    from ase import Atoms
    from dscribe.descriptors import ACSF

    structures = _three_element_structures()
    ds = Dataset.from_structures(structures)
    from alw_ref.data import write_dataset

    write_dataset(ds, tmp_path / "in.h5")
    spec.to_json(tmp_path / "spec.json")
    out = tmp_path / "ds.h5"
    assert main([str(tmp_path / "in.h5"), "--spec", str(tmp_path / "spec.json"), "-o", str(out),
                 "--order", "dscribe"]) == 0
    with h5py.File(out, "r") as f:
        kwargs = json.loads(f.attrs["dscribe_acsf"])
        for k, s in enumerate(structures):
            atoms = Atoms(s.numbers, positions=s.positions, cell=s.cell, pbc=s.pbc)
            acsf = ACSF(periodic=bool(s.pbc.any()), **kwargs)
            G = f[f"structures/{k}/G"][()]
            assert acsf.get_number_of_features() == G.shape[1]
            np.testing.assert_allclose(G, acsf.create(atoms), rtol=1e-12, atol=1e-13)
            # derivatives: DScribe's numerical ones (attach=True) against our analytic blocks
            dD, _ = acsf.derivatives(atoms, attach=True, method="numerical")  # (centre, atom, 3, D)
            dense = np.zeros_like(dD)
            first, bj, dG = f[f"structures/{k}/block_first"][()], f[f"structures/{k}/block_j"][()], \
                f[f"structures/{k}/dG_dr"][()]
            for i in range(len(s.numbers)):
                for b in range(first[i], first[i + 1]):
                    dense[i, bj[b]] = dG[b].T
            np.testing.assert_allclose(dense, dD, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- inputs, presets, docs, CLI
def test_extxyz_input_gives_the_reference(tmp_path):
    pytest.importorskip("ase", reason="reading extxyz needs ASE (pip install alw_ref[ase])")
    import ase.io
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for s in GEN.reference_structures():
        atoms = Atoms(s.numbers, positions=s.positions, cell=s.cell, pbc=s.pbc)
        results = {"energy": s.energy, "forces": s.forces}
        if s.stress is not None:
            results["stress"] = s.stress
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    path = tmp_path / "in.extxyz"
    ase.io.write(path, frames, format="extxyz")
    out = tmp_path / "xyz.h5"
    assert main(GEN.reference_argv(path, GEN.SPEC, out)) == 0
    diffs = compare_files(GEN.REFERENCE, out, rtol=1e-12, atol=1e-14)
    assert comparison_passed(diffs), [d for d in diffs if d.status != "ok"]


def test_preset_default_and_descriptor_only_output(tmp_path):
    out = tmp_path / "p.h5"
    assert main([str(GEN.STRUCTURES), "--preset", "default", "--rc", "3.5", "-o", str(out), "--loss", "mse"]) == 0
    with h5py.File(out, "r") as f:
        assert ACSFSpec.from_json(f.attrs["spec"]) == ACSFSpec.default((42, 52), 3.5)
        assert "model" not in f and "loss" not in f and "structures/0/energies" not in f
        assert f["structures/0/G"].shape == (4, ACSFSpec.default((42, 52), 3.5).n_features)
    assert main([str(GEN.STRUCTURES), "--preset", "default", "--rc", "-1", "-o", str(out)]) == 2


def test_docs_table_matches_layout():
    text = (ROOT / "docs" / "oracle_format.md").read_text()
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\| `([^`]+)` \| (\([^|]*\)) \| (\w+) \| ([^|]*) \| ([^|]*) \|$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3), m.group(4).strip(), m.group(5).strip())
    for path, (axes, dtype, unit, meaning) in LAYOUT.items():
        assert path in rows, f"{path} missing from docs/oracle_format.md"
        shape = "(" + ", ".join(axes) + ("," if len(axes) == 1 else "") + ")"
        assert rows[path] == (shape, dtype, unit or "—", meaning), path
    assert set(rows) == set(LAYOUT)


def test_cli_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for action in build_parser()._actions:
        for opt in action.option_strings:
            assert opt in text
        if action.option_strings and action.dest not in ("help",) and action.nargs != 0 and action.dest != "compare":
            assert "default" in (action.help or "").lower(), f"{action.option_strings} does not state its default"


def test_cli_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(GEN.STRUCTURES)])  # no --output
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main([str(GEN.STRUCTURES), "-o", "x.h5", "--model", "m.h5", "--random-model", "0"])
    capsys.readouterr()
