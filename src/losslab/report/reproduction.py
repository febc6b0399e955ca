"""MNIST-1D as its authors measured it: our runs of the reference models against the published accuracies.

Greydanus (2020) published one test accuracy per model (logistic regression 32%, MLP 68%, CNN 94%), rounded
to whole percents. The finding declared here (``mnist1d-reference``) asks whether our training of the same
models, on the same data and test set, reproduces them within the grid's margin: an equivalence test on the
log-odds scale whose error rates the audit measures like every other rule's.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special
import scipy.stats

from losslab.i18n import Message
from losslab.report import audit as A
from losslab.report import decide as D
from losslab.report.verdicts import MIN_SEEDS, Evidence, Finding, declare, guard, verdict_word
from losslab.report.wording import accuracy_text

#: Greydanus (2020), MNIST-1D README and paper: one run per model, test accuracy rounded to whole percent.
MNIST1D_PUBLISHED = {"reference-linear": 0.32, "reference-mlp": 0.68, "reference-cnn": 0.94}
#: What the reference's own code prints at step 6,000 (one run, seed 42): the output saved in MNIST-1D's
#: notebooks/mnist1d-classification.ipynb (github.com/greydanus/mnist1d), shown beside the published numbers.
MNIST1D_REFERENCE_RUN = {"reference-linear": 0.315, "reference-mlp": 0.651, "reference-cnn": 0.923}


def reproduction_effect(values, published: float) -> tuple[float, float, float, float]:
    """The effect and its interval: logit(our mean test accuracy) - logit(the published accuracy), with a 95% t
    interval over our seeds (delta method). The published numbers were measured on the same test set (the
    package's default, seed 42), so the test set's sampling is shared and adds nothing to this comparison;
    the spread of our seeds is what makes it uncertain."""
    # Returns (estimate, low, high, the standard deviation of the per-seed influence values).
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(np.clip(v.mean(), 1e-6, 1 - 1e-6))
    slope = 1 / (mean * (1 - mean))
    seed_sd = float(v.std(ddof=1)) * slope
    estimate = float(scipy.special.logit(mean) - scipy.special.logit(published))
    half = float(scipy.stats.t.ppf(0.975, len(v) - 1)) * seed_sd / math.sqrt(len(v))
    return estimate, estimate - half, estimate + half, seed_sd


def reproduction_table(ev: Evidence) -> list[dict]:
    """Per reference model (roles 'reference-linear', 'reference-mlp', 'reference-cnn'): ours with cross-entropy
    (mean and interval over seeds and test examples), the published value, the effect against it and the
    outcome against the grid's margin."""
    records = []
    for role, published in MNIST1D_PUBLISHED.items():
        for grid in ev.role_grids(role):
            for condition in grid.conditions:
                ce = condition.arm("cross_entropy")
                if ce is None or not ce.members:
                    continue
                estimate, low, high, seed_sd = reproduction_effect(ce.runs.accuracy, published)
                bound = math.log(grid.margin)
                if ce.seeds < MIN_SEEDS:
                    outcome = "not enough evidence"
                elif ce.choice.chosen_on.startswith("test"):
                    outcome = "not enough evidence"
                else:
                    decision = D.within(low, high, -bound, bound)
                    outcome = {D.YES: "agrees", D.NO: "disagrees", None: "not enough evidence"}[decision]
                records.append(
                    {
                        "role": role,
                        "model": grid.model,
                        "cell": condition.cell,
                        "published": published,
                        "reference_run": MNIST1D_REFERENCE_RUN[role],
                        "ours": ce.accuracy,
                        "odds_ratio": (math.exp(estimate), math.exp(low), math.exp(high)),
                        "margin": grid.margin,
                        "band": D.margin_points(grid.margin, published),
                        "seeds": ce.seeds,
                        "lr": ce.choice.lr,
                        "chosen_on": ce.choice.chosen_on,
                        "outcome": outcome,
                        "design": A.Design(ce.seeds, seed_sd, 0.0),
                        "bound": bound,
                    }
                )
    return records


def reproduction_audit(designs: list[A.Design], bounds: list[float]) -> A.Audit:
    """The equivalence test simulated over the models: false with ours off the published number by exactly the
    margin (either way), holding with ours equal to it."""
    return A.audit(
        "mnist1d-reference",
        designs,
        [A.within_rule(-b, b) for b in bounds],
        [bounds, [-b for b in bounds]],
        [0.0] * len(designs),
        Message("audit.boundary_equivalence"),
        Message("audit.effect_reproduces"),
    )


@declare(
    "mnist1d-reference",
    order=70,
    kind="finding",
    roles=tuple(MNIST1D_PUBLISHED),
    min_seeds=MIN_SEEDS,
    helpers=(reproduction_effect,),
)
def finding_mnist1d(ev: Evidence) -> Finding:
    """Per reference model (grids with roles 'reference-linear', 'reference-mlp', 'reference-cnn', loss
    cross-entropy, at least {min_seeds} seeds): the effect below, logit(our mean final test accuracy) -
    logit(the published 32% / 68% / 94%), with m the grid's margin, an odds ratio (default {default_margin}:
    at 94%, 92.6% to 95.1%). The model agrees if the whole interval lies inside (-log m, log m), disagrees if it
    lies wholly outside, and is undecided otherwise. Verdict: not tested without such grids; not enough evidence
    if fewer than half of the models are decided; agrees / disagrees if every decided model does; mixed
    otherwise. The verdict stands only if the design can decide it: simulated at these seeds and seed spread,
    the rule must agree at least {power_target} of the time when our training reproduces the published numbers
    exactly, and at most {false_agreement_limit} of the time when it misses them by exactly m."""
    statement, source = Message("finding.mnist1d.statement"), Message("finding.mnist1d.source")
    table = reproduction_table(ev)
    if not table:
        return Finding(source, statement, "not tested", [Message("finding.mnist1d.no_grid")], key="mnist1d-reference")
    evidence = [
        Message(
            "finding.mnist1d.model",
            role=r["role"],
            model=r["model"],
            ours=accuracy_text(r["ours"]),
            published=f"{100 * r['published']:.0f}%",
            odds=f"{r['odds_ratio'][0]:.3g}",
            low=f"{r['odds_ratio'][1]:.3g}",
            high=f"{r['odds_ratio'][2]:.3g}",
            margin=f"{r['margin']:g}",
            band_low=f"{100 * r['band'][0]:.1f}%",
            band_high=f"{100 * r['band'][1]:.1f}%",
            outcome=verdict_word(r["outcome"]),
        )
        for r in table
    ]
    evidence += [
        Message("finding.mnist1d.not_run", role=role)
        for role in MNIST1D_PUBLISHED
        if role not in {r["role"] for r in table}
    ]
    outcomes = [{"agrees": True, "disagrees": False}.get(r["outcome"]) for r in table]
    verdict, decided, total = D.aggregate(outcomes)
    evidence.append(Message("claims.decided", decided=str(decided), total=str(total)))
    bounds = [r["bound"] for r in table]
    audit = reproduction_audit([r["design"] for r in table], bounds)
    verdict = guard(verdict, audit, evidence, ("not tested",))
    return Finding(source, statement, verdict, evidence, key="mnist1d-reference", audit=audit)
