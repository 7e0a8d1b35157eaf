"""Super-resolution networks for dynamic MRI: :class:`SRUNet` and :class:`DDoSUNet`.

Both are the U-Net of DDoS-UNet (Chatterjee et al., "DDoS-UNet: Incorporating temporal
information using Dynamic Dual-channel UNet for enhancing super-resolution of dynamic MRI",
IEEE Access 2024, arXiv:2202.05355; model 0 of ``soumickmj/DDoS``, ``models/unet3D.py``):

* ``depth`` levels (3) with ``features * 2**level`` channels (64, 128, 256); each level is two
  3 x 3 (x 3) convolutions with padding 1, each followed by ReLU; **no batch norm**;
* average pooling (2 x 2 x 2) down;
* up: trilinear (bilinear in 2D) upsampling x 2 followed by a 1 x 1 convolution, concatenated
  with the skip connection, then the two-convolution block;
* a final 1 x 1 convolution to one output channel.

:class:`DDoSUNet` takes **two channels**, as in the paper's code: channel 0 the **prior**
(the static high-res planning scan for the first time point, the previous super-resolved time
point afterwards), channel 1 the **current** low-res time point already interpolated to the
high-res grid (trilinear in the paper). :class:`SRUNet` is the same network with one input
channel (the interpolated low-res image alone: the paper's "UNet" baseline).

Differences from the paper's code, on purpose:

* ``residual=True`` (default) adds the interpolated current input to the network output, so
  the network learns the missing detail; it trains much faster in short runs. The paper's
  network predicts the image directly (``residual=False`` does that).
* ``dims=2`` gives the same network with 2D convolutions, for quick runs on slices.
* Odd sizes work: pooling uses ``ceil_mode`` and the upsampled maps are padded or cropped to
  their skip connection's size.

Shapes: ``(B, C, D, H, W)`` for ``dims=3``, ``(B, C, H, W)`` for ``dims=2``; output
``(B, 1, ...)`` of the same spatial size. Intensities are expected scaled to about [0, 1] as in
the paper (the networks do no normalisation of their own).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...nn.blocks import ConvBlock, UpBlock, conv_nd

__all__ = ["SRUNet", "DDoSUNet", "SR_MODELS"]


class _SRNet(nn.Module):
    """The shared U-Net; subclasses fix the number of input channels."""

    in_channels = 1
    uses_prior = False
    #: the input channel that holds the current (interpolated low-res) image
    current_channel = 0

    def __init__(self, features: int = 64, depth: int = 3, dims: int = 3,
                 residual: bool = True):  # fmt: skip
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims!r}")
        if int(depth) != depth or depth < 1:
            raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
        if int(features) != features or features < 1:
            raise ValueError(f"features must be an integer >= 1, got {features!r}")
        self.features, self.depth, self.dims = int(features), int(depth), int(dims)
        self.residual = bool(residual)
        widths = [self.features * 2**i for i in range(self.depth)]
        self.down = nn.ModuleList()
        c = self.in_channels
        for w in widths:
            self.down.append(ConvBlock(c, w, self.dims))
            c = w
        self.up = nn.ModuleList(
            UpBlock(widths[i + 1], widths[i], self.dims) for i in reversed(range(self.depth - 1))
        )
        self.last = conv_nd(self.dims)(widths[0], 1, 1)
        if self.residual:  # start as the identity on the current input (the interpolation)
            nn.init.zeros_(self.last.weight)
            nn.init.zeros_(self.last.bias)

    @property
    def config(self) -> dict:
        """Keyword arguments that rebuild this model (stored in checkpoints)."""
        return {"features": self.features, "depth": self.depth, "dims": self.dims,
                "residual": self.residual}  # fmt: skip

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects a torch.Tensor, got {type(x).__name__}")
        spatial = "D, H, W" if self.dims == 3 else "H, W"
        if x.ndim != self.dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__}(dims={self.dims}) expects input of shape "
                f"(B, {self.in_channels}, {spatial}), got {tuple(x.shape)}"
                + (
                    " (channel 0: prior, channel 1: interpolated low-res current time point)"
                    if self.in_channels == 2
                    else ""
                )  # fmt: skip
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        pool = F.avg_pool3d if self.dims == 3 else F.avg_pool2d
        inp = x
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < self.depth - 1:
                skips.append(x)
                x = pool(x, 2, ceil_mode=True)
        for up in self.up:
            x = up(x, skips.pop())
        out = self.last(x)
        if self.residual:
            c = self.current_channel
            out = out + inp[:, c : c + 1]
        return out

    def extra_repr(self) -> str:
        return (f"dims={self.dims}, features={self.features}, depth={self.depth}, "
                f"residual={self.residual}")  # fmt: skip


class SRUNet(_SRNet):
    """U-Net super-resolution of one time point: ``(B, 1, [D,] H, W) -> (B, 1, [D,] H, W)``.

    Input: the low-res image interpolated to the high-res grid. No prior (the paper's "UNet"
    baseline); :func:`mrct.recon.super_resolve_series` ignores a prior for this model.

    Parameters
    ----------
    features : int
        Channels of the first level (64 in the paper; use 8-16 for quick CPU runs).
    depth : int
        Resolution levels (3 in the paper).
    dims : {3, 2}
        3D network on volumes ``(D, H, W)`` or 2D on slices ``(H, W)``.
    residual : bool
        Add the input to the output (see the module docstring).
    """

    in_channels = 1
    uses_prior = False
    current_channel = 0


class DDoSUNet(_SRNet):
    """Dynamic Dual-channel U-Net: ``(B, 2, [D,] H, W) -> (B, 1, [D,] H, W)``.

    Channel 0: the prior high-res image (planning scan, or the previous super-resolved time
    point); channel 1: the current low-res time point interpolated to the high-res grid.
    Parameters as for :class:`SRUNet`; the paper's network is ``DDoSUNet()`` (3D, depth 3,
    64 features) with ``residual=False``.
    """

    in_channels = 2
    uses_prior = True
    current_channel = 1


#: model names accepted by ``mrct train`` configs (``model.name``) and ``mrct sr``
SR_MODELS = {"ddos": DDoSUNet, "ddosunet": DDoSUNet, "srunet": SRUNet, "unet-sr": SRUNet}
