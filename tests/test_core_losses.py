"""Every loss: closed-form gradient versus autograd (float64), trusted twins, reductions, bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss, log_loss

from losslab.core import LOSSES, binary_cross_entropy, cross_entropy, focal, get_loss, mse, square_logits
from losslab.core import label_smoothing_cross_entropy as smoothed_ce

MULTICLASS = sorted(name for name, loss in LOSSES.items() if loss.accepts_multiclass)
BINARY = sorted(name for name, loss in LOSSES.items() if loss.accepts_binary)
PARAMS = {
    "square_logits": [{}, {"k": 5.0, "M": 15.0}],
    "focal": [{"gamma": 0.0}, {"gamma": 0.5}, {"gamma": 2.0}],
    "label_smoothing_cross_entropy": [{"epsilon": 0.0}, {"epsilon": 0.2}],
}

# The largest |closed form - autograd| seen, reported in the closing note (printed with -s).
WORST: dict[str, float] = {}


def autograd_gradient(loss, logits, labels, reduction, **params):
    z = logits.detach().clone().requires_grad_(True)
    value = loss(z, labels, reduction=reduction, **params)
    (g,) = torch.autograd.grad(value.sum(), z)
    return g


def assert_matches_autograd(loss, logits, labels, reduction="mean", **params):
    closed = loss.gradient(logits, labels, reduction=reduction, **params)
    auto = autograd_gradient(loss, logits, labels, reduction, **params)
    assert torch.isfinite(closed).all()
    torch.testing.assert_close(closed, auto, rtol=1e-9, atol=1e-12)
    WORST[loss.name] = max(WORST.get(loss.name, 0.0), (closed - auto).abs().max().item())


def random_targets(gen, batch, k, soft):
    if soft:
        return torch.softmax(torch.randn(batch, k, generator=gen, dtype=torch.float64) * 2, -1)
    return torch.randint(0, k, (batch,), generator=gen)


@pytest.mark.parametrize("name", MULTICLASS)
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multiclass_closed_form_gradient_matches_autograd(name, soft, reduction):
    gen = torch.Generator().manual_seed(1)
    for params in PARAMS.get(name, [{}]):
        for scale in (0.1, 3.0, 30.0):
            z = torch.randn(16, 7, generator=gen, dtype=torch.float64) * scale
            assert_matches_autograd(LOSSES[name], z, random_targets(gen, 16, 7, soft), reduction, **params)


@pytest.mark.parametrize("name", BINARY)
def test_binary_closed_form_gradient_matches_autograd(name):
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(64, generator=gen, dtype=torch.float64) * 8
    for y in (torch.randint(0, 2, (64,), generator=gen), torch.rand(64, generator=gen, dtype=torch.float64)):
        assert_matches_autograd(LOSSES[name], z, y)


@given(
    logits=st.lists(st.floats(-60, 60), min_size=4, max_size=4),
    label=st.integers(0, 3),
    name=st.sampled_from(MULTICLASS),
)
def test_gradients_match_autograd_on_hypothesis_inputs(logits, label, name):
    z = torch.tensor([logits], dtype=torch.float64)
    assert_matches_autograd(LOSSES[name], z, torch.tensor([label]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_extreme_logits_give_finite_values_and_gradients(name, dtype):
    loss = LOSSES[name]
    if loss.accepts_multiclass:
        z = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [1e4, 1e4, 1e4]], dtype=dtype)
        y = torch.tensor([1, 0, 2])
    else:
        z = torch.tensor([1e4, -1e4, 1e4, -1e4], dtype=dtype)
        y = torch.tensor([0, 1, 1, 0])
    value, grad = loss(z, y, reduction="none"), loss.gradient(z, y, reduction="none")
    assert torch.isfinite(value).all() and torch.isfinite(grad).all()
    if dtype == torch.float64:
        assert_matches_autograd(loss, z, y, "none")


def test_confidently_wrong_extremes_have_the_textbook_values():
    z = torch.tensor([[1e4, -1e4]], dtype=torch.float64)  # class 0 certain, truth is class 1
    y = torch.tensor([1])
    assert cross_entropy(z, y).item() == pytest.approx(2e4)
    torch.testing.assert_close(cross_entropy.gradient(z, y), torch.tensor([[1.0, -1.0]], dtype=torch.float64))
    assert mse(z, y).item() == pytest.approx(1.0)  # 1/2 (1 + 1)
    assert mse.gradient(z, y).abs().max().item() == 0.0  # saturated: the gradient is exactly lost
    zb = torch.tensor([-1e4], dtype=torch.float64)
    assert binary_cross_entropy(zb, torch.tensor([1])).item() == pytest.approx(1e4)
    assert mse.gradient(zb, torch.tensor([1])).item() == 0.0


# --- trusted twins -----------------------------------------------------------------------------


def test_cross_entropy_matches_torch_and_sklearn():
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(50, 5, generator=gen, dtype=torch.float64) * 4
    y = torch.randint(0, 5, (50,), generator=gen)
    torch.testing.assert_close(cross_entropy(z, y), F.cross_entropy(z, y))
    torch.testing.assert_close(cross_entropy(z, y, reduction="none"), F.cross_entropy(z, y, reduction="none"))
    soft = torch.softmax(torch.randn(50, 5, generator=gen, dtype=torch.float64), -1)
    torch.testing.assert_close(cross_entropy(z, soft), F.cross_entropy(z, soft))
    sk = log_loss(y.numpy(), torch.softmax(z, -1).numpy(), labels=list(range(5)))
    assert cross_entropy(z, y).item() == pytest.approx(sk, rel=1e-9)


def test_binary_cross_entropy_matches_torch_and_sklearn():
    gen = torch.Generator().manual_seed(4)
    z = torch.randn(40, generator=gen, dtype=torch.float64) * 5
    y = torch.randint(0, 2, (40,), generator=gen)
    torch.testing.assert_close(binary_cross_entropy(z, y), F.binary_cross_entropy_with_logits(z, y.double()))
    assert binary_cross_entropy(z, y).item() == pytest.approx(log_loss(y.numpy(), torch.sigmoid(z).numpy()), rel=1e-9)


def test_mse_relates_to_mse_loss_and_the_brier_score():
    gen = torch.Generator().manual_seed(5)
    z = torch.randn(30, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (30,), generator=gen)
    p, onehot = torch.softmax(z, -1), F.one_hot(y, 4).double()
    # torch's mse_loss averages over batch x K; eq. (31) sums over K and halves.
    torch.testing.assert_close(F.mse_loss(p, onehot), mse(z, y) * 2 / 4)
    # Multiclass Brier score = mean over examples of sum_k (p_k - y_k)^2 = 2 x eq. (31).
    brier = ((p - onehot) ** 2).sum(-1).mean()
    torch.testing.assert_close(brier, 2 * mse(z, y))
    # Binary: sklearn's brier_score_loss is mean (p - y)^2 = 2 x the sigmoid MSE.
    zb, yb = z[:, 0], (y == 0).long()
    assert brier_score_loss(yb.numpy(), torch.sigmoid(zb).numpy()) == pytest.approx(2 * mse(zb, yb).item(), rel=1e-12)


def test_focal_with_gamma_zero_is_cross_entropy_and_smoothing_matches_torch():
    gen = torch.Generator().manual_seed(6)
    z = torch.randn(20, 6, generator=gen, dtype=torch.float64) * 3
    y = torch.randint(0, 6, (20,), generator=gen)
    torch.testing.assert_close(focal(z, y, gamma=0.0), cross_entropy(z, y))
    torch.testing.assert_close(focal.gradient(z, y, gamma=0.0), cross_entropy.gradient(z, y))
    assert focal(z, y, gamma=2.0) < cross_entropy(z, y)
    torch.testing.assert_close(smoothed_ce(z, y, epsilon=0.2), F.cross_entropy(z, y, label_smoothing=0.2))
    torch.testing.assert_close(smoothed_ce(z, y, epsilon=0.0), cross_entropy(z, y))


def test_square_logits_is_hui_and_belkin_loss():
    z = torch.tensor([[2.0, -1.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([0])
    # (1/K)[k (z_c - M)^2 + sum_{i != c} z_i^2] with k = 2, M = 3
    expected = (2 * (2.0 - 3) ** 2 + 1.0 + 0.25) / 3
    assert square_logits(z, y, k=2.0, M=3.0).item() == pytest.approx(expected)
    # k = M = 1 is plain squared error to the one-hot target, averaged over classes
    assert square_logits(z, y).item() == pytest.approx(F.mse_loss(z, F.one_hot(y, 3).double()).item())


def test_reductions_are_consistent():
    gen = torch.Generator().manual_seed(7)
    z = torch.randn(9, 3, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (9,), generator=gen)
    for loss in (LOSSES[n] for n in MULTICLASS):
        none = loss(z, y, reduction="none")
        assert none.shape == (9,)
        torch.testing.assert_close(loss(z, y, reduction="sum"), none.sum())
        torch.testing.assert_close(loss(z, y), none.mean())
        torch.testing.assert_close(loss.gradient(z, y, reduction="sum"), loss.gradient(z, y, reduction="none"))
        torch.testing.assert_close(loss.gradient(z, y), loss.gradient(z, y, reduction="none") / 9)


# --- bad input: every message pinned ------------------------------------------------------------

Z = torch.zeros(4, 3)


@pytest.mark.parametrize(
    "logits, labels, kwargs, error, message",
    [
        (Z, torch.tensor([0, 1, 2]), {}, ValueError, r"labels has batch size 3 but logits has batch size 4"),
        (Z, torch.tensor([0, 1, 2, 3]), {}, ValueError, r"labels must be class indices in \[0, 2\], got \[3\]"),
        (Z, torch.tensor([0, -1, 2, 1]), {}, ValueError, r"class indices in \[0, 2\], got \[-1\]"),
        (Z, torch.tensor([0.0, 1.0, 2.0, 1.0]), {}, TypeError, r"labels given as class indices must be an integer"),
        (Z, torch.full((4, 3), 0.5), {}, ValueError, r"each row of labels must sum to 1 .* got row sums \[1\.5"),
        (
            Z,
            torch.tensor([[1.5, -0.5, 0.0]] * 4),
            {},
            ValueError,
            r"labels must be non-negative probabilities, got \[-0\.5, -0\.5, -0\.5, \.\.\.\]; targets are probabilities",
        ),
        (Z, torch.zeros(4, 2), {}, ValueError, r"must have the logits' shape \[4, 3\], got \[4, 2\]"),
        (Z, torch.zeros(4, 3, 1), {}, ValueError, r"labels must be class indices of shape \[batch\] or probability"),
        (torch.tensor([[0.0, float("nan"), 1.0]]), torch.tensor([0]), {}, ValueError, r"logits must be finite, got 1"),
        (
            torch.tensor([[0.0, float("inf")]]),
            torch.tensor([0]),
            {},
            ValueError,
            r"non-finite value\(s\) such as \[inf\]",
        ),
        (torch.zeros(2, 3, dtype=torch.long), torch.tensor([0, 1]), {}, TypeError, r"logits must be a floating-point"),
        (torch.zeros(2, 1), torch.tensor([0, 0]), {}, ValueError, r"logits must have at least 2 classes"),
        (torch.zeros(2, 2, 2), torch.tensor([0, 0]), {}, ValueError, r"logits must have shape \[batch, num_classes\]"),
        (Z, torch.tensor([0, 1, 2, 0]), {"reduction": "avg"}, ValueError, r"reduction must be one of \['mean', 'sum'"),
        (Z, [0, 1, 2, 0], {}, TypeError, r"labels must be a torch.Tensor, got list"),
    ],
)
def test_cross_entropy_bad_input(logits, labels, kwargs, error, message):
    with pytest.raises(error, match=message):
        cross_entropy(logits, labels, **kwargs)
    with pytest.raises(error, match=message):
        cross_entropy.gradient(logits, labels, **kwargs)


def test_binary_and_parameter_errors():
    with pytest.raises(ValueError, match=r"labels must be probabilities in \[0, 1\] for a binary loss, got \[1\.5\]"):
        binary_cross_entropy(torch.zeros(2), torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 1\], got \[2\]"):
        binary_cross_entropy(torch.zeros(2), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"labels must have shape \[batch\] = \[2\]"):
        mse(torch.zeros(2), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r"loss 'binary_cross_entropy' takes one logit per example"):
        binary_cross_entropy(Z, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(
        ValueError, match=r"loss 'focal' takes logits of shape \[batch, num_classes\].*two_class_logits"
    ):
        focal(torch.zeros(3), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r"gamma must be a finite number >= 0 .* got -1"):
        focal(Z, torch.tensor([0, 1, 2, 0]), gamma=-1)
    with pytest.raises(ValueError, match=r"epsilon must be a number in \[0, 1\), got 1\.0"):
        smoothed_ce(Z, torch.tensor([0, 1, 2, 0]), epsilon=1.0)
    with pytest.raises(ValueError, match=r"k must be a positive finite number, got 0"):
        square_logits(Z, torch.tensor([0, 1, 2, 0]), k=0)
    with pytest.raises(ValueError, match=r"loss 'mse' got unknown parameter\(s\) \['gamma'\]; valid parameters: none"):
        mse(Z, torch.tensor([0, 1, 2, 0]), gamma=1.0)


def test_registry_lookup_lists_valid_names():
    assert get_loss("mse") is mse
    with pytest.raises(
        ValueError, match=r"unknown loss 'hinge'; valid losses: binary_cross_entropy, cross_entropy, focal"
    ):
        get_loss("hinge")


def test_print_worst_autograd_gap():  # runs last in this module; -s shows the figures for the note
    assert WORST, "the gradient tests above must have run"
    for name, gap in sorted(WORST.items()):
        print(f"largest |closed form - autograd| for {name}: {gap:.3g}")
    assert max(WORST.values()) < 1e-10
    np.testing.assert_array_less(list(WORST.values()), 1e-10)


# --- focal loss against an independent reference ------------------------------------------------------
# The gradient tests above compare the closed-form gradient with autograd of the same value function, so
# a wrong value would pass them. These tests compute the value from Lin et al.'s (2017) definition,
# FL = -sum_i y_i (1 - p_i)^gamma log p_i with p = softmax(z), in 60-digit arithmetic (mpmath), and check
# hand-computed cases.


def focal_reference(z, y, gamma: float) -> list[float]:
    """Lin et al.'s focal loss per example, straight from the definition, in mpmath (60 digits)."""
    import mpmath

    with mpmath.workdps(60):
        out = []
        for logits, target in zip(z.tolist(), y.tolist()):
            logits = [mpmath.mpf(v) for v in logits]
            norm = mpmath.fsum(mpmath.exp(v) for v in logits)
            p = [mpmath.exp(v) / norm for v in logits]
            g = mpmath.mpf(gamma)
            out.append(float(-mpmath.fsum(t * (1 - pi) ** g * mpmath.log(pi) for t, pi in zip(target, p))))
        return out


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 5.0])
def test_focal_value_matches_an_independent_high_precision_reference(gamma):
    gen = torch.Generator().manual_seed(11)
    z = torch.randn(40, 5, generator=gen, dtype=torch.float64) * 4
    labels = torch.randint(0, 5, (40,), generator=gen)
    onehot = F.one_hot(labels, 5).double()
    soft = torch.softmax(torch.randn(40, 5, generator=gen, dtype=torch.float64), -1)  # probability targets
    for targets in (onehot, soft):
        ours = focal(z, labels if targets is onehot else targets, reduction="none", gamma=gamma)
        np.testing.assert_allclose(ours.numpy(), focal_reference(z, targets, gamma), rtol=1e-12, atol=0)


def test_focal_value_at_extreme_logits_matches_the_reference():
    # Confidently right (1 - p ~ e^-30: the focal factor is ~1e-26), wrong by 30, and wrong by 1e4 (log p = -1e4).
    z = torch.tensor([[30.0, 0.0], [0.0, 30.0], [1e4, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1])
    ours = focal(z, y, reduction="none", gamma=2.0)
    reference = focal_reference(z, F.one_hot(y, 2).double(), 2.0)
    np.testing.assert_allclose(ours.numpy(), reference, rtol=1e-10, atol=0)
    assert reference[2] == pytest.approx(1e4, rel=1e-12) and 0 < reference[0] < 1e-38


def test_focal_value_hand_computed_cases():
    ln = np.log
    # Two equal logits: p = 1/2, FL = (1/2)^gamma log 2.
    z = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0])
    for gamma, expected in ((0.0, ln(2)), (1.0, ln(2) / 2), (2.0, ln(2) / 4)):
        assert focal(z, y, reduction="none", gamma=gamma).item() == pytest.approx(expected, rel=1e-14)
    # z = [log 3, 0]: p = 3/4 for the true class, FL = (1/4)^2 log(4/3) with gamma = 2; 1/4 log 4 for class 1.
    z = torch.tensor([[ln(3.0), 0.0], [ln(3.0), 0.0]], dtype=torch.float64)
    values = focal(z, torch.tensor([0, 1]), reduction="none", gamma=2.0)
    np.testing.assert_allclose(values.numpy(), [ln(4 / 3) / 16, (3 / 4) ** 2 * ln(4)], rtol=1e-14)
    # Three classes, soft target [1/2, 1/2, 0] on z = 0: p = 1/3 each, FL = (2/3)^2 log 3 (gamma = 2).
    z3 = torch.zeros(1, 3, dtype=torch.float64)
    soft = torch.tensor([[0.5, 0.5, 0.0]], dtype=torch.float64)
    assert focal(z3, soft, reduction="none", gamma=2.0).item() == pytest.approx((2 / 3) ** 2 * ln(3), rel=1e-14)
    # gamma = 0 is cross-entropy, value for value, against torch's own implementation.
    gen = torch.Generator().manual_seed(12)
    zr = torch.randn(25, 7, generator=gen, dtype=torch.float64) * 5
    yr = torch.randint(0, 7, (25,), generator=gen)
    # Both compute logsumexp(z) - z_y: a small value from a difference of numbers as large as |z|, so the
    # rounding is a few ulps of |z| (not of the value); the two implementations order it differently by CPU.
    scale_ulp = torch.finfo(torch.float64).eps * zr.abs().max().item()
    torch.testing.assert_close(
        focal(zr, yr, reduction="none", gamma=0.0),
        F.cross_entropy(zr, yr, reduction="none"),
        rtol=1e-14,
        atol=8 * scale_ulp,
    )


def test_mse_gradient_keeps_its_precision_for_confidently_wrong_and_right_predictions():
    # At a margin of -40 the rival's p is 1 - 4e-18: the direct form p (v - <p, v>) cancels to noise (its
    # norm came out a factor 3 off); the closed form must match 60-digit arithmetic to float64 rounding.
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 60
    from losslab.analysis import landscape

    k = 10
    for margin in (-50.0, -40.0, -30.0, -9.0, 0.5, 12.0, 45.0):
        z = [mpmath.mpf(0)] * k
        z[0 if margin > 0 else 1] = mpmath.mpf(abs(margin))
        e = [mpmath.e**zi for zi in z]
        p = [ei / sum(e) for ei in e]
        v = [pi - (1 if i == 0 else 0) for i, pi in enumerate(p)]
        inner = sum(pi * vi for pi, vi in zip(p, v))
        norm = mpmath.sqrt(sum((pi * (vi - inner)) ** 2 for pi, vi in zip(p, v)))
        ours = landscape.gradient_norm_vs_margin("mse", [margin], k)[0]
        assert ours == pytest.approx(float(norm), rel=1e-13)
