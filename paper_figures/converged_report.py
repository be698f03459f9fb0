"""The converged full-scale sweep (``paper_figures.converged``) as REPORT.md sections (used by make_report).

Reads the run folders (``results/converged/runs``; finished and unfinished), ``datasets.json`` and
``epoch_time.json``, and writes next to them ``converged_runs.csv`` (one row per planned run) and
``softadapt_dynamics.png``. Sections: the plan's state and cost, Tables 1-2 beside the paper (mean ±
std over the finished seeds), the claims (each only once every run it needs has finished), one row per
run (convergence epoch, epochs, Σ epoch time, wall time, sessions) and SoftAdapt's dynamics.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from alw_ref.atomic import atomic_write
from paper_figures import configs as catalogue
from paper_figures import converged, sweep

COMPS = sweep.COMPONENTS
LETTER = {"energy": "E", "forces": "F", "stress": "S"}
#: Assumed epochs per run (convergence + patience) until runs finish: the 1 000-structure runs were still
#: improving at epoch 1 000 (REPORT appendix), the paper's weights settled within ~1 500 epochs.
ASSUMED_EPOCHS = 2000
#: Running-mean window (epochs) of the weight traces.
WINDOW = 50


def _rows(path: Path) -> list:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def load(runs_dir: Path, datasets=converged.DATASETS) -> list:
    """One record per planned run: plan fields, state, epoch rows count, best epoch, times, metrics."""
    records = []
    for priority, dataset, cfg, seed in catalogue.plan(datasets):
        folder = converged.run_folder(runs_dir, dataset, cfg.name, seed)
        rec = dict(priority=priority, dataset=dataset, cfg=cfg, config=cfg.name, seed=seed, out=str(folder),
                   state=converged.state_of(folder), epochs=0, epoch_time_s=0.0, wall_s=None, segments=0,
                   best_epoch=None)
        if (folder / "metrics.csv").exists():
            rows = _rows(folder / "metrics.csv")
            rec.update(epochs=len(rows), epoch_time_s=sum(float(r["time_s"]) for r in rows),
                       epoch_wall_median=float(np.median([float(r["time_s"]) for r in rows])) if rows else None)
            if rec["state"] != "finished" and rows:
                vals = [float(r["val_loss"]) for r in rows]
                rec["best_epoch"] = int(np.argmin(vals)) + 1
        rec["epoch_cpu_s"] = converged.epoch_cpu(folder / "epoch_cpu.csv")
        rec["kib"] = committed_kib(folder)
        if (folder / "run_info.json").exists():
            info = json.loads((folder / "run_info.json").read_text())
            rec.update(segments=len(info.get("segments", [])), wall_s=info.get("wall_s"))
            rec["memory"] = [g for g in info.get("segments", []) if g.get("peak_rss_gib")]
        if rec["state"] == "finished":
            metrics = json.loads((folder / "test_metrics.json").read_text())
            rec.update(best_epoch=metrics["best_epoch"], train=metrics["train"], test=metrics["test"])
        records.append(rec)
    return records


def committed_kib(folder: Path) -> float:
    """KiB of the files of a run folder that are committed (not metrics.jsonl, plots or temporary files)."""
    if not folder.is_dir():
        return 0.0
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file() and f.suffix in (".h5", ".csv", ".json")
               and not f.name.startswith(".")) / 1024


def write_runs_csv(records: list, path: Path) -> None:
    keys = ("priority", "dataset", "config", "seed", "state", "epochs", "best_epoch", "epoch_time_s", "epoch_cpu_s",
            "wall_s", "segments", "kib")
    rows = []
    for r in records:
        row = {k: r[k] for k in keys}
        row["peak_rss_gib"] = max((g["peak_rss_gib"] for g in r.get("memory") or []), default="")
        for split in ("train", "test"):
            for c in COMPS:
                row[f"{split}_{c}_rmse_{sweep.UNITS[c]}"] = r[split][sweep.METRIC_KEYS[c]] if split in r else ""
        rows.append(row)
    sweep.write_csv(rows, path)


def _args(records, infos) -> argparse.Namespace:
    """The namespace ``sweep.summarize`` expects, for the finished runs."""
    datasets = tuple(dict.fromkeys(r["dataset"] for r in records if r["state"] == "finished"))
    info = {d: dict(n_total=infos[d]["n_total"], n_used=infos[d]["n_used"], n_singular=infos[d]["n_singular"])
            for d in datasets}
    return argparse.Namespace(dataset=datasets, dataset_info=info, epochs="converged", max_structures=None,
                              seeds=max((r["seed"] + 1 for r in records if r["state"] == "finished"), default=0),
                              hidden=(30, 30))


def summaries(records, infos) -> dict:
    """Summary rows (``sweep.summarize`` format) of Table 1, Table 2 and Fig. 2 over the finished runs."""
    finished = [dict(r, trained=False) for r in records if r["state"] == "finished"]
    args = _args(records, infos)
    out = {}
    for name, cfgs in (("table1_fixed_weights", catalogue.table1()), ("table2_softadapt", catalogue.table2()),
                       ("fig2", catalogue.fig2())):
        present = [c for c in cfgs if any(r["config"] == c.name for r in finished)]
        rows = []
        for d in args.dataset:
            mine = [c for c in present if any(r["config"] == c.name and r["dataset"] == d for r in finished)]
            sub = argparse.Namespace(**{**vars(args), "dataset": (d,)})
            rows += sweep.summarize([r for r in finished if r["dataset"] == d], mine, sub)
        out[name] = rows
    return out


def _cell(row, comp, split="test"):
    if row is None:
        return "—"
    text = sweep.fmt(row[sweep.col(comp, split) + "_mean"], row[sweep.col(comp, split) + "_std"])
    return f"{text} (n={row['n_runs']})" if comp == "stress" else text


def side_by_side(paper_rows, ours, key, header0, datasets) -> str:
    """Paper's test RMSE beside ours (mean ± std over finished seeds, n = seeds) per dataset."""
    header = [header0, "paper test E", "paper test F", "paper test S"]
    for d in datasets:
        header += [f"{d} test E (meV/atom)", f"{d} test F (meV/Å)", f"{d} test S (MPa)"]
    body = []
    for paper in paper_rows:
        cells = [paper[0]] + [f"{x:g}" for x in paper[1]]
        for d in datasets:
            row = next((r for r in ours if r["dataset"] == d and key(r, paper[2])), None)
            cells += [_cell(row, c) for c in COMPS]
        body.append(cells)
    return sweep.markdown_table(header, body)


def tables(summ, datasets, paper_table1, paper_table2) -> str:
    t1 = [("(" + ", ".join(f"{x:g}" for x in w) + ")", test, w) for w, _, test in paper_table1]
    t2 = [(f"{beta:g}", test, beta) for beta, _, test in paper_table2]
    return ("### Table 1 beside the paper (fixed weights; test RMSE, best-validation model)\n\n"
            + side_by_side(t1, summ["table1_fixed_weights"], lambda r, w: np.allclose(
                [r["w_energy"], r["w_forces"], r["w_stress"]], w, atol=6e-3), "(w_E, w_F, w_S)", datasets)
            + "\n### Table 2 beside the paper (SoftAdapt l2, initial weights ⅓; test RMSE)\n\n"
            + side_by_side(t2, summ["table2_softadapt"], lambda r, b: float(r["beta"]) == b, "β", datasets)
            + "\n— = not finished yet. n = finished seeds (mean ± sample std over them).\n")


def separated(a, sa, b, sb) -> bool:
    """Whether means a and b differ by more than their combined seed std (√(sa² + sb²))."""
    return abs(a - b) > np.hypot(np.nan_to_num(sa), np.nan_to_num(sb))


def config_stats(records, dataset: str, config: str) -> dict:
    """Over the finished seeds of one configuration: test RMSE mean and sample std per component (report
    units), mean convergence epoch, CPU s per epoch and core-hours per run (epochs run × CPU s per epoch,
    load-independent: wall times miss the parts of runs killed at a session's stop); counts."""
    rs = [r for r in records if r["dataset"] == dataset and r["config"] == config]
    done = [r for r in rs if r["state"] == "finished"]
    out = dict(n=len(done), planned=len(rs))
    for c in COMPS:
        v = np.array([r["test"][sweep.METRIC_KEYS[c]] for r in done], float)
        out[c] = (float(v.mean()) if len(v) else np.nan, float(v.std(ddof=1)) if len(v) > 1 else np.nan)
    mean = lambda xs: float(np.mean(xs)) if xs else np.nan  # noqa: E731
    out["forces_mae"] = mean([r["test"]["forces_mae"] for r in done])  # meV/Å
    out["best_epoch"] = mean([r["best_epoch"] for r in done])
    out["cpu_s"] = mean([r["epoch_cpu_s"] for r in done if r["epoch_cpu_s"]])
    out["core_h"] = mean([r["epochs"] * r["epoch_cpu_s"] / 3600 for r in done if r["epoch_cpu_s"]])
    return out


def protocol_section(records, published: dict, paper_forces=()) -> str:
    """Issue 16's priority 4: fixed ⅓ and SoftAdapt β = 1 with the trainer's recommended protocol beside the
    same two with the paper's protocol (priority 1) and the paper's published test RMSE (``published``:
    weighting label -> (E, F, S)); ratios per component, and whether they exceed the seeds' spread; then the
    force error beside the paper's (``force_gap_text``, with ``paper_forces``)."""
    pairs = list(zip(("fixed ⅓", "SoftAdapt β = 1"), (catalogue.fixed(catalogue.EQUAL).name, catalogue.SOFTADAPT_B1),
                     [c.name for c in catalogue.priority_configs(4)]))
    datasets = list(dict.fromkeys(r["dataset"] for r in records if r["priority"] == 4))
    if catalogue.RECOMMENDED_OPTIONS is None or not datasets:
        return "Not planned (configs.RECOMMENDED_OPTIONS is unset).\n"
    opts = ", ".join(f"{k}={v}" for k, v in catalogue.RECOMMENDED_OPTIONS.items())
    text = [f"The trainer's recommended protocol (`configs.RECOMMENDED_OPTIONS`: {opts}) against the paper's "
            "(the priority-1 runs), same splits and stopping rule; test RMSE of the best-validation model, mean ± "
            "sample std over the finished seeds.\n"]
    header = ["dataset", "protocol", "weighting", "seeds finished", "test E (meV/atom)", "test F (meV/Å)",
              "test S (MPa)", "convergence epoch (mean)", "CPU s/epoch", "core-hours/run"]
    body, verdicts = [], []
    for d in datasets:
        if d == "mote2":  # the paper's numbers are on its own (unpublished) MoTe2 set
            body += [["paper's MoTe2", "paper (published)", label, "", *(f"{x:g}" for x in values), "", "", ""]
                     for label, values in published.items()]
        stats = {}
        for label, paper_cfg, rec_cfg in pairs:
            for protocol, cfg in (("paper", paper_cfg), ("recommended", rec_cfg)):
                s = stats[protocol, label] = config_stats(records, d, cfg)
                body.append([d, protocol, label, f"{s['n']} of {s['planned']}",
                             *(sweep.fmt(*s[c]) if s["n"] else "not finished" for c in COMPS),
                             f"{s['best_epoch']:.0f}" if s["n"] else "", f"{s['cpu_s']:.2f}" if s["n"] else "",
                             f"{s['core_h']:.2f}" if s["n"] else ""])
        verdicts += _protocol_verdicts(d, stats, pairs)
        spread = weight_excursion([r for r in records if r["dataset"] == d and r["config"] == pairs[1][2]
                                   and r["state"] == "finished"])
        if spread is not None:
            verdicts.append(f"{d}, recommended protocol: after the first 10 epochs SoftAdapt's weights stay within "
                            f"{spread[0]:.3f} of ⅓ (mean |w_k − ⅓| {spread[1]:.3f} over its finished runs' epochs "
                            "and components)" + (": close to fixed ⅓." if spread[1] < 0.05 else "."))
    text.append(sweep.markdown_table(header, body))
    text.append(" ".join(verdicts) + "\n" if verdicts else "No priority-4 run has finished yet.\n")
    text.append(force_gap_text(records, paper_forces))
    return "\n".join(text)


def force_gap_text(records, paper_forces) -> str:
    """The force error beside the paper's: the range of our finished mote2 runs that train forces (w_F > 0
    at the start) and the paper's published test range (``paper_forces``, meV/Å, its Tables 1-2 rows with a
    force term), and what the trainer's protocol changes (fixed ⅓, both protocols finished)."""
    runs = [r for r in records if r["dataset"] == "mote2" and r["state"] == "finished"
            and (r["cfg"].options.get("weights") or catalogue.EQUAL)[1] > 0]
    if not runs:
        return ""
    f = [r["test"][sweep.METRIC_KEYS["forces"]] for r in runs]
    mae = [r["test"]["forces_mae"] for r in runs]
    text = (f"**Forces.** The {len(runs)} finished mote2 runs that train forces reach a test force RMSE of "
            f"{min(f):.0f}–{max(f):.0f} meV/Å, against {min(paper_forces):g}–{max(paper_forces):g} meV/Å in the "
            f"paper's Tables 1–2: our best is {min(f) / min(paper_forces):.1f}× the paper's best. The data differ: "
            "the 2021 set has large forces far from equilibrium (RMS 0.71 eV/Å per component, tensile strains up "
            "to 36 %, no equilibrium structure; `../shared/data/atomdnn/README.md`); the paper's set has "
            "equilibrium and compressed structures.")
    ratio = [a / b for a, b in zip(f, mae)]
    worst = runs[int(np.argmax(ratio))]
    text += (f" Their test force MAE is {min(mae):.0f}–{max(mae):.0f} meV/Å and the RMSE/MAE ratio "
             f"{min(ratio):.2f}–{max(ratio):.2f} (≈ 1.25 for Gaussian errors)"
             + (", so a few structures make much of the RMSE" if max(ratio) > 2 else "")
             + f" (largest ratio: {worst['config']} seed {worst['seed']}, RMSE "
             f"{worst['test'][sweep.METRIC_KEYS['forces']]:.0f} against MAE {worst['test']['forces_mae']:.0f} meV/Å).")
    fixed, soft, rec = (config_stats(records, "mote2", c) for c in (
        catalogue.fixed(catalogue.EQUAL).name, catalogue.SOFTADAPT_B1, catalogue.priority_configs(4)[0].name))
    if fixed["n"] and soft["n"]:
        text += (f" SoftAdapt β = 1 against fixed ⅓ (paper protocol, {soft['n']} and {fixed['n']} seeds): force MAE "
                 f"{soft['forces_mae']:.1f} vs {fixed['forces_mae']:.1f} meV/Å (× "
                 f"{soft['forces_mae'] / fixed['forces_mae']:.2f}), RMSE {soft['forces'][0]:.0f} vs "
                 f"{fixed['forces'][0]:.0f} (× {soft['forces'][0] / fixed['forces'][0]:.2f}).")
    if fixed["n"] and rec["n"]:
        r_mae = rec["forces_mae"] / fixed["forces_mae"]
        r_rmse = rec["forces"][0] / fixed["forces"][0]
        o = catalogue.RECOMMENDED_OPTIONS
        text += (f" The trainer's protocol ({'×'.join(map(str, o['hidden']))} {o['activation']} network, batches of "
                 f"{o['batch_size']}, {o['lr_schedule']} learning rate) changes fixed ⅓'s force MAE by × {r_mae:.2f} "
                 f"and its RMSE by × {r_rmse:.2f} ({rec['n']} and {fixed['n']} seeds)"
                 + (": the typical force error is not set by the training protocol, but by the data or the 36 "
                    "descriptors that every run of the sweep keeps." if 0.8 < r_mae < 1.25 else "."))
    return text + "\n"


def _ratios(a: dict, b: dict) -> str:
    """'E × 0.52, F × 0.40 (…), S × 0.9 (within spread)': a over b per component."""
    return ", ".join(f"{LETTER[c]} × {a[c][0] / b[c][0]:.2f}" + ("" if separated(*a[c], *b[c]) else " (within spread)")
                     for c in COMPS)


def _protocol_verdicts(d, stats, pairs) -> list:
    out = []
    for label, *_ in pairs:
        rec, pap = stats["recommended", label], stats["paper", label]
        if rec["n"] and pap["n"]:
            out.append(f"{d}, {label}: the recommended protocol's test RMSE is {_ratios(rec, pap)} the paper "
                       f"protocol's ({rec['n']} and {pap['n']} seeds).")
    fixed, soft = stats["recommended", pairs[0][0]], stats["recommended", pairs[1][0]]
    if fixed["n"] and soft["n"]:
        out.append(f"{d}, recommended protocol: SoftAdapt β = 1 over fixed ⅓ {_ratios(soft, fixed)} "
                   f"({soft['n']} and {fixed['n']} seeds).")
    return out


def weight_excursion(runs, skip=10):
    """(largest, mean) |w_k − ⅓| over the epochs after the first ``skip`` of ``runs`` (their metrics.csv) and
    the components, or None."""
    traces = [weight_trace(Path(r["out"]))["w"][skip:] for r in runs]
    dev = np.concatenate([np.abs(w - 1 / 3).ravel() for w in traces if len(w)] or [np.zeros(0)])
    return (float(dev.max()), float(dev.mean())) if len(dev) else None


def _h(seconds) -> str:
    return "" if seconds is None else f"{seconds / 3600:.2f}"


def runs_table(records) -> str:
    header = ["prio", "dataset", "configuration", "seed", "state", "epochs run", "convergence (best) epoch",
              "CPU s/epoch", "Σ epoch time (h)", "wall (h)", "sessions", "committed KiB", "test E (meV/atom)", "test F (meV/Å)", "test S (MPa)"]
    body = []
    for r in records:
        if r["state"] == "new":
            continue
        test = r.get("test")
        body.append([r["priority"], r["dataset"], r["config"], r["seed"], r["state"], r["epochs"],
                     r["best_epoch"] if r["best_epoch"] is not None else "",
                     f"{r['epoch_cpu_s']:.2f}" if r["epoch_cpu_s"] else "", _h(r["epoch_time_s"]), _h(r["wall_s"]),
                     r["segments"], f"{r['kib']:.0f}"]
                    + ([f"{test[sweep.METRIC_KEYS[c]]:.3g}" for c in COMPS] if test else ["", "", ""]))
    return sweep.markdown_table(header, body) if body else "No run has started yet.\n"


def memory_lines(records) -> list:
    """The workers' peak RSS, and their resident memory at its largest during training split into the
    shared (memory-mapped cache) and private parts, from the segments of run_info.json."""
    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        segs = [g for r in records if r["dataset"] == dataset for g in r.get("memory") or []]
        if not segs:
            continue
        text = (f"Memory per worker on {dataset} ({len(segs)} run segment(s) that recorded it, `run_info.json`): "
                f"peak RSS {max(g['peak_rss_gib'] for g in segs):.1f} GiB (`VmHWM` of the worker process)")
        parts = [g for g in segs if "rss_file_gib" in g and "rss_anon_gib" in g]
        if parts:
            top = max(parts, key=lambda g: g["rss_file_gib"] + g["rss_anon_gib"])
            f, a = top["rss_file_gib"], top["rss_anon_gib"]
            text += (f"; at its largest during training {f + a:.1f} GiB were resident, {f:.1f} GiB of them "
                     f"file-backed — the memory-mapped descriptor cache (plus ~0.1 GiB of libraries), one copy in "
                     f"RAM shared by all workers — and {a:.1f} GiB private: two workers need ≈ {f + 2 * a:.0f} GiB, "
                     f"not {2 * (f + a):.0f}")
        lines.append(text + ".")
    return lines


def cost_section(records, epoch_time, infos) -> str:
    """The plan's cost from the measured epoch time, and what is finished / running / left."""
    lines = []
    per_epoch = None
    if epoch_time:
        t = epoch_time["epoch_wall_s"]
        per_epoch = epoch_time.get("epoch_cpu_s") or float(np.median(t)) * epoch_time["cpu_share"]
        lines.append(
            f"Measured ({epoch_time['measured_utc']}, `python -m paper_figures.converged --time-epochs "
            f"{epoch_time['epochs']}`): one epoch of {epoch_time['dataset']} ({epoch_time['n_structures']} "
            f"structures: 70 % trained, 20 % validated) took {', '.join(f'{x:.1f}' for x in t)} s of wall time "
            f"with this process getting {epoch_time['cpu_share']:.0%} of a core (load average "
            f"{', '.join(f'{x:.1f}' for x in epoch_time['load_average'])} on 2 cores, other agents' jobs); on a "
            f"dedicated core that is ≈ {per_epoch:.1f} s per epoch ("
            + ("CPU time between consecutive checkpoints" if epoch_time.get("epoch_cpu_s") else
               "median epoch wall time × the call's CPU share, a rough correction") + "). Peak RSS of the worker: "
            f"{epoch_time['peak_rss_gib']:.1f} GiB (the descriptor derivatives of all structures).")
    clocked = [r for r in records if r["epoch_cpu_s"] and r["dataset"] == (epoch_time or {}).get("dataset")]
    # priority 4 trains the trainer's protocol (batches of 10, 2×64 networks): its own epoch cost and length
    clocked4 = [r["epoch_cpu_s"] for r in clocked if r["cfg"].protocol == "recommended"]
    clocked = [r for r in clocked if r["cfg"].protocol != "recommended"]
    share = epoch_time["cpu_share"] if epoch_time else None
    if clocked:
        per_epoch = float(np.median([r["epoch_cpu_s"] for r in clocked]))
        share = per_epoch / float(np.median([r["epoch_wall_median"] for r in clocked]))
        lines.append(f"The sweep's own paper-protocol runs measure {per_epoch:.2f} s of CPU per epoch (median over "
                     f"{len(clocked)} run(s) of the CPU time between consecutive checkpoints, `epoch_cpu.csv`; this "
                     f"supersedes the rough figure above) and got {share:.0%} of a core (CPU per epoch / median epoch "
                     "wall time)" + (f"; priority 4's runs (the trainer's protocol) {np.median(clocked4):.2f} s "
                                     f"(median over {len(clocked4)})." if clocked4 else "."))
    lines += memory_lines(records)
    done = [r for r in records if r["state"] == "finished" and r["cfg"].protocol != "recommended"]
    done4 = [r for r in records if r["state"] == "finished" and r["cfg"].protocol == "recommended"]
    mean_epochs = float(np.mean([r["epochs"] for r in done])) if done else ASSUMED_EPOCHS
    mean_epochs4 = float(np.mean([r["epochs"] for r in done4])) if done4 else mean_epochs
    basis = (f"the mean of the {len(done)} finished paper-protocol runs, {mean_epochs:.0f} epochs" if done else
             f"an assumed {ASSUMED_EPOCHS} epochs per run (convergence + the {converged.PATIENCE}-epoch patience)")
    if done4:
        basis += f", and of the {len(done4)} finished runs of the trainer's protocol, {mean_epochs4:.0f}"
    header = ["priority", "runs", "finished", "unfinished", "not started", "estimated core-hours left"]
    body, total = [], 0.0
    ref_atoms = infos.get(epoch_time["dataset"], {}).get("n_atoms") if epoch_time else None
    unknown = sorted({r["dataset"] for r in records if r["dataset"] not in infos})
    per_epoch4 = float(np.median(clocked4)) if clocked4 else per_epoch
    for p in (1, 2, 3, 4, 5):
        rs = [r for r in records if r["priority"] == p]
        if p == 4 and catalogue.RECOMMENDED_OPTIONS is None:
            body.append([4, 0, "", "", "", "not planned yet: configs.RECOMMENDED_OPTIONS is unset (the lead decides)"])
            continue
        if not rs:
            continue
        left = 0.0
        for r in rs:
            if r["state"] == "finished" or per_epoch is None:
                continue
            scale = infos.get(r["dataset"], {}).get("n_atoms", ref_atoms) / ref_atoms if ref_atoms else 1.0
            rec = r["cfg"].protocol == "recommended"  # priority 4, and its MoSe2 runs in priority 5
            left += max((mean_epochs4 if rec else mean_epochs) - r["epochs"],
                        converged.PATIENCE if r["state"] == "unfinished" else 0) \
                * (per_epoch4 if rec else per_epoch) * scale / 3600
        total += left
        body.append([p, len(rs), sum(r["state"] == "finished" for r in rs), sum(r["state"] == "unfinished" for r in rs),
                     sum(r["state"] == "new" for r in rs), f"{left:.1f}" if per_epoch else "?"])
    scaled = ("other datasets scaled by their atom count" + (f"; {', '.join(unknown)} not prepared yet, assumed "
                                                              "as costly per epoch" if unknown else "")
              + ("" if clocked4 else "; priority 4 assumed as costly per epoch as the paper's protocol until one of "
                 "its runs is clocked (a lower bound: its batches are smaller and its networks wider)"))
    lines.append(f"\nCost left, by priority (epochs per run: {basis}; {scaled}):\n")
    lines.append(sweep.markdown_table(header, body))
    if per_epoch:
        lines.append(f"Total ≈ {total:.0f} core-hours left: ≈ {total / 24:.1f} days on one dedicated core, "
                     f"{total / 48:.1f} on two.")
    if per_epoch and share:
        lines.append(f" At the {share:.0%} of a core the sweep's worker got on this shared machine, that is "
                     f"≈ {total / 24 / share:.0f} days of sweeping: it advances in the hours the other jobs leave a "
                     "core idle.\n")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- SoftAdapt dynamics
def weight_trace(folder: Path) -> dict:
    """Weights applied per epoch (E, F, S columns) and the training loss parts of one run's metrics.csv."""
    rows = _rows(folder / "metrics.csv")
    return dict(w=np.array([[float(r[f"w_{c}"]) for c in COMPS] for r in rows]),
                L=np.array([[float(r[f"train_L_{c}"]) for c in COMPS] for r in rows]))


def running_mean(x: np.ndarray, window=WINDOW) -> np.ndarray:
    """Trailing mean over ``window`` epochs (shorter at the start), per column."""
    c = np.cumsum(np.vstack([np.zeros((1,) + x.shape[1:]), x]), axis=0)
    n = np.arange(1, len(x) + 1)
    lo = np.maximum(0, n - window)
    return (c[n] - c[lo]) / (n - lo)[:, None]


def flip_statistics(w: np.ndarray, L: np.ndarray) -> dict:
    """How the l2 weights alternate: share of epochs whose largest weight differs from the epoch before;
    per component, share of epochs it has the largest weight; per component, share of epochs whose
    training-loss change has the largest magnitude (the component that sets the direction of the
    unit slope vector ŝ) and how often its change flips sign."""
    top = np.argmax(w, axis=1)
    dL = np.diff(L, axis=0)
    lead = np.argmax(np.abs(dL), axis=1)
    sign_flip = (np.sign(dL[1:]) != np.sign(dL[:-1])).mean(axis=0) if len(dL) > 1 else np.full(3, np.nan)
    return dict(switch=float((top[1:] != top[:-1]).mean()) if len(top) > 1 else np.nan,
                top_share=[float((top == k).mean()) for k in range(3)],
                lead_share=[float((lead == k).mean()) for k in range(3)] if len(lead) else [np.nan] * 3,
                sign_flip=[float(x) for x in sign_flip])


def driver_statistics(w: np.ndarray, L: np.ndarray, tail=0.2) -> dict:
    """What drives the l2 states, per component k: over the last ``tail`` of the epochs, the median
    |L_k(e) − L_k(e−1)| (the loss part's unit) and that over the median L_k (its epoch-to-epoch
    volatility); over all epochs, the mean weight w_k(e+1) after L_k rose in epoch e and after it fell
    (the weights of epoch e+1 are computed from the change of epoch e)."""
    dL = np.diff(L, axis=0)                      # dL[i] = L(epoch i+2) − L(epoch i+1)
    start = int((1 - tail) * len(dL))
    step = np.median(np.abs(dL[start:]), axis=0)
    level = np.median(L[start + 1:], axis=0)
    after = w[2:]                                # w(epoch i+3): computed from dL[i]
    rose, fell = dL[:len(after)] > 0, dL[:len(after)] < 0
    mean = lambda mask, k: float(after[mask[:, k], k].mean()) if mask[:, k].any() else float("nan")  # noqa: E731
    return dict(step=[float(x) for x in step], volatility=[float(x) for x in step / level],
                w_after_rise=[mean(rose, k) for k in range(3)], w_after_fall=[mean(fell, k) for k in range(3)])


def driver_text(runs_stats: list, leads: list) -> str:
    """The sentence naming the component that drives the l2 states and why, from ``driver_statistics``
    and ``flip_statistics``' lead shares of each SoftAdapt run (means over the runs)."""
    def mean(key):  # over the runs, ignoring NaN (a term that never rose or fell); NaN if it never did
        a = np.array([s[key] for s in runs_stats], float)
        n = np.isfinite(a).sum(axis=0)
        return np.where(n > 0, np.where(np.isfinite(a), a, 0.0).sum(axis=0) / np.maximum(n, 1), np.nan)

    lead = np.mean(leads, axis=0)
    k = int(np.argmax(lead))
    step, vol, up, down = mean("step"), mean("volatility"), mean("w_after_rise"), mean("w_after_fall")
    units = [f"{1e3 * step[0]:.2g} meV/atom", f"{1e3 * step[1]:.2g} meV/Å", f"{1e3 * step[2]:.2g} MPa"]
    return (f"**What drives it** (means over the {len(runs_stats)} SoftAdapt β = 1 runs): the {COMPS[k]} term has "
            f"the largest change in {lead[k]:.0%} of the epochs. Over the last 20 % of the epochs a typical "
            f"epoch-to-epoch change is {', '.join(units)} for E, F, S — {', '.join(f'{100 * v:.1f} %' for v in vol)}"
            f" of the loss part's own value. " + _why(k, step, vol) + "After it rose, "
            f"w_{LETTER[COMPS[k]]} averages {up[k]:.2f} the next epoch; after it fell, {down[k]:.2f} "
            f"(softmax(±1, 0, 0) gives {np.e / (np.e + 2):.2f} and {1 / (1 + 2 * np.e):.2f}). The other two weights "
            "share what is left. These one-epoch changes are mostly noise of the mini-batch training, so the "
            "flips say little about which component still has something to learn.\n")


def _why(k: int, step, vol) -> str:
    """Why component ``k`` leads ŝ: its raw changes are the largest (and, if so, the most volatile)."""
    name = COMPS[k]
    if int(np.argmax(step)) != k:
        return (f"The {name} term leads ŝ although its median change is not the largest: it leads through its "
                "occasional large changes. ")
    also = " and, relative to its own value, the most volatile" if int(np.argmax(vol)) == k else ""
    return (f"l2 compares the raw changes (no per-term scale in the paper's protocol), and the {name} term's are "
            f"the largest{also}, so the sign of its change alone picks the state. ")


def softadapt_runs(records) -> list:
    """SoftAdapt β = 1 runs with at least 2 epochs (Table 2's ⅓ start and Fig. 3's starts)."""
    names = {catalogue.SOFTADAPT_B1} | {catalogue.start_name(s) for s in catalogue.FIG3_STARTS}
    return [r for r in records if r["config"] in names and r["epochs"] >= 2]


def dynamics_figure(runs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), 1, figsize=(10, 2.2 * len(runs)), squeeze=False, sharey=True)
    for ax, r in zip(axes[:, 0], runs):
        w = weight_trace(Path(r["out"]))["w"]
        ep = np.arange(1, len(w) + 1)
        rm = running_mean(w)
        for k, c in enumerate(COMPS):
            ax.plot(ep, w[:, k], color=f"C{k}", alpha=0.25, lw=0.5)
            ax.plot(ep, rm[:, k], color=f"C{k}", lw=1.6, label=f"w_{c} ({WINDOW}-epoch running mean)")
        ax.set_title(f"{r['dataset']} {r['config']} seed {r['seed']} ({r['state']})", fontsize=8)
        ax.set_ylim(0, 1)
    axes[-1, 0].set_xlabel("epoch")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def dynamics_section(records, out: Path, rel: str) -> str:
    runs = softadapt_runs(records)
    if not runs:
        return "No SoftAdapt run has trained yet.\n"
    dynamics_figure(runs, out / "softadapt_dynamics.png")
    header = ["run", "epochs", "largest weight changes (share of epochs)", "largest weight E / F / S",
              "largest |ΔL_k| E / F / S", "ΔL_k sign flips E / F / S", "mean w (E, F, S) over the last 20 %"]
    body, tails, drivers, leads = [], {}, [], []
    for r in runs:
        t = weight_trace(Path(r["out"]))
        s = flip_statistics(t["w"], t["L"])
        if len(t["w"]) >= 10:
            drivers.append(driver_statistics(t["w"], t["L"]))
            leads.append(s["lead_share"])
        tail = t["w"][int(0.8 * len(t["w"])):].mean(axis=0)
        tails.setdefault((r["dataset"], r["seed"]), {})[r["config"]] = tail
        body.append([f"{r['dataset']} {r['config']} s{r['seed']} ({r['state']})", r["epochs"], f"{s['switch']:.2f}",
                     " / ".join(f"{x:.2f}" for x in s["top_share"]), " / ".join(f"{x:.2f}" for x in s["lead_share"]),
                     " / ".join(f"{x:.2f}" for x in s["sign_flip"]), "(" + ", ".join(f"{x:.3f}" for x in tail) + ")"])
    text = [sweep.markdown_table(header, body),
            "With the `l2` variant the slopes s_k = L_k(t) − L_k(t−1) of the training loss parts (eV/atom, eV/Å, "
            "GPa) are divided by their Euclidean norm, so ŝ is a unit vector whatever the size of the changes, "
            "and the weights softmax(β ŝ) jump between states set by the signs and ratios of the three changes. "
            "`largest |ΔL_k|` is the share of epochs in which a component has the largest change — that component "
            "sets the direction of ŝ and so the state; `sign flips` is how often its change reverses sign from one "
            "epoch to the next (0.5 = random walk). Near convergence the changes are noise, and the l2 "
            "normalisation blows that noise up to the same size as the early real gains.\n"]
    if drivers:
        text.append(driver_text(drivers, leads))
    spreads = []
    for (d, seed), by_start in tails.items():
        if len(by_start) > 1:
            arr = np.array(list(by_start.values()))
            spreads.append(f"{d} seed {seed}: {len(by_start)} starts, spread (max − min) of the late means "
                           f"({', '.join(f'{x:.3f}' for x in np.ptp(arr, axis=0))})")
    text.append("**Fig. 3's claim (late weights do not depend on the start):** "
                + ("; ".join(spreads) + " (spread < 0.1 in every component supports the claim)."
                   if spreads else "needs Fig. 3's other starts (priority 3), not trained yet.") + "\n")
    text.append(f"![SoftAdapt weights: raw trace (faint) and {WINDOW}-epoch running mean]({rel}/softadapt_dynamics.png)\n")
    return "\n".join(text)
