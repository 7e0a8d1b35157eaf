"""Ellipse and ellipsoid phantoms (Shepp-Logan, random) and their rasterisation.

Every phantom is a table of additive ellipses or ellipsoids in world millimetres, following
``docs/conventions.md``:

* ellipse rows ``(value, a, b, x0, y0, phi)``: semi-axis ``a`` along the rotated x axis,
  ``b`` along the rotated y axis, centre ``(x0, y0)``, rotation ``phi`` (radians,
  counter-clockwise from +x);
* ellipsoid rows ``(value, a, b, c, x0, y0, z0, phi)``: as above plus semi-axis ``c`` along z
  and centre ``z0``; ``phi`` rotates about the z axis.

A point ``p`` is inside an ellipse when ``|diag(1/a, 1/b) R(-phi) (p - p0)|^2 <= 1``; the
phantom's value is the sum of the values of the shapes that contain it.

Grids: pixel ``(i, j)`` of an ``(H, W)`` image with pixel size ``s`` is centred at
``x = (j - (W - 1) / 2) s``, ``y = ((H - 1) / 2 - i) s`` (row 0 at the top, y up), and slice
``k`` of a ``(D, H, W)`` volume at ``z = (k - (D - 1) / 2) s_z``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._phantom_args import _as_rng, _as_shape, _as_spacing

__all__ = [
    "ellipse_phantom_values",
    "ellipsoid_phantom_values",
    "rasterize_ellipses",
    "rasterize_ellipsoids",
    "random_ellipses",
    "random_ellipsoids",
    "shepp_logan",
    "shepp_logan_3d",
    "shepp_logan_ellipses",
    "shepp_logan_ellipses_for_grid",
    "shepp_logan_ellipsoids",
    "shepp_logan_ellipsoids_for_grid",
]

# Shepp & Logan (1974), on the unit square [-1, 1]^2 with y up (MATLAB ``phantom`` layout).
# Columns: a, b, x0, y0, phi (degrees). The values are kept apart (original / modified).
_SL_GEOMETRY_2D = np.array(
    [
        [0.6900, 0.9200, 0.00, 0.0000, 0.0],
        [0.6624, 0.8740, 0.00, -0.0184, 0.0],
        [0.1100, 0.3100, 0.22, 0.0000, -18.0],
        [0.1600, 0.4100, -0.22, 0.0000, 18.0],
        [0.2100, 0.2500, 0.00, 0.3500, 0.0],
        [0.0460, 0.0460, 0.00, 0.1000, 0.0],
        [0.0460, 0.0460, 0.00, -0.1000, 0.0],
        [0.0460, 0.0230, -0.08, -0.6050, 0.0],
        [0.0230, 0.0230, 0.00, -0.6060, 0.0],
        [0.0230, 0.0460, 0.06, -0.6050, 0.0],
    ]
)
# Semi-axes along z of the 3D extension (Kak & Slaney style, as in ODL's 3D Shepp-Logan);
# every centre lies in the z = 0 plane, so the central slice is the 2D phantom exactly.
_SL_C_3D = np.array([0.81, 0.78, 0.22, 0.28, 0.41, 0.05, 0.05, 0.05, 0.02, 0.02])
_SL_VALUES_ORIGINAL = np.array([2.0, -0.98, -0.02, -0.02, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01])
# Toft's higher-contrast values (MATLAB ``phantom('Modified Shepp-Logan')``, skimage).
_SL_VALUES_MODIFIED = np.array([1.0, -0.8, -0.2, -0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])


def shepp_logan_ellipses(radius: float = 1.0, modified: bool = True) -> np.ndarray:
    """The 10 ellipses of the 2D Shepp-Logan head phantom.

    Shepp & Logan, IEEE TNS 21(3) 1974; ``modified=True`` uses Toft's higher-contrast
    values (as MATLAB's ``phantom`` and ``skimage.data.shepp_logan_phantom``). On the unit
    square (``radius=1``, y up, phi in degrees) the table is::

        value (orig / mod)   a       b       x0      y0       phi
         2.00 /  1.0         0.69    0.92    0       0          0
        -0.98 / -0.8         0.6624  0.874   0      -0.0184     0
        -0.02 / -0.2         0.11    0.31    0.22    0        -18
        -0.02 / -0.2         0.16    0.41   -0.22    0         18
         0.01 /  0.1         0.21    0.25    0       0.35       0
         0.01 /  0.1         0.046   0.046   0       0.1        0
         0.01 /  0.1         0.046   0.046   0      -0.1        0
         0.01 /  0.1         0.046   0.023  -0.08   -0.605      0
         0.01 /  0.1         0.023   0.023   0      -0.606      0
         0.01 /  0.1         0.023   0.046   0.06   -0.605      0

    The three small ellipses are at the bottom (negative y) of the picture.

    Parameters
    ----------
    radius : float
        Scale in mm: the unit-square coordinates and semi-axes are multiplied by it (the
        skull spans ``[-0.69, 0.69] x [-0.92, 0.92] * radius``).
    modified : bool
        Toft's values (True) or the original ones (False).

    Returns
    -------
    ndarray, shape (10, 6), float64
        Rows ``(value, a, b, x0, y0, phi)``, lengths in mm, phi in radians.
    """
    if not np.isfinite(radius) or radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    values = _SL_VALUES_MODIFIED if modified else _SL_VALUES_ORIGINAL
    g = _SL_GEOMETRY_2D
    return np.column_stack([values, g[:, :4] * radius, np.deg2rad(g[:, 4])])


def shepp_logan_ellipsoids(radius: float = 1.0, modified: bool = True) -> np.ndarray:
    """The 10 ellipsoids of the 3D Shepp-Logan phantom.

    The 3D extension of Kak & Slaney (Principles of Computerized Tomographic Imaging, 1988)
    in the form used by ODL (``odl.phantom.shepp_logan`` in 3D): the 2D ellipses of
    :func:`shepp_logan_ellipses` with z semi-axes ``c`` and every centre on ``z = 0``, so the
    ``z = 0`` cross-section is exactly the 2D phantom. On the unit cube::

        value (orig / mod)   a       b       c      x0      y0      z0   phi
         2.00 /  1.0         0.69    0.92    0.81   0       0       0      0
        -0.98 / -0.8         0.6624  0.874   0.78   0      -0.0184  0      0
        -0.02 / -0.2         0.11    0.31    0.22   0.22    0       0    -18
        -0.02 / -0.2         0.16    0.41    0.28  -0.22    0       0     18
         0.01 /  0.1         0.21    0.25    0.41   0       0.35    0      0
         0.01 /  0.1         0.046   0.046   0.05   0       0.1     0      0
         0.01 /  0.1         0.046   0.046   0.05   0      -0.1     0      0
         0.01 /  0.1         0.046   0.023   0.05  -0.08   -0.605   0      0
         0.01 /  0.1         0.023   0.023   0.02   0      -0.606   0      0
         0.01 /  0.1         0.023   0.046   0.02   0.06   -0.605   0      0

    Parameters
    ----------
    radius : float
        Scale in mm applied to all lengths and centres.
    modified : bool
        Toft's values (True) or the original ones (False).

    Returns
    -------
    ndarray, shape (10, 8), float64
        Rows ``(value, a, b, c, x0, y0, z0, phi)``, lengths in mm, phi in radians.
    """
    e2 = shepp_logan_ellipses(radius, modified)
    zeros = np.zeros(len(e2))
    return np.column_stack([e2[:, :3], _SL_C_3D * radius, e2[:, 3:5], zeros, e2[:, 5]])


def _grid_radius(shape: Sequence[int], size, ndim: int, name: str) -> float:
    """Half of the smallest physical extent (mm) of the grid of ``shape`` and pixel (voxel)
    ``size`` (the argument ``name``), both checked for ``ndim`` dimensions."""
    shape = _as_shape(shape, ndim)
    spacing = _as_spacing(size, ndim, name)
    return min(n * s for n, s in zip(shape, spacing, strict=True)) / 2.0


def shepp_logan_ellipses_for_grid(
    shape: tuple[int, int] = (256, 256), pixel_size: float = 1.0, modified: bool = True
) -> np.ndarray:
    """Shepp-Logan ellipse table scaled to fill an image grid.

    The radius is ``min(H * s_y, W * s_x) / 2`` mm (``min(H, W) * pixel_size / 2`` for
    square pixels), so the phantom fills the field of view like skimage's.

    Parameters
    ----------
    shape : (int, int)
        Image shape ``(H, W)``.
    pixel_size : float or (float, float)
        Pixel size in mm (or ``(s_y, s_x)``).
    modified : bool
        Toft's values (True) or the original ones.

    Returns
    -------
    ndarray, shape (10, 6)
    """
    return shepp_logan_ellipses(_grid_radius(shape, pixel_size, 2, "pixel_size"), modified)


def shepp_logan_ellipsoids_for_grid(
    shape: tuple[int, int, int] = (64, 64, 64), voxel_size: float = 1.0, modified: bool = True
) -> np.ndarray:
    """3D Shepp-Logan table scaled to ``min(D s_z, H s_y, W s_x) / 2`` mm.

    Returns
    -------
    ndarray, shape (10, 8)
    """
    return shepp_logan_ellipsoids(_grid_radius(shape, voxel_size, 3, "voxel_size"), modified)


def random_ellipses(
    n: int,
    radius: float = 1.0,
    rng: int | np.random.Generator | None = None,
    value_range: tuple[float, float] = (0.1, 1.0),
) -> np.ndarray:
    """Random ellipses lying entirely inside the disc of ``radius`` (mm) about the origin.

    Centres are uniform in the disc of radius ``0.8 radius``; each semi-axis is uniform in
    ``[0.05 radius, min(0.6 radius, radius - |p0|)]`` so ``|p0| + max(a, b) <= radius``
    (which guarantees containment); ``phi`` is uniform in ``[0, pi)`` and the value uniform in
    ``value_range`` (positive by default, so the phantom is non-negative).

    Parameters
    ----------
    n : int
        Number of ellipses (>= 0).
    radius : float
        Radius of the disc (mm).
    rng : int, numpy.random.Generator or None
        Seed or generator.
    value_range : (float, float)
        Range of the additive values.

    Returns
    -------
    ndarray, shape (n, 6)
    """
    rng = _as_rng(rng)
    if n < 0 or radius <= 0:
        raise ValueError("n must be >= 0 and radius > 0")
    lo, hi = value_range
    rho = 0.8 * radius * np.sqrt(rng.random(n))  # uniform in the disc
    ang = rng.uniform(0.0, 2.0 * np.pi, n)
    amax = np.minimum(0.6 * radius, radius - rho)
    amin = 0.05 * radius
    a = rng.uniform(amin, amax)
    b = rng.uniform(amin, amax)
    return np.column_stack(
        [
            rng.uniform(lo, hi, n),
            a,
            b,
            rho * np.cos(ang),
            rho * np.sin(ang),
            rng.uniform(0.0, np.pi, n),
        ]
    )


def random_ellipsoids(
    n: int,
    radius: float = 1.0,
    rng: int | np.random.Generator | None = None,
    value_range: tuple[float, float] = (0.1, 1.0),
) -> np.ndarray:
    """Random ellipsoids lying entirely inside the ball of ``radius`` (mm) about the origin.

    Same recipe as :func:`random_ellipses` in 3D: centres uniform in the ball of radius
    ``0.8 radius``, semi-axes in ``[0.05 radius, min(0.6 radius, radius - |p0|)]``, ``phi``
    (about z) uniform in ``[0, pi)``.

    Returns
    -------
    ndarray, shape (n, 8)
        Rows ``(value, a, b, c, x0, y0, z0, phi)``.
    """
    rng = _as_rng(rng)
    if n < 0 or radius <= 0:
        raise ValueError("n must be >= 0 and radius > 0")
    lo, hi = value_range
    rho = 0.8 * radius * np.cbrt(rng.random(n))  # uniform in the ball
    u = rng.normal(size=(n, 3))
    u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    centre = rho[:, None] * u
    amax = np.minimum(0.6 * radius, radius - rho)
    axes = rng.uniform(0.05 * radius, amax[:, None], size=(n, 3))
    return np.column_stack([rng.uniform(lo, hi, n), axes, centre, rng.uniform(0.0, np.pi, n)])


# ------------------------------------------------------------------------ point values


def shepp_logan(
    shape: tuple[int, int] = (256, 256),
    pixel_size: float | tuple[float, float] = 1.0,
    modified: bool = True,
    supersample: int = 4,
    dtype=np.float32,
) -> np.ndarray:
    """Rasterised 2D Shepp-Logan phantom filling the field of view.

    The ellipse table is :func:`shepp_logan_ellipses_for_grid` (radius
    ``min(H, W) * pixel_size / 2`` mm), rasterised with :func:`rasterize_ellipses`.
    Displayed with ``imshow`` it looks like ``skimage.data.shepp_logan_phantom()``.

    Returns
    -------
    ndarray, shape (H, W)
    """
    table = shepp_logan_ellipses_for_grid(shape, pixel_size, modified)
    return rasterize_ellipses(table, shape, pixel_size, supersample, dtype)


def shepp_logan_3d(
    shape: tuple[int, int, int] = (64, 64, 64),
    voxel_size: float | tuple[float, float, float] = 1.0,
    modified: bool = True,
    supersample: int = 2,
    dtype=np.float32,
) -> np.ndarray:
    """Rasterised 3D Shepp-Logan phantom filling the field of view.

    The table is :func:`shepp_logan_ellipsoids_for_grid` (radius ``min(D s_z, H s_y,
    W s_x) / 2`` mm), rasterised with :func:`rasterize_ellipsoids`.

    Returns
    -------
    ndarray, shape (D, H, W)
    """
    table = shepp_logan_ellipsoids_for_grid(shape, voxel_size, modified)
    return rasterize_ellipsoids(table, shape, voxel_size, supersample, dtype)


# the rasterisers live in .rasterize; re-exported here
from .rasterize import (  # noqa: E402
    ellipse_phantom_values,
    ellipsoid_phantom_values,
    rasterize_ellipses,
    rasterize_ellipsoids,
)
