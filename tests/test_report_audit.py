"""Every verdict rule's error rates at the built-in specs' designs: false agreement at most 5%, and power at least
80% where the spec is meant to decide; where a rule cannot reach that power, it says 'not enough evidence'.

The designs are those measured on full runs of the built-in specs (seeds per cell, the standard deviation of the
effect's per-seed influence values, the test set's standard error), recorded here so the test runs in seconds:
`losslab run saturation`, `warmstart`, `mnist1d-reference` and `comparison` (2-core AMD EPYC, torch 2.13.0+cpu,
December 2026), read by the report's own code (`report.audit.Design`, from each rule's `audit.designs`).
"""

import math

import pytest

from losslab.experiments.spec import load_spec
from losslab.report import audit as A
from losslab.report import claims as C
from losslab.report import findings as F
from losslab.report import reproduction as RP
from losslab.report.grids import DEFAULT_MARGIN

MARGIN = math.log(DEFAULT_MARGIN)

#: saturation: the confidently wrong cell of each softmax/sigmoid grid that meets the premise (scale 100).
STALL_DESIGNS = {
    "C4": [A.Design(8, 0.3933, 0.2598)],  # binary-digits (3 vs 8): 89 test examples
    "C5": [A.Design(8, 0.2115, 0.1510)],  # mlp-digits: 450 test examples (mlp-mnist1d does not meet the premise)
}
#: warmstart: MSE continued against CE continued (margin 1), CE against MSE from scratch (margin 1.25).
GOLIK_DESIGNS = ([A.Design(10, 0.0220, 0.0078)], [A.Design(10, 0.0596, 0.0232)])
#: mnist1d-reference: logistic regression, the MLP, the CNN (seed spreads; the published numbers share the test set).
REFERENCE_DESIGNS = [A.Design(5, 0.0436, 0.0), A.Design(5, 0.0491, 0.0), A.Design(5, 0.1983, 0.0)]
#: comparison: Hui & Belkin (square_logits against CE in each of the 7 cells: digits, mnist1d, mnist1d-cnn, mnist,
#: mnist-cnn, fashion-mnist, fashion-mnist-cnn) and Nielsen's rate ratio (the 5 cells with an estimate).
HUI_BELKIN_DESIGNS = [
    A.Design(10, 0.2282, 0.2429),
    A.Design(10, 0.1140, 0.0252),
    A.Design(10, 0.2794, 0.0517),
    A.Design(10, 0.0860, 0.0437),
    A.Design(10, 0.3131, 0.0390),
    A.Design(10, 0.0342, 0.0126),
    A.Design(10, 0.0612, 0.0127),
]
NIELSEN_DESIGNS = [A.Design(10, sd, 0.0) for sd in (0.4676, 0.1681, 0.1189, 0.1228, 0.1841)]


@pytest.mark.parametrize("claim", sorted(STALL_DESIGNS))
def test_the_stall_rule_at_the_saturation_spec(claim):
    designs = STALL_DESIGNS[claim]
    audit = C.stall_audit(claim, designs, [MARGIN] * len(designs))
    assert audit.false_agreement <= 0.05 and audit.power >= 0.80, audit
    seeds = {g["label"]: g["seeds"] for g in load_spec("saturation").data["grid"]}
    assert designs[0].seeds == seeds["binary-digits" if claim == "C4" else "mlp-digits"]


def test_golik_at_the_warmstart_spec():
    improves, stuck = GOLIK_DESIGNS
    margins = {g["label"]: g.get("margin", DEFAULT_MARGIN) for g in load_spec("warmstart").data["grid"]}
    parts = [
        F.golik_part(improves, [math.log(margins["from-ce"])], F.GOLIK_IMPROVES_EFFECT),
        F.golik_part(stuck, [math.log(margins["from-scratch"])], F.GOLIK_STUCK_EFFECT),
    ]
    audit = F.golik_audit(parts)
    assert audit.false_agreement <= 0.05 and audit.power >= 0.80, audit


def test_the_mnist1d_reproduction_at_its_spec():
    audit = RP.reproduction_audit(REFERENCE_DESIGNS, [MARGIN] * 3)
    assert audit.false_agreement <= 0.05 and audit.power >= 0.80, audit
    # The CNN alone, at five seeds, could not decide: its own reproduction needs more seeds, which the audit names.
    cnn = RP.reproduction_audit(REFERENCE_DESIGNS[2:], [MARGIN])
    assert cnn.power < 0.80 and cnn.seeds_needed and cnn.seeds_needed > 5


def test_hui_belkin_and_nielsen_at_the_comparison_spec():
    margins = [math.log(g.get("margin", DEFAULT_MARGIN)) for g in load_spec("comparison").data["grid"]]
    seeds = {g.get("seeds") for g in load_spec("comparison").data["grid"]}
    assert seeds == {10} and all(d.seeds == 10 for d in HUI_BELKIN_DESIGNS + NIELSEN_DESIGNS)
    hui_belkin = F.hui_belkin_audit(HUI_BELKIN_DESIGNS, [-m for m in margins])
    nielsen = F.nielsen_audit(NIELSEN_DESIGNS)
    for audit in (hui_belkin, nielsen):
        assert audit.false_agreement <= 0.05 and audit.power >= 0.80, audit


@pytest.mark.parametrize(
    "rule",
    [
        lambda d: C.stall_audit("C5", d, [MARGIN] * len(d)),
        lambda d: F.hui_belkin_audit(d, [-MARGIN] * len(d)),
        lambda d: F.nielsen_audit(d),
        lambda d: RP.reproduction_audit(d, [MARGIN] * len(d)),
    ],
)
@pytest.mark.parametrize("seeds, seed_sd, test_se", [(5, 0.05, 0.0), (10, 0.2, 0.05), (3, 0.5, 0.1)])
def test_no_rule_agrees_falsely_more_than_5_percent_of_the_time(rule, seeds, seed_sd, test_se):
    for cells in (1, 4):
        audit = rule([A.Design(seeds, seed_sd, test_se)] * cells)
        assert audit.false_agreement <= 0.05, audit
