"""Training data of the lesion models: crops with simulated nodules, histograms, presets.

:func:`lesion_crops` inserts :func:`mrct.data.lesions.insert_nodule` nodules into crops of a
host CT's lungs (the shared chest CT, its axial slices split as ``mrct.data.shared.CT_SPLITS``
for the centres; or a synthetic lung host: parenchyma, vessels, correlated noise) and returns
the crops in model units (HU clamped to [-1000, 400] scaled to [-1, 1]), the class masks,
the per-class 16-bin histograms and the control spheres. :func:`make_lesion_task` turns them
into the ``(None, train, val, extra)`` of ``data.task = "mrct.synth.lesion:make_lesion_task"``
(configs/lesion-*.toml). :func:`histogram_presets` clusters training histograms (k-means).
"""

from __future__ import annotations

import numpy as np
import torch

from ...data.lesions import KINDS, insert_nodule, lung_mask_from_labels
from .model import BINS, lesion_histogram

__all__ = ["HU_RANGE", "LesionCrops", "histogram_presets", "hu_to_unit", "lesion_crops",
           "make_lesion_task", "perturb_histogram", "synthetic_host", "unit_to_hu",
           "control_sphere"]  # fmt: skip

HU_RANGE = (-1000.0, 400.0)
CHEST_SPACING = (2.5, 0.703125, 0.703125)


def hu_to_unit(hu):
    """HU clamped to [-1000, 400] and scaled to [-1, 1]."""
    lo, hi = HU_RANGE
    return np.clip((np.asarray(hu, np.float32) - lo) / (hi - lo) * 2 - 1, -1, 1)


def unit_to_hu(x):
    lo, hi = HU_RANGE
    return ((np.asarray(x, np.float32) + 1) / 2 * (hi - lo) + lo).astype(np.float32)


def synthetic_host(shape=(40, 128, 128), spacing=CHEST_SPACING, seed=0):
    """A lung-like host without the shared data: -850 HU parenchyma with correlated noise
    (25 HU) and random vessels (soft tissue tubes, 0.5-1.5 mm radius); ``(ct, lungs)``."""
    from scipy import ndimage

    from ...data.lesions import _noise

    rng = np.random.default_rng(seed)
    sp = np.asarray(spacing, float)
    ext = np.asarray(shape) * sp
    lines = np.zeros(shape, np.float32)
    for _ in range(int(np.prod(ext) / 12000) + 4):  # vessels: random segments, drawn thick
        a, b = rng.uniform(0, 1, 3) * ext, rng.uniform(0, 1, 3) * ext
        n = int(np.linalg.norm(b - a) / 0.3) + 2
        pts = a + np.linspace(0, 1, n)[:, None] * (b - a)
        idx = np.minimum((pts / sp).astype(int), np.asarray(shape) - 1)
        lines[tuple(idx.T)] = rng.uniform(0.5, 1.0)
    vessels = ndimage.gaussian_filter(lines, 0.8 / sp)
    vessels = np.clip(vessels / max(float(vessels.max()), 1e-6) * 2.5, 0, 1)
    ct = -850.0 + 890.0 * np.clip(vessels, 0, 1) + _noise(shape, 25.0, 0.8, rng)
    lungs = np.zeros(shape, bool)
    lungs[2:-2, 4:-4, 4:-4] = True
    return ct.astype(np.float32), lungs


def control_sphere(mask: np.ndarray, spacing) -> tuple[np.ndarray, float]:
    """Centre (voxels) and radius (mm) of a sphere around the mask: its centroid and the
    largest distance from it (the minimal enclosing sphere's stand-in)."""
    idx = np.argwhere(mask)
    if idx.size == 0:
        raise ValueError("empty mask")
    c = idx.mean(0)
    r = float(np.sqrt((((idx - c) * np.asarray(spacing)) ** 2).sum(1)).max())
    return c, r + 0.5 * float(np.max(spacing))


def sphere_image(shape, center, radius_mm: float, spacing) -> np.ndarray:
    """+1 inside the sphere, -1 outside (float32)."""
    axes = [(np.arange(n) - c) * s for n, c, s in zip(shape, center, spacing, strict=True)]
    g = np.meshgrid(*axes, indexing="ij")
    return np.where(sum(x * x for x in g) <= radius_mm**2, 1.0, -1.0).astype(np.float32)


class LesionCrops(torch.utils.data.Dataset):
    """Crops with lesions; items ``((masks, hist), image)`` for :class:`LesionDiffusion` or,
    with ``for_mask=True``, ``(sphere, mask +-1)`` for :class:`MaskDiffusion`."""

    def __init__(self, images, masks, hists, spheres, kinds, backgrounds, for_mask=False):
        self.images, self.masks, self.hists = images, masks, hists
        self.spheres, self.kinds, self.backgrounds = spheres, kinds, backgrounds
        self.for_mask = for_mask

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        if self.for_mask:
            m = (self.masks[i].sum(0, keepdims=True) > 0).astype(np.float32) * 2 - 1
            return torch.from_numpy(self.spheres[i]), torch.from_numpy(m)
        return (torch.from_numpy(self.masks[i]), torch.from_numpy(self.hists[i])), \
            torch.from_numpy(self.images[i])  # fmt: skip


def _host(source: str, seed: int):
    if source in ("auto", "chest_ct"):
        from ...data.shared import SharedDataMissing, load_chest_ct

        try:
            ct, lab = load_chest_ct(labels=True)
            return ct.array, lung_mask_from_labels(lab), tuple(ct.spacing), "chest_ct"
        except SharedDataMissing:
            if source == "chest_ct":
                raise
    if source not in ("auto", "chest_ct", "synthetic"):
        raise ValueError(f"source must be auto, chest_ct or synthetic, got {source!r}")
    ct, lungs = synthetic_host(seed=seed)
    return ct, lungs, CHEST_SPACING, "synthetic"


def lesion_crops(n: int, dims: int = 3, size=None, *, split: str = "train", source="auto",
                 seed: int = 0, classes: int = 2, kinds=KINDS, diameters=(3.0, 30.0),
                 host=None) -> LesionCrops:  # fmt: skip
    """``n`` crops with one simulated nodule each, centred on it (see the module docstring).

    ``size``: (32, 64, 64) in 3D, (64, 64) in 2D (the central axial slice of a 3D insertion);
    ``diameters``: range (mm, log-uniform); ``host``: ``(ct, lungs, spacing)`` to use instead
    of ``source``. ``split`` picks the centres' slices of the shared chest CT.
    """
    from ...data.shared import CT_SPLITS

    size = tuple(size or ((32, 64, 64) if dims == 3 else (64, 64)))
    if host is None:
        ct, lungs, sp, name = _host(source, seed)
    else:
        (ct, lungs, sp), name = host, "given"
    ct = np.asarray(ct, np.float32)
    if name == "chest_ct":
        lo, hi = CT_SPLITS[split]
        allowed = np.zeros(ct.shape[0], bool)
        allowed[lo:hi] = True
    else:
        allowed = np.ones(ct.shape[0], bool)
    rng = np.random.default_rng([seed, {"train": 0, "val": 1, "test": 2}.get(split, 3)])
    box = size if dims == 3 else (max(8, int(np.ceil(diameters[1] / sp[0])) + 4), *size)
    half = np.asarray(box) // 2
    centres = np.argwhere(lungs & allowed[:, None, None])
    imgs, msks, sph, kl, bgs = [], [], [], [], []
    for _ in range(n):
        kind = kinds[int(rng.integers(len(kinds)))]
        d = float(np.exp(rng.uniform(np.log(diameters[0]), np.log(diameters[1]))))
        c = centres[rng.integers(len(centres))]
        sl = [slice(int(ci) - h, int(ci) - h + b) for ci, h, b in zip(c, half, box, strict=True)]
        pad = [(max(0, -s.start), max(0, s.stop - n_)) for s, n_ in zip(sl, ct.shape, strict=True)]
        src = tuple(
            slice(max(0, s.start), min(s.stop, n_)) for s, n_ in zip(sl, ct.shape, strict=True)
        )
        crop = np.pad(ct[src], pad, constant_values=-1000.0)
        lcrop = np.pad(lungs[src], pad, constant_values=False)
        r = insert_nodule(crop, lcrop, center=tuple(half), diameter_mm=d, kind=kind, spacing=sp,
                          seed=rng)  # fmt: skip
        img, core, halo = r.image, r.core, r.halo
        if dims == 2:
            img, core, halo, crop = img[half[0]], core[half[0]], halo[half[0]], crop[half[0]]
        if not (core | halo).any():  # clipped away by the lung boundary: keep its support
            core = r.support[half[0]] if dims == 2 else r.support
        m = np.stack([core | halo] if classes == 1 else [core, halo]).astype(np.float32)
        u = hu_to_unit(img)[None]
        imgs.append(u)
        msks.append(m)
        sp_use = sp if dims == 3 else sp[1:]
        cc, rr = control_sphere(m.sum(0) > 0, sp_use)
        sph.append(sphere_image(m.shape[1:], cc, rr, sp_use)[None])
        kl.append(kind)
        bgs.append(hu_to_unit(crop)[None])
    hist = lesion_histogram(torch.from_numpy(np.stack(imgs)), torch.from_numpy(np.stack(msks)))
    crops = LesionCrops(imgs, msks, list(hist.numpy()), sph, kl, bgs)
    crops.spacing, crops.source = tuple(sp), name
    return crops


def histogram_presets(hists, kinds=None, k: int = 3, seed: int = 0, iters: int = 50) -> dict:
    """k-means (k-means++ start, Lloyd iterations) over training histograms.

    Returns ``{"clusters": [k centres, each a list], "names": {name: index}}``; the names are
    the nodule kinds that are most frequent in each cluster when ``kinds`` are given (a kind
    names the cluster where it is most frequent; several kinds may share one)."""
    x = np.asarray(hists, np.float64)
    rng = np.random.default_rng(seed)
    k = min(k, len(x))
    cent = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.min([((x - c) ** 2).sum(1) for c in cent], axis=0)
        p = d / d.sum() if d.sum() > 0 else None
        cent.append(x[rng.choice(len(x), p=p)])
    cent = np.asarray(cent)
    for _ in range(iters):
        lab = np.argmin(((x[:, None] - cent[None]) ** 2).sum(-1), axis=1)
        new = np.asarray([x[lab == j].mean(0) if (lab == j).any() else cent[j] for j in range(k)])
        if np.allclose(new, cent):
            break
        cent = new
    lab = np.argmin(((x[:, None] - cent[None]) ** 2).sum(-1), axis=1)
    names = {}
    if kinds is not None:
        kinds = list(kinds)
        for kind in sorted(set(kinds)):
            counts = [sum(1 for a, b in zip(lab, kinds, strict=True) if a == j and b == kind)
                      / max(1, int((lab == j).sum())) for j in range(k)]  # fmt: skip
            names[kind] = int(np.argmax(counts))
    return {"clusters": cent.round(6).tolist(), "names": names}


def perturb_histogram(hist, amount: float = 0.1, seed=None, bins: int = BINS) -> np.ndarray:
    """LeFusion's perturbation: every bin times ``1 + U(-amount, amount)``, each class's block
    rescaled to its original sum."""
    h = np.asarray(hist, np.float64).reshape(-1, bins)
    rng = np.random.default_rng(seed)
    p = h * (1 + rng.uniform(-amount, amount, h.shape))
    s, ps = h.sum(1, keepdims=True), p.sum(1, keepdims=True)
    p = np.where(ps > 0, p * s / np.where(ps > 0, ps, 1), 0)
    return p.reshape(-1).astype(np.float32)


def make_lesion_task(data: dict):
    """Task for ``data.task = "mrct.synth.lesion:make_lesion_task"``.

    Keys: ``dims`` (2 | 3), ``size``, ``n_train``, ``n_val``, ``source`` ("auto",
    "chest_ct", "synthetic"), ``seed``, ``classes``, ``diameters``, ``model`` ("image" for
    :class:`LesionDiffusion`, "mask" for :class:`MaskDiffusion`). Returns
    ``(None, train, val, {"info": ...})``: the info (histogram presets, spacing, source) goes
    into the model's checkpoint.
    """
    data = dict(data)
    data.pop("splits", None)
    dims = int(data.pop("dims", 3))
    size = data.pop("size", None)
    n_train, n_val = int(data.pop("n_train", 200)), int(data.pop("n_val", 16))
    source, seed = data.pop("source", "auto"), int(data.pop("seed", 0))
    classes = int(data.pop("classes", 2))
    diameters = tuple(data.pop("diameters", (3.0, 30.0)))
    which = data.pop("model", "image")
    if data:
        raise ValueError(f"unknown data setting(s) for the lesion task: {sorted(data)}")
    if which not in ("image", "mask"):
        raise ValueError(f'data.model must be "image" or "mask", got {which!r}')
    kw = dict(dims=dims, size=size, source=source, seed=seed, classes=classes,
              diameters=diameters)  # fmt: skip
    train = lesion_crops(n_train, split="train", **kw)
    val = lesion_crops(n_val, split="val", **kw)
    train.for_mask = val.for_mask = which == "mask"
    info = {"spacing": list(train.spacing if dims == 3 else train.spacing[1:]),
            "source": train.source, "hu_range": list(HU_RANGE), "n_train": n_train}  # fmt: skip
    if which == "image":
        info["presets"] = histogram_presets(train.hists, train.kinds, k=3, seed=seed)
    return None, train, val, {"info": info}
