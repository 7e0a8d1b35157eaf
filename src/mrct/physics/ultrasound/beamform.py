"""Delay-and-sum beamforming as a linear operator: :class:`DAS`, :func:`das`, image grids.

``A = das(probe, grid, transmit)`` maps RF channel data ``(..., n_elements, n_samples)`` to a
beamformed (RF) image ``(..., *grid.shape)``: pixel ``p`` sums channel ``j`` at the two-way
time ``tau(p) + |p - e_j| / c`` (linear interpolation between samples) with an f-number
aperture window. ``A.adjoint`` is the exact transpose (same taps, scattered), so ``A`` is an
mrct :class:`~mrct.physics.LinearOperator` with autograd, CPU and CUDA kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...kernels import us_cpu
from ...kernels.us_math import WINDOWS
from .._checks import check_real
from ..autograd import apply_linear
from ..backend import device_arrays, kernel_array, torch_stream, use_cuda
from ..operator import LinearOperator
from .probes import LinearArray
from .simulate import default_n_samples

__all__ = ["LinearGrid", "PolarGrid", "DAS", "das"]


def _store_axes(grid, names, unit: str) -> None:
    """Store the named fields of a frozen grid as flat float64 arrays, non-empty and finite."""
    for name in names:
        a = np.asarray(getattr(grid, name), dtype=np.float64).reshape(-1)
        if a.size < 1 or not np.isfinite(a).all():
            raise ValueError(f"{name} must be a non-empty finite array{unit}")
        object.__setattr__(grid, name, a)


@dataclass(frozen=True)
class LinearGrid:
    """A Cartesian image grid: lateral positions ``x`` (columns) and depths ``z`` (rows), mm."""

    x: np.ndarray
    z: np.ndarray

    def __post_init__(self):
        _store_axes(self, ("x", "z"), " (mm)")

    @classmethod
    def from_probe(cls, probe: LinearArray, depth=(5.0, 40.0), dx: float | None = None,
                   dz: float | None = None, width: float | None = None) -> LinearGrid:  # fmt: skip
        """The region under the array from ``depth[0]`` to ``depth[1]`` mm; pixels of
        ``dx = pitch / 2`` (default) by ``dz = wavelength / 4``."""
        dx = dx or probe.pitch / 2
        dz = dz or probe.wavelength / 4
        w = width if width is not None else probe.aperture
        nx = int(round(w / dx)) + 1
        x = (np.arange(nx) - (nx - 1) / 2) * dx
        z = np.arange(depth[0], depth[1] + 1e-9, dz)
        return cls(x, z)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.z.size, self.x.size)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel positions ``(px, pz)`` (mm), flattened row by row."""
        zz, xx = np.meshgrid(self.z, self.x, indexing="ij")
        return np.ascontiguousarray(xx.ravel()), np.ascontiguousarray(zz.ravel())


@dataclass(frozen=True)
class PolarGrid:
    """A sector grid: ``radii`` (rows, mm) by ``angles`` (columns, radians from the z axis,
    positive towards +x) about ``origin`` (mm)."""

    angles: np.ndarray
    radii: np.ndarray
    origin: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self):
        _store_axes(self, ("angles", "radii"), "")

    @classmethod
    def sector(cls, probe: LinearArray, depth=(5.0, 80.0), span: float = math.radians(75),
               n_angles: int = 128, dr: float | None = None) -> PolarGrid:  # fmt: skip
        """A symmetric sector of ``span`` radians and ``n_angles`` lines, ``dr = wavelength/4``."""
        dr = dr or probe.wavelength / 4
        return cls(np.linspace(-span / 2, span / 2, n_angles), np.arange(depth[0], depth[1], dr))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.radii.size, self.angles.size)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        rr, aa = np.meshgrid(self.radii, self.angles, indexing="ij")
        px = self.origin[0] + rr * np.sin(aa)
        pz = self.origin[1] + rr * np.cos(aa)
        return np.ascontiguousarray(px.ravel()), np.ascontiguousarray(pz.ravel())


def _aperture_ranges(probe, px, pz, f_number):
    """Per pixel, the elements ``jlo <= j < jhi`` inside its f-number aperture (all elements
    when ``f_number`` is 0), with a one-element margin so that rounding never drops one."""
    n = probe.n_elements
    if f_number <= 0:
        return np.zeros(px.size, np.int64), np.full(px.size, n, np.int64)
    half = np.maximum(pz, 0.0) / (2 * f_number)
    ex = probe.element_x  # increasing
    jlo = np.searchsorted(ex, px - half, side="left") - 1
    jhi = np.searchsorted(ex, px + half, side="right") + 1
    return np.clip(jlo, 0, n).astype(np.int64), np.clip(jhi, 0, n).astype(np.int64)


class DAS(LinearOperator):
    """Delay-and-sum beamformer of one transmit (use :func:`das` to build it).

    Parameters
    ----------
    probe : LinearArray or PhasedArray
    grid : LinearGrid or PolarGrid
    transmit : PlaneWave, DivergingWave or FocusedWave
    n_samples : RF length the adjoint produces (default: echoes of the deepest pixel).
    t0 : time of the first RF sample (us).
    f_number : receive f-number (aperture ``depth / f_number``); ``0`` uses every element.
        Default: 1.5 on a :class:`LinearGrid`, 0 on a :class:`PolarGrid` (an f-number cone
        under each element would leave the sides of a sector without elements).
    window : {"hann", "tukey", "rect"} aperture window.
    backend : {"auto", "cpu", "cuda"} (``"cuda"`` with CPU tensors: Numba's simulator).
    """

    def __init__(self, probe, grid, transmit, *, n_samples: int | None = None, t0: float = 0.0,
                 f_number: float | None = None, window: str = "hann", backend: str = "auto",
                 check_finite: bool = True):  # fmt: skip
        if not isinstance(probe, LinearArray):
            raise TypeError(f"probe must be a LinearArray or PhasedArray, got {type(probe)}")
        if not isinstance(grid, (LinearGrid, PolarGrid)):
            raise TypeError(f"grid must be a LinearGrid or PolarGrid, got {type(grid).__name__}")
        if window not in WINDOWS:
            raise ValueError(f"window must be one of {sorted(WINDOWS)}, got {window!r}")
        if f_number is None:
            f_number = 1.5 if isinstance(grid, LinearGrid) else 0.0
        if not (f_number >= 0 and math.isfinite(f_number)):
            raise ValueError(f"f_number must be >= 0, got {f_number}")
        if backend not in ("auto", "cpu", "cuda"):
            raise ValueError(f'backend must be "auto", "cpu" or "cuda", got {backend!r}')
        px, pz = grid.points()
        tau = np.ascontiguousarray(transmit.arrival(probe, px, pz), dtype=np.float64)
        if n_samples is None:
            far = np.hypot(px[:, None] - probe.element_x[[0, -1]][None], pz[:, None]).max(axis=1)
            n_samples = default_n_samples(probe, float(np.max(tau + far / probe.c)), t0)
        if int(n_samples) < 2:
            raise ValueError(f"n_samples must be >= 2, got {n_samples}")
        self.n_samples = int(n_samples)
        super().__init__((probe.n_elements, self.n_samples), grid.shape)
        self.probe, self.grid, self.transmit = probe, grid, transmit
        self.t0, self.f_number, self.window = float(t0), float(f_number), window
        self.backend, self.check_finite = backend, check_finite
        jlo, jhi = _aperture_ranges(probe, px, pz, self.f_number)
        self._geo_np = [px, pz, tau, jlo, jhi, probe.element_x.copy(), probe.element_z.copy()]
        self._geo_dev: dict = {}

    def extra_repr(self) -> str:
        return (f"{type(self.probe).__name__}({self.probe.n_elements}), "
                f"{type(self.grid).__name__}{self.grid.shape}, {self.transmit}, "
                f"f_number={self.f_number}")  # fmt: skip

    def _geo_for(self, t):
        return device_arrays(self._geo_dev, t, self._geo_np)

    def _kern(self, t):
        if use_cuda(t, self.backend):
            from ...kernels import us_cuda

            return us_cuda, {"stream": torch_stream(t)}, True
        return us_cpu, {}, False

    def _scalars(self):
        p = self.probe
        return (p.c, p.fs, self.t0, self.f_number, WINDOWS[self.window])

    def _check(self, t, trailing, what, name):
        check_real(t, trailing, name, what, self.check_finite)

    def _forward_raw(self, rf):
        lead = rf.shape[:-2]
        rff = rf.reshape((-1,) + tuple(rf.shape[-2:])).contiguous()
        out = torch.empty((rff.shape[0], int(np.prod(self.grid.shape))), dtype=rf.dtype,
                          device=rf.device)  # fmt: skip
        if rff.shape[0] and rff.shape[-1] >= 2:
            kern, kw, _ = self._kern(rf)
            px, pz, tau, jlo, jhi, ex, ez = self._geo_for(rf)
            kern.das_forward(kernel_array(rff), px, pz, tau, jlo, jhi, ex, ez, *self._scalars(),
                             kernel_array(out), **kw)  # fmt: skip
        elif rff.shape[0]:
            out.zero_()
        return out.reshape(lead + self.grid.shape)

    def _adjoint_raw(self, img, n_samples):
        lead = img.shape[:-2]
        imf = img.reshape((-1, int(np.prod(self.grid.shape)))).contiguous()
        kern, kw, cuda = self._kern(img)
        alloc = torch.zeros if cuda else torch.empty
        out = alloc((imf.shape[0], self.probe.n_elements, n_samples), dtype=img.dtype,
                    device=img.device)  # fmt: skip
        if imf.shape[0] and n_samples >= 2:
            px, pz, tau, jlo, jhi, ex, ez = self._geo_for(img)
            kern.das_adjoint(kernel_array(imf), px, pz, tau, jlo, jhi, ex, ez, *self._scalars(),
                             kernel_array(out), **kw)  # fmt: skip
        elif not cuda:
            out.zero_()
        return out.reshape(lead + (self.probe.n_elements, n_samples))

    def forward(self, rf: torch.Tensor) -> torch.Tensor:
        """Beamform RF channel data ``(..., n_elements, n_t)`` to ``(..., *grid.shape)``.

        Any ``n_t`` works (samples past the end read as zero); the backward pass returns
        gradients of the same length.
        """
        if isinstance(rf, torch.Tensor) and rf.is_complex():
            return torch.complex(self.forward(rf.real), self.forward(rf.imag))
        self._check(rf, (self.probe.n_elements, "n_samples"), "RF channel data", "rf")
        n_t = rf.shape[-1]
        return apply_linear(rf, self._forward_raw, lambda g: self._adjoint_raw(g, n_t))

    def adjoint(self, img: torch.Tensor, n_samples: int | None = None) -> torch.Tensor:
        """Exact transpose: images ``(..., *grid.shape)`` to channel data
        ``(..., n_elements, n_samples)`` (default ``self.n_samples``)."""
        if isinstance(img, torch.Tensor) and img.is_complex():
            return torch.complex(self.adjoint(img.real, n_samples),
                                 self.adjoint(img.imag, n_samples))  # fmt: skip
        self._check(img, self.grid.shape, "an image", "img")
        n_t = int(n_samples or self.n_samples)
        return apply_linear(img, lambda t: self._adjoint_raw(t, n_t), self._forward_raw)


def das(probe, grid, transmit, **kwargs) -> DAS:
    """Delay-and-sum beamformer ``probe`` x ``grid`` x ``transmit`` as a :class:`DAS`
    linear operator (keyword arguments: see :class:`DAS`)."""
    return DAS(probe, grid, transmit, **kwargs)
