"""Numba CPU kernels for DRR rendering: Siddon and trilinear forward, adjoints, label thickness.

Arrays are C-contiguous with explicit batch axes and outputs are preallocated, so
:mod:`mrct.physics.drr` passes torch CPU tensors zero-copy. Geometry (float64, index space, see
:mod:`.drr_math`): ``src, det, eu, ev`` are ``(P, 3)`` per pose (source, centre of detector
pixel (0, 0), column step, row step) and ``lin`` is the ``(3, 3)`` index-to-mm linear map.

Work is split over detector rows of all poses and volumes with ``prange``; rays that miss the
volume's box cost a few flops. The adjoint splits the volume into slabs of slices, one per
worker (no write races, no per-worker volume buffers), and is the transpose of the forward map
up to rounding.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from . import drr_math

__all__ = ["forward", "adjoint", "label_thickness"]

_jit = njit(fastmath=True, nogil=True, inline="always")


@_jit
def _add4(buf, b, k, i, j, v):
    buf[b, k, i, j] += v


_m = drr_math.build(_jit, _add4)
_pixel_ray = _m.pixel_ray
_ray_value = _m.ray_value
_ray_scatter = _m.ray_scatter
_siddon_labels = _m.siddon_labels

_par = dict(parallel=True, fastmath=True, nogil=True, cache=True)


@njit(**_par)
def forward(vol, src, det, eu, ev, lin, mode, step, out):
    """Render line integrals of a batch of volumes for a batch of poses.

    vol : (B, D, H, W) float32/float64; src, det, eu, ev : (P, 3) float64 index space;
    lin : (3, 3) float64; mode : 0 Siddon, 1 trilinear; step : sample spacing (mm, trilinear);
    out : (B, P, R, C), overwritten with the line integrals (mm times the volume's units).
    """
    B = out.shape[0]
    P = out.shape[1]
    R = out.shape[2]
    C = out.shape[3]
    for n in prange(B * P * R):
        b = n // (P * R)
        rem = n - b * P * R
        p = rem // R
        r = rem - p * R
        for c in range(C):
            o0, o1, o2, d0, d1, d2, L = _pixel_ray(p, r, c, src, det, eu, ev, lin)
            out[b, p, r, c] = _ray_value(vol, b, mode, step, o0, o1, o2, d0, d1, d2, L)


@njit(**_par)
def _adjoint_chunks(img, src, det, eu, ev, lin, mode, step, bufs, n_chunks):
    B = img.shape[0]
    P = img.shape[1]
    R = img.shape[2]
    C = img.shape[3]
    total = B * P * R
    for ch in prange(n_chunks):
        buf = bufs[ch]
        start = (total * ch) // n_chunks
        stop = (total * (ch + 1)) // n_chunks
        for n in range(start, stop):
            b = n // (P * R)
            rem = n - b * P * R
            p = rem // R
            r = rem - p * R
            for c in range(C):
                val = img[b, p, r, c]
                if val != 0.0:
                    o0, o1, o2, d0, d1, d2, L = _pixel_ray(p, r, c, src, det, eu, ev, lin)
                    _ray_scatter(buf, b, val, mode, step, o0, o1, o2, d0, d1, d2, L)


@njit(**_par)
def _sum_buffers(bufs, out):
    n = bufs.shape[0]
    flat_out = out.reshape(-1)
    flat = bufs.reshape(n, -1)
    for q in prange(flat_out.shape[0]):
        acc = 0.0
        for c in range(n):
            acc += flat[c, q]
        flat_out[q] = acc


@njit(**_par)
def _adjoint_slabs(img, src, det, eu, ev, lin, mode, step, out, bounds):
    B = img.shape[0]
    P = img.shape[1]
    R = img.shape[2]
    C = img.shape[3]
    n_slabs = bounds.shape[0] - 1
    for q in prange(B * n_slabs):
        b = q // n_slabs
        sl = q - b * n_slabs
        k0 = bounds[sl]
        k1 = bounds[sl + 1]
        slab = out[:, k0:k1]
        slab[b] = 0.0
        for p in range(P):
            for r in range(R):
                for c in range(C):
                    val = img[b, p, r, c]
                    if val != 0.0:
                        o0, o1, o2, d0, d1, d2, L = _pixel_ray(p, r, c, src, det, eu, ev, lin)
                        # the slab as a volume of its own: origin shifted by k0 slices
                        _ray_scatter(slab, b, val, mode, step, o0 - k0, o1, o2, d0, d1, d2, L)


def adjoint(img, src, det, eu, ev, lin, mode, step, out):
    """Exact adjoint of :func:`forward`: ``out (B, D, H, W) = A^T img (B, P, R, C)``.

    The volume is cut into slabs of whole slices (axis 0), one per worker, and each worker
    traces every ray through its slab only (the slab is a volume of its own with the origin
    shifted; Siddon's slab boundaries are voxel faces, so the voxel lengths are those of the
    full trace; trilinear samples keep their positions and drop the taps outside the slab).
    No write conflicts and no per-worker volume buffers. ``out`` is overwritten.
    """
    D = out.shape[1]
    n = max(1, min(numba.get_num_threads(), D))
    bounds = ((np.arange(n + 1) * D) // n).astype(np.int64)
    _adjoint_slabs(img, src, det, eu, ev, lin, mode, step, out, bounds)


def adjoint_scatter(img, src, det, eu, ev, lin, mode, step, out, max_buffer_bytes=2**31):
    """Ray-driven form of :func:`adjoint` with one zeroed volume buffer per worker (at most
    ``max_buffer_bytes`` in all), summed; kept as an independent reference for tests."""
    n_rows = img.shape[0] * img.shape[1] * img.shape[2]
    per = max(out.nbytes, 1)
    n_chunks = max(1, min(numba.get_num_threads(), n_rows, max_buffer_bytes // per))
    if n_chunks == 1:
        out[...] = 0
        _adjoint_chunks(img, src, det, eu, ev, lin, mode, step, out[None], 1)
        return
    bufs = np.zeros((n_chunks,) + out.shape, dtype=out.dtype)
    _adjoint_chunks(img, src, det, eu, ev, lin, mode, step, bufs, n_chunks)
    _sum_buffers(bufs, out)


@njit(**_par)
def label_thickness(lab, lut, src, det, eu, ev, lin, out):
    """Projected thickness (mm) of each label channel along every ray (Siddon lengths).

    lab : (D, H, W) integer label map; lut : (n_labels,) int64, channel of each label value
    (-1 = ignore); out : (P, n_channels, R, C) float, overwritten.
    """
    P = out.shape[0]
    R = out.shape[2]
    C = out.shape[3]
    for n in prange(P * R):
        p = n // R
        r = n - p * R
        for ch in range(out.shape[1]):
            for c in range(C):
                out[p, ch, r, c] = 0.0
        for c in range(C):
            o0, o1, o2, d0, d1, d2, L = _pixel_ray(p, r, c, src, det, eu, ev, lin)
            _siddon_labels(lab, lut, out, p, r, c, o0, o1, o2, d0, d1, d2, L)
