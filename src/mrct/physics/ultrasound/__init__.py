"""Ultrasound physics: array probes, transmits, an RF simulator and delay-and-sum beamforming.

* :class:`LinearArray`, :class:`PhasedArray`: probes (mm, MHz, m/s);
* :class:`PlaneWave`, :class:`DivergingWave`, :class:`FocusedWave`: transmits;
* :func:`simulate_rf`: pulse-echo RF channel data from point scatterers (Numba CPU / CUDA);
* :func:`das` / :class:`DAS`: delay-and-sum to a :class:`LinearGrid` or :class:`PolarGrid`
  as a :class:`~mrct.physics.LinearOperator` with an exact adjoint;
* :func:`envelope`, :func:`iq_demodulate`, :func:`log_compress`, :func:`scan_convert`,
  :func:`compand` / :func:`expand` (mu-law).

See ``docs/ultrasound.md``.
"""

from .beamform import DAS, LinearGrid, PolarGrid, das
from .probes import (
    DivergingWave,
    FocusedWave,
    LinearArray,
    PhasedArray,
    PlaneWave,
    Scatterers,
    pulse_table,
)
from .signal import (
    analytic_signal,
    compand,
    envelope,
    expand,
    iq_demodulate,
    log_compress,
    scan_convert,
)
from .simulate import simulate_rf

__all__ = [
    "DAS",
    "DivergingWave",
    "FocusedWave",
    "LinearArray",
    "LinearGrid",
    "PhasedArray",
    "PlaneWave",
    "PolarGrid",
    "Scatterers",
    "analytic_signal",
    "bmode",
    "compand",
    "das",
    "envelope",
    "expand",
    "iq_demodulate",
    "log_compress",
    "pulse_table",
    "scan_convert",
    "simulate_rf",
]


def bmode(beamformed, dynamic_range: float = 60.0, axis: int = -2):
    """B-mode (dB in ``[-dynamic_range, 0]``) of a beamformed RF image: envelope + log."""
    return log_compress(envelope(beamformed, axis=axis), dynamic_range)
