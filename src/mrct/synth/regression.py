"""Deterministic UNet regression baseline for synthetic CT (the SynthRAD2023 top entries were
regression networks: nnU-Net, Swin UNETR, hybrid CNN-transformer UNets).

:class:`SCTUNet` is :class:`mrct.nn.UNet` with a residual skip from the centre slice
of the condition (useful for CBCT -> CT, where the input is already in HU) and the same
checkpoint interface as :class:`mrct.synth.ConditionalDiffusion`. It trains with the mrct
trainer's L1 loss (``loss = "l1"``): ``model(condition) -> prediction``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..training.loader import ConfigCheckpoint
from .diffusion import stack_neighbours

__all__ = ["SCTUNet"]


class SCTUNet(ConfigCheckpoint, nn.Module):
    """UNet regressor ``condition (B, cond_channels, H, W) -> image (B, out_channels, H, W)``.

    Parameters
    ----------
    cond_channels, out_channels : int
        Input channels (after 2.5D stacking, ``base x (2 context + 1)``) and output channels.
    context : int
        2.5D neighbours on each side (for :meth:`sample_volume`).
    depth, wf : int
        UNet levels and width factor (level ``l`` has ``2 ** (wf + l)`` filters).
    residual : bool
        Add the centre condition slice to the output (the network learns a correction).
    image_size : int
        Informational (training image side).
    info : dict, optional
        JSON-able notes saved in checkpoints (task, units...).
    """

    def __init__(self, cond_channels: int = 1, out_channels: int = 1, context: int = 0,
                 depth: int = 3, wf: int = 4, residual: bool = False, image_size: int = 64,
                 info: dict | None = None):  # fmt: skip
        super().__init__()
        if cond_channels % (2 * context + 1):
            raise ValueError(f"cond_channels={cond_channels} must be divisible by 2*context+1")
        self.config = dict(cond_channels=int(cond_channels), out_channels=int(out_channels),
                           context=int(context), depth=int(depth), wf=int(wf),
                           residual=bool(residual), image_size=int(image_size),
                           info=dict(info or {}))  # fmt: skip
        self.cond_channels, self.out_channels = int(cond_channels), int(out_channels)
        self.context, self.residual = int(context), bool(residual)
        self.info = self.config["info"]  # one dict: edits are saved
        from ..nn.unet import UNet

        self.net = UNet(cond_channels, out_channels, depth=depth, wf=wf)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        """``(B, cond_channels, H, W)`` or ``(B, H, W)`` (one channel) -> ``(B, out, H, W)``."""
        if condition.ndim == 3 and self.cond_channels == 1:
            condition = condition[:, None]
        if condition.ndim != 4 or condition.shape[1] != self.cond_channels:
            raise ValueError(
                f"condition must be (B, {self.cond_channels}, H, W), got {tuple(condition.shape)}"
            )
        out = self.net(condition)
        if self.residual:
            per = self.cond_channels // (2 * self.context + 1)
            c0 = self.context * per
            out = out + condition[:, c0 : c0 + self.out_channels]
        return out

    @torch.no_grad()
    def sample(self, condition, **_ignored) -> torch.Tensor:
        """Same call as :meth:`ConditionalDiffusion.sample` (seeds and steps are ignored)."""
        return self(condition.to(self.device, torch.float32))

    @torch.no_grad()
    def sample_volume(self, condition: torch.Tensor, *, batch_size: int = 8, **_ignored):
        """``(D, C, H, W)`` or ``(D, H, W)`` condition volume -> ``(D, out, H, W)``, slice by
        slice with 2.5D neighbours."""
        stacked = stack_neighbours(condition, self.context)
        outs = [self.sample(stacked[s : s + batch_size]).cpu()
                for s in range(0, stacked.shape[0], batch_size)]  # fmt: skip
        return torch.cat(outs)
