"""Numba CPU kernels of the cone-beam Joseph projector, its exact adjoint and FDK.

Geometry is ASTRA-style per-view vectors (source, detector pixel (0, 0), column and row
steps, mm). The adjoint cuts the volume into slabs of whole slices, one per worker; the
ray-driven scatter form is kept as an independent reference. :func:`backproject_fdk` is the
voxel-driven FDK backprojection.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .radon_cpu_common import _jit, _par, chunk_views, rm, row_pixel, row_start, scatter_by_chunks

__all__ = ["forward_cone", "adjoint_cone", "adjoint_cone_scatter", "backproject_fdk"]

_cone_ray = rm.cone_ray
_unravel3 = rm.unravel3
_axis_range = rm.axis_range
_bilinear_scatter_taps = rm.bilinear_scatter_taps
_ray_scatter_3d = rm.ray_scatter_3d
_ray_setup_3d = rm.ray_setup_3d
_ray_sum_3d = rm.ray_sum_3d


@njit(**_par)
def forward_cone(vol, src, det, eu, ev, ps, pz, out):
    """Joseph cone-beam projection with ASTRA-style per-view vectors.

    vol : (B, D, H, W); src, det : (V, 3) source position and the position of detector pixel
    (0, 0) (mm); eu, ev : (V, 3) vectors from one detector column / row to the next (mm);
    ps, pz : in-plane and slice voxel size (mm); out : (B, V, R, C).
    """
    V = out.shape[1]
    R = out.shape[2]
    for k in prange(out.shape[0] * V * R):
        b, v, row = _unravel3(k, V, R)
        for col in range(out.shape[3]):
            ox, oy, oz, dx, dy, dz = _cone_ray(v, row, col, src, det, eu, ev)
            out[b, v, row, col] = _ray_sum_3d(vol, b, ox, oy, oz, dx, dy, dz, ps, pz)


@_jit
def _scatter_view_cone(buf, proj, b, v, src, det, eu, ev, ps, pz):
    for row in range(proj.shape[2]):
        for col in range(proj.shape[3]):
            val = proj[b, v, row, col]
            if val != 0.0:
                ox, oy, oz, dx, dy, dz = _cone_ray(v, row, col, src, det, eu, ev)
                _ray_scatter_3d(buf, b, val, ox, oy, oz, dx, dy, dz, ps, pz)


@njit(**_par)
def _adjoint_cone_chunks(proj, src, det, eu, ev, ps, pz, bufs, n_chunks):
    V = proj.shape[1]
    for c in prange(n_chunks):
        start, stop = chunk_views(proj.shape[0], V, c, n_chunks)
        for k in range(start, stop):
            _scatter_view_cone(bufs[c], proj, k // V, k % V, src, det, eu, ev, ps, pz)


@njit(**_par)
def _adjoint_cone_slabs(proj, src, det, eu, ev, ps, pz, out, bounds):
    _, D, H, W = out.shape
    n_slabs = bounds.shape[0] - 1
    for k in prange(proj.shape[0] * n_slabs):
        b = k // n_slabs
        sl = k - b * n_slabs
        d0 = bounds[sl]
        d1 = bounds[sl + 1]
        out[b, d0:d1] = 0.0
        for v in range(proj.shape[1]):
            for row in range(proj.shape[2]):
                for col in range(proj.shape[3]):
                    val = proj[b, v, row, col]
                    if val == 0.0:
                        continue
                    ox, oy, oz, dx, dy, dz = _cone_ray(v, row, col, src, det, eu, ev)
                    axis, p0, q0, sp, sq, step, m_lo, m_hi = _ray_setup_3d(
                        ox, oy, oz, dx, dy, dz, D, H, W, ps, pz
                    )
                    if axis == 0:
                        # minor axes (row, col); the slice is m, inside the slab by construction
                        a = max(m_lo, d0)
                        e = min(m_hi, d1 - 1)
                        p_lo, p_hi, nq = 0, H, W
                    else:
                        # minor axes (slice, row or col): keep the taps on the slab's slices
                        n_major = W if axis == 2 else H
                        a, e = _axis_range(p0 - d0, sp, d1 - d0, 0.0, 0.0, n_major)
                        a = max(a, m_lo)
                        e = min(e, m_hi)
                        p_lo, p_hi, nq = d0, d1, (H if axis == 2 else W)
                    vs = val * step
                    for m in range(a, e + 1):
                        _bilinear_scatter_taps(
                            out, b, axis, m, p0 + sp * m, q0 + sq * m, p_lo, p_hi, nq, vs
                        )


def adjoint_cone(proj, src, det, eu, ev, ps, pz, out):
    """Exact adjoint of :func:`forward_cone`: ``out (B, D, H, W) = A^T proj (B, V, R, C)``.

    The volume is cut into slabs of whole slices, one per worker (no write conflicts, no
    per-worker volume buffers); every worker walks all rays but visits only the samples whose
    bilinear taps fall in its slab (its part of each ray's major-axis range, in closed form).
    ``out`` is overwritten.
    """
    D = out.shape[1]
    n = max(1, min(numba.get_num_threads(), D))
    bounds = (np.arange(n + 1) * D) // n
    _adjoint_cone_slabs(proj, src, det, eu, ev, ps, pz, out, bounds.astype(np.int64))


def adjoint_cone_scatter(proj, src, det, eu, ev, ps, pz, out):
    """Ray-driven scatter form of :func:`adjoint_cone` (one volume buffer per worker, summed);
    kept as an independent reference for tests."""
    scatter_by_chunks(_adjoint_cone_chunks, proj, out, src, det, eu, ev, ps, pz)


@njit(**_par)
def backproject_fdk(proj, cos_t, sin_t, weights, rs, rsd, du, dv, ps, pz, out):
    """Voxel-driven FDK backprojection of filtered cone-beam projections.

    proj : (B, V, R, C) filtered, cosine-weighted projections; cos_t, sin_t, weights : (V,);
    rs, rsd : source-to-axis and source-to-detector distance (mm); du, dv : detector column
    and row spacing (mm); ps, pz : voxel size in-plane and along z (mm); out : (B, D, H, W).
    Each voxel gets ``sum_v weights[v] (rs / L)^2 proj[b, v, v_bin, u_bin]`` with bilinear
    interpolation (Feldkamp, Davis & Kress, JOSA A 1(6), 1984); same arithmetic as
    :func:`mrct.kernels.ray_math` ``fdk_voxel``, arranged row by row.
    """
    B, D, H, W = out.shape
    _, V, R, C = proj.shape
    cu = (C - 1) * 0.5
    cv = (R - 1) * 0.5
    x0 = -(W - 1) * 0.5 * ps
    for k in prange(B * D * H):
        b, d, i = _unravel3(k, D, H)
        z = (d - (D - 1) * 0.5) * pz
        y = ((H - 1) * 0.5 - i) * ps
        acc = np.zeros(W)
        for v in range(V):
            c = cos_t[v]
            s = sin_t[v]
            wv = weights[v] * rs * rs
            pu0, pr0 = row_start(x0, y, c, s)
            for j in range(W):
                pu, L = row_pixel(pu0, pr0, j, ps, c, s, rs)
                mag = rsd / L
                tu = pu * mag / du + cu
                tv = z * mag / dv + cv
                if tu <= -1.0 or tu >= C or tv <= -1.0 or tv >= R:
                    continue
                u0 = int(tu + 1.0) - 1
                r0 = int(tv + 1.0) - 1
                fu = tu - u0
                fr = tv - r0
                val = 0.0
                if r0 >= 0:
                    if u0 >= 0:
                        val += (1.0 - fr) * (1.0 - fu) * proj[b, v, r0, u0]
                    if u0 + 1 < C:
                        val += (1.0 - fr) * fu * proj[b, v, r0, u0 + 1]
                if r0 + 1 < R:
                    if u0 >= 0:
                        val += fr * (1.0 - fu) * proj[b, v, r0 + 1, u0]
                    if u0 + 1 < C:
                        val += fr * fu * proj[b, v, r0 + 1, u0 + 1]
                acc[j] += wv / (L * L) * val
        for j in range(W):
            out[b, d, i, j] = acc[j]
