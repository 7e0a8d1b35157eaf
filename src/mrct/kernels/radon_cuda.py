"""numba.cuda kernels for parallel, fan and cone-beam projection and backprojection.

Same arithmetic as :mod:`.radon_cpu` (both compile :mod:`.ray_math`); one thread per ray for
projection, one per pixel for backprojection. The 2D projector and its exact adjoint
(:func:`forward_2d_table`, :func:`adjoint_2d_gather`) read a per-ray table in the images'
precision; the adjoint is pixel-driven (no atomics). The cone-beam adjoint and the FBP
transpose scatter with ``cuda.atomic.add`` (float32 and float64), so they are the transpose of
the forward matrix up to the order of floating-point additions.

Arrays are device arrays or anything with ``__cuda_array_interface__`` (torch CUDA tensors
via ``numba.cuda.as_cuda_array``); they are never copied to the host. Launches go on the
stream passed in (torch's current stream), so work stays ordered with torch's own kernels.
The kernels are compiled on first use, which also lets the module import on machines without
CUDA; under ``NUMBA_ENABLE_CUDASIM=1`` they run in Numba's CUDA simulator.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import cuda  # importable without a GPU; kernels compile on first use

__all__ = [
    "forward_2d",
    "adjoint_2d",
    "backproject_fbp_2d",
    "backproject_fbp_2d_transpose",
    "forward_cone",
    "adjoint_cone",
    "backproject_fdk",
]

_THREADS = 256


@functools.cache
def _kernels():
    from . import ray_math

    dev = cuda.jit(device=True)

    @dev
    def add2(buf, b, i, j, v):
        cuda.atomic.add(buf, (b, i, j), v)

    @dev
    def add3(buf, b, d, i, j, v):
        cuda.atomic.add(buf, (b, d, i, j), v)

    rm = ray_math.build(dev, add2, add3)
    ray_sum_2d, ray_scatter_2d = rm.ray_sum_2d, rm.ray_scatter_2d
    ray_sum_3d, ray_scatter_3d = rm.ray_sum_3d, rm.ray_scatter_3d
    cone_ray, fbp_pixel, fdk_voxel = rm.cone_ray, rm.fbp_pixel, rm.fdk_voxel
    fbp_pixel_scatter = rm.fbp_pixel_scatter

    @cuda.jit
    def fwd2(img, origins, dirs, ps, out):
        k = cuda.grid(1)
        B, V, N = out.shape
        if k >= B * V * N:
            return
        b = k // (V * N)
        r = k - b * V * N
        v = r // N
        u = r - v * N
        out[b, v, u] = ray_sum_2d(
            img, b, origins[v, u, 0], origins[v, u, 1], dirs[v, u, 0], dirs[v, u, 1], ps
        )

    @cuda.jit
    def adj2(sino, origins, dirs, ps, out):
        k = cuda.grid(1)
        B, V, N = sino.shape
        if k >= B * V * N:
            return
        b = k // (V * N)
        r = k - b * V * N
        v = r // N
        u = r - v * N
        val = sino[b, v, u]
        if val != 0.0:
            ray_scatter_2d(
                out, b, val, origins[v, u, 0], origins[v, u, 1], dirs[v, u, 0], dirs[v, u, 1], ps
            )

    @cuda.jit
    def bp2(sino, cos_t, sin_t, weights, mode, rs, rsd, du, ps, out):
        k = cuda.grid(1)
        B, H, W = out.shape
        if k >= B * H * W:
            return
        b = k // (H * W)
        r = k - b * H * W
        i = r // W
        j = r - i * W
        y = ((H - 1) * 0.5 - i) * ps
        x = (j - (W - 1) * 0.5) * ps
        cu = (sino.shape[2] - 1) * 0.5
        out[b, i, j] = fbp_pixel(sino, b, x, y, cos_t, sin_t, weights, mode, rs, rsd, 1.0 / du, cu)

    @cuda.jit
    def bp2t(img, cos_t, sin_t, weights, mode, rs, rsd, du, ps, out):
        k = cuda.grid(1)
        B, H, W = img.shape
        if k >= B * H * W:
            return
        b = k // (H * W)
        r = k - b * H * W
        i = r // W
        j = r - i * W
        val = img[b, i, j]
        if val != 0.0:
            y = ((H - 1) * 0.5 - i) * ps
            x = (j - (W - 1) * 0.5) * ps
            cu = (out.shape[2] - 1) * 0.5
            fbp_pixel_scatter(out, b, x, y, val, cos_t, sin_t, weights, mode, rs, rsd, 1.0 / du, cu)

    @cuda.jit
    def fwd3(vol, src, det, eu, ev, ps, pz, out):
        k = cuda.grid(1)
        B, V, R, C = out.shape
        if k >= B * V * R * C:
            return
        b = k // (V * R * C)
        rem = k - b * V * R * C
        v = rem // (R * C)
        rem = rem - v * R * C
        row = rem // C
        col = rem - row * C
        ox, oy, oz, dx, dy, dz = cone_ray(v, row, col, src, det, eu, ev)
        out[b, v, row, col] = ray_sum_3d(vol, b, ox, oy, oz, dx, dy, dz, ps, pz)

    @cuda.jit
    def adj3(proj, src, det, eu, ev, ps, pz, out):
        k = cuda.grid(1)
        B, V, R, C = proj.shape
        if k >= B * V * R * C:
            return
        b = k // (V * R * C)
        rem = k - b * V * R * C
        v = rem // (R * C)
        rem = rem - v * R * C
        row = rem // C
        col = rem - row * C
        val = proj[b, v, row, col]
        if val != 0.0:
            ox, oy, oz, dx, dy, dz = cone_ray(v, row, col, src, det, eu, ev)
            ray_scatter_3d(out, b, val, ox, oy, oz, dx, dy, dz, ps, pz)

    @cuda.jit
    def bp3(proj, cos_t, sin_t, weights, rs, rsd, du, dv, ps, pz, out):
        k = cuda.grid(1)
        B, D, H, W = out.shape
        if k >= B * D * H * W:
            return
        b = k // (D * H * W)
        rem = k - b * D * H * W
        d = rem // (H * W)
        rem = rem - d * H * W
        i = rem // W
        j = rem - i * W
        z = (d - (D - 1) * 0.5) * pz
        y = ((H - 1) * 0.5 - i) * ps
        x = (j - (W - 1) * 0.5) * ps
        out[b, d, i, j] = fdk_voxel(proj, b, x, y, z, cos_t, sin_t, weights, rs, rsd, du, dv)

    return dict(fwd2=fwd2, adj2=adj2, bp2=bp2, bp2t=bp2t, fwd3=fwd3, adj3=adj3, bp3=bp3)


_BC = 4  # images per thread in the gather adjoint (geometry shared across them)


@functools.cache
def _kernels_2d(dtype_name):
    """Table-driven 2D projector and gather adjoint doing all arithmetic in ``dtype_name``.

    ``tab`` is :func:`mrct.kernels.radon_cpu.ray_soa_2d` cast to that dtype, so float32
    images get float32 ray geometry (H100/H200 run FP64 at half the FP32 rate) and float64
    images keep float64.
    """
    import numba

    from . import ray_math

    ft = numba.float32 if dtype_name == "float32" else numba.float64
    dev = cuda.jit(device=True)

    @dev
    def add2(buf, b, i, j, v):
        cuda.atomic.add(buf, (b, i, j), v)

    @dev
    def add3(buf, b, d, i, j, v):
        cuda.atomic.add(buf, (b, d, i, j), v)

    fan_pixel_coords = ray_math.build(dev, add2, add3).fan_pixel_coords

    @cuda.jit
    def fwd2t(img, tab, out):
        k = cuda.grid(1)
        B, V, N = out.shape
        if k >= B * V * N:
            return
        b = k // (V * N)
        r = k - b * V * N
        v = r // N
        u = r - v * N
        H = img.shape[1]
        W = img.shape[2]
        p0 = tab[1, v, u]
        sl = tab[2, v, u]
        m_lo = int(tab[4, v, u])
        m_hi = int(tab[5, v, u])
        one = ft(1.0)
        acc = ft(0.0)
        if tab[0, v, u] > ft(0.5):
            for j in range(m_lo, m_hi + 1):
                rr = p0 + sl * ft(j)
                i0 = int(math.floor(rr))
                f = rr - ft(i0)
                if i0 >= 0 and i0 < H:
                    acc += (one - f) * img[b, i0, j]
                if i0 + 1 >= 0 and i0 + 1 < H:
                    acc += f * img[b, i0 + 1, j]
        else:
            for i in range(m_lo, m_hi + 1):
                c = p0 + sl * ft(i)
                j0 = int(math.floor(c))
                f = c - ft(j0)
                if j0 >= 0 and j0 < W:
                    acc += (one - f) * img[b, i, j0]
                if j0 + 1 >= 0 and j0 + 1 < W:
                    acc += f * img[b, i, j0 + 1]
        out[b, v, u] = acc * tab[3, v, u]

    @cuda.jit
    def adj2g(sino, tab, cos_t, sin_t, mode, rs, rsd, inv_du, cu, ps, out):
        # one thread per pixel and group of _BC images: for each view, walk the detector from
        # the bin the pixel projects to while the rays pass within one pixel of its centre,
        # and add each ray's forward weight (same formula as fwd2t) times the sinogram value
        k = cuda.grid(1)
        B, H, W = out.shape
        V = sino.shape[1]
        N = sino.shape[2]
        nbc = (B + _BC - 1) // _BC
        if k >= nbc * H * W:
            return
        bc = k // (H * W)
        r = k - bc * H * W
        i = r // W
        j = r - i * W
        b0 = bc * _BC
        nb = min(_BC, B - b0)
        one = ft(1.0)
        lim = ft(1.001)
        fi = ft(i)
        fj = ft(j)
        y = (ft(0.5) * ft(H - 1) - fi) * ps
        x = (fj - ft(0.5) * ft(W - 1)) * ps
        a0 = ft(0.0)
        a1 = ft(0.0)
        a2 = ft(0.0)
        a3 = ft(0.0)
        for v in range(V):
            t, _ = fan_pixel_coords(x, y, cos_t[v], sin_t[v], mode, rs, rsd, inv_du, cu)
            ug = 0
            if t > ft(0.0) and t < ft(N - 1):
                ug = int(t + ft(0.5))
            elif t >= ft(N - 1):
                ug = N - 1
            lo = ug
            while lo > 0 and tab[6, v, lo] * fi + tab[7, v, lo] * fj + tab[8, v, lo] > -lim:
                lo -= 1
            hi = ug
            while hi < N - 1 and tab[6, v, hi] * fi + tab[7, v, hi] * fj + tab[8, v, hi] < lim:
                hi += 1
            for u in range(lo, hi + 1):
                st = tab[3, v, u]
                if st == ft(0.0):
                    continue
                if tab[0, v, u] > ft(0.5):
                    q = tab[1, v, u] + tab[2, v, u] * fj  # row where the ray crosses column j
                    n = fi
                else:
                    q = tab[1, v, u] + tab[2, v, u] * fi  # column where it crosses row i
                    n = fj
                q0 = ft(math.floor(q))
                f = q - q0
                if q0 == n:
                    w = (one - f) * st
                elif q0 + one == n:
                    w = f * st
                else:
                    continue
                a0 += w * sino[b0, v, u]
                if nb > 1:
                    a1 += w * sino[b0 + 1, v, u]
                    if nb > 2:
                        a2 += w * sino[b0 + 2, v, u]
                        if nb > 3:
                            a3 += w * sino[b0 + 3, v, u]
        out[b0, i, j] = a0
        if nb > 1:
            out[b0 + 1, i, j] = a1
        if nb > 2:
            out[b0 + 2, i, j] = a2
        if nb > 3:
            out[b0 + 3, i, j] = a3

    return dict(fwd2t=fwd2t, adj2g=adj2g)


def _launch_k(kernel, n, stream, *args):
    if n == 0:
        return
    blocks = math.ceil(n / _THREADS)
    if stream is None:
        kernel[blocks, _THREADS](*args)
    else:
        kernel[blocks, _THREADS, stream](*args)


def _dtype_name(a):
    return "float32" if str(a.dtype) == "float32" else "float64"


def forward_2d_table(img, tab, out, stream=None):
    """Joseph projection from a ray table (:func:`mrct.kernels.radon_cpu.ray_soa_2d` in the
    images' dtype); same values as :func:`forward_2d`, ray arithmetic in that dtype."""
    k = _kernels_2d(_dtype_name(img))["fwd2t"]
    _launch_k(k, out.shape[0] * out.shape[1] * out.shape[2], stream, img, tab, out)


def adjoint_2d_gather(sino, tab, cos_t, sin_t, mode, rs, rsd, du, ps, out, stream=None):
    """Exact adjoint of :func:`forward_2d_table`, pixel-driven: no atomics; ``out`` is
    overwritten. ``cos_t, sin_t, mode, rs, rsd, du`` describe the geometry (as for
    :func:`backproject_fbp_2d`) and only seed the search for the rays that touch a pixel, so
    they affect speed, not the result; all arrays and ``ps`` in the same float dtype."""
    k = _kernels_2d(_dtype_name(sino))["adj2g"]
    B, H, W = out.shape
    N = sino.shape[2]
    f = np.float32 if _dtype_name(sino) == "float32" else float
    n = ((B + _BC - 1) // _BC) * H * W
    _launch_k(k, n, stream, sino, tab, cos_t, sin_t, int(mode), f(rs), f(rsd), f(1.0 / du),
              f((N - 1) * 0.5), f(ps), out)  # fmt: skip


def _launch(name, n, stream, *args):
    kernel = _kernels()[name]
    if n == 0:
        return
    blocks = math.ceil(n / _THREADS)
    if stream is None:
        kernel[blocks, _THREADS](*args)
    else:
        kernel[blocks, _THREADS, stream](*args)


def forward_2d(img, origins, dirs, ps, out, stream=None):
    """GPU twin of :func:`mrct.kernels.radon_cpu.forward_2d` (``out`` is overwritten)."""
    _launch("fwd2", out.shape[0] * out.shape[1] * out.shape[2], stream, img, origins, dirs, ps, out)


def adjoint_2d(sino, origins, dirs, ps, out, stream=None):
    """GPU twin of :func:`mrct.kernels.radon_cpu.adjoint_2d`; ``out`` must be zeroed first."""
    n = sino.shape[0] * sino.shape[1] * sino.shape[2]
    _launch("adj2", n, stream, sino, origins, dirs, ps, out)


def backproject_fbp_2d(sino, cos_t, sin_t, weights, mode, rs, rsd, du, ps, out, stream=None):
    """GPU twin of :func:`mrct.kernels.radon_cpu.backproject_fbp_2d`."""
    n = out.shape[0] * out.shape[1] * out.shape[2]
    _launch("bp2", n, stream, sino, cos_t, sin_t, weights, mode, rs, rsd, du, ps, out)


def backproject_fbp_2d_transpose(img, cos_t, sin_t, weights, mode, rs, rsd, du, ps, out,
                                 stream=None):  # fmt: skip
    """GPU twin of :func:`mrct.kernels.radon_cpu.backproject_fbp_2d_transpose`; ``out`` must
    be zeroed first."""
    n = img.shape[0] * img.shape[1] * img.shape[2]
    _launch("bp2t", n, stream, img, cos_t, sin_t, weights, mode, rs, rsd, du, ps, out)


def forward_cone(vol, src, det, eu, ev, ps, pz, out, stream=None):
    """GPU twin of :func:`mrct.kernels.radon_cpu.forward_cone`."""
    n = out.shape[0] * out.shape[1] * out.shape[2] * out.shape[3]
    _launch("fwd3", n, stream, vol, src, det, eu, ev, ps, pz, out)


def adjoint_cone(proj, src, det, eu, ev, ps, pz, out, stream=None):
    """GPU twin of :func:`mrct.kernels.radon_cpu.adjoint_cone`; ``out`` must be zeroed first."""
    n = proj.shape[0] * proj.shape[1] * proj.shape[2] * proj.shape[3]
    _launch("adj3", n, stream, proj, src, det, eu, ev, ps, pz, out)


def backproject_fdk(proj, cos_t, sin_t, weights, rs, rsd, du, dv, ps, pz, out, stream=None):
    """GPU twin of :func:`mrct.kernels.radon_cpu.backproject_fdk`."""
    n = out.shape[0] * out.shape[1] * out.shape[2] * out.shape[3]
    _launch("bp3", n, stream, proj, cos_t, sin_t, weights, rs, rsd, du, dv, ps, pz, out)
