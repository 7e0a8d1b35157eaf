"""numba.cuda kernels for NUFFT interpolation and spreading (one thread per point).

Same arithmetic as :mod:`.nufft_cpu` (both compile :mod:`.nufft_math`); spreading uses
``cuda.atomic.add`` on the (real, imag) float grid. Arrays come from torch CUDA tensors via
``__cuda_array_interface__``; launches go on the given stream.
"""

from __future__ import annotations

import functools
import math

from numba import cuda  # importable without a GPU; kernels compile on first use

__all__ = ["interp_2d", "spread_2d"]

_THREADS = 128


@functools.cache
def _kernels():
    from . import nufft_math

    @cuda.jit(device=True)
    def add(grid, b, i, j, c, v):
        cuda.atomic.add(grid, (b, i, j, c), v)

    nm = nufft_math.build(cuda.jit(device=True), add)
    taps, interp_point, spread_point = nm.taps, nm.interp_point, nm.spread_point

    @cuda.jit
    def interp(grid, coords, w, coeffs, out):
        j = cuda.grid(1)
        if j >= coords.shape[0]:
            return
        wr = cuda.local.array(16, dtype=numba_float64)
        wc = cuda.local.array(16, dtype=numba_float64)
        l0r = taps(coords[j, 0], w, coeffs, wr)
        l0c = taps(coords[j, 1], w, coeffs, wc)
        for b in range(grid.shape[0]):
            re, im = interp_point(grid, b, l0r, l0c, wr, wc, w)
            out[b, j, 0] = re
            out[b, j, 1] = im

    @cuda.jit
    def spread(vals, coords, w, coeffs, grid):
        j = cuda.grid(1)
        if j >= coords.shape[0]:
            return
        wr = cuda.local.array(16, dtype=numba_float64)
        wc = cuda.local.array(16, dtype=numba_float64)
        l0r = taps(coords[j, 0], w, coeffs, wr)
        l0c = taps(coords[j, 1], w, coeffs, wc)
        for b in range(vals.shape[0]):
            spread_point(grid, b, l0r, l0c, wr, wc, w, vals[b, j, 0], vals[b, j, 1])

    return interp, spread


from numba import float64 as numba_float64  # noqa: E402  (used inside the kernels)


def interp_2d(grid, coords, w, coeffs, out, stream=None):
    """GPU twin of :func:`mrct.kernels.nufft_cpu.interp_2d`."""
    kernel = _kernels()[0]
    m = coords.shape[0]
    if m:
        cfg = (math.ceil(m / _THREADS), _THREADS) + ((stream,) if stream is not None else ())
        kernel[cfg](grid, coords, w, coeffs, out)


def spread_2d(vals, coords, w, coeffs, grid, stream=None):
    """GPU twin of :func:`mrct.kernels.nufft_cpu.spread_2d`; ``grid`` must be zeroed first."""
    kernel = _kernels()[1]
    m = coords.shape[0]
    if m:
        cfg = (math.ceil(m / _THREADS), _THREADS) + ((stream,) if stream is not None else ())
        kernel[cfg](vals, coords, w, coeffs, grid)
