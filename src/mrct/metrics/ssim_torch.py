"""Differentiable SSIM on torch tensors (CPU or CUDA) and the SSIM training loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import (
    _K1,
    _K2,
    _WIN,
    _check_data_range,
    _check_win_size,
)

# ---------------------------------------------------------------------------------------------


def _as_n1hw(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a real floating-point tensor, got {x.dtype}")
    if x.ndim == 3:
        return x.unsqueeze(1)
    if x.ndim == 4 and x.shape[1] == 1:
        return x
    raise ValueError(f"{name} must have shape (N, H, W) or (N, 1, H, W), got {tuple(x.shape)}")


def ssim_torch(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float | torch.Tensor,
    win_size: int = _WIN,
    k1: float = _K1,
    k2: float = _K2,
) -> torch.Tensor:
    """Differentiable 2D SSIM per batch item (same definition as :func:`ssim`).

    Box window of ``win_size x win_size`` applied with :func:`torch.nn.functional.conv2d`
    without padding, so the map covers exactly the pixels kept by skimage's border crop;
    sample covariance (``NP / (NP - 1)``), ``C1 = (k1 R)^2``, ``C2 = (k2 R)^2``.

    Parameters
    ----------
    pred, target : torch.Tensor, shape (N, H, W) or (N, 1, H, W)
        Real floating-point images on the same device; H, W >= ``win_size``.
    data_range : float or torch.Tensor of shape () or (N,)
        Dynamic range ``R`` (same unit as the images), global or per item; must be positive.
    win_size : int, optional
        Odd window side, default 7.
    k1, k2 : float, optional
        SSIM constants, defaults 0.01 and 0.03.

    Returns
    -------
    torch.Tensor, shape (N,)
        Mean SSIM of each item, in the promoted dtype of ``pred`` and ``target``.
    """
    x = _as_n1hw(pred, "pred")
    y = _as_n1hw(target, "target")
    if x.shape != y.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    if x.device != y.device:
        raise ValueError(f"pred and target must be on the same device, got {x.device}, {y.device}")
    w = _check_win_size(win_size)
    n, _, h, wd = x.shape
    if min(h, wd) < w:
        raise ValueError(f"H and W must be >= win_size={w}, got shape {tuple(pred.shape)}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    x = x.to(dtype)
    y = y.to(dtype)

    if isinstance(data_range, torch.Tensor):
        dr = data_range.to(device=x.device, dtype=dtype)
        if dr.ndim == 0:
            dr = dr.expand(n)
        elif dr.shape != (n,):
            raise ValueError(
                f"data_range tensor must have shape () or (N,) = ({n},), got {tuple(dr.shape)}"
            )
    else:
        dr = torch.full((n,), _check_data_range(data_range), dtype=dtype, device=x.device)

    # One host sync for all value checks.
    with torch.no_grad():
        ok_x, ok_y, ok_r = torch.stack(
            [
                torch.isfinite(x).all(),
                torch.isfinite(y).all(),
                (torch.isfinite(dr) & (dr > 0)).all(),
            ]
        ).tolist()
    if not ok_x:
        raise ValueError("pred contains NaN or Inf; expected finite values")
    if not ok_y:
        raise ValueError("target contains NaN or Inf; expected finite values")
    if not ok_r:
        raise ValueError("data_range must be positive and finite for every item")

    # Variances/covariance are shift invariant: centre on the (constant) target mean to limit
    # cancellation in E[x^2] - E[x]^2 (matters in float32 for HU-scaled images), then add the
    # shift back to the means. Mathematically identical to skimage.
    shift = y.detach().mean(dim=(1, 2, 3), keepdim=True)
    xc = x - shift
    yc = y - shift
    np_win = w * w
    cov_norm = np_win / (np_win - 1)
    kernel = torch.full((5, 1, w, w), 1.0 / np_win, dtype=dtype, device=x.device)
    stats = F.conv2d(torch.cat([xc, yc, xc * xc, yc * yc, xc * yc], dim=1), kernel, groups=5)
    ux, uy, uxx, uyy, uxy = stats.unbind(dim=1)  # each (N, H - w + 1, W - w + 1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    ux = ux + shift[:, 0]
    uy = uy + shift[:, 0]
    dr = dr.view(n, 1, 1)
    c1 = (k1 * dr) ** 2
    c2 = (k2 * dr) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(-2, -1))


class SSIMLoss(torch.nn.Module):
    """``1 - mean SSIM`` over a batch, for training (see :func:`ssim_torch`).

    Parameters
    ----------
    win_size : int, optional
        Odd window side, default 7.
    k1, k2 : float, optional
        SSIM constants, defaults 0.01 and 0.03.
    """

    def __init__(self, win_size: int = _WIN, k1: float = _K1, k2: float = _K2):
        super().__init__()
        self.win_size = _check_win_size(win_size)
        self.k1 = float(k1)
        self.k2 = float(k2)

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        data_range: float | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return the scalar loss ``1 - ssim_torch(pred, target, data_range).mean()``.

        Parameters
        ----------
        pred, target : torch.Tensor, shape (N, H, W) or (N, 1, H, W)
            Prediction and reference.
        data_range : float or torch.Tensor of shape () or (N,), optional
            Dynamic range; defaults to the per-item maximum of ``target`` (fastMRI
            convention), treated as a constant (no gradient).

        Returns
        -------
        torch.Tensor, shape ()
            Loss in [0, 2]; 0 for identical inputs.
        """
        if data_range is None:
            t = _as_n1hw(target, "target")
            data_range = t.detach().amax(dim=(1, 2, 3))
        s = ssim_torch(pred, target, data_range, self.win_size, self.k1, self.k2)
        return 1 - s.mean()


# ---------------------------------------------------------------------------------------------
# SynthRAD2023 names (the challenge's metric names; thin wrappers of the masked_* functions)
