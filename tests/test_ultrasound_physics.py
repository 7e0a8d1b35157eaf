"""mrct.physics.ultrasound: probes, transmits, RF simulation, DAS (adjoint, autograd), B-mode."""

import math

import numpy as np
import pytest
import torch

from mrct.physics import check_adjoint
from mrct.physics.ultrasound import (
    DivergingWave,
    FocusedWave,
    LinearArray,
    LinearGrid,
    PhasedArray,
    PlaneWave,
    PolarGrid,
    Scatterers,
    bmode,
    compand,
    das,
    envelope,
    expand,
    iq_demodulate,
    log_compress,
    scan_convert,
    simulate_rf,
)

SMALL = LinearArray(n_elements=16, pitch=0.3, center_frequency=5.0, bandwidth=0.7)


def test_probe_defaults_and_validation():
    p = LinearArray()
    assert p.n_elements == 128 and p.fs == pytest.approx(4 * 7.6) and p.c == pytest.approx(1.54)
    assert p.element_x[0] == pytest.approx(-p.element_x[-1])
    assert p.aperture == pytest.approx(127 * 0.3)
    q = PhasedArray()
    assert q.n_elements == 64 and q.fc == pytest.approx(2.7)
    for bad in (dict(n_elements=0), dict(pitch=-1), dict(bandwidth=2.5), dict(pulse="square"),
                dict(element_width=1.0), dict(sampling_frequency=5.0)):  # fmt: skip
        with pytest.raises(ValueError):
            LinearArray(**bad)


def test_transmit_delays_and_arrival_agree():
    p = SMALL
    for tx in (PlaneWave(0.2), DivergingWave((1.0, -8.0)), FocusedWave((0.5, 20.0))):
        d = tx.delays(p)
        assert d.min() == pytest.approx(0.0) and d.shape == (16,)
        # the wavefront reaches each element when that element fires (plane, diverging)
        if not isinstance(tx, FocusedWave):
            np.testing.assert_allclose(tx.arrival(p, p.element_x, p.element_z), d, atol=1e-12)
    # a focused wave reaches the focus at the same time from every element
    tx = FocusedWave((0.5, 20.0))
    t_el = tx.delays(p) + np.hypot(p.element_x - 0.5, 20.0) / p.c
    np.testing.assert_allclose(t_el, tx.arrival(p, 0.5, 20.0), rtol=1e-12)
    with pytest.raises(ValueError):
        DivergingWave((0.0, 5.0))


def test_pulse_is_gaussian_modulated_with_the_bandwidth():
    p = SMALL
    t = np.linspace(-2, 2, 4001)
    h = p.pulse_echo(t)
    assert abs(h).max() == pytest.approx(1.0, rel=1e-3)
    spec = np.abs(np.fft.rfft(h.real, 1 << 15))
    f = np.fft.rfftfreq(1 << 15, t[1] - t[0])
    band = f[spec >= spec.max() / 2]
    assert band.min() == pytest.approx(5.0 * (1 - 0.35), rel=0.02)
    assert band.max() == pytest.approx(5.0 * (1 + 0.35), rel=0.02)
    # attenuation lowers the amplitude and the centre frequency
    ha = p.pulse_echo(t, attenuation=0.5, path=60.0)
    assert 0.1 < abs(ha).max() < 0.25  # 15 dB at 5 MHz, less after the downshift
    fa = f[np.argmax(np.abs(np.fft.rfft(ha.real, 1 << 15)))]
    assert fa < f[np.argmax(spec)] - 0.2


def _reference_rf(p, sc, tx, n_samples):
    """Independent numpy direct sum of the model of mrct.kernels.us_math."""
    t = np.arange(n_samples) / p.fs
    ex = p.element_x
    out = np.zeros((p.n_elements, n_samples))
    delays, w = tx.delays(p), 2 * math.pi * p.fc
    for x, z, a in zip(sc.x, sc.z, sc.amplitude, strict=True):
        dx, dz = x - ex, z - 0.0
        r = np.hypot(dx, dz)
        g = dz / r * np.sinc(p.halfkw * dx / r / np.pi) / np.sqrt(r)
        tau = float(tx.arrival(p, x, z))
        amp = np.sum(g * np.exp(-1j * w * (delays + r / p.c - tau)))
        for j in range(p.n_elements):
            out[j] += a * g[j] * np.real(amp * p.pulse_echo(t - tau - r[j] / p.c))
    return out


@pytest.mark.parametrize(
    "tx", [PlaneWave(0.1), DivergingWave((0.0, -6.0)), FocusedWave((1.0, 12.0))]
)
def test_simulate_rf_matches_a_numpy_direct_sum(tx):
    rng = np.random.default_rng(1)
    sc = Scatterers(rng.uniform(-3, 3, 7), rng.uniform(4, 15, 7), rng.standard_normal(7))
    rf = simulate_rf(SMALL, sc, tx, dtype=torch.float64)
    ref = _reference_rf(SMALL, sc, tx, rf.shape[1])
    np.testing.assert_allclose(rf.numpy(), ref, atol=2e-3 * np.abs(ref).max())


def test_point_echo_timing_and_attenuation():
    p = SMALL
    rf = simulate_rf(p, Scatterers([0.0], [10.0]), PlaneWave(), dtype=torch.float64)
    env = envelope(rf, axis=-1)
    j = p.n_elements // 2
    t_peak = env[j].argmax().item() / p.fs
    assert t_peak == pytest.approx((10.0 + math.hypot(p.element_x[j], 10.0)) / p.c, abs=1 / p.fs)
    rfa = simulate_rf(
        p, Scatterers([0.0], [10.0]), PlaneWave(), attenuation=0.5, dtype=torch.float64
    )
    ratio = float(rfa.abs().max() / rf.abs().max())
    assert ratio == pytest.approx(10 ** (-0.5 * 2.0 * 5.0 / 20), rel=0.15)  # 2 cm at ~5 MHz
    assert simulate_rf(p, Scatterers([], []), PlaneWave()).abs().sum() == 0


def test_scatterers_coerce():
    s = Scatterers.coerce(np.array([[0.0, 10.0, 2.0], [1.0, 12.0, -1.0]]))
    assert len(s) == 2 and s.amplitude[0] == 2.0
    s = Scatterers.coerce({"x": [0.0], "z": [5.0]})
    assert s.amplitude[0] == 1.0
    with pytest.raises(ValueError):
        Scatterers([0.0, 1.0], [1.0])


GRIDS = {
    "linear": LinearGrid(np.linspace(-2, 2, 9), np.linspace(4, 12, 17)),
    "polar": PolarGrid(np.linspace(-0.5, 0.5, 7), np.linspace(5, 14, 11)),
}
TXS = {"plane": PlaneWave(0.15), "diverging": DivergingWave((0.0, -5.0)),
       "focused": FocusedWave((0.0, 9.0))}  # fmt: skip


@pytest.mark.parametrize("grid", sorted(GRIDS))
@pytest.mark.parametrize("tx", sorted(TXS))
@pytest.mark.parametrize("window", ["hann", "rect"])
def test_das_adjoint_dot_product(grid, tx, window):
    A = das(SMALL, GRIDS[grid], TXS[tx], window=window, f_number=1.0 if window == "hann" else 0)
    assert A.in_shape == (16, A.n_samples) and A.out_shape == GRIDS[grid].shape
    check_adjoint(A, (2, *A.in_shape), dtype=torch.float64)
    check_adjoint(A, dtype=torch.float32)


def test_das_autograd_and_any_rf_length():
    A = das(SMALL, GRIDS["linear"], PlaneWave(), n_samples=200)
    rf = torch.randn(1, 16, 200, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(A, (rf,), eps=1e-6, atol=1e-6)
    img = torch.randn(1, *A.out_shape, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(A.adjoint, (img,), eps=1e-6, atol=1e-6)
    longer = torch.randn(16, 260, dtype=torch.float64, requires_grad=True)
    A(longer).sum().backward()
    assert longer.grad.shape == longer.shape
    with pytest.raises(ValueError):
        A(torch.randn(15, 200))


def test_das_focuses_a_point_target():
    p = LinearArray(n_elements=64, center_frequency=5.0)
    sc = Scatterers([1.5], [15.0])
    cases = [
        (PlaneWave(), LinearGrid.from_probe(p, depth=(10, 20))),
        (DivergingWave((0.0, -10.0)), PolarGrid.sector(p, depth=(10, 20), span=0.6)),
    ]
    for tx, grid in cases:
        rf = simulate_rf(p, sc, tx)
        img = envelope(das(p, grid, tx)(rf))
        i, j = np.unravel_index(int(img.argmax()), img.shape)
        px, pz = grid.points()
        k = i * grid.shape[1] + j
        assert math.hypot(px[k] - 1.5, pz[k] - 15.0) < 0.5


def test_envelope_iq_log_compress_and_companding():
    t = torch.linspace(-2, 2, 801, dtype=torch.float64)
    env_true = torch.exp(-(t**2) / 0.1)
    rf = env_true * torch.cos(2 * math.pi * 5.0 * t)
    env = envelope(rf, axis=-1)
    torch.testing.assert_close(env[100:-100], env_true[100:-100], atol=2e-3, rtol=0)
    iq = iq_demodulate(rf, fs=200.0, fc=5.0, t0=-2.0)
    torch.testing.assert_close(iq.abs()[100:-100], env_true[100:-100], atol=5e-3, rtol=0)
    assert envelope(iq).dtype == torch.float64
    db = log_compress(torch.tensor([1.0, 0.1, 1e-6]), dynamic_range=40)
    torch.testing.assert_close(db, torch.tensor([0.0, -20.0, -40.0]))
    x = torch.linspace(-1, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(expand(compand(x)), x)
    assert float(compand(torch.tensor(1.0))) == pytest.approx(1.0)
    b = bmode(torch.randn(32, 8))
    assert b.shape == (32, 8) and float(b.max()) == 0.0


def test_scan_convert_sector():
    g = PolarGrid(np.linspace(-0.6, 0.6, 31), np.linspace(5, 30, 51))
    rr, _ = np.meshgrid(g.radii, g.angles, indexing="ij")
    out, lg = scan_convert(torch.as_tensor(rr), g, shape=(64, 48))
    assert out.shape == (64, 48) and lg.shape == (64, 48)
    zz, xx = np.meshgrid(lg.z, lg.x, indexing="ij")
    r = np.hypot(xx, zz)
    inside = out.numpy() != 0
    assert inside.mean() > 0.3
    np.testing.assert_allclose(out.numpy()[inside], r[inside], atol=1e-6)
    with pytest.raises(ValueError):
        scan_convert(torch.zeros(3, 3), g)
