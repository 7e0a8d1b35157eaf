"""Trajectories of other packages to mrct's convention and back.

mrct's :class:`~mrct.physics.NUFFT` takes ``traj`` of shape ``(..., 2)``: ``(k_row, k_col)``
in radians per pixel (2 pi-periodic, nominally in ``[-pi, pi)``), with the forward transform
``y(k) = sum_n x[n] exp(-i k . (n - N // 2))`` over pixel indices ``n`` (offsets from
``N // 2``, as FINUFFT's modes ``-N/2 .. N/2 - 1``).

==============  ====================================  ==========================================
package         layout                                units
==============  ====================================  ==========================================
sigpy           ``coord (..., ndim)``, last axis in   cycles per field of view: ``[-N/2, N/2]``
                image-axis order (row, col)           (``k = 2 pi coord / N``)
BART            ``traj (3, readout, spokes...)``,     cycles per field of view, axis 0 = image
                axis 0 in image-axis order, z = 0     dim 0 (``k = 2 pi traj / N``)
torchkbnufft    ``ktraj (ndim, M)``, axis 0 in        radians per pixel, like mrct
                image-axis order
==============  ====================================  ==========================================

sigpy and torchkbnufft use the same sign (``exp(-i ...)``) for the forward (image to
k-space) transform as mrct and centre the image at ``N // 2`` (tests/test_traj_convert.py
checks sigpy's transform against mrct's on converted coordinates), so only the layout and
scale change. For BART the layout and its 1/FOV scaling are converted; BART is not installed
here, so its sign and centring are taken from its documentation, not tested. The
conversions are exact and their inverses ``traj_to_*`` round-trip. ``image_shape`` is the
``(H, W)`` of the image the trajectory samples (needed for the cycles-per-FOV scaling).
Inputs may be numpy arrays or tensors; the result has the input's type and float dtype.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "traj_from_sigpy",
    "traj_to_sigpy",
    "traj_from_bart",
    "traj_to_bart",
    "traj_from_torchkbnufft",
    "traj_to_torchkbnufft",
]


def _shape2(image_shape) -> tuple[int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"image_shape must be (H, W) with positive sizes, got {image_shape}")
    return shape


def _scale(image_shape, like):
    H, W = _shape2(image_shape)
    s = [2 * math.pi / H, 2 * math.pi / W]
    if isinstance(like, torch.Tensor):
        return torch.tensor(s, dtype=like.dtype, device=like.device)
    return np.asarray(s, dtype=like.dtype)


def _floating(a, name: str):
    if isinstance(a, torch.Tensor):
        if not a.is_floating_point():
            raise TypeError(f"{name} must be a real floating array, got {a.dtype}")
        return a
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{name} must be a real floating array, got {a.dtype}")
    return a


def traj_from_sigpy(coord, image_shape):
    """sigpy ``coord (..., 2)`` (cycles per FOV) -> mrct ``traj (..., 2)`` (radians/pixel)."""
    coord = _floating(coord, "coord")
    if coord.shape[-1] != 2:
        raise ValueError(f"coord must have shape (..., 2) for a 2D image, got {tuple(coord.shape)}")
    return coord * _scale(image_shape, coord)


def traj_to_sigpy(traj, image_shape):
    """mrct ``traj (..., 2)`` -> sigpy ``coord (..., 2)`` (inverse of :func:`traj_from_sigpy`)."""
    traj = _floating(traj, "traj")
    if traj.shape[-1] != 2:
        raise ValueError(f"traj must have shape (..., 2), got {tuple(traj.shape)}")
    return traj / _scale(image_shape, traj)


def traj_from_bart(traj, image_shape):
    """BART ``traj (3, readout, ...)`` (cycles per FOV; the z row must be 0 for a 2D image)
    -> mrct ``traj (readout, ..., 2)``."""
    t = _floating(traj, "traj")
    if t.ndim < 2 or t.shape[0] not in (2, 3):
        raise ValueError(f"BART traj must have shape (3, readout, ...), got {tuple(t.shape)}")
    if t.shape[0] == 3:
        z = t[2]
        nonzero = bool((z != 0).any()) if isinstance(z, torch.Tensor) else bool(np.any(z != 0))
        if nonzero:
            raise ValueError("BART traj has non-zero z coordinates: not a 2D trajectory")
    xy = t[:2]
    moved = torch.movedim(xy, 0, -1) if isinstance(xy, torch.Tensor) else np.moveaxis(xy, 0, -1)
    return moved * _scale(image_shape, moved)


def traj_to_bart(traj, image_shape):
    """mrct ``traj (..., 2)`` -> BART ``traj (3, ...)`` (z = 0; inverse of
    :func:`traj_from_bart`)."""
    t = _floating(traj, "traj")
    if t.shape[-1] != 2:
        raise ValueError(f"traj must have shape (..., 2), got {tuple(t.shape)}")
    c = t / _scale(image_shape, t)
    if isinstance(c, torch.Tensor):
        c = torch.movedim(c, -1, 0)
        return torch.cat([c, torch.zeros_like(c[:1])], 0)
    c = np.moveaxis(c, -1, 0)
    return np.concatenate([c, np.zeros_like(c[:1])], 0)


def traj_from_torchkbnufft(ktraj):
    """torchkbnufft ``ktraj (2, M)`` (radians per pixel) -> mrct ``traj (M, 2)``."""
    k = _floating(ktraj, "ktraj")
    if k.ndim != 2 or k.shape[0] != 2:
        raise ValueError(f"ktraj must have shape (2, M) for a 2D image, got {tuple(k.shape)}")
    return k.T.contiguous() if isinstance(k, torch.Tensor) else np.ascontiguousarray(k.T)


def traj_to_torchkbnufft(traj):
    """mrct ``traj (..., 2)`` -> torchkbnufft ``ktraj (2, M)`` (points flattened)."""
    t = _floating(traj, "traj")
    if t.shape[-1] != 2:
        raise ValueError(f"traj must have shape (..., 2), got {tuple(t.shape)}")
    flat = t.reshape(-1, 2)
    return flat.T.contiguous() if isinstance(flat, torch.Tensor) else np.ascontiguousarray(flat.T)
