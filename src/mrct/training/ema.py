"""Exponential moving average of a model's weights, the one copy every mrct model uses."""

from __future__ import annotations

import torch

__all__ = ["ema_update"]


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, step: int, decay: float) -> None:
    """One EMA step: ``ema <- d ema + (1 - d) model`` with the warm-up
    ``d = min(decay, (1 + step) / (10 + step))`` (as diffusers' ``EMAModel``); buffers are
    copied. ``step`` counts the updates made so far."""
    d = min(decay, (1 + step) / (10 + step))
    for pe, p in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(p.detach(), 1.0 - d)
    for be, b in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(b)
