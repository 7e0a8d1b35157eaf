"""Per-ray arithmetic of the DRR renderers, shared by the CPU and CUDA kernels.

:mod:`.drr_cpu` compiles these functions with ``numba.njit`` and :mod:`.drr_cuda` with
``numba.cuda.jit(device=True)``, so both back ends run the same arithmetic.

Index space. A volume ``(D, H, W)`` is addressed by continuous indices ``(k, i, j)``; voxel
``[k, i, j]`` is the cube ``[k - 1/2, k + 1/2] x [i - 1/2, i + 1/2] x [j - 1/2, j + 1/2]``
centred on its integer index. The caller maps world millimetres to index space with the
inverse of the volume's affine (any affine: anisotropic, permuted or oblique voxels), so a
ray is ``o + t d`` (index units) for ``t`` in ``[0, 1]`` from the source (``t = 0``) to the
detector pixel (``t = 1``), and ``L`` is its length in mm: a step ``dt`` covers ``L dt`` mm.

Renderers.

* **Siddon** (R. L. Siddon, "Fast calculation of the exact radiological path for a
  three-dimensional CT array", Med. Phys. 12(2), 1985; incremental traversal of F. Jacobs et
  al., "A fast algorithm to calculate the exact radiological path through a pixel or voxel
  space", J. Comput. Inf. Technol. 6(1), 1998): the exact length of the ray inside each voxel
  times the voxel value (a piecewise-constant volume).
* **Trilinear** ray marching: samples at the fixed arc lengths ``l_m = m * step`` mm from the
  source (every ``m`` whose sample lies where the interpolant can be non-zero), trilinear
  interpolation between voxel centres with zero outside the grid, rectangle rule
  ``step * sum_m f(l_m)``. Anchoring the samples at the source makes the result a continuous,
  piecewise-smooth function of the pose, and the pure-torch renderer in
  :mod:`mrct.physics.drr` reproduces it exactly.

The adjoints (``*_scatter``) add ``val`` times the same weights into a volume buffer, so they
are the transpose of the forward maps. ``siddon_labels`` accumulates the Siddon segment lengths
per label channel (projected thickness of label maps).

Developers: Numba caches the CPU kernels on disk and only watches the file that defines a
kernel; after editing this file remove ``src/mrct/kernels/__pycache__`` (``make clean-cache``).
"""

from __future__ import annotations

import math
from types import SimpleNamespace


def build(jit, add4):
    """Compile the shared functions with ``jit`` (``numba.njit`` or a CUDA device jit).

    ``add4(buf, b, k, i, j, v)`` accumulates ``v`` into ``buf[b, k, i, j]`` (``+=`` on the CPU,
    where each worker owns its buffer; ``cuda.atomic.add`` on the GPU).
    """

    @jit
    def slab(o, d, lo, hi, t0, t1):
        """Clip the parameter interval [t0, t1] to the slab ``lo < o + t d < hi``."""
        if d == 0.0:
            if o <= lo or o >= hi:
                return 1.0, 0.0
            return t0, t1
        ta = (lo - o) / d
        tb = (hi - o) / d
        if ta > tb:
            ta, tb = tb, ta
        return max(t0, ta), min(t1, tb)

    @jit
    def box_range(o0, o1, o2, d0, d1, d2, m0, m1, m2, pad):
        """Parameter interval of the segment t in [0, 1] inside ``(-pad, n - 1 + pad)^3``."""
        t0, t1 = slab(o0, d0, -pad, m0 - 1.0 + pad, 0.0, 1.0)
        t0, t1 = slab(o1, d1, -pad, m1 - 1.0 + pad, t0, t1)
        t0, t1 = slab(o2, d2, -pad, m2 - 1.0 + pad, t0, t1)
        return t0, t1

    @jit
    def pixel_ray(p, r, c, src, det, eu, ev, lin):
        """Index-space origin, direction and length (mm) of the ray to pixel (r, c) of pose p.

        ``src[p]`` is the source, ``det[p]`` the centre of pixel (0, 0), ``eu[p]`` / ``ev[p]``
        the step from one column / row to the next, all in index space; ``lin`` (3, 3) maps
        index-space vectors to world mm (the affine's linear part).
        """
        o0 = src[p, 0]
        o1 = src[p, 1]
        o2 = src[p, 2]
        d0 = det[p, 0] + c * eu[p, 0] + r * ev[p, 0] - o0
        d1 = det[p, 1] + c * eu[p, 1] + r * ev[p, 1] - o1
        d2 = det[p, 2] + c * eu[p, 2] + r * ev[p, 2] - o2
        w0 = lin[0, 0] * d0 + lin[0, 1] * d1 + lin[0, 2] * d2
        w1 = lin[1, 0] * d0 + lin[1, 1] * d1 + lin[1, 2] * d2
        w2 = lin[2, 0] * d0 + lin[2, 1] * d1 + lin[2, 2] * d2
        return o0, o1, o2, d0, d1, d2, math.sqrt(w0 * w0 + w1 * w1 + w2 * w2)

    @jit
    def axis_start(o, d, t, n):
        """Siddon set-up along one axis: voxel entered at ``t``, next crossing, its increment."""
        pos = o + t * d + 0.5  # voxel boundaries are at integer pos
        if d > 0.0:
            idx = int(math.floor(pos))
            idx = min(max(idx, 0), n - 1)
            return idx, (idx + 0.5 - o) / d, 1.0 / d, 1
        if d < 0.0:
            idx = int(math.ceil(pos)) - 1
            idx = min(max(idx, 0), n - 1)
            return idx, (idx - 0.5 - o) / d, -1.0 / d, -1
        idx = int(math.floor(pos))
        idx = min(max(idx, 0), n - 1)
        return idx, math.inf, math.inf, 0

    @jit
    def siddon_sum(vol, b, o0, o1, o2, d0, d1, d2, L):
        """Exact radiological path of ``vol[b]`` (B, D, H, W) along one ray (Siddon/Jacobs)."""
        D = vol.shape[1]
        H = vol.shape[2]
        W = vol.shape[3]
        t, t1 = box_range(o0, o1, o2, d0, d1, d2, D, H, W, 0.5)
        if t1 <= t:
            return 0.0
        k, tk, dk, sk = axis_start(o0, d0, t, D)
        i, ti, di, si = axis_start(o1, d1, t, H)
        j, tj, dj, sj = axis_start(o2, d2, t, W)
        acc = 0.0
        while True:
            if tk <= ti and tk <= tj:
                tn = tk
                ax = 0
            elif ti <= tj:
                tn = ti
                ax = 1
            else:
                tn = tj
                ax = 2
            if tn >= t1:
                acc += (t1 - t) * vol[b, k, i, j]
                break
            if tn > t:
                acc += (tn - t) * vol[b, k, i, j]
                t = tn
            if ax == 0:
                k += sk
                tk += dk
                if k < 0 or k >= D:
                    break
            elif ax == 1:
                i += si
                ti += di
                if i < 0 or i >= H:
                    break
            else:
                j += sj
                tj += dj
                if j < 0 or j >= W:
                    break
        return acc * L

    @jit
    def siddon_scatter(buf, b, val, o0, o1, o2, d0, d1, d2, L):
        """Adjoint of :func:`siddon_sum`: add ``val`` times the ray's voxel lengths to buf[b]."""
        D = buf.shape[1]
        H = buf.shape[2]
        W = buf.shape[3]
        t, t1 = box_range(o0, o1, o2, d0, d1, d2, D, H, W, 0.5)
        if t1 <= t:
            return
        val = val * L
        k, tk, dk, sk = axis_start(o0, d0, t, D)
        i, ti, di, si = axis_start(o1, d1, t, H)
        j, tj, dj, sj = axis_start(o2, d2, t, W)
        while True:
            if tk <= ti and tk <= tj:
                tn = tk
                ax = 0
            elif ti <= tj:
                tn = ti
                ax = 1
            else:
                tn = tj
                ax = 2
            if tn >= t1:
                add4(buf, b, k, i, j, (t1 - t) * val)
                break
            if tn > t:
                add4(buf, b, k, i, j, (tn - t) * val)
                t = tn
            if ax == 0:
                k += sk
                tk += dk
                if k < 0 or k >= D:
                    break
            elif ax == 1:
                i += si
                ti += di
                if i < 0 or i >= H:
                    break
            else:
                j += sj
                tj += dj
                if j < 0 or j >= W:
                    break

    @jit
    def siddon_labels(lab, lut, out, p, r, c, o0, o1, o2, d0, d1, d2, L):
        """Add the ray's length (mm) inside each label to ``out[p, lut[label], r, c]``.

        ``lab`` (D, H, W) integer label map; ``lut`` maps a label to its output channel (or -1
        to skip it); labels beyond ``lut`` are skipped. ``out`` must be zeroed first.
        """
        D = lab.shape[0]
        H = lab.shape[1]
        W = lab.shape[2]
        n_lut = lut.shape[0]
        t, t1 = box_range(o0, o1, o2, d0, d1, d2, D, H, W, 0.5)
        if t1 <= t:
            return
        k, tk, dk, sk = axis_start(o0, d0, t, D)
        i, ti, di, si = axis_start(o1, d1, t, H)
        j, tj, dj, sj = axis_start(o2, d2, t, W)
        while True:
            if tk <= ti and tk <= tj:
                tn = tk
                ax = 0
            elif ti <= tj:
                tn = ti
                ax = 1
            else:
                tn = tj
                ax = 2
            done = tn >= t1
            if done:
                tn = t1
            if tn > t:
                lv = int(lab[k, i, j])
                if lv >= 0 and lv < n_lut:
                    ch = lut[lv]
                    if ch >= 0:
                        out[p, ch, r, c] += (tn - t) * L
                t = tn
            if done:
                break
            if ax == 0:
                k += sk
                tk += dk
                if k < 0 or k >= D:
                    break
            elif ax == 1:
                i += si
                ti += di
                if i < 0 or i >= H:
                    break
            else:
                j += sj
                tj += dj
                if j < 0 or j >= W:
                    break

    @jit
    def sample_range(o0, o1, o2, d0, d1, d2, D, H, W, L, step):
        """First and last sample index m (arc length m * step from the source) of a ray."""
        t0, t1 = box_range(o0, o1, o2, d0, d1, d2, D, H, W, 1.0)
        if t1 <= t0 or L <= 0.0:
            return 1, 0
        return int(math.ceil(t0 * L / step)), int(math.floor(t1 * L / step))

    @jit
    def trilinear_gather(vol, b, p0, p1, p2):
        """Trilinear interpolation of ``vol[b]`` at index-space point (p0, p1, p2), 0 outside."""
        D = vol.shape[1]
        H = vol.shape[2]
        W = vol.shape[3]
        k0 = int(math.floor(p0))
        i0 = int(math.floor(p1))
        j0 = int(math.floor(p2))
        fk = p0 - k0
        fi = p1 - i0
        fj = p2 - j0
        if k0 >= 0 and k0 + 1 < D and i0 >= 0 and i0 + 1 < H and j0 >= 0 and j0 + 1 < W:
            c00 = vol[b, k0, i0, j0] * (1.0 - fj) + vol[b, k0, i0, j0 + 1] * fj
            c01 = vol[b, k0, i0 + 1, j0] * (1.0 - fj) + vol[b, k0, i0 + 1, j0 + 1] * fj
            c10 = vol[b, k0 + 1, i0, j0] * (1.0 - fj) + vol[b, k0 + 1, i0, j0 + 1] * fj
            c11 = vol[b, k0 + 1, i0 + 1, j0] * (1.0 - fj) + vol[b, k0 + 1, i0 + 1, j0 + 1] * fj
            return (c00 * (1.0 - fi) + c01 * fi) * (1.0 - fk) + (c10 * (1.0 - fi) + c11 * fi) * fk
        acc = 0.0
        for a in range(2):
            kk = k0 + a
            if kk < 0 or kk >= D:
                continue
            wk = fk if a == 1 else 1.0 - fk
            for bb in range(2):
                ii = i0 + bb
                if ii < 0 or ii >= H:
                    continue
                wi = fi if bb == 1 else 1.0 - fi
                for cc in range(2):
                    jj = j0 + cc
                    if jj < 0 or jj >= W:
                        continue
                    wj = fj if cc == 1 else 1.0 - fj
                    acc += wk * wi * wj * vol[b, kk, ii, jj]
        return acc

    @jit
    def trilinear_scatter(buf, b, p0, p1, p2, val):
        """Adjoint of :func:`trilinear_gather`."""
        D = buf.shape[1]
        H = buf.shape[2]
        W = buf.shape[3]
        k0 = int(math.floor(p0))
        i0 = int(math.floor(p1))
        j0 = int(math.floor(p2))
        fk = p0 - k0
        fi = p1 - i0
        fj = p2 - j0
        for a in range(2):
            kk = k0 + a
            if kk < 0 or kk >= D:
                continue
            wk = fk if a == 1 else 1.0 - fk
            for bb in range(2):
                ii = i0 + bb
                if ii < 0 or ii >= H:
                    continue
                wi = fi if bb == 1 else 1.0 - fi
                for cc in range(2):
                    jj = j0 + cc
                    if jj < 0 or jj >= W:
                        continue
                    wj = fj if cc == 1 else 1.0 - fj
                    add4(buf, b, kk, ii, jj, wk * wi * wj * val)

    @jit
    def trilinear_sum(vol, b, o0, o1, o2, d0, d1, d2, L, step):
        """Ray-marched integral ``step * sum_m f(o + (m step / L) d)`` of ``vol[b]``."""
        m_lo, m_hi = sample_range(
            o0, o1, o2, d0, d1, d2, vol.shape[1], vol.shape[2], vol.shape[3], L, step
        )
        dt = step / L
        acc = 0.0
        for m in range(m_lo, m_hi + 1):
            t = m * dt
            acc += trilinear_gather(vol, b, o0 + t * d0, o1 + t * d1, o2 + t * d2)
        return acc * step

    @jit
    def trilinear_ray_scatter(buf, b, val, o0, o1, o2, d0, d1, d2, L, step):
        """Adjoint of :func:`trilinear_sum`."""
        m_lo, m_hi = sample_range(
            o0, o1, o2, d0, d1, d2, buf.shape[1], buf.shape[2], buf.shape[3], L, step
        )
        dt = step / L
        val = val * step
        for m in range(m_lo, m_hi + 1):
            t = m * dt
            trilinear_scatter(buf, b, o0 + t * d0, o1 + t * d1, o2 + t * d2, val)

    @jit
    def ray_value(vol, b, mode, step, o0, o1, o2, d0, d1, d2, L):
        """Line integral of ``vol[b]``: ``mode`` 0 = Siddon, 1 = trilinear."""
        if mode == 0:
            return siddon_sum(vol, b, o0, o1, o2, d0, d1, d2, L)
        return trilinear_sum(vol, b, o0, o1, o2, d0, d1, d2, L, step)

    @jit
    def ray_scatter(buf, b, val, mode, step, o0, o1, o2, d0, d1, d2, L):
        """Adjoint of :func:`ray_value`."""
        if mode == 0:
            siddon_scatter(buf, b, val, o0, o1, o2, d0, d1, d2, L)
        else:
            trilinear_ray_scatter(buf, b, val, o0, o1, o2, d0, d1, d2, L, step)

    return SimpleNamespace(
        slab=slab,
        box_range=box_range,
        pixel_ray=pixel_ray,
        axis_start=axis_start,
        siddon_sum=siddon_sum,
        siddon_scatter=siddon_scatter,
        siddon_labels=siddon_labels,
        sample_range=sample_range,
        trilinear_gather=trilinear_gather,
        trilinear_scatter=trilinear_scatter,
        trilinear_sum=trilinear_sum,
        trilinear_ray_scatter=trilinear_ray_scatter,
        ray_value=ray_value,
        ray_scatter=ray_scatter,
    )
