"""What the trainer settles before its first epoch: option checks, the loss scales, the split over files.

* ``check_options`` — every option of ``train`` checked, with the option's name in the message, before any
  file is read or written (so a typo never costs a descriptor computation or overwrites settings.json).
* ``label_scales`` — the scales s_k that make the loss terms unit-free (``train`` docstring).
* ``split_for_files`` / ``concat_datasets`` — ``--valid-file`` and ``--test-file``: the files are joined into
  one dataset (one descriptor pass) and the validation/test structures are those of their files.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import fields
from pathlib import Path

import numpy as np

from .data import Dataset, split_indices
from .loss import FORMS
from .mlp import ACTIVATIONS
from .schedule import LR_SCHEDULES
from .units import EV_PER_A3_TO_GPA
from .weighting import SOFTADAPT_VARIANTS, STRATEGIES

LOSS_SCALES = ("labels", "none")


def comma_floats(text, n=None, name="value"):
    """Parse "a,b,c" into a tuple of floats (argparse type; ``n`` numbers expected if given)."""
    try:
        vals = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name}: expected comma-separated numbers, got {text!r}") from None
    if n is not None and len(vals) != n:
        raise argparse.ArgumentTypeError(f"{name}: expected {n} numbers, got {len(vals)}")
    return vals


def label_scales(data: Dataset, train_idx, e_ref_e, species_i) -> np.ndarray:
    """(s_E eV/atom, s_F eV/Å, s_S GPa): RMS of the training labels, i.e. the loss of a zero network.

    s_E = √(mean_s ((E_s − Σ_e n_se ε_e)/N_s)²) over the training structures (ε the fitted reference
    energies, so s_E is the per-atom energy left for the networks); s_F = √(mean of F_ic²) over every
    training force component; s_S = √(mean of σ_v²) over the 6 Voigt components of the training structures
    with stress, in GPa. A scale that is 0 (or has no labels) is 1, so the term keeps its raw units.
    """
    idx = np.asarray(train_idx, np.int64)
    off = data.atom_offset
    e_atoms = np.array([e_ref_e[species_i[off[s]:off[s + 1]]].sum() for s in idx])
    e_res = (data.energy[idx] - e_atoms) / data.n_atoms[idx]
    f = np.concatenate([data.forces[off[s]:off[s + 1]].ravel() for s in idx])
    with_s = idx[data.has_stress[idx]]
    sig = data.stress[with_s].ravel() * EV_PER_A3_TO_GPA

    def rms(x):
        r = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
        return r if r > 0 and math.isfinite(r) else 1.0
    return np.array([rms(e_res), rms(f), rms(sig)])


def term_scales(scales, form: str) -> np.ndarray:
    """The divisor of each loss term: s_k for RMSE terms, s_k² for MSE terms (same units as the term)."""
    s = np.asarray(scales, float)
    return s * s if form == "mse" else s


def concat_datasets(parts) -> Dataset:
    """One Dataset holding the structures of ``parts`` in order (per-structure and per-atom arrays joined)."""
    if len(parts) == 1:
        return parts[0]
    return Dataset(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Dataset)})


def split_for_files(sizes, settings) -> tuple:
    """(train, val, test) structure indices into ``concat_datasets`` of [dataset, valid file?, test file?].

    Without files: ``split_indices`` of the dataset by ``--split`` and ``--seed``. A ``--valid-file`` gives the
    validation structures and a ``--test-file`` the test structures; the dataset then keeps the other parts
    of ``--split`` in their proportions (with both files, all of it trains).
    """
    n0 = sizes[0]
    f = np.asarray(settings["split"], float)
    has_val, has_test = bool(settings["valid_file"]), bool(settings["test_file"])
    keep = np.array([f[0], 0.0 if has_val else f[1], 0.0 if has_test else f[2]])
    fr = keep / keep.sum()                   # f[0] > 0 (check_options)
    tr, va, te = split_indices(n0, tuple(fr), settings["seed"])
    start = n0
    if has_val:
        va = np.arange(start, start + sizes[1], dtype=np.int64)
        start += sizes[1]
    if has_test:
        te = np.arange(start, start + sizes[-1], dtype=np.int64)
    return tr, va, te


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _is_num(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_)) \
        and math.isfinite(float(x))


#: What --seed must be, in the words of every command's error message.
SEED_RANGE = "an integer in [0, 2**63)"


def valid_seed(x) -> bool:
    """--seed: ``SEED_RANGE`` (NumPy's generators take any integer ≥ 0; int64 keeps it storable)."""
    return _is_int(x) and 0 <= x < 2**63


def _check(cond: bool, option: str, value, need: str) -> None:
    if not cond:
        raise ValueError(f"--{option.replace('_', '-')} {value!r}: {need}")


def _check_vector(s, key, n, need):
    v = s[key]
    ok = v is not None and len(v) == n and all(_is_num(x) and x >= 0 for x in v)
    _check(ok, key, None if v is None else ",".join(map(str, v)), need)


def check_options(s: dict) -> None:
    """ValueError naming the option for any value ``train`` cannot use (module docstring); reads no data
    but the existence of the files named."""
    for key in ("dataset", "valid_file", "test_file", "init_model"):
        if s.get(key):
            _check(Path(s[key]).is_file(), key, s[key], "no such file")
    _check(s["weighting"] in STRATEGIES, "weighting", s["weighting"], f"choose one of {', '.join(STRATEGIES)}")
    _check(s["loss"] in FORMS, "loss", s["loss"], f"choose one of {', '.join(FORMS)}")
    _check(s["loss_scale"] in LOSS_SCALES, "loss_scale", s["loss_scale"], f"choose one of {', '.join(LOSS_SCALES)}")
    _check(s["softadapt_variant"] in SOFTADAPT_VARIANTS, "softadapt_variant", s["softadapt_variant"],
           f"choose one of {', '.join(SOFTADAPT_VARIANTS)}")
    _check(s["lr_schedule"] in LR_SCHEDULES, "lr_schedule", s["lr_schedule"],
           f"choose one of {', '.join(LR_SCHEDULES)}")
    _check(s["activation"] in ACTIVATIONS, "activation", s["activation"], f"choose one of {', '.join(ACTIVATIONS)}")
    _check_vector(s, "weights", 3, "three numbers ≥ 0 (energy, forces, stress), not all 0")
    _check(sum(s["weights"]) > 0, "weights", s["weights"], "three numbers ≥ 0, not all 0")
    _check_vector(s, "split", 3, "three fractions ≥ 0 (train, validation, test) that sum to 1")
    _check(abs(sum(s["split"]) - 1.0) < 1e-9 and s["split"][0] > 0, "split", s["split"],
           "three fractions ≥ 0 that sum to 1, with a training fraction > 0")
    if s["weighting"] == "linear":
        _check_vector(s, "limit_weights", 3, "--weighting linear needs --limit-weights w_E,w_F,w_S (three numbers ≥ 0)")
    hidden = s["hidden"]
    _check(len(hidden) >= 1 and all(_is_int(h) and h >= 1 for h in hidden), "hidden", hidden,
           "one or more layer widths ≥ 1, e.g. 64,64")
    for key, low, strict in (("lr", 0, True), ("min_lr", 0, False), ("rc", 0, True), ("beta", None, False),
                             ("dwa_temperature", 0, True), ("min_improvement", 0, False),
                             ("checkpoint_every", 0, False)):
        v = s[key]
        ok = _is_num(v) and (low is None or (v > low if strict else v >= low))
        _check(ok, key, v, "a finite number" + ("" if low is None else f" {'>' if strict else '≥'} {low}"))
    _check(s["min_lr"] <= s["lr"], "min_lr", s["min_lr"], f"must not exceed --lr {s['lr']}")
    _check(s["lr_schedule"] != "exponential" or s["min_lr"] > 0, "min_lr", s["min_lr"],
           "--lr-schedule exponential decays to --min-lr, which must be > 0")
    _check(_is_num(s["lr_decay"]) and 0 < s["lr_decay"] <= 1, "lr_decay", s["lr_decay"], "a factor in (0, 1]")
    _check(_is_num(s["lr_factor"]) and 0 < s["lr_factor"] < 1, "lr_factor", s["lr_factor"], "a factor in (0, 1)")
    _check(_is_num(s["ema_decay"]) and 0 <= s["ema_decay"] < 1, "ema_decay", s["ema_decay"],
           "a decay in [0, 1) (0 = no parameter averaging)")
    for key in ("epochs", "batch_size", "average_epochs", "slope_window", "lr_patience"):
        low = 0 if key == "epochs" else 1
        _check(_is_int(s[key]) and s[key] >= low, key, s[key], f"an integer ≥ {low}")
    _check(valid_seed(s["seed"]), "seed", s["seed"], SEED_RANGE)
    for key, need in (("patience", "an integer ≥ 1 (epochs), or none"), ("threads", "an integer ≥ 1, or none")):
        _check(s[key] is None or (_is_int(s[key]) and s[key] >= 1), key, s[key], need)
    if s["threads"] is not None:
        import os

        n = os.cpu_count() or 1
        _check(s["threads"] <= n, "threads", s["threads"], f"at most the {n} cores of this machine")
    for key in ("time_limit", "memory_budget"):
        _check(s[key] is None or (_is_num(s[key]) and s[key] > 0), key, s[key], "a number > 0, or none")
    if s["spec"] and not str(s["spec"]).lstrip().startswith("{"):
        _check(Path(s["spec"]).is_file(), "spec", s["spec"], "no such file")
