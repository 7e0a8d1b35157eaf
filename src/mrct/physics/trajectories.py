"""k-space trajectories (radians per pixel, ``(k_row, k_col)``, in ``[-pi, pi)``) and density
compensation.

Spoke ``i`` of a radial trajectory has angle ``theta_i`` and samples ``k = omega (-sin theta,
cos theta)`` with ``omega = 2 pi (s - n / 2) / n``, ``s = 0 .. n-1``. With this orientation
the 1D inverse FFT of a spoke is the parallel-beam projection at angle ``theta`` of
:class:`mrct.physics.ParallelBeam` (Fourier slice theorem; see
:func:`mrct.physics.radial_to_sinogram`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "GOLDEN_ANGLE",
    "radial_angles",
    "radial_trajectory",
    "spiral_trajectory",
    "radial_density",
    "pipe_menon_density",
]

#: 180 deg / golden ratio = 111.246... deg (Winkelmann et al., IEEE TMI 26(1), 2007)
GOLDEN_ANGLE = math.pi * 2 / (1 + math.sqrt(5))


def radial_angles(n_spokes: int, golden: bool = True, tiny: int | None = None) -> np.ndarray:
    """Spoke angles (radians): uniform over [0, pi), golden angle, or tiny golden angle.

    ``tiny=N`` uses the N-th tiny golden angle ``pi / (N - 1 + tau)``, tau the golden ratio
    (Wundrak et al., MRM 75(6), 2016): N = 1 is the golden angle, N = 7 gives 23.63 deg.
    """
    if int(n_spokes) != n_spokes or n_spokes < 1:
        raise ValueError(f"n_spokes must be a positive integer, got {n_spokes}")
    i = np.arange(n_spokes, dtype=np.float64)
    if tiny is not None:
        if int(tiny) != tiny or tiny < 1:
            raise ValueError(f"tiny must be a positive integer, got {tiny}")
        tau = (1 + math.sqrt(5)) / 2
        return np.mod(i * math.pi / (tiny - 1 + tau), 2 * math.pi)
    if golden:
        return np.mod(i * GOLDEN_ANGLE, 2 * math.pi)
    return i * math.pi / n_spokes


def radial_trajectory(
    n_spokes: int,
    n_samples: int,
    golden: bool = True,
    *,
    tiny: int | None = None,
    flatten: bool = False,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Radial k-space trajectory.

    Parameters
    ----------
    n_spokes, n_samples : spokes and samples per spoke (each spoke crosses the centre;
        sample ``n_samples // 2`` is k = 0).
    golden : golden-angle (111.246 deg) ordering; else uniform over [0, pi).
    tiny : use the ``tiny``-th tiny golden angle instead.
    flatten : return (n_spokes * n_samples, 2) instead of (n_spokes, n_samples, 2).

    Returns
    -------
    Tensor (n_spokes, n_samples, 2) or (n_spokes * n_samples, 2)
        ``(k_row, k_col)`` in radians per pixel, in [-pi, pi).
    """
    if int(n_samples) != n_samples or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples}")
    theta = radial_angles(n_spokes, golden, tiny)
    omega = 2 * np.pi * (np.arange(n_samples) - n_samples // 2) / n_samples
    k = np.stack(
        [-np.sin(theta)[:, None] * omega[None, :], np.cos(theta)[:, None] * omega[None, :]], -1
    )
    # rotation can push |k| = pi slightly past the edge: wrap into [-pi, pi)
    k = np.where(k >= np.pi, k - 2 * np.pi, k)
    k = np.clip(k, -np.pi, np.nextafter(np.pi, 0))
    t = torch.as_tensor(k, dtype=dtype)
    return t.reshape(-1, 2) if flatten else t


def spiral_trajectory(
    n_interleaves: int, n_samples: int, n_turns: float = 8.0, dtype=torch.float64
) -> torch.Tensor:
    """Archimedean spiral: ``n_interleaves`` rotated copies, each ``n_samples`` long.

    ``k(t) = pi t exp(i (2 pi n_turns t + phase))`` for t in [0, 1); returns
    (n_interleaves, n_samples, 2) in [-pi, pi).
    """
    t = np.arange(n_samples) / n_samples
    phase = 2 * np.pi * np.arange(n_interleaves)[:, None] / n_interleaves
    ang = 2 * np.pi * n_turns * t[None, :] + phase
    r = np.pi * t[None, :] * (1 - 1e-9)
    k = np.stack([r * np.sin(ang), r * np.cos(ang)], -1)
    return torch.as_tensor(k, dtype=dtype)


def radial_density(traj: torch.Tensor) -> torch.Tensor:
    """Analytic density compensation of a radial trajectory (n_spokes, n_samples, 2).

    Each sample gets the k-space area it represents divided by (2 pi)^2: ``|k| dk dtheta``,
    with ``dk`` the sample spacing and ``dtheta`` half the angular gap of its spoke to the
    neighbouring spokes (angles modulo pi, as the spokes are full diameters), so uniform
    (``pi / n_spokes``) and golden-angle or other uneven orderings are both weighted right;
    the centre sample gets a disc of diameter ``dk`` shared by all spokes. With these weights
    ``F.adjoint(w * F(x))`` approximates ``x`` (gridding reconstruction).
    """
    if traj.ndim != 3 or traj.shape[-1] != 2:
        raise ValueError(f"traj must be (n_spokes, n_samples, 2), got {tuple(traj.shape)}")
    n_spokes, n_samples = traj.shape[:2]
    t = traj.detach().to(torch.float64).cpu()
    k = torch.linalg.vector_norm(t, dim=-1)
    dk = 2 * math.pi / n_samples
    # spoke directions from their outermost samples, folded to [0, pi)
    far = t[torch.arange(n_spokes), k.argmax(dim=1)]
    theta = torch.remainder(torch.atan2(far[:, 0], far[:, 1]), math.pi)
    order = torch.argsort(theta)
    srt = theta[order]
    gaps = torch.diff(torch.cat([srt, srt[:1] + math.pi]))  # to the next spoke, circularly
    dtheta = torch.empty(n_spokes, dtype=torch.float64)
    dtheta[order] = 0.5 * (gaps + torch.roll(gaps, 1))
    w = k * dk * dtheta[:, None]
    centre = k < 0.5 * dk
    w[centre] = math.pi * (dk / 2) ** 2 / n_spokes
    return (w / (2 * math.pi) ** 2).to(traj.device)


def pipe_menon_density(traj, image_shape, n_iter: int = 30, eps: float = 1e-3) -> torch.Tensor:
    """Iterative density compensation for any trajectory (Pipe & Menon, MRM 41(1), 1999).

    Iterates ``w <- w / (C w)``, where ``C`` spreads the weights onto the oversampled grid
    with the NUFFT kernel and interpolates back (:meth:`mrct.physics.NUFFT.grid_convolve`),
    then scales ``w`` to k-space area over
    (2 pi)^2, like :func:`radial_density`.

    Returns
    -------
    Tensor of shape ``traj.shape[:-1]`` (float64).
    """
    from .nufft import NUFFT, _es_kernel

    op = NUFFT(traj, image_shape, eps=eps)
    n1, n2 = op.grid_shape
    w = torch.ones(op.out_shape, dtype=torch.float64)
    for _ in range(n_iter):
        w = w / op.grid_convolve(w)
    # For samples of uniform density, one per area a (grid cells), C w = (w / a) I^4 with I the
    # 1D kernel integral (the grid sum of the 2D kernel is I^2, and spreading then
    # interpolating applies it twice); C w = 1 thus gives a = w I^4, and a / (n1 n2) is the
    # k-space area over (2 pi)^2.
    u = np.linspace(-op.width / 2, op.width / 2, 4001)
    integral = np.trapezoid(_es_kernel(u, op.width, op.beta), u)
    w = w * integral**4 / (n1 * n2)
    return w
