"""Evaluation metrics: RMSE and MAE of energy, forces and stress over a set of structures.

Report units (converted here, once): energy meV/atom, forces meV/Å, stress GPa and MPa.
Every structure counts once in the energy metrics, every force component of every real atom once in
the force metrics, and each of the 6 Voigt components of every structure *with* stress once in the
stress metrics (structures without stress are left out, not zero-filled).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import load_batch, predict_batch
from .units import EV_PER_A3_TO_GPA, EV_TO_MEV, GPA_TO_MPA

#: Report unit of each metric key.
UNITS = {"energy": "meV/atom", "forces": "meV/Å", "stress": "GPa"}
#: Per-epoch RMSE column of each component in metrics.csv / metrics.jsonl (unit in the name),
#: prefixed by "train_" or "val_".
EPOCH_RMSE_COLUMNS = {"energy": "energy_rmse_meV_atom", "forces": "forces_rmse_meV_A", "stress": "stress_rmse_GPa"}


@dataclass(frozen=True)
class Evaluation:
    """Predictions and references of a set of structures, and their metrics.

    energy_pred, energy_ref : (S,) eV/atom;  forces_pred, forces_ref : (N, 3) eV/Å;
    stress_pred, stress_ref : (S_stress, 6) GPa (only structures with stress).
    metrics : {"energy_rmse": meV/atom, "energy_mae", "forces_rmse": meV/Å, "forces_mae",
               "stress_rmse": GPa, "stress_mae", "stress_rmse_mpa": MPa, "stress_mae_mpa",
               "n_structures", "n_atoms", "n_stress"}
    """

    energy_pred: np.ndarray
    energy_ref: np.ndarray
    forces_pred: np.ndarray
    forces_ref: np.ndarray
    stress_pred: np.ndarray
    stress_ref: np.ndarray
    metrics: dict


def _rmse_mae(diff: np.ndarray):
    if diff.size == 0:
        return float("nan"), float("nan")
    return float(np.sqrt(np.mean(diff ** 2))), float(np.mean(np.abs(diff)))


def evaluate(model, dataset, descriptors, indices, species_i, batch_size: int = 64) -> Evaluation:
    """Predict the structures ``indices`` of ``dataset`` and compute RMSE/MAE in report units.

    descriptors : ``describe.DatasetDescriptors`` of the whole dataset, or None to recompute them per
    batch (``model.load_batch``); species_i : (N,) species index.
    A metric over an empty set (e.g. no structure with stress) is NaN and says so in the table.
    """
    indices = np.asarray(indices, np.int64)
    e_pred, e_ref, f_pred, f_ref, s_pred, s_ref = [], [], [], [], [], []
    for k in range(0, len(indices), batch_size):
        batch = load_batch(dataset, model.spec, indices[k:k + batch_size], species_i, descriptors)
        pred, _ = predict_batch(model, batch)
        n = batch.n_atoms_s
        e_pred.append(pred.energy_s / n)
        e_ref.append(batch.energy_s / n)
        f_pred.append(pred.forces_ic)
        f_ref.append(batch.forces_ic)
        m = batch.has_stress_s
        s_pred.append(pred.stress_sv[m] * EV_PER_A3_TO_GPA)
        s_ref.append(batch.stress_sv[m] * EV_PER_A3_TO_GPA)

    def cat(parts, shape):
        return np.concatenate(parts) if parts else np.zeros(shape)

    ev = [cat(e_pred, (0,)), cat(e_ref, (0,)), cat(f_pred, (0, 3)), cat(f_ref, (0, 3)),
          cat(s_pred, (0, 6)), cat(s_ref, (0, 6))]
    e_rmse, e_mae = _rmse_mae((ev[0] - ev[1]) * EV_TO_MEV)
    f_rmse, f_mae = _rmse_mae((ev[2] - ev[3]) * EV_TO_MEV)
    s_rmse, s_mae = _rmse_mae(ev[4] - ev[5])
    metrics = {"energy_rmse": e_rmse, "energy_mae": e_mae, "forces_rmse": f_rmse, "forces_mae": f_mae,
               "stress_rmse": s_rmse, "stress_mae": s_mae, "stress_rmse_mpa": s_rmse * GPA_TO_MPA,
               "stress_mae_mpa": s_mae * GPA_TO_MPA, "n_structures": int(len(indices)),
               "n_atoms": int(len(ev[2])), "n_stress": int(len(ev[4]))}
    return Evaluation(*ev, metrics)


def format_table(evaluations: dict) -> str:
    """A text table of RMSE and MAE per split: {split name: Evaluation or metrics dict}."""
    head = (f"{'split':<8} {'structs':>7} {'E RMSE':>9} {'E MAE':>9} {'F RMSE':>9} {'F MAE':>9} "
            f"{'S RMSE':>9} {'S MAE':>9} {'S RMSE':>9}")
    units = (f"{'':<8} {'':>7} {'meV/atom':>9} {'meV/atom':>9} {'meV/Å':>9} {'meV/Å':>9} "
             f"{'GPa':>9} {'GPa':>9} {'MPa':>9}")
    lines = [head, units]
    for name, ev in evaluations.items():
        m = ev.metrics if isinstance(ev, Evaluation) else ev
        lines.append(f"{name:<8} {m['n_structures']:>7d} {m['energy_rmse']:>9.3f} {m['energy_mae']:>9.3f} "
                     f"{m['forces_rmse']:>9.2f} {m['forces_mae']:>9.2f} {m['stress_rmse']:>9.4f} "
                     f"{m['stress_mae']:>9.4f} {m['stress_rmse_mpa']:>9.1f}")
    if any((ev.metrics if isinstance(ev, Evaluation) else ev)["n_stress"] == 0 for ev in evaluations.values()):
        lines.append("(nan stress: no structure of that split has a stress label)")
    return "\n".join(lines)
