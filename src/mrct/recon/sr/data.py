"""Training data for super-resolution of dynamic MRI (the ``"sr"`` task of ``mrct train``).

:func:`sr_task` cuts static images from a source, simulates a dynamic series of each
(:func:`mrct.data.simulate_dynamic_series`: respiration-like motion, central ``fraction`` of
k-space, interpolation to the high-res grid) and returns :class:`SRDataset` s of
``(input, target)`` pairs, one per time point:

* with a prior (:class:`~mrct.recon.DDoSUNet`, ``prior=True``): input ``(2, *S)`` = (prior,
  interpolated low-res time point ``t``), where the prior is the planning scan for ``t = 0``
  and the **fully sampled** previous time point ``t - 1`` otherwise, as the paper trains
  (``LABEL_PREV_FILE_NAME`` in ``soumickmj/DDoS``; at inference the previous *super-resolved*
  time point takes its place, :func:`~mrct.recon.super_resolve_series`);
* without (:class:`~mrct.recon.SRUNet`): input ``(1, *S)``, the interpolated low-res image;
* target ``(1, *S)``: the high-res time point ``t``.

Sources (intensities scaled to about [0, 1], as the paper rescales its volumes):

* ``"brain_mri"``: the MNI152 T1 (values / 255). 2D: **sagittal** slices ``(S, P)`` (so that
  the motion is superior-inferior and anterior-posterior in-plane; rows flipped so that
  superior is at the top, anterior on the left), zero-padded to a square
  and area-resized to ``size x size``; splits by left-right index (train 30-84, val 88-95:
  the left hemisphere; test 100-164: the right). 3D: blocks of ``depth`` axial slices
  ``(S, P, L)`` with in-plane ``size x size`` (splits by S index as in
  :mod:`mrct.recon.datasets`).
* ``"chest_ct"``: the chest CT, HU windowed ``[-1000, 500] -> [0, 1]``; 2D sagittal slices
  ``(S, P)`` resized to ``size x size`` (anisotropic pixels), 3D axial blocks.
* ``"phantom"``: random ellipse phantoms (2D) or a Shepp-Logan volume with random ellipsoids
  (3D); no shared data needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..datasets import PairDataset, Splits

__all__ = ["SRDataset", "SRTask", "sr_images", "sr_pairs", "sr_task", "make_sr_task",
           "source_spacing", "SR_SPLITS_2D", "SR_SPLITS_3D"]  # fmt: skip

#: 2D splits: left-right index ranges of sagittal slices (brain: 197 L; CT: 512 L)
SR_SPLITS_2D = {
    "brain_mri": {"train": (30, 85), "val": (88, 96), "test": (100, 165)},
    "chest_ct": {"train": (100, 230), "val": (240, 260), "test": (290, 420)},
}
#: 3D splits: S index ranges of axial blocks
SR_SPLITS_3D = {
    "brain_mri": {"train": (30, 120), "val": (122, 140), "test": (142, 175)},
    "chest_ct": {"train": (0, 90), "val": (93, 103), "test": (106, 133)},
}
_SEED_OFFSET = {"train": 0, "val": 100_000, "test": 200_000}


class SRDataset(PairDataset):
    """``(input (C, *S), target (1, *S))`` float32 pairs held in memory."""


@dataclass
class SRTask(Splits):
    """Splits of the SR task and how they were made."""

    splits: dict[str, SRDataset] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def _square_resize(imgs: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) -> zero-pad to a square, area-resize to (N, size, size)."""
    t = torch.from_numpy(np.ascontiguousarray(imgs, dtype=np.float32))
    h, w = t.shape[-2:]
    big = max(h, w)
    ph, pw = big - h, big - w
    t = F.pad(t, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
    if big != size:
        mode = "area" if size < big else "bilinear"
        t = F.interpolate(t[:, None], size=(size, size), mode=mode)[:, 0]
    return t.numpy()


def _pick(lo: int, hi: int, n: int | None, step: int = 1) -> np.ndarray:
    idx = np.arange(lo, hi, step)
    if n is not None and n < idx.size:
        idx = idx[np.linspace(0, idx.size - 1, n).round().astype(int)]
    return idx


def _phantoms(n: int, dims: int, size: int, depth: int, seed: int) -> np.ndarray:
    from ...data import random_ellipses, rasterize_ellipses, shepp_logan_3d

    rng = np.random.default_rng(seed)
    if dims == 2:
        out = np.empty((n, size, size), np.float32)
        for i in range(n):
            e = random_ellipses(int(rng.integers(4, 10)), 0.42 * size, rng,
                                value_range=(0.2, 0.8))  # fmt: skip
            img = rasterize_ellipses(e, (size, size), supersample=2)
            out[i] = img / max(float(img.max()), 1e-6)
        return out
    base = np.asarray(shepp_logan_3d((depth, size, size)), np.float32)
    out = np.empty((n, depth, size, size), np.float32)
    for i in range(n):  # the Shepp-Logan volume, shifted and scaled a little per item
        shift = rng.integers(-size // 16, size // 16 + 1, size=2)
        out[i] = np.roll(base, tuple(shift), axis=(1, 2)) * float(rng.uniform(0.8, 1.0))
    return out


def sr_images(
    source: str = "brain_mri",
    split: str = "train",
    dims: int = 2,
    size: int = 64,
    depth: int = 16,
    max_items: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Static images ``(N, size, size)`` (2D) or volumes ``(N, depth, size, size)`` (3D),
    float32 in about [0, 1], from ``source`` (module docstring). Raises
    :class:`mrct.data.SharedDataMissing` for a shared source when ``../shared/data`` is absent.
    """
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims!r}")
    if split not in _SEED_OFFSET:
        raise ValueError(f"split must be one of {sorted(_SEED_OFFSET)}, got {split!r}")
    if source == "phantom":
        n = max_items if max_items is not None else {"train": 16, "val": 4, "test": 4}[split]
        return _phantoms(n, dims, size, depth, seed + _SEED_OFFSET[split])
    if source == "brain_mri":
        from ...data import load_brain_mri

        vol = np.asarray(load_brain_mri().array, np.float32) / 255.0  # (S, P, L)
    elif source == "chest_ct":
        from ...data import load_chest_ct

        hu = np.asarray(load_chest_ct().array, np.float32)
        vol = np.clip((hu + 1000.0) / 1500.0, 0.0, 1.0)
    else:
        raise ValueError(f'source must be "brain_mri", "chest_ct" or "phantom", got {source!r}')
    if dims == 2:
        lo, hi = SR_SPLITS_2D[source][split]
        idx = _pick(lo, min(hi, vol.shape[2]), max_items)
        # (N, S, P), rows flipped so that superior is at the top (anterior on the left)
        sag = np.ascontiguousarray(np.moveaxis(vol[::-1, :, idx], 2, 0))
        if source == "chest_ct":  # anisotropic: resize each axis to size directly
            t = torch.from_numpy(np.ascontiguousarray(sag))[:, None]
            return F.interpolate(t, size=(size, size), mode="area")[:, 0].numpy()
        return _square_resize(sag, size)
    lo, hi = SR_SPLITS_3D[source][split]
    starts = _pick(lo, max(lo + 1, min(hi, vol.shape[0]) - depth + 1), max_items, step=depth)
    blocks = []
    for s in starts:
        block = vol[s : s + depth]
        blocks.append(_square_resize(block, size) if source == "brain_mri" else
                      F.interpolate(torch.from_numpy(np.ascontiguousarray(block))[:, None],
                                    size=(size, size), mode="area")[:, 0].numpy())  # fmt: skip
    return np.stack(blocks)


def source_spacing(source: str, dims: int = 2, size: int = 64, depth: int = 16):
    """Pixel size in mm of :func:`sr_images` (used to turn the motion amplitudes, in mm, into
    pixels): the brain's padded 233 mm field of view over ``size`` pixels (3D: 1 mm slices);
    the chest CT's 332.5 x 360 mm sagittal field (3D: 2.5 mm slices, 360 mm in-plane); for the
    phantom a 256 mm field of view."""
    if source == "brain_mri":
        inplane = 233.0 / size
        return (inplane, inplane) if dims == 2 else (1.0, inplane, inplane)
    if source == "chest_ct":
        return (133 * 2.5 / size, 360.0 / size) if dims == 2 else (2.5, 360.0 / size,
                                                                    360.0 / size)  # fmt: skip
    return (256.0 / size,) * dims


def sr_pairs(images: np.ndarray, *, fraction: float, prior: bool = True, n_frames: int = 8,
             interp: str = "trilinear", seed: int = 0, **motion) -> SRDataset:  # fmt: skip
    """Simulate a series of every image and return the ``(input, target)`` pairs of all its
    time points (module docstring); ``motion`` goes to
    :func:`mrct.data.simulate_dynamic_series` (``amplitude_mm``, ``frame_time``...)."""
    from ...data import simulate_dynamic_series

    inputs, targets = [], []
    for k, img in enumerate(images):
        sim = simulate_dynamic_series(img, n_frames, fraction=fraction, interp=interp,
                                      seed=seed + 7919 * k, **motion)  # fmt: skip
        cur = torch.from_numpy(sim.lowres_interp)[:, None]  # (T, 1, *S)
        hr = torch.from_numpy(sim.series)[:, None]
        if prior:
            prev = torch.cat([torch.from_numpy(sim.planning)[None, None], hr[:-1]])
            inputs.append(torch.cat([prev, cur], dim=1))
        else:
            inputs.append(cur)
        targets.append(hr)
    info = {"fraction": fraction, "prior": prior, "n_frames": n_frames, "interp": interp,
            "n_series": len(images)}  # fmt: skip
    return SRDataset(torch.cat(inputs), torch.cat(targets), info)


def sr_task(fraction: float = 0.04, *, prior: bool = True, source: str = "brain_mri",
            dims: int = 2, size: int = 64, depth: int = 16, n_frames: int = 8,
            max_slices: int | None = None, interp: str = "trilinear", seed: int = 0,
            splits=("train", "val", "test"), motion: dict | None = None) -> SRTask:  # fmt: skip
    """The SR task: :func:`sr_images` of every split -> :func:`sr_pairs`.

        ``max_slices`` caps the images per split (evenly spread over the split's range);
        ``motion`` holds extra keyword arguments of :func:`mrct.data.simulate_dynamic_series`
    (``spacing`` defaults to :func:`source_spacing`, so amplitudes are in mm of the source).
    """
    task = SRTask(info={"fraction": fraction, "prior": prior, "source": source, "dims": dims,
                        "size": size, "n_frames": n_frames, "interp": interp})  # fmt: skip
    motion = dict(motion or {})
    motion.setdefault("spacing", source_spacing(source, dims, size, depth))
    for split in splits:
        imgs = sr_images(source, split, dims, size, depth, max_slices, seed)
        task.splits[split] = sr_pairs(imgs, fraction=fraction, prior=prior, n_frames=n_frames,
                                      interp=interp, seed=seed + _SEED_OFFSET[split],
                                      **motion)  # fmt: skip
    return task


def make_sr_task(data: dict, cfg=None):
    """``make_task`` for ``data.task = "sr"``: ``(None, train, val, extra)``.

    ``data.prior`` (two-channel inputs) defaults to whether the config's model uses a prior
    (``model.name`` ``"ddos"``/``"ddosunet"`` or a class with ``uses_prior``); ``extra`` carries
    ``dims`` (passed to the model unless the model table sets it) and ``img_scale = 1``.
    """
    data = dict(data)
    if isinstance(cfg, dict):
        model_cfg = dict(cfg.get("model") or {})
    else:
        model_cfg = dict(getattr(cfg, "model", None) or {})
    name = str(model_cfg.get("name", "ddos"))
    from .models import SR_MODELS

    uses_prior = None
    if name in SR_MODELS:
        uses_prior = SR_MODELS[name].uses_prior
    prior = data.pop("prior", None)
    if prior is None:
        prior = True if uses_prior is None else uses_prior
    elif uses_prior is not None and bool(prior) != uses_prior:
        raise ValueError(
            f"data.prior = {prior} does not fit model.name = {name!r}, which "
            f"{'takes' if uses_prior else 'does not take'} a prior channel"
        )
    if "dims" in model_cfg and "dims" not in data:
        data["dims"] = model_cfg["dims"]
    if "dims" in model_cfg and model_cfg["dims"] != data["dims"]:
        raise ValueError(f"model.dims = {model_cfg['dims']} but data.dims = {data['dims']}")
    splits = tuple(s for s in data.pop("splits", ("train", "val")) if s in ("train", "val"))
    task = sr_task(prior=bool(prior), splits=splits or ("train",), **data)
    return None, task.train, task.val, {"dims": task.info["dims"], "img_scale": 1.0}
