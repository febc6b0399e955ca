"""How often each verdict rule is wrong, measured by simulation at the design of the results it judges.

Every rule that reads experiments decides from an interval: the effect (a difference of log-odds, or the log of
a ratio of learning rates) with its 95% interval, against a margin or a band. Whether that interval can tell
the claim from its negation depends on the design: how many seeds, how many test examples, how much the
seeds spread. This module simulates a rule at its design, with the same decision code and the same interval
formula as the report, and measures

- **false agreement**: how often the rule says "supported" / "agrees" when the claim is false, at the edge of
  being false (the effect exactly at the margin's boundary): the worst case of a false claim;
- **power**: how often it says so when the claim holds with the effect the rule is checked against (each rule
  names it: e.g. equal accuracy for Hui & Belkin, an odds ratio of 3 for a stall);
- **false disagreement**: how often it says "not supported" / "disagrees" when the claim holds with that effect.

The simulation model is the interval's own: the estimate is normal around the true effect with the
variance of the seeds (s^2 / n) plus that of the test set (sigma^2 / N); the seeds' variance is estimated from
n seeds (a scaled chi-square with n - 1 degrees of freedom); the interval is the report's t interval with
Welch-Satterthwaite degrees of freedom. The seed spread and the test set's standard error are those measured in
the results (the nuisance parameters); the effect is the rule's, never the measured one. A finding over several
cells is simulated over all of them at once, cell by cell, and aggregated as the report aggregates.

A rule whose power at its design is below ``POWER_TARGET`` (or whose false agreement exceeds
``FALSE_AGREEMENT_LIMIT``) does not decide: its verdict is "not enough evidence", and the report says how many
seeds would decide it (``seeds_needed``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.stats

SIMULATIONS = 20_000
POWER_TARGET = 0.80
FALSE_AGREEMENT_LIMIT = 0.05
MAX_SEEDS = 200  # the largest seed count the search for ``seeds_needed`` tries
AGREE, DISAGREE, UNDECIDED = 1, -1, 0


@dataclass(frozen=True)
class Design:
    """What an effect's interval depends on besides the effect: the seeds, the standard deviation of the per-seed
    influence values (``stats.Effect.seed_sd``), and the test set's standard error (0: seeds only)."""

    seeds: int
    seed_sd: float
    test_se: float = 0.0

    @property
    def usable(self) -> bool:
        return self.seeds >= 2 and math.isfinite(self.seed_sd) and math.isfinite(self.test_se)


def simulated_intervals(design: Design, effect: float, sims: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``sims`` 95% intervals (low, high) that the report would compute for a true ``effect`` at ``design``."""
    n = design.seeds
    seed_var = design.seed_sd**2 / n
    test_var = design.test_se**2
    estimate = effect + rng.standard_normal(sims) * math.sqrt(seed_var + test_var)
    seed_var_hat = seed_var * rng.chisquare(n - 1, sims) / (n - 1)
    variance = seed_var_hat + test_var
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(seed_var_hat > 0, variance**2 / (seed_var_hat**2 / (n - 1)), np.inf)
    df = np.clip(df, n - 1, 1e6)
    half = scipy.stats.t.ppf(0.975, df) * np.sqrt(variance)
    return estimate - half, estimate + half


#: A cell's rule as the audit runs it: (low, high) arrays -> AGREE / DISAGREE / UNDECIDED per simulation.
CellRule = Callable[[np.ndarray, np.ndarray], np.ndarray]


def beyond_rule(bound: float) -> CellRule:
    """Agrees when the interval lies above ``bound`` (``decide.beyond`` 'yes'), disagrees when below ('no')."""

    def rule(low, high):
        return np.where(low > bound, AGREE, np.where(high < bound, DISAGREE, UNDECIDED))

    return rule


def within_rule(lo: float, hi: float) -> CellRule:
    """Agrees when the interval lies inside (lo, hi) (``decide.within`` 'yes'), disagrees when wholly outside."""

    def rule(low, high):
        inside = (low > lo) & (high < hi)
        outside = (high < lo) | (low > hi)
        return np.where(inside, AGREE, np.where(outside, DISAGREE, UNDECIDED))

    return rule


def aggregate_outcomes(outcomes: np.ndarray) -> np.ndarray:
    """``decide.aggregate`` over cells, vectorised: outcomes [cells, sims] -> AGREE / DISAGREE / UNDECIDED
    (mixed and 'not enough evidence' both count as UNDECIDED here)."""
    cells = outcomes.shape[0]
    decided = (outcomes != UNDECIDED).sum(0)
    enough = 2 * decided >= cells
    agree = enough & (decided > 0) & ((outcomes == DISAGREE).sum(0) == 0)
    disagree = enough & (decided > 0) & ((outcomes == AGREE).sum(0) == 0)
    return np.where(agree, AGREE, np.where(disagree, DISAGREE, UNDECIDED))


@dataclass(frozen=True)
class Audit:
    """A rule's measured error rates at one design."""

    rule: str  # the claim or finding id
    cells: int
    seeds: tuple[int, ...]  # per cell
    test_examples: tuple[int | None, ...]
    boundary: str  # what "false at the boundary" means, for the table
    effect: str  # the effect power is measured at
    false_agreement: float
    power: float
    false_disagreement: float
    seeds_needed: int | None  # fewest seeds (every cell) reaching the power target; None: none up to MAX_SEEDS
    simulations: int = SIMULATIONS
    designs: tuple[Design, ...] = ()  # what was simulated, cell by cell

    @property
    def decides(self) -> bool:
        """Whether the design may decide a verdict: enough power, few enough false agreements."""
        return self.power >= POWER_TARGET and self.false_agreement <= FALSE_AGREEMENT_LIMIT

    def as_record(self) -> dict:
        return {
            "rule": self.rule,
            "cells": self.cells,
            "seeds": list(self.seeds),
            "test_examples": list(self.test_examples),
            "boundary": str(self.boundary),
            "effect": str(self.effect),
            "false_agreement": round(self.false_agreement, 4),
            "power": round(self.power, 4),
            "false_disagreement": round(self.false_disagreement, 4),
            "decides": self.decides,
            "seeds_needed": self.seeds_needed,
            "simulations": self.simulations,
        }


def _rate(designs, rule: CellRule | list[CellRule], effects: list[float], sims: int, seed: int) -> np.ndarray:
    """Aggregate outcomes over cells: [sims] of AGREE / DISAGREE / UNDECIDED for the given true effects."""
    rng = np.random.default_rng(seed)
    rules = rule if isinstance(rule, list) else [rule] * len(designs)
    outcomes = np.stack([r(*simulated_intervals(d, e, sims, rng)) for d, r, e in zip(designs, rules, effects)])
    return aggregate_outcomes(outcomes)


@dataclass(frozen=True)
class Part:
    """One part of a verdict, simulated over its cells: the cells' designs and rules, the true effects per cell
    where the part's claim is false at its boundary (one or more scenarios) and where it holds."""

    designs: list[Design]
    rules: list[CellRule]
    false_effects: list[list[float]]
    true_effects: list[float]


def _joint(parts: list[Part], effects: list[list[float]], sims: int, seed: int) -> np.ndarray:
    """The parts' aggregates combined as a finding combines its parts: AGREE only where every part agrees,
    DISAGREE where some part disagrees and none agrees, else UNDECIDED."""
    results = [_rate(p.designs, p.rules, e, sims, seed + 10 * i) for i, (p, e) in enumerate(zip(parts, effects))]
    stacked = np.stack(results)
    agree = (stacked == AGREE).all(0)
    disagree = (stacked == DISAGREE).any(0) & ~(stacked == AGREE).any(0)
    return np.where(agree, AGREE, np.where(disagree, DISAGREE, UNDECIDED))


def audit(
    rule_id: str,
    designs: list[Design],
    cell_rule: CellRule | list[CellRule],
    false_effects: list[float] | list[list[float]],
    true_effects: list[float],
    *described,
    **options,
) -> Audit:
    """A rule over its cells, simulated (``audit_parts`` with one part; ``described``: its boundary and effect
    texts, ``options``: test_examples, sims, seed). ``false_effects``: the true effect per cell at the boundary where
    the claim is false (or several such scenarios: the worst is reported); ``true_effects``: per cell, the effect at
    which the claim holds. A design that is not usable (fewer than two seeds) has no power."""
    rules = cell_rule if isinstance(cell_rule, list) else [cell_rule] * len(designs)
    scenarios = false_effects if false_effects and isinstance(false_effects[0], list) else [false_effects]
    return audit_parts(rule_id, [Part(designs, rules, scenarios, true_effects)], *described, **options)


def audit_parts(
    rule_id: str,
    parts: list[Part],
    boundary: str,
    effect: str,
    test_examples: list[int | None] | None = None,
    sims: int = SIMULATIONS,
    seed: int = 0,
) -> Audit:
    """Simulate a verdict made of parts that must all agree (e.g. Golik's two halves). False agreement: the worst
    case over scenarios in which one part is false at its boundary and the others hold; power: all hold."""
    designs = [d for p in parts for d in p.designs]
    seeds = tuple(d.seeds for d in designs)
    examples = tuple(test_examples or [None] * len(designs))
    if not designs or not all(d.usable for d in designs):
        return Audit(
            rule_id, len(designs), seeds, examples, boundary, effect, math.nan, 0.0, math.nan, None, 0, tuple(designs)
        )
    held = [p.true_effects for p in parts]
    false_agreement = 0.0
    for i, part in enumerate(parts):
        for scenario in part.false_effects:
            effects = [scenario if j == i else held[j] for j in range(len(parts))]
            false_agreement = max(false_agreement, float((_joint(parts, effects, sims, seed) == AGREE).mean()))
    outcome = _joint(parts, held, sims, seed + 1)
    power, false_disagreement = float((outcome == AGREE).mean()), float((outcome == DISAGREE).mean())
    needed = max(seeds) if power >= POWER_TARGET else _seeds_needed(parts, seed)
    return Audit(
        rule_id,
        len(designs),
        seeds,
        examples,
        boundary,
        effect,
        false_agreement,
        power,
        false_disagreement,
        needed,
        sims,
        tuple(designs),
    )


def _seeds_needed(parts: list[Part], seed: int) -> int | None:
    """The fewest seeds per cell (the same in every cell) at which the power reaches the target, by bisection
    over [current, MAX_SEEDS] with fewer simulations; None when even MAX_SEEDS seeds fall short (the test set
    alone is then too small to decide)."""

    def power(n: int) -> float:
        scaled = [
            Part([Design(n, d.seed_sd, d.test_se) for d in p.designs], p.rules, p.false_effects, p.true_effects)
            for p in parts
        ]
        return float((_joint(scaled, [p.true_effects for p in parts], 4000, seed + 2) == AGREE).mean())

    low = max(d.seeds for p in parts for d in p.designs)
    if power(MAX_SEEDS) < POWER_TARGET:
        return None
    high = MAX_SEEDS
    while low + 1 < high:
        middle = (low + high) // 2
        if power(middle) >= POWER_TARGET:
            high = middle
        else:
            low = middle
    return high
