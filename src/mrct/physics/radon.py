"""``Radon``: parallel, fan and cone-beam X-ray transforms with exact adjoints and FBP/FDK.

``A = Radon(geometry, image_shape, pixel_size)`` maps images ``(..., H, W)`` (parallel, fan)
or volumes ``(..., D, H, W)`` (cone) to projections ``(..., n_angles, n_det)`` or
``(..., n_angles, n_rows, n_cols)``. ``A.adjoint`` is the exact transpose of the discrete
forward model (Joseph's method, see :mod:`mrct.kernels.ray_math`); both are differentiable.
CPU tensors run the Numba CPU kernels zero-copy; CUDA tensors run the numba.cuda kernels
on torch's current stream through ``__cuda_array_interface__``.

Scaling: the forward model returns line integrals in mm times the image's units, so an
attenuation image in mm^-1 gives unitless projections, and ``A.fbp(A(x))`` reproduces ``x``
(up to discretisation and the filter's band limit).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from ..errors import MrctError
from ..kernels import radon_cpu
from ._checks import check_real, flatten_batch
from .autograd import apply_linear
from .backend import device_arrays, kernel_array, torch_stream, use_cuda
from .geometry import ConeBeam, FanBeam, ParallelBeam
from .operator import LinearOperator
from .radon_fbp import FBPMixin

__all__ = ["Radon"]


def _check_fit(geometry, image_shape, ps: float) -> None:
    """Refuse a fan/cone source inside the image's circumscribed circle (rays would be
    integrated behind the source); warn when the detector misses part of the image's
    inscribed circle (truncated projections: valid, e.g. interior tomography, rarely meant)."""
    h, w = image_shape[-2], image_shape[-1]
    r_out = 0.5 * ps * math.hypot(h, w)
    r_in = 0.5 * ps * min(h, w)
    g = geometry
    if isinstance(g, (FanBeam, ConeBeam)) and g.source_distance <= r_out:
        raise MrctError(
            f"source_distance {g.source_distance:g} mm puts the source inside the image (its "
            f"circumscribed radius is {r_out:g} mm for {h} x {w} pixels of {ps:g} mm); move "
            "the source out or use a smaller image"
        )
    if isinstance(g, ParallelBeam):
        fov = 0.5 * g.n_det * g.det_spacing
    elif isinstance(g, FanBeam):
        half = 0.5 * g.n_det * g.det_spacing
        sdd = g.source_distance + g.detector_distance
        ang = half / sdd if g.detector == "arc" else math.atan(half / sdd)
        fov = g.source_distance * math.sin(min(ang, math.pi / 2))
    else:
        return
    if fov < r_in * (1 - 1e-6):
        warnings.warn(
            f"the detector covers a field of view of radius {fov:g} mm, less than the image's "
            f"inscribed radius {r_in:g} mm: projections are truncated",
            UserWarning,
            stacklevel=3,
        )


class Radon(FBPMixin, LinearOperator):
    """X-ray transform for parallel, fan and cone-beam geometries.

    Parameters
    ----------
    geometry : ParallelBeam, FanBeam or ConeBeam
        Acquisition geometry (mm, radians).
    image_shape : (H, W) for parallel and fan beam, (D, H, W) for cone beam.
    pixel_size : float, or (pz, ps) / (pz, ps, ps) for cone beam
        Pixel (voxel) size in mm. In-plane pixels are square.
    backend : {"auto", "cpu", "cuda"}
        ``auto`` picks the kernels by the tensor's device. ``cuda`` with CPU tensors runs the
        CUDA kernels in Numba's simulator (``NUMBA_ENABLE_CUDASIM=1``; for tests).
    check_finite : bool
        Raise on NaN or Inf input (one extra pass over the data).

    Examples
    --------
    >>> geo = ParallelBeam(np.linspace(0, np.pi, 180, endpoint=False), n_det=367)
    >>> A = Radon(geo, (256, 256))
    >>> sino = A(image)              # (..., 180, 367)
    >>> rec = A.fbp(sino, "hann")    # (..., 256, 256)
    """

    def __init__(self, geometry, image_shape, pixel_size=1.0, *, backend="auto",
                 check_finite=True):  # fmt: skip
        if not isinstance(geometry, (ParallelBeam, FanBeam, ConeBeam)):
            raise TypeError(
                f"geometry must be ParallelBeam, FanBeam or ConeBeam, got {type(geometry).__name__}"
            )
        image_shape = tuple(int(s) for s in image_shape)
        is3d = isinstance(geometry, ConeBeam)
        if len(image_shape) != (3 if is3d else 2) or min(image_shape) < 1:
            want = "(D, H, W) for ConeBeam" if is3d else "(H, W) for parallel and fan beam"
            raise ValueError(f"image_shape must be {want}, got {image_shape}")
        ps = np.atleast_1d(np.asarray(pixel_size, dtype=np.float64))
        if not np.all(ps > 0) or not np.all(np.isfinite(ps)):
            raise ValueError(f"pixel_size must be positive (mm), got {pixel_size}")
        if is3d:
            if ps.size == 1:
                pz = pxy = float(ps[0])
            elif ps.size in (2, 3):
                pz, pxy = float(ps[0]), float(ps[1])
                if ps.size == 3 and ps[1] != ps[2]:
                    raise ValueError(f"in-plane voxels must be square, got pixel_size {pixel_size}")
            else:
                raise ValueError(f"pixel_size must be a float or (pz, ps[, ps]), got {pixel_size}")
        else:
            if ps.size != 1:
                raise ValueError(f"pixel_size must be a float for 2D geometries, got {pixel_size}")
            pz = pxy = float(ps[0])
        if backend not in ("auto", "cpu", "cuda"):
            raise ValueError(f'backend must be "auto", "cpu" or "cuda", got {backend!r}')
        super().__init__(image_shape, geometry.proj_shape)
        self.geometry = geometry
        self.image_shape = image_shape
        self.pixel_size = pxy
        self.slice_thickness = pz
        self.backend = backend
        self.check_finite = check_finite
        self._is3d = is3d
        if is3d:
            self._geo_np = geometry.vectors()
        else:
            self._geo_np = geometry.rays()
        self._geo_dev: dict = {}
        self._table = None
        _check_fit(geometry, image_shape, pxy)

    # -- plumbing -----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        g = self.geometry
        return (f"{type(g).__name__}, n_angles={g.n_angles}, image_shape={self.image_shape}, "
                f"pixel_size={self.pixel_size}")  # fmt: skip

    def _use_cuda(self, t: torch.Tensor) -> bool:
        return use_cuda(t, self.backend)

    def _geo_for(self, t: torch.Tensor):
        """Geometry arrays for the kernels: numpy on the CPU, device arrays on the GPU."""
        return device_arrays(self._geo_dev, t, self._geo_np)

    def _fan_params(self):
        """(mode, source distance, source-detector distance): mode 0 parallel, 1 flat, 2 arc."""
        g = self.geometry
        if isinstance(g, ParallelBeam):
            return 0, 0.0, 0.0
        return (1 if g.detector == "flat" else 2), g.source_distance, g.source_detector_distance

    def _cuda_tables(self, t: torch.Tensor):
        """Ray table (:func:`radon_cpu.ray_soa_2d`) and per-view cos, sin in ``t``'s dtype on
        its device (numpy arrays under the simulator), cached per device and dtype."""
        key = ("tab", t.device.type, t.device.index, t.dtype)
        if key not in self._geo_dev:
            H, W = self.image_shape
            g = self.geometry
            arrs = [radon_cpu.ray_soa_2d(*self._geo_np, self.pixel_size, H, W),
                    np.cos(g.angles), np.sin(g.angles)]  # fmt: skip
            dt = np.float32 if t.dtype == torch.float32 else np.float64
            arrs = [np.ascontiguousarray(a, dtype=dt) for a in arrs]
            if t.is_cuda:
                from numba import cuda

                keep = [torch.as_tensor(a, device=t.device) for a in arrs]
                arrs = [cuda.as_cuda_array(a) for a in keep]
            else:
                keep = None
            self._geo_dev[key] = (keep, (arrs[0], (arrs[1], arrs[2])))
        return self._geo_dev[key][1]

    def _ray_table(self):
        """Per-view ray tables for the CPU adjoint (:func:`radon_cpu.ray_table_2d`), cached."""
        if self._table is None:
            H, W = self.image_shape
            self._table = radon_cpu.ray_table_2d(*self._geo_np, self.pixel_size, H, W)
        return self._table

    _arrays = staticmethod(kernel_array)
    _stream = staticmethod(torch_stream)

    def _check(self, t, trailing, what, name):
        check_real(t, trailing, name, what, self.check_finite)

    @staticmethod
    def _flat(t, n_trailing):
        return flatten_batch(t, n_trailing)

    def _kern(self, t):
        """The kernel module for ``t`` (CUDA or CPU) and its keyword arguments."""
        if self._use_cuda(t):
            from ..kernels import radon_cuda

            return radon_cuda, {"stream": self._stream(t)}
        return radon_cpu, {}

    # -- raw (no autograd) kernels ------------------------------------------------------------
    def _forward_raw(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.image_shape)
        lead, xf = self._flat(x, n)
        out = torch.empty((xf.shape[0],) + self.geometry.proj_shape, dtype=x.dtype, device=x.device)
        if xf.shape[0] == 0:
            return out.reshape(lead + self.geometry.proj_shape)
        geo = self._geo_for(x)
        kern, kw = self._kern(x)
        xa, oa = self._arrays(xf), self._arrays(out)
        if self._is3d:
            kern.forward_cone(xa, *geo, self.pixel_size, self.slice_thickness, oa, **kw)
        elif self._use_cuda(x):
            tab, _ = self._cuda_tables(x)
            kern.forward_2d_table(xa, tab, oa, **kw)
        else:
            kern.forward_2d(xa, *geo, self.pixel_size, oa, **kw)
        return out.reshape(lead + self.geometry.proj_shape)

    def _adjoint_raw(self, y: torch.Tensor) -> torch.Tensor:
        n = len(self.geometry.proj_shape)
        lead, yf = self._flat(y, n)
        use_cuda = self._use_cuda(y)
        alloc = torch.zeros if use_cuda and self._is3d else torch.empty
        out = alloc((yf.shape[0],) + self.image_shape, dtype=y.dtype, device=y.device)
        if yf.shape[0] == 0:
            return out.reshape(lead + self.image_shape)
        geo = self._geo_for(y)
        kern, kw = self._kern(y)
        ya, oa = self._arrays(yf), self._arrays(out)
        if self._is3d:
            kern.adjoint_cone(ya, *geo, self.pixel_size, self.slice_thickness, oa, **kw)
        elif use_cuda:
            tab, (c, s) = self._cuda_tables(y)
            mode, rs, rsd = self._fan_params()
            kern.adjoint_2d_gather(ya, tab, c, s, mode, rs, rsd, self.geometry.det_spacing,
                                   self.pixel_size, oa, **kw)  # fmt: skip
        else:
            kern.adjoint_2d(ya, *geo, self.pixel_size, oa, table=self._ray_table())
        return out.reshape(lead + self.image_shape)

    # -- LinearOperator -----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project images ``(..., *image_shape)`` to ``(..., *geometry.proj_shape)``.

        Complex images (e.g. MRI) are projected as real and imaginary parts.
        """
        if isinstance(x, torch.Tensor) and x.is_complex():
            return torch.complex(self.forward(x.real), self.forward(x.imag))
        self._check(x, self.image_shape, "an image", "x")
        return apply_linear(x, self._forward_raw, self._adjoint_raw)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Exact adjoint (transpose): projections -> images (complex: part by part)."""
        if isinstance(y, torch.Tensor) and y.is_complex():
            return torch.complex(self.adjoint(y.real), self.adjoint(y.imag))
        self._check(y, self.geometry.proj_shape, "projections", "y")
        return apply_linear(y, self._adjoint_raw, self._forward_raw)

    # -- analytic reconstruction --------------------------------------------------------------
    def fbp(self, y: torch.Tensor, filter: str = "ram-lak", *, frequency_scaling: float = 1.0,
            short_scan: bool | None = None) -> torch.Tensor:  # fmt: skip
        """Filtered backprojection (parallel, fan) or FDK (cone beam).

        Parameters
        ----------
        y : Tensor (..., *geometry.proj_shape)
            Projections (line integrals); complex projections are filtered part by part.
        filter : {"ram-lak", "shepp-logan", "cosine", "hamming", "hann"}
            Window applied to the ramp filter.
        frequency_scaling : float in (0, 1]
            Cut-off as a fraction of the Nyquist frequency.
        short_scan : bool, optional
            Fan and cone beam: use Parker weights (fan) for a scan of less than a full turn.
            Default: decided from the angular coverage of the geometry.

        Returns
        -------
        Tensor (..., *image_shape)
            Reconstruction in the units of the image that was projected (e.g. mm^-1).

        Notes
        -----
        Parallel beam: each view is weighted by half the angular gap to its neighbours
        (angles modulo pi), so uneven subsets and full turns are handled. Fan beam: Kak &
        Slaney eqs. (3.117) (arc) and (3.143) (flat); full scans weight each view by half its
        angular gap (modulo 2 pi) times 1/2, short scans use
        Parker weights. Cone beam: FDK (Feldkamp, Davis & Kress 1984) for a full circular
        scan. The backprojection is pixel-driven with linear (bilinear for FDK) interpolation
        on the detector, not the adjoint of the projector. Parallel and fan-beam FBP are
        linear maps with autograd (the backward runs the exact transpose of the
        backprojection kernel), so learned models can train through them; FDK returns a
        tensor without a graph.
        """
        if isinstance(y, torch.Tensor) and y.is_complex():
            kw = dict(frequency_scaling=frequency_scaling, short_scan=short_scan)
            return torch.complex(self.fbp(y.real, filter, **kw), self.fbp(y.imag, filter, **kw))
        self._check(y, self.geometry.proj_shape, "projections", "y")
        g = self.geometry
        if isinstance(g, ParallelBeam):
            return self._fbp_parallel(y, filter, frequency_scaling)
        if isinstance(g, FanBeam):
            return self._fbp_fan(y, filter, frequency_scaling, short_scan)
        with torch.no_grad():
            return self._fdk(y, filter, frequency_scaling, short_scan)
