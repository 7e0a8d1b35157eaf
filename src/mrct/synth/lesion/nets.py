"""The denoising networks of the lesion diffusion models: ``net(x, t, cond) -> eps``.

* **2D** (64 x 64 crops): diffusers' ``UNet2DModel``; the condition vector (lesion-intensity
  histograms) goes through a two-layer MLP to the time-embedding width and enters as
  ``class_labels`` with ``class_embed_type="identity"``, i.e. it is *added to the timestep
  embedding* (LeFusion concatenates it to the time embedding; the effect is the same).
* **3D** (32 x 64 x 64 crops): :class:`TimeUNet3D`, a small residual 3D U-Net written here.
  diffusers has no plain 3D UNet: ``UNet3DConditionModel`` is a text-to-video model that
  conditions through cross-attention only, treats depth as frames (never downsampled,
  temporal attention and convolutions on top of 2D blocks) and has hundreds of millions of
  parameters by default; a 16-32-64-channel residual U-Net with the condition added to the
  time embedding (FiLM scale and shift per block) is what a CPU can run 1,500 times per
  lesion. It stays beside its only user (``docs/architecture.md``: blocks move to
  :mod:`mrct.nn` when a second layer needs them).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TimeUNet3D", "build_net", "timestep_embedding"]


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (B,) timesteps -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


def _groups(c: int, groups: int) -> int:
    g = min(groups, c)
    while c % g:
        g -= 1
    return g


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb: int, groups: int):
        super().__init__()
        self.n1 = nn.GroupNorm(_groups(c_in, groups), c_in)
        self.c1 = nn.Conv3d(c_in, c_out, 3, padding=1)
        self.film = nn.Linear(emb, 2 * c_out)
        self.n2 = nn.GroupNorm(_groups(c_out, groups), c_out)
        self.c2 = nn.Conv3d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv3d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.c2.weight)
        nn.init.zeros_(self.c2.bias)

    def forward(self, x, emb):
        h = self.c1(F.silu(self.n1(x)))
        scale, shift = self.film(F.silu(emb))[:, :, None, None, None].chunk(2, dim=1)
        h = self.n2(h) * (1 + scale) + shift
        return self.skip(x) + self.c2(F.silu(h))


class TimeUNet3D(nn.Module):
    """Residual 3D U-Net ``(B, in, D, H, W), t (B,), cond (B, cond_dim) -> (B, out, D, H, W)``.

    One residual block per level (``channels``), stride-2 convolutions down, nearest
    up-sampling + convolution up, skips by concatenation; the timestep (sinusoidal) and the
    condition (MLP) are summed into one embedding that scales and shifts every block. D, H, W
    must be divisible by ``2 ** (len(channels) - 1)``.
    """

    def __init__(self, in_channels: int, out_channels: int, channels=(16, 32, 64),
                 cond_dim: int = 0, groups: int = 8):  # fmt: skip
        super().__init__()
        ch = [int(c) for c in channels]
        emb = 4 * ch[0]
        self.ch0 = ch[0]
        self.time = nn.Sequential(nn.Linear(ch[0], emb), nn.SiLU(), nn.Linear(emb, emb))
        self.cond = None
        if cond_dim:
            self.cond = nn.Sequential(nn.Linear(cond_dim, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.inp = nn.Conv3d(in_channels, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        c = ch[0]
        for i, w in enumerate(ch):
            self.down.append(_ResBlock(c, w, emb, groups))
            c = w
            if i < len(ch) - 1:
                self.pool.append(nn.Conv3d(w, w, 3, stride=2, padding=1))
        self.mid = _ResBlock(c, c, emb, groups)
        self.up = nn.ModuleList()
        self.upconv = nn.ModuleList()
        for w in reversed(ch[:-1]):
            self.upconv.append(nn.Conv3d(c, w, 3, padding=1))
            self.up.append(_ResBlock(2 * w, w, emb, groups))
            c = w
        self.out = nn.Sequential(nn.GroupNorm(_groups(c, groups), c), nn.SiLU(),
                                 nn.Conv3d(c, out_channels, 3, padding=1))  # fmt: skip
        self.factor = 2 ** (len(ch) - 1)

    def forward(self, x, t, cond=None):
        if x.ndim != 5 or any(s % self.factor for s in x.shape[2:]):
            raise ValueError(f"TimeUNet3D expects (B, C, D, H, W) with D, H, W divisible by "
                             f"{self.factor}, got {tuple(x.shape)}")  # fmt: skip
        emb = self.time(timestep_embedding(t.reshape(-1).expand(x.shape[0]), self.ch0))
        if self.cond is not None and cond is not None:
            emb = emb + self.cond(cond.to(emb.dtype))
        h = self.inp(x)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            if i < len(self.pool):
                skips.append(h)
                h = self.pool[i](h)
        h = self.mid(h, emb)
        for conv, block in zip(self.upconv, self.up, strict=True):
            h = conv(F.interpolate(h, scale_factor=2, mode="nearest"))
            h = block(torch.cat([skips.pop(), h], dim=1), emb)
        return self.out(h)


class _UNet2D(nn.Module):
    """diffusers ``UNet2DModel`` with the condition vector added to its time embedding."""

    def __init__(self, in_channels: int, out_channels: int, channels=(32, 64, 64),
                 cond_dim: int = 0, groups: int = 8, image_size: int = 64):  # fmt: skip
        super().__init__()
        from diffusers import UNet2DModel

        ch = tuple(int(c) for c in channels)
        emb = 4 * ch[0]
        self.cond = None
        if cond_dim:
            self.cond = nn.Sequential(nn.Linear(cond_dim, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.unet = UNet2DModel(
            sample_size=int(image_size), in_channels=in_channels, out_channels=out_channels,
            layers_per_block=1, block_out_channels=ch, down_block_types=("DownBlock2D",) * len(ch),
            up_block_types=("UpBlock2D",) * len(ch), norm_num_groups=int(groups),
            class_embed_type="identity" if cond_dim else None,
        )  # fmt: skip
        self.factor = 2 ** (len(ch) - 1)

    def forward(self, x, t, cond=None):
        if x.ndim != 4 or any(s % self.factor for s in x.shape[2:]):
            raise ValueError(f"the 2D lesion UNet expects (B, C, H, W) with H, W divisible by "
                             f"{self.factor}, got {tuple(x.shape)}")  # fmt: skip
        labels = None
        if self.cond is not None:
            if cond is None:
                cond = torch.zeros(x.shape[0], self.cond[0].in_features, device=x.device)
            labels = self.cond(cond.to(x.dtype))
        return self.unet(x, t.reshape(-1).expand(x.shape[0]), class_labels=labels).sample


def build_net(dims: int, in_channels: int, out_channels: int, channels, cond_dim: int,
              groups: int = 8, image_size: int = 64) -> nn.Module:  # fmt: skip
    """The 2D (diffusers) or 3D (:class:`TimeUNet3D`) denoiser."""
    if dims == 2:
        return _UNet2D(in_channels, out_channels, channels, cond_dim, groups, image_size)
    if dims == 3:
        return TimeUNet3D(in_channels, out_channels, channels, cond_dim, groups)
    raise ValueError(f"dims must be 2 or 3, got {dims}")
