"""KSpaceTruncation (centre-of-k-space low-res acquisition) and the upsampling baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mrct.data import shepp_logan
from mrct.physics import (
    PAPER_FRACTIONS,
    KSpaceTruncation,
    adjoint_error,
    check_adjoint,
    fft2c,
    ifft2c,
    kept_lines,
    upsample_lowres,
)
from mrct.physics.fft import fftnc, ifftnc


@pytest.mark.parametrize("shape", [(32, 30), (31, 33), (4, 24, 20)])
@pytest.mark.parametrize("fraction", PAPER_FRACTIONS + (1.0,))
def test_adjoint_dot_product(shape, fraction):
    op = KSpaceTruncation(shape, fraction)
    assert adjoint_error(op, (2, *shape), dtype=torch.complex128) < 1e-12
    assert adjoint_error(op, (2, *shape), dtype=torch.float64) < 1e-12
    check_adjoint(op, dtype=torch.complex64)


@pytest.mark.parametrize("n, fraction, m", [(256, 0.25, 128), (256, 0.10, 81),
                                            (256, 0.0625, 64), (256, 0.04, 51), (64, 0.04, 13),
                                            (10, 1e-6, 1), (7, 1.0, 7)])  # fmt: skip
def test_kept_lines(n, fraction, m):
    assert kept_lines(n, fraction) == m


@pytest.mark.parametrize("shape", [(32, 30), (31, 33), (3, 16, 15)])
@pytest.mark.parametrize("fraction", [0.25, 0.04])
def test_keeps_exactly_the_central_lines(shape, fraction):
    """forward = the centred block of fft2c; adjoint(forward) = masking with that block."""
    op = KSpaceTruncation(shape, fraction)
    H, W = shape[-2:]
    h, w = kept_lines(H, fraction), kept_lines(W, fraction)
    assert op.lowres_shape == (*shape[:-2], h, w)
    assert op.kept_fraction == pytest.approx(h * w / (H * W))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, generator=g, dtype=torch.float64) + 1j * torch.randn(
        *shape, generator=g, dtype=torch.float64)  # fmt: skip
    k = fftnc(x, (-2, -1))
    r0, c0 = H // 2 - h // 2, W // 2 - w // 2
    torch.testing.assert_close(op(x), k[..., r0 : r0 + h, c0 : c0 + w], rtol=0, atol=1e-12)
    # the zero frequency (index n // 2) is inside, symmetric within one line
    assert r0 <= H // 2 < r0 + h and c0 <= W // 2 < c0 + w
    assert abs((H // 2 - r0) - (r0 + h - 1 - H // 2)) <= 1
    mask = torch.zeros(H, W, dtype=torch.float64)
    mask[r0 : r0 + h, c0 : c0 + w] = 1
    assert torch.equal(op.mask.double(), mask)
    assert int(op.mask.sum()) == h * w
    torch.testing.assert_close(op.adjoint(op(x)), ifftnc(mask * k, (-2, -1)), rtol=0, atol=1e-12)
    # A A^H = I (the DFT is unitary, the crop a coordinate projection)
    y = op(x)
    torch.testing.assert_close(op(op.adjoint(y)), y, rtol=0, atol=1e-12)


def test_fraction_one_is_identity():
    x = torch.from_numpy(shepp_logan((24, 20))).double()
    op = KSpaceTruncation((24, 20), 1.0)
    assert op.lowres_shape == (24, 20)
    torch.testing.assert_close(op(x), fft2c(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(op.adjoint(op(x)).real, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(op.lowres(op(x)).real, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(ifft2c(op(x)).real, x, rtol=0, atol=1e-12)


def test_dtypes_complex_in_complex_out():
    op = KSpaceTruncation((16, 16), 0.25)
    assert op(torch.zeros(16, 16)).dtype == torch.complex64
    assert op(torch.zeros(16, 16, dtype=torch.complex128)).dtype == torch.complex128
    assert op.adjoint(torch.zeros(8, 8, dtype=torch.complex64)).dtype == torch.complex64


def test_lowres_keeps_intensity_and_zero_filled_matches():
    """A constant stays constant on the coarse grid; zero-filled upsampling of the low-res
    image equals the operator's zero-filled reconstruction."""
    op = KSpaceTruncation((2, 32, 28), 0.0625)
    const = torch.full((2, 32, 28), 3.0, dtype=torch.float64)
    torch.testing.assert_close(op.degrade(const).real, torch.full(op.lowres_shape, 3.0,
                               dtype=torch.float64), rtol=0, atol=1e-12)  # fmt: skip
    x = torch.rand(3, 2, 32, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = op(x)
    lr = op.lowres(y)
    torch.testing.assert_close(upsample_lowres(lr, (2, 32, 28), "zero-filled"), op.zero_filled(y))
    torch.testing.assert_close(op.lowres_to_kspace(lr), y)
    # real input -> magnitude of the zero-filled image
    torch.testing.assert_close(
        upsample_lowres(lr.abs(), (2, 32, 28), "zero-filled"),
        upsample_lowres(lr.abs() + 0j, (2, 32, 28), "zero-filled").abs(),
    )


@pytest.mark.parametrize("method", ["trilinear", "bilinear", "bicubic", "nearest"])
def test_interpolation_alignment(method):
    """Shared-centre alignment: the coarse pixel h//2 lands on the full pixel H//2, coarse
    pixels are H/h apart, and a constant is reproduced."""
    H, h = 40, 8
    lr = torch.zeros(h, h, dtype=torch.float64)
    lr[h // 2, h // 2] = 1.0
    up = upsample_lowres(lr, (H, H), method)
    assert up.shape == (H, H)
    if method != "nearest":  # nearest: a block of ones around the centre
        assert tuple(np.unravel_index(int(up.argmax()), up.shape)) == (H // 2, H // 2)
    assert float(up[H // 2, H // 2]) == pytest.approx(1.0)
    assert float(up[H // 2 + H // h, H // 2]) == pytest.approx(0.0, abs=1e-12)
    c = upsample_lowres(torch.full((2, h, h), 0.7), (2, H, H), method)
    torch.testing.assert_close(c, torch.full((2, H, H), 0.7))


@pytest.mark.parametrize("method", ["trilinear", "bicubic"])
def test_interpolation_is_periodic_at_the_edges(method):
    """Full pixels beyond the last coarse pixel interpolate towards the first one (the DFT's
    periodic extension), not a repeated border: no streaks to the image edge."""
    H, h = 32, 6  # coarse pixel 5 sits at full position 26.67; full pixels 27..31 lie beyond
    lr = torch.zeros(h, h, dtype=torch.float64)
    lr[:, h - 1] = 1.0
    up = upsample_lowres(lr, (H, H), method)
    assert float(up[0, 27]) < 1.0 and float(up[0, 31]) < 0.25
    # and it matches a periodic interpolation of the same samples: the first column wraps
    lr2 = torch.zeros(h, h, dtype=torch.float64)
    lr2[:, 0] = 1.0
    assert float(upsample_lowres(lr2, (H, H), method)[0, 31]) > 0.5


def test_trilinear_is_bilinear_per_slice_and_close_to_truth():
    x = torch.from_numpy(shepp_logan((64, 64))).double()
    op = KSpaceTruncation((64, 64), 0.25)
    lr = op.degrade(x).abs()
    tri = upsample_lowres(lr, (64, 64), "trilinear")
    torch.testing.assert_close(tri, upsample_lowres(lr, (64, 64), "bilinear"))
    err = float((tri - x).abs().mean())
    assert err < 0.06  # a blurred copy (0.050 measured)


def test_errors_are_clear():
    with pytest.raises(ValueError, match="fraction"):
        KSpaceTruncation((16, 16), 0.0)
    with pytest.raises(ValueError, match="fraction"):
        KSpaceTruncation((16, 16), 1.5)
    with pytest.raises(ValueError, match="fraction"):
        KSpaceTruncation((16, 16), math.nan)
    with pytest.raises(TypeError, match="fraction"):
        KSpaceTruncation((16, 16), "4%")
    with pytest.raises(ValueError, match=r"\(H, W\) or \(D, H, W\)"):
        KSpaceTruncation((16,), 0.25)
    with pytest.raises(ValueError, match=r"\(H, W\) or \(D, H, W\)"):
        KSpaceTruncation((2, 2, 16, 16), 0.25)
    op = KSpaceTruncation((16, 16), 0.25)
    with pytest.raises(ValueError, match=r"\(\.\.\., 16, 16\)"):
        op(torch.zeros(16, 15))
    with pytest.raises(ValueError, match=r"\(\.\.\., 8, 8\)"):
        op.adjoint(torch.zeros(16, 16, dtype=torch.complex64))
    with pytest.raises(TypeError, match="complex"):
        op(torch.zeros(16, 16, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        op(np.zeros((16, 16)))
    with pytest.raises(ValueError, match="through-plane"):
        upsample_lowres(torch.zeros(3, 8, 8), (4, 16, 16))
    with pytest.raises(ValueError, match="exceed"):
        upsample_lowres(torch.zeros(20, 8), (16, 16))
    with pytest.raises(ValueError, match="method"):
        upsample_lowres(torch.zeros(8, 8), (16, 16), "lanczos")


def test_autograd_through_operator():
    op = KSpaceTruncation((8, 8), 0.25)
    x = torch.randn(8, 8, dtype=torch.float64, requires_grad=True)
    loss = op(x).abs().pow(2).sum()
    loss.backward()
    # d/dx ||C F x||^2 = 2 Re(F^H C^T C F x)
    torch.testing.assert_close(x.grad, 2 * op.adjoint(op(x.detach())).real)
