"""LeFusion-style lesion-focused diffusion (:class:`LesionDiffusion`) and lesion-mask
diffusion (:class:`MaskDiffusion`), 2D or 3D, trained by :func:`mrct.training.fit`.

Both are DDPMs with a **cosine schedule (s = 0.008), T = 300** (diffusers'
``DDPMScheduler(beta_schedule="squaredcos_cap_v2")`` supplies the betas), epsilon
prediction, an **L1** loss and EMA weights (decay with the ``(1 + n) / (10 + n)`` warm-up).

:class:`LesionDiffusion` (images in ``[-1, 1]`` = HU clamped to [-1000, 400]):

* input channels: the noisy image once per lesion class (``classes`` = 2: solid core and
  ground-glass halo, LeFusion's multi-channel decomposition) and the class masks;
* condition: the 16-bin lesion-intensity histogram of each class (``classes x 16``), added to
  the time embedding; dropped (zeros) with probability ``cond_drop_prob`` so that sampling
  without a histogram works too;
* **lesion-focused loss**: ``sum_c |eps_c - eps_hat_c| M_c / sum_c M_c`` (L1 on the masked
  noise, normalised by the lesion's size, so a 3 mm and a 30 mm nodule weigh alike); the
  network spends nothing on the background;
* **inference** (:meth:`LesionDiffusion.inpaint`): RePaint. At every reverse step the
  background is the forward-diffused original ``sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``,
  the lesion the model's, then one DDPM step; resampling jumps (``jump_length``,
  ``jump_n_sample``; RePaint's ``get_schedule_jump``) go back with
  ``x_t = sqrt(abar_t / abar_s) x_s + sqrt(1 - abar_t / abar_s) eps``. ``steps < T`` respaces
  the schedule (every step's ``beta = 1 - abar_t / abar_s``).

:class:`MaskDiffusion` generates a lesion mask (``+-1``) inside a control sphere (``+-1``,
the second input channel); plain L1 on the noise over the whole crop, as LeFusion's DiffMask.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ...training.ema import ema_step
from ...training.loader import ConfigCheckpoint
from .nets import build_net

__all__ = ["LesionDiffusion", "MaskDiffusion", "lesion_histogram", "repaint_schedule"]

BINS = 16


def repaint_schedule(n: int, jump_length: int = 5, jump_n_sample: int = 5) -> list[int]:
    """RePaint's ``get_schedule_jump`` (one sample): step indices from ``n - 1`` down to -1,
    going back ``jump_length`` steps ``jump_n_sample - 1`` times every ``jump_length`` steps."""
    if n < 1 or jump_length < 1 or jump_n_sample < 1:
        raise ValueError("steps, jump_length and jump_n_sample must be >= 1")
    jumps = {j: jump_n_sample - 1 for j in range(0, n - jump_length, jump_length)}
    t, ts = n, []
    while t >= 1:
        t -= 1
        ts.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            for _ in range(jump_length):
                t += 1
                ts.append(t)
    ts.append(-1)
    return ts


def lesion_histogram(image: torch.Tensor, masks: torch.Tensor, bins: int = BINS) -> torch.Tensor:
    """LeFusion's texture condition: per class the ``bins``-bin histogram of the image (in
    [-1, 1]) inside the class mask, divided by the mask's size. ``image`` (B, 1, ...) or
    (B, ...), ``masks`` (B, C, ...) -> (B, C * bins); an empty class gives zeros."""
    b, c = masks.shape[:2]
    img = image.reshape(b, -1).float()
    m = masks.reshape(b, c, -1) > 0.5
    out = torch.zeros(b, c, bins)
    for i in range(b):
        for k in range(c):
            n = int(m[i, k].sum())
            if n:
                out[i, k] = torch.histc(img[i][m[i, k]].cpu(), bins=bins, min=-1, max=1) / n
    return out.reshape(b, c * bins)


def _generator(seed, generator=None) -> torch.Generator:
    if generator is not None:
        return generator
    g = torch.Generator()
    g.manual_seed(int(seed)) if seed is not None else g.seed()
    return g


class _LesionDDPM(ConfigCheckpoint, nn.Module):
    """Schedule, EMA, checkpoints and the DDPM steps shared by the two models."""

    returns_loss = True

    def _setup(self, dims, image_size, in_ch, out_ch, channels, cond_dim, groups,
               num_train_timesteps, ema_decay):  # fmt: skip
        from diffusers import DDPMScheduler

        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims}")
        size = [int(image_size)] * dims if np.isscalar(image_size) else [int(s) for s in image_size]
        if len(size) != dims:
            raise ValueError(f"image_size {image_size} does not have {dims} entries")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        self.dims, self.image_size = dims, tuple(size)
        self.net = build_net(dims, in_ch, out_ch, channels, cond_dim, groups, size[-1])
        self.ema_decay = float(ema_decay)
        self.ema = copy.deepcopy(self.net).requires_grad_(False) if ema_decay > 0 else None
        self.register_buffer("ema_steps", torch.zeros((), dtype=torch.int64))
        sched = DDPMScheduler(num_train_timesteps=int(num_train_timesteps),
                              beta_schedule="squaredcos_cap_v2", clip_sample=False)  # fmt: skip
        ab = sched.alphas_cumprod.clone().double()
        self.register_buffer("abar", ab, persistent=False)
        self.T = int(num_train_timesteps)
        return size

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def on_optimizer_step(self) -> None:
        """EMA update (the mrct trainer calls this after every optimizer step)."""
        ema_step(self, self.net)

    def _eval_net(self, use_ema: bool) -> nn.Module:
        return self.ema if (use_ema and self.ema is not None) else self.net

    def _a(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.abar[t].to(x.dtype).view(-1, *([1] * (x.ndim - 1)))

    def _draw(self, x0: torch.Tensor, generator):
        b = x0.shape[0]
        if generator is None and not self.training:
            generator = torch.Generator().manual_seed(0)  # deterministic validation loss
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        t = torch.randint(0, self.T, (b,), generator=generator).to(x0.device)
        drop = torch.rand(b, generator=generator).to(x0.device)
        a = self._a(t, x0)
        return noise, t, drop, a.sqrt() * x0 + (1 - a).sqrt() * noise

    def timesteps(self, steps: int | None) -> list[int]:
        """The training timesteps visited by ``steps`` inference steps (all T by default)."""
        steps = self.T if steps is None else int(steps)
        if not 1 <= steps <= self.T:
            raise ValueError(f"steps must be in 1 .. {self.T}, got {steps}")
        return [int(v) for v in np.unique(np.round(np.linspace(0, self.T - 1, steps)))]

    def _p_step(self, x, eps, t: int, s: int | None, g):
        """DDPM step from timestep ``t`` to ``s < t`` (``None``: to the clean image)."""
        at = self.abar[t].to(x.dtype)
        x0 = ((x - (1 - at).sqrt() * eps) / at.sqrt()).clamp(-1, 1)
        if s is None:
            return x0
        as_ = self.abar[s].to(x.dtype)
        beta = 1 - at / as_
        mean = (as_.sqrt() * beta / (1 - at)) * x0 + ((1 - beta).sqrt() * (1 - as_) / (1 - at)) * x
        var = beta * (1 - as_) / (1 - at)
        return mean + var.sqrt() * torch.randn(x.shape, generator=g).to(x.device)

    def _undo(self, x, s: int, t: int, g):
        """Forward from timestep ``s`` to ``t > s`` (RePaint's resampling jump)."""
        r = (self.abar[t] / self.abar[s]).to(x.dtype)
        return r.sqrt() * x + (1 - r).sqrt() * torch.randn(x.shape, generator=g).to(x.device)


class LesionDiffusion(_LesionDDPM):
    """Lesion-focused inpainting diffusion (see the module docstring).

    Parameters
    ----------
    dims : {2, 3}
        2D (diffusers ``UNet2DModel``) or 3D (:class:`~mrct.synth.lesion.nets.TimeUNet3D`).
    image_size : int or tuple
        Training crop, ``(32, 64, 64)`` in 3D and ``(64, 64)`` in 2D by default; any size
        divisible by ``2 ** (len(channels) - 1)`` works at inference.
    classes : int
        Lesion classes, one image channel each (2: solid core, ground-glass halo).
    channels : tuple
        Network widths per level.
    cond_drop_prob : float
        Probability of training without the histogram (zeros).
    info : dict
        JSON-able notes saved with the checkpoint (``presets``: histogram k-means centres...).
    """

    def __init__(self, dims: int = 3, image_size=None, classes: int = 2, channels=(16, 32, 64),
                 bins: int = BINS, num_train_timesteps: int = 300, cond_drop_prob: float = 0.1,
                 ema_decay: float = 0.995, groups: int = 8, info: dict | None = None):  # fmt: skip
        super().__init__()
        if image_size is None:
            image_size = (32, 64, 64) if dims == 3 else (64, 64)
        if classes < 1 or bins < 2:
            raise ValueError("classes must be >= 1 and bins >= 2")
        if not 0.0 <= cond_drop_prob < 1.0:
            raise ValueError(f"cond_drop_prob must be in [0, 1), got {cond_drop_prob}")
        size = self._setup(dims, image_size, 2 * classes, classes, channels, classes * bins,
                           groups, num_train_timesteps, ema_decay)  # fmt: skip
        self.classes, self.bins, self.cond_drop_prob = int(classes), int(bins), cond_drop_prob
        self.config = dict(dims=int(dims), image_size=size, classes=int(classes),
                           channels=[int(c) for c in channels], bins=int(bins),
                           num_train_timesteps=int(num_train_timesteps),
                           cond_drop_prob=float(cond_drop_prob), ema_decay=float(ema_decay),
                           groups=int(groups), info=dict(info or {}))  # fmt: skip
        self.info = self.config["info"]

    def _unpack(self, inputs):
        if isinstance(inputs, dict):
            return inputs["masks"], inputs.get("hist")
        masks, hist = inputs
        return masks, hist

    def forward(self, inputs, target, generator: torch.Generator | None = None):
        """Training loss: ``inputs = (masks (B, C, ...), hist (B, C * bins))``, ``target`` the
        image (B, 1, ...) in [-1, 1]."""
        masks, hist = self._unpack(inputs)
        masks = masks.float()
        if masks.shape[1] != self.classes or target.shape[1] != 1:
            raise ValueError(f"expected masks (B, {self.classes}, ...) and target (B, 1, ...), "
                             f"got {tuple(masks.shape)} and {tuple(target.shape)}")  # fmt: skip
        x0 = target.float().expand_as(masks)
        noise, t, drop, x_t = self._draw(x0, generator)
        if hist is not None and self.training and self.cond_drop_prob > 0:
            hist = hist * (drop >= self.cond_drop_prob).to(hist.dtype)[:, None]
        eps = self.net(torch.cat([x_t, masks], 1), t, hist)
        err = (eps.float() - noise).abs() * masks
        return err.sum() / masks.sum().clamp_min(1.0)

    @torch.no_grad()
    def inpaint(self, image: torch.Tensor, masks: torch.Tensor, hist: torch.Tensor | None = None,
                *, jump_length: int = 5, jump_n_sample: int = 5, steps: int | None = None,
                seed: int | None = None, generator: torch.Generator | None = None,
                use_ema: bool = True, progress: bool = False) -> torch.Tensor:  # fmt: skip
        """RePaint inpainting of the union of ``masks`` (B, C, ...) in ``image`` (B, 1, ...),
        [-1, 1]; returns (B, 1, ...): each class's channel on its mask, the input elsewhere
        (exactly: the last step writes the original back)."""
        from tqdm.auto import tqdm

        masks = masks.float().to(self.device)
        x0 = image.float().to(self.device)
        if masks.shape[0] != x0.shape[0] or masks.shape[2:] != x0.shape[2:]:
            raise ValueError(f"masks {tuple(masks.shape)} do not match image {tuple(x0.shape)}")
        lesion = (masks.sum(1, keepdim=True) > 0).to(x0.dtype)
        known = x0.expand_as(masks)
        if hist is not None:
            hist = hist.float().to(self.device).reshape(x0.shape[0], -1)
        g = _generator(seed, generator)
        net = self._eval_net(use_ema)
        ts = self.timesteps(steps)
        sched = repaint_schedule(len(ts), jump_length, jump_n_sample)
        x = torch.randn(masks.shape, generator=g).to(self.device)
        bar = tqdm(total=len(sched) - 1, desc="RePaint", disable=not progress, leave=False)
        for cur, nxt in zip(sched[:-1], sched[1:], strict=True):
            t = ts[cur]
            if nxt < cur:  # denoise t -> s, background diffused from the original
                a = self.abar[t].to(x.dtype)
                bg = a.sqrt() * known + (1 - a).sqrt() * torch.randn(x.shape, generator=g).to(
                    x.device)  # fmt: skip
                x = lesion * x + (1 - lesion) * bg
                eps = net(torch.cat([x, masks], 1), torch.tensor([t], device=x.device), hist)
                x = self._p_step(x, eps, t, ts[nxt] if nxt >= 0 else None, g)
            else:
                x = self._undo(x, t, ts[nxt], g)
            bar.update()
        bar.close()
        cls = masks.argmax(1, keepdim=True)
        out = torch.gather(x, 1, cls)
        return torch.where(lesion > 0, out, x0)


class MaskDiffusion(_LesionDDPM):
    """Lesion-mask diffusion inside a control sphere (LeFusion's DiffMask), 2D or 3D.

    ``model(sphere, mask)`` -> L1 noise loss (both (B, 1, ...) in {-1, +1});
    :meth:`sample` -> a mask in ``{-1, +1}`` (B, 1, ...).
    """

    def __init__(self, dims: int = 3, image_size=None, channels=(16, 32, 64),
                 num_train_timesteps: int = 300, ema_decay: float = 0.995, groups: int = 8,
                 info: dict | None = None):  # fmt: skip
        super().__init__()
        if image_size is None:
            image_size = (32, 64, 64) if dims == 3 else (64, 64)
        size = self._setup(dims, image_size, 2, 1, channels, 0, groups, num_train_timesteps,
                           ema_decay)  # fmt: skip
        self.config = dict(dims=int(dims), image_size=size, channels=[int(c) for c in channels],
                           num_train_timesteps=int(num_train_timesteps),
                           ema_decay=float(ema_decay), groups=int(groups),
                           info=dict(info or {}))  # fmt: skip
        self.info = self.config["info"]

    def forward(self, sphere, target, generator: torch.Generator | None = None):
        x0 = target.float()
        noise, t, _, x_t = self._draw(x0, generator)
        eps = self.net(torch.cat([x_t, sphere.float()], 1), t)
        return (eps.float() - noise).abs().mean()

    @torch.no_grad()
    def sample(self, sphere: torch.Tensor, *, steps: int | None = None, seed: int | None = None,
               generator: torch.Generator | None = None, use_ema: bool = True,
               progress: bool = False) -> torch.Tensor:  # fmt: skip
        """Ancestral DDPM sampling conditioned on ``sphere`` (B, 1, ...) in {-1, +1}."""
        from tqdm.auto import tqdm

        sphere = sphere.float().to(self.device)
        g = _generator(seed, generator)
        net = self._eval_net(use_ema)
        ts = self.timesteps(steps)
        x = torch.randn(sphere.shape, generator=g).to(self.device)
        for i in tqdm(range(len(ts) - 1, -1, -1), desc="mask", disable=not progress,
                      leave=False):  # fmt: skip
            t = ts[i]
            eps = net(torch.cat([x, sphere], 1), torch.tensor([t], device=x.device))
            x = self._p_step(x, eps, t, ts[i - 1] if i > 0 else None, g)
        return x
