"""Training images for learned CT reconstruction that are not one patient's axial slices.

* :func:`resample_fov`: any 2D/3D array with a pixel spacing -> a square/cubic grid of a
  stated field of view (mm), centred where asked, anti-aliased, padded with air;
* :func:`chest_ct_view`: the shared chest CT (``load_chest_ct``) sliced axially, coronally or
  sagittally, resampled to ``size x size`` at a chosen field of view;
* :func:`synthetic_anatomy`: a new image from the chest CT's 118-label organ map: every organ
  (and the unlabelled fat, soft tissue, bone and air, classified by HU) gets a mean HU drawn
  from :data:`ORGAN_HU`, keeps a random fraction of the real image's within-organ detail
  (lung vessels, trabecular bone), plus a smooth random texture;
* :func:`augment_slice`: random rotation, flips, scaling and smooth elastic deformation.

Everything is numpy (float32 HU) and deterministic given a ``numpy.random.Generator``.
``s_range`` arguments restrict every orientation to a slab of axial slices (for example
:data:`mrct.data.shared.CT_SPLITS` ``["train"]``), so that coronal and sagittal training
images never contain voxels of the held-out axial slices.
"""

from __future__ import annotations

import functools
import re

import numpy as np
from scipy import ndimage

__all__ = [
    "ORGAN_HU",
    "ORIENTATIONS",
    "augment_slice",
    "chest_ct_view",
    "chest_slice",
    "organ_hu_ranges",
    "resample_fov",
    "synthetic_anatomy",
]

AIR_HU = -1000.0
ORIENTATIONS = ("axial", "coronal", "sagittal")

#: (regular expression on the label's structure name, (low, high) HU of the organ's mean);
#: the first match wins. Unenhanced-to-contrast ranges for vessels and heart.
ORGAN_HU: list[tuple[str, tuple[float, float]]] = [
    (r"^lung_", (-900.0, -750.0)),
    (r"^trachea$", (-1000.0, -920.0)),
    (r"kidney_cyst", (0.0, 20.0)),
    (r"^(gallbladder|urinary_bladder)$", (0.0, 20.0)),
    (r"^(stomach|small_bowel|duodenum|colon|esophagus)$", (10.0, 50.0)),
    (r"^liver$", (45.0, 75.0)),
    (r"^spleen$", (40.0, 60.0)),
    (r"^kidney_", (25.0, 50.0)),
    (r"^(pancreas|adrenal_gland_.*|prostate)$", (30.0, 50.0)),
    (r"^thyroid_gland$", (60.0, 120.0)),
    (r"^(heart|atrial_appendage_left)$", (30.0, 60.0)),
    (r"(aorta|vein|vena|artery|trunk|carotid)", (35.0, 250.0)),
    (r"^(spinal_cord|brain)$", (25.0, 45.0)),
    (r"^(gluteus|autochthon|iliopsoas)", (40.0, 60.0)),
    (r"^costal_cartilages$", (80.0, 200.0)),
    (r"^skull$", (700.0, 1200.0)),
    (r"^(sacrum|vertebrae_|rib_|sternum|humerus|scapula|clavicula|femur|hip|carpal)",
     (200.0, 500.0)),
]  # fmt: skip
#: classes of unlabelled pixels (label 0), by their HU in the real image
_UNLABELLED = [("air", (-1000.0, -980.0)), ("fat", (-120.0, -70.0)),
               ("soft tissue", (20.0, 60.0)), ("bone", (200.0, 500.0))]  # fmt: skip
_UNLABELLED_EDGES = (-400.0, -20.0, 150.0)  # air | fat | soft tissue | bone


def organ_hu_ranges(names: list[str]) -> np.ndarray:
    """``(len(names), 2)`` HU ranges for label structure names (default: soft tissue)."""
    out = np.empty((len(names), 2))
    for i, name in enumerate(names):
        for pattern, rng in ORGAN_HU:
            if re.search(pattern, name):
                out[i] = rng
                break
        else:
            out[i] = _UNLABELLED[2][1]
    return out


def resample_fov(image: np.ndarray, spacing, shape, fov_mm: float, center_mm=None,
                 fill: float = AIR_HU, order: int = 1) -> np.ndarray:  # fmt: skip
    """Resample ``image`` (2D or 3D, pixel ``spacing`` in mm per axis) onto a grid of
    ``shape`` with isotropic pixels of ``fov_mm / max(shape)`` mm, centred at ``center_mm``
    (physical position ``index * spacing``; default the image centre).

    Anti-aliased (a Gaussian of ``0.5 (step / spacing - 1)`` input pixels before linear
    interpolation when the output is coarser); outside the image: ``fill``. float32.
    """
    img = np.asarray(image, dtype=np.float32)
    spacing = np.broadcast_to(np.asarray(spacing, float), (img.ndim,))
    shape = tuple(int(s) for s in shape)
    if len(shape) != img.ndim:
        raise ValueError(f"shape {shape} does not match a {img.ndim}D image")
    step = float(fov_mm) / max(shape)
    if center_mm is None:
        center_mm = (np.asarray(img.shape) - 1) / 2 * spacing
    sigma = np.maximum(0.0, step / spacing - 1.0) * 0.5
    if np.any(sigma > 0.05):
        img = ndimage.gaussian_filter(img - fill, sigma, mode="constant") + fill
    axes = [(float(c) + (np.arange(n) - (n - 1) / 2) * step) / sp
            for c, n, sp in zip(center_mm, shape, spacing, strict=True)]  # fmt: skip
    coords = np.meshgrid(*axes, indexing="ij")
    return ndimage.map_coordinates(img, coords, order=order, mode="constant",
                                   cval=fill).astype(np.float32)  # fmt: skip


@functools.lru_cache(maxsize=1)
def _chest() -> tuple[np.ndarray, np.ndarray, tuple[float, float, float], tuple[str, ...]]:
    from .shared import _data_file, load_chest_ct

    ct, lab = load_chest_ct(labels=True)
    names = ["background"] * 119
    for line in _data_file("chest_ct", "chest_ct_labels.csv").read_text().splitlines()[1:]:
        parts = line.strip().split(",")
        if len(parts) == 4:
            names[int(parts[3])] = parts[2]
    return (np.asarray(ct.array, np.float32), np.asarray(lab.array, np.uint8),
            tuple(float(s) for s in ct.spacing), tuple(names))  # fmt: skip


def chest_slice(orientation: str = "axial", index: int | None = None, s_range=None):
    """One slice of the shared chest CT at its native spacing.

    Returns ``(hu, labels, spacing)``: float32 HU, uint8 label ids (``chest_ct_labels.csv``)
    and ``(sy, sx)`` in mm. Axial slices are ``(512, 512)`` at 0.703 mm (anterior at the
    top); coronal and sagittal ones ``(n_s, 512)`` with 2.5 mm rows, superior at the top,
    limited to axial slices ``s_range = (lo, hi)`` when given. ``index`` (default: the middle)
    counts along the axis that is cut.
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}")
    ct, lab, sp, _ = _chest()
    lo, hi = s_range if s_range is not None else (0, ct.shape[0])
    axis = ORIENTATIONS.index(orientation)
    n = (hi - lo) if axis == 0 else ct.shape[axis]
    k = n // 2 if index is None else int(index)
    if not 0 <= k < n:
        raise IndexError(f"{orientation} slice {index} out of range 0 .. {n - 1}")
    if axis == 0:
        return ct[lo + k].copy(), lab[lo + k].copy(), (sp[1], sp[2])
    take = (slice(lo, hi), k, slice(None)) if axis == 1 else (slice(lo, hi), slice(None), k)
    return (np.ascontiguousarray(ct[take][::-1]), np.ascontiguousarray(lab[take][::-1]),
            (sp[0], sp[2 if axis == 1 else 1]))  # fmt: skip


def chest_ct_view(orientation: str = "axial", index: int | None = None, size: int = 256,
                  fov_mm: float = 360.0, center_mm=None, s_range=None) -> np.ndarray:  # fmt: skip
    """A chest CT slice (:func:`chest_slice`) resampled to ``(size, size)`` HU covering
    ``fov_mm`` (360 mm = the whole 512 x 512 axial slice, as ``ct_task`` uses it)."""
    hu, _, sp = chest_slice(orientation, index, s_range)
    return resample_fov(hu.clip(AIR_HU, None), sp, (size, size), fov_mm, center_mm)


def synthetic_anatomy(labels: np.ndarray, hu: np.ndarray, rng: np.random.Generator,
                      detail: tuple[float, float] = (0.3, 1.1),
                      texture_hu: tuple[float, float] = (0.0, 25.0)) -> np.ndarray:  # fmt: skip
    """A new HU image on the grid of a label slice (see the module docstring).

    ``labels``: organ ids 0..118 of the chest CT; ``hu``: the real slice (used to classify the
    unlabelled pixels and for the within-organ detail). Each class gets a mean drawn
    uniformly from its range; ``detail``: range of the fraction of the real deviation from
    the class mean that is kept; ``texture_hu``: range of the amplitude of a smooth Gaussian
    random field (correlation length 2-10 pixels) added inside the body.
    """
    _, _, _, names = _chest()
    hu = np.asarray(hu, np.float32).clip(AIR_HU, 3000.0)
    labels = np.asarray(labels)
    unl = np.searchsorted(_UNLABELLED_EDGES, hu)  # 0 air, 1 fat, 2 soft tissue, 3 bone
    cls = np.where(labels > 0, labels.astype(np.int64) + 3, unl)  # label 1 -> 4
    ranges = np.concatenate([np.array([r for _, r in _UNLABELLED]),
                             organ_hu_ranges(list(names[1:]))])  # fmt: skip
    new_mean = rng.uniform(ranges[:, 0], ranges[:, 1])
    counts = np.bincount(cls.ravel(), minlength=len(ranges))
    real_mean = np.bincount(cls.ravel(), hu.ravel(), minlength=len(ranges)) / np.maximum(counts, 1)
    gain = rng.uniform(*detail)
    out = new_mean[cls] + gain * (hu - real_mean[cls])
    amp = rng.uniform(*texture_hu)
    if amp > 0:
        field = ndimage.gaussian_filter(rng.standard_normal(hu.shape), rng.uniform(2.0, 10.0))
        field *= amp / (field.std() + 1e-12)
        out = out + np.where(unl > 0, field, 0.0)
    return out.clip(AIR_HU, 3000.0).astype(np.float32)


def augment_slice(image: np.ndarray, rng: np.random.Generator, *, rotate: bool = True,
                  flip: bool = True, scale: tuple[float, float] = (0.85, 1.15),
                  elastic_px: float = 6.0, fill: float = AIR_HU) -> np.ndarray:  # fmt: skip
    """Random rotation (uniform angle), flips, isotropic scaling (``scale`` range) and a
    smooth elastic displacement (Gaussian random field of correlation length ~ size / 12,
    peak about ``elastic_px`` pixels), applied as one warp with linear interpolation."""
    img = np.asarray(image, np.float32)
    h, w = img.shape
    th = rng.uniform(0.0, 2 * np.pi) if rotate else 0.0
    s = rng.uniform(*scale)
    fy, fx = rng.choice([-1.0, 1.0], 2) if flip else (1.0, 1.0)
    c, si = np.cos(th) / s, np.sin(th) / s
    yy, xx = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    ys = fy * (c * yy - si * xx) + (h - 1) / 2
    xs = fx * (si * yy + c * xx) + (w - 1) / 2
    if elastic_px > 0:
        sig = max(h, w) / 12
        for arr in (ys, xs):
            d = ndimage.gaussian_filter(rng.standard_normal((h, w)), sig, mode="wrap")
            arr += d * (rng.uniform(0.0, elastic_px) / (np.abs(d).max() + 1e-12))
    return ndimage.map_coordinates(img, [ys, xs], order=1, mode="constant",
                                   cval=fill).astype(np.float32)  # fmt: skip
