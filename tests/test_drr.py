"""DRR rendering: conventions, closed-form ellipsoid integrals, adjoints, gradients, labels."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mrct.data import ellipsoid_line_integrals, rasterize_ellipsoids
from mrct.physics import check_adjoint
from mrct.physics.attenuation import hu_to_mu, mass_attenuation
from mrct.physics.drr import DRR, labels_to_masks, spl_affine, window
from mrct.physics.pose import (
    Pose,
    axis_angle_to_matrix,
    carm_pose,
    euler_to_matrix,
    matrix_to_axis_angle,
    quaternion_to_matrix,
    view_pose,
)


def conventions_affine(n, s=1.0):
    """Affine of the docs/conventions.md grid: x along columns, y up the rows, z along slices."""
    A = np.zeros((4, 4))
    A[0, 2], A[1, 1], A[2, 0], A[3, 3] = s, -s, s, 1.0
    A[:3, 3] = [-(n - 1) / 2 * s, (n - 1) / 2 * s, -(n - 1) / 2 * s]
    return A


def pixel_world(drr, pose):
    """Source (P, 3) and detector pixel centres (P, R, C, 3) in world mm."""
    src, det, eu, ev = (v.detach().numpy() for v in drr.detector_vectors(pose))
    r, c = np.arange(drr.height), np.arange(drr.width)
    pix = (det[:, None, None] + c[None, None, :, None] * eu[:, None, None]
           + r[None, :, None, None] * ev[:, None, None])  # fmt: skip
    return src, pix


# ------------------------------------------------------------------------------ rotations


@pytest.mark.parametrize("conv", ["ZXY", "XYZ", "zyx", "xzy", "ZYZ"])
def test_euler_matches_scipy(conv):
    a = np.array([[0.3, -1.1, 2.0], [1.4, 0.2, -0.7]])
    ref = Rotation.from_euler(conv, a).as_matrix()
    np.testing.assert_allclose(euler_to_matrix(a, conv).numpy(), ref, atol=1e-12)
    ref_deg = Rotation.from_euler(conv, a[0], degrees=True).as_matrix()
    out = euler_to_matrix(a[0], conv, degrees=True).numpy()
    np.testing.assert_allclose(out, ref_deg, atol=1e-12)


def test_axis_angle_quaternion_match_scipy():
    v = np.array([[0.3, -1.1, 0.5], [0.0, 0.0, 0.0], [1e-6, 0.0, -2e-6]])
    np.testing.assert_allclose(axis_angle_to_matrix(v).numpy(), Rotation.from_rotvec(v).as_matrix(),
                               atol=1e-12)  # fmt: skip
    q = np.array([[0.9, 0.1, -0.3, 0.2], [1.0, 0.0, 0.0, 0.0]])
    ref = Rotation.from_quat(q[:, [1, 2, 3, 0]]).as_matrix()  # scipy is (x, y, z, w)
    np.testing.assert_allclose(quaternion_to_matrix(q * 2.0).numpy(), ref, atol=1e-12)
    R = axis_angle_to_matrix(v[:1])
    np.testing.assert_allclose(matrix_to_axis_angle(R).numpy(), v[:1], atol=1e-10)


def test_pose_compose_inverse():
    a = Pose.from_parameters([0.1, 0.2, -0.3], [1.0, 2.0, 3.0])
    b = Pose.from_parameters([0.5, 0.0, 0.3], [-4.0, 0.5, 1.0], "axis_angle")
    p = torch.tensor([0.3, -2.0, 5.0], dtype=torch.float64)
    torch.testing.assert_close(a.compose(b).apply(p), a.apply(b.apply(p)))
    torch.testing.assert_close(a.inverse().apply(a.apply(p)), p)


def test_view_presets():
    ap = view_pose("ap", sid=800.0)
    # AP: source anterior (+y), beam toward posterior, image columns toward patient left (-x)
    torch.testing.assert_close(ap.t, torch.tensor([0.0, 800.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(ap.direction, torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(ap.R[:, 0], torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64))
    # rows run toward the feet in every preset
    for v in ["ap", "pa", "lateral", "right-lateral"]:
        down = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64)
        torch.testing.assert_close(view_pose(v).R[:, 1], down)
    # C-arm: reference = PA, LAO 90 = left lateral, cranial tilts the detector to the head
    torch.testing.assert_close(carm_pose(0, 0).R, view_pose("pa").R)
    torch.testing.assert_close(carm_pose(90, 0).R, view_pose("lateral").R)
    torch.testing.assert_close(carm_pose(-90, 0).R, view_pose("right-lateral").R)
    d = carm_pose(30, 20).direction
    ref = torch.tensor([-math.sin(math.radians(30)) * math.cos(math.radians(20)),
                        math.cos(math.radians(30)) * math.cos(math.radians(20)),
                        math.sin(math.radians(20))], dtype=torch.float64)  # fmt: skip
    torch.testing.assert_close(d, ref)
    assert view_pose(["ap", "lateral"]).shape == (2,)
    assert carm_pose([0, 10, 20], 5).shape == (3,)


# ------------------------------------------------------------------------ closed form


@pytest.fixture(scope="module")
def phantom():
    n = 80
    e = np.array([
        [1.0, 34, 26, 30, 1.3, -2.1, 1.7, 0.4],
        [0.8, 14, 9, 16, -6.0, 5.0, 2.0, 1.0],
        [-0.5, 7, 10, 8, 10.0, -5.0, -6.0, 0.3],
    ])  # fmt: skip
    vol = rasterize_ellipsoids(e, (n, n, n), 1.0, supersample=3, dtype=np.float64)
    return e, vol, conventions_affine(n)


@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
def test_ellipsoid_closed_form(phantom, renderer):
    e, vol, A = phantom
    drr = DRR(vol, affine=A, attenuation="none", height=40, width=36, pixel_spacing=2.2,
              sdd=400.0, sid=250.0, renderer=renderer, dtype=torch.float64)  # fmt: skip
    pose = carm_pose([0.0, 35.0, -60.0], [0.0, 20.0, -15.0], sid=250.0)
    img = drr(pose=pose).numpy()
    src, pix = pixel_world(drr, pose)
    ref = ellipsoid_line_integrals(e, src[:, None, None, :], pix - src[:, None, None, :])
    err = np.linalg.norm(img - ref) / np.linalg.norm(ref)
    assert err < 0.02, err


def test_siddon_trilinear_agree(phantom):
    _, vol, A = phantom
    kw = dict(affine=A, attenuation="none", height=24, width=20, pixel_spacing=3.0, sdd=400.0,
              sid=250.0, dtype=torch.float64)  # fmt: skip
    a = DRR(vol, renderer="siddon", **kw)(view=["ap", "lateral"])
    b = DRR(vol, renderer="trilinear", **kw)(view=["ap", "lateral"])
    assert torch.linalg.norm(a - b) / torch.linalg.norm(a) < 0.02


def test_siddon_exact_constant_volume():
    # a uniform box: the Siddon integral is the exact chord length through the box
    vol = np.ones((6, 7, 8))
    drr = DRR(vol, spacing=(2.0, 1.5, 1.0), attenuation="none", height=9, width=7,
              pixel_spacing=2.0, sdd=100.0, sid=60.0, dtype=torch.float64)  # fmt: skip
    delta = Pose.from_parameters([0.3, -0.2, 0.5], [1.0, -2.0, 0.5])
    pose = delta.compose(view_pose("ap", 60.0))
    img = drr(pose=pose).numpy()
    src, pix = pixel_world(drr, pose)
    half = np.array([8 * 1.0, 7 * 1.5, 6 * 2.0]) / 2  # RAS extents of the SPL box
    d = pix - src
    with np.errstate(divide="ignore"):
        ta, tb = (-half - src) / d, (half - src) / d
    t0 = np.clip(np.minimum(ta, tb).max(-1), 0, 1)
    t1 = np.clip(np.maximum(ta, tb).min(-1), 0, 1)
    ref = np.maximum(t1 - t0, 0) * np.linalg.norm(d, axis=-1)
    assert ref.max() > 5
    np.testing.assert_allclose(img, ref[0], atol=1e-9)


# ------------------------------------------------------------------------ adjoint, grads


def oblique_drr(renderer):
    A = spl_affine((5, 6, 7), (1.3, 0.9, 1.1))
    rot = np.eye(4)
    rot[:3, :3] = Rotation.from_euler("xyz", [0.2, -0.1, 0.3]).as_matrix()
    return DRR(np.zeros((5, 6, 7)), affine=rot @ A, attenuation="none", height=6, width=5,
               pixel_spacing=1.6, sdd=60.0, sid=35.0, renderer=renderer, step=0.4,
               dtype=torch.float64)  # fmt: skip


@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
def test_adjoint_and_volume_gradient(renderer):
    drr = oblique_drr(renderer)
    op = drr.projector(carm_pose([10.0, -40.0], [5.0, 25.0], sid=35.0))
    check_adjoint(op, (2, 5, 6, 7))
    check_adjoint(op, (5, 6, 7), dtype=torch.float32)
    x = torch.rand((5, 6, 7), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op, (x,))
    # DRR(...)(volume=) differentiates through the same operator
    y = drr(view="ap", volume=x)
    (g,) = torch.autograd.grad(y.square().sum(), x)
    op1 = drr.projector(view_pose("ap", 35.0))
    torch.testing.assert_close(g, op1.adjoint(2 * op1(x.detach())[None])[0])


def test_torch_renderer_matches_trilinear_kernel_and_pose_gradcheck():
    drr = oblique_drr("trilinear")
    x = torch.rand((5, 6, 7), dtype=torch.float64)
    pose = carm_pose([10.0, -40.0], [5.0, 25.0], sid=35.0)
    ref = drr(pose=pose, volume=x)
    rot = matrix_to_axis_angle(pose.R).requires_grad_()
    t = pose.t.clone().requires_grad_()
    out = drr(rot, t, parameterization="axis_angle", volume=x)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    f = lambda r, tt: drr(r, tt, parameterization="axis_angle", volume=x)  # noqa: E731
    assert torch.autograd.gradcheck(f, (rot, t), atol=1e-6)


def test_registration_recovers_pose():
    n = 24
    e = np.array([[1.0, 9, 6, 8, 1.0, -1.0, 0.5, 0.4], [0.6, 4, 3, 5, -3.0, 3.0, 2.0, 1.0],
                  [0.8, 3, 3, 3, 4.0, 2.0, -4.0, 0.0]])  # fmt: skip
    vol = torch.as_tensor(rasterize_ellipsoids(e, (n, n, n), 1.0, supersample=2))
    drr = DRR(vol, spacing=1.0, attenuation="none", height=16, width=16, pixel_spacing=2.2,
              sdd=150.0, sid=100.0, renderer="trilinear", step=1.0)  # fmt: skip
    base = view_pose("ap", 100.0).to(dtype=torch.float32)

    def render(params):
        delta = Pose.from_parameters(params[:3], params[3:], "axis_angle")
        return drr(pose=delta.compose(base))

    true = torch.tensor([0.08, -0.06, 0.05, 1.5, -1.0, 2.0])
    target = render(true).detach()
    p = torch.zeros(6, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.04)
    scale = torch.tensor([1.0, 1.0, 1.0, 40.0, 40.0, 40.0])  # mm per unit
    for _ in range(60):
        opt.zero_grad()
        loss = (render(p * scale) - target).square().mean()
        loss.backward()
        opt.step()
    est = (p * scale).detach()
    assert (est[:3] - true[:3]).abs().max() < 0.01  # rad
    assert (est[3:] - true[3:]).abs().max() < 0.5  # mm


# --------------------------------------------------------------------- physics, outputs


@pytest.mark.parametrize("convention", ["physical", "plastimatch", "deepdrr", "diffdrr"])
def test_attenuation_of_large_volumes_in_slabs_matches(convention, monkeypatch):
    """Large volumes are converted slab by slab (bounded memory): the same values as one
    pass; diffdrr, whose normalisation is global, is never cut."""
    import mrct.physics.attenuation as att

    hu = torch.linspace(-1500.0, 2500.0, 7 * 5 * 6).reshape(7, 5, 6)
    whole = hu_to_mu(hu, convention)
    monkeypatch.setattr(att, "_CHUNK_ELEMENTS", 40)  # slabs of one 30-voxel slice
    torch.testing.assert_close(hu_to_mu(hu, convention), whole, rtol=0, atol=0)
    assert float(whole.max()) > 0


def test_attenuation_conventions():
    hu = torch.tensor([-2000.0, -1000.0, -900.0, 0.0, 500.0, 1000.0])
    mu = hu_to_mu(hu, "physical", energy=60.0)
    mw, mb = 0.2059 / 10, 0.3148 * 1.92 / 10  # NIST water and cortical bone at 60 keV
    torch.testing.assert_close(mu, torch.tensor([0.0, 0.0, 0.1 * mw, mw, (mw + mb) / 2, mb]))
    assert abs(mass_attenuation("water", 70.0) - 0.1937) < 0.003  # between the 60/80 keV rows
    pl = hu_to_mu(hu, "plastimatch")
    torch.testing.assert_close(pl, torch.tensor([0.0, 0.0, 0.0, 0.022, 0.033, 0.044]))
    dd = hu_to_mu(torch.tensor([-1000.0, -500.0, 0.0, 1000.0]), "diffdrr")
    torch.testing.assert_close(dd, torch.tensor([0.0, 0.0, 500 / 1500, 1.0]))
    dp = hu_to_mu(torch.tensor([0.0]), "deepdrr", energy=60.0)
    torch.testing.assert_close(dp, torch.tensor([1.03 * 0.2048 / 10]))
    with pytest.raises(ValueError, match="convention"):
        hu_to_mu(hu, "bogus")
    with pytest.raises(ValueError, match="energy"):
        hu_to_mu(hu, "physical", energy=10.0)


def test_outputs_and_noise():
    vol = np.full((4, 5, 6), 100.0)
    kw = dict(spacing=2.0, height=5, width=4, pixel_spacing=1.0, sdd=80.0, sid=50.0,
              dtype=torch.float64)  # fmt: skip
    p = DRR(vol, **kw)(view="ap")
    assert p.shape == (5, 4) and float(p.max()) > 0
    inten = DRR(vol, output="intensity", i0=3.0, **kw)(view="ap")
    torch.testing.assert_close(inten, 3.0 * torch.exp(-p))
    torch.testing.assert_close(DRR(vol, output="neglog", **kw)(view="ap"), p)
    noisy = DRR(vol, output="intensity", photons=1e4, **kw)
    g = torch.Generator().manual_seed(0)
    samples = torch.stack([noisy(view="ap", generator=g) for _ in range(200)])
    torch.testing.assert_close(samples.mean(0), torch.exp(-p), atol=2e-3, rtol=0)
    assert samples.std(0).min() > 0
    w = window(p, level=float(p.mean()), width=float(p.max() - p.min()) / 10)
    assert w.min() == 0 and w.max() == 1
    auto = window(p)
    assert 0 <= float(auto.min()) and float(auto.max()) <= 1


def test_label_thickness_and_masks():
    n = 20
    lab = np.zeros((n, n, n), dtype=np.uint8)
    zz, yy, xx = np.meshgrid(*(np.arange(n) - (n - 1) / 2,) * 3, indexing="ij")
    lab[xx < 0] = 1
    lab[(xx >= 0) & (zz > 3)] = 2
    lab[(xx >= 0) & (zz <= 3) & (yy > 2)] = 5
    kw = dict(spacing=1.0, attenuation="none", height=12, width=10, pixel_spacing=2.5,
              sdd=120.0, sid=70.0, dtype=torch.float64)  # fmt: skip
    drr = DRR(lab.astype(np.float64), **kw)
    pose = carm_pose([0.0, 40.0], [0.0, 15.0], sid=70.0)
    thick, names = drr.label_thickness(lab, pose=pose)
    assert names == [1, 2, 5] and thick.shape == (2, 3, 12, 10)
    # each channel is the Siddon integral of that label's indicator
    for ch, v in enumerate(names):
        ref = DRR((lab == v).astype(np.float64), **kw)(pose=pose)
        torch.testing.assert_close(thick[:, ch].double(), ref, rtol=1e-5, atol=1e-4)
    grouped, gnames = drr.label_thickness(lab, pose=pose, groups={"left": 1, "right": [2, 5]})
    assert gnames == ["left", "right"]
    torch.testing.assert_close(grouped[:, 1], thick[:, 1] + thick[:, 2])
    masks = labels_to_masks(grouped, threshold=2.0)
    assert masks.dtype == torch.bool and bool(masks.any()) and not bool(masks.all())
    with pytest.raises(ValueError, match="more than one group"):
        drr.label_thickness(lab, view="ap", groups={"a": [1, 2], "b": 2})


# ------------------------------------------------------------------------------- errors


def test_clear_errors():
    vol = np.zeros((4, 5, 6))
    with pytest.raises(ValueError, match="3D"):
        DRR(np.zeros((4, 5)), spacing=1.0)
    with pytest.raises(ValueError, match="NaN"):
        DRR(np.full((4, 5, 6), np.nan), spacing=1.0)
    with pytest.raises(ValueError, match="spacing"):
        DRR(vol, spacing=(1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="spacing"):
        DRR(vol)
    with pytest.raises(ValueError, match="does not match"):
        DRR(vol, spacing=2.0, affine=np.eye(4))
    with pytest.raises(TypeError, match="Volume"):
        DRR([[1, 2]], spacing=1.0)
    with pytest.raises(ValueError, match="renderer"):
        DRR(vol, spacing=1.0, renderer="joseph")
    with pytest.raises(ValueError, match="sdd"):
        DRR(vol, spacing=1.0, sdd=0.0)
    drr = DRR(vol, spacing=1.0, height=4)
    with pytest.raises(ValueError, match="view"):
        drr(view="oblique")
    with pytest.raises(ValueError, match="orthonormal"):
        drr(np.eye(3) * 2, [0, 0, -100.0], parameterization="matrix")
    with pytest.raises(ValueError, match="reflection"):
        drr(np.diag([1.0, 1.0, -1.0]), [0, 0, -100.0], parameterization="matrix")
    with pytest.raises(ValueError, match="convention"):
        drr([0, 0, 0], [0, 0, -100.0], convention="ZZX")
    with pytest.raises(ValueError, match="NaN"):
        drr([0, float("nan"), 0], [0, 0, -100.0])
    with pytest.raises(ValueError, match="translation"):
        drr([0, 0, 0], [0, -100.0])
    with pytest.raises(ValueError, match="rotation and translation"):
        drr([0, 0, 0])
    with pytest.raises(ValueError, match="parameterization"):
        drr([0, 0, 0], [0, 0, -100.0], parameterization="rotation_6d")


# ------------------------------------------------------------------------------ real CT


@pytest.mark.data
def test_chest_ct_views():
    from mrct.data import load_chest_ct, require_shared_data

    require_shared_data()
    ct = load_chest_ct()
    kw = dict(height=48, width=48, pixel_spacing=8.0)
    sid = DRR(ct, renderer="siddon", **kw)
    tri = DRR(ct, renderer="trilinear", **kw)
    a = sid(view=["ap", "lateral"])
    b = tri(view=["ap", "lateral"])
    assert a.shape == (2, 48, 48) and bool(torch.isfinite(a).all())
    # mu_water * a chest's 20-35 cm of tissue: line integrals of a few units
    assert 2.0 < float(a[0].max()) < 15.0 and float(a[1].max()) > float(a[0].max())
    assert float(torch.linalg.norm(a - b) / torch.linalg.norm(a)) < 0.02


def test_a_rotation_matrix_needs_the_matrix_parameterization():
    hu = np.zeros((8, 10, 10), np.float32)
    d = DRR(hu, (2.0, 2.0, 2.0), height=6, width=6, pixel_spacing=4.0)
    with pytest.raises(ValueError, match="parameterization='matrix'"):
        d(torch.eye(3), torch.zeros(3))
    assert d(torch.eye(3), torch.zeros(3), parameterization="matrix").shape == (6, 6)
