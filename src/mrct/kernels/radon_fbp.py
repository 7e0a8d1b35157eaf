"""Numba CPU kernels of the pixel-driven FBP backprojection (parallel, flat and arc fan beam)
and of its exact transpose.

:func:`backproject_fbp_2d` is the general kernel (all three geometries);
:func:`backproject_parallel_2d` and :func:`backproject_flat_2d` are the fast paths for parallel
and flat-detector fan beam with SIMD runs (:mod:`.radon_simd`) over zero-padded views;
:func:`backproject_fbp_2d_transpose` gives FBP its autograd. Work is split over image rows
(backprojection) or views (transpose), so every worker owns what it writes.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .radon_cpu_common import _par, rm, row_block, row_pixel, row_start, store_rows
from .radon_simd import L as _L
from .radon_simd import bp_run_flat, bp_run_parallel

__all__ = [
    "backproject_fbp_2d",
    "backproject_parallel_2d",
    "backproject_flat_2d",
    "backproject_fbp_2d_transpose",
]

_fan_pixel_coords = rm.fan_pixel_coords
_pixel_xy = rm.pixel_xy


@njit(**_par)
def backproject_fbp_2d(sino, cos_t, sin_t, weights, mode, rs, rsd, du, ps, out):
    """Pixel-driven backprojection of filtered projections (the FBP back end).

    sino : (B, V, N) filtered projections; cos_t, sin_t, weights : (V,) per-view cosine,
    sine and quadrature weight; mode : 0 parallel, 1 flat fan, 2 arc fan; rs, rsd : source to
    axis and source to detector distance (mm, unused for parallel); du : detector spacing
    (mm); ps : pixel size (mm); out : (B, H, W) overwritten with
    ``sum_v weights[v] * w_fan(x, v) * sino[b, v, bin(x, v)]`` (linear interpolation in bins).

    Same arithmetic as :func:`mrct.kernels.ray_math.fan_pixel_coords`, arranged row by row so
    that the inner loop runs along a row of pixels with the detector row in cache. For
    parallel beam on the CPU, :func:`backproject_parallel_2d` is the faster path.
    """
    B, H, W = out.shape
    _, V, N = sino.shape
    cu = (N - 1) * 0.5
    inv_du = 1.0 / du
    x0 = -(W - 1) * 0.5 * ps
    for k in prange(B * H):
        b = k // H
        i = k - b * H
        y = ((H - 1) * 0.5 - i) * ps
        acc = np.zeros(W)
        for v in range(V):
            c = cos_t[v]
            s = sin_t[v]
            wv = weights[v]
            row = sino[b, v]
            pu0, pr0 = row_start(x0, y, c, s)
            for j in range(W):
                pu, L = row_pixel(pu0, pr0, j, ps, c, s, rs)
                if mode == 0:
                    t = pu * inv_du + cu
                    w = wv
                elif mode == 1:
                    t = rsd * pu / L * inv_du + cu
                    w = wv * (rs * rs) / (L * L)
                else:
                    t = np.arctan2(pu, L) * rsd * inv_du + cu
                    w = wv / (pu * pu + L * L)
                if t <= -1.0 or t >= N:
                    continue
                i0 = int(t + 1.0) - 1  # floor for t > -1
                f = t - i0
                val = 0.0
                if i0 >= 0:
                    val += (1.0 - f) * row[i0]
                if i0 + 1 < N:
                    val += f * row[i0 + 1]
                acc[j] += w * val
        for j in range(W):
            out[b, i, j] = acc[j]


@njit(**_par)
def backproject_parallel_2d(sinop, a, bcol, brow, weights, idx, out):
    """Pixel-driven parallel-beam backprojection of filtered projections (CPU fast path).

    sinop : (B, V, N + 4) filtered projections with two zeros padded at each end of every
    view; a, bcol, brow, weights : (V,) arrays in the dtype of ``sinop``: pixel (i, j) reads
    padded bin coordinate ``p = a[v] + j bcol[v] + i brow[v]`` of view ``v``; one : (1,)
    idx : (max(H, W),) the numbers 0, 1, 2, ... in that dtype; out : (B, H, W) overwritten with
    ``sum_v weights[v] * sino[b, v, p]`` (linear interpolation, zero outside the detector).

    Same result as :func:`backproject_fbp_2d` with ``mode=0``, restructured for speed: the
    bin is affine in the column index, so the columns whose ``p`` lies in ``[0, N + 2]`` form
    one interval found up front; outside it a pixel reads only the zero padding and is
    skipped, inside it needs no bounds checks. Arithmetic stays in the input dtype (float32
    inputs interpolate in float32), and two image rows share each pass over the views.
    """
    B, H, W = out.shape
    pmax = sinop.shape[2] - 2.0  # N + 2
    R = 2
    nblk = (H + R - 1) // R
    for k in prange(B * nblk):
        b, i_start, nr = row_block(k, nblk, H, R)
        acc = np.zeros((R, W), dtype=out.dtype)
        for v in range(sinop.shape[1]):
            wv = weights[v]
            dt = bcol[v]
            row = sinop[b, v]
            for r in range(nr):
                t0 = a[v] + idx[i_start + r] * brow[v]
                # columns with 0 <= p <= N + 2, in float64 with a safety margin
                t0d = float(t0)
                dtd = float(dt)
                if dtd > 1e-12:
                    ja = int(math.ceil((0.0 - t0d) / dtd + 1e-6))
                    jb = int(math.floor((pmax - t0d) / dtd - 1e-6))
                elif dtd < -1e-12:
                    ja = int(math.ceil((pmax - t0d) / dtd + 1e-6))
                    jb = int(math.floor((0.0 - t0d) / dtd - 1e-6))
                elif t0d >= 0.0 and t0d <= pmax:
                    ja = 0
                    jb = W - 1
                else:
                    ja = 1
                    jb = 0
                ja = max(ja, 0)
                jb = min(jb, W - 1)
                accr = acc[r]
                jv = ja
                while jv + _L <= jb + 1:
                    bp_run_parallel(accr, jv, row, t0, dt, wv)
                    jv += _L
                for j in range(jv, jb + 1):
                    p = t0 + idx[j] * dt
                    fl = np.floor(p)  # p >= 0; stays in the input dtype
                    i0 = np.int32(fl)
                    f = p - fl
                    a0 = row[i0]
                    accr[j] += wv * (a0 + f * (row[i0 + 1] - a0))
        store_rows(out, b, i_start, nr, acc)


@njit(**_par)
def backproject_flat_2d(sinop, cos_t, sin_t, weights, rs, rsd, du, ps, idx, out):
    """Pixel-driven flat-detector fan-beam backprojection of filtered projections (CPU fast
    path of :func:`backproject_fbp_2d` with ``mode=1``, same values up to rounding).

    sinop : (B, V, N + 4) filtered projections with two zeros padded at each end of every view;
    cos_t, sin_t, weights : (V,) float64; rs, rsd, du, ps as for :func:`backproject_fbp_2d`;
    idx : (W,) the numbers 0, 1, 2, ... in the dtype of ``sinop`` (the inner loop runs in
    that dtype); out : (B, H, W) overwritten.

    Along an image row the detector coordinate ``t = (rsd / du) pu / L + cu`` is a ratio of two
    affine functions of the column, hence monotone while ``L > 0`` (pixels in front of the
    source), so the columns that read the detector form one interval, found up front in
    float64 with half a bin of margin into the zero padding; inside it the loop needs no bounds
    checks, one reciprocal per pixel gives both the bin and the weight ``(rs / L)^2``, and two
    image rows share each pass over the views. Rows that reach behind the source (``L <= 0``
    somewhere) take the checked loop.
    """
    B, H, W = out.shape
    N = sinop.shape[2] - 4
    K = rsd / du
    cup = (N - 1) * 0.5 + 2.0  # padded bin of the detector centre
    x0 = -(W - 1) * 0.5 * ps
    R = 2
    nblk = (H + R - 1) // R
    for k in prange(B * nblk):
        b, i_start, nr = row_block(k, nblk, H, R)
        acc = np.zeros((R, W), dtype=out.dtype)
        sc = np.empty(8, dtype=sinop.dtype)
        for v in range(sinop.shape[1]):
            c = cos_t[v]
            s = sin_t[v]
            row = sinop[b, v]
            wr = weights[v] * rs * rs
            for r in range(nr):
                y = ((H - 1) * 0.5 - (i_start + r)) * ps
                P0 = x0 * c + y * s  # pu at column 0, grows by Pj per column
                Pj = ps * c
                L0 = rs - x0 * s + y * c  # L at column 0, grows by Lj per column
                Lj = -ps * s
                accr = acc[r]
                if L0 <= 0.0 or L0 + (W - 1) * Lj <= 0.0:
                    for j in range(W):  # behind the source somewhere on this row
                        L = L0 + j * Lj
                        if L <= 0.0:
                            continue
                        t = K * (P0 + j * Pj) / L + cup
                        if t <= 1.0 or t >= N + 2.0:
                            continue
                        i0 = int(t)
                        f = t - i0
                        a0 = row[i0]
                        accr[j] += wr / (L * L) * (a0 + f * (row[i0 + 1] - a0))
                    continue
                # columns with 0.5 <= t <= N + 2.5; t is monotone along the row (L > 0 there),
                # so compare its ends and solve K (P0 + j Pj) = (T - cup) (L0 + j Lj) where
                # the row crosses T = 0.5 or N + 2.5
                t_a = K * P0 / L0 + cup
                t_b = K * (P0 + (W - 1) * Pj) / (L0 + (W - 1) * Lj) + cup
                lo_t = 0.5
                hi_t = N + 2.5
                if min(t_a, t_b) > hi_t or max(t_a, t_b) < lo_t:
                    continue
                ja = 0
                jb = W - 1
                if t_a <= t_b:
                    if t_a < lo_t:
                        ja = int(math.ceil(((lo_t - cup) * L0 - K * P0)
                                           / (K * Pj - (lo_t - cup) * Lj)))  # fmt: skip
                    if t_b > hi_t:
                        jb = int(math.floor(((hi_t - cup) * L0 - K * P0)
                                            / (K * Pj - (hi_t - cup) * Lj)))  # fmt: skip
                else:
                    if t_a > hi_t:
                        ja = int(math.ceil(((hi_t - cup) * L0 - K * P0)
                                           / (K * Pj - (hi_t - cup) * Lj)))  # fmt: skip
                    if t_b < lo_t:
                        jb = int(math.floor(((lo_t - cup) * L0 - K * P0)
                                            / (K * Pj - (lo_t - cup) * Lj)))  # fmt: skip
                ja = max(ja, 0)
                jb = min(jb, W - 1)
                # arithmetic in the dtype of the data from here on (values pass through the
                # scratch array sc to take its dtype)
                sc[0] = K * P0
                sc[1] = K * Pj
                sc[2] = L0
                sc[3] = Lj
                sc[4] = cup
                sc[5] = wr
                sc[6] = 1.0
                p0 = sc[0]
                pj = sc[1]
                l0 = sc[2]
                lj = sc[3]
                cf = sc[4]
                wf = sc[5]
                onef = sc[6]
                jv = ja
                while jv + _L <= jb + 1:
                    bp_run_flat(accr, jv, row, p0, pj, l0, lj, cf, wf)
                    jv += _L
                for j in range(jv, jb + 1):
                    jf = idx[j]
                    inv = onef / (l0 + jf * lj)
                    t = (p0 + jf * pj) * inv + cf
                    fl = np.floor(t)
                    i0 = np.int32(fl)
                    f = t - fl
                    a0 = row[i0]
                    accr[j] += wf * inv * inv * (a0 + f * (row[i0 + 1] - a0))
        store_rows(out, b, i_start, nr, acc)


@njit(**_par)
def backproject_fbp_2d_transpose(img, cos_t, sin_t, weights, mode, rs, rsd, du, ps, out):
    """Transpose of :func:`backproject_fbp_2d`: ``out (B, V, N) = BP^T img (B, H, W)``.

    Each pixel adds its value times its interpolation weights to the two bins it reads in
    every view (so FBP, a linear map, gets an exact adjoint and autograd). A worker owns
    whole views (one detector row each): no write conflicts and no per-worker buffers.
    ``out`` is overwritten.
    """
    B, H, W = img.shape
    _, V, N = out.shape
    cu = (N - 1) * 0.5
    inv_du = 1.0 / du
    for k in prange(B * V):
        b = k // V
        v = k - b * V
        c = cos_t[v]
        s = sin_t[v]
        wv = weights[v]
        acc = np.zeros(N + 2)  # acc[n + 1] is bin n
        for i in range(H):
            for j in range(W):
                val = img[b, i, j]
                if val != 0.0:
                    x, y = _pixel_xy(i, j, H, W, ps)
                    t, w = _fan_pixel_coords(x, y, c, s, mode, rs, rsd, inv_du, cu)
                    if t > -1.0 and t < N:
                        i0 = int(t + 1.0)  # floor(t) + 1
                        f = t - (i0 - 1)
                        a = wv * w * val
                        acc[i0] += (1.0 - f) * a
                        acc[i0 + 1] += f * a
        for n in range(N):
            out[b, v, n] = acc[n + 1]
