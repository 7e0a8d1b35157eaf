"""Exponential moving average of a model's weights, the one copy every mrct model uses."""

from __future__ import annotations

import torch

__all__ = ["ema_update", "ema_step"]


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


@torch.no_grad()
def ema_step(owner: torch.nn.Module, model: torch.nn.Module) -> None:
    """The optimizer-step hook of a model that keeps ``owner.ema`` (or None), ``ema_decay`` and
    an ``ema_steps`` counter buffer: one :func:`ema_update` of ``owner.ema`` towards
    ``model``, counted."""
    if owner.ema is None:
        return
    ema_update(owner.ema, model, int(owner.ema_steps), owner.ema_decay)
    owner.ema_steps += 1
