"""MRI acquisition artefacts: complex Gaussian noise and rigid in-plane motion.

Motion model (2D rigid, one pose per acquired line or spoke; Batchelor et al., MRM 54:1273,
2005). The object at pose ``(theta, d)`` is ``m(r) = x(R_theta^-1 (r - d))``: rotated by
``theta`` about the Fourier origin, then translated by ``d``. Its Fourier transform is

    M(k) = exp(-i k . d) X(R_theta^T k),

so a translation is a linear phase ramp and a rotation rotates the k-space coordinates by
``-theta`` (Fourier rotation theorem). Each line (Cartesian) or spoke (radial) is a sample of
``M`` for its own pose.

Coordinates (array order, as in :mod:`mrct.physics.fft` and mrct's NUFFT): positions and
translations are ``(row, col)``; the Fourier origin is pixel ``(H // 2, W // 2)`` (the pixel
that :func:`~mrct.physics.fft.fft2c` treats as ``r = 0``; the geometric centre for odd sizes,
half a pixel past it for even sizes). Rotation angles are radians, counter-clockwise as the
image is displayed with row 0 at the top (the ``(x, y)`` convention of
``docs/conventions.md``), so ``theta = pi / 2`` turns an image like ``torch.rot90(x, 1)``.
A translation ``(d_row, d_col)`` moves the object towards larger row and column indices
(in world coordinates ``dx = d_col``, ``dy = -d_row``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .fft import as_complex, fftnc, ifftnc

__all__ = [
    "add_complex_noise",
    "rotate_image",
    "cartesian_rigid_motion",
    "radial_rigid_motion",
]

_REAL_OF = {torch.complex64: torch.float32, torch.complex128: torch.float64}


# ----------------------------------------------------------------------------------- noise


def add_complex_noise(
    kspace: torch.Tensor,
    snr_db: float,
    signal_power: float | None = None,
    generator: torch.Generator | None = None,
    *,
    mask: torch.Tensor | None = None,
    return_sigma: bool = False,
):
    """Add circular complex white Gaussian noise at a given SNR.

    Definition: ``SNR_dB = 10 log10(P / sigma^2)`` with ``P`` the mean signal power
    ``mean |kspace|^2`` and ``sigma^2 = E|n|^2`` the total complex noise variance, i.e.
    ``sigma^2 / 2`` in each of the real and imaginary parts. So
    ``sigma = sqrt(P / 10^(SNR_dB / 10))``.

    Parameters
    ----------
    kspace : Tensor, complex64 or complex128, any shape
        Noise-free data (k-space, or coil images: the noise is white either way).
    snr_db : float
        Target SNR in dB (finite).
    signal_power : float, optional
        ``P`` to use instead of the mean power of ``kspace`` (e.g. the power of the fully
        sampled data, to keep the same ``sigma`` for every undersampling pattern).
    generator : torch.Generator, optional
        For reproducible noise; it must live on ``kspace``'s device.
    mask : Tensor, real, broadcastable to ``kspace.shape``, optional
        Sampling mask: noise is added only where ``mask != 0`` and the default ``P`` is the
        mean power over those entries.
    return_sigma : bool
        Also return ``sigma``.

    Returns
    -------
    Tensor, same shape and dtype as ``kspace``
        ``kspace + n``, ``n ~ CN(0, sigma^2)``.
    float, optional
        ``sigma`` (same units as ``kspace``), when ``return_sigma``.
    """
    if not isinstance(kspace, torch.Tensor):
        raise TypeError(f"kspace must be a torch.Tensor, got {type(kspace).__name__}")
    if not kspace.is_complex():
        raise TypeError(f"kspace must be complex (complex64/complex128), got {kspace.dtype}")
    snr_db = float(snr_db)
    if not math.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite, got {snr_db}")
    sampled = None
    if mask is not None:
        if not isinstance(mask, torch.Tensor):
            mask = torch.as_tensor(np.asarray(mask))
        if mask.is_complex():
            raise TypeError(f"mask must be real, got {mask.dtype}")
        try:
            sampled = torch.broadcast_to(mask.to(kspace.device) != 0, kspace.shape)
        except RuntimeError as e:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to kspace of shape "
                f"{tuple(kspace.shape)}"
            ) from e
    if signal_power is None:
        power = kspace.real.square() + kspace.imag.square()
        signal_power = float(power[sampled].mean() if sampled is not None else power.mean())
        if not signal_power > 0:
            raise ValueError(
                "kspace has zero (or NaN) mean power; pass signal_power to set the noise level"
            )
    else:
        signal_power = float(signal_power)
        if not (math.isfinite(signal_power) and signal_power > 0):
            raise ValueError(f"signal_power must be positive and finite, got {signal_power}")
    sigma = math.sqrt(signal_power / 10.0 ** (snr_db / 10.0))
    # torch.randn for complex dtypes: real and imaginary parts each N(0, 1/2), E|n|^2 = 1.
    noise = torch.randn(kspace.shape, dtype=kspace.dtype, device=kspace.device, generator=generator)
    if sampled is not None:
        noise = noise * sampled
    noisy = kspace + sigma * noise
    return (noisy, sigma) if return_sigma else noisy


# -------------------------------------------------------------------------------- rotation


def rotate_image(image: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate images by ``angle`` radians (counter-clockwise as displayed) about the Fourier
    origin ``(H // 2, W // 2)`` by bilinear interpolation (``torch.nn.functional.grid_sample``,
    zero outside the field of view).

    Output pixel ``p`` takes the value of the input at ``R(-angle) p`` (positions relative to
    the origin, in ``(x, y) = (col, -row)`` pixel units). Multiples of ``pi / 2`` map the grid
    onto itself, so they are exact up to rounding (pixels rotated out of the field of view
    become zero).

    Parameters
    ----------
    image : Tensor, shape (..., H, W), real or complex floating point
    angle : float
        Radians.

    Returns
    -------
    Tensor, shape and dtype of ``image``
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if not (image.is_complex() or image.is_floating_point()):
        raise TypeError(f"image must be real or complex floating point, got {image.dtype}")
    if image.ndim < 2 or min(image.shape[-2:]) < 2:
        raise ValueError(f"image must have shape (..., H, W) with H, W >= 2, got {image.shape}")
    angle = float(angle)
    if angle == 0.0:
        return image
    *lead, h, w = image.shape
    is_complex = image.is_complex()
    real = torch.view_as_real(image) if is_complex else image.unsqueeze(-1)
    n_ch = real.shape[-1]
    real_dtype = real.dtype
    # (..., H, W, k) -> (1, N * k, H, W): every batch item and real/imag part is a channel.
    inp = real.movedim(-1, -3).reshape(1, -1, h, w)
    i = torch.arange(h, dtype=torch.float64, device=image.device)
    j = torch.arange(w, dtype=torch.float64, device=image.device)
    ii, jj = torch.meshgrid(i, j, indexing="ij")
    x, y = jj - w // 2, -(ii - h // 2)
    c, s = math.cos(angle), math.sin(angle)
    xs, ys = c * x + s * y, -s * x + c * y  # R(-angle) (x, y)
    row, col = h // 2 - ys, w // 2 + xs
    # grid_sample with align_corners=True: -1 and 1 are the centres of the corner pixels.
    grid = torch.stack((2 * col / (w - 1) - 1, 2 * row / (h - 1) - 1), dim=-1)
    out = F.grid_sample(
        inp,
        grid[None].to(real_dtype),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )
    out = out.reshape(*lead, n_ch, h, w).movedim(-3, -1)
    if is_complex:
        return torch.view_as_complex(out.contiguous())
    return out[..., 0]


# ---------------------------------------------------------------------------- validation


def _per_line(values, n: int, trailing: tuple[int, ...], name: str, device) -> torch.Tensor:
    """``values`` as a float64 tensor of shape ``(n,) + trailing`` (None -> zeros)."""
    if values is None:
        return torch.zeros((n,) + trailing, dtype=torch.float64, device=device)
    if isinstance(values, torch.Tensor):
        t = values.detach().to(device=device, dtype=torch.float64)
    else:
        t = torch.as_tensor(np.asarray(values, dtype=np.float64), device=device)
    if tuple(t.shape) != (n,) + trailing:
        raise ValueError(
            f"{name} must have shape {(n,) + trailing} (one per line or spoke), "
            f"got {tuple(t.shape)}"
        )
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or Inf")
    return t


def _check_image(image, name="image") -> torch.Tensor:
    image = as_complex(image, name)
    if image.ndim < 2:
        raise ValueError(f"{name} must have shape (..., H, W), got {tuple(image.shape)}")
    if not bool(torch.isfinite(image).all()):
        raise ValueError(f"{name} contains NaN or Inf")
    return image


def _phase_ramp(k_row: torch.Tensor, k_col: torch.Tensor, d_row: float, d_col: float, dtype):
    """``exp(-i (k_row d_row + k_col d_col))`` (k in radians per pixel, d in pixels)."""
    return torch.polar(torch.ones_like(k_row), -(k_row * d_row + k_col * d_col)).to(dtype)


# -------------------------------------------------------------------------------- Cartesian


def cartesian_rigid_motion(
    image: torch.Tensor,
    translations=None,
    rotations=None,
    coil_maps: torch.Tensor | None = None,
    *,
    line_axis: int = -1,
    pixel_size: float | tuple[float, float] = 1.0,
) -> torch.Tensor:
    """Fully sampled Cartesian k-space of an object moving rigidly between phase-encoding lines.

    Line ``l`` (index ``l`` along ``line_axis``; default the columns along W, the
    phase-encoding direction of fastMRI data and :mod:`mrct.data.masks`) is acquired with the
    object at pose ``(rotations[l], translations[l])``:

        y[..., :, l] = [F(S * m_l)][..., :, l],   m_l = T_{d_l} R_{theta_l} x,

    where ``F`` is :func:`~mrct.physics.fft.fft2c` and ``S`` the (static, scanner-fixed) coil
    maps. ``R`` is :func:`rotate_image` (bilinear, about pixel ``(H//2, W//2)``); ``T_d`` is
    applied exactly in k-space as the phase ramp ``exp(-2 pi i (k_r d_r / H + k_c d_c / W))``
    with ``k_r = i - H//2``, ``k_c = j - W//2`` and ``d`` in pixels (a circular, sub-pixel
    Fourier shift; an integer shift equals ``torch.roll``). With coil maps the shifted image is
    formed first (inverse FFT), then weighted by the maps. Lines sharing a pose share one FFT.

    Parameters
    ----------
    image : Tensor, shape (..., H, W), complex (real is promoted)
        Object at the reference pose.
    translations : array-like, shape (n_lines, 2), optional
        Per-line translation ``(d_row, d_col)`` in mm (zeros if omitted).
    rotations : array-like, shape (n_lines,), optional
        Per-line rotation in radians (zeros if omitted).
    coil_maps : Tensor, shape (C, H, W) or (..., C, H, W), optional
        Coil sensitivities; the output then has a coil axis.
    line_axis : {-1, -2}
        Axis of the phase-encoding lines: -1 (columns, fastMRI) or -2 (rows).
    pixel_size : float or (float, float)
        Pixel size in mm (row, col) converting ``translations`` to pixels.

    Returns
    -------
    Tensor, shape (..., H, W), or (..., C, H, W) with coil maps
        k-space (apply a sampling mask afterwards to undersample).
    """
    image = _check_image(image)
    h, w = image.shape[-2:]
    if line_axis not in (-1, -2):
        raise ValueError(f"line_axis must be -1 (columns) or -2 (rows), got {line_axis}")
    read_axis = -2 if line_axis == -1 else -1
    n_lines = image.shape[line_axis]
    try:
        ps = np.broadcast_to(np.asarray(pixel_size, dtype=np.float64), (2,)).copy()
    except ValueError as e:
        raise ValueError(f"pixel_size must be a float or (row, col) in mm, got {pixel_size}") from e
    if not np.all(ps > 0) or not np.all(np.isfinite(ps)):
        raise ValueError(f"pixel_size must be positive (mm), got {pixel_size}")
    trans = _per_line(translations, n_lines, (2,), "translations", "cpu")
    rots = _per_line(rotations, n_lines, (), "rotations", "cpu")
    trans = trans / torch.as_tensor(ps)  # mm -> pixels
    maps = None
    if coil_maps is not None:
        maps = as_complex(coil_maps, "coil_maps")
        if maps.ndim < 3 or tuple(maps.shape[-2:]) != (h, w):
            raise ValueError(
                f"coil_maps must have shape (C, {h}, {w}) or (..., C, {h}, {w}) to match the "
                f"image, got {tuple(maps.shape)}"
            )
        if maps.device != image.device:
            raise ValueError(f"coil_maps are on {maps.device} but image on {image.device}")
        maps = maps.to(image.dtype)

    # k-space coordinates, radians per pixel: 2 pi (index - n//2) / n.
    real = _REAL_OF[image.dtype]
    kr = 2 * math.pi * (torch.arange(h, dtype=torch.float64, device=image.device) - h // 2) / h
    kc = 2 * math.pi * (torch.arange(w, dtype=torch.float64, device=image.device) - w // 2) / w
    kr, kc = kr[:, None].to(real), kc[None, :].to(real)

    poses, inverse = torch.unique(torch.cat([rots[:, None], trans], 1), dim=0, return_inverse=True)
    out = None
    for p, (theta, dr, dc) in enumerate(poses.tolist()):
        lines = torch.nonzero(inverse == p).flatten().to(image.device)
        moved = rotate_image(image, theta)
        if maps is None:
            k = fftnc(moved, (line_axis,)).index_select(line_axis, lines)
            k = fftnc(k, (read_axis,))
            if dr != 0.0 or dc != 0.0:
                kr_l = kr if line_axis == -1 else kr.index_select(0, lines)
                kc_l = kc.index_select(1, lines) if line_axis == -1 else kc
                k = k * _phase_ramp(kr_l, kc_l, dr, dc, image.dtype)
        else:
            if dr != 0.0 or dc != 0.0:
                ramp = _phase_ramp(kr, kc, dr, dc, image.dtype)
                moved = ifftnc(ramp * fftnc(moved, (-2, -1)), (-2, -1))
            z = moved.unsqueeze(-3) * maps
            k = fftnc(z, (line_axis,)).index_select(line_axis, lines)
            k = fftnc(k, (read_axis,))
        if out is None:
            shape = list(k.shape)
            shape[line_axis] = n_lines
            out = torch.zeros(shape, dtype=k.dtype, device=k.device)
        out = out.index_copy(out.ndim + line_axis, lines, k)
    return out


# ----------------------------------------------------------------------------------- radial


def _default_nufft(traj: torch.Tensor, image_shape: tuple[int, int]):
    try:
        from mrct.physics import NUFFT
    except ImportError as e:  # pragma: no cover - until mrct.physics.NUFFT exists
        raise RuntimeError(
            "mrct.physics.NUFFT is not available; pass nufft=(traj, image_shape) -> operator"
        ) from e
    return NUFFT(traj, image_shape)


def radial_rigid_motion(
    image: torch.Tensor,
    traj,
    translations=None,
    rotations=None,
    nufft: Callable | None = None,
) -> torch.Tensor:
    """Non-Cartesian (e.g. radial) k-space of an object moving rigidly between spokes.

    Spoke ``s``, acquired at pose ``(rotations[s], translations[s])``, samples

        y_s(k) = exp(-i k . d_s) X(R_{theta_s}^T k),   k in traj[s],

    where ``X(k) = sum_r x[r] exp(-i k . r)`` is the NUFFT of the reference image (``r`` the
    pixel position relative to the NUFFT's origin). So the object rotation becomes a rotation
    of the spoke's coordinates by ``-theta_s`` (wrapped back into ``[-pi, pi)``, exact because
    ``X`` is ``2 pi``-periodic for integer ``r``) and the translation a phase on the measured
    samples. Rotations are counter-clockwise as displayed (see the module docstring), about the
    NUFFT origin.

    Parameters
    ----------
    image : Tensor, shape (..., H, W), complex (real is promoted)
        Object at the reference pose (single coil: with coils, the scanner-fixed maps do not
        rotate with the object and this coordinate trick does not apply).
    traj : Tensor or ndarray, shape (n_spokes, n_samples, 2)
        k-space coordinates in radians per pixel, in ``[-pi, pi)``, ordered ``(k_row, k_col)``
        (``traj[..., 0]`` pairs with the H axis, ``traj[..., 1]`` with W).
    translations : array-like, shape (n_spokes, 2), optional
        Per-spoke translation ``(d_row, d_col)`` in pixels (zeros if omitted).
    rotations : array-like, shape (n_spokes,), optional
        Per-spoke rotation in radians (zeros if omitted).
    nufft : callable, optional
        Factory ``nufft(traj, image_shape) -> op`` with ``traj`` a real ``(M, 2)`` tensor
        (radians, ``(k_row, k_col)``) and ``op(x)`` mapping ``(..., H, W)`` to ``(..., M)`` with
        the sign ``exp(-i k . r)``. Default: ``mrct.physics.NUFFT``.

    Returns
    -------
    Tensor, shape (..., n_spokes, n_samples), dtype of ``image``
    """
    image = _check_image(image)
    h, w = image.shape[-2:]
    real = _REAL_OF[image.dtype]
    if isinstance(traj, np.ndarray):
        traj = torch.from_numpy(traj)
    if not isinstance(traj, torch.Tensor):
        raise TypeError(f"traj must be a torch.Tensor or ndarray, got {type(traj).__name__}")
    if traj.is_complex() or not traj.is_floating_point():
        raise TypeError(f"traj must be real floating point (radians), got {traj.dtype}")
    if traj.ndim != 3 or traj.shape[-1] != 2:
        raise ValueError(
            f"traj must have shape (n_spokes, n_samples, 2) (k_row, k_col), got {tuple(traj.shape)}"
        )
    if not bool(torch.isfinite(traj).all()):
        raise ValueError("traj contains NaN or Inf")
    traj = traj.to(device=image.device, dtype=torch.float64)
    n_spokes, n_samples = traj.shape[:2]
    trans = _per_line(translations, n_spokes, (2,), "translations", image.device)
    rots = _per_line(rotations, n_spokes, (), "rotations", image.device)

    # R(theta)^T k in (row, col) order; (x, y) = (col, -row) makes the counter-clockwise
    # rotation of the object act on (k_row, k_col) as below.
    c, s = torch.cos(rots)[:, None], torch.sin(rots)[:, None]
    k_row, k_col = traj[..., 0], traj[..., 1]
    rot_row = c * k_row + s * k_col
    rot_col = -s * k_row + c * k_col
    rotated = torch.stack((rot_row, rot_col), dim=-1)
    rotated = torch.remainder(rotated + math.pi, 2 * math.pi) - math.pi  # into [-pi, pi)

    factory = nufft if nufft is not None else _default_nufft
    op = factory(rotated.reshape(-1, 2).to(real), (h, w))
    y = op(image)
    if y.shape[-1] != n_spokes * n_samples:
        raise ValueError(
            f"the NUFFT returned shape {tuple(y.shape)}; expected (..., {n_spokes * n_samples})"
        )
    y = y.reshape(*y.shape[:-1], n_spokes, n_samples)
    phase = -(k_row * trans[:, 0:1] + k_col * trans[:, 1:2])  # exp(-i k . d), measured k
    return y * torch.polar(torch.ones_like(phase), phase).to(y.dtype)
