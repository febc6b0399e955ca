"""The optimisation view's numbers, asserted exactly."""

import math

import numpy as np
import pytest

from losslab.analysis import landscape as ls


def test_sigmoid_mse_gradient_peaks_at_4_27_when_p_is_two_thirds():
    peak, p = ls.max_sigmoid_mse_gradient()
    assert peak == pytest.approx(4 / 27, rel=1e-8)
    assert p == pytest.approx(2 / 3, abs=1e-4)


def test_binary_curves_are_the_textbook_formulas():
    z = np.linspace(-20, 20, 401)
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(ls.binary_gradient("binary_cross_entropy", z, 1), p - 1, atol=1e-15)
    np.testing.assert_allclose(ls.binary_gradient("mse", z, 1), (p - 1) * p * (1 - p), atol=1e-15)
    # Cross-entropy through the two-class embedding is binary cross-entropy.
    np.testing.assert_allclose(ls.binary_gradient("cross_entropy", z, 0), p, atol=1e-15)
    with pytest.raises(ValueError, match=r"label must be 0 or 1 for a binary model, got 2"):
        ls.binary_gradient("mse", z, 2)


def test_dead_zone_of_sigmoid_mse_starts_at_log_epsilon_and_ce_has_none():
    mse_zone = ls.dead_zone("mse", epsilon=1e-3)
    # |(p - 1) p (1 - p)| = 1e-3 where p ~ 1e-3: z = log(p / (1 - p)) with p (1 - p)^2 = 1e-3.
    p = 1e-3
    for _ in range(50):
        p = 1e-3 / (1 - p) ** 2
    assert mse_zone.threshold == pytest.approx(math.log(p / (1 - p)), abs=1e-8)
    assert mse_zone.threshold == pytest.approx(-6.9, abs=0.01)
    assert "every margin below -6.90 has gradient < 0.001" in mse_zone.describe()
    for name in ("binary_cross_entropy", "cross_entropy"):
        zone = ls.dead_zone(name, epsilon=1e-3)
        assert zone.threshold is None and zone.measure == 0.0
        assert "no wrongly classified margin" in zone.describe()


def test_multiclass_reference_values_k10_wrong_by_10():
    mse_norm = ls.gradient_norm_vs_margin("mse", [-10.0], 10)[0]
    ce_norm = ls.gradient_norm_vs_margin("cross_entropy", [-10.0], 10)[0]
    assert mse_norm == pytest.approx(5e-4, rel=0.05)
    assert ce_norm == pytest.approx(math.sqrt(2), rel=1e-3)
    zones = {
        name: ls.dead_zone(name, 1e-3, num_classes=10) for name in ("mse", "cross_entropy", "square_logits", "focal")
    }
    assert zones["mse"].threshold == pytest.approx(-9.26, abs=0.01)
    assert all(zones[n].threshold is None for n in ("cross_entropy", "square_logits", "focal"))


def test_margin_path_has_the_stated_margin():
    m = np.array([-7.0, -1.0, 0.0, 2.5])
    z = ls.margin_logits(m, 5).numpy()
    np.testing.assert_allclose(z[:, 0] - z[:, 1:].max(1), m)


def test_cross_entropy_is_convex_in_the_logits_and_softmax_mse_is_not():
    margins = np.linspace(-10, 10, 81)
    ce = ls.curvature_vs_margin("cross_entropy", margins, 3)
    mse = ls.curvature_vs_margin("mse", margins, 3)
    assert ce.min() > -1e-12  # PSD (0 along the all-ones direction)
    assert mse.min() == pytest.approx(-0.171, abs=2e-3)
    negative = margins[mse < -1e-9]
    assert negative.max() < 0 and negative.min() == -10.0  # negative curvature only among wrong predictions here
    np.testing.assert_allclose(ls.curvature_vs_margin("square_logits", [0.0, -5.0], 3), [2 / 3, 2 / 3], rtol=1e-12)
    # The binary sigmoid-MSE second derivative is negative deep in the wrong tail: not convex.
    assert ls.binary_curvature("mse", [-5.0], 1)[0] < 0 < ls.binary_curvature("binary_cross_entropy", [-5.0], 1)[0]


def test_hessian_of_cross_entropy_is_diag_p_minus_ppT():
    z = np.array([1.0, -2.0, 0.5, 3.0])
    p = np.exp(z) / np.exp(z).sum()
    expected = np.linalg.eigvalsh(np.diag(p) - np.outer(p, p))
    np.testing.assert_allclose(ls.hessian_eigenvalues("cross_entropy", z, 2), expected, atol=1e-14)
