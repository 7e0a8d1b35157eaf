"""Validation against pymust (the Python port of MUST): same probe and scatterers.

Skips when pymust is not installed (``pip install pymust``; it is not a dependency of mrct).
"""

import numpy as np
import pytest
import torch

from mrct.physics.ultrasound import (
    LinearArray,
    LinearGrid,
    PlaneWave,
    Scatterers,
    bmode,
    das,
    simulate_rf,
)

pymust = pytest.importorskip("pymust")

pytestmark = pytest.mark.slow


def _corr(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_rf_and_bmode_correlate_with_pymust_simus():
    param = pymust.getparam("L11-5v")  # 128 elements, 7.6 MHz, pitch 0.3 mm, width 0.27 mm
    param.fs = 4 * param.fc
    param.attenuation = 0.5
    probe = LinearArray(element_width=0.27, pulse="windowed-sine")  # the MUST pulse model
    rng = np.random.default_rng(0)
    n = 600
    x, z, rc = rng.uniform(-12, 12, n), rng.uniform(8, 30, n), rng.standard_normal(n)
    tx = PlaneWave()
    ref, _ = pymust.simus(x[None] * 1e-3, z[None] * 1e-3, rc[None], tx.delays(probe)[None] * 1e-6,
                          param)  # fmt: skip
    ref = np.ascontiguousarray(ref.T)
    rf = simulate_rf(probe, Scatterers(x, z, rc), tx, attenuation=0.5, n_samples=ref.shape[1],
                     dtype=torch.float64).numpy()  # fmt: skip
    assert _corr(rf, ref) >= 0.9
    A = das(probe, LinearGrid.from_probe(probe, depth=(8, 30), width=24), tx)
    b_ref = bmode(A(torch.as_tensor(ref))).numpy()
    b = bmode(A(torch.as_tensor(rf))).numpy()
    assert _corr(b, b_ref) >= 0.9
