"""Sparse-view CT training data that generalise (issue #17): a mix of image sources with
sinograms simulated on the fly through the fan-beam operator of :func:`ct_task`.

Sources (``mix``: name -> share; :data:`DEFAULT_MIX`), all in the training slab of the chest
CT (axial slices ``CT_SPLITS["train"]`` = 0-89, in every orientation, so no voxel of the
validation or test slices is ever seen):

* ``chest``: axial chest CT slices at a random field of view of 250-400 mm (360 mm is the
  whole slice, as :func:`ct_task` uses it), centre jittered by up to 10 % of it, with
  random rotation, flips, +-10 % scaling and mild elastic deformation;
* ``chest_orient``: coronal and sagittal slices (2.5 mm rows resampled), same augmentation;
* ``synthetic``: :func:`mrct.data.synthetic_anatomy.synthetic_anatomy` images (per-organ HU
  from the 118-label map, texture) in any orientation, with the full augmentation
  (rotation, flips, 0.85-1.15 scaling, elastic deformation up to 6 pixels);
* ``ellipses``: random-ellipse phantoms (:func:`mrct.recon.datasets.ellipse_images`).

Images are attenuation per pixel, ``0.02 (1 + HU / 1000)`` clipped at 0 (water 0.02, as the
shipped models expect). The full 360-view sinogram is simulated, optionally with Poisson
noise at ``photons`` incident photons per detector bin and view (``-log`` of Poisson counts
of ``photons exp(-p)``, at least one count); the input is every ``sparsity``-th view of it
and the target the Hann-filtered FBP of the noise-free full sinogram, clipped at 0.

Validation: held-out chest slices (axial 93-102, :data:`CT_SPLITS` ``["val"]``) and
synthetic head CT slices (:func:`mrct.data.synthetic_head_ct`, seeds 10000 + i, a domain
the training never sees); :class:`ValidationSSIM` logs the mean SSIM on each.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.shared import CT_SPLITS
from .datasets import (
    SinogramDataset,
    Task,
    _img_scale,
    _pairs,
    chest_ct_images,
    ct_operators,
    ellipse_images,
    hu_to_mu,
)

__all__ = [
    "DEFAULT_MIX",
    "MixCTDataset",
    "ValidationSSIM",
    "ct_mix_task",
    "head_ct_images",
    "image_pool",
    "mix_image",
    "poisson_noise",
    "simulate_pairs",
]

log = logging.getLogger(__name__)

DEFAULT_MIX = {"chest": 0.4, "chest_orient": 0.2, "synthetic": 0.25, "ellipses": 0.15}
HEAD_SEED = 10_000  # synthetic head CT validation slices use seeds HEAD_SEED + i


def _normalise(mix) -> tuple[list[str], np.ndarray]:
    mix = dict(DEFAULT_MIX if mix is None else mix)
    bad = sorted(set(mix) - set(DEFAULT_MIX))
    if bad or not mix:
        raise ValueError(f"mix keys must be among {sorted(DEFAULT_MIX)}, got {sorted(mix)}")
    p = np.array([float(mix[k]) for k in mix])
    if np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"mix shares must be >= 0 and not all 0, got {mix}")
    return list(mix), p / p.sum()


def mix_image(rng: np.random.Generator, mix=None, size: int = 256,
              s_range=CT_SPLITS["train"]) -> tuple[np.ndarray, str]:  # fmt: skip
    """One training image ``(size, size)`` float32 in attenuation units and its source name."""
    from ..data.synthetic_anatomy import augment_slice, chest_slice, resample_fov
    from ..data.synthetic_anatomy import synthetic_anatomy as synth

    names, p = _normalise(mix)
    kind = str(rng.choice(names, p=p))
    if kind == "ellipses":
        return ellipse_images(1, size, seed=int(rng.integers(2**31)))[0].numpy(), kind
    if kind == "chest":
        orient = "axial"
    elif kind == "chest_orient":
        orient = str(rng.choice(["coronal", "sagittal"]))
    else:
        orient = str(rng.choice(["axial", "coronal", "sagittal"], p=[0.5, 0.25, 0.25]))
    n = s_range[1] - s_range[0] if orient == "axial" else 512
    lo = 0 if orient == "axial" else 96  # off-centre sagittal/coronal cuts are mostly air
    hu, lab, sp = chest_slice(orient, int(rng.integers(lo, n - lo)), s_range)
    if kind == "synthetic":
        hu = synth(lab, hu, rng)
    fov = rng.uniform(250.0, 400.0 if orient == "axial" else 380.0)
    centre = (np.asarray(hu.shape) - 1) / 2 * np.asarray(sp) + rng.uniform(-0.1, 0.1, 2) * fov
    img = resample_fov(hu.clip(-1000.0, None), sp, (size, size), fov, centre)
    if kind == "synthetic":
        img = augment_slice(img, rng, elastic_px=6.0 * size / 256)
    else:
        img = augment_slice(img, rng, scale=(0.9, 1.1), elastic_px=2.0 * size / 256)
    return np.asarray(hu_to_mu(img), np.float32), kind


def _pool_item(args):
    i, mix, size, seed = args
    return mix_image(np.random.default_rng([seed, i]), mix, size)[0]


def image_pool(n: int, mix=None, size: int = 256, seed: int = 0, workers: int = 1):
    """``n`` mix images ``(n, size, size)`` (attenuation); image ``i`` depends only on
    ``(seed, i)``, so the pool is the same for any number of ``workers`` (processes)."""
    args = [(i, mix, size, seed) for i in range(n)]
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            imgs = pool.map(_pool_item, args, chunksize=8)
    else:
        imgs = [_pool_item(a) for a in args]
    return torch.from_numpy(np.stack(imgs))


def poisson_noise(sino: torch.Tensor, photons: float, generator=None) -> torch.Tensor:
    """``-log(max(N, 1) / photons)`` with ``N ~ Poisson(photons exp(-sino))``."""
    counts = torch.poisson(photons * torch.exp(-sino.float()), generator=generator)
    return -torch.log(counts.clamp_min(1.0) / photons)


def simulate_pairs(images: torch.Tensor, full, views, photons: float | None = None,
                   generator=None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Images ``(B, H, W)`` -> (sparse sinograms, targets), on the images' device: the full
    sinogram (noisy with ``photons``) at ``views``, and the clipped Hann FBP of the clean one."""
    y = full(images)
    target = full.fbp(y, filter="hann").clamp_min(0.0)
    g = y[:, views]
    if photons:
        g = poisson_noise(g, float(photons), generator)
    return g.contiguous(), target


class MixCTDataset(Dataset):
    """``length`` pairs per epoch, each a fresh mix image simulated on the fly. The image
    and the noise are drawn from a seed taken from torch's global generator, so a run is
    reproducible from its seed and resumes exactly (mrct.training restores that state)."""

    def __init__(self, full, views, mix=None, size: int = 256, photons=None,
                 length: int = 256):  # fmt: skip
        _normalise(mix)
        self.full, self.views, self.mix, self.size = full, views, mix, size
        self.photons, self.length = photons, int(length)
        self.info = {"source": "mix", "mix": dict(DEFAULT_MIX if mix is None else mix),
                     "photons": photons}  # fmt: skip

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i):
        s = int(torch.randint(2**62, (1,)))
        img, _ = mix_image(np.random.default_rng(s), self.mix, self.size)
        gen = torch.Generator().manual_seed(s)
        g, x = simulate_pairs(torch.from_numpy(img)[None], self.full, self.views,
                              self.photons, gen)  # fmt: skip
        return g[0], x[0]


def head_ct_images(n: int, size: int = 256, seed: int = HEAD_SEED) -> torch.Tensor:
    """``n`` synthetic head CT slices (seeds ``seed + i``) in attenuation units."""
    from ..data.head_ct import synthetic_head_ct

    hu = np.stack([synthetic_head_ct((size, size), seed=seed + i) for i in range(n)])
    return hu_to_mu(torch.from_numpy(hu))


def ct_mix_task(sparsity: int = 16, size: int = 256, mix=None, photons: float | None = None,
                samples_per_epoch: int = 256, n_head: int = 8, max_slices: int | None = None,
                splits=("train", "val"), seed: int = 0) -> Task:  # fmt: skip
    """The mix task: ``train`` a :class:`MixCTDataset`, ``val`` (and ``test``) the held-out
    chest slices (noise-free), ``info["val_sets"]``: ``{"chest": val, "head": n_head
    synthetic head slices}``. ``img_scale`` is the 99th percentile of the targets of 16 mix
    images drawn with ``seed`` (deterministic)."""
    full, views, sparse = ct_operators(sparsity, size)
    _normalise(mix)
    info = {"sparsity": sparsity, "source": "mix", "mix": mix or DEFAULT_MIX, "photons": photons}
    task = Task("ct", full, sparse, info=info)
    for split in splits:
        if split == "train":
            task.splits[split] = MixCTDataset(full, views, mix, size, photons, samples_per_epoch)
        else:
            imgs = chest_ct_images(split, size, max_slices)
            task.splits[split] = SinogramDataset(*_pairs(full, views, imgs))
    val_sets = {}
    if task.val is not None:
        val_sets["chest"] = task.val
    if n_head:
        val_sets["head"] = SinogramDataset(*_pairs(full, views, head_ct_images(n_head, size)))
    task.info["val_sets"] = val_sets
    sample = image_pool(16, mix, size, seed=seed + 99_991)
    task.img_scale = _img_scale(_pairs(full, views, sample)[1])
    return task


class ValidationSSIM:
    """A :func:`mrct.training.fit` callback: after every ``every``-th epoch, the mean SSIM
    (fastMRI's, data range the target's maximum, output clipped at 0) of the model on each
    validation set, written to the epoch's record as ``val_ssim_<name>`` (so into
    ``history.json``) and logged."""

    def __init__(self, val_sets: dict, every: int = 1, batch: int = 4):
        self.val_sets, self.every, self.batch = dict(val_sets), int(every), int(batch)

    def scores(self, model) -> dict[str, float]:
        from ..metrics import ssim

        dev = next(model.parameters()).device
        was = model.training
        model.eval()
        out = {}
        with torch.no_grad():
            for name, ds in self.val_sets.items():
                vals = []
                for s in range(0, len(ds), self.batch):
                    rec = model(ds.inputs[s : s + self.batch].to(dev)).float().clamp_min(0)
                    for r, t in zip(rec.cpu().numpy(), ds.targets[s : s + self.batch].numpy(),
                                    strict=True):  # fmt: skip
                        vals.append(ssim(r, t, float(t.max())))
                out[name] = float(np.mean(vals))
        model.train(was)
        return out

    def __call__(self, trainer, record: dict) -> None:
        if trainer.epoch % self.every:
            return
        for name, v in self.scores(trainer.model).items():
            record[f"val_ssim_{name}"] = v
        ssims = {k: round(v, 4) for k, v in record.items() if k.startswith("val_ssim")}
        log.info("epoch %d: %s", trainer.epoch, ssims)
