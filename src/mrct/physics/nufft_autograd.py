"""Autograd of the :class:`~mrct.physics.NUFFT` transforms, with respect to the data and to
the trajectory (learnable k-space sampling)."""

from __future__ import annotations

import torch

__all__ = ["NUFFTFunction"]


class NUFFTFunction(torch.autograd.Function):
    """Autograd of type 2 (``forward=True``) or type 1 w.r.t. the data and the trajectory."""

    @staticmethod
    def forward(ctx, z, traj, op, forward):
        ctx.op, ctx.forward_dir = op, forward
        ctx.save_for_backward(z)
        return op._type2(z) if forward else op._type1(z)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        op, fwd = ctx.op, ctx.forward_dir
        g = g.contiguous()
        gz = gt = None
        if ctx.needs_input_grad[0]:
            # the backward of a linear map is its adjoint (itself differentiable)
            gz = op.adjoint(g) if fwd else op(g)
        if ctx.needs_input_grad[1]:
            ri, rj = op._offsets(z.device, z.real.dtype)
            if fwd:
                # d f_j / d k_{j,d} = F[-i r_d x](k_j); grad = Re(conj(g) * that), summed over batch
                parts = [op._type2(-1j * r * z) for r in (ri, rj)]
                gj = [(g.conj() * p).real for p in parts]
            else:
                # d x[r] / d k_{j,d} = i r_d y_j e^{i k_j r}; grad = Re(i y_j conj(F[r_d G](k_j)))
                parts = [op._type2(r * g) for r in (ri, rj)]
                gj = [(1j * z * p.conj()).real for p in parts]
            nd = len(op.out_shape)
            gj = [p.reshape((-1,) + op.out_shape).sum(0) for p in gj]
            gt = torch.stack(gj, -1).to(op.traj.dtype).to(op.traj.device)
            del nd
        return gz, gt, None, None
