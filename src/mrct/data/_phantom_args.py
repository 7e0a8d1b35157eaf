"""Argument checks shared by the phantom tables and their rasteriser."""

from __future__ import annotations

import numpy as np

# Sub-sample count per rasterisation chunk (bounds temporary memory to a few tens of MB).
_CHUNK = 1 << 20


# --------------------------------------------------------------------------- validation


def _as_table(table, ncols: int, name: str) -> np.ndarray:
    arr = np.asarray(table, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != ncols:
        raise ValueError(f"{name} must have shape (n, {ncols}), got {np.shape(table)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    axes = arr[:, 1:3] if ncols == 6 else arr[:, 1:4]
    if np.any(axes <= 0):
        raise ValueError(f"{name}: semi-axes must be positive")
    return arr


def _as_ellipses(ellipses) -> np.ndarray:
    return _as_table(ellipses, 6, "ellipses")


def _as_ellipsoids(ellipsoids) -> np.ndarray:
    return _as_table(ellipsoids, 8, "ellipsoids")


def _as_shape(shape, ndim: int) -> tuple[int, ...]:
    try:
        out = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a {ndim}-tuple of positive ints, got {shape!r}") from None
    if len(out) != ndim or any(n <= 0 for n in out) or any(int(n) != n for n in shape):
        raise ValueError(f"shape must be a {ndim}-tuple of positive ints, got {shape!r}")
    return out


def _as_spacing(spacing, ndim: int, name: str) -> tuple[float, ...]:
    """Scalar or ``ndim``-sequence (axis order) of positive spacings."""
    arr = np.asarray(spacing, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(ndim, float(arr))
    if arr.shape != (ndim,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(
            f"{name} must be a positive float or {ndim} positive floats, got {spacing}"
        )
    return tuple(float(v) for v in arr)


def _as_supersample(supersample) -> int:
    if int(supersample) != supersample or supersample < 1:
        raise ValueError(f"supersample must be a positive int, got {supersample!r}")
    return int(supersample)


def _as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


# ------------------------------------------------------------------------------- tables
