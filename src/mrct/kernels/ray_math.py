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


def build(jit, add2, add3):
    """Compile the shared functions with ``jit`` (e.g. ``numba.njit`` or a CUDA device jit).

    ``add2(buf, b, i, j, v)`` and ``add3(buf, b, d, i, j, v)`` are the back end's compiled
    "accumulate v into buf[...]" (plain ``+=`` on the CPU, where each worker owns its buffer;
    ``cuda.atomic.add`` on the GPU). Returns a namespace with one compiled function per name
    below. The functions call each other through the closure, so every back end gets its own
    consistent set.
    """

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
    def ray_setup_2d(ox, oy, dx, dy, H, W, ps):
        """Index-space description of the ray ``(ox, oy) + l (dx, dy)`` (mm, any |d| > 0).

        Returns ``(x_major, p0, slope, step, m_lo, m_hi)``: whether columns are the major axis,
        the minor coordinate at major index 0, its change per major step, the ray length per step
        (mm) and the range of major indices that can touch the image.
        """
        norm = math.sqrt(dx * dx + dy * dy)
        ux = dx / norm
        uy = dy / norm
        c0 = ox / ps + (W - 1) * 0.5
        r0 = (H - 1) * 0.5 - oy / ps
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
        H = img.shape[1]
        W = img.shape[2]
        x_major, p0, slope, step, m_lo, m_hi = ray_setup_2d(ox, oy, dx, dy, H, W, ps)
        acc = 0.0
        if x_major:
            for j in range(m_lo, m_hi + 1):
                r = p0 + slope * j
                i0 = int(math.floor(r))
                f = r - i0
                if i0 >= 0 and i0 < H:
                    acc += (1.0 - f) * img[b, i0, j]
                if i0 + 1 >= 0 and i0 + 1 < H:
                    acc += f * img[b, i0 + 1, j]
        else:
            for i in range(m_lo, m_hi + 1):
                c = p0 + slope * i
                j0 = int(math.floor(c))
                f = c - j0
                if j0 >= 0 and j0 < W:
                    acc += (1.0 - f) * img[b, i, j0]
                if j0 + 1 >= 0 and j0 + 1 < W:
                    acc += f * img[b, i, j0 + 1]
        return acc * step

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
        if acl >= arw and acl >= asl:
            # march over columns; minor axes (slice, row)
            sp = dsl / dcl
            sq = drw / dcl
            p0 = s0 - c0 * sp
            q0 = r0 - c0 * sq
            step = 1.0 / acl
            a1, b1 = axis_range(p0, sp, D, 0.0, 0.0, W)
            a2, b2 = axis_range(q0, sq, H, 0.0, 0.0, W)
            return 2, p0, q0, sp, sq, step, max(a1, a2), min(b1, b2)
        if arw >= asl:
            # march over rows; minor axes (slice, col)
            sp = dsl / drw
            sq = dcl / drw
            p0 = s0 - r0 * sp
            q0 = c0 - r0 * sq
            step = 1.0 / arw
            a1, b1 = axis_range(p0, sp, D, 0.0, 0.0, H)
            a2, b2 = axis_range(q0, sq, W, 0.0, 0.0, H)
            return 1, p0, q0, sp, sq, step, max(a1, a2), min(b1, b2)
        # march over slices; minor axes (row, col)
        sp = drw / dsl
        sq = dcl / dsl
        p0 = r0 - s0 * sp
        q0 = c0 - s0 * sq
        step = 1.0 / asl
        a1, b1 = axis_range(p0, sp, H, 0.0, 0.0, D)
        a2, b2 = axis_range(q0, sq, W, 0.0, 0.0, D)
        return 0, p0, q0, sp, sq, step, max(a1, a2), min(b1, b2)

    @jit
    def bilinear_gather(vol, b, axis, m, p, q):
        """Bilinear sample of ``vol[b]`` on the plane ``axis = m`` at minor coordinates (p, q)."""
        D = vol.shape[1]
        H = vol.shape[2]
        W = vol.shape[3]
        p_i = int(math.floor(p))
        q_i = int(math.floor(q))
        fp = p - p_i
        fq = q - q_i
        if axis == 2:
            np_, nq = D, H
        elif axis == 1:
            np_, nq = D, W
        else:
            np_, nq = H, W
        acc = 0.0
        for dp in range(2):
            pp = p_i + dp
            if pp < 0 or pp >= np_:
                continue
            wp = fp if dp == 1 else 1.0 - fp
            for dq in range(2):
                qq = q_i + dq
                if qq < 0 or qq >= nq:
                    continue
                wq = fq if dq == 1 else 1.0 - fq
                if axis == 2:
                    v = vol[b, pp, qq, m]
                elif axis == 1:
                    v = vol[b, pp, m, qq]
                else:
                    v = vol[b, m, pp, qq]
                acc += wp * wq * v
        return acc

    @jit
    def ray_sum_3d(vol, b, ox, oy, oz, dx, dy, dz, ps, pz):
        """Joseph line integral of ``vol[b]`` (shape (B, D, H, W)) along one 3D ray."""
        D = vol.shape[1]
        H = vol.shape[2]
        W = vol.shape[3]
        axis, p0, q0, sp, sq, step, m_lo, m_hi = ray_setup_3d(
            ox, oy, oz, dx, dy, dz, D, H, W, ps, pz
        )
        acc = 0.0
        for m in range(m_lo, m_hi + 1):
            acc += bilinear_gather(vol, b, axis, m, p0 + sp * m, q0 + sq * m)
        return acc * step

    @jit
    def linear_sample(row, t):
        """Linear interpolation of a 1D array at fractional index ``t`` (zero outside)."""
        n = row.shape[0]
        i0 = int(math.floor(t))
        f = t - i0
        acc = 0.0
        if i0 >= 0 and i0 < n:
            acc += (1.0 - f) * row[i0]
        if i0 + 1 >= 0 and i0 + 1 < n:
            acc += f * row[i0 + 1]
        return acc

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
    def ray_scatter_2d(buf, b, val, ox, oy, dx, dy, ps):
        """Adjoint of :func:`ray_sum_2d`: add ``val`` times the ray's weights into ``buf[b]``."""
        H = buf.shape[1]
        W = buf.shape[2]
        x_major, p0, slope, step, m_lo, m_hi = ray_setup_2d(ox, oy, dx, dy, H, W, ps)
        val = val * step
        if x_major:
            for j in range(m_lo, m_hi + 1):
                r = p0 + slope * j
                i0 = int(math.floor(r))
                f = r - i0
                if i0 >= 0 and i0 < H:
                    add2(buf, b, i0, j, (1.0 - f) * val)
                if i0 + 1 >= 0 and i0 + 1 < H:
                    add2(buf, b, i0 + 1, j, f * val)
        else:
            for i in range(m_lo, m_hi + 1):
                c = p0 + slope * i
                j0 = int(math.floor(c))
                f = c - j0
                if j0 >= 0 and j0 < W:
                    add2(buf, b, i, j0, (1.0 - f) * val)
                if j0 + 1 >= 0 and j0 + 1 < W:
                    add2(buf, b, i, j0 + 1, f * val)

    @jit
    def bilinear_scatter(buf, b, axis, m, p, q, val):
        """Adjoint of :func:`bilinear_gather`."""
        D = buf.shape[1]
        H = buf.shape[2]
        W = buf.shape[3]
        p_i = int(math.floor(p))
        q_i = int(math.floor(q))
        fp = p - p_i
        fq = q - q_i
        if axis == 2:
            np_, nq = D, H
        elif axis == 1:
            np_, nq = D, W
        else:
            np_, nq = H, W
        for dp in range(2):
            pp = p_i + dp
            if pp < 0 or pp >= np_:
                continue
            wp = fp if dp == 1 else 1.0 - fp
            for dq in range(2):
                qq = q_i + dq
                if qq < 0 or qq >= nq:
                    continue
                wq = fq if dq == 1 else 1.0 - fq
                if axis == 2:
                    add3(buf, b, pp, qq, m, wp * wq * val)
                elif axis == 1:
                    add3(buf, b, pp, m, qq, wp * wq * val)
                else:
                    add3(buf, b, m, pp, qq, wp * wq * val)

    @jit
    def ray_scatter_3d(buf, b, val, ox, oy, oz, dx, dy, dz, ps, pz):
        """Adjoint of :func:`ray_sum_3d`."""
        D = buf.shape[1]
        H = buf.shape[2]
        W = buf.shape[3]
        axis, p0, q0, sp, sq, step, m_lo, m_hi = ray_setup_3d(
            ox, oy, oz, dx, dy, dz, D, H, W, ps, pz
        )
        val = val * step
        for m in range(m_lo, m_hi + 1):
            bilinear_scatter(buf, b, axis, m, p0 + sp * m, q0 + sq * m, val)

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
                val += (1.0 - fr) * linear_sample(proj[b, v, r0], tu)
            if r0 + 1 >= 0 and r0 + 1 < R:
                val += fr * linear_sample(proj[b, v, r0 + 1], tu)
            acc += weights[v] * (rs * rs) / (L * L) * val
        return acc

    @jit
    def fbp_pixel_scatter(buf, b, x, y, val, cos_t, sin_t, weights, mode, rs, rsd, inv_du, cu):
        """Transpose of :func:`fbp_pixel`: add ``val`` times the pixel's interpolation weights
        into the projections ``buf[b]`` (V, N)."""
        V = buf.shape[1]
        n = buf.shape[2]
        for v in range(V):
            t, w = fan_pixel_coords(x, y, cos_t[v], sin_t[v], mode, rs, rsd, inv_du, cu)
            i0 = int(math.floor(t))
            f = t - i0
            a = weights[v] * w * val
            if i0 >= 0 and i0 < n:
                add2(buf, b, v, i0, (1.0 - f) * a)
            if i0 + 1 >= 0 and i0 + 1 < n:
                add2(buf, b, v, i0 + 1, f * a)

    @jit
    def fbp_pixel(sino, b, x, y, cos_t, sin_t, weights, mode, rs, rsd, inv_du, cu):
        """FBP backprojection sum for one pixel at (x, y) mm over all views."""
        V = sino.shape[1]
        acc = 0.0
        for v in range(V):
            t, w = fan_pixel_coords(x, y, cos_t[v], sin_t[v], mode, rs, rsd, inv_du, cu)
            acc += weights[v] * w * linear_sample(sino[b, v], t)
        return acc

    return SimpleNamespace(
        axis_range=axis_range,
        ray_setup_2d=ray_setup_2d,
        ray_sum_2d=ray_sum_2d,
        ray_setup_3d=ray_setup_3d,
        bilinear_gather=bilinear_gather,
        ray_sum_3d=ray_sum_3d,
        linear_sample=linear_sample,
        fan_pixel_coords=fan_pixel_coords,
        ray_scatter_2d=ray_scatter_2d,
        bilinear_scatter=bilinear_scatter,
        ray_scatter_3d=ray_scatter_3d,
        cone_ray=cone_ray,
        fdk_voxel=fdk_voxel,
        fbp_pixel=fbp_pixel,
        fbp_pixel_scatter=fbp_pixel_scatter,
    )
