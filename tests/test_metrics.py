"""Metrics against independent references: scikit-learn, torchmetrics, scipy, and small cases by hand."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from sklearn.metrics import accuracy_score, log_loss
from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

from losslab.train import metrics


def random_logits(members=3, n=800, k=4, seed=0, informative=True):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=gen)
    logits = torch.randn(members, n, k, generator=gen, dtype=torch.float64) * 2
    if informative:  # logits that carry signal, so calibration is neither perfect nor hopeless
        logits += (
            3 * torch.nn.functional.one_hot(labels, k) * torch.rand(members, n, 1, generator=gen, dtype=torch.float64)
        )
    return logits, labels


def test_accuracy_nll_and_brier_match_scikit_learn():
    logits, labels = random_logits()
    p = torch.softmax(logits, -1).numpy()
    for m in range(3):
        assert metrics.accuracy(logits, labels)[m].item() == pytest.approx(accuracy_score(labels, p[m].argmax(1)))
        assert metrics.negative_log_likelihood(logits, labels)[m].item() == pytest.approx(
            log_loss(labels, p[m], labels=[0, 1, 2, 3]), rel=1e-10
        )
        brier = ((p[m] - np.eye(4)[labels]) ** 2).sum(1).mean()
        assert metrics.brier_score(logits, labels)[m].item() == pytest.approx(brier, rel=1e-12)


@pytest.mark.parametrize("k", [2, 3, 10])
def test_equal_width_ece_and_mce_match_torchmetrics(k):
    logits, labels = random_logits(n=2000, k=k, seed=k)
    ece, mce = metrics.expected_calibration_error(logits, labels), metrics.max_calibration_error(logits, labels)
    for m in range(logits.shape[0]):
        p = torch.softmax(logits[m], -1)
        assert ece[m].item() == pytest.approx(
            multiclass_calibration_error(p, labels, num_classes=k, n_bins=15, norm="l1").item(), abs=1e-6
        )
        assert mce[m].item() == pytest.approx(
            multiclass_calibration_error(p, labels, num_classes=k, n_bins=15, norm="max").item(), abs=1e-6
        )


def test_sigmoid_models_are_scored_on_their_two_class_probabilities():
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(2, 1000, generator=gen, dtype=torch.float64) * 3
    y = torch.randint(0, 2, (1000,), generator=gen)
    ece = metrics.expected_calibration_error(z, y)
    for m in range(2):
        p = torch.sigmoid(z[m])
        # torchmetrics' binary ECE bins p(class 1); the top-label ECE bins max(p, 1 - p): compare with the
        # multiclass form on [1 - p, p], which is the same top-label quantity.
        two = torch.stack([1 - p, p], -1)
        assert ece[m].item() == pytest.approx(
            multiclass_calibration_error(two, y, num_classes=2, n_bins=15).item(), abs=1e-6
        )
        assert binary_calibration_error(p, y, n_bins=15).item() >= 0  # the reference runs on the same data


def test_calibration_errors_on_cases_worked_by_hand():
    # Four examples, two classes. Probabilities of class 1: 0.9, 0.9, 0.2, 1.0; labels 1, 0, 0, 1.
    p1 = torch.tensor([0.9, 0.9, 0.2, 1.0], dtype=torch.float64)
    logits = torch.log(torch.stack([1 - p1, p1], -1)).unsqueeze(0)  # softmax gives back exactly these
    labels = torch.tensor([1, 0, 0, 1])
    # Top-label confidence 0.9, 0.9, 0.8, 1.0; correct 1, 0, 1, 1. Bins of width 1/15: 0.9 -> bin 13,
    # 0.8 -> bin 12, 1.0 -> the last bin (14).
    # ECE = (2/4)|0.5 - 0.9| + (1/4)|1 - 0.8| + (1/4)|1 - 1| = 0.2 + 0.05 = 0.25; MCE = 0.4.
    assert metrics.expected_calibration_error(logits, labels).item() == pytest.approx(0.25, abs=1e-12)
    assert metrics.max_calibration_error(logits, labels).item() == pytest.approx(0.4, abs=1e-12)
    bins = metrics.reliability_bins(logits, labels)
    assert bins["count"][0, 12:].tolist() == [1, 2, 1] and bins["count"].sum().item() == 4
    assert bins["accuracy"][0, 13].item() == 0.5 and torch.isnan(bins["accuracy"][0, 0])
    # Adaptive, 15 runs over 4 examples: runs of 1 example each (sorted 0.8, 0.9, 0.9, 1.0), the rest empty:
    # |1 - 0.8| + |1 - 0.9| + |0 - 0.9| + |1 - 1.0|, over 4 = 1.2 / 4 = 0.3.
    assert metrics.adaptive_calibration_error(logits, labels).item() == pytest.approx(0.3, abs=1e-12)
    # Classwise: class 1 has p = 0.9, 0.9, 0.2, 1.0 and hits 1, 0, 0, 1: bins 13 (2 ex., p 1.8 vs 1 hit),
    # 3 (0.2 vs 0), 14 (1.0 vs 1): |1.8 - 1| + 0.2 + 0 = 1.0; class 0 (p = 0.1, 0.1, 0.8, 0.0; hits 0, 1, 1, 0):
    # bin 1: |0.2 - 1| = 0.8, bin 12: |0.8 - 1| = 0.2, bin 0: 0: 1.0. Mean over classes, over N: 2.0 / (4 * 2).
    assert metrics.classwise_calibration_error(logits, labels).item() == pytest.approx(0.25, abs=1e-12)


def test_adaptive_bins_hold_near_equal_counts():
    logits, labels = random_logits(members=1, n=1000, k=5)
    confidence, correct = metrics.top_label(logits, labels)
    order = np.argsort(confidence[0].numpy(), kind="stable")
    ece = sum(
        len(run) / 1000 * abs(correct[0].numpy()[run].mean() - confidence[0].numpy()[run].mean())
        for run in np.array_split(order, 15)
    )
    assert metrics.adaptive_calibration_error(logits, labels).item() == pytest.approx(ece, abs=1e-12)


def test_classwise_ece_matches_a_direct_loop():
    logits, labels = random_logits(members=2, n=600, k=3, seed=5)
    p = torch.softmax(logits, -1).numpy()
    for m in range(2):
        total = 0.0
        for k in range(3):
            index = np.minimum(np.floor(p[m, :, k] * 15).astype(int), 14)
            for b in range(15):
                inside = index == b
                total += abs(p[m, inside, k].sum() - (labels.numpy()[inside] == k).sum()) / 600
        assert metrics.classwise_calibration_error(logits, labels)[m].item() == pytest.approx(total / 3, abs=1e-12)


@pytest.mark.parametrize("binary", [False, True])
def test_temperature_minimises_the_nll(binary):
    gen = torch.Generator().manual_seed(3)
    if binary:
        y = torch.randint(0, 2, (500,), generator=gen)
        z = (
            (2 * y - 1)
            * torch.rand(4, 500, generator=gen, dtype=torch.float64)
            * torch.tensor([[1.0], [5.0], [20.0], [0.3]], dtype=torch.float64)
        )
        z = z + torch.randn(4, 500, generator=gen, dtype=torch.float64)
    else:
        z, y = random_logits(members=4, n=500, k=5, seed=3)
        z = z * torch.tensor([0.2, 1.0, 5.0, 30.0], dtype=torch.float64).view(-1, 1, 1)
    temperature = metrics.fit_temperature(z, y)
    for m in range(z.shape[0]):
        best = minimize_scalar(
            lambda log_t, m=m: metrics.negative_log_likelihood(z[m : m + 1] / np.exp(log_t), y).item(),
            bounds=(-8, 8),
            method="bounded",
            options={"xatol": 1e-10},
        )
        assert temperature[m].item() == pytest.approx(np.exp(best.x), rel=1e-5)
    scaled = metrics.negative_log_likelihood(metrics.scaled(z, temperature), y)
    assert (scaled <= metrics.negative_log_likelihood(z, y) + 1e-12).all()


def test_temperature_edge_cases():
    labels = torch.tensor([0, 1, 2, 0])
    flat = torch.zeros(1, 4, 3, dtype=torch.float64)
    assert metrics.fit_temperature(flat, labels).item() == 1.0  # no information: leave the logits alone
    perfect = 5 * torch.nn.functional.one_hot(labels, 3).double().unsqueeze(0)
    # Every example right: the NLL has no minimiser (it falls as T -> 0). Laplace's rule of succession keeps
    # 1/(n + 2) = 1/6 of each example's probability off its label: the fitted confidence is 5/6, so
    # e^(5/T) / (e^(5/T) + 2) = 5/6 gives T = 5 / log 10, the same whatever the logits' last bits.
    assert metrics.fit_temperature(perfect, labels).item() == pytest.approx(5 / np.log(10), rel=1e-9)
    assert metrics.fit_temperature(perfect * (1 + 1e-15), labels).item() == pytest.approx(5 / np.log(10), rel=1e-9)
    nearly = perfect.clone()
    nearly[0, 0] = torch.tensor([0.0, 5.0, 0.0])  # one mistake: a finite sharpest temperature exists
    t = metrics.fit_temperature(nearly, labels)
    nll = lambda temperature: metrics.negative_log_likelihood(metrics.scaled(nearly, temperature), labels).item()  # noqa: E731
    assert nll(t) <= min(nll(t * 1.01), nll(t / 1.01)) and t.item() != 1.0
    broken = perfect.clone()
    broken[0, 1, 1] = float("nan")
    assert torch.isnan(metrics.fit_temperature(broken, labels)).all()


@pytest.mark.parametrize("binary", [False, True])
def test_a_perfect_validation_split_still_sharpens_under_confident_logits(binary):
    # The square loss's logits: right everywhere on validation, but with probabilities near 1/K. Leaving T = 1
    # kept test NLL near log K; the Laplace-smoothed fit makes the members confident without claiming certainty.
    gen = torch.Generator().manual_seed(5)
    n, k = 200, 10
    y = torch.randint(0, 2 if binary else k, (2 * n,), generator=gen)
    if binary:
        z = (2 * y - 1).double() * (0.05 + 0.05 * torch.rand(1, 2 * n, generator=gen, dtype=torch.float64))
    else:
        z = 0.2 * torch.nn.functional.one_hot(y, k).double().unsqueeze(0)
        z = z + 0.01 * torch.rand(1, 2 * n, k, generator=gen, dtype=torch.float64)
    val, test = slice(0, n), slice(n, 2 * n)
    t = metrics.fit_temperature(z[:, val], y[val])
    assert t.item() < 0.1  # much sharper than the raw logits
    raw = metrics.negative_log_likelihood(z[:, test], y[test]).item()
    fitted = metrics.negative_log_likelihood(metrics.scaled(z[:, test], t), y[test]).item()
    assert fitted < raw / 20 and fitted > 0
    # The fitted confidence on validation is about 1 - 1/(n + 2), not 1.
    confidence, _ = metrics.top_label(metrics.scaled(z[:, val], t), y[val])
    assert confidence.mean().item() == pytest.approx(1 - 1 / (n + 2), abs=2e-3)


def test_bootstrap_replicates_equal_direct_resampling():
    logits, labels = random_logits(members=2, n=300, k=4, seed=9)
    counts = metrics.bootstrap_counts(300, replicates=20)
    assert torch.equal(counts, metrics.bootstrap_counts(300, replicates=20))  # depends only on n
    assert (counts.sum(1) == 300).all()
    nll, ece = metrics.bootstrap_nll_and_ece(logits, labels, counts)
    for r in (0, 7, 19):
        index = torch.repeat_interleave(torch.arange(300), counts[r].long())
        direct_nll = metrics.negative_log_likelihood(logits[:, index], labels[index])
        direct_ece = metrics.expected_calibration_error(logits[:, index], labels[index])
        torch.testing.assert_close(nll[:, r], direct_nll, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ece[:, r], direct_ece, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(metrics.METRICS))
def test_every_declared_metric_is_computed_in_its_range_and_named_in_every_language(name):
    """One test for every metric METRICS declares, so that a metric added there needs no test of its own to be
    held to this: one value per member, in its declared range, for softmax and sigmoid logits; a label in every
    catalogue (the report's tables and report.json name it by ``metric.<name>``)."""
    from losslab.i18n import LANGUAGES, messages

    metric = metrics.METRICS[name]
    for lang in LANGUAGES:
        assert metric.label in messages(lang), f"{metric.label} is missing from the {lang} catalogue"
    if metric.fn is None:  # computed by the trainer itself (the training-set metrics, the temperature)
        return
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (200,), generator=gen)
    for logits, y in (
        (3 * torch.randn(3, 200, 4, generator=gen), labels),
        (3 * torch.randn(3, 200, generator=gen), labels % 2),
    ):
        values = metric.fn(logits, y)
        assert values.shape == (3,) and torch.isfinite(values).all()
        if metric.kind == "proportion":
            assert ((values >= 0) & (values <= metric.upper)).all()
        elif metric.kind == "positive":
            assert (values > 0).all()
