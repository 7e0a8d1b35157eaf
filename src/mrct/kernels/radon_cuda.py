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
_BC = 4  # images per thread in the gather adjoint (geometry shared across them)


@functools.cache
def _ray_math(dtype_name="float64"):
    """:mod:`.ray_math` as CUDA device functions (atomic accumulation), with the 2D walk's
    arithmetic in ``dtype_name``, plus the thread-to-cell maps of the kernels below."""
    import numba

    from . import ray_math

    dev = cuda.jit(device=True)

    @dev
    def add2(buf, b, i, j, v):
        cuda.atomic.add(buf, (b, i, j), v)

    @dev
    def add3(buf, b, d, i, j, v):
        cuda.atomic.add(buf, (b, d, i, j), v)

    real = numba.float32 if dtype_name == "float32" else numba.float64
    rm = ray_math.build(dev, add2, add3, real)

    @dev
    def cell3(shape):
        """This thread's element (b, i, j) of an array of ``shape`` (B, n1, n2), and whether
        it lies inside."""
        k = cuda.grid(1)
        b, i, j = rm.unravel3(k, shape[1], shape[2])
        return k < shape[0] * shape[1] * shape[2], b, i, j

    @dev
    def cell4(shape):
        """As :func:`cell3` for a 4D ``shape``: (inside, b, d, i, j)."""
        inside, b, d, ij = cell3((shape[0], shape[1], shape[2] * shape[3]))
        i = ij // shape[3]
        return inside, b, d, i, ij - i * shape[3]

    rm.cell3 = cell3
    rm.cell4 = cell4
    return rm


@functools.cache
def _kernels():
    rm = _ray_math()
    cell3, cell4, pixel_xy = rm.cell3, rm.cell4, rm.pixel_xy
    ray_sum_2d, ray_scatter_2d = rm.ray_sum_2d, rm.ray_scatter_2d
    ray_sum_3d, ray_scatter_3d = rm.ray_sum_3d, rm.ray_scatter_3d
    cone_ray, fbp_pixel, fdk_voxel = rm.cone_ray, rm.fbp_pixel, rm.fdk_voxel
    fbp_pixel_scatter = rm.fbp_pixel_scatter

    @cuda.jit
    def fwd2(img, origins, dirs, ps, out):
        inside, b, v, u = cell3(out.shape)
        if inside:
            ox, oy, dx, dy = origins[v, u, 0], origins[v, u, 1], dirs[v, u, 0], dirs[v, u, 1]
            out[b, v, u] = ray_sum_2d(img, b, ox, oy, dx, dy, ps)

    @cuda.jit
    def adj2(sino, origins, dirs, ps, out):
        inside, b, v, u = cell3(sino.shape)
        if inside and sino[b, v, u] != 0.0:
            ox, oy, dx, dy = origins[v, u, 0], origins[v, u, 1], dirs[v, u, 0], dirs[v, u, 1]
            ray_scatter_2d(out, b, sino[b, v, u], ox, oy, dx, dy, ps)

    @cuda.jit
    def bp2(sino, cos_t, sin_t, weights, mode, rs, rsd, du, ps, out):
        inside, b, i, j = cell3(out.shape)
        if inside:
            x, y = pixel_xy(i, j, out.shape[1], out.shape[2], ps)
            cu = (sino.shape[2] - 1) * 0.5
            out[b, i, j] = fbp_pixel(sino, b, x, y, cos_t, sin_t, weights, mode, rs, rsd,
                                     1.0 / du, cu)  # fmt: skip

    @cuda.jit
    def bp2t(img, cos_t, sin_t, weights, mode, rs, rsd, du, ps, out):
        inside, b, i, j = cell3(img.shape)
        if inside and img[b, i, j] != 0.0:
            x, y = pixel_xy(i, j, img.shape[1], img.shape[2], ps)
            cu = (out.shape[2] - 1) * 0.5
            fbp_pixel_scatter(out, b, x, y, img[b, i, j], cos_t, sin_t, weights, mode, rs, rsd,
                              1.0 / du, cu)  # fmt: skip

    @cuda.jit
    def fwd3(vol, src, det, eu, ev, ps, pz, out):
        inside, b, v, row, col = cell4(out.shape)
        if inside:
            ox, oy, oz, dx, dy, dz = cone_ray(v, row, col, src, det, eu, ev)
            out[b, v, row, col] = ray_sum_3d(vol, b, ox, oy, oz, dx, dy, dz, ps, pz)

    @cuda.jit
    def adj3(proj, src, det, eu, ev, ps, pz, out):
        inside, b, v, row, col = cell4(proj.shape)
        if inside and proj[b, v, row, col] != 0.0:
            ox, oy, oz, dx, dy, dz = cone_ray(v, row, col, src, det, eu, ev)
            ray_scatter_3d(out, b, proj[b, v, row, col], ox, oy, oz, dx, dy, dz, ps, pz)

    @cuda.jit
    def bp3(proj, cos_t, sin_t, weights, rs, rsd, du, dv, ps, pz, out):
        inside, b, d, i, j = cell4(out.shape)
        if inside:
            z = (d - (out.shape[1] - 1) * 0.5) * pz
            x, y = pixel_xy(i, j, out.shape[2], out.shape[3], ps)
            out[b, d, i, j] = fdk_voxel(proj, b, x, y, z, cos_t, sin_t, weights, rs, rsd, du, dv)

    return dict(fwd2=fwd2, adj2=adj2, bp2=bp2, bp2t=bp2t, fwd3=fwd3, adj3=adj3, bp3=bp3)


@functools.cache
def _kernels_2d(dtype_name):
    """Table-driven 2D projector and gather adjoint doing all arithmetic in ``dtype_name``.

    ``tab`` is :func:`mrct.kernels.radon_cpu.ray_soa_2d` cast to that dtype, so float32
    images get float32 ray geometry (H100/H200 run FP64 at half the FP32 rate) and float64
    images keep float64.
    """
    import numba

    ft = numba.float32 if dtype_name == "float32" else numba.float64
    rm = _ray_math(dtype_name)
    cell3, fan_pixel_coords, walk_sum_2d = rm.cell3, rm.fan_pixel_coords, rm.walk_sum_2d

    @cuda.jit
    def fwd2t(img, tab, out):
        inside, b, v, u = cell3(out.shape)
        if inside:
            x_major = tab[0, v, u] > ft(0.5)
            m_lo = int(tab[4, v, u])
            m_hi = int(tab[5, v, u])
            acc = walk_sum_2d(img, b, x_major, tab[1, v, u], tab[2, v, u], m_lo, m_hi, ft(0.0),
                              ft(0.0))  # fmt: skip
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
        bc, i, j = rm.unravel3(k, H, W)
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


def _launch(kernel, n, stream, *args):
    if n == 0:
        return
    blocks = math.ceil(n / _THREADS)
    if stream is None:
        kernel[blocks, _THREADS](*args)
    else:
        kernel[blocks, _THREADS, stream](*args)


def _run(name, cells, stream, *args):
    """Launch ``_kernels()[name]`` with one thread per element of the array ``cells``."""
    _launch(_kernels()[name], math.prod(cells.shape), stream, *args)


def _dtype_name(a):
    return "float32" if str(a.dtype) == "float32" else "float64"


def forward_2d_table(img, tab, out, stream=None):
    """Joseph projection from a ray table (:func:`mrct.kernels.radon_cpu.ray_soa_2d` in the
    images' dtype); same values as :func:`forward_2d`, ray arithmetic in that dtype."""
    _launch(_kernels_2d(_dtype_name(img))["fwd2t"], math.prod(out.shape), stream, img, tab, out)


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
    _launch(k, n, stream, sino, tab, cos_t, sin_t, int(mode), f(rs), f(rsd), f(1.0 / du),
            f((N - 1) * 0.5), f(ps), out)  # fmt: skip


def forward_2d(img, origins, dirs, ps, out, stream=None):
    """GPU twin of :func:`mrct.kernels.radon_cpu.forward_2d` (``out`` is overwritten)."""
    _run("fwd2", out, stream, img, origins, dirs, ps, out)


def adjoint_2d(sino, origins, dirs, ps, out, stream=None):
    """GPU twin of :func:`mrct.kernels.radon_cpu.adjoint_2d`; ``out`` must be zeroed first."""
    _run("adj2", sino, stream, sino, origins, dirs, ps, out)


def backproject_fbp_2d(sino, cos_t, sin_t, weights, mode, rs, rsd, du, ps, out, stream=None):
    """GPU twin of :func:`mrct.kernels.radon_cpu.backproject_fbp_2d`."""
    _run("bp2", out, stream, sino, cos_t, sin_t, weights, mode, rs, rsd, du, ps, out)


def backproject_fbp_2d_transpose(img, cos_t, sin_t, weights, mode, rs, rsd, du, ps, out,
                                 stream=None):  # fmt: skip
    """GPU twin of :func:`mrct.kernels.radon_cpu.backproject_fbp_2d_transpose`; ``out`` must
    be zeroed first."""
    _run("bp2t", img, stream, img, cos_t, sin_t, weights, mode, rs, rsd, du, ps, out)


def forward_cone(vol, src, det, eu, ev, ps, pz, out, stream=None):
    """GPU twin of :func:`mrct.kernels.radon_cpu.forward_cone`."""
    _run("fwd3", out, stream, vol, src, det, eu, ev, ps, pz, out)


def adjoint_cone(proj, src, det, eu, ev, ps, pz, out, stream=None):
    """GPU twin of :func:`mrct.kernels.radon_cpu.adjoint_cone`; ``out`` must be zeroed first."""
    _run("adj3", proj, stream, proj, src, det, eu, ev, ps, pz, out)


def backproject_fdk(proj, cos_t, sin_t, weights, rs, rsd, du, dv, ps, pz, out, stream=None):
    """GPU twin of :func:`mrct.kernels.radon_cpu.backproject_fdk`."""
    _run("bp3", out, stream, proj, cos_t, sin_t, weights, rs, rsd, du, dv, ps, pz, out)
