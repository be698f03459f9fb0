"""Tests of ``python -m alw_ref.evaluate`` (alw_ref/evaluate.py): a run folder's model, data and split,
per-config_type tables, committees, readable --help and clear errors.

The run folders here are written by hand (a model file and a settings.json), not by training, so that
these tests check evaluate's reading of them, and stay fast.
"""

import json
import os
import math

import numpy as np
import pytest

from alw_ref import evaluate as ev_cli
from alw_ref import metrics
from alw_ref.acsf import ACSFSpec
from alw_ref.data import example_dataset_path, read_dataset, split_indices, write_dataset
from alw_ref.describe import compute_descriptors
from alw_ref.model import Model, predict_structure
from alw_ref.potential import save_model

RC = 3.0


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """12 structures of the bundled Mo example (3 of each config_type), two small models, a run folder."""
    root = tmp_path_factory.mktemp("ev")
    full = read_dataset(example_dataset_path())
    pick = np.concatenate([np.flatnonzero(full.config_type == c)[:3]
                           for c in ("AIMD-NVT", "Elastic", "Surface", "Vacancy")])
    data = full.subset(pick)
    write_dataset(data, root / "data.h5")
    write_dataset(full.subset(pick[:5]), root / "other.h5")
    spec = ACSFSpec.default((42,), RC)
    desc = compute_descriptors(data, spec, derivatives=False)
    for seed in (1, 2):
        model = Model.create(spec, (4,), "tanh", seed=seed)
        model.g_mean_eg[0] = desc.G_ig.mean(axis=0)
        model.g_scale_eg[0] = np.maximum(desc.G_ig.std(axis=0), 1e-3)
        model.e_ref_e[0] = float(np.mean(data.energy / data.n_atoms))
        save_model(model, root / f"m{seed}.h5")
    run = root / "run"
    run.mkdir()
    (run / "best.h5").write_bytes((root / "m1.h5").read_bytes())
    settings = {"dataset": str(root / "data.h5"), "split": [0.5, 0.25, 0.25], "seed": 3, "cache_dir": ""}
    (run / "settings.json").write_text(json.dumps(settings))
    return root, data


def run_main(args, tmp_path):
    out = tmp_path / "e"
    code = ev_cli.main([str(a) for a in args] + ["--out", str(out), "--no-plots"])
    return code, out


def metrics_json(out):
    return json.loads((out / "metrics.json").read_text())


def direct(files, indices, model="m1.h5"):
    """metrics.evaluate of the same model on the given structures (the reference of the CLI)."""
    from alw_ref.potential import load_model

    root, data = files
    m = load_model(root / model)
    return metrics.evaluate(m, data, None, indices, m.spec.species_index(data.numbers))


def test_run_folder_gives_model_data_and_split(files, tmp_path, capsys):
    root, data = files
    code, out = run_main([root / "run"], tmp_path)
    assert code == 0
    report = metrics_json(out)
    test = split_indices(12, (0.5, 0.25, 0.25), 3)[2]  # the run's split: fractions and seed from settings
    assert report["part"] == "test" and report["seed"] == 3 and report["split"] == [0.5, 0.25, 0.25]
    assert report["n_structures"] == len(test) == 3
    assert report["model"] == [str(root / "run" / "best.h5")] and report["dataset"] == str(root / "data.h5")
    assert report["energy_rmse"] == pytest.approx(direct(files, test).metrics["energy_rmse"], rel=1e-12)
    assert split_indices(12, (0.5, 0.25, 0.25), 0)[2].tolist() != test.tolist()  # the seed matters here
    # options on the command line override the run's
    code, out = run_main([root / "run", "--seed", "0", "--part", "train"], tmp_path)
    train0 = split_indices(12, (0.5, 0.25, 0.25), 0)[0]
    assert code == 0 and metrics_json(out)["energy_rmse"] == pytest.approx(
        direct(files, train0).metrics["energy_rmse"], rel=1e-12)


def test_run_with_test_file_evaluates_that_file(files, tmp_path):
    root, data = files
    run = tmp_path / "run_tf"
    run.mkdir()
    (run / "best.h5").write_bytes((root / "m1.h5").read_bytes())
    (run / "settings.json").write_text(json.dumps({"dataset": str(root / "data.h5"), "split": [0.8, 0.2, 0.0],
                                                   "seed": 0, "cache_dir": "", "test_file": str(root / "other.h5")}))
    code, out = run_main([run], tmp_path)
    assert code == 0
    report = metrics_json(out)
    assert report["dataset"] == str(root / "other.h5") and report["n_structures"] == 5
    assert report["energy_rmse"] == pytest.approx(direct(files, np.arange(5)).metrics["energy_rmse"], rel=1e-12)


def test_per_config_type_table_and_json(files, tmp_path, capsys):
    root, data = files
    code, out = run_main([root / "m1.h5", root / "data.h5"], tmp_path)
    assert code == 0
    text = capsys.readouterr().out
    assert "config_type" in text and "AIMD-NVT" in text and "Surface" in text
    groups = metrics_json(out)["by_config_type"]
    assert sorted(groups) == ["AIMD-NVT", "Elastic", "Surface", "Vacancy"]
    assert all(g["n_structures"] == 3 for g in groups.values())
    surface = np.flatnonzero(data.config_type == "Surface")
    assert groups["Surface"]["forces_rmse"] == pytest.approx(direct(files, surface).metrics["forces_rmse"],
                                                             rel=1e-12)


def test_nan_is_written_as_null(files, tmp_path):
    root, data = files
    nostress = read_dataset(root / "data.h5")
    nostress.has_stress[:] = False
    nostress.stress[:] = np.nan
    write_dataset(nostress, tmp_path / "nostress.h5")
    code, out = run_main([root / "m1.h5", tmp_path / "nostress.h5"], tmp_path)
    assert code == 0
    text = (out / "metrics.json").read_text()
    assert "NaN" not in text and metrics_json(out)["stress_rmse"] is None


def test_old_command_line_still_works(files, tmp_path):
    root, data = files
    code, out = run_main([root / "m1.h5", root / "data.h5", "--split", "test"], tmp_path)
    assert code == 0 and metrics_json(out)["n_structures"] == len(split_indices(12, (0.7, 0.2, 0.1), 0)[2])


def test_empty_selection_is_an_error_not_nan(files, tmp_path, capsys):
    root, data = files
    code, out = run_main([root / "m1.h5", root / "data.h5", "--part", "test", "--split", "1,0,0"], tmp_path)
    assert code == 1
    assert "the test part of 12 structures with --split 1,0,0 and --seed 0 is empty" in capsys.readouterr().err
    assert not (out / "metrics.json").exists()


def test_bad_split_names_the_option(files, tmp_path, capsys):
    root, _ = files
    with pytest.raises(SystemExit):
        ev_cli.main([str(root / "m1.h5"), "--split", "abc"])
    assert "--split: expected three comma-separated fractions" in capsys.readouterr().err


@pytest.mark.parametrize("seed", ["-1", str(2**63)])
def test_bad_seed_names_the_option(files, seed, capsys):
    """Issue 12 item 13: --seed -1 gave "error: expected non-negative integer" (NumPy's words, no option) when
    the split was made; now argparse refuses it before any work, as train refuses seeds outside [0, 2⁶³)."""
    root, _ = files
    with pytest.raises(SystemExit) as exit_:
        ev_cli.main([str(root / "m1.h5"), str(root / "data.h5"), "--part", "test", "--seed", seed])
    assert exit_.value.code == 2
    assert f"argument --seed: expected an integer in [0, 2**63) as in train, got '{seed}'" in capsys.readouterr().err


def test_not_a_run_folder(tmp_path, capsys):
    assert ev_cli.main([str(tmp_path)]) == 1
    assert "not a training run folder (no settings.json)" in capsys.readouterr().err


def test_help_is_readable(capsys):
    with pytest.raises(SystemExit):
        ev_cli.main(["--help"])
    text = capsys.readouterr().out
    assert "(default: None)" not in text and "(default: True)" not in text and "333333" not in text
    for flag in ("--split", "--seed", "--cache-dir", "--part", "--models", "RUN_DIR"):
        assert flag in text


def test_committee_spread_per_structure(files, tmp_path, capsys):
    """--models: the table is the committee mean's; the spread per structure is recomputed here from
    each model's one-structure predictions (std over models, ddof 0; force: max_i √(mean_m |F_mi − F̄_i|²))."""
    root, data = files
    code, out = run_main([root / "data.h5", "--models", root / "m1.h5", root / "m2.h5"], tmp_path)
    assert code == 0
    assert "largest committee spread" in capsys.readouterr().out
    rows = metrics_json(out)["committee"]["structures"]
    assert (out / "committee.csv").read_text().startswith("index,name,config_type,n_atoms,energy_std_meV_atom")
    from alw_ref.potential import load_model

    models = [load_model(root / "m1.h5"), load_model(root / "m2.h5")]
    sq_e = 0.0
    for k, s in enumerate(data):
        p = [predict_structure(m, s.numbers, s.positions, s.cell, s.pbc) for m in models]
        e = [float(q.energy_s[0]) / s.n_atoms * 1000 for q in p]
        assert rows[k]["energy_std_meV_atom"] == pytest.approx(abs(e[0] - e[1]) / 2, rel=1e-9, abs=1e-12)
        half = (p[0].forces_ic - p[1].forces_ic) / 2  # two models: each deviates by ± half the difference
        assert rows[k]["forces_max_devi_meV_A"] == pytest.approx(
            1000 * np.sqrt((half ** 2).sum(axis=1)).max(), rel=1e-9)
        gpa = abs(p[0].stress_sv[0] - p[1].stress_sv[0]) / 2 * 160.2176634
        assert rows[k]["stress_max_std_GPa"] == pytest.approx(gpa.max(), rel=1e-9)
        sq_e += ((e[0] + e[1]) / 2 - s.energy / s.n_atoms * 1000) ** 2
    assert metrics_json(out)["energy_rmse"] == pytest.approx(math.sqrt(sq_e / len(data)), rel=1e-9)


def test_plot_title_names_model_and_data(files, tmp_path, monkeypatch):
    import alw_ref.plots

    root, _ = files
    seen = {}
    monkeypatch.setattr(alw_ref.plots, "plot_parity", lambda ev, path, title="": seen.update(title=title))
    assert ev_cli.main([str(root / "run"), "--out", str(tmp_path / "p")]) == 0
    assert "best.h5" in seen["title"] and "data.h5" in seen["title"] and "test" in seen["title"]


def test_committee_takes_the_dataset_after_the_models(files, tmp_path, capsys):
    """`--models m1.h5 m2.h5 data.h5` (argparse hands data.h5 to --models) evaluates data.h5 with the two
    models, exactly as `data.h5 --models m1.h5 m2.h5` does (reproducer: it was read as a third model)."""
    root, data = files
    first, out1 = run_main([root / "data.h5", "--models", root / "m1.h5", root / "m2.h5"], tmp_path / "a")
    last, out2 = run_main(["--models", root / "m1.h5", root / "m2.h5", root / "data.h5"], tmp_path / "b")
    assert first == 0 and last == 0
    assert metrics_json(out1)["committee"] == metrics_json(out2)["committee"]


def test_reader_that_goes_away_loses_nothing(files, tmp_path):
    """``evaluate … | head -1``: before, a BrokenPipeError traceback (exit 1, about 1 run in 2) and no
    metrics.json when the reader had gone before the table was printed. Here the reader's end is closed
    before the command starts, so every write to stdout fails: exit 0, files written, stderr empty."""
    import subprocess
    import sys

    from trainkit import subprocess_env

    root, _ = files
    out = tmp_path / "e"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "alw_ref.evaluate", str(root / "m1.h5"), str(root / "data.h5"),
                               "--out", str(out), "--no-plots"], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, env=subprocess_env(), timeout=300)
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert metrics_json(out)["n_structures"] == 12
