"""Rasterisation of ellipse / ellipsoid tables: exact values at points, and pixel/voxel
averages by supersampling (the grid conventions of :mod:`mrct.data.phantoms`)."""

from __future__ import annotations

import numpy as np

from ._phantom_args import (
    _CHUNK,
    _as_ellipses,
    _as_ellipsoids,
    _as_shape,
    _as_spacing,
    _as_supersample,
)

__all__ = [
    "ellipse_phantom_values",
    "ellipsoid_phantom_values",
    "rasterize_ellipses",
    "rasterize_ellipsoids",
]


def ellipse_phantom_values(ellipses, points) -> np.ndarray:
    """Value of an ellipse phantom at arbitrary points.

    Parameters
    ----------
    ellipses : array_like, shape (n, 6)
        Rows ``(value, a, b, x0, y0, phi)`` (mm, radians).
    points : array_like, shape (..., 2)
        ``(x, y)`` coordinates in mm.

    Returns
    -------
    ndarray, shape (...), float64
        Sum of the values of the ellipses containing each point (boundary included).
    """
    e = _as_ellipses(ellipses)
    p = np.asarray(points, dtype=np.float64)
    if p.shape[-1:] != (2,):
        raise ValueError(f"points must have shape (..., 2), got {p.shape}")
    out = np.zeros(p.shape[:-1])
    for v, a, b, x0, y0, phi in e:
        c, s = np.cos(phi), np.sin(phi)
        dx, dy = p[..., 0] - x0, p[..., 1] - y0
        # rotate by -phi into the ellipse frame: (x', y') = R(-phi) (p - p0)
        xr = (c * dx + s * dy) / a
        yr = (-s * dx + c * dy) / b
        out += v * (xr * xr + yr * yr <= 1.0)
    return out


def ellipsoid_phantom_values(ellipsoids, points) -> np.ndarray:
    """Value of an ellipsoid phantom at arbitrary points.

    Parameters
    ----------
    ellipsoids : array_like, shape (n, 8)
        Rows ``(value, a, b, c, x0, y0, z0, phi)``.
    points : array_like, shape (..., 3)
        ``(x, y, z)`` coordinates in mm.

    Returns
    -------
    ndarray, shape (...), float64
    """
    e = _as_ellipsoids(ellipsoids)
    p = np.asarray(points, dtype=np.float64)
    if p.shape[-1:] != (3,):
        raise ValueError(f"points must have shape (..., 3), got {p.shape}")
    out = np.zeros(p.shape[:-1])
    for v, a, b, cz, x0, y0, z0, phi in e:
        c, s = np.cos(phi), np.sin(phi)
        dx, dy = p[..., 0] - x0, p[..., 1] - y0
        xr = (c * dx + s * dy) / a
        yr = (-s * dx + c * dy) / b
        zr = (p[..., 2] - z0) / cz
        out += v * (xr * xr + yr * yr + zr * zr <= 1.0)
    return out


# ------------------------------------------------------------------------ rasterisation


def _subsample_coords(n: int, spacing: float, S: int, flip: bool) -> np.ndarray:
    """World coordinates of the ``S`` sub-samples of each of ``n`` pixels, shape (n, S).

    Sub-sample ``m`` of pixel ``i`` sits at ``(i + (m + 0.5) / S - 0.5)`` in index units
    (centred in its sub-cell); ``flip`` maps indices to ``(n - 1) / 2 - i`` (rows -> y).
    """
    idx = np.arange(n)[:, None] + (np.arange(S)[None, :] + 0.5) / S - 0.5
    centred = (n - 1) / 2.0 - idx if flip else idx - (n - 1) / 2.0
    return centred * spacing


def _index_range(lo: float, hi: float, n: int, spacing: float, flip: bool) -> tuple[int, int]:
    """Half-open range of pixel indices whose cells may meet the world interval [lo, hi]."""
    c = (n - 1) / 2.0
    if flip:  # world y -> row index i = c - y / s
        lo, hi = c - hi / spacing, c - lo / spacing
    else:
        lo, hi = c + lo / spacing, c + hi / spacing
    i0 = max(int(np.floor(lo + 0.5)) - 1, 0)
    i1 = min(int(np.ceil(hi - 0.5)) + 2, n)
    return i0, max(i1, i0)


def _add_ellipse(
    out: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    value: float,
    a: float,
    b: float,
    x0: float,
    y0: float,
    phi: float,
    sy: float,
    sx: float,
    S: int,
) -> None:
    """Add ``value * (fraction of sub-samples inside)`` of one ellipse to ``out`` (H, W).

    ``ys`` (H, S) and ``xs`` (W, S) are the sub-sample coordinates. Only the pixels of the
    ellipse's bounding box are visited, in row chunks of at most ``_CHUNK`` sub-samples.
    """
    H, W = out.shape
    c, s = np.cos(phi), np.sin(phi)
    # half-widths of the axis-aligned bounding box of a rotated ellipse
    hx = np.hypot(a * c, b * s)
    hy = np.hypot(a * s, b * c)
    i0, i1 = _index_range(y0 - hy, y0 + hy, H, sy, flip=True)
    j0, j1 = _index_range(x0 - hx, x0 + hx, W, sx, flip=False)
    if i0 >= i1 or j0 >= j1:
        return
    dx = (xs[j0:j1] - x0).reshape(1, 1, -1)  # (1, 1, nj*S)
    rows_per_chunk = max(1, _CHUNK // ((j1 - j0) * S * S))
    w = value / (S * S)
    for r0 in range(i0, i1, rows_per_chunk):
        r1 = min(r0 + rows_per_chunk, i1)
        dy = (ys[r0:r1] - y0)[:, :, None]  # (nr, S, 1)
        xr = (c * dx + s * dy) / a
        yr = (-s * dx + c * dy) / b
        inside = xr * xr + yr * yr <= 1.0  # (nr, S, nj*S)
        counts = inside.reshape(r1 - r0, S, j1 - j0, S).sum(axis=(1, 3))
        out[r0:r1, j0:j1] += w * counts


def rasterize_ellipses(
    ellipses,
    shape: tuple[int, int],
    pixel_size: float | tuple[float, float] = 1.0,
    supersample: int = 4,
    dtype=np.float32,
) -> np.ndarray:
    """Pixel averages of an ellipse phantom on the conventions' image grid.

    Each pixel's value is the mean of the phantom over ``supersample x supersample``
    regularly spaced sub-samples of its cell (a midpoint-rule approximation of the pixel
    average; ``supersample=1`` samples the pixel centres).

    Parameters
    ----------
    ellipses : array_like, shape (n, 6)
        Rows ``(value, a, b, x0, y0, phi)`` in mm / radians.
    shape : (int, int)
        Image shape ``(H, W)``.
    pixel_size : float or (float, float)
        Pixel size ``s`` in mm, or ``(s_y, s_x)``.
    supersample : int
        Sub-samples per pixel along each axis.
    dtype : numpy dtype
        Output dtype.

    Returns
    -------
    ndarray, shape (H, W)
        Pixel ``(i, j)`` is centred at ``x = (j - (W-1)/2) s_x``, ``y = ((H-1)/2 - i) s_y``.
    """
    e = _as_ellipses(ellipses)
    H, W = _as_shape(shape, 2)
    sy, sx = _as_spacing(pixel_size, 2, "pixel_size")
    S = _as_supersample(supersample)
    ys = _subsample_coords(H, sy, S, flip=True)
    xs = _subsample_coords(W, sx, S, flip=False)
    out = np.zeros((H, W))
    for v, a, b, x0, y0, phi in e:
        _add_ellipse(out, ys, xs, v, a, b, x0, y0, phi, sy, sx, S)
    return out.astype(dtype, copy=False)


def rasterize_ellipsoids(
    ellipsoids,
    shape: tuple[int, int, int],
    voxel_size: float | tuple[float, float, float] = 1.0,
    supersample: int = 2,
    dtype=np.float32,
) -> np.ndarray:
    """Voxel averages of an ellipsoid phantom on the conventions' volume grid.

    Each voxel is the mean over ``supersample^3`` sub-samples. The volume is built plane by
    plane: the cross-section of an ellipsoid at height ``z`` is the ellipse with semi-axes
    ``(a, b) * sqrt(1 - ((z - z0) / c)^2)`` (same centre and ``phi``), so memory stays at
    one slab of sub-samples.

    Parameters
    ----------
    ellipsoids : array_like, shape (n, 8)
        Rows ``(value, a, b, c, x0, y0, z0, phi)`` in mm / radians (phi about z).
    shape : (int, int, int)
        Volume shape ``(D, H, W)``.
    voxel_size : float or (float, float, float)
        Voxel size in mm, or ``(s_z, s_y, s_x)``.
    supersample : int
        Sub-samples per voxel along each axis.
    dtype : numpy dtype
        Output dtype.

    Returns
    -------
    ndarray, shape (D, H, W)
        Slice ``k`` is centred at ``z = (k - (D-1)/2) s_z``; in-plane as in
        :func:`rasterize_ellipses`.
    """
    e = _as_ellipsoids(ellipsoids)
    D, H, W = _as_shape(shape, 3)
    sz, sy, sx = _as_spacing(voxel_size, 3, "voxel_size")
    S = _as_supersample(supersample)
    zs = _subsample_coords(D, sz, S, flip=False)  # (D, S)
    ys = _subsample_coords(H, sy, S, flip=True)
    xs = _subsample_coords(W, sx, S, flip=False)
    out = np.zeros((D, H, W))
    for v, a, b, cz, x0, y0, z0, phi in e:
        k0, k1 = _index_range(z0 - cz, z0 + cz, D, sz, flip=False)
        for k in range(k0, k1):
            for z in zs[k]:
                t = 1.0 - ((z - z0) / cz) ** 2
                if t <= 0.0:
                    continue
                r = np.sqrt(t)
                # one sub-plane contributes 1/S of the voxel average
                _add_ellipse(out[k], ys, xs, v / S, a * r, b * r, x0, y0, phi, sy, sx, S)
    return out.astype(dtype, copy=False)


# -------------------------------------------------------------------------- convenience
