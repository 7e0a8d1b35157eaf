"""A dynamic-MRI simulator: a real image deformed by smooth, respiration-like motion.

:func:`simulate_dynamic_series` turns one static image (a 2D slice or a 3D volume, e.g. of
``../shared/data``) into what DDoS-UNet works with (Chatterjee et al., arXiv:2202.05355):

* ``planning``: the static high-resolution planning scan, the image at the reference
  respiratory phase (end-exhale, ``s = 0``: the undeformed image);
* ``series``: the high-resolution ground truth of ``T`` time points ``(T, *S)``;
* ``lowres`` and ``lowres_interp``: the low-resolution acquisition of every time point, the
  central ``fraction`` of in-plane k-space (:class:`mrct.physics.KSpaceTruncation`, magnitude
  on the coarse grid) and that image interpolated back to the full grid (the network input).

Motion model
------------
The respiratory signal follows Lujan et al. (Med. Phys. 26:715, 1999):
``s(t) = cos^(2n)(pi t / P + phi)`` in [0, 1] (``n = 2``; 0 = end-exhale, 1 = end-inhale; the
curve rests longer at exhale), with period ``P`` (seconds) and phase ``phi`` drawn per series.
The displacement of a pixel ``r`` at time ``t`` (pixels, along the superior-inferior and the
anterior-posterior axis) is

    d_SI(r, t) = s(t) a_SI w_SI(r) / spacing_SI,     d_AP(r, t) = s(t) a_AP w_AP(r) / spacing_AP

with amplitudes ``a`` in mm (defaults 10 mm SI, 4 mm AP: the liver and diaphragm move about
10-25 mm SI in free breathing) scaled per series by a random factor, and ``w`` smooth random
weight fields in [0.5, 1] (cubic-spline interpolation of a 4-point-per-axis random grid), so
the motion varies smoothly across the image. The frame at time ``t`` is the image sampled at
``r - d(r, t)`` (cubic B-spline, clipped to the image's range). The fields are smooth and
small: their gradients stay far below 1, so the deformation never folds.

Axes: ``si_axis`` and ``ap_axis`` name the image axes of the two motion components (defaults 0
and 1: rows and columns of a 2D image such as a sagittal slice ``(S, P)``; ``S`` and ``P`` of a
3D volume in mrct's SPL orientation). k-space truncation acts on the last two axes.

Everything is seeded (``seed``): the same arguments give the same arrays. Units: time in
seconds, amplitudes in mm, ``spacing`` in mm per pixel, displacements in pixels; intensities
are those of the input image.

Only ``lowres``/``lowres_interp`` need torch (imported when ``fraction`` is given); the motion
is numpy and scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["DynamicSeries", "simulate_dynamic_series", "breathing_signal", "motion_field"]


@dataclass
class DynamicSeries:
    """What :func:`simulate_dynamic_series` returns (numpy float32 arrays; ``S`` is the image
    shape, ``s`` the low-res shape ``KSpaceTruncation(S, fraction).lowres_shape``)."""

    planning: np.ndarray  # (*S) static high-res planning scan (reference phase)
    series: np.ndarray  # (T, *S) high-res ground truth
    breathing: np.ndarray  # (T,) respiratory signal s(t) in [0, 1]
    times: np.ndarray  # (T,) seconds
    displacement: np.ndarray  # (T, 2, *S) pixels along (si_axis, ap_axis)
    fraction: float | None = None
    lowres: np.ndarray | None = None  # (T, *s) low-res magnitude on the coarse grid
    lowres_interp: np.ndarray | None = None  # (T, *S) interpolated to the full grid
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.series.shape[0])


def breathing_signal(times, period: float = 4.0, phase: float = 0.0, n: int = 2) -> np.ndarray:
    """Lujan's respiratory signal ``cos^(2n)(pi t / period + phase)`` in [0, 1] (0 =
    end-exhale). ``times`` and ``period`` in seconds."""
    if not period > 0:
        raise ValueError(f"period must be > 0 seconds, got {period}")
    if int(n) != n or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n}")
    t = np.asarray(times, dtype=np.float64)
    return np.cos(np.pi * t / period + phase) ** (2 * int(n))


def _smooth_weight(shape, rng: np.random.Generator, lo: float = 0.5,
                   control: int = 4) -> np.ndarray:  # fmt: skip
    """A smooth random field in [lo, 1] on ``shape``: cubic interpolation of a coarse grid."""
    coarse = rng.random((control,) * len(shape))
    zoom = [s / control for s in shape]
    f = ndimage.zoom(coarse, zoom, order=3, mode="nearest", grid_mode=True)
    f = f[tuple(slice(0, s) for s in shape)]
    f = (f - f.min()) / max(float(f.max() - f.min()), 1e-12)
    return (lo + (1.0 - lo) * f).astype(np.float64)


def motion_field(shape, breathing, amplitude_px=(10.0, 4.0), seed: int = 0) -> np.ndarray:
    """Displacements ``(T, 2, *shape)`` in pixels: ``breathing[t] * amplitude_px[c] * w_c(r)``
    with seeded smooth weight fields ``w_c`` in [0.5, 1] (see the module docstring)."""
    rng = np.random.default_rng(seed)
    b = np.asarray(breathing, dtype=np.float64)
    w = np.stack([_smooth_weight(tuple(shape), rng) * float(a) for a in amplitude_px])
    return (b[:, None, None] * w.reshape(2, -1)[None]).reshape(b.size, 2, *shape)


def _check_image(image) -> np.ndarray:
    if type(image).__module__.startswith("torch"):  # a tensor, without importing torch here
        image = image.detach().cpu().numpy()
    a = np.asarray(image)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"image must be a real array (a magnitude image), got dtype {a.dtype}")
    if a.ndim not in (2, 3):
        raise ValueError(f"image must be 2D (H, W) or 3D (D, H, W), got shape {a.shape}")
    if min(a.shape) < 2:
        raise ValueError(f"image axes must have at least 2 pixels, got shape {a.shape}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError("image contains NaN or Inf")
    return a


def simulate_dynamic_series(
    image,
    n_frames: int = 10,
    *,
    fraction: float | None = None,
    interp: str = "trilinear",
    frame_time: float = 0.4,
    period: float = 4.0,
    amplitude_mm: tuple[float, float] = (10.0, 4.0),
    spacing=1.0,
    si_axis: int = 0,
    ap_axis: int = 1,
    irregularity: float = 0.15,
    noise: float = 0.0,
    seed: int = 0,
) -> DynamicSeries:
    """Simulate a dynamic series of ``image`` with respiration-like motion (module docstring).

    Parameters
    ----------
    image : array (H, W) or (D, H, W), real
        The static object (e.g. a brain MRI slice scaled to [0, 1]); it is also the planning
        scan (reference phase ``s = 0``).
    n_frames : int
        Time points ``T``.
    fraction : float in (0, 1], optional
        Kept fraction of the in-plane k-space area for the low-res series (0.25, 0.10, 0.0625,
        0.04 in the paper); None: no low-res series.
    interp : {"trilinear", "bicubic", "zero-filled", "bilinear", "nearest"}
        How ``lowres_interp`` is brought to the full grid
        (:func:`mrct.physics.upsample_lowres`).
    frame_time, period : float
        Seconds per time point and per breathing cycle (before the per-series jitter).
    amplitude_mm : (float, float)
        Peak superior-inferior and anterior-posterior displacement in mm.
    spacing : float or sequence
        Pixel size in mm (one number, or one per image axis).
    si_axis, ap_axis : int
        Image axes of the two motion components.
    irregularity : float in [0, 1)
        Per-series random scaling of amplitude and period, uniform in ``1 +- irregularity``.
    noise : float
        Standard deviation of complex Gaussian noise added to the low-res images, relative to
        the image maximum (white noise in k-space); 0: none.
    seed : int
        Seeds phase, jitter, weight fields and noise.

    Returns
    -------
    DynamicSeries
    """
    img = _check_image(image)
    nd = img.ndim
    if int(n_frames) != n_frames or n_frames < 1:
        raise ValueError(f"n_frames must be an integer >= 1, got {n_frames!r}")
    n_frames = int(n_frames)
    if not frame_time > 0:
        raise ValueError(f"frame_time must be > 0 seconds, got {frame_time}")
    if not 0 <= irregularity < 1:
        raise ValueError(f"irregularity must be in [0, 1), got {irregularity}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    amp = tuple(float(a) for a in amplitude_mm)
    if len(amp) != 2 or not all(math.isfinite(a) for a in amp):
        raise ValueError(f"amplitude_mm must be two numbers (SI, AP) in mm, got {amplitude_mm}")
    axes = []
    for name, ax in (("si_axis", si_axis), ("ap_axis", ap_axis)):
        if int(ax) != ax or not -nd <= ax < nd:
            raise ValueError(f"{name}={ax} is not an axis of an image of shape {img.shape}")
        axes.append(int(ax) % nd)
    if axes[0] == axes[1]:
        raise ValueError(f"si_axis and ap_axis must differ, got {si_axis} and {ap_axis}")
    sp = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (nd,)).copy()
    if not (sp > 0).all():
        raise ValueError(f"spacing must be positive (mm per pixel), got {spacing}")

    rng = np.random.default_rng(seed)
    phase = float(rng.uniform(0.0, np.pi))
    a_scale = float(rng.uniform(1 - irregularity, 1 + irregularity))
    p_scale = float(rng.uniform(1 - irregularity, 1 + irregularity))
    field_seed = int(rng.integers(2**31))
    noise_seed = int(rng.integers(2**31))

    times = np.arange(n_frames) * float(frame_time)
    s = breathing_signal(times, period * p_scale, phase)
    amp_px = (float(a_scale * amp[0] / sp[axes[0]]), float(a_scale * amp[1] / sp[axes[1]]))
    disp = motion_field(img.shape, s, amp_px, seed=field_seed)

    coeffs = ndimage.spline_filter(img, order=3, mode="nearest")
    grid = np.indices(img.shape, dtype=np.float64)
    lo, hi = float(img.min()), float(img.max())
    frames = np.empty((n_frames, *img.shape), np.float32)
    for t in range(n_frames):
        coords = grid.copy()
        coords[axes[0]] -= disp[t, 0]
        coords[axes[1]] -= disp[t, 1]
        warped = ndimage.map_coordinates(coeffs, coords, order=3, mode="nearest",
                                         prefilter=False)  # fmt: skip
        frames[t] = np.clip(warped, lo, hi)
    out = DynamicSeries(
        planning=img.astype(np.float32),
        series=frames,
        breathing=s.astype(np.float32),
        times=times.astype(np.float32),
        displacement=disp.astype(np.float32),
        info={
            "period_s": period * p_scale,
            "phase": phase,
            "amplitude_px": amp_px,
            "si_axis": axes[0],
            "ap_axis": axes[1],
            "seed": seed,
            "frame_time_s": frame_time,
            "spacing_mm": tuple(float(v) for v in sp),
        },  # fmt: skip
    )
    if fraction is not None:
        _add_lowres(out, fraction, interp, noise * max(abs(hi), abs(lo), 1e-12), noise_seed)
    return out


def _add_lowres(out: DynamicSeries, fraction: float, interp: str, sigma: float,
                seed: int) -> None:  # fmt: skip
    import torch

    from ..physics.kspace_truncation import KSpaceTruncation, upsample_lowres

    shape = out.planning.shape
    op = KSpaceTruncation(shape, fraction)
    x = torch.from_numpy(out.series.astype(np.float64))
    lr = op.degrade(x)
    if sigma > 0:
        g = torch.Generator().manual_seed(seed)
        lr = lr + sigma * torch.complex(
            torch.randn(lr.shape, generator=g, dtype=torch.float64),
            torch.randn(lr.shape, generator=g, dtype=torch.float64),
        ) / math.sqrt(2)
    mag = lr.abs()
    out.fraction = op.fraction
    out.lowres = mag.float().numpy()
    out.lowres_interp = upsample_lowres(mag, shape, interp).float().numpy()
    out.info.update({"lowres_shape": op.lowres_shape, "kept_fraction": op.kept_fraction,
                     "interp": interp, "noise_sigma": sigma})  # fmt: skip
