"""docs/tutorial.md, run as written, so that it cannot rot.

The test reads every ```bash and ```python block of docs/tutorial.md and runs them in order in one
temporary folder (bash blocks with ``bash -e -o pipefail``, the python block as a script), with ``python``
on PATH being this interpreter and this worktree's alw_ref first on PYTHONPATH. The tutorial's first block
writes its input (the bundled mlearn Mo example as extended XYZ), so the test supplies no data of its own.

To keep it fast (well under two minutes on a busy 2-core machine) the test applies exactly these
substitutions, mechanically, to single lines (a trailing ``# comment`` is kept after the added options):

- every line that starts with ``python -m alw_ref.train``:
    * ``--epochs N`` becomes ``--epochs max(1, N // 300)``, and a line without ``--epochs`` gets
      ``--epochs 4`` (the default 1200 // 300), so ``--resume --epochs 2400`` still continues the run;
    * `` --spec <tmp>/small_spec.json --hidden 8,8 --threads 1 --cache-dir ''`` is appended (6 ACSF
      features, R_c 4 Å, ``ACSFSpec.default(("Mo",), 4.0, n_radial=4, zetas=(1.0,))``; 2 × 8 networks;
      one Numba thread; no descriptor cache in the user's home);
- every line that starts with ``python -m alw_ref.evaluate``: `` --cache-dir ''`` is appended.

Nothing else is changed: the python block (the MD run) and all other commands run verbatim. Each block
must exit 0; afterwards the files each step of the tutorial promises must exist (checked by name, and the
names must appear in the tutorial), the evaluate table must have a row for every config_type of the test
file, the resumed run must have continued to its new epoch budget, and the MD block must have printed its
steps (without a DeprecationWarning) with finite energies and a total energy constant to 3 meV/atom.
Every ``--option`` the tutorial names must be an option of the command's ``--help`` (checked on the
commands' own parsers).
"""

import contextlib
import io
import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ase", reason="the tutorial converts extended XYZ and runs MD with ASE (pip install alw_ref[ase])")

from alw_ref import convert, evaluate, export, train
from alw_ref.acsf import ACSFSpec
from alw_ref.data import read_dataset

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
COMMANDS = {"convert": convert, "train": train, "evaluate": evaluate, "export": export}
#: Files the tutorial promises, relative to the folder it runs in.
PROMISED = ["data.extxyz", "test.extxyz", "data.h5", "test.h5",
            "run/best.h5", "run/final.h5", "run/settings.json", "run/checkpoint.h5", "run/metrics.csv",
            "run/metrics.jsonl", "run/test_metrics.json", "run/learning_curves.png", "run/weights.png",
            "run/parity.png", "run_s1/best.h5", "finetuned/best.h5",
            "alw_eval/metrics.json", "alw_eval/parity.png", "committee/committee.csv",
            "nnp/input.nn", "nnp/scaling.data", "nnp/weights.042.data"]
EPOCH_DIVISOR = 300
DEFAULT_EPOCHS = 1200


def blocks():
    """[(language, text)] of the tutorial's fenced bash/python blocks, in order."""
    return BLOCK.findall(TUTORIAL.read_text())


def fast_line(line, spec_path):
    """The test's substitution of one bash line (module docstring); other lines are returned unchanged."""
    command, hash_, comment = line.partition(" #")
    words = command.split()
    if words[:3] == ["python", "-m", "alw_ref.train"]:
        if "--epochs" in words:
            k = words.index("--epochs")
            words[k + 1] = str(max(1, int(words[k + 1]) // EPOCH_DIVISOR))
        else:
            words += ["--epochs", str(DEFAULT_EPOCHS // EPOCH_DIVISOR)]
        words += ["--spec", str(spec_path), "--hidden", "8,8", "--threads", "1", "--cache-dir", "''"]
    elif words[:3] == ["python", "-m", "alw_ref.evaluate"]:
        words += ["--cache-dir", "''"]
    else:
        return line
    return " ".join(words) + (f"  {hash_.strip()}{comment}" if hash_ else "")


def option_strings(module):
    """Every --option in ``python -m alw_ref.<module> --help`` (the command's own parser, in process)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    return set(re.findall(r"--[a-z][a-z0-9-]*", buf.getvalue()))


def test_fast_line_substitution():
    spec = Path("/s.json")
    tail = "--spec /s.json --hidden 8,8 --threads 1 --cache-dir ''"
    assert fast_line("python -m alw_ref.train d.h5 --out run", spec) == \
        f"python -m alw_ref.train d.h5 --out run --epochs 4 {tail}"
    assert fast_line("python -m alw_ref.train d.h5 --epochs 2400 --resume  # more", spec) == \
        f"python -m alw_ref.train d.h5 --epochs 8 --resume {tail}  # more"
    assert fast_line("python -m alw_ref.evaluate run", spec) == "python -m alw_ref.evaluate run --cache-dir ''"
    assert fast_line("python -m alw_ref.export n2p2 run/best.h5 nnp/", spec) == \
        "python -m alw_ref.export n2p2 run/best.h5 nnp/"


def test_every_option_named_in_the_tutorial_exists():
    text = TUTORIAL.read_text()
    options = {name: option_strings(module) for name, module in COMMANDS.items()}
    # a command written out (in a block or in `inline code`): its options must be its own
    for name, rest in re.findall(r"python -m alw_ref\.(\w+)([^`\n]*)", text):
        assert name in COMMANDS, f"the tutorial runs an unknown command alw_ref.{name}"
        unknown = set(re.findall(r"--[a-z][a-z0-9-]*", rest)) - options[name]
        assert not unknown, f"alw_ref.{name} has no option {sorted(unknown)} (tutorial: {rest.strip()!r})"
    # an option named in the prose: an option of one of the commands
    every = set().union(*options.values())
    unknown = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text)) - every
    assert not unknown, f"the tutorial names options no command has: {sorted(unknown)}"


def run_tutorial(folder):
    """Run the blocks in ``folder`` with the substitutions; {block index: stdout}."""
    spec_path = folder / "small_spec.json"
    ACSFSpec.default(("Mo",), 4.0, n_radial=4, zetas=(1.0,)).to_json(spec_path)
    bindir = folder / "_bin"
    bindir.mkdir()
    (bindir / "python").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    (bindir / "python").chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONPATH=str(ROOT),
               NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    outputs = {}
    for k, (lang, text) in enumerate(blocks()):
        if lang == "bash":
            script = "\n".join(fast_line(line, spec_path) for line in text.splitlines())
            argv = ["bash", "-e", "-o", "pipefail", "-c", script]
        else:
            script = text
            (folder / "_block.py").write_text(script)
            argv = [sys.executable, "_block.py"]
        proc = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, (f"tutorial block {k} ({lang}) exited {proc.returncode}:\n{script}\n"
                                      f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")
        # Python shows a DeprecationWarning by default only for calls made in __main__: the block's own calls
        assert lang == "bash" or "DeprecationWarning" not in proc.stderr, f"block {k}: deprecated API\n{proc.stderr}"
        outputs[k] = proc.stdout
    return outputs


def block_output(outputs, needle):
    """stdout of the one block whose text contains ``needle``."""
    found = [outputs[k] for k, (_, text) in enumerate(blocks()) if needle in text]
    assert len(found) == 1, f"{len(found)} tutorial blocks contain {needle!r}"
    return found[0]


def test_tutorial_runs(tmp_path):
    langs = [lang for lang, _ in blocks()]
    assert langs.count("python") == 1 and langs.count("bash") >= 7, langs
    text = TUTORIAL.read_text()
    for name in PROMISED:
        assert name.split("/")[-1] in text, f"the test checks {name}, which the tutorial does not mention"

    outputs = run_tutorial(tmp_path)

    missing = [name for name in PROMISED if not (tmp_path / name).is_file()]
    assert not missing, f"files the tutorial promises are missing: {missing}"
    # the per-config_type table of `evaluate run`: one row for each config_type of the test file
    groups = set(read_dataset(tmp_path / "test.h5").config_type)
    assert groups == {"AIMD-NVT", "Elastic", "Surface", "Vacancy"}   # the mlearn Mo test file (examples/README.md)
    table = block_output(outputs, "python -m alw_ref.evaluate run")
    rows = {line.split()[0] for line in table.splitlines() if line.strip()}
    assert groups <= rows, f"evaluate table has no row for {sorted(groups - rows)}:\n{table}"
    # --resume --epochs 2400 ran to 2400 // 300 = 8 epochs in all, one metrics row each
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, 9))
    settings = {name: json.loads((tmp_path / name / "settings.json").read_text()) for name in ("run_s1", "finetuned")}
    # --config kept the rest, as the tutorial says: the resumed run's time limit, not its --resume
    assert settings["run_s1"]["seed"] == 1 and settings["run_s1"]["test_file"] == "test.h5"
    assert settings["run_s1"]["time_limit"] == 60 and settings["run_s1"]["resume"] is False
    assert settings["finetuned"]["init_model"] == "run/best.h5"
    # the MD block: steps 0, 5, ..., 20 with finite energies, the pressure and the committee's deviation
    md = outputs[langs.index("python")]
    steps = [line.split() for line in md.splitlines() if line.startswith("step")]
    assert [int(s[1]) for s in steps] == [0, 5, 10, 15, 20], md
    e_tot = [float(s[s.index("E_tot") + 1]) for s in steps]
    assert all(math.isfinite(e) for e in e_tot), md
    # the tutorial's claim: E_tot constant to a few meV/atom or better (NVE, 1 fs; measured here: 1e-5 eV/atom)
    assert max(e_tot) - min(e_tot) < 0.003, md
    assert re.search(r"^pressure -?\d+\.\d+ GPa$", md, re.MULTILINE), md
    assert re.search(r"^committee: largest force deviation \d+\.\d meV/Å$", md, re.MULTILINE), md
