"""Ultrasound image-quality metrics on envelope (or B-mode) samples of two regions.

Re-exported by :mod:`mrct.metrics` (``gcnr``, ``contrast_ratio``, ``cnr``, ``speckle_snr``,
``rayleigh_ks``). Inputs are arrays (numpy, torch, lists) of pixel values of a region, of
any shape; they are flattened.

References
----------
.. [1] A. Rodriguez-Molares et al., "The Generalized Contrast-to-Noise Ratio: A Formal
   Definition for Lesion Detectability", IEEE TUFFC 67(4):745-759, 2020.
.. [2] R. F. Wagner, S. W. Smith, J. M. Sandrik, H. Lopez, "Statistics of speckle in
   ultrasound B-scans", IEEE Trans. Sonics Ultrason. 30(3):156-163, 1983 (speckle SNR
   ``sqrt(pi / (4 - pi)) = 1.91`` of a Rayleigh envelope).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["gcnr", "contrast_ratio", "cnr", "speckle_snr", "rayleigh_ks", "RAYLEIGH_SNR"]

#: speckle SNR (mean / std) of a Rayleigh-distributed envelope
RAYLEIGH_SNR = math.sqrt(math.pi / (4 - math.pi))


def _samples(a, name: str) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    v = np.asarray(a, dtype=np.float64).ravel()
    if v.size < 2:
        raise ValueError(f"{name} needs at least 2 samples, got {v.size}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return v


def gcnr(a, b, bins: int = 256) -> float:
    """Generalized contrast-to-noise ratio ``1 - OVL`` of two regions [1]_.

    ``OVL = sum_k min(p_a[k], p_b[k])`` is the overlap of the two histograms (``bins`` bins
    spanning both regions' range). 0: indistinguishable, 1: fully separable. Invariant under
    any monotonic transform of the pixel values (envelope or dB give the same value).
    """
    x, y = _samples(a, "a"), _samples(b, "b")
    lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
    if hi == lo:
        return 0.0
    edges = np.linspace(lo, hi, int(bins) + 1)
    pa = np.histogram(x, edges)[0] / x.size
    pb = np.histogram(y, edges)[0] / y.size
    return float(1.0 - np.minimum(pa, pb).sum())


def contrast_ratio(a, b) -> float:
    """Contrast ratio in dB, ``20 log10(mean(a) / mean(b))`` of envelope samples."""
    x, y = _samples(a, "a"), _samples(b, "b")
    ma, mb = x.mean(), y.mean()
    if ma <= 0 or mb <= 0:
        raise ValueError("contrast_ratio needs envelope samples with positive means")
    return float(20 * np.log10(ma / mb))


def cnr(a, b) -> float:
    """Contrast-to-noise ratio ``|mean(a) - mean(b)| / sqrt(var(a) + var(b))``."""
    x, y = _samples(a, "a"), _samples(b, "b")
    den = math.sqrt(x.var() + y.var())
    return float(abs(x.mean() - y.mean()) / den) if den > 0 else float("inf")


def speckle_snr(a) -> float:
    """Speckle SNR ``mean / std`` of envelope samples (1.91 for fully developed speckle)."""
    x = _samples(a, "a")
    s = x.std()
    return float(x.mean() / s) if s > 0 else float("inf")


def rayleigh_ks(a) -> tuple[float, float]:
    """Kolmogorov-Smirnov test of envelope samples against a Rayleigh distribution.

    The scale is the maximum-likelihood ``sigma^2 = mean(a^2) / 2``; fitting it makes the
    p-value conservative (Lilliefors). Returns ``(statistic, p_value)``; ``p > 0.05``: no
    evidence against fully developed speckle. Speckle samples are spatially correlated, so
    test on samples about one resolution cell apart.
    """
    from scipy import stats

    x = _samples(a, "a")
    if (x < 0).any():
        raise ValueError("rayleigh_ks needs envelope samples (>= 0), not RF or dB values")
    scale = math.sqrt(np.mean(x * x) / 2)
    res = stats.kstest(x, "rayleigh", args=(0.0, scale))
    return float(res.statistic), float(res.pvalue)
