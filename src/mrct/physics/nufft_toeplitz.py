"""``ToeplitzNormal``: the normal operator ``F^H diag(w) F`` of a NUFFT by Toeplitz embedding."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np
import scipy.fft
import torch

from .autograd import apply_linear
from .operator import LinearOperator

if TYPE_CHECKING:
    from .nufft import NUFFT

__all__ = ["ToeplitzNormal"]


class ToeplitzNormal(LinearOperator):
    """``F^H diag(w) F`` of a :class:`NUFFT` as a convolution, evaluated by FFTs of size 2N.

    The kernel ``T(d) = sum_j w_j exp(i k_j . d)`` for offsets ``|d| < N`` is one adjoint
    NUFFT on a (2H, 2W) grid (Wajer & Pruessmann 2001; Fessler et al., IEEE TSP 2005).
    """

    def __init__(self, op: NUFFT, weights=None):
        super().__init__(op.image_shape, op.image_shape)
        from .nufft import NUFFT

        H, W = op.image_shape
        big = NUFFT(op.traj.detach(), (2 * H, 2 * W), eps=op.eps, backend=op.backend)
        w = torch.ones(op.out_shape, dtype=torch.complex128)
        if weights is not None:
            w = w * torch.as_tensor(weights).to(torch.complex128).cpu()
        kern = big._type1(w)  # offsets -H .. H-1 at indices 0 .. 2H-1
        kern = torch.roll(kern, shifts=(-H, -W), dims=(-2, -1))
        self.register_buffer("kernel_ft", torch.fft.fft2(kern))
        self.op = op
        self._cache: dict = {}

    def _kft(self, device, dtype, conj: bool):
        k = self.kernel_ft
        key = (device.type, device.index, dtype, conj, k.data_ptr())
        if self._cache.get("key") != key:
            kk = k.to(device=device, dtype=dtype)
            self._cache = {"key": key, "kft": kk.conj().resolve_conj() if conj else kk}
        return self._cache["kft"]

    def _apply(self, x, conj: bool = False):
        H, W = self.op.image_shape
        kft = self._kft(x.device, x.dtype, conj)
        if x.is_cuda:
            spec = torch.fft.fft2(x, s=(2 * H, 2 * W))
            return torch.fft.ifft2(spec * kft)[..., :H, :W]
        # CPU: scipy.fft (pocketfft, numba's thread count) is several times faster than
        # torch.fft for these sizes and leaves torch's thread pool idle. Pruned 2D FFTs: the
        # zero-padded rows H..2H-1 need no row transform, and only rows < H and columns < W
        # of the result are kept, so 3 instead of 4 sets of N one-dimensional transforms run
        # each way (~20% faster at 256 x 256).
        nt = numba.get_num_threads()
        xb = torch.resolve_conj(x).reshape(-1, H, W).numpy()
        spec = scipy.fft.fft(xb, n=2 * W, axis=-1, workers=nt)
        spec = scipy.fft.fft(spec, n=2 * H, axis=-2, workers=nt, overwrite_x=True)
        spec *= kft.numpy()
        spec = scipy.fft.ifft(spec, axis=-2, workers=nt, overwrite_x=True)[:, :H, :]
        res = scipy.fft.ifft(spec, axis=-1, workers=nt)[:, :, :W]
        return torch.from_numpy(np.ascontiguousarray(res)).reshape(x.shape)

    def forward(self, x):
        x = self.op._check(x, self.op.image_shape, "x", "an image")
        return apply_linear(x, self._apply, lambda g: self._apply(g, conj=True))

    def adjoint(self, x):
        x = self.op._check(x, self.op.image_shape, "x", "an image")
        return apply_linear(x, lambda g: self._apply(g, conj=True), self._apply)
