"""paper_figures: every script end to end in --quick mode (into a temporary folder), the report's
sections, the run sharing/skip logic, and local-pool vs Dask execution giving the same results."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paper_figures import (fig2_comparison, fig3_weight_trajectories, make_report, strategies_table,  # noqa: E402
                           sweep, table1_fixed_weights, table2_softadapt)

SCRIPTS = (table1_fixed_weights, table2_softadapt, fig2_comparison, fig3_weight_trajectories, strategies_table)
SUMMARY_COLUMNS = ["dataset", "config", "weighting", "w_energy", "w_forces", "w_stress", "n_runs", "epochs",
                   "max_structures", "seeds"] + [f"{sweep.col(c, s)}_{m}" for s in ("train", "test")
                                                 for c in sweep.COMPONENTS for m in ("mean", "std")]


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """All five scripts and the report, --quick, into a temporary folder (shared run folder)."""
    tmp = tmp_path_factory.mktemp("quick")
    out, runs = tmp / "results", tmp / "runs"
    committed = ROOT / "paper_figures" / "REPORT.md"
    before = committed.read_bytes() if committed.exists() else None
    for module in SCRIPTS:
        assert module.main(["--quick", "--out", str(out), "--runs", str(runs)]) == 0
    for module in SCRIPTS[:3]:  # a "longer training" folder (here: the same runs, reused) -> extra section
        assert module.main(["--quick", "--out", str(out / "mote2_long"), "--runs", str(runs)]) == 0
    (out / "incomplete").mkdir()  # a sub-folder without Table 1, Table 2 and Fig. 2: ignored
    assert make_report.main(["--quick", "--out", str(out)]) == 0
    after = committed.read_bytes() if committed.exists() else None
    return dict(out=out, runs=runs, committed_unchanged=before == after)


def test_every_script_writes_csv_png_md(quick):
    for module in SCRIPTS:
        for ext in ("csv", "png", "md"):
            path = quick["out"] / f"{module.NAME}.{ext}"
            assert path.exists() and path.stat().st_size > 0, path
        assert (quick["out"] / f"{module.NAME}.md").read_text().startswith("## ")


def test_summary_csv_columns_and_values(quick):
    for module, n_configs in ((table1_fixed_weights, 6), (table2_softadapt, 4), (strategies_table, 9)):
        rows = _csv(quick["out"] / f"{module.NAME}.csv")
        assert len(rows) == n_configs
        for row in rows:
            assert set(SUMMARY_COLUMNS) <= set(row), set(SUMMARY_COLUMNS) - set(row)
            assert row["dataset"] == "mlearn-mo" and row["n_runs"] == str(sweep.QUICK["seeds"])
            for c in sweep.COMPONENTS:
                assert float(row[sweep.col(c) + "_mean"]) > 0 and float(row[sweep.col(c) + "_std"]) >= 0
    fixed = _csv(quick["out"] / "table1_fixed_weights.csv")
    weights = [tuple(round(float(r[k]), 2) for k in ("w_energy", "w_forces", "w_stress")) for r in fixed]
    assert weights == [tuple(round(w, 2) for w in ws) for ws in table1_fixed_weights.FIXED_WEIGHTS]
    strat = _csv(quick["out"] / "strategies_table.csv")
    assert min(float(r["worst_ratio"]) for r in strat) == pytest.approx(1.0) or \
        all(float(r["worst_ratio"]) >= 1 for r in strat)


def test_fig2_ratios_against_best_fixed(quick):
    rows = _csv(quick["out"] / "fig2_comparison.csv")
    assert {r["component"] for r in rows} == set(sweep.COMPONENTS)
    assert len(rows) == 7 * 3
    for comp in sweep.COMPONENTS:
        rs = [r for r in rows if r["component"] == comp]
        fixed = [float(r["test_rmse_mean"]) for r in rs if r["model"].startswith("fixed")]
        for r in rs:
            assert float(r["ratio_to_best_fixed"]) == pytest.approx(float(r["test_rmse_mean"]) / min(fixed))


def test_fig3_trajectories_match_run_metrics(quick):
    rows = _csv(quick["out"] / "fig3_weight_trajectories.csv")
    assert len({r["start"] for r in rows}) == 4
    assert max(int(r["epoch"]) for r in rows) == sweep.QUICK["epochs"]
    start = [r for r in rows if r["start"] == "(0.9, 0.05, 0.05)" and r["epoch"] == "1"][0]
    assert float(start["w_energy_mean"]) == pytest.approx(0.9)  # epoch 1 uses the initial weights
    # epoch-2 weights = mean over seeds of the runs' own metrics.csv
    cfg = "softadapt-b1-from-0.9-0.05-0.05"
    per_seed = [_csv(quick["runs"] / "mlearn-mo" / cfg / f"seed{s}" / "metrics.csv")[1]["w_forces"]
                for s in range(sweep.QUICK["seeds"])]
    row = [r for r in rows if r["config"] == cfg and r["epoch"] == "2"][0]
    assert float(row["w_forces_mean"]) == pytest.approx(np.mean([float(x) for x in per_seed]))
    for r in rows:
        assert sum(float(r[f"w_{c}_mean"]) for c in sweep.COMPONENTS) == pytest.approx(1.0)


def test_report_has_every_section(quick):
    report = quick["out"] / "REPORT.md"
    text = report.read_text()
    for heading in ("## Caveats", "## The paper's Summary, checked", "**Claim 1", "**Claim 2", "**Claim 3",
                    "## Table 1 beside the paper", "## Table 2 beside the paper", "## Table 1 — fixed loss weights",
                    "## Table 2 — SoftAdapt", "## Fig. 2", "## Fig. 3", "## Beyond the paper", "## Wall time"):
        assert heading in text, heading
    assert "2940.9" in text and "23.54" in text  # the paper's published numbers are shown
    long = text[text.index("## Longer training"):]
    assert "### Table 1 beside the paper" in long and "**Claim 3" in long
    assert "Not run at these settings: fig3_weight_trajectories, strategies_table" in long
    assert "](mote2_long/table1_fixed_weights.png)" in long
    assert text.count("## Longer training") == 1  # the incomplete sub-folder is not a section
    assert "Longer trainings follow the main sweep, each in its own section: mlearn-mo:" in text
    for module in SCRIPTS:
        assert f"]({module.NAME}.png)" in text  # figure links resolve next to the report
    assert quick["committed_unchanged"], "the --quick test must not touch paper_figures/REPORT.md"


def test_finished_runs_are_reused_and_checked(quick):
    timings = _csv(quick["out"] / "timings.csv")
    assert [t["script"] for t in timings] == [m.NAME for m in SCRIPTS]
    assert int(timings[0]["trained"]) == 12  # table 1: 6 configs × 2 seeds
    assert int(timings[1]["trained"]) == 8  # table 2: 4 betas × 2 seeds, none shared with table 1
    assert int(timings[2]["trained"]) == 0  # fig 2 reuses table 1 and table 2
    assert int(timings[3]["trained"]) == 6  # fig 3: 3 new starts, the 1/3 start is table 2's
    run = quick["runs"] / "mlearn-mo" / "fixed-equal" / "seed0"
    metrics = json.loads((run / "test_metrics.json").read_text())
    args = sweep.resolve(_parse(["--quick", "--runs", str(quick["runs"]), "--out", str(quick["out"])]))
    info = sweep.prepare_dataset("mlearn-mo", None)
    (r,) = [x for x in sweep.make_runs(args, table1_fixed_weights.configs()[-1:], {"mlearn-mo": info}) if x.seed == 0]
    result = sweep.run_one(r)
    assert not result["trained"] and result["test"] == metrics["test"]
    changed = sweep.Run(r.dataset, r.config, r.seed, r.dataset_path, r.out, dict(r.kwargs, epochs=99))
    with pytest.raises(ValueError, match="epochs"):
        sweep.run_one(changed)


def _parse(argv):
    import argparse

    p = argparse.ArgumentParser()
    sweep.add_arguments(p)
    return p.parse_args(argv)


def test_dask_cluster_gives_the_same_results(tmp_path):
    distributed = pytest.importorskip("dask.distributed", reason="dask[distributed] not installed (optional "
                                                                 "extra 'dask'): the Dask path is untested here")
    info = sweep.prepare_dataset("mlearn-mo", None)
    cfgs = [sweep.Config("softadapt-b1", dict(weighting="softadapt", beta=1.0)),
            sweep.Config("fixed-equal", dict(weighting="fixed"))]

    def runs(folder):
        args = sweep.resolve(_parse(["--quick", "--epochs", "2", "--seeds", "1", "--runs", str(folder),
                                     "--out", str(tmp_path)]))
        return sweep.make_runs(args, cfgs, {"mlearn-mo": info})

    local = sweep.execute(runs(tmp_path / "local"), workers=2)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False) as cluster, \
            distributed.Client(cluster) as client:
        remote = sweep.execute(runs(tmp_path / "dask"), scheduler=client)
    assert [(r["config"], r["seed"]) for r in local] == [(r["config"], r["seed"]) for r in remote]
    for a, b in zip(local, remote):
        assert a["trained"] and b["trained"]
        for split in ("train", "test"):
            for key in ("energy_rmse", "forces_rmse", "stress_rmse"):
                assert a[split][key] == pytest.approx(b[split][key], rel=1e-8)
