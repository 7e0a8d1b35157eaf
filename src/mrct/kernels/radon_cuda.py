"""numba.cuda kernels for parallel, fan and cone-beam projection and backprojection.

Same arithmetic as :mod:`.radon_cpu` (both compile :mod:`.ray_math`); one thread per ray for
projection, one per pixel for backprojection. The exact adjoints scatter with
``cuda.atomic.add`` (float32 and float64), so they are the transpose of the forward matrix up
to the order of floating-point additions.

Arrays are device arrays or anything with ``__cuda_array_interface__`` (torch CUDA tensors
via ``numba.cuda.as_cuda_array``); they are never copied to the host. Launches go on the
stream passed in (torch's current stream), so work stays ordered with torch's own kernels.
The kernels are compiled on first use, which also lets the module import on machines without
CUDA; under ``NUMBA_ENABLE_CUDASIM=1`` they run in Numba's CUDA simulator.
"""

from __future__ import annotations

import functools
import math

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
