"""Tests of alw_ref.metrics: the numbers of the paper's Tables 1-2 against errors computed by hand.

The expected values are written out here (square roots of hand-summed squares, not recomputed with
the code under test): energy errors per atom in meV/atom, every force component in meV/Å, the six
Voigt components of the structures *with* stress in GPa and MPa. Constants are written out on
purpose (1 eV/Å³ = 160.2176634 GPa) so that a wrong constant in alw_ref.units fails here.
"""

import math

import numpy as np
import pytest

from alw_ref import metrics
from alw_ref.acsf import ACSFSpec
from alw_ref.data import Dataset, Structure
from alw_ref.describe import compute_descriptors
from alw_ref.errors import DataError
from alw_ref.model import Model, Prediction, predict_structure

GPA_PER_EV_A3 = 160.2176634


def tiny_dataset():
    """A (1 Mo atom, stress, 'bulk'), B (2 atoms, no stress, 'surface'), C (4 atoms, stress, 'bulk')."""
    def cubic(a):
        return np.eye(3) * a

    A = Structure(numbers=[42], positions=[[0.0, 0.0, 0.0]], cell=cubic(3.2), pbc=[True] * 3, energy=-10.0,
                  forces=[[0.0, 0.0, 0.0]], stress=[0.01, 0.01, 0.01, 0.0, 0.0, 0.0], name="A",
                  config_type="bulk")
    B = Structure(numbers=[42, 42], positions=[[0.0, 0.0, 0.0], [2.3, 0.1, 0.0]], cell=cubic(8.0),
                  pbc=[True] * 3, energy=-20.0, forces=[[0.1, 0.0, 0.0], [-0.1, 0.0, 0.0]], name="B",
                  config_type="surface")
    C = Structure(numbers=[42] * 4, positions=[[0, 0, 0], [1.6, 1.6, 0], [1.6, 0, 1.6], [0, 1.6, 1.7]],
                  cell=cubic(3.2), pbc=[True] * 3, energy=-41.0, forces=np.zeros((4, 3)),
                  stress=[-0.02, 0.01, 0.0, 0.003, 0.0, 0.001], name="C", config_type="bulk")
    return Dataset.from_structures([A, B, C])


# Prediction − reference, chosen by hand: energies in eV (total), forces in eV/Å, stress in GPa.
DE_S = np.array([0.004, -0.006, 0.008])         # per atom: +4, −3, +2 meV/atom
DF = {(0, 0): 0.03, (5, 2): -0.04}               # (dataset atom, component): +30, −40 meV/Å
DS = {(0, 0): 0.5, (2, 3): -1.0}                 # (structure, Voigt component): +0.5, −1.0 GPa

# By hand. Energy over 3 structures: √((16 + 9 + 4)/3), (4 + 3 + 2)/3 meV/atom.
# Forces over 7 atoms × 3 = 21 components: √((900 + 1600)/21), 70/21 meV/Å.
# Stress over A and C (B has none): 12 components: √((0.25 + 1)/12), 1.5/12 GPa.
EXPECTED_ALL = {"energy_rmse": math.sqrt(29 / 3), "energy_mae": 3.0,
                "forces_rmse": math.sqrt(2500 / 21), "forces_mae": 70 / 21,
                "stress_rmse": math.sqrt(1.25 / 12), "stress_mae": 1.5 / 12,
                "stress_rmse_mpa": 1000 * math.sqrt(1.25 / 12), "stress_mae_mpa": 1000 * 1.5 / 12,
                "n_structures": 3, "n_atoms": 7, "n_stress": 2}
# 'bulk' = A and C: energy √((16 + 4)/2), 3; forces over 15 components; same stress components.
EXPECTED_BULK = {**EXPECTED_ALL, "energy_rmse": math.sqrt(10), "energy_mae": 3.0,
                 "forces_rmse": math.sqrt(2500 / 15), "forces_mae": 70 / 15,
                 "n_structures": 2, "n_atoms": 5, "n_stress": 2}
# 'surface' = B: energy −3 meV/atom; forces exact; no stress label.
EXPECTED_SURFACE = {"energy_rmse": 3.0, "energy_mae": 3.0, "forces_rmse": 0.0, "forces_mae": 0.0,
                    "n_structures": 1, "n_atoms": 2, "n_stress": 0}


def assert_metrics(found, expected):
    for key, value in expected.items():
        if isinstance(value, int):
            assert found[key] == value, key
        else:
            assert found[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


@pytest.fixture(scope="module")
def setup():
    data = tiny_dataset()
    spec = ACSFSpec.default((42,), 3.0)
    model = Model.create(spec, (4,), "tanh", seed=1)
    return data, spec, model, compute_descriptors(data, spec)


@pytest.fixture
def stub_predictions(monkeypatch):
    """metrics.predict_batch replaced by reference + the hand-chosen errors (the batch's own targets)."""
    def fake(model, batch, forces_and_stress=True):
        s = batch.structure_s
        forces = batch.forces_ic.copy()
        for (atom, c), d in DF.items():
            forces[batch.gidx_i == atom, c] += d
        stress = np.where(batch.has_stress_s[:, None], batch.stress_sv, 7.0)  # B: any finite value
        for (k, v), d in DS.items():
            stress[s == k, v] += d / GPA_PER_EV_A3
        return Prediction(batch.energy_s + DE_S[s], None, forces, stress), None

    monkeypatch.setattr(metrics, "predict_batch", fake)


@pytest.mark.parametrize("batch_size", [1, 2, 64])
@pytest.mark.parametrize("order", [[0, 1, 2], [2, 0, 1]])
def test_evaluate_matches_errors_computed_by_hand(setup, stub_predictions, batch_size, order):
    data, spec, model, desc = setup
    ev = metrics.evaluate(model, data, desc, order, spec.species_index(data.numbers), batch_size=batch_size)
    assert_metrics(ev.metrics, EXPECTED_ALL)


def test_metrics_by_config_type_by_hand(setup, stub_predictions):
    data, spec, model, desc = setup
    ev = metrics.evaluate(model, data, desc, [2, 1, 0], spec.species_index(data.numbers), batch_size=2)
    groups = metrics.metrics_by_group(ev, data.config_type)
    assert list(groups) == ["bulk", "surface"]
    assert_metrics(groups["bulk"], EXPECTED_BULK)
    assert_metrics(groups["surface"], EXPECTED_SURFACE)
    assert math.isnan(groups["surface"]["stress_rmse"]) and math.isnan(groups["surface"]["stress_mae_mpa"])
    table = metrics.format_table(groups, label="config_type")
    assert table.splitlines()[0].startswith("config_type") and "surface" in table
    assert "no structure of that config_type has a stress label" in table


def test_group_without_config_type_is_named(setup, stub_predictions):
    data, spec, model, desc = setup
    ev = metrics.evaluate(model, data, desc, [0, 1], spec.species_index(data.numbers))
    groups = metrics.metrics_by_group(ev, np.array(["", "x", "y"]))
    assert list(groups) == [metrics.NO_GROUP, "x"]
    assert groups[metrics.NO_GROUP]["energy_rmse"] == pytest.approx(4.0, rel=1e-9)


def test_evaluate_of_a_real_model_against_per_structure_predictions(setup):
    """No stub: metrics.evaluate (batched, precomputed descriptors) against the model's one-structure
    path (model.predict_structure), the errors summed here with plain Python loops."""
    data, spec, model, desc = setup
    ev = metrics.evaluate(model, data, desc, [0, 1, 2], spec.species_index(data.numbers), batch_size=2)
    sq_e = ab_e = sq_f = ab_f = sq_s = ab_s = 0.0
    n_f = n_s = 0
    for s in data:
        pred = predict_structure(model, s.numbers, s.positions, s.cell, s.pbc)
        e = (float(pred.energy_s[0]) - s.energy) / s.n_atoms * 1000.0
        sq_e, ab_e = sq_e + e * e, ab_e + abs(e)
        for f in ((pred.forces_ic - s.forces) * 1000.0).ravel():
            sq_f, ab_f, n_f = sq_f + f * f, ab_f + abs(f), n_f + 1
        if s.stress is not None and np.isfinite(s.stress).all():
            for x in ((pred.stress_sv[0] - s.stress) * GPA_PER_EV_A3):
                sq_s, ab_s, n_s = sq_s + x * x, ab_s + abs(x), n_s + 1
    expected = {"energy_rmse": math.sqrt(sq_e / 3), "energy_mae": ab_e / 3,
                "forces_rmse": math.sqrt(sq_f / n_f), "forces_mae": ab_f / n_f,
                "stress_rmse": math.sqrt(sq_s / n_s), "stress_mae": ab_s / n_s,
                "stress_rmse_mpa": 1000 * math.sqrt(sq_s / n_s), "n_atoms": 7, "n_stress": 2}
    assert n_f == 21 and n_s == 12
    for key, value in expected.items():
        assert ev.metrics[key] == pytest.approx(value, rel=1e-8), key


def test_empty_selection_is_an_error(setup):
    data, spec, model, desc = setup
    with pytest.raises(DataError, match="no structures to evaluate: the selection is empty"):
        metrics.evaluate(model, data, desc, [], spec.species_index(data.numbers))
