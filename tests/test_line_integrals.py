"""Tests of the analytic line integrals and projection geometries of mrct.data."""

import numpy as np
import pytest

from mrct.data import (
    cone_beam_projections,
    ellipse_line_integrals,
    ellipse_phantom_values,
    ellipsoid_line_integrals,
    ellipsoid_phantom_values,
    fan_beam_sinogram,
    parallel_beam_sinogram,
    random_ellipses,
    shepp_logan_ellipses,
    shepp_logan_ellipsoids,
)

ANGLES = np.linspace(0.0, 2 * np.pi, 13, endpoint=False) + 0.1


def _quadrature(values_fn, table, origins, directions, half_length, step=0.01):
    """Midpoint rule along ``origin + l d / |d|`` for ``l`` in [-half_length, half_length]."""
    d = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    n = int(round(2 * half_length / step))
    ls = -half_length + (np.arange(n) + 0.5) * step
    out = np.empty(len(origins))
    for r in range(len(origins)):
        pts = origins[r] + ls[:, None] * d[r]
        out[r] = values_fn(table, pts).sum() * step
    return out


def test_disc_chords_every_angle():
    v, r = 0.7, 20.0
    disc = [[v, r, r, 0.0, 0.0, 0.3]]
    n_det, ds = 101, 0.5  # t from -25 to 25 mm
    sino = parallel_beam_sinogram(disc, ANGLES, n_det, ds)
    t = (np.arange(n_det) - 50) * ds
    expected = 2 * v * np.sqrt(np.clip(r**2 - t**2, 0, None))
    assert sino.shape == (len(ANGLES), n_det)
    # (rays tangent to the disc, t = +-r, may give a rounding-level chord)
    np.testing.assert_allclose(sino, np.broadcast_to(expected, sino.shape), atol=1e-6)


def test_parallel_geometry_offset_point():
    """A small disc at p projects to t = p . e_u with e_u = (cos theta, sin theta)."""
    p = np.array([12.0, -7.0])
    disc = [[1.0, 0.5, 0.5, *p, 0.0]]
    n_det, ds = 801, 0.05
    sino = parallel_beam_sinogram(disc, ANGLES, n_det, ds)
    t = (np.arange(n_det) - 400) * ds
    t_peak = (sino * t).sum(axis=1) / sino.sum(axis=1)
    # centroid of the sampled chord profile: exact up to the 0.05 mm sampling
    np.testing.assert_allclose(t_peak, p[0] * np.cos(ANGLES) + p[1] * np.sin(ANGLES), atol=5e-3)


def test_rotation_invariance():
    """Rotating the phantom by alpha shifts its sinogram by alpha in angle."""
    e = random_ellipses(5, radius=30.0, rng=11)
    alpha = 0.7
    c, s = np.cos(alpha), np.sin(alpha)
    rot = e.copy()
    rot[:, 3] = c * e[:, 3] - s * e[:, 4]
    rot[:, 4] = s * e[:, 3] + c * e[:, 4]
    rot[:, 5] = e[:, 5] + alpha
    p = parallel_beam_sinogram(e, ANGLES, 64, 1.0)
    p_rot = parallel_beam_sinogram(rot, ANGLES + alpha, 64, 1.0)
    assert p.max() > 1.0
    np.testing.assert_allclose(p_rot, p, atol=1e-10)


def test_analytic_matches_numerical_quadrature():
    # midpoint rule at 0.01 mm: each chord end is off by < 0.005 mm, so take a large head
    R = 100.0
    e = shepp_logan_ellipses(radius=R)
    rng = np.random.default_rng(5)
    n = 40
    # lines through random points of the head with random, non-unit directions
    origins = rng.uniform(-0.6 * R, 0.6 * R, size=(n, 2))
    ang = rng.uniform(0, np.pi, n)
    directions = np.stack([np.cos(ang), np.sin(ang)], -1) * rng.uniform(0.2, 5.0, (n, 1))
    exact = ellipse_line_integrals(e, origins, directions)
    # l in [-1.8R, 1.8R] covers the whole phantom from any origin inside [-0.6R, 0.6R]^2
    numeric = _quadrature(ellipse_phantom_values, e, origins, directions, 1.8 * R)
    assert exact.min() > 1.0
    np.testing.assert_allclose(exact, numeric, rtol=1e-3)


def test_ellipsoid_analytic_matches_numerical_quadrature():
    R = 100.0
    e = shepp_logan_ellipsoids(radius=R)
    rng = np.random.default_rng(6)
    n = 25
    origins = rng.uniform(-0.3 * R, 0.3 * R, size=(n, 3))
    directions = rng.normal(size=(n, 3))
    exact = ellipsoid_line_integrals(e, origins, directions)
    numeric = _quadrature(ellipsoid_phantom_values, e, origins, directions, 1.5 * R)
    assert exact.min() > 0.1
    np.testing.assert_allclose(exact, numeric, rtol=1e-3)


def test_broadcasting_and_direction_normalisation():
    e = shepp_logan_ellipses(radius=10.0)
    o = np.zeros((3, 4, 2))
    d = np.array([0.0, 1.0])
    out = ellipse_line_integrals(e, o, d)
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out, ellipse_line_integrals(e, o, 17.0 * d))
    with pytest.raises(ValueError):
        ellipse_line_integrals(e, o, np.zeros(2))
    with pytest.raises(ValueError):
        ellipse_line_integrals(e, np.zeros((4, 3)), np.ones((4, 3)))


def test_sinogram_mass_conservation():
    """The integral over t of every projection is the phantom's mass sum v pi a b."""
    R = 10.0
    e = shepp_logan_ellipses(radius=R, modified=False)
    mass = np.sum(e[:, 0] * np.pi * e[:, 1] * e[:, 2])
    ds = 0.01
    n_det = int(2.1 * R / ds) | 1
    sino = parallel_beam_sinogram(e, ANGLES, n_det, ds)
    np.testing.assert_allclose(sino.sum(axis=1) * ds, mass, rtol=1e-4)


def test_fan_central_ray_equals_parallel_central_ray():
    e = shepp_logan_ellipses(radius=30.0)
    par = parallel_beam_sinogram(e, [0.0], 65, 1.0)
    for det in ("flat", "arc"):
        fan = fan_beam_sinogram(e, [0.0], 65, 1.3, 200.0, 150.0, detector=det)
        assert fan[0, 32] == pytest.approx(par[0, 32], rel=1e-12)
        assert fan[0, 32] > 1.0


@pytest.mark.parametrize("detector", ["flat", "arc"])
def test_fan_beam_rebinning_identity(detector):
    """Fan ray (theta, gamma) is the parallel ray (theta - gamma, t = R_s sin gamma)."""
    e = random_ellipses(6, radius=40.0, rng=2)
    Rs, Rd, n_det, ds = 150.0, 90.0, 41, 4.0
    fan = fan_beam_sinogram(e, ANGLES, n_det, ds, Rs, Rd, detector=detector)
    t_u = (np.arange(n_det) - (n_det - 1) / 2) * ds
    gamma = np.arctan(t_u / (Rs + Rd)) if detector == "flat" else t_u / (Rs + Rd)
    th = ANGLES[:, None] - gamma[None, :]
    t = Rs * np.sin(gamma)[None, :]
    e_u = np.stack([np.cos(th), np.sin(th)], -1)
    e_r = np.stack([-np.sin(th), np.cos(th)], -1)
    par = ellipse_line_integrals(e, t[..., None] * e_u, e_r)
    assert fan.shape == (len(ANGLES), n_det) and fan.max() > 1.0
    np.testing.assert_allclose(fan, par, atol=1e-10)


def test_fan_and_cone_magnification():
    """A small sphere at (10, 0, 10) mm: source at -R_s e_r, detector R_d e_r + t_u e_u."""
    Rs, Rd = 100.0, 50.0
    mag = (Rs + Rd) / Rs  # at theta = 0 the point (10, 0) is at depth 0 (e_r = +y)
    sphere = [[2.0, 1.0, 1.0, 1.0, 10.0, 0.0, 10.0, 0.0]]
    proj = cone_beam_projections(sphere, [0.0], (41, 41), 1.0, Rs, Rd)
    assert proj.shape == (1, 41, 41)
    v, u = np.unravel_index(np.argmax(proj[0]), (41, 41))
    assert (v, u) == (20 + round(10 * mag), 20 + round(10 * mag))  # rows along +z, cols +e_u
    assert proj[0, v, u] == pytest.approx(2 * 2.0 * 1.0)
    fan = fan_beam_sinogram([[2.0, 1.0, 1.0, 10.0, 0.0, 0.0]], [0.0], 41, 1.0, Rs, Rd)
    assert np.argmax(fan[0]) == 20 + round(10 * mag)


def test_cone_central_row_equals_fan_sinogram():
    """Rays of the central panel row lie in z = 0, where the 3D Shepp-Logan is the 2D one."""
    R = 40.0
    e3 = shepp_logan_ellipsoids(radius=R)
    e2 = shepp_logan_ellipses(radius=R)
    Rs, Rd, n_rows, n_cols = 200.0, 100.0, 9, 48
    cone = cone_beam_projections(e3, ANGLES, (n_rows, n_cols), (2.0, 2.5), Rs, Rd)
    fan = fan_beam_sinogram(e2, ANGLES, n_cols, 2.5, Rs, Rd, detector="flat")
    assert cone.shape == (len(ANGLES), n_rows, n_cols)
    np.testing.assert_allclose(cone[:, n_rows // 2], fan, atol=1e-10)
    assert not np.allclose(cone[:, 0], fan, atol=1e-3)  # an off-centre row differs

    r, v = 30.0, 0.3
    sphere = [[v, r, r, r, 0.0, 0.0, 0.0, 0.0]]
    disc = [[v, r, r, 0.0, 0.0, 0.0]]
    cone_s = cone_beam_projections(sphere, ANGLES, (5, 33), 3.0, Rs, Rd)
    np.testing.assert_allclose(
        cone_s[:, 2], fan_beam_sinogram(disc, ANGLES, 33, 3.0, Rs, Rd), atol=1e-12
    )


def test_sphere_chords():
    v, r = 1.3, 7.0
    sphere = [[v, r, r, r, 1.0, 2.0, 3.0, 0.4]]
    centre = np.array([1.0, 2.0, 3.0])
    axes = np.eye(3)
    # along the three axes through the centre: 2 v r
    np.testing.assert_allclose(ellipsoid_line_integrals(sphere, centre, axes), 2 * v * r)
    # a line at distance d from the centre in an arbitrary direction: 2 v sqrt(r^2 - d^2)
    d_dir = np.array([1.0, -2.0, 0.5])
    perp = np.cross(d_dir, [0.0, 0.0, 1.0])
    perp /= np.linalg.norm(perp)
    for dist in (0.0, 3.0, 6.9, 7.5):
        got = ellipsoid_line_integrals(sphere, centre + dist * perp, 3 * d_dir)
        assert got == pytest.approx(2 * v * np.sqrt(max(r**2 - dist**2, 0.0)), abs=1e-12)


def test_ellipsoid_axis_integrals():
    v, a, b, c = 0.5, 3.0, 5.0, 8.0
    ell = [[v, a, b, c, 0.0, 0.0, 0.0, np.pi / 2]]  # rotated: semi-axis a now lies along y
    o = np.zeros(3)
    got = ellipsoid_line_integrals(ell, o, np.eye(3))
    np.testing.assert_allclose(got, [2 * v * b, 2 * v * a, 2 * v * c], rtol=1e-12)


def test_geometry_bad_args():
    e = shepp_logan_ellipses(10.0)
    with pytest.raises(ValueError):
        fan_beam_sinogram(e, ANGLES, 10, 1.0, 100.0, 50.0, detector="curved")
    with pytest.raises(ValueError):
        fan_beam_sinogram(e, ANGLES, 10, 1.0, -100.0, 50.0)
    with pytest.raises(ValueError):
        parallel_beam_sinogram(e, ANGLES, 10, -1.0)
    with pytest.raises(ValueError):
        cone_beam_projections(shepp_logan_ellipsoids(10.0), ANGLES, (4,), 1.0, 100.0, 50.0)
