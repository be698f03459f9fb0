"""paper_figures: every script end to end in --quick mode (into a temporary folder), the report's
sections, the run sharing/skip logic, and local-pool vs Dask execution giving the same results.

The tables' and figures' numbers (means, sample stds, ratios, weight trajectories) are recomputed here with
NumPy from each run's own folder (settings.json, metrics.csv, test_metrics.json), the runs of a row found by
their settings, never from the CSV that is checked (issue 14)."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paper_figures import configs as catalogue  # noqa: E402
from paper_figures import (converged, fig2_comparison, fig3_weight_trajectories, make_report,  # noqa: E402
                           strategies_table, sweep, table1_fixed_weights, table2_softadapt)

SCRIPTS = (table1_fixed_weights, table2_softadapt, fig2_comparison, fig3_weight_trajectories, strategies_table)
#: Report columns of every summary CSV and where each number comes from, typed in here (not taken from
#: paper_figures.sweep): column stem -> (key of the run's test_metrics.json, factor to the report unit).
#: test_metrics.json holds energy in meV/atom, forces in meV/Å and stress in GPa; the tables state MPa.
REPORT_METRICS = {"energy_rmse_meV_atom": ("energy_rmse", 1.0), "forces_rmse_meV_A": ("forces_rmse", 1.0),
                  "stress_rmse_MPa": ("stress_rmse", 1000.0)}
SUMMARY_COLUMNS = ["dataset", "config", "weighting", "w_energy", "w_forces", "w_stress", "n_runs", "epochs",
                   "max_structures", "seeds"] + [f"{split}_{stem}_{m}" for split in ("train", "test")
                                                 for stem in REPORT_METRICS for m in ("mean", "std")]
W_COLUMNS = ("w_energy", "w_forces", "w_stress")
#: The paper's Table 1 weights (w_E, w_F, w_S) in its order and Table 2's β, typed in from the paper.
PAPER_TABLE1 = ((1.0, 0.0, 0.0), (0.9, 0.1, 0.0), (0.9, 0.05, 0.05), (0.05, 0.9, 0.05), (0.05, 0.05, 0.9),
                (1 / 3, 1 / 3, 1 / 3))
PAPER_BETAS = (0.01, 0.1, 1.0, 2.0)
#: Aggregates are recomputed here with NumPy from each run's own files: CSV floats round-trip exactly and a
#: mean / sample std of two numbers is the same few float operations, so they agree to 1e-12 relative.
REL = 1e-12


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
    conv = tmp / "converged"  # the converged sweep, priorities 1 and 3 only (priority 2 "not started")
    assert converged.main(["--quick", "--priorities", "1", "--time-epochs", "2", "--runs", str(conv / "runs")]) == 0
    assert converged.main(["--quick", "--priorities", "1", "3", "--runs", str(conv / "runs")]) == 0
    assert make_report.main(["--quick", "--out", str(out), "--converged", str(conv)]) == 0
    after = committed.read_bytes() if committed.exists() else None
    return dict(out=out, runs=runs, conv=conv, committed_unchanged=before == after)


def test_every_script_writes_csv_png_md(quick):
    for module in SCRIPTS:
        for ext in ("csv", "png", "md"):
            path = quick["out"] / f"{module.NAME}.{ext}"
            assert path.exists() and path.stat().st_size > 0, path
        assert (quick["out"] / f"{module.NAME}.md").read_text().startswith("## ")


@pytest.fixture(scope="module")
def runs(quick):
    """Every run folder of the quick sweep, read here from its own files: {"config" (folder name), "seed",
    "settings" (settings.json), "metrics" (test_metrics.json), "rows" (metrics.csv, one per epoch)}."""
    out = []
    for path in sorted((quick["runs"] / "mlearn-mo").glob("*/seed*/settings.json")):
        folder = path.parent
        out.append(dict(config=folder.parent.name, seed=int(folder.name.removeprefix("seed")),
                        settings=json.loads(path.read_text()),
                        metrics=json.loads((folder / "test_metrics.json").read_text()),
                        rows=_csv(folder / "metrics.csv")))
    return out


def _describes(row, settings):
    """Whether a summary row's own description (weighting, weights, β, variant, ...) is that run's settings.json."""
    if settings["weighting"] != row["weighting"]:
        return False
    if not np.allclose(settings["weights"], [float(row[c]) for c in W_COLUMNS], rtol=0, atol=1e-4):  # 4 digits
        return False
    if row["weighting"] == "softadapt":
        return (settings["beta"] == float(row["beta"]) and settings["softadapt_variant"] == row["variant"]
                and str(settings["loss_weighted"]) == row["loss_weighted"])
    if row["weighting"] == "linear":
        return np.allclose(settings["limit_weights"], [float(x) for x in row["limit_weights"].split(",")])
    return True


def _runs_of(row, runs):
    """The runs a summary row describes (found by their settings.json, not by the row's config name), one per
    seed, all in the folder the row names."""
    rs = [r for r in runs if _describes(row, r["settings"])]
    assert sorted(r["seed"] for r in rs) == list(range(sweep.QUICK["seeds"])), (row["config"], len(rs))
    assert {r["config"] for r in rs} == {row["config"]}
    return rs


def _seed_values(rs, split, stem):
    """Per-seed RMSE of the runs in the report unit, from each run's test_metrics.json."""
    key, factor = REPORT_METRICS[stem]
    return np.array([r["metrics"][split][key] * factor for r in rs])


def _check_summary_row(row, rs):
    """Mean and sample std (ddof = 1) over seeds of each run's train and test RMSE; the best epoch's mean,
    each best epoch being the lowest validation loss of the run's metrics.csv."""
    assert row["dataset"] == "mlearn-mo" and int(row["n_runs"]) == len(rs)
    for split in ("train", "test"):
        for stem in REPORT_METRICS:
            v = _seed_values(rs, split, stem)
            name = f"{split}_{stem}"
            assert float(row[name + "_mean"]) == pytest.approx(v.mean(), rel=REL), (row["config"], name)
            assert float(row[name + "_std"]) == pytest.approx(v.std(ddof=1), rel=REL), (row["config"], name)
    best = [1 + int(np.argmin([float(e["val_loss"]) for e in r["rows"]])) for r in rs]
    assert best == [r["metrics"]["best_epoch"] for r in rs]
    assert float(row["best_epoch_mean"]) == pytest.approx(np.mean(best), rel=REL)


def _trajectory(run):
    """(epochs, 3) weights applied in each epoch, from the run's metrics.csv."""
    return np.array([[float(e[c]) for c in W_COLUMNS] for e in run["rows"]])


def _train_losses(run):
    """(epochs, 3) training-set loss parts L_E, L_F, L_S of each epoch (eV/atom, eV/Å, GPa), from metrics.csv."""
    return np.array([[float(e[f"train_L_{c}"]) for c in sweep.COMPONENTS] for e in run["rows"]])


def paper_softadapt(L_prev, L_now, beta, eps=1e-8):
    """The paper's SoftAdapt (Eqs. 6-7, L2-normalised slopes, as its code ran it), written out here:
    s = L(t) - L(t-1), ŝ = s / (‖s‖₂ + ε), w_k = exp(β ŝ_k) / Σ_l exp(β ŝ_l)."""
    s = np.asarray(L_now, float) - np.asarray(L_prev, float)
    z = np.exp(beta * s / (np.linalg.norm(s) + eps))
    return z / z.sum()


def test_summary_csv_columns_and_values(quick, runs):
    """Tables 1, 2 and the strategies table: each row is the mean and sample std over seeds of the runs its own
    columns describe (found by their settings.json), recomputed here from each run's test_metrics.json
    (stress GPa × 1000 = MPa), to 1e-12 relative; Table 1's rows are the paper's weights in its order, Table
    2's the paper's β from ⅓ each."""
    for module, n_configs in ((table1_fixed_weights, 6), (table2_softadapt, 4), (strategies_table, 9)):
        rows = _csv(quick["out"] / f"{module.NAME}.csv")
        assert len(rows) == n_configs
        for row in rows:
            assert set(SUMMARY_COLUMNS) <= set(row), set(SUMMARY_COLUMNS) - set(row)
            _check_summary_row(row, _runs_of(row, runs))
    fixed = _csv(quick["out"] / "table1_fixed_weights.csv")
    assert [r["weighting"] for r in fixed] == ["fixed"] * 6
    for row, weights in zip(fixed, PAPER_TABLE1):
        np.testing.assert_allclose([float(row[c]) for c in W_COLUMNS], weights, rtol=0, atol=1e-4)
    table2 = _csv(quick["out"] / "table2_softadapt.csv")
    assert [float(r["beta"]) for r in table2] == list(PAPER_BETAS)
    for row in table2:
        assert row["weighting"] == "softadapt" and row["variant"] == "l2" and row["loss_weighted"] == "False"
        np.testing.assert_allclose([float(row[c]) for c in W_COLUMNS], 1 / 3, rtol=0, atol=1e-4)
    strat = _csv(quick["out"] / "strategies_table.csv")
    assert len({r["config"] for r in strat}) == 9


def test_strategies_worst_ratio_from_the_runs(quick, runs):
    """worst_ratio = max over E, F, S of (the row's seed-mean test RMSE / the lowest seed-mean test RMSE of that
    component among the table's strategies), every mean recomputed from the runs' files; 1e-12 relative."""
    strat = _csv(quick["out"] / "strategies_table.csv")
    means = np.array([[_seed_values(_runs_of(row, runs), "test", stem).mean() for stem in REPORT_METRICS]
                      for row in strat])
    want = (means / means.min(axis=0)).max(axis=1)
    np.testing.assert_allclose([float(r["worst_ratio"]) for r in strat], want, rtol=REL)
    assert want.min() >= 1.0 and want.max() > 1.0  # the table really compares: somebody is worse somewhere


def test_fig2_ratios_against_best_fixed(quick, runs):
    """Fig. 2: per component, each model's seed-mean (sample std) test RMSE and its ratio to the lowest seed-mean
    of the six fixed-weight models, all recomputed from the runs' files (the fixed models found by their
    settings.json); each model's label is its runs' settings; 1e-12 relative."""
    rows = _csv(quick["out"] / "fig2_comparison.csv")
    assert len(rows) == 7 * 3 and {r["component"] for r in rows} == set(sweep.COMPONENTS)
    fixed_configs = {r["config"] for r in runs if r["settings"]["weighting"] == "fixed"}
    assert len(fixed_configs) == 6
    stems = dict(zip(sweep.COMPONENTS, REPORT_METRICS))
    for row in rows:
        rs = [r for r in runs if r["config"] == row["config"]]
        assert sorted(r["seed"] for r in rs) == list(range(sweep.QUICK["seeds"]))
        settings = rs[0]["settings"]
        if row["model"].startswith("fixed"):
            assert settings["weighting"] == "fixed"
            label = [float(x) for x in re.findall(r"[\d.]+", row["model"])]
            np.testing.assert_allclose(settings["weights"], label, rtol=0, atol=0.005)  # label: 2 digits
        else:
            assert row["model"] == "SoftAdapt β=1" and settings["weighting"] == "softadapt"
            assert settings["beta"] == 1.0 and settings["softadapt_variant"] == "l2"
            np.testing.assert_allclose(settings["weights"], 1 / 3, rtol=1e-15)
        stem = stems[row["component"]]
        v = _seed_values(rs, "test", stem)
        best_fixed = min(_seed_values([r for r in runs if r["config"] == c], "test", stem).mean()
                         for c in fixed_configs)
        assert float(row["test_rmse_mean"]) == pytest.approx(v.mean(), rel=REL)
        assert float(row["test_rmse_std"]) == pytest.approx(v.std(ddof=1), rel=REL)
        assert float(row["ratio_to_best_fixed"]) == pytest.approx(v.mean() / best_fixed, rel=REL)


def test_table2_beta_runs_differ_and_follow_their_beta(quick, runs):
    """Table 2's β runs are four different trainings: each run's settings.json carries its row's β (paper
    protocol: l2 slopes over one epoch, raw terms); per seed their weight trajectories (metrics.csv) differ from
    epoch 2 on; and the weights of epoch 3 are the paper's SoftAdapt of the logged training losses of epochs
    1 and 2 with that β (1e-9 relative; ε = 1e-8 in the formula), which the other β's of the table do not give
    (the check can tell them apart). Epoch 2's weights come from the untrained model's L(0), not logged."""
    rows = _csv(quick["out"] / "table2_softadapt.csv")
    by_beta = {}
    for row in rows:
        rs = _runs_of(row, runs)
        for r in rs:
            st = r["settings"]
            assert st["beta"] == float(row["beta"]) and st["weighting"] == "softadapt"
            assert (st["softadapt_variant"], st["slope_window"], st["average_epochs"], st["loss_scale"],
                    st["softadapt_prior"]) == ("l2", 1, 1, "none", False)
        by_beta[float(row["beta"])] = {r["seed"]: r for r in rs}
    assert sorted(by_beta) == sorted(PAPER_BETAS)
    for seed in range(sweep.QUICK["seeds"]):
        w = {b: _trajectory(by_beta[b][seed]) for b in PAPER_BETAS}
        for b in PAPER_BETAS:
            np.testing.assert_allclose(w[b][0], 1 / 3, rtol=1e-15)      # epoch 1: the initial weights
            L = _train_losses(by_beta[b][seed])
            np.testing.assert_allclose(w[b][2], paper_softadapt(L[0], L[1], b), rtol=1e-9, err_msg=f"β {b}")
            for other in PAPER_BETAS:
                if other != b:
                    assert np.abs(paper_softadapt(L[0], L[1], other) - w[b][2]).max() > 1e-4, (b, other)
                    assert np.abs(w[b][1:] - w[other][1:]).max() > 1e-4, (seed, b, other)


def test_fig3_trajectories_match_run_metrics(quick, runs):
    """Fig. 3: every (start, epoch) row is the mean and sample std over seeds of the weights applied in that
    epoch, read from each run's metrics.csv; the runs are SoftAdapt β = 1 from the row's start (their
    settings.json); 1e-12 relative (absolute 1e-15 for a std of 0)."""
    rows = _csv(quick["out"] / "fig3_weight_trajectories.csv")
    starts = {(0.9, 0.05, 0.05), (0.05, 0.9, 0.05), (0.05, 0.05, 0.9), (1 / 3, 1 / 3, 1 / 3)}
    assert len({r["start"] for r in rows}) == 4 and len(rows) == 4 * sweep.QUICK["epochs"]
    seen = set()
    for row in rows:
        rs = sorted((r for r in runs if r["config"] == row["config"]), key=lambda r: r["seed"])
        assert [r["seed"] for r in rs] == list(range(sweep.QUICK["seeds"]))
        for r in rs:
            st = r["settings"]
            assert st["weighting"] == "softadapt" and st["beta"] == 1.0 and st["softadapt_variant"] == "l2"
            np.testing.assert_allclose(st["weights"], [float(x) for x in re.findall(r"[\d.]+", row["start"])],
                                       rtol=0, atol=0.005)               # the label has 2 digits
        seen.add(min(starts, key=lambda s: np.abs(np.subtract(s, rs[0]["settings"]["weights"])).max()))
        w = np.stack([_trajectory(r)[int(row["epoch"]) - 1] for r in rs])
        np.testing.assert_allclose([float(row[f"{c}_mean"]) for c in W_COLUMNS], w.mean(axis=0), rtol=REL)
        np.testing.assert_allclose([float(row[f"{c}_std"]) for c in W_COLUMNS], w.std(axis=0, ddof=1), rtol=REL,
                                   atol=1e-15)
        if row["epoch"] == "1":                                          # epoch 1 uses the initial weights
            np.testing.assert_allclose(w, np.broadcast_to(rs[0]["settings"]["weights"], w.shape), rtol=1e-15)
    assert seen == starts
    assert max(int(r["epoch"]) for r in rows) == sweep.QUICK["epochs"]


def test_report_has_every_section(quick):
    text = (quick["out"] / "REPORT.md").read_text()
    head, appendix = text.split("## Appendix: capped runs")
    for heading in ("## Converged runs at the paper's scale", "### Cost and progress",
                    "### The paper's Summary, checked on the converged runs", "**Priority-1 comparisons",
                    "### Table 1 beside the paper", "### Table 2 beside the paper",
                    "### Per run: convergence epoch and time", "### SoftAdapt's dynamics", "**Fig. 3's claim",
                    "### Priority 4: the method with the trainer's recommended protocol",
                    "| mlearn-mo | recommended | fixed ⅓ | 0 of 3 | not finished |"):
        assert heading in head, heading
    # claims wait for their runs: priority 2 (fixed (1, 0, 0) and the prioritised models) was not run
    assert "*Claim on stress: waiting for the runs fixed-1-0-0" in head and "**Claim 1" not in head
    assert "[`converged_runs.csv`]" in head and "softadapt_dynamics.png)" in head
    assert "### Fig. 2 beside the paper" in head and "fig2_comparison.png)" in head
    assert (quick["conv"] / "fig2_comparison.png").stat().st_size > 0
    # the seeds of each bar, from the runs: priority 1 has 3 seeds of its four configurations
    assert "fixed (0.9, 0.1, 0): 3, fixed (0.9, 0.05, 0.05): 3, fixed (0.33, 0.33, 0.33): 3, SoftAdapt β=1: 3" in head
    for heading in ("### Longest capped training", "**Claim 1", "**Claim 2", "**Claim 3",
                    "#### The other capped trainings", "#### Wall time of the main capped sweep",
                    "#### Caveats of the capped runs"):
        assert heading in appendix, heading
    # the longest is the sub-folder; the main sweep is linked; the incomplete sub-folder is not a section
    assert appendix.count("### Longest capped training") == 1 and appendix.count("[Table 1](") == 1
    assert "2940.9" in text and "23.54" in text  # the paper's published numbers are shown
    assert "](mote2_long/table1_fixed_weights.md)" in appendix  # links resolve next to the report
    assert "[Table 1](table1_fixed_weights.md)" in appendix
    assert quick["committed_unchanged"], "the --quick test must not touch paper_figures/REPORT.md"


def test_converged_tables_are_the_finished_runs_mean_and_std(quick):
    """Table 1's fixed-⅓ cells and the per-run rows come from the runs' own test_metrics.json (recomputed here
    with NumPy from the files); priority 2's runs are listed as not started and cost time in the estimate."""
    runs = quick["conv"] / "runs" / "mlearn-mo"
    energy = [json.loads((runs / "fixed-equal" / f"seed{s}" / "test_metrics.json").read_text())["test"]["energy_rmse"]
              for s in range(3)]
    text = (quick["out"] / "REPORT.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| (0.33, 0.33, 0.33) | 5.41"))
    assert sweep.fmt(np.mean(energy), np.std(energy, ddof=1)) in row
    rows = _csv(quick["conv"] / "converged_runs.csv")
    assert len(rows) == 27 and [r["state"] for r in rows].count("finished") == 15   # 12 + 6 + 3 + 6 planned
    new = {c.name for c in catalogue.priority_configs(2) + catalogue.priority_configs(4)}
    assert {r["config"] for r in rows if r["state"] == "new"} == new
    cost = text[text.index("Cost left, by priority"):]
    assert "| 1 | 12 | 12 | 0 | 0 | 0.0 |" in cost and "| 2 | 6 | 0 | 0 | 6 | " in cost and "| 4 | 6 | 0 | 0 | 6 | " in cost
    measured = json.loads((quick["conv"] / "epoch_time.json").read_text())
    assert measured["epochs"] == 2 and len(measured["epoch_wall_s"]) == 2 and 0 < measured["cpu_share"] <= 1.05
    assert "Measured (" in text and "dedicated core" in text  # the measured epoch time is stated
    # the workers' memory: the largest peak RSS any finished run's run_info.json recorded, and its parts
    mem = [g for s in range(3) for g in json.loads((runs / "fixed-equal" / f"seed{s}" / "run_info.json").read_text())
           ["segments"]]
    assert mem and all(g["peak_rss_gib"] >= g["rss_file_gib"] + g["rss_anon_gib"] - 0.01 > 0 for g in mem)
    line = next(x for x in text.splitlines() if x.startswith("Memory per worker on mlearn-mo"))
    segs = [g for r in rows if r["state"] == "finished"
            for g in json.loads((quick["conv"] / "runs" / r["dataset"] / r["config"] / f"seed{r['seed']}" /
                                 "run_info.json").read_text())["segments"]]
    top = max(segs, key=lambda g: g["rss_file_gib"] + g["rss_anon_gib"])
    assert f"peak RSS {max(g['peak_rss_gib'] for g in segs):.1f} GiB" in line
    assert f"{top['rss_file_gib'] + top['rss_anon_gib']:.1f} GiB were resident" in line
    assert (quick["conv"] / "softadapt_dynamics.png").stat().st_size > 0


def test_running_mean_and_flip_statistics_by_hand():
    from paper_figures import converged_report as cr

    x = np.array([[1.0], [3.0], [5.0], [7.0]])
    assert cr.running_mean(x, window=2)[:, 0].tolist() == [1.0, 2.0, 4.0, 6.0]
    # weights alternate between favouring E and favouring S; the stress loss moves most and flips sign
    w = np.array([[0.6, 0.2, 0.2], [0.2, 0.2, 0.6], [0.6, 0.2, 0.2], [0.2, 0.2, 0.6]])
    L = np.array([[1.0, 1.0, 5.0], [0.99, 0.99, 4.0], [0.98, 0.98, 4.5], [0.97, 0.97, 4.2]])
    s = cr.flip_statistics(w, L)
    assert s["switch"] == 1.0 and s["top_share"] == [0.5, 0.0, 0.5] and s["lead_share"] == [0.0, 0.0, 1.0]
    assert s["sign_flip"] == [0.0, 0.0, 1.0]


def test_priority4_section_by_hand():
    """Priority 4's table and verdicts from made-up finished runs: means, sample stds and ratios worked out
    here; a difference within the seeds' spread is called so; an unfinished configuration says so."""
    from paper_figures import converged_report as cr

    cfgs = {c.name: c for c in catalogue.priority_configs(1) + catalogue.priority_configs(4)}

    def rec(config, seed, e, f, s, priority=1, state="finished"):
        return dict(priority=priority, dataset="mote2", config=config, cfg=cfgs[config], seed=seed, state=state,
                    best_epoch=100 * (seed + 1), epochs=100 * (seed + 1) + 200, epoch_cpu_s=2.0, wall_s=None,
                    test=dict(energy_rmse=e, forces_rmse=f, forces_mae=f / 2 if f != 140.0 else 40.0,
                              stress_rmse_mpa=s))

    fixed, soft = catalogue.fixed(catalogue.EQUAL).name, catalogue.SOFTADAPT_B1
    rfixed, rsoft = (c.name for c in catalogue.priority_configs(4))
    records = [rec(fixed, 0, 5.0, 140.0, 30.0), rec(fixed, 1, 7.0, 160.0, 40.0),
               rec(rfixed, 0, 2.0, 70.0, 20.0, 4), rec(rfixed, 1, 4.0, 90.0, 60.0, 4),
               rec(soft, 0, 4.0, 150.0, 35.0), rec(rsoft, 0, 0.0, 0.0, 0.0, 4, "new")]
    text = cr.protocol_section(records, {"fixed ⅓": (5.41, 25.5, 22.44)}, [25.5, 20.0, 40.0])
    assert "| paper's MoTe2 | paper (published) | fixed ⅓ |  | 5.41 | 25.5 | 22.44 |" in text
    sd = np.std([5.0, 7.0], ddof=1)
    sf = np.std([140.0, 160.0], ddof=1)
    assert f"| mote2 | paper | fixed ⅓ | 2 of 2 | {sweep.fmt(6.0, sd)} | {sweep.fmt(150.0, sf)} |" in text
    assert "| mote2 | recommended | SoftAdapt β = 1 | 0 of 1 | not finished |" in text
    # convergence epoch (100 + 200) / 2, 2 CPU s per epoch, (300 + 400) epochs × 2 s / 2 runs = 0.19 core-hours
    assert "| 150 | 2.00 | 0.19 |" in text
    # recommended over paper, fixed ⅓: E 3/6, F 80/150, S 40/35 (within the spread: |40 − 35| < √(28.3² + 7.1²))
    assert ("mote2, fixed ⅓: the recommended protocol's test RMSE is E × 0.50, F × 0.53, S × 1.14 (within spread)"
            in text)
    assert "recommended protocol: SoftAdapt" not in text  # no finished recommended SoftAdapt run to compare
    # forces: five finished runs, 70-160 meV/Å against the paper's 20-40: best 3.5×; fixed ⅓ 80 / 150 = × 0.53
    assert "The 5 finished mote2 runs that train forces reach a test force RMSE of 70–160 meV/Å" in text
    assert "against 20–40 meV/Å in the paper's Tables 1–2: our best is 3.5× the paper's best" in text
    # fixed ⅓ recommended over paper: MAE (35 + 45) / (40 + 80) = 0.67, RMSE 80 / 150 = 0.53
    assert "changes fixed ⅓'s force MAE by × 0.67 and its RMSE by × 0.53 (2 and 2 seeds)." in text
    # MAE: half the RMSE except fixed ⅓ seed 0 (140 against 40: ratio 3.5); SoftAdapt 75/150 vs fixed (40 + 80) / 2
    assert "Their test force MAE is 35–80 meV/Å and the RMSE/MAE ratio 2.00–3.50" in text
    assert "a few structures make much of the RMSE (largest ratio: fixed-equal seed 0, RMSE 140 against MAE 40" in text
    assert ("SoftAdapt β = 1 against fixed ⅓ (paper protocol, 1 and 2 seeds): force MAE 75.0 vs 60.0 meV/Å (× 1.25), "
            "RMSE 150 vs 150 (× 1.00).") in text


def test_cost_left_by_protocol_by_hand():
    """The estimate counts each protocol at its own epoch cost and length: paper-protocol runs at the median CPU
    s/epoch and mean epochs of the finished paper-protocol runs, the trainer's protocol at its own."""
    from paper_figures import converged_report as cr

    paper, rec = catalogue.fixed(catalogue.EQUAL), catalogue.priority_configs(4)[0]

    def r(priority, cfg, state, epochs, cpu):
        return dict(priority=priority, dataset="mote2", cfg=cfg, config=cfg.name, state=state, epochs=epochs,
                    epoch_cpu_s=cpu, epoch_wall_median=2 * cpu if cpu else None)

    records = [r(1, paper, "finished", 1000, 1.0), r(1, paper, "finished", 1200, 1.0), r(2, paper, "new", 0, None),
               r(4, rec, "finished", 600, 2.5), r(4, rec, "new", 0, None)]
    epoch_time = dict(epoch_wall_s=[9.0], cpu_share=0.5, measured_utc="x", epochs=1, dataset="mote2",
                      n_structures=10, load_average=[1.0, 1.0, 1.0], peak_rss_gib=1.0)
    text = cr.cost_section(records, epoch_time, {"mote2": {"n_atoms": 540}})
    assert "paper-protocol runs measure 1.00 s of CPU per epoch" in text and "2.50 s (median over 1)" in text
    # priority 2: 1 100 epochs × 1.0 s = 0.31 h; priority 4: 600 epochs × 2.5 s = 0.42 h
    assert "| 2 | 1 | 0 | 0 | 1 | 0.3 |" in text and "| 4 | 2 | 1 | 0 | 1 | 0.4 |" in text


def test_weight_excursion_by_hand(tmp_path):
    """Largest |w − ⅓| after the first epochs, over the runs' metrics.csv (epochs 1-2 skipped here)."""
    from paper_figures import converged_report as cr

    for name, rows in (("a", [(0.9, 0.05, 0.05), (0.5, 0.3, 0.2), (0.3, 0.4, 0.3)]),
                       ("b", [(0.1, 0.1, 0.8), (0.3, 0.3, 0.4), (0.33, 0.33, 0.34), (0.2, 0.5, 0.3)])):
        (tmp_path / name).mkdir()
        lines = ["w_energy,w_forces,w_stress,train_L_energy,train_L_forces,train_L_stress"]
        lines += [f"{e},{f},{s},1,1,1" for e, f, s in rows]
        (tmp_path / name / "metrics.csv").write_text("\n".join(lines) + "\n")
    runs = [dict(out=str(tmp_path / n)) for n in "ab"]
    third = 1 / 3
    dev = [abs(x - third) for x in (0.3, 0.4, 0.3, 0.33, 0.33, 0.34, 0.2, 0.5, 0.3)]
    assert cr.weight_excursion(runs, skip=2) == pytest.approx((0.5 - third, np.mean(dev)))  # b's epoch 4, w_F
    assert cr.weight_excursion(runs[:1], skip=2) == pytest.approx((0.4 - third, np.mean(dev[:3])))
    assert cr.weight_excursion(runs, skip=5) is None and cr.weight_excursion([]) is None


def test_driver_statistics_by_hand():
    """The weights of epoch e+1 answer the change of epoch e: w_S after the stress loss rose (epochs 2, 4)
    and fell (epoch 3); the late step and volatility over the last half of the changes."""
    from paper_figures import converged_report as cr

    L = np.array([[1.0, 2.0, 1.0], [1.0, 1.9, 1.2], [1.0, 1.8, 1.1], [1.0, 1.7, 1.3], [1.0, 1.6, 1.0]])
    w = np.array([[0.3, 0.3, 0.4], [0.3, 0.3, 0.4], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2], [0.2, 0.2, 0.6]])
    d = cr.driver_statistics(w, L, tail=0.5)
    assert d["w_after_rise"][2] == pytest.approx((0.5 + 0.6) / 2) and d["w_after_fall"][2] == pytest.approx(0.2)
    assert d["w_after_fall"][1] == pytest.approx((0.3 + 0.4 + 0.2) / 3) and np.isnan(d["w_after_rise"][1])
    assert np.isnan(d["w_after_rise"][0]) and np.isnan(d["w_after_fall"][0])  # E never moves
    assert d["step"] == pytest.approx([0.0, 0.1, 0.25]) and d["volatility"][2] == pytest.approx(0.25 / 1.15)
    text = cr.driver_text([d], [[0.0, 0.25, 0.75]])
    assert "the stress term has the largest change in 75% of the epochs" in text
    assert "w_S averages 0.55 the next epoch; after it fell, 0.20" in text and "most volatile" in text


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
    """A tiny converged sweep (two configurations, patience 2, at most 4 epochs) through a Dask LocalCluster
    and through a local process pool: the same runs, the same numbers, bit for bit."""
    distributed = pytest.importorskip("dask.distributed", reason="dask[distributed] not installed (optional "
                                                                 "extra 'dask', in the test extras)")
    info = sweep.prepare_dataset("mlearn-mo", None)
    items = [(1, "mlearn-mo", cfg, 0) for cfg in (catalogue.softadapt(1.0), catalogue.fixed(catalogue.EQUAL))]

    def runs(folder):
        return [converged.make_run(i, info, folder, patience=2, epochs=4, hidden=(8, 8)) for i in items]

    local = converged.execute(runs(tmp_path / "local"), workers=2)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False) as cluster, \
            distributed.Client(cluster) as client:
        remote = converged.execute(runs(tmp_path / "dask"), scheduler=client)
    assert [(r["config"], r["seed"]) for r in local] == [(r["config"], r["seed"]) for r in remote]
    for a, b in zip(local, remote):
        assert "error" not in a and "error" not in b
        assert a["trained"] and b["trained"] and a["best_epoch"] == b["best_epoch"]
        assert a["train"] == b["train"] and a["test"] == b["test"]
        assert _epoch_rows(Path(a["out"])) == _epoch_rows(Path(b["out"]))


def _epoch_rows(folder):
    """metrics.csv of a run without the per-epoch wall time (the only column allowed to differ)."""
    return [{k: v for k, v in r.items() if k != "time_s"} for r in _csv(folder / "metrics.csv")]


def _dying_record_epoch(monkeypatch, should_die):
    """Make the trainer die (as under kill -9) right after it wrote the checkpoint of an epoch where
    ``should_die(epoch, state)`` holds: everything on disk is what a killed run leaves."""
    from alw_ref import trainloop

    original = trainloop._checkpoint

    def checkpoint(out, settings, st):
        original(out, settings, st)
        if st["epoch"] > 0 and should_die(st["epoch"], st):
            raise KeyboardInterrupt(f"killed after epoch {st['epoch']}")

    monkeypatch.setattr(trainloop, "_checkpoint", checkpoint)


@pytest.mark.parametrize("kill", ["epoch 3", "the stopping epoch"])
def test_converged_sweep_resumes_an_interrupted_run_bit_for_bit(tmp_path, monkeypatch, kill):
    """A run killed after epoch 3 (or after the epoch that met --patience, before the test metrics) is
    resumed by the next sweep from its checkpoint and ends exactly as the uninterrupted run: same epoch
    rows, same best epoch, same test metrics; run_info.json holds both segments; the finished folder is
    compacted to what the report needs."""
    info = sweep.prepare_dataset("mlearn-mo", None)
    # SoftAdapt β = 1 with a large learning rate: a noisy validation loss, so --patience 1 stops it early
    item = (1, "mlearn-mo", catalogue.softadapt(1.0, name="noisy-softadapt", lr=0.05), 0)

    def run(folder):
        return converged.make_run(item, info, folder, patience=1, epochs=40, hidden=(8, 8))

    whole = sweep.run_one(run(tmp_path / "whole"))
    n_whole = len(_epoch_rows(Path(whole["out"])))
    assert 3 < n_whole < 40, "the reference run must stop by --patience, after epoch 3, for this test to bite"
    die = (lambda epoch, state: epoch == 3) if kill == "epoch 3" else (lambda epoch, state: state["bad_epochs"] >= 1)
    _dying_record_epoch(monkeypatch, die)
    cut = run(tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        sweep.run_one(cut)
    monkeypatch.undo()
    folder = Path(cut.out)
    assert converged.state_of(folder) == "unfinished" and (folder / "checkpoint.h5").exists()
    resumed = converged.execute([cut])[0]  # the sweep started again
    assert resumed["trained"] and resumed["best_epoch"] == whole["best_epoch"]
    assert resumed["train"] == whole["train"] and resumed["test"] == whole["test"]
    assert _epoch_rows(folder) == _epoch_rows(Path(whole["out"]))
    segments = json.loads((folder / "run_info.json").read_text())["segments"]
    first = 4 if kill == "epoch 3" else n_whole + 1
    assert [g["first_epoch"] for g in segments] == [1, first] and segments[0]["wall_s"] is None
    kept = sorted(p.name for p in folder.iterdir() if p.name != "epoch_cpu.csv")  # the clock may miss fast epochs
    assert kept == ["best.h5", "metrics.csv", "run_info.json", "settings.json", "test_metrics.json"]
    assert converged.state_of(folder) == "finished"
    assert not converged.execute([cut])[0]["trained"]  # a third start skips it


def test_a_run_another_sweep_is_training_is_skipped_untouched(tmp_path):
    """Two sweeps over overlapping plans: the one that reaches a run whose folder the other has claimed
    (sweep.SWEEP_LOCK held) skips it — a "busy" record, no error.txt, not a byte written in the folder —
    and trains it once the claim is gone (the claim file a finished or killed sweep leaves blocks nothing).
    Reproducer: a second worker used to write a false error.txt and a bogus run_info.json segment."""
    from alw_ref.runfiles import RunLock

    info = sweep.prepare_dataset("mlearn-mo", None)
    item = (1, "mlearn-mo", catalogue.fixed(catalogue.EQUAL), 0)
    run = converged.make_run(item, info, tmp_path, patience=1, epochs=2, hidden=(8, 8))
    folder = Path(run.out)
    folder.mkdir(parents=True)
    (folder / "run_info.json").write_text('{"segments": ["the other sweep\'s"]}')
    claim = RunLock(folder, sweep.SWEEP_LOCK)  # the other sweep, training this run
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    try:
        result = converged.execute([run], log=lambda text: None)[0]
    finally:
        claim.release()
    assert result.get("busy") and "error" not in result
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert converged._outcome(result) == "skipped, another sweep is training it"
    (folder / "run_info.json").unlink()
    result = converged.execute([run], log=lambda text: None)[0]  # the claim file stays, unlocked
    assert "busy" not in result and "error" not in result and result["trained"]
    assert converged.state_of(folder) == "finished" and not (folder / sweep.SWEEP_LOCK).exists()


def test_plan_follows_issue_16s_priorities():
    """Priority 1: the four comparisons × 3 seeds (seed-major); 2: Table 1/2's other six, 1 seed; 3: Fig. 3's
    three other starts; 4: empty until the recommended options are set; 5: the same on MoSe2."""
    plan = catalogue.plan(("mote2", "mose2"))
    p1 = [(c.name, s) for p, d, c, s in plan if p == 1]
    assert p1[:4] == [("fixed-0.9-0.1-0", 0), ("fixed-0.9-0.05-0.05", 0), ("fixed-equal", 0), ("softadapt-b1", 0)]
    assert len(p1) == 12 and {s for _, s in p1} == {0, 1, 2}
    p2 = {c.name for p, d, c, s in plan if p == 2}
    assert p2 == {"fixed-1-0-0", "fixed-0.05-0.9-0.05", "fixed-0.05-0.05-0.9", "softadapt-b0.01", "softadapt-b0.1",
                  "softadapt-b2"}
    assert [c.options["weights"] for p, d, c, s in plan if p == 3] == list(catalogue.FIG3_STARTS)
    p4 = [(c.name, s) for p, d, c, s in plan if p == 4]   # the trainer's protocol, fixed ⅓ and SoftAdapt β = 1
    assert p4 == [(f"recommended-{n}", s) for s in range(3) for n in ("fixed-equal", "softadapt-b1")]
    kw4 = converged.make_run(next(x for x in plan if x[0] == 4), dict(spec="s.json", path="d.h5"), Path("r")).kwargs
    assert kw4["loss_scale"] == "labels" and kw4["lr_schedule"] == "plateau" and kw4["weights"] == [1 / 3] * 3
    assert [x[0] for x in plan] == sorted(x[0] for x in plan)
    assert {d for p, d, c, s in plan if p == 5} == {"mose2"} and sum(p == 5 for p, *_ in plan) == 27
    kwargs = converged.make_run(plan[0], dict(spec="s.json", path="d.h5"), Path("runs")).kwargs
    from alw_ref.train import PAPER_PROTOCOL
    for key, value in PAPER_PROTOCOL.items():  # the paper's protocol whatever the trainer's defaults
        if key not in plan[0][2].options:
            assert kwargs[key] == (list(value) if isinstance(value, tuple) else value), key
    assert kwargs["patience"] == converged.PATIENCE and kwargs["min_improvement"] == 0.001
    assert kwargs["weights"] == [0.9, 0.1, 0.0] and kwargs["weighting"] == "fixed" and kwargs["beta"] == 1.0


def test_converged_sweep_refuses_runs_of_other_data(tmp_path):
    """The sweep records each dataset's fingerprint (descriptor cache key) next to the runs; if a later
    session's conversion gives other bytes, it stops with an error naming the dataset instead of resuming."""
    from alw_ref.errors import DataError

    record = tmp_path / "datasets.json"
    info = converged.prepare(["mlearn-mo"], record, log=lambda text: None)["mlearn-mo"]
    assert json.loads(record.read_text())["mlearn-mo"]["fingerprint"] == info["fingerprint"]
    converged.prepare(["mlearn-mo"], record, log=lambda text: None)  # same data: fine
    known = json.loads(record.read_text())
    known["mlearn-mo"]["fingerprint"] = "0" * 64
    record.write_text(json.dumps(known))
    with pytest.raises(DataError, match="dataset mlearn-mo .*fingerprint"):
        converged.prepare(["mlearn-mo"], record, log=lambda text: None)


def test_epoch_clock_writes_one_line_per_epoch(tmp_path):
    """Reproducer: a checkpoint written twice for one epoch (e.g. the final checkpoint) gave two lines for that
    epoch in epoch_cpu.csv (seen in a committed run: two lines for epoch 457)."""
    import time

    import h5py

    def write(epoch):
        with h5py.File(tmp_path / "tmp.h5", "w") as f:
            f.attrs["epoch"] = epoch
        (tmp_path / "tmp.h5").replace(tmp_path / "checkpoint.h5")

    def wait_for_lines(n):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = (tmp_path / "epoch_cpu.csv").read_text() if (tmp_path / "epoch_cpu.csv").exists() else ""
            if len(text.splitlines()) >= n:
                break
            time.sleep(0.01)
        time.sleep(0.1)  # a few more polls: a duplicate would show up now

    with sweep.EpochClock(tmp_path, segment=3, period=0.005):
        write(1)
        wait_for_lines(2)
        for _ in range(3):  # the same epoch again, newer files
            time.sleep(0.02)
            write(1)
        wait_for_lines(2)
        time.sleep(0.02)
        write(2)
        wait_for_lines(3)
    rows = list(csv.DictReader((tmp_path / "epoch_cpu.csv").open()))
    assert [(r["segment"], r["epoch"]) for r in rows] == [("3", "1"), ("3", "2")]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="memory is read from /proc (Linux)")
def test_epoch_clock_keeps_the_memory_of_the_largest_epoch(tmp_path):
    """Reproducer: the memory recorded in run_info.json was read after train() returned, when the data were
    released, so REPORT.md said "0.1 GiB file-backed, 0.1 GiB private" beside a peak RSS of 8.7 GiB. The clock
    now keeps the sample of the epoch with the largest resident set: here 256 MiB held during epoch 2 only."""
    import time

    import h5py

    def write(epoch):
        with h5py.File(tmp_path / "tmp.h5", "w") as f:
            f.attrs["epoch"] = epoch
        (tmp_path / "tmp.h5").replace(tmp_path / "checkpoint.h5")
        deadline = time.monotonic() + 10
        while lines() < epoch + 1 and time.monotonic() < deadline:  # the clock has logged this epoch
            time.sleep(0.01)

    def lines():
        path = tmp_path / "epoch_cpu.csv"
        return len(path.read_text().splitlines()) if path.exists() else 0

    with sweep.EpochClock(tmp_path, segment=0, period=0.005) as clock:
        write(1)
        held = np.ones(2**25)  # 256 MiB, every page touched
        write(2)
        del held
        write(3)
    after = sweep.worker_memory()
    assert clock.memory["rss_anon_gib"] >= after["rss_anon_gib"] + 0.2
    assert clock.memory["rss_gib"] >= clock.memory["rss_anon_gib"] and after["peak_rss_gib"] >= clock.memory["rss_gib"]


@pytest.mark.parametrize("main", [converged.main, make_report.main, sweep.sweep_all_main, *(m.main for m in SCRIPTS)],
                         ids=lambda f: f.__module__.split(".")[-1])
def test_help_of_every_script(main, capsys):
    """Reproducer: `python -m paper_figures.converged --help` crashed with a TypeError (a "%" in the
    --patience help text, which argparse formats)."""
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0 and "usage: python -m paper_figures." in capsys.readouterr().out


BAD_SWEEP_OPTIONS = [(converged, ["--workers", "0"]), (converged, ["--priorities", "7"]),
                     (converged, ["--patience", "0"]), (converged, ["--max-epochs", "0"]),
                     (converged, ["--time-epochs", "-1"]), (table1_fixed_weights, ["--hidden", "30,0"]),
                     (table1_fixed_weights, ["--seeds", "0"]), (table1_fixed_weights, ["--epochs", "-1"]),
                     (table1_fixed_weights, ["--workers", "0"]), (table2_softadapt, ["--max-structures", "-2"])]


@pytest.mark.parametrize("module, args", BAD_SWEEP_OPTIONS, ids=[" ".join(a) for _, a in BAD_SWEEP_OPTIONS])
def test_bad_sweep_option_exits_2_naming_it_before_any_work(module, args, tmp_path, capsys):
    """Reproducer: `converged --workers 0` started a sweep on all cores (and prepared MoSe2), `--priorities 7`
    planned nothing and exited 0; the scripts took --hidden 30,0 or --seeds 0."""
    out = ["--runs", str(tmp_path / "runs")] + (["--out", str(tmp_path / "out")] if module is not converged else [])
    with pytest.raises(SystemExit) as stop:
        module.main([*args, *out])
    assert stop.value.code == 2 and f"argument {args[0]}:" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_make_report_refuses_missing_inputs_before_writing(quick, tmp_path, capsys):
    """Reproducer: --converged with a mistyped folder wrote a report saying no converged run had started (and
    created the folder); --out without the scripts' outputs gave a FileNotFoundError traceback."""
    report = tmp_path / "R.md"
    for args, needle in ((["--out", str(quick["out"]), "--converged", str(tmp_path / "typo")], "--converged"),
                         (["--out", str(tmp_path / "empty")], "table1_fixed_weights.csv missing")):
        with pytest.raises(SystemExit) as stop:
            make_report.main([*args, "--report", str(report)])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and needle in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())
