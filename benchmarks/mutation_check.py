"""Mutation check: plant plausible bugs, one at a time, in a temporary copy of the repository and see which
the tests catch (issue 14, "a habit"). Not in CI (minutes to an hour); run it before resolving an issue that
touches the kernels, the descriptor presets, the trainer, metrics, weighting, the oracle writer or comparison,
the converter, the exporter or the paper-figure aggregates, and quote its table.

    python benchmarks/mutation_check.py                 # every mutant; table + benchmarks/results/mutation_check.json
    python benchmarks/mutation_check.py --list          # the mutants and the tests each runs
    python benchmarks/mutation_check.py --only T01 K02  # some of them (JSON: mutation_check_partial.json)
    python benchmarks/mutation_check.py --only O01 -k "not frozen"   # only the tests matching a pytest -k

How: the tracked and untracked (not ignored) files are copied to a temporary folder with their times (so
Numba's on-disk caches in ``alw_ref/__pycache__``, copied too, stay valid for unmutated modules); the tests
of the mutated file (``TESTS``) are run once unmutated (the baseline must pass), then per mutant with
``pytest -x`` under a time limit, with the copy first on PYTHONPATH (a mutant's own ``select`` and ``-k``
narrow the tests, e.g. the oracle sign mutants run without the frozen-file comparison). The mutated file is restored with its
original time stamp and Numba cache files after each mutant. Outcomes: ``caught`` (a test failed),
``caught (error)`` (collection/import error), ``SURVIVED`` (every test passed), ``timeout``, ``n/a`` (the text
to mutate is not in the file: the mutant list needs updating), ``skipped`` (the file does not exist).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mutation_check.json"

TRAINER_TESTS = ("tests/test_trainloop.py", "tests/test_trainsetup.py", "tests/test_runfiles.py",
                 "tests/test_schedule.py", "tests/test_train.py")
#: Test files run for a mutant of each file, most specific first (missing files are left out).
TESTS = {
    "alw_ref/acsf.py": ("tests/test_acsf.py",),
    "alw_ref/acsf_spec.py": ("tests/test_presets.py", "tests/test_acsf.py"),
    "alw_ref/forces.py": ("tests/test_model.py", "tests/test_loss.py"),
    "alw_ref/model.py": ("tests/test_model.py", "tests/test_loss.py"),
    "alw_ref/loss.py": ("tests/test_loss.py", "tests/test_trainloop.py"),
    "alw_ref/train.py": TRAINER_TESTS,
    "alw_ref/trainloop.py": TRAINER_TESTS,
    "alw_ref/trainsetup.py": ("tests/test_trainsetup.py",) + TRAINER_TESTS,
    "alw_ref/runfiles.py": ("tests/test_runfiles.py",) + TRAINER_TESTS,
    "alw_ref/schedule.py": ("tests/test_schedule.py",) + TRAINER_TESTS,
    "alw_ref/weighting.py": ("tests/test_weighting.py", "tests/test_trainloop.py"),
    "alw_ref/metrics.py": ("tests/test_metrics.py", "tests/test_train.py", "tests/test_trainloop.py",
                           "tests/test_trainsetup.py"),
    "alw_ref/oracle.py": ("tests/test_oracle.py",),
    "alw_ref/oracle_format.py": ("tests/test_oracle.py",),
    "alw_ref/convert.py": ("tests/test_convert.py",),
    "alw_ref/export.py": ("tests/test_export.py",),
    "paper_figures/sweep.py": ("tests/test_paper_figures.py",),
    "paper_figures/fig2_comparison.py": ("tests/test_paper_figures.py",),
    "paper_figures/fig3_weight_trajectories.py": ("tests/test_paper_figures.py",),
    "paper_figures/strategies_table.py": ("tests/test_paper_figures.py",),
}


@dataclass(frozen=True)
class Mutant:
    """Replace the ``nth`` occurrence of ``old`` by ``new`` in ``file``: the bug ``what``. ``select``: a pytest
    ``-k`` expression limiting the mutant's tests (e.g. to show it is caught without a frozen-file comparison)."""

    id: str
    file: str
    what: str
    old: str
    new: str
    nth: int = 1
    select: str | None = None


M = Mutant
#: test_oracle.py without the comparisons with the frozen reference file (which only detect change).
WITHOUT_FROZEN = "not frozen and not recomputed"
MUTANTS = [
    # --- kernels
    M("K01", "alw_ref/acsf.py", "G4 prefactor 2^(-ζ) instead of 2^(1-ζ) (values and derivatives stay consistent)",
      "pre4 = 2.0 ** (1.0 - g4_zeta)", "pre4 = 2.0 ** (-g4_zeta)"),
    M("K02", "alw_ref/acsf.py", "G4 derivative: Gaussian term −ηR instead of −2ηR",
      "a_j = A * (dF4_j - 2.0 * eta * Rj * F)", "a_j = A * (dF4_j - eta * Rj * F)"),
    M("K07", "alw_ref/acsf_spec.py", "trainer preset with ζ = 8 in place of ζ = 16",
      "zetas=(1.0, 2.0, 4.0, 16.0), g5_etas=()", "zetas=(1.0, 2.0, 4.0, 8.0), g5_etas=()"),
    M("K03", "alw_ref/forces.py", "force scatter sign: F_j += instead of −=",
      "F_ic[j, c] -= c_bc[boff_i[i] + k, c]", "F_ic[j, c] += c_bc[boff_i[i] + k, c]"),
    M("K04", "alw_ref/forces.py", "descriptor adjoint of the force loss with the wrong sign",
      "v_ig[i, g] -= dG_dr_bgc[b, g, 0] * f0", "v_ig[i, g] += dG_dr_bgc[b, g, 0] * f0"),
    M("K08", "alw_ref/forces.py", "fused training pass: x force summed with the wrong sign",
      "                f0 -= c0\n", "                f0 += c0\n"),
    M("K09", "alw_ref/forces.py", "fused training pass: the pipelined adjoint update loses the previous group",
      "            plo, phi = lo, hi", "            plo, phi = hi, hi"),
    M("K05", "alw_ref/model.py", "stress sign: σ = −W/V",
      "W_scc / batch.volume_s[:, None, None], np.nan)", "-W_scc / batch.volume_s[:, None, None], np.nan)"),
    M("K06", "alw_ref/loss.py", "energy-loss adjoint not divided by the atom count",
      'u_i = (w["energy"] * factor["energy"] * res["energy"] / batch.n_atoms_s)',
      'u_i = (w["energy"] * factor["energy"] * res["energy"])'),
    # --- trainer
    M("T01", "alw_ref/trainloop.py", "loss weights multiplied by the scales instead of divided",
      "return dict(zip(COMPONENTS, np.asarray(w, float) / term_scales(scales, form)))",
      "return dict(zip(COMPONENTS, np.asarray(w, float) * term_scales(scales, form)))"),
    M("T02", "alw_ref/trainloop.py", "weighting sees the raw training losses, not L_k / s_k",
      "driver.end_epoch(train_parts / tscale)", "driver.end_epoch(train_parts)"),
    M("T03", "alw_ref/trainloop.py", "weighting sees the components in the order (F, E, S)",
      "driver.end_epoch(train_parts / tscale)", "driver.end_epoch((train_parts / tscale)[[1, 0, 2]])"),
    M("T04", "alw_ref/trainloop.py", "validation loss with the current weights instead of the initial w⁰",
      "val_loss = float(np.dot(w0, ", "val_loss = float(np.dot(applied, "),
    M("T05", "alw_ref/trainloop.py", "validation with the raw θ while the EMA θ̄ is saved",
      '    model.theta[:] = st["ema"]\n', "    pass\n"),
    M("T06", "alw_ref/trainloop.py", "models saved with the raw θ while θ̄ is validated",
      'return st["ema"] if settings["ema_decay"] > 0 else st["model"].theta', 'return st["model"].theta'),
    M("T07", "alw_ref/trainloop.py", "best.h5 kept on a higher validation loss",
      'if best is None or row["val_loss"] < best:', 'if best is None or row["val_loss"] > best:'),
    M("T08", "alw_ref/trainloop.py", "schedule one epoch ahead (lr of epoch e+1 used in epoch e)",
      '_set_lr(adam, st["schedule"], epoch - 1)', '_set_lr(adam, st["schedule"], epoch)'),
    M("T09", "alw_ref/trainloop.py", "batches trained with the initial weights while adaptive ones are logged",
      '_effective_weights(driver.current(), st["scales"], form), form)', '_effective_weights(w0, st["scales"], form), form)'),
    M("T10", "alw_ref/trainsetup.py", "stress scale in eV/Å³ instead of GPa",
      "sig = data.stress[with_s].ravel() * EV_PER_A3_TO_GPA", "sig = data.stress[with_s].ravel()"),
    M("T11", "alw_ref/trainsetup.py", "energy scale per structure, not per atom",
      "e_res = (data.energy[idx] - e_atoms) / data.n_atoms[idx]", "e_res = (data.energy[idx] - e_atoms)"),
    M("T12", "alw_ref/trainsetup.py", "a --valid-file still splits a validation part off the dataset",
      "keep = np.array([f[0], 0.0 if has_val else f[1],", "keep = np.array([f[0], f[1],"),
    M("T13", "alw_ref/trainsetup.py", "--min-lr > --lr not checked before the data are read",
      '_check(s["min_lr"] <= s["lr"], ', "_check(True, "),
    M("T14", "alw_ref/train.py", "a folder holding a run is reused without --resume/--overwrite",
      "if held and not (resume or overwrite):", "if False:"),
    M("T15", "alw_ref/train.py", "--resume does not compare the data fingerprint",
      'if ckpt is not None and ckpt["settings"].get("dataset_fingerprint") != fingerprint:', "if False:"),
    M("T16", "alw_ref/runfiles.py", "rows after the checkpoint are kept on resume",
      'rows = [r for r in read_rows(out) if r["epoch"] <= last_epoch]', "rows = read_rows(out)"),
    M("T17", "alw_ref/runfiles.py", "shared instead of exclusive lock: two trainers on one folder",
      "fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)", "fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)"),
    M("T18", "alw_ref/schedule.py", "exponential schedule reaches the floor one epoch late (e/N, not e/(N−1))",
      "x = min(1.0, epoch / max(n_epochs - 1, 1))", "x = min(1.0, epoch / max(n_epochs, 1))"),
    M("T19", "alw_ref/schedule.py", "plateau waits one epoch more than --lr-patience",
      "self._bad >= self.patience:", "self._bad > self.patience:"),
    M("T20", "alw_ref/schedule.py", "EMA without its warm-up",
      "return min(decay, (1.0 + step) / (10.0 + step))", "return decay"),
    # --- weighting
    M("W01", "alw_ref/weighting.py", "slope window ignored (always one epoch)",
      "len(self._losses) - 1 - self.slope_window)", "len(self._losses) - 2)"),
    M("W02", "alw_ref/weighting.py", "--average-epochs ignored (last vector only)",
      "self._current = np.mean(self._computed[-self.average_epochs:], axis=0)",
      "self._current = self._computed[-1]"),
    M("W03", "alw_ref/weighting.py", "SoftAdapt ignores β",
      "return _softmax(beta, s_hat, log_prefactor)", "return _softmax(1.0, s_hat, log_prefactor)"),
    M("W04", "alw_ref/weighting.py", "DWA multiplies by T instead of dividing",
      "return _softmax(1.0 / t, r)", "return _softmax(t, r)"),
    M("W05", "alw_ref/weighting.py", "linear schedule progress e/N instead of e/(N−1)",
      "progress = min(1.0, self.epoch / max(self.n_epochs - 1, 1))", "progress = min(1.0, self.epoch / max(self.n_epochs, 1))"),
    # --- metrics
    M("R01", "alw_ref/metrics.py", "energy errors per structure, not per atom",
      "e_pred.append(pred.energy_s / n)\n        e_ref.append(batch.energy_s / n)",
      "e_pred.append(pred.energy_s)\n        e_ref.append(batch.energy_s)"),
    M("R02", "alw_ref/metrics.py", "stress errors reported in eV/Å³ under the GPa label",
      "s_rmse, s_mae = _rmse_mae(np.asarray(stress_err))",
      "s_rmse, s_mae = _rmse_mae(np.asarray(stress_err) / EV_PER_A3_TO_GPA)"),
    M("R03", "alw_ref/metrics.py", "MPa column = GPa × 100",
      '"stress_rmse_mpa": s_rmse * GPA_TO_MPA', '"stress_rmse_mpa": s_rmse * 100.0'),
    M("R04", "alw_ref/metrics.py", "force errors per atom (|ΔF| summed over x, y, z) instead of per component",
      "f_rmse, f_mae = _rmse_mae(np.asarray(forces_err) * EV_TO_MEV)",
      "f_rmse, f_mae = _rmse_mae(np.abs(np.asarray(forces_err)).sum(axis=1) * EV_TO_MEV)"),
    # --- oracle writer
    # (run without the frozen-file tests: the finite-difference and ASE checks must see the sign on their own)
    M("O01", "alw_ref/oracle.py", "oracle stress written with the opposite sign",
      'pre + "stress": pred.stress_sv[k]', 'pre + "stress": -pred.stress_sv[k]', select=WITHOUT_FROZEN),
    M("O02", "alw_ref/oracle.py", "oracle forces written with the opposite sign",
      'pre + "forces": pred.forces_ic[a0:a1]', 'pre + "forces": -pred.forces_ic[a0:a1]', select=WITHOUT_FROZEN),
    M("O03", "alw_ref/oracle_format.py", "--compare accepts a reference without structures (nothing compared)",
      "if not isinstance(n, (int, np.integer)) or n < 1:", "if not isinstance(n, (int, np.integer)):"),
    # --- converter
    M("C01", "alw_ref/convert.py", "AtomDNN stress kept in the VASP sign",
      "stress=-raw_stress * KBAR_TO_EV_PER_A3", "stress=raw_stress * KBAR_TO_EV_PER_A3"),
    M("C02", "alw_ref/convert.py", "virial converted with σ = +W/V",
      "return -voigt_from_3x3(virial, where) / volume", "return voigt_from_3x3(virial, where) / volume"),
    # --- exporter (n2p2)
    M("X01", "alw_ref/export.py", "n2p2 angular line with ζ and λ swapped",
      "else (eta, lam, zeta, rc)", "else (eta, zeta, lam, rc)"),
    M("X02", "alw_ref/export.py", "first-layer weights not permuted to n2p2's function order",
      "values = [layers[0][0][perm].ravel(), layers[0][1]]", "values = [layers[0][0].ravel(), layers[0][1]]"),
    M("X03", "alw_ref/export.py", "scaling.data with G_mean and G_sigma columns swapped",
      "model.g_mean_eg, model.g_scale_eg))\n", "model.g_scale_eg, model.g_mean_eg))\n"),
    M("X04", "alw_ref/export.py", "output layer exported with the hidden activation instead of linear",
      '" ".join([act] * len(model.hidden) + ["l"])', '" ".join([act] * (len(model.hidden) + 1))'),
    # --- paper-figure aggregates (Tables 1-2, Fig. 2, Fig. 3, strategies table)
    M("P01", "paper_figures/sweep.py", "tables' std over seeds with ddof = 0 instead of the sample std",
      'float(np.std(vals, ddof=1)) if len(vals) > 1', 'float(np.std(vals)) if len(vals) > 1'),
    M("P02", "paper_figures/sweep.py", "table row labelled with another configuration's weights (w_E and w_F swapped)",
      "w_energy=round(w[0], 4), w_forces=round(w[1], 4)", "w_energy=round(w[1], 4), w_forces=round(w[0], 4)"),
    M("P03", "paper_figures/sweep.py", "β not passed to the trainer (every SoftAdapt run trains with β = 1)",
      "**sweep_options, **cfg.options,", "**sweep_options, **{k: v for k, v in cfg.options.items() if k != 'beta'},"),
    M("P04", "paper_figures/sweep.py", "table's train columns taken from the test split",
      "vals = np.array([r[split][METRIC_KEYS[comp]]", 'vals = np.array([r["test"][METRIC_KEYS[comp]]'),
    M("P05", "paper_figures/sweep.py", "stress column in GPa under the MPa label",
      '"stress": "stress_rmse_mpa"}', '"stress": "stress_rmse"}'),
    M("P06", "paper_figures/sweep.py", "a row pools the runs of every configuration whose name starts with its own",
      'r["dataset"] == name and r["config"] == cfg.name]', 'r["dataset"] == name and r["config"].startswith(cfg.name)]'),
    M("P07", "paper_figures/fig2_comparison.py", "Fig. 2 ratio against the worst fixed model instead of the best",
      "best_fixed = min(r[sweep.col(comp)", "best_fixed = max(r[sweep.col(comp)"),
    M("P08", "paper_figures/strategies_table.py", "worst_ratio = min over E, F, S instead of max",
      'r["worst_ratio"] = max(', 'r["worst_ratio"] = min('),
    M("P09", "paper_figures/fig3_weight_trajectories.py", "Fig. 3 std over seeds with ddof = 0",
      "w.std(axis=0, ddof=1)", "w.std(axis=0)"),
]


def repo_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files of the working tree (what the tests see)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                         capture_output=True, check=True).stdout.decode()
    return sorted({f for f in out.split("\0") if f and (root / f).is_file()})


def copy_tree(root: Path, dest: Path) -> None:
    for rel in repo_files(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)                  # keeps the time stamps (Numba's cache key)
    cache = root / "alw_ref" / "__pycache__"
    if cache.is_dir():
        (dest / "alw_ref" / "__pycache__").mkdir(exist_ok=True)
        for p in cache.iterdir():
            if p.suffix in (".nbi", ".nbc"):
                shutil.copy2(p, dest / "alw_ref" / "__pycache__" / p.name)


def tests_for(file: str, tree: Path) -> list[str]:
    seen = []
    for t in TESTS.get(file, ()):
        if t not in seen and (tree / t).is_file():
            seen.append(t)
    return seen


def run_tests(tree: Path, tests: list[str], timeout: float, select: str | None = None) -> tuple[str, str, float]:
    """(outcome, first failing test or error line, seconds) of ``pytest -x`` on ``tests`` in ``tree``
    (only the tests matching the ``pytest -k`` expression ``select``, if given)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), str(tree / "tests")]), NUMBA_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("NUMBA_CACHE_DIR", None)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider", *tests]
    if select:
        cmd += ["-k", select]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "timeout", f"> {timeout:g} s", time.perf_counter() - t0
    dt = time.perf_counter() - t0
    text = proc.stdout + proc.stderr
    if proc.returncode == 0 or (select and proc.returncode == 5):   # 5: -k selected nothing in these files
        return "SURVIVED", "", dt
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", text, flags=re.MULTILINE)
    if proc.returncode == 1 and failed:
        return "caught", failed[0], dt
    last = [line for line in text.splitlines() if line.strip()][-1:] or [f"exit {proc.returncode}"]
    return "caught (error)", (failed[0] if failed else last[0])[:120], dt


def nbcache_files(tree: Path, file: str) -> list[Path]:
    stem = Path(file).stem
    cache = tree / "alw_ref" / "__pycache__"
    return [p for p in cache.glob(f"{stem}.*") if p.suffix in (".nbi", ".nbc")] if cache.is_dir() else []


def run_mutant(tree: Path, mut: Mutant, timeout: float, select: str | None = None) -> dict:
    path = tree / mut.file
    row = {"id": mut.id, "file": mut.file, "bug": mut.what, "tests": tests_for(mut.file, tree), "select": mut.select}
    if not path.is_file():
        return {**row, "outcome": "skipped", "detail": "file absent", "seconds": 0.0}
    text = path.read_text()
    pos = -1
    for _ in range(mut.nth):
        pos = text.find(mut.old, pos + 1)
        if pos < 0:
            return {**row, "outcome": "n/a", "detail": "text to mutate not found: update the mutant", "seconds": 0.0}
    if not row["tests"]:
        return {**row, "outcome": "n/a", "detail": "no test file mapped", "seconds": 0.0}
    stat = path.stat()
    saved = {p: p.read_bytes() for p in nbcache_files(tree, mut.file)}
    stamps = {p: p.stat() for p in saved}
    try:
        path.write_text(text[:pos] + mut.new + text[pos + len(mut.old):])
        both = " and ".join(f"({k})" for k in (select, mut.select) if k) or None
        outcome, detail, dt = run_tests(tree, row["tests"], timeout, both)
    finally:
        path.write_text(text)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        for p in nbcache_files(tree, mut.file):
            if p not in saved:
                p.unlink()
        for p, data in saved.items():
            p.write_bytes(data)
            os.utime(p, ns=(stamps[p].st_atime_ns, stamps[p].st_mtime_ns))
    return {**row, "outcome": outcome, "detail": detail, "seconds": round(dt, 1)}


def table(rows: list[dict]) -> str:
    lines = ["| id | file | planted bug | outcome | first failing test | s |", "|---|---|---|---|---|---|"]
    for r in rows:
        only = f" (tests -k '{r['select']}')" if r.get("select") else ""
        lines.append(f"| {r['id']} | {r['file'].removeprefix('alw_ref/')} | {r['bug']} | {r['outcome']} | "
                     f"{r['detail']}{only} | {r['seconds']:.0f} |")
    counts = {}
    for r in rows:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    planted = sum(v for k, v in counts.items() if k not in ("skipped", "n/a"))
    caught = sum(v for k, v in counts.items() if k.startswith("caught"))
    lines.append(f"\n{caught} of {planted} planted mutants caught; " +
                 ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per mutant's test run (default 900)")
    p.add_argument("--list", action="store_true", help="list the mutants and their tests, run nothing")
    p.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of the tests (not advised)")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON results (default benchmarks/results/mutation_check.json; with --only or -k "
                        "mutation_check_partial.json, so a partial run does not replace the full table)")
    p.add_argument("-k", dest="select", metavar="EXPR",
                   help="run only the tests matching this pytest -k expression (e.g. to see whether a mutant is "
                        "caught without the frozen-file comparison: -k 'not frozen and not recomputed')")
    args = p.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or m.id in args.only]
    unknown = sorted(set(args.only or ()) - {m.id for m in MUTANTS})
    if unknown:
        p.error(f"unknown mutant id(s) {', '.join(unknown)}; --list shows them")
    if args.out is None:
        args.out = RESULTS if not (args.only or args.select) else RESULTS.with_name("mutation_check_partial.json")
    if args.list:
        for m in chosen:
            print(f"{m.id} {m.file}: {m.what}\n    tests: {' '.join(tests_for(m.file, ROOT)) or '-'}")
        return 0
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix="alw_mutation_") as tmp:
        tree = Path(tmp)
        copy_tree(ROOT, tree)
        baseline = {}
        if not args.no_baseline:
            needed = sorted({t for m in chosen if (tree / m.file).is_file() for t in tests_for(m.file, tree)})
            outcome, detail, dt = run_tests(tree, needed, 4 * args.timeout, args.select)
            baseline = {"tests": needed, "outcome": "pass" if outcome == "SURVIVED" else outcome, "detail": detail,
                        "seconds": round(dt, 1)}
            print(f"baseline ({len(needed)} test files, {dt:.0f} s): "
                  f"{'pass' if outcome == 'SURVIVED' else outcome + ' ' + detail}", flush=True)
            if outcome != "SURVIVED":
                print("the unmutated tests do not pass: fix that first", file=sys.stderr)
                return 1
        rows = []
        for m in chosen:
            rows.append(run_mutant(tree, m, args.timeout, args.select))
            r = rows[-1]
            print(f"{r['id']} {r['outcome']:<15} {r['seconds']:>6.0f} s  {r['bug']}  {r['detail']}", flush=True)
    print("\n" + table(rows))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout.strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime(t_start)), "commit": commit,
        "load_average_at_end": os.getloadavg(), "cpu_count": os.cpu_count(), "timeout_s": args.timeout,
        "only": args.only, "select": args.select,
        "wall_s": round(time.time() - t_start), "baseline": baseline, "mutants": rows}, indent=1))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
