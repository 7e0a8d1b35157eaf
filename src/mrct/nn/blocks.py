"""Convolution blocks in 2D or 3D (the super-resolution U-Nets of :mod:`mrct.recon.sr`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["conv_nd", "ConvBlock", "UpBlock"]


def conv_nd(dims: int):
    """``nn.Conv3d`` for ``dims == 3``, else ``nn.Conv2d``."""
    return nn.Conv3d if dims == 3 else nn.Conv2d


class ConvBlock(nn.Sequential):
    """Two (3^dims conv -> ReLU), padding 1: the size is kept."""

    def __init__(self, c_in: int, c_out: int, dims: int):
        conv = conv_nd(dims)
        super().__init__(
            conv(c_in, c_out, 3, padding=1),
            nn.ReLU(inplace=True),
            conv(c_out, c_out, 3, padding=1),
            nn.ReLU(inplace=True),
        )


class UpBlock(nn.Module):
    """Up-sample x2 ((tri/bi)linear), a 1x1 conv to ``c_out``, pad or crop to the skip's size,
    concatenate the skip and a :class:`ConvBlock`."""

    def __init__(self, c_in: int, c_out: int, dims: int):
        super().__init__()
        self.dims = dims
        self.reduce = conv_nd(dims)(c_in, c_out, 1)
        self.block = ConvBlock(2 * c_out, c_out, dims)

    def forward(self, x, skip):
        mode = "trilinear" if self.dims == 3 else "bilinear"
        x = self.reduce(F.interpolate(x, scale_factor=2, mode=mode, align_corners=False))
        pad = []
        for k in range(1, self.dims + 1):  # F.pad order: last axis first
            d = skip.shape[-k] - x.shape[-k]
            pad += [d // 2, d - d // 2]  # negative values crop
        if any(pad):
            x = F.pad(x, pad)
        return self.block(torch.cat([x, skip], dim=1))
