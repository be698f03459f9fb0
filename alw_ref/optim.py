"""Adam optimiser with bias correction, acting on one flat float64 parameter vector.

Reference: D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
arXiv:1412.6980, Algorithm 1. The paper trained with Adam at learning rate 1e-3 (the default here,
which is also Kingma & Ba's default α).

The model keeps every parameter of every element network in one flat array ``theta`` (n_params,)
float64; the training gradient ``grad = ∂L/∂θ`` has the same shape. One call of :meth:`Adam.step`
is one update (Algorithm 1, one pass of its while loop), with the code's names:

    t      ← t + 1                                   (t: updates done, after this one)
    m      ← beta1 · m + (1 − beta1) · grad          (biased first moment)
    v      ← beta2 · v + (1 − beta2) · grad²         (biased second raw moment, elementwise square)
    m_hat  = m / (1 − beta1^t)                       (bias-corrected first moment)
    v_hat  = v / (1 − beta2^t)                       (bias-corrected second moment)
    theta  ← theta − lr_t · m_hat / (√v_hat + eps)

Units: theta in the model's parameter units; grad in loss units per θ unit; m in grad units, v in
grad² units. Because m_hat/√v_hat is dimensionless (≈ ±1 for a steady gradient), lr_t is in θ units
per step: it bounds the size of each parameter's step (Kingma & Ba, Sec. 2.1). eps is in grad units.

At t = 1 the bias correction gives m_hat = grad and v_hat = grad², so each parameter moves by
lr · grad / (|grad| + eps) ≈ lr · sign(grad).

Learning-rate schedule (optional; Kingma & Ba use a constant α). With the defaults decay_rate = 1
the rate is constant. Otherwise, continuous exponential decay in the TensorFlow / DeePMD form,

    lr_t = max(lr · decay_rate^(t_done / decay_steps), min_lr),

where ``t_done`` is the number of updates completed *before* the update that uses lr_t (the
optimiser's ``t`` before :meth:`Adam.step` increments it). So the first update uses exactly ``lr``,
and the update after ``decay_steps`` completed updates uses ``lr · decay_rate``.
Deviation note: the exponent is continuous (TensorFlow ``staircase=False``); DeePMD-kit applies it as
a staircase (integer ``t_done // decay_steps``). No staircase option is offered.

State: ``t`` (int), ``m`` and ``v`` (n_params,) float64 and the settings — everything needed to
resume bit-for-bit, via :meth:`Adam.state_dict` / :meth:`Adam.from_state_dict` or inside an open
HDF5 group via :meth:`Adam.write_state` / :meth:`Adam.read_state`.

Errors: bad settings, shapes, non-finite values and malformed saved states raise ``ValueError``
naming the offending field (and, for arrays, the first bad index). Nothing is repaired silently.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

STATE_FORMAT = "alw_ref.optim.Adam"
"""Value of the ``format`` entry of a saved optimiser state."""

STATE_VERSION = 1
"""Version of the saved-state layout; :meth:`Adam.from_state_dict` refuses any other."""


def _is_real(x) -> bool:
    """True for a Python/NumPy real number that is not a bool."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _is_integer(x) -> bool:
    """True for a Python/NumPy integer that is not a bool."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


@dataclass(frozen=True)
class AdamSettings:
    """Settings of :class:`Adam` (Kingma & Ba 2015, Algorithm 1, plus an optional lr decay).

    lr : float > 0, θ units per step
        Step size α before decay. Default 1e-3 (Kingma & Ba's default, used in the paper).
    beta1 : float in [0, 1)
        Exponential decay rate of the first-moment estimate m. Default 0.9.
    beta2 : float in [0, 1)
        Exponential decay rate of the second-moment estimate v. Default 0.999.
    eps : float > 0, gradient units
        Added to √v_hat in the denominator. Default 1e-8.
    decay_rate : float in (0, 1]
        Factor applied to the learning rate every ``decay_steps`` updates (continuously);
        1.0 (default) means no decay.
    decay_steps : int ≥ 1
        Number of updates over which the rate falls by ``decay_rate``. Default 1.
    min_lr : float in [0, lr], θ units per step
        Floor of the decayed learning rate. Default 0 (no floor).
    """

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    decay_rate: float = 1.0
    decay_steps: int = 1
    min_lr: float = 0.0

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "decay_steps":
                if not _is_integer(value):
                    raise ValueError(f"AdamSettings.decay_steps must be an int, got {value!r}")
            elif not _is_real(value):
                raise ValueError(f"AdamSettings.{f.name} must be a real number, got {value!r}")
            elif not math.isfinite(value):
                raise ValueError(f"AdamSettings.{f.name} must be finite, got {value!r}")
            # Store plain Python numbers so the settings compare and serialise exactly.
            object.__setattr__(self, f.name, int(value) if f.name == "decay_steps" else float(value))
        if not self.lr > 0.0:
            raise ValueError(f"AdamSettings.lr must be > 0, got {self.lr!r}")
        for name in ("beta1", "beta2"):
            beta = getattr(self, name)
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"AdamSettings.{name} must be in [0, 1), got {beta!r}")
        if not self.eps > 0.0:
            raise ValueError(f"AdamSettings.eps must be > 0, got {self.eps!r}")
        if not 0.0 < self.decay_rate <= 1.0:
            raise ValueError(f"AdamSettings.decay_rate must be in (0, 1], got {self.decay_rate!r}")
        if self.decay_steps < 1:
            raise ValueError(f"AdamSettings.decay_steps must be >= 1, got {self.decay_steps!r}")
        if not 0.0 <= self.min_lr <= self.lr:
            raise ValueError(
                f"AdamSettings.min_lr must be in [0, lr={self.lr!r}], got {self.min_lr!r}"
            )


def exponential_lr(settings: AdamSettings, t_done: int) -> float:
    """Learning rate of the update that follows ``t_done`` completed updates, θ units per step.

    lr_t = max(lr · decay_rate^(t_done / decay_steps), min_lr)  (TensorFlow ``exponential_decay``
    with ``staircase=False``, as used by DeePMD-kit apart from its staircase). With
    decay_rate = 1 this is ``lr`` for every t_done.
    """
    if not _is_integer(t_done) or t_done < 0:
        raise ValueError(f"t_done must be an int >= 0, got {t_done!r}")
    if settings.decay_rate == 1.0:
        return settings.lr
    decayed = settings.lr * settings.decay_rate ** (int(t_done) / settings.decay_steps)
    return max(decayed, settings.min_lr)


def _first_nonfinite(x: np.ndarray) -> int | None:
    """Index of the first non-finite entry of a 1-D array, or None if all are finite."""
    bad = np.flatnonzero(~np.isfinite(x))
    return int(bad[0]) if bad.size else None


def _check_vector(name: str, x, n_params: int) -> np.ndarray:
    """Return ``x`` as a (n_params,) float64 array, or raise ValueError naming ``name``."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(x).__name__}")
    if x.dtype != np.float64:
        raise ValueError(f"{name} must have dtype float64, got {x.dtype}")
    if x.shape != (n_params,):
        raise ValueError(f"{name} must have shape ({n_params},), got {x.shape}")
    bad = _first_nonfinite(x)
    if bad is not None:
        raise ValueError(f"{name} is not finite at index {bad} (value {x[bad]!r})")
    return x


class Adam:
    """Adam with bias correction over one flat parameter vector (Kingma & Ba 2015, Algorithm 1).

    Attributes
    ----------
    settings : AdamSettings
    n_params : int
    t : int
        Number of updates done.
    m, v : (n_params,) float64
        Biased first and second moment estimates (grad units and grad² units); zero at t = 0.
    """

    def __init__(self, n_params: int, settings: AdamSettings = AdamSettings()):
        if not _is_integer(n_params) or n_params < 1:
            raise ValueError(f"n_params must be an int >= 1, got {n_params!r}")
        if not isinstance(settings, AdamSettings):
            raise ValueError(f"settings must be an AdamSettings, got {type(settings).__name__}")
        self.settings = settings
        self.n_params = int(n_params)
        self.t = 0
        self.m = np.zeros(self.n_params, dtype=np.float64)
        self.v = np.zeros(self.n_params, dtype=np.float64)

    def learning_rate(self) -> float:
        """lr_t used by the next :meth:`step` (``exponential_lr`` at t_done = self.t), θ units/step."""
        return exponential_lr(self.settings, self.t)

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """One Adam update; returns the new θ, (n_params,) float64.

        theta : (n_params,) float64, model units — current parameters (not modified).
        grad : (n_params,) float64 — ∂L/∂θ at theta (not modified).

        Raises ValueError (before changing any state) if either array has the wrong type, dtype
        or shape, or holds a non-finite value (the message names the first bad index).
        See the module docstring for the update rule.
        """
        theta = _check_vector("theta", theta, self.n_params)
        grad = _check_vector("grad", grad, self.n_params)
        s = self.settings
        lr_t = self.learning_rate()
        t = self.t + 1
        m = s.beta1 * self.m + (1.0 - s.beta1) * grad
        v = s.beta2 * self.v + (1.0 - s.beta2) * (grad * grad)
        m_hat = m / (1.0 - s.beta1**t)
        v_hat = v / (1.0 - s.beta2**t)
        theta_new = theta - lr_t * m_hat / (np.sqrt(v_hat) + s.eps)
        self.t, self.m, self.v = t, m, v
        return theta_new

    # ------------------------------------------------------------------ state (resume bit-for-bit)

    def state_dict(self) -> dict[str, np.ndarray | float | int | str]:
        """Everything needed to resume bit-for-bit, as a flat dict of copies.

        Keys: ``format`` (str, ``STATE_FORMAT``), ``version`` (int), ``n_params`` (int), ``t``
        (int), ``m`` and ``v`` ((n_params,) float64), and one key per :class:`AdamSettings` field
        (``lr``, ``beta1``, ``beta2``, ``eps``, ``decay_rate``, ``min_lr`` float; ``decay_steps`` int).
        """
        state: dict[str, np.ndarray | float | int | str] = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "n_params": self.n_params,
            "t": self.t,
            "m": self.m.copy(),
            "v": self.v.copy(),
        }
        state.update(asdict(self.settings))
        return state

    @classmethod
    def from_state_dict(cls, state) -> Adam:
        """Rebuild an optimiser from :meth:`state_dict` output; raises ValueError if malformed."""
        required = ["format", "version", "n_params", "t", "m", "v"]
        required += [f.name for f in fields(AdamSettings)]
        missing = [key for key in required if key not in state]
        if missing:
            raise ValueError(f"Adam state: missing entries {missing}")
        if str(state["format"]) != STATE_FORMAT:
            raise ValueError(f"Adam state: format is {state['format']!r}, expected {STATE_FORMAT!r}")
        version = state["version"]
        if not _is_integer(version) or version != STATE_VERSION:
            raise ValueError(f"Adam state: version is {version!r}, this code reads {STATE_VERSION}")
        t = state["t"]
        if not _is_integer(t) or t < 0:
            raise ValueError(f"Adam state: 't' must be an int >= 0, got {t!r}")
        settings = AdamSettings(**{f.name: state[f.name] for f in fields(AdamSettings)})
        opt = cls(state["n_params"], settings)
        m = _check_vector("Adam state 'm'", np.asarray(state["m"]), opt.n_params)
        v = _check_vector("Adam state 'v'", np.asarray(state["v"]), opt.n_params)
        if np.any(v < 0.0):
            bad = int(np.flatnonzero(v < 0.0)[0])
            raise ValueError(f"Adam state 'v' is negative at index {bad} (value {v[bad]!r})")
        opt.t = int(t)
        opt.m = m.copy()
        opt.v = v.copy()
        return opt

    def write_state(self, group) -> None:
        """Store :meth:`state_dict` in an open h5py Group (e.g. inside a checkpoint file).

        ``m`` and ``v`` become float64 datasets; every other entry becomes an attribute of ``group``
        (floats as float64, ints as int64, so the round trip is exact). The group must not already
        hold datasets ``m`` or ``v``.
        """
        for key, value in self.state_dict().items():
            if isinstance(value, np.ndarray):
                group.create_dataset(key, data=value, dtype=np.float64)
            elif isinstance(value, str):
                group.attrs[key] = value
            elif isinstance(value, int):
                group.attrs[key] = np.int64(value)
            else:
                group.attrs[key] = np.float64(value)

    @classmethod
    def read_state(cls, group) -> Adam:
        """Rebuild an optimiser from a group written by :meth:`write_state`; ValueError if malformed."""
        state: dict[str, np.ndarray | float | int | str] = {}
        for key in ("m", "v"):
            if key in group:
                state[key] = np.asarray(group[key][()])
        for key, value in group.attrs.items():
            if isinstance(value, bytes):
                value = value.decode()
            elif isinstance(value, np.integer):
                value = int(value)
            elif isinstance(value, np.floating):
                value = float(value)
            state[key] = value
        try:
            return cls.from_state_dict(state)
        except ValueError as err:
            raise ValueError(f"HDF5 group {group.name!r}: {err}") from None
