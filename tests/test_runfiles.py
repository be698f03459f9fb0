"""Run folders (alw_ref/runfiles.py and the trainer around it): nothing lost, nothing silent (issue 12, items
1, 3, 4, 6, 8, 10, 11). Each test is a reproducer: the run folder is refused or locked, resume compares content, rows
after the checkpoint are recomputed bit for bit, a non-finite loss can be resumed at a lower rate, Ctrl-C
leaves a consistent folder, a damaged checkpoint is named, a killed run's temporaries go. "Bit for bit" compares
every metrics column but the wall time.
"""

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from trainkit import (
    PYTHON,
    SMALL,
    SMALL_ARGS,
    file_bytes,
    rows_of,
    strip_time,
    subprocess_env,
    write_small,
)

from alw_ref import train as train_mod
from alw_ref import trainloop
from alw_ref.atomic import atomic_write
from alw_ref.data import read_dataset, write_dataset
from alw_ref.errors import DataError
from alw_ref.potential import load_model
from alw_ref.runfiles import (
    RunLockedError,
    append_row,
    dataset_fingerprint,
    read_rows,
    truncate_rows,
)

RUN = dict(SMALL, checkpoint_every=0.0)


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    return write_small(tmp_path_factory.mktemp("data") / "mo40.h5")


@pytest.fixture(scope="module")
def full5(data_path, tmp_path_factory):
    """An uninterrupted 5-epoch run: what every interrupted-and-resumed run must reproduce."""
    out = tmp_path_factory.mktemp("full") / "run"
    train_mod.train(data_path, out=out, epochs=5, **RUN)
    return out


def same_run(a, b):
    assert strip_time(rows_of(a)) == strip_time(rows_of(b))
    for name in ("best.h5", "final.h5"):
        np.testing.assert_array_equal(load_model(a / name).theta, load_model(b / name).theta)
    assert [line.split(",")[0] for line in (a / "metrics.csv").read_text().splitlines()] == \
        [line.split(",")[0] for line in (b / "metrics.csv").read_text().splitlines()]


def test_a_run_folder_is_refused_without_resume_or_overwrite(data_path, tmp_path):
    out = tmp_path / "run"
    train_mod.train(data_path, out=out, epochs=2, **RUN)
    before = file_bytes(out)
    with pytest.raises(DataError, match="--resume.*--overwrite"):
        train_mod.train(data_path, out=out, epochs=3, **RUN)
    assert file_bytes(out) == before
    # a failed start of a resume (an option that may not change) leaves the files as they were
    with pytest.raises(ValueError, match="batch_size"):
        train_mod.train(data_path, out=out, epochs=3, resume=True, **{**RUN, "batch_size": 4})
    assert file_bytes(out) == before
    res = train_mod.train(data_path, out=out, epochs=1, overwrite=True, **RUN)
    assert [r["epoch"] for r in res.rows] == [1] and len(rows_of(out)) == 1


LOCK_HOLDER = """
import sys, time
from pathlib import Path
from alw_ref.runfiles import RunLock
lock = RunLock(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(600)
"""


def test_a_locked_folder_is_refused_and_the_lock_dies_with_its_holder(data_path, tmp_path):
    out = tmp_path / "run"
    train_mod.train(data_path, out=out, epochs=1, **RUN)
    before = file_bytes(out)
    holder = subprocess.Popen([PYTHON, "-c", LOCK_HOLDER, str(out)], stdout=subprocess.PIPE, text=True,
                              env=subprocess_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        for kw in ({"overwrite": True}, {"resume": True}):
            with pytest.raises(RunLockedError, match="another training run"):
                train_mod.train(data_path, out=out, epochs=2, **kw, **RUN)
        assert file_bytes(out) == before
    finally:
        holder.kill()                                       # kill -9: the kernel releases the flock
        holder.wait(timeout=30)
    res = train_mod.train(data_path, out=out, epochs=2, resume=True, **RUN)
    assert [r["epoch"] for r in res.rows] == [1, 2]


def test_resume_compares_content_not_the_path(data_path, tmp_path):
    src = tmp_path / "d.h5"
    src.write_bytes(data_path.read_bytes())
    out = tmp_path / "run"
    train_mod.train(src, out=out, epochs=2, **RUN)
    # the same content under another path string is the same data
    alias = tmp_path / "sub" / ".." / "d.h5"
    (tmp_path / "sub").mkdir()
    copy = tmp_path / "copy.h5"
    copy.write_bytes(src.read_bytes())
    train_mod.train(str(alias), out=out, epochs=3, resume=True, **RUN)
    train_mod.train(copy, out=out, epochs=4, resume=True, **RUN)
    assert [r["epoch"] for r in rows_of(out)] == [1, 2, 3, 4]
    # changed content at the same path is refused, and nothing is touched
    data = read_dataset(src)
    energy = data.energy.copy()
    energy[3] += 0.01
    write_dataset(dataclasses.replace(data, energy=energy), src)
    assert dataset_fingerprint(read_dataset(src)) != dataset_fingerprint(read_dataset(copy))
    before = file_bytes(out)
    with pytest.raises(DataError, match="fingerprint"):
        train_mod.train(src, out=out, epochs=5, resume=True, **RUN)
    assert file_bytes(out) == before


def test_rows_after_the_checkpoint_are_dropped_and_recomputed(data_path, full5, tmp_path):
    """A kill after a row was appended but before its checkpoint: a whole extra row and a half line."""
    out = tmp_path / "run"
    train_mod.train(data_path, out=out, epochs=3, **RUN)
    extra = {**rows_of(out)[-1], "epoch": 4, "val_loss": -1.0}
    append_row(out, extra)
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 5, "lr": 0.0')
    assert [r["epoch"] for r in read_rows(out)] == [1, 2, 3, 4]     # the half line is not a row
    train_mod.train(data_path, out=out, epochs=5, resume=True, **RUN)
    same_run(out, full5)


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs (not an Exception, so no handler catches it)."""


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_kill_around_a_checkpoint_loses_no_row(data_path, full5, tmp_path, monkeypatch, when):
    real = trainloop.save_checkpoint

    def dying(path, **kw):
        if kw["epoch"] == 3:
            if when == "after":
                real(path, **kw)
            raise Killed
        real(path, **kw)

    monkeypatch.setattr(trainloop, "save_checkpoint", dying)
    out = tmp_path / "run"
    with pytest.raises(Killed):
        train_mod.train(data_path, out=out, epochs=5, **RUN)
    monkeypatch.setattr(trainloop, "save_checkpoint", real)
    with h5py.File(out / "checkpoint.h5") as f:
        ckpt_epoch = int(f.attrs["epoch"])
    assert ckpt_epoch == (3 if when == "after" else 2)
    assert [r["epoch"] for r in rows_of(out)] == [1, 2, 3]            # the row came first: none lost
    train_mod.train(data_path, out=out, epochs=5, resume=True, **RUN)
    same_run(out, full5)


def test_truncate_rows_keeps_both_files_in_step(tmp_path):
    for e in range(1, 6):
        append_row(tmp_path, {"epoch": e, "x": e * 0.5})
    kept = truncate_rows(tmp_path, 3)
    assert [r["epoch"] for r in kept] == [1, 2, 3]
    assert (tmp_path / "metrics.csv").read_text().splitlines() == ["epoch,x", "1,0.5", "2,1.0", "3,1.5"]
    assert [json.loads(x)["epoch"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_after_a_non_finite_loss_the_advised_resume_works(data_path, tmp_path, monkeypatch, capsys):
    nan_then_advised_resume(data_path, tmp_path, monkeypatch, capsys, ["--checkpoint-every", "0"])


def nan_then_advised_resume(data_path, tmp_path, monkeypatch, capsys, extra):
    """A NaN loss in epoch 2 (exit 1 with advice naming the checkpoint's epoch n); the advised `--resume --lr`
    finishes the run, lr column 1e-3 up to epoch n and the advised 1e-4 after it."""
    real = trainloop.loss_and_gradient
    calls = {"n": 0}

    def poisoned(model, batch, weights, form, gradient=True):
        res = real(model, batch, weights, form, gradient)
        if gradient:
            calls["n"] += 1
            if calls["n"] == 6:                              # epoch 2, batch 2 (4 batches per epoch)
                return dataclasses.replace(res, total=float("nan"))
        return res

    monkeypatch.setattr(trainloop, "loss_and_gradient", poisoned)
    args = [str(data_path), "--out", str(tmp_path / "r"), "--epochs", "4", *extra, *SMALL_ARGS]
    assert train_mod.main(args) == 1
    err = capsys.readouterr().err
    advice = re.search(r"--resume --lr (\S+)", err)
    kept = re.search(r"\(after epoch (\d+)\)", err)       # the checkpoint the advice resumes from
    assert advice is not None and kept is not None
    monkeypatch.setattr(trainloop, "loss_and_gradient", real)
    assert train_mod.main(args + ["--resume", "--lr", advice.group(1)]) == 0
    rows = rows_of(tmp_path / "r")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    n = int(kept.group(1))                                 # epochs up to the checkpoint keep their rows
    assert n <= 1 and all(r["lr"] == 1e-3 for r in rows[:n])
    assert all(r["lr"] == pytest.approx(1e-4, rel=1e-15) for r in rows[n:])


def interrupt_after(out, cmd, ready):
    """Start ``cmd``, send SIGINT once ``ready()`` holds, return (exit code, stderr)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        deadline = time.monotonic() + 300
        while not ready():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def resume_matches_uninterrupted(data_path, out, cmd, target, tmp_path):
    resumed = subprocess.run(cmd + ["--epochs", str(target), "--resume"], capture_output=True, text=True,
                             env=subprocess_env(), timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stderr
    train_mod.train(data_path, out=tmp_path / "ref", epochs=target, **RUN)
    same_run(out, tmp_path / "ref")


def train_cmd(data_path, out, *extra):
    return [PYTHON, "-m", "alw_ref.train", str(data_path), "--out", str(out), *SMALL_ARGS, *extra]


def test_ctrl_c_exits_130_with_one_line_and_resume_finishes_the_same_run(data_path, tmp_path):
    out = tmp_path / "run"
    cmd = train_cmd(data_path, out, "--checkpoint-every", "0")
    code, err = interrupt_after(out, cmd + ["--epochs", "2000"],
                                lambda: (out / "checkpoint.h5").exists() and len(read_rows(out)) >= 2)
    assert code == 130
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err and "--resume" in lines[0], err
    with h5py.File(out / "checkpoint.h5") as f:
        done = int(f.attrs["epoch"])
    rows = rows_of(out)
    assert done >= 1 and [r["epoch"] for r in rows] == list(range(1, len(rows) + 1)) and len(rows) >= done
    resume_matches_uninterrupted(data_path, out, cmd, done + 2, tmp_path)


def test_early_ctrl_c_can_be_resumed(data_path, tmp_path):
    """Ctrl-C after the first row, before the first timed checkpoint (default --checkpoint-every 30 s):
    exit 130 advising --resume, and --resume must then work."""
    out = tmp_path / "run"
    cmd = train_cmd(data_path, out)
    code, err = interrupt_after(out, cmd + ["--epochs", "2000"], lambda: len(read_rows(out)) >= 1)
    assert code == 130 and "--resume" in err
    resume_matches_uninterrupted(data_path, out, cmd, 3, tmp_path)


def test_nan_advice_works_with_the_default_checkpoint_interval(data_path, tmp_path, monkeypatch, capsys):
    nan_then_advised_resume(data_path, tmp_path, monkeypatch, capsys, [])


def test_resume_without_a_run_creates_nothing(data_path, tmp_path):
    with pytest.raises(DataError, match="no checkpoint"):
        train_mod.train(data_path, out=tmp_path / "none", epochs=2, resume=True, **RUN)
    assert not (tmp_path / "none").exists()


def test_overwrite_leaves_no_file_of_the_replaced_run(data_path, tmp_path):
    out = tmp_path / "run"
    train_mod.train(data_path, out=out, epochs=1, **{**RUN, "plots": True})
    assert (out / "weights.png").exists()
    train_mod.train(data_path, out=out, epochs=1, overwrite=True, **RUN)
    assert not list(out.glob("*.png"))


def interrupt_final_evaluation(monkeypatch, n_signals):
    """Send SIGINT from inside the first ``n_signals`` calls of the final evaluation (train, val, test)."""
    import os

    real, calls = trainloop.evaluate, {"n": 0}

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] <= n_signals:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **k)

    monkeypatch.setattr(trainloop, "evaluate", interrupted)


def test_ctrl_c_during_the_final_evaluation_is_not_swallowed(data_path, tmp_path, monkeypatch):
    interrupt_final_evaluation(monkeypatch, 1)
    assert train_mod.main([str(data_path), "--out", str(tmp_path / "r"), "--epochs", "1", *SMALL_ARGS]) == 130


def test_a_second_ctrl_c_does_not_advise_overwriting_a_run_with_a_checkpoint(data_path, tmp_path, monkeypatch,
                                                                             capsys):
    interrupt_final_evaluation(monkeypatch, 2)
    code = train_mod.main([str(data_path), "--out", str(tmp_path / "r"), "--epochs", "2", "--checkpoint-every", "0",
                           *SMALL_ARGS])
    err = capsys.readouterr().err
    assert code == 130 and (tmp_path / "r" / "checkpoint.h5").exists()
    assert "--overwrite" not in err and "before the first epoch" not in err and "--resume" in err


@pytest.fixture(scope="module")
def one_epoch_runs(data_path, tmp_path_factory):
    """{weighting: a 1-epoch run folder}: SoftAdapt (SMALL's), and uncertainty, which checkpoints its own Adam."""
    root = tmp_path_factory.mktemp("one_epoch")
    runs = {}
    for weighting in ("softadapt", "uncertainty"):
        runs[weighting] = root / weighting
        train_mod.train(data_path, out=runs[weighting], epochs=1, **{**RUN, "weighting": weighting})
    return runs


@pytest.mark.parametrize("weighting, entry, kind", [
    ("softadapt", "model", "group"), ("softadapt", "adam", "group"), ("softadapt", "arrays", "group"),
    ("softadapt", "arrays/ema", "dataset"), ("softadapt", "arrays/best_theta", "dataset"),
    ("uncertainty", "adam_weighting", "group")])
def test_a_checkpoint_missing_a_group_is_named_on_resume(data_path, one_epoch_runs, tmp_path, capsys, weighting,
                                                         entry, kind):
    """Issue 12 item 10: a missing group used to give an AttributeError or TypeError traceback, a missing
    dataset a KeyError, and a missing adam_weighting silently froze the uncertainty weights."""
    out = tmp_path / "run"
    shutil.copytree(one_epoch_runs[weighting], out)
    with h5py.File(out / "checkpoint.h5", "a") as f:
        del f[entry]
    before = file_bytes(out)
    code = train_mod.main([str(data_path), "--out", str(out), "--epochs", "2", "--resume", "--weighting", weighting,
                           *SMALL_ARGS])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    expected = (f"error: {out / 'checkpoint.h5'}: damaged checkpoint: {kind} '{entry}' is missing; this run cannot "
                "be continued: start it again with --overwrite, or choose another --out")
    assert err.splitlines() == [expected]
    assert file_bytes(out) == before


@pytest.mark.parametrize("key", ["rng", "weighting", "scales", "schedule", "best_epoch", "bad_epochs"])
def test_a_checkpoint_state_missing_an_entry_is_named_on_resume(data_path, one_epoch_runs, tmp_path, capsys, key):
    """Reproducer: an entry deleted from the checkpoint's JSON state gave a KeyError traceback on resume."""
    import json

    out = tmp_path / "run"
    shutil.copytree(one_epoch_runs["softadapt"], out)
    with h5py.File(out / "checkpoint.h5", "a") as f:
        state = json.loads(f.attrs["state"])
        del state[key]
        f.attrs["state"] = json.dumps(state)
    before = file_bytes(out)
    code = train_mod.main([str(data_path), "--out", str(out), "--epochs", "2", "--resume", *SMALL_ARGS])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.splitlines() == [f"error: {out / 'checkpoint.h5'}: damaged checkpoint: state entry '{key}' is "
                                "missing; this run cannot be continued: start it again with --overwrite, or choose "
                                "another --out"]
    assert file_bytes(out) == before


def temporary_name(tmp_path, target, pid):
    """The name ``atomic_write`` gives a temporary of ``target`` written by process ``pid`` on this host (taken
    from a real temporary of this process, its PID replaced)."""
    with atomic_write(tmp_path / "probe") as tmp:
        name = Path(tmp).name
    own = f".probe.{os.getpid()}-"
    assert name.startswith(own)
    return f".{target}.{pid}-" + name[len(own):]


def test_a_killed_runs_temporaries_are_removed_from_the_run_folder(data_path, one_epoch_runs, tmp_path):
    """Issue 12 item 11 in the run folder: a dead writer's temporary goes at the start, a live one's stays."""
    out = tmp_path / "run"
    shutil.copytree(one_epoch_runs["softadapt"], out)
    dead_pid = subprocess.run([PYTHON, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                              check=True).stdout.strip()
    with pytest.raises(ProcessLookupError):                 # the writer is dead
        os.kill(int(dead_pid), 0)
    dead = out / temporary_name(tmp_path, "checkpoint.h5", dead_pid)
    live = out / temporary_name(tmp_path, "best.h5", os.getpid())
    for p in (dead, live):
        p.write_bytes(b"\0" * 1000)
    train_mod.train(data_path, out=out, epochs=2, resume=True, **RUN)
    assert not dead.exists() and live.exists()
    assert [r["epoch"] for r in rows_of(out)] == [1, 2]


def test_a_folder_holding_only_a_killed_writers_temporary_is_not_a_run(data_path, tmp_path):
    """Reproducer: a run killed while writing its first file leaves only that file's temporary; the folder was
    refused as "already holds a run" (and --resume had no checkpoint), so only --overwrite could reuse it."""
    out = tmp_path / "run"
    out.mkdir()
    dead_pid = subprocess.run([PYTHON, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                              check=True).stdout.strip()
    dead = out / temporary_name(tmp_path, "settings.json", dead_pid)
    dead.write_bytes(b"{")
    train_mod.train(data_path, out=out, epochs=1, **RUN)
    assert not dead.exists() and [r["epoch"] for r in rows_of(out)] == [1]
