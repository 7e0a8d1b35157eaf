"""Numba CPU kernels for ultrasound: transmit fields, RF simulation, delay-and-sum and its adjoint.

Arrays are C-contiguous, geometry in float64, data float32 or float64, outputs preallocated
(the physics layer passes torch CPU tensors zero-copy). Work is split with ``prange`` so that
no two workers write the same memory: RF simulation and the DAS adjoint run one receive
element per worker (each owns its channel), the DAS forward one pixel per worker. The
arithmetic is shared with :mod:`.us_cuda` through :mod:`.us_math`.
"""

from __future__ import annotations

import math

from numba import njit, prange

from . import us_math

__all__ = ["tx_fields", "simulate_rf", "das_forward", "das_adjoint"]

_jit = njit(fastmath=True, nogil=True, inline="always")
_um = us_math.build(_jit)
_element_gain = _um.element_gain
_tx_amplitude = _um.tx_amplitude
_pulse_at = _um.pulse_at
_das_tap = _um.das_tap

_par = dict(parallel=True, fastmath=True, nogil=True, cache=True)


@njit(**_par)
def tx_fields(sx, sz, tau, ex, ez, delays, apod, c, fc, halfkw, out_re, out_im):
    """Complex transmit amplitude at each point ``(sx[s], sz[s])`` with arrival ``tau[s]``.

    ex, ez, delays, apod : (n_elements,) element positions (mm), transmit delays (us) and
    transmit apodisation; c : mm/us; fc : MHz; halfkw : ``pi f_c w / c`` (element width w).
    """
    for s in prange(sx.shape[0]):
        re, im = _tx_amplitude(sx[s], sz[s], tau[s], ex, ez, delays, apod, c, fc, halfkw)
        out_re[s] = re
        out_im[s] = im


@njit(**_par)
def simulate_rf(sx, sz, amp, tau, dtx, a_re, a_im, ex, ez, c, halfkw, table, t_start, inv_dt,
                lvl_per_mm, fs, t0, out):  # fmt: skip
    """Pulse-echo RF channel data ``out (n_elements, n_t)`` (accumulated into, zero it first).

    Per scatterer ``s``: position ``(sx, sz)`` mm, reflectivity ``amp``, transmit arrival
    ``tau`` (us), transmit path length ``dtx`` (mm) and complex transmit amplitude
    ``(a_re, a_im)``; ``table`` (n_levels, 2, n_taps): the two-way pulse (in-phase,
    quadrature) after attenuation over ``level / lvl_per_mm`` mm of path, sampled every
    ``1 / inv_dt`` us from ``t_start``; samples at ``t0 + k / fs`` us.
    """
    n_el = ex.shape[0]
    n_t = out.shape[1]
    n_lvl = table.shape[0]
    t_end = t_start + (table.shape[2] - 1) / inv_dt
    for j in prange(n_el):
        for s in range(sx.shape[0]):
            dx = sx[s] - ex[j]
            dz = sz[s] - ez[j]
            g = _element_gain(dx, dz, halfkw) * amp[s]
            if g == 0.0:
                continue
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
                out[j, k] += _pulse_at(table, lvl, t0 + k / fs - tc, t_start, inv_dt, ar, ai)


@njit(**_par)
def das_forward(rf, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out):
    """Delay-and-sum ``out (B, n_pix)`` from channel data ``rf (B, n_elements, n_t)``.

    px, pz, tau : (n_pix,) pixel positions (mm) and transmit arrival times (us); jlo, jhi :
    (n_pix,) int64, the elements ``jlo <= j < jhi`` that can contribute (the f-number
    aperture; ``0, n_elements`` for all).
    """
    B = rf.shape[0]
    n_t = rf.shape[2]
    n_pix = px.shape[0]
    for q in prange(B * n_pix):
        b = q // n_pix
        p = q - b * n_pix
        acc = 0.0
        for j in range(jlo[p], jhi[p]):
            k, w0, w1 = _das_tap(px[p], pz[p], tau[p], ex[j], ez[j], c, fs, t0, fnum, window, n_t)
            if k >= 0:
                acc += w0 * rf[b, j, k] + w1 * rf[b, j, k + 1]
        out[b, p] = acc


@njit(**_par)
def das_adjoint(img, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out):
    """Exact adjoint of :func:`das_forward`: ``out (B, n_elements, n_t)`` is overwritten."""
    B = img.shape[0]
    n_pix = img.shape[1]
    n_el = out.shape[1]
    n_t = out.shape[2]
    for q in prange(B * n_el):
        b = q // n_el
        j = q - b * n_el
        for k in range(n_t):
            out[b, j, k] = 0.0
        for p in range(n_pix):
            v = img[b, p]
            if v == 0.0 or j < jlo[p] or j >= jhi[p]:
                continue
            k, w0, w1 = _das_tap(px[p], pz[p], tau[p], ex[j], ez[j], c, fs, t0, fnum, window, n_t)
            if k >= 0:
                out[b, j, k] += w0 * v
                out[b, j, k + 1] += w1 * v
