import pytest
import torch

from losslab.core import (
    log_sigmoid,
    log_softmax,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_jacobian,
    softmax_jvp,
    two_class_logits,
)

EXTREME = [-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sigmoid_and_its_derivative_are_finite_and_exact_at_extremes(dtype):
    x = torch.tensor(EXTREME, dtype=dtype, requires_grad=True)
    s = sigmoid(x)
    assert torch.isfinite(s).all() and torch.isfinite(sigmoid_grad(x)).all()
    assert s[0] == 0 and s[-1] == 1 and s[3] == 0.5
    (auto,) = torch.autograd.grad(s.sum(), x)
    torch.testing.assert_close(sigmoid_grad(x.detach()), auto)
    assert sigmoid_grad(torch.tensor([0.0], dtype=dtype)).item() == 0.25
    # log_sigmoid keeps the tail that sigmoid itself rounds to 0.
    assert log_sigmoid(torch.tensor([-1e4], dtype=dtype)).item() == pytest.approx(-1e4)


def test_sigmoid_grad_equals_the_articles_three_forms():
    x = torch.linspace(-30, 30, 601, dtype=torch.float64)
    f = 1 / (1 + torch.exp(-x))
    eq2 = torch.exp(-x) / (1 + torch.exp(-x)) ** 2
    eq4 = f * (1 - f)
    torch.testing.assert_close(sigmoid_grad(x), eq2, rtol=1e-12, atol=1e-300)
    torch.testing.assert_close(sigmoid_grad(x), eq4, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_family_is_finite_for_extreme_logits(dtype):
    z = torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    p, logp = softmax(z), log_softmax(z)
    assert torch.isfinite(p).all() and torch.isfinite(logp).all()
    torch.testing.assert_close(p.sum(-1), torch.ones(2, dtype=dtype))
    assert logp[0, 1].item() == pytest.approx(-2e4)


def test_softmax_jacobian_matches_autograd_and_its_product_needs_no_matrix():
    torch.manual_seed(0)
    z = torch.randn(5, 7, dtype=torch.float64) * 3
    jac = softmax_jacobian(z)
    for b in range(5):
        auto = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, -1), z[b])
        torch.testing.assert_close(jac[b], auto, rtol=0, atol=1e-15)
    torch.testing.assert_close(jac, jac.transpose(-1, -2))
    v = torch.randn(5, 7, dtype=torch.float64)
    torch.testing.assert_close(softmax_jvp(z, v), (jac @ v.unsqueeze(-1)).squeeze(-1), rtol=0, atol=1e-15)


def test_two_class_embedding_reproduces_the_sigmoid():
    z = torch.linspace(-20, 20, 81, dtype=torch.float64)
    torch.testing.assert_close(softmax(two_class_logits(z))[:, 1], sigmoid(z))


def test_link_errors_name_the_argument():
    with pytest.raises(TypeError, match=r"logits must be a torch.Tensor, got list; wrap it with torch.as_tensor"):
        sigmoid([0.0])
    with pytest.raises(ValueError, match=r"logits must have shape \[batch, num_classes\], got shape \[3\]"):
        softmax(torch.zeros(3))
    with pytest.raises(ValueError, match=r"vector must have the logits' shape \[2, 3\], got \[2, 4\]"):
        softmax_jvp(torch.zeros(2, 3), torch.zeros(2, 4))
