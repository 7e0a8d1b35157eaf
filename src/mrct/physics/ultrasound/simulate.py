"""RF channel data from point scatterers: :func:`simulate_rf`.

The model (2D, far field, narrow-band transmit beam; see :mod:`mrct.kernels.us_math`):
``rf_j(t) = sum_s rc_s g_j(s) Re(A(s) h_a(t - tau(s) - r_j(s) / c; d(s)))`` with the element
gain ``g = cos(theta) sinc(pi f_c w / c sin(theta)) / sqrt(r)``, the complex transmit
amplitude ``A(s)`` summed over the transmitting elements, the wavefront arrival ``tau(s)`` of
the transmit and the analytic two-way pulse ``h_a`` after linear frequency-dependent
attenuation over the round-trip path ``d(s)``. This is the model of MUST's SIMUS
(Garcia 2021) in the time domain, with the transmit field evaluated at the centre frequency.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...kernels import us_cpu
from ..backend import kernel_array, torch_stream, use_cuda
from .probes import LinearArray, Scatterers, pulse_table

__all__ = ["simulate_rf", "default_n_samples"]


def default_n_samples(probe: LinearArray, tau_max: float, t0: float = 0.0) -> int:
    """Samples needed to hold echoes up to ``tau_max`` us plus the pulse's tail."""
    table, t_start, inv_dt, _ = pulse_table(probe)
    t_end = t_start + (table.shape[2] - 1) / inv_dt
    return max(int(math.ceil((tau_max + t_end - t0) * probe.fs)) + 2, 1)


def simulate_rf(probe: LinearArray, scatterers, transmit, *, attenuation: float = 0.0,
                n_samples: int | None = None, t0: float = 0.0, dtype=torch.float32,
                device=None, backend: str = "auto") -> torch.Tensor:  # fmt: skip
    """Simulate pulse-echo RF channel data of one transmit.

    Parameters
    ----------
    probe : LinearArray or PhasedArray
    scatterers : Scatterers, a mapping with ``x``, ``z``, ``amplitude`` or an (N, 2|3) array
        Point scatterers (mm, reflectivity).
    transmit : PlaneWave, DivergingWave or FocusedWave
    attenuation : float
        Linear frequency-dependent attenuation (dB/cm/MHz; soft tissue ~0.5).
    n_samples : int, optional
        RF length; default: until the echo of the farthest scatterer has ended.
    t0 : float
        Time of the first sample (us; 0 is the firing of the first element).
    dtype, device : of the returned tensor; a CUDA device runs the CUDA kernels.
    backend : {"auto", "cpu", "cuda"}
        ``"cuda"`` with a CPU device runs the CUDA kernels in Numba's simulator (tests).

    Returns
    -------
    Tensor (n_elements, n_samples)
        RF channel data sampled at ``probe.fs`` from ``t0`` (arbitrary units).
    """
    if not isinstance(probe, LinearArray):
        raise TypeError(f"probe must be a LinearArray or PhasedArray, got {type(probe).__name__}")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    if backend not in ("auto", "cpu", "cuda"):
        raise ValueError(f'backend must be "auto", "cpu" or "cuda", got {backend!r}')
    sc = Scatterers.coerce(scatterers)
    ex, ez = probe.element_x, probe.element_z
    tau = np.ascontiguousarray(transmit.arrival(probe, sc.x, sc.z), dtype=np.float64)
    dtx = tau * probe.c  # transmit path for the attenuation (mm)
    far = np.hypot(sc.x[:, None] - ex[[0, -1]][None], sc.z[:, None]).max(axis=1) if len(sc) else 0
    if n_samples is None:
        n_samples = default_n_samples(probe, float(np.max(tau + far / probe.c, initial=0.0)), t0)
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    max_path = float(np.max(dtx + far, initial=0.0)) * 1.01 + 1e-6
    table, t_start, inv_dt, lvl_per_mm = pulse_table(probe, attenuation, max_path)
    delays = np.ascontiguousarray(transmit.delays(probe), dtype=np.float64)
    apod = np.ascontiguousarray(transmit.apod(probe), dtype=np.float64)
    device = torch.device(device) if device is not None else torch.device("cpu")
    out = torch.zeros((probe.n_elements, int(n_samples)), dtype=torch.float64, device=device)
    if len(sc) == 0:
        return out.to(dtype)
    geo = [sc.x, sc.z, sc.amplitude, tau, dtx]
    if use_cuda(out, backend):
        from ...kernels import us_cuda as kern

        keep = [torch.as_tensor(a, device=device) for a in geo + [ex, ez, delays, apod, table]]
        sx, sz, amp, tau_d, dtx_d, ex_d, ez_d, del_d, apod_d, tab_d = (kernel_array(t)
                                                                      for t in keep)  # fmt: skip
        a_re = torch.empty(len(sc), dtype=torch.float64, device=device)
        a_im = torch.empty_like(a_re)
        kw = {"stream": torch_stream(out)}
        kern.tx_fields(sx, sz, tau_d, ex_d, ez_d, del_d, apod_d, probe.c, probe.fc, probe.halfkw,
                       kernel_array(a_re), kernel_array(a_im), **kw)  # fmt: skip
        kern.simulate_rf(sx, sz, amp, tau_d, dtx_d, kernel_array(a_re), kernel_array(a_im), ex_d,
                         ez_d, probe.c, probe.halfkw, tab_d, t_start, inv_dt, lvl_per_mm,
                         probe.fs, t0, kernel_array(out), **kw)  # fmt: skip
        del keep
    else:
        a_re, a_im = np.empty(len(sc)), np.empty(len(sc))
        us_cpu.tx_fields(sc.x, sc.z, tau, ex, ez, delays, apod, probe.c, probe.fc, probe.halfkw,
                         a_re, a_im)  # fmt: skip
        us_cpu.simulate_rf(sc.x, sc.z, sc.amplitude, tau, dtx, a_re, a_im, ex, ez, probe.c,
                           probe.halfkw, table, t_start, inv_dt, lvl_per_mm, probe.fs, t0,
                           out.numpy())  # fmt: skip
    return out.to(dtype)
