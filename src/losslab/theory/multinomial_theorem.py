"""The multinomial theorem, eq. (11)-(18), checked in exact integer arithmetic.

(x_1 + ... + x_K)^n = sum over r_1 + ... + r_K = n of n! / (r_1! ... r_K!) x_1^r_1 ... x_K^r_K.
The article derives the coefficient by choosing, factor by factor, which r_1 of the n factors give
x_1, then which r_2 of the remaining n - r_1 give x_2, and so on (eq. 13); the product of binomial
coefficients telescopes (eq. 14-15) to n! / (r_1! ... r_K!) (eq. 17-18).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from fractions import Fraction
from functools import reduce
from itertools import combinations

import sympy


def compositions(n: int, k: int) -> Iterator[tuple[int, ...]]:
    """All (r_1, ..., r_k) of non-negative integers with sum n (eq. 16), by stars and bars."""
    if n < 0 or k < 1:
        raise ValueError(f"need n >= 0 and k >= 1, got n={n}, k={k}")
    for bars in combinations(range(n + k - 1), k - 1):
        edges = (-1, *bars, n + k - 1)
        yield tuple(edges[i + 1] - edges[i] - 1 for i in range(k))


def multinomial_coefficient(exponents: Sequence[int]) -> int:
    """n! / (r_1! ... r_K!) with n = sum r_i, exactly (eq. 17-18)."""
    if any(r < 0 for r in exponents):
        raise ValueError(f"exponents must be non-negative, got {list(exponents)}")
    return math.factorial(sum(exponents)) // math.prod(math.factorial(r) for r in exponents)


def sequential_choice_coefficient(exponents: Sequence[int]) -> int:
    """Eq. (13): C(n, r_1) C(n - r_1, r_2) C(n - r_1 - r_2, r_3) ... : choose the factors for each x_i in turn."""
    remaining, product = sum(exponents), 1
    for r in exponents:
        product *= math.comb(remaining, r)
        remaining -= r
    return product


def telescoped_coefficient(exponents: Sequence[int]) -> Fraction:
    """Eq. (14)-(15): prod_i (n - r_1 - ... - r_{i-1})! / ((n - r_1 - ... - r_i)! r_i!), as an exact fraction."""
    remaining = sum(exponents)
    factors = []
    for r in exponents:
        factors.append(Fraction(math.factorial(remaining), math.factorial(remaining - r) * math.factorial(r)))
        remaining -= r
    return reduce(lambda a, b: a * b, factors, Fraction(1))


def expansion_coefficients(n: int, k: int) -> dict[tuple[int, ...], int]:
    """Coefficients of (x_1 + ... + x_k)^n from sympy's polynomial expansion, keyed by exponent tuple."""
    xs = sympy.symbols(f"x1:{k + 1}")
    poly = sympy.Poly(sympy.expand(sum(xs) ** n), *xs)
    return {tuple(int(e) for e in monom): int(coeff) for monom, coeff in poly.terms()}


def check_multinomial_theorem(max_n: int = 6, max_k: int = 4) -> dict[str, int]:
    """Check eq. (11)-(18) for every 0 <= n <= max_n, 1 <= k <= max_k; return counts of what was checked.

    Raises AssertionError naming (n, k, r) at the first mismatch. Checks: sympy's expansion has
    exactly the terms r_1 + ... + r_k = n, each with coefficient n!/prod r_i!; the sequential-choice
    product (eq. 13) and the telescoped form (eq. 14-15) equal it; the coefficients sum to k^n
    (set every x_i = 1); and the multinomial pmf summed over all outcomes is 1 (exact rationals).
    """
    checked_terms = 0
    for n in range(max_n + 1):
        for k in range(1, max_k + 1):
            expected = {r: multinomial_coefficient(r) for r in compositions(n, k)}
            assert len(expected) == math.comb(n + k - 1, k - 1), (n, k)
            got = expansion_coefficients(n, k)
            assert got == expected, f"sympy expansion differs for n={n}, k={k}"
            for r, coeff in expected.items():
                assert sequential_choice_coefficient(r) == coeff, (n, k, r)
                assert telescoped_coefficient(r) == coeff, (n, k, r)
            assert sum(expected.values()) == k**n, (n, k)
            theta = [Fraction(i + 1, k * (k + 1) // 2) for i in range(k)]  # a loaded die, exact
            total = sum(c * math.prod(t**ri for t, ri in zip(theta, r)) for r, c in expected.items())
            assert total == 1, f"multinomial pmf sums to {total} for n={n}, k={k}"
            checked_terms += len(expected)
    return {"max_n": max_n, "max_k": max_k, "terms": checked_terms}
