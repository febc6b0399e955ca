"""The report's method: range-respecting intervals, selection on validation, calibration summaries, and
verdicts that can come out every way (supported / not supported / not enough evidence / not tested).

Every frame here is built by ``synthetic_results`` with the columns of the current trainer, so each rule is
driven to each outcome without training.
"""

import math
import re

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import synthetic_results as R
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from losslab.experiments.spec import ROLES, SpecError, load_spec
from losslab.report import claims as C
from losslab.report import summaries as S
from losslab.report.html import render_report
from losslab.theory.ledger import verify_all

# --- intervals ---------------------------------------------------------------------------------------------

RANGES = {"proportion": (0.0, 1.0), "positive": (0.0, math.inf), "difference": (-1.0, 1.0)}


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(RANGES)),
    st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=12),
    st.booleans(),
)
def test_intervals_never_leave_their_range_and_contain_the_mean(kind, raw, mirrored):
    values = [2 * v - 1 if mirrored else v for v in raw] if kind == "difference" else raw
    if kind == "positive":
        values = [v * 3 for v in raw]  # NLL-like values above 1 too
    i = S.interval(values, kind)
    lo, hi = RANGES[kind]
    assert i.mean == pytest.approx(np.mean(values))
    if i.n >= 2:
        assert lo <= i.low <= i.mean <= i.high <= hi


@pytest.mark.parametrize("kind", ["proportion", "positive", "difference", "real"])
def test_interval_edge_cases(kind):
    equal = S.interval([0.9] * 5, kind)
    assert (equal.mean, equal.low, equal.high, equal.n) == (
        pytest.approx(0.9),
        pytest.approx(0.9),
        pytest.approx(0.9),
        5,
    )
    one = S.interval([0.4], kind)
    assert one.n == 1 and math.isnan(one.low) and not one.has_interval and not one.excludes_zero
    assert one.format(100, 1, "%") == "40.0% (n = 1)"
    empty = S.interval([float("nan")], kind)
    assert empty.n == 0 and empty.format() == "n/a"


def test_interval_at_the_bounds_and_with_two_seeds():
    # Every seed at 100%: no spread, the interval is the point (and never above 100%).
    top = S.interval([1.0] * 5, "proportion")
    assert (top.low, top.high) == (1.0, 1.0)
    # Some seeds at 100%: no continuity correction needed, the interval stays below 100%.
    near = S.interval([1.0, 1.0, 0.98], "proportion")
    assert near.high <= 1.0 and near.low < 0.98
    plain_high = np.mean([1.0, 1.0, 0.98]) + scipy.stats.t.ppf(0.975, 2) * np.std([1.0, 1.0, 0.98], ddof=1) / 3**0.5
    assert plain_high > 1.0  # what a plain t interval would have claimed
    # n = 2: the t quantile is 12.7, so wide, yet inside [0, 1].
    two = S.interval([0.5, 0.9], "proportion")
    assert 0.0 < two.low < 0.5 and 0.9 < two.high < 1.0
    # ECE near 0: never negative (a plain t interval would go below 0).
    ece = S.interval([0.001, 0.05, 0.002], "positive")
    assert 0 < ece.low < 0.001 and ece.high > 0.05
    zero = S.interval([0.0, 0.0, 0.0], "positive")
    assert (zero.low, zero.high) == (0.0, 0.0)
    # All differences at +1 (one loss always right, the other always wrong): the point.
    assert S.interval([1.0, 1.0], "difference").low == 1.0


def test_interval_far_from_the_bounds_is_the_usual_t_interval():
    values = [0.50, 0.52, 0.49, 0.51, 0.50, 0.53]
    i = S.interval(values, "proportion")
    half = scipy.stats.t.ppf(0.975, 5) * np.std(values, ddof=1) / 6**0.5
    assert i.low == pytest.approx(np.mean(values) - half, abs=2e-4)
    assert i.high == pytest.approx(np.mean(values) + half, abs=2e-4)
    real = S.interval(values, "real")
    assert real.low == pytest.approx(np.mean(values) - half, rel=1e-12)


def test_interval_rejects_values_outside_its_range_and_unknown_kinds():
    with pytest.raises(ValueError, match=r"values must lie in \[0, 1\] for a proportion interval, got \[1\.5\]"):
        S.interval([0.5, 1.5], "proportion")
    with pytest.raises(ValueError, match=r"values must lie in \[0, inf\] for a positive interval, got \[-0\.1\]"):
        S.interval([-0.1, 0.2], "positive")
    with pytest.raises(ValueError, match=r"kind must be one of proportion, positive, difference, real, got 'logit'"):
        S.interval([0.5], "logit")


def test_bootstrap_interval_is_a_percentile_interval_of_replicate_means():
    rng = np.random.default_rng(0)
    shared = rng.standard_normal(1000)
    members = [np.clip(0.03 + 0.01 * shared + 0.001 * rng.standard_normal(1000), 0, None) for _ in range(4)]
    i = S.bootstrap_interval(members, point=0.03)
    means = np.mean(members, axis=0)
    assert i.mean == 0.03 and i.n == 4
    assert i.low == pytest.approx(np.percentile(means, 2.5)) and i.high == pytest.approx(np.percentile(means, 97.5))
    assert i.low >= 0  # percentiles of non-negative replicates stay non-negative
    assert S.bootstrap_interval([None, float("nan")], 0.1).n == 0  # rows without replicates
    with pytest.raises(ValueError, match=r"replicates must have the same length for every member.*\[3, 4\]"):
        S.bootstrap_interval([[1, 2, 3], [1, 2, 3, 4]])


def test_reliability_bins_are_aggregated_over_seeds_weighted_by_count():
    nan = float("nan")
    bins = S.RELIABILITY_BINS
    a_count, b_count = [0.0] * bins, [0.0] * bins
    a_conf, b_conf, a_acc, b_acc = [nan] * bins, [nan] * bins, [nan] * bins, [nan] * bins
    a_count[14], a_conf[14], a_acc[14] = 30, 0.98, 0.9
    b_count[14], b_conf[14], b_acc[14] = 10, 0.94, 0.5
    b_count[7], b_conf[7], b_acc[7] = 5, 0.5, 0.4
    group = pd.DataFrame(
        {"rel_count": [a_count, b_count], "rel_confidence": [a_conf, b_conf], "rel_accuracy": [a_acc, b_acc]}
    )
    table = S.reliability(group)
    assert table.loc[14, "count"] == 40
    assert table.loc[14, "confidence"] == pytest.approx((30 * 0.98 + 10 * 0.94) / 40)
    assert table.loc[14, "accuracy"] == pytest.approx((30 * 0.9 + 10 * 0.5) / 40)
    assert table.loc[7, "accuracy"] == pytest.approx(0.4) and np.isnan(table.loc[0, "accuracy"])
    assert table["lower"].iloc[-1] == pytest.approx(14 / 15) and table["upper"].iloc[-1] == 1.0


# --- selection on validation -------------------------------------------------------------------------------


def test_learning_rate_is_chosen_on_validation_not_on_test():
    # CE's test accuracy is best at lr 0.3, its validation accuracy at 0.1: the report must take 0.1,
    # and report the test accuracy measured at 0.1.
    manifest, rows = R.comparison(
        {"digits": {"cross_entropy": {0.03: (0.90, 0.90), 0.1: (0.97, 0.93), 0.3: (0.94, 0.98)}}}
    )
    table = S.selection_table(rows).iloc[0]
    assert table["best_lr"] == 0.1 and table["chosen_on"] == "validation"
    assert table["accuracy"].mean == pytest.approx(0.93, abs=0.01)
    assert not table["best_at_edge"]
    chosen = S.selected_rows(rows)
    assert set(chosen["lr"]) == {0.1} and len(chosen) == 6


def test_selection_ties_go_to_lower_validation_nll_then_the_smaller_rate():
    manifest, rows = R.comparison({"digits": {"cross_entropy": {0.03: 0.95, 0.1: 0.95, 0.3: 0.95}}}, seeds=3)
    rows["val_accuracy"] = rows["val_accuracy"].where(rows["step"] == 0, 0.95)  # exact tie
    assert S.selection_table(rows).iloc[0]["best_lr"] == 0.03  # tie, same NLL: the smaller rate
    final = rows["step"] > 0
    rows.loc[final & (rows["lr"] == 0.3), "val_nll"] = 0.1
    assert S.selection_table(rows).iloc[0]["best_lr"] == 0.3  # tie on accuracy: the lower validation NLL
    assert S.selection_table(rows).iloc[0]["edge"] == "high"


def test_without_validation_the_choice_falls_back_to_test_and_says_so():
    _, rows = R.comparison({"digits": {"cross_entropy": {0.03: (0.9, 0.90), 0.1: (0.9, 0.95)}}}, validation=False)
    row = S.selection_table(rows).iloc[0]
    assert row["chosen_on"] == "test (no validation split)" and row["best_lr"] == 0.1 and row["edge"] == "high"
    _, one = R.comparison({"digits": {"cross_entropy": {0.1: 0.9}}})
    assert S.selection_table(one).iloc[0]["chosen_on"] == "only setting"


def test_lr_ratio_is_a_value_inside_the_grids_and_a_bound_at_their_edges():
    grid = [0.01, 0.03, 0.1, 0.3, 1.0]
    inside = S.lr_ratio(
        {"best_lr": 0.3, "lrs_tried": grid, "edge": None}, {"best_lr": 0.1, "lrs_tried": grid, "edge": None}
    )
    assert inside["bound"] == "value" and inside["ratio"] == pytest.approx(3.0)
    # Both rates inside grids of steps sqrt(10) apart on average: half a step each way, a factor sqrt(10) in all.
    assert inside["low"] == pytest.approx(3 / math.sqrt(10)) and inside["high"] == pytest.approx(3 * math.sqrt(10))
    top = S.lr_ratio(
        {"best_lr": 1.0, "lrs_tried": grid, "edge": "high"}, {"best_lr": 0.1, "lrs_tried": grid, "edge": None}
    )
    assert top["bound"] == "lower bound" and top["high"] == math.inf and top["low"] > 0
    bottom = S.lr_ratio(
        {"best_lr": 0.01, "lrs_tried": grid, "edge": "low"}, {"best_lr": 0.1, "lrs_tried": grid, "edge": float("nan")}
    )
    assert bottom["bound"] == "upper bound" and bottom["low"] == 0
    # MSE at the top and CE at the bottom both push the ratio up: still a lower bound.
    apart = S.lr_ratio(
        {"best_lr": 1.0, "lrs_tried": grid, "edge": "high"}, {"best_lr": 0.01, "lrs_tried": grid, "edge": "low"}
    )
    assert apart["bound"] == "lower bound" and apart["low"] == pytest.approx(100 / math.sqrt(10 / 3 * 3))
    # Both at the top: each best rate may lie anywhere above its grid, so the ratio is unbounded both ways.
    both = S.lr_ratio(
        {"best_lr": 1.0, "lrs_tried": grid, "edge": "high"}, {"best_lr": 1.0, "lrs_tried": grid, "edge": "high"}
    )
    assert both["bound"] == "none" and both["low"] == 0 and both["high"] == math.inf


# --- verdicts ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ledger():
    return verify_all(seed=0, trials=10)


def evidence(ledger, *runs):
    return C.Evidence(ledger, {manifest["spec"]: (manifest, rows) for manifest, rows in runs})


def test_c1_and_c3_are_computed_and_can_fail(ledger, monkeypatch):
    ev = evidence(ledger)
    assert C.claim_c1(ev).verdict == "supported" and C.claim_c3(ev).verdict == "supported"
    assert "6.91" in " ".join(C.claim_c3(ev).evidence)
    # A sigmoid whose derivative never falls below 1e-3 would not saturate: both claims must say so.
    monkeypatch.setattr(C, "sigmoid_grad", lambda x: torch.full_like(x, 0.01))
    assert C.claim_c1(ev).verdict == "not supported" and C.claim_c3(ev).verdict == "not supported"
    # Flat only beyond |x| = 30: the flat ends (20) are shorter than the live middle (60), and the boundary
    # disagrees with the derivation.
    monkeypatch.setattr(C, "sigmoid_grad", lambda x: torch.where(x.abs() > 30, 0.0, 0.1).double())
    assert C.claim_c3(ev).verdict == "not supported"
    monkeypatch.undo()
    monkeypatch.setattr(C, "softmax_jacobian", lambda z: torch.ones(*z.shape, z.shape[-1], dtype=z.dtype))
    assert C.claim_c1(ev).verdict == "not supported"


def test_dead_zone_threshold_comes_from_the_run(ledger):
    manifest, rows = saturation_run(mse_top=0.40, ce_top=0.95, dead=0.5)
    manifest["spec_data"]["train"] = {"dead_epsilon": 1e-4}
    ev = evidence(ledger, (manifest, rows))
    assert ev.dead_epsilon() == 1e-4
    text = " ".join(C.claim_c5(ev).evidence)
    assert "|dL/dz| < 0.0001 under MSE" in text and "1e-3" not in text
    assert "threshold 0.0001" in " ".join(C.claim_c1(ev).evidence)
    # A grid's own train table overrides the spec's, as the spec expansion merges them.
    manifest["spec_data"]["grid"][0]["train"] = {"dead_epsilon": 0.01}
    assert "|dL/dz| < 0.01 under MSE" in " ".join(C.claim_c5(evidence(ledger, (manifest, rows))).evidence)


def saturation_run(mse_top, ce_top, dead, base_gap=0.0, seeds=6, role="saturation-softmax", binary=False):
    """A saturation grid: MSE and CE from a normal start (scale 1) and a confidently wrong one (scale 100)."""
    ce = "binary_cross_entropy" if binary else "cross_entropy"
    rows, member = [], 0
    for loss, top in (("mse", mse_top), (ce, ce_top)):
        for scale, acc in ((1.0, 0.95 - (base_gap if loss == "mse" else 0.0)), (100.0, top)):
            new = R.grid_rows(
                "sat-cell",
                {loss: {0.1: acc}},
                seeds=seeds,
                start=member,
                init_scale=scale,
                dead_fraction=dead if (loss == "mse" and scale == 100.0) else 0.0,
                num_classes=2 if binary else 10,
            )
            member += len(new)
            rows += new
    grid = {"label": "sat-cell", "role": role, "target_accuracy": 0.9}
    return R.results("my-saturation", rows, [grid])


@pytest.mark.parametrize(
    "case, expected",
    [
        (dict(mse_top=0.40, ce_top=0.95, dead=0.5), "supported with caveat"),  # stalls only from the wrong start
        (dict(mse_top=0.40, ce_top=0.95, dead=0.5, base_gap=0.2), "supported"),  # worse from both starts
        (dict(mse_top=0.95, ce_top=0.95, dead=0.5), "not supported"),  # no stall
        (dict(mse_top=0.40, ce_top=0.95, dead=0.0), "not tested"),  # the premise (dead examples) is absent
        (dict(mse_top=0.40, ce_top=0.95, dead=0.5, seeds=3), "not enough evidence"),  # fewer than 5 seeds
        (dict(mse_top=0.40, ce_top=0.95, dead=0.5, seeds=2), "not enough evidence"),  # a smoke run
    ],
)
def test_c5_stall_rule_each_way(ledger, case, expected):
    assert C.claim_c5(evidence(ledger, saturation_run(**case))).verdict == expected


def test_c4_reads_the_binary_role_and_an_undecided_interval_is_not_enough_evidence(ledger):
    binary = saturation_run(0.40, 0.95, 0.5, role="saturation-binary", binary=True)
    ev = evidence(ledger, binary)
    assert C.claim_c4(ev).verdict == "supported with caveat"
    assert C.claim_c5(ev).verdict == "not tested"  # no softmax grid
    # CE - MSE of about 1 point with a wide spread: the interval straddles 0 and +2 points.
    manifest, rows = saturation_run(0.94, 0.95, 0.5, role="saturation-binary", binary=True)
    final = (rows["step"] > 0) & (rows["init_scale"] == 100.0) & (rows["loss"] == "mse")
    rows.loc[final, "test_accuracy"] += np.tile([0.05, -0.05, 0.04, -0.04, 0.03, -0.03], 1)
    claim = C.claim_c4(evidence(ledger, (manifest, rows)))
    assert claim.verdict == "not enough evidence" and "straddles" in " ".join(claim.evidence)


def test_claims_read_grids_by_role_not_by_label(ledger):
    manifest, rows = saturation_run(0.40, 0.95, 0.5)
    manifest["spec_data"]["grid"][0]["role"] = None  # a user's spec grid without a role: read by no claim
    assert C.claim_c5(evidence(ledger, (manifest, rows))).verdict == "not tested"
    # An old built-in manifest without roles: roles come from the built-in spec, by label, and the report says so.
    old_manifest, old_rows = saturation_run(0.40, 0.95, 0.5)
    old_manifest["spec"] = "saturation"
    old_manifest["spec_data"]["grid"] = [{"label": "mlp-digits", "target_accuracy": 0.9}]
    old_rows["grid"] = "mlp-digits"
    ev = evidence(ledger, (old_manifest, old_rows))
    assert C.claim_c5(ev).verdict == "supported with caveat"
    assert any("predates grid roles" in n for n in ev.notes)


def test_every_role_the_claims_read_is_a_spec_role_and_the_builtin_specs_set_them():
    import inspect

    source = inspect.getsource(C)
    used = set(re.findall(r"role_rows\(\s*\"([a-z-]+)\"", source)) | set(C.MNIST1D_PUBLISHED)
    used |= set(re.findall(r"\(\"(warm-start|from-scratch)\", \"", source))
    assert used <= set(ROLES), used - set(ROLES)
    assert {"saturation-binary", "saturation-softmax", "loss-comparison", "warm-start", "from-scratch"} <= used
    for name in ("saturation", "comparison", "classes", "warmstart"):
        assert all(g.get("role") in ROLES for g in load_spec(name).data["grid"]), name


def test_a_spec_with_an_unknown_role_is_rejected(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n[[grid]]\nlabel = "a"\nrole = "warmstart"\ndataset = "digits"\nlosses = ["mse"]\n')
    with pytest.raises(
        SpecError, match=r"bad\.toml: grid\[0\]\.role: unknown role 'warmstart'; valid roles: .*warm-start"
    ):
        load_spec(path)


def comparison_run(mse_lrs, ce_lrs, square_gap=0.0, seeds=6, validation=True, cells=("digits",), square_lr=0.1):
    """A comparison where each loss's validation accuracy peaks at the given rate."""

    def peaked(lrs, best, level):
        return {lr: (level - (0.0 if lr == best else 0.03), level - (0.0 if lr == best else 0.03)) for lr in lrs}

    grid = [0.01, 0.03, 0.1, 0.3, 1.0]
    by_cell = {
        cell: {
            "cross_entropy": peaked(grid, ce_lrs, 0.95),
            "mse": peaked(grid, mse_lrs, 0.94),
            "square_logits": peaked(grid, square_lr, 0.95 - square_gap),
        }
        for cell in cells
    }
    return R.comparison(by_cell, seeds=seeds, validation=validation)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(mse_lrs=0.3, ce_lrs=0.1), "agrees"),  # 3x inside both grids
        (dict(mse_lrs=0.03, ce_lrs=0.3), "disagrees"),  # MSE's rate a tenth of CE's
        (dict(mse_lrs=1.0, ce_lrs=0.1), "agrees"),  # MSE at the top of its grid: a lower bound (>= 3.2) that overlaps
        (dict(mse_lrs=0.3, ce_lrs=0.1, seeds=4), "not enough evidence"),
        (dict(mse_lrs=0.3, ce_lrs=0.1, validation=False), "not enough evidence"),  # chosen on test
        (dict(mse_lrs=1.0, ce_lrs=0.01), "disagrees"),  # a lower bound of about 30x
        (dict(mse_lrs=1.0, ce_lrs=1.0), "not enough evidence"),  # both at the top: no bound at all
    ],
)
def test_nielsen_learning_rate_ratio_each_way(ledger, kwargs, expected):
    finding = C.finding_nielsen_lr(evidence(ledger, comparison_run(**kwargs)))
    assert finding.verdict == expected, finding.evidence


def test_nielsen_ratio_mixed_and_not_tested(ledger):
    a = comparison_run(0.3, 0.1, cells=("digits",))
    b = comparison_run(0.03, 0.3, cells=("mnist1d",))
    both = (
        a[0] | {"spec_data": {"grid": a[0]["spec_data"]["grid"] + b[0]["spec_data"]["grid"]}},
        pd.concat([a[1], b[1]]),
    )
    assert C.finding_nielsen_lr(evidence(ledger, both)).verdict == "mixed"
    assert C.finding_nielsen_lr(evidence(ledger)).verdict == "not tested"


@pytest.mark.parametrize(
    "gap, seeds, validation, expected",
    [
        (0.0, 6, True, "agrees"),  # the square loss matches CE
        (0.10, 6, True, "disagrees"),  # 10 points worse
        (0.0, 3, True, "not enough evidence"),
        (0.0, 6, False, "not enough evidence"),
    ],
)
def test_hui_belkin_each_way(ledger, gap, seeds, validation, expected):
    run = comparison_run(0.3, 0.1, square_gap=gap, seeds=seeds, validation=validation)
    assert C.finding_hui_belkin(evidence(ledger, run)).verdict == expected
    assert C.finding_hui_belkin(evidence(ledger)).verdict == "not tested"


@pytest.mark.parametrize(
    "kwargs, outcome",
    [
        # 'worse' with the square loss's best rate at the top of its grid: a higher rate might close the gap
        (dict(square_gap=0.10, square_lr=1.0), "square_logits's learning rate is the highest tried"),
        # 'matches' with CE's best rate at the bottom of its grid: a lower rate might make CE better
        (dict(square_gap=0.0, ce_lrs=0.01), "cross_entropy's learning rate is the lowest tried"),
    ],
)
def test_hui_belkin_is_undecided_where_the_loss_that_could_overturn_it_sits_at_its_grid_edge(ledger, kwargs, outcome):
    run = comparison_run(**{"mse_lrs": 0.3, "ce_lrs": 0.1} | kwargs)
    finding = C.finding_hui_belkin(evidence(ledger, run))
    assert finding.verdict == "not enough evidence" and outcome in str(finding.evidence[0])
    # The edge that cannot overturn the outcome does not matter: CE at its edge while the square loss is worse.
    worse = comparison_run(0.3, 0.01, square_gap=0.10)
    assert C.finding_hui_belkin(evidence(ledger, worse)).verdict == "disagrees"


def test_hui_belkin_mixed_when_datasets_disagree_and_cells_of_two_specs_stay_apart(ledger):
    good = comparison_run(0.3, 0.1, square_gap=0.0, cells=("digits",))
    bad = comparison_run(0.3, 0.1, square_gap=0.10, cells=("digits",))
    bad[0]["spec"] = "comparison-cnn"  # the same cell name in another spec
    ev = evidence(ledger, good, bad)
    assert set(ev.role_rows("loss-comparison")["cell"]) == {"comparison/digits", "comparison-cnn/digits"}
    assert C.finding_hui_belkin(ev).verdict == "mixed"


def warmstart_run(warm_gain, scratch_gap, seeds=5, roles=("warm-start", "from-scratch"), ce_grid=(0.03,)):
    rows = []
    if "warm-start" in roles:
        ce = {lr: 0.75 if lr == 0.03 else 0.70 for lr in ce_grid}
        rows += R.grid_rows(
            "continue", {"cross_entropy": ce, "mse": {0.03: 0.70, 0.1: 0.75 + warm_gain, 0.3: 0.70}}, seeds=seeds
        )
    if "from-scratch" in roles:
        rows += R.grid_rows(
            "scratch", {"cross_entropy": {0.1: 0.74}, "mse": {0.3: 0.74 - scratch_gap}}, seeds=seeds, start=500
        )
    grids = [
        {"label": label, "role": role}
        for label, role in (("continue", "warm-start"), ("scratch", "from-scratch"))
        if role in roles
    ]
    return R.results("golik", rows, grids)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(warm_gain=0.02, scratch_gap=0.10), "agrees"),
        (dict(warm_gain=0.0, scratch_gap=0.0), "disagrees"),  # no gain, not stuck
        (dict(warm_gain=0.02, scratch_gap=0.0), "mixed"),  # improves, but MSE from scratch is fine
        (dict(warm_gain=0.02, scratch_gap=0.10, seeds=3), "not enough evidence"),
        (dict(warm_gain=0.02, scratch_gap=0.10, roles=("warm-start",)), "not tested"),  # half the statement untested
        (dict(warm_gain=0.0, scratch_gap=0.10, roles=("warm-start",)), "disagrees"),  # the half tested is false
    ],
)
def test_golik_each_way_and_missing_evidence_is_never_mixed(ledger, kwargs, expected):
    finding = C.finding_golik(evidence(ledger, warmstart_run(**kwargs)))
    assert finding.verdict == expected, finding.evidence
    assert C.finding_golik(evidence(ledger)).verdict == "not tested"


def test_golik_part_is_undecided_where_the_loss_that_could_overturn_it_sits_at_its_grid_edge(ledger):
    # MSE continued beats CE continued ('yes'), but CE's best rate is the lowest of its grid: undecided.
    at_edge = C.finding_golik(evidence(ledger, warmstart_run(0.02, 0.10, ce_grid=(0.03, 0.1))))
    assert at_edge.verdict == "not enough evidence"
    assert "cross_entropy's learning rate is the lowest tried" in str(at_edge.evidence[0])
    inside = C.finding_golik(evidence(ledger, warmstart_run(0.02, 0.10, ce_grid=(0.01, 0.03, 0.1))))
    assert inside.verdict == "agrees", inside.evidence


def reference_run(accuracies, seeds=5, noise=0.01):
    rows, grids = [], []
    for role, acc in accuracies.items():
        rows += R.grid_rows(
            role,
            {"cross_entropy": {0.01: acc}, "mse": {0.01: acc - 0.05}},
            seeds=seeds,
            start=len(rows),
            dataset="mnist1d",
            noise=noise,
        )
        grids.append({"label": role, "role": role})
    return R.results("mnist1d-reference", rows, grids)


def test_mnist1d_reproduction_uses_a_tolerance_tied_to_the_spread(ledger):
    agree = {"reference-linear": 0.325, "reference-mlp": 0.675, "reference-cnn": 0.94}
    ev = evidence(ledger, reference_run(agree))
    table = C.reproduction_table(ev)
    assert list(table["published"]) == [0.32, 0.68, 0.94] and set(table["outcome"]) == {"agrees"}
    values = C.S.selected_rows(ev.role_rows("reference-mlp"))
    values = values[values["loss_label"] == "cross_entropy"]["test_accuracy"]
    n = len(values)
    expected = scipy.stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) * math.sqrt(1 + 1 / n) + 0.005
    assert table.set_index("role").loc["reference-mlp", "tolerance"] == pytest.approx(expected)
    assert C.finding_mnist1d(ev).verdict == "agrees"
    far = evidence(ledger, reference_run({"reference-linear": 0.40, "reference-mlp": 0.55}))
    assert C.finding_mnist1d(far).verdict == "disagrees"
    some = evidence(ledger, reference_run({"reference-linear": 0.32, "reference-mlp": 0.55}))
    assert C.finding_mnist1d(some).verdict == "mixed"
    thin = evidence(ledger, reference_run(agree, seeds=4))
    assert C.finding_mnist1d(thin).verdict == "not enough evidence"
    assert C.finding_mnist1d(evidence(ledger)).verdict == "not tested"


def test_brier_finding_is_computed_and_can_fail(ledger, monkeypatch):
    ev = evidence(ledger)
    assert C.finding_brier(ev).verdict == "agrees"
    monkeypatch.setattr(
        C, "mse_loss", lambda z, y: 0.51 * ((torch.softmax(z, -1) - torch.eye(z.shape[-1])[y]) ** 2).sum(-1).mean()
    )
    assert C.finding_brier(ev).verdict == "disagrees"  # eq. 31 x 2 no longer the Brier score
    monkeypatch.undo()
    # An improper score (expected score not minimised at p = q): the propriety check fails.
    monkeypatch.setattr(C, "_expected_brier", lambda ps, q: -(ps * q).sum(-1))
    assert C.finding_brier(ev).verdict == "disagrees"


def test_nielsen_saturation_finding_follows_c5(ledger):
    assert C.finding_nielsen_saturation(evidence(ledger, saturation_run(0.4, 0.95, 0.5))).verdict == "agrees"
    assert C.finding_nielsen_saturation(evidence(ledger, saturation_run(0.95, 0.95, 0.5))).verdict == "disagrees"
    assert (
        C.finding_nielsen_saturation(evidence(ledger, saturation_run(0.4, 0.95, 0.5, seeds=2))).verdict
        == "not enough evidence"
    )
    assert C.finding_nielsen_saturation(evidence(ledger)).verdict == "not tested"


def test_every_verdict_carries_its_rule(ledger):
    ev = evidence(ledger, comparison_run(0.3, 0.1))
    for item in [*C.verdicts(ev), *C.findings(ev)]:
        assert len(item.rule) > 40, item
    assert "stall rule" in next(c for c in C.verdicts(ev) if c.id == "C5").rule


# --- calibration summaries and the rendered report ---------------------------------------------------------


def test_calibration_and_bootstrap_tables_at_the_chosen_rate(ledger):
    _, rows = comparison_run(0.3, 0.1)
    table = S.calibration_table(rows).set_index("loss")
    square = table.loc["square_logits"]
    assert square["test_ece"].mean == pytest.approx(0.77) and square["test_ece_ts"].mean == pytest.approx(0.02)
    assert square["temperature"].mean == pytest.approx(1.4) and square["best_lr"] == 0.1
    assert all(table[m].iloc[0].low >= 0 for m, _ in S.CALIBRATION_METRICS)
    boot = S.bootstrap_table(rows).set_index("loss")
    ece = boot.loc["cross_entropy", "test_ece"]
    assert 0 <= ece.low < 0.03 < ece.high and ece.n == 6


def test_report_shows_validation_selection_calibration_and_reproduction(ledger):
    comparison = comparison_run(0.3, 0.1, cells=("digits", "mnist1d"))
    reference = reference_run({"reference-linear": 0.325, "reference-mlp": 0.675, "reference-cnn": 0.94})
    html, claims = render_report({"comparison": comparison, "mnist1d-reference": reference}, ledger)
    assert "Loss comparison (learning rates chosen on validation)" in html
    assert "Learning rate chosen on validation" in html and 'id="table-calibration"' in html
    assert 'id="fig-reliability-digits"' in html and 'id="fig-reliability-reference-mlp"' in html
    assert 'id="table-bootstrap"' in html and 'id="table-mnist1d-reference"' in html and 'id="table-lr-ratio"' in html
    assert "the comparison is fair" in html  # the table note on temperature scaling
    assert 'id="smoke-banner"' not in html and 'id="validation-banner"' not in html
    assert re.search(r"<td>mlp</td><td>reference-mlp</td><td>0.01</td><td>68%</td><td>65.1%</td><td>6\d\.\d% \[", html)
    # No accuracy interval anywhere in the page leaves [0, 100].
    for lo, hi in re.findall(r"\d+\.\d% \[(-?\d+\.\d), (-?\d+\.\d)\]", html):
        assert 0 <= float(lo) <= float(hi) <= 100


def test_report_flags_smoke_runs_at_the_top_and_test_selection(ledger):
    smoke = comparison_run(0.3, 0.1, seeds=2, validation=False)
    smoke[0]["size"] = "smoke"
    html, claims = render_report({"comparison": smoke}, ledger)
    banner = html.index('id="smoke-banner"')
    assert banner < html.index('id="verdict-summary"') < html.index('id="claims-ledger"')
    assert "Smoke run" in html and "losslab run comparison --smoke" in html
    assert (
        "No validation split in these results: learning rates chosen on test accuracy, which this report flags" in html
    )
    assert html.index('id="validation-banner"') < html.index('id="claims-ledger"')
    assert "Loss comparison (learning rates chosen on TEST accuracy: no validation split)" in html


def test_paired_differences_pair_seeds_within_a_cell_not_across_cells():
    from losslab.report import summaries as S

    rows = pd.DataFrame(
        {
            "cell": ["x", "x", "x", "x", "y", "y", "y", "y"],
            "seed": [0, 1, 0, 1, 0, 1, 0, 1],
            "loss_label": ["a", "a", "b", "b", "b", "b", "a", "a"],  # y lists its losses the other way round
            "test_accuracy": [0.9, 0.8, 0.7, 0.6, 0.5, 0.5, 0.6, 0.7],
        }
    )
    diff = S.paired_difference(rows, "test_accuracy", {"loss_label": "a"}, {"loss_label": "b"})
    assert diff.n == 4 and diff.mean == pytest.approx((0.2 + 0.2 + 0.1 + 0.2) / 4)
