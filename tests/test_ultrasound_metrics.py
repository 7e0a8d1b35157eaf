"""gCNR, contrast ratio, CNR, speckle SNR and the Rayleigh KS test with known values."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from mrct.metrics import cnr, contrast_ratio, gcnr, rayleigh_ks, speckle_snr
from mrct.metrics.ultrasound import RAYLEIGH_SNR


def test_gcnr_known_values():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(400_000)
    assert gcnr(a, rng.standard_normal(400_000)) < 0.02
    assert gcnr(a, a + 100) == 1.0
    for d in (1.0, 2.0):  # two unit Gaussians d apart: OVL = 2 Phi(-d / 2)
        b = rng.standard_normal(400_000) + d
        assert gcnr(a, b) == pytest.approx(1 - 2 * norm.cdf(-d / 2), abs=0.01)
    # invariant under a monotonic transform (envelope vs dB)
    e1, e2 = np.exp(a / 4), np.exp(b / 4)
    assert gcnr(20 * np.log10(e1), 20 * np.log10(e2)) == pytest.approx(gcnr(e1, e2), abs=0.01)
    assert gcnr(torch.ones(10), torch.ones(10)) == 0.0


def test_contrast_cnr_known_values():
    assert contrast_ratio([10.0, 10.0], [1.0, 1.0]) == pytest.approx(20.0)
    a, b = np.array([1.0, 3.0]), np.array([5.0, 7.0])  # means 2, 6; variances 1, 1
    assert cnr(a, b) == pytest.approx(4 / math.sqrt(2))
    with pytest.raises(ValueError):
        contrast_ratio([0.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError):
        cnr([1.0], [1.0, 2.0])


def test_speckle_statistics():
    rng = np.random.default_rng(1)
    env = rng.rayleigh(2.0, 20_000)
    assert RAYLEIGH_SNR == pytest.approx(1.913, abs=1e-3)
    assert speckle_snr(env) == pytest.approx(RAYLEIGH_SNR, rel=0.02)
    stat, p = rayleigh_ks(env[:2000])
    assert p > 0.05 and stat < 0.05
    _, p_bad = rayleigh_ks(rng.uniform(0, 1, 2000))
    assert p_bad < 1e-3
    with pytest.raises(ValueError):
        rayleigh_ks([-1.0, 1.0, 2.0])
