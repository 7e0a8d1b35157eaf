"""CT numbers (HU) to linear attenuation (mm^-1) for DRR rendering, under named conventions.

``hu_to_mu(hu, convention=..., energy=70.0)`` (torch, differentiable where the convention is):

* ``"physical"`` (default): clamp at -1000 HU, then the bilinear water/bone model used by
  nanodrr (``hu_to_mu``) at an effective photon energy ``energy`` (keV):
  ``mu = mu_w (1 + HU / 1000)`` for HU <= 0 and ``mu = mu_w + (HU / bone_hu) (mu_b - mu_w)``
  above, with ``mu_w`` of water and ``mu_b`` of ICRU-44 cortical bone (1.92 g/cm^3) from the
  NIST X-ray mass attenuation tables (J. H. Hubbell and S. M. Seltzer, NISTIR 5632),
  interpolated log-log in energy; ``bone_hu = 1000`` by default. At 70 keV
  ``mu_w = 0.0193`` and ``mu_b = 0.0502`` mm^-1.
* ``"diffdrr"``: DiffDRR 0.6.1 ``transform_hu_to_density``: air (HU <= -800) set to the
  smallest soft-tissue value, soft tissue (-800 < HU <= 350) kept, bone (HU > 350) times
  ``bone_attenuation_multiplier``, then min-max normalised to [0, 1] (a relative density, not
  mm^-1, and it depends on the volume's range).
* ``"deepdrr"``: DeepDRR's density ``rho = max(min(0.001029 HU + 1.030, 0.0005886 HU + 1.03), 0)``
  (g/cm^3) times the mass attenuation of its threshold material (air HU <= -800, soft tissue
  <= 350, bone above; NIST values of air, ICRU-44 soft tissue and cortical bone) at the
  effective energy (DeepDRR renders a polychromatic spectrum; here it is one energy).
* ``"plastimatch"``: Plastimatch's ``attenuation_lookup_hu``: ``mu = 0`` for HU <= -800, else
  ``0.022 (1 + HU / 1000)`` mm^-1 (water at 50 keV), energy-independent.
* ``"none"``: the volume is already attenuation (no conversion).

The mass attenuation tables cover 30-150 keV.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "hu_to_mu",
    "mass_attenuation",
    "water_hu_to_mu",
    "water_mu_to_hu",
    "ATTENUATION_CONVENTIONS",
]

#: Conventions accepted by :func:`hu_to_mu`.
ATTENUATION_CONVENTIONS = ("physical", "diffdrr", "deepdrr", "plastimatch", "none")

# NIST X-ray mass attenuation coefficients mu/rho (cm^2/g), Hubbell & Seltzer (NISTIR 5632).
_ENERGY_KEV = np.array([30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0])
_MU_RHO = {
    "water": np.array([0.3756, 0.2683, 0.2269, 0.2059, 0.1837, 0.1707, 0.1505]),
    "air": np.array([0.3538, 0.2485, 0.2080, 0.1875, 0.1662, 0.1541, 0.1356]),
    "soft_tissue": np.array([0.3790, 0.2688, 0.2264, 0.2048, 0.1823, 0.1693, 0.1492]),
    "bone": np.array([1.331, 0.6655, 0.4242, 0.3148, 0.2229, 0.1855, 0.1480]),
}
_DENSITY = {"water": 1.0, "air": 0.001205, "soft_tissue": 1.06, "bone": 1.92}


def mass_attenuation(material: str, energy: float) -> float:
    """Mass attenuation coefficient (cm^2/g) of ``water``, ``air``, ``soft_tissue`` or ``bone``
    at ``energy`` keV (30-150), interpolated log-log in the NIST table."""
    if material not in _MU_RHO:
        raise ValueError(f"material must be one of {sorted(_MU_RHO)}, got {material!r}")
    e = float(energy)
    if not (_ENERGY_KEV[0] <= e <= _ENERGY_KEV[-1]):
        raise ValueError(f"energy must be in [30, 150] keV, got {energy}")
    return float(np.exp(np.interp(np.log(e), np.log(_ENERGY_KEV), np.log(_MU_RHO[material]))))


def _mu_mm(material: str, energy: float) -> float:
    """Linear attenuation (mm^-1) of a material at its nominal density."""
    return mass_attenuation(material, energy) * _DENSITY[material] / 10.0


_CHUNK_ELEMENTS = 1 << 22  # hu_to_mu: elements per slab of a large volume


def hu_to_mu(
    hu: torch.Tensor,
    convention: str = "physical",
    energy: float = 70.0,
    *,
    bone_hu: float = 1000.0,
    bone_attenuation_multiplier: float = 1.0,
) -> torch.Tensor:
    """Linear attenuation (mm^-1) of a CT volume in HU under a named convention (module doc).

    Parameters
    ----------
    hu : tensor (...)
        CT numbers (HU).
    convention : {"physical", "diffdrr", "deepdrr", "plastimatch", "none"}
    energy : float
        Effective photon energy (keV) for ``physical`` and ``deepdrr``.
    bone_hu : float
        ``physical``: HU at which the bone coefficient is reached.
    bone_attenuation_multiplier : float
        ``diffdrr``: factor on bone (HU > 350) before normalisation.

    Returns
    -------
    tensor, same shape and dtype
    """
    if not isinstance(hu, torch.Tensor):
        raise TypeError(f"hu must be a torch.Tensor, got {type(hu).__name__}")
    if not hu.is_floating_point():
        hu = hu.to(torch.float32)
    if convention not in ATTENUATION_CONVENTIONS:
        raise ValueError(f"convention must be one of {ATTENUATION_CONVENTIONS}, got {convention!r}")
    if convention == "none":
        return hu
    if (convention != "diffdrr" and not hu.requires_grad and hu.ndim > 0 and hu.shape[0] > 1
            and hu.numel() > _CHUNK_ELEMENTS):  # fmt: skip
        # point-wise conventions, slab by slab: the formulas below hold ~5 temporaries of the
        # input's size at once (a 512^3 volume: 2.5 GB); slabs keep that to ~80 MB
        out = torch.empty_like(hu)
        step = max(1, _CHUNK_ELEMENTS // max(1, hu[0].numel()))
        for i in range(0, hu.shape[0], step):
            out[i : i + step] = hu_to_mu(hu[i : i + step], convention, energy, bone_hu=bone_hu)
        return out
    if convention == "physical":
        if not (bone_hu > 0 and math.isfinite(bone_hu)):
            raise ValueError(f"bone_hu must be positive, got {bone_hu}")
        mw, mb = _mu_mm("water", energy), _mu_mm("bone", energy)
        h = hu.clamp_min(-1000.0)
        soft = mw * (1.0 + h / 1000.0)
        bone = mw + (h / bone_hu) * (mb - mw)
        return torch.where(h <= 0, soft, bone).clamp_min(0.0)
    if convention == "plastimatch":
        return torch.where(hu <= -800.0, torch.zeros_like(hu), 0.022 * (1.0 + hu / 1000.0))
    if convention == "deepdrr":
        rho = torch.minimum(0.001029 * hu + 1.030, 0.0005886 * hu + 1.03).clamp_min(0.0)
        ma = _mu_mm("air", energy) / _DENSITY["air"]
        ms = _mu_mm("soft_tissue", energy) / _DENSITY["soft_tissue"]
        mb = _mu_mm("bone", energy) / _DENSITY["bone"]
        coef = torch.where(hu <= -800.0, ma, torch.where(hu <= 350.0, ms, mb)).to(hu.dtype)
        return rho * coef
    # diffdrr
    air = hu <= -800.0
    bone = hu > 350.0
    soft = ~air & ~bone
    floor = hu[soft].min() if bool(soft.any()) else hu.min()
    d = torch.where(air, floor, torch.where(bone, hu * bone_attenuation_multiplier, hu))
    d = d - d.min()
    top = d.max()
    return d / top if float(top) > 0 else d


def water_hu_to_mu(hu, mu_water: float):
    """The linear water model ``mu_water (1 + HU / 1000)``, clipped at 0 (air and padding ->
    0), for torch tensors or numpy arrays (float32); ``mu_water`` in the caller's units (per
    pixel for the reconstruction tasks, per mm for the sCT simulations)."""
    if isinstance(hu, torch.Tensor):
        return (mu_water * (1.0 + hu / 1000.0)).clamp_min(0.0)
    return np.clip(mu_water * (1.0 + np.asarray(hu, dtype=np.float32) / 1000.0), 0.0, None)


def water_mu_to_hu(mu, mu_water: float):
    """The inverse of :func:`water_hu_to_mu` (no clipping): ``1000 (mu / mu_water - 1)``."""
    return 1000.0 * (mu / mu_water - 1.0)
