"""Per-ray and per-pixel arithmetic shared by the CPU and CUDA projector kernels.

These are plain Python functions on scalars and arrays. :mod:`.radon_cpu` compiles them with
``numba.njit`` and :mod:`.radon_cuda` with ``numba.cuda.jit(device=True)``, so both back ends
execute exactly the same arithmetic.

Index space: a 2D image ``(H, W)`` with pixel size ``ps`` has pixel centres at integer
``(row, col)``; world ``(x, y)`` maps to ``col = x / ps + (W - 1) / 2`` and
``row = (H - 1) / 2 - y / ps`` (docs/conventions.md). Volumes add ``sl = z / ps_z + (D-1)/2``.

Projection model: Joseph's method (P. M. Joseph, "An improved algorithm for reprojecting rays
through pixel images", IEEE TMI 1(3), 1982). A ray is sampled once per column (row, slice) of
its major axis, the image is interpolated linearly (bilinearly in 3D) between the two (four)
nearest pixel centres with zero outside the grid, and each sample is weighted by the ray
length per step, ``ps / |cos|``. The adjoint scatters with the same weights.

Developers: the CPU kernels are cached on disk by Numba (``cache=True``), and Numba only
watches the file that defines a cached kernel. After editing this file, remove
``src/mrct/kernels/__pycache__`` (``make clean-cache``) so the kernels are recompiled.
"""

from __future__ import annotations

import math
from types import SimpleNamespace


def unravel3_index(k, n1, n2):
    """``(a, i, j)`` with ``k = (a n1 + i) n2 + j`` (a flat index of an (n0, n1, n2) array).

    Plain Python: each builder (here and :mod:`mrct.kernels.drr_math`) compiles it for its
    backend."""
    a = k // (n1 * n2)
    r = k - a * n1 * n2
    i = r // n2
    return a, i, r - i * n2


def build(jit, add2, add3, real=float):
    """Compile the shared functions with ``jit`` (e.g. ``numba.njit`` or a CUDA device jit).

    ``add2(buf, b, i, j, v)`` and ``add3(buf, b, d, i, j, v)`` are the back end's compiled
    "accumulate v into buf[...]" (plain ``+=`` on the CPU, where each worker owns its buffer;
    ``cuda.atomic.add`` on the GPU). ``real`` converts the major index of a 2D ray walk and the
    interpolation constants to the arithmetic's float type (``float``: float64; the CUDA table
    kernels pass ``numba.float32`` for float32 images). Returns a namespace with one compiled
    function per name below. The functions call each other through the closure, so every back
    end gets its own consistent set.

    Gather (projection) and scatter (adjoint) share one walk per idea, written once below and
    compiled twice: with a "tap" that reads ``w * arr[...]`` and with one that adds ``w * val``
    into ``arr[...]`` (and returns 0), so a forward and its adjoint visit the same samples with
    the same weights by construction.
    """

    # -- taps: visit one interpolation node with weight w ----------------------------------------
    # A "line" names a row of nodes: (x_major, m) is column m (x-major) or row m of an image,
    # (axis, m, p) is the row of nodes at minor index p on the plane ``axis = m`` of a volume.
    @jit
    def gather2(arr, b, line, q, w, val):
        """``w * arr[b, q, m]`` (x-major line m) or ``w * arr[b, m, q]``."""
        x_major, m = line
        if x_major:
            return w * arr[b, q, m]
        return w * arr[b, m, q]

    @jit
    def scatter2(arr, b, line, q, w, val):
        """Adjoint of :func:`gather2`: add ``w * val`` to the same element; returns 0."""
        x_major, m = line
        if x_major:
            add2(arr, b, q, m, w * val)
        else:
            add2(arr, b, m, q, w * val)
        return 0.0

    @jit
    def gather3(arr, b, line, q, w, val):
        """``w * vol[b, ...]`` at minor nodes (p, q) of the plane ``axis = m``."""
        axis, m, p = line
        if axis == 2:
            v = arr[b, p, q, m]
        elif axis == 1:
            v = arr[b, p, m, q]
        else:
            v = arr[b, m, p, q]
        return w * v

    @jit
    def scatter3(arr, b, line, q, w, val):
        """Adjoint of :func:`gather3`; returns 0."""
        axis, m, p = line
        if axis == 2:
            add3(arr, b, p, q, m, w * val)
        elif axis == 1:
            add3(arr, b, p, m, q, w * val)
        else:
            add3(arr, b, m, p, q, w * val)
        return 0.0

    # -- walks, each compiled once per tap -------------------------------------------------------
    def make_lerp(tap):
        @jit
        def lerp_at(arr, b, line, q0, f, n, s, acc, val):
            """Linear interpolation between nodes ``q0`` and ``q0 + 1`` (fraction ``f``) of
            ``line`` (nodes ``0 <= q < n``, zero outside), weights scaled by ``s``: ``acc``
            plus the taps."""
            if q0 >= 0 and q0 < n:
                acc += tap(arr, b, line, q0, s * (real(1.0) - f), val)
            if q0 + 1 >= 0 and q0 + 1 < n:
                acc += tap(arr, b, line, q0 + 1, s * f, val)
            return acc

        @jit
        def lerp(arr, b, line, q, n, s, acc, val):
            """:func:`lerp_at` at fractional index ``q``."""
            q0 = int(math.floor(q))
            return lerp_at(arr, b, line, q0, q - real(q0), n, s, acc, val)

        return lerp, lerp_at

    def make_walk_2d(lerp):
        @jit
        def walk(arr, b, x_major, p0, slope, m_lo, m_hi, acc, val):
            """Joseph samples ``m_lo .. m_hi`` of a 2D ray (``p0, slope`` as returned by
            :func:`ray_setup_2d`) in ``arr[b]`` (shape (B, H, W)), added to ``acc``."""
            one = real(1.0)
            if x_major:
                n = arr.shape[1]
                for m in range(m_lo, m_hi + 1):
                    acc = lerp(arr, b, (True, m), p0 + slope * real(m), n, one, acc, val)
            else:
                n = arr.shape[2]
                for m in range(m_lo, m_hi + 1):
                    acc = lerp(arr, b, (False, m), p0 + slope * real(m), n, one, acc, val)
            return acc

        return walk

    def make_bilinear(lerp_at):
        @jit
        def bilinear(arr, b, axis, m, p, q, p_lo, p_hi, nq, val):
            """Bilinear taps of the plane ``axis = m`` at minor coordinates (p, q): linear in
            p over nodes ``p_lo <= p < p_hi`` of linear interpolations in q (``0 <= q < nq``)."""
            p0 = int(math.floor(p))
            q0 = int(math.floor(q))
            fp = p - p0
            fq = q - q0
            acc = 0.0
            if p0 >= p_lo and p0 < p_hi:
                acc = lerp_at(arr, b, (axis, m, p0), q0, fq, nq, 1.0 - fp, acc, val)
            if p0 + 1 >= p_lo and p0 + 1 < p_hi:
                acc = lerp_at(arr, b, (axis, m, p0 + 1), q0, fq, nq, fp, acc, val)
            return acc

        return bilinear

    gather_lerp = make_lerp(gather2)[0]
    walk_sum_2d = make_walk_2d(gather_lerp)
    lerp_scatter = make_lerp(scatter2)[0]
    walk_scatter_2d = make_walk_2d(lerp_scatter)
    bilinear_taps = make_bilinear(make_lerp(gather3)[1])
    bilinear_scatter_taps = make_bilinear(make_lerp(scatter3)[1])

    @jit
    def lerp_gather(arr, b, m, q, n):
        """Linear interpolation of ``arr[b, m, :]`` (length ``n``) at ``q``, zero outside."""
        return gather_lerp(arr, b, (False, m), q, n, real(1.0), 0.0, 0.0)

    # -- geometry --------------------------------------------------------------------------------
    @jit
    def axis_range(p0, slope, n, lo_off, hi_off, n_major):
        """Major-axis index range [a, b] where ``p0 + slope * m`` lies in (lo_off - 1, n + hi_off).

        ``p0`` is the minor coordinate at major index 0. Returns a possibly empty range
        (``a > b``).
        """
        lo = -1.0 + lo_off
        hi = n + hi_off
        if slope == 0.0:
            if p0 > lo and p0 < hi:
                return 0, n_major - 1
            return 1, 0
        m1 = (lo - p0) / slope
        m2 = (hi - p0) / slope
        if m1 > m2:
            m1, m2 = m2, m1
        # a near-zero slope sends m1, m2 far beyond int64: clamp before converting
        m1 = min(max(m1, -1.0), n_major + 0.0)
        m2 = min(max(m2, -1.0), n_major + 0.0)
        a = int(math.floor(m1))
        b = int(math.ceil(m2))
        if a < 0:
            a = 0
        if b > n_major - 1:
            b = n_major - 1
        return a, b

    @jit
    def ray_index_2d(ox, oy, dx, dy, H, W, ps):
        """Unit direction ``(ux, uy)`` and the origin's index coordinates ``(c0, r0)``."""
        norm = math.sqrt(dx * dx + dy * dy)
        return dx / norm, dy / norm, ox / ps + (W - 1) * 0.5, (H - 1) * 0.5 - oy / ps

    @jit
    def ray_setup_2d(ox, oy, dx, dy, H, W, ps):
        """Index-space description of the ray ``(ox, oy) + l (dx, dy)`` (mm, any |d| > 0).

        Returns ``(x_major, p0, slope, step, m_lo, m_hi)``: whether columns are the major axis,
        the minor coordinate at major index 0, its change per major step, the ray length per step
        (mm) and the range of major indices that can touch the image.
        """
        ux, uy, c0, r0 = ray_index_2d(ox, oy, dx, dy, H, W, ps)
        # direction in index space: dcol = ux, drow = -uy
        if abs(ux) >= abs(uy):
            slope = -uy / ux
            p0 = r0 - c0 * slope  # row at col 0
            step = ps / abs(ux)
            a, b = axis_range(p0, slope, H, 0.0, 0.0, W)
            return True, p0, slope, step, a, b
        slope = -ux / uy  # dcol per drow: drow = -uy, dcol = ux -> dcol/drow = -ux/uy
        p0 = c0 - r0 * slope  # col at row 0
        step = ps / abs(uy)
        a, b = axis_range(p0, slope, W, 0.0, 0.0, H)
        return False, p0, slope, step, a, b

    @jit
    def ray_sum_2d(img, b, ox, oy, dx, dy, ps):
        """Joseph line integral of ``img[b]`` (shape (B, H, W)) along one ray."""
        x_major, p0, slope, step, m_lo, m_hi = ray_setup_2d(
            ox, oy, dx, dy, img.shape[1], img.shape[2], ps
        )
        return walk_sum_2d(img, b, x_major, p0, slope, m_lo, m_hi, 0.0, 0.0) * step

    @jit
    def ray_scatter_2d(buf, b, val, ox, oy, dx, dy, ps):
        """Adjoint of :func:`ray_sum_2d`: add ``val`` times the ray's weights into ``buf[b]``."""
        x_major, p0, slope, step, m_lo, m_hi = ray_setup_2d(
            ox, oy, dx, dy, buf.shape[1], buf.shape[2], ps
        )
        walk_scatter_2d(buf, b, x_major, p0, slope, m_lo, m_hi, 0.0, val * step)

    @jit
    def march(o_m, d_m, o_p, d_p, o_q, d_q, n_p, n_q, n_m):
        """A 3D ray marched along the axis with index-space origin ``o_m`` and direction
        ``d_m``; ``(o_p, d_p)``, ``(o_q, d_q)`` of the minor axes (sizes ``n_p, n_q``). Returns
        ``(p0, q0, sp, sq, step, m_lo, m_hi)`` as in :func:`ray_setup_3d`."""
        sp = d_p / d_m
        sq = d_q / d_m
        p0 = o_p - o_m * sp
        q0 = o_q - o_m * sq
        a1, b1 = axis_range(p0, sp, n_p, 0.0, 0.0, n_m)
        a2, b2 = axis_range(q0, sq, n_q, 0.0, 0.0, n_m)
        return p0, q0, sp, sq, 1.0 / abs(d_m), max(a1, a2), min(b1, b2)

    @jit
    def ray_setup_3d(ox, oy, oz, dx, dy, dz, D, H, W, ps, pz):
        """Index-space description of a 3D ray in a (D, H, W) volume with voxel (pz, ps, ps) mm.

        Returns ``(axis, p0, q0, sp, sq, step, m_lo, m_hi)``: the major axis (0 = slice/z,
        1 = row/y, 2 = col/x), the two minor coordinates at major index 0 (in the order of the
        remaining axes (slice, row, col) minus the major one), their slopes, the length per step
        (mm) and the major index range.
        """
        # index-space direction (per mm of travel): dsl = dz/pz, drow = -dy/ps, dcol = dx/ps
        norm = math.sqrt(dx * dx + dy * dy + dz * dz)
        dsl = dz / norm / pz
        drw = -dy / norm / ps
        dcl = dx / norm / ps
        s0 = oz / pz + (D - 1) * 0.5
        r0 = (H - 1) * 0.5 - oy / ps
        c0 = ox / ps + (W - 1) * 0.5
        asl = abs(dsl)
        arw = abs(drw)
        acl = abs(dcl)
        if acl >= arw and acl >= asl:  # march over columns; minor axes (slice, row)
            p0, q0, sp, sq, step, a, b = march(c0, dcl, s0, dsl, r0, drw, D, H, W)
            return 2, p0, q0, sp, sq, step, a, b
        if arw >= asl:  # march over rows; minor axes (slice, col)
            p0, q0, sp, sq, step, a, b = march(r0, drw, s0, dsl, c0, dcl, D, W, H)
            return 1, p0, q0, sp, sq, step, a, b
        # march over slices; minor axes (row, col)
        p0, q0, sp, sq, step, a, b = march(s0, dsl, r0, drw, c0, dcl, H, W, D)
        return 0, p0, q0, sp, sq, step, a, b

    @jit
    def plane_dims(axis, D, H, W):
        """Sizes of the two minor axes of a plane ``axis = m`` of a (D, H, W) volume."""
        if axis == 2:
            return D, H
        if axis == 1:
            return D, W
        return H, W

    @jit
    def bilinear_gather(vol, b, axis, m, p, q):
        """Bilinear sample of ``vol[b]`` on the plane ``axis = m`` at minor coordinates (p, q)."""
        np_, nq = plane_dims(axis, vol.shape[1], vol.shape[2], vol.shape[3])
        return bilinear_taps(vol, b, axis, m, p, q, 0, np_, nq, 0.0)

    @jit
    def bilinear_scatter(buf, b, axis, m, p, q, val):
        """Adjoint of :func:`bilinear_gather`."""
        np_, nq = plane_dims(axis, buf.shape[1], buf.shape[2], buf.shape[3])
        bilinear_scatter_taps(buf, b, axis, m, p, q, 0, np_, nq, val)

    def make_ray_3d(bilinear):
        @jit
        def ray_3d(arr, b, val, ox, oy, oz, dx, dy, dz, ps, pz):
            """Joseph walk of a 3D ray through ``arr[b]`` (shape (B, D, H, W)): the sum of its
            bilinear taps times the step (gather), or ``val`` times them added in (scatter)."""
            D = arr.shape[1]
            H = arr.shape[2]
            W = arr.shape[3]
            axis, p0, q0, sp, sq, step, m_lo, m_hi = ray_setup_3d(
                ox, oy, oz, dx, dy, dz, D, H, W, ps, pz
            )
            np_, nq = plane_dims(axis, D, H, W)
            vs = val * step
            acc = 0.0
            # one loop per major axis, so that the taps' choice of axis is made once per ray
            if axis == 2:
                for m in range(m_lo, m_hi + 1):
                    acc += bilinear(arr, b, 2, m, p0 + sp * m, q0 + sq * m, 0, np_, nq, vs)
            elif axis == 1:
                for m in range(m_lo, m_hi + 1):
                    acc += bilinear(arr, b, 1, m, p0 + sp * m, q0 + sq * m, 0, np_, nq, vs)
            else:
                for m in range(m_lo, m_hi + 1):
                    acc += bilinear(arr, b, 0, m, p0 + sp * m, q0 + sq * m, 0, np_, nq, vs)
            return acc * step

        return ray_3d

    ray_3d_sum = make_ray_3d(bilinear_taps)
    ray_3d_scatter = make_ray_3d(bilinear_scatter_taps)

    @jit
    def ray_sum_3d(vol, b, ox, oy, oz, dx, dy, dz, ps, pz):
        """Joseph line integral of ``vol[b]`` (shape (B, D, H, W)) along one 3D ray."""
        return ray_3d_sum(vol, b, 0.0, ox, oy, oz, dx, dy, dz, ps, pz)

    @jit
    def ray_scatter_3d(buf, b, val, ox, oy, oz, dx, dy, dz, ps, pz):
        """Adjoint of :func:`ray_sum_3d`."""
        ray_3d_scatter(buf, b, val, ox, oy, oz, dx, dy, dz, ps, pz)

    # -- pixel-driven backprojection -------------------------------------------------------------
    unravel3 = jit(unravel3_index)

    @jit
    def pixel_xy(i, j, H, W, ps):
        """World ``(x, y)`` (mm) of the centre of pixel (row i, col j) of an (H, W) image."""
        return (j - (W - 1) * 0.5) * ps, ((H - 1) * 0.5 - i) * ps

    @jit
    def fan_pixel_coords(x, y, c, s, mode, rs, rsd, inv_du, cu):
        """Detector bin (fractional) and backprojection weight of point (x, y) at view (c, s).

        ``c, s = cos(theta), sin(theta)``; ``mode`` 0 = parallel, 1 = flat fan, 2 = arc fan;
        ``rs`` source-to-axis and ``rsd`` source-to-detector distance (mm); ``inv_du`` inverse
        detector spacing; ``cu`` = (n_det - 1) / 2. The weight is 1 for parallel beam, (rs/L)^2
        for flat fan and 1/L^2 for arc fan (Kak & Slaney, ch. 3.4), where L is the distance from
        the source measured along the central ray (flat) or to the point (arc).
        """
        pu = x * c + y * s  # p . e_u
        if mode == 0:
            return pu * inv_du + cu, 1.0
        pr = -x * s + y * c  # p . e_r
        L = rs + pr
        if mode == 1:
            t = rsd * pu / L
            return t * inv_du + cu, (rs * rs) / (L * L)
        gamma = math.atan2(pu, L)
        return gamma * rsd * inv_du + cu, 1.0 / (pu * pu + L * L)

    @jit
    def fbp_pixel(sino, b, x, y, cos_t, sin_t, weights, mode, rs, rsd, inv_du, cu):
        """FBP backprojection sum for one pixel at (x, y) mm over all views."""
        n = sino.shape[2]
        acc = 0.0
        for v in range(sino.shape[1]):
            t, w = fan_pixel_coords(x, y, cos_t[v], sin_t[v], mode, rs, rsd, inv_du, cu)
            acc += weights[v] * w * lerp_gather(sino, b, v, t, n)
        return acc

    @jit
    def fbp_pixel_scatter(buf, b, x, y, val, cos_t, sin_t, weights, mode, rs, rsd, inv_du, cu):
        """Transpose of :func:`fbp_pixel`: add ``val`` times the pixel's interpolation weights
        into the projections ``buf[b]`` (V, N)."""
        n = buf.shape[2]
        for v in range(buf.shape[1]):
            t, w = fan_pixel_coords(x, y, cos_t[v], sin_t[v], mode, rs, rsd, inv_du, cu)
            lerp_scatter(buf, b, (False, v), t, n, 1.0, 0.0, weights[v] * w * val)

    @jit
    def cone_ray(v, row, col, src, det, eu, ev):
        """Source and direction of the ray through detector pixel (row, col) of view v."""
        px = det[v, 0] + col * eu[v, 0] + row * ev[v, 0]
        py = det[v, 1] + col * eu[v, 1] + row * ev[v, 1]
        pz = det[v, 2] + col * eu[v, 2] + row * ev[v, 2]
        return src[v, 0], src[v, 1], src[v, 2], px - src[v, 0], py - src[v, 1], pz - src[v, 2]

    @jit
    def fdk_voxel(proj, b, x, y, z, cos_t, sin_t, weights, rs, rsd, du, dv):
        """FDK backprojection sum for one voxel at (x, y, z) mm over all views."""
        V = proj.shape[1]
        R = proj.shape[2]
        C = proj.shape[3]
        pb = proj[b]
        cu = (C - 1) * 0.5
        cv = (R - 1) * 0.5
        acc = 0.0
        for v in range(V):
            c = cos_t[v]
            s = sin_t[v]
            pu = x * c + y * s
            L = rs + (-x * s + y * c)
            mag = rsd / L
            tu = pu * mag / du + cu
            tv = z * mag / dv + cv
            r0 = int(math.floor(tv))
            fr = tv - r0
            val = 0.0
            if r0 >= 0 and r0 < R:
                val += (1.0 - fr) * lerp_gather(pb, v, r0, tu, C)
            if r0 + 1 >= 0 and r0 + 1 < R:
                val += fr * lerp_gather(pb, v, r0 + 1, tu, C)
            acc += weights[v] * (rs * rs) / (L * L) * val
        return acc

    return SimpleNamespace(
        axis_range=axis_range,
        ray_index_2d=ray_index_2d,
        ray_setup_2d=ray_setup_2d,
        walk_sum_2d=walk_sum_2d,
        walk_scatter_2d=walk_scatter_2d,
        ray_sum_2d=ray_sum_2d,
        ray_scatter_2d=ray_scatter_2d,
        ray_setup_3d=ray_setup_3d,
        plane_dims=plane_dims,
        bilinear_gather=bilinear_gather,
        bilinear_scatter=bilinear_scatter,
        bilinear_scatter_taps=bilinear_scatter_taps,
        ray_sum_3d=ray_sum_3d,
        ray_scatter_3d=ray_scatter_3d,
        lerp_gather=lerp_gather,
        lerp_scatter=lerp_scatter,
        unravel3=unravel3,
        pixel_xy=pixel_xy,
        fan_pixel_coords=fan_pixel_coords,
        fbp_pixel=fbp_pixel,
        fbp_pixel_scatter=fbp_pixel_scatter,
        cone_ray=cone_ray,
        fdk_voxel=fdk_voxel,
    )
