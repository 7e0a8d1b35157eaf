"""Training patches for the tissue and haze priors, simulated with mrct's ultrasound physics.

Frames: a 64-element 2.7 MHz phased array, one diverging wave, delay-and-sum to a 75-degree
sector (radius along rows), each frame divided by its maximum magnitude and mu-law companded
(mu = 255). Tissue frames image cardiac-like scenes (:func:`mrct.data.echo_phantoms.
cardiac_scene` from the shared chest CT, or random cyst phantoms without it); haze frames
image :mod:`mrct.data.haze` alone. The two sets are never paired. Patches are 128 x 64
(rows x columns) cut at random positions, with random left-right flips.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ...data.echo_phantoms import cardiac_scene, cyst_phantom
from ...data.haze import HazeModel, haze_scatterers
from ...physics.ultrasound import DivergingWave, PhasedArray, PolarGrid, compand, das, simulate_rf

__all__ = ["simulate_frames", "random_patches", "PatchDataset", "make_dehaze_task", "probe_setup"]


def probe_setup(depth: float = 100.0, n_angles: int = 96):
    """The probe, transmit and sector grid of the simulated frames."""
    p = PhasedArray()
    tx = DivergingWave((0.0, -p.aperture / 2 / np.tan(np.radians(37.5))))
    grid = PolarGrid.sector(p, depth=(5.0, depth), span=np.radians(75), n_angles=n_angles)
    return p, tx, grid


@functools.cache
def _chest_ct():
    from ...data import load_chest_ct

    vol, lab = load_chest_ct(labels=True)
    return vol.array, lab.array, (vol.spacing[1], vol.spacing[2])


def _tissue_scene(rng, source, depth):
    if source == "chest_ct":
        ct, lab, sp = _chest_ct()
        heart = (lab == 51).sum(axis=(1, 2))
        k = int(heart.argmax()) + int(rng.integers(-8, 9))
        jitter = {"chamber": -35 + rng.uniform(-5, 5), "myocardium": rng.uniform(-3, 3)}
        return cardiac_scene(ct=ct[k], labels=lab[k], spacing=sp, depth=depth, width=140,
                             echogenicity=jitter, seed=rng)  # fmt: skip
    cysts = [(rng.uniform(-30, 30), rng.uniform(20, depth - 10), rng.uniform(4, 12),
              rng.choice([-40.0, -20.0, 6.0])) for _ in range(int(rng.integers(1, 4)))]  # fmt: skip
    return cyst_phantom(width=140, depth=(1.0, depth), cysts=cysts, wires=[], density=2.0,
                        seed=rng)  # fmt: skip


def simulate_frames(kind: str, n_frames: int, *, seed: int = 0, source: str = "auto",
                    depth: float = 100.0, n_angles: int = 96, attenuation: float = 0.3,
                    progress: bool = False) -> torch.Tensor:  # fmt: skip
    """``n_frames`` companded beamformed RF frames ``(n_frames, n_radii, n_angles)`` of
    ``kind`` "tissue" or "haze"."""
    if kind not in ("tissue", "haze"):
        raise ValueError(f'kind must be "tissue" or "haze", got {kind!r}')
    if source == "auto":
        from ...data import SharedDataMissing

        try:
            _chest_ct()
            source = "chest_ct"
        except (SharedDataMissing, ImportError, OSError):
            source = "phantom"
    rng = np.random.default_rng(seed)
    p, tx, grid = probe_setup(depth, n_angles)
    A = das(p, grid, tx)
    out = []
    from tqdm.auto import tqdm

    for _ in tqdm(range(int(n_frames)), desc=f"{kind} frames", disable=not progress):
        if kind == "tissue":
            sc = _tissue_scene(rng, source, depth).scatterers
        else:
            model = HazeModel(orders=int(rng.integers(3, 6)),
                              lateral_spread=float(rng.uniform(2, 6)),
                              n_clutter=int(rng.integers(50, 400)))  # fmt: skip
            sc = haze_scatterers(model, 140.0, depth, seed=rng, fov_half_width=60.0)
        rf = simulate_rf(p, sc, tx, attenuation=attenuation, n_samples=A.n_samples)
        img = A(rf)
        out.append(compand(img / img.abs().max().clamp_min(1e-30)).float())
    return torch.stack(out)


def random_patches(frames: torch.Tensor, n: int, size=(128, 64), *, seed: int = 0):
    """``n`` random ``size`` patches ``(n, 1, h, w)`` of frames ``(F, H, W)``, random flips."""
    g = torch.Generator().manual_seed(seed)
    F, H, W = frames.shape
    h, w = size
    if H < h or W < w:
        raise ValueError(f"frames {H} x {W} are smaller than the patch size {h} x {w}")
    f = torch.randint(F, (n,), generator=g)
    i = torch.randint(H - h + 1, (n,), generator=g)
    j = torch.randint(W - w + 1, (n,), generator=g)
    flip = torch.rand(n, generator=g) < 0.5
    out = torch.stack([frames[a, b : b + h, c : c + w] for a, b, c in zip(f, i, j, strict=True)])
    out[flip] = out[flip].flip(-1)
    return out[:, None]


class PatchDataset(torch.utils.data.Dataset):
    """Items ``(patch, patch)`` for the mrct trainer (the priors learn from the target)."""

    def __init__(self, patches: torch.Tensor):
        self.patches = patches

    def __len__(self):
        return self.patches.shape[0]

    def __getitem__(self, k):
        return self.patches[k], self.patches[k]


def make_dehaze_task(data: dict):
    """Task for ``data.task = "mrct.synth.dehazing.data:make_dehaze_task"``.

    Keys: ``kind`` ("tissue" | "haze"), ``frames`` (train frames), ``val_frames``,
    ``patches`` (train patches), ``val_patches``, ``patch`` ([128, 64]), ``source``
    ("auto" | "chest_ct" | "phantom"), ``seed``, ``depth``, ``n_angles``.
    """
    data = dict(data)
    data.pop("splits", None)
    kind = data.pop("kind", "tissue")
    n_frames, n_val = int(data.pop("frames", 8)), int(data.pop("val_frames", 2))
    n_patches, n_val_p = int(data.pop("patches", 512)), int(data.pop("val_patches", 64))
    size = tuple(data.pop("patch", (128, 64)))
    seed = int(data.pop("seed", 0))
    kw = dict(source=data.pop("source", "auto"), depth=float(data.pop("depth", 100.0)),
              n_angles=int(data.pop("n_angles", 96)))  # fmt: skip
    if data:
        raise ValueError(f"unknown data setting(s) for the dehazing task: {sorted(data)}")
    train = simulate_frames(kind, n_frames, seed=seed, **kw)
    val = simulate_frames(kind, n_val, seed=seed + 10_000, **kw)
    return (None, PatchDataset(random_patches(train, n_patches, size, seed=seed)),
            PatchDataset(random_patches(val, n_val_p, size, seed=seed + 1)), {})  # fmt: skip
