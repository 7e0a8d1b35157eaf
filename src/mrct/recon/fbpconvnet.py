"""FBPConvNet (Jin, McCann, Froustey & Unser, IEEE TIP 26(9), 2017): a residual UNet that
removes the streaks of a sparse-view FBP. The usual learned baseline for sparse-view CT.

mrct uses the same UNet as the Primal-Dual UNet's primal block (depth 4, 32-64-128-256
filters) so that the two are compared at equal capacity per block; Jin et al. used a deeper,
wider UNet (depth 5, 64-1024 filters).
"""

from __future__ import annotations

import torch
from torch import nn

from ..nn.unet import UNet
from ..physics import Radon
from .primal_dual import check_sinogram

__all__ = ["FBPConvNet"]


class FBPConvNet(nn.Module):
    """``model(g) = FBP(g) + UNet(FBP(g))``: (B, n_views, n_det) -> (B, H, W).

    Parameters
    ----------
    radon : mrct.physics.Radon
        The (sparse-view) operator whose FBP is corrected; kept as ``self.radon``.
    depth, wf : int
        UNet depth and log2 of its first width.
    img_scale : float
        Image normalisation (typical image value).
    filter : str
        FBP filter (``"hann"``).
    """

    def __init__(self, radon: Radon, depth: int = 4, wf: int = 5, img_scale: float = 1.0,
                 filter: str = "hann"):  # fmt: skip
        super().__init__()
        if len(radon.image_shape) != 2:
            raise ValueError("FBPConvNet needs a 2D (parallel or fan-beam) Radon operator")
        self.radon = radon
        self.filter = filter
        self.register_buffer("img_scale", torch.tensor(float(img_scale), dtype=torch.float64))
        self.unet = UNet(1, 1, depth=depth, wf=wf)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        g = check_sinogram(self.radon, g)
        scale = float(self.img_scale)
        with torch.no_grad():  # the FBP is fixed pre-processing here
            x = (self.radon.fbp(g, filter=self.filter) / scale).unsqueeze(1)
        return (x + self.unet(x.to(next(self.unet.parameters()).dtype)))[:, 0] * scale
