"""Every training configuration of the paper-figure scripts, and the priority plan of the converged sweep.

A ``Config`` is a name (the run folder) and the ``alw_ref.train.train`` options it sets on top of the
protocol. The table and figure scripts take their configurations from here (``table1()``, ``table2()``,
``fig2()``, ``fig3()``, ``strategies()``), and so does ``paper_figures.converged`` (``plan()``, issue 16's
priority order), so neither imports the other.

Every configuration sets every option that changes the numbers of an epoch and is not in
``alw_ref.train.PAPER_PROTOCOL`` (weights, β, the schedule end, the DWA temperature, the cutoff):
a run must never depend on the trainer's defaults, which change for accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EQUAL = (1 / 3, 1 / 3, 1 / 3)
#: The paper's Table 1 models 1-6, in its order.
FIXED_WEIGHTS = ((1.0, 0.0, 0.0), (0.9, 0.1, 0.0), (0.9, 0.05, 0.05), (0.05, 0.9, 0.05), (0.05, 0.05, 0.9), EQUAL)
#: The paper's Table 2 (SoftAdapt, initial weights ⅓ each).
BETAS = (0.01, 0.1, 1.0, 2.0)
#: The paper's Fig. 3 starts besides ⅓ (SoftAdapt β = 1).
FIG3_STARTS = ((0.9, 0.05, 0.05), (0.05, 0.9, 0.05), (0.05, 0.05, 0.9))
LINEAR_START, LINEAR_END = (0.05, 0.9, 0.05), (0.45, 0.1, 0.45)
#: Options outside PAPER_PROTOCOL that every run states (values irrelevant to a strategy are the
#: trainer's historical defaults, fixed here so that a change of default cannot change a run).
EXPLICIT = dict(beta=1.0, limit_weights=None, dwa_temperature=2.0, rc=5.0)


@dataclass(frozen=True)
class Config:
    """One training configuration: a name (the run folder) and the ``train`` options it sets.

    ``protocol`` is "paper" (``PAPER_PROTOCOL`` + ``EXPLICIT`` + ``options``) or "recommended"
    (only ``options``: the trainer's recommended defaults, priority 4 of issue 16).
    """

    name: str
    options: dict = field(default_factory=dict)
    protocol: str = "paper"


def fixed_name(weights) -> str:
    return "fixed-equal" if tuple(weights) == EQUAL else "fixed-" + "-".join(f"{w:g}" for w in weights)


def softadapt_name(beta) -> str:
    return f"softadapt-b{beta:g}"


def start_name(weights) -> str:
    return "softadapt-b1-from-" + "-".join(f"{w:g}" for w in weights)


def fixed(weights) -> Config:
    return Config(fixed_name(weights), dict(weighting="fixed", weights=tuple(weights)))


def softadapt(beta, weights=EQUAL, name=None, **extra) -> Config:
    return Config(name or softadapt_name(beta), dict(weighting="softadapt", beta=beta, weights=tuple(weights), **extra))


def table1() -> list:
    return [fixed(w) for w in FIXED_WEIGHTS]


def table2() -> list:
    return [softadapt(b) for b in BETAS]


SOFTADAPT_B1 = softadapt_name(1.0)


def fig2() -> list:
    """Table 1's six fixed models beside SoftAdapt β = 1 (Table 2's run)."""
    return table1() + [softadapt(1.0)]


def fig3() -> list:
    """SoftAdapt β = 1 from the three other starts, then Table 2's ⅓ start."""
    return [softadapt(1.0, s, name=start_name(s)) for s in FIG3_STARTS] + [softadapt(1.0)]


def strategies() -> list:
    """Every weighting strategy of the trainer (``strategies_table``)."""
    return [
        fixed(EQUAL), softadapt(1.0),
        *[softadapt(1.0, name=f"softadapt-b1-{v}", softadapt_variant=v) for v in ("original", "normalized",
                                                                                  "relative")],
        softadapt(1.0, name="softadapt-b1-loss-weighted", loss_weighted=True),
        Config("dwa-T2", dict(weighting="dwa", dwa_temperature=2.0, weights=EQUAL)),
        Config("uncertainty", dict(weighting="uncertainty", weights=EQUAL)),
        Config("linear-force-to-energy-stress", dict(weighting="linear", weights=LINEAR_START,
                                                     limit_weights=LINEAR_END)),
    ]


def unique(configs) -> list:
    """Configurations in first-seen order, each name once."""
    seen, out = set(), []
    for cfg in configs:
        if cfg.name not in seen:
            seen.add(cfg.name)
            out.append(cfg)
    return out


def every_script() -> list:
    """The runs of every script (``python -m paper_figures.sweep``)."""
    return unique(table1() + table2() + fig3() + strategies())


# ------------------------------------------------------------------------------------- issue 16's plan
#: Priority 4's settings: the trainer's recommended (accuracy) protocol of ``alw_ref.train.DEFAULTS``
#: (benchmarks/bench_accuracy.py), written out so that a later change of the defaults cannot change these
#: runs; the learning rate falls on plateaus of the validation loss (×0.5 after 25 epochs without a gain,
#: down to 1e-5) instead of over a fixed number of epochs, since these runs stop when converged. They are
#: passed to ``train`` on their own, with the configuration's weighting, weights and β (the descriptors are
#: the dataset's, as for every run of the sweep). None would skip priority 4 ("not started"). Softplus since
#: session 5's change of the defaults (no priority-4 run had started).
RECOMMENDED_OPTIONS: dict | None = dict(
    loss="rmse", loss_scale="labels", softadapt_variant="relative", slope_window=10, average_epochs=10,
    softadapt_prior=True, hidden=(64, 64), activation="softplus", batch_size=10, lr=2e-3, lr_schedule="plateau",
    lr_factor=0.5, lr_patience=25, min_lr=1e-5, ema_decay=0.99)
#: Seeds per priority (issue 16): 3 for the claims' comparisons and the modern protocol, else 1.
PRIORITY_SEEDS = {1: 3, 2: 1, 3: 1, 4: 3}


def priority_configs(priority: int) -> list:
    """The configurations of one priority of issue 16 (4: empty while RECOMMENDED_OPTIONS is None)."""
    first = [fixed((0.9, 0.1, 0.0)), fixed((0.9, 0.05, 0.05)), fixed(EQUAL), softadapt(1.0)]
    if priority == 1:
        return first
    if priority == 2:
        names = {c.name for c in first}
        return [c for c in table1() + table2() if c.name not in names]
    if priority == 3:
        return fig3()[:3]
    if priority == 4:
        if RECOMMENDED_OPTIONS is None:
            return []
        return [Config("recommended-" + c.name, {**RECOMMENDED_OPTIONS, **c.options}, protocol="recommended")
                for c in (fixed(EQUAL), softadapt(1.0))]
    raise ValueError(f"priority {priority}: issue 16 has priorities 1-4 per dataset (5 = MoSe2)")


def plan(datasets=("mote2", "mose2")) -> list:
    """(priority, dataset, Config, seed) in issue 16's order: priorities 1-4 on the first dataset, then
    priority 5 = the same order on the next datasets. Within a priority: seed-major (every
    configuration's seed 0 first), so a comparison gets one seed of each side before the next seed."""
    out = []
    for k, dataset in enumerate(datasets):
        for priority in (1, 2, 3, 4):
            seeds = PRIORITY_SEEDS[priority]
            for seed in range(seeds):
                for cfg in priority_configs(priority):
                    out.append((priority if k == 0 else 5, dataset, cfg, seed))
    return out
