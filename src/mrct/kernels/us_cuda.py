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
import math

from numba import cuda  # importable without a GPU; kernels compile on first use

__all__ = ["tx_fields", "simulate_rf", "das_forward", "das_adjoint"]

_THREADS = 256


@functools.cache
def _kernels():
    from . import us_math

    um = us_math.build(cuda.jit(device=True))
    element_gain, tx_amplitude = um.element_gain, um.tx_amplitude
    pulse_at, das_tap = um.pulse_at, um.das_tap

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
        n_s = sx.shape[0]
        if q >= ex.shape[0] * n_s:
            return
        j = q // n_s
        s = q - j * n_s
        dx = sx[s] - ex[j]
        dz = sz[s] - ez[j]
        g = element_gain(dx, dz, halfkw) * amp[s]
        if g == 0.0:
            return
        n_t = out.shape[1]
        n_lvl = table.shape[0]
        t_end = t_start + (table.shape[2] - 1) / inv_dt
        r = math.sqrt(dx * dx + dz * dz)
        tc = tau[s] + r / c
        lvl = int((dtx[s] + r) * lvl_per_mm + 0.5)
        if lvl >= n_lvl:
            lvl = n_lvl - 1
        k0 = max(int(math.ceil((tc + t_start - t0) * fs)), 0)
        k1 = min(int(math.floor((tc + t_end - t0) * fs)), n_t - 1)
        ar = g * a_re[s]
        ai = g * a_im[s]
        for k in range(k0, k1 + 1):
            v = pulse_at(table, lvl, t0 + k / fs - tc, t_start, inv_dt, ar, ai)
            cuda.atomic.add(out, (j, k), v)

    @cuda.jit
    def fwd(rf, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out):
        q = cuda.grid(1)
        n_pix = px.shape[0]
        if q >= rf.shape[0] * n_pix:
            return
        b = q // n_pix
        p = q - b * n_pix
        n_t = rf.shape[2]
        acc = 0.0
        for j in range(jlo[p], jhi[p]):
            k, w0, w1 = das_tap(px[p], pz[p], tau[p], ex[j], ez[j], c, fs, t0, fnum, window, n_t)
            if k >= 0:
                acc += w0 * rf[b, j, k] + w1 * rf[b, j, k + 1]
        out[b, p] = acc

    @cuda.jit
    def adj(img, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out):
        q = cuda.grid(1)
        n_pix = img.shape[1]
        n_el = out.shape[1]
        if q >= img.shape[0] * n_el * n_pix:
            return
        b = q // (n_el * n_pix)
        r = q - b * n_el * n_pix
        j = r // n_pix
        p = r - j * n_pix
        v = img[b, p]
        if v == 0.0 or j < jlo[p] or j >= jhi[p]:
            return
        k, w0, w1 = das_tap(px[p], pz[p], tau[p], ex[j], ez[j], c, fs, t0, fnum, window,
                            out.shape[2])  # fmt: skip
        if k >= 0:
            cuda.atomic.add(out, (b, j, k), w0 * v)
            cuda.atomic.add(out, (b, j, k + 1), w1 * v)

    return dict(txf=txf, sim=sim, fwd=fwd, adj=adj)


def _launch(name, n, stream, *args):
    if n == 0:
        return
    kernel = _kernels()[name]
    blocks = math.ceil(n / _THREADS)
    if stream is None:
        kernel[blocks, _THREADS](*args)
    else:
        kernel[blocks, _THREADS, stream](*args)


def tx_fields(sx, sz, tau, ex, ez, delays, apod, c, fc, halfkw, out_re, out_im, stream=None):
    """GPU twin of :func:`mrct.kernels.us_cpu.tx_fields`."""
    _launch("txf", sx.shape[0], stream, sx, sz, tau, ex, ez, delays, apod, c, fc, halfkw,
            out_re, out_im)  # fmt: skip


def simulate_rf(sx, sz, amp, tau, dtx, a_re, a_im, ex, ez, c, halfkw, table, t_start, inv_dt,
                lvl_per_mm, fs, t0, out, stream=None):  # fmt: skip
    """GPU twin of :func:`mrct.kernels.us_cpu.simulate_rf` (accumulates into a zeroed ``out``)."""
    _launch("sim", ex.shape[0] * sx.shape[0], stream, sx, sz, amp, tau, dtx, a_re, a_im, ex, ez,
            c, halfkw, table, t_start, inv_dt, lvl_per_mm, fs, t0, out)  # fmt: skip


def das_forward(rf, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out, stream=None):
    """GPU twin of :func:`mrct.kernels.us_cpu.das_forward` (``out`` is overwritten)."""
    n = rf.shape[0] * px.shape[0]
    _launch("fwd", n, stream, rf, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out)


def das_adjoint(img, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out, stream=None):
    """GPU twin of :func:`mrct.kernels.us_cpu.das_adjoint`; ``out`` must be zeroed."""
    n = img.shape[0] * out.shape[1] * img.shape[1]
    _launch("adj", n, stream, img, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out)
