"""Unrolled primal-dual networks on mrct's Radon operators: Learned Primal-Dual and the
Primal-Dual UNet.

Both map a sinogram ``g`` (B, n_views, n_det) to an image (B, H, W) by alternating learned
updates in the projection ("dual") and image ("primal") domains, calling the operator and its
(pseudo-)inverse in between; gradients flow through mrct's autograd projectors.

* Learned Primal-Dual (Adler & Oktem, IEEE TMI 37(6), 2018, Alg. 3): 10 iterations, 5 primal
  and 5 dual channels, zero initialisation, blocks of three 3x3 convolutions (32 channels,
  PReLU), the operator normalised by its norm and the **true adjoint**; the dual step sees
  ``A f[1]``, the primal step ``A^T h[0]``; output ``f[0]``.
* Primal-Dual UNet (Ernst et al., arXiv 2112.13443): 2 iterations, 4 primal and 5 dual
  channels, FBP (Hann) initialisation, a UNet primal block (depth 4, 32-64-128-256 filters),
  the Hann-filtered backprojection in place of the adjoint, channel means in place of single
  channels, z-normalised sinograms, dual convolutions padded circularly along the angles and
  by replication along the detector, and learnable residual weights initialised to 1 (dual)
  and 0 (primal) so that the untrained network returns the FBP.

Images are handled in units of ``img_scale`` (the training set's 99th percentile in the
paper) so that the networks see values of order one; the output is in the input's units.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.unet import UNet
from ..physics import Radon

__all__ = ["LearnedPrimalDual", "PrimalDualUNet", "check_sinogram"]


def check_sinogram(radon: Radon, g: torch.Tensor) -> torch.Tensor:
    """Validate a (B, n_views, n_det) sinogram for ``radon``; returns it as float32/64."""
    if not isinstance(g, torch.Tensor):
        raise TypeError(f"sinogram must be a torch.Tensor, got {type(g).__name__}")
    want = tuple(radon.geometry.proj_shape)
    if g.ndim != 3 or tuple(g.shape[1:]) != want:
        raise ValueError(
            f"sinogram must have shape (B, {want[0]}, {want[1]}) (batch, views, detector bins) "
            f"for this model's geometry, got {tuple(g.shape)}"
        )
    if g.is_complex() or not g.is_floating_point():
        raise TypeError(f"sinogram must be a real floating tensor, got {g.dtype}")
    if g.dtype not in (torch.float32, torch.float64):
        g = g.float()
    return g


def _prelu_block(c_in: int, c_out: int, width: int, pad_mode: str = "zeros") -> nn.Sequential:
    layers = []
    for i, (a, b) in enumerate([(c_in, width), (width, width), (width, c_out)]):
        conv = nn.Conv2d(a, b, 3, padding=0 if pad_mode == "sino" else 1)
        nn.init.xavier_uniform_(conv.weight)
        nn.init.zeros_(conv.bias)
        if pad_mode == "sino":
            layers.append(_SinoPad())
        layers.append(conv)
        if i < 2:
            layers.append(nn.PReLU(b))
    return nn.Sequential(*layers)


class _SinoPad(nn.Module):
    """One-pixel padding of a sinogram map (..., views, det): circular in the views (the
    scan wraps around), replicated at the detector edges."""

    def forward(self, x):
        x = F.pad(x, (1, 1, 0, 0), mode="replicate")
        return torch.cat([x[..., -1:, :], x, x[..., :1, :]], dim=-2)


def _as_op_dtype(t: torch.Tensor) -> torch.Tensor:
    # the projector kernels take float32/float64; under autocast the convs may give float16
    return t.float() if t.dtype not in (torch.float32, torch.float64) else t


class LearnedPrimalDual(nn.Module):
    """Learned Primal-Dual reconstruction (Adler & Oktem 2018).

    Parameters
    ----------
    radon : mrct.physics.Radon
        The (sparse-view) operator; kept as ``self.radon``.
    n_iter, n_primal, n_dual, width : int
        Unrolled iterations (10), primal and dual channels (5, 5), block width (32).
    img_scale : float
        Typical image value (e.g. the training images' 99th percentile).

    ``forward(g)``: (B, n_views, n_det) -> (B, H, W).
    """

    def __init__(self, radon: Radon, n_iter: int = 10, n_primal: int = 5, n_dual: int = 5,
                 width: int = 32, img_scale: float = 1.0, opnorm: float | None = None):  # fmt: skip
        super().__init__()
        if len(radon.image_shape) != 2:
            raise ValueError("LearnedPrimalDual needs a 2D (parallel or fan-beam) Radon operator")
        self.radon = radon
        self.n_iter, self.n_primal, self.n_dual = n_iter, n_primal, n_dual
        norm = float(opnorm) if opnorm is not None else float(radon.opnorm())
        self.register_buffer("opnorm", torch.tensor(norm, dtype=torch.float64))
        self.register_buffer("img_scale", torch.tensor(float(img_scale), dtype=torch.float64))
        self.dual = nn.ModuleList(_prelu_block(n_dual + 2, n_dual, width) for _ in range(n_iter))
        self.primal = nn.ModuleList(
            _prelu_block(n_primal + 1, n_primal, width) for _ in range(n_iter)
        )

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        g = check_sinogram(self.radon, g)
        B = g.shape[0]
        H, W = self.radon.image_shape
        V, N = self.radon.geometry.proj_shape
        norm, scale = float(self.opnorm), float(self.img_scale)
        gn = (g / (norm * scale)).unsqueeze(1)  # data of the normalised operator A / ||A||
        f = g.new_zeros((B, self.n_primal, H, W))
        h = g.new_zeros((B, self.n_dual, V, N))
        for k in range(self.n_iter):
            Af = self.radon(_as_op_dtype(f[:, 1:2])) / norm
            h = h + self.dual[k](torch.cat([h, Af.to(h.dtype), gn.to(h.dtype)], dim=1))
            ATh = self.radon.adjoint(_as_op_dtype(h[:, :1])) / norm
            f = f + self.primal[k](torch.cat([f, ATh.to(f.dtype)], dim=1))
        return f[:, 0] * scale


class PrimalDualUNet(nn.Module):
    """Primal-Dual UNet (Ernst et al., arXiv 2112.13443).

    Parameters
    ----------
    radon : mrct.physics.Radon
        The (sparse-view) operator; kept as ``self.radon``.
    n_iter, n_primal, n_dual : int
        Iterations (2), primal (4) and dual (5) channels.
    depth, wf : int
        UNet depth (4) and log2 of its first width (5: 32-64-128-256 filters).
    img_scale : float
        Image normalisation (the paper: the training images' 99th percentile).
    filter : str
        Filter of the backprojections (``"hann"`` as in the paper).

    ``forward(g)``: (B, n_views, n_det) -> (B, H, W). Untrained (primal weights 0), it
    returns the FBP of ``g``.
    """

    def __init__(self, radon: Radon, n_iter: int = 2, n_primal: int = 4, n_dual: int = 5,
                 depth: int = 4, wf: int = 5, width: int = 32, img_scale: float = 1.0,
                 filter: str = "hann"):  # fmt: skip
        super().__init__()
        if len(radon.image_shape) != 2:
            raise ValueError("PrimalDualUNet needs a 2D (parallel or fan-beam) Radon operator")
        self.radon = radon
        self.n_iter, self.n_primal, self.n_dual, self.filter = n_iter, n_primal, n_dual, filter
        self.register_buffer("img_scale", torch.tensor(float(img_scale), dtype=torch.float64))
        self.dual = nn.ModuleList(
            _prelu_block(n_dual + 2, n_dual, width, pad_mode="sino") for _ in range(n_iter)
        )
        self.primal = nn.ModuleList(
            UNet(n_primal + 1, n_primal, depth=depth, wf=wf) for _ in range(n_iter)
        )
        self.dual_weight = nn.Parameter(torch.ones(n_iter, n_dual))
        self.primal_weight = nn.Parameter(torch.zeros(n_iter, n_primal))

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        g = check_sinogram(self.radon, g)
        B = g.shape[0]
        V, N = self.radon.geometry.proj_shape
        scale = float(self.img_scale)
        mu = g.mean(dim=(-2, -1), keepdim=True)
        sd = g.std(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
        gn = ((g - mu) / sd).unsqueeze(1)
        fbp = self.radon.fbp(g, filter=self.filter) / scale
        f = fbp.unsqueeze(1).expand(-1, self.n_primal, -1, -1)
        h = g.new_zeros((B, self.n_dual, V, N))
        for k in range(self.n_iter):
            Af = (self.radon(_as_op_dtype(f.mean(1)) * scale) - mu) / sd
            dh = self.dual[k](torch.cat([h, Af.unsqueeze(1).to(h.dtype), gn.to(h.dtype)], 1))
            h = h + self.dual_weight[k].view(1, -1, 1, 1) * dh
            hs = _as_op_dtype(h.mean(1)) * sd + mu  # back to sinogram units
            bp = self.radon.fbp(hs, filter=self.filter) / scale
            df = self.primal[k](torch.cat([f, bp.unsqueeze(1).to(f.dtype)], 1))
            f = f + self.primal_weight[k].view(1, -1, 1, 1) * df
        return f.mean(1) * scale
