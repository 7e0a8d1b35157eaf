"""NUFFT against the exact non-uniform DFT; adjoint, autograd, Toeplitz, density, sinogram."""

import math

import numpy as np
import pytest
import torch

from mrct.data import shepp_logan
from mrct.physics import (
    NUFFT,
    Radon,
    check_adjoint,
    fft2c,
    pipe_menon_density,
    radial_angles,
    radial_density,
    radial_to_sinogram,
    radial_trajectory,
    sinogram_to_radial,
    spiral_trajectory,
)


def ndft_matrix(k, H, W):
    ri = np.arange(H) - H // 2
    rj = np.arange(W) - W // 2
    ph = k[:, 0, None, None] * ri[None, :, None] + k[:, 1, None, None] * rj[None, None, :]
    return np.exp(-1j * ph).reshape(len(k), -1)


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    H, W, M = 20, 17, 250
    k = rng.uniform(-math.pi, math.pi, (M, 2))
    x = rng.standard_normal((2, H, W)) + 1j * rng.standard_normal((2, H, W))
    y = rng.standard_normal((2, M)) + 1j * rng.standard_normal((2, M))
    return k, x, y, ndft_matrix(k, H, W)


@pytest.mark.parametrize("eps", [1e-2, 1e-3, 1e-4, 1e-5, 1e-6])
def test_matches_exact_ndft_within_eps(problem, eps):
    k, x, y, E = problem
    F = NUFFT(torch.from_numpy(k), x.shape[-2:], eps=eps)
    f = F(torch.from_numpy(x)).numpy()
    a = F.adjoint(torch.from_numpy(y)).numpy()
    assert rel(f, x.reshape(2, -1) @ E.T) <= eps
    assert rel(a.reshape(2, -1), y @ E.conj()) <= eps


@pytest.mark.parametrize("eps", [1e-4, 1e-6])
def test_complex64_accuracy(problem, eps):
    k, x, y, E = problem
    F = NUFFT(torch.from_numpy(k), x.shape[-2:], eps=eps)
    f = F(torch.from_numpy(x).to(torch.complex64))
    a = F.adjoint(torch.from_numpy(y).to(torch.complex64))
    assert f.dtype == a.dtype == torch.complex64
    assert rel(f.numpy(), x.reshape(2, -1) @ E.T) <= eps
    assert rel(a.reshape(2, -1).numpy(), y @ E.conj()) <= eps


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
def test_adjoint(problem, dtype):
    k = problem[0]
    F = NUFFT(torch.from_numpy(k), (20, 17), eps=1e-6)
    check_adjoint(F, (3, 20, 17), dtype=dtype)


def test_cartesian_points_equal_scaled_fft():
    H, W = 16, 12
    kr = 2 * np.pi * (np.arange(H) - H // 2) / H
    kc = 2 * np.pi * (np.arange(W) - W // 2) / W
    k = np.stack(np.meshgrid(kr, kc, indexing="ij"), -1).reshape(-1, 2)
    x = torch.randn(H, W, dtype=torch.complex128)
    f = NUFFT(torch.from_numpy(k), (H, W), eps=1e-8)(x).reshape(H, W)
    torch.testing.assert_close(f, math.sqrt(H * W) * fft2c(x), rtol=1e-7, atol=1e-7)


def test_trajectory_shape_is_kept_and_batches_broadcast():
    traj = radial_trajectory(6, 16)
    F = NUFFT(traj, (12, 12))
    y = F(torch.randn(2, 3, 12, 12, dtype=torch.complex128))
    assert y.shape == (2, 3, 6, 16)
    assert F.adjoint(y).shape == (2, 3, 12, 12)
    assert NUFFT(radial_trajectory(6, 16, flatten=True), (12, 12)).out_shape == (96,)


def test_gradients_wrt_data_and_trajectory():
    rng = np.random.default_rng(1)
    k = torch.tensor(rng.uniform(-3, 3, (7, 2)), requires_grad=True)
    F = NUFFT(k, (5, 6), eps=1e-10)
    x = torch.randn(5, 6, dtype=torch.complex128, requires_grad=True)
    y = torch.randn(7, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda xx, kk: _with_traj(F, kk)(xx), (x, k), atol=1e-6)
    assert torch.autograd.gradcheck(lambda yy, kk: _with_traj(F, kk).adjoint(yy), (y, k),
                                    atol=1e-6)  # fmt: skip


def _with_traj(F, k):
    F.traj = k
    F._dev = {key: v for key, v in F._dev.items() if key[0] != "coords"}
    return F


def test_toeplitz_normal_matches_two_transforms():
    traj = radial_trajectory(20, 32)
    F = NUFFT(traj, (16, 16), eps=1e-8)
    x = torch.randn(2, 16, 16, dtype=torch.complex128)
    w = radial_density(traj)
    torch.testing.assert_close(F.normal()(x), F.adjoint(F(x)), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(F.normal(w)(x), F.adjoint(w * F(x)), rtol=1e-6, atol=1e-8)
    check_adjoint(F.normal(), (16, 16), dtype=torch.complex128, rtol=1e-8)


def test_density_compensated_gridding_reconstructs():
    traj = radial_trajectory(201, 128)
    x = torch.from_numpy(shepp_logan((64, 64))).to(torch.complex128)
    F = NUFFT(traj, (64, 64))
    k = F(x)
    for w in (radial_density(traj), pipe_menon_density(traj, (64, 64))):
        rec = F.adjoint(w * k).real
        assert rel(rec.numpy(), x.real.numpy()) < 0.13
        assert float(rec.mean() / x.real.mean()) == pytest.approx(1.0, abs=0.06)
    # a radial trajectory covers the disc |k| < pi: total weight pi / 4
    assert float(radial_density(traj).sum()) == pytest.approx(math.pi / 4, rel=1e-2)


def test_radial_density_weights_uneven_spokes_by_their_gaps():
    # golden-angle spokes have uneven gaps; weighting each by the gaps to its neighbours makes
    # gridding about as accurate as with uniform spokes (a fixed pi / n_spokes did not)
    x = torch.from_numpy(shepp_logan((64, 64))).to(torch.complex128)
    errs = {}
    for golden in (False, True):
        traj = radial_trajectory(101, 128, golden=golden)
        F = NUFFT(traj, (64, 64))
        errs[golden] = rel(F.adjoint(radial_density(traj) * F(x)).real.numpy(), x.real.numpy())
    assert errs[True] < 1.25 * errs[False], errs
    uni = radial_trajectory(16, 8, golden=False)
    w = radial_density(uni)  # uniform spokes: every spoke weighted pi / n_spokes
    k = torch.linalg.vector_norm(uni, dim=-1)
    np.testing.assert_allclose(w[k > 0.5], (k * (2 * math.pi / 8) * math.pi / 16)[k > 0.5]
                               / (2 * math.pi) ** 2)  # fmt: skip


def test_pipe_menon_on_a_spiral_is_finite_and_positive():
    traj = spiral_trajectory(8, 200)
    w = pipe_menon_density(traj, (32, 32))
    assert w.shape == (8, 200) and bool((w > 0).all()) and bool(torch.isfinite(w).all())


@pytest.mark.parametrize("golden", [False, True])
def test_radial_to_sinogram_round_trip_and_fbp(golden):
    n = 64
    traj = radial_trajectory(180, 2 * n, golden=golden)
    ang = radial_angles(180, golden)
    x = torch.from_numpy(shepp_logan((n, n))).double()
    F = NUFFT(traj, (n, n))
    k = F(x.to(torch.complex128))
    sino, geo = radial_to_sinogram(k, ang, (n, n))
    A = Radon(geo, (n, n))
    assert rel(sino.real.numpy(), A(x).numpy()) < 0.03  # Fourier slice theorem
    torch.testing.assert_close(sinogram_to_radial(sino, ang, (n, n)), k)
    rec = A.fbp(sino.real)
    grid = F.adjoint(radial_density(traj) * k).real
    c = (n - 1) / 2
    yy, xx = np.mgrid[:n, :n]
    m = torch.from_numpy(np.hypot(yy - c, xx - c) < n / 2 - 2)
    assert rel(rec[m].numpy(), grid[m].numpy()) < 0.15
    assert rel(rec[m].numpy(), x[m].numpy()) < 0.2  # 64 x 64: edges dominate


def test_radial_trajectory_definition():
    t = radial_trajectory(5, 8, golden=False)
    assert t.shape == (5, 8, 2)
    assert bool((t >= -math.pi).all() and (t < math.pi).all())
    torch.testing.assert_close(t[:, 4], torch.zeros(5, 2, dtype=torch.float64))
    ang = radial_angles(3, golden=True)
    assert np.rad2deg(ang[1]) == pytest.approx(111.246, abs=1e-3)
    assert np.rad2deg(radial_angles(2, tiny=7)[1]) == pytest.approx(23.628, abs=1e-3)


def test_errors():
    with pytest.raises(ValueError, match="NaN or Inf"):  # out-of-range is wrapped (#18)
        NUFFT(torch.tensor([[0.0, float("nan")]]), (8, 8))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        NUFFT(torch.zeros(5, 3), (8, 8))
    with pytest.raises(TypeError, match="real floating"):
        NUFFT(torch.zeros(5, 2, dtype=torch.complex64), (8, 8))
    with pytest.raises(ValueError, match="eps"):
        NUFFT(torch.zeros(5, 2), (8, 8), eps=2.0)
    F = NUFFT(torch.zeros(5, 2), (8, 8))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 8, 8\)"):
        F(torch.zeros(8, 9, dtype=torch.complex64))
    with pytest.raises(TypeError, match="complex64 or complex128"):
        F(torch.zeros(8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="NaN"):
        F(torch.full((8, 8), float("nan"), dtype=torch.complex64))


@pytest.mark.cuda
def test_cuda_kernels_match_cpu(cuda_backend, problem):
    device, backend = cuda_backend
    k, x, y, _ = problem
    k, x, y = k[:40], x[:1], y[:1, :40]
    cpu = NUFFT(torch.from_numpy(k), x.shape[-2:], eps=1e-3)
    gpu = NUFFT(torch.from_numpy(k).to(device), x.shape[-2:], eps=1e-3, backend=backend)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    torch.testing.assert_close(gpu(xt.to(device)).cpu(), cpu(xt), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gpu.adjoint(yt.to(device)).cpu(), cpu.adjoint(yt), rtol=1e-10,
                               atol=1e-10)  # fmt: skip
    check_adjoint(gpu, (1, *x.shape[-2:]), dtype=torch.complex128, device=device)
    # complex64 below eps = 1e-4: float32 weights, float64 spreading grid on both back ends
    cpu6 = NUFFT(torch.from_numpy(k), x.shape[-2:], eps=1e-6)
    gpu6 = NUFFT(torch.from_numpy(k).to(device), x.shape[-2:], eps=1e-6, backend=backend)
    x32, y32 = xt.to(torch.complex64), yt.to(torch.complex64)
    assert rel(gpu6(x32.to(device)).cpu().numpy(), cpu6(x32).numpy()) < 1e-6
    assert rel(gpu6.adjoint(y32.to(device)).cpu().numpy(), cpu6.adjoint(y32).numpy()) < 1e-6


def _ndft_adjoint(k, y, H, W):
    """Exact type 1 sum, pixel by pixel row (no (M, H W) matrix)."""
    ri = np.arange(H) - H // 2
    rj = np.arange(W) - W // 2
    er = np.exp(1j * k[:, 0, None] * ri[None, :])  # (M, H)
    ec = np.exp(1j * k[:, 1, None] * rj[None, :])  # (M, W)
    return np.einsum("bm,mi,mj->bij", y, er, ec)


def _edge_heavy_points(rng, n):
    """Points on stripe and band boundaries and on the periodic edges (k near +-pi)."""
    k = rng.uniform(-math.pi, math.pi, (n, 2))
    k[: n // 4, 0] = np.clip(rng.normal(math.pi - 0.02, 0.03, n // 4), -math.pi, 3.14159)
    k[n // 4 : n // 2, 1] = -math.pi + np.abs(rng.normal(0, 0.03, n // 4))
    k[n // 2 : 3 * n // 4, 0] = rng.choice([-1.0, 0.0, 1.0, 2.0], n // 4) + rng.normal(
        0, 0.02, n // 4
    )
    return np.clip(k, -math.pi, np.nextafter(math.pi, 0))


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
def test_larger_grid_with_many_stripes_matches_ndft(dtype):
    # 40 x 40 image: an 80-row grid in 5 stripes (an odd count) and 2 bands; points crowd the
    # stripe boundaries and the periodic edges, where spreading could race or wrap wrongly
    rng = np.random.default_rng(3)
    H = W = 40
    k = _edge_heavy_points(rng, 3000)
    x = rng.standard_normal((2, H, W)) + 1j * rng.standard_normal((2, H, W))
    y = rng.standard_normal((2, len(k))) + 1j * rng.standard_normal((2, len(k)))
    eps = 1e-6 if dtype == torch.complex128 else 1e-4
    F = NUFFT(torch.from_numpy(k), (H, W), eps=eps)
    ri = np.arange(H) - H // 2
    er, ec = np.exp(-1j * k[:, 0, None] * ri), np.exp(-1j * k[:, 1, None] * ri)
    fx = np.einsum("bij,mi,mj->bm", x, er, ec)
    assert rel(F(torch.from_numpy(x).to(dtype)).numpy(), fx) <= eps
    assert rel(F.adjoint(torch.from_numpy(y).to(dtype)).numpy(), _ndft_adjoint(k, y, H, W)) <= eps


def test_spreading_does_not_depend_on_the_band_count():
    from mrct.kernels import nufft_cpu

    rng = np.random.default_rng(4)
    k = _edge_heavy_points(rng, 4000)
    F = NUFFT(torch.from_numpy(k), (64, 64), eps=1e-3)
    plan = F._plan(torch.device("cpu"))
    c = F._consts(torch.device("cpu"), torch.float64)
    n1, n2 = F.grid_shape
    vals = rng.standard_normal((3, len(k), 2))
    args = (vals, plan.coords.numpy(), plan.perm.numpy(), F.width, c["coeffs_t"].numpy(),
            F._lanes, F._ncoef)  # fmt: skip
    outs = []
    for n_bands in (1, 2, 3, 5, 8):
        grid = np.full((3, n1, 2 * n2), np.nan)  # spreading must overwrite every cell
        nufft_cpu.spread_2d(*args, grid, plan.offsets, plan.bounds, n_bands=n_bands)
        outs.append(grid)
    assert len(plan.offsets) - 1 >= 8
    for g in outs[1:]:
        np.testing.assert_allclose(g, outs[0], rtol=0, atol=1e-12 * np.abs(outs[0]).max())


def test_grid_convolve_matches_direct_kernel_sums():
    from mrct.physics.nufft import _es_kernel

    rng = np.random.default_rng(5)
    k = rng.uniform(-math.pi, math.pi, (60, 2))
    F = NUFFT(torch.from_numpy(k), (12, 10), eps=1e-3)
    n1, n2 = F.grid_shape
    u = (k / (2 * np.pi)) * np.array([n1, n2])  # grid coordinates (periodic)

    # sum over all grid nodes l of phi(u_i - l) phi(u_j - l), per axis, with periodic images
    def axis(ui, uj, n):
        nodes = np.arange(-n, 2 * n)[None, None, :]
        d_i = (ui[:, None, None] - nodes) - n * np.round((ui[:, None, None] - nodes) / n)
        d_j = (uj[None, :, None] - nodes) - n * np.round((uj[None, :, None] - nodes) / n)
        return (_es_kernel(d_i, F.width, F.beta) * _es_kernel(d_j, F.width, F.beta)).sum(-1) / 3

    C = axis(u[:, 0], u[:, 0], n1) * axis(u[:, 1], u[:, 1], n2)
    v = rng.standard_normal(60)
    got = F.grid_convolve(torch.from_numpy(v))
    assert got.dtype == torch.float64 and got.shape == (60,)
    assert rel(got.numpy(), C @ v) < 1e-3  # the tap polynomials are fits of phi


def test_plan_follows_in_place_trajectory_updates():
    rng = np.random.default_rng(6)
    k = torch.tensor(rng.uniform(-3, 3, (300, 2)))
    F = NUFFT(k, (16, 16), eps=1e-6)
    x = torch.randn(16, 16, dtype=torch.complex128)
    F(x)
    with torch.no_grad():
        k[:150] *= -1  # moves points across stripes: the sort must be rebuilt
    fresh = NUFFT(k.clone(), (16, 16), eps=1e-6)
    torch.testing.assert_close(F(x), fresh(x))
    torch.testing.assert_close(F.adjoint(F(x)), fresh.adjoint(fresh(x)))


def test_large_inputs_with_nan_are_rejected():
    traj = radial_trajectory(16, 64)
    F = NUFFT(traj, (64, 64))
    x = torch.zeros(64, 64, dtype=torch.complex64)
    x[5, 7] = complex("nan")
    with pytest.raises(ValueError, match="NaN"):
        F(x)
    y = torch.zeros(16, 64, dtype=torch.complex128)
    y[3, 3] = complex(0, float("inf"))
    with pytest.raises(ValueError, match="NaN"):
        F.adjoint(y)


def test_toeplitz_adjoint_with_complex_weights():
    traj = radial_trajectory(10, 24)
    F = NUFFT(traj, (12, 12), eps=1e-8)
    w = torch.exp(1j * torch.linspace(0, 3, 240, dtype=torch.float64)).reshape(10, 24)
    x = torch.randn(12, 12, dtype=torch.complex128)
    torch.testing.assert_close(F.normal(w)(x), F.adjoint(w * F(x)), rtol=1e-6, atol=1e-6)
    check_adjoint(F.normal(w), (12, 12), dtype=torch.complex128, rtol=1e-8)


@pytest.mark.parametrize("eps", [1e-3, 1e-6])
def test_against_finufft(eps):
    finufft = pytest.importorskip("finufft")
    traj = radial_trajectory(50, 96, flatten=True)
    k = traj.numpy()
    rng = np.random.default_rng(7)
    H, W = 48, 40
    x = rng.standard_normal((H, W)) + 1j * rng.standard_normal((H, W))
    y = rng.standard_normal(len(k)) + 1j * rng.standard_normal(len(k))
    F = NUFFT(traj, (H, W), eps=eps)
    kr, kc = np.ascontiguousarray(k[:, 0]), np.ascontiguousarray(k[:, 1])
    # finufft: modes -N/2 .. N/2 - 1 (mrct's pixel offsets), isign -1 for type 2, +1 for type 1
    ref2 = finufft.nufft2d2(kr, kc, x, eps=1e-12, isign=-1)
    ref1 = finufft.nufft2d1(kr, kc, y, (H, W), eps=1e-12, isign=1)
    assert rel(F(torch.from_numpy(x)).numpy(), ref2) <= eps
    assert rel(F.adjoint(torch.from_numpy(y)).numpy(), ref1) <= eps
    # and mrct at eps is about as accurate as finufft at eps
    f2 = finufft.nufft2d2(kr, kc, x, eps=eps, isign=-1)
    assert rel(F(torch.from_numpy(x)).numpy(), ref2) <= 3 * max(rel(f2, ref2), eps / 10)


def test_copies_and_repeated_calls_agree():
    import copy

    traj = radial_trajectory(12, 32)
    F = NUFFT(traj, (16, 16), eps=1e-6)
    x = torch.randn(3, 16, 16, dtype=torch.complex128)
    y, a = F(x), F.adjoint(F(x))
    G = copy.deepcopy(F).to("cpu")
    for _ in range(2):  # cached grids must not leak between calls or copies
        torch.testing.assert_close(G(x), y)
        torch.testing.assert_close(F.adjoint(F(x)), a)
        torch.testing.assert_close(F(x[0]), y[0])
    assert len(list(F.buffers())) == 0
