"""Volume grids of :class:`~mrct.physics.DRR`: the canonical SPL affine and the checks of
user spacings and affines (array indices ``(k, i, j)`` to world RAS mm)."""

from __future__ import annotations

import numpy as np

__all__ = ["spl_affine"]


def spl_affine(shape, spacing) -> np.ndarray:
    """Affine of a ``(D, H, W)`` array in mrct's canonical SPL orientation, centred on 0.

    Axis 0 runs toward Superior, axis 1 toward Posterior, axis 2 toward patient Left (as the
    readers of :mod:`mrct.data` return volumes); world coordinates are RAS mm.
    """
    D, H, W = shape
    sz, sy, sx = spacing
    A = np.zeros((4, 4))
    A[2, 0] = sz  # k -> +S
    A[1, 1] = -sy  # i -> +P = -A
    A[0, 2] = -sx  # j -> +L = -R
    A[3, 3] = 1.0
    centre = A[:3, :3] @ np.array([(D - 1) / 2, (H - 1) / 2, (W - 1) / 2])
    A[:3, 3] = -centre
    return A


def _as_spacing(spacing) -> tuple[float, float, float]:
    s = np.atleast_1d(np.asarray(spacing, dtype=np.float64))
    if s.size == 1:
        s = np.repeat(s, 3)
    if s.shape != (3,) or not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise ValueError(f"spacing must be a positive float or (sz, sy, sx) in mm, got {spacing!r}")
    return tuple(float(v) for v in s)


def _as_affine(affine, spacing) -> np.ndarray:
    A = np.asarray(affine, dtype=np.float64)
    if A.shape == (3, 4):
        A = np.vstack([A, [0, 0, 0, 1]])
    if A.shape != (4, 4) or not np.all(np.isfinite(A)):
        raise ValueError(f"affine must be a finite (4, 4) matrix, got shape {A.shape}")
    if abs(np.linalg.det(A[:3, :3])) < 1e-12:
        raise ValueError("affine is singular")
    if spacing is not None:
        cols = np.sqrt((A[:3, :3] ** 2).sum(axis=0))
        if not np.allclose(cols, spacing, rtol=1e-4):
            raise ValueError(
                f"spacing {tuple(spacing)} does not match the affine's voxel sizes {tuple(cols)}"
            )
    return A
