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

from numba import cuda  # importable without a GPU; kernels compile on first use

from ._compile import cuda_launch

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
    pixel_index, pixel_value, pixel_scatter = m.pixel_index, m.pixel_value, m.pixel_scatter
    pixel_labels = m.pixel_labels

    # one thread per detector pixel (and volume): b >= B for the threads past the last one
    @cuda.jit
    def fwd(vol, src, det, eu, ev, lin, mode, step, out):
        b, p, r, c = pixel_index(cuda.grid(1), out.shape)
        if b < out.shape[0]:
            out[b, p, r, c] = pixel_value(vol, b, p, r, c, src, det, eu, ev, lin, mode, step)

    @cuda.jit
    def adj(img, src, det, eu, ev, lin, mode, step, out):
        b, p, r, c = pixel_index(cuda.grid(1), img.shape)
        if b < img.shape[0]:
            pixel_scatter(out, b, img[b, p, r, c], p, r, c, src, det, eu, ev, lin, mode, step, 0)

    @cuda.jit
    def labels(lab, lut, src, det, eu, ev, lin, out):
        one, p, r, c = pixel_index(cuda.grid(1), (1, out.shape[0], out.shape[2], out.shape[3]))
        if one < 1:
            pixel_labels(lab, lut, out, p, r, c, src, det, eu, ev, lin)

    return dict(fwd=fwd, adj=adj, labels=labels)


def forward(vol, src, det, eu, ev, lin, mode, step, out, stream=None):
    """GPU twin of :func:`mrct.kernels.drr_cpu.forward` (``out`` is overwritten)."""
    n = out.shape[0] * out.shape[1] * out.shape[2] * out.shape[3]
    cuda_launch(_kernels()["fwd"], n, _THREADS, stream, vol, src, det, eu, ev, lin, mode, step,
                out)  # fmt: skip


def adjoint(img, src, det, eu, ev, lin, mode, step, out, stream=None):
    """GPU twin of :func:`mrct.kernels.drr_cpu.adjoint`; ``out`` must be zeroed first."""
    n = img.shape[0] * img.shape[1] * img.shape[2] * img.shape[3]
    cuda_launch(_kernels()["adj"], n, _THREADS, stream, img, src, det, eu, ev, lin, mode, step,
                out)  # fmt: skip


def label_thickness(lab, lut, src, det, eu, ev, lin, out, stream=None):
    """GPU twin of :func:`mrct.kernels.drr_cpu.label_thickness`; ``out`` must be zeroed."""
    n = out.shape[0] * out.shape[2] * out.shape[3]
    cuda_launch(_kernels()["labels"], n, _THREADS, stream, lab, lut, src, det, eu, ev, lin, out)
