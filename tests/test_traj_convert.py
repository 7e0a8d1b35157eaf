"""Trajectories of any finite value (periodic wrap) and from sigpy, BART and torchkbnufft."""

import math

import numpy as np
import pytest
import torch

from mrct.physics import (
    NUFFT,
    radial_trajectory,
    traj_from_bart,
    traj_from_sigpy,
    traj_from_torchkbnufft,
    traj_to_bart,
    traj_to_sigpy,
    traj_to_torchkbnufft,
)


def ndft(x, k):
    """Exact forward transform, mrct's convention (offsets from N // 2)."""
    H, W = x.shape
    r = np.arange(H) - H // 2
    c = np.arange(W) - W // 2
    ph = np.exp(-1j * (k[:, 0, None, None] * r[None, :, None] + k[:, 1, None, None] * c))
    return (ph * x[None]).sum((1, 2))


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_any_finite_trajectory_is_wrapped_exactly():
    rng = np.random.default_rng(0)
    H, W = 12, 10
    x = rng.standard_normal((H, W)) + 1j * rng.standard_normal((H, W))
    # exactly -pi and +pi, just outside, and far outside (several periods)
    k = np.array([[-math.pi, math.pi], [math.pi, -math.pi], [3.2, -3.2], [7.5, -9.9],
                  [-20.0, 13.0], [0.3, 0.1]])  # fmt: skip
    F = NUFFT(torch.from_numpy(k), (H, W), eps=1e-10)
    y = F(torch.from_numpy(x)).numpy()
    assert rel(y, ndft(x, k)) < 1e-8
    kw = np.mod(k + np.pi, 2 * np.pi) - np.pi
    wrapped = NUFFT(torch.from_numpy(kw), (H, W), eps=1e-10)(torch.from_numpy(x))
    torch.testing.assert_close(torch.from_numpy(y), wrapped)


def test_float32_radial_trajectory_is_accepted():
    # float32(-pi) lies just below -pi: the golden-angle trajectory in float32 must work
    traj = radial_trajectory(402, 64, golden=True, dtype=torch.float32)
    F = NUFFT(traj, (32, 32), eps=1e-3)
    assert F(torch.ones(32, 32, dtype=torch.complex64)).shape == (402, 64)


def test_non_finite_trajectory_is_an_error():
    with pytest.raises(ValueError, match="NaN or Inf"):
        NUFFT(torch.tensor([[0.0, float("nan")]]), (8, 8))
    with pytest.raises(ValueError, match="NaN or Inf"):
        NUFFT(torch.tensor([[float("inf"), 0.0]]), (8, 8))


@pytest.mark.parametrize("eps", [1e-3, 1e-6])
def test_against_finufft_at_and_beyond_pi(eps):
    finufft = pytest.importorskip("finufft")
    rng = np.random.default_rng(3)
    H, W = 24, 20
    k = rng.uniform(-3 * math.pi, 3 * math.pi, (500, 2))
    k[:4] = [[-math.pi, -math.pi], [math.pi, math.pi], [-math.pi, math.pi], [3 * math.pi, 0]]
    x = rng.standard_normal((H, W)) + 1j * rng.standard_normal((H, W))
    y = rng.standard_normal(len(k)) + 1j * rng.standard_normal(len(k))
    kr, kc = np.ascontiguousarray(k[:, 0]), np.ascontiguousarray(k[:, 1])
    F = NUFFT(torch.from_numpy(k), (H, W), eps=eps)
    assert rel(F(torch.from_numpy(x)).numpy(), finufft.nufft2d2(kr, kc, x, eps=1e-12,
                                                                 isign=-1)) <= eps  # fmt: skip
    ref1 = finufft.nufft2d1(kr, kc, y, (H, W), eps=1e-12, isign=1)
    assert rel(F.adjoint(torch.from_numpy(y)).numpy(), ref1) <= eps


def test_sigpy_coordinates_give_sigpys_transform():
    sp = pytest.importorskip("sigpy")
    rng = np.random.default_rng(1)
    H, W = 32, 24
    coord = rng.uniform(-H / 2, H / 2, (300, 2)) * [1.0, W / H]  # cycles per FOV
    x = (rng.standard_normal((H, W)) + 1j * rng.standard_normal((H, W))).astype(np.complex128)
    traj = traj_from_sigpy(coord, (H, W))
    mine = NUFFT(torch.from_numpy(traj), (H, W), eps=1e-8)(torch.from_numpy(x)).numpy()
    theirs = sp.nufft(x, coord, oversamp=2.0, width=8) * math.sqrt(H * W)  # orthonormal
    assert rel(mine, theirs) < 1e-3
    np.testing.assert_allclose(traj_to_sigpy(traj, (H, W)), coord, rtol=1e-12, atol=1e-12)


def test_bart_and_torchkbnufft_layouts_round_trip():
    H, W = 16, 12
    traj = radial_trajectory(5, 8, golden=False)  # (5, 8, 2) radians per pixel
    bart = traj_to_bart(traj, (H, W))
    assert bart.shape == (3, 5, 8) and bool((bart[2] == 0).all())
    torch.testing.assert_close(bart[0], traj[..., 0] * H / (2 * math.pi))
    torch.testing.assert_close(traj_from_bart(bart, (H, W)), traj)
    k = traj_to_torchkbnufft(traj)
    assert k.shape == (2, 40)
    torch.testing.assert_close(traj_from_torchkbnufft(k), traj.reshape(-1, 2))
    with pytest.raises(ValueError, match="non-zero z"):
        traj_from_bart(torch.ones(3, 4), (H, W))
    with pytest.raises(ValueError, match=r"\(2, M\)"):
        traj_from_torchkbnufft(np.zeros((3, 4)))
    with pytest.raises(TypeError, match="real floating"):
        traj_from_sigpy(np.zeros((4, 2), dtype=np.int64), (H, W))
