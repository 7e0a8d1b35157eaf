"""numba.cuda kernels for NUFFT interpolation and spreading (one thread per point).

Same arithmetic as :mod:`.nufft_cpu` (both compile :mod:`.nufft_math`) and the same data
layout: grids are float ``(B, n1, 2 * n2)`` (interleaved real, imag), ``coords`` the sorted
grid coordinates and ``perm`` the index of each sorted point in the caller's order.
Spreading uses ``cuda.atomic.add``. Arrays come from torch CUDA tensors via
``__cuda_array_interface__``; launches go on the given stream. The kernels are compiled
once per precision (float32 weights and grids for complex64 data, float64 for complex128).
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

from numba import cuda  # importable without a GPU; kernels compile on first use

from ._compile import cuda_launch

__all__ = ["interp_2d", "spread_2d"]

_THREADS = 128
_MAXW = 16  # widest kernel (nufft_kernel_params caps w at 16)
# local-array sizes as plain constants: numba-cuda 0.30 types `_MAXW + 1` inside a kernel as
# int64, not a literal, and then finds no cuda.local.array for it (seen on an H200)
_NTAPS = _MAXW + 1
_NPAIR = 2 * _MAXW


@functools.cache
def _kernels(real):
    """(interp, spread) kernels for grids and weights of numba type ``real``."""
    from . import nufft_math

    dev = cuda.jit(device=True)

    @dev
    def add(row, j, v):
        cuda.atomic.add(row, j, v)

    @dev
    def scale(dst, src, f, n):
        for t in range(n):
            dst[t] = f * src[t]

    @dev
    def axpy(dst, src, f, n):
        for t in range(n):
            dst[t] += f * src[t]

    @dev
    def scatter_axpy(dst, src, f, n):
        for t in range(n):
            cuda.atomic.add(dst, t, f * src[t])

    @dev
    def pattern(kv, wc, vre, vim, n):
        for c in range(n // 2):
            kv[2 * c] = wc[c] * vre
            kv[2 * c + 1] = wc[c] * vim

    @dev
    def contract(acc, wc, w):
        re = wc[0] * acc[0]
        im = wc[0] * acc[1]
        for c in range(1, w):
            re += wc[c] * acc[2 * c]
            im += wc[c] * acc[2 * c + 1]
        return re, im

    ops = SimpleNamespace(add=add, scale=scale, axpy=axpy, scatter_axpy=scatter_axpy,
                          pattern=pattern, contract=contract)  # fmt: skip
    nm = nufft_math.build(dev, ops)
    taps, interp_point, spread_point = nm.taps, nm.interp_point, nm.spread_point

    def point_kernel(point):
        """Kernel ``(src, coords, perm, w, coeffs, dst)``, one thread per sorted point ``j``:
        its weights, then ``point(src, dst, perm[j], l0r, l0c, wr, wc, w, scratch)``."""

        @cuda.jit
        def kernel(src, coords, perm, w, coeffs, dst):
            j = cuda.grid(1)
            if j >= coords.shape[0]:
                return
            wr = cuda.local.array(_NTAPS, dtype=real)
            wc = cuda.local.array(_NTAPS, dtype=real)
            scratch = cuda.local.array(_NPAIR, dtype=real)
            l0r = taps(coords[j, 0], w, coeffs, wr)
            l0c = taps(coords[j, 1], w, coeffs, wc)
            point(src, dst, perm[j], l0r, l0c, wr, wc, w, scratch)

        return kernel

    @dev
    def interp_one(grid, out, p, l0r, l0c, wr, wc, w, acc):
        for b in range(grid.shape[0]):
            re, im = interp_point(grid, b, l0r, l0c, wr, wc, w, 2 * w, 2 * w, acc)
            out[b, p, 0] = re
            out[b, p, 1] = im

    @dev
    def spread_one(vals, grid, p, l0r, l0c, wr, wc, w, kv):
        for b in range(vals.shape[0]):
            spread_point(grid, b, l0r, l0c, wr, wc, w, 2 * w, 2 * w, vals[b, p, 0], vals[b, p, 1],
                         kv)  # fmt: skip

    interp = point_kernel(interp_one)
    spread = point_kernel(spread_one)
    return interp, spread


def _real(arr):
    from numba import float32, float64

    return float64 if arr.dtype.itemsize == 8 else float32


def interp_2d(grid, coords, perm, w, coeffs, out, stream=None):
    """GPU twin of :func:`mrct.kernels.nufft_cpu.interp_2d` (one thread per point)."""
    cuda_launch(_kernels(_real(grid))[0], coords.shape[0], _THREADS, stream, grid, coords, perm, w,
                coeffs, out)  # fmt: skip


def spread_2d(vals, coords, perm, w, coeffs, grid, stream=None):
    """GPU twin of :func:`mrct.kernels.nufft_cpu.spread_2d`; ``grid`` must be zeroed first."""
    cuda_launch(_kernels(_real(grid))[1], coords.shape[0], _THREADS, stream, vals, coords, perm, w,
                coeffs, grid)  # fmt: skip
