"""Symbolic derivations of the article's equations with sympy.

Each function returns a ``Derivation``: whether the stated equality holds symbolically (the
difference of the two sides simplifies to 0), the two sides as strings, and a note. Where the
article printed a wrong form, a separate function checks the printed form, which must *not* hold.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import sympy as sp


class Derivation(NamedTuple):
    holds: bool
    lhs: str
    rhs: str
    note: str = ""


def _equal(a, b) -> bool:
    return sp.simplify(sp.expand(a - b)) == 0


def _derivation(lhs, rhs, note: str = "") -> Derivation:
    return Derivation(_equal(lhs, rhs), sp.sstr(lhs), sp.sstr(rhs), note)


x, mu = sp.symbols("x mu", real=True)
sigma = sp.symbols("sigma", positive=True)


def sigmoid_expression(arg=x):
    return 1 / (1 + sp.exp(-arg))


# --- eq. 1-4: the sigmoid and its derivative -------------------------------------------------------


def sigmoid_derivative_eq2() -> Derivation:
    """d/dx 1/(1 + e^-x) = e^-x / (1 + e^-x)^2."""
    f = sigmoid_expression()
    return _derivation(sp.diff(f, x), sp.exp(-x) / (1 + sp.exp(-x)) ** 2, "quotient rule")


def sigmoid_derivative_eq3() -> Derivation:
    """e^-x / (1 + e^-x)^2 = 1/(1 + e^-x) * e^-x/(1 + e^-x) = f(x) (1 - f(x))."""
    f = sigmoid_expression()
    return _derivation(sp.exp(-x) / (1 + sp.exp(-x)) ** 2, f * (1 - f), "e^-x/(1 + e^-x) = 1 - f(x)")


# --- eq. 5-10: the pmfs sum to 1 --------------------------------------------------------------------


def binomial_sums_to_one(max_n: int = 8) -> Derivation:
    """sum_k C(n, k) p^k (1 - p)^(n - k) = (p + 1 - p)^n = 1, for every n <= max_n, p symbolic."""
    p = sp.symbols("p", positive=True)
    k = sp.symbols("k", integer=True)
    ok = all(
        sp.expand(sp.summation(sp.binomial(n, k) * p**k * (1 - p) ** (n - k), (k, 0, n))) == 1
        for n in range(1, max_n + 1)
    )
    return Derivation(ok, "sum_k C(n,k) p^k (1-p)^(n-k)", "1", f"n = 1..{max_n}, p symbolic")


def bernoulli_is_binomial_with_one_trial() -> Derivation:
    """Eq. (5) is eq. (6) with n = 1: C(1, x) p^x (1 - p)^(1 - x) = p^x (1 - p)^(1 - x) for x in {0, 1}."""
    p = sp.symbols("p", positive=True)
    ok = all(_equal(sp.binomial(1, xv) * p**xv * (1 - p) ** (1 - xv), p**xv * (1 - p) ** (1 - xv)) for xv in (0, 1))
    return Derivation(ok, "C(1,x) p^x (1-p)^(1-x)", "p^x (1-p)^(1-x)", "x = 0, 1")


def multinomial_sums_to_one(max_n: int = 4, k: int = 3) -> Derivation:
    """sum over m_1 + ... + m_K = n of n!/prod m_i! prod theta_i^m_i = (sum theta)^n = 1 under eq. (9)."""
    from losslab.theory.multinomial_theorem import compositions, multinomial_coefficient

    thetas = sp.symbols(f"theta1:{k}", positive=True)
    theta = [*thetas, 1 - sum(thetas)]  # eq. (9): the last probability is fixed by the others
    ok = all(
        sp.expand(
            sum(multinomial_coefficient(m) * sp.Mul(*[t**mi for t, mi in zip(theta, m)]) for m in compositions(n, k))
        )
        == 1
        for n in range(1, max_n + 1)
    )
    return Derivation(ok, "sum_m n!/prod m_i! prod theta_i^m_i", "1", f"K = {k}, n = 1..{max_n}, theta symbolic")


# --- eq. 11-18: printed forms of the multinomial theorem --------------------------------------------


def multinomial_theorem_printed_eq18(n: int = 2, k: int = 2) -> Derivation:
    """The article prints eq. (18) as sum n!/prod r_i! x^r_1 ... x^r_K: without subscripts it is not the expansion."""
    from losslab.theory.multinomial_theorem import compositions, multinomial_coefficient

    xs = sp.symbols(f"x1:{k + 1}")
    plain = sp.Symbol("x")
    printed = sum(multinomial_coefficient(r) * sp.Mul(*[plain**ri for ri in r]) for r in compositions(n, k))
    return _derivation(sum(xs) ** n, printed, f"printed form, n = {n}, K = {k}")


def multinomial_theorem_corrected_eq18(n: int = 4, k: int = 3) -> Derivation:
    from losslab.theory.multinomial_theorem import compositions, multinomial_coefficient

    xs = sp.symbols(f"x1:{k + 1}")
    corrected = sum(multinomial_coefficient(r) * sp.Mul(*[xi**ri for xi, ri in zip(xs, r)]) for r in compositions(n, k))
    return _derivation(sum(xs) ** n, corrected, f"corrected form, n = {n}, K = {k}")


# --- eq. 19-24: the multinomial MLE by Lagrange multipliers -----------------------------------------


@cache
def lagrange_multinomial_mle(k: int = 3) -> Derivation:
    """max sum m_i log theta_i s.t. sum theta_i = 1 (eq. 23-24) gives theta_i = m_i / sum m, a maximum."""
    m = sp.symbols(f"m1:{k + 1}", positive=True)
    theta = sp.symbols(f"theta1:{k + 1}", positive=True)
    lam = sp.symbols("lambda")
    lagrangian = sum(mi * sp.log(ti) for mi, ti in zip(m, theta)) - lam * (sum(theta) - 1)
    equations = [sp.diff(lagrangian, t) for t in theta] + [sp.diff(lagrangian, lam)]
    solutions = sp.solve(equations, [*theta, lam], dict=True)
    expected = {t: mi / sum(m) for t, mi in zip(theta, m)}
    ok = len(solutions) == 1 and all(_equal(solutions[0][t], expected[t]) for t in theta)
    # The objective's Hessian is diag(-m_i / theta_i^2), negative definite: the stationary point is the maximum.
    hessian = sp.hessian(sum(mi * sp.log(ti) for mi, ti in zip(m, theta)), theta)
    ok = ok and all(sp.simplify(hessian[i, i]).is_negative for i in range(k)) and hessian.is_diagonal()
    lam_value = solutions[0][lam] if solutions else None
    return Derivation(
        ok,
        "argmax_theta sum m_i log theta_i, sum theta = 1",
        "theta_i = m_i / n",
        f"K = {k}; lambda = {lam_value}; Hessian diag(-m_i/theta_i^2) < 0",
    )


# --- eq. 26-30: the Gaussian ------------------------------------------------------------------------


def gaussian_log_density():
    density = sp.exp(-((x - mu) ** 2) / (2 * sigma**2)) / sp.sqrt(2 * sp.pi * sigma**2)
    return sp.expand_log(sp.log(density), force=True)


def gaussian_eq28_printed() -> Derivation:
    """The article's first (28): -1/2 log(2 pi sigma^2) - (x - mu)^2 / 2, missing sigma^2 in the denominator."""
    printed = -sp.log(2 * sp.pi * sigma**2) / 2 - (x - mu) ** 2 / 2
    return _derivation(gaussian_log_density(), sp.expand_log(printed, force=True), "printed first form of (28)")


def gaussian_eq28_corrected() -> Derivation:
    corrected = -sp.log(2 * sp.pi * sigma**2) / 2 - (x - mu) ** 2 / (2 * sigma**2)
    return _derivation(gaussian_log_density(), sp.expand_log(corrected, force=True), "second form of (28)")


def gaussian_drop_constant_fixed_sigma() -> Derivation:
    """With sigma fixed, -1/2 log(2 pi sigma^2) does not depend on mu: same argmax over mu (eq. 29)."""
    full = gaussian_log_density()
    dropped = -((x - mu) ** 2) / (2 * sigma**2)
    return _derivation(sp.diff(full, mu), sp.diff(dropped, mu), "d/dmu of both objectives")


def gaussian_drop_constant_free_sigma() -> Derivation:
    """Over theta = [mu, sigma] (eq. 30) the dropped term depends on sigma: the argmax changes."""
    full = gaussian_log_density()
    dropped = -((x - mu) ** 2) / (2 * sigma**2)
    return _derivation(sp.diff(full, sigma), sp.diff(dropped, sigma), "d/dsigma of both objectives")


@cache
def gaussian_mle(n: int = 4) -> Derivation:
    """Sample of n: mu* = mean(x) (any sigma), sigma*^2 = mean((x - mu*)^2) when sigma is free."""
    xs = sp.symbols(f"x1:{n + 1}", real=True)
    s2 = sp.symbols("s2", positive=True)  # sigma^2
    loglik = sum(-((xi - mu) ** 2) / (2 * s2) - sp.log(2 * sp.pi * s2) / 2 for xi in xs)
    mu_star = sp.solve(sp.diff(loglik, mu), mu)
    mean = sum(xs) / n
    ok_mu = len(mu_star) == 1 and _equal(mu_star[0], mean)
    s2_star = sp.solve(sp.diff(loglik.subs(mu, mean), s2), s2)
    ok_s2 = len(s2_star) == 1 and _equal(s2_star[0], sum((xi - mean) ** 2 for xi in xs) / n)
    return Derivation(ok_mu and ok_s2, "argmax over (mu, sigma^2)", "(mean, mean squared deviation)", f"n = {n}")


# --- the logit gradients ----------------------------------------------------------------------------


def _softmax_symbols(k: int):
    z = sp.symbols(f"z1:{k + 1}", real=True)
    y = sp.symbols(f"y1:{k + 1}", real=True)
    e = [sp.exp(zi) for zi in z]
    return z, y, [ei / sum(e) for ei in e]


@cache
def cross_entropy_gradient(k: int = 3) -> Derivation:
    """d/dz_j -sum_i y_i log p_i = p_j - y_j when sum y = 1."""
    z, y, p = _softmax_symbols(k)
    ce = -sum(yi * sp.log(pi) for yi, pi in zip(y, p))
    constraint = {y[-1]: 1 - sum(y[:-1])}
    ok = all(sp.simplify((sp.diff(ce, z[j]) - (p[j] - y[j])).subs(constraint)) == 0 for j in range(k))
    return Derivation(ok, "dCE/dz_j", "p_j - y_j", f"K = {k}, sum y = 1")


@cache
def softmax_mse_gradient(k: int = 3) -> Derivation:
    """d/dz_j 1/2 sum_i (p_i - y_i)^2 = sum_i (p_i - y_i) p_i (delta_ij - p_j) = [(diag p - p p^T)(p - y)]_j."""
    z, y, p = _softmax_symbols(k)
    loss = sum((pi - yi) ** 2 for pi, yi in zip(p, y)) / 2
    closed = [sum((p[i] - y[i]) * p[i] * (int(i == j) - p[j]) for i in range(k)) for j in range(k)]
    ok = all(sp.simplify(sp.diff(loss, z[j]) - closed[j]) == 0 for j in range(k))
    return Derivation(ok, "dMSE/dz_j", "[(diag p - p p^T)(p - y)]_j", f"K = {k}")


def sigmoid_mse_gradient() -> Derivation:
    """d/dz 1/2 (f(z) - y)^2 = (f - y) f (1 - f): the sigmoid's derivative (eq. 4) is a factor."""
    y = sp.symbols("y", real=True)
    f = sigmoid_expression()
    return _derivation(sp.diff((f - y) ** 2 / 2, x), (f - y) * f * (1 - f))


def sigmoid_cross_entropy_gradient() -> Derivation:
    """d/dz -[y log f + (1 - y) log(1 - f)] = f - y: the sigmoid's derivative cancels."""
    y = sp.symbols("y", real=True)
    f = sigmoid_expression()
    return _derivation(sp.diff(-(y * sp.log(f) + (1 - y) * sp.log(1 - f)), x), f - y)
