"""numba.cuda kernels for ultrasound: the GPU twins of :mod:`.us_cpu`.

Same arithmetic (both compile :mod:`.us_math`). One thread per scatterer for transmit fields,
one per (element, scatterer) pair for RF simulation and per (batch, element, pixel) for the
DAS adjoint, which scatter with ``cuda.atomic.add``; one per (batch, pixel) for the DAS
forward. Results equal the CPU kernels' up to the order of floating-point additions.
Launches go on the stream passed in (torch's current stream); under
``NUMBA_ENABLE_CUDASIM=1`` the kernels run in Numba's simulator.
"""

from __future__ import annotations

import functools

from numba import cuda  # importable without a GPU; kernels compile on first use

from ._compile import cuda_launch

__all__ = ["tx_fields", "simulate_rf", "das_forward", "das_adjoint"]

_THREADS = 256


@functools.cache
def _kernels():
    from . import us_math

    dev = cuda.jit(device=True)

    @dev
    def add(arr, idx, v):
        cuda.atomic.add(arr, idx, v)

    um = us_math.build(dev, add)
    tx_amplitude, add_echo = um.tx_amplitude, um.add_echo
    das_pixel, das_spread = um.das_pixel, um.das_spread

    @cuda.jit
    def txf(sx, sz, tau, ex, ez, delays, apod, c, fc, halfkw, out_re, out_im):
        s = cuda.grid(1)
        if s >= sx.shape[0]:
            return
        re, im = tx_amplitude(sx[s], sz[s], tau[s], ex, ez, delays, apod, c, fc, halfkw)
        out_re[s] = re
        out_im[s] = im

    @cuda.jit
    def sim(sx, sz, amp, tau, dtx, a_re, a_im, ex, ez, c, halfkw, table, t_start, inv_dt,
            lvl_per_mm, fs, t0, out):  # fmt: skip
        q = cuda.grid(1)
        if q < ex.shape[0] * sx.shape[0]:
            add_echo(out, q // sx.shape[0], q % sx.shape[0], sx, sz, amp, tau, dtx, a_re, a_im,
                     ex, ez, c, halfkw, table, t_start, inv_dt, lvl_per_mm, fs, t0)  # fmt: skip

    @cuda.jit
    def fwd(rf, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out):
        q = cuda.grid(1)
        if q < rf.shape[0] * px.shape[0]:
            b, p = q // px.shape[0], q % px.shape[0]
            out[b, p] = das_pixel(rf, b, p, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window)

    @cuda.jit
    def adj(img, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out):
        q = cuda.grid(1)  # q = (b n_el + j) n_pix + p
        if q < img.shape[0] * out.shape[1] * img.shape[1]:
            bj, p = q // img.shape[1], q % img.shape[1]
            das_spread(img, bj // out.shape[1], bj % out.shape[1], p, px, pz, tau, jlo, jhi, ex,
                       ez, c, fs, t0, fnum, window, out)  # fmt: skip

    return dict(txf=txf, sim=sim, fwd=fwd, adj=adj)


def tx_fields(sx, sz, tau, ex, ez, delays, apod, c, fc, halfkw, out_re, out_im, stream=None):
    """GPU twin of :func:`mrct.kernels.us_cpu.tx_fields`."""
    cuda_launch(_kernels()["txf"], sx.shape[0], _THREADS, stream, sx, sz, tau, ex, ez, delays,
                apod, c, fc, halfkw, out_re, out_im)  # fmt: skip


def simulate_rf(sx, sz, amp, tau, dtx, a_re, a_im, ex, ez, c, halfkw, table, t_start, inv_dt,
                lvl_per_mm, fs, t0, out, stream=None):  # fmt: skip
    """GPU twin of :func:`mrct.kernels.us_cpu.simulate_rf` (accumulates into a zeroed ``out``)."""
    cuda_launch(_kernels()["sim"], ex.shape[0] * sx.shape[0], _THREADS, stream, sx, sz, amp, tau,
                dtx, a_re, a_im, ex, ez, c, halfkw, table, t_start, inv_dt, lvl_per_mm, fs, t0,
                out)  # fmt: skip


def das_forward(rf, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out, stream=None):
    """GPU twin of :func:`mrct.kernels.us_cpu.das_forward` (``out`` is overwritten)."""
    cuda_launch(_kernels()["fwd"], rf.shape[0] * px.shape[0], _THREADS, stream, rf, px, pz, tau,
                jlo, jhi, ex, ez, c, fs, t0, fnum, window, out)  # fmt: skip


def das_adjoint(img, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out, stream=None):
    """GPU twin of :func:`mrct.kernels.us_cpu.das_adjoint`; ``out`` must be zeroed."""
    cuda_launch(_kernels()["adj"], img.shape[0] * out.shape[1] * img.shape[1], _THREADS, stream,
                img, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out)  # fmt: skip
