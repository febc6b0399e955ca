"""The claims ledger: a verdict for each claim of the article, computed from the measurements.

Claim verdicts: "supported", "supported with caveat", "not supported", "not enough evidence" (the
evidence exists but is too thin to decide: fewer seeds than the claim declares, an interval too
wide to tell, settings chosen on test accuracy) and "not tested" (no evidence at all). Findings of
later research: "agrees", "disagrees", "mixed" (complete evidence that goes both ways),
"not enough evidence", "not tested". Missing evidence is never "mixed".

Each verdict is decided by the rule in the docstring of its function below (the report prints that
docstring beside the verdict), from three sources: the exact gradient analysis (``losslab.analysis``
and the link functions of ``losslab.core``), the equation ledger (``losslab verify``) and the
experiment results. Nothing is written in: with other measurements, other verdicts, and every rule
can come out each way (the tests build frames for each outcome).

Experiments are read by the *role* of their grids (``losslab.experiments.spec.ROLES``), never by a
grid's label; settings searched over a grid are chosen on validation (``summaries.selection_table``);
intervals are the 95% intervals of ``summaries`` (t over seeds on a range-respecting scale); the
dead-zone threshold is each run's own ``dead_epsilon``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.stats
import torch

from losslab.analysis import landscape
from losslab.core import mse as mse_loss
from losslab.core import sigmoid, sigmoid_grad, softmax, softmax_jacobian
from losslab.i18n import Message, Rule
from losslab.report import summaries as S

VERDICTS = ("supported", "supported with caveat", "not supported", "not enough evidence", "not tested")
FINDING_VERDICTS = ("agrees", "disagrees", "mixed", "not enough evidence", "not tested")

#: What each key of MIN_SEEDS decides, for the report.
MIN_SEEDS_LABELS = {
    "C4": "C4",
    "C5": "C5",
    "golik": Message("seeds.golik"),
    "hui-belkin": Message("seeds.hui_belkin"),
    "nielsen-lr": Message("seeds.nielsen_lr"),
    "mnist1d-reference": Message("seeds.mnist1d_reference"),
}
#: Fewest seeds per compared group (each loss at each setting) before an experiment may decide a verdict.
MIN_SEEDS = {
    "C4": 5,
    "C5": 5,
    "golik": 5,
    "hui-belkin": 5,
    "nielsen-lr": 5,
    "mnist1d-reference": 5,
}
DEAD_THRESHOLD = 0.10  # a cell tests C4/C5 if at least this fraction of training examples start dead under MSE
PRACTICAL_DIFFERENCE = 0.02  # 2 points of accuracy: a difference smaller than this does not matter
CE_COLLAPSE = 0.10  # cross-entropy "still trains" at a scale if within 10 points of its normal-start accuracy
DEFAULT_DEAD_EPSILON = 1e-3  # the trainer's default dead_epsilon, used where no run says otherwise
SATURATION_RANGE = (10.0, 50.0)  # C1: |logit| (sigmoid) and rival lead (softmax, K = 10) checked for saturation
NIELSEN_RATIO = (3.0, 6.0)  # Nielsen: quadratic-cost learning rates about 3-6x the cross-entropy ones
#: Greydanus (2020), MNIST-1D README and paper: one run per model, test accuracy rounded to whole percent.
MNIST1D_PUBLISHED = {"reference-linear": 0.32, "reference-mlp": 0.68, "reference-cnn": 0.94}
#: What the reference's own code prints at step 6,000 (one run, seed 42): the output saved in MNIST-1D's
#: notebooks/mnist1d-classification.ipynb (github.com/greydanus/mnist1d), shown beside the published numbers.
MNIST1D_REFERENCE_RUN = {"reference-linear": 0.315, "reference-mlp": 0.651, "reference-cnn": 0.923}
MNIST1D_ROUNDING = 0.005  # the published numbers are whole percents
NUMERIC_TOLERANCE = 1e-12


def verdict_word(verdict: str) -> Message:
    """A verdict ('not enough evidence', 'agrees', ...) as its catalogue message, for display."""
    return Message("verdict." + verdict.replace(" ", "_"))


def outcome_word(outcome: str) -> Message:
    """'yes' / 'no' (the outcome rule's values) as catalogue messages."""
    return Message(f"word.{outcome}")


def chosen_word(chosen_on: str) -> Message:
    """How a setting was chosen (``summaries.CHOSEN_ON_*``) as its catalogue message, for display."""
    key = {S.CHOSEN_ON_VALIDATION: "validation", S.CHOSEN_ON_TEST: "test", S.ONLY_SETTING: "only"}[chosen_on]
    return Message(f"chosen.{key}")


@dataclass
class Claim:
    """A claim and its verdict. The texts (title, evidence, caveat, rule) are catalogue messages: English
    strings that the report renders in its language; ``verdict`` and ``basis`` are plain values."""

    id: str
    title: str
    verdict: str
    evidence: list[str] = field(default_factory=list)
    caveat: str = ""
    figures: list[str] = field(default_factory=list)
    rule: str = ""  # the docstring of the function that decided it
    basis: str = ""  # analysis / equation ledger / experiments / none


@dataclass
class Finding:
    source: str
    statement: str
    verdict: str  # one of FINDING_VERDICTS
    evidence: list[str] = field(default_factory=list)
    rule: str = ""
    key: str = ""


@dataclass
class Evidence:
    """Everything the verdicts are computed from."""

    ledger: list  # LedgerRow
    results: dict[str, tuple[dict, pd.DataFrame]]  # spec name -> (manifest, rows)
    notes: list[str] = field(default_factory=list)  # how the evidence was read (shown in the report)

    def rows(self, spec: str) -> pd.DataFrame | None:
        entry = self.results.get(spec)
        return None if entry is None or entry[1].empty else entry[1]

    def role_rows(self, *roles: str) -> pd.DataFrame | None:
        """Rows of every grid, in any result folder, whose role is one of ``roles``; None if there are none.

        Adds the columns ``role``, ``dead_epsilon`` (the run's dead-zone threshold) and ``target_accuracy``
        from each run's manifest. Cells are renamed "<spec>/<cell>" when several specs contribute.
        """
        frames = []
        for spec, (manifest, rows) in self.results.items():
            if rows.empty:
                continue
            info = grid_info(spec, manifest, self.notes)
            role_of = {label: entry["role"] for label, entry in info.items()}
            keep = rows[rows["grid"].map(role_of).isin(roles)]
            if keep.empty:
                continue
            keep = keep.assign(
                role=keep["grid"].map(role_of),
                dead_epsilon=keep["grid"].map({label: entry["dead_epsilon"] for label, entry in info.items()}),
                target_accuracy=keep["grid"].map({label: entry["target_accuracy"] for label, entry in info.items()}),
                experiment=spec,
            )
            frames.append(keep)
        if not frames:
            return None
        out = pd.concat(frames, ignore_index=True)
        if out["experiment"].nunique() > 1:
            out["cell"] = out["experiment"] + "/" + out["cell"]
        return out

    def ledger_status(self, equations) -> tuple[bool, float]:
        rows = [r for r in self.ledger if r.equation in equations]
        ok = bool(rows) and all(r.status in ("holds", "erratum", "transcription") for r in rows)
        errors = [r.max_error for r in rows if r.max_error is not None]
        return ok, max(errors) if errors else math.nan

    def dead_epsilon(self) -> float:
        """The dead-zone threshold of the runs given (the largest, if they differ), else the trainer's default."""
        values = set()
        for spec, (manifest, _) in self.results.items():
            values |= {info["dead_epsilon"] for info in grid_info(spec, manifest, []).values()}
        return max(values) if values else DEFAULT_DEAD_EPSILON

    def num_classes(self) -> list[int]:
        ks = set()
        for _, rows in self.results.values():
            if not rows.empty and "num_classes" in rows:
                ks |= {int(k) for k in rows["num_classes"].unique()}
        return sorted(ks)


def grid_info(spec: str, manifest: dict, notes: list[str]) -> dict[str, dict]:
    """Per grid label of a run: its role, dead_epsilon and target accuracy.

    A manifest written before grids had roles takes them from the built-in spec of the same name,
    matched by label (and says so in ``notes``); a grid with no role is read by no claim.
    """
    grids = (manifest.get("spec_data") or {}).get("grid", [])
    builtin = {}
    if any("role" not in g for g in grids):
        from losslab.experiments.spec import SpecError, builtin_specs, load_spec

        if spec in builtin_specs():
            try:
                builtin = {g.get("label"): g.get("role") for g in load_spec(spec).data["grid"]}
            except SpecError:
                builtin = {}
    info = {}
    for g in grids:
        label = g.get("label")
        role = g.get("role")
        if role is None and builtin.get(label):
            role = builtin[label]
            note = Message("claims.note_roles_from_builtin", spec=spec)
            if note not in notes:
                notes.append(note)
        info[label] = {
            "role": role,
            "dead_epsilon": float(S.run_setting(manifest, label, "dead_epsilon", DEFAULT_DEAD_EPSILON)),
            "target_accuracy": g.get("target_accuracy"),
        }
    return info


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def points(i: S.Interval, digits: int = 1) -> str:
    """A difference in percentage points, '5.0 pt [4.0, 6.0] (n = 6)', with the unit a catalogue word."""
    text = i.format(100, digits, "\0")
    if "\0" not in text:
        return Message("word.na") if text == "n/a" else text
    value, _, rest = text.partition("\0")
    return Message("unit.pt", value=value, rest=rest)


_pt = points


def _acc(i: S.Interval) -> str:
    return i.format(100, 1, "%")


def rule(*helpers: Callable) -> Callable:
    """Attach the rule text shown in the report: the function's docstring, then its helpers' docstrings."""

    def attach(fn):
        # In English the docstrings themselves; other languages translate each (losslab.i18n.Rule).
        fn.rule_text = Rule([fn, *helpers])
        return fn

    return attach


def _seed_shortfall(frame: pd.DataFrame, by: list[str], minimum: int) -> str:
    """'' if every group of ``frame`` by ``by`` has at least ``minimum`` seeds, else a sentence saying which do not."""
    counts = frame.groupby(by)["seed"].nunique()
    short = counts[counts < minimum]
    if short.empty:
        return ""
    return Message("claims.seed_shortfall", seeds=str(int(short.min())), minimum=str(minimum))


# --- claims decided by the analysis ------------------------------------------------------------------------


def _flat_from(x: np.ndarray, values: np.ndarray, epsilon: float) -> float:
    """The smallest grid x from which ``values`` stay below epsilon up to the end of the grid (inf: never)."""
    below = values < epsilon
    if not below[-1]:
        return math.inf
    live = np.nonzero(~below)[0]
    return float(x[0] if live.size == 0 else x[live[-1] + 1])


@rule()
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
            Message(
                "claim.C1.sigmoid",
                lo=f"{lo:g}",
                hi=f"{hi:g}",
                largest=f"{sigmoid_max:.1e}",
                threshold=f"{eps:g}",
                flat_from=f"{sig_from:.2f}",
            ),
            Message(
                "claim.C1.softmax",
                lo=f"{lo:g}",
                hi=f"{hi:g}",
                largest=f"{softmax_max:.1e}",
                threshold=f"{eps:g}",
                flat_from=f"{jac_from:.2f}",
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


@rule(_sigmoid_flat_threshold)
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
            fraction=_pct(fraction),
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


@rule(_ledger_claim)
def claim_c2(ev: Evidence) -> Claim:
    """Equation-ledger rows 1-4 (sympy and float64 checks of the sigmoid and its derivative)."""
    return _ledger_claim(
        ev,
        "C2",
        Message("claim.C2.title"),
        {"1", "2", "3", "4"},
        "claim.C2.evidence",
        figures=("sigmoid",),
    )


@rule(_ledger_claim)
def claim_c6(ev: Evidence) -> Claim:
    """Equation-ledger rows 26-31; 'supported with caveat' because the caveat below is a derivation:
    the identity is a Gaussian likelihood, not a prior."""
    return _ledger_claim(
        ev,
        "C6",
        Message("claim.C6.title"),
        {"26", "27", "28", "29", "30", "31"},
        "claim.C6.evidence",
        when_holds="supported with caveat",
        caveat=Message("claim.C6.caveat"),
    )


@rule(_ledger_claim)
def claim_c7(ev: Evidence) -> Claim:
    """Equation-ledger rows 5, 8, 19 and 25 (Bernoulli and multinomial likelihoods against scipy.stats)."""
    return _ledger_claim(
        ev,
        "C7",
        Message("claim.C7.title"),
        {"5", "8", "19", "25"},
        "claim.C7.evidence",
    )


@rule(_ledger_claim)
def claim_c10(ev: Evidence) -> Claim:
    """Equation-ledger rows 19-25 (the multinomial log-likelihood, its maximiser by sympy, the CE identity)."""
    return _ledger_claim(
        ev,
        "C10",
        Message("claim.C10.title"),
        {"19", "20", "21", "22", "23", "24", "25"},
        "claim.C10.evidence",
    )


@rule()
def claim_c11(ev: Evidence) -> Claim:
    """Equation-ledger row 31: 'supported with caveat' if it holds (the caveat is a derivation: the K outputs
    sum to 1, so they cannot be independent Gaussians), not supported otherwise. The comparison rows only
    add numbers (each loss at its learning rate chosen on validation); they do not decide this verdict."""
    ok, err = ev.ledger_status({"31"})
    evidence = [Message("claim.C11.identity", err=f"{err:.1e}")]
    rows = ev.role_rows("loss-comparison")
    if rows is not None:
        best = S.selection_table(rows).set_index(["cell", "loss"])
        for cell in sorted({c for c, _ in best.index}):
            if (cell, "mse") in best.index and (cell, "cross_entropy") in best.index:
                m, c = best.loc[(cell, "mse")], best.loc[(cell, "cross_entropy")]
                evidence.append(
                    Message(
                        "claim.C11.cell",
                        cell=cell,
                        chosen_on=chosen_word(m["chosen_on"]),
                        acc_mse=_acc(m["accuracy"]),
                        acc_ce=_acc(c["accuracy"]),
                        nll_mse=f"{m['nll'].mean:.3f}",
                        nll_ce=f"{c['nll'].mean:.3f}",
                        ece_mse=f"{m['ece'].mean:.3f}",
                        ece_ce=f"{c['ece'].mean:.3f}",
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


@rule()
def claim_c12(ev: Evidence) -> Claim:
    """Always 'not tested': losslab runs no regression data."""
    return Claim(
        "C12",
        Message("claim.C12.title"),
        "not tested",
        [Message("claim.C12.evidence")],
        basis="none",
    )


# --- claims decided by the experiments ---------------------------------------------------------------------


def _stall_verdict(rows: pd.DataFrame, mse: str, ce: str, min_seeds: int) -> tuple[str, list[str], str]:
    """The stall rule (claims C4 and C5), per cell (one dataset and model):
    1. Compare CE and MSE at the largest initial logit scale at which cross-entropy itself still trains
       (its mean final test accuracy within 10 points of its accuracy from the normal start, the smallest
       scale): beyond it, large early gradients break training under any loss, which is not saturation.
    2. The cell tests the claim only if at least 10% of its training examples start in the dead zone under
       MSE at that scale (misclassified with |dL/dz| below the run's dead_epsilon): the claim's premise.
    3. A testable cell needs at least the declared number of seeds per loss and scale, else it is
       undecided. MSE stalls there if the 95% interval of the paired per-seed difference CE - MSE in final
       test accuracy lies above 0; it does not stall if the interval lies below +2 points; otherwise the
       cell is undecided.
    Verdict: not tested if no cell meets the premise; not enough evidence if no testable cell is decided;
    not supported if no decided cell stalls; supported if every decided cell stalls, 'with caveat' when the
    normal start shows no difference in every such cell (no interval excluding 0, or a mean under 2 points),
    or when some decided cells stall and others do not."""
    final = S.selected_rows(rows, by=("cell", "loss_label", "init_scale"))
    table = S.saturation_table(rows, {})
    evidence, stalls, normal_close, undecided = [], [], [], 0
    for cell, group in final.groupby("cell"):
        eps = float(group["dead_epsilon"].iloc[0]) if "dead_epsilon" in group else DEFAULT_DEAD_EPSILON
        target = group["target_accuracy"].iloc[0] if "target_accuracy" in group else None
        scales = sorted(group["init_scale"].unique())
        base = scales[0]
        ce_mean = group[group["loss_label"] == ce].groupby("init_scale")["test_accuracy"].mean()
        if ce_mean.empty or group[group["loss_label"] == mse].empty:
            continue
        usable = [sc for sc in scales if sc in ce_mean and ce_mean[sc] >= ce_mean[base] - CE_COLLAPSE]
        top = usable[-1]
        for sc in scales:
            if sc not in usable:
                evidence.append(
                    Message(
                        "claim.stall.ce_fails",
                        cell=cell,
                        scale=f"{sc:g}",
                        accuracy=_pct(ce_mean[sc]),
                        base_accuracy=_pct(ce_mean[base]),
                        base=f"{base:g}",
                    )
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
        testable = dead_mse >= DEAD_THRESHOLD
        shortfall = _seed_shortfall(
            group[group["init_scale"].isin([base, top])], ["loss_label", "init_scale"], min_seeds
        )
        status = ""
        if not testable:
            status = Message("claim.stall.not_testable", fraction=_pct(DEAD_THRESHOLD))
        elif shortfall:
            status = Message("claim.stall.undecided_seeds", shortfall=shortfall)
            undecided += 1
        elif at_top.has_interval and at_top.low > 0:
            stalls.append(True)
        elif at_top.has_interval and at_top.high < PRACTICAL_DIFFERENCE:
            stalls.append(False)
        else:
            status = Message("claim.stall.undecided_interval")
            undecided += 1
        if testable and not status:
            normal_close.append(not at_base.excludes_zero or abs(at_base.mean) < PRACTICAL_DIFFERENCE)
        reach = ""
        if target:
            reached = S.steps_to_target(rows[rows["cell"] == cell], float(target))
            r_mse = reached[(reached["loss_label"] == mse) & (reached["init_scale"] == top)]["steps_to_target"]
            r_ce = reached[(reached["loss_label"] == ce) & (reached["init_scale"] == top)]["steps_to_target"]
            reach = Message(
                "claim.stall.reached",
                target=_pct(float(target)),
                mse=f"{int(r_mse.notna().sum())}/{len(r_mse)}",
                ce=f"{int(r_ce.notna().sum())}/{len(r_ce)}",
            )
        evidence.append(
            Message(
                "claim.stall.cell",
                cell=cell,
                scale=f"{top:g}",
                dead_mse=_pct(dead_mse),
                threshold=f"{eps:g}",
                dead_ce=_pct(dead_ce),
                grad_mse=f"{grad_mse:.2g}",
                grad_ce=f"{grad_ce:.2g}",
                acc_mse=_acc(t.loc[(mse, top), "accuracy"]),
                acc_ce=_acc(t.loc[(ce, top), "accuracy"]),
                difference=_pt(at_top),
                reach=reach,
                base=f"{base:g}",
                base_difference=_pt(at_base),
                status=status,
            )
        )
    if not stalls and not undecided:
        return "not tested", evidence, Message("claim.stall.caveat_no_premise")
    if not stalls:
        return "not enough evidence", evidence, ""
    if all(stalls):
        if all(normal_close):
            return "supported with caveat", evidence, Message("claim.stall.caveat_only_wrong_start")
        return "supported", evidence, ""
    if any(stalls):
        return "supported with caveat", evidence, Message("claim.stall.caveat_some_settings")
    return "not supported", evidence, ""


@rule(_stall_verdict)
def claim_c4(ev: Evidence) -> Claim:
    """Decided by the stall rule below on the grids with role 'saturation-binary' (one sigmoid logit; MSE
    against binary cross-entropy), with at least 5 seeds per loss and scale."""
    title = Message("claim.C4.title")
    rows = ev.role_rows("saturation-binary")
    if rows is None:
        return Claim(
            "C4",
            title,
            "not tested",
            [Message("claim.C4.no_grid")],
            basis="experiments",
        )
    verdict, evidence, caveat = _stall_verdict(rows, "mse", "binary_cross_entropy", MIN_SEEDS["C4"])
    return Claim(
        "C4", title, verdict, evidence, caveat, figures=["binary-gradient", "saturation-curves"], basis="experiments"
    )


@rule(_stall_verdict)
def claim_c5(ev: Evidence) -> Claim:
    """Decided by the stall rule below on the grids with role 'saturation-softmax' (softmax outputs; MSE
    against cross-entropy), with at least 5 seeds per loss and scale. Grids with role 'many-classes' add
    numbers (each loss at its learning rate chosen on validation, per K) but do not decide the verdict."""
    title = Message("claim.C5.title")
    rows = ev.role_rows("saturation-softmax")
    if rows is None:
        verdict, evidence, caveat = "not tested", [Message("claim.C5.no_grid")], ""
    else:
        verdict, evidence, caveat = _stall_verdict(rows, "mse", "cross_entropy", MIN_SEEDS["C5"])
    classes = ev.role_rows("many-classes")
    if classes is not None:
        best = S.selection_table(classes)
        for k, group in best.groupby("num_classes"):
            acc = group.set_index("loss")
            if "mse" in acc.index and "cross_entropy" in acc.index:
                evidence.append(
                    Message(
                        "claim.C5.blobs",
                        k=str(k),
                        chosen_on=chosen_word(acc.loc["mse", "chosen_on"]),
                        acc_ce=_acc(acc.loc["cross_entropy", "accuracy"]),
                        acc_mse=_acc(acc.loc["mse", "accuracy"]),
                    )
                )
    return Claim(
        "C5",
        title,
        verdict,
        evidence,
        caveat,
        figures=["gradient-norm", "logit-plane", "saturation-curves", "classes"],
        basis="experiments",
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


def _decide(functions, ev: Evidence, allowed: tuple[str, ...], name) -> list:
    """Run each rule function on the evidence; attach its rule text; a verdict outside ``allowed`` is a bug."""
    decided = []
    for fn in functions:
        item = fn(ev)
        item.rule = getattr(fn, "rule_text", inspect.getdoc(fn) or "")
        if item.verdict not in allowed:
            raise AssertionError(f"{name(item)}: verdict {item.verdict!r} is not one of {allowed}")
        decided.append(item)
    return decided


def verdicts(ev: Evidence) -> list[Claim]:
    return _decide(CLAIM_FUNCTIONS, ev, VERDICTS, lambda claim: claim.id)


# --- what later research adds ------------------------------------------------------------------------------


@rule()
def finding_nielsen_saturation(ev: Evidence) -> Finding:
    """Follows claim C5's verdict: agrees if C5 is supported (with or without caveat), disagrees if not
    supported, and not enough evidence / not tested when C5 is."""
    statement = Message("finding.nielsen_saturation.statement")
    c5 = claim_c5(ev)
    verdict = {
        "supported": "agrees",
        "supported with caveat": "agrees",
        "not supported": "disagrees",
    }.get(c5.verdict, c5.verdict)
    return Finding(
        Message("finding.nielsen_saturation.source"),
        statement,
        verdict,
        [Message("finding.nielsen_saturation.evidence", verdict=verdict_word(c5.verdict))],
        key="nielsen-saturation",
    )


def _edge_of(chosen: pd.DataFrame, loss: str) -> str | None:
    """'low' or 'high' if ``loss``'s chosen learning rate (rows from ``selected_rows``) is at that edge of its grid."""
    edges = chosen.loc[chosen["loss_label"] == loss, "edge"].dropna() if "edge" in chosen else []
    return str(edges.iloc[0]) if len(edges) else None


def edge_word(edge: str) -> Message:
    return Message(f"word.edge_{edge}")


def _practical_outcome(diff: S.Interval) -> str | None:
    """The outcome rule: 'yes' if the 95% interval lies above 0, 'no' if it lies below +2 points (any gain is
    smaller than a practical difference), None (undecided) if it straddles both."""
    if diff.has_interval and diff.low > 0:
        return "yes"
    if diff.has_interval and diff.high < PRACTICAL_DIFFERENCE:
        return "no"
    return None


@rule(_practical_outcome)
def finding_golik(ev: Evidence) -> Finding:
    """Two parts, from the grids with roles 'warm-start' and 'from-scratch', each loss at its learning rate
    chosen on validation, at least 5 seeds per loss. Improves: the paired difference MSE continued - CE
    continued in final test accuracy on the warm-start grid. Stuck: CE - MSE from scratch. Each part is
    'yes' or 'no' by the outcome rule below, or undecided.
    A part is also undecided where the loss that could overturn its outcome was chosen at the edge of its
    learning-rate grid (its best rate may lie outside the grid): for 'yes' the loss subtracted, for 'no'
    the other.
    Verdict: agrees if both parts are 'yes'; disagrees if either part is 'no' and neither is 'yes', or if the
    one part measured is 'no'; mixed if one is 'yes' and the other 'no'; not tested if neither role is in
    the results, or only one is and its part is 'yes'; not enough evidence if a measured part is undecided
    (too few seeds, settings chosen on test accuracy, a rate at its grid's edge, or an interval straddling
    both 0 and +2 points)."""
    statement = Message("finding.golik.statement")
    source = Message("finding.golik.source")
    parts: dict[str, str | None] = {}
    evidence: list[str] = []
    for role, name, a, b in (
        ("warm-start", "improves", "mse", "cross_entropy"),
        ("from-scratch", "stuck", "cross_entropy", "mse"),
    ):
        rows = ev.role_rows(role)
        if rows is None:
            evidence.append(Message("finding.no_role", role=role))
            continue
        chosen = S.selected_rows(rows)
        chosen = chosen[chosen["loss_label"].isin([a, b])]
        if chosen.empty or chosen["loss_label"].nunique() < 2:
            evidence.append(Message("finding.golik.not_both", role=role))
            continue
        diff = S.paired_difference(chosen, "test_accuracy", {"loss_label": a}, {"loss_label": b})
        lrs = chosen.groupby("loss_label")["lr"].first()
        how = [Message("finding.golik.loss_lr", loss=label, lr=f"{lr:g}") for label, lr in lrs.items()]
        on = sorted(set(chosen["chosen_on"]) - {S.ONLY_SETTING})
        shortfall = _seed_shortfall(chosen, ["loss_label"], MIN_SEEDS["golik"])
        outcome = None
        if shortfall:
            why = shortfall
        elif S.CHOSEN_ON_TEST in on:
            why = Message("finding.golik.why_test")
        else:
            outcome = _practical_outcome(diff)
            why = "" if outcome else Message("finding.golik.why_interval")
            # 'yes' (a beats b) could be overturned by a better b, 'no' by a better a.
            at_risk = {"yes": b, "no": a}.get(outcome)
            edge = _edge_of(chosen, at_risk) if at_risk else None
            if edge:
                outcome, why = None, Message("finding.golik.why_edge", loss=at_risk, edge=edge_word(edge))
        parts[name] = outcome
        if outcome:
            result = Message(
                "finding.golik.decided", part=Message(f"finding.golik.{name}"), outcome=outcome_word(outcome)
            )
        else:
            result = Message("finding.golik.undecided", why=why)
        evidence.append(
            Message(
                f"finding.golik.{name}_difference",
                difference=_pt(diff),
                how=how,
                on=[chosen_word(x) for x in on] or [Message("finding.golik.one_rate")],
                result=result,
            )
        )
    values = [parts[k] for k in ("improves", "stuck") if k in parts]
    if not values:
        verdict = "not tested"
    elif "yes" in values and "no" in values:
        verdict = "mixed"
    elif "no" in values:
        verdict = "disagrees"
    elif None in values:
        verdict = "not enough evidence"
    elif len(values) == 2:
        verdict = "agrees"
    else:
        verdict = "not tested"  # one part measured and it agrees: the other half of the statement is untested
    return Finding(source, statement, verdict, evidence, key="golik")


@rule()
def finding_hui_belkin(ev: Evidence) -> Finding:
    """Per cell with role 'loss-comparison' and per square-loss variant: the paired difference square loss -
    CE in final test accuracy, each loss at its learning rate chosen on validation, at least 5 seeds each.
    The variant matches or beats CE if the 95% interval's lower end is above -2 points (non-inferiority with
    a 2-point margin); it is worse if the upper end is below -2 points; otherwise the cell is undecided (as
    it is with too few seeds or rates chosen on test accuracy). It is undecided too where the loss that
    could overturn the outcome was chosen at the edge of its learning-rate grid (its best rate may lie
    outside the grid): CE for 'matches or beats', the variant for 'worse'. Verdict: not tested without such cells;
    not enough evidence if none is decided; agrees if every decided cell matches or beats, disagrees if
    every decided cell is worse, mixed otherwise. Grids with role 'many-classes' add numbers only."""
    statement = Message("finding.hui_belkin.statement")
    source = Message("finding.hui_belkin.source")
    rows = ev.role_rows("loss-comparison")
    if rows is None:
        return Finding(source, statement, "not tested", [Message("finding.no_role", role="loss-comparison")])
    chosen = S.selected_rows(rows)
    evidence, decided = [], []
    for cell, group in chosen.groupby("cell"):
        variants = sorted(x for x in group["loss_label"].unique() if str(x).startswith("square_logits"))
        if "cross_entropy" not in set(group["loss_label"]):
            continue
        for variant in variants:
            pair = group[group["loss_label"].isin([variant, "cross_entropy"])]
            diff = S.paired_difference(pair, "test_accuracy", {"loss_label": variant}, {"loss_label": "cross_entropy"})
            shortfall = _seed_shortfall(pair, ["loss_label"], MIN_SEEDS["hui-belkin"])
            on = sorted(set(pair["chosen_on"]))
            if shortfall:
                outcome = Message("finding.hui_belkin.undecided_seeds", shortfall=shortfall)
            elif S.CHOSEN_ON_TEST in on:
                outcome = Message("finding.hui_belkin.undecided_test")
            elif diff.has_interval and diff.low > -PRACTICAL_DIFFERENCE:
                if edge := _edge_of(pair, "cross_entropy"):
                    outcome = Message("finding.hui_belkin.undecided_edge", loss="cross_entropy", edge=edge_word(edge))
                else:
                    outcome = Message("finding.hui_belkin.matches")
                    decided.append(True)
            elif diff.has_interval and diff.high < -PRACTICAL_DIFFERENCE:
                if edge := _edge_of(pair, variant):
                    outcome = Message("finding.hui_belkin.undecided_edge", loss=variant, edge=edge_word(edge))
                else:
                    outcome = Message("finding.hui_belkin.worse")
                    decided.append(False)
            else:
                outcome = Message("finding.hui_belkin.undecided_interval")
            evidence.append(
                Message(
                    "finding.hui_belkin.cell",
                    cell=cell,
                    variant=variant,
                    difference=_pt(diff),
                    on=[chosen_word(x) for x in on],
                    outcome=outcome,
                )
            )
    classes = ev.role_rows("many-classes")
    if classes is not None:
        best = S.selection_table(classes)
        top = best[best["num_classes"] == best["num_classes"].max()].set_index("loss")
        rescaled = [label for label in top.index if str(label).startswith("square_logits(")]
        if "square_logits" in top.index and rescaled and "cross_entropy" in top.index:
            evidence.append(
                Message(
                    "finding.hui_belkin.blobs",
                    k=str(int(top["num_classes"].iloc[0])),
                    plain=_acc(top.loc["square_logits", "accuracy"]),
                    variant=rescaled[0],
                    rescaled=_acc(top.loc[rescaled[0], "accuracy"]),
                    ce=_acc(top.loc["cross_entropy", "accuracy"]),
                )
            )
    if not evidence:
        return Finding(source, statement, "not tested", [Message("finding.hui_belkin.no_cell")])
    if not decided:
        verdict = "not enough evidence"
    elif all(decided):
        verdict = "agrees"
    elif not any(decided):
        verdict = "disagrees"
    else:
        verdict = "mixed"
    return Finding(source, statement, verdict, evidence, key="hui-belkin")


@rule(S.lr_ratio)
def finding_nielsen_lr(ev: Evidence) -> Finding:
    """Per cell with role 'loss-comparison': the ratio of the learning rates chosen on validation, MSE over CE,
    as a range (below): a rate inside its grid stands for a best rate within half a grid step; a rate at
    the top of its grid only bounds the best rate from below, one at the bottom from above. The cell agrees
    with Nielsen's 3-6x if that range overlaps [3, 6] and disagrees if it does not; it is undecided with
    fewer than 5 seeds per loss, rates chosen on test accuracy, one rate per loss (nothing was searched),
    or a range open at both ends. Verdict: not tested without such cells; not enough evidence if none is
    decided; agrees / disagrees if every decided cell does; mixed otherwise."""
    statement = Message("finding.nielsen_lr.statement")
    source = Message("finding.nielsen_lr.source")
    rows = ev.role_rows("loss-comparison")
    if rows is None:
        return Finding(source, statement, "not tested", [Message("finding.no_role", role="loss-comparison")])
    table = S.selection_table(rows).set_index(["cell", "loss"])
    evidence, decided = [], []
    lo, hi = NIELSEN_RATIO
    for cell in sorted({c for c, _ in table.index}):
        if (cell, "mse") not in table.index or (cell, "cross_entropy") not in table.index:
            continue
        m, c = table.loc[(cell, "mse")].to_dict(), table.loc[(cell, "cross_entropy")].to_dict()
        ratio = S.lr_ratio(m, c)
        shown = {
            "value": Message(
                "finding.nielsen_lr.shown_value",
                ratio=f"{ratio['ratio']:.3g}",
                low=f"{ratio['low']:.2g}",
                high=f"{ratio['high']:.2g}",
            ),
            "lower bound": Message("finding.nielsen_lr.shown_lower", low=f"{ratio['low']:.2g}"),
            "upper bound": Message("finding.nielsen_lr.shown_upper", high=f"{ratio['high']:.2g}"),
            "none": Message("finding.nielsen_lr.shown_none"),
        }[ratio["bound"]]
        if min(m["seeds"], c["seeds"]) < MIN_SEEDS["nielsen-lr"]:
            outcome = Message("finding.nielsen_lr.undecided_seeds", seeds=str(MIN_SEEDS["nielsen-lr"]))
        elif S.CHOSEN_ON_TEST in (m["chosen_on"], c["chosen_on"]):
            outcome = Message("finding.nielsen_lr.undecided_test")
        elif S.ONLY_SETTING in (m["chosen_on"], c["chosen_on"]):
            outcome = Message("finding.nielsen_lr.undecided_one_rate")
        elif ratio["bound"] == "none":
            outcome = Message("finding.nielsen_lr.undecided")
        else:
            agrees = ratio["low"] <= hi and ratio["high"] >= lo
            decided.append(agrees)
            outcome = Message(
                "finding.nielsen_lr.overlaps" if agrees else "finding.nielsen_lr.outside", lo=f"{lo:g}", hi=f"{hi:g}"
            )
        evidence.append(
            Message(
                "finding.nielsen_lr.cell",
                cell=cell,
                mse_lr=f"{m['best_lr']:g}",
                ce_lr=f"{c['best_lr']:g}",
                shown=shown,
                outcome=outcome,
            )
        )
    if not evidence:
        return Finding(source, statement, "not tested", [Message("finding.nielsen_lr.no_cell")])
    if not decided:
        verdict = "not enough evidence"
    else:
        verdict = "agrees" if all(decided) else ("disagrees" if not any(decided) else "mixed")
    evidence.append(Message("finding.nielsen_lr.note"))
    return Finding(source, statement, verdict, evidence, key="nielsen-lr")


@rule()
def finding_kornblith(ev: Evidence) -> Finding:
    """Always 'not tested': ImageNet is not run."""
    return Finding(
        Message("finding.kornblith.source"),
        Message("finding.kornblith.statement"),
        "not tested",
        [Message("finding.kornblith.evidence")],
        key="kornblith",
    )


def _expected_brier(ps: np.ndarray, q: np.ndarray) -> np.ndarray:
    """S(p, q) = sum_j q_j ||p - e_j||^2 for each row p of ``ps``: the Brier score expected when y ~ q."""
    eye = np.eye(len(q))
    return (q * ((ps[:, None, :] - eye[None]) ** 2).sum(-1)).sum(-1)


def _expected_log_score(ps: np.ndarray, q: np.ndarray) -> np.ndarray:
    """sum_j q_j (-log p_j) for each row p of ``ps``: the log score expected when y ~ q."""
    return -(q * np.log(ps)).sum(-1)


def brier_checks(num_classes: list[int], seed: int = 0) -> dict:
    """The numbers behind the Brier finding (see ``finding_brier``): largest errors of each check."""
    from losslab.train.metrics import brier_score

    rng = np.random.default_rng(seed)
    identity_error, brier_error, log_error, min_excess_brier, min_excess_log = 0.0, 0.0, 0.0, math.inf, math.inf
    for k in num_classes:
        z = torch.from_numpy(rng.normal(0, 3, (256, k)))
        y = torch.from_numpy(rng.integers(0, k, 256))
        p = np.exp(z.numpy() - z.numpy().max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        direct = float(((p - np.eye(k)[y.numpy()]) ** 2).sum(-1).mean())  # the Brier score, written out
        trainer = float(brier_score(z[None], y)[0])  # the metric behind the results' test_brier
        twice_eq31 = 2 * float(mse_loss(z, y))
        identity_error = max(identity_error, abs(twice_eq31 - direct) / direct, abs(trainer - direct) / direct)
        for _ in range(200):
            q = rng.dirichlet(np.ones(k))
            ps = rng.dirichlet(np.ones(k), size=50)
            distance = ((ps - q) ** 2).sum(-1)
            apart = distance > 1e-9  # p distinguishable from q at float64 precision: the excess must be > 0
            excess = _expected_brier(ps, q) - _expected_brier(q[None], q)
            brier_error = max(brier_error, float(np.abs(excess - distance).max()))
            min_excess_brier = min(min_excess_brier, float(excess[apart].min(initial=math.inf)))
            log_excess = _expected_log_score(ps, q) - _expected_log_score(q[None], q)
            log_error = max(log_error, float(np.abs(log_excess - scipy.stats.entropy(q, ps, axis=-1)).max()))
            min_excess_log = min(min_excess_log, float(log_excess[apart].min(initial=math.inf)))
    return {
        "identity_error": identity_error,
        "brier_propriety_error": brier_error,
        "log_propriety_error": log_error,
        "min_excess_brier": min_excess_brier,
        "min_excess_log": min_excess_log,
        "num_classes": num_classes,
    }


@rule()
def finding_brier(ev: Evidence) -> Finding:
    """A derivation, checked numerically (no experiment needed): agrees if both checks pass, disagrees
    otherwise. (1) 2 x eq. (31) (losslab.core.mse) equals the multiclass Brier score mean_n sum_k (p_nk -
    y_nk)^2, written out in numpy, and the trainer's metric (losslab.train.metrics.brier_score, behind the
    results' test_brier) equals it too: 256 seeded random logits (float64) for each number of classes K in
    the results (K = 2 and 10 when there are none), largest relative error <= 1e-12. (2) Strictly proper:
    for 200 random q on each simplex and 50 random p each, the expected score under q, S(p, q) =
    sum_j q_j ||p - e_j||^2, exceeds S(q, q) by exactly ||p - q||^2 (the derivation: S(p, q) = ||p - q||^2 +
    1 - ||q||^2), within 1e-12 absolute, and the excess is > 0 wherever ||p - q||^2 > 1e-9; the log score's
    excess equals KL(q || p) within 1e-12 and is > 0 likewise."""
    statement = Message("finding.brier.statement")
    ks = ev.num_classes() or [2, 10]
    c = brier_checks(ks)
    identity_ok = c["identity_error"] <= NUMERIC_TOLERANCE
    proper_ok = (
        c["brier_propriety_error"] <= NUMERIC_TOLERANCE
        and c["log_propriety_error"] <= NUMERIC_TOLERANCE
        and c["min_excess_brier"] > 0
        and c["min_excess_log"] > 0
    )
    evidence = [
        Message(
            "finding.brier.identity",
            ks=", ".join(map(str, ks)),
            error=f"{c['identity_error']:.1e}",
            tolerance=f"{NUMERIC_TOLERANCE:g}",
        ),
        Message(
            "finding.brier.propriety",
            brier_error=f"{c['brier_propriety_error']:.1e}",
            brier_excess=f"{c['min_excess_brier']:.2g}",
            log_error=f"{c['log_propriety_error']:.1e}",
            log_excess=f"{c['min_excess_log']:.2g}",
        ),
    ]
    rows = ev.role_rows("loss-comparison")
    if rows is not None:
        best = S.selection_table(rows).set_index(["cell", "loss"])
        for cell in sorted({c_ for c_, _ in best.index}):
            if (cell, "mse") in best.index and (cell, "cross_entropy") in best.index:
                evidence.append(
                    Message(
                        "finding.brier.cell",
                        cell=cell,
                        mse=best.loc[(cell, "mse"), "brier"].format(1, 3),
                        ce=best.loc[(cell, "cross_entropy"), "brier"].format(1, 3),
                    )
                )
    return Finding(
        Message("finding.brier.source"),
        statement,
        "agrees" if identity_ok and proper_ok else "disagrees",
        evidence,
        key="brier",
    )


def reference_tolerance(values) -> float:
    """The agreement tolerance for a published single-run number: a 95% prediction interval for one new run,
    t_(0.975, n-1) s sqrt(1 + 1/n) from our n seeds (s: their standard deviation), plus the published
    rounding (half a point). The reference reports one run per model and no spread, so the spread of a
    single run of the same model and training, which our seeds measure, is the source's own spread; the
    test set is the same (the package's default, seed 42), so test-set sampling adds nothing. Fewer than 2 seeds give no tolerance."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return math.nan
    n = len(v)
    return float(scipy.stats.t.ppf(0.975, n - 1) * v.std(ddof=1) * math.sqrt(1 + 1 / n)) + MNIST1D_ROUNDING


def reproduction_table(ev: Evidence) -> pd.DataFrame:
    """Per reference model (roles 'reference-linear', 'reference-mlp', 'reference-cnn'): ours with cross-entropy
    (mean and interval over seeds), the published value, the tolerance and the outcome."""
    rows = ev.role_rows(*MNIST1D_PUBLISHED)
    records = []
    if rows is None:
        return pd.DataFrame(records)
    chosen = S.selected_rows(rows, by=("role", "cell", "loss_label"))
    for role, published in MNIST1D_PUBLISHED.items():
        group = chosen[(chosen["role"] == role) & (chosen["loss_label"] == "cross_entropy")]
        if group.empty:
            continue
        acc = S.interval(group["test_accuracy"], "proportion")
        tolerance = reference_tolerance(group["test_accuracy"])
        n = S.seed_count(group)
        if n < MIN_SEEDS["mnist1d-reference"]:
            outcome = "not enough evidence"
        elif S.CHOSEN_ON_TEST in set(group["chosen_on"]):
            outcome = "not enough evidence"
        else:
            outcome = "agrees" if abs(acc.mean - published) <= tolerance else "disagrees"
        records.append(
            {
                "role": role,
                "model": group["model"].iloc[0] if "model" in group else "",
                "cell": group["cell"].iloc[0],
                "published": published,
                "reference_run": MNIST1D_REFERENCE_RUN[role],
                "ours": acc,
                "tolerance": tolerance,
                "difference": acc.mean - published,
                "seeds": n,
                "lr": float(group["lr"].iloc[0]),
                "chosen_on": group["chosen_on"].iloc[0],
                "outcome": outcome,
            }
        )
    return pd.DataFrame(records)


@rule(reference_tolerance)
def finding_mnist1d(ev: Evidence) -> Finding:
    """Per reference model (grids with roles 'reference-linear', 'reference-mlp', 'reference-cnn', loss
    cross-entropy, at least 5 seeds): our mean final test accuracy agrees with the published 32% / 68% / 94%
    if it lies within the tolerance below. Verdict: not tested without such grids; not enough evidence if no
    model has enough seeds; agrees / disagrees if every decided model does; mixed otherwise."""
    statement = Message("finding.mnist1d.statement")
    source = Message("finding.mnist1d.source")
    table = reproduction_table(ev)
    if table.empty:
        return Finding(source, statement, "not tested", [Message("finding.mnist1d.no_grid")], key="mnist1d-reference")
    evidence = [
        Message(
            "finding.mnist1d.model",
            role=r.role,
            model=r.model,
            ours=_acc(r.ours),
            published=f"{100 * r.published:.0f}%",
            difference=f"{100 * r.difference:+.1f}",
            tolerance=f"{100 * r.tolerance:.1f}",
            outcome=verdict_word(r.outcome),
        )
        for r in table.itertuples()
    ]
    evidence += [
        Message("finding.mnist1d.not_run", role=role) for role in MNIST1D_PUBLISHED if role not in set(table["role"])
    ]
    decided = [o == "agrees" for o in table["outcome"] if o in ("agrees", "disagrees")]
    if not decided:
        verdict = "not enough evidence"
    else:
        verdict = "agrees" if all(decided) else ("disagrees" if not any(decided) else "mixed")
    return Finding(source, statement, verdict, evidence, key="mnist1d-reference")


FINDING_FUNCTIONS = [
    finding_nielsen_saturation,
    finding_golik,
    finding_hui_belkin,
    finding_kornblith,
    finding_brier,
    finding_nielsen_lr,
    finding_mnist1d,
]


def findings(ev: Evidence) -> list[Finding]:
    return _decide(FINDING_FUNCTIONS, ev, FINDING_VERDICTS, lambda finding: finding.source)


def verdict_counts(claims: list[Claim]) -> dict[str, int]:
    return {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
