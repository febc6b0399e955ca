"""The identities that connect the losses to the likelihoods, each returning both sides.

Every function returns an ``Identity`` with ``lhs``, ``rhs`` and ``constant`` such that
``lhs == rhs + constant`` holds exactly in float64 (to rounding), and ``error`` gives the largest
absolute discrepancy. These are the numeric half of ``losslab verify``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from losslab.core import binary_cross_entropy, cross_entropy, mse
from losslab.core.losses import binary_mse_grad, cross_entropy_grad
from losslab.theory.distributions import (
    bernoulli_log_likelihood,
    binomial_log_pmf,
    check_counts,
    check_probabilities,
    check_sigma,
    gaussian_log_likelihood,
    multinomial_log_pmf,
)


class Identity(NamedTuple):
    """lhs = rhs + constant, elementwise."""

    lhs: torch.Tensor
    rhs: torch.Tensor
    constant: torch.Tensor

    @property
    def error(self) -> float:
        """Largest |lhs - (rhs + constant)|, the identity's numeric error."""
        return float((self.lhs - (self.rhs + self.constant)).abs().max())


def log_multinomial_coefficient(counts: torch.Tensor) -> torch.Tensor:
    """log(n! / (m_1! ... m_K!)) over the last dimension, with n = sum m."""
    return torch.lgamma(counts.sum(-1) + 1) - torch.lgamma(counts + 1).sum(-1)


def multinomial_nll_identity(counts, theta) -> Identity:
    """Eq. (19)-(25): -log P(m | theta) = N * CE(m / N, theta) - log(N! / prod m_i!).

    ``counts`` [batch, K] (each row with N = sum m_i >= 1) and ``theta`` [batch, K] with theta > 0:
    cross-entropy is evaluated by the core loss on logits log(theta), whose softmax is theta.
    """
    counts = check_counts(counts)
    theta = check_probabilities(theta, "theta", simplex=True)
    if bool((theta <= 0).any()):
        raise ValueError("theta must be > 0 here: cross-entropy takes logits log(theta), which must be finite")
    total = counts.sum(-1)
    if bool((total == 0).any()):
        raise ValueError("each row of counts needs at least one observation (sum > 0)")
    lhs = -multinomial_log_pmf(counts, theta)
    rhs = total * cross_entropy(theta.log(), counts / total.unsqueeze(-1), reduction="none")
    return Identity(lhs, rhs, -log_multinomial_coefficient(counts))


def bernoulli_bce_identity(x, p) -> Identity:
    """Eq. (5): the Bernoulli negative log-likelihood is binary cross-entropy on the logit log(p / (1 - p))."""
    p = check_probabilities(p, "p")
    if bool(((p <= 0) | (p >= 1)).any()):
        raise ValueError("p must lie strictly inside (0, 1) so that its logit is finite")
    x = check_counts(x, "x")
    lhs = -bernoulli_log_likelihood(x, p)
    rhs = binary_cross_entropy(torch.logit(p), x, reduction="none")
    return Identity(lhs, rhs, torch.zeros_like(lhs))


def binomial_bernoulli_identity(k: int, n: int, p: float) -> Identity:
    """Eq. (6)-(7): log Binomial(k | n, p) = log C(n, k) + the log-likelihood of n Bernoulli trials, k of them 1."""
    if not (0 <= k <= n):
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    trials = torch.tensor([1.0] * k + [0.0] * (n - k), dtype=torch.float64)
    lhs = binomial_log_pmf(k, n, p)
    rhs = bernoulli_log_likelihood(trials, torch.full_like(trials, float(p))).sum()
    return Identity(lhs, rhs, torch.tensor(math.log(math.comb(n, k)), dtype=torch.float64))


def gaussian_fixed_sigma_identity(x, mu, sigma) -> Identity:
    """Eq. (26)-(30): -sum log N(x_i; mu, sigma) = sum (x_i - mu)^2 / (2 sigma^2) + (n/2) log(2 pi sigma^2)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    # mu and sigma are one value per sample (a row of x): give them a trailing axis to broadcast over it.
    mu = torch.as_tensor(mu, dtype=torch.float64).unsqueeze(-1)
    sigma = check_sigma(sigma).unsqueeze(-1)
    lhs = -gaussian_log_likelihood(x, mu, sigma).sum(-1)
    rhs = ((x - mu) ** 2 / (2 * sigma**2)).sum(-1)
    constant = 0.5 * x.shape[-1] * torch.log(2 * math.pi * sigma.squeeze(-1) ** 2)
    return Identity(lhs, rhs, constant)


def mse_gaussian_identity(logits, labels) -> Identity:
    """Eq. (31): mean over examples of -log N(y; y_hat, I) = MSE + (K/2) log(2 pi).

    The K outputs y_hat = softmax(logits) are treated as independent unit-variance Gaussian means
    and the one-hot labels as observations; MSE is the article's (half the squared distance).
    """
    logits = torch.as_tensor(logits, dtype=torch.float64)
    y_hat = torch.softmax(logits, -1)
    onehot = torch.nn.functional.one_hot(labels.long(), logits.shape[-1]).double()
    lhs = -gaussian_log_likelihood(onehot, y_hat, 1.0).sum(-1).mean()
    rhs = mse(logits, labels)
    return Identity(lhs, rhs, torch.tensor(0.5 * logits.shape[-1] * math.log(2 * math.pi), dtype=torch.float64))


def _autograd(loss, logits, labels):
    z = logits.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(z, labels, reduction="sum"), z)
    return g


def cross_entropy_gradient_identity(logits, labels) -> Identity:
    """d CE / d z (autograd) = p - y (closed form)."""
    logits = torch.as_tensor(logits, dtype=torch.float64)
    onehot = torch.nn.functional.one_hot(labels.long(), logits.shape[-1]).double()
    lhs = _autograd(cross_entropy, logits, labels)
    return Identity(lhs, cross_entropy_grad(logits, onehot), torch.zeros_like(lhs))


def sigmoid_mse_gradient_identity(logits, labels) -> Identity:
    """d/dz 1/2 (sigmoid(z) - y)^2 (autograd) = (p - y) p (1 - p) (closed form)."""
    logits = torch.as_tensor(logits, dtype=torch.float64)
    lhs = _autograd(mse, logits, labels)
    return Identity(lhs, binary_mse_grad(logits, labels.double()), torch.zeros_like(lhs))
