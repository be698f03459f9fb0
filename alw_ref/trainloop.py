"""The training loop of ``alw_ref.train``: state of a run (new, or restored from its checkpoint), the epochs
(batches, Adam, EMA, weighting, validation, best model, checkpoints, stops) and the final evaluation.

The algorithm, the loss scales and the files are described in ``alw_ref.train``; the files' guarantees in
``alw_ref.runfiles``. ``train`` settles every option and reads the data; the functions here only run it.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import ALWError
from .loss import COMPONENTS, loss_and_gradient
from .metrics import EPOCH_RMSE_COLUMNS, evaluate, format_table, metrics_by_group
from .model import Model, fit_descriptor_range, fit_reference_energies, fit_standardization
from .optim import Adam, AdamSettings
from .potential import load_model, read_model, save_model, write_model
from .runfiles import append_row, load_checkpoint, read_rows, save_checkpoint, truncate_rows
from .schedule import LearningRateSchedule, ema_update
from .trainsetup import label_scales, term_scales
from .units import EV_TO_MEV
from .weighting import LossWeighting

#: Units of the loss parts L_E, L_F, L_S of each loss form (written into every metrics row).
LOSS_UNITS = {"rmse": "eV/atom, eV/Å, GPa", "mse": "eV²/atom², eV²/Å², GPa²"}
#: The value that reproduces the behaviour from before an option existed, for checkpoints that lack it.
LEGACY = {"loss_scale": "none", "lr_schedule": "constant", "slope_window": 1, "softadapt_prior": False,
          "ema_decay": 0.0, "init_model": None,
          "preset": "trainer"}
#: Options that may change when a run is resumed: they do not change the numbers of an epoch, or (the
#: learning rate and its schedule, e.g. after a non-finite loss) their change is recorded in the metrics.
RESUMABLE_CHANGES = ("dataset", "epochs", "patience", "min_improvement", "time_limit", "checkpoint_every", "quiet",
                     "plots", "threads", "cache_dir", "resume", "overwrite", "memory_budget", "lr", "lr_schedule",
                     "min_lr", "lr_decay", "lr_factor", "lr_patience", "valid_file", "test_file")

class TrainingError(ALWError, RuntimeError):
    """Training cannot continue (e.g. a non-finite loss); the last good checkpoint is kept."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM during training; the run folder is consistent and ``--resume`` continues it."""


@dataclass(frozen=True)
class TrainResult:
    """What a run produced: the best model, its epoch, the metrics rows and the test metrics."""

    model: Model
    best_epoch: int
    rows: list
    test_metrics: dict
    out: Path


def _parts_from_sums(sse, count, form):
    mse = np.where(count > 0, sse / np.maximum(count, 1), 0.0)
    return mse if form == "mse" else np.sqrt(mse)


def _report_rmse(sse, count):
    """RMSE in report units from pooled sums: energy meV/atom, forces meV/Å, stress GPa."""
    rmse = np.where(count > 0, np.sqrt(sse / np.maximum(count, 1)), np.nan)
    return {"energy": rmse[0] * EV_TO_MEV, "forces": rmse[1] * EV_TO_MEV, "stress": rmse[2]}


def _pooled(model, get_batch, indices, weights, form, batch_size):
    """(sse (3,), count (3,)) of ``indices`` pooled over batches, loss units (module docstring, step 3)."""
    sse, count = np.zeros(len(COMPONENTS)), np.zeros(len(COMPONENTS))
    for k in range(0, len(indices), batch_size):
        res = loss_and_gradient(model, get_batch(indices[k:k + batch_size]), weights, form, gradient=False)
        sse += [res.sse[c] for c in COMPONENTS]
        count += [res.count[c] for c in COMPONENTS]
    return sse, count


class StopFlag:
    """SIGINT/SIGTERM set a flag that the loop checks between batches (a signal inside a Numba kernel
    would otherwise surface as a SystemError); a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.signum = None
        self._saved = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._saved[sig] = signal.signal(sig, self._handle)
            except ValueError:      # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise Interrupted("at once (second Ctrl-C); the rows after the last checkpoint are recomputed on "
                              "--resume")
        self.signum = signum

    def __exit__(self, *exc):
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        return False


def log(quiet, text):
    if not quiet:
        print(text, flush=True)


def fresh_state(settings, data, desc, species, spec, train_idx, get_batch, init):
    """Model (new, or from --init-model), optimiser, schedule, EMA, weighting and RNG of a new run."""
    if init is not None:
        model = init
    else:
        model = Model.create(spec, settings["hidden"], settings["activation"], settings["seed"])
        atoms = np.concatenate([np.arange(data.atom_offset[s], data.atom_offset[s + 1]) for s in train_idx])
        model.g_mean_eg[:], model.g_scale_eg[:] = fit_standardization(desc.G_ig[atoms], species[atoms],
                                                                      len(spec.elements))
        model.g_min_eg, model.g_max_eg = fit_descriptor_range(desc.G_ig[atoms], species[atoms], len(spec.elements))
        counts = np.stack([np.bincount(species[data.atom_offset[s]:data.atom_offset[s + 1]],
                                       minlength=len(spec.elements)) for s in train_idx])
        model.e_ref_e[:] = fit_reference_energies(data.energy[train_idx], counts)
    scales = label_scales(data, train_idx, model.e_ref_e, species) if settings["loss_scale"] == "labels" \
        else np.ones(3)
    model.meta.update(loss=settings["loss"], loss_units={"energy": "eV/atom", "forces": "eV/Å", "stress": "GPa"},
                      loss_scale=settings["loss_scale"], loss_scales=scales.tolist())
    w0 = np.asarray(settings["weights"], float) / np.sum(settings["weights"])
    driver = LossWeighting(settings["weighting"], tuple(w0), beta=settings["beta"],
                           variant=settings["softadapt_variant"], loss_weighted=settings["loss_weighted"],
                           average_epochs=settings["average_epochs"], limit=settings["limit_weights"],
                           n_epochs=settings["epochs"], temperature=settings["dwa_temperature"],
                           slope_window=settings["slope_window"], prior=settings["softadapt_prior"])
    n_batches = -(-len(train_idx) // settings["batch_size"])
    adam = Adam(model.n_params, _adam_settings(settings, n_batches))
    st = dict(model=model, adam=adam, driver=driver, scales=scales, schedule=_make_schedule(settings),
              adam_w=Adam(len(driver.params), AdamSettings(lr=settings["lr"])) if driver.trainable else None,
              ema=model.theta.copy(), best_theta=model.theta.copy(), rng=np.random.default_rng(settings["seed"]),
              epoch=0, best_val=None, best_epoch=0, bad_epochs=0, ckpt_epoch=None)
    w_eff = _effective_weights(w0, scales, settings["loss"])
    sse, count = _pooled(model, get_batch, train_idx, w_eff, settings["loss"], settings["batch_size"])
    driver.start(_parts_from_sums(sse, count, settings["loss"]) / term_scales(scales, settings["loss"]))
    return st


def _adam_settings(settings, n_batches):
    """Adam's settings: ``--lr-decay`` (per epoch, the old exponential form) only with the constant schedule;
    the other schedules set Adam's rate epoch by epoch (``_set_lr``)."""
    if settings["lr_schedule"] == "constant" and settings["lr_decay"] != 1.0:
        return AdamSettings(lr=settings["lr"], decay_rate=settings["lr_decay"], decay_steps=n_batches,
                            min_lr=settings["min_lr"])
    return AdamSettings(lr=settings["lr"])


def _make_schedule(settings):
    return LearningRateSchedule(settings["lr_schedule"], settings["lr"], settings["min_lr"], settings["epochs"],
                                settings["lr_factor"], settings["lr_patience"])


def _effective_weights(w, scales, form):
    """{component: w_k / s_k} (s_k² for MSE): the weights the loss sees."""
    return dict(zip(COMPONENTS, np.asarray(w, float) / term_scales(scales, form)))


def _set_lr(adam, schedule, epoch_index):
    """Give Adam the schedule's rate for this epoch (its own decay stays off, so the rate is exact)."""
    if schedule.kind != "constant":
        adam.settings = replace(adam.settings, lr=schedule.lr(epoch_index), min_lr=0.0)


def run_epochs(out, settings, st, data, get_batch, train_idx, val_idx, stop, t_start):
    quiet, form, bs = settings["quiet"], settings["loss"], settings["batch_size"]
    model, adam, driver = st["model"], st["adam"], st["driver"]
    w0 = np.asarray(settings["weights"], float) / np.sum(settings["weights"])
    tscale = term_scales(st["scales"], form)
    n_batches = -(-len(train_idx) // bs)
    log(quiet, f"{'epoch':>5} {'train E':>9} {'F':>8} {'S':>8} | {'val E':>9} {'F':>8} {'S':>8} | "
                f"{'w_E':>5} {'w_F':>5} {'w_S':>5} | {'lr':>8} {'time':>6}   (E meV/atom, F meV/Å, S GPa)")
    if st["epoch"] == 0:                      # a checkpoint before the first epoch: --resume always works
        _checkpoint(out, settings, st)
    if settings["patience"] is not None and st["bad_epochs"] >= settings["patience"]:
        log(quiet, f"early stop: the run had already met --patience {settings['patience']} (no epoch trained)")
        return
    last_ckpt = time.perf_counter()
    show_progress = not quiet and sys.stderr.isatty()
    for epoch in range(st["epoch"] + 1, settings["epochs"] + 1):
        t0 = time.perf_counter()
        _set_lr(adam, st["schedule"], epoch - 1)
        lr_now = adam.learning_rate()
        applied = driver.current()
        perm = st["rng"].permutation(train_idx)
        sse, count = np.zeros(3), np.zeros(3)
        for b in range(n_batches):
            res = loss_and_gradient(model, get_batch(perm[b * bs:(b + 1) * bs]),
                                    _effective_weights(driver.current(), st["scales"], form), form)
            if not (np.isfinite(res.total) and np.all(np.isfinite(res.gradient))):
                raise TrainingError(
                    f"epoch {epoch}, batch {b + 1}: the loss or its gradient is not finite (loss = {res.total}). "
                    f"The last good state is in {out / 'checkpoint.h5'} (after epoch {st['ckpt_epoch']}) and "
                    f"{out / 'best.h5'}; continue from it with a lower learning rate: --resume --lr "
                    f"{settings['lr'] / 10:g} (now --lr {settings['lr']:g})")
            model.theta[:] = adam.step(model.theta, res.gradient)
            if settings["ema_decay"] > 0:
                ema_update(st["ema"], model.theta, settings["ema_decay"], adam.t - 1)
            if st["adam_w"] is not None:
                driver.set_params(st["adam_w"].step(driver.params, driver.param_gradient(
                    np.array([res.parts[c] for c in COMPONENTS]) / tscale)))
            sse += [res.sse[c] for c in COMPONENTS]
            count += [res.count[c] for c in COMPONENTS]
            if stop.signum is not None:
                raise Interrupted(f"in epoch {epoch}")
            if show_progress and n_batches > 1:
                print(f"\r  epoch {epoch}: batch {b + 1}/{n_batches}", end="", file=sys.stderr, flush=True)
        if show_progress and n_batches > 1:
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)
        train_parts = _parts_from_sums(sse, count, form)
        driver.end_epoch(train_parts / tscale)
        vs, vc = _validate(model, st, settings, get_batch, val_idx)
        val_parts = _parts_from_sums(vs, vc, form)
        val_loss = float(np.dot(w0, (val_parts if len(val_idx) else train_parts) / tscale))
        st["schedule"].end_epoch(val_loss)
        tr, va = _report_rmse(sse, count), _report_rmse(vs, vc)
        row = {"epoch": epoch, "time_s": round(time.perf_counter() - t0, 4), "lr": lr_now,
               **{f"w_{c}": float(x) for c, x in zip(COMPONENTS, applied)},
               "loss_form": form, "loss_units": LOSS_UNITS[form],
               **{f"train_L_{c}": float(x) for c, x in zip(COMPONENTS, train_parts)},
               **{f"val_L_{c}": float(x) for c, x in zip(COMPONENTS, val_parts)},
               "val_loss": val_loss,
               **{f"train_{EPOCH_RMSE_COLUMNS[c]}": float(tr[c]) for c in COMPONENTS},
               **{f"val_{EPOCH_RMSE_COLUMNS[c]}": float(va[c]) for c in COMPONENTS}}
        append_row(out, row)                      # the row first: a kill after it loses nothing
        _update_best(out, st, row, settings)
        st["epoch"] = epoch
        log(quiet, f"{epoch:>5} {tr['energy']:>9.3f} {tr['forces']:>8.1f} {tr['stress']:>8.4f} | "
                    f"{va['energy']:>9.3f} {va['forces']:>8.1f} {va['stress']:>8.4f} | "
                    f"{applied[0]:>5.3f} {applied[1]:>5.3f} {applied[2]:>5.3f} | {lr_now:>8.2e} {row['time_s']:>5.2f}s")
        reason = _stop_reason(settings, st, t_start, epoch)
        if reason or time.perf_counter() - last_ckpt >= settings["checkpoint_every"]:
            _checkpoint(out, settings, st)
            last_ckpt = time.perf_counter()
        if reason:
            log(quiet, reason)
            break
    else:
        _checkpoint(out, settings, st)


def _validate(model, st, settings, get_batch, val_idx):
    """Validation sums with the EMA parameters θ̄ (``ema_decay`` > 0) or θ."""
    w = _effective_weights(np.ones(3), st["scales"], settings["loss"])
    if settings["ema_decay"] <= 0:
        return _pooled(model, get_batch, val_idx, w, settings["loss"], settings["batch_size"])
    raw = model.theta.copy()
    model.theta[:] = st["ema"]
    try:
        return _pooled(model, get_batch, val_idx, w, settings["loss"], settings["batch_size"])
    finally:
        model.theta[:] = raw


def _saved_theta(st, settings):
    """The parameters a model file gets: θ̄ with EMA, else θ."""
    return st["ema"] if settings["ema_decay"] > 0 else st["model"].theta


def _save_with_theta(model, theta, path):
    raw = model.theta.copy()
    model.theta[:] = theta
    try:
        save_model(model, path)
    finally:
        model.theta[:] = raw


def _update_best(out, st, row, settings):
    """best.h5 on every lower validation loss; count epochs without a significant one for --patience."""
    best = st["best_val"]
    if best is None or row["val_loss"] < best:
        rel = settings["min_improvement"] or 0.0
        significant = best is None or row["val_loss"] < best * (1.0 - rel)
        st.update(best_val=row["val_loss"], best_epoch=row["epoch"],
                  bad_epochs=0 if significant else st["bad_epochs"] + 1)
        st["best_theta"] = _saved_theta(st, settings).copy()
        _save_with_theta(st["model"], st["best_theta"], out / "best.h5")
    else:
        st["bad_epochs"] += 1


def _stop_reason(settings, st, t_start, epoch):
    if settings["patience"] is not None and st["bad_epochs"] >= settings["patience"]:
        return (f"early stop: the validation loss has not improved by more than {settings['min_improvement']:g} "
                f"(relative) for {settings['patience']} epochs")
    if settings["time_limit"] is not None and time.perf_counter() - t_start >= 60.0 * settings["time_limit"]:
        if epoch < settings["epochs"]:
            return f"time limit of {settings['time_limit']:g} min reached after epoch {epoch}"
    return None


def _checkpoint(out, settings, st):
    model = st["model"]
    state = {k: st[k] for k in ("epoch", "best_val", "best_epoch", "bad_epochs")}
    state.update(rng=st["rng"].bit_generator.state, weighting=st["driver"].state_dict(),
                 schedule=st["schedule"].state_dict(), scales=st["scales"].tolist())
    groups = {"model": lambda g: write_model(model, g), "adam": st["adam"].write_state,
              "arrays": lambda g: (g.create_dataset("ema", data=st["ema"]),
                                   g.create_dataset("best_theta", data=st["best_theta"]))}
    if st["adam_w"] is not None:
        groups["adam_weighting"] = st["adam_w"].write_state
    save_checkpoint(out / "checkpoint.h5", settings=settings, epoch=st["epoch"], state=state, write_groups=groups)
    st["ckpt_epoch"] = st["epoch"]


#: What ``restore_state`` reads from every checkpoint (``_checkpoint`` writes them).
CHECKPOINT_REQUIRED = ("state:weighting", "state:rng", "state:scales", "state:schedule", "state:best_val",
                       "state:best_epoch", "state:bad_epochs", "model", "adam", "arrays", "arrays/ema",
                       "arrays/best_theta")


def _required_in_checkpoint(header):
    """``CHECKPOINT_REQUIRED``, and the weighting's optimiser group when the weighting trains parameters."""
    if "weighting" not in header["state"]:
        return CHECKPOINT_REQUIRED
    trainable = LossWeighting.from_state_dict(header["state"]["weighting"]).trainable
    return CHECKPOINT_REQUIRED + (("adam_weighting",) if trainable else ())


def load_resume(out, settings):
    ckpt = load_checkpoint(out / "checkpoint.h5", {
        "model": lambda g: read_model(g, where=f"{out / 'checkpoint.h5'}:/model"), "adam": Adam.read_state,
        "adam_weighting": Adam.read_state, "arrays": lambda g: {k: np.asarray(g[k][()]) for k in g}},
        required=_required_in_checkpoint)
    old = ckpt["settings"]
    from_model = ("hidden", "activation", "rc") if settings.get("init_model") else ()   # recorded from the model
    changed = [k for k in settings if k not in RESUMABLE_CHANGES + from_model
               and old.get(k, LEGACY.get(k)) != settings[k]]
    if changed:
        raise ValueError(f"--resume with changed options {changed}: only {', '.join(RESUMABLE_CHANGES)} "
                         f"may differ from the interrupted run (see {out / 'settings.json'})")
    return ckpt


def restore_state(out, ckpt, settings, n_batches):
    s = ckpt["state"]
    rng = np.random.default_rng()
    rng.bit_generator.state = s["rng"]
    st = dict(model=ckpt["model"], adam=ckpt["adam"], adam_w=ckpt["adam_weighting"],
              driver=LossWeighting.from_state_dict(s["weighting"]), scales=np.asarray(s["scales"], float),
              schedule=LearningRateSchedule.from_state_dict(s["schedule"]), ema=ckpt["arrays"]["ema"],
              best_theta=ckpt["arrays"]["best_theta"], rng=rng, epoch=ckpt["epoch"], best_val=s["best_val"],
              best_epoch=s["best_epoch"], bad_epochs=s["bad_epochs"], ckpt_epoch=ckpt["epoch"])
    old = ckpt["settings"]
    if any(old.get(k) != settings[k] for k in ("lr", "lr_schedule", "min_lr", "lr_decay", "lr_factor", "lr_patience")):
        # a new schedule from the resumed epoch on, recorded in the metrics' lr column (a longer run alone
        # keeps its schedule: epochs after the planned last one keep the floor)
        st["schedule"] = _make_schedule(settings)
        st["adam"].settings = _adam_settings(settings, n_batches)
        log(settings["quiet"], f"learning rate changed on resume: {st['schedule'].describe()}")
    rows = truncate_rows(out, st["epoch"])      # rows after the checkpoint are recomputed, bit for bit
    if st["best_val"] is not None:
        _save_with_theta(st["model"], st["best_theta"], out / "best.h5")
    log(settings["quiet"], f"resuming after epoch {st['epoch']} from {out / 'checkpoint.h5'} ({len(rows)} rows)")
    return st


def _nan_to_null(obj):
    """JSON has no NaN: a metric over an empty set (e.g. no stress labels) is written as null."""
    if isinstance(obj, dict):
        return {k: _nan_to_null(v) for k, v in obj.items()}
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def finish(out, data, desc, species, splits, st, settings) -> TrainResult:
    """final.h5; evaluate the best model on every split, print the table, write test_metrics.json and plots."""
    quiet = settings["quiet"]
    _save_with_theta(st["model"], _saved_theta(st, settings), out / "final.h5")
    best = load_model(out / "best.h5")
    names = ("train", "val", "test")
    evals = {name: evaluate(best, data, desc, idx, species) for name, idx in zip(names, splits) if len(idx)}
    test_label = "test file" if settings["test_file"] else "test split"
    log(quiet, f"\nbest model: epoch {st['best_epoch']} ({out / 'best.h5'}); final model: epoch {st['epoch']} "
                f"({out / 'final.h5'}); test = {settings['test_file'] or 'test split'}\n" + format_table(evals))
    groups = metrics_by_group(evals["test"], data.config_type) if "test" in evals else {}
    if groups:
        log(quiet, f"\n{test_label} by config_type:\n" + format_table(groups, label="config_type"))
    report = {"best_epoch": st["best_epoch"], "final_epoch": st["epoch"],
              "test_source": settings["test_file"] or "split",
              "units": {"energy": "meV/atom", "forces": "meV/Å", "stress": "GPa (and MPa where named)"},
              **{name: ev.metrics for name, ev in evals.items()}, "test_by_config_type": groups}
    with atomic_write(out / "test_metrics.json") as tmp:
        Path(tmp).write_text(json.dumps(_nan_to_null(report), indent=1, allow_nan=False))
    rows = read_rows(out)
    if settings["plots"]:
        from .plots import plot_learning_curves, plot_parity, plot_weights

        data_name = Path(settings["dataset"]).name
        if rows:
            plot_learning_curves(rows, out / "learning_curves.png", best_epoch=st["best_epoch"],
                                 title=f"{out.name}: trained on {data_name}")
            plot_weights(rows, out / "weights.png", title=f"{out.name} on {data_name}: {st['driver'].describe()}")
        shown = "test" if "test" in evals else next(iter(evals))
        source = Path(settings["test_file"]).name if shown == "test" and settings["test_file"] else \
            f"{shown} split of {data_name}"
        plot_parity(evals[shown], out / "parity.png",
                    title=f"{out / 'best.h5'} (epoch {st['best_epoch']}) on {source}")
    return TrainResult(best, st["best_epoch"], rows, evals.get("test", next(iter(evals.values()))).metrics, out)


