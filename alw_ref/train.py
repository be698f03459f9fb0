"""Training: ``python -m alw_ref.train dataset.h5`` — a potential from energies, forces and stress.

One epoch (paper Algorithm 1, as the paper's code ran it, plus the trainer's own defaults):
  1. the training structures are shuffled (seeded) and cut into batches of ``batch_size`` structures;
  2. per batch: E, F, σ, the loss L = Σ_k (w_k / s_k) L_k (``loss``), the exact ∂L/∂θ (``model``), one Adam
     step at the epoch's learning rate (``schedule``), then the parameters' moving average θ̄ (EMA);
     with ``uncertainty`` weighting the log-variances take an Adam step of their own;
  3. the epoch's training loss parts L_k are pooled over its batches (√(Σ sse / Σ count), every structure
     and force component weighted equally — not a mean of batch RMSEs);
  4. the weighting strategy sees the scaled parts L_k / s_k and sets the weights of the next epoch
     (``weighting``); before epoch 1 it sees those of the untrained model;
  5. validation with θ̄ (θ without EMA): the same parts on the validation structures. The validation loss
     that selects ``best.h5``, drives early stopping and the ``plateau`` schedule is Σ_k w⁰_k L_k^val / s_k
     with the *initial* weights w⁰ (``--weights``), so the criterion does not move when adaptive weights do.

Loss scales s_k (``--loss-scale``): ``labels`` (default) divides each term by the RMS of its training
labels — energy per atom after the fitted reference energies (eV/atom), force components (eV/Å), stress
components (GPa) — i.e. by the loss of a network that predicts nothing, so the terms are unit-free and
comparable and the weights are shares of the loss. ``none`` keeps the paper's raw terms in eV/atom, eV/Å
and GPa (s = 1); with ``--loss mse`` the squares s_k² are used.

The paper's protocol is ``train(..., **PAPER_PROTOCOL)`` or ``--protocol paper`` (raw RMSE terms, SoftAdapt
``l2`` over one epoch, constant lr 1e-3, batches of 30, 2 × 30 tanh, no EMA). The defaults are what
``benchmarks/bench_accuracy.py`` measured to give the most accurate potentials (its table is in README.md).

Output folder (``runfiles``): ``settings.json`` (every option), ``metrics.csv`` and ``metrics.jsonl`` (one
row per epoch: learning rate, the weights w_* applied, the raw loss parts train_L_*/val_L_* with
``loss_form`` and ``loss_units``, the validation loss, and RMSEs with the unit in the column name, e.g.
``val_forces_rmse_meV_A``), ``best.h5`` (lowest validation loss), ``final.h5`` (the last epoch),
``checkpoint.h5`` (state for ``--resume``, bit for bit), ``test_metrics.json``, ``learning_curves.png``,
``weights.png``, ``parity.png``. Every file but the appended metrics is written atomically.
"""

from __future__ import annotations

import os

if __name__ == "__main__":   # before the imports below (alw_ref/cli.py)
    from alw_ref.cli import prepare_command

    prepare_command("train")
    # The CLI runs NumPy's BLAS on one thread unless told otherwise: the networks' matrices are small
    # and BLAS threads compete with Numba's (benchmarks/bench_train.py: 2-3.7x slower epochs with 2).
    # This must happen before NumPy is imported; from Python, set OPENBLAS_NUM_THREADS=1 yourself.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .acsf_spec import DEFAULT_PRESET, PRESET_HELP, PRESET_RC_HELP, PRESETS, ACSFSpec
from .atomic import atomic_write, is_stale_temporary, remove_stale_temporaries
from .data import example_dataset_path, read_dataset
from .describe import SINGULAR_DERIVATIVE, describe_dataset, singular_structures
from .elements import chemical_symbol
from .cli import interrupts_raise
from .errors import ALWError, DataError
from .loss import FORMS
from .model import estimate_training_derivative_bytes, load_batch
from .potential import load_model, save_model
from .runfiles import RunLock, dataset_fingerprint
from .schedule import LR_SCHEDULES
from .trainloop import (LOSS_UNITS, RESUMABLE_CHANGES, Interrupted, StopFlag, TrainingError, TrainResult,  # noqa: F401
                        finish, fresh_state, load_resume, log, restore_state, run_epochs)
from .trainsetup import LOSS_SCALES, check_options, comma_floats, concat_datasets, split_for_files
from .weighting import SOFTADAPT_VARIANTS, STRATEGIES

DEFAULT_CACHE = Path.home() / ".cache" / "alw_ref"
#: The paper's training protocol (2 × 30 tanh, Adam lr 1e-3 constant, batches of 30 structures, raw RMSE
#: terms in eV/atom, eV/Å and GPa, SoftAdapt ``l2`` over one epoch from the training losses, no parameter
#: averaging, best model by the validation loss Σ w⁰_k L_k): ``train(..., **PAPER_PROTOCOL)`` reproduces it
#: whatever the trainer's defaults are. ``paper_figures/`` uses it; every option that changes the numbers of
#: an epoch is named here, except the weighting itself (``weighting``, ``weights``, ``beta``: what the paper varies).
PAPER_PROTOCOL = dict(hidden=(30, 30), activation="tanh", lr=1e-3, lr_schedule="constant", lr_decay=1.0,
                      min_lr=0.0, batch_size=30, loss="rmse", loss_scale="none",
                      softadapt_variant="l2", slope_window=1, softadapt_prior=False, loss_weighted=False,
                      average_epochs=1,
                      ema_decay=0.0, split=(0.7, 0.2, 0.1))
#: The trainer's defaults (``benchmarks/bench_accuracy.py``).
DEFAULTS = dict(weighting="softadapt", weights=(0.1, 0.8, 0.1), beta=1.0, softadapt_variant="relative",
                slope_window=10, softadapt_prior=True, loss_weighted=False, average_epochs=10, limit_weights=None,
                dwa_temperature=2.0,
                loss="rmse", loss_scale="labels", hidden=(64, 64), activation="softplus", rc=5.5, spec=None,
                preset=DEFAULT_PRESET,
                epochs=1200, batch_size=10, lr=2e-3, lr_schedule="exponential", min_lr=1e-5, lr_decay=1.0,
                lr_factor=0.5, lr_patience=25, ema_decay=0.99, seed=0, split=(0.7, 0.2, 0.1))


#: Estimated neighbours per atom above which the trainer warns (dense metals at R_c 6 Å have ~100).
NEIGHBOUR_WARNING = 400
#: Every file a run writes into its folder (removed when a new run or --overwrite starts there).
RUN_FILES = ("settings.json", "metrics.jsonl", "metrics.csv", "checkpoint.h5", "best.h5", "final.h5",
             "test_metrics.json", "learning_curves.png", "weights.png", "parity.png")
#: The bundled example (mlearn Mo, Zuo et al., J. Phys. Chem. A 124, 731 (2020); alw_ref/examples/README.md).
EXAMPLE_TRAIN, EXAMPLE_TEST = "mlearn_Mo_train.h5", "mlearn_Mo_test.h5"
#: Test-set RMSEs of the n2p2 NNP released with the mlearn benchmark (Zuo et al. 2020), re-evaluated by us on
#: the same 23 Mo_test structures (issue #10): trained on energies and forces only, so no stress figure.
PUBLISHED_MO_NNP = {"energy_rmse": 5.43, "forces_rmse": 204.0, "forces_mae": 125.0}


def example_path(name: str) -> Path:
    """Path of a bundled example file (``EXAMPLE_TRAIN``, ``EXAMPLE_TEST``)."""
    return example_dataset_path().parent / name


def _settings_dict(dataset, kw: dict) -> dict:
    if dataset is None:                       # the Quick start: bundled Mo train, tested on bundled Mo test
        dataset = example_path(EXAMPLE_TRAIN)
        if kw["test_file"] is None and kw["valid_file"] is None:
            kw = {**kw, "test_file": str(example_path(EXAMPLE_TEST))}
    if kw["split"] is None:                   # 70/20/10 (the paper's); 90/10 train/val beside a --test-file
        kw = {**kw, "split": (0.9, 0.1, 0.0) if kw["test_file"] else DEFAULTS["split"]}
    if kw["spec"]:                            # the spec decides the descriptors: no preset was used
        kw = {**kw, "preset": None}
    elif kw["preset"] is None:
        raise ValueError("--preset None: only with --spec (a spec file or JSON); name a preset or give --spec")
    s = {"dataset": str(dataset), **kw}
    for key in ("weights", "hidden", "split", "limit_weights"):
        if s.get(key) is not None:
            s[key] = list(s[key])
    return s


def train(dataset=None, *, out="alw_run", valid_file=None, test_file=None, init_model=None,
          weighting=DEFAULTS["weighting"], weights=DEFAULTS["weights"], beta=DEFAULTS["beta"],
          softadapt_variant=DEFAULTS["softadapt_variant"], slope_window=DEFAULTS["slope_window"],
          softadapt_prior=DEFAULTS["softadapt_prior"],
          loss_weighted=DEFAULTS["loss_weighted"], average_epochs=DEFAULTS["average_epochs"],
          limit_weights=DEFAULTS["limit_weights"], dwa_temperature=DEFAULTS["dwa_temperature"],
          loss=DEFAULTS["loss"], loss_scale=DEFAULTS["loss_scale"], hidden=DEFAULTS["hidden"],
          activation=DEFAULTS["activation"], rc=DEFAULTS["rc"], spec=DEFAULTS["spec"],
          preset=DEFAULTS["preset"], epochs=DEFAULTS["epochs"],
          batch_size=DEFAULTS["batch_size"], lr=DEFAULTS["lr"], lr_schedule=DEFAULTS["lr_schedule"],
          min_lr=DEFAULTS["min_lr"], lr_decay=DEFAULTS["lr_decay"], lr_factor=DEFAULTS["lr_factor"],
          lr_patience=DEFAULTS["lr_patience"], ema_decay=DEFAULTS["ema_decay"], seed=DEFAULTS["seed"],
          split=None, resume=False, overwrite=False, patience=None, min_improvement=0.0,
          time_limit=None, checkpoint_every=30.0, cache_dir=str(DEFAULT_CACHE), memory_budget=None, threads=None,
          plots=True, quiet=False) -> TrainResult:
    """Train a potential; every argument is the CLI option of the same name (see ``--help``)."""
    t_start = time.perf_counter()
    kw = {k: v for k, v in locals().items() if k not in ("dataset", "out", "t_start")}
    settings = _settings_dict(dataset, kw)
    check_options(settings)                       # every option, before any file is read or written
    out = Path(out)
    _prepare_folder(out, resume, overwrite)
    lock = RunLock(out)
    remove_stale_temporaries(out)             # temporaries of a killed earlier run in this folder
    try:
        with StopFlag() as stop:
            result = _train_locked(out, settings, stop, t_start)
            if stop.signum is not None:         # a signal after the last batch: the run is complete, say so
                raise Interrupted("after the last epoch; the run is complete")
            return result
    finally:
        lock.release()


def _prepare_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse a run folder that holds another run unless --resume or --overwrite (nothing is touched)."""
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: exists and is not a folder")
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    if resume and not (out / "checkpoint.h5").is_file():
        raise DataError(f"--resume: no checkpoint at {out / 'checkpoint.h5'} (no run to continue)")
    held = [p.name for p in out.iterdir() if p.name != ".lock" and not is_stale_temporary(p)] if out.is_dir() else []
    if held and not (resume or overwrite):
        raise DataError(f"--out {out}: the folder already holds a run ({', '.join(sorted(held)[:4])}"
                        f"{', …' if len(held) > 4 else ''}); continue it with --resume, replace it with --overwrite, "
                        "or choose another --out")
    out.mkdir(parents=True, exist_ok=True)


def _compared_on_resume(settings):
    """The settings ``--resume`` compares with the checkpoint's: all but ``preset`` when a spec is given (the spec
    decides the descriptors and is compared; runs trained before ``preset`` became null with a spec recorded
    the unused default "trainer" there, and must still resume)."""
    return {k: v for k, v in settings.items() if not (k == "preset" and settings["spec"])}


def _read_inputs(settings):
    """(data, fingerprint, spec, (train, val, test) index arrays, file labels) from the dataset files."""
    parts = [read_dataset(settings["dataset"])]
    for key in ("valid_file", "test_file"):
        if settings[key]:
            parts.append(read_dataset(settings[key]))
    data = concat_datasets(parts)
    init = load_model(settings["init_model"]) if settings["init_model"] else None
    if init is not None:
        spec = init.spec
        _check_init_model(settings, init, data)
    elif settings["spec"]:
        spec = ACSFSpec.from_json(settings["spec"])
    else:
        preset = settings["preset"]
        spec = ACSFSpec.preset(preset, data.elements, None if preset == "mote2_paper" else settings["rc"])
    splits = split_for_files([len(p) for p in parts], settings)
    return data, dataset_fingerprint(*parts), spec, splits, init


def _check_init_model(settings, init, data):
    """--init-model fixes the descriptors and the network: a --spec/--preset, --rc, --hidden or --activation
    other than the defaults and the model's own is an error (not silently replaced), and so is an element
    of the data the model has no network for."""
    model_path, spec = settings["init_model"], init.spec
    given = settings["spec"] and ACSFSpec.from_json(settings["spec"]).to_dict() != spec.to_dict()
    if given or settings["preset"] not in (None, DEFAULTS["preset"]):
        raise ValueError(f"--init-model {model_path} has its own descriptors; --spec/--preset "
                         "differ from them (leave them out when fine-tuning)")
    ours = {"rc": spec.rc, "hidden": list(init.hidden), "activation": init.activation}
    clash = [f"--{k} {_fmt(settings[k])} (the model has {_fmt(v)})" for k, v in ours.items()
             if _plain(settings[k]) != _plain(DEFAULTS[k]) and _plain(settings[k]) != _plain(v)]
    if clash:
        raise ValueError(f"--init-model {model_path} fixes the network and descriptors: {'; '.join(clash)}; "
                         "leave these options out when fine-tuning")
    missing = _elements_missing(data, spec)
    if missing:
        have = ", ".join(chemical_symbol(z) for z in spec.elements)
        raise DataError(f"--init-model {model_path} has networks for {have} only; the data also hold "
                        + ", ".join(chemical_symbol(z) for z in missing))


def _elements_missing(data, spec) -> list:
    """Atomic numbers of the data that the spec (and so the model) has no network for, ascending."""
    return sorted(set(int(z) for z in data.elements) - set(int(z) for z in spec.elements))


def _plain(value):
    """A setting as a comparable plain value (tuples and lists of numbers alike)."""
    return [float(x) for x in value] if isinstance(value, (list, tuple)) else value


def _train_locked(out, settings, stop, t_start):
    quiet = settings["quiet"]
    if settings["threads"]:
        import numba

        numba.set_num_threads(settings["threads"])
    ckpt = load_resume(out, _compared_on_resume(settings)) if settings["resume"] else None
    data, fingerprint, acsf_spec, (train_idx, val_idx, test_idx), init = _read_inputs(settings)
    if init is not None:                       # fine-tuning: the model's network (other values were refused)
        settings = {**settings, "hidden": list(init.hidden), "activation": init.activation, "rc": acsf_spec.rc}
    _check_data(data, acsf_spec, settings, train_idx)
    if ckpt is not None and ckpt["settings"].get("dataset_fingerprint") != fingerprint:
        raise DataError(f"--resume: the data differ from those the run in {out} was trained on (content "
                        "fingerprint changed); start a new run, or --init-model from its best.h5 to fine-tune")
    settings = {**settings, "dataset_fingerprint": fingerprint}
    if not settings["resume"]:                 # a new run (or --overwrite): no file of another run stays
        for name in RUN_FILES:                 # (files the trainer does not write, e.g. a sweep's notes, do)
            (out / name).unlink(missing_ok=True)
    with atomic_write(out / "settings.json") as tmp:
        Path(tmp).write_text(json.dumps({**settings, "spec_used": acsf_spec.to_dict()}, indent=1))
    log(quiet, f"dataset {settings['dataset']}: {len(data)} structures (train {len(train_idx)}, "
                f"val {len(val_idx)}, test {len(test_idx)}), {acsf_spec.n_features} descriptors, R_c {acsf_spec.rc} Å")
    desc, stored = _describe(data, acsf_spec, settings)
    species = acsf_spec.species_index(data.numbers)

    def get_batch(indices):
        return load_batch(data, acsf_spec, indices, species, stored)

    if ckpt is None:
        st = fresh_state(settings, data, desc, species, acsf_spec, train_idx, get_batch, init)
        save_model(st["model"], out / "best.h5")
    else:
        st = restore_state(out, ckpt, settings, -(-len(train_idx) // settings["batch_size"]))
    log(quiet, f"weighting {st['driver'].describe()}; loss {settings['loss']} ({LOSS_UNITS[settings['loss']]}), "
                f"scaled by {_fmt_scales(st['scales'], settings['loss_scale'])}; {st['schedule'].describe()}; "
                f"EMA {settings['ema_decay']:g}; {st['model'].n_params} parameters {tuple(st['model'].hidden)}")
    run_epochs(out, settings, st, data, get_batch, train_idx, val_idx, stop, t_start)
    result = finish(out, data, stored, species, (train_idx, val_idx, test_idx), st, settings)
    if len(test_idx) and Path(settings["test_file"] or "").name == EXAMPLE_TEST:
        m, p = result.test_metrics, PUBLISHED_MO_NNP
        log(quiet, f"mlearn Mo test set: this model E {m['energy_rmse']:.2f} meV/atom, F {m['forces_rmse'] / 1000:.3f} "
                   f"eV/Å, S {m['stress_rmse']:.3f} GPa (RMSE); published n2p2 NNP (Zuo et al., J. Phys. Chem. A "
                   f"124, 731 (2020), trained without stress) E {p['energy_rmse']:.2f} meV/atom, "
                   f"F {p['forces_rmse'] / 1000:.3f} eV/Å")
    return result


def _fmt_scales(scales, kind):
    if kind == "none":
        return "nothing (raw units)"
    return f"label RMS s = {scales[0]:.4g} eV/atom, {scales[1]:.4g} eV/Å, {scales[2]:.4g} GPa"


def _check_data(data, spec, settings, train_idx):
    """Data-dependent checks (stress present where weighted, every element in the spec, a training set)."""
    w, weighting = settings["weights"], settings["weighting"]
    if not data.has_stress.any() and (w[2] > 0 or weighting in ("softadapt", "dwa", "uncertainty")):
        raise DataError("no structure of the dataset has a stress label, but the stress term has weight "
                        f"{w[2]} (weighting {weighting!r}): use --weighting fixed with a stress weight "
                        "of 0, e.g. --weights 0.5,0.5,0")
    missing = _elements_missing(data, spec)
    if missing:
        spec.species_index(np.asarray(missing))  # raises SpecError naming the element
    if len(train_idx) == 0:
        raise DataError(f"the split {settings['split']} leaves no training structure out of {len(data)}")


def _describe(data, spec, settings):
    quiet = settings["quiet"]
    budget = _memory_budget_bytes(settings["memory_budget"])
    need = estimate_training_derivative_bytes(data, spec)  # stored derivatives + the kernels' compact copy
    stream = need > budget
    # neighbours within R_c, periodic images included (blocks sum images, the neighbour list does not):
    # the densest fully periodic structure's n/V times the sphere's volume
    volume = np.abs(np.linalg.det(data.cell))
    full = data.pbc.all(axis=1) & (volume > 0)
    density = (data.n_atoms[full] / volume[full]).max() if full.any() else 0.0
    neighbours = density * 4.0 / 3.0 * np.pi * spec.rc ** 3
    if neighbours > NEIGHBOUR_WARNING:
        print(f"warning: R_c = {spec.rc:g} Å gives about {neighbours:.0f} neighbours per atom (estimated from a "
              f"sample); descriptors and training will be slow and large — is the cutoff meant in Å?",
              file=sys.stderr, flush=True)
    log(quiet, f"descriptor derivatives: {need / 2**30:.2f} GiB (estimated), memory budget "
                f"{budget / 2**30:.2f} GiB: " + ("recomputed per batch (slower, bounded memory)" if stream
                                                 else "precomputed once"))
    # a cached set is memory-mapped read-only: runs on the same data share one copy in the page cache
    desc = describe_dataset(data, spec, derivatives=not stream, cache_dir=settings["cache_dir"] or None,
                            progress=not quiet, mmap=True)
    singular = singular_structures(desc) if not stream else np.zeros(0, np.int64)
    if len(singular):
        k = int(singular[0])
        print(f"warning: {len(singular)} structure(s) have |dG/dr| > {SINGULAR_DERIVATIVE:g} 1/Å, first structure "
              f"{k} ({str(data.name[k])!r}): descriptors with zeta < 1 are singular at collinear triplets and "
              f"their forces will dominate the loss; drop these structures or use zeta >= 1",
              file=sys.stderr, flush=True)
    return desc, (None if stream else desc)


def _memory_budget_bytes(gib):
    """The budget in bytes: ``gib`` GiB, or half of the physical memory when None."""
    if gib is not None:
        return gib * 2**30
    return 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


# ------------------------------------------------------------------------------------------- CLI
# Precedence of options: the defaults < --protocol paper < --config FILE (a run's own settings.json, or any
# JSON object with option names as keys; with --resume and no --config, the --out folder's settings.json, so
# a run continues as it was set up even after the defaults changed) < the command line.
# Exit codes: 0 done, 1 error, 130 interrupted.

#: Keys of a run's settings.json that are records, not options (ignored by --config).
RECORD_KEYS = ("spec_used", "dataset_fingerprint", "resume", "overwrite")


def _fmt(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(_fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _ints(text, name):
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name}: expected comma-separated integers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m alw_ref.train",
        description="Train a Behler-Parrinello potential on energies, forces and stress with adaptive loss "
                    "weights. Loss L = sum_k w_k L_k / s_k over energy (eV/atom), forces (eV/Å) and stress (GPa); "
                    "the defaults are the settings benchmarks/bench_accuracy.py found most accurate, "
                    "--protocol paper gives the paper's.")
    d = DEFAULTS

    def a(*names, default=None, help="", show=True, **kw):
        text = help + (f" (default: {_fmt(default)})" if show and default is not None else "")
        if default is not None:
            kw["default"] = default
        p.add_argument(*names, help=text, **kw)

    a("dataset", nargs="?", help="dataset.h5 to train on (default: the bundled mlearn Mo training set)", show=False)
    a("--out", default="alw_run", help="run folder (models, metrics, checkpoint, plots); must be new or empty "
      "unless --resume or --overwrite")
    a("--config", metavar="FILE", help="JSON options, e.g. the settings.json of an earlier run; command-line "
      "options override it")
    a("--protocol", choices=("default", "paper"), default="default",
      help="paper = the paper's protocol (raw RMSE terms, SoftAdapt l2, constant lr 1e-3, batch 30, 2x30 tanh, "
           "no EMA); other options override it")
    a("--preset", choices=PRESETS, default=d["preset"], help=PRESET_HELP)
    a("--spec", help="descriptor spec JSON file instead of --preset (default: none)", show=False)
    a("--rc", type=float, default=d["rc"], help=PRESET_RC_HELP, show=False)  # the text names the default
    a("--valid-file", help="dataset.h5 of validation structures (then the dataset is not split for validation)",
      show=False)
    a("--test-file", help="dataset.h5 of test structures, reported at the end (then the dataset is not split for "
      "testing)", show=False)
    a("--init-model", metavar="MODEL.h5", help="start from a trained model (weights, standardisation, reference "
      "energies and descriptors) with a new optimiser: fine-tuning; its network and descriptors are kept, so a "
      "--preset/--spec/--rc/--hidden/--activation other than the model's is refused", show=False)
    a("--weighting", default=d["weighting"], choices=STRATEGIES,
      help="loss weighting: fixed, SoftAdapt (the paper), DeePMD-style linear schedule, Dynamic Weight Average, "
           "or Kendall uncertainty weighting")
    a("--weights", type=lambda s: comma_floats(s, 3, "--weights"), default=d["weights"],
      help="initial (or fixed) weights w_E,w_F,w_S, normalised to sum 1; also the weights of the validation "
           "loss that selects best.h5")
    a("--beta", type=float, default=d["beta"], help="SoftAdapt β: > 0 favours the slowest-learning term")
    a("--softadapt-variant", default=d["softadapt_variant"], choices=SOFTADAPT_VARIANTS,
      help="how SoftAdapt normalises the loss changes: relative = change / previous value (unit-free); "
           "l2 = the paper's code")
    a("--slope-window", type=int, default=d["slope_window"], help="SoftAdapt/DWA: loss change over this many epochs")
    p.add_argument("--softadapt-prior", action=argparse.BooleanOptionalAction, default=d["softadapt_prior"],
                   help="SoftAdapt modulates the --weights (w_k ∝ w0_k exp(β ŝ_k)) instead of replacing them after "
                        "the first epoch (the paper: --no-softadapt-prior; identical for equal --weights) "
                        f"(default: {'on' if d['softadapt_prior'] else 'off'})")
    a("--average-epochs", type=int, default=d["average_epochs"],
      help="SoftAdapt: apply the mean of the last n computed weights")
    a("--loss-weighted", action="store_true", help="SoftAdapt: multiply each exponential by L_k (paper code option)")
    a("--limit-weights", type=lambda s: comma_floats(s, 3, "--limit-weights"),
      help="linear schedule: weights w_E,w_F,w_S at the last epoch (start = --weights); required there", show=False)
    a("--dwa-temperature", type=float, default=d["dwa_temperature"], help="Dynamic Weight Average temperature T")
    a("--loss", default=d["loss"], choices=FORMS, help="form of each loss term: RMSE (paper) or MSE")
    a("--loss-scale", default=d["loss_scale"], choices=LOSS_SCALES,
      help="labels = divide each term by the RMS of its training labels (unit-free terms); none = raw units "
           "(the paper)")
    a("--hidden", type=lambda s: _ints(s, "--hidden"), default=d["hidden"], help="hidden layer widths")
    a("--activation", default=d["activation"], choices=("tanh", "softplus", "silu"),
      help="activation function of the hidden layers (silu models cannot be exported to n2p2 or LAMMPS, "
           "which have no SiLU)")
    a("--epochs", type=int, default=d["epochs"], help="number of epochs (in all, also when resuming)")
    a("--time-limit", type=float, metavar="MINUTES", help="stop after the epoch that passes this many minutes "
      "(from the start of this command)", show=False)
    a("--batch-size", type=int, default=d["batch_size"], help="structures per batch")
    a("--lr", type=float, default=d["lr"], help="Adam learning rate at the start")
    a("--lr-schedule", default=d["lr_schedule"], choices=LR_SCHEDULES,
      help="exponential/cosine: from --lr to --min-lr over --epochs; plateau: x --lr-factor after --lr-patience "
           "epochs without a lower validation loss; constant: --lr (times --lr-decay per epoch)")
    a("--min-lr", type=float, default=d["min_lr"], help="floor of the learning rate")
    a("--lr-decay", type=float, default=d["lr_decay"], help="constant schedule only: factor per epoch (1 = none)")
    a("--lr-factor", type=float, default=d["lr_factor"], help="plateau schedule: factor")
    a("--lr-patience", type=int, default=d["lr_patience"], help="plateau schedule: epochs")
    a("--ema-decay", type=float, default=d["ema_decay"],
      help="exponential moving average of the parameters per step, used for validation and the saved models "
           "(0 = off)")
    a("--seed", type=int, default=d["seed"], help="seed of the split, initial weights and shuffling")
    a("--split", type=lambda s: comma_floats(s, 3, "--split"),
      help="train,validation,test fractions of the dataset; parts given as files are left out (default: "
           "0.7,0.2,0.1, the paper's; 0.9,0.1,0 with --test-file)", show=False)
    a("--patience", type=int, help="stop after this many epochs without a better validation loss", show=False)
    a("--min-improvement", type=float, default=0.0,
      help="for --patience: an epoch improves only if it lowers the best validation loss by more than this "
           "fraction of it (e.g. 0.001 = 0.1 %%)")
    a("--resume", action="store_true", help="continue the run in --out from its checkpoint.h5, bit for bit, "
      "with the options in its settings.json unless given here (--epochs, --patience, --time-limit and the "
      "learning rate may change)")
    a("--overwrite", action="store_true", help="replace the run in --out")
    a("--checkpoint-every", type=float, default=30.0, help="seconds between checkpoints (and at the end)")
    a("--cache-dir", default=str(DEFAULT_CACHE), help="descriptor cache folder ('' = no cache)")
    a("--memory-budget", type=float, metavar="GiB", help="GiB the stored descriptor derivatives may take; above "
      "it they are recomputed for every batch (default: half of the physical memory)", show=False)
    a("--threads", type=int, help="Numba threads (default: all cores)", show=False)
    a("--no-plots", dest="plots", action="store_false", help="do not write the PNG plots")
    a("--quiet", action="store_true", help="print nothing but errors")
    return p


def _config_defaults(path) -> dict:
    """Options from a JSON file; ValueError naming an unknown key."""
    try:
        cfg = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"--config {path}: cannot read it as JSON ({err})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"--config {path}: expected a JSON object of options")
    known = set(DEFAULTS) | set(PAPER_PROTOCOL) | {
        "dataset", "out", "valid_file", "test_file", "time_limit", "patience", "min_improvement",
        "checkpoint_every", "cache_dir", "memory_budget", "threads", "plots", "quiet", "spec", "epochs",
        "init_model"}
    unknown = sorted(set(cfg) - known - set(RECORD_KEYS))
    if unknown:
        raise ValueError(f"--config {path}: unknown option(s) {unknown}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items() if k not in RECORD_KEYS}


def parse(argv=None) -> dict:
    """train() keyword arguments from the command line (precedence: module docstring)."""
    parser = build_parser()
    parser.set_defaults(preset=None)             # first pass: does the command line itself name a preset?
    first = parser.parse_args(argv)
    typed = {flag for flag, value in (("--preset", first.preset), ("--spec", first.spec)) if value is not None}
    parser.set_defaults(preset=DEFAULTS["preset"])
    if first.protocol == "paper":                # and the paper's initial weights, ⅓ each
        parser.set_defaults(**PAPER_PROTOCOL, weights=(1 / 3, 1 / 3, 1 / 3))
    config = first.config
    if config is None and first.resume and (Path(first.out) / "settings.json").is_file():
        config = Path(first.out) / "settings.json"    # --resume continues the run as it was set up
    if config:
        try:
            parser.set_defaults(**_config_defaults(config))
        except ValueError as err:
            parser.error(str(err))
    kw = vars(parser.parse_args(argv))
    for key in ("config", "protocol"):
        kw.pop(key)
    if typed == {"--preset", "--spec"}:
        parser.error("give --preset or --spec, not both")
    if typed == {"--preset"}:                # the command line overrides a --config's spec, and vice versa
        kw["spec"] = None
    elif kw["spec"]:
        kw["preset"] = None
    if kw["preset"] == "mote2_paper" and kw["rc"] != DEFAULTS["rc"]:
        parser.error("--preset mote2_paper fixes R_c = 6.5 Å; leave out --rc")
    return kw


def main(argv=None) -> int:
    interrupts_raise()
    kwargs = parse(argv)
    dataset = kwargs.pop("dataset")
    try:
        train(dataset, **kwargs)
    except KeyboardInterrupt as err:           # Interrupted (in the loop) or Ctrl-C before it / in a file write
        where = f" {err}" if isinstance(err, Interrupted) else ""
        advice = (f"the run in {kwargs['out']} is consistent; --resume continues it from its last checkpoint"
                  if (Path(kwargs["out"]) / "checkpoint.h5").is_file()
                  else f"no checkpoint was written; start again (with --overwrite if {kwargs['out']} is not empty)")
        print(f"interrupted{where}: {advice}", file=sys.stderr)
        return 130
    except (ALWError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

