"""Paired data for synthetic CT: simulated CBCT -> CT and MRI -> CT from the shared chest CT.

Everything here is a **simulation** made with mrct's own physics from one real CT (the shared
LIDC-IDRI-0001 chest CT and its TotalSegmentator label map), not real CBCT or MRI:

* **CBCT -> CT** (:func:`simulate_cbct`): HU -> attenuation (``mu = mu_water (1 + HU/1000)``,
  ``mu_water = 0.0192 / mm``, ~70 keV) -> circular cone-beam projection with
  :class:`mrct.physics.ConeBeam` / :class:`mrct.physics.Radon` (source 1000 mm, detector
  500 mm from the axis, a full turn) on a detector narrower than the body (``truncation``:
  detector field of view / image width) -> intensities ``I0 exp(-p)`` plus low-frequency
  additive scatter (the primary blurred by a wide Gaussian, ``scatter_fraction`` of the
  unattenuated flux at its peak) -> Poisson counts (``photons`` per pixel unattenuated) ->
  log -> FDK (``Radon.fbp``, Shepp-Logan filter) -> HU. No beam hardening, lag or motion.
* **MRI -> CT** (:func:`simulate_mri`): a Brain-ID-style synthetic MR: tissue classes from the
  CT (air outside the body, lung, fat, soft tissue, bone by HU thresholds) and, inside soft
  tissue, the organ labels of the label map; each class and organ gets a T1-like base
  intensity randomised by ``jitter`` (relative, per realisation), a smooth multiplicative bias
  field (``bias`` = log-amplitude), a slight blur and Rician noise (``noise`` x the 99th
  percentile). It has MR-like contrast (bone and air dark, fat bright) but none of MR's
  physics (no T1/T2/PD maps, no sequences, no chemical shift or susceptibility).
* **Body masks** (:func:`body_mask`): CT > -400 HU, the largest connected component, holes
  filled per slice.
* **Splits** by slice ranges of the chest CT (:data:`mrct.data.shared.CT_SPLITS`: train
  0-89, val 93-102, test 106-132). Without ``../shared/data`` a random chest phantom in HU
  with a label map is used instead (``source="phantom"``), so tests and CI still run.

Model units (:func:`hu_to_unit`): CT and CBCT as ``HU / 1000`` clipped to [-1.024, 3.0]; MR
divided by its 99th percentile inside the body.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch.utils.data import Dataset

__all__ = [
    "MU_WATER_MM",
    "HU_MIN",
    "HU_MAX",
    "hu_to_unit",
    "unit_to_hu",
    "body_mask",
    "chest_phantom",
    "load_ct_slab",
    "simulate_cbct",
    "simulate_mri",
    "SCTPairs",
    "SCTDataset",
    "sct_pairs",
    "make_sct_task",
]

MU_WATER_MM = 0.0192  # linear attenuation of water at ~70 keV, 1/mm
HU_MIN, HU_MAX = -1024.0, 3000.0


def hu_to_unit(hu):
    """HU -> model units ``clip(HU, -1024, 3000) / 1000`` (torch or numpy)."""
    if isinstance(hu, torch.Tensor):
        return hu.clamp(HU_MIN, HU_MAX) / 1000.0
    return np.clip(np.asarray(hu, np.float32), HU_MIN, HU_MAX) / 1000.0


def unit_to_hu(x):
    """Model units -> HU (``1000 x``)."""
    return x * 1000.0


# ---------------------------------------------------------------------------------------------
# volumes


def body_mask(hu: np.ndarray | torch.Tensor, threshold: float = -400.0) -> np.ndarray:
    """Body mask of a CT (D, H, W) or (H, W) in HU: ``HU > threshold``, the largest connected
    component, holes filled slice by slice (lungs included). Returns bool."""
    a = hu.detach().cpu().numpy() if isinstance(hu, torch.Tensor) else np.asarray(hu)
    m = a > threshold
    squeeze = m.ndim == 2
    if squeeze:
        m = m[None]
    # per slice: fill holes (lungs, airways), open to detach thin structures (couch), fill again
    m = np.stack([ndimage.binary_fill_holes(
        ndimage.binary_opening(ndimage.binary_fill_holes(s))) for s in m])  # fmt: skip
    lab, n = ndimage.label(m)
    if n > 1:
        sizes = ndimage.sum(m, lab, range(1, n + 1))
        m = lab == (1 + int(np.argmax(sizes)))
    return m[0] if squeeze else m


def chest_phantom(n_slices: int = 16, size: int = 64, seed: int = 0,
                  pixel_size: float | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """A random chest-like phantom: ``(hu (D, size, size) float32, labels (D, size, size)
    uint8)``. Body (soft tissue ~40 HU) in a fat rim (-100), two lungs (-850), a spine and
    ribs (bone 400-900), heart (40) and aorta (organ labels 1-3), varying along the slices.
    Labels: 0 outside, 1 heart, 2 aorta, 3 liver-like; tissue classes follow from HU."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij")
    hu = np.full((n_slices, size, size), -1000.0, np.float32)
    lab = np.zeros((n_slices, size, size), np.uint8)
    a0, b0 = rng.uniform(0.78, 0.9), rng.uniform(0.55, 0.65)
    for k in range(n_slices):
        z = k / max(n_slices - 1, 1)
        a, b = a0 * (1 + 0.04 * math.sin(3 * z)), b0 * (1 + 0.05 * math.cos(2 * z))
        body = (xx / a) ** 2 + (yy / b) ** 2 <= 1
        inner = (xx / (a - 0.08)) ** 2 + (yy / (b - 0.07)) ** 2 <= 1
        s = hu[k]
        s[body] = -100.0 + rng.normal(0, 8)
        s[inner] = 40.0
        r_l = 0.24 + 0.04 * math.sin(2 * z)
        for cx in (-0.36, 0.36):
            lung = ((xx - cx) / r_l) ** 2 + ((yy + 0.02) / (0.3 + 0.04 * z)) ** 2 <= 1
            s[lung] = -850.0
        heart = ((xx + 0.08) / 0.2) ** 2 + ((yy + 0.05) / 0.17) ** 2 <= 1
        s[heart] = 40.0
        lab[k][heart] = 1
        aorta = (xx - 0.06) ** 2 + (yy - 0.28) ** 2 <= 0.06**2
        s[aorta] = 45.0
        lab[k][aorta] = 2
        if z > 0.6:  # liver dome in the lower slices
            liver = ((xx + 0.3) / 0.35) ** 2 + ((yy - 0.05) / 0.3) ** 2 <= (z - 0.5)
            s[liver & inner] = 60.0
            lab[k][liver & inner] = 3
        spine = xx**2 + (yy - 0.45) ** 2 <= 0.08**2
        s[spine] = 700.0
        s[xx**2 + (yy - 0.45) ** 2 <= 0.04**2] = 250.0  # cancellous core
        for ang in np.linspace(0.3, math.pi - 0.3, 6):  # ribs on the rim
            for sgn in (-1, 1):
                cx, cy = sgn * 0.92 * a * math.cos(ang) * 0.9, 0.85 * b * math.sin(ang) - 0.1
                s[(xx - cx) ** 2 + (yy - cy) ** 2 <= 0.035**2] = 800.0
        s += rng.normal(0, 10, s.shape).astype(np.float32) * body
    return hu, lab


_CACHE: dict = {}


def _chest_ct():
    """The shared chest CT and labels, read once per process (about 70 MB in memory)."""
    from ..data import load_chest_ct
    from ..data.shared import shared_data_dir

    key = str(shared_data_dir())
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = load_chest_ct(labels=True)
    return _CACHE[key]


def load_ct_slab(split: str = "train", size: int = 64, max_slices: int | None = None,
                 source: str = "auto", seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """A contiguous slab of axial slices: ``{"hu": (D, size, size) float32, "labels": uint8,
    "pixel_size": mm, "slice_thickness": mm, "source": ...}``.

    ``source``: ``"chest_ct"`` (the shared chest CT, slices of ``CT_SPLITS[split]``; the
    centre ``max_slices`` of them when given; HU area-averaged to ``size``, labels by nearest
    neighbour), ``"phantom"`` (:func:`chest_phantom`, seeded per split) or ``"auto"`` (the
    chest CT when the shared data are present, else the phantom).
    """
    from ..data.shared import CT_SPLITS

    if split not in CT_SPLITS:
        raise ValueError(f"split must be one of {sorted(CT_SPLITS)}, got {split!r}")
    if source == "auto":
        from ..data.shared import shared_data_dir

        root = shared_data_dir()
        source = "chest_ct" if root is not None and (root / "chest_ct").is_dir() else "phantom"
    if source == "phantom":
        lo, hi = CT_SPLITS[split]
        n = min(hi - lo, max_slices or 16)
        hu, lab = chest_phantom(n, size, seed=seed + 7919 * ["train", "val", "test"].index(split))
        return {"hu": hu, "labels": lab, "pixel_size": 350.0 / size, "slice_thickness": 2.5,
                "source": "phantom"}  # fmt: skip
    if source != "chest_ct":
        raise ValueError(f'source must be "auto", "chest_ct" or "phantom", got {source!r}')
    ct, labels = _chest_ct()
    lo, hi = CT_SPLITS[split]
    if max_slices is not None and max_slices < hi - lo:
        c = (lo + hi) // 2
        lo = max(lo, c - max_slices // 2)
        hi = lo + max_slices
    hu = torch.as_tensor(np.asarray(ct.array[lo:hi], np.float32)).clamp_min(-1024.0)
    h = hu.shape[-1]
    hu = F.interpolate(hu[:, None], size=(size, size), mode="area")[:, 0].numpy()
    step = h / size
    idx = np.clip((np.arange(size) * step + step / 2).astype(int), 0, h - 1)
    lab = np.asarray(labels.array[lo:hi])[:, idx][:, :, idx].astype(np.uint8)
    return {"hu": np.ascontiguousarray(hu), "labels": np.ascontiguousarray(lab),
            "pixel_size": float(ct.spacing[-1]) * h / size,
            "slice_thickness": float(ct.spacing[0]), "source": "chest_ct"}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# CBCT


def simulate_cbct(hu: np.ndarray, pixel_size: float, slice_thickness: float = 2.5, *,
                  n_views: int = 90, truncation: float = 0.85, scatter_fraction: float = 0.01,
                  photons: float = 2e4, source_distance: float = 1000.0,
                  detector_distance: float = 500.0, seed: int = 0,
                  filter: str = "shepp-logan") -> np.ndarray:  # fmt: skip
    """Simulated CBCT (HU) of a CT slab ``hu`` (D, H, W): see the module docstring.

    Parameters
    ----------
    hu : ndarray (D, H, W)
        CT in HU; axis 0 is the rotation axis (slices ``slice_thickness`` mm apart), in-plane
        pixels ``pixel_size`` mm.
    n_views : int
        Projections over a full turn.
    truncation : float
        Detector field of view at the isocentre as a fraction of the image width (< 1
        truncates a body that fills the image).
    scatter_fraction : float
        Peak scatter as a fraction of the unattenuated flux ``I0`` (low-frequency, additive).
    photons : float
        Unattenuated photons per detector pixel (Poisson noise); ``inf`` for none.
    seed : int
        Noise seed.

    Returns
    -------
    ndarray (D, H, W) float32, HU (FDK of the truncated, scattered, noisy projections).
    """
    from ..physics import ConeBeam, Radon
    from ..physics.attenuation import water_hu_to_mu, water_mu_to_hu

    hu = np.asarray(hu, np.float32)
    if hu.ndim != 3:
        raise ValueError(f"hu must be a (D, H, W) volume, got shape {hu.shape}")
    d, h, w = hu.shape
    if not 0.1 <= truncation <= 2.0:
        raise ValueError(f"truncation must be in [0.1, 2], got {truncation}")
    mag = (source_distance + detector_distance) / source_distance
    du = pixel_size * mag
    dv = slice_thickness * mag
    n_cols = max(8, int(round(truncation * w)))
    # rows: cover the slab's cone shadow at the near edge of the field of view
    half_fov = 0.5 * w * pixel_size
    mag_near = (source_distance + detector_distance) / (source_distance - half_fov)
    n_rows = int(math.ceil(d * slice_thickness * mag_near / dv)) + 2
    geo = ConeBeam.full_scan(n_views, (n_rows, n_cols), (dv, du), source_distance,
                             detector_distance)  # fmt: skip
    A = Radon(geo, (d, h, w), pixel_size=(slice_thickness, pixel_size))
    mu = torch.from_numpy(water_hu_to_mu(hu, MU_WATER_MM).astype(np.float32))
    p = A(mu)  # (views, rows, cols), line integrals
    primary = torch.exp(-p)  # I / I0
    if scatter_fraction > 0:
        sig = (max(1.0, 0.25 * n_rows), max(1.0, 0.25 * n_cols))
        blur = ndimage.gaussian_filter(primary.numpy(), (0, *sig), mode="nearest")
        scatter = scatter_fraction * blur / max(float(blur.max()), 1e-12)
        primary = primary + torch.from_numpy(scatter.astype(np.float32))
    rng = np.random.default_rng(seed)
    if math.isfinite(photons):
        counts = rng.poisson(primary.numpy().astype(np.float64) * photons)
        primary = torch.from_numpy((np.maximum(counts, 1) / photons).astype(np.float32))
    p_meas = -torch.log(primary.clamp_min(1e-6))
    rec = A.fbp(p_meas, filter=filter)
    return water_mu_to_hu(rec, MU_WATER_MM).numpy().astype(np.float32)


# ---------------------------------------------------------------------------------------------
# MRI

#: T1-like base intensities (arbitrary units) of the tissue classes
_T1 = {"air": 0.0, "lung": 0.08, "fat": 1.0, "soft": 0.55, "bone": 0.25, "marrow": 0.7}


def simulate_mri(hu: np.ndarray, labels: np.ndarray | None = None, *, jitter: float = 0.2,
                 bias: float = 0.3, noise: float = 0.03, blur: float = 0.6, seed: int = 0,
                 mask: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Brain-ID-style synthetic MR (see the module docstring) of a CT ``hu`` (D, H, W).

    Parameters
    ----------
    hu : ndarray (D, H, W) or (H, W)
        CT in HU (defines the tissue classes).
    labels : ndarray, same shape, optional
        Organ label map; every organ id inside soft tissue gets its own intensity.
    jitter : float
        Relative random change of each class / organ intensity (uniform in +-jitter).
    bias : float
        Log-amplitude of the smooth multiplicative bias field.
    noise : float
        Rician noise sigma relative to the 99th percentile of the noiseless image.
    blur : float
        Gaussian blur (pixels) before noise (partial-volume softening).
    seed : int
        Realisation seed (contrast, bias field, noise).

    Returns
    -------
    ndarray float32, same shape, divided by its 99th percentile inside the body (~0 .. 1.3).
    """
    rng = np.random.default_rng(seed)
    hu = np.asarray(hu, np.float32)
    body = body_mask(hu) if mask is None else np.asarray(mask, bool)
    img = np.zeros_like(hu)

    def val(name):
        return _T1[name] * (1 + rng.uniform(-jitter, jitter))

    lung = body & (hu < -400)
    fat = body & (hu >= -400) & (hu < -30)
    soft = body & (hu >= -30) & (hu < 150)
    marrow = body & (hu >= 150) & (hu < 400)
    bone = body & (hu >= 400)
    for name, m in (("lung", lung), ("fat", fat), ("soft", soft), ("marrow", marrow),
                    ("bone", bone)):  # fmt: skip
        img[m] = val(name)
    if labels is not None:
        labels = np.asarray(labels)
        for lid in np.unique(labels[soft]):
            if lid == 0:
                continue
            sel = soft & (labels == lid)
            img[sel] = _T1["soft"] * (1 + rng.uniform(-2 * jitter, 2 * jitter))
    # smooth bias field: low-resolution random field, upsampled
    shape = hu.shape
    coarse = rng.normal(0, 1, tuple(max(2, s // 16) for s in shape))
    field_ = ndimage.zoom(coarse, [s / c for s, c in zip(shape, coarse.shape, strict=True)],
                          order=3)[tuple(slice(0, s) for s in shape)]  # fmt: skip
    field_ = field_ / max(float(np.abs(field_).max()), 1e-6)
    img = img * np.exp(bias * field_).astype(np.float32)
    if blur > 0:
        sig = (0, blur, blur) if img.ndim == 3 else (blur, blur)
        img = ndimage.gaussian_filter(img, sig)
    scale = float(np.percentile(img[body], 99)) if body.any() else 1.0
    s = noise * scale
    n1 = rng.normal(0, s, img.shape)
    n2 = rng.normal(0, s, img.shape)
    img = np.sqrt((img + n1) ** 2 + n2**2)
    p99 = float(np.percentile(img[body], 99)) if body.any() else float(img.max() or 1.0)
    return (img / max(p99, 1e-6)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# pairs and datasets


@dataclass
class SCTPairs:
    """One split of a task: condition volume (HU for CBCT, normalised MR for MRI), target CT
    (HU) and body mask, each (D, H, W); ``info`` records the simulation settings."""

    task: str
    split: str
    condition: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    info: dict = field(default_factory=dict)

    def condition_units(self) -> torch.Tensor:
        """The condition in model units (D, 1, H, W): HU/1000 for CBCT, as is for MR."""
        c = torch.from_numpy(self.condition)
        return (hu_to_unit(c) if self.task == "cbct" else c)[:, None].float()

    def target_units(self) -> torch.Tensor:
        return hu_to_unit(torch.from_numpy(self.target))[:, None].float()


def sct_pairs(task: str, split: str = "train", *, size: int = 64, max_slices: int | None = None,
              source: str = "auto", seed: int = 0, realisations: int = 1,
              **sim) -> SCTPairs:  # fmt: skip
    """Simulate one split of ``task`` (``"cbct"`` or ``"mri"``) from :func:`load_ct_slab`.

    ``realisations > 1`` stacks that many independent simulations (noise, scatter, MR
    contrast) of the same slab along the slice axis (data augmentation for training).
    ``sim``: keyword arguments of :func:`simulate_cbct` / :func:`simulate_mri`.
    """
    if task not in ("cbct", "mri"):
        raise ValueError(f'task must be "cbct" or "mri", got {task!r}')
    slab = load_ct_slab(split, size, max_slices, source, seed)
    hu = slab["hu"]
    mask = body_mask(hu)
    conds = []
    base = seed * 1000 + {"train": 0, "val": 100, "test": 200}[split]
    for r in range(realisations):
        if task == "cbct":
            conds.append(simulate_cbct(hu, slab["pixel_size"], slab["slice_thickness"],
                                       seed=base + r, **sim))  # fmt: skip
        else:
            conds.append(simulate_mri(hu, slab["labels"], seed=base + r, mask=mask, **sim))
    info = {"source": slab["source"], "pixel_size": slab["pixel_size"],
            "slice_thickness": slab["slice_thickness"], "realisations": realisations,
            **sim}  # fmt: skip
    return SCTPairs(task, split, np.concatenate(conds), np.concatenate([hu] * realisations),
                    np.concatenate([mask] * realisations), info)  # fmt: skip


class SCTDataset(Dataset):
    """Items ``(condition (C, H, W), target (1, H, W))`` in model units, with 2.5D neighbours
    (``context``) taken within each realisation's slab of ``n_slab`` slices."""

    def __init__(self, pairs: SCTPairs, context: int = 0, n_slab: int | None = None):
        from .diffusion import stack_neighbours

        cond = pairs.condition_units()
        n = cond.shape[0]
        n_slab = n_slab or n // max(1, int(pairs.info.get("realisations", 1)))
        parts = [stack_neighbours(cond[s : s + n_slab], context) for s in range(0, n, n_slab)]
        self.inputs = torch.cat(parts).contiguous()
        self.targets = pairs.target_units().contiguous()
        self.masks = torch.from_numpy(pairs.mask)
        self.pairs = pairs

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, i):
        return self.inputs[i], self.targets[i]


def make_sct_task(data: dict):
    """Task for ``data.task = "mrct.synth.sct_data:make_sct_task"`` (configs/sct-*.toml).

    Keys: ``modality`` ("cbct" | "mri"), ``size``, ``max_slices`` (train), ``val_slices``,
    ``source``, ``seed``, ``realisations`` (train), ``context`` (2.5D), and ``sim`` (a table of
    simulation keyword arguments). Returns ``(None, train, val, {})`` for
    :func:`mrct.training.fit`.
    """
    data = dict(data)
    task = data.pop("modality", None)
    if task not in ("cbct", "mri"):
        raise ValueError(f'data.modality must be "cbct" or "mri", got {task!r}')
    kind = f"sct-{task}"
    data.pop("splits", None)
    size = int(data.pop("size", 64))
    max_slices = data.pop("max_slices", None)
    val_slices = data.pop("val_slices", 8)
    source = data.pop("source", "auto")
    seed = int(data.pop("seed", 0))
    realisations = int(data.pop("realisations", 1))
    context = int(data.pop("context", 0))
    sim = dict(data.pop("sim", {}) or {})
    if data:
        raise ValueError(f"unknown data setting(s) for {kind}: {sorted(data)}")
    train = SCTDataset(
        sct_pairs(
            task,
            "train",
            size=size,
            max_slices=max_slices,
            source=source,
            seed=seed,
            realisations=realisations,
            **sim,
        ),
        context,
    )
    val = SCTDataset(sct_pairs(task, "val", size=size, max_slices=val_slices, source=source,
                               seed=seed, **sim), context)  # fmt: skip
    return None, train, val, {}
