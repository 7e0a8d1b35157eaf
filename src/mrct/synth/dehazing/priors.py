"""Score priors for the joint sampler: closed-form Gaussian priors and diffusers UNets.

A prior is any object with ``score(z, t)`` (``z`` of shape (B, ...), ``t`` a (B,) tensor in
``(0, 1]``) returning ``grad log p_t(z)`` under the sampler's SDE, and optionally a
``variance`` (scalar or tensor broadcastable to ``z``: the data variance used by the
``"pigdm"`` guidance).
"""

from __future__ import annotations

import torch

from ...training.loader import ConfigCheckpoint
from .sampler import VESDE

__all__ = ["GaussianPrior", "UNetScorePrior"]


def _bt(t, z):
    return torch.as_tensor(t, dtype=z.dtype, device=z.device).reshape(-1, *([1] * (z.ndim - 1)))


class GaussianPrior:
    """``N(mean, diag(variance))``: ``grad log p_t(z) = -(z - mean) / (variance + s_t^2)``.

    ``mean`` and ``variance`` are scalars or tensors broadcastable to a sample (without the
    batch axis).
    """

    def __init__(self, mean, variance, sde: VESDE | None = None):
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.variance = torch.as_tensor(variance, dtype=torch.float64)
        if (self.variance <= 0).any():
            raise ValueError("variance must be positive")
        self.sde = sde or VESDE()

    def score(self, z: torch.Tensor, t) -> torch.Tensor:
        s2 = self.sde.std(torch.as_tensor(t, dtype=torch.float64)).to(z.dtype) ** 2
        m = self.mean.to(z.dtype).to(z.device)
        v = self.variance.to(z.dtype).to(z.device)
        return -(z - m) / (v + _bt(s2, z).to(z.device))


class UNetScorePrior(ConfigCheckpoint, torch.nn.Module):
    """A diffusers ``UNet2DModel`` trained by denoising score matching on the VE SDE.

    The network predicts the unit noise ``e`` of ``z_t = z_0 + s_t e`` from ``z_t`` and the
    time ``1000 t``; the score is ``-e_hat / s_t``. :meth:`loss` is the training objective
    (``t ~ U(eps, 1)``), which :func:`mrct.training.fit` minimises through ``forward``.

    Parameters
    ----------
    image_size : (H, W) of the patches (128 x 64 in the paper).
    channels, block_out_channels, layers_per_block : the UNet's size.
    sigma : the SDE's sigma; ``variance`` the data variance (for ``"pigdm"``).
    """

    returns_loss = True

    def __init__(self, image_size=(128, 64), channels: int = 1,
                 block_out_channels=(16, 32, 64, 64), layers_per_block: int = 1,
                 sigma: float = 25.0, variance: float = 0.1, eps: float = 1e-3):  # fmt: skip
        super().__init__()
        from diffusers import UNet2DModel

        n = len(block_out_channels)
        self.config = dict(image_size=tuple(image_size), channels=channels,
                           block_out_channels=tuple(block_out_channels),
                           layers_per_block=layers_per_block, sigma=sigma, variance=variance,
                           eps=eps)  # fmt: skip
        self.unet = UNet2DModel(
            sample_size=tuple(image_size),
            in_channels=channels,
            out_channels=channels,
            block_out_channels=tuple(block_out_channels),
            layers_per_block=layers_per_block,
            down_block_types=("DownBlock2D",) * n,
            up_block_types=("UpBlock2D",) * n,
            norm_num_groups=min(8, block_out_channels[0]),
        )
        self.sde = VESDE(sigma)
        self.variance = float(variance)
        self.eps = float(eps)

    def _eps_hat(self, z, t):
        tt = torch.as_tensor(t, dtype=z.dtype, device=z.device).reshape(-1).expand(z.shape[0])
        return self.unet(z, tt * 1000).sample

    def score(self, z: torch.Tensor, t) -> torch.Tensor:
        s = self.sde.std(torch.as_tensor(t, dtype=torch.float64).cpu()).to(z.dtype).to(z.device)
        return -self._eps_hat(z, t) / _bt(s, z)

    def loss(self, z0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Denoising score matching: ``E || e_hat(z0 + s_t e, t) - e ||^2``."""
        B = z0.shape[0]
        t = torch.rand(B, generator=generator) * (1 - self.eps) + self.eps
        e = torch.randn(z0.shape, generator=generator)
        t, e = t.to(z0.device, z0.dtype), e.to(z0.device, z0.dtype)
        s = self.sde.std(t.double().cpu()).to(z0.device, z0.dtype)
        zt = z0 + _bt(s, z0) * e
        return torch.mean((self._eps_hat(zt, t) - e) ** 2)

    def forward(self, z0: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """The training loss of a batch of clean patches (``target`` if given: the mrct
        trainer calls ``model(input, target)`` on models with ``returns_loss``)."""
        return self.loss(z0 if target is None else target)
