"""The claims ledger: a verdict for each claim of the article, computed from the measurements.

Verdicts: "supported", "supported with caveat", "not supported", "not tested". Each is decided by
the rules written in its function below, from three sources: the equation ledger (``losslab
verify``), the exact gradient analysis (``losslab.analysis``) and the experiment results (rows read
from result folders). Nothing here is written in by hand: with other measurements, other verdicts.

Rules shared by the experiment-based claims: a cell tests the saturation claims only if at least
``DEAD_THRESHOLD`` of its training examples start in the dead zone under MSE (the claim's premise); in
such a cell MSE "stalls" when the paired per-seed difference CE - MSE in final test accuracy has a 95%
interval above zero. A difference "matters" when it exceeds ``PRACTICAL_DIFFERENCE`` (2 points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from losslab.analysis import landscape
from losslab.report import summaries as S

DEAD_THRESHOLD = 0.10
PRACTICAL_DIFFERENCE = 0.02
CE_COLLAPSE = 0.10  # cross-entropy "still trains" at a scale if within 10 points of its normal-start accuracy
VERDICTS = ("supported", "supported with caveat", "not supported", "not tested")


@dataclass
class Claim:
    id: str
    title: str
    verdict: str
    evidence: list[str] = field(default_factory=list)
    caveat: str = ""
    figures: list[str] = field(default_factory=list)


@dataclass
class Finding:
    source: str
    statement: str
    verdict: str  # agrees / disagrees / mixed / not tested
    evidence: list[str] = field(default_factory=list)


@dataclass
class Evidence:
    """Everything the verdicts are computed from."""

    ledger: list  # LedgerRow
    results: dict[str, tuple[dict, pd.DataFrame]]  # spec name -> (manifest, rows)

    def rows(self, spec: str) -> pd.DataFrame | None:
        entry = self.results.get(spec)
        return None if entry is None or entry[1].empty else entry[1]

    def targets(self, spec: str) -> dict[str, float]:
        manifest = self.results[spec][0]
        return {g.get("label"): g["target_accuracy"] for g in manifest["spec_data"]["grid"] if "target_accuracy" in g}

    def ledger_status(self, equations) -> tuple[bool, float]:
        rows = [r for r in self.ledger if r.equation in equations]
        ok = bool(rows) and all(r.status in ("holds", "erratum") for r in rows)
        errors = [r.max_error for r in rows if r.max_error is not None]
        return ok, max(errors) if errors else math.nan


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _sigmoid_flat_threshold(epsilon: float = 1e-3) -> float:
    """|x| beyond which sigmoid'(x) < epsilon: solve s (1 - s) = epsilon for the small root s."""
    s = (1 - math.sqrt(1 - 4 * epsilon)) / 2
    return -math.log(s / (1 - s))


# --- claims decided by the analysis and the equation ledger ---------------------------------------


def claim_c1(ev: Evidence) -> Claim:
    x = _sigmoid_flat_threshold()
    k10 = landscape.gradient_norm_vs_margin("mse", [-10.0], 10)[0]
    return Claim(
        "C1",
        "Classifiers map outputs to [0, 1] with sigmoid/softmax, and these maps saturate",
        "supported",
        [
            f"sigmoid'(x) = f(1 - f) peaks at 1/4 and is below 1e-3 for |x| > {x:.2f} (exact).",
            f"Softmax: with K = 10 and a rival class 10 logits ahead, the softmax Jacobian leaves an MSE "
            f"logit-gradient norm of {k10:.1e}.",
        ],
        figures=["sigmoid"],
    )


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
    """A claim decided by equation-ledger rows: ``when_holds`` if they all hold (or are errata), else not
    supported. ``evidence`` may use {err}, the largest numeric error of those rows."""
    ok, err = ev.ledger_status(equations)
    return Claim(
        claim_id, title, when_holds if ok else "not supported", [evidence.format(err=err)], caveat, list(figures)
    )


def claim_c2(ev: Evidence) -> Claim:
    return _ledger_claim(
        ev,
        "C2",
        "Sigmoid: f(x) = 1/(1 + e^-x), f'(x) = e^-x/(1 + e^-x)^2 = f(x)(1 - f(x)) (eq. 1-4)",
        {"1", "2", "3", "4"},
        "Equations 1-4 checked symbolically (sympy) and numerically: largest error {err:.1e}.",
        figures=("sigmoid",),
    )


def claim_c3(ev: Evidence) -> Claim:
    x = _sigmoid_flat_threshold()
    fraction = (50 - x) / 50
    return Claim(
        "C3",
        "The sigmoid's gradient is close to 0 over wide ranges on both sides",
        "supported",
        [
            f"sigmoid'(x) < 1e-3 on |x| > {x:.2f}: {_pct(fraction)} of [-50, 50].",
            f"For sigmoid-MSE with y = 1, every logit below {landscape.dead_zone('mse').threshold:.2f} has "
            f"|dL/dz| < 1e-3; binary cross-entropy has no such zone ({landscape.dead_zone('binary_cross_entropy').describe().split(': ')[1]}).",
        ],
        figures=["sigmoid", "binary-gradient"],
    )


def claim_c6(ev: Evidence) -> Claim:
    return _ledger_claim(
        ev,
        "C6",
        "MSE is maximum likelihood under Gaussian errors (a 'Gaussian prior' in Bayesian terms)",
        {"26", "27", "28", "29", "30", "31"},
        "Eq. 26-31 checked: -log N(y; y_hat, I) = MSE + (K/2) log 2 pi exactly (largest error {err:.1e}); "
        "the article's printed (28) and (29) are errata (see the equation ledger).",
        when_holds="supported with caveat",
        caveat="It is a Gaussian likelihood (an error model), not a prior: no distribution over parameters "
        "is involved. Dropping log(2 pi sigma^2) is valid only with sigma fixed.",
    )


def claim_c7(ev: Evidence) -> Claim:
    return _ledger_claim(
        ev,
        "C7",
        "Cross-entropy is maximum likelihood for the multinomial (Bernoulli for two classes)",
        {"5", "8", "19", "25"},
        "Bernoulli NLL = binary cross-entropy and multinomial NLL = N x CE - log coefficient, checked "
        "against scipy.stats over random inputs (largest relative error {err:.1e}).",
    )


def claim_c10(ev: Evidence) -> Claim:
    return _ledger_claim(
        ev,
        "C10",
        "N x cross-entropy equals the multinomial log-likelihood objective (eq. 19-25)",
        {"19", "20", "21", "22", "23", "24", "25"},
        "Identity exact up to the constant log(N!/prod m_i!) (largest relative error {err:.1e}); the maximiser "
        "theta_i = m_i/n, implied but not derived in the article, follows by a Lagrange multiplier (sympy).",
    )


def claim_c12(ev: Evidence) -> Claim:
    return Claim(
        "C12",
        "For regression the Gaussian noise assumption is reasonable",
        "not tested",
        ["losslab measures classification only; no regression data set is run."],
    )


# --- claims decided by the experiments --------------------------------------------------------------


def _saturation_evidence(ev: Evidence, multiclass: bool):
    rows = ev.rows("saturation")
    if rows is None:
        return None
    binary = rows["num_classes"] == 2
    rows = rows[~binary] if multiclass else rows[binary]
    return None if rows.empty else rows


def _stall_verdict(rows: pd.DataFrame, targets: dict[str, float], mse: str, ce: str) -> tuple[str, list[str], str]:
    final = S.final_rows(rows)
    table = S.saturation_table(rows, targets)
    evidence, stalls, normal_close = [], [], []
    for cell, group in final.groupby("cell"):
        scales = sorted(group["init_scale"].unique())
        base = scales[0]
        ce_mean = group[group["loss_label"] == ce].groupby("init_scale")["test_accuracy"].mean()
        # Compare where cross-entropy itself still trains: at extreme scales a large first step can kill the
        # hidden ReLUs under any loss (an exploding, not a vanishing, gradient), which says nothing about C4/C5.
        usable = [sc for sc in scales if ce_mean[sc] >= ce_mean[base] - CE_COLLAPSE]
        top = usable[-1]
        for sc in scales:
            if sc not in usable:
                evidence.append(
                    f"{cell}, initial logit scale {sc:g}: cross-entropy fails too "
                    f"({_pct(ce_mean[sc])} test accuracy against {_pct(ce_mean[base])} from scale {base:g}): "
                    "large early gradients, not saturation; left out of the comparison."
                )
        at_top = S.paired_difference(
            group, "test_accuracy", {"loss_label": ce, "init_scale": top}, {"loss_label": mse, "init_scale": top}
        )
        at_base = S.paired_difference(
            group, "test_accuracy", {"loss_label": ce, "init_scale": base}, {"loss_label": mse, "init_scale": base}
        )
        t = table[table["cell"] == cell].set_index(["loss", "init_scale"])
        dead_mse, dead_ce = t.loc[(mse, top), "start_dead_fraction"], t.loc[(ce, top), "start_dead_fraction"]
        grad_mse, grad_ce = t.loc[(mse, top), "start_grad_norm"], t.loc[(ce, top), "start_grad_norm"]
        acc_mse, acc_ce = t.loc[(mse, top), "accuracy"], t.loc[(ce, top), "accuracy"]
        testable = dead_mse >= DEAD_THRESHOLD  # the claim's premise: confidently wrong, saturated examples
        if testable:
            stalls.append(at_top.excludes_zero and at_top.mean > 0)
            normal_close.append(not at_base.excludes_zero or abs(at_base.mean) < PRACTICAL_DIFFERENCE)
        reach = ""
        if t.loc[(mse, top), "target"]:
            reach = (
                f" Reached {_pct(t.loc[(mse, top), 'target'])} test accuracy: MSE {t.loc[(mse, top), 'reached']}"
                f"/{t.loc[(mse, top), 'members']} members, CE {t.loc[(ce, top), 'reached']}/{t.loc[(ce, top), 'members']}."
            )
        premise = (
            ""
            if testable
            else f" Fewer than {_pct(DEAD_THRESHOLD)} of the examples start saturated here, so this cell does not "
            "test the claim."
        )
        evidence.append(
            f"{cell} (initial logit scale {top:g}): at the start {_pct(dead_mse)} of training examples are wrong with "
            f"|dL/dz| < 1e-3 under MSE, {_pct(dead_ce)} under CE; mean logit-gradient norm {grad_mse:.2g} vs "
            f"{grad_ce:.2g}. Final test accuracy MSE {acc_mse.format(100, 1, '%')}, CE {acc_ce.format(100, 1, '%')}; "
            f"CE - MSE = {at_top.format(100, 1, ' pt')}.{reach} From a normal start (scale {base:g}): "
            f"CE - MSE = {at_base.format(100, 1, ' pt')}.{premise}"
        )
    if not stalls:
        return "not tested", evidence, "No cell started with saturated (dead) examples, the claim's premise."
    if all(stalls):
        caveat = ""
        verdict = "supported"
        if all(normal_close):
            verdict = "supported with caveat"
            caveat = (
                "Only from a confidently wrong start: from a normal start squared error trains to about the "
                "same accuracy. And the stall belongs to squared error on the sigmoid/softmax output, which the "
                "article leaves implicit: with cross-entropy the logit gradient is p - y and no example is dead."
            )
        return verdict, evidence, caveat
    if any(stalls):
        return "supported with caveat", evidence, "The stall appears in some settings but not all (see the numbers)."
    return "not supported", evidence, ""


def claim_c4(ev: Evidence) -> Claim:
    title = "A class-1 example predicted as 0 gets ~0 gradient through the sigmoid, so training is hard"
    rows = _saturation_evidence(ev, multiclass=False)
    if rows is None:
        return Claim("C4", title, "not tested", ["No binary saturation results were given (run the saturation spec)."])
    verdict, evidence, caveat = _stall_verdict(rows, ev.targets("saturation"), "mse", "binary_cross_entropy")
    return Claim("C4", title, verdict, evidence, caveat, figures=["binary-gradient", "saturation-curves"])


def claim_c5(ev: Evidence) -> Claim:
    title = "Softmax generalises the sigmoid and has the same problem"
    rows = _saturation_evidence(ev, multiclass=True)
    if rows is None:
        return Claim("C5", title, "not tested", ["No multiclass saturation results were given."])
    verdict, evidence, caveat = _stall_verdict(rows, ev.targets("saturation"), "mse", "cross_entropy")
    classes = ev.rows("classes")
    if classes is not None:
        best = S.best_lr_rows(classes)
        for k, group in best.groupby("num_classes"):
            acc = group.groupby("loss_label")["test_accuracy"].mean()
            if "mse" in acc and "cross_entropy" in acc:
                evidence.append(
                    f"Blobs, K = {k} (best learning rate each): mean test accuracy CE {_pct(acc['cross_entropy'])}, MSE {_pct(acc['mse'])}."
                )
    return Claim(
        "C5", title, verdict, evidence, caveat, figures=["gradient-norm", "logit-plane", "saturation-curves", "classes"]
    )


def claim_c11(ev: Evidence) -> Claim:
    title = "Training with MSE on the K probability outputs is Gaussian maximum likelihood (eq. 31)"
    ok, err = ev.ledger_status({"31"})
    evidence = [f"Identity -log N(y; y_hat, I) = MSE + (K/2) log 2 pi holds exactly (largest error {err:.1e})."]
    rows = ev.rows("comparison")
    if rows is not None:
        best = S.best_lr_table(rows).set_index(["cell", "loss"])
        for cell in sorted({c for c, _ in best.index}):
            if (cell, "mse") in best.index and (cell, "cross_entropy") in best.index:
                m, c = best.loc[(cell, "mse")], best.loc[(cell, "cross_entropy")]
                evidence.append(
                    f"{cell}, each at its best learning rate: accuracy MSE {m['accuracy'].format(100, 1, '%')} vs CE "
                    f"{c['accuracy'].format(100, 1, '%')}; test NLL {m['nll'].mean:.3f} vs {c['nll'].mean:.3f}; "
                    f"ECE {m['ece'].mean:.3f} vs {c['ece'].mean:.3f}."
                )
    return Claim(
        "C11",
        title,
        "supported with caveat" if ok else "not supported",
        evidence,
        caveat="The identity holds, but the model it implies is misspecified: the K outputs lie on the "
        "simplex (they sum to 1), so they are not independent Gaussians, and a Gaussian puts mass "
        "outside [0, 1]. The same loss is also half the Brier score, a strictly proper scoring rule.",
    )


CLAIM_FUNCTIONS = [
    claim_c1,
    claim_c2,
    claim_c3,
    claim_c4,
    claim_c5,
    claim_c6,
    claim_c7,
    claim_c10,
    claim_c11,
    claim_c12,
]


def verdicts(ev: Evidence) -> list[Claim]:
    claims = [fn(ev) for fn in CLAIM_FUNCTIONS]
    assert all(c.verdict in VERDICTS for c in claims)
    return claims


# --- what later research adds -----------------------------------------------------------------------


def findings(ev: Evidence) -> list[Finding]:
    out = []
    sat = _saturation_evidence(ev, multiclass=True)
    if sat is not None:
        verdict, _, _ = _stall_verdict(sat, ev.targets("saturation"), "mse", "cross_entropy")
        out.append(
            Finding(
                "Nielsen (2015) ch. 3; Goodfellow et al. (2016) 6.2.2",
                "Squared error on softmax outputs can fail to move a confidently wrong prediction.",
                "agrees" if verdict.startswith("supported") else "disagrees",
                ["See C5: from confidently wrong starts squared error stalls while cross-entropy recovers."],
            )
        )
    else:
        out.append(
            Finding(
                "Nielsen (2015) ch. 3; Goodfellow et al. (2016) 6.2.2",
                "Squared error on softmax outputs can fail to move a confidently wrong prediction.",
                "not tested",
            )
        )
    out.append(_golik(ev))
    out.append(_hui_belkin(ev))
    out.append(
        Finding(
            "Kornblith et al. (NeurIPS 2021)",
            "On ImageNet, squared error reaches about the same top-1 accuracy as softmax cross-entropy.",
            "not tested",
            ["ImageNet is beyond these machines; see the Hui & Belkin row for the small-data analogue."],
        )
    )
    out.append(_brier(ev))
    out.append(_mnist1d(ev))
    return out


def _golik(ev: Evidence) -> Finding:
    statement = (
        "Trained from random initialisation, squared error gets stuck in a poor optimum; started from a "
        "cross-entropy solution, a few squared-error epochs improve it."
    )
    rows = ev.rows("warmstart")
    if rows is None:
        return Finding("Golik, Doetsch & Ney (Interspeech 2013)", statement, "not tested")
    final = S.final_rows(rows)
    warm = final[final["grid"] == "from-ce"]
    scratch = final[final["grid"] == "from-scratch"]
    evidence = []
    improves = stuck = None
    if not warm.empty:
        control = warm[warm["loss_label"] == "cross_entropy"]
        best_lr = warm[warm["loss_label"] == "mse"].groupby("lr")["test_accuracy"].mean().idxmax()
        diff = S.paired_difference(
            warm, "test_accuracy", {"loss_label": "mse", "lr": best_lr}, {"loss_label": "cross_entropy"}
        )
        improves = diff.excludes_zero and diff.mean > 0
        evidence.append(
            f"From the CE solution: MSE (lr {best_lr:g}) - CE continued = {diff.format(100, 2, ' pt')} "
            f"test accuracy (CE continued: {S.interval(control['test_accuracy']).format(100, 1, '%')})."
        )
    if not scratch.empty:
        diff = S.paired_difference(scratch, "test_accuracy", {"loss_label": "cross_entropy"}, {"loss_label": "mse"})
        stuck = diff.excludes_zero and diff.mean > 0
        evidence.append(f"From scratch, same epochs: CE - MSE = {diff.format(100, 1, ' pt')}.")
    if improves and stuck:
        verdict = "agrees"
    elif improves is False and stuck is False:
        verdict = "disagrees"
    else:
        verdict = "mixed"
    return Finding("Golik, Doetsch & Ney (Interspeech 2013)", statement, verdict, evidence)


def _hui_belkin(ev: Evidence) -> Finding:
    statement = "Squared error on the logits (rescaled for many classes) matches or beats cross-entropy."
    rows = ev.rows("comparison")
    if rows is None:
        return Finding("Hui & Belkin (ICLR 2021)", statement, "not tested")
    best_rows = S.best_lr_rows(rows)
    evidence, matches = [], []
    for cell, group in best_rows.groupby("cell"):
        if not {"square_logits", "cross_entropy"} <= set(group["loss_label"]):
            continue
        diff = S.paired_difference(
            group, "test_accuracy", {"loss_label": "square_logits"}, {"loss_label": "cross_entropy"}
        )
        matches.append(diff.mean > -PRACTICAL_DIFFERENCE or not diff.excludes_zero)
        evidence.append(f"{cell}: square loss - CE = {diff.format(100, 1, ' pt')} (each at its best learning rate).")
    classes = ev.rows("classes")
    if classes is not None:
        final = S.best_lr_rows(classes)
        top = final[final["num_classes"] == final["num_classes"].max()]
        means = top.groupby("loss_label")["test_accuracy"].mean()
        rescaled = [label for label in means.index if label.startswith("square_logits(")]
        if "square_logits" in means and rescaled:
            evidence.append(
                f"Blobs with K = {int(top['num_classes'].iloc[0])}: square loss plain {_pct(means['square_logits'])}, "
                f"rescaled {rescaled[0]} {_pct(means[rescaled[0]])}, CE {_pct(means.get('cross_entropy', float('nan')))}: "
                "with many classes the rescaling matters."
            )
    if not matches:
        return Finding("Hui & Belkin (ICLR 2021)", statement, "not tested", evidence)
    verdict = "agrees" if all(matches) else ("disagrees" if not any(matches) else "mixed")
    return Finding("Hui & Belkin (ICLR 2021)", statement, verdict, evidence)


def _brier(ev: Evidence) -> Finding:
    statement = (
        "Squared error between the probability vector and the one-hot label is the Brier score, a strictly "
        "proper scoring rule, like the log score."
    )
    evidence = ["Eq. (31) MSE = half the multiclass Brier score, exactly (tests/test_core_losses.py)."]
    rows = ev.rows("comparison")
    verdict = "agrees"
    if rows is not None:
        best = S.best_lr_table(rows).set_index(["cell", "loss"])
        for cell in sorted({c for c, _ in best.index}):
            if (cell, "mse") in best.index and (cell, "cross_entropy") in best.index:
                evidence.append(
                    f"{cell}: ECE (15 bins) MSE {best.loc[(cell, 'mse'), 'ece'].mean:.3f}, "
                    f"CE {best.loc[(cell, 'cross_entropy'), 'ece'].mean:.3f}; Brier MSE "
                    f"{best.loc[(cell, 'mse'), 'brier'].mean:.3f}, CE {best.loc[(cell, 'cross_entropy'), 'brier'].mean:.3f}."
                )
    return Finding("Brier (1950); Gneiting & Raftery (2007)", statement, verdict, evidence)


def _mnist1d(ev: Evidence) -> Finding:
    statement = "MNIST-1D reference test accuracy: logistic regression 32%, MLP 68%, CNN 94%."
    evidence = []
    for spec in ("comparison", "saturation"):
        rows = ev.rows(spec)
        if rows is None:
            continue
        rows = rows[rows["dataset"] == "mnist1d"]
        if rows.empty:
            continue
        best = S.best_lr_table(rows)
        ce = best[best["loss"] == "cross_entropy"]
        if not ce.empty:
            acc = ce.iloc[0]["accuracy"]
            evidence.append(f"Our MLP with cross-entropy ({spec}): {acc.format(100, 1, '%')}.")
            verdict = "agrees" if abs(acc.mean - 0.68) < 0.08 else "disagrees"
            return Finding(
                "Greydanus (2020), MNIST-1D",
                statement,
                verdict,
                evidence
                + [
                    "Architectures and training lengths differ from the reference; "
                    "agreement means within 8 points of 68%."
                ],
            )
    return Finding("Greydanus (2020), MNIST-1D", statement, "not tested")


def verdict_counts(claims: list[Claim]) -> dict[str, int]:
    return {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
