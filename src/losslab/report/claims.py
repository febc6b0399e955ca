"""The claims ledger: a verdict for each claim of the article, computed from the measurements.

Each claim is declared (``verdicts.declare``) with the rule that decides it, the docstring of its function,
which the report prints beside the verdict. Three sources decide them: the exact gradient analysis
(``losslab.analysis`` and the link functions of ``losslab.core``: C1, C3), the equation ledger (``losslab
verify``: C2, C6, C7, C10, C11, C12) and the experiments (C4, C5: ``losslab.report.stall``), read by the *role* of their grids, never by a
grid's label, through the same grid summaries the report shows (``losslab.report.grids``: each loss at its
rate chosen on validation, intervals over seeds and test examples). Nothing is written in: with other
measurements, other verdicts, and every rule can come out each way (the tests build results for each outcome).
The experiment rules' error rates are measured by simulation at the design they judge (``report.audit``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from losslab.analysis import landscape
from losslab.core import sigmoid, sigmoid_grad, softmax, softmax_jacobian
from losslab.i18n import Message

# C4 and C5 are declared in their own module; importing it here declares them with the others.
from losslab.report.stall import claim_c4, claim_c5, stall_audit  # noqa: F401
from losslab.report.verdicts import (
    Claim,
    Evidence,
    cell_name,
    chosen_word,
    decide,
    declare,
)
from losslab.report.wording import accuracy_text, pct

SATURATION_RANGE = (10.0, 50.0)  # C1: |logit| (sigmoid) and rival lead (softmax, K = 10) checked for saturation


# --- claims decided by the analysis ------------------------------------------------------------------------


def _flat_from(x: np.ndarray, values: np.ndarray, epsilon: float) -> float:
    """The smallest grid x from which ``values`` stay below epsilon up to the end of the grid (inf: never)."""
    below = values < epsilon
    if not below[-1]:
        return math.inf
    live = np.nonzero(~below)[0]
    return float(x[0] if live.size == 0 else x[live[-1] + 1])


@declare("C1", order=1, figures=("sigmoid", "gradient-norm"))
def claim_c1(ev: Evidence) -> Claim:
    """Supported if all three hold, measured in float64 on losslab's own link functions; not supported otherwise.
    (a) Outputs are probabilities: sigmoid(z) and softmax(z) lie in [0, 1], and softmax rows sum to 1 within
    1e-12, for logits up to +-1e4. (b) The sigmoid saturates: sigmoid'(x) < epsilon at every x with
    10 <= |x| <= 50 (2,001 points per side). (c) The softmax saturates: with K = 10 and a rival class
    m logits ahead of the others, the Frobenius norm of the softmax Jacobian, and the MSE logit gradient
    J^T (p - y) it produces, are < epsilon for every m in [10, 50]. epsilon: the runs' dead-zone threshold
    (dead_epsilon; 1e-3 by default). The range starts at 10, the smallest confidently wrong logit scale of
    the saturation experiment."""
    eps = ev.dead_epsilon()
    lo, hi = SATURATION_RANGE
    z = torch.tensor([-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4], dtype=torch.float64)
    zk = torch.stack([z, -z, z / 2, torch.zeros_like(z)], dim=-1)
    p, s = sigmoid(z), softmax(zk)
    outputs_ok = bool(
        ((p >= 0) & (p <= 1)).all() and ((s >= 0) & (s <= 1)).all() and ((s.sum(-1) - 1).abs() <= 1e-12).all()
    )
    x = np.linspace(lo, hi, 2001)
    d_pos = sigmoid_grad(torch.from_numpy(x)).numpy()
    d_neg = sigmoid_grad(torch.from_numpy(-x)).numpy()
    sigmoid_max = float(max(d_pos.max(), d_neg.max()))
    logits = landscape.margin_logits(-x, 10)
    jacobian = softmax_jacobian(logits).flatten(-2).norm(dim=-1).numpy()
    grad = landscape.gradient_norm_vs_margin("mse", -x, 10)
    softmax_max = float(max(jacobian.max(), grad.max()))
    ok = outputs_ok and sigmoid_max < eps and softmax_max < eps
    grid = np.linspace(0.0, hi, 5001)
    sig_from = _flat_from(grid, sigmoid_grad(torch.from_numpy(grid)).numpy(), eps)
    jac_from = _flat_from(
        grid, softmax_jacobian(landscape.margin_logits(-grid, 10)).flatten(-2).norm(dim=-1).numpy(), eps
    )
    return Claim(
        "C1",
        Message("claim.C1.title"),
        "supported" if ok else "not supported",
        [
            Message("claim.C1.outputs", answer=Message("word.yes" if outputs_ok else "word.NO")),
            *(
                Message(
                    f"claim.C1.{link}",
                    lo=f"{lo:g}",
                    hi=f"{hi:g}",
                    largest=f"{largest:.1e}",
                    threshold=f"{eps:g}",
                    flat_from=f"{flat_from:.2f}",
                )
                for link, largest, flat_from in (("sigmoid", sigmoid_max, sig_from), ("softmax", softmax_max, jac_from))
            ),
        ],
        figures=["sigmoid", "gradient-norm"],
        basis="analysis",
    )


def _sigmoid_flat_threshold(epsilon: float) -> float:
    """|x| beyond which sigmoid'(x) < epsilon, by derivation: s (1 - s) = epsilon has the small root
    s = (1 - sqrt(1 - 4 epsilon)) / 2, and x = -log(s / (1 - s))."""
    s = (1 - math.sqrt(1 - 4 * epsilon)) / 2
    return -math.log(s / (1 - s))


@declare("C3", order=3, figures=("sigmoid", "binary-gradient"), helpers=(_sigmoid_flat_threshold,))
def claim_c3(ev: Evidence) -> Claim:
    """Supported if the measured sigmoid derivative (losslab.core.sigmoid_grad, float64, 20,001 points on
    [-50, 50]) is below epsilon on one interval at each end of the range, each end's interval at least as
    long as the live interval around 0 where the derivative is >= epsilon ("wide ranges on both sides"), and
    the measured boundaries agree with the derived one (below) within one grid step. Not supported otherwise.
    epsilon: the runs' dead-zone threshold (dead_epsilon; 1e-3 by default)."""
    eps = ev.dead_epsilon()
    x = np.linspace(-50.0, 50.0, 20001)
    step = x[1] - x[0]
    below = sigmoid_grad(torch.from_numpy(x)).numpy() < eps
    exact = _sigmoid_flat_threshold(eps)
    live = np.nonzero(~below)[0]
    if live.size == 0 or below.all():
        ok, left, right, measured = False, 0.0, 0.0, (math.nan, math.nan)
    else:
        first, last = live[0], live[-1]
        one_live_interval = not below[first : last + 1].any()
        left, right = x[first] - x[0], x[-1] - x[last]  # lengths of the flat ends
        measured = (float(x[first]), float(x[last]))
        width = measured[1] - measured[0]
        ok = (
            one_live_interval
            and min(left, right) >= width
            and abs(-measured[0] - exact) <= step
            and abs(measured[1] - exact) <= step
        )
    fraction = 1 - (~below).mean()
    binary_mse = landscape.dead_zone("mse", epsilon=eps)
    bce = landscape.dead_zone("binary_cross_entropy", epsilon=eps)
    evidence = [
        Message(
            "claim.C3.measured",
            threshold=f"{eps:g}",
            left_end=f"{measured[0]:.2f}",
            right_end=f"{measured[1]:.2f}",
            fraction=pct(fraction),
            left=f"{left:.1f}",
            right=f"{right:.1f}",
            middle=f"{measured[1] - measured[0]:.1f}",
            derived=f"{exact:.3f}",
        ),
        Message("claim.C3.dead_zones", mse=binary_mse.describe(), bce=bce.describe()),
    ]
    return Claim(
        "C3",
        Message("claim.C3.title"),
        "supported" if ok else "not supported",
        evidence,
        figures=["sigmoid", "binary-gradient"],
        basis="analysis",
    )


# --- claims decided by the equation ledger -----------------------------------------------------------------


def _ledger_claim(
    ev: Evidence,
    claim_id: str,
    title: str,
    equations: set[str],
    evidence: str,
    when_holds: str = "supported",
    caveat: str = "",
    figures: tuple[str, ...] = (),
) -> Claim:
    """A claim decided by equation-ledger rows is supported (with caveat where the text above says so)
    if every listed row holds, is an erratum (the corrected form holds) or is a transcription (its
    mathematics holds); not supported otherwise."""
    ok, err = ev.ledger_status(equations)
    return Claim(
        claim_id,
        title,
        when_holds if ok else "not supported",
        [Message(evidence, err=f"{err:.1e}")],
        caveat,
        list(figures),
        basis="equation ledger",
    )


def _declare_ledger_claim(claim_id: str, equations: set[str], rule: str, caveat: bool = False, figures=()) -> None:
    """Declare the claim ``claim_id`` decided by ``_ledger_claim`` on ``equations``; ``rule``: its printed rule (the
    function's docstring, which the catalogues translate under ``rule.claim_<id>``); ``caveat``: 'supported with
    caveat' when they hold, the caveat being the catalogue's ``claim.<id>.caveat``."""

    def decide(ev: Evidence) -> Claim:
        return _ledger_claim(
            ev,
            claim_id,
            Message(f"claim.{claim_id}.title"),
            equations,
            f"claim.{claim_id}.evidence",
            when_holds="supported with caveat" if caveat else "supported",
            caveat=Message(f"claim.{claim_id}.caveat") if caveat else "",
            figures=figures,
        )

    decide.__name__ = decide.__qualname__ = f"claim_{claim_id.lower()}"
    decide.__doc__ = rule
    globals()[decide.__name__] = declare(claim_id, order=int(claim_id[1:]), figures=figures, helpers=(_ledger_claim,))(
        decide
    )


_declare_ledger_claim(
    "C2",
    {"1", "2", "3", "4"},
    """Equation-ledger rows 1-4 (sympy and float64 checks of the sigmoid and its derivative).""",
    figures=("sigmoid",),
)
_declare_ledger_claim(
    "C6",
    {"26", "27", "28", "29", "30", "31"},
    """Equation-ledger rows 26-31; 'supported with caveat' because the caveat below is a derivation:
    the identity is a Gaussian likelihood, not a prior.""",
    caveat=True,
)
_declare_ledger_claim(
    "C7",
    {"5", "8", "19", "25"},
    """Equation-ledger rows 5, 8, 19 and 25 (Bernoulli and multinomial likelihoods against scipy.stats).""",
)
_declare_ledger_claim(
    "C10",
    {"19", "20", "21", "22", "23", "24", "25"},
    """Equation-ledger rows 19-25 (the multinomial log-likelihood, its maximiser by sympy, the CE identity).""",
)


@declare("C11", order=11, roles=("loss-comparison",))
def claim_c11(ev: Evidence) -> Claim:
    """Equation-ledger row 31: 'supported with caveat' if it holds (the caveat is a derivation: the K outputs
    sum to 1, so they cannot be independent Gaussians), not supported otherwise. The comparison rows only
    add numbers (each loss at its learning rate chosen on validation); they do not decide this verdict."""
    ok, err = ev.ledger_status({"31"})
    evidence = [Message("claim.C11.identity", err=f"{err:.1e}")]
    grids = ev.role_grids("loss-comparison")
    several = len({g.spec for g in grids}) > 1
    for grid in grids:
        for condition in grid.conditions:
            m, c = condition.arm("mse"), condition.arm("cross_entropy")
            if m is None or c is None or not (m.members and c.members):
                continue
            evidence.append(
                Message(
                    "claim.C11.cell",
                    cell=cell_name(grid, condition, several),
                    chosen_on=chosen_word(m.choice.chosen_on),
                    acc_mse=accuracy_text(m.accuracy),
                    acc_ce=accuracy_text(c.accuracy),
                    nll_mse=f"{m.metrics['test_nll'].mean:.3f}",
                    nll_ce=f"{c.metrics['test_nll'].mean:.3f}",
                    ece_mse=f"{m.metrics['test_ece'].mean:.3f}",
                    ece_ce=f"{c.metrics['test_ece'].mean:.3f}",
                )
            )
    return Claim(
        "C11",
        Message("claim.C11.title"),
        "supported with caveat" if ok else "not supported",
        evidence,
        caveat=Message("claim.C11.caveat"),
        basis="equation ledger",
    )


@declare("C12", order=12)
def claim_c12(ev: Evidence) -> Claim:
    """Always 'not tested': losslab runs no regression data."""
    return Claim(
        "C12",
        Message("claim.C12.title"),
        "not tested",
        [Message("claim.C12.evidence")],
        basis="none",
    )


def verdicts(ev: Evidence) -> list[Claim]:
    """Every declared claim, decided (``verdicts.decide``), in the article's order."""
    return decide(ev, "claim")
