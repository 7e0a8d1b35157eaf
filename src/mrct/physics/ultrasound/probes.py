"""Array probes, transmit sequences, point scatterers and the two-way pulse.

Units throughout :mod:`mrct.physics.ultrasound`: positions in mm, times in microseconds,
frequencies in MHz, speed of sound in m/s (``probe.c`` gives mm/us), angles in radians,
attenuation in dB/cm/MHz. The array lies along ``x`` at ``z = 0``, centred on ``x = 0``;
``z`` is depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "LinearArray",
    "PhasedArray",
    "PlaneWave",
    "DivergingWave",
    "FocusedWave",
    "Scatterers",
    "pulse_table",
]

_PULSES = ("gaussian", "windowed-sine")
_TAIL = 3e-4  # the pulse table ends where |h_a| falls below this fraction of its peak


@dataclass(frozen=True)
class LinearArray:
    """A uniform linear array (defaults: a 7.6 MHz, 128-element L11-5v-like probe).

    Parameters
    ----------
    n_elements : number of elements.
    pitch : element spacing (mm).
    center_frequency : MHz.
    bandwidth : pulse-echo -6 dB fractional bandwidth (0.77 = 77 %).
    element_width : mm (default 0.9 * pitch).
    focus : elevation focus (mm); also the default depth of :class:`FocusedWave`.
    sampling_frequency : MHz (default 4 x centre frequency).
    speed_of_sound : m/s.
    pulse : ``"gaussian"`` (Gaussian-modulated cosine, the default) or ``"windowed-sine"``
        (``tx_cycles`` cycles of a sine filtered twice by a generalized-normal probe response,
        the pulse model of MUST / pymust).
    tx_cycles : number of cycles of the windowed-sine transmit pulse.
    """

    n_elements: int = 128
    pitch: float = 0.3
    center_frequency: float = 7.6
    bandwidth: float = 0.77
    element_width: float | None = None
    focus: float = 18.0
    sampling_frequency: float | None = None
    speed_of_sound: float = 1540.0
    pulse: str = "gaussian"
    tx_cycles: float = 1.0

    def __post_init__(self):
        if int(self.n_elements) < 1:
            raise ValueError(f"n_elements must be >= 1, got {self.n_elements}")
        for name in ("pitch", "center_frequency", "speed_of_sound", "focus", "tx_cycles"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be positive, got {v}")
        if not 0 < self.bandwidth < 2:
            raise ValueError(f"bandwidth is a fraction in (0, 2), got {self.bandwidth}")
        if self.element_width is not None and not 0 < self.element_width <= self.pitch:
            raise ValueError(f"element_width must be in (0, pitch], got {self.element_width}")
        if self.sampling_frequency is not None and self.sampling_frequency < 2 * self.fc:
            raise ValueError("sampling_frequency must be at least twice the centre frequency")
        if self.pulse not in _PULSES:
            raise ValueError(f"pulse must be one of {_PULSES}, got {self.pulse!r}")
        object.__setattr__(self, "n_elements", int(self.n_elements))

    # -- derived quantities ---------------------------------------------------------------
    @property
    def fc(self) -> float:
        """Centre frequency (MHz)."""
        return float(self.center_frequency)

    @property
    def fs(self) -> float:
        """Sampling frequency (MHz)."""
        return float(self.sampling_frequency or 4.0 * self.fc)

    @property
    def c(self) -> float:
        """Speed of sound in mm/us."""
        return self.speed_of_sound / 1000.0

    @property
    def wavelength(self) -> float:
        """Wavelength at the centre frequency (mm)."""
        return self.c / self.fc

    @property
    def width(self) -> float:
        """Element width (mm)."""
        return float(self.element_width if self.element_width is not None else 0.9 * self.pitch)

    @property
    def aperture(self) -> float:
        """Distance between the centres of the outer elements (mm)."""
        return (self.n_elements - 1) * self.pitch

    @property
    def element_x(self) -> np.ndarray:
        """Lateral element positions (mm), centred on 0."""
        return (np.arange(self.n_elements) - (self.n_elements - 1) / 2) * self.pitch

    @property
    def element_z(self) -> np.ndarray:
        return np.zeros(self.n_elements)

    @property
    def halfkw(self) -> float:
        """``pi f_c w / c``: the argument scale of the element directivity sinc."""
        return math.pi * self.fc * self.width / self.c

    def time_axis(self, n_samples: int, t0: float = 0.0) -> np.ndarray:
        """Sample times (us) of RF channel data."""
        return t0 + np.arange(n_samples) / self.fs

    # -- pulse ----------------------------------------------------------------------------
    def pulse_echo(self, t: np.ndarray, attenuation: float = 0.0, path: float = 0.0):
        """The analytic two-way pulse ``h + i H[h]`` at times ``t`` (us), peak 1 without loss,
        after ``path`` mm of attenuation ``attenuation`` dB/cm/MHz."""
        tab, t_start, inv_dt, _ = pulse_table(self, attenuation, path, n_levels=2)
        u = (np.asarray(t, dtype=np.float64) - t_start) * inv_dt
        lvl = 1 if path > 0 else 0
        idx = np.arange(tab.shape[2])
        re = np.interp(u, idx, tab[lvl, 0], left=0.0, right=0.0)
        im = np.interp(u, idx, tab[lvl, 1], left=0.0, right=0.0)
        return re + 1j * im


@dataclass(frozen=True)
class PhasedArray(LinearArray):
    """A phased array for sector imaging (defaults: a 2.7 MHz, 64-element P4-2v-like probe)."""

    n_elements: int = 64
    pitch: float = 0.3
    center_frequency: float = 2.7
    bandwidth: float = 0.74
    element_width: float | None = 0.25
    focus: float = 60.0


# -- pulse tables ------------------------------------------------------------------------
def _spectrum(probe: LinearArray, f: np.ndarray) -> np.ndarray:
    """Two-way (pulse-echo) spectrum magnitude / phase on frequencies ``f`` >= 0 (MHz)."""
    fc, bw = probe.fc, probe.bandwidth
    if probe.pulse == "gaussian":
        sigma_f = bw * fc / 2 / math.sqrt(2 * math.log(2))  # -6 dB at fc (1 +- bw / 2)
        # minus the mirrored lobe: no DC, so the analytic pulse is as short as the pulse
        g = np.exp(-((f - fc) ** 2) / (2 * sigma_f**2)) - np.exp(
            -((f + fc) ** 2) / (2 * sigma_f**2)
        )
        return g.astype(np.complex128)
    # windowed sine of tx_cycles cycles centred on t = 0, times the squared probe response
    # (a generalized normal window with -6 dB pulse-echo bandwidth bw: the MUST model)
    T = probe.tx_cycles / fc
    w, wc = 2 * np.pi * f, 2 * np.pi * fc

    def sinc(u):
        return np.sinc(u / np.pi)

    tx = -1j * (sinc(T * (w - wc) / 2) - sinc(T * (w + wc) / 2)) * T / 2
    wb = bw * wc
    p = math.log(126) / math.log(2 * wc / wb)
    probe2 = np.exp(-((np.abs(w - wc) / (wb / 2 / math.log(2) ** (1 / p))) ** p))
    return tx * probe2


def pulse_table(probe: LinearArray, attenuation: float = 0.0, max_path: float = 0.0,
                n_levels: int = 64, oversample: int = 16):  # fmt: skip
    """Tabulated analytic two-way pulse for the kernels, one row per attenuation path length.

    Returns ``(table, t_start, inv_dt, lvl_per_mm)``: ``table`` (n_levels, 2, n_taps) float64
    holds the in-phase and quadrature parts of the pulse after ``level / lvl_per_mm`` mm of
    path with linear frequency-dependent attenuation ``attenuation`` dB/cm/MHz (amplitude
    ``exp(-a f d)``, ``a = attenuation / 8.686 / 10`` Np/mm/MHz), sampled every
    ``1 / inv_dt`` us from ``t_start``. Without attenuation there is one row.
    """
    if attenuation < 0:
        raise ValueError(f"attenuation must be >= 0 dB/cm/MHz, got {attenuation}")
    dt = 1.0 / (probe.fs * oversample)
    n = 1 << 14
    f = np.fft.fftfreq(n, dt)
    pos = f > 0
    spec = np.zeros(n, dtype=np.complex128)
    spec[pos] = 2 * _spectrum(probe, f[pos])
    lossy = attenuation > 0 and max_path > 0
    levels = np.linspace(0.0, max_path, n_levels) if lossy else np.zeros(1)
    a = attenuation / 8.686 / 10.0
    rows = np.fft.fftshift(np.fft.ifft(spec[None] * np.exp(-a * f[None] * levels[:, None]),
                                       axis=1), axes=1)  # fmt: skip
    peak = np.abs(rows[0]).max()
    rows /= peak
    keep = np.nonzero(np.abs(rows[0]) > _TAIL)[0]
    lo, hi = max(keep[0] - 2, 0), min(keep[-1] + 3, n)
    # attenuated pulses are longer (narrower band): keep what any row needs
    if lossy:
        keep_all = np.nonzero((np.abs(rows) > _TAIL * np.abs(rows).max(axis=1, keepdims=True))
                              .any(axis=0))[0]  # fmt: skip
        lo, hi = max(min(lo, keep_all[0] - 2), 0), min(max(hi, keep_all[-1] + 3), n)
    rows = rows[:, lo:hi]
    table = np.ascontiguousarray(np.stack([rows.real, rows.imag], axis=1))
    t_start = (lo - n // 2) * dt
    lvl_per_mm = (n_levels - 1) / max_path if lossy else 0.0
    return table, t_start, 1.0 / dt, lvl_per_mm


# -- transmits ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Transmit:
    apodization: np.ndarray | None = field(default=None, kw_only=True, compare=False)

    def apod(self, probe: LinearArray) -> np.ndarray:
        if self.apodization is None:
            return np.ones(probe.n_elements)
        a = np.asarray(self.apodization, dtype=np.float64).reshape(-1)
        if a.shape[0] != probe.n_elements:
            raise ValueError(f"apodization needs {probe.n_elements} values, got {a.shape[0]}")
        return a

    def delays(self, probe: LinearArray) -> np.ndarray:  # pragma: no cover - abstract
        """Per-element transmit delays (us), the earliest 0."""
        raise NotImplementedError

    def arrival(self, probe: LinearArray, x, z) -> np.ndarray:  # pragma: no cover - abstract
        """Time (us) at which the transmitted wavefront reaches ``(x, z)`` (same clock as
        :meth:`delays`)."""
        raise NotImplementedError


@dataclass(frozen=True)
class PlaneWave(_Transmit):
    """A plane wave steered by ``angle`` (radians, positive towards +x)."""

    angle: float = 0.0

    def delays(self, probe):
        d = probe.element_x * math.sin(self.angle) / probe.c
        return d - d.min()

    def arrival(self, probe, x, z):
        s, c = math.sin(self.angle), math.cos(self.angle)
        off = (probe.element_x * s).min()
        return (np.asarray(x) * s + np.asarray(z) * c - off) / probe.c


@dataclass(frozen=True)
class DivergingWave(_Transmit):
    """A diverging wave from a virtual point source ``source = (x, z)`` behind the array
    (``z < 0``, mm)."""

    source: tuple[float, float] = (0.0, -10.0)

    def __post_init__(self):
        if self.source[1] >= 0:
            raise ValueError(f"a diverging wave's virtual source needs z < 0, got {self.source}")

    def _dist(self, x, z):
        return np.hypot(np.asarray(x) - self.source[0], np.asarray(z) - self.source[1])

    def delays(self, probe):
        d = self._dist(probe.element_x, probe.element_z) / probe.c
        return d - d.min()

    def arrival(self, probe, x, z):
        off = self._dist(probe.element_x, probe.element_z).min()
        return (self._dist(x, z) - off) / probe.c


@dataclass(frozen=True)
class FocusedWave(_Transmit):
    """A wave focused at ``focus = (x, z)`` (mm, ``z > 0``); ``focus=None`` uses
    ``(0, probe.focus)``. Its wavefront is that of a virtual source at the focus."""

    focus: tuple[float, float] | None = None

    def _focus(self, probe):
        fx, fz = self.focus if self.focus is not None else (0.0, probe.focus)
        if fz <= 0:
            raise ValueError(f"the focus needs z > 0, got {(fx, fz)}")
        return fx, fz

    def delays(self, probe):
        fx, fz = self._focus(probe)
        d = np.hypot(probe.element_x - fx, probe.element_z - fz) / probe.c
        return d.max() - d

    def arrival(self, probe, x, z):
        fx, fz = self._focus(probe)
        x, z = np.asarray(x, dtype=np.float64), np.asarray(z, dtype=np.float64)
        dmax = np.hypot(probe.element_x - fx, probe.element_z - fz).max()
        sign = np.where(z < fz, -1.0, 1.0)
        return (dmax + sign * np.hypot(x - fx, z - fz)) / probe.c


# -- scatterers --------------------------------------------------------------------------
@dataclass
class Scatterers:
    """Point scatterers in the imaging plane: positions ``x``, ``z`` (mm) and reflectivity."""

    x: np.ndarray
    z: np.ndarray
    amplitude: np.ndarray | None = None

    def __post_init__(self):
        self.x = np.ascontiguousarray(self.x, dtype=np.float64).reshape(-1)
        self.z = np.ascontiguousarray(self.z, dtype=np.float64).reshape(-1)
        amp = np.ones_like(self.x) if self.amplitude is None else self.amplitude
        self.amplitude = np.ascontiguousarray(amp, dtype=np.float64).reshape(-1)
        if not self.x.shape == self.z.shape == self.amplitude.shape:
            raise ValueError(
                f"x, z and amplitude must have the same length, got {self.x.shape[0]}, "
                f"{self.z.shape[0]}, {self.amplitude.shape[0]}"
            )
        if not (np.isfinite(self.x).all() and np.isfinite(self.z).all()
                and np.isfinite(self.amplitude).all()):  # fmt: skip
            raise ValueError("scatterer positions and amplitudes must be finite")

    def __len__(self) -> int:
        return self.x.shape[0]

    @classmethod
    def coerce(cls, obj) -> Scatterers:
        """A :class:`Scatterers` from itself, a mapping with ``x``, ``z`` (``amplitude``) or an
        ``(N, 2)`` / ``(N, 3)`` array of ``x, z[, amplitude]``."""
        if isinstance(obj, cls):
            return obj
        if isinstance(obj, dict):
            return cls(obj["x"], obj["z"], obj.get("amplitude"))
        a = np.asarray(obj, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] not in (2, 3):
            raise ValueError(
                f"scatterers must be (N, 2) or (N, 3) [x, z, amplitude], got {a.shape}"
            )
        return cls(a[:, 0], a[:, 1], a[:, 2] if a.shape[1] == 3 else None)
