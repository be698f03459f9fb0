"""Issue 13: ``--preset NAME`` names the same descriptor set in train, describe and oracle."""
import json

import numpy as np
import pytest

from alw_ref import describe, oracle
from alw_ref import train as train_mod
from alw_ref.acsf import PRESETS, ACSFSpec
from alw_ref.describe import read_descriptors
from trainkit import SMALL_ARGS, write_small

import h5py

#: What each name must mean, written out here from the constructors' docstrings (not through ACSFSpec): the
#: elements, R_c (Å), G2 rows (η Å⁻², R_s Å), G4 rows and G5 rows (η Å⁻², ζ, λ) of a preset for Mo data.
def _pm(etas, zetas):
    return tuple((e, z, lam) for e in etas for z in zetas for lam in (1.0, -1.0))


def _grid(rc, n, r_min=0.5):
    """The shifted radial grid: n centres R_s evenly spaced on [r_min, rc] Å, η = 1/(2ΔR²) Å⁻²."""
    step = (rc - r_min) / (n - 1)
    return tuple((0.5 / step ** 2, r_min + k * step) for k in range(n))


def expected(name, rc=4.0):
    """For Mo data (one element) ``auto`` is ``rich``."""
    name = "rich" if name == "auto" else name
    return {"trainer": ((42,), rc, _grid(rc, 16), _pm((0.001, 0.01, 0.05), (1.0, 2.0, 4.0, 16.0)), ()),
            "default": ((42,), rc, _grid(rc, 8), _pm((0.005,), (1.0, 4.0, 16.0)), ()),
            "rich": ((42,), rc, _grid(rc, 16),
                     _pm((0.001, 0.01, 0.036, 0.071, 0.179), (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)),
                     _pm((0.001, 0.01), (1.0, 4.0))),
            "mote2_paper": ((42, 52), 6.5, ((0.0, 0.0),) + tuple((e, 0.0) for e in (0.01, 0.1, 1.0, 5.0, 10.0)),
                            _pm((0.01,), (0.08, 1.0, 10.0, 100.0)), ())}[name]


def assert_is_preset(spec, name, rc=4.0):
    """``spec`` is preset ``name`` as written out above (the grid's rows to 1e-14: linspace rounds differently)."""
    elements, rc, radial, angular, angular_g5 = expected(name, rc)
    assert (spec.elements, spec.rc, spec.angular, spec.angular_g5) == (elements, rc, angular, angular_g5)
    np.testing.assert_allclose(spec.radial, radial, rtol=1e-14, atol=0)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_means_the_same_in_every_command(name, tmp_path):
    data = write_small(tmp_path / "d.h5", n=4)
    rc = [] if name == "mote2_paper" else ["--rc", "4"]
    args = [a for a in SMALL_ARGS if a not in ("--rc", "4")]
    run = tmp_path / "run"
    assert train_mod.main([str(data), *args, *rc, "--preset", name, "--epochs", "1", "--out", str(run)]) == 0
    used = json.loads((run / "settings.json").read_text())["spec_used"]
    assert_is_preset(ACSFSpec.from_dict(used), name)
    assert describe.main([str(data), "--preset", name, *rc, "--out", str(tmp_path / "g.h5"), "--quiet"]) == 0
    assert_is_preset(read_descriptors(tmp_path / "g.h5").spec, name)
    assert oracle.main([str(data), "--preset", name, *rc, "-o", str(tmp_path / "o.h5")]) == 0
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert_is_preset(ACSFSpec.from_json(f.attrs["spec"]), name)


def test_auto_preset_is_what_train_and_describe_use_by_default(tmp_path):
    """No --preset and no --rc: train and describe use ``auto`` at R_c 5.5 Å — on one-element data (Mo) the
    rich set, written out above (oracle needs a --preset or a model)."""
    assert train_mod.DEFAULTS["preset"] == "auto" and train_mod.DEFAULTS["rc"] == 5.5
    data = write_small(tmp_path / "d.h5", n=2)
    assert describe.main([str(data), "--out", str(tmp_path / "g.h5"), "--quiet"]) == 0
    assert_is_preset(read_descriptors(tmp_path / "g.h5").spec, "rich", rc=5.5)
    assert oracle.main([str(data), "--preset", "auto", "-o", str(tmp_path / "o.h5")]) == 0
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert_is_preset(ACSFSpec.from_json(f.attrs["spec"]), "rich", rc=5.5)


@pytest.mark.parametrize("elements", [("Mo", "Te"), (52, 42), ("Si", "Ge", "Mo")])
def test_auto_preset_is_trainer_for_several_elements_and_rich_for_one(elements):
    """``rich`` has 68 angular functions per element pair against ``trainer``'s 24: for two or more elements
    ``auto`` takes ``trainer`` (2 elements: 2·16 + 3·24 = 104 features), for one ``rich`` (16 + 68 = 84)."""
    auto = ACSFSpec.preset("auto", elements, 4.0)
    assert auto == ACSFSpec.preset("trainer", elements, 4.0)
    n = len(elements)
    assert auto.n_features == 16 * n + 24 * n * (n + 1) // 2
    one = ACSFSpec.preset("auto", ("Mo",), 4.0)
    assert one.elements == (42,) and one.n_features == 16 + 68
    assert_is_preset(one, "rich")


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
