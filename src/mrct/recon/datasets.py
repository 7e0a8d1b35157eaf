"""Training and test data for the learned reconstructors, as in the Primal-Dual UNet paper.

Two tasks, each a :class:`Task` holding the full-view and sparse operators and train,
validation and test :class:`SinogramDataset` s of ``(sparse sinogram, ground truth)`` pairs:

* ``"ct"``: sparse-view fan-beam CT in the paper's geometry (pixel units: 256 x 256 image,
  360 views at 1 degree, source 400, detector 150, 511 flat-detector bins of spacing 1;
  every ``sparsity``-th view kept). Images are attenuation per pixel,
  ``mu = 0.02 (1 + HU / 1000)`` clipped at 0, from axial slices of the shared chest CT
  (512 x 512 at 0.70 mm, area-averaged to 256 x 256) split by slice ranges, or from random
  ellipse phantoms (``source="ellipses"``), which need no shared data.
* ``"mri"``: undersampled radial MRI turned into sinograms (the paper's unification): axial
  slices of the shared brain MRI (intensities / 255, zero-padded to 256 x 256) -> radial
  k-space on 512 equidistant spokes of 363 samples (exact NUFFT, eps 1e-6) ->
  :func:`mrct.physics.radial_to_sinogram` -> every ``acceleration``-th spoke kept.

Ground truth as in the paper: the Hann-filtered FBP of the full-view sinogram, clipped at 0
(so that a network is asked for what full sampling would give, not for the voxelised image).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..data.shared import CT_SPLITS
from ..physics import NUFFT, FanBeam, ParallelBeam, Radon, radial_to_sinogram, radial_trajectory
from ..physics.attenuation import water_hu_to_mu

__all__ = [
    "PairDataset",
    "SinogramDataset",
    "Splits",
    "Task",
    "ct_geometry",
    "ct_operators",
    "hu_to_mu",
    "chest_ct_images",
    "ellipse_images",
    "brain_mri_images",
    "ct_task",
    "mri_task",
    "MRISimulator",
    "make_task",
    "CT_SPLITS",
    "MU_WATER",
]

MU_WATER = 0.02  # attenuation of water per pixel in the paper's units

MRI_SPLITS = {"train": (40, 120), "val": (122, 130), "test": (132, 150)}


def hu_to_mu(hu, mu_water: float = MU_WATER):
    """Attenuation ``mu_water (1 + HU / 1000)``, clipped at 0 (air and padding -> 0); see
    :func:`mrct.physics.attenuation.water_hu_to_mu`."""
    return water_hu_to_mu(hu, mu_water)


def ct_geometry(sparsity: int = 1, n_views: int = 360) -> FanBeam:
    """The paper's fan-beam geometry (pixel units); every ``sparsity``-th of 360 views."""
    geo = FanBeam(np.deg2rad(np.arange(n_views) * 360.0 / n_views), 511, 1.0, 400.0, 150.0)
    return geo.subsample(sparsity) if sparsity > 1 else geo


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images[:, None], size=(size, size), mode="area")[:, 0]


def chest_ct_images(split: str = "train", size: int = 256, max_slices: int | None = None):
    """Slices of the shared chest CT as attenuation images (n, size, size), float32.

    Raises :class:`mrct.data.SharedDataMissing` when ``../shared/data`` is absent.
    """
    from ..data import load_chest_ct

    if split not in CT_SPLITS:
        raise ValueError(f"split must be one of {sorted(CT_SPLITS)}, got {split!r}")
    lo, hi = CT_SPLITS[split]
    idx = np.arange(lo, hi)
    if max_slices is not None and max_slices < idx.size:  # evenly spread over the range
        idx = idx[np.linspace(0, idx.size - 1, max_slices).round().astype(int)]
    hu = torch.as_tensor(np.asarray(load_chest_ct().array[idx], dtype=np.float32))
    return _resize(hu_to_mu(hu.clamp_min(-1000.0)), size).contiguous()


def ellipse_images(n: int, size: int = 256, seed: int = 0, max_ellipses: int = 12):
    """Random-ellipse phantoms (n, size, size) in attenuation units (0 .. ~0.03), float32."""
    from ..data import random_ellipses, rasterize_ellipses

    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size), np.float32)
    radius = 0.45 * size
    for i in range(n):
        e = random_ellipses(int(rng.integers(3, max_ellipses + 1)), radius, rng,
                            value_range=(0.2 * MU_WATER, 0.6 * MU_WATER))  # fmt: skip
        out[i] = rasterize_ellipses(e, (size, size), supersample=2)
    return torch.from_numpy(out)


def brain_mri_images(split: str = "train", size: int = 256, max_slices: int | None = None):
    """Axial slices of the shared brain MRI, intensities / 255, zero-padded to (size, size)."""
    from ..data import load_brain_mri

    if split not in MRI_SPLITS:
        raise ValueError(f"split must be one of {sorted(MRI_SPLITS)}, got {split!r}")
    lo, hi = MRI_SPLITS[split]
    idx = np.arange(lo, hi)
    if max_slices is not None and max_slices < idx.size:
        idx = idx[np.linspace(0, idx.size - 1, max_slices).round().astype(int)]
    vol = torch.as_tensor(np.asarray(load_brain_mri().array[idx], dtype=np.float32)) / 255.0
    h, w = vol.shape[-2:]
    big = max(h, w)
    ph, pw = big - h, big - w
    vol = F.pad(vol, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
    return _resize(vol, size).contiguous()


class PairDataset(Dataset):
    """``(input, target)`` float32 pairs held in memory: ``inputs`` and ``targets`` are
    tensors with a leading sample axis; ``info`` says how they were made."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, info: dict | None = None):
        if inputs.shape[0] != targets.shape[0]:
            raise ValueError(
                f"inputs and targets differ in length: {inputs.shape[0]} vs {targets.shape[0]}"
            )
        self.inputs = inputs.float().contiguous()
        self.targets = targets.float().contiguous()
        self.info = dict(info or {})

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, i):
        return self.inputs[i], self.targets[i]


class SinogramDataset(PairDataset):
    """Pairs ``(sinogram (n_views, n_det), target (H, W))``, float32, held in memory."""


class Splits:
    """``train``, ``val`` and ``test`` of a task's ``splits`` dict (None where absent)."""

    splits: dict

    @property
    def train(self):
        return self.splits.get("train")

    @property
    def val(self):
        return self.splits.get("val")

    @property
    def test(self):
        return self.splits.get("test")


@dataclass
class Task(Splits):
    """A reconstruction task: operators, splits and the image scale the models use."""

    name: str
    radon_full: Radon
    radon_sparse: Radon
    splits: dict[str, SinogramDataset] = field(default_factory=dict)
    img_scale: float = 1.0
    info: dict[str, Any] = field(default_factory=dict)


def _pairs(full: Radon, sparse_views, images, chunk: int = 16):
    """Full sinograms -> (sparse sinograms, clipped full-view Hann FBP targets)."""
    sinos, targets = [], []
    for s in range(0, images.shape[0], chunk):
        y = full(images[s : s + chunk])
        targets.append(full.fbp(y, filter="hann").clamp_min(0.0))
        sinos.append(y[:, sparse_views].contiguous())
    return torch.cat(sinos), torch.cat(targets)


def _img_scale(targets: torch.Tensor) -> float:
    """99th percentile of the training targets (the paper's ``per99.img``)."""
    t = targets.flatten()
    if t.numel() > 2_000_000:  # quantile has a size limit; subsample evenly
        t = t[:: math.ceil(t.numel() / 2_000_000)]
    return float(torch.quantile(t, 0.99))


def ct_operators(sparsity: int = 16, size: int = 256) -> tuple[Radon, np.ndarray, Radon]:
    """``(full, views, sparse)``: the 360-view fan-beam operator of :func:`ct_geometry` on a
    ``size x size`` grid, the kept view indices and the sparse operator. ``size`` other than
    256 scales the geometry (distances, detector) with the image, keeping the fan angle."""
    if int(sparsity) != sparsity or not 1 <= sparsity <= 180:
        raise ValueError(f"sparsity must be an integer in 1 .. 180, got {sparsity}")
    geo = ct_geometry(1)
    if size != 256:
        f = size / 256
        geo = FanBeam(geo.angles, int(math.ceil(511 * f)) | 1, 1.0, 400.0 * f, 150.0 * f)
    full = Radon(geo, (size, size))
    views = np.arange(0, 360, sparsity)
    return full, views, Radon(geo.with_angles(geo.angles[views]), (size, size))


def ct_task(sparsity: int = 16, size: int = 256, source: str = "chest_ct",
            splits=("train", "val", "test"), max_slices: int | None = None,
            n_ellipses: int = 64, seed: int = 0) -> Task:  # fmt: skip
    """Sparse-view fan-beam CT (see the module docstring).

    ``size`` other than 256 scales the geometry (distances, detector) with the image so that
    small test problems keep the paper's fan angle.
    """
    full, views, sparse = ct_operators(sparsity, size)
    task = Task("ct", full, sparse, info={"sparsity": sparsity, "source": source})
    for k, split in enumerate(splits):
        if source == "chest_ct":
            imgs = chest_ct_images(split, size, max_slices)
        elif source == "ellipses":
            n = n_ellipses if split == "train" else max(4, n_ellipses // 8)
            imgs = ellipse_images(n, size, seed=seed + 1000 * k)
        else:
            raise ValueError(f'source must be "chest_ct" or "ellipses", got {source!r}')
        task.splits[split] = SinogramDataset(*_pairs(full, views, imgs))
    if task.train is not None:
        task.img_scale = _img_scale(task.train.targets)
    return task


class MRISimulator:
    """The radial MRI simulation of :func:`mri_task` for images ``(B, size, size)``:
    ``n_spokes`` equidistant spokes of ``ceil(size sqrt 2) | 1`` samples (exact NUFFT, eps
    1e-6) -> :func:`mrct.physics.radial_to_sinogram` -> every ``acceleration``-th spoke."""

    def __init__(self, acceleration: int = 16, size: int = 256, n_spokes: int = 512):
        n_samples = int(math.ceil(size * math.sqrt(2))) | 1  # 363 at 256: the diagonal
        self.size = size
        self.angles = np.arange(n_spokes) * math.pi / n_spokes
        self.nufft = NUFFT(radial_trajectory(n_spokes, n_samples, golden=False), (size, size),
                           eps=1e-6)  # fmt: skip
        geo = ParallelBeam(self.angles, n_samples, 1.0)
        self.full = Radon(geo, (size, size))
        self.views = np.arange(0, n_spokes, acceleration)
        self.sparse = Radon(geo.with_angles(self.angles[self.views]), (size, size))

    def pairs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sparse sinograms, clipped full-view Hann FBP targets) of real images."""
        k = self.nufft(images.to(torch.complex64))
        sino, _ = radial_to_sinogram(k, self.angles, (self.size, self.size))
        sino = sino.real.float()
        targets = self.full.fbp(sino, filter="hann").clamp_min(0.0)
        return sino[:, self.views].contiguous(), targets


def mri_task(acceleration: int = 16, size: int = 256, n_spokes: int = 512,
             splits=("train", "val", "test"), max_slices: int | None = None,
             source: str = "brain_mri") -> Task:  # fmt: skip
    """Undersampled radial MRI as sparse-view parallel-beam sinograms (module docstring).

    ``source="phantom"`` uses the modified Shepp-Logan phantom (one slice per split) instead
    of the shared brain MRI, for runs without ``../shared/data``.
    """
    if source not in ("brain_mri", "phantom"):
        raise ValueError(f'source must be "brain_mri" or "phantom", got {source!r}')
    if int(acceleration) != acceleration or not 1 <= acceleration <= n_spokes // 2:
        raise ValueError(
            f"acceleration must be an integer in 1 .. n_spokes / 2, got {acceleration}"
        )
    sim = MRISimulator(acceleration, size, n_spokes)
    task = Task("mri", sim.full, sim.sparse,
                info={"acceleration": acceleration, "source": source})  # fmt: skip
    for split in splits:
        if source == "phantom":
            from ..data import shepp_logan

            imgs = torch.from_numpy(np.asarray(shepp_logan((size, size)), np.float32))[None]
        else:
            imgs = brain_mri_images(split, size, max_slices)
        task.splits[split] = SinogramDataset(*sim.pairs(imgs))
    if task.train is not None:
        task.img_scale = _img_scale(task.train.targets)
    return task


def _import_task(spec: str):
    from ..training.plugins import import_object

    fn = import_object(spec, "data.task")
    if not callable(fn):
        raise ValueError(f"data.task {spec!r} is not a function")
    return fn


def make_task(cfg) -> tuple[Radon, SinogramDataset, SinogramDataset | None, dict]:
    """Build a task from a config's ``data`` section (a dict or an object with ``.data``).

    Keys: ``task`` ("ct" | "mri" | "sr"), then the keyword arguments of :func:`ct_task` or
    :func:`mri_task` (``sparsity``/``acceleration``, ``size``, ``source``, ``max_slices``...).
    ``source = "mix"`` (CT) builds :func:`mrct.recon.ct_mix.ct_mix_task` instead (keys ``mix``,
    ``photons``, ``samples_per_epoch``, ``n_head``); its ``extra`` also holds ``val_sets``.
    ``task = "package.module:function"`` hands the other keys, as a dict, to that function,
    which returns the same tuple (how packages built on ``mrct.recon``, such as ``mrct.synth``,
    plug their data in without ``mrct.recon`` importing them).
    Returns ``(radon_sparse, train, val, extra)`` with ``extra = {"img_scale": ...}``, the
    keyword arguments the models need besides the operator.
    """
    if isinstance(cfg, dict):
        data = dict(cfg.get("data", cfg) or {})
    else:
        data = dict(getattr(cfg, "data", None) or {})
    kind = data.pop("task", "ct")
    if ":" in str(kind):  # "package.module:function", e.g. "mrct.synth.sct_data:make_sct_task"
        return _import_task(str(kind))(data)
    data.setdefault("splits", ("train", "val"))
    if kind == "ct" and data.get("source") == "mix":  # issue #17's data mix (ct_mix)
        from .ct_mix import ct_mix_task

        data.pop("source")
        task = ct_mix_task(**data)
    elif kind == "ct":
        task = ct_task(**data)
    elif kind == "mri":
        task = mri_task(**data)
    elif kind == "sr":  # super-resolution of dynamic MRI (mrct.recon.sr.data)
        from .sr.data import make_sr_task

        return make_sr_task(data, cfg)
    else:
        raise ValueError(
            f'data.task must be "ct", "mri", "sr" or "package.module:function", got {kind!r}'
        )
    extra = {"img_scale": task.img_scale}
    if task.info.get("val_sets"):
        extra["val_sets"] = task.info["val_sets"]  # train_from_config logs SSIM on each
    return task.radon_sparse, task.train, task.val, extra
