"""Numba CPU kernels: NUFFT interpolation (grid -> points) and spreading (points -> grid).

Points are processed in the order given; callers sort them by grid cell (see
:class:`mrct.physics.NUFFT`) so that neighbouring points touch neighbouring memory. Spreading
gives each worker its own grid and sums the grids at the end (no write races).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from . import nufft_math

__all__ = ["interp_2d", "spread_2d"]

_jit = njit(fastmath=True, nogil=True, inline="always")


@_jit
def _add(grid, b, i, j, c, v):
    grid[b, i, j, c] += v


_nm = nufft_math.build(_jit, _add)
_taps = _nm.taps
_interp_point = _nm.interp_point
_spread_point = _nm.spread_point

_par = dict(parallel=True, fastmath=True, nogil=True, cache=True)


@njit(**_par)
def interp_2d(grid, coords, w, coeffs, out, n_chunks):
    """Interpolate oversampled grids at non-uniform points.

    grid : (B, n1, n2, 2) float (real, imag); coords : (M, 2) float64 grid coordinates
    (row, col) in cells; w : kernel width; coeffs : (w, degree + 1) tap polynomials;
    out : (B, M, 2), overwritten.
    """
    M = coords.shape[0]
    B = grid.shape[0]
    for ch in prange(n_chunks):
        wr = np.empty(16)
        wc = np.empty(16)
        start = (M * ch) // n_chunks
        stop = (M * (ch + 1)) // n_chunks
        for j in range(start, stop):
            l0r = _taps(coords[j, 0], w, coeffs, wr)
            l0c = _taps(coords[j, 1], w, coeffs, wc)
            for b in range(B):
                re, im = _interp_point(grid, b, l0r, l0c, wr, wc, w)
                out[b, j, 0] = re
                out[b, j, 1] = im


@njit(**_par)
def _spread_chunks(vals, coords, w, coeffs, grids, n_chunks):
    M = coords.shape[0]
    B = vals.shape[0]
    for ch in prange(n_chunks):
        g = grids[ch]
        wr = np.empty(16)
        wc = np.empty(16)
        start = (M * ch) // n_chunks
        stop = (M * (ch + 1)) // n_chunks
        for j in range(start, stop):
            l0r = _taps(coords[j, 0], w, coeffs, wr)
            l0c = _taps(coords[j, 1], w, coeffs, wc)
            for b in range(B):
                _spread_point(g, b, l0r, l0c, wr, wc, w, vals[b, j, 0], vals[b, j, 1])


@njit(parallel=True, fastmath=True, nogil=True, cache=True)
def _sum_grids(grids, out):
    n = grids.shape[0]
    flat = grids.reshape(n, -1)
    fo = out.reshape(-1)
    for p in prange(fo.shape[0]):
        acc = 0.0
        for c in range(n):
            acc += flat[c, p]
        fo[p] = acc


def spread_2d(vals, coords, w, coeffs, grid):
    """Spread values at non-uniform points onto oversampled grids (adjoint of interp_2d).

    vals : (B, M, 2) float; coords : (M, 2) float64; grid : (B, n1, n2, 2), overwritten.
    """
    n_chunks = max(1, min(numba.get_num_threads(), coords.shape[0]))
    if n_chunks == 1:
        grid[...] = 0
        _spread_chunks(vals, coords, w, coeffs, grid[None], 1)
        return
    grids = np.zeros((n_chunks,) + grid.shape, dtype=grid.dtype)
    _spread_chunks(vals, coords, w, coeffs, grids, n_chunks)
    _sum_grids(grids, grid)
