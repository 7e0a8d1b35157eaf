"""Tests of mrct.data.phantoms: Shepp-Logan tables, rasterisation, random phantoms."""

import time

import numpy as np
import pytest

from mrct.data import (
    ellipse_phantom_values,
    ellipsoid_phantom_values,
    random_ellipses,
    random_ellipsoids,
    rasterize_ellipses,
    rasterize_ellipsoids,
    shepp_logan,
    shepp_logan_3d,
    shepp_logan_ellipses,
    shepp_logan_ellipses_for_grid,
    shepp_logan_ellipsoids,
)


def _corr(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


# ------------------------------------------------------------------------------- tables


def test_shepp_logan_table_values_and_scaling():
    e = shepp_logan_ellipses()
    assert e.shape == (10, 6)
    np.testing.assert_allclose(e[:, 0], [1, -0.8, -0.2, -0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(e[0, 1:5], [0.69, 0.92, 0, 0])
    np.testing.assert_allclose(e[2, [3, 4, 5]], [0.22, 0, np.deg2rad(-18)])
    np.testing.assert_allclose(e[3, [3, 4, 5]], [-0.22, 0, np.deg2rad(18)])
    # the three small ellipses sit at the bottom (y < 0), the large "ventricle" at the top
    assert np.all(e[7:, 4] < -0.6) and e[4, 4] == pytest.approx(0.35)

    orig = shepp_logan_ellipses(radius=100.0, modified=False)
    np.testing.assert_allclose(
        orig[:, 0], [2, -0.98, -0.02, -0.02, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01]
    )
    np.testing.assert_allclose(orig[:, 1:5], 100 * e[:, 1:5])
    np.testing.assert_allclose(orig[:, 5], e[:, 5])  # angles are not scaled

    grid = shepp_logan_ellipses_for_grid((200, 300), pixel_size=0.5)
    np.testing.assert_allclose(grid[:, 1:5], 50.0 * e[:, 1:5])  # min(200, 300) * 0.5 / 2


def test_shepp_logan_ellipsoids_table():
    e3 = shepp_logan_ellipsoids(radius=2.0, modified=False)
    e2 = shepp_logan_ellipses(radius=2.0, modified=False)
    assert e3.shape == (10, 8)
    np.testing.assert_allclose(e3[:, [0, 1, 2, 4, 5, 7]], e2)
    np.testing.assert_allclose(e3[:, 6], 0.0)
    np.testing.assert_allclose(e3[:2, 3], [1.62, 1.56])


# ----------------------------------------------------------------------- rasterisation


def test_shepp_logan_matches_skimage_orientation():
    """Our grid convention (row 0 top, y up) reproduces skimage's picture, not a mirror."""
    skdata = pytest.importorskip("skimage.data")
    from skimage.transform import resize

    ref = skdata.shepp_logan_phantom()  # (400, 400), modified values in [0, 1]
    ours = shepp_logan((256, 256))
    ref256 = resize(ref, (256, 256), anti_aliasing=True)
    assert _corr(ours, ref256) > 0.95
    # pixel-exact comparison at skimage's size: a mirror image differs on many more pixels
    ours400 = shepp_logan((400, 400), supersample=1)
    frac = np.mean(np.abs(ours400 - ref) > 0.05)
    frac_lr = np.mean(np.abs(ours400[:, ::-1] - ref) > 0.05)
    frac_ud = np.mean(np.abs(ours400[::-1] - ref) > 0.05)
    assert frac < 0.015
    assert frac_lr > 4 * frac and frac_ud > 4 * frac


def test_grid_convention_pixel_centres():
    # a small disc centred at (x, y) = (10, 20) mm on a 64 x 64 grid of 1 mm pixels
    img = rasterize_ellipses([[1.0, 2.0, 2.0, 10.0, 20.0, 0.0]], (64, 64), supersample=1)
    # x = j - 31.5 and y = 31.5 - i: the disc's pixels are symmetric about (10, 20)
    assert img[31 - 20, 31 + 10] == 1.0 and img[32 + 20, 31 + 10] == 0.0  # y up, not down
    rows = np.nonzero(img.any(axis=1))[0]
    assert np.isclose(np.mean(31.5 - rows), 20.0)
    cols = np.nonzero(img.any(axis=0))[0]
    assert np.isclose(np.mean(cols - 31.5), 10.0)


def test_single_ellipse_mass():
    v, a, b = 0.7, 23.3, 11.1
    e = [[v, a, b, -5.2, 7.9, 0.6]]
    s = 0.5
    img = rasterize_ellipses(e, (128, 160), pixel_size=s, supersample=4, dtype=np.float64)
    mass = img.mean() * img.size * s * s  # mean times the grid's area
    assert mass == pytest.approx(v * np.pi * a * b, rel=0.01)
    assert img.max() == pytest.approx(v)
    assert img.min() == 0.0


def test_rasterize_matches_point_values_at_centres():
    rng = np.random.default_rng(3)
    e = random_ellipses(6, radius=30.0, rng=rng)
    H, W, s = 48, 40, 1.5
    img = rasterize_ellipses(e, (H, W), pixel_size=s, supersample=1, dtype=np.float64)
    x = (np.arange(W) - (W - 1) / 2) * s
    y = ((H - 1) / 2 - np.arange(H)) * s
    pts = np.stack(np.meshgrid(x, y, indexing="xy"), axis=-1)  # (H, W, 2)
    np.testing.assert_allclose(img, ellipse_phantom_values(e, pts))


def test_rasterize_dtype_shape_and_anisotropic_pixels():
    e = shepp_logan_ellipses(radius=20.0)
    img = rasterize_ellipses(e, (30, 50), pixel_size=(1.0, 0.8))
    assert img.shape == (30, 50) and img.dtype == np.float32
    img64 = rasterize_ellipses(e, (30, 50), pixel_size=(1.0, 0.8), dtype=np.float64)
    assert img64.dtype == np.float64
    np.testing.assert_allclose(img, img64, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shape": (32,)},
        {"shape": (32, 32, 32)},
        {"shape": (32, 0)},
        {"shape": (32, 31.5)},
        {"shape": 32},
        {"pixel_size": -1.0},
        {"pixel_size": 0.0},
        {"supersample": 0},
    ],
)
def test_rasterize_bad_args(kwargs):
    args = {"shape": (32, 32), "pixel_size": 1.0, "supersample": 2, **kwargs}
    with pytest.raises(ValueError):
        rasterize_ellipses(shepp_logan_ellipses(10.0), **args)


def test_bad_tables():
    with pytest.raises(ValueError):
        rasterize_ellipses(np.ones((3, 5)), (8, 8))
    with pytest.raises(ValueError):
        rasterize_ellipses([[1.0, -1.0, 1.0, 0, 0, 0]], (8, 8))
    with pytest.raises(ValueError):
        rasterize_ellipsoids(np.ones((2, 6)), (8, 8, 8))
    with pytest.raises(ValueError):
        shepp_logan_3d((8, 8))
    with pytest.raises(ValueError):
        shepp_logan((8, 8), pixel_size=-0.5)


def test_rasterize_speed():
    e = shepp_logan_ellipses(radius=128.0)
    t0 = time.perf_counter()
    rasterize_ellipses(e, (256, 256), supersample=4)
    assert time.perf_counter() - t0 < 1.0


# ----------------------------------------------------------------------------------- 3D


def test_3d_central_slice_is_the_2d_phantom():
    vol = shepp_logan_3d((97, 96, 96), voxel_size=1.0, supersample=2)  # radius 48 mm
    assert vol.shape == (97, 96, 96) and vol.dtype == np.float32
    img = shepp_logan((96, 96), pixel_size=1.0, supersample=2)
    central = vol[48]  # z = 0 exactly; sub-planes at z = +-0.25 mm
    assert _corr(central, img) > 0.99
    # away from the centre the slices differ (it is a genuine 3D phantom)
    assert _corr(vol[20], img) < 0.95


def test_rasterize_ellipsoid_volume_and_axes():
    v, a, b, c = 1.5, 9.0, 6.0, 4.0
    e = [[v, a, b, c, 3.0, -2.0, 5.0, 0.4]]
    sz, sy, sx = 0.8, 0.5, 0.6
    vol = rasterize_ellipsoids(e, (40, 56, 60), voxel_size=(sz, sy, sx), supersample=3)
    assert vol.shape == (40, 56, 60)
    mass = vol.astype(np.float64).sum() * sz * sy * sx
    assert mass == pytest.approx(v * 4 / 3 * np.pi * a * b * c, rel=0.01)
    # centre of mass lands on (x0, y0, z0) with z = (k - (D-1)/2) sz, y = ((H-1)/2 - i) sy
    k, i, j = np.meshgrid(*(np.arange(n) for n in vol.shape), indexing="ij")
    w = vol / vol.sum()
    assert np.sum(w * (k - 19.5) * sz) == pytest.approx(5.0, abs=0.02)
    assert np.sum(w * (27.5 - i) * sy) == pytest.approx(-2.0, abs=0.02)
    assert np.sum(w * (j - 29.5) * sx) == pytest.approx(3.0, abs=0.02)


def test_rasterize_ellipsoids_matches_point_values():
    e = random_ellipsoids(4, radius=12.0, rng=7)
    shape, s = (20, 22, 24), 1.2
    vol = rasterize_ellipsoids(e, shape, voxel_size=s, supersample=1, dtype=np.float64)
    D, H, W = shape
    z = (np.arange(D) - (D - 1) / 2) * s
    y = ((H - 1) / 2 - np.arange(H)) * s
    x = (np.arange(W) - (W - 1) / 2) * s
    Z, Y, X = np.meshgrid(z, y, x, indexing="ij")
    np.testing.assert_allclose(vol, ellipsoid_phantom_values(e, np.stack([X, Y, Z], -1)))


def test_3d_speed():
    t0 = time.perf_counter()
    vol = shepp_logan_3d((128, 128, 128), supersample=2)
    assert time.perf_counter() - t0 < 5.0
    assert vol.shape == (128, 128, 128)


# ------------------------------------------------------------------------------ random


def test_random_ellipses_inside_disc():
    R = 40.0
    e = random_ellipses(200, radius=R, rng=np.random.default_rng(0))
    assert e.shape == (200, 6)
    assert np.all((e[:, 0] >= 0.1) & (e[:, 0] <= 1.0))
    # farthest point of each ellipse from the origin, sampled on its boundary
    t = np.linspace(0, 2 * np.pi, 721)
    v, a, b, x0, y0, phi = (e[:, k : k + 1] for k in range(6))
    px = x0 + a * np.cos(t) * np.cos(phi) - b * np.sin(t) * np.sin(phi)
    py = y0 + a * np.cos(t) * np.sin(phi) + b * np.sin(t) * np.cos(phi)
    assert np.hypot(px, py).max() <= R
    # reproducible with an int seed, different across seeds
    np.testing.assert_array_equal(random_ellipses(5, 1.0, rng=1), random_ellipses(5, 1.0, rng=1))
    assert not np.allclose(random_ellipses(5, 1.0, rng=1), random_ellipses(5, 1.0, rng=2))
    img = rasterize_ellipses(e[:20], (64, 64), pixel_size=2 * R / 64)
    assert img.min() >= 0.0 and img.max() > 0.0


def test_random_ellipsoids_inside_ball():
    R = 5.0
    e = random_ellipsoids(100, radius=R, rng=4, value_range=(0.5, 0.6))
    assert e.shape == (100, 8)
    assert np.all((e[:, 0] >= 0.5) & (e[:, 0] <= 0.6))
    # containment: |centre| + largest semi-axis <= R
    assert np.all(np.linalg.norm(e[:, 4:7], axis=1) + e[:, 1:4].max(axis=1) <= R + 1e-12)
    vol = rasterize_ellipsoids(e[:10], (16, 16, 16), voxel_size=2 * R / 16, supersample=1)
    # nothing outside the ball: zero in the corners
    assert vol[0, 0, 0] == 0 and vol[-1, -1, -1] == 0 and vol.max() > 0
