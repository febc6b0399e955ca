"""Per-member metrics from population logits: accuracy, likelihood, Brier score and calibration.

All functions take logits [M, N, K] (softmax models) or [M, N] (sigmoid models) and labels [N],
and return one value per member, shape [M] (or [M, ...] where said). Probabilities come from the
model's link (softmax or sigmoid) whatever the training loss, so a model trained with the square
loss on logits is scored on softmax(logits) like the others; ``fit_temperature`` gives every member
the one scalar that makes that reading fair (Guo et al. 2017).

Calibration bins (all with ``bins`` = 15): equal-width bins [b/15, (b+1)/15) over the confidence, the
last bin closed so that confidence 1.0 falls in it (scikit-learn's ``calibration_curve`` convention).
torchmetrics' ``multiclass_calibration_error`` differs in one place: it gives a confidence of exactly 1.0
a 16th bin of its own, so the two agree except where some confidence is exactly 1.0. Probabilities are
computed in float64 from the logits, where that takes a margin over ~37 between the top two logits (in
float32 a margin over ~17 already rounds to 1.0). Adaptive (equal-mass) bins hold the examples sorted by
confidence in 15 runs of floor(N/15) or ceil(N/15), the larger runs first (``numpy.array_split``'s rule),
ties kept in example order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from losslab.core.links import log_softmax_over_classes, max_over_classes, softmax_over_classes

ECE_BINS = 15


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """[M, N, K] class probabilities in float64; a sigmoid model's [M, N] logits become [1 - p, p]."""
    # float64 before the link: a float32 softmax rounds the top probability to exactly 1.0 from a margin of
    # ~17, which moves examples into the last calibration bin by rounding alone.
    logits = logits.double()
    if logits.dim() == 2:
        p = torch.sigmoid(logits)
        return torch.stack([1 - p, p], dim=-1)
    return softmax_over_classes(logits)  # the fast kernel for class-major logits, as the trainer makes them


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return correct(logits, labels).double().mean(-1)


def example_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """-log p(true class) per member and example, [M, N], in float64."""
    if logits.dim() == 2:
        y = labels.to(logits.dtype).expand_as(logits)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none").double()
    # log_softmax keeps confidently wrong predictions finite (log(softmax) would give -inf).
    log_p = log_softmax_over_classes(logits)
    return -log_p.gather(-1, labels.expand(logits.shape[0], -1).unsqueeze(-1)).squeeze(-1).double()


def negative_log_likelihood(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean -log p(true class): cross-entropy of the softmax, or binary cross-entropy of the sigmoid."""
    return example_nll(logits, labels).mean(-1)


def brier_score(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over examples of sum_k (p_k - y_k)^2 (Brier 1950); for two classes this is 2 x sklearn's binary score."""
    p = probabilities(logits).double()
    onehot = torch.nn.functional.one_hot(labels, p.shape[-1]).double()
    return (p - onehot).square().sum(-1).mean(-1)


def top_label(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(confidence, correct): the largest probability and whether its class is the label, [M, N] float64 each."""
    confidence, predicted = max_over_classes(probabilities(logits))
    return confidence, (predicted == labels).double()


def correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Whether each member classifies each example right, [M, N] bool (the predicted class as ``accuracy`` takes it)."""
    predicted = (logits > 0).long() if logits.dim() == 2 else max_over_classes(logits)[1]
    return predicted == labels


def packed_correct(logits: torch.Tensor, labels: torch.Tensor) -> list[bytes]:
    """Per member, ``correct`` as bits packed 8 to a byte (``numpy.packbits``, example 0 in the top bit).

    The report reads them back (``unpack_correct``) for intervals that include test-set sampling and for
    paired differences example by example: 1,250 bytes per member for a 10,000-example test set.
    """
    bits = correct(logits, labels).cpu().numpy()
    return [row.tobytes() for row in np.packbits(bits, axis=-1)]


def unpack_correct(packed: bytes, n: int):
    """The [n] bool array that ``packed_correct`` packed."""
    return np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=n).astype(bool)


def equal_width_bin(confidence: torch.Tensor, bins: int = ECE_BINS) -> torch.Tensor:
    """Bin index b of each confidence: [b/bins, (b+1)/bins), with 1.0 in the last bin."""
    return (confidence * bins).floor().long().clamp(0, bins - 1)


def _bin_sums(index: torch.Tensor, values: list[torch.Tensor], bins: int) -> list[torch.Tensor]:
    """Per member, the sum of each of ``values`` ([M, N]) within each bin of ``index`` ([M, N]): [M, bins] each."""
    out = []
    for v in values:
        total = torch.zeros(*index.shape[:-1], bins, dtype=torch.float64, device=index.device)
        out.append(total.scatter_add_(-1, index, v))
    return out


def _ece_from_bins(index: torch.Tensor, confidence: torch.Tensor, correct: torch.Tensor, bins: int) -> torch.Tensor:
    conf_sum, correct_sum = _bin_sums(index, [confidence, correct], bins)
    return (conf_sum - correct_sum).abs().sum(-1) / confidence.shape[-1]


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> torch.Tensor:
    """Top-label ECE with equal-width bins: sum_b (n_b / N) |accuracy_b - confidence_b|."""
    confidence, correct = top_label(logits, labels)
    return _ece_from_bins(equal_width_bin(confidence, bins), confidence, correct, bins)


def max_calibration_error(logits: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> torch.Tensor:
    """MCE: the largest |accuracy_b - confidence_b| over the non-empty equal-width bins."""
    confidence, correct = top_label(logits, labels)
    count, conf_sum, correct_sum = _bin_sums(
        equal_width_bin(confidence, bins), [torch.ones_like(confidence), confidence, correct], bins
    )
    gap = (conf_sum - correct_sum).abs() / count.clamp_min(1)
    return gap.masked_fill(count == 0, 0.0).amax(-1)


def adaptive_calibration_error(logits: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> torch.Tensor:
    """ECE with equal-mass bins (Nixon et al. 2019): confidences sorted, cut into ``bins`` runs of near-equal size."""
    confidence, correct = top_label(logits, labels)
    n = confidence.shape[-1]
    order = torch.sort(confidence, dim=-1, stable=True).indices
    # Position r in the sorted order belongs to run b: the first n % bins runs hold one example more.
    sizes = torch.full((bins,), n // bins, dtype=torch.long)
    sizes[: n % bins] += 1
    run_of_position = torch.repeat_interleave(torch.arange(bins), sizes).to(confidence.device)
    index = torch.empty_like(order).scatter_(-1, order, run_of_position.expand_as(order))
    return _ece_from_bins(index, confidence, correct, bins)


def classwise_calibration_error(logits: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> torch.Tensor:
    """Classwise ECE (Kull et al. 2019): the mean over classes k of the equal-width ECE of p_k against 1[y = k]."""
    p = probabilities(logits).double()  # [M, N, K]
    members, n, k = p.shape
    hit = torch.nn.functional.one_hot(labels, k).double().expand(members, n, k)
    # Bins of every class at once: (class, bin) pairs are k * bins slots of one index.
    slot = (equal_width_bin(p, bins) + bins * torch.arange(k, device=p.device)).reshape(members, -1)
    p_sum, hit_sum = _bin_sums(slot, [p.reshape(members, -1), hit.reshape(members, -1)], k * bins)
    return (p_sum - hit_sum).abs().sum(-1) / (n * k)


def reliability_bins(logits: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> dict[str, torch.Tensor]:
    """The equal-width bins' example count, mean confidence and accuracy (NaN where empty), [M, bins] each."""
    confidence, correct = top_label(logits, labels)
    count, conf_sum, correct_sum = _bin_sums(
        equal_width_bin(confidence, bins), [torch.ones_like(confidence), confidence, correct], bins
    )
    empty = count == 0
    return {
        "count": count,
        "confidence": (conf_sum / count.clamp_min(1)).masked_fill(empty, float("nan")),
        "accuracy": (correct_sum / count.clamp_min(1)).masked_fill(empty, float("nan")),
    }


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, iterations: int = 40) -> torch.Tensor:
    """Per member, the temperature T > 0 that minimises the mean NLL of softmax(z / T) (sigmoid(z / T)).

    In beta = 1/T the NLL is convex (a log-partition function of beta z), with derivative
    g(beta) = mean(E_p[z] - E_q[z]) for targets q (the one-hot labels), which increases with beta.
    Safeguarded Newton on beta within a bracket [1e-4, 1e4] that bisection (in log beta) keeps valid, until
    g is zero to rounding. Where every validation example is already right, the NLL falls all the way as
    T -> 0 and no temperature minimises it; leaving T = 1 would leave under-confident logits (the square
    loss's, say) as they are. There the targets are smoothed by Laplace's rule of succession: with n
    validation examples, each keeps probability 1 - 1/(n + 2) on its label and spreads 1/(n + 2) evenly
    over the other classes, as if one error in n + 2 were still to be expected; that minimiser is finite,
    so T is the sharpest the validation split supports without claiming certainty. Where the NLL keeps
    falling as T grows (logits no better than chance), T is 1e4; all-equal logits get 1; non-finite
    logits (a diverged member) get NaN.
    """
    members = logits.shape[0]
    binary = logits.dim() == 2
    n = labels.shape[-1]
    # Classes on the middle axis, contiguous: [M, K, N] (sigmoid: [M, N]); reductions over K then run on
    # the fast path whatever the logits' layout.
    z = logits.double() if binary else logits.double().transpose(1, 2).contiguous()
    lo = torch.full((members,), 1e-4, dtype=torch.float64, device=z.device)
    hi = torch.full_like(lo, 1e4)
    beta = torch.ones_like(lo)
    # Every example right: no minimiser (see above). Decided from the predictions, not from where g reaches
    # rounding level on the way, which depends on the logits' last bits (and so on the thread count).
    predicted = (z > 0).long() if binary else z.argmax(1)
    separable = (predicted == labels.expand_as(predicted)).all(-1)
    broken = ~torch.isfinite(z).flatten(1).all(-1)  # a diverged member: no temperature
    epsilon = separable.to(z.dtype) / (n + 2)  # Laplace smoothing where separable, else the plain labels
    if binary:
        y = labels.to(z.dtype)
        target = y + epsilon.view(-1, 1) * (1 - 2 * y)  # 1 - eps on the label, eps on the other class
    else:
        k = z.shape[1]
        z_true = z.gather(1, labels.expand(members, 1, -1)).squeeze(1)  # [M, N]
        # E_q[z] with q = (1 - eps) on the label and eps / (K - 1) on each other class.
        others = (z.sum(1) - z_true) / max(k - 1, 1)
        e = epsilon.view(-1, 1)
        target_z = (1 - e) * z_true + e * others

    def derivatives(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = z * b.view(-1, *([1] * (z.dim() - 1)))
        if binary:  # sigmoid: p = sigmoid(u), the "classes" are 0 (logit 0) and 1 (logit z)
            p = torch.sigmoid(u)
            return ((p - target) * z).mean(-1), (p * (1 - p) * z * z).mean(-1)
        p = torch.softmax(u, dim=1)
        expected = (p * z).sum(1)
        g = (expected - target_z).mean(-1)
        h = ((p * z * z).sum(1) - expected.square()).mean(-1)
        return g, h

    for _ in range(iterations):
        g, h = derivatives(beta)
        done = broken | (g.abs() <= 1e-12 * (1 + h.sqrt()))
        if bool(done.all()):  # converged (Newton is quadratic near the optimum)
            break
        lo = torch.where(g < 0, beta, lo)
        hi = torch.where(g > 0, beta, hi)
        newton = beta - g / h.clamp_min(1e-300)
        bisect = torch.sqrt(lo * hi)
        inside = (newton > lo) & (newton < hi) & torch.isfinite(newton)
        beta = torch.where(done | (g == 0), beta, torch.where(inside, newton, bisect))
    return (1.0 / beta).masked_fill(broken, float("nan"))


def scaled(logits: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """Logits divided by each member's temperature ([M])."""
    return logits / temperature.to(logits.dtype).view(-1, *([1] * (logits.dim() - 1)))


BOOTSTRAP_REPLICATES = 500


def bootstrap_counts(n: int, replicates: int = BOOTSTRAP_REPLICATES, device="cpu") -> torch.Tensor:
    """[replicates, n]: how often each of n examples is drawn in each bootstrap resample.

    The resamples depend only on n (the generator is seeded with it), so every member of every population
    scored on the same test set shares them: differences between members are paired, and replicate b of
    a mean over members is the mean of their replicate b.
    """
    gen = torch.Generator().manual_seed(1_000_000_007 + n)
    draws = torch.randint(0, n, (replicates, n), generator=gen)
    counts = torch.zeros(replicates, n, dtype=torch.float64)
    counts.scatter_add_(1, draws, torch.ones(replicates, n, dtype=torch.float64))
    return counts.to(device)


def bootstrap_nll_and_ece(
    logits: torch.Tensor, labels: torch.Tensor, counts: torch.Tensor, bins: int = ECE_BINS, chunk: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bootstrap replicates of the NLL and the equal-width ECE per member, [M, replicates] each.

    A resample's ECE keeps each example in its confidence bin: with w the resample's counts and
    d = confidence - correct, ECE = (1/N) sum_bins |sum_{i in bin} w_i d_i|, one matrix product per member.
    """
    n = labels.shape[0]
    nll_out, ece_out = [], []
    for start in range(0, logits.shape[0], chunk):
        z = logits[start : start + chunk]
        nll_out.append((example_nll(z, labels) @ counts.T) / n)
        confidence, correct = top_label(z, labels)
        slot = torch.nn.functional.one_hot(equal_width_bin(confidence, bins), bins).double()  # [m, N, bins]
        per_bin = torch.einsum("rn,mnb->mrb", counts, slot * (confidence - correct).unsqueeze(-1))
        ece_out.append(per_bin.abs().sum(-1) / n)
    return torch.cat(nll_out), torch.cat(ece_out)


# --- the declared result columns -----------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One metric column of the result rows, declared once: the trainer computes it from this declaration, and
    the report's tables, intervals and ``report.json`` read its range, interval kind and label from it.

    ``fn(logits, labels) -> [M]`` computes it on the ``split``'s logits ("test" or "val"); None: the trainer
    computes it itself (the training-set metrics, which need each member's loss). ``kind``: the interval
    kind over seeds ("proportion" in [0, ``upper``], "positive", "real"). ``better``: "higher", "lower" or
    None. ``final_only``: computed at the final evaluation only (NaN on the others). ``scaled``: also
    computed on the temperature-scaled logits, as ``<name>_ts``. Its label is the catalogue message
    ``metric.<name>``.
    """

    name: str
    kind: str
    description: str
    fn: Callable | None = None
    split: str = "test"
    upper: float = 1.0
    better: str | None = None
    final_only: bool = False
    scaled: bool = False

    @property
    def label(self) -> str:
        """The catalogue id of its name in tables and figures (``metric.<name>`` in ``losslab/i18n``)."""
        return f"metric.{self.name}"

    @property
    def columns(self) -> tuple[str, ...]:
        """The result columns it fills: its name, and ``<name>_ts`` when it is also computed after scaling."""
        return (self.name, f"{self.name}_ts") if self.scaled else (self.name,)


#: Every metric column of the rows, in the order tables show them (``METRICS[name]``).
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("train_loss", "real", "each member's own training loss on the training-set subset", better="lower"),
        Metric("train_accuracy", "proportion", "accuracy on the training-set subset", better="higher"),
        Metric("grad_norm", "positive", "mean norm of the loss's gradient with respect to the logits"),
        Metric("dead_fraction", "proportion", "share of training examples misclassified with |dL/dz| < dead_epsilon"),
        Metric("val_accuracy", "proportion", "accuracy on the validation split", accuracy, "val", better="higher"),
        Metric(
            "val_nll", "positive", "negative log-likelihood on the validation split", negative_log_likelihood, "val"
        ),
        Metric("test_accuracy", "proportion", "accuracy on the test set", accuracy, better="higher"),
        Metric(
            "test_nll",
            "positive",
            "negative log-likelihood on the test set",
            negative_log_likelihood,
            better="lower",
            scaled=True,
        ),
        Metric(
            "test_brier",
            "proportion",
            "multiclass Brier score on the test set",
            brier_score,
            upper=2.0,
            better="lower",
            scaled=True,
        ),
        Metric(
            "test_ece",
            "proportion",
            "15-bin equal-width expected calibration error",
            expected_calibration_error,
            better="lower",
            scaled=True,
        ),
        Metric(
            "test_ece_adaptive",
            "proportion",
            "15-bin equal-mass (adaptive) calibration error",
            adaptive_calibration_error,
            better="lower",
            final_only=True,
            scaled=True,
        ),
        Metric(
            "test_ece_classwise",
            "proportion",
            "classwise calibration error (Kull et al. 2019)",
            classwise_calibration_error,
            better="lower",
            final_only=True,
            scaled=True,
        ),
        Metric(
            "test_mce",
            "proportion",
            "maximum calibration error over the 15 equal-width bins",
            max_calibration_error,
            better="lower",
            final_only=True,
            scaled=True,
        ),
        Metric("temperature", "positive", "the temperature fitted on the validation split", final_only=True),
    )
}
