"""Using the lesion models on a CT: :func:`inpaint_lesion`, :func:`lesion_mask`,
:func:`pretrained` (shipped weights in ``mrct/synth/weights/``; nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .data import hu_to_unit, sphere_image, unit_to_hu
from .model import BINS, LesionDiffusion, MaskDiffusion

__all__ = ["PRETRAINED", "inpaint_lesion", "lesion_mask", "load_lesion_model", "pretrained",
           "resolve_histogram"]  # fmt: skip

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
#: shipped lesion models: name -> (class, description)
PRETRAINED = {
    "lefusion-lung-ct": (LesionDiffusion, "lesion-focused inpainting of lung nodules"),
    "lefusion-mask": (MaskDiffusion, "lung-nodule masks inside a control sphere"),
}


def pretrained(name: str, device: str = "cpu"):
    """A shipped lesion model (``"lefusion-lung-ct"`` or ``"lefusion-mask"``), or
    ``FileNotFoundError`` saying how to train one when its weights are not shipped."""
    from ...training import load_model

    if name not in PRETRAINED:
        raise ValueError(f"unknown lesion model {name!r}; shipped names: {sorted(PRETRAINED)}")
    path = WEIGHTS / f"{name}.safetensors"
    if not path.is_file():
        raise FileNotFoundError(
            f"no weights for {name!r} are shipped with this mrct ({path} is absent); train them "
            f"with `python scripts/train_lesion.py --model "
            f"{'image' if name.endswith('ct') else 'mask'}` (see docs/synth.md) and pass "
            "model=PATH, or load one with mrct.training.load_model"
        )
    return load_model(path, device=device)


def load_lesion_model(model, name: str, cls):
    """``model`` as a ``cls`` in eval mode: itself, loaded from a path, or the shipped
    ``name`` when None."""
    if model is None:
        model = pretrained(name)
    elif isinstance(model, (str, Path)):
        from ...training import load_model

        model = load_model(model)
    if not isinstance(model, cls):
        raise ValueError(f"expected a {cls.__name__}, got a {type(model).__name__}")
    return model.eval()


def resolve_histogram(model: LesionDiffusion, histogram, present: list[int],
                      perturb: float = 0.0, seed=None):  # fmt: skip
    """The condition vector (classes x bins) for ``histogram``: None (the preset of the
    classes present: solid, part-solid or ground-glass, when the model has presets; else
    no condition), a preset name or cluster index, or an array (``classes x bins`` values, or
    ``bins`` values for the one class present). ``perturb``: LeFusion's +-fraction per bin."""
    from .data import perturb_histogram

    c = model.classes
    presets = (model.info or {}).get("presets") or {}
    clusters, names = presets.get("clusters") or [], presets.get("names") or {}
    if histogram is None and clusters:
        kind = "part-solid" if len(present) == 2 else ("ground-glass" if present == [1]
                                                       else "solid")  # fmt: skip
        histogram = kind if kind in names else 0
    if histogram is None:
        return None
    if isinstance(histogram, str) and not histogram.isdigit():
        if histogram not in names:
            raise ValueError(
                f"unknown histogram preset {histogram!r}; this model has {sorted(names)} and "
                f"cluster indices 0..{len(clusters) - 1}"
            )
        h = np.asarray(clusters[names[histogram]], np.float32)
    elif isinstance(histogram, (int, np.integer, str)):
        i = int(histogram)
        if not 0 <= i < len(clusters):
            raise ValueError(f"histogram preset {i} out of range (model has {len(clusters)})")
        h = np.asarray(clusters[i], np.float32)
    else:
        h = np.asarray(histogram, np.float32).reshape(-1)
        if h.size == BINS and c > 1 and len(present) == 1:
            full = np.zeros(c * BINS, np.float32)
            full[present[0] * BINS : (present[0] + 1) * BINS] = h
            h = full
        if h.size != c * BINS:
            raise ValueError(f"histogram must have {c * BINS} values ({c} classes x {BINS} "
                             f"bins), got {h.size}")  # fmt: skip
    if perturb:
        h = perturb_histogram(h, perturb, seed)
    return torch.from_numpy(np.asarray(h, np.float32))[None]


def _class_masks(lab: np.ndarray, classes: int) -> np.ndarray:
    if classes == 1:
        return (lab > 0)[None].astype(np.float32)
    return np.stack([lab == 1, lab == 2]).astype(np.float32)


def _crop_box(region: np.ndarray, size) -> tuple[tuple[slice, ...], list]:
    idx = np.argwhere(region)
    lo, hi = idx.min(0), idx.max(0) + 1
    if np.any(hi - lo > np.asarray(size)):
        raise ValueError(f"the lesion's bounding box {tuple(hi - lo)} is larger than the "
                         f"model's crop {tuple(size)}")  # fmt: skip
    start = (lo + hi) // 2 - np.asarray(size) // 2
    sl = [slice(int(s), int(s) + int(n)) for s, n in zip(start, size, strict=True)]
    return tuple(sl), [(max(0, -s.start), max(0, s.stop - n)) for s, n in
                       zip(sl, region.shape, strict=True)]  # fmt: skip


def _sub(a, sl, pad, fill):
    src = tuple(slice(max(0, s.start), min(s.stop, n)) for s, n in zip(sl, a.shape, strict=True))
    return np.pad(a[src], pad, constant_values=fill), src


def inpaint_lesion(ct, mask, histogram=None, model=None, jump_length: int = 5,
                   jump_n_sample: int = 5, seed: int | None = None, *, steps: int | None = None,
                   perturb: float = 0.0, dilate: int = 1, crop: str = "auto",
                   progress: bool = False, device: str = "cpu") -> np.ndarray:  # fmt: skip
    """Generate a lesion in ``ct`` (HU) inside ``mask`` with a :class:`LesionDiffusion`.

    Parameters
    ----------
    ct : ndarray (D, H, W) or (H, W), or Volume
        The host image in HU.
    mask : ndarray, same shape
        Lesion labels: 1 = solid (or any lesion), 2 = ground-glass halo (bool: all 1).
    histogram : None, str, int or array
        Texture condition (:func:`resolve_histogram`): None = the model's preset for the
        classes in ``mask``; ``"solid"``, ``"part-solid"``, ``"ground-glass"`` or a k-means
        cluster index; or a 16-bin (per class) histogram of [-1, 1] intensities.
    model : LesionDiffusion, path or None
        None: ``pretrained("lefusion-lung-ct")``.
    jump_length, jump_n_sample : int
        RePaint resampling (LeFusion's scripts: 5 and 5).
    seed : int
        The same seed gives the same lesion.
    steps : int, optional
        Respaced reverse steps (default: all T = 300 of training).
    perturb : float
        Perturb the histogram by +-``perturb`` per bin (LeFusion: 0.1).
    dilate : int
        Grow the mask by this many voxels (6-neighbourhood) so the model draws the
        partial-volume rim; outside the dilated mask the result is bit-identical to ``ct``.
    crop : {"auto", "model"}
        The network runs on a crop around the lesion: the model's training crop
        (``"model"``) or the smallest crop (a multiple of the network's down-sampling
        factor, at most the model's) holding the lesion with a margin of 8 voxels in-plane
        and 2 through-plane (``"auto"``, much faster for small lesions: the UNet is fully
        convolutional).
    progress : bool
        tqdm progress bar.

    Returns
    -------
    ndarray, float32, HU, the shape of ``ct``. A 2D model on a 3D ``ct`` works slice by
    slice (every axial slice the mask touches).
    """
    from scipy import ndimage

    arr = np.asarray(getattr(ct, "array", ct), np.float32)
    lab = np.asarray(getattr(mask, "array", mask))
    lab = lab.astype(np.uint8) if lab.dtype != bool else lab.astype(np.uint8)
    if lab.shape != arr.shape:
        raise ValueError(f"mask {lab.shape} and ct {arr.shape} must have the same shape")
    if arr.ndim not in (2, 3):
        raise ValueError(f"ct must be 2D or 3D, got shape {arr.shape}")
    if not lab.any():
        raise ValueError("the lesion mask is empty")
    if not np.isfinite(arr).all():
        raise ValueError("ct contains NaN or Inf")
    net = load_lesion_model(model, "lefusion-lung-ct", LesionDiffusion).to(device)
    if dilate > 0:
        grown = ndimage.grey_dilation(lab, footprint=ndimage.generate_binary_structure(
            lab.ndim, 1), mode="constant", cval=0)  # fmt: skip
        for _ in range(dilate - 1):
            grown = ndimage.grey_dilation(grown, footprint=ndimage.generate_binary_structure(
                lab.ndim, 1), mode="constant", cval=0)  # fmt: skip
        lab = np.where(lab > 0, lab, grown).astype(np.uint8)
    present = sorted({int(v) - 1 for v in np.unique(lab) if v > 0} & {0, 1})
    hist = resolve_histogram(net, histogram, present if net.classes == 2 else [0], perturb, seed)
    g = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    out = arr.copy()
    if net.dims == 2 and arr.ndim == 3:
        slices = [k for k in range(arr.shape[0]) if lab[k].any()]
        planes = [(k, arr[k], lab[k]) for k in slices]
    elif net.dims == arr.ndim:
        planes = [(None, arr, lab)]
    else:
        raise ValueError(f"a {net.dims}D model cannot inpaint a {arr.ndim}D image")
    if crop not in ("auto", "model"):
        raise ValueError(f'crop must be "auto" or "model", got {crop!r}')
    for k, img, lb in planes:
        size = np.asarray(net.image_size)
        if crop == "auto":
            idx = np.argwhere(lb > 0)
            ext = idx.max(0) - idx.min(0) + 1
            margin = np.array([2, 8, 8][-lb.ndim :])
            f = net.net.factor
            size = np.minimum(size, -(-(ext + 2 * margin) // f) * f)
        sl, pad = _crop_box(lb > 0, size)
        patch, src = _sub(img, sl, pad, -1000.0)
        lcrop, _ = _sub(lb, sl, pad, 0)
        x = torch.from_numpy(hu_to_unit(patch))[None, None]
        m = torch.from_numpy(_class_masks(lcrop, net.classes))[None]
        y = net.inpaint(x, m, hist, jump_length=jump_length, jump_n_sample=jump_n_sample,
                        steps=steps, seed=seed, generator=g, progress=progress)  # fmt: skip
        gen = unit_to_hu(y[0, 0].cpu().numpy())
        inner = tuple(
            slice(p0, p0 + (s.stop - s.start)) for (p0, _), s in zip(pad, src, strict=True)
        )
        target = out[k] if k is not None else out
        region = lcrop[inner] > 0
        target[src] = np.where(region, gen[inner], target[src])
    return out


def lesion_mask(shape, center, radius, model=None, seed: int | None = None, *,
                spacing=None, steps: int | None = None, progress: bool = False,
                device: str = "cpu") -> np.ndarray:  # fmt: skip
    """A lesion mask (bool, ``shape``) generated by a :class:`MaskDiffusion` inside the
    control sphere of ``center`` (voxels) and ``radius`` (mm; at ``spacing``, default the
    model's training spacing, else 1 mm). The mask never leaves the sphere."""
    net = load_lesion_model(model, "lefusion-mask", MaskDiffusion).to(device)
    shape = tuple(int(s) for s in shape)
    if len(shape) != net.dims:
        raise ValueError(f"shape {shape} is not {net.dims}D like the model")
    if spacing is None:
        spacing = (net.info or {}).get("spacing") or [1.0] * net.dims
    spacing = tuple(float(s) for s in spacing)
    c = np.asarray(center, float)
    if c.shape != (net.dims,) or np.any(c < 0) or np.any(c >= np.asarray(shape)):
        raise ValueError(f"center {center} must be {net.dims} voxel coordinates inside {shape}")
    if not float(radius) > 0:
        raise ValueError(f"radius must be > 0 mm, got {radius}")
    size = np.asarray(net.image_size)
    start = np.round(c).astype(int) - size // 2
    local = c - start
    sphere = sphere_image(tuple(size), local, float(radius), spacing)
    if (sphere > 0).sum() == 0:
        raise ValueError("the control sphere covers no voxel; give a larger radius")
    x = net.sample(torch.from_numpy(sphere)[None, None], steps=steps, seed=seed,
                   progress=progress)[0, 0].cpu().numpy()  # fmt: skip
    gen = (x > 0) & (sphere > 0)
    if not gen.any():  # never return an empty lesion: the sphere's core
        gen = sphere_image(tuple(size), local, 0.6 * float(radius), spacing) > 0
    out = np.zeros(shape, bool)
    dst = tuple(slice(max(0, s), min(s + n, N)) for s, n, N in zip(start, size, shape,
                                                                   strict=True))  # fmt: skip
    srcs = tuple(slice(d.start - s, d.stop - s) for d, s in zip(dst, start, strict=True))
    out[dst] = gen[srcs]
    return out
