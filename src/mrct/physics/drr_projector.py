"""``DRRProjector``: the DRR forward model for fixed poses as a linear operator.

Volumes (attenuation, mm^-1) to line integrals through the Siddon or trilinear kernels of
:mod:`mrct.kernels.drr_math` (Numba CPU and CUDA), with the exact adjoint; built by
:meth:`mrct.physics.DRR.projector`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..kernels import drr_cpu
from ._checks import check_real, flatten_batch
from .autograd import apply_linear
from .backend import device_arrays, kernel_array, torch_stream, use_cuda
from .operator import LinearOperator

__all__ = ["DRRProjector"]

_RENDERERS = {"siddon": 0, "trilinear": 1}


class DRRProjector(LinearOperator):
    """The DRR forward model for fixed poses as a linear operator with its exact adjoint.

    Maps volumes ``(..., D, H, W)`` (attenuation, mm^-1) to line integrals
    ``(..., P, height, width)``. Built by :meth:`DRR.projector`; ``check_adjoint`` passes.
    """

    def __init__(self, shape, lin, geo_index, det_shape, renderer="siddon", step=1.0,
                 backend="auto", check_finite=True):  # fmt: skip
        self.vol_shape = tuple(int(s) for s in shape)
        P = geo_index[0].shape[0]
        self.det_shape = (P,) + tuple(int(s) for s in det_shape)
        super().__init__(self.vol_shape, self.det_shape)
        if renderer not in _RENDERERS:
            raise ValueError(f"renderer must be 'siddon' or 'trilinear', got {renderer!r}")
        self.renderer = renderer
        self.mode = _RENDERERS[renderer]
        self.step = float(step)
        self.backend = backend
        self.check_finite = check_finite
        self._lin = np.ascontiguousarray(lin, dtype=np.float64)
        self._geo = [np.ascontiguousarray(g, dtype=np.float64) for g in geo_index]
        self._dev: dict = {}

    def extra_repr(self) -> str:
        return f"volume={self.vol_shape}, images={self.det_shape}, renderer={self.renderer!r}"

    def _geo_for(self, t):
        return device_arrays(self._dev, t, self._geo + [self._lin])

    def _check(self, t, trailing, name):
        check_real(t, trailing, name, check_finite=self.check_finite)

    def _kern(self, t):
        if use_cuda(t, self.backend):
            from ..kernels import drr_cuda

            return drr_cuda, {"stream": torch_stream(t)}
        return drr_cpu, {}

    def _forward_raw(self, x):
        lead, xf = flatten_batch(x, 3)
        out = torch.empty((xf.shape[0],) + self.det_shape, dtype=x.dtype, device=x.device)
        if xf.shape[0]:
            src, det, eu, ev, lin = self._geo_for(x)
            kern, kw = self._kern(x)
            kern.forward(kernel_array(xf), src, det, eu, ev, lin, self.mode, self.step,
                         kernel_array(out), **kw)  # fmt: skip
        return out.reshape(lead + self.det_shape)

    def _adjoint_raw(self, y):
        lead, yf = flatten_batch(y, 3)
        kern, kw = self._kern(y)
        # the CPU adjoint overwrites its output; the CUDA one accumulates into zeros
        alloc = torch.empty if kern is drr_cpu else torch.zeros
        out = alloc((yf.shape[0],) + self.vol_shape, dtype=y.dtype, device=y.device)
        if yf.shape[0]:
            src, det, eu, ev, lin = self._geo_for(y)
            kern.adjoint(kernel_array(yf), src, det, eu, ev, lin, self.mode, self.step,
                         kernel_array(out), **kw)  # fmt: skip
        return out.reshape(lead + self.vol_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Line integrals ``(..., P, height, width)`` of volumes ``(..., D, H, W)``."""
        self._check(x, self.vol_shape, "volume")
        return apply_linear(x, self._forward_raw, self._adjoint_raw)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Exact adjoint: images ``(..., P, height, width)`` -> volumes ``(..., D, H, W)``."""
        self._check(y, self.det_shape, "images")
        return apply_linear(y, self._adjoint_raw, self._forward_raw)
