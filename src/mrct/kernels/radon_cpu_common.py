"""Shared pieces of the Numba CPU projector kernels (:mod:`.radon_cpu` and its parts).

:mod:`.ray_math` compiled for the CPU (``+=`` accumulation; every worker owns what it writes),
the ``njit`` options of the parallel kernels, and the reduction of per-worker buffers used by
the ray-driven scatter references.

Developers: Numba caches each ``cache=True`` kernel keyed on the file that defines it only.
After editing this file or :mod:`.ray_math`, remove ``src/mrct/kernels/__pycache__``
(``make clean-cache``) so the kernels that inline these functions are recompiled.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from . import ray_math

_jit = njit(fastmath=True, nogil=True, inline="always")
_par = dict(parallel=True, fastmath=True, nogil=True, cache=True)


@_jit
def _add2(buf, b, i, j, v):
    buf[b, i, j] += v


@_jit
def _add3(buf, b, d, i, j, v):
    buf[b, d, i, j] += v


rm = ray_math.build(_jit, _add2, _add3)


@njit(**_par)
def _sum_buffers(bufs, out):
    n = bufs.shape[0]
    flat_out = out.reshape(-1)
    flat = bufs.reshape(n, -1)
    for p in prange(flat_out.shape[0]):
        acc = 0.0
        for c in range(n):
            acc += flat[c, p]
        flat_out[p] = acc


def scatter_by_chunks(kernel, data, out, *args):
    """Run a ray-driven scatter ``kernel(data, *args, bufs, n_chunks)`` that splits the
    ``B * V`` views of ``data`` into one chunk per worker, each adding into its own copy of
    ``out`` (``bufs[c]``), and write the sum of the copies to ``out``."""
    n_chunks = max(1, min(numba.get_num_threads(), data.shape[0] * data.shape[1]))
    bufs = np.zeros((n_chunks,) + out.shape, dtype=out.dtype)
    kernel(data, *args, bufs, n_chunks)
    if n_chunks == 1:
        out[...] = bufs[0]
    else:
        _sum_buffers(bufs, out)


@_jit
def chunk_views(B, V, c, n_chunks):
    """Range ``[start, stop)`` of the flat (b, v) view indices that chunk ``c`` handles."""
    total = B * V
    return (total * c) // n_chunks, (total * (c + 1)) // n_chunks


@_jit
def row_start(x0, y, c, s):
    """``p . e_u`` and ``p . e_r`` of the point (x0, y): a row's first pixel at view (c, s)."""
    return x0 * c + y * s, -x0 * s + y * c


@_jit
def row_pixel(pu0, pr0, j, ps, c, s, rs):
    """``pu`` and ``L = rs + pr`` of pixel j of a row that starts at (pu0, pr0) (pixel size ps)."""
    return pu0 + j * ps * c, rs + pr0 - j * ps * s


@_jit
def row_block(k, nblk, H, R):
    """Image ``b``, first row and row count of block ``k`` of ``R`` rows (``nblk`` per image)."""
    b = k // nblk
    i_start = (k - b * nblk) * R
    return b, i_start, min(R, H - i_start)


@_jit
def store_rows(out, b, i_start, nr, acc):
    """``out[b, i_start + r, :] = acc[r]`` for ``r < nr``."""
    for r in range(nr):
        for j in range(out.shape[2]):
            out[b, i_start + r, j] = acc[r, j]
