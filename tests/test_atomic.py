"""Tests of alw_ref/atomic.py: atomic writes, Ctrl-C held during a write, stale temporaries."""

import os
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest

from alw_ref import atomic
from alw_ref.atomic import atomic_write, interrupt_point, remove_stale_temporaries


class _Node:
    pass


def _sigint_inside_a_c_callback():
    """Deliver SIGINT while Python runs a weakref callback called from C, as h5py's object registry
    does while it writes: Python's default handler raises KeyboardInterrupt inside the callback,
    where it is printed as "Exception ignored" and dropped (issue 12, item 8)."""
    node = _Node()
    ref = weakref.ref(node, lambda _: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.05)))
    del node
    return ref


def test_ctrl_c_during_a_write_is_raised_and_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "x.h5") as tmp:
            Path(tmp).write_text("half")
            _sigint_inside_a_c_callback()
            Path(tmp).write_text("whole")
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_outranks_an_error_raised_meanwhile(tmp_path):
    """A caller that catches OSError (e.g. to run without a cache) must still see the Ctrl-C."""
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "x") as tmp:
            _sigint_inside_a_c_callback()
            raise OSError(f"{tmp}: disk full")
    assert list(tmp_path.iterdir()) == []


def test_interrupt_point_raises_early_and_existing_file_survives(tmp_path):
    path = tmp_path / "x"
    path.write_text("old")
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path) as tmp:
            _sigint_inside_a_c_callback()
            interrupt_point()
            reached.append(tmp)
    assert reached == [] and path.read_text() == "old" and sorted(tmp_path.iterdir()) == [path]


def test_long_target_name_gets_a_short_enough_temporary(tmp_path):
    """The temporary name used to be 14+ characters longer than the target: a 250-byte name failed."""
    path = tmp_path / ("n" * 250)
    with atomic_write(path) as tmp:
        assert len(Path(tmp).name.encode()) <= 255
        Path(tmp).write_text("ok")
    assert path.read_text() == "ok"


def test_kill_9_leftover_is_removed_but_live_writers_are_kept(tmp_path):
    code = ("import sys, time; from pathlib import Path; from alw_ref.atomic import atomic_write\n"
            "with atomic_write(sys.argv[1]) as tmp:\n"
            "    Path(tmp).write_text('x'); print(tmp, flush=True); time.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(atomic.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "acsf-k.h5")], stdout=subprocess.PIPE,
                            env=env, text=True)
    killed = Path(proc.stdout.readline().strip())
    assert killed.exists() and str(proc.pid) in killed.name
    assert remove_stale_temporaries(tmp_path) == []  # its writer is alive
    proc.kill()
    proc.wait()

    with atomic_write(tmp_path / "acsf-live.h5") as live:  # this process: alive
        Path(live).write_text("x")
        now = time.time()
        old = now - atomic.STALE_AGE_S - 10
        legacy_old = tmp_path / ".acsf-a.h5.k2j3h4g5.tmp"  # an older alw_ref's name, no PID
        legacy_new = tmp_path / ".acsf-b.h5.abcdefgh.tmp"
        foreign_old = tmp_path / f".acsf-c.h5.{os.getpid()}-000000-abcdefgh.tmp"  # another host
        foreign_new = tmp_path / f".acsf-d.h5.{os.getpid()}-000000-abcdefgh.tmp"
        other_program = tmp_path / ".other.tmp"
        for p in (legacy_old, legacy_new, foreign_old, foreign_new, other_program):
            p.write_text("x")
        for p in (legacy_old, foreign_old, other_program):
            os.utime(p, (old, old))
        removed = remove_stale_temporaries(tmp_path, target_prefix="acsf-")
        assert sorted(removed) == sorted([killed, legacy_old, foreign_old])
        assert Path(live).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["acsf-live.h5", legacy_new.name, foreign_new.name, other_program.name])
