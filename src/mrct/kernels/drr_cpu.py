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
from ._compile import PARALLEL, inline

__all__ = ["forward", "adjoint", "label_thickness"]


@inline
def _add4(buf, b, k, i, j, v):
    buf[b, k, i, j] += v


_m = drr_math.build(inline, _add4)
_split_row, _pixel_value, _pixel_scatter = _m.split_row, _m.pixel_value, _m.pixel_scatter
_pixel_labels = _m.pixel_labels


@njit(**PARALLEL)
def forward(vol, src, det, eu, ev, lin, mode, step, out):
    """Render line integrals of a batch of volumes for a batch of poses.

    vol : (B, D, H, W) float32/float64; src, det, eu, ev : (P, 3) float64 index space;
    lin : (3, 3) float64; mode : 0 Siddon, 1 trilinear; step : sample spacing (mm, trilinear);
    out : (B, P, R, C), overwritten with the line integrals (mm times the volume's units).
    """
    B, P, R, C = out.shape
    for n in prange(B * P * R):
        b, p, r = _split_row(n, P, R)
        for c in range(C):
            out[b, p, r, c] = _pixel_value(vol, b, p, r, c, src, det, eu, ev, lin, mode, step)


@njit(**PARALLEL)
def _adjoint_chunks(img, src, det, eu, ev, lin, mode, step, bufs, n_chunks):
    B, P, R, C = img.shape
    total = B * P * R
    for ch in prange(n_chunks):
        buf = bufs[ch]
        for n in range((total * ch) // n_chunks, (total * (ch + 1)) // n_chunks):
            b, p, r = _split_row(n, P, R)
            for c in range(C):
                val = img[b, p, r, c]
                _pixel_scatter(buf, b, val, p, r, c, src, det, eu, ev, lin, mode, step, 0)


@njit(**PARALLEL)
def _adjoint_slabs(img, src, det, eu, ev, lin, mode, step, out, bounds):
    n_slabs = bounds.shape[0] - 1
    for q in prange(img.shape[0] * n_slabs):
        b = q // n_slabs
        k0 = bounds[q - b * n_slabs]
        # the slab as a volume of its own: slice 0 is slice k0 of the volume
        slab = out[:, k0 : bounds[q - b * n_slabs + 1]]
        slab[b] = 0.0
        for p in range(img.shape[1]):
            for r in range(img.shape[2]):
                for c in range(img.shape[3]):
                    _pixel_scatter(slab, b, img[b, p, r, c], p, r, c, src, det, eu, ev, lin, mode,
                                   step, k0)  # fmt: skip


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
    out[...] = bufs.sum(axis=0, dtype=np.float64)  # in buffer order, as the kernels add


@njit(**PARALLEL)
def label_thickness(lab, lut, src, det, eu, ev, lin, out):
    """Projected thickness (mm) of each label channel along every ray (Siddon lengths).

    lab : (D, H, W) integer label map; lut : (n_labels,) int64, channel of each label value
    (-1 = ignore); out : (P, n_channels, R, C) float, overwritten.
    """
    P, _, R, C = out.shape
    for n in prange(P * R):
        _, p, r = _split_row(n, P, R)
        out[p, :, r, :] = 0.0
        for c in range(C):
            _pixel_labels(lab, lut, out, p, r, c, src, det, eu, ev, lin)
