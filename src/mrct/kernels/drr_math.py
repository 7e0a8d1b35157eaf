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

Each traversal (Siddon walk, trilinear taps, ray march) is written once and compiled with a
visitor that reads the volume, adds into a buffer or counts label lengths, so the adjoint
(``pixel_scatter``) adds ``val`` times exactly the weights of the forward map
(``pixel_value``): it is its transpose. ``pixel_labels`` accumulates the Siddon segment
lengths per label channel (projected thickness of label maps).

Developers: Numba caches the CPU kernels on disk and only watches the file that defines a
kernel; after editing this file remove ``src/mrct/kernels/__pycache__`` (``make clean-cache``).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from .ray_math import unravel3_index


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

    # ``(b, p, r)`` of detector row ``n`` of a ``(B, P, R)`` stack of rows
    split_row = jit(unravel3_index)

    @jit
    def pixel_index(n, shape):
        """``(b, p, r, c)`` of pixel ``n`` of a ``(B, P, R, C)`` stack (``b >= B`` past it)."""
        C = shape[3]
        b, p, r = split_row(n // C, shape[1], shape[2])
        return b, p, r, n % C

    # -- visitors: what a traversal does with a voxel and its weight ``w`` ------------------
    # ``arr`` is the array read or written and ``ctx`` a tuple of the rest: ``vol, (b,)`` to
    # read ``vol[b]``, ``buf, (b, val)`` to add ``val`` times the weights into ``buf[b]``,
    # ``out, (lab, lut, p, r, c, L)`` for label thickness. (An array written must not travel in
    # the tuple: Numba's parallel CPU kernels then drop the writes as dead code.) A traversal
    # returns the sum of what its visitor returns.

    @jit
    def voxel_value(vol, ctx, k, i, j, w):
        return w * vol[ctx[0], k, i, j]

    @jit
    def voxel_add(buf, ctx, k, i, j, w):
        b, val = ctx
        add4(buf, b, k, i, j, w * val)
        return 0.0

    @jit
    def voxel_label(out, ctx, k, i, j, w):
        lab, lut, p, r, c, L = ctx
        lv = int(lab[k, i, j])
        if lv >= 0 and lv < lut.shape[0]:
            ch = lut[lv]
            if ch >= 0:
                out[p, ch, r, c] += w * L
        return 0.0

    def siddon_walker(visit):
        """Siddon/Jacobs traversal of a ``(D, H, W)`` grid that calls ``visit(arr, ctx, k, i,
        j, dt)`` for each voxel the ray crosses, ``dt`` its parameter length inside (mm / L)."""

        @jit
        def walk(arr, ctx, D, H, W, o0, o1, o2, d0, d1, d2):
            t, t1 = box_range(o0, o1, o2, d0, d1, d2, D, H, W, 0.5)
            acc = 0.0
            if t1 <= t:
                return acc
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
                    acc += visit(arr, ctx, k, i, j, tn - t)
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
            return acc

        return walk

    @jit
    def cell(p):
        """Lower neighbour (int) and fractional offset of index-space coordinate ``p``."""
        i0 = int(math.floor(p))
        return i0, p - i0

    @jit
    def tap(i0, f, bit, n):
        """Index, linear weight and in-grid flag of tap ``bit`` (0 or 1) beside ``i0``."""
        idx = i0 + bit
        return idx, f if bit == 1 else 1.0 - f, idx >= 0 and idx < n

    def corner_walker(visit):
        """Trilinear taps at index-space point ``(p0, p1, p2)``: calls ``visit(arr, ctx, k, i,
        j, w)`` for each of the 8 neighbours inside the ``(D, H, W)`` grid (zero outside)."""

        @jit
        def corners(arr, ctx, D, H, W, p0, p1, p2):
            k0, fk = cell(p0)
            i0, fi = cell(p1)
            j0, fj = cell(p2)
            acc = 0.0
            for a in range(2):
                kk, wk, in_k = tap(k0, fk, a, D)
                if in_k:
                    for bb in range(2):
                        ii, wi, in_i = tap(i0, fi, bb, H)
                        if in_i:
                            for cc in range(2):
                                jj, wj, in_j = tap(j0, fj, cc, W)
                                if in_j:
                                    acc += visit(arr, ctx, kk, ii, jj, wk * wi * wj)
            return acc

        return corners

    corners_value = corner_walker(voxel_value)

    @jit
    def sample_value(vol, ctx, D, H, W, p0, p1, p2):
        """Trilinear interpolation of ``vol[b]`` (``ctx = (b,)``) at ``(p0, p1, p2)``."""
        b = ctx[0]
        k0, fk = cell(p0)
        i0, fi = cell(p1)
        j0, fj = cell(p2)
        if k0 >= 0 and k0 + 1 < D and i0 >= 0 and i0 + 1 < H and j0 >= 0 and j0 + 1 < W:
            c00 = vol[b, k0, i0, j0] * (1.0 - fj) + vol[b, k0, i0, j0 + 1] * fj
            c01 = vol[b, k0, i0 + 1, j0] * (1.0 - fj) + vol[b, k0, i0 + 1, j0 + 1] * fj
            c10 = vol[b, k0 + 1, i0, j0] * (1.0 - fj) + vol[b, k0 + 1, i0, j0 + 1] * fj
            c11 = vol[b, k0 + 1, i0 + 1, j0] * (1.0 - fj) + vol[b, k0 + 1, i0 + 1, j0 + 1] * fj
            return (c00 * (1.0 - fi) + c01 * fi) * (1.0 - fk) + (c10 * (1.0 - fi) + c11 * fi) * fk
        return corners_value(vol, ctx, D, H, W, p0, p1, p2)

    @jit
    def sample_range(o0, o1, o2, d0, d1, d2, D, H, W, L, step):
        """First and last sample index m (arc length m * step from the source) of a ray."""
        t0, t1 = box_range(o0, o1, o2, d0, d1, d2, D, H, W, 1.0)
        if t1 <= t0 or L <= 0.0:
            return 1, 0
        return int(math.ceil(t0 * L / step)), int(math.floor(t1 * L / step))

    def marcher(visit):
        """Trilinear ray marching: ``visit(arr, ctx, D, H, W, p0, p1, p2)`` at the samples
        ``o + (m step / L) d`` of :func:`sample_range`."""

        @jit
        def march(arr, ctx, D, H, W, o0, o1, o2, d0, d1, d2, L, step):
            m_lo, m_hi = sample_range(o0, o1, o2, d0, d1, d2, D, H, W, L, step)
            dt = step / L
            acc = 0.0
            for m in range(m_lo, m_hi + 1):
                t = m * dt
                acc += visit(arr, ctx, D, H, W, o0 + t * d0, o1 + t * d1, o2 + t * d2)
            return acc

        return march

    siddon_value = siddon_walker(voxel_value)
    siddon_add = siddon_walker(voxel_add)
    siddon_label = siddon_walker(voxel_label)
    trilinear_value = marcher(sample_value)
    trilinear_add = marcher(corner_walker(voxel_add))

    @jit
    def pixel_value(vol, b, p, r, c, src, det, eu, ev, lin, mode, step):
        """Line integral of ``vol[b]`` (B, D, H, W) along the ray to pixel (r, c) of pose p:
        ``mode`` 0 = Siddon, 1 = trilinear (samples ``step`` mm apart)."""
        o0, o1, o2, d0, d1, d2, L = pixel_ray(p, r, c, src, det, eu, ev, lin)
        _, D, H, W = vol.shape
        if mode == 0:
            return siddon_value(vol, (b,), D, H, W, o0, o1, o2, d0, d1, d2) * L
        return trilinear_value(vol, (b,), D, H, W, o0, o1, o2, d0, d1, d2, L, step) * step

    @jit
    def pixel_scatter(buf, b, val, p, r, c, src, det, eu, ev, lin, mode, step, k_shift):
        """Adjoint of :func:`pixel_value`: add ``val`` times the ray's weights into
        ``buf[b]``, whose slice 0 is slice ``k_shift`` of the volume (a slab of it)."""
        if val == 0.0:
            return
        o0, o1, o2, d0, d1, d2, L = pixel_ray(p, r, c, src, det, eu, ev, lin)
        o0 = o0 - k_shift
        _, D, H, W = buf.shape
        if mode == 0:
            siddon_add(buf, (b, val * L), D, H, W, o0, o1, o2, d0, d1, d2)
        else:
            trilinear_add(buf, (b, val * step), D, H, W, o0, o1, o2, d0, d1, d2, L, step)

    @jit
    def pixel_labels(lab, lut, out, p, r, c, src, det, eu, ev, lin):
        """Add the length (mm) of the ray to pixel (r, c) of pose p inside each label to
        ``out[p, lut[label], r, c]``.

        ``lab`` (D, H, W) integer label map; ``lut`` maps a label to its output channel (or -1
        to skip it); labels beyond ``lut`` are skipped. ``out`` must be zeroed first.
        """
        o0, o1, o2, d0, d1, d2, L = pixel_ray(p, r, c, src, det, eu, ev, lin)
        D, H, W = lab.shape
        siddon_label(out, (lab, lut, p, r, c, L), D, H, W, o0, o1, o2, d0, d1, d2)

    return SimpleNamespace(
        slab=slab,
        box_range=box_range,
        pixel_ray=pixel_ray,
        axis_start=axis_start,
        split_row=split_row,
        pixel_index=pixel_index,
        sample_range=sample_range,
        sample_value=sample_value,
        pixel_value=pixel_value,
        pixel_scatter=pixel_scatter,
        pixel_labels=pixel_labels,
    )
