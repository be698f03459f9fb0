"""Learning-rate schedules and the exponential moving average (EMA) of the parameters.

The paper trained with a constant Adam learning rate of 1e-3 (``"constant"``, the paper protocol). Decaying
the rate to a floor is what modern potentials do and what the trainer's defaults use
(``benchmarks/bench_accuracy.py`` measures the difference):

* ``"exponential"`` — lr(e) = lr₀ (lr_min/lr₀)^(e/(N−1)) for epoch index e = 0 … N−1 of N epochs:
  geometric from lr₀ to lr_min over the run (DeePMD-kit's ``exp`` schedule, parametrised by its end
  value ``stop_lr`` instead of a decay rate);
* ``"cosine"`` — lr(e) = lr_min + ½ (lr₀ − lr_min)(1 + cos(π e/(N−1))) (Loshchilov & Hutter, SGDR,
  ICLR 2017, one cycle without restarts);
* ``"plateau"`` — lr × ``factor`` after ``patience`` epochs without a lower validation loss, never
  below lr_min (PyTorch's ``ReduceLROnPlateau``, the schedule of MACE and NequIP).

Epochs after the N-th (a resumed run given more epochs) keep lr_min. Learning rates are in θ units per
Adam step (``optim``); the schedule sets the rate of each whole epoch.

EMA (the "EMA model" of MACE and NequIP; Polyak & Juditsky, SIAM J. Control Optim. 30, 838 (1992) for
parameter averaging): θ̄ ← d θ̄ + (1 − d) θ after every Adam step, with d = min(decay, (1 + t)/(10 + t))
at step t (TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``), so that the average is not
dominated by the random initial parameters early on. θ̄ is what the trainer validates and saves.
"""

from __future__ import annotations

import math

import numpy as np

LR_SCHEDULES = ("constant", "exponential", "cosine", "plateau")


def exponential_to_floor(lr0: float, lr_min: float, epoch: int, n_epochs: int) -> float:
    """lr₀ (lr_min/lr₀)^(e/(N−1)) for 0-based epoch e of N (lr_min for e ≥ N − 1); θ units per step."""
    x = min(1.0, epoch / max(n_epochs - 1, 1))
    return lr0 * (lr_min / lr0) ** x


def cosine_to_floor(lr0: float, lr_min: float, epoch: int, n_epochs: int) -> float:
    """lr_min + ½ (lr₀ − lr_min)(1 + cos(π e/(N−1))) for 0-based epoch e of N (lr_min for e ≥ N − 1)."""
    x = min(1.0, epoch / max(n_epochs - 1, 1))
    return lr_min + 0.5 * (lr0 - lr_min) * (1.0 + math.cos(math.pi * x))


class LearningRateSchedule:
    """The learning rate of every epoch for one schedule chosen by name (``LR_SCHEDULES``, module docstring).

    lr0 : first learning rate, > 0;  lr_min : floor, 0 ≤ lr_min ≤ lr0 (θ units per step);
    n_epochs : N, the planned number of epochs (``exponential``, ``cosine``);
    factor, patience : ``plateau`` — multiply by factor ∈ (0, 1) after ``patience`` ≥ 1 epochs without a
        lower validation loss.
    Call ``lr(epoch_index)`` before each epoch and ``end_epoch(val_loss)`` after it.
    """

    def __init__(self, kind: str = "constant", lr0: float = 1e-3, lr_min: float = 0.0, n_epochs: int = 1,
                 factor: float = 0.5, patience: int = 10):
        if kind not in LR_SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {kind!r}; choose one of {', '.join(LR_SCHEDULES)}")
        if not (math.isfinite(lr0) and lr0 > 0):
            raise ValueError(f"--lr must be a finite number > 0, got {lr0!r}")
        if not (math.isfinite(lr_min) and 0 <= lr_min <= lr0):
            raise ValueError(f"--min-lr must be in [0, --lr = {lr0!r}], got {lr_min!r}")
        if kind == "exponential" and lr_min <= 0:
            raise ValueError("--lr-schedule exponential needs --min-lr > 0 (the rate it decays to)")
        if not (math.isfinite(factor) and 0 < factor < 1):
            raise ValueError(f"--lr-factor must be in (0, 1), got {factor!r}")
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 1:
            raise ValueError(f"--lr-patience must be an integer ≥ 1, got {patience!r}")
        self.kind, self.lr0, self.lr_min = kind, float(lr0), float(lr_min)
        self.n_epochs, self.factor, self.patience = int(n_epochs), float(factor), int(patience)
        self._plateau_lr, self._best, self._bad = float(lr0), math.inf, 0

    def lr(self, epoch: int) -> float:
        """Learning rate of the epoch with 0-based index ``epoch``, θ units per Adam step."""
        if self.kind == "exponential":
            return exponential_to_floor(self.lr0, self.lr_min, epoch, self.n_epochs)
        if self.kind == "cosine":
            return cosine_to_floor(self.lr0, self.lr_min, epoch, self.n_epochs)
        if self.kind == "plateau":
            return self._plateau_lr
        return self.lr0

    def end_epoch(self, val_loss: float) -> None:
        """Record an epoch's validation loss (``plateau``: lower the rate after ``patience`` bad epochs)."""
        if val_loss < self._best:
            self._best, self._bad = float(val_loss), 0
            return
        self._bad += 1
        if self.kind == "plateau" and self._bad >= self.patience:
            self._plateau_lr = max(self._plateau_lr * self.factor, self.lr_min)
            self._bad = 0

    def describe(self) -> str:
        if self.kind == "constant":
            return f"constant lr {self.lr0:g}"
        if self.kind == "plateau":
            return (f"plateau lr {self.lr0:g} x{self.factor:g} after {self.patience} epochs without improvement, "
                    f"floor {self.lr_min:g}")
        return f"{self.kind} lr {self.lr0:g} -> {self.lr_min:g} over {self.n_epochs} epochs"

    def state_dict(self) -> dict:
        """Everything needed to resume bit for bit (JSON-ready)."""
        return {"kind": self.kind, "lr0": self.lr0, "lr_min": self.lr_min, "n_epochs": self.n_epochs,
                "factor": self.factor, "patience": self.patience, "plateau_lr": self._plateau_lr,
                "best": None if math.isinf(self._best) else self._best, "bad": self._bad}

    @classmethod
    def from_state_dict(cls, state: dict) -> "LearningRateSchedule":
        obj = cls(state["kind"], state["lr0"], state["lr_min"], state["n_epochs"], state["factor"], state["patience"])
        obj._plateau_lr = float(state["plateau_lr"])
        obj._best = math.inf if state["best"] is None else float(state["best"])
        obj._bad = int(state["bad"])
        return obj


def ema_decay_at(decay: float, step: int) -> float:
    """d = min(decay, (1 + t)/(10 + t)) for Adam step t ≥ 0 (module docstring); dimensionless."""
    return min(decay, (1.0 + step) / (10.0 + step))


def ema_update(average: np.ndarray, theta: np.ndarray, decay: float, step: int) -> None:
    """θ̄ ← d θ̄ + (1 − d) θ in place, d = ``ema_decay_at(decay, step)``; θ units."""
    d = ema_decay_at(decay, step)
    average *= d
    average += (1.0 - d) * theta
