"""Evaluation metrics: RMSE and MAE of energy, forces and stress over a set of structures.

Report units (converted here, once): energy meV/atom, forces meV/Å, stress GPa and MPa.
Every structure counts once in the energy metrics, every force component of every real atom once in
the force metrics, and each of the 6 Voigt components of every structure *with* stress once in the
stress metrics (structures without stress are left out, not zero-filled).

``metrics_by_group(evaluation, dataset.config_type)`` gives the same metrics per group of structures
(e.g. mlearn's Elastic, AIMD, Vacancy, Surface); ``format_table(..., label="config_type")`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DataError
from .model import load_batch, predict_batch
from .units import EV_PER_A3_TO_GPA, EV_TO_MEV, GPA_TO_MPA

#: Report unit of each metric key.
UNITS = {"energy": "meV/atom", "forces": "meV/Å", "stress": "GPa"}
#: Per-epoch RMSE column of each component in metrics.csv / metrics.jsonl (unit in the name),
#: prefixed by "train_" or "val_".
EPOCH_RMSE_COLUMNS = {"energy": "energy_rmse_meV_atom", "forces": "forces_rmse_meV_A", "stress": "stress_rmse_GPa"}


#: Table/JSON name of the structures whose config_type is empty.
NO_GROUP = "(none)"


@dataclass(frozen=True)
class Evaluation:
    """Predictions and references of a set of structures, and their metrics.

    energy_pred, energy_ref : (S,) eV/atom;  forces_pred, forces_ref : (N, 3) eV/Å;
    stress_pred, stress_ref : (S_stress, 6) GPa (only structures with stress).
    metrics : {"energy_rmse": meV/atom, "energy_mae", "forces_rmse": meV/Å, "forces_mae",
               "stress_rmse": GPa, "stress_mae", "stress_rmse_mpa": MPa, "stress_mae_mpa",
               "n_structures", "n_atoms", "n_stress"}
    structure_s : (S,) int64 dataset index of each energy row; atom_row_s : (N,) int64 row (0..S-1) of
    the structure of each force row; stress_row_s : (S_stress,) int64 row of each stress row.
    """

    energy_pred: np.ndarray
    energy_ref: np.ndarray
    forces_pred: np.ndarray
    forces_ref: np.ndarray
    stress_pred: np.ndarray
    stress_ref: np.ndarray
    metrics: dict
    structure_s: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    atom_row_s: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    stress_row_s: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def _rmse_mae(diff: np.ndarray):
    if diff.size == 0:
        return float("nan"), float("nan")
    return float(np.sqrt(np.mean(diff ** 2))), float(np.mean(np.abs(diff)))


def error_metrics(energy_err, forces_err, stress_err) -> dict:
    """RMSE and MAE in report units from the errors (prediction − reference) of a set of structures.

    energy_err : (S,) eV/atom (one per structure); forces_err : (N, 3) eV/Å (every component of every
    atom); stress_err : (S_stress, 6) GPa (only structures with stress). Returns the ``metrics`` dict of
    ``Evaluation`` (meV/atom, meV/Å, GPa and MPa; NaN for an empty part).
    """
    e_rmse, e_mae = _rmse_mae(np.asarray(energy_err) * EV_TO_MEV)
    f_rmse, f_mae = _rmse_mae(np.asarray(forces_err) * EV_TO_MEV)
    s_rmse, s_mae = _rmse_mae(np.asarray(stress_err))
    return {"energy_rmse": e_rmse, "energy_mae": e_mae, "forces_rmse": f_rmse, "forces_mae": f_mae,
            "stress_rmse": s_rmse, "stress_mae": s_mae, "stress_rmse_mpa": s_rmse * GPA_TO_MPA,
            "stress_mae_mpa": s_mae * GPA_TO_MPA, "n_structures": int(len(energy_err)),
            "n_atoms": int(len(forces_err)), "n_stress": int(len(stress_err))}


def evaluate(model, dataset, descriptors, indices, species_i, batch_size: int = 64) -> Evaluation:
    """Predict the structures ``indices`` of ``dataset`` and compute RMSE/MAE in report units.

    descriptors : ``describe.DatasetDescriptors`` of the whole dataset, or None to recompute them per
    batch (``model.load_batch``); species_i : (N,) species index.
    A metric over an empty set (e.g. no structure with stress) is NaN and says so in the table; an
    empty ``indices`` is a DataError (there is nothing to report).
    """
    indices = np.asarray(indices, np.int64)
    if len(indices) == 0:
        raise DataError("no structures to evaluate: the selection is empty")
    e_pred, e_ref, f_pred, f_ref, s_pred, s_ref, s_row = [], [], [], [], [], [], []
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
        s_row.append(k + np.flatnonzero(m))

    ev = [np.concatenate(parts) for parts in (e_pred, e_ref, f_pred, f_ref, s_pred, s_ref)]
    metrics = error_metrics(ev[0] - ev[1], ev[2] - ev[3], ev[4] - ev[5])
    atom_row = np.repeat(np.arange(len(indices)), dataset.n_atoms[indices]).astype(np.int64)
    return Evaluation(*ev, metrics, indices, atom_row, np.concatenate(s_row).astype(np.int64))


def metrics_by_group(evaluation: Evaluation, group_of_structure) -> dict:
    """Metrics (as ``error_metrics``) of each group of the evaluated structures, e.g. per config_type.

    group_of_structure : (S_dataset,) labels of every structure of the dataset (``dataset.config_type``),
    indexed by ``evaluation.structure_s``. Returns {group: metrics} in sorted order of the groups; the
    empty label is reported as ``NO_GROUP``.
    """
    ev = evaluation
    labels = np.asarray(group_of_structure)[ev.structure_s].astype(str)
    groups = {}
    for label in sorted(set(labels.tolist())):
        rows = labels == label
        atoms, stress = rows[ev.atom_row_s], rows[ev.stress_row_s]
        groups[label or NO_GROUP] = error_metrics(
            (ev.energy_pred - ev.energy_ref)[rows], (ev.forces_pred - ev.forces_ref)[atoms],
            (ev.stress_pred - ev.stress_ref)[stress])
    return groups


def format_table(evaluations: dict, label: str = "split") -> str:
    """A text table of RMSE and MAE per row: {row name (a split, a config_type): Evaluation or metrics dict}."""
    width = max([8, len(label)] + [len(str(name)) for name in evaluations])
    head = (f"{label:<{width}} {'structs':>7} {'E RMSE':>9} {'E MAE':>9} {'F RMSE':>9} {'F MAE':>9} "
            f"{'S RMSE':>9} {'S MAE':>9} {'S RMSE':>9}")
    units = (f"{'':<{width}} {'':>7} {'meV/atom':>9} {'meV/atom':>9} {'meV/Å':>9} {'meV/Å':>9} "
             f"{'GPa':>9} {'GPa':>9} {'MPa':>9}")
    lines = [head, units]
    rows = {name: (ev.metrics if isinstance(ev, Evaluation) else ev) for name, ev in evaluations.items()}
    for name, m in rows.items():
        lines.append(f"{str(name):<{width}} {m['n_structures']:>7d} {m['energy_rmse']:>9.3f} {m['energy_mae']:>9.3f} "
                     f"{m['forces_rmse']:>9.2f} {m['forces_mae']:>9.2f} {m['stress_rmse']:>9.4f} "
                     f"{m['stress_mae']:>9.4f} {m['stress_rmse_mpa']:>9.1f}")
    if any(m["n_stress"] == 0 for m in rows.values()):
        lines.append(f"(nan stress: no structure of that {label} has a stress label)")
    return "\n".join(lines)


def force_deviation(forces_mic: np.ndarray) -> np.ndarray:
    """Per-atom spread of M models' forces: d_i = √(⟨|F_i − ⟨F_i⟩|²⟩), mean ⟨·⟩ over the models (ddof 0).

    forces_mic : (M, N, 3) any force unit. Returns (N,) in the same unit (DeePMD's model deviation of
    the force; its maximum over the atoms of a structure is ``max_devi_f``).
    """
    f = np.asarray(forces_mic, dtype=np.float64)
    return np.sqrt(np.mean(np.sum((f - f.mean(axis=0)) ** 2, axis=2), axis=0))


def committee_spread(energy_ms, forces_mic, stress_mkv, atom_row_i, stress_row_k, n_structures: int) -> dict:
    """Per-structure spread of a committee of M models (standard deviation over the models, ddof 0).

    energy_ms : (M, S) eV/atom; forces_mic : (M, N, 3) eV/Å; stress_mkv : (M, S_stress, 6) GPa;
    atom_row_i : (N,) row (0..S-1) of each atom's structure; stress_row_k : (S_stress,) row of each stress.
    Returns {"energy": (S,) meV/atom, "forces": (S,) meV/Å = max over the structure's atoms of
    ``force_deviation``, "stress": (S,) GPa = largest Voigt component's std, NaN without a stress row}.
    """
    e = np.std(np.asarray(energy_ms, np.float64), axis=0) * EV_TO_MEV
    f = np.zeros(n_structures)
    np.maximum.at(f, np.asarray(atom_row_i, np.int64), force_deviation(forces_mic) * EV_TO_MEV)
    s = np.full(n_structures, np.nan)
    if len(stress_row_k):
        s[np.asarray(stress_row_k, np.int64)] = np.max(np.std(np.asarray(stress_mkv, np.float64), axis=0), axis=1)
    return {"energy": e, "forces": f, "stress": s}
