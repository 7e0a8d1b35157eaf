"""Autograd glue for operators whose forward and adjoint are external kernels.

For a linear map ``y = A x`` the vector-Jacobian product is ``A^H g`` (also for complex
tensors under torch's conjugate-Wirtinger convention), so the backward of the forward is the
adjoint and vice versa. Because the backward is itself an ``apply_linear`` call, derivatives
of any order work (double backward, ``gradgradcheck``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["apply_linear"]


class _LinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, fwd, adj):
        ctx.fwd, ctx.adj = fwd, adj
        return fwd(x)

    @staticmethod
    def backward(ctx, grad):
        return _LinearFunction.apply(grad, ctx.adj, ctx.fwd), None, None


def apply_linear(
    x: torch.Tensor,
    fwd: Callable[[torch.Tensor], torch.Tensor],
    adj: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Apply ``fwd(x)`` with autograd whose backward is ``adj`` (and ``fwd`` for that one's)."""
    return _LinearFunction.apply(x, fwd, adj)
