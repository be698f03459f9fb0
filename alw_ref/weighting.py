"""Loss weighting: the weights w_k of L = Σ_k w_k L_k (paper Eq. 5), from SoftAdapt (paper Eqs. 6–7)
and the baselines the benchmark compares it with.

Pure functions, one per method (losses in the loss units of ``alw_ref.loss``: eV/atom, eV/Å, GPa
for ``form="rmse"`` and their squares for ``"mse"``; weights dimensionless; component order that
of ``alw_ref.loss.COMPONENTS`` = (energy, forces, stress), though every function takes any K ≥ 1):

* ``softadapt`` — paper Eqs. 6–7 after Heydari, Thompson & Mehmood, arXiv:1912.12355 (2019):
  w_k = exp(β ŝ_k) / Σ_l exp(β ŝ_l) from the last change s_k = L_k(t) − L_k(t−1);
* ``dwa_weights`` — Dynamic Weight Average, Liu, Johns & Davison, CVPR 2019;
* ``linear_schedule`` — DeePMD-kit's start → limit prefactors;
* ``uncertainty_weights`` / ``uncertainty_loss`` / ``uncertainty_gradient`` — Kendall, Gal &
  Cipolla, CVPR 2018 (learned log-variances of homoscedastic task uncertainty).

``LossWeighting`` is the one stateful driver the trainer uses for all of them, chosen by name
(``STRATEGIES``); its ``state_dict`` goes into checkpoints and restores it bit for bit.

Protocol (the paper's, as its code ran it): training starts with the initial weights (⅓ each);
``start(L(0))`` records the untrained model's training-set losses; after every epoch t,
``end_epoch(L(t))`` computes the weights of epoch t + 1, the first SoftAdapt change being
L(1) − L(0) (AtomDNN convention).

Conventions and deviations from the paper, each marked at its line:
* ŝ = s / (‖s‖₂ + ε) (variant ``l2``) is what the paper's code (AtomDNN) did; the paper's Eq. 7
  text only says "rate of change scaled by β". ε and the max-shift are ours: the paper's code
  divided by ‖s‖₂ = 0 when all slopes vanish, and exponentiated without a shift (its defect #4).
* With ``slope_window = n > 1`` the SoftAdapt (and DWA) change is taken over n epochs, L(t) − L(t−n)
  (from L(0) while fewer than n epochs are done), instead of over one: one-epoch changes of a mini-batch
  training loss are mostly noise late in training, and the paper's weights then flip every epoch.
* With ``average_epochs = n > 1`` the applied weights are the mean of the last n computed SoftAdapt
  vectors (fewer at the start of training: the mean of those computed so far).
* Liu et al. scale DWA weights to sum K; we normalise them to sum 1 like SoftAdapt.
* Kendall et al.'s regression loss ½ exp(−s) L + ½ s is used without the overall factor ½.
"""

from __future__ import annotations

import math

import numpy as np

STRATEGIES = ("fixed", "softadapt", "linear", "dwa", "uncertainty")
SOFTADAPT_VARIANTS = ("l2", "original", "normalized", "relative")
STATE_FORMAT = "alw_ref.weighting"
STATE_VERSION = 1


# ----------------------------------------------------------------------------------------- checks

def _finite_real(value, name: str) -> float:
    """float(value), or ValueError naming ``name`` if it is not a finite real number."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return x


def _nonnegative_vector(values, name: str, k: int | None = None) -> np.ndarray:
    """(K,) float64 copy of ``values``: finite, ≥ 0, of length ``k`` if given; else ValueError."""
    v = np.array(values, dtype=float, copy=True)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {v.shape}")
    if k is not None and v.size != k:
        raise ValueError(f"{name} must have {k} entries (one per loss component), got {v.size}")
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        raise ValueError(f"{name} must be finite and ≥ 0, got {v.tolist()}")
    return v


def _loss_history(losses, min_rows: int = 2) -> np.ndarray:
    """(T, K) float64 history, oldest row first, T ≥ min_rows, K ≥ 1, finite, ≥ 0; else ValueError."""
    h = np.asarray(losses, dtype=float)
    if h.ndim != 2 or h.shape[0] < min_rows or h.shape[1] < 1:
        raise ValueError(f"losses must be a (T, K) history with T ≥ {min_rows} epochs and K ≥ 1 "
                         f"components, got shape {h.shape}")
    bad = ~np.isfinite(h) | (h < 0)
    if bad.any():
        t, k = np.argwhere(bad)[0]
        raise ValueError(f"losses must be finite and ≥ 0: row {t}, component {k} is {float(h[t, k])!r}")
    return h


def _guarded_ratio(numer: np.ndarray, denom: np.ndarray, eps: float, what: str) -> np.ndarray:
    """numer / max(denom, ε) elementwise (ε guards a zero loss); ValueError if it overflows."""
    with np.errstate(over="ignore"):
        r = numer / np.maximum(denom, eps)
    if not np.all(np.isfinite(r)):
        k = int(np.flatnonzero(~np.isfinite(r))[0])
        raise ValueError(f"{what} of component {k} overflows: {numer[k]!r} / max({denom[k]!r}, eps={eps})")
    return r


# -------------------------------------------------------------------------------------- softmax

def _softmax(beta: float, x: np.ndarray, log_prefactor: np.ndarray | None = None) -> np.ndarray:
    """w_k = c_k exp(β x_k) / Σ_l c_l exp(β x_l), c_k = exp(log_prefactor_k) (1 if None), overflow-free.

    The shift that keeps every exponent ≤ 0 is taken on x, not on β x: with x_ref = max x (β > 0)
    or min x (β < 0), β (x_k − x_ref) ≤ 0; if that product overflows it is −inf and exp gives the
    exact limit 0. Components with c_k = 0 (log_prefactor −inf) get weight 0; if every c_k = 0 the
    weights are equal (1/K). β = 0 gives w ∝ c exactly. x must be finite.
    """
    k = x.size
    lp = np.zeros(k) if log_prefactor is None else log_prefactor
    support = np.isfinite(lp)
    if not support.any():
        return np.full(k, 1.0 / k)
    if beta == 0.0:
        z = np.zeros(k)
    else:
        x_ref = x[support].max() if beta > 0 else x[support].min()
        with np.errstate(over="ignore"):
            z = beta * (x - x_ref)          # ≤ 0 on the support; −inf where the product overflows
    a = np.where(support, z + np.where(support, lp, 0.0), -np.inf)
    e = np.exp(a - a[support].max())        # the largest term is exp(0) = 1, so the sum is ≥ 1
    return e / e.sum()


# ------------------------------------------------------------------------------------ SoftAdapt

def softadapt_slopes(losses, variant: str = "l2", eps: float = 1e-8) -> np.ndarray:
    """Scaled rates of change ŝ_k of SoftAdapt (paper Eq. 7), from the last two rows of the history.

    losses : (T, K) float64, loss units of ``alw_ref.loss`` (eV/atom, eV/Å, GPa, or their squares),
        oldest row first, T ≥ 2, finite, ≥ 0. s_k = L_k(t) − L_k(t−1) from rows −1 and −2.
    variant : ``"l2"`` ŝ = s / (‖s‖₂ + ε) — AtomDNN convention (the paper's code; NequIP's SoftAdapt
            callback does the same); dimensionless, |ŝ_k| < 1.
        ``"original"`` ŝ = s — Heydari et al. as written; in loss units, so β depends on the dataset.
        ``"normalized"`` ŝ = s / (Σ_l |s_l| + ε) — Heydari et al. §3.1.3; dimensionless. The public
            SoftAdapt code (dr-aheydari/SoftAdapt, normalized_slopes_variant.py) divides by the
            *signed* sum Σ_l s_l: when all losses fall that sum is negative, every ŝ_k flips sign and
            β > 0 then favours the fastest-falling component instead of the slowest — the opposite of
            what β > 0 means (and Σ s = 0 divides by zero). We divide by Σ |s_l|, which is > 0 and
            keeps the ordering of s.
        ``"relative"`` ŝ_k = s_k / max(L_k(t−1), ε) — the relative change per epoch; ε guards L = 0
            (exact, not perturbed, whenever L_k(t−1) ≥ ε).
    eps : float > 0, in loss units (dimensionless ratio guard for ``relative``).

    Returns ŝ : (K,) float64 (dimensionless except for ``original``: loss units).

    Invariances of the resulting weights (what holds exactly in exact arithmetic):
    * ``original``: adding one constant c to every slope (s_k → s_k + c) — the softmax cancels it.
      Not scale-free: multiplying the losses by a changes β's effect.
    * ``l2`` and ``normalized``: one common positive scale of *all* slopes (all losses × a), up to ε;
      NOT a scale of one component alone — ×1000 on L_E makes s_E dominate ‖s‖ and changes ŝ.
    * ``relative``: a positive scale of each component's history separately (L_k × a_k), so also
      the choice of units of each term, as long as the losses stay ≥ ε.
    All variants are unchanged by adding a constant to a component's whole history, except
    ``relative``.
    """
    h = _loss_history(losses)
    eps = _check_eps(eps)
    s = h[-1] - h[-2]                       # |s| ≤ max L: finite
    if variant == "original":
        return s
    if variant == "relative":
        return _guarded_ratio(s, h[-2], eps, "the relative change")
    if variant not in ("l2", "normalized"):
        raise ValueError(f"unknown SoftAdapt variant {variant!r}; choose one of {', '.join(SOFTADAPT_VARIANTS)}")
    a = np.abs(s).max()
    if a == 0.0:
        return np.zeros_like(s)
    u = s / a                                # |u| ≤ 1: the norms below cannot overflow
    norm_u = math.sqrt(float(np.dot(u, u))) if variant == "l2" else float(np.abs(u).sum())
    with np.errstate(over="ignore"):
        return u / (norm_u + eps / a)        # = s / (‖s‖ + ε); ε/a → inf only where ‖s‖ ≪ ε (then ŝ → 0)


def _check_eps(eps) -> float:
    e = _finite_real(eps, "eps")
    if e <= 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    return e


def softadapt(losses, beta: float = 1.0, variant: str = "l2", loss_weighted: bool = False,
              eps: float = 1e-8, prior=None) -> np.ndarray:
    """SoftAdapt weights, paper Eq. 6: w_k = exp(β ŝ_k) / Σ_l exp(β ŝ_l), ŝ from paper Eq. 7.

    Heydari, Thompson & Mehmood, "SoftAdapt: techniques for adaptive loss weighting of neural
    networks with multi-part loss functions", arXiv:1912.12355 (2019), §3.1.

    losses : (T, K) float64, loss units (eV/atom, eV/Å, GPa or their squares), oldest row first,
        T ≥ 2; only the last two rows are used (see ``softadapt_slopes`` for the variants and the
        invariance each has).
    beta : dimensionless. β > 0 favours the component whose loss rises most / falls least (the
        slowest learner, the paper's default β = 1.0), β = 0 gives equal weights 1/K, β < 0 favours
        the fastest learner.
    prior : (K,) weights ≥ 0 or None. Ours, not the paper's: w_k = p_k exp(β ŝ_k) / Σ_l p_l exp(β ŝ_l), SoftAdapt
        as a modulation of chosen base weights p (the trainer passes its initial ``--weights``). With equal
        p this is exactly Eq. 6; without it SoftAdapt forgets the initial weights after the first epoch.
    loss_weighted : Heydari et al.'s loss-weighted form (the paper's code option):
        w_k = L_k(t) exp(β ŝ_k) / Σ_l L_l(t) exp(β ŝ_l). A component with L_k(t) = 0 gets weight 0;
        if all L(t) = 0 the weights are equal (1/K).
    eps : > 0, guard of the variants' denominators.

    Returns w : (K,) float64, dimensionless, w ≥ 0, Σ w = 1 (w > 0 unless |β ŝ| spans more than
    ~745, where exp underflows, or a loss-weighted L_k is 0). Stable: exponents are shifted so the
    largest is 0 (ε and the shift are our fixes of the paper code's defect #4).
    """
    beta = _finite_real(beta, "beta")
    if variant not in SOFTADAPT_VARIANTS:
        raise ValueError(f"unknown SoftAdapt variant {variant!r}; choose one of {', '.join(SOFTADAPT_VARIANTS)}")
    h = _loss_history(losses)
    s_hat = softadapt_slopes(h, variant, eps)
    log_prefactor = None
    if loss_weighted:
        last = h[-1]
        with np.errstate(divide="ignore"):
            # log L_k − log max L: ≤ 0, −inf where L_k = 0; no overflow even for L ~ 1e308
            log_prefactor = np.log(last) - (np.log(last.max()) if last.max() > 0 else 0.0)
    if prior is not None:
        p = _nonnegative_vector(prior, "prior weights", h.shape[1])
        if not np.any(p > 0):
            raise ValueError(f"prior weights must not all be 0, got {p.tolist()}")
        with np.errstate(divide="ignore"):
            log_p = np.log(p / p.max())          # ≤ 0; −inf where a prior weight is 0
        log_prefactor = log_p if log_prefactor is None else log_prefactor + log_p
    return _softmax(beta, s_hat, log_prefactor)


# ----------------------------------------------------------------------------------- baselines

def dwa_weights(losses, temperature: float = 2.0, eps: float = 1e-8) -> np.ndarray:
    """Dynamic Weight Average, Liu, Johns & Davison, "End-to-end multi-task learning with
    attention", CVPR 2019 (their DWA rule): w_k ∝ exp(r_k / T), r_k = L_k(t−1) / L_k(t−2).

    losses : (T_epochs, K) float64, loss units, oldest row first, ≥ 2 rows; r_k is the ratio of the
        last row to the row before (the losses the weights of the coming epoch are computed from);
        max(L_k(t−2), ε) guards a zero loss.
    temperature : T > 0, dimensionless (Liu et al. use 2); large T → equal weights.

    Returns w : (K,) float64, dimensionless, Σ w = 1. Liu et al. scale the weights to sum K
    (λ_k = K exp(r_k/T) / Σ exp(r_i/T)); we normalise to 1 so every strategy here has the same scale
    as SoftAdapt. Liu et al. also fix λ_k = 1 for their first two epochs, having no L(0); we have
    the untrained model's L(0), so the first ratio is L(1)/L(0).
    """
    t = _finite_real(temperature, "temperature")
    if t <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    h = _loss_history(losses)
    r = _guarded_ratio(h[-1], h[-2], _check_eps(eps), "the loss ratio")
    return _softmax(1.0 / t, r)


def linear_schedule(start, limit, progress: float) -> np.ndarray:
    """DeePMD-style prefactors moving linearly from ``start`` to ``limit``: p = (1 − x) start + x limit.

    DeePMD-kit (Wang et al., Comput. Phys. Commun. 228, 178 (2018); docs "Fit energy") sets
    p(t) = p_start · lr(t)/lr(0) + p_limit · (1 − lr(t)/lr(0)), i.e. x = 1 − lr(t)/lr(0) is tied to
    its exponential learning-rate decay and reaches 1 only as t → ∞. We decouple it from the
    optimiser: the driver uses x = epoch / (n_epochs − 1) for the 0-based index of the coming epoch,
    so the first epoch uses ``start`` and the last ``limit`` exactly.

    start, limit : (K,) float64, dimensionless, finite, ≥ 0 (same length).
    progress : x in [0, 1], dimensionless.

    Returns p : (K,) float64 — the prefactors as given, NOT normalised to sum 1 (DeePMD's start and
    limit prefactors, e.g. 0.02 → 1 for energy and 1000 → 1 for forces, are absolute).
    """
    start = _nonnegative_vector(start, "start prefactors")
    limit = _nonnegative_vector(limit, "limit prefactors", start.size)
    x = _finite_real(progress, "progress")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"progress must be in [0, 1], got {progress!r}")
    return (1.0 - x) * start + x * limit


def uncertainty_weights(log_var) -> np.ndarray:
    """Weights of Kendall, Gal & Cipolla, "Multi-task learning using uncertainty to weigh losses",
    CVPR 2018 (homoscedastic task uncertainty): w_k = exp(−s_k) = 1/σ_k², s_k = log σ_k².

    log_var : (K,) float64, s_k = log σ_k², dimensionless (σ_k² carries the units of L_k).
    Returns w : (K,) float64 > 0, dimensionless, not normalised (they are learned).
    """
    s = np.asarray(log_var, dtype=float)
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)):
        raise ValueError(f"log-variances must be a finite non-empty 1-D array, got {s!r}")
    with np.errstate(over="ignore"):
        w = np.exp(-s)
    if not np.all(np.isfinite(w)):
        raise ValueError(f"log-variances {s.tolist()} give infinite weights exp(−s); s must be > −709")
    return w


def uncertainty_loss(log_var, parts) -> float:
    """Kendall et al. (CVPR 2018) multi-task regression loss, without its constant factor ½:
    L(s) = Σ_k exp(−s_k) L_k + s_k (their ½ exp(−s) L + log σ = ½ (exp(−s) L + s) for regression).

    log_var : (K,) float64 s_k, dimensionless. parts : (K,) float64 L_k ≥ 0, loss units.
    Returns L : float, loss units (plus the dimensionless regulariser Σ s_k).
    """
    w = uncertainty_weights(log_var)
    p = _nonnegative_vector(parts, "loss parts", w.size)
    return float(np.dot(w, p) + np.sum(np.asarray(log_var, dtype=float)))


def uncertainty_gradient(log_var, parts) -> np.ndarray:
    """∂L/∂s_k of ``uncertainty_loss``: 1 − exp(−s_k) L_k (zero at s_k = log L_k, the optimum).

    log_var : (K,) float64 s_k; parts : (K,) float64 L_k ≥ 0, loss units. Returns (K,) float64.
    """
    w = uncertainty_weights(log_var)
    p = _nonnegative_vector(parts, "loss parts", w.size)
    return 1.0 - w * p


# -------------------------------------------------------------------------------------- driver

class LossWeighting:
    """The weights of every training epoch, for one strategy chosen by name (``STRATEGIES``).

    strategy : ``"fixed"`` — ``initial`` throughout;
        ``"softadapt"`` (default) — the paper's protocol: after every epoch, ``softadapt`` of the
            epoch's training-set losses (β ``beta``, ``variant``, ``loss_weighted``, ``eps``),
            applied in the next epoch (with ``prior``, ``softadapt``'s prior = ``initial``: a modulation of the
            initial weights instead of a replacement); the change is over ``slope_window`` epochs (rows t − n and t of
            the loss history); with ``average_epochs`` = n > 1 the mean of the last n
            computed vectors (of those computed so far while fewer than n exist);
        ``"linear"`` — ``linear_schedule(initial, limit, e / (n_epochs − 1))`` for the coming epoch
            of 0-based index e (so epoch 1 uses ``initial``, epoch ``n_epochs`` uses ``limit``; later
            epochs keep ``limit``; with n_epochs = 1 the single epoch uses ``initial``);
        ``"dwa"`` — ``dwa_weights`` (``temperature``, ``eps``) of the last two recorded loss rows;
            ``initial`` until two rows exist;
        ``"uncertainty"`` — w = exp(−s) with log-variances s (``params``) that the trainer learns
            per batch: ``param_gradient(parts)`` gives ∂L/∂s, ``set_params`` takes the updated s.
    initial : (K,) dimensionless weights of the first epoch, finite, ≥ 0, not all 0 (paper: ⅓ each;
        K = len(alw_ref.loss.COMPONENTS) = 3 in training, order energy, forces, stress). For
        ``softadapt`` and ``dwa`` they must sum to 1 (their computed weights do); for
        ``uncertainty`` they must be > 0 (s = −log w).
    limit : (K,) prefactors at the end of a ``linear`` schedule (required there, ignored otherwise).
    n_epochs : number of training epochs (int ≥ 1; required for ``linear``, ignored otherwise).

    Call ``start(L(0))`` with the untrained model's training-set losses, then ``end_epoch(L(t))``
    after each epoch t; ``current()`` gives the weights for the coming epoch. ``history`` lists the
    weights applied in each completed epoch (for the paper's Fig. 3); for ``uncertainty`` these are
    the weights at the epoch's start (they move with every batch).
    """

    def __init__(self, strategy: str = "softadapt", initial=(1 / 3, 1 / 3, 1 / 3), *, beta: float = 1.0,
                 variant: str = "l2", loss_weighted: bool = False, average_epochs: int = 1, limit=None,
                 n_epochs: int | None = None, temperature: float = 2.0, eps: float = 1e-8,
                 slope_window: int = 1, prior: bool = False):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown weighting strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        w0 = _nonnegative_vector(initial, "initial weights")
        if not np.any(w0 > 0):
            raise ValueError(f"initial weights must not all be 0, got {w0.tolist()}")
        if strategy in ("softadapt", "dwa") and abs(w0.sum() - 1.0) > 1e-9:
            raise ValueError(f"initial weights of {strategy} must sum to 1 (its computed weights do), got "
                             f"{w0.tolist()} with sum {w0.sum()!r}")
        if strategy == "uncertainty" and np.any(w0 == 0):
            raise ValueError(f"initial weights of uncertainty weighting must be > 0 (s = −log w), got {w0.tolist()}")
        if variant not in SOFTADAPT_VARIANTS:
            raise ValueError(f"unknown SoftAdapt variant {variant!r}; choose one of {', '.join(SOFTADAPT_VARIANTS)}")
        if not isinstance(loss_weighted, (bool, np.bool_)):
            raise ValueError(f"loss_weighted must be True or False, got {loss_weighted!r}")
        if isinstance(average_epochs, bool) or not isinstance(average_epochs, (int, np.integer)) or average_epochs < 1:
            raise ValueError(f"average_epochs must be an integer ≥ 1, got {average_epochs!r}")
        if isinstance(slope_window, bool) or not isinstance(slope_window, (int, np.integer)) or slope_window < 1:
            raise ValueError(f"slope_window must be an integer ≥ 1, got {slope_window!r}")
        temperature = _finite_real(temperature, "temperature")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if limit is not None:
            limit = _nonnegative_vector(limit, "limit weights", w0.size)
        if n_epochs is not None and (isinstance(n_epochs, bool) or not isinstance(n_epochs, (int, np.integer))
                                     or n_epochs < 0):
            raise ValueError(f"n_epochs must be an integer ≥ 0, got {n_epochs!r}")
        if strategy == "linear" and limit is None:
            raise ValueError("linear weighting needs limit weights (the prefactors of the last epoch)")
        if strategy == "linear" and (n_epochs is None or n_epochs < 1):
            raise ValueError(f"linear weighting needs n_epochs ≥ 1 (the length of the schedule), got {n_epochs!r}")
        self.strategy = strategy
        self.initial = w0
        self.beta = _finite_real(beta, "beta")
        self.variant = variant
        self.loss_weighted = bool(loss_weighted)
        self.average_epochs = int(average_epochs)
        self.slope_window = int(slope_window)
        self.prior = bool(prior)
        self.limit = limit
        self.n_epochs = None if n_epochs is None else int(n_epochs)
        self.temperature = temperature
        self.eps = _check_eps(eps)
        self._losses: list[np.ndarray] = []       # L(0), L(1), ...: (K,) each, loss units
        self._computed: list[np.ndarray] = []     # every SoftAdapt vector computed (before averaging)
        self._history: list[np.ndarray] = []      # weights applied in each completed epoch
        self._started = False
        self._params = -np.log(w0) if strategy == "uncertainty" else np.zeros(0)
        self._current = uncertainty_weights(self._params) if strategy == "uncertainty" else w0.copy()
        self._epoch_start = self._current.copy()  # differs from _current only after set_params

    @property
    def n_components(self) -> int:
        return self.initial.size

    @property
    def trainable(self) -> bool:
        """True only for ``uncertainty``: its log-variances are trained with the network."""
        return self.strategy == "uncertainty"

    @property
    def params(self) -> np.ndarray:
        """(K,) log-variances s (``uncertainty``; initially −log(initial)); empty otherwise. A copy."""
        return self._params.copy()

    @property
    def history(self) -> list:
        """Weights applied in each completed epoch: list of (K,) arrays, epoch 1 first."""
        return [w.copy() for w in self._history]

    @property
    def epoch(self) -> int:
        """Number of completed epochs."""
        return len(self._history)

    def current(self) -> np.ndarray:
        """(K,) weights to use for the coming epoch (for ``uncertainty``, the current exp(−s)). A copy."""
        return self._current.copy()

    def _check_losses(self, losses, name: str) -> np.ndarray:
        return _nonnegative_vector(losses, name, self.n_components)

    def start(self, train_losses0) -> None:
        """Record L(0): the training-set losses (K,) of the untrained model, loss units. Optional, but
        if called it must come first; then the first SoftAdapt/DWA update uses L(1) vs L(0)."""
        if self._started or self._losses:
            raise ValueError("start() must be called once, before the first end_epoch()")
        self._losses.append(self._check_losses(train_losses0, "epoch-0 training losses"))
        self._started = True

    def end_epoch(self, train_losses) -> None:
        """Record the completed epoch's training-set losses (K,) (loss units) and set the weights of
        the next epoch."""
        losses = self._check_losses(train_losses, f"training losses of epoch {self.epoch + 1}")
        self._history.append(self._epoch_start)
        self._losses.append(losses)
        # rows t − n and t (n = slope_window; from L(0) while fewer than n epochs are done)
        window = np.stack([self._losses[max(0, len(self._losses) - 1 - self.slope_window)], self._losses[-1]])
        if self.strategy == "softadapt" and len(self._losses) >= 2:
            self._computed.append(softadapt(window, self.beta, self.variant, self.loss_weighted, self.eps,
                                            self.initial if self.prior else None))
            self._current = np.mean(self._computed[-self.average_epochs:], axis=0)
        elif self.strategy == "dwa" and len(self._losses) >= 2:
            self._current = dwa_weights(window, self.temperature, self.eps)
        elif self.strategy == "linear":
            progress = min(1.0, self.epoch / max(self.n_epochs - 1, 1))
            self._current = linear_schedule(self.initial, self.limit, progress)
        # fixed: unchanged; uncertainty: exp(−s), kept current by set_params
        self._epoch_start = self._current.copy()

    def param_gradient(self, parts) -> np.ndarray:
        """∂L/∂s (K,) for a batch's loss parts L_k (loss units): ``uncertainty_gradient``."""
        if not self.trainable:
            raise ValueError(f"{self.strategy} weighting has no trainable parameters")
        return uncertainty_gradient(self._params, parts)

    def set_params(self, s) -> None:
        """Take the log-variances s (K,) after the trainer's optimiser step; current() = exp(−s)."""
        if not self.trainable:
            raise ValueError(f"{self.strategy} weighting has no trainable parameters")
        s = np.array(s, dtype=float, copy=True)
        if s.shape != (self.n_components,):
            raise ValueError(f"log-variances must have shape ({self.n_components},), got {s.shape}")
        self._current = uncertainty_weights(s)
        self._params = s

    def describe(self) -> str:
        """One line for logs: the strategy and its settings."""
        def vec(v):
            return ",".join(f"{x:.4g}" for x in v)
        if self.strategy == "softadapt":
            return (f"softadapt(beta={self.beta}, variant={self.variant}, loss_weighted={self.loss_weighted}, "
                    f"slope_window={self.slope_window}, average={self.average_epochs}"
                    + (f", prior={vec(self.initial)})" if self.prior else ")"))
        if self.strategy == "linear":
            return f"linear(start={vec(self.initial)}, limit={vec(self.limit)}, n_epochs={self.n_epochs})"
        if self.strategy == "dwa":
            return f"dwa(temperature={self.temperature})"
        if self.strategy == "uncertainty":
            return f"uncertainty(initial={vec(self.initial)})"
        return f"fixed(weights={vec(self.initial)})"

    def state_dict(self) -> dict:
        """Everything needed to resume bit for bit, as JSON-ready Python lists and scalars."""
        def rows(arrays):
            return [a.tolist() for a in arrays]
        return {
            "format": STATE_FORMAT, "version": STATE_VERSION, "strategy": self.strategy,
            "initial": self.initial.tolist(),
            "settings": {"beta": self.beta, "variant": self.variant, "loss_weighted": self.loss_weighted,
                         "average_epochs": self.average_epochs,
                         "limit": None if self.limit is None else self.limit.tolist(),
                         "n_epochs": self.n_epochs, "temperature": self.temperature, "eps": self.eps,
                         "slope_window": self.slope_window, "prior": self.prior},
            "started": self._started, "losses": rows(self._losses), "computed": rows(self._computed),
            "history": rows(self._history), "current": self._current.tolist(),
            "epoch_start": self._epoch_start.tolist(), "params": self._params.tolist(),
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> "LossWeighting":
        """The driver saved by ``state_dict`` (lists or arrays); ValueError if it is not one."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError("not a LossWeighting state (format key missing or wrong)")
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"LossWeighting state version {state.get('version')!r}; this code reads {STATE_VERSION}")
        try:
            obj = cls(state["strategy"], state["initial"], **state["settings"])
            k = obj.n_components

            def rows(key):
                a = np.asarray(state[key], dtype=float).reshape(-1, k)
                return [r.copy() for r in a]
            obj._losses, obj._computed, obj._history = rows("losses"), rows("computed"), rows("history")
            obj._started = bool(state["started"])
            obj._current = np.asarray(state["current"], dtype=float).reshape(k).copy()
            obj._epoch_start = np.asarray(state["epoch_start"], dtype=float).reshape(k).copy()
            obj._params = np.asarray(state["params"], dtype=float).reshape(k if obj.trainable else 0).copy()
        except (KeyError, TypeError) as err:
            raise ValueError(f"damaged LossWeighting state: {err!r}") from None
        return obj
