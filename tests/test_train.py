"""End-to-end tests of training (alw_ref/train.py) and evaluation (alw_ref/evaluate.py) on small data."""

import json
import re

import numpy as np
import pytest

from alw_ref import evaluate as evaluate_cli
from alw_ref.acsf import ACSFSpec
from alw_ref import train as train_mod
from alw_ref.data import example_dataset_path, read_dataset, write_dataset
from alw_ref.errors import DataError, SpecError
from alw_ref.potential import load_model

#: Small and fast, with the paper's protocol (the defaults' larger network and schedule are not what is tested here).
SMALL = dict(train_mod.PAPER_PROTOCOL, spec=ACSFSpec.default((42,), 4.0).to_json(), hidden=(8, 8), batch_size=8,
             quiet=True)


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    """40 structures of the bundled mlearn Mo example (keeps CI fast)."""
    data = read_dataset(example_dataset_path())
    path = tmp_path_factory.mktemp("data") / "mo40.h5"
    write_dataset(data.subset(np.arange(0, 200, 5)), path)
    return path


def test_end_to_end_writes_every_file_and_loss_falls(small_dataset, tmp_path):
    out = tmp_path / "run"
    res = train_mod.train(small_dataset, out=out, epochs=6, cache_dir=str(tmp_path / "cache"),
                          weights=(1 / 3, 1 / 3, 1 / 3), **SMALL)          # the paper's initial weights
    for name in ("settings.json", "metrics.csv", "metrics.jsonl", "best.h5", "final.h5", "checkpoint.h5",
                 "test_metrics.json", "learning_curves.png", "weights.png", "parity.png"):
        assert (out / name).exists(), name
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 7))
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]
    assert rows[-1]["train_forces_rmse_meV_A"] < rows[0]["train_forces_rmse_meV_A"]
    assert rows[0]["loss_form"] == "rmse" and rows[0]["loss_units"] == "eV/atom, eV/Å, GPa"
    # SoftAdapt (default): first epoch uses the initial weights, later ones sum to 1 and move
    assert rows[0]["w_energy"] == pytest.approx(1 / 3) and rows[0]["w_stress"] == pytest.approx(1 / 3)
    for r in rows:
        assert r["w_energy"] + r["w_forces"] + r["w_stress"] == pytest.approx(1.0, abs=1e-12)
    assert any(abs(r["w_forces"] - 1 / 3) > 1e-6 for r in rows[1:])
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert "train_energy_rmse_meV_atom" in header and "val_stress_rmse_GPa" in header
    test = json.loads((out / "test_metrics.json").read_text())
    assert test["units"]["forces"] == "meV/Å" and test["test"]["n_structures"] == 4
    assert load_model(out / "best.h5").spec.rc == 4.0
    assert res.best_epoch == min(rows, key=lambda r: r["val_loss"])["epoch"]


def test_end_of_training_errors_per_config_type(small_dataset, tmp_path, capsys):
    """test_metrics.json's test_by_config_type and the printed table are the test split's structures grouped by
    config_type, each group's energy and force RMSE recomputed here from best.h5's predictions (meV/atom, meV/Å)."""
    from trainkit import split_by_hand

    from alw_ref.potential import Potential

    out = tmp_path / "run"
    train_mod.train(small_dataset, out=out, epochs=2, **{**SMALL, "quiet": False})
    printed = capsys.readouterr().out
    groups = json.loads((out / "test_metrics.json").read_text())["test_by_config_type"]
    data = read_dataset(small_dataset)
    test_idx = split_by_hand(len(data), SMALL["split"], train_mod.DEFAULTS["seed"])[2]
    potential = Potential.load(out / "best.h5")
    expected = {}
    for s in test_idx:
        p = potential.predict(data[s])
        err = expected.setdefault(str(data.config_type[s]), {"n": 0, "e": [], "f": []})
        err["n"] += 1
        err["e"].append((p["energy"] - data.energy[s]) / data.n_atoms[s] * 1000.0)
        err["f"].extend(((p["forces"] - data[s].forces) * 1000.0).ravel())
    assert sorted(groups) == sorted(expected) and len(expected) >= 2
    for name, err in expected.items():
        assert groups[name]["n_structures"] == err["n"]
        assert groups[name]["energy_rmse"] == pytest.approx(np.sqrt(np.mean(np.square(err["e"]))), rel=1e-9)
        assert groups[name]["forces_rmse"] == pytest.approx(np.sqrt(np.mean(np.square(err["f"]))), rel=1e-9)
        assert re.search(rf"^{re.escape(name)}\s+{err['n']}\s", printed, re.MULTILINE), name
    assert "by config_type" in printed


@pytest.mark.parametrize("weighting", ["fixed", "linear", "dwa", "uncertainty"])
def test_other_weightings_run(small_dataset, tmp_path, weighting):
    extra = {"limit_weights": (0.1, 0.8, 0.1)} if weighting == "linear" else {}
    res = train_mod.train(small_dataset, out=tmp_path / weighting, epochs=3, weighting=weighting,
                          weights=(0.5, 0.3, 0.2), cache_dir="", plots=False, **SMALL, **extra)
    assert len(res.rows) == 3
    if weighting == "fixed":
        assert all(r["w_forces"] == pytest.approx(0.3) for r in res.rows)


def test_resume_is_bit_for_bit(small_dataset, tmp_path):
    kw = dict(cache_dir="", plots=False, **SMALL)
    full = train_mod.train(small_dataset, out=tmp_path / "a", epochs=4, **kw)
    train_mod.train(small_dataset, out=tmp_path / "b", epochs=2, **kw)
    resumed = train_mod.train(small_dataset, out=tmp_path / "b", epochs=4, resume=True, **kw)
    ca, cb = (load_model(tmp_path / d / "best.h5") for d in "ab")
    np.testing.assert_array_equal(ca.theta, cb.theta)
    strip = [{k: v for k, v in r.items() if k != "time_s"} for r in full.rows]
    assert strip == [{k: v for k, v in r.items() if k != "time_s"} for r in resumed.rows]
    with pytest.raises(ValueError, match=r"--resume with changed options \['batch_size'\]"):
        train_mod.train(small_dataset, out=tmp_path / "b", epochs=5, resume=True, **{**kw, "batch_size": 4})


def test_bad_inputs_fail_before_training(small_dataset, tmp_path):
    import h5py
    import shutil

    no_forces = tmp_path / "noforces.h5"
    shutil.copy(small_dataset, no_forces)
    with h5py.File(no_forces, "a") as f:
        del f["forces"]
    with pytest.raises(DataError, match=r"noforces.h5: field 'forces': dataset missing from the file"):
        train_mod.train(no_forces, out=tmp_path / "f", epochs=1, **SMALL)
    data = read_dataset(small_dataset)
    no_stress = tmp_path / "nostress.h5"
    import dataclasses
    write_dataset(dataclasses.replace(data, has_stress=np.zeros(len(data), bool),
                                      stress=np.full_like(data.stress, np.nan)), no_stress)
    with pytest.raises(DataError, match=r"no structure of the dataset has a stress label.*--weights 0.5,0.5,0"):
        train_mod.train(no_stress, out=tmp_path / "x", epochs=1, **SMALL)
    res = train_mod.train(no_stress, out=tmp_path / "y", epochs=1, weighting="fixed", weights=(0.5, 0.5, 0.0),
                          cache_dir="", plots=False, **SMALL)
    assert np.isnan(res.test_metrics["stress_rmse"])
    with pytest.raises(ValueError, match="--weighting 'magic': choose one of"):
        train_mod.train(small_dataset, out=tmp_path / "z", weighting="magic", **SMALL)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"elements": [52], "rc": 4.0, "radial": [[0.0, 0.0]]}))
    with pytest.raises(SpecError, match=r"Mo \(Z=42\)"):
        train_mod.train(small_dataset, out=tmp_path / "w", **{**SMALL, "spec": str(spec)})
    assert train_mod.main([str(small_dataset), "--out", str(tmp_path / "v"), "--weighting", "fixed",
                           "--weights", "1,0,0", "--quiet", "--epochs", "0", "--lr", "-1"]) == 1


def test_non_finite_loss_stops_with_advice(small_dataset, tmp_path, capsys, monkeypatch):
    """A NaN loss in epoch 2 stops training with advice; epoch 1's checkpoint and best model survive."""
    import dataclasses

    from alw_ref import trainloop

    real = trainloop.loss_and_gradient
    calls = {"n": 0}
    n_batches_epoch1 = 4  # 28 training structures / batch size 8

    def poisoned(model, batch, weights, form, gradient=True):
        res = real(model, batch, weights, form, gradient)
        if gradient:
            calls["n"] += 1
            if calls["n"] == n_batches_epoch1 + 2:
                return dataclasses.replace(res, total=float("nan"))
        return res

    monkeypatch.setattr(trainloop, "loss_and_gradient", poisoned)
    code = train_mod.main([str(small_dataset), "--out", str(tmp_path / "nan"), "--epochs", "3", "--hidden", "8",
                           "--rc", "4", "--batch-size", "8", "--cache-dir", "", "--quiet", "--no-plots",
                           "--protocol", "paper", "--checkpoint-every", "0"])
    err = capsys.readouterr().err
    assert code == 1
    assert "epoch 2, batch 2: the loss or its gradient is not finite" in err and "lower learning rate" in err
    assert "--resume --lr 0.0001" in err
    import h5py
    with h5py.File(tmp_path / "nan" / "checkpoint.h5") as f:
        assert f.attrs["epoch"] == 1
    assert np.all(np.isfinite(load_model(tmp_path / "nan" / "best.h5").theta))


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        train_mod.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--weighting", "--weights", "--beta", "--softadapt-variant", "--loss", "--hidden", "--activation",
                 "--rc", "--spec", "--epochs", "--batch-size", "--lr", "--seed", "--split", "--out", "--resume",
                 "--patience", "--cache-dir", "--threads", "--limit-weights", "--dwa-temperature"):
        assert flag in text
    assert "default: softadapt" in text and "default: 0.002" in text
    assert "(default: None)" not in text and "default: True" not in text and "0.3333333" not in text


@pytest.mark.parametrize("command", ["train", "evaluate", "convert", "describe", "oracle", "export"])
def test_help_names_each_default_once(command, capsys):
    """Reproducer: train's --rc help read "(default: 5.5) (default: 5.5)" (a shared help text that names
    its default, plus the parser's own)."""
    import importlib
    with pytest.raises(SystemExit):
        importlib.import_module(f"alw_ref.{command}").main(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines: compare with single spaces
    assert not re.search(r"\(default:[^()]*\)\s*\(default:", text), text
    assert "(default: None)" not in text


def test_evaluate_cli(small_dataset, tmp_path, capsys):
    train_mod.train(small_dataset, out=tmp_path / "r", epochs=1, cache_dir="", plots=False, **SMALL)
    assert evaluate_cli.main([str(tmp_path / "r" / "best.h5"), str(small_dataset), "--split", "test",
                              "--out", str(tmp_path / "e")]) == 0
    text = capsys.readouterr().out
    assert "meV/atom" in text and "test" in text
    assert (tmp_path / "e" / "parity.png").exists()
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["n_structures"] == 4


def test_memory_budget_recomputes_per_batch_with_identical_results(small_dataset, tmp_path, capsys):
    """Derivatives over the budget are recomputed per batch; the run is bit-for-bit the in-memory one."""
    kw = dict(epochs=2, cache_dir="", plots=False, spec=SMALL["spec"], hidden=(8, 8), batch_size=8)
    stored = train_mod.train(small_dataset, out=tmp_path / "mem", quiet=True, **kw)
    streamed = train_mod.train(small_dataset, out=tmp_path / "stream", memory_budget=1e-4, **kw)
    assert "recomputed per batch" in capsys.readouterr().out
    # the same numbers up to summation order: the fused kernel's compact block copy is built per batch when
    # streaming and per dataset when stored (issue 15), which reorders sums of equal terms (measured 1 ulp)
    np.testing.assert_allclose(streamed.model.theta, stored.model.theta, rtol=0, atol=1e-13)
    for key, value in stored.test_metrics.items():
        assert streamed.test_metrics[key] == pytest.approx(value, rel=1e-11, abs=1e-12), key
    with pytest.raises(ValueError, match="--memory-budget 0.0: a number > 0"):
        train_mod.train(small_dataset, out=tmp_path / "bad", memory_budget=0.0, **kw)


def test_singular_descriptors_are_named_before_training(tmp_path, capsys):
    """A near-perfect bcc cell with the paper's ζ = 0.08 preset: the trainer warns and names it."""
    from alw_ref.acsf import ACSFSpec
    from alw_ref.data import Dataset, Structure

    a, rng = 3.16, np.random.default_rng(1)
    grid = np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    pos = np.concatenate([grid, grid + 0.5]) * a
    structures = [Structure(numbers=np.full(16, 42), positions=pos + rng.normal(0, s, pos.shape),
                            cell=np.eye(3) * 2 * a, pbc=np.array([True] * 3), energy=-10.0 * 16,
                            forces=rng.normal(0, 0.1, (16, 3)), stress=rng.normal(0, 0.01, 6), name=f"bcc{k}")
                  for k, s in enumerate([0.1] * 9 + [1e-7])]
    path = tmp_path / "bcc.h5"
    write_dataset(Dataset.from_structures(structures), path)
    spec = tmp_path / "spec.json"
    ACSFSpec.mote2_paper().to_json(spec)
    train_mod.train(path, out=tmp_path / "r", spec=str(spec), epochs=1, cache_dir="", plots=False, quiet=True,
                    hidden=(4,), batch_size=4)
    err = capsys.readouterr().err
    assert "1 structure(s) have |dG/dr| > 1000 1/Å, first structure 9 ('bcc9')" in err
