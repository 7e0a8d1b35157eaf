"""Centred FFTs, the Cartesian MRI operator, coil maps, noise and motion simulation."""

import math

import numpy as np
import pytest
import torch

from mrct.data.phantoms import shepp_logan
from mrct.physics.adjoint_check import check_adjoint
from mrct.physics.artefacts import (
    add_complex_noise,
    cartesian_rigid_motion,
    radial_rigid_motion,
    rotate_image,
)
from mrct.physics.cartesian import CartesianMRI, rss
from mrct.physics.coils import birdcage_maps, espirit_maps
from mrct.physics.fft import FFT2c, FFT3c, fft2c, fft3c, ifft2c, ifft3c

DTYPES = [torch.complex64, torch.complex128]


def _crandn(*shape, dtype=torch.complex128, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, dtype=dtype, generator=g)


def _column_mask(w, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = (torch.rand(1, w, generator=g) < 0.4).float()
    m[:, w // 2 - 2 : w // 2 + 2] = 1
    return m


def _disc(h, w, radius, dtype=torch.complex128):
    i = torch.arange(h, dtype=torch.float64)[:, None] - h // 2
    j = torch.arange(w, dtype=torch.float64)[None, :] - w // 2
    return ((i**2 + j**2) <= radius**2).to(dtype)


# ------------------------------------------------------------------------------------ FFT


@pytest.mark.parametrize("shape", [(3, 16, 20), (2, 15, 9)])
def test_fft2c_matches_explicit_centred_dft(shape):
    x = _crandn(*shape)
    h, w = shape[-2:]

    def dft(n):  # X[k] = n^-1/2 sum_m x[m] exp(-2 pi i (k - n//2)(m - n//2) / n)
        k = torch.arange(n, dtype=torch.float64) - n // 2
        return torch.exp(-2j * math.pi * k[:, None] * k[None, :] / n) / math.sqrt(n)

    ref = dft(h) @ x @ dft(w).T
    torch.testing.assert_close(fft2c(x), ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(ifft2c(fft2c(x)), x, rtol=0, atol=1e-12)
    assert torch.linalg.vector_norm(fft2c(x)) == pytest.approx(float(torch.linalg.vector_norm(x)))


def test_fft2c_matches_numpy_fastmri_convention_and_fft3c():
    x = _crandn(2, 6, 8, 10)
    ref = np.fft.fftshift(
        np.fft.fft2(np.fft.ifftshift(x.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1)
    )
    np.testing.assert_allclose(fft2c(x).numpy(), ref, atol=1e-12)
    ref3 = np.fft.fftshift(
        np.fft.fftn(np.fft.ifftshift(x.numpy(), axes=(-3, -2, -1)), axes=(-3, -2, -1),
                    norm="ortho"), axes=(-3, -2, -1))  # fmt: skip
    np.testing.assert_allclose(fft3c(x).numpy(), ref3, atol=1e-12)
    torch.testing.assert_close(ifft3c(fft3c(x)), x)


def test_fft_dtypes_and_errors():
    assert fft2c(torch.ones(4, 4)).dtype == torch.complex64
    assert fft2c(torch.ones(4, 4, dtype=torch.float64)).dtype == torch.complex128
    assert fft2c(torch.ones(4, 4, dtype=torch.complex64)).dtype == torch.complex64
    with pytest.raises(TypeError, match="complex"):
        fft2c(torch.ones(4, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fft2c(torch.ones(4, dtype=torch.complex64))
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        fft3c(torch.ones(4, 4, dtype=torch.complex64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_fft_operators_adjoint(dtype):
    check_adjoint(FFT2c(), (2, 8, 6), dtype=dtype)
    check_adjoint(FFT3c(), (4, 8, 6), dtype=dtype)
    x = _crandn(8, 6, dtype=dtype)
    torch.testing.assert_close(FFT2c((8, 6)).normal()(x), x)
    assert FFT2c((8, 6)).opnorm(dtype=dtype) == pytest.approx(1.0, rel=1e-4)


# ------------------------------------------------------------------------------- operator


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask_kind", ["column", "2d", "1d"])
def test_cartesian_single_coil_adjoint_and_forward(dtype, mask_kind):
    h, w = 12, 10
    col = _column_mask(w)
    mask = {"column": col, "2d": (torch.rand(h, w) < 0.5).float(), "1d": col[0]}[mask_kind]
    A = CartesianMRI(mask, image_shape=(h, w))
    check_adjoint(A, (3, h, w), dtype=dtype)
    check_adjoint(A.normal(), (3, h, w), dtype=dtype)
    x = _crandn(3, h, w, dtype=dtype)
    y = A(x)
    assert y.dtype == dtype and y.shape == (3, h, w)
    torch.testing.assert_close(y, mask.reshape(-1, w) * fft2c(x))
    torch.testing.assert_close(A.normal()(x), A.adjoint(A(x)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cartesian_sense_adjoint_and_model(dtype):
    h, w, c = 12, 10, 4
    maps = birdcage_maps((c, h, w), dtype=dtype)
    mask = _column_mask(w)
    A = CartesianMRI(mask, coil_maps=maps)
    assert A.in_shape == (h, w) and A.out_shape == (c, h, w)
    check_adjoint(A, (2, h, w), dtype=dtype)
    check_adjoint(A.normal(), (2, h, w), dtype=dtype)
    x = _crandn(2, h, w, dtype=dtype)
    y = A(x)
    assert y.shape == (2, c, h, w) and y.dtype == dtype
    for k in range(c):
        torch.testing.assert_close(y[:, k], mask * fft2c(maps[k] * x))
    ref = sum(maps[k].conj() * ifft2c(mask * y[:, k]) for k in range(c))
    torch.testing.assert_close(A.adjoint(y), ref)
    torch.testing.assert_close(A.normal()(x), A.adjoint(A(x)))
    # 2D mask (no shortcut in normal()) and per-item maps (B, C, H, W)
    mask2 = (torch.rand(h, w, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    B = CartesianMRI(mask2, coil_maps=maps[None].expand(2, c, h, w))
    check_adjoint(B, (2, h, w), dtype=dtype)
    torch.testing.assert_close(B.normal()(x), B.adjoint(B(x)))


def test_cartesian_full_mask_unit_rss_maps_is_isometry():
    h, w = 16, 12
    A = CartesianMRI(torch.ones(1, w), coil_maps=birdcage_maps((6, h, w), dtype=torch.complex128))
    x = _crandn(h, w)
    torch.testing.assert_close(A.normal()(x), x)  # sum_c |S_c|^2 = 1
    assert A.opnorm(dtype=torch.complex128) == pytest.approx(1.0, rel=1e-5)


def test_cartesian_per_item_masks():
    h, w = 8, 10
    masks = torch.stack([_column_mask(w, 0), _column_mask(w, 1)])  # (2, 1, W)
    maps = birdcage_maps((3, h, w), dtype=torch.complex128)
    A = CartesianMRI(masks, coil_maps=maps)
    x = _crandn(2, h, w)
    y = A(x)
    for b in range(2):
        torch.testing.assert_close(y[b], CartesianMRI(masks[b], coil_maps=maps)(x[b]))
    check_adjoint(A, (2, h, w), dtype=torch.complex128)


def test_cartesian_validation():
    h, w = 8, 6
    maps = birdcage_maps((3, h, w))
    with pytest.raises(TypeError, match="mask must be real"):
        CartesianMRI(torch.ones(h, w, dtype=torch.complex64))
    with pytest.raises(ValueError, match="spatial shape"):
        CartesianMRI(torch.ones(h + 1, w), coil_maps=maps)
    with pytest.raises(ValueError, match="coil_maps must have shape"):
        CartesianMRI(torch.ones(h, w), coil_maps=maps[0])
    with pytest.raises(ValueError, match="NaN"):
        CartesianMRI(torch.full((1, w), float("nan")))
    A = CartesianMRI(torch.ones(1, w), coil_maps=maps)
    with pytest.raises(ValueError, match=r"spatial shape \(8, 6\)"):
        A(torch.ones(h, w + 1, dtype=torch.complex64))
    with pytest.raises(ValueError, match="3 coils"):
        A.adjoint(torch.ones(2, h, w, dtype=torch.complex64))
    with pytest.raises(TypeError, match="complex"):
        A(torch.ones(h, w, dtype=torch.int64))
    with pytest.raises(ValueError, match="NaN"):
        A(torch.full((h, w), float("nan"), dtype=torch.complex64))
    single = CartesianMRI(torch.ones(1, w))
    assert single.in_shape is None
    with pytest.raises(ValueError, match="does not match the mask"):
        single(torch.ones(h, w + 2, dtype=torch.complex64))
    # real images are promoted; numpy masks accepted
    y = CartesianMRI(np.ones((1, w), np.float32))(torch.ones(h, w, dtype=torch.float64))
    assert y.dtype == torch.complex128


def test_cartesian_autograd_matches_adjoint():
    h, w = 8, 6
    A = CartesianMRI(_column_mask(w), coil_maps=birdcage_maps((3, h, w), dtype=torch.complex128))
    x = _crandn(h, w).requires_grad_()
    v = _crandn(3, h, w, seed=1)
    # d/dx* of Re<A x, v> is A^H v / 2 under torch's convention -> grad = A^H v
    (torch.vdot(v.flatten(), A(x).flatten()).real).backward()
    torch.testing.assert_close(x.grad, A.adjoint(v))


def test_rss():
    x = _crandn(2, 4, 5, 6)
    torch.testing.assert_close(rss(x), x.abs().square().sum(-3).sqrt())
    torch.testing.assert_close(rss(x.real, dim=0), x.real.abs().square().sum(0).sqrt())
    assert rss(x.to(torch.complex64)).dtype == torch.float32
    with pytest.raises(ValueError, match="out of range"):
        rss(x, dim=5)


# ---------------------------------------------------------------------------------- coils


def test_birdcage_maps_match_sigpy_and_have_unit_rss():
    sigpy_mri = pytest.importorskip("sigpy.mri")
    m = birdcage_maps((8, 20, 24), dtype=torch.complex128)
    np.testing.assert_allclose(m.numpy(), sigpy_mri.birdcage_maps((8, 20, 24)), atol=1e-12)
    torch.testing.assert_close(rss(m, dim=0), torch.ones(20, 24, dtype=torch.float64))
    m3 = birdcage_maps((12, 4, 6, 8), nzz=6, dtype=torch.complex128)
    np.testing.assert_allclose(m3.numpy(), sigpy_mri.birdcage_maps((12, 4, 6, 8), nzz=6),
                               atol=1e-12)  # fmt: skip
    assert birdcage_maps((2, 4, 4)).dtype == torch.complex64
    with pytest.raises(ValueError, match="shape must be"):
        birdcage_maps((4, 4))
    with pytest.raises(TypeError, match="complex64"):
        birdcage_maps((2, 4, 4), dtype=torch.float32)


def test_sigpy_fft_is_fft2c():
    sp = pytest.importorskip("sigpy")
    x = _crandn(3, 10, 7)
    np.testing.assert_allclose(sp.fft(x.numpy(), axes=(-2, -1)), fft2c(x).numpy(), atol=1e-12)


@pytest.fixture(scope="module")
def espirit_case():
    pytest.importorskip("sigpy")
    h = w = 48
    maps = birdcage_maps((6, h, w), dtype=torch.complex64)
    img = torch.from_numpy(shepp_logan((h, w))).to(torch.complex64)
    kspace = fft2c(maps * img)
    est, eig = espirit_maps(kspace, calib_width=20, kernel_width=5, max_iter=30,
                            return_eigenvalue=True)  # fmt: skip
    return maps, img, est, eig


def test_espirit_recovers_birdcage_maps_up_to_phase(espirit_case):
    maps, img, est, eig = espirit_case
    assert est.shape == maps.shape and est.dtype == torch.complex64
    inside = img.abs() > 0
    # |<S_est(r), S_true(r)>| = 1 when the maps agree up to a per-pixel phase (both unit norm)
    corr = (est.conj() * maps).sum(0).abs()
    assert float(corr[inside].mean()) > 0.99
    assert float(corr[inside].min()) > 0.95
    assert float(eig[inside].min()) > 0.95
    torch.testing.assert_close(rss(est[:, inside], dim=0), torch.ones(int(inside.sum())),
                               atol=1e-3, rtol=0)  # fmt: skip


def test_espirit_sense_combination_reproduces_image(espirit_case):
    maps, img, est, _ = espirit_case
    combined = (est.conj() * (maps * img)).sum(0)  # S_est^H (S_true x) = e^{i phi} x
    inside = img.abs() > 0
    err = (combined.abs() - img.abs())[inside].abs().max() / img.abs().max()
    assert float(err) < 0.05
    A = CartesianMRI(torch.ones(1, img.shape[-1]), coil_maps=est)
    rec = A.adjoint(fft2c(maps * img))
    assert float(((rec.abs() - img.abs())[inside]).abs().max() / img.abs().max()) < 0.05


def test_espirit_validation():
    with pytest.raises(ValueError, match="coil axis first"):
        espirit_maps(torch.ones(8, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match="calib_width"):
        espirit_maps(torch.ones(2, 16, 16, dtype=torch.complex64), calib_width=24)


# ---------------------------------------------------------------------------------- noise


@pytest.mark.parametrize("snr_db", [0.0, 20.0])
def test_noise_snr_and_per_component_variance(snr_db):
    k = _crandn(512, 512, dtype=torch.complex64, seed=3) * 2.5
    g = torch.Generator().manual_seed(7)
    noisy, sigma = add_complex_noise(k, snr_db, generator=g, return_sigma=True)
    n = noisy - k
    p = float(k.abs().square().mean())
    assert sigma**2 == pytest.approx(p / 10 ** (snr_db / 10), rel=1e-5)
    measured = 10 * math.log10(p / float(n.abs().square().mean()))
    assert measured == pytest.approx(snr_db, abs=0.05)
    assert float(n.real.var()) == pytest.approx(sigma**2 / 2, rel=0.02)
    assert float(n.imag.var()) == pytest.approx(sigma**2 / 2, rel=0.02)
    assert abs(float((n.real * n.imag).mean())) < 0.01 * sigma**2  # circular
    again = add_complex_noise(k, snr_db, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(again, noisy)


def test_noise_with_mask_and_signal_power():
    k = _crandn(64, 64, seed=1)
    mask = torch.zeros(1, 64)
    mask[:, ::4] = 1
    km = k * mask
    noisy, sigma = add_complex_noise(km, 10.0, mask=mask, return_sigma=True,
                                     generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.all(noisy[:, mask[0] == 0] == 0)
    p = float(k[:, ::4].abs().square().mean())
    assert sigma == pytest.approx(math.sqrt(p / 10.0))
    _, s2 = add_complex_noise(km, 10.0, signal_power=4.0, return_sigma=True)
    assert s2 == pytest.approx(math.sqrt(0.4))
    with pytest.raises(TypeError, match="complex"):
        add_complex_noise(k.real, 10.0)
    with pytest.raises(ValueError, match="zero"):
        add_complex_noise(torch.zeros(4, 4, dtype=torch.complex64), 10.0)
    with pytest.raises(ValueError, match="finite"):
        add_complex_noise(k, float("nan"))


# --------------------------------------------------------------------------------- motion


def _object(h, w, dtype=torch.complex128, seed=0):
    """Random complex object with a zero border of 3 pixels (so that rotations and shifts of
    a few pixels stay inside the field of view)."""
    x = _crandn(h, w, dtype=dtype, seed=seed)
    out = torch.zeros_like(x)
    out[3:-3, 3:-3] = x[3:-3, 3:-3]
    return out


def test_rotate_image_quarter_turns():
    x = _object(15, 15)
    torch.testing.assert_close(rotate_image(x, math.pi / 2), torch.rot90(x, 1, (-2, -1)))
    torch.testing.assert_close(rotate_image(x, -math.pi / 2), torch.rot90(x, -1, (-2, -1)))
    # even size: rotation about pixel n//2 = rot90 about the geometric centre, then 1 row down
    y = _object(16, 16)
    ref = torch.roll(torch.rot90(y, 1, (-2, -1)), 1, dims=-2)
    torch.testing.assert_close(rotate_image(y, math.pi / 2), ref)
    torch.testing.assert_close(rotate_image(y.real.float(), math.pi), torch.roll(
        torch.rot90(y.real.float(), 2, (-2, -1)), (1, 1), dims=(-2, -1)))  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
def test_cartesian_motion_zero_and_constant(dtype):
    h, w = 16, 12
    x = _object(h, w, dtype)
    tol = dict(rtol=0, atol=1e-10 if dtype == torch.complex128 else 2e-5)
    torch.testing.assert_close(cartesian_rigid_motion(x), fft2c(x), **tol)
    zeros = cartesian_rigid_motion(x, np.zeros((w, 2)), np.zeros(w))
    torch.testing.assert_close(zeros, fft2c(x), **tol)
    # constant translation (d_row, d_col) = (2, -1) pixels (mm with pixel_size 1) = torch.roll
    t = np.tile([2.0, -1.0], (w, 1))
    torch.testing.assert_close(
        cartesian_rigid_motion(x, t, None), fft2c(torch.roll(x, (2, -1), (-2, -1))), **tol
    )
    # same in mm with a 0.5 mm pixel
    torch.testing.assert_close(
        cartesian_rigid_motion(x, t * 0.5, None, pixel_size=0.5),
        fft2c(torch.roll(x, (2, -1), (-2, -1))),
        **tol,
    )
    # rows as phase-encoding lines
    torch.testing.assert_close(
        cartesian_rigid_motion(x, np.tile([2.0, -1.0], (h, 1)), None, line_axis=-2),
        fft2c(torch.roll(x, (2, -1), (-2, -1))),
        **tol,
    )
    # constant 90 degree rotation (odd square image: rot90 exactly)
    z = _object(15, 15, dtype)
    torch.testing.assert_close(
        cartesian_rigid_motion(z, None, np.full(15, math.pi / 2)),
        fft2c(torch.rot90(z, 1, (-2, -1))),
        **tol,
    )


def test_cartesian_motion_per_line_and_coils():
    h, w = 12, 10
    x = _object(h, w)
    maps = birdcage_maps((3, h, w), dtype=torch.complex128)
    rots = np.zeros(w)
    trans = np.zeros((w, 2))
    trans[6:] = [1.0, 2.0]
    rots[:2] = 0.1
    y = cartesian_rigid_motion(x, trans, rots, coil_maps=maps)
    assert y.shape == (3, h, w)
    moved = torch.roll(x, (1, 2), (-2, -1))
    torch.testing.assert_close(y[..., 6:], fft2c(maps * moved)[..., 6:])
    torch.testing.assert_close(y[..., 2:6], fft2c(maps * x)[..., 2:6])
    r = rotate_image(x, 0.1)
    torch.testing.assert_close(y[..., :2], fft2c(maps * r)[..., :2])
    # the single-coil path agrees with a 1-coil unit map
    y1 = cartesian_rigid_motion(x, trans, rots)
    torch.testing.assert_close(
        y1, cartesian_rigid_motion(x, trans, rots, coil_maps=torch.ones(1, h, w))[0]
    )
    with pytest.raises(ValueError, match=r"translations must have shape \(10, 2\)"):
        cartesian_rigid_motion(x, np.zeros((h, 2)), None)
    with pytest.raises(ValueError, match="NaN"):
        cartesian_rigid_motion(x, None, np.full(w, np.nan))
    with pytest.raises(ValueError, match="coil_maps must have shape"):
        cartesian_rigid_motion(x, coil_maps=maps[:, :-1])


def _nudft_factory(traj, shape):
    """Exact non-uniform DFT: (..., H, W) -> (..., M), exp(-i k . r), r relative to n//2."""
    h, w = shape
    r_row = torch.arange(h, dtype=torch.float64) - h // 2
    r_col = torch.arange(w, dtype=torch.float64) - w // 2
    k = traj.to(torch.float64)
    phase = k[:, 0, None, None] * r_row[:, None] + k[:, 1, None, None] * r_col[None, :]
    e = torch.exp(-1j * phase).reshape(k.shape[0], h * w)

    def op(x):
        return (x.reshape(*x.shape[:-2], h * w).to(torch.complex128) @ e.T).to(x.dtype)

    return op


def _radial_traj(n_spokes, n_samples):
    theta = torch.arange(n_spokes, dtype=torch.float64) * math.pi / n_spokes
    rho = (torch.arange(n_samples, dtype=torch.float64) - n_samples // 2) * 2 * math.pi / n_samples
    return torch.stack(
        (rho[None] * torch.sin(theta)[:, None], rho[None] * torch.cos(theta)[:, None]), -1
    )


def test_radial_motion_zero_translation_rotation():
    n = 15
    x = _object(n, n)
    traj = _radial_traj(8, 16)
    ref = _nudft_factory(traj.reshape(-1, 2), (n, n))(x).reshape(8, 16)
    y0 = radial_rigid_motion(x, traj, nufft=_nudft_factory)
    torch.testing.assert_close(y0, ref, rtol=0, atol=1e-10)
    y0b = radial_rigid_motion(x, traj, np.zeros((8, 2)), np.zeros(8), nufft=_nudft_factory)
    torch.testing.assert_close(y0b, ref, rtol=0, atol=1e-10)
    # integer translation = k-space of the rolled image
    t = np.tile([1.0, -2.0], (8, 1))
    rolled = torch.roll(x, (1, -2), (-2, -1))
    ref_t = _nudft_factory(traj.reshape(-1, 2), (n, n))(rolled).reshape(8, 16)
    torch.testing.assert_close(
        radial_rigid_motion(x, traj, t, None, nufft=_nudft_factory), ref_t, rtol=0, atol=1e-10
    )
    # 90 degree rotation = k-space of rot90 (odd size: origin n//2 is the geometric centre)
    ref_r = _nudft_factory(traj.reshape(-1, 2), (n, n))(torch.rot90(x, 1, (-2, -1)))
    y_r = radial_rigid_motion(x, traj, None, np.full(8, math.pi / 2), nufft=_nudft_factory)
    torch.testing.assert_close(y_r, ref_r.reshape(8, 16), rtol=0, atol=1e-9)


def test_radial_and_cartesian_motion_agree_on_grid_frequencies():
    # A "trajectory" through the Cartesian grid points: the NUDFT there is sqrt(HW) fft2c.
    h, w = 16, 12
    x = _object(h, w)
    kr = 2 * math.pi * (torch.arange(h, dtype=torch.float64) - h // 2) / h
    kc = 2 * math.pi * (torch.arange(w, dtype=torch.float64) - w // 2) / w
    traj = torch.stack(torch.meshgrid(kr, kc, indexing="ij"), -1)  # (H, W, 2): H "spokes"
    trans = np.tile([0.7, -1.3], (h, 1))  # sub-pixel
    rots = np.full(h, math.pi / 2)
    y_rad = radial_rigid_motion(x, traj, trans, rots, nufft=_nudft_factory) / math.sqrt(h * w)
    # rows are the "spokes" here, so lines run along axis -2 for the Cartesian version
    y_cart = cartesian_rigid_motion(
        x, np.tile([0.7, -1.3], (h, 1)), np.full(h, math.pi / 2), line_axis=-2
    )
    torch.testing.assert_close(y_rad, y_cart, rtol=0, atol=1e-9)


def test_radial_motion_validation():
    x = _object(9, 9)
    with pytest.raises(ValueError, match=r"\(n_spokes, n_samples, 2\)"):
        radial_rigid_motion(x, torch.zeros(8, 2), nufft=_nudft_factory)
    with pytest.raises(ValueError, match=r"rotations must have shape \(4,\)"):
        radial_rigid_motion(x, torch.zeros(4, 3, 2), None, np.zeros(5), nufft=_nudft_factory)
    with pytest.raises(TypeError, match="real floating point"):
        radial_rigid_motion(x, torch.zeros(4, 3, 2, dtype=torch.int64), nufft=_nudft_factory)
