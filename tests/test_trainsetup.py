"""What the trainer settles before its first epoch (alw_ref/trainsetup.py, train.parse): loss scales by hand,
the split with --valid-file/--test-file, every bad option refused before any data is read and without
touching --out, and --config / --protocol / --init-model.

Hand computations: reference energies by least squares E_s ≈ n_s ε (one element: ε = Σ n E / Σ n²), the
scales s_E = RMS of (E − n ε)/n, s_F = RMS of the force components, s_S = RMS of the Voigt stress in GPa
(1 eV/Å³ = 1.602176634e-19 J / 1e-30 m³ = 160.2176634 GPa), all over the hand-split training structures; relative tolerance 1e-12.
"""

import json
import os

import h5py
import numpy as np
import pytest
from trainkit import (
    GPA_PER_EV_A3,
    SMALL,
    SMALL_ARGS,
    file_bytes,
    rows_of,
    split_by_hand,
    strip_time,
    write_small,
)

from alw_ref import train as train_mod
from alw_ref.acsf import ACSFSpec
from alw_ref.data import read_dataset
from alw_ref.potential import load_model
from alw_ref.trainsetup import label_scales, split_for_files


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    return write_small(tmp_path_factory.mktemp("data") / "mo40.h5")


def hand_scales(data, idx):
    n = data.n_atoms[idx].astype(float)
    e = data.energy[idx]
    eps = np.dot(n, e) / np.dot(n, n)                         # least squares E ≈ n ε, one element
    s_e = np.sqrt(np.mean(((e - n * eps) / n) ** 2))
    f = np.concatenate([data.forces[data.atom_offset[s]:data.atom_offset[s + 1]].ravel() for s in idx])
    sig = np.concatenate([data.stress[s] * GPA_PER_EV_A3 for s in idx if data.has_stress[s]])
    return np.array([s_e, np.sqrt(np.mean(f ** 2)), np.sqrt(np.mean(sig ** 2))]), eps


def test_label_scales_by_hand(data_path, tmp_path):
    data = read_dataset(data_path)
    tr, _, _ = split_by_hand(40, (0.7, 0.2, 0.1), 0)
    want, eps = hand_scales(data, tr)
    assert want[2] / want[0] > 10                             # GPa and eV/atom: the scales differ by far
    train_mod.train(data_path, out=tmp_path / "r", epochs=0, **{**SMALL, "loss_scale": "labels"})
    model = load_model(tmp_path / "r" / "best.h5")
    assert model.e_ref_e[0] == pytest.approx(eps, rel=1e-12)
    np.testing.assert_allclose(model.meta["loss_scales"], want, rtol=1e-12)
    species = np.zeros(len(data.numbers), np.int64)
    np.testing.assert_allclose(label_scales(data, tr, np.array([eps]), species), want, rtol=1e-12)
    train_mod.train(data_path, out=tmp_path / "raw", epochs=0, **{**SMALL, "loss_scale": "none"})
    assert load_model(tmp_path / "raw" / "best.h5").meta["loss_scales"] == [1.0, 1.0, 1.0]


def test_split_for_files_rule():
    base = {"seed": 0, "valid_file": None, "test_file": None}
    tr, va, te = split_for_files([40], {**base, "split": (0.7, 0.2, 0.1)})
    assert (len(tr), len(va), len(te)) == (28, 8, 4)
    # a test file: the dataset keeps train and validation in proportion 0.9 : 0.1; the test rows follow it
    tr, va, te = split_for_files([40, 7], {**base, "split": (0.9, 0.1, 0.0), "test_file": "t.h5"})
    assert (len(tr), len(va)) == (36, 4) and te.tolist() == list(range(40, 47))
    # a validation file with 0.7,0.2,0.1: train : test = 0.7 : 0.1 of the dataset → 35 : 5
    tr, va, te = split_for_files([40, 6], {**base, "split": (0.7, 0.2, 0.1), "valid_file": "v.h5"})
    assert (len(tr), len(te)) == (35, 5) and va.tolist() == list(range(40, 46))
    # both files: the whole dataset trains; validation rows, then test rows
    tr, va, te = split_for_files([40, 6, 7], {**base, "split": (0.7, 0.2, 0.1), "valid_file": "v",
                                              "test_file": "t"})
    assert tr.tolist() == list(range(40)) and va.tolist() == list(range(40, 46)) and te.tolist() == list(range(46, 53))
    assert not set(tr) & set(va) and not set(tr) & set(te)


def test_valid_and_test_files_are_what_is_validated_and_tested(data_path, tmp_path):
    from trainkit import col, model_parts

    valid = write_small(tmp_path / "valid.h5", n=6, start=1, step=7)
    test = write_small(tmp_path / "test.h5", n=5, start=3, step=11)
    train_mod.train(data_path, out=tmp_path / "r", epochs=2, valid_file=str(valid), test_file=str(test), **SMALL)
    import json

    tm = json.loads((tmp_path / "r" / "test_metrics.json").read_text())
    assert (tm["train"]["n_structures"], tm["val"]["n_structures"], tm["test"]["n_structures"]) == (40, 6, 5)
    rows = rows_of(tmp_path / "r")
    np.testing.assert_allclose(model_parts(tmp_path / "r" / "final.h5", valid, range(6)), col(rows[-1:], "val_L_")[0],
                               rtol=1e-9)
    assert tm["test"]["energy_rmse"] == pytest.approx(
        1000 * model_parts(tmp_path / "r" / "best.h5", test, range(5))[0], rel=1e-9)
    # only a test file: 90/10 of the dataset
    train_mod.train(data_path, out=tmp_path / "t", epochs=0, test_file=str(test), **{**SMALL, "split": None})
    tm = json.loads((tmp_path / "t" / "test_metrics.json").read_text())
    assert (tm["train"]["n_structures"], tm["val"]["n_structures"], tm["test"]["n_structures"]) == (36, 4, 5)


BAD_OPTIONS = [
    (["--lr", "0"], "--lr"), (["--hidden", "0"], "--hidden"), (["--beta", "nan"], "--beta"),
    (["--lr-decay", "2"], "--lr-decay"), (["--lr", "0.01", "--min-lr", "0.1"], "--min-lr"),
    (["--average-epochs", "0"], "--average-epochs"), (["--weighting", "linear"], "--limit-weights"),
    (["--memory-budget", "0"], "--memory-budget"), (["--seed", "-1"], "--seed"), (["--patience", "0"], "--patience"),
    (["--threads", str((os.cpu_count() or 1) + 1)], "--threads"), (["--split", "abc"], "--split"),
    (["--split", "0.5,0.2,0.2"], "--split"), (["--weights", "0,0,0"], "--weights"), (["--epochs", "-1"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"), (["--ema-decay", "1"], "--ema-decay"),
    (["--slope-window", "0"], "--slope-window"), (["--time-limit", "0"], "--time-limit"),
    (["--seed", str(2**63)], "--seed 9223372036854775808: an integer in [0, 2**63)"),
]


@pytest.fixture(scope="module")
def finished_run(data_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("done") / "run"
    train_mod.train(data_path, out=out, epochs=2, **SMALL)
    return out


@pytest.mark.parametrize("args, option", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_option_fails_before_reading_data_and_touches_nothing(args, option, data_path, finished_run, tmp_path,
                                                                  monkeypatch, capsys):
    def no_reading(*a, **k):
        raise AssertionError("the dataset was read before the options were checked")

    monkeypatch.setattr(train_mod, "read_dataset", no_reading)
    before = file_bytes(finished_run)
    for out, extra in ((tmp_path / "new", []), (finished_run, ["--resume"]), (finished_run, ["--overwrite"])):
        try:
            code = train_mod.main([str(data_path), "--out", str(out), "--epochs", "3", *SMALL_ARGS, *extra, *args])
        except SystemExit as stop:                          # argparse: exit 2 with a usage message
            code = stop.code
        assert code not in (0, None)
        err = capsys.readouterr().err
        assert option in err and "Traceback" not in err
    assert not (tmp_path / "new").exists()
    assert file_bytes(finished_run) == before


def test_protocol_paper_gives_the_paper_values_and_options_override():
    kw = train_mod.parse(["d.h5", "--protocol", "paper"])
    for key, value in train_mod.PAPER_PROTOCOL.items():
        assert kw[key] == value, key
    assert kw["hidden"] == (30, 30) and kw["loss_scale"] == "none" and kw["softadapt_variant"] == "l2"
    kw = train_mod.parse(["d.h5", "--protocol", "paper", "--lr", "0.01", "--hidden", "5"])
    assert kw["lr"] == 0.01 and kw["hidden"] == (5,) and kw["batch_size"] == 30
    kw = train_mod.parse(["d.h5"])
    for key, value in train_mod.DEFAULTS.items():
        assert kw[key] == (None if key == "split" else value), key     # split None: 70/20/10, or 90/10 + test file


def test_config_reproduces_a_run_and_the_command_line_overrides_it(data_path, tmp_path):
    opts = dict(SMALL, epochs=3, beta=0.7, slope_window=2, weights=(0.2, 0.3, 0.5), seed=5, ema_decay=0.5,
                lr_schedule="cosine", min_lr=1e-4)
    first = train_mod.train(data_path, out=tmp_path / "a", **opts)
    settings = str(tmp_path / "a" / "settings.json")
    kw = train_mod.parse(["--config", settings, "--out", str(tmp_path / "b")])
    for key, value in opts.items():
        assert kw[key] == value, key
    assert kw["dataset"] == str(data_path)
    again = train_mod.train(kw.pop("dataset"), **kw)
    assert strip_time(again.rows) == strip_time(first.rows)
    kw = train_mod.parse(["--config", settings, "--beta", "0.2", "--epochs", "9"])
    assert kw["beta"] == 0.2 and kw["epochs"] == 9 and kw["slope_window"] == 2


def test_init_model_starts_from_its_parameters(data_path, tmp_path):
    train_mod.train(data_path, out=tmp_path / "a", epochs=2, **SMALL)
    a = load_model(tmp_path / "a" / "best.h5")
    train_mod.train(data_path, out=tmp_path / "b", epochs=0, init_model=str(tmp_path / "a" / "best.h5"),
                    **{**SMALL, "seed": 9})
    b = load_model(tmp_path / "b" / "best.h5")
    for name in ("theta", "g_mean_eg", "g_scale_eg", "e_ref_e"):
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name))
    fresh = load_model(train_mod.train(data_path, out=tmp_path / "c", epochs=0, **{**SMALL, "seed": 9}).out
                       / "best.h5")
    assert np.abs(fresh.theta - a.theta).max() > 1e-3       # without --init-model the start differs


def test_config_of_a_fine_tuned_run_keeps_its_init_model(data_path, tmp_path):
    train_mod.train(data_path, out=tmp_path / "a", epochs=1, **SMALL)
    init = str(tmp_path / "a" / "best.h5")
    train_mod.train(data_path, out=tmp_path / "b", epochs=1, init_model=init, **SMALL)
    assert train_mod.parse(["--config", str(tmp_path / "b" / "settings.json")])["init_model"] == init


def test_a_huge_cutoff_is_named_before_the_descriptors(tmp_path, capsys):
    """Issue 12 item 13: a cutoff of 20 Å on bcc Mo (n/V ≈ 0.064 Å⁻³: ~2 100 neighbours with their images) warns
    before the descriptor pass; 4 Å (~17) does not. Two structures and 0 epochs keep the test fast."""
    from alw_ref.data import read_dataset, write_dataset

    data = read_dataset(train_mod.example_path(train_mod.EXAMPLE_TRAIN))
    small = tmp_path / "mo2.h5"
    write_dataset(data.subset([0, 1]), small)
    spec = tmp_path / "spec.json"
    spec.write_text('{"elements": [42], "rc": 20.0, "radial": [[0.1, 0.0]]}')
    train_mod.train(small, out=tmp_path / "big", spec=str(spec), epochs=0, cache_dir="", plots=False, quiet=True)
    err = capsys.readouterr().err
    assert "neighbours per atom" in err and "is the cutoff meant in Å" in err
    spec.write_text('{"elements": [42], "rc": 4.0, "radial": [[0.1, 0.0]]}')
    train_mod.train(small, out=tmp_path / "ok", spec=str(spec), epochs=0, cache_dir="", plots=False, quiet=True)
    assert "neighbours per atom" not in capsys.readouterr().err


def test_a_spec_run_records_no_preset_and_config_and_resume_still_work(data_path, tmp_path):
    """With a spec file the spec decides the descriptors, so settings.json records ``"preset": null`` (it said
    "trainer", a preset that was not used). ``--config`` of that settings.json reproduces the run row for row;
    a run folder written before (``"preset": "trainer"`` beside the spec in settings.json and the checkpoint,
    as in paper_figures' MoTe2 runs) still resumes to the same rows; a null preset without a spec is refused
    before --out is touched."""
    spec = tmp_path / "spec.json"
    ACSFSpec.default((42,), 4.0).to_json(spec)
    opts = dict(SMALL, spec=str(spec), epochs=3)
    first = train_mod.train(data_path, out=tmp_path / "a", **opts)
    saved = json.loads((tmp_path / "a" / "settings.json").read_text())
    assert saved["preset"] is None and saved["spec"] == str(spec)
    kw = train_mod.parse(["--config", str(tmp_path / "a" / "settings.json"), "--out", str(tmp_path / "b")])
    assert kw["preset"] is None and kw["spec"] == str(spec)
    assert strip_time(train_mod.train(kw.pop("dataset"), **kw).rows) == strip_time(first.rows)

    old = tmp_path / "old"                     # a run as the trainer wrote it before: preset "trainer" recorded
    train_mod.train(data_path, out=old, **{**opts, "epochs": 2})
    with h5py.File(old / "checkpoint.h5", "a") as f:
        f.attrs["settings"] = json.dumps({**json.loads(f.attrs["settings"]), "preset": "trainer"})
    (old / "settings.json").write_text(json.dumps({**json.loads((old / "settings.json").read_text()),
                                                   "preset": "trainer"}))
    kw = train_mod.parse(["--config", str(old / "settings.json"), "--out", str(old), "--resume", "--epochs", "3"])
    assert kw["preset"] is None and kw["spec"] == str(spec)
    assert strip_time(train_mod.train(kw.pop("dataset"), **kw).rows) == strip_time(first.rows)

    with pytest.raises(ValueError, match=r"--preset None: only with --spec"):
        train_mod.train(data_path, out=tmp_path / "none", **{**SMALL, "preset": None})
    assert not (tmp_path / "none").exists()


def test_preset_and_spec_on_the_command_line_override_a_config(tmp_path, capsys):
    """--preset and --spec typed together are refused; either one typed overrides the other from --config (a
    config with a spec and ``--preset rich`` trains the rich preset, not the spec; a config with a preset and
    ``--spec F`` trains F and records no preset)."""
    spec = tmp_path / "spec.json"
    ACSFSpec.default((42,), 4.0).to_json(spec)
    with pytest.raises(SystemExit):
        train_mod.parse(["d.h5", "--preset", "rich", f"--spec={spec}"])
    assert "give --preset or --spec, not both" in capsys.readouterr().err
    with_spec, with_preset = tmp_path / "a.json", tmp_path / "b.json"
    with_spec.write_text(json.dumps({"dataset": "d.h5", "spec": str(spec), "preset": None}))
    with_preset.write_text(json.dumps({"dataset": "d.h5", "spec": None, "preset": "default"}))
    kw = train_mod.parse(["--config", str(with_spec), "--preset", "rich"])
    assert (kw["preset"], kw["spec"]) == ("rich", None)
    kw = train_mod.parse(["--config", str(with_preset), "--spec", str(spec)])
    assert (kw["preset"], kw["spec"]) == (None, str(spec))
    kw = train_mod.parse(["--config", str(with_spec), "--pres=rich"])      # argparse's abbreviation
    assert (kw["preset"], kw["spec"]) == ("rich", None)
    kw = train_mod.parse(["--config", str(with_preset)])
    assert (kw["preset"], kw["spec"]) == ("default", None)
    assert train_mod.parse(["d.h5"])["preset"] == "auto"


def test_resume_takes_the_runs_own_settings(data_path, tmp_path):
    """``--resume`` without --config reads the options of --out's settings.json, so a run set up with other
    values than today's defaults (the paper's protocol, tanh, the trainer preset) continues without
    restating them, row for row like an uninterrupted run; options typed beside --resume still win, and a changed
    one is still refused."""
    args = [str(data_path), *SMALL_ARGS, "--activation", "tanh", "--preset", "trainer"]   # SMALL_ARGS: paper's
    straight, run = tmp_path / "straight", tmp_path / "run"
    assert train_mod.main([*args, "--epochs", "3", "--out", str(straight)]) == 0
    assert train_mod.main([*args, "--epochs", "2", "--out", str(run)]) == 0
    kw = train_mod.parse(["--out", str(run), "--resume", "--epochs", "3"])
    assert (kw["activation"], kw["preset"], kw["dataset"], kw["epochs"]) == ("tanh", "trainer", str(data_path), 3)
    assert train_mod.main(["--out", str(run), "--resume", "--epochs", "3"]) == 0
    assert strip_time(rows_of(run)) == strip_time(rows_of(straight))
    assert train_mod.main(["--out", str(run), "--resume", "--epochs", "4", "--activation", "silu"]) == 1


def test_init_model_refuses_a_network_or_cutoff_other_than_its_own(data_path, tmp_path):
    """Reproducer: --init-model with --rc 6 --hidden 16,16 --activation silu trained at the model's R_c 4 Å, 8×8,
    tanh without a word (and recorded those). Options equal to the model's, or left at the defaults, pass."""
    train_mod.train(data_path, out=tmp_path / "a", epochs=1, **SMALL)
    init = str(tmp_path / "a" / "best.h5")
    for option, value in (("rc", 6.0), ("hidden", (16, 16)), ("activation", "silu")):
        with pytest.raises(ValueError, match=f"--init-model .*--{option} "):
            train_mod.train(data_path, out=tmp_path / f"b_{option}", epochs=1, init_model=init,
                            **{**SMALL, option: value})
        folder = tmp_path / f"b_{option}"
        assert not folder.exists() or {p.name for p in folder.iterdir()} <= {".lock"}  # no run was written
    small_defaults = {k: v for k, v in SMALL.items() if k not in ("rc", "hidden", "activation")}
    train_mod.train(data_path, out=tmp_path / "c", epochs=1, init_model=init, **small_defaults)
    assert load_model(tmp_path / "c" / "best.h5").hidden == (8, 8)


def test_init_model_names_an_element_it_has_no_network_for(data_path, tmp_path):
    from dataclasses import replace

    from alw_ref.data import write_dataset
    from alw_ref.errors import DataError

    train_mod.train(data_path, out=tmp_path / "a", epochs=1, **SMALL)
    data = read_dataset(data_path)
    numbers = data.numbers.copy()
    numbers[: data.n_atoms[0]] = 52           # the first structure becomes Te: an element the model never saw
    write_dataset(replace(data, numbers=numbers), tmp_path / "mote.h5")
    with pytest.raises(DataError, match=r"--init-model .* has networks for Mo only; the data also hold Te"):
        train_mod.train(tmp_path / "mote.h5", out=tmp_path / "b", epochs=1,
                        init_model=str(tmp_path / "a" / "best.h5"), **SMALL)
