"""Non-uniform FFT (2D) with exact adjoint, autograd, Toeplitz normal operator and density
compensation.

``F = NUFFT(traj, (H, W), eps=1e-6)`` computes ``F(x)[j] = sum_r x[r] exp(-i k_j . r)``
(type 2; no scaling) for k-space points ``k_j = traj[j] = (k_row, k_col)`` in radians per
pixel, ``-pi <= k < pi``, and pixel offsets ``r = (i - H // 2, j - W // 2)`` from the centre.
On the Cartesian points ``2 pi (m - N // 2) / N`` this equals ``sqrt(H W) * fft2c(x)``.
``F.adjoint(y)[r] = sum_j y_j exp(+i k_j . r)`` (type 1).

Algorithm (Dutt & Rokhlin 1993; Greengard & Lee 2004; FINUFFT, Barnett et al. 2019): divide
by the kernel's Fourier transform, zero-pad to a grid oversampled by 2, FFT, interpolate with
the "exponential of semicircle" kernel of width ``w = ceil(log10(1/eps)) + 1`` cells and shape
``beta`` tuned per width (:func:`nufft_kernel_params`; one cell wider than FINUFFT below
eps = 2e-4), the kernel evaluated by per-tap polynomials. The adjoint runs the same steps
backwards (spread, inverse FFT, crop, divide), so it is the exact adjoint of the discrete
operator. Relative error against the exact non-uniform DFT is at or below ``eps`` for
``eps`` in [1e-6, 1e-2] (tests/test_nufft.py).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..kernels import nufft_cpu
from .backend import kernel_array, torch_stream, use_cuda
from .operator import LinearOperator

__all__ = ["NUFFT", "nufft_kernel_params", "ToeplitzNormal"]

_COMPLEX = (torch.complex64, torch.complex128)
_OVERSAMPLING = 2.0


def nufft_kernel_params(eps: float) -> tuple[int, float]:
    """Kernel width ``w`` (cells) and shape ``beta`` for a requested relative accuracy.

    With oversampling 2 the ES kernel's error is about ``1.2 * 10^-(w-1)`` at the best
    ``beta`` (measured against the exact DFT; ``beta / w`` from 2.1 at w = 3 to 2.3 for
    w >= 6, close to FINUFFT's choices). We take ``w = ceil(log10(1/eps)) + 1`` and one more
    cell below eps = 2e-4, where that constant would otherwise exceed the request.
    """
    if not (0 < eps < 1):
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    w = int(math.ceil(math.log10(1.0 / eps) - 1e-9)) + 1
    if eps < 2e-4:
        w += 1
    w = max(2, min(w, 16))
    beta_over_w = {2: 2.0, 3: 2.1, 4: 2.2, 5: 2.25}.get(w, 2.3)
    return w, beta_over_w * w


def _es_kernel(u, w, beta):
    z = 2.0 * np.asarray(u, dtype=np.float64) / w
    out = np.zeros_like(z)
    inside = np.abs(z) < 1
    out[inside] = np.exp(beta * (np.sqrt(1.0 - z[inside] ** 2) - 1.0))
    return out


def _tap_polynomials(w: int, beta: float) -> np.ndarray:
    """Coefficients (w, degree+1), highest power first, of each tap's weight on (0, 1]."""
    degree = w + 3
    nodes = 0.5 + 0.5 * np.cos(np.pi * (np.arange(4 * degree) + 0.5) / (4 * degree))
    coeffs = np.empty((w, degree + 1))
    for i in range(w):
        vals = _es_kernel(nodes + 0.5 * w - 1.0 - i, w, beta)
        coeffs[i] = np.polyfit(nodes, vals, degree)
    return np.ascontiguousarray(coeffs)


def _kernel_ft(n_img: int, n_grid: int, w: int, beta: float) -> np.ndarray:
    """``Phi(r) = int phi(u) cos(2 pi u r / n_grid) du`` for r = -n//2 .. n - n//2 - 1."""
    x, wq = np.polynomial.legendre.leggauss(max(64, 4 * w))
    u = 0.5 * w * x  # nodes on (-w/2, w/2)
    phi = _es_kernel(u, w, beta) * wq * 0.5 * w
    r = np.arange(n_img) - n_img // 2
    return np.cos(2 * np.pi * np.outer(r, u) / n_grid) @ phi


def _smooth_size(n: int) -> int:
    """Smallest even number >= n whose prime factors are 2, 3 and 5."""
    n = max(2, int(math.ceil(n)))
    while True:
        if n % 2 == 0:
            m = n
            for p in (2, 3, 5):
                while m % p == 0:
                    m //= p
            if m == 1:
                return n
        n += 1


def _wrap_index(H, W, n1, n2, device):
    """Grid rows and columns ``(offset mod n)`` of the pixels of an (H, W) image."""
    rows = (torch.arange(H, device=device) - H // 2) % n1
    cols = (torch.arange(W, device=device) - W // 2) % n2
    return rows[:, None], cols[None, :]


class NUFFT(LinearOperator):
    """2D non-uniform FFT: complex images ``(..., H, W)`` to samples ``(..., *traj.shape[:-1])``.

    Parameters
    ----------
    traj : tensor or array (..., 2)
        k-space coordinates ``(k_row, k_col)`` in radians per pixel, in ``[-pi, pi)``. A
        tensor with ``requires_grad=True`` makes the trajectory learnable: gradients flow to
        it through ``forward`` and ``adjoint``.
    image_shape : (H, W)
    eps : float
        Requested relative accuracy (1e-2 .. 1e-6 for complex128, down to ~1e-5 for
        complex64); sets the kernel width.
    backend : {"auto", "cpu", "cuda"}
        As for :class:`mrct.physics.Radon` (``"cuda"`` with CPU tensors uses the simulator).

    Notes
    -----
    No density compensation and no scaling: ``F.adjoint(F(x))`` is not ``x``. For gridding
    use :func:`mrct.physics.radial_density` or :func:`mrct.physics.pipe_menon_density`;
    ``F.normal()`` is the fast Toeplitz-embedded ``F^H F`` (:class:`ToeplitzNormal`).
    """

    def __init__(self, traj, image_shape, eps: float = 1e-6, *, backend: str = "auto"):
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 2 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (H, W), got {image_shape}")
        t = traj if isinstance(traj, torch.Tensor) else torch.as_tensor(np.asarray(traj))
        if t.is_complex() or not t.is_floating_point():
            raise TypeError(f"traj must be a real floating tensor (..., 2), got {t.dtype}")
        if t.ndim < 2 or t.shape[-1] != 2:
            raise ValueError(f"traj must have shape (..., 2) (k_row, k_col), got {tuple(t.shape)}")
        td = t.detach()
        if not bool(torch.isfinite(td).all()):
            raise ValueError("traj contains NaN or Inf")
        lo, hi = float(td.min()), float(td.max())
        if lo < -math.pi or hi >= math.pi:
            raise ValueError(
                f"traj must lie in [-pi, pi) radians per pixel; got values in [{lo:.4f}, {hi:.4f}]"
            )
        if backend not in ("auto", "cpu", "cuda"):
            raise ValueError(f'backend must be "auto", "cpu" or "cuda", got {backend!r}')
        super().__init__(image_shape, tuple(t.shape[:-1]))
        self.image_shape = image_shape
        self.eps = float(eps)
        self.backend = backend
        self.width, self.beta = nufft_kernel_params(self.eps)
        self.grid_shape = tuple(
            _smooth_size(max(_OVERSAMPLING * n, 2 * self.width)) for n in image_shape
        )
        self.traj = t  # kept as given (may require grad)
        self._coeffs = _tap_polynomials(self.width, self.beta)
        self._phi = [
            _kernel_ft(n, g, self.width, self.beta)
            for n, g in zip(image_shape, self.grid_shape, strict=True)
        ]
        flat = td.reshape(-1, 2).to(torch.float64).cpu().numpy()
        # sort points by coarse grid cell (16 x 16 cells) for memory locality
        cells = np.floor(flat / (2 * np.pi) * np.array(self.grid_shape) / 16).astype(np.int64)
        key = (cells[:, 0] + 10**6) * 10**7 + (cells[:, 1] + 10**6)
        self._perm = np.argsort(key, kind="stable")
        self._dev: dict = {}

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def n_points(self) -> int:
        return int(np.prod(self.out_shape))

    def extra_repr(self) -> str:
        return (f"image_shape={self.image_shape}, n_points={self.n_points}, eps={self.eps:g}, "
                f"width={self.width}, grid={self.grid_shape}")  # fmt: skip

    def _use_cuda(self, t):
        return use_cuda(t, self.backend)

    def _consts(self, device, real_dtype):
        key = (device.type, device.index, real_dtype)
        if key not in self._dev:
            phi = [torch.as_tensor(p, dtype=real_dtype, device=device) for p in self._phi]
            deconv = 1.0 / (phi[0][:, None] * phi[1][None, :])
            perm = torch.as_tensor(self._perm, device=device)
            inv = torch.empty_like(perm)
            inv[perm] = torch.arange(perm.numel(), device=device)
            coeffs = torch.as_tensor(self._coeffs, device=device)
            self._dev[key] = dict(deconv=deconv, perm=perm, inv=inv, coeffs=coeffs)
        return self._dev[key]

    def _coords(self, device):
        """Sorted grid coordinates (M, 2) float64 in cells (cached unless traj is learnable)."""
        learnable = self.traj.requires_grad
        key = ("coords", device.type, device.index)
        if not learnable and key in self._dev:
            return self._dev[key]
        scale = torch.tensor(self.grid_shape, dtype=torch.float64) / (2 * math.pi)
        k = self.traj.detach().reshape(-1, 2).to(device=device, dtype=torch.float64)
        perm = self._consts(device, torch.float64)["perm"]
        coords = (k[perm] * scale.to(device)).contiguous()
        if not learnable:
            self._dev[key] = coords
        return coords

    _arr = staticmethod(kernel_array)

    def _kern(self, t):
        if self._use_cuda(t):
            from ..kernels import nufft_cuda

            return nufft_cuda, {"stream": torch_stream(t)}, True
        return nufft_cpu, {}, False

    def _check(self, t, trailing, name, what):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_complex():
            if t.is_floating_point():
                t = t.to(torch.complex128 if t.dtype == torch.float64 else torch.complex64)
            else:
                raise TypeError(f"{name} must be complex64 or complex128 ({what}), got {t.dtype}")
        n = len(trailing)
        if t.ndim < n or tuple(t.shape[-n:]) != tuple(trailing):
            raise ValueError(
                f"{name} must have shape (..., {', '.join(map(str, trailing))}) ({what}), "
                f"got {tuple(t.shape)}"
            )
        if not bool(torch.isfinite(torch.view_as_real(t)).all()):
            raise ValueError(f"{name} contains NaN or Inf")
        return t

    # -- raw transforms (no autograd) ---------------------------------------------------------
    def _type2(self, x: torch.Tensor) -> torch.Tensor:
        H, W = self.image_shape
        n1, n2 = self.grid_shape
        lead = x.shape[:-2]
        xb = x.reshape(-1, H, W)
        real = torch.float64 if x.dtype == torch.complex128 else torch.float32
        c = self._consts(x.device, real)
        grid = torch.zeros((xb.shape[0], n1, n2), dtype=x.dtype, device=x.device)
        rows, cols = _wrap_index(H, W, n1, n2, x.device)
        grid[:, rows, cols] = xb * c["deconv"]  # pixel offset r goes to grid index r mod n
        grid = torch.fft.fft2(grid)
        out = torch.empty((xb.shape[0], self.n_points, 2), dtype=real, device=x.device)
        kern, kw, on_gpu = self._kern(x)
        coords = self._coords(x.device)
        coeffs = self._consts(x.device, torch.float64)["coeffs"]
        gr = torch.view_as_real(grid).contiguous()
        if on_gpu:
            kern.interp_2d(self._arr(gr), self._arr(coords), self.width, self._arr(coeffs),
                           self._arr(out), **kw)  # fmt: skip
        else:
            n_chunks = 8 * max(1, torch.get_num_threads())
            kern.interp_2d(gr.numpy(), coords.numpy(), self.width, coeffs.numpy(), out.numpy(),
                           n_chunks)  # fmt: skip
        vals = torch.view_as_complex(out)[:, c["inv"]]
        return vals.reshape(lead + self.out_shape)

    def _type1(self, y: torch.Tensor) -> torch.Tensor:
        H, W = self.image_shape
        n1, n2 = self.grid_shape
        nd = len(self.out_shape)
        lead = y.shape[: y.ndim - nd]
        yb = y.reshape(-1, self.n_points)
        real = torch.float64 if y.dtype == torch.complex128 else torch.float32
        c = self._consts(y.device, real)
        vals = torch.view_as_real(yb[:, c["perm"]]).contiguous()
        grid = torch.zeros((yb.shape[0], n1, n2, 2), dtype=real, device=y.device)
        kern, kw, on_gpu = self._kern(y)
        coords = self._coords(y.device)
        coeffs = self._consts(y.device, torch.float64)["coeffs"]
        if on_gpu:
            kern.spread_2d(self._arr(vals), self._arr(coords), self.width, self._arr(coeffs),
                           self._arr(grid), **kw)  # fmt: skip
        else:
            kern.spread_2d(vals.numpy(), coords.numpy(), self.width, coeffs.numpy(), grid.numpy())
        g = torch.fft.ifft2(torch.view_as_complex(grid), norm="forward")  # sum_l S_l e^{+i..}
        rows, cols = _wrap_index(H, W, n1, n2, y.device)
        return (g[:, rows, cols] * c["deconv"]).reshape(lead + self.image_shape)

    def _offsets(self, device, dtype):
        H, W = self.image_shape
        return (
            torch.arange(H, device=device, dtype=dtype)[:, None] - H // 2,
            torch.arange(W, device=device, dtype=dtype)[None, :] - W // 2,
        )

    # -- LinearOperator -----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Type 2: images ``(..., H, W)`` -> samples ``(..., *traj.shape[:-1])``."""
        x = self._check(x, self.image_shape, "x", "an image")
        return _NUFFTFunction.apply(x, self.traj, self, True)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Type 1: samples ``(..., *traj.shape[:-1])`` -> images ``(..., H, W)``."""
        y = self._check(y, self.out_shape, "y", "k-space samples")
        return _NUFFTFunction.apply(y, self.traj, self, False)

    def normal(self, weights=None) -> ToeplitzNormal:
        """Fast ``F^H diag(weights) F`` by Toeplitz embedding (one FFT pair of size 2H x 2W)."""
        return ToeplitzNormal(self, weights)


class _NUFFTFunction(torch.autograd.Function):
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


class ToeplitzNormal(LinearOperator):
    """``F^H diag(w) F`` of a :class:`NUFFT` as a convolution, evaluated by FFTs of size 2N.

    The kernel ``T(d) = sum_j w_j exp(i k_j . d)`` for offsets ``|d| < N`` is one adjoint
    NUFFT on a (2H, 2W) grid (Wajer & Pruessmann 2001; Fessler et al., IEEE TSP 2005).
    """

    def __init__(self, op: NUFFT, weights=None):
        super().__init__(op.image_shape, op.image_shape)
        H, W = op.image_shape
        big = NUFFT(op.traj.detach(), (2 * H, 2 * W), eps=op.eps, backend=op.backend)
        w = torch.ones(op.out_shape, dtype=torch.complex128)
        if weights is not None:
            w = w * torch.as_tensor(weights).to(torch.complex128).cpu()
        kern = big._type1(w)  # offsets -H .. H-1 at indices 0 .. 2H-1
        kern = torch.roll(kern, shifts=(-H, -W), dims=(-2, -1))
        self.register_buffer("kernel_ft", torch.fft.fft2(kern))
        self.op = op

    def forward(self, x):
        x = self.op._check(x, self.op.image_shape, "x", "an image")
        H, W = self.op.image_shape
        kft = self.kernel_ft.to(device=x.device, dtype=x.dtype)
        spec = torch.fft.fft2(x, s=(2 * H, 2 * W))
        return torch.fft.ifft2(spec * kft)[..., :H, :W]

    adjoint = forward  # Hermitian (real weights)
