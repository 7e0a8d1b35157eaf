"""The gridding kernel of :class:`~mrct.physics.NUFFT` and the layout of its points.

The "exponential of semicircle" kernel (Barnett et al. 2019): its width and shape per
accuracy (:func:`nufft_kernel_params`), the per-tap polynomials the kernels of
:mod:`mrct.kernels.nufft_math` evaluate, its Fourier transform (the deconvolution), the
oversampled grid sizes, and the sorting of the points into row stripes (:class:`_Plan`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..kernels import nufft_cpu, nufft_math

__all__ = ["nufft_kernel_params"]


def nufft_kernel_params(eps: float) -> tuple[int, float]:
    """Kernel width ``w`` (cells) and shape ``beta`` for a requested relative accuracy.

    With oversampling 2 the ES kernel's error is about ``1.2 * 10^-(w-1)`` at the best
    ``beta`` (measured against the exact DFT; ``beta / w`` from 2.1 at w = 3 to 2.3 for
    w >= 6, close to FINUFFT's choices). We take ``w = ceil(log10(1/eps)) + 1`` and one more
    cell below eps = 2e-4, where that constant would otherwise exceed the request.
    """
    if not (0 < eps < 1):
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    w = int(math.ceil(math.log10(1.0 / eps) - 1e-9)) + 1
    if eps < 2e-4:
        w += 1
    w = max(2, min(w, 16))
    beta_over_w = {2: 2.0, 3: 2.1, 4: 2.2, 5: 2.25}.get(w, 2.3)
    return w, beta_over_w * w


def _es_kernel(u, w, beta):
    z = 2.0 * np.asarray(u, dtype=np.float64) / w
    out = np.zeros_like(z)
    inside = np.abs(z) < 1
    out[inside] = np.exp(beta * (np.sqrt(1.0 - z[inside] ** 2) - 1.0))
    return out


def _tap_polynomials(w: int, beta: float) -> np.ndarray:
    """Tap polynomials as :mod:`mrct.kernels.nufft_math` wants them: ``(n_coeffs(w), 16)``,
    highest power first, in the centred offset ``z = 2 x - 1`` in (-1, 1]; each of the ``w``
    taps is a least-squares fit of degree ``w + 3`` on Chebyshev nodes (zero rows on top and
    zero columns beyond ``w`` pad the array to the kernels' fixed shape)."""
    degree = w + 3
    z = np.cos(np.pi * (np.arange(4 * degree) + 0.5) / (4 * degree))  # Chebyshev nodes
    x = 0.5 + 0.5 * z
    coeffs = np.zeros((nufft_math.n_coeffs(w), nufft_math.MAX_TAPS))
    for i in range(w):
        coeffs[-(degree + 1) :, i] = np.polyfit(z, _es_kernel(x + 0.5 * w - 1.0 - i, w, beta),
                                                degree)  # fmt: skip
    return coeffs


def _kernel_ft(n_img: int, n_grid: int, w: int, beta: float) -> np.ndarray:
    """``Phi(r) = int phi(u) cos(2 pi u r / n_grid) du`` for r = -n//2 .. n - n//2 - 1."""
    x, wq = np.polynomial.legendre.leggauss(max(64, 4 * w))
    u = 0.5 * w * x  # nodes on (-w/2, w/2)
    phi = _es_kernel(u, w, beta) * wq * 0.5 * w
    r = np.arange(n_img) - n_img // 2
    return np.cos(2 * np.pi * np.outer(r, u) / n_grid) @ phi


def _smooth_size(n: int) -> int:
    """Smallest even number >= n whose prime factors are 2, 3 and 5."""
    n = max(2, int(math.ceil(n)))
    while True:
        if n % 2 == 0:
            m = n
            for p in (2, 3, 5):
                while m % p == 0:
                    m //= p
            if m == 1:
                return n
        n += 1


def _wrap_index(H, W, n1, n2, device):
    """Grid rows and columns ``(offset mod n)`` of the pixels of an (H, W) image."""
    rows = (torch.arange(H, device=device) - H // 2) % n1
    cols = (torch.arange(W, device=device) - W // 2) % n2
    return rows[:, None], cols[None, :]


def _stripes(n: int, w: int) -> np.ndarray:
    """Row boundaries (n_stripes + 1,) of the spreading stripes: as many stripes as fit with
    at least ``max(16, 2 * spread_reach(w))`` rows each (see :mod:`mrct.kernels.nufft_cpu`)."""
    ns = max(1, n // max(16, 2 * nufft_cpu.spread_reach(w)))
    return np.round(np.arange(ns + 1) * (n / ns)).astype(np.int64)


class _Plan:
    """Sorted grid coordinates of the points for one device (see :mod:`mrct.kernels.nufft_cpu`).

    coords : (M, 2) float64 tensor, grid coordinates in [0, n] of the points in sorted order
    (k = 0 at n / 2; the grid is modulated by ``(-1)^l`` to match, see ``NUFFT._consts``);
    perm : (M,) int64 tensor, sorted point j is point ``perm[j]`` of the flattened trajectory;
    offsets : (n_stripes + 1,) int64 numpy array, first sorted point of each row stripe;
    bounds : (n_stripes + 1,) int64 numpy array, first grid row of each stripe.
    """

    def __init__(self, k: torch.Tensor, grid_shape, width: int, device):
        n1, n2 = grid_shape
        k = k.detach().reshape(-1, 2).to(torch.float64).cpu().numpy()
        u = np.mod(k / (2 * np.pi) + 0.5, 1.0) * np.array([n1, n2], dtype=np.float64)
        bounds = _stripes(n1, width)
        stripe = np.clip(np.searchsorted(bounds, u[:, 0], side="right") - 1, 0, len(bounds) - 2)
        cbin = np.minimum(u[:, 1] // 16, n2 // 16 + 1).astype(np.int64)
        perm = np.argsort(stripe * (n2 // 16 + 2) + cbin, kind="stable")
        self.offsets = np.searchsorted(stripe[perm], np.arange(len(bounds))).astype(np.int64)
        self.bounds = bounds
        self.coords = torch.from_numpy(np.ascontiguousarray(u[perm])).to(device)
        self.perm = torch.from_numpy(perm.astype(np.int64)).to(device)
