"""Training: ``python -m alw_ref.train dataset.h5`` — the paper's protocol with adaptive loss weights.

One epoch (paper Algorithm 1, as the paper's code ran it):
  1. the training structures are shuffled (seeded) and cut into batches of ``batch_size`` structures;
  2. per batch: E, F, σ, the loss L = Σ_k w_k L_k (``loss``), the exact ∂L/∂θ (``model``), one Adam step;
     with ``uncertainty`` weighting the log-variances take an Adam step of their own;
  3. the epoch's training loss parts L_k are pooled over its batches (√(Σ sse / Σ count), every
     structure and force component weighted equally — not a mean of batch RMSEs);
  4. the weighting strategy sees L_k of this epoch (and the epoch before) and sets the weights of
     the next epoch (``weighting``); before epoch 1 it sees L_k(0), the untrained model's losses;
  5. validation: the same parts on the validation split, without gradients. The validation loss
     that selects the best model and drives early stopping is Σ_k w⁰_k L_k^val with the *initial*
     weights w⁰ (``--weights``), so the criterion does not move when adaptive weights do.

Output folder: ``settings.json`` (every option), ``metrics.csv`` and ``metrics.jsonl`` (one row per
epoch: the weights w_* applied, the loss parts train_L_*/val_L_* with ``loss_form`` and ``loss_units``,
the validation loss, and RMSEs with the unit in the column name, e.g. ``val_forces_rmse_meV_A``), ``best.h5`` (the model file with the lowest validation loss),
``checkpoint.h5`` (model, optimizer, weighting and RNG state: ``--resume`` continues bit for bit),
``test_metrics.json``, ``learning_curves.png``, ``weights.png``, ``parity.png``. Every file is
written atomically.
"""

from __future__ import annotations

import os

if __name__ == "__main__":
    # The CLI runs NumPy's BLAS on one thread unless told otherwise: the networks' matrices are small
    # and BLAS threads compete with Numba's (benchmarks/bench_train.py: 2-3.7x slower epochs with 2).
    # This must happen before NumPy is imported; from Python, set OPENBLAS_NUM_THREADS=1 yourself.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import csv
import io
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .acsf import ACSFSpec
from .atomic import atomic_write
from .data import example_dataset_path, read_dataset, split_indices
from .describe import SINGULAR_DERIVATIVE, describe_dataset, estimate_derivative_bytes, singular_structures
from .errors import ALWError, DataError
from .loss import COMPONENTS, FORMS, loss_and_gradient
from .metrics import EPOCH_RMSE_COLUMNS, evaluate, format_table
from .model import Model, fit_reference_energies, fit_standardization, load_batch
from .optim import Adam, AdamSettings
from .potential import read_model, save_model, write_model
from .units import EV_TO_MEV
from .weighting import STRATEGIES, LossWeighting

#: Units of the loss parts L_E, L_F, L_S of each loss form (written into every metrics row).
LOSS_UNITS = {"rmse": "eV/atom, eV/Å, GPa", "mse": "eV²/atom², eV²/Å², GPa²"}
CHECKPOINT_FORMAT = "alw_ref.checkpoint"
CHECKPOINT_VERSION = 1
DEFAULT_CACHE = Path.home() / ".cache" / "alw_ref"
#: Options that may change when a run is resumed (they do not change the numbers of an epoch).
RESUMABLE_CHANGES = ("epochs", "patience", "min_improvement", "quiet", "plots", "threads", "cache_dir", "resume",
                     "memory_budget")
#: The paper's training protocol (2 × 30 tanh, Adam lr 1e-3 constant, batches of 30 structures, raw RMSE
#: terms in eV/atom, eV/Å and GPa, SoftAdapt ``l2`` from the training losses, best model by the validation
#: loss Σ w⁰_k L_k): ``train(..., **PAPER_PROTOCOL)`` reproduces it whatever the trainer's defaults are.
#: ``paper_figures/`` uses it; every option that changes the numbers of an epoch is named here.
PAPER_PROTOCOL = dict(hidden=(30, 30), activation="tanh", lr=1e-3, lr_decay=1.0, min_lr=0.0, batch_size=30,
                      loss="rmse", weighting="softadapt", softadapt_variant="l2", loss_weighted=False,
                      average_epochs=1, split=(0.7, 0.2, 0.1))


class TrainingError(ALWError, RuntimeError):
    """Training cannot continue (e.g. a non-finite loss); the last good checkpoint is kept."""


@dataclass(frozen=True)
class TrainResult:
    """What a run produced: the best model, its epoch, the metrics rows and the test-set metrics."""

    model: Model
    best_epoch: int
    rows: list
    test_metrics: dict
    out: Path


def _pooled_parts(model, get_batch, indices, weights, form, batch_size):
    """Loss parts (K,) of ``indices`` in loss units, pooled over batches (module docstring, step 3)."""
    sse, count = np.zeros(len(COMPONENTS)), np.zeros(len(COMPONENTS))
    for k in range(0, len(indices), batch_size):
        res = loss_and_gradient(model, get_batch(indices[k:k + batch_size]), weights, form, gradient=False)
        sse += [res.sse[c] for c in COMPONENTS]
        count += [res.count[c] for c in COMPONENTS]
    return _parts_from_sums(sse, count, form)


def _parts_from_sums(sse, count, form):
    mse = np.where(count > 0, sse / np.maximum(count, 1), 0.0)
    return mse if form == "mse" else np.sqrt(mse)


def _report_rmse(sse, count):
    """RMSE in report units from pooled sums: energy meV/atom, forces meV/Å, stress GPa."""
    rmse = np.where(count > 0, np.sqrt(sse / np.maximum(count, 1)), np.nan)
    return {"energy": rmse[0] * EV_TO_MEV, "forces": rmse[1] * EV_TO_MEV, "stress": rmse[2]}


def _check_inputs(dataset, spec, weighting, weights, form, split, batch_size, epochs):
    """Fail before any work, naming the problem (bad option values, missing stress, uncovered element)."""
    if weighting not in STRATEGIES:
        raise ValueError(f"unknown weighting {weighting!r}; choose one of {', '.join(STRATEGIES)}")
    if form not in FORMS:
        raise ValueError(f"unknown loss {form!r}; choose one of {', '.join(FORMS)}")
    if len(weights) != 3 or not all(np.isfinite(weights)) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"--weights needs three finite numbers ≥ 0 (energy, forces, stress), not all 0; "
                         f"got {weights}")
    if batch_size < 1 or epochs < 0:
        raise ValueError(f"--batch-size must be ≥ 1 and --epochs ≥ 0 (got {batch_size}, {epochs})")
    if not dataset.has_stress.any() and (weights[2] > 0 or weighting in ("softadapt", "dwa", "uncertainty")):
        raise DataError("no structure of the dataset has a stress label, but the stress term has weight "
                        f"{weights[2]} (weighting {weighting!r}): use --weighting fixed with a stress weight "
                        "of 0, e.g. --weights 0.5,0.5,0")
    known = set(int(z) for z in spec.elements)
    missing = sorted(set(int(z) for z in dataset.elements) - known)
    if missing:
        spec.species_index(np.asarray(missing))  # raises SpecError naming the element
    n_train = len(split_indices(len(dataset), split, 0)[0])
    if n_train == 0:
        raise DataError(f"the split {split} leaves no training structure out of {len(dataset)}")


def _write_rows(out: Path, rows: list) -> None:
    """metrics.csv and metrics.jsonl from all rows so far (rewritten atomically every epoch)."""
    if not rows:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    for name, text in (("metrics.csv", buf.getvalue()),
                       ("metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))):
        with atomic_write(out / name) as tmp:
            Path(tmp).write_text(text)


def _save_checkpoint(path, settings, model, adam, adam_w, weighting, rng, epoch, state):
    with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = CHECKPOINT_FORMAT
        f.attrs["format_version"] = CHECKPOINT_VERSION
        f.attrs["settings"] = json.dumps(settings)
        f.attrs["epoch"] = epoch
        f.attrs["rng_state"] = json.dumps(rng.bit_generator.state)
        f.attrs["state"] = json.dumps(state)
        f.attrs["weighting"] = json.dumps(_jsonable(weighting.state_dict()))
        write_model(model, f.create_group("model"))
        adam.write_state(f.create_group("adam"))
        if adam_w is not None:
            adam_w.write_state(f.create_group("adam_weighting"))


def _record_epoch(out, state, row, settings, model, adam, adam_w, driver, rng) -> None:
    """End-of-epoch bookkeeping: append ``row``, save best.h5 if ``row["val_loss"]`` improved (else count a
    bad epoch for --patience), write the checkpoint and the metrics files (all atomic).

    An epoch counts as an improvement for --patience only if it lowers the best validation loss by more than
    the fraction ``settings["min_improvement"]`` of it (0: any decrease); best.h5 follows every decrease."""
    state["rows"].append(row)
    best = state["best_val"]
    if best is None or row["val_loss"] < best:
        rel = settings.get("min_improvement") or 0.0
        significant = best is None or row["val_loss"] < best * (1.0 - rel)
        state.update(best_val=row["val_loss"], best_epoch=row["epoch"])
        state["bad_epochs"] = 0 if significant else state["bad_epochs"] + 1
        save_model(model, out / "best.h5")
    else:
        state["bad_epochs"] += 1
    _save_checkpoint(out / "checkpoint.h5", settings, model, adam, adam_w, driver, rng, row["epoch"], state)
    _write_rows(out, state["rows"])


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return {"__array__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _from_jsonable(obj):
    if isinstance(obj, dict):
        if "__array__" in obj:
            return np.asarray(obj["__array__"], dtype=obj["dtype"])
        return {k: _from_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_jsonable(v) for v in obj]
    return obj


def _load_checkpoint(path):
    if not Path(path).exists():
        raise DataError(f"--resume: no checkpoint at {path}")
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != CHECKPOINT_FORMAT or f.attrs.get("format_version") != CHECKPOINT_VERSION:
            raise DataError(f"{path}: not an alw_ref checkpoint of version {CHECKPOINT_VERSION}")
        rng = np.random.default_rng()
        rng.bit_generator.state = json.loads(f.attrs["rng_state"])
        return dict(settings=json.loads(f.attrs["settings"]), epoch=int(f.attrs["epoch"]),
                    state=json.loads(f.attrs["state"]), rng=rng,
                    weighting=LossWeighting.from_state_dict(_from_jsonable(json.loads(f.attrs["weighting"]))),
                    model=read_model(f["model"], where=f"{path}:/model"), adam=Adam.read_state(f["adam"]),
                    adam_w=Adam.read_state(f["adam_weighting"]) if "adam_weighting" in f else None)


def _log(quiet, text):
    if not quiet:
        print(text, flush=True)


def train(dataset=None, *, out="alw_run", weighting="softadapt", weights=(1 / 3, 1 / 3, 1 / 3), beta=1.0,
          softadapt_variant="l2", loss_weighted=False, average_epochs=1, limit_weights=None,
          dwa_temperature=2.0, loss="rmse", hidden=(30, 30), activation="tanh", rc=5.0, spec=None,
          epochs=100, batch_size=30, lr=1e-3, lr_decay=1.0, min_lr=0.0, seed=0, split=(0.7, 0.2, 0.1),
          resume=False, patience=None, min_improvement=0.0, cache_dir=str(DEFAULT_CACHE), memory_budget=None,
          threads=None,
          plots=True, quiet=False) -> TrainResult:
    """Train a potential; every argument is the CLI option of the same name (see ``--help``)."""
    out = Path(out)
    settings = dict(dataset=str(dataset or example_dataset_path()), weighting=weighting, weights=list(weights),
                    beta=beta, softadapt_variant=softadapt_variant, loss_weighted=loss_weighted,
                    average_epochs=average_epochs, limit_weights=None if limit_weights is None else list(limit_weights),
                    dwa_temperature=dwa_temperature, loss=loss, hidden=list(hidden), activation=activation, rc=rc,
                    spec=spec, epochs=epochs, batch_size=batch_size, lr=lr, lr_decay=lr_decay, min_lr=min_lr,
                    seed=seed, split=list(split), patience=patience,
                    min_improvement=min_improvement, cache_dir=cache_dir,
                    memory_budget=memory_budget, threads=threads,
                    plots=plots, quiet=quiet, resume=resume)
    if threads:
        import numba

        numba.set_num_threads(threads)
    ckpt = None
    if resume:
        ckpt = _load_checkpoint(out / "checkpoint.h5")
        changed = [k for k in settings if k not in RESUMABLE_CHANGES and ckpt["settings"].get(k) != settings[k]]
        if changed:
            raise ValueError(f"--resume with changed options {changed}: only {', '.join(RESUMABLE_CHANGES)} "
                             f"may differ from the interrupted run (see {out / 'settings.json'})")
    data = read_dataset(settings["dataset"])
    acsf_spec = ACSFSpec.from_json(spec) if spec else ACSFSpec.default(tuple(int(z) for z in data.elements), rc)
    _check_inputs(data, acsf_spec, weighting, weights, loss, split, batch_size, epochs)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "settings.json") as tmp:
        Path(tmp).write_text(json.dumps({**settings, "spec_used": acsf_spec.to_dict()}, indent=1))
    train_idx, val_idx, test_idx = split_indices(len(data), split, seed)
    _log(quiet, f"dataset {settings['dataset']}: {len(data)} structures (train {len(train_idx)}, "
                f"val {len(val_idx)}, test {len(test_idx)}), {acsf_spec.n_features} descriptors, R_c {acsf_spec.rc} Å")
    budget = _memory_budget_bytes(memory_budget)
    need = estimate_derivative_bytes(data, acsf_spec)
    stream = need > budget
    _log(quiet, f"descriptor derivatives: {need / 2**30:.2f} GiB (estimated), memory budget "
                f"{budget / 2**30:.2f} GiB: " + ("recomputed per batch (slower, bounded memory)" if stream
                                                 else "precomputed once"))
    desc = describe_dataset(data, acsf_spec, derivatives=not stream, cache_dir=cache_dir or None,
                            progress=not quiet)
    stored = None if stream else desc
    singular = singular_structures(desc) if not stream else np.zeros(0, np.int64)
    if len(singular):
        k = int(singular[0])
        print(f"warning: {len(singular)} structure(s) have |dG/dr| > {SINGULAR_DERIVATIVE:g} 1/Å, first structure "
              f"{k} ({str(data.name[k])!r}): descriptors with zeta < 1 are singular at collinear triplets and "
              f"their forces will dominate the loss; drop these structures or use zeta >= 1",
              file=sys.stderr, flush=True)
    species = acsf_spec.species_index(data.numbers)

    def get_batch(indices):
        return load_batch(data, acsf_spec, indices, species, stored)

    init_w = dict(zip(COMPONENTS, np.asarray(weights, float) / np.sum(weights)))
    n_batches = -(-len(train_idx) // batch_size)
    if ckpt is None:
        model = Model.create(acsf_spec, hidden, activation, seed)
        train_atoms = np.concatenate([np.arange(data.atom_offset[s], data.atom_offset[s + 1]) for s in train_idx])
        model.g_mean_eg[:], model.g_scale_eg[:] = fit_standardization(desc.G_ig[train_atoms], species[train_atoms],
                                                                      len(acsf_spec.elements))
        counts = np.stack([np.bincount(species[data.atom_offset[s]:data.atom_offset[s + 1]],
                                       minlength=len(acsf_spec.elements)) for s in train_idx])
        model.e_ref_e[:] = fit_reference_energies(data.energy[train_idx], counts)
        model.meta.update(loss=loss, loss_units={"energy": "eV/atom", "forces": "eV/Å", "stress": "GPa"})
        adam = Adam(model.n_params, AdamSettings(lr=lr, decay_rate=lr_decay, decay_steps=n_batches, min_lr=min_lr))
        driver = LossWeighting(weighting, tuple(np.asarray(weights, float) / np.sum(weights)), beta=beta,
                               variant=softadapt_variant, loss_weighted=loss_weighted,
                               average_epochs=average_epochs, limit=limit_weights, n_epochs=epochs,
                               temperature=dwa_temperature)
        adam_w = Adam(len(driver.params), AdamSettings(lr=lr)) if driver.trainable else None
        rng = np.random.default_rng(seed)
        driver.start(_pooled_parts(model, get_batch, train_idx, init_w, loss, batch_size))
        state = dict(rows=[], best_val=None, best_epoch=0, bad_epochs=0)
        epoch0 = 0
        save_model(model, out / "best.h5")
    else:
        model, adam, adam_w, driver, rng = ckpt["model"], ckpt["adam"], ckpt["adam_w"], ckpt["weighting"], ckpt["rng"]
        state, epoch0 = ckpt["state"], ckpt["epoch"]
        _log(quiet, f"resuming after epoch {epoch0} from {out / 'checkpoint.h5'}")
    _log(quiet, f"weighting {driver.describe()}; loss {loss} (E eV/atom, F eV/Å, S GPa); "
                f"{model.n_params} parameters")
    _log(quiet, f"{'epoch':>5} {'train E':>9} {'F':>8} {'S':>8} | {'val E':>9} {'F':>8} {'S':>8} | "
                f"{'w_E':>5} {'w_F':>5} {'w_S':>5} | {'time':>6}   (E meV/atom, F meV/Å, S GPa)")
    show_progress = not quiet and sys.stderr.isatty()
    for epoch in range(epoch0 + 1, epochs + 1):
        t0 = time.perf_counter()
        applied = driver.current()
        perm = rng.permutation(train_idx)
        sse, count = np.zeros(3), np.zeros(3)
        for b in range(n_batches):
            w = dict(zip(COMPONENTS, driver.current()))
            res = loss_and_gradient(model, get_batch(perm[b * batch_size:(b + 1) * batch_size]), w, loss)
            if not (np.isfinite(res.total) and np.all(np.isfinite(res.gradient))):
                raise TrainingError(
                    f"epoch {epoch}, batch {b + 1}: the loss or its gradient is not finite (loss = {res.total}). "
                    f"The last good state is in {out / 'checkpoint.h5'} and {out / 'best.h5'}; lower the "
                    f"learning rate (now --lr {lr}, e.g. --lr {lr / 10:g}) and start again, or --resume with it.")
            model.theta[:] = adam.step(model.theta, res.gradient)
            if adam_w is not None:
                driver.set_params(adam_w.step(driver.params, driver.param_gradient(
                    np.array([res.parts[c] for c in COMPONENTS]))))
            sse += [res.sse[c] for c in COMPONENTS]
            count += [res.count[c] for c in COMPONENTS]
            if show_progress and n_batches > 1:
                print(f"\r  epoch {epoch}: batch {b + 1}/{n_batches}", end="", file=sys.stderr, flush=True)
        if show_progress and n_batches > 1:
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)
        train_parts = _parts_from_sums(sse, count, loss)
        driver.end_epoch(train_parts)
        vs, vc = np.zeros(3), np.zeros(3)
        for k in range(0, len(val_idx), batch_size):
            r = loss_and_gradient(model, get_batch(val_idx[k:k + batch_size]), init_w, loss, gradient=False)
            vs += [r.sse[c] for c in COMPONENTS]
            vc += [r.count[c] for c in COMPONENTS]
        val_parts = _parts_from_sums(vs, vc, loss)
        val_loss = float(np.dot(list(init_w.values()), val_parts)) if len(val_idx) else float(np.dot(
            list(init_w.values()), train_parts))
        tr, va = _report_rmse(sse, count), _report_rmse(vs, vc)
        row = {"epoch": epoch, "time_s": round(time.perf_counter() - t0, 4), "lr": adam.learning_rate(),
               **{f"w_{c}": float(x) for c, x in zip(COMPONENTS, applied)},
               "loss_form": loss, "loss_units": LOSS_UNITS[loss],
               **{f"train_L_{c}": float(x) for c, x in zip(COMPONENTS, train_parts)},
               **{f"val_L_{c}": float(x) for c, x in zip(COMPONENTS, val_parts)},
               "val_loss": val_loss,
               **{f"train_{EPOCH_RMSE_COLUMNS[c]}": float(tr[c]) for c in COMPONENTS},
               **{f"val_{EPOCH_RMSE_COLUMNS[c]}": float(va[c]) for c in COMPONENTS}}
        _record_epoch(out, state, row, settings, model, adam, adam_w, driver, rng)
        _log(quiet, f"{epoch:>5} {tr['energy']:>9.3f} {tr['forces']:>8.1f} {tr['stress']:>8.4f} | "
                    f"{va['energy']:>9.3f} {va['forces']:>8.1f} {va['stress']:>8.4f} | "
                    f"{applied[0]:>5.3f} {applied[1]:>5.3f} {applied[2]:>5.3f} | {row['time_s']:>5.2f}s")
        if patience is not None and state["bad_epochs"] >= patience:
            _log(quiet, f"early stop: validation loss has not improved for {patience} epochs")
            break
    return _finish(out, data, stored, species, (train_idx, val_idx, test_idx), state, driver, plots, quiet)


def _memory_budget_bytes(gib):
    """The budget in bytes: ``gib`` GiB, or half of the physical memory when None."""
    if gib is not None:
        if not gib > 0:
            raise ValueError(f"--memory-budget must be > 0 GiB, got {gib}")
        return gib * 2**30
    return 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _finish(out, data, desc, species, splits, state, driver, plots, quiet) -> TrainResult:
    """Evaluate the best model on every split, print the table, write test_metrics.json and the plots."""
    from .potential import load_model

    best = load_model(out / "best.h5")
    evals = {name: evaluate(best, data, desc, idx, species) for name, idx in zip(("train", "val", "test"), splits)
             if len(idx)}
    _log(quiet, f"\nbest model: epoch {state['best_epoch']} ({out / 'best.h5'})\n" + format_table(evals))
    with atomic_write(out / "test_metrics.json") as tmp:
        Path(tmp).write_text(json.dumps({"best_epoch": state["best_epoch"], "units": {
            "energy": "meV/atom", "forces": "meV/Å", "stress": "GPa (and MPa where named)"},
            **{name: ev.metrics for name, ev in evals.items()}}, indent=1))
    if plots:
        from .plots import plot_learning_curves, plot_parity, plot_weights

        if state["rows"]:
            plot_learning_curves(state["rows"], out / "learning_curves.png")
            plot_weights(state["rows"], out / "weights.png", title=driver.describe())
        shown = "test" if "test" in evals else next(iter(evals))
        plot_parity(evals[shown], out / "parity.png", title=f"{shown} split, best model (epoch {state['best_epoch']})")
    return TrainResult(best, state["best_epoch"], state["rows"], evals.get("test", next(iter(evals.values()))).metrics,
                       out)


def comma_floats(text, n=None, name="value"):
    """Parse "a,b,c" into a tuple of floats (argparse type; ``n`` numbers expected if given)."""
    try:
        vals = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name}: expected comma-separated numbers, got {text!r}") from None
    if n is not None and len(vals) != n:
        raise argparse.ArgumentTypeError(f"{name}: expected {n} numbers, got {len(vals)}")
    return vals


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m alw_ref.train", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Train a Behler-Parrinello potential on energies, forces and stress with (adaptive) loss "
                    "weights. Loss L = w_E L_E + w_F L_F + w_S L_S with L_E in eV/atom, L_F in eV/Å, L_S in GPa.")
    a = p.add_argument
    a("dataset", nargs="?", default=None, help="dataset.h5 (default: the bundled mlearn Mo example)")
    a("--out", default="alw_run", help="output folder (model, metrics, checkpoint, plots)")
    a("--weighting", default="softadapt", choices=STRATEGIES,
      help="loss weighting: fixed weights, SoftAdapt (the paper), DeePMD-style linear schedule, Dynamic Weight "
           "Average, or Kendall uncertainty weighting")
    a("--weights", type=lambda s: comma_floats(s, 3, "--weights"), default=(1 / 3, 1 / 3, 1 / 3),
      help="initial (or fixed) weights w_E,w_F,w_S; normalised to sum 1")
    a("--beta", type=float, default=1.0, help="SoftAdapt β: > 0 favours the slowest-learning component")
    a("--softadapt-variant", default="l2", choices=("l2", "original", "normalized", "relative"),
      help="how SoftAdapt normalises the loss slopes (l2 = the paper's code)")
    a("--loss-weighted", action="store_true", help="SoftAdapt: multiply each exponential by L_k (paper code option)")
    a("--average-epochs", type=int, default=1, help="SoftAdapt: apply the mean of the last n computed weights")
    a("--limit-weights", type=lambda s: comma_floats(s, 3, "--limit-weights"), default=None,
      help="linear schedule: final weights w_E,w_F,w_S reached at the last epoch (start = --weights)")
    a("--dwa-temperature", type=float, default=2.0, help="Dynamic Weight Average temperature T")
    a("--loss", default="rmse", choices=FORMS, help="form of each loss term: RMSE (paper) or MSE")
    a("--hidden", type=lambda s: tuple(int(x) for x in s.split(",")), default=(30, 30),
      help="hidden layer widths, comma-separated")
    a("--activation", default="tanh", choices=("tanh", "softplus", "silu"), help="activation function")
    a("--rc", type=float, default=5.0, help="cutoff radius in Å for the default descriptor set (ignored with --spec)")
    a("--spec", default=None, help="descriptor spec JSON file (default: ACSFSpec.default for the elements and --rc)")
    a("--epochs", type=int, default=100, help="number of epochs (total, also when resuming)")
    a("--batch-size", type=int, default=30, help="structures per batch (AtomDNN's default)")
    a("--lr", type=float, default=1e-3, help="Adam learning rate (the paper's)")
    a("--lr-decay", type=float, default=1.0, help="learning-rate factor per epoch (exponential decay; 1 = none)")
    a("--min-lr", type=float, default=0.0, help="floor of the decayed learning rate")
    a("--seed", type=int, default=0, help="seed of the split, initial weights and shuffling")
    a("--split", type=lambda s: comma_floats(s, 3, "--split"), default=(0.7, 0.2, 0.1),
      help="train,validation,test fractions (the paper's 70/20/10)")
    a("--resume", action="store_true", help="continue the run in --out from its checkpoint.h5, bit for bit")
    a("--patience", type=int, default=None, help="stop after this many epochs without a better validation loss")
    a("--min-improvement", type=float, default=0.0,
      help="for --patience: an epoch improves only if it lowers the best validation loss by more than this "
           "fraction of it (e.g. 0.001 = 0.1 %%)")
    a("--cache-dir", default=str(DEFAULT_CACHE),
      help="descriptor cache folder ('' = no cache); reused when data and spec are unchanged")
    a("--memory-budget", type=float, default=None,
      help="GiB the stored descriptor derivatives may take; above it they are recomputed for every batch "
           "(slower, bounded memory). Default: half of the physical memory")
    a("--threads", type=int, default=None, help="Numba threads (default: all cores)")
    a("--no-plots", dest="plots", action="store_false", help="do not write the PNG plots")
    a("--quiet", action="store_true", help="print nothing but errors")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    kwargs = vars(args)
    dataset = kwargs.pop("dataset")
    try:
        train(dataset, **kwargs)
    except (ALWError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
