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

import numpy as np
import torch

from ..kernels import radon_cpu
from .autograd import apply_linear
from .backend import kernel_array, torch_stream, use_cuda
from .fbp_filters import apply_filter, filter_numpy, parker_weights, ramp_kernel_fft
from .geometry import ConeBeam, FanBeam, ParallelBeam
from .operator import LinearOperator

__all__ = ["Radon"]

_FLOATS = (torch.float32, torch.float64)


def _angular_weights(angles: np.ndarray, period: float) -> np.ndarray:
    """Quadrature weights of view angles on a circle of length ``period``.

    Each view gets half the gap to its neighbours (angles taken modulo ``period``), so
    uneven or partial subsets (``subsample(k)`` with k not dividing the view count) and views
    repeated a period apart are weighted correctly; equal spacing gives ``period / n``.
    """
    a = np.mod(angles, period)
    order = np.argsort(a, kind="stable")
    s = a[order]
    gaps = np.diff(np.concatenate([s, s[:1] + period]))  # gap to the next view, circularly
    w_sorted = 0.5 * (gaps + np.roll(gaps, 1))
    w = np.empty_like(w_sorted)
    w[order] = w_sorted
    return w


_FILTER_CHUNK_BYTES = 256 * 2**20  # FDK: FFT temporaries per filtered chunk of views


class Radon(LinearOperator):
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

    # -- plumbing -----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        g = self.geometry
        return (f"{type(g).__name__}, n_angles={g.n_angles}, image_shape={self.image_shape}, "
                f"pixel_size={self.pixel_size}")  # fmt: skip

    def _use_cuda(self, t: torch.Tensor) -> bool:
        return use_cuda(t, self.backend)

    def _geo_for(self, t: torch.Tensor):
        """Geometry arrays for the kernels: numpy on the CPU, device arrays on the GPU."""
        key = (t.device.type, t.device.index)
        if key not in self._geo_dev:
            if t.is_cuda:
                from numba import cuda

                tensors = [torch.as_tensor(a, device=t.device) for a in self._geo_np]
                self._geo_dev[key] = (tensors, [cuda.as_cuda_array(x) for x in tensors])
            else:
                self._geo_dev[key] = (None, list(self._geo_np))
        return self._geo_dev[key][1]

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
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _FLOATS:
            raise TypeError(f"{name} must be float32 or float64 ({what}), got {t.dtype}")
        n = len(trailing)
        if t.ndim < n or tuple(t.shape[-n:]) != tuple(trailing):
            raise ValueError(
                f"{name} must have shape (..., {', '.join(map(str, trailing))}) ({what}), "
                f"got {tuple(t.shape)}"
            )
        if self.check_finite and not self._all_finite(t):
            raise ValueError(f"{name} contains NaN or Inf")

    @staticmethod
    def _all_finite(t: torch.Tensor) -> bool:
        # CPU tensors: a Numba loop, so that no torch op wakes torch's OpenMP pool between
        # Numba kernels (see mrct.kernels.__init__)
        if t.device.type == "cpu" and t.is_contiguous():
            from ..kernels import nufft_cpu

            return nufft_cpu.count_nonfinite(t.detach().reshape(-1).numpy()) == 0
        return bool(torch.isfinite(t).all())

    def _flat(self, t, n_trailing):
        lead = t.shape[: t.ndim - n_trailing]
        flat = t.reshape((-1,) + tuple(t.shape[t.ndim - n_trailing :])).contiguous()
        return lead, flat

    # -- raw (no autograd) kernels ------------------------------------------------------------
    def _forward_raw(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.image_shape)
        lead, xf = self._flat(x, n)
        out = torch.empty((xf.shape[0],) + self.geometry.proj_shape, dtype=x.dtype, device=x.device)
        if xf.shape[0] == 0:
            return out.reshape(lead + self.geometry.proj_shape)
        geo = self._geo_for(x)
        if self._use_cuda(x):
            from ..kernels import radon_cuda as kern

            kw = {"stream": self._stream(x)}
        else:
            kern, kw = radon_cpu, {}
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
        if use_cuda:
            from ..kernels import radon_cuda as kern

            kw = {"stream": self._stream(y)}
        else:
            kern, kw = radon_cpu, {}
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

    def _view_trig(self, weights, ref):
        g = self.geometry
        arrs = [np.cos(g.angles), np.sin(g.angles), np.asarray(weights, dtype=np.float64)]
        if self._use_cuda(ref) and ref.is_cuda:
            from numba import cuda

            ts = [torch.as_tensor(a, device=ref.device) for a in arrs]
            return ts, [cuda.as_cuda_array(t) for t in ts]
        return None, [np.ascontiguousarray(a) for a in arrs]

    def _backproject(self, q, weights, mode, rs, rsd):
        """Pixel-driven FBP backprojection with autograd (its backward is the exact transpose)."""
        args = (weights, mode, rs, rsd)
        return apply_linear(
            q,
            lambda t: self._backproject_raw(t, *args),
            lambda t: self._backproject_t_raw(t, *args),
        )

    def _bp_kernel(self, t):
        if self._use_cuda(t):
            from ..kernels import radon_cuda as kern

            return kern, {"stream": self._stream(t)}
        return radon_cpu, {}

    def _backproject_raw(self, q, weights, mode, rs, rsd):
        g = self.geometry
        if mode == 0 and not self._use_cuda(q):
            return self._backproject_parallel_cpu(q, weights)
        if mode == 1 and not self._use_cuda(q):
            return self._backproject_flat_cpu(q, weights, rs, rsd)
        lead, qf = self._flat(q, 2)
        out = torch.empty((qf.shape[0],) + self.image_shape, dtype=q.dtype, device=q.device)
        keep, (c, s, w) = self._view_trig(weights, q)
        kern, kw = self._bp_kernel(q)
        kern.backproject_fbp_2d(self._arrays(qf), c, s, w, mode, rs, rsd, g.det_spacing,
                                self.pixel_size, self._arrays(out), **kw)  # fmt: skip
        return out.reshape(lead + self.image_shape)

    def _backproject_t_raw(self, img, weights, mode, rs, rsd):
        g = self.geometry
        lead, xf = self._flat(img, 2)
        out = torch.zeros((xf.shape[0],) + g.proj_shape, dtype=img.dtype, device=img.device)
        keep, (c, s, w) = self._view_trig(weights, img)
        kern, kw = self._bp_kernel(img)
        kern.backproject_fbp_2d_transpose(self._arrays(xf), c, s, w, mode, rs, rsd,
                                          g.det_spacing, self.pixel_size, self._arrays(out),
                                          **kw)  # fmt: skip
        return out.reshape(lead + g.proj_shape)

    def _numpy_path(self, y: torch.Tensor) -> bool:
        """CPU FBP without torch ops (scipy.fft filtering, Numba backprojection) when no
        gradient is needed: keeps torch's OpenMP pool asleep (see filter_numpy)."""
        return not self._use_cuda(y) and not (torch.is_grad_enabled() and y.requires_grad)

    def _response(self, *key):
        """Ramp filter response, cached per (n_det, spacing, filter, arc spacing, cut-off)."""
        cache = self.__dict__.setdefault("_responses", {})
        if key not in cache:
            n, sp, filt, arc, fs = key
            cache[key] = ramp_kernel_fft(n, sp, filt, arc_spacing=arc, frequency_scaling=fs)
        return cache[key]

    def _fbp_parallel(self, y, filter, fs):
        g = self.geometry
        resp = self._response(g.n_det, g.det_spacing, filter, None, fs)
        weights = _angular_weights(g.angles, math.pi)
        if self._numpy_path(y):
            import numba

            lead, yf = self._flat(y, 2)
            qp = filter_numpy(yf.detach().numpy(), resp, pad=2, workers=numba.get_num_threads())
            return self._backproject_parallel_np(qp, weights).reshape(lead + self.image_shape)
        q = apply_filter(y, resp)
        return self._backproject(q, weights, 0, 0.0, 0.0)

    def _backproject_parallel_cpu(self, q, weights):
        """CPU fast path of the parallel-beam FBP backprojection (same values as mode 0)."""
        lead, qf = self._flat(q, 2)
        qp = torch.nn.functional.pad(qf, (2, 2))  # zeros around each view: no bounds checks
        return self._backproject_parallel_np(qp.numpy(), weights).reshape(lead + self.image_shape)

    def _backproject_parallel_np(self, qp, weights):
        """:func:`radon_cpu.backproject_parallel_2d` of padded filtered views ``qp``
        (B, V, N + 4) numpy; returns a (B, H, W) tensor."""
        g = self.geometry
        H, W = self.image_shape
        out = torch.empty((qp.shape[0], H, W), dtype=torch.from_numpy(qp[:0]).dtype)
        c, s = np.cos(g.angles), np.sin(g.angles)
        ps, du = self.pixel_size, g.det_spacing
        # pixel (i, j) at (x0 + j ps, y0 - i ps) reads padded bin (x c + y s) / du + cu + 2
        x0, y0 = -(W - 1) * 0.5 * ps, (H - 1) * 0.5 * ps
        a = (x0 * c + y0 * s) / du + (g.n_det - 1) * 0.5 + 2.0
        dt = qp.dtype
        arrs = [np.ascontiguousarray(v, dtype=dt) for v in (a, ps * c / du, -ps * s / du, weights)]
        idx = np.arange(max(H, W), dtype=dt)
        radon_cpu.backproject_parallel_2d(qp, *arrs, idx, out.numpy())
        return out

    def _backproject_flat_cpu(self, q, weights, rs, rsd):
        """CPU fast path of the flat-detector fan-beam backprojection (same values as mode 1)."""
        lead, qf = self._flat(q, 2)
        qp = torch.nn.functional.pad(qf, (2, 2))
        return self._backproject_flat_np(qp.numpy(), weights, rs, rsd).reshape(
            lead + self.image_shape
        )

    def _backproject_flat_np(self, qp, weights, rs, rsd):
        """:func:`radon_cpu.backproject_flat_2d` of padded filtered views ``qp`` (B, V, N + 4)
        numpy; returns a (B, H, W) tensor."""
        g = self.geometry
        out = torch.empty((qp.shape[0],) + self.image_shape, dtype=torch.from_numpy(qp[:0]).dtype)
        c, s = np.cos(g.angles), np.sin(g.angles)
        w = np.ascontiguousarray(weights, dtype=np.float64)
        idx = np.arange(self.image_shape[1], dtype=qp.dtype)
        radon_cpu.backproject_flat_2d(qp, c, s, w, float(rs), float(rsd), float(g.det_spacing),
                                      float(self.pixel_size), idx, out.numpy())  # fmt: skip
        return out

    def _redundancy(self, short_scan, fan_half_angle):
        g = self.geometry
        cover = g.angular_coverage()
        if short_scan is None:
            short_scan = cover < 2 * math.pi - 1e-6
        if not short_scan:
            if cover < 2 * math.pi - 1e-6:
                raise ValueError(
                    f"full-scan reconstruction needs 2 pi of views; got {cover:.4f} rad"
                )
            return False, _angular_weights(g.angles, 2 * math.pi) / 2
        need = math.pi + 2 * fan_half_angle
        if cover < need - 1e-3 * need - np.median(np.diff(np.sort(g.angles))):
            raise ValueError(
                f"the views cover {cover:.4f} rad; a short scan needs pi + 2 * fan half-angle "
                f"= {need:.4f} rad (see FanBeam.short_scan)"
            )
        a = np.sort(g.angles)
        d = np.diff(a)
        w = np.empty_like(a)  # trapezoidal quadrature in beta
        w[0], w[-1] = d[0] / 2, d[-1] / 2
        w[1:-1] = (d[:-1] + d[1:]) / 2
        order = np.argsort(np.argsort(g.angles))
        return True, w[order]

    def _fbp_fan(self, y, filter, fs, short_scan):
        g = self.geometry
        rs, rsd = g.source_distance, g.source_detector_distance
        short, view_w = self._redundancy(short_scan, g.fan_half_angle)
        if g.detector == "flat":
            s = g.det_coords * rs / rsd  # iso-plane coordinates
            pre = rs / np.sqrt(rs**2 + s**2)
            resp = self._response(g.n_det, g.det_spacing * rs / rsd, filter, None, fs)
            mode = 1
        else:
            gam = g.fan_angles
            pre = rs * np.cos(gam)
            alpha = g.det_spacing / rsd
            resp = self._response(g.n_det, alpha, filter, alpha, fs)
            mode = 2
        if short:
            pre = pre[None, :] * parker_weights(g.angles, g.fan_angles, g.fan_half_angle)
        if mode == 1 and self._numpy_path(y):
            import numba

            lead, yf = self._flat(y, 2)
            qp = filter_numpy(yf.detach().numpy(), resp, pad=2, workers=numba.get_num_threads(),
                              pre=pre)  # fmt: skip
            out = self._backproject_flat_np(qp, view_w, rs, rsd)
            return out.reshape(lead + self.image_shape)
        yw = y * torch.as_tensor(pre, dtype=y.dtype, device=y.device)
        q = apply_filter(yw, resp)
        return self._backproject(q, view_w, mode, rs, rsd)

    def _fdk(self, y, filter, fs, short_scan):
        g = self.geometry
        if short_scan:
            raise NotImplementedError("FDK is implemented for full circular scans only")
        rs, rsd = g.source_distance, g.source_detector_distance
        _, view_w = self._redundancy(False, 0.0)
        dv, du = g.det_spacing
        rows, cols = g.det_shape
        u = (np.arange(cols) - (cols - 1) / 2) * du * rs / rsd
        v = (np.arange(rows) - (rows - 1) / 2) * dv * rs / rsd
        pre = rs / np.sqrt(rs**2 + u[None, :] ** 2 + v[:, None] ** 2)
        pre = torch.as_tensor(pre, dtype=y.dtype, device=y.device)
        resp = ramp_kernel_fft(cols, du * rs / rsd, filter, frequency_scaling=fs)
        lead, yf = self._flat(y, 3)
        # filter a few views at a time into one output array: the padded FFT of all views at
        # once would hold ~5x the projections (512^3 / 720 x 768^2: 17 GB instead of 4 GB)
        q = qf = torch.empty_like(yf)
        per_view = rows * 2 * (resp.shape[0] - 1) * 16  # bytes of one view's FFT temporaries
        step = max(1, min(_FILTER_CHUNK_BYTES, yf.nbytes // 4) // per_view)
        for b in range(yf.shape[0]):
            for v0 in range(0, yf.shape[1], step):
                sl = (b, slice(v0, v0 + step))
                qf[sl] = apply_filter(yf[sl] * pre, resp)
        use_cuda = self._use_cuda(q)
        out = torch.empty((qf.shape[0],) + self.image_shape, dtype=q.dtype, device=q.device)
        keep, (c, s, w) = self._view_trig(view_w, q)
        if use_cuda:
            from ..kernels import radon_cuda as kern

            kw = {"stream": self._stream(q)}
        else:
            kern, kw = radon_cpu, {}
        kern.backproject_fdk(self._arrays(qf), c, s, w, rs, rsd, du, dv, self.pixel_size,
                             self.slice_thickness, self._arrays(out), **kw)  # fmt: skip
        return out.reshape(lead + self.image_shape)
