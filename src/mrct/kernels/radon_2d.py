"""Numba CPU kernels of the 2D (parallel and fan-beam) Joseph projector and its exact adjoint.

Rays are given per view and detector bin as origin and direction (mm), so one projector serves
every 2D geometry. :func:`forward_2d` sums each ray with SIMD runs (:mod:`.radon_simd`);
:func:`adjoint_2d` is owner-computes over image rows and columns, from the per-view ray tables
of :func:`ray_table_2d`. :func:`ray_soa_2d` is the per-ray table of the CUDA kernels.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .radon_cpu_common import _jit, _par, chunk_views, rm, scatter_by_chunks
from .radon_simd import L as _L
from .radon_simd import fwd_run

__all__ = ["forward_2d", "adjoint_2d", "adjoint_2d_scatter", "ray_table_2d", "ray_soa_2d"]

_unravel3 = rm.unravel3
_ray_setup_2d = rm.ray_setup_2d
_ray_index_2d = rm.ray_index_2d
_walk_sum_2d = rm.walk_sum_2d
_ray_scatter_2d = rm.ray_scatter_2d


@_jit
def _ray_sum_2d_simd(img, b, ox, oy, dx, dy, ps, img2):
    """:func:`ray_math.ray_sum_2d` with runs of _L samples done by :func:`radon_simd.fwd_run`
    (``img2`` is ``img[b]``) and the remaining samples by the shared scalar walk."""
    H = img.shape[1]
    W = img.shape[2]
    x_major, p0, slope, step, m_lo, m_hi = _ray_setup_2d(ox, oy, dx, dy, H, W, ps)
    acc = 0.0
    m = m_lo
    if x_major:  # img2[m, q] is img2[q, m]: strides 1 along the ray, W across it
        while m + _L <= m_hi + 1:
            acc += fwd_run(img2, m, p0, slope, H, 1, W)
            m += _L
    else:
        while m + _L <= m_hi + 1:
            acc += fwd_run(img2, m, p0, slope, W, W, 1)
            m += _L
    return _walk_sum_2d(img, b, x_major, p0, slope, m, m_hi, acc, 0.0) * step


@njit(**_par)
def forward_2d(img, origins, dirs, ps, out):
    """Joseph projection of a batch of 2D images along arbitrary rays.

    img : (B, H, W) float; origins, dirs : (V, N, 2) float64 ray origin and direction (mm);
    ps : pixel size (mm); out : (B, V, N), overwritten with the line integrals.
    """
    V = origins.shape[0]
    N = origins.shape[1]
    for k in prange(img.shape[0] * V * N):
        b, v, u = _unravel3(k, V, N)
        out[b, v, u] = _ray_sum_2d_simd(
            img, b, origins[v, u, 0], origins[v, u, 1], dirs[v, u, 0], dirs[v, u, 1], ps, img[b]
        )


@njit(**_par)
def _ray_soa_2d(origins, dirs, ps, H, W, tab):
    V = origins.shape[0]
    N = origins.shape[1]
    ci = (H - 1) * 0.5
    cj = (W - 1) * 0.5
    for v in prange(V):
        for u in range(N):
            ox = origins[v, u, 0]
            oy = origins[v, u, 1]
            dx = dirs[v, u, 0]
            dy = dirs[v, u, 1]
            x_major, a, sl, st, m_lo, m_hi = _ray_setup_2d(ox, oy, dx, dy, H, W, ps)
            tab[0, v, u] = 1.0 if x_major else 0.0
            tab[1, v, u] = a
            tab[2, v, u] = sl
            tab[3, v, u] = st if m_lo <= m_hi else 0.0
            tab[4, v, u] = m_lo
            tab[5, v, u] = m_hi
            # signed distance (pixels) of index point (i, j) from the ray: ea i + eb j + ec
            dc, uy, c0, r0 = _ray_index_2d(ox, oy, dx, dy, H, W, ps)  # dc = d col / d length
            dr = -uy  # d row / d length
            tab[6, v, u] = dc
            tab[7, v, u] = -dr
            tab[8, v, u] = -dc * r0 + dr * c0
        # orient the distance so that it grows with u (at the image centre)
        if N > 1:
            e0 = tab[6, v, 0] * ci + tab[7, v, 0] * cj + tab[8, v, 0]
            e1 = tab[6, v, N - 1] * ci + tab[7, v, N - 1] * cj + tab[8, v, N - 1]
            if e1 < e0:
                for u in range(N):
                    for q in range(6, 9):
                        tab[q, v, u] = -tab[q, v, u]


def ray_soa_2d(origins, dirs, ps, H, W):
    """Per-ray table ``(9, V, N)`` float64 for the CUDA kernels (structure of arrays).

    Rows: x-major flag (1/0), ``p0``, ``slope``, ``step`` (0 for rays that miss the image),
    ``m_lo``, ``m_hi`` (as in :func:`ray_math.ray_setup_2d`, computed with the same code), and
    ``ea, eb, ec``: the signed distance in pixels of index point (row i, col j) from the ray
    is ``ea i + eb j + ec``, oriented to grow with the detector index u at the image centre.
    Cast it to the images' dtype so the GPU does its ray arithmetic in that precision.
    """
    V, N = origins.shape[:2]
    tab = np.zeros((9, V, N))
    _ray_soa_2d(origins, dirs, float(ps), int(H), int(W), tab)
    return tab


def ray_table_2d(origins, dirs, ps, H, W):
    """Per-view tables of the rays' Joseph parameters, split by major axis.

    Returns ``(cnt, idx, p0, slope, step)``: ``cnt (V, 2)`` int64 is the number of y-major
    (``[:, 0]``, sampled once per image row) and x-major (``[:, 1]``, once per column) rays of
    each view that touch the image; ``idx (V, 2, N)`` int64 their detector indices (in
    increasing order, zero past ``cnt``) and ``p0, slope, step (V, 2, N)`` float64 the values
    of :func:`ray_math.ray_setup_2d` (minor coordinate at major index 0, its change per major
    step, ray length per step). Taken from :func:`ray_soa_2d` (the forward kernel's own
    arithmetic); the input of :func:`adjoint_2d`.
    """
    tab = ray_soa_2d(origins, dirs, ps, H, W)
    V, N = tab.shape[1:]
    hit = tab[4] <= tab[5]
    cnt = np.zeros((V, 2), dtype=np.int64)
    idx = np.zeros((V, 2, N), dtype=np.int64)
    p0, slope, step = (np.zeros((V, 2, N)) for _ in range(3))
    for t, sel in enumerate((hit & (tab[0] == 0.0), hit & (tab[0] == 1.0))):
        order = np.argsort(~sel, axis=1, kind="stable")  # the selected rays first, in order
        cnt[:, t] = sel.sum(axis=1)
        keep = np.arange(N) < cnt[:, t, None]
        idx[:, t] = np.where(keep, order, 0)
        for dst, row in ((p0, 1), (slope, 2), (step, 3)):
            dst[:, t] = np.where(keep, np.take_along_axis(tab[row], order, axis=1), 0.0)
    return cnt, idx, p0, slope, step


@_jit
def _line_taps(sino, b, t, fl, n, cnt, idx, p0, slope, step, acc):
    """Add to ``acc`` (``acc[q + 1]`` is node q of the line; the ends catch the out-of-image
    taps) the taps of the ``t``-major rays (0: y-major, 1: x-major) of every view on image
    line ``fl`` (row i for t = 0, column j for t = 1) of length ``n``. A sample contributes
    iff its minor coordinate lies in (-1, n) (the forward's clipping, whose end samples
    carry zero weight)."""
    for v in range(sino.shape[1]):
        if cnt[v, t] == 0:
            continue
        row = sino[b, v]
        for q in range(cnt[v, t]):
            c = p0[v, t, q] + slope[v, t, q] * fl
            if c > -1.0 and c < n:
                j0 = int(c + 1.0)  # floor(c) + 1
                f = c - (j0 - 1)
                val = row[idx[v, t, q]] * step[v, t, q]
                acc[j0] += (1.0 - f) * val
                acc[j0 + 1] += f * val


@njit(**_par)
def _adjoint_2d_lines(sino, cnt, idx, p0, slope, step, out):
    B, H, W = out.shape
    # t = 0: y-major rays, each sample on one image row, a worker owns whole rows;
    # t = 1: x-major rays, each sample on one image column, a worker owns whole columns
    for t in range(2):
        n_lines, n = (H, W) if t == 0 else (W, H)
        for k in prange(B * n_lines):
            b = k // n_lines
            line = k - b * n_lines
            acc = np.zeros(n + 2)
            _line_taps(sino, b, t, float(line), n, cnt, idx, p0, slope, step, acc)
            for q in range(n):
                if t == 0:
                    out[b, line, q] = acc[q + 1]
                else:
                    out[b, q, line] += acc[q + 1]


def adjoint_2d(sino, origins, dirs, ps, out, table=None):
    """Exact adjoint of :func:`forward_2d`: ``out (B, H, W) = A^T sino (B, V, N)``.

    Owner-computes: a y-major ray (sampled once per image row) adds to two pixels of each row
    it crosses, an x-major ray to two pixels of each column. So one parallel pass over image
    rows gathers every y-major ray's contribution to that row into a row-sized accumulator,
    and a second pass over columns does the same for the x-major rays: no write conflicts, no
    atomics, no per-thread image buffers, and the work splits evenly over any number of
    threads. ``table`` is :func:`ray_table_2d` of the same rays (computed here when omitted;
    :class:`mrct.physics.Radon` caches it).
    """
    if table is None:
        table = ray_table_2d(origins, dirs, ps, out.shape[1], out.shape[2])
    _adjoint_2d_lines(sino, *table, out)


@_jit
def _scatter_view_2d(buf, sino, b, v, origins, dirs, ps):
    for u in range(sino.shape[2]):
        val = sino[b, v, u]
        if val != 0.0:
            _ray_scatter_2d(buf, b, val, origins[v, u, 0], origins[v, u, 1], dirs[v, u, 0],
                            dirs[v, u, 1], ps)  # fmt: skip


@njit(**_par)
def _adjoint_2d_chunks(sino, origins, dirs, ps, bufs, n_chunks):
    V = sino.shape[1]
    for c in prange(n_chunks):
        start, stop = chunk_views(sino.shape[0], V, c, n_chunks)
        for k in range(start, stop):
            _scatter_view_2d(bufs[c], sino, k // V, k % V, origins, dirs, ps)


def adjoint_2d_scatter(sino, origins, dirs, ps, out):
    """Ray-driven scatter form of :func:`adjoint_2d` (one image buffer per worker, summed).

    Kept as an independent reference for tests; :func:`adjoint_2d` is faster and scales.
    """
    scatter_by_chunks(_adjoint_2d_chunks, sino, out, origins, dirs, ps)
