"""The 2D UNet used by FBPConvNet and by the Primal-Dual UNet's primal block.

Layout as in the Primal-Dual UNet code (Ernst et al., arXiv 2112.13443; see
``docs/recon.md``): ``depth`` levels with ``2**(wf + level)`` filters (32-64-128-256 for
depth 4, wf 5); each level is two (3x3 conv -> ReLU -> BatchNorm); average pooling down;
bilinear upsampling x2 followed by a 1x1 conv up; skip connections by concatenation; a final
1x1 conv. Written out here rather than taken from diffusers because diffusers' UNets carry
timestep embeddings and group norms that these published architectures do not have.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNet"]


class _ConvBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(c_out),
            nn.Conv2d(c_out, c_out, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(c_out),
        )


class _Up(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.reduce = nn.Conv2d(c_in, c_out, 1)
        self.block = _ConvBlock(2 * c_out, c_out)

    def forward(self, x, skip):
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.reduce(x)
        dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        if dh or dw:  # odd sizes: pad the upsampled map to the skip's size
            x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        return self.block(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """UNet ``(B, in_channels, H, W) -> (B, out_channels, H, W)`` for any H, W >= 1.

    Parameters
    ----------
    in_channels, out_channels : int
    depth : int
        Number of resolution levels (4 in the Primal-Dual UNet).
    wf : int
        Level ``l`` has ``2 ** (wf + l)`` filters (wf = 5: 32, 64, 128, 256).
    """

    def __init__(self, in_channels: int, out_channels: int, depth: int = 4, wf: int = 5):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        widths = [2 ** (wf + i) for i in range(depth)]
        self.down = nn.ModuleList()
        c = in_channels
        for w in widths:
            self.down.append(_ConvBlock(c, w))
            c = w
        self.up = nn.ModuleList(_Up(widths[i + 1], widths[i]) for i in reversed(range(depth - 1)))
        self.last = nn.Conv2d(widths[0], out_channels, 1)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"UNet expects (B, C, H, W), got shape {tuple(x.shape)}")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < self.depth - 1:
                skips.append(x)
                # ceil mode keeps odd sizes; the up path pads back to the skip's size
                x = F.avg_pool2d(x, 2, ceil_mode=True)
        for up in self.up:
            x = up(x, skips.pop())
        return self.last(x)
