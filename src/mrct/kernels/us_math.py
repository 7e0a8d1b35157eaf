"""Per-scatterer and per-pixel arithmetic shared by the CPU and CUDA ultrasound kernels.

Plain Python functions on scalars and arrays: :mod:`.us_cpu` compiles them with
``numba.njit`` and :mod:`.us_cuda` with ``numba.cuda.jit(device=True)``, so both back ends run
exactly the same arithmetic.

Units: positions in mm, times in microseconds, frequencies in MHz, speed of sound ``c`` in
mm/us (1.54 for 1540 m/s). The array lies on the line ``z = 0`` with elements at
``(ex[j], ez[j])``; ``z`` grows with depth.

Pulse-echo model (2D, ``x``-``z`` plane; Shahriari & Garcia 2018 use the same far-field
element model in SIMUS):

* an element of width ``w`` seen at distance ``r`` and angle ``theta`` from its normal has the
  far-field gain ``g = cos(theta) * sinc(k_c w / 2 sin(theta)) / sqrt(r)`` (soft baffle,
  directivity at the centre frequency, cylindrical spreading);
* the transmit wave at a scatterer is the sum over transmitting elements of the pulse delayed
  by ``delay_i + r_i / c``. It is evaluated *narrow-band*: the complex amplitude
  ``A = sum_i apod_i g_i exp(-2 pi i f_c (delay_i + r_i / c - tau))`` multiplies the analytic
  two-way pulse centred on the geometric arrival time ``tau`` of the wavefront (plane,
  diverging or focused), so diffraction, focusing gain and edge shadowing enter through
  ``|A|`` and ``arg A``;
* the echo of a scatterer with reflectivity ``rc`` on receive element ``j`` is
  ``rc * g_j * Re(A h_a(t - tau - r_j / c))``, where ``h_a = h + i H[h]`` is read from a table
  that also holds the pulse after frequency-dependent attenuation over the travelled path
  (one table row per path length).

Delay-and-sum: pixel ``p`` reads channel ``j`` at ``tau(p) + r_j(p) / c`` with linear
interpolation between samples, weighted by an f-number aperture window. The adjoint scatters
with the same two weights, so it is the exact transpose.

Developers: Numba caches the CPU kernels on disk and only watches the file that defines a
cached kernel; after editing this file run ``make clean-cache``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

#: aperture windows of the delay-and-sum f-number apodisation
WINDOWS = {"rect": 0, "hann": 1, "tukey": 2}


def build(jit, add):
    """Compile the shared functions with ``jit`` (``numba.njit`` or a CUDA device jit).

    ``add(arr, idx, v)`` accumulates ``v`` into ``arr[idx]`` (``idx`` a tuple of indices;
    ``+=`` on the CPU, where each worker owns what it writes; ``cuda.atomic.add`` on the GPU).
    """

    @jit
    def sinc(u):
        if abs(u) < 1e-8:
            return 1.0
        return math.sin(u) / u

    @jit
    def element_gain(dx, dz, halfkw):
        """Far-field gain of an element seen at offset ``(dx, dz)`` (mm); 0 behind it."""
        r = math.sqrt(dx * dx + dz * dz)
        if r < 1e-6 or dz <= 0.0:
            return 0.0
        sin_t = dx / r
        cos_t = dz / r
        return cos_t * sinc(halfkw * sin_t) / math.sqrt(r)

    @jit
    def tx_amplitude(x, z, tau, ex, ez, delays, apod, c, fc, halfkw):
        """Complex transmit amplitude ``(re, im)`` at ``(x, z)`` relative to arrival ``tau``."""
        re = 0.0
        im = 0.0
        w = 2.0 * math.pi * fc
        for i in range(ex.shape[0]):
            a = apod[i]
            if a == 0.0:
                continue
            dx = x - ex[i]
            dz = z - ez[i]
            g = a * element_gain(dx, dz, halfkw)
            if g == 0.0:
                continue
            t = delays[i] + math.sqrt(dx * dx + dz * dz) / c - tau
            re += g * math.cos(w * t)
            im -= g * math.sin(w * t)
        return re, im

    @jit
    def pulse_at(table, lvl, t, t_start, inv_dt, a_re, a_im):
        """``Re((a_re + i a_im) h_a(t))`` with ``h_a`` from row ``lvl`` of the pulse table.

        ``table`` is ``(n_levels, 2, n_taps)``: in-phase and quadrature (Hilbert) parts of the
        two-way pulse sampled every ``1 / inv_dt`` us from ``t_start``; linear interpolation.
        """
        u = (t - t_start) * inv_dt
        if u < 0.0:
            return 0.0
        i = int(u)
        if i >= table.shape[2] - 1:
            return 0.0
        f = u - i
        h_i = table[lvl, 0, i] + f * (table[lvl, 0, i + 1] - table[lvl, 0, i])
        h_q = table[lvl, 1, i] + f * (table[lvl, 1, i + 1] - table[lvl, 1, i])
        return a_re * h_i - a_im * h_q

    @jit
    def aperture_weight(dx, dz, fnum, window):
        """f-number apodisation: weight of an element at lateral offset ``dx`` from a pixel
        at depth ``dz`` below it (``fnum <= 0``: the whole aperture, weight 1)."""
        if fnum <= 0.0:
            return 1.0
        if dz <= 0.0:
            return 0.0
        half = dz / (2.0 * fnum)
        ratio = abs(dx) / half
        if ratio > 1.0:
            return 0.0
        if window == 1:  # hann
            cw = math.cos(0.5 * math.pi * ratio)
            return cw * cw
        if window == 2:  # tukey, 50 % taper
            if ratio <= 0.5:
                return 1.0
            cw = math.cos(math.pi * (ratio - 0.5))
            return 0.5 * (1.0 + cw)
        return 1.0

    @jit
    def das_tap(px, pz, tau, exj, ezj, c, fs, t0, fnum, window, n_t):
        """Sample index ``k`` and weights ``(w0, w1)`` on samples ``k`` and ``k + 1`` with
        which pixel ``(px, pz)`` (transmit arrival ``tau``) reads one channel; ``k = -1`` when
        it reads nothing."""
        dx = px - exj
        dz = pz - ezj
        a = aperture_weight(dx, dz, fnum, window)
        if a == 0.0:
            return -1, 0.0, 0.0
        t = tau + math.sqrt(dx * dx + dz * dz) / c
        u = (t - t0) * fs
        if u < 0.0:
            return -1, 0.0, 0.0
        k = int(u)
        if k >= n_t - 1:
            return -1, 0.0, 0.0
        f = u - k
        return k, a * (1.0 - f), a * f

    @jit
    def add_echo(out, j, s, sx, sz, amp, tau, dtx, a_re, a_im, ex, ez, c, halfkw, table, t_start,
                 inv_dt, lvl_per_mm, fs, t0):  # fmt: skip
        """Add the echo of scatterer ``s`` on receive element ``j`` to channel ``out[j]``
        (arguments as for :func:`mrct.kernels.us_cpu.simulate_rf`)."""
        dx = sx[s] - ex[j]
        dz = sz[s] - ez[j]
        g = element_gain(dx, dz, halfkw) * amp[s]
        if g == 0.0:
            return
        r = math.sqrt(dx * dx + dz * dz)
        tc = tau[s] + r / c
        lvl = min(int((dtx[s] + r) * lvl_per_mm + 0.5), table.shape[0] - 1)
        t_end = t_start + (table.shape[2] - 1) / inv_dt
        k0 = max(int(math.ceil((tc + t_start - t0) * fs)), 0)
        k1 = min(int(math.floor((tc + t_end - t0) * fs)), out.shape[1] - 1)
        ar = g * a_re[s]
        ai = g * a_im[s]
        for k in range(k0, k1 + 1):
            add(out, (j, k), pulse_at(table, lvl, t0 + k / fs - tc, t_start, inv_dt, ar, ai))

    @jit
    def das_pixel(rf, b, p, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window):
        """Delay-and-sum value of pixel ``p`` from channel data ``rf[b]`` (n_elements, n_t)."""
        acc = 0.0
        for j in range(jlo[p], jhi[p]):
            k, w0, w1 = das_tap(px[p], pz[p], tau[p], ex[j], ez[j], c, fs, t0, fnum, window,
                                rf.shape[2])  # fmt: skip
            if k >= 0:
                acc += w0 * rf[b, j, k] + w1 * rf[b, j, k + 1]
        return acc

    @jit
    def das_spread(img, b, j, p, px, pz, tau, jlo, jhi, ex, ez, c, fs, t0, fnum, window, out):
        """Adjoint of :func:`das_pixel` for one pixel and element: add ``img[b, p]`` times the
        two weights into channel ``out[b, j]``."""
        v = img[b, p]
        if v == 0.0 or j < jlo[p] or j >= jhi[p]:
            return
        k, w0, w1 = das_tap(px[p], pz[p], tau[p], ex[j], ez[j], c, fs, t0, fnum, window,
                            out.shape[2])  # fmt: skip
        if k >= 0:
            add(out, (b, j, k), w0 * v)
            add(out, (b, j, k + 1), w1 * v)

    return SimpleNamespace(
        add_echo=add_echo,
        das_pixel=das_pixel,
        das_spread=das_spread,
        sinc=sinc,
        element_gain=element_gain,
        tx_amplitude=tx_amplitude,
        pulse_at=pulse_at,
        aperture_weight=aperture_weight,
        das_tap=das_tap,
    )
