"""Issue 13: ``--preset NAME`` names the same descriptor set in train, describe and oracle."""
import json

import pytest

from alw_ref import describe, oracle
from alw_ref import train as train_mod
from alw_ref.acsf import PRESETS, ACSFSpec
from alw_ref.describe import read_descriptors
from trainkit import SMALL_ARGS, write_small

import h5py

#: What each name must mean, written out here (not through ACSFSpec.preset): Mo data, R_c 4 Å.
def _pm(etas, zetas):
    return tuple((e, z, lam) for e in etas for z in zetas for lam in (1.0, -1.0))


EXPECTED = {"trainer": ACSFSpec.trainer((42,), 4.0), "default": ACSFSpec.default((42,), 4.0),
            "rich": ACSFSpec((42,), 4.0, radial=ACSFSpec.trainer((42,), 4.0).radial,
                             angular=_pm((0.001, 0.01, 0.036, 0.071, 0.179), (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)),
                             angular_g5=_pm((0.001, 0.01), (1.0, 4.0))),
            "mote2_paper": ACSFSpec.mote2_paper()}


@pytest.mark.parametrize("name", PRESETS)
def test_preset_means_the_same_in_every_command(name, tmp_path):
    data = write_small(tmp_path / "d.h5", n=4)
    rc = [] if name == "mote2_paper" else ["--rc", "4"]
    args = [a for a in SMALL_ARGS if a not in ("--rc", "4")]
    run = tmp_path / "run"
    assert train_mod.main([str(data), *args, *rc, "--preset", name, "--epochs", "1", "--out", str(run)]) == 0
    used = json.loads((run / "settings.json").read_text())["spec_used"]
    assert ACSFSpec.from_dict(used) == EXPECTED[name]
    assert describe.main([str(data), "--preset", name, *rc, "--out", str(tmp_path / "g.h5"), "--quiet"]) == 0
    assert read_descriptors(tmp_path / "g.h5").spec == EXPECTED[name]
    assert oracle.main([str(data), "--preset", name, *rc, "-o", str(tmp_path / "o.h5")]) == 0
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert ACSFSpec.from_json(f.attrs["spec"]) == EXPECTED[name]


def test_trainer_preset_is_what_every_command_uses_by_default(tmp_path):
    """No --preset and no --rc: train and describe use ACSFSpec.trainer at R_c 5.5 Å (oracle needs one)."""
    assert train_mod.DEFAULTS["preset"] == "trainer" and train_mod.DEFAULTS["rc"] == 5.5
    data = write_small(tmp_path / "d.h5", n=2)
    assert describe.main([str(data), "--out", str(tmp_path / "g.h5"), "--quiet"]) == 0
    assert read_descriptors(tmp_path / "g.h5").spec == ACSFSpec.trainer((42,), 5.5)
    assert oracle.main([str(data), "--preset", "trainer", "-o", str(tmp_path / "o.h5")]) == 0
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert ACSFSpec.from_json(f.attrs["spec"]) == ACSFSpec.trainer((42,), 5.5)


@pytest.mark.parametrize("command", ["train", "describe", "oracle"])
def test_mote2_paper_with_rc_is_refused(command, tmp_path, capsys):
    data = write_small(tmp_path / "d.h5", n=2)
    argv = [str(data), "--preset", "mote2_paper", "--rc", "4"]
    if command == "train":
        with pytest.raises(SystemExit) as exc:
            train_mod.main([*argv, "--out", str(tmp_path / "run")])
        code = exc.value.code
    else:
        main = describe.main if command == "describe" else oracle.main
        code = main([*argv, *(["--quiet"] if command == "describe" else ["-o", str(tmp_path / "o.h5")])])
    assert code in (1, 2) and "6.5" in capsys.readouterr().err   # usage error (2) or spec error (1)
    assert not (tmp_path / "run").exists() and not (tmp_path / "o.h5").exists()


def test_unknown_preset_is_a_spec_error():
    with pytest.raises(Exception, match="unknown preset 'tiny'"):
        ACSFSpec.preset("tiny", (42,), 4.0)
