"""Nodule surfaces for :mod:`mrct.data.lesions`: lobulation by real spherical harmonics
(degrees 2.._LMAX) and spiculation by radial spikes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

_LMAX = 4  # highest spherical-harmonic degree of the lobulation


class _Surface:
    """``r(u)`` on a (theta, phi) table: spherical harmonics (lobulation) times ``radius``."""

    def __init__(self, radius: float, lobulation: float, rng: np.random.Generator,
                 n_theta: int = 91, n_phi: int = 180):  # fmt: skip
        from scipy.special import sph_harm_y

        self.radius = float(radius)
        theta = np.linspace(0.0, np.pi, n_theta)
        phi = np.linspace(0.0, 2 * np.pi, n_phi + 1)  # last column = first: wraps
        th, ph = np.meshgrid(theta, phi, indexing="ij")
        dev = np.zeros_like(th)
        coefs = []
        for ell in range(2, _LMAX + 1):
            for m in range(-ell, ell + 1):
                y = sph_harm_y(ell, abs(m), th, ph)
                real = np.sqrt(2) * (y.imag if m < 0 else y.real) if m else y.real
                a = rng.normal() / ell
                coefs.append(a)
                dev += a * real
        norm = math.sqrt(sum(a * a for a in coefs) / (4 * np.pi)) or 1.0
        # real orthonormal harmonics: the std of `dev` over the sphere is `lobulation`
        self.table = 1.0 + np.clip(dev * (lobulation / norm), -0.6, 1.5)
        self.dtheta, self.dphi = theta[1] - theta[0], phi[1] - phi[0]
        self.max_r = self.radius * float(self.table.max())

    def __call__(self, theta: np.ndarray, phi: np.ndarray, scale: float = 1.0) -> np.ndarray:
        coords = np.stack([theta / self.dtheta, np.mod(phi, 2 * np.pi) / self.dphi])
        return scale * self.radius * ndimage.map_coordinates(self.table, coords, order=1,
                                                             mode="nearest")  # fmt: skip


@dataclass
class _Spikes:
    dirs: np.ndarray  # (n, 3) unit vectors, mm axes
    start: np.ndarray  # (n,) distance from the centre where the spike starts (mm)
    length: np.ndarray  # (n,) from start to tip
    width: np.ndarray  # (n,) base radius (mm)

    @classmethod
    def draw(cls, n: int, radius: float, rng: np.random.Generator) -> _Spikes:
        d = rng.normal(size=(n, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-12
        start = 0.6 * radius * np.ones(n)
        length = 0.4 * radius + rng.uniform(0.3, 1.0, n) * radius + 1.0
        width = rng.uniform(0.4, 1.0, n)
        return cls(d, start, length, width)

    def inside(self, p: np.ndarray) -> np.ndarray:
        """Whether points ``p`` (..., 3) in mm lie in any spike."""
        out = np.zeros(p.shape[:-1], dtype=bool)
        for d, s, ln, w in zip(self.dirs, self.start, self.length, self.width, strict=True):
            t = p @ d
            perp = np.sqrt(np.maximum((p * p).sum(-1) - t * t, 0.0))
            frac = (t - s) / ln
            out |= (frac >= 0) & (frac <= 1) & (perp <= w * (1 - frac))
        return out
