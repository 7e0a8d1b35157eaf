"""Tests for mrct.metrics against scikit-image and the published reference definitions."""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file
from scipy.ndimage import gaussian_filter
from skimage.metrics import (
    normalized_root_mse,
    peak_signal_noise_ratio,
    structural_similarity,
)
from skimage.util import crop

from mrct.metrics import (
    SSIMLoss,
    masked_mae,
    masked_psnr,
    masked_ssim,
    nmse,
    psnr,
    ssim,
    ssim_map,
    ssim_torch,
)

RTOL = 1e-6
SYNTHRAD_RANGE = (-1024.0, 3000.0)


# ---------------------------------------------------------------------------------------------
# data: the 128x128 CT slice shipped with pydicom, in HU
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ct() -> np.ndarray:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    hu = hu.astype(np.float64)
    assert hu.shape == (128, 128)
    # max - min differs from max, so a wrong default data_range would show up.
    assert hu.max() > 0 > hu.min()
    return hu


@pytest.fixture(scope="module")
def ct_pred(ct) -> np.ndarray:
    rng = np.random.default_rng(0)
    return gaussian_filter(ct, sigma=1.0) + rng.normal(0.0, 25.0, ct.shape)


@pytest.fixture(scope="module")
def stack(ct) -> tuple[np.ndarray, np.ndarray]:
    """(3, 128, 128) magnitude-like (non-negative) target with different per-slice maxima."""
    rng = np.random.default_rng(1)
    mag = ct + 1024.0  # >= 0; min > 0 so max - min != max
    target = np.stack([mag, 0.7 * mag, 0.4 * gaussian_filter(mag, 0.7)])
    pred = np.stack(
        [
            gaussian_filter(s, sigma) + rng.normal(0.0, n, s.shape)
            for s, sigma, n in zip(target, (0.5, 1.0, 1.5), (10.0, 20.0, 40.0), strict=True)
        ]
    )
    return pred, target


@pytest.fixture(scope="module")
def stack3d(ct) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(8, 64, 64) HU volume: a downsampled slice with different noise per slice, plus mask."""
    rng = np.random.default_rng(2)
    small = ct[::2, ::2]
    target = np.stack([small + rng.normal(0.0, 5.0, small.shape) for _ in range(8)])
    pred = gaussian_filter(target, sigma=(0.0, 1.0, 1.0)) + rng.normal(0.0, 40.0, target.shape)
    # Values outside the SynthRAD range so that clipping matters.
    pred[2, 20:30, 20:30] = 3600.0
    pred[5, 10:14, 30:40] = -2000.0
    mask = (target > -500).astype(np.uint8)
    return pred, target, mask


def _fastmri_ssim(target: np.ndarray, pred: np.ndarray, maxval: float) -> float:
    """fastmri/evaluate.py: mean of skimage 2D SSIMs over slices with a volume-wide maxval."""
    return float(
        np.mean(
            [
                structural_similarity(t, p, data_range=maxval)
                for t, p in zip(target, pred, strict=True)
            ]
        )
    )


def _synthrad_ssim(gt, pred, mask, dynamic_range=SYNTHRAD_RANGE) -> float:
    """SynthRAD2023 functions/image_metrics.py ImageMetrics.ssim, verbatim logic."""
    lo, hi = dynamic_range
    gt = np.clip(gt, lo, hi)
    pred = np.clip(pred, lo, hi)
    mask = np.where(mask > 0, 1.0, 0.0)
    gt = np.where(mask == 0, lo, gt)
    pred = np.where(mask == 0, lo, pred)
    if lo < 0:
        gt = gt - lo
        pred = pred - lo
    _, smap = structural_similarity(gt, pred, data_range=hi - lo, full=True)
    pad = 3
    return float(crop(smap, pad)[crop(mask, pad).astype(bool)].mean(dtype=np.float64))


def _synthrad_psnr(gt, pred, mask, dynamic_range=SYNTHRAD_RANGE) -> float:
    lo, hi = dynamic_range
    mask = np.where(mask > 0, 1.0, 0.0)
    gt = np.where(gt < lo, lo, gt)
    gt = np.where(gt > hi, hi, gt)
    pred = np.where(pred < lo, lo, pred)
    pred = np.where(pred > hi, hi, pred)
    return float(peak_signal_noise_ratio(gt[mask == 1], pred[mask == 1], data_range=hi - lo))


def _synthrad_mae(gt, pred, mask) -> float:
    mask = np.where(mask > 0, 1.0, 0.0)
    return float(np.sum(np.abs(gt * mask - pred * mask)) / mask.sum())


# ---------------------------------------------------------------------------------------------
# 1. fastMRI metrics vs scikit-image
# ---------------------------------------------------------------------------------------------


def test_psnr_2d_matches_skimage_with_volume_max(ct, ct_pred):
    ref = peak_signal_noise_ratio(ct, ct_pred, data_range=ct.max())
    assert psnr(ct_pred, ct) == pytest.approx(ref, rel=RTOL)
    # The default is target.max(), not max - min (which differs for this HU slice).
    wrong = peak_signal_noise_ratio(ct, ct_pred, data_range=ct.max() - ct.min())
    assert abs(psnr(ct_pred, ct) - wrong) > 1.0
    assert psnr(ct_pred, ct, data_range=4096.0) == pytest.approx(
        peak_signal_noise_ratio(ct, ct_pred, data_range=4096.0), rel=RTOL
    )


def test_psnr_3d_matches_skimage(stack):
    pred, target = stack
    ref = peak_signal_noise_ratio(target, pred, data_range=target.max())
    assert psnr(pred, target) == pytest.approx(ref, rel=RTOL)


def test_nmse_matches_skimage_and_formula(ct, ct_pred, stack):
    for pred, target in ((ct_pred, ct), stack):
        ref = normalized_root_mse(target, pred, normalization="euclidean") ** 2
        formula = np.sum((target - pred) ** 2) / np.sum(target**2)
        assert nmse(pred, target) == pytest.approx(ref, rel=RTOL)
        assert nmse(pred, target) == pytest.approx(formula, rel=RTOL)


def test_ssim_2d_matches_skimage(ct, ct_pred):
    ref = structural_similarity(ct, ct_pred, data_range=ct.max())
    assert ssim(ct_pred, ct) == pytest.approx(ref, rel=RTOL)
    ref_explicit = structural_similarity(ct, ct_pred, data_range=2500.0)
    assert ssim(ct_pred, ct, data_range=2500.0) == pytest.approx(ref_explicit, rel=RTOL)
    # max - min would give a clearly different value.
    wrong = structural_similarity(ct, ct_pred, data_range=ct.max() - ct.min())
    assert abs(ssim(ct_pred, ct) - wrong) > 1e-3


def test_ssim_stack_is_mean_of_slices_with_volume_max(stack):
    pred, target = stack
    vol_max = target.max()
    ref = _fastmri_ssim(target, pred, vol_max)
    assert ssim(pred, target) == pytest.approx(ref, rel=RTOL)
    # Per-slice maxima differ from the volume max; using them would change the result.
    per_slice_max = np.mean(
        [structural_similarity(t, p, data_range=t.max()) for t, p in zip(target, pred, strict=True)]
    )
    assert abs(ssim(pred, target) - per_slice_max) > 1e-4
    # Max - min of the volume (min > 0 here) also differs.
    wrong = _fastmri_ssim(target, pred, target.max() - target.min())
    assert abs(ssim(pred, target) - wrong) > 1e-4


def test_ssim_map_matches_skimage_full(ct, ct_pred, stack3d):
    _, smap = structural_similarity(ct, ct_pred, data_range=3000.0, full=True)
    np.testing.assert_allclose(ssim_map(ct_pred, ct, 3000.0), smap, rtol=1e-9, atol=1e-12)
    pred, target, _ = stack3d
    _, smap3 = structural_similarity(target, pred, data_range=4024.0, full=True)
    got = ssim_map(pred, target, 4024.0)
    assert got.shape == (8, 64, 64)
    np.testing.assert_allclose(got, smap3, rtol=1e-9, atol=1e-12)


def test_torch_and_float32_inputs_are_accepted(ct, ct_pred):
    t32 = torch.from_numpy(ct).float()
    p32 = torch.from_numpy(ct_pred).float()
    p64, t64 = p32.double().numpy(), t32.double().numpy()
    assert ssim(p32, t32) == pytest.approx(ssim(p64, t64), rel=1e-12)
    assert psnr(p32, t32) == pytest.approx(psnr(p64, t64), rel=1e-12)
    assert nmse(p32, t32) == pytest.approx(nmse(p64, t64), rel=1e-12)
    assert ssim(p32.requires_grad_(), t32) == pytest.approx(ssim(p64, t64), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# 2. SynthRAD2023 masked metrics vs a direct skimage reimplementation
# ---------------------------------------------------------------------------------------------


def test_masked_metrics_2d(ct, ct_pred):
    mask = ct > -500
    assert 0 < mask.mean() < 1
    pred = ct_pred.copy()
    pred[60:70, 60:70] = 3500.0  # clipped to 3000 by PSNR/SSIM, not by MAE
    assert masked_mae(pred, ct, mask) == pytest.approx(_synthrad_mae(ct, pred, mask), rel=RTOL)
    assert masked_psnr(pred, ct, mask) == pytest.approx(_synthrad_psnr(ct, pred, mask), rel=RTOL)
    assert masked_ssim(pred, ct, mask) == pytest.approx(_synthrad_ssim(ct, pred, mask), rel=RTOL)
    # Integer / float masks binarised with mask > 0 give the same result.
    assert masked_ssim(pred, ct, mask.astype(np.float32) * 2.5) == masked_ssim(pred, ct, mask)


def test_masked_metrics_3d(stack3d):
    pred, target, mask = stack3d
    ref_mae = _synthrad_mae(target, pred, mask)
    ref_psnr = _synthrad_psnr(target, pred, mask)
    ref_ssim = _synthrad_ssim(target, pred, mask)
    assert masked_mae(pred, target, mask) == pytest.approx(ref_mae, rel=RTOL)
    assert masked_psnr(pred, target, mask) == pytest.approx(ref_psnr, rel=RTOL)
    assert masked_ssim(pred, target, mask) == pytest.approx(ref_ssim, rel=RTOL)
    # 3D SSIM uses a 7x7x7 window: it differs from averaging 2D slice SSIMs.
    assert abs(masked_ssim(pred, target, mask) - ssim(pred, target, data_range=4024.0)) > 1e-3
    # Torch inputs give the same values.
    tp, tt, tm = (torch.from_numpy(a) for a in (pred, target, mask.astype(bool)))
    assert masked_ssim(tp, tt, tm) == pytest.approx(ref_ssim, rel=RTOL)


def test_masked_metrics_custom_dynamic_range(ct, ct_pred):
    mask = ct > -500
    rng = (-200.0, 400.0)
    assert masked_psnr(ct_pred, ct, mask, dynamic_range=rng) == pytest.approx(
        _synthrad_psnr(ct, ct_pred, mask, rng), rel=RTOL
    )
    assert masked_ssim(ct_pred, ct, mask, dynamic_range=rng) == pytest.approx(
        _synthrad_ssim(ct, ct_pred, mask, rng), rel=RTOL
    )
    assert masked_psnr(ct_pred, ct, mask, dynamic_range=rng) != pytest.approx(
        masked_psnr(ct_pred, ct, mask), rel=1e-3
    )


# ---------------------------------------------------------------------------------------------
# 3. differentiable SSIM
# ---------------------------------------------------------------------------------------------


def test_ssim_torch_equals_numpy_ssim_float64(stack):
    pred, target = stack
    p, t = torch.from_numpy(pred), torch.from_numpy(target)
    # Global float data_range.
    got = ssim_torch(p, t, data_range=float(target.max()))
    assert got.shape == (3,) and got.dtype == torch.float64
    for i in range(3):
        ref = ssim(pred[i], target[i], data_range=target.max())
        assert got[i].item() == pytest.approx(ref, rel=RTOL, abs=1e-9)
    assert got.mean().item() == pytest.approx(ssim(pred, target), rel=RTOL)
    # Per-item tensor data_range and (N, 1, H, W) layout.
    dr = t.amax(dim=(1, 2))
    got4 = ssim_torch(p[:, None], t[:, None], dr)
    for i in range(3):
        ref = structural_similarity(target[i], pred[i], data_range=target[i].max())
        assert got4[i].item() == pytest.approx(ref, rel=RTOL, abs=1e-9)


def test_ssim_torch_float32_close_to_float64(ct, ct_pred):
    p, t = torch.from_numpy(ct_pred)[None], torch.from_numpy(ct)[None]
    ref = ssim_torch(p, t, 4024.0)
    got = ssim_torch(p.float(), t.float(), 4024.0)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ref.item(), abs=1e-5)


def test_ssim_torch_gradcheck():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(2, 9, 9, generator=gen, dtype=torch.float64)
    pred = (
        target + 0.1 * torch.randn(2, 9, 9, generator=gen, dtype=torch.float64)
    ).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: ssim_torch(x, target, 1.0), (pred,))
    target = target.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, y: ssim_torch(x, y, torch.tensor([1.0, 2.0], dtype=torch.float64)),
        (pred, target),
    )


def test_ssim_loss(ct, ct_pred):
    t = torch.from_numpy(ct).float()[None, None].repeat(2, 1, 1, 1)
    loss_fn = SSIMLoss()
    same = loss_fn(t.clone().requires_grad_(), t)
    assert same.ndim == 0
    assert abs(same.item()) < 1e-7

    p = torch.from_numpy(ct_pred).float()[None, None].repeat(2, 1, 1, 1).requires_grad_()
    loss = loss_fn(p, t)
    assert loss.item() > 0.01
    # Default data_range is the per-item target max.
    expected = 1 - ssim(ct_pred, ct, data_range=ct.max())
    assert loss.item() == pytest.approx(expected, abs=1e-5)
    loss.backward()
    assert p.grad is not None
    assert torch.isfinite(p.grad).all()
    assert p.grad.abs().sum() > 0
    # Gradient descent on the loss increases SSIM.
    with torch.no_grad():
        p2 = p - 5.0 * p.grad / p.grad.abs().max()  # at most 5 HU per pixel
    assert loss_fn(p2, t).item() < loss.item()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_ssim_torch_cuda_matches_cpu(stack):
    pred, target = (torch.from_numpy(a) for a in stack)
    cpu = ssim_torch(pred, target, 3000.0)
    gpu = ssim_torch(pred.cuda(), target.cuda(), torch.tensor(3000.0, device="cuda"))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# 4. identity properties
# ---------------------------------------------------------------------------------------------


def test_identity(ct, stack):
    _, target = stack
    for x in (ct, target):
        assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)
        assert nmse(x, x) == 0.0
        assert psnr(x, x) == math.inf
    mask = ct > -500
    assert masked_mae(ct, ct, mask) == 0.0
    assert masked_psnr(ct, ct, mask) == math.inf
    assert masked_ssim(ct, ct, mask) == pytest.approx(1.0, abs=1e-12)
    t = torch.from_numpy(target)
    torch.testing.assert_close(ssim_torch(t, t, 1000.0), torch.ones(3, dtype=torch.float64))


# ---------------------------------------------------------------------------------------------
# 5. errors
# ---------------------------------------------------------------------------------------------


def test_shape_mismatch_errors(ct):
    with pytest.raises(ValueError, match="same shape"):
        ssim(ct, ct[:-1])
    with pytest.raises(ValueError, match="same shape"):
        psnr(ct, ct[:, :-1])
    with pytest.raises(ValueError, match="same shape"):
        nmse(ct, ct[None])
    with pytest.raises(ValueError, match="mask must have the same shape"):
        masked_mae(ct, ct, np.ones((64, 64)))
    t = torch.from_numpy(ct)[None]
    with pytest.raises(ValueError, match="same shape"):
        ssim_torch(t, t[..., :-1], 1.0)


def test_dimension_errors(ct):
    with pytest.raises(ValueError, match=r"2D \(H, W\) or 3D \(S, H, W\)"):
        ssim(ct[0], ct[1])
    with pytest.raises(ValueError, match=r"2D \(H, W\) or 3D \(S, H, W\)"):
        ssim(ct[None, None], ct[None, None])
    with pytest.raises(ValueError, match="win_size=7"):
        ssim(ct[:6, :], ct[:6, :])
    with pytest.raises(ValueError, match=r"2D \(H, W\) or 3D \(D, H, W\)"):
        masked_ssim(ct[0], ct[0], ct[0] > 0)
    with pytest.raises(ValueError, match="every dimension must be >= win_size=7"):
        masked_ssim(np.stack([ct] * 3), np.stack([ct] * 3), np.ones((3, 128, 128)))
    t = torch.from_numpy(ct)
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, 1, H, W\)"):
        ssim_torch(t, t, 1.0)
    with pytest.raises(ValueError, match=r"shape \(\) or \(N,\)"):
        ssim_torch(t[None], t[None], torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="odd integer"):
        ssim_map(ct, ct, 1.0, win_size=4)


def test_non_finite_errors(ct):
    bad = ct.copy()
    bad[5, 5] = np.nan
    with pytest.raises(ValueError, match="pred contains NaN or Inf"):
        ssim(bad, ct)
    with pytest.raises(ValueError, match="target contains NaN or Inf"):
        psnr(ct, bad)
    with pytest.raises(ValueError, match="NaN or Inf"):
        masked_psnr(ct, ct, bad)
    inf = ct.copy()
    inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="target contains NaN or Inf"):
        nmse(ct, inf)
    t = torch.from_numpy(ct)[None]
    with pytest.raises(ValueError, match="pred contains NaN or Inf"):
        ssim_torch(torch.from_numpy(bad)[None], t, 1.0)


def test_mask_and_range_errors(ct):
    with pytest.raises(ValueError, match="mask is empty"):
        masked_mae(ct, ct, np.zeros_like(ct))
    with pytest.raises(ValueError, match="mask is empty"):
        masked_psnr(ct, ct, -np.ones_like(ct))
    border = np.zeros_like(ct)
    border[0, :] = 1  # only within the 3-pixel crop
    with pytest.raises(ValueError, match="mask is empty after cropping 3"):
        masked_ssim(ct, ct, border)
    with pytest.raises(ValueError, match="lo < hi"):
        masked_psnr(ct, ct, ct > 0, dynamic_range=(100.0, -100.0))
    neg = ct - ct.max() - 1.0  # target.max() < 0
    with pytest.raises(ValueError, match=r"target\.max\(\).*must be positive"):
        ssim(neg, neg)
    with pytest.raises(ValueError, match="data_range must be a positive"):
        psnr(ct, ct, data_range=0.0)
    with pytest.raises(ValueError, match="non-zero norm"):
        nmse(ct, np.zeros_like(ct))
    t = torch.from_numpy(ct)[None]
    with pytest.raises(ValueError, match="data_range must be positive"):
        ssim_torch(t, t, torch.tensor([-1.0], dtype=torch.float64))
