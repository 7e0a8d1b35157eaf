"""Numba CPU kernels for ultrasound: transmit fields, RF simulation, delay-and-sum and its adjoint.

Arrays are C-contiguous, geometry in float64, data float32 or float64, outputs preallocated
(the physics layer passes torch CPU tensors zero-copy). Work is split with ``prange`` so that
no two workers write the same memory: RF simulation and the DAS adjoint run one receive
element per worker (each owns its channel), the DAS forward one pixel per worker. The
arithmetic is shared with :mod:`.us_cuda` through :mod:`.us_math`.
"""

from __future__ import annotations

from numba import njit, prange

from . import us_math
from ._compile import PARALLEL, inline

__all__ = ["tx_fields", "simulate_rf", "das_forward", "das_adjoint"]


@inline
def _add(arr, idx, v):
    arr[idx] += v


_um = us_math.build(inline, _add)
_tx_amplitude, _add_echo = _um.tx_amplitude, _um.add_echo
_das_pixel, _das_spread = _um.das_pixel, _um.das_spread


@njit(**PARALLEL)
def tx_fields(sx, sz, tau, ex, ez, delays, apod, c, fc, halfkw, out_re, out_im):
    """Complex transmit amplitude at each point ``(sx[s], sz[s])`` with arrival ``tau[s]``.

    ex, ez, delays, apod : (n_elements,) element positions (mm), transmit delays (us) and
    transmit apodisation; c : mm/us; fc : MHz; halfkw : ``pi f_c w / c`` (element width w).
    """
    for s in prange(sx.shape[0]):
        re, im = _tx_amplitude(sx[s], sz[s], tau[s], ex, ez, delays, apod, c, fc, halfkw)
        out_re[s] = re
        out_im[s] = im


@njit(**PARALLEL)
def simulate_rf(sx, sz, amp, tau, dtx, a_re, a_im, ex, ez, c, halfkw, table, t_start, inv_dt,
                lvl_per_mm, fs, t0, out):  # fmt: skip
    """Pulse-echo RF channel data ``out (n_elements, n_t)`` (accumulated into, zero it first).

    Per scatterer ``s``: position ``(sx, sz)`` mm, reflectivity ``amp``, transmit arrival
    ``tau`` (us), transmit path length ``dtx`` (mm) and complex transmit amplitude
    ``(a_re, a_im)``; ``table`` (n_levels, 2, n_taps): the two-way pulse (in-phase,
    quadrature) after attenuation over ``level / lvl_per_mm`` mm of path, sampled every
    ``1 / inv_dt`` us from ``t_start``; samples at ``t0 + k / fs`` us.
    """
    for j in prange(ex.shape[0]):
        for s in range(sx.shape[0]):
            _add_echo(out, j, s, sx, sz, amp, tau, dtx, a_re, a_im, ex, ez, c, halfkw, table,
                      t_start, inv_dt, lvl_per_mm, fs, t0)  # fmt: skip


@njit(**PARALLEL)
def das_forward(rf, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out):
    """Delay-and-sum ``out (B, n_pix)`` from channel data ``rf (B, n_elements, n_t)``.

    px, pz, tau : (n_pix,) pixel positions (mm) and transmit arrival times (us); jlo, jhi :
    (n_pix,) int64, the elements ``jlo <= j < jhi`` that can contribute (the f-number
    aperture; ``0, n_elements`` for all).
    """
    n_pix = px.shape[0]
    for q in prange(rf.shape[0] * n_pix):
        b = q // n_pix
        p = q - b * n_pix
        out[b, p] = _das_pixel(rf, b, p, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window)


@njit(**PARALLEL)
def das_adjoint(img, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out):
    """Exact adjoint of :func:`das_forward`: ``out (B, n_elements, n_t)`` is overwritten."""
    n_el = out.shape[1]
    for q in prange(img.shape[0] * n_el):
        b = q // n_el
        j = q - b * n_el
        out[b, j, :] = 0.0
        for p in range(img.shape[1]):
            _das_spread(img, b, j, p, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out)
