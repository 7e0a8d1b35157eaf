"""Analytic reconstruction for :class:`~mrct.physics.Radon`: FBP (parallel, fan) and FDK (cone).

The ramp filtering (:mod:`mrct.physics.fbp_filters`), the view weights (angular quadrature,
full-scan redundancy, Parker weights) and the pixel-driven backprojections, with their exact
transposes for autograd. :class:`FBPMixin` holds them as methods of ``Radon``, whose
:meth:`~mrct.physics.Radon.fbp` dispatches to them.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..kernels import radon_cpu
from .autograd import apply_linear
from .fbp_filters import apply_filter, filter_numpy, parker_weights, ramp_kernel_fft

__all__ = ["FBPMixin"]


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


class FBPMixin:
    """FBP and FDK for :class:`~mrct.physics.Radon` (which provides ``geometry``,
    ``image_shape``, ``pixel_size``, ``slice_thickness``, ``_use_cuda``, ``_kern``,
    ``_stream``, ``_arrays`` and ``_flat``)."""

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

    def _backproject_raw(self, q, weights, mode, rs, rsd):
        g = self.geometry
        if mode == 0 and not self._use_cuda(q):
            return self._backproject_parallel_cpu(q, weights)
        if mode == 1 and not self._use_cuda(q):
            return self._backproject_flat_cpu(q, weights, rs, rsd)
        lead, qf = self._flat(q, 2)
        out = torch.empty((qf.shape[0],) + self.image_shape, dtype=q.dtype, device=q.device)
        keep, (c, s, w) = self._view_trig(weights, q)
        kern, kw = self._kern(q)
        kern.backproject_fbp_2d(self._arrays(qf), c, s, w, mode, rs, rsd, g.det_spacing,
                                self.pixel_size, self._arrays(out), **kw)  # fmt: skip
        return out.reshape(lead + self.image_shape)

    def _backproject_t_raw(self, img, weights, mode, rs, rsd):
        g = self.geometry
        lead, xf = self._flat(img, 2)
        out = torch.zeros((xf.shape[0],) + g.proj_shape, dtype=img.dtype, device=img.device)
        keep, (c, s, w) = self._view_trig(weights, img)
        kern, kw = self._kern(img)
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
        out = torch.empty((qf.shape[0],) + self.image_shape, dtype=q.dtype, device=q.device)
        keep, (c, s, w) = self._view_trig(view_w, q)
        kern, kw = self._kern(q)
        kern.backproject_fdk(self._arrays(qf), c, s, w, rs, rsd, du, dv, self.pixel_size,
                             self.slice_thickness, self._arrays(out), **kw)  # fmt: skip
        return out.reshape(lead + self.image_shape)
