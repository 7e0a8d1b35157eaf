"""Whole-frame dehazing: patches with overlap, averaged at every step, and the data domains."""

from __future__ import annotations

import math

import numpy as np
import torch

from .sampler import _mu_c, _mu_e, joint_posterior_sample

__all__ = ["dehaze", "patch_starts"]


def patch_starts(length: int, size: int, overlap: float) -> list[int]:
    """Start indices of patches of ``size`` covering ``length`` with at least ``overlap``
    (fraction) between neighbours."""
    if length <= size:
        return [0]
    step = max(1, int(size * (1 - overlap)))
    n = math.ceil((length - size) / step) + 1
    return sorted({int(round(v)) for v in np.linspace(0, length - size, n)})


class _Patches:
    def __init__(self, n_frames, H, W, ph, pw, overlap, device, dtype):
        self.shape = (n_frames, H, W)
        self.ph, self.pw = ph, pw
        self.pos = [
            (i, j) for i in patch_starts(H, ph, overlap) for j in patch_starts(W, pw, overlap)
        ]
        w = torch.zeros((H, W), dtype=dtype, device=device)
        for i, j in self.pos:
            w[i : i + ph, j : j + pw] += 1
        self.inv_count = 1.0 / w

    def split(self, frames):  # (F, H, W) -> (F * P, 1, ph, pw)
        out = [frames[:, i : i + self.ph, j : j + self.pw] for i, j in self.pos]
        return torch.stack(out, dim=1).reshape(-1, 1, self.ph, self.pw)

    def merge(self, patches):  # average of the overlapping patches
        F = self.shape[0]
        p = patches.reshape(F, len(self.pos), self.ph, self.pw)
        out = torch.zeros(self.shape, dtype=patches.dtype, device=patches.device)
        for k, (i, j) in enumerate(self.pos):
            out[:, i : i + self.ph, j : j + self.pw] += p[:, k]
        return out * self.inv_count


def dehaze(y, tissue_prior, haze_prior, strength: float = 1.0, n_steps: int = 200,
           seed: int | None = None, *, domain: str = "rf", tau: float = 0.8,
           guidance: str = "projection", lam: float | None = None, kappa: float | None = None,
           noise_std: float = 0.0, patch=(128, 64), overlap: float = 0.1, mu: float = 255.0,
           progress: bool = False, return_haze: bool = False):  # fmt: skip
    """Remove haze from beamformed RF (``domain="rf"``) or B-mode frames.

    Parameters
    ----------
    y : array or Tensor (H, W) or (F, H, W)
        Frames (depth along rows). RF frames are normalised by their maximum magnitude and
        mu-law companded (the priors' domain); B-mode frames are expected in ``[0, 1]``
        (e.g. ``(dB + dynamic_range) / dynamic_range``) and mapped to ``[-1, 1]``.
    tissue_prior, haze_prior : score priors (see :mod:`mrct.synth.dehazing.priors`).
    strength : ``gamma``, the weight of the haze in ``y = C(C^-1(x) + gamma C^-1(h))``.
    n_steps, seed, tau, guidance, lam, kappa, noise_std : see
        :func:`~mrct.synth.dehazing.sampler.joint_posterior_sample`.
    patch, overlap : patch size (rows, columns) and minimum overlap; overlapping patches are
        averaged after every step so the frame stays consistent.

    Returns
    -------
    Tensor like ``y`` (the dehazed tissue, in the units of ``y``), and the haze when
    ``return_haze``.
    """
    if domain not in ("rf", "bmode"):
        raise ValueError(f'domain must be "rf" or "bmode", got {domain!r}')
    t = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    if not t.is_floating_point():
        t = t.float()
    squeeze = t.ndim == 2
    if t.ndim not in (2, 3):
        raise ValueError(f"y must be (H, W) or (F, H, W), got shape {tuple(t.shape)}")
    frames = t[None] if squeeze else t
    F, H, W = frames.shape
    ph, pw = int(patch[0]), int(patch[1])
    Hp, Wp = max(H, ph), max(W, pw)
    pad = (Hp - H, Wp - W)
    if domain == "rf":
        scale = frames.abs().reshape(F, -1).amax(dim=1).clamp_min(1e-30).reshape(F, 1, 1)
        z = _mu_c(frames / scale, mu)
    else:
        z = frames * 2 - 1
    if pad != (0, 0):
        z = torch.nn.functional.pad(z, (0, pad[1], 0, pad[0]))
    pt = _Patches(F, Hp, Wp, ph, pw, overlap, z.device, z.dtype)

    def consistent(x, h):
        return pt.split(pt.merge(x)), pt.split(pt.merge(h))

    x, h = joint_posterior_sample(pt.split(z), tissue_prior, haze_prior, gamma=strength,
                                  n_steps=n_steps, tau=tau, lam=lam, kappa=kappa,
                                  guidance=guidance, noise_std=noise_std,
                                  compand=domain == "rf", mu=mu, seed=seed, progress=progress,
                                  step_transform=consistent)  # fmt: skip
    xf, hf = pt.merge(x)[:, :H, :W], pt.merge(h)[:, :H, :W]
    if domain == "rf":
        xf = _mu_e(xf.clamp(-1, 1), mu) * scale
        hf = _mu_e(hf.clamp(-1, 1), mu) * scale * strength
    else:
        xf, hf = (xf + 1) / 2, (hf + 1) / 2
    if squeeze:
        xf, hf = xf[0], hf[0]
    return (xf, hf) if return_haze else xf
