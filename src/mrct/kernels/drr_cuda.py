"""numba.cuda kernels for DRR rendering: the GPU twins of :mod:`.drr_cpu`.

Same per-ray arithmetic (:mod:`.drr_math`), one thread per detector pixel (and volume in the
batch). The adjoint scatters with ``cuda.atomic.add``, so it is the transpose of the forward
map up to the order of floating-point additions. Arrays are device arrays or objects with
``__cuda_array_interface__`` (torch CUDA tensors through ``numba.cuda.as_cuda_array``);
launches go on the given stream (torch's current stream). Kernels compile on first use, so
the module imports without a GPU; under ``NUMBA_ENABLE_CUDASIM=1`` they run in Numba's
simulator.
"""

from __future__ import annotations

import functools
import math

from numba import cuda  # importable without a GPU; kernels compile on first use

__all__ = ["forward", "adjoint", "label_thickness"]

_THREADS = 256


@functools.cache
def _kernels():
    from . import drr_math

    dev = cuda.jit(device=True)

    @dev
    def add4(buf, b, k, i, j, v):
        cuda.atomic.add(buf, (b, k, i, j), v)

    m = drr_math.build(dev, add4)
    pixel_ray, ray_value, ray_scatter = m.pixel_ray, m.ray_value, m.ray_scatter
    siddon_labels = m.siddon_labels

    @cuda.jit
    def fwd(vol, src, det, eu, ev, lin, mode, step, out):
        n = cuda.grid(1)
        B, P, R, C = out.shape
        if n >= B * P * R * C:
            return
        c = n % C
        rem = n // C
        r = rem % R
        rem = rem // R
        p = rem % P
        b = rem // P
        o0, o1, o2, d0, d1, d2, L = pixel_ray(p, r, c, src, det, eu, ev, lin)
        out[b, p, r, c] = ray_value(vol, b, mode, step, o0, o1, o2, d0, d1, d2, L)

    @cuda.jit
    def adj(img, src, det, eu, ev, lin, mode, step, out):
        n = cuda.grid(1)
        B, P, R, C = img.shape
        if n >= B * P * R * C:
            return
        c = n % C
        rem = n // C
        r = rem % R
        rem = rem // R
        p = rem % P
        b = rem // P
        val = img[b, p, r, c]
        if val != 0.0:
            o0, o1, o2, d0, d1, d2, L = pixel_ray(p, r, c, src, det, eu, ev, lin)
            ray_scatter(out, b, val, mode, step, o0, o1, o2, d0, d1, d2, L)

    @cuda.jit
    def labels(lab, lut, src, det, eu, ev, lin, out):
        n = cuda.grid(1)
        P, NC, R, C = out.shape
        if n >= P * R * C:
            return
        c = n % C
        rem = n // C
        r = rem % R
        p = rem // R
        o0, o1, o2, d0, d1, d2, L = pixel_ray(p, r, c, src, det, eu, ev, lin)
        siddon_labels(lab, lut, out, p, r, c, o0, o1, o2, d0, d1, d2, L)

    return dict(fwd=fwd, adj=adj, labels=labels)


def _launch(name, n, stream, *args):
    if n == 0:
        return
    kernel = _kernels()[name]
    blocks = math.ceil(n / _THREADS)
    if stream is None:
        kernel[blocks, _THREADS](*args)
    else:
        kernel[blocks, _THREADS, stream](*args)


def forward(vol, src, det, eu, ev, lin, mode, step, out, stream=None):
    """GPU twin of :func:`mrct.kernels.drr_cpu.forward` (``out`` is overwritten)."""
    n = out.shape[0] * out.shape[1] * out.shape[2] * out.shape[3]
    _launch("fwd", n, stream, vol, src, det, eu, ev, lin, mode, step, out)


def adjoint(img, src, det, eu, ev, lin, mode, step, out, stream=None):
    """GPU twin of :func:`mrct.kernels.drr_cpu.adjoint`; ``out`` must be zeroed first."""
    n = img.shape[0] * img.shape[1] * img.shape[2] * img.shape[3]
    _launch("adj", n, stream, img, src, det, eu, ev, lin, mode, step, out)


def label_thickness(lab, lut, src, det, eu, ev, lin, out, stream=None):
    """GPU twin of :func:`mrct.kernels.drr_cpu.label_thickness`; ``out`` must be zeroed."""
    n = out.shape[0] * out.shape[2] * out.shape[3]
    _launch("labels", n, stream, lab, lut, src, det, eu, ev, lin, out)
