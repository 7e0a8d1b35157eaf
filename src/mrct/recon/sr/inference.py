"""Stepwise super-resolution of a dynamic series, as in DDoS-UNet.

:func:`super_resolve_series` runs a model over the time points of a series one after the
other (Chatterjee et al., arXiv:2202.05355, ``apply_DDoS.py``): time point 0 gets the static
high-resolution planning scan as its prior, every later time point gets the **super-resolved
output of the previous time point** (never the ground truth). Models without a prior
(:class:`~mrct.recon.SRUNet`) see the current time point only.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch import nn

__all__ = ["super_resolve_series", "load_sr_model", "model_uses_prior"]


def model_uses_prior(model) -> bool:
    """Whether ``model`` takes a prior channel: its ``uses_prior`` attribute, else
    ``in_channels == 2``."""
    flag = getattr(model, "uses_prior", None)
    if flag is not None:
        return bool(flag)
    return int(getattr(model, "in_channels", 1)) == 2


def _as_tensor(a, name: str) -> torch.Tensor:
    if isinstance(a, np.ndarray):
        a = torch.from_numpy(np.ascontiguousarray(a))
    if not isinstance(a, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(a).__name__}")
    if not a.is_floating_point():
        raise TypeError(f"{name} must be real floating point (magnitude images), got {a.dtype}")
    if not bool(torch.isfinite(a).all()):
        raise ValueError(f"{name} contains NaN or Inf")
    return a


def _model_device_dtype(model, fallback: torch.Tensor):
    if isinstance(model, nn.Module):
        for p in model.parameters():
            return p.device, p.dtype
    return fallback.device, fallback.dtype


@torch.no_grad()
def super_resolve_series(model, lowres_series, prior=None, *, progress: bool = True,
                         desc: str = "super-resolving") -> torch.Tensor:  # fmt: skip
    """Super-resolve every time point of a dynamic series, stepwise.

    Parameters
    ----------
    model : callable
        ``(N, C, *S) -> (N, 1, *S)`` with ``C = 2`` (prior, current) for a model that uses a
        prior (:class:`~mrct.recon.DDoSUNet`, or any object with ``uses_prior = True`` or
        ``in_channels = 2``) and ``C = 1`` otherwise (:class:`~mrct.recon.SRUNet`). ``S`` has
        ``model.dims`` axes (2 or 3; without a ``dims`` attribute it is taken as
        ``lowres_series.ndim - 1``).
    lowres_series : Tensor or ndarray, real, shape (T, *B, *S)
        The low-resolution time points **already interpolated to the high-res grid** (the
        paper's network input, e.g. ``mrct.physics.upsample_lowres(lowres, S, "trilinear")``).
        Axes ``B`` between the time axis and the model's ``S`` are batch axes: e.g. a 2D model
        on a 3D series ``(T, D, H, W)`` super-resolves the ``D`` slices independently.
    prior : Tensor or ndarray, real, shape (*B, *S)
        The static high-res planning scan: the prior of time point 0 (required for a model
        that uses a prior; ignored otherwise, but its shape is still checked when given).
    progress : bool
        A tqdm bar over the time points.

    Returns
    -------
    Tensor, shape (T, *B, *S)
        The super-resolved series, on the input's device, in the input's floating dtype.

    The model runs in eval mode under ``torch.no_grad()`` on its own device and dtype (its
    training mode is restored afterwards). Time point ``t > 0`` uses output ``t - 1`` as its
    prior, exactly as the paper's inference.
    """
    series = _as_tensor(lowres_series, "lowres_series")
    uses_prior = model_uses_prior(model)
    dims = getattr(model, "dims", None)
    dims = int(dims) if dims is not None else series.ndim - 1
    spatial = "(D, H, W)" if dims == 3 else "(H, W)" if dims == 2 else f"{dims} axes"
    if series.ndim < dims + 1 or series.shape[0] < 1:
        raise ValueError(
            f"lowres_series must have shape (T, ..., {spatial[1:-1]}) with T >= 1 time points "
            f"and the model's {dims} spatial axes last, got {tuple(series.shape)}"
        )
    frame = tuple(series.shape[1:])
    if prior is not None:
        prior = _as_tensor(prior, "prior")
        if tuple(prior.shape) != frame:
            raise ValueError(
                f"prior must have the shape of one time point of lowres_series, {frame} "
                f"(lowres_series is (T, *prior.shape) = (T, {', '.join(map(str, frame))}), "
                f"interpolated to the prior's high-res grid; see "
                f"mrct.physics.upsample_lowres), got prior {tuple(prior.shape)}"
            )
    elif uses_prior:
        raise ValueError(
            f"{type(model).__name__} uses a prior: pass the static high-res planning scan as "
            f"prior, shape {frame}"
        )
    T = series.shape[0]
    S = frame[len(frame) - dims :]
    n = math.prod(frame[: len(frame) - dims])
    device, dtype = _model_device_dtype(model, series)
    was_training = getattr(model, "training", None)
    if isinstance(model, nn.Module):
        model.eval()
    from tqdm.auto import tqdm

    out = torch.empty_like(series)
    prev = prior.reshape(n, 1, *S).to(device, dtype) if uses_prior else None
    try:
        for t in tqdm(range(T), desc=desc, unit="time point", disable=not progress):
            cur = series[t].reshape(n, 1, *S).to(device, dtype)
            x = torch.cat([prev, cur], dim=1) if uses_prior else cur
            y = model(x)
            if not isinstance(y, torch.Tensor) or tuple(y.shape) != (n, 1, *S):
                raise ValueError(
                    f"the model returned {tuple(getattr(y, 'shape', ()))} for input "
                    f"{tuple(x.shape)}; expected {(n, 1, *S)}"
                )
            out[t] = y.reshape(frame).to(out.device, out.dtype)
            prev = y  # the super-resolved time point is the next one's prior
    finally:
        if isinstance(model, nn.Module) and was_training:
            model.train()
    return out


def load_sr_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild an :class:`~mrct.recon.SRUNet` / :class:`~mrct.recon.DDoSUNet` from a
    safetensors checkpoint written by the trainer (``best.safetensors`` / ``last.safetensors``
    of ``mrct train``) or by :func:`mrct.recon.save_checkpoint` with ``model_kwargs``."""
    from ...training import CheckpointError, load_model, read_metadata

    name = read_metadata(path).get("model_class")
    if name not in ("DDoSUNet", "SRUNet"):
        raise CheckpointError(
            f"{path} holds a {name or 'unknown'} model; mrct sr needs a DDoSUNet or SRUNet "
            "checkpoint (e.g. best.safetensors of `mrct train configs/ddos-*.toml`)"
        )
    return load_model(path, device=device)
