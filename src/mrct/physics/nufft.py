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
``eps`` in [1e-6, 1e-2], for complex128 and complex64 data (tests/test_nufft.py).

On the CPU (:mod:`mrct.kernels.nufft_cpu`) the points are sorted once per trajectory into row
stripes of the grid and kept in that order; deconvolve-and-pad, crop-and-deconvolve and
interpolation/spreading are Numba kernels that read and write the caller's arrays through the
sort permutation (no permuted copies), the kernel weights are evaluated 16 points at a time
with explicit SIMD and reused for every batch element, and spreading runs in one parallel
region without a grid per thread. The FFTs use ``scipy.fft`` (pocketfft) with
``numba.get_num_threads()`` workers, several times faster than ``torch.fft`` on the CPU for
these sizes; torch's own thread pool is not involved. Weights and grids are float32 for
complex64 data, except that below eps = 1e-4 spreading accumulates on a float64 grid (float32
sums over the dense centre of a radial trajectory would otherwise cost about 6e-6 relative
accuracy). Speed against finufft, sigpy and torchkbnufft: ``benchmarks/nufft.py``.
"""

from __future__ import annotations

import contextlib
import threading

import numba
import numpy as np
import scipy.fft
import torch

from ..errors import DTypeError, MrctError
from ..kernels import nufft_cpu, nufft_math
from ._checks import all_finite, check_device, check_trailing
from .backend import kernel_array, torch_stream, use_cuda
from .nufft_autograd import NUFFTFunction
from .nufft_kernel import (
    _es_kernel,  # noqa: F401 (imported from here by tests and trajectories)
    _kernel_ft,
    _Plan,
    _smooth_size,
    _tap_polynomials,
    _wrap_index,
    nufft_kernel_params,
)
from .nufft_toeplitz import ToeplitzNormal
from .operator import LinearOperator

__all__ = ["NUFFT", "nufft_kernel_params", "ToeplitzNormal"]

_OVERSAMPLING = 2.0
_WIDE_GRID_BELOW = 1e-4  # eps below which complex64 data are spread onto a float64 grid


class NUFFT(LinearOperator):
    """2D non-uniform FFT: complex images ``(..., H, W)`` to samples ``(..., *traj.shape[:-1])``.

    Parameters
    ----------
    traj : tensor or array (..., 2)
        k-space coordinates ``(k_row, k_col)`` in radians per pixel. Any finite value is
        accepted: the transform is 2 pi-periodic in each coordinate (pixel offsets are
        integers), so points are wrapped into ``[-pi, pi)`` exactly, as FINUFFT does on
        ``[-3 pi, 3 pi]``. Coordinates of other packages: :func:`traj_from_sigpy`,
        :func:`traj_from_bart`, :func:`traj_from_torchkbnufft`. A tensor with
        ``requires_grad=True`` makes the trajectory learnable: gradients flow to it through
        ``forward`` and ``adjoint``.
    image_shape : (H, W)
    eps : float
        Requested relative accuracy (1e-2 .. 1e-6 for complex64 and complex128; smaller
        values widen the kernel further, useful with complex128); sets the kernel width.
    backend : {"auto", "cpu", "cuda"}
        As for :class:`mrct.physics.Radon` (``"cuda"`` with CPU tensors uses the simulator).

    Notes
    -----
    No density compensation and no scaling: ``F.adjoint(F(x))`` is not ``x``. For gridding
    use :func:`mrct.physics.radial_density` or :func:`mrct.physics.pipe_menon_density`;
    ``F.normal()`` is the fast Toeplitz-embedded ``F^H F`` (:class:`ToeplitzNormal`).

    On the CPU the work runs in Numba kernels and ``scipy.fft`` with ``numba.get_num_threads()``
    threads (set it with ``numba.set_num_threads``); torch's own thread pool is not used. Each
    operator keeps its last few oversampled grids between calls (about ``(B, 2H, 2W)``
    complex each); a call made while another thread uses them gets fresh ones, so operators
    may be shared between threads.
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
        # run lengths the CPU kernels compile in (tuple lengths; see mrct.kernels.nufft_cpu)
        self._lanes = (0,) * nufft_math.n_lanes(self.width)
        self._ncoef = (0,) * nufft_math.n_coeffs(self.width)
        self._phi = [
            _kernel_ft(n, g, self.width, self.beta)
            for n, g in zip(image_shape, self.grid_shape, strict=True)
        ]
        self._dev: dict = {}
        self._grids: dict = {}  # reusable CPU grids, see _grid_buffer
        self._lock = threading.Lock()

    def __getstate__(self):  # copy.deepcopy / pickle: no lock, no cached grids
        state = self.__dict__.copy()
        state.pop("_lock", None)
        state["_grids"] = {}
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._lock = threading.Lock()

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
        """Deconvolution factors (with the ``(-1)^offset`` modulation that puts k = 0 at grid
        index n / 2) and tap polynomials in ``real_dtype`` on ``device``."""
        key = (device.type, device.index, real_dtype)
        if key not in self._dev:
            fac = []
            for p, n in zip(self._phi, self.image_shape, strict=True):
                sign = 1.0 - 2.0 * ((np.arange(n) - n // 2) % 2)
                fac.append(torch.as_tensor(sign / p, dtype=real_dtype, device=device))
            self._dev[key] = dict(
                dr=fac[0],
                dc=fac[1],
                deconv=fac[0][:, None] * fac[1][None, :],
                coeffs=torch.as_tensor(self._coeffs, dtype=real_dtype, device=device),
                coeffs_t=torch.as_tensor(self._coeffs.T.copy(), dtype=real_dtype, device=device),
            )
        return self._dev[key]

    def _plan(self, device) -> _Plan:
        """Sorted coordinates of the current trajectory (rebuilt when it changes in place)."""
        t = self.traj
        key = ("coords", device.type, device.index, id(t), t.data_ptr(), t._version)
        plan = self._dev.get(key)
        if plan is None:
            for old in [k for k in self._dev if k[0] == "coords" and k[1:3] == key[1:3]]:
                del self._dev[old]
            plan = self._dev[key] = _Plan(t, self.grid_shape, self.width, device)
        return plan

    def _coords(self, device):
        """Sorted grid coordinates (M, 2) float64 in cells (see :class:`_Plan`)."""
        return self._plan(device).coords

    _arr = staticmethod(kernel_array)

    def _kern(self, t):
        if self._use_cuda(t):
            from ..kernels import nufft_cuda

            return nufft_cuda, {"stream": torch_stream(t)}, True
        return nufft_cpu, {}, False

    def _check(self, t, trailing, name, what):
        if not isinstance(t, torch.Tensor):
            raise DTypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.is_complex() and t.dtype not in (torch.complex64, torch.complex128):
            raise DTypeError(f"{name} must be complex64 or complex128 ({what}), got {t.dtype}")
        if not t.is_complex():
            if t.is_floating_point():
                t = t.to(torch.complex128 if t.dtype == torch.float64 else torch.complex64)
            else:
                raise DTypeError(f"{name} must be complex64 or complex128 ({what}), got {t.dtype}")
        check_trailing(t, trailing, name, what)
        check_device(t, name)
        if not all_finite(t):
            raise MrctError(f"{name} contains NaN or Inf")
        return t

    def _batched(self, t, n_trailing: int, shape):
        """``t`` as a contiguous ``(B, *shape)`` tensor with its conjugation resolved, its
        batch dimensions (all but the last ``n_trailing``), and the real dtype of its
        precision with the constants (:meth:`_consts`) in it on its device."""
        lead = t.shape[: t.ndim - n_trailing]
        tb = torch.resolve_conj(t).reshape((-1,) + tuple(shape)).contiguous()
        real = torch.float64 if t.dtype == torch.complex128 else torch.float32
        return lead, tb, real, self._consts(t.device, real)

    @contextlib.contextmanager
    def _grid_buffer(self, shape, dtype):
        """A zeroed-once grid of ``shape``/``dtype`` reused between calls (see the class Notes);
        the caller must leave it zero outside the cells it writes every call. The last four
        shapes are kept (forward and adjoint grids, two batch sizes)."""
        key = (shape, np.dtype(dtype).str)
        if not self._lock.acquire(blocking=False):  # another thread is using the grids
            yield np.zeros(shape, dtype)
            return
        try:
            buf = self._grids.pop(key, None)
            if buf is None:
                buf = np.zeros(shape, dtype)
            self._grids[key] = buf  # most recently used last
            while len(self._grids) > 4:
                del self._grids[next(iter(self._grids))]
            yield buf
        finally:
            self._lock.release()

    # -- raw transforms (no autograd) ---------------------------------------------------------
    def _type2(self, x: torch.Tensor) -> torch.Tensor:
        H, W = self.image_shape
        n1, n2 = self.grid_shape
        lead, xb, real, c = self._batched(x, 2, (H, W))
        B = xb.shape[0]
        plan = self._plan(x.device)
        kern, kw, on_gpu = self._kern(x)
        if on_gpu:
            grid = torch.zeros((B, n1, n2), dtype=x.dtype, device=x.device)
            rows, cols = _wrap_index(H, W, n1, n2, x.device)
            grid[:, rows, cols] = xb * c["deconv"]  # pixel offset r goes to grid index r mod n
            gr = torch.view_as_real(torch.fft.fft2(grid)).reshape(B, n1, 2 * n2)
            out = torch.empty((B, self.n_points, 2), dtype=real, device=x.device)
            a = self._arr
            kern.interp_2d(a(gr), a(plan.coords), a(plan.perm), self.width, a(c["coeffs"]),
                           a(out), **kw)  # fmt: skip
            return torch.view_as_complex(out).reshape(lead + self.out_shape)
        nt = numba.get_num_threads()
        cdt = xb.numpy().dtype
        with self._grid_buffer((B, n1, n2), cdt) as buf:
            nufft_cpu.pad_deconv_2d(xb.numpy(), c["dr"].numpy(), c["dc"].numpy(), buf)
            g = scipy.fft.fft2(buf, workers=nt)
        out = torch.empty((B, self.n_points), dtype=x.dtype)
        nufft_cpu.interp_2d(
            g.view(g.real.dtype).reshape(B, n1, 2 * n2), plan.coords.numpy(), plan.perm.numpy(),
            self.width, c["coeffs_t"].numpy(), self._lanes, self._ncoef,
            torch.view_as_real(out).numpy(), 8 * nt,
        )  # fmt: skip
        return out.reshape(lead + self.out_shape)

    def _type1(self, y: torch.Tensor) -> torch.Tensor:
        H, W = self.image_shape
        n1, n2 = self.grid_shape
        lead, yb, real, c = self._batched(y, len(self.out_shape), (self.n_points,))
        B = yb.shape[0]
        plan = self._plan(y.device)
        kern, kw, on_gpu = self._kern(y)
        vals = torch.view_as_real(yb)
        # float32 sums of many points per grid cell lose about 6e-6 relative accuracy on a
        # dense radial centre: below eps = 1e-4 complex64 data are spread onto a float64 grid
        # (the FFT and the kernel weights stay single precision where that suffices)
        wide = real == torch.float32 and self.eps < _WIDE_GRID_BELOW
        if on_gpu:
            gdt = torch.float64 if wide else real
            grid = torch.zeros((B, n1, 2 * n2), dtype=gdt, device=y.device)
            a = self._arr
            kern.spread_2d(a(vals), a(plan.coords), a(plan.perm), self.width, a(c["coeffs"]),
                           a(grid), **kw)  # fmt: skip
            cg = torch.view_as_complex(grid.reshape(B, n1, n2, 2)).to(y.dtype)
            g = torch.fft.ifft2(cg, norm="forward")
            rows, cols = _wrap_index(H, W, n1, n2, y.device)
            return (g[:, rows, cols] * c["deconv"]).reshape(lead + self.image_shape)
        nt = numba.get_num_threads()
        rdt = np.float64 if wide else vals.numpy().dtype
        with self._grid_buffer((B, n1, 2 * n2), rdt) as grid:
            nufft_cpu.spread_2d(vals.numpy(), plan.coords.numpy(), plan.perm.numpy(), self.width,
                                c["coeffs_t"].numpy(), self._lanes, self._ncoef, grid,
                                plan.offsets, plan.bounds)  # fmt: skip
            cg = grid.view(np.complex128 if rdt == np.float64 else np.complex64)
            cg = cg.reshape(B, n1, n2)
            if wide:
                cg = cg.astype(np.complex64)
            g = scipy.fft.ifft2(cg, norm="forward", workers=nt)  # sum_l S_l e^{+i..}
        out = torch.empty((B, H, W), dtype=y.dtype)
        nufft_cpu.crop_deconv_2d(g, c["dr"].numpy(), c["dc"].numpy(), out.numpy())
        return out.reshape(lead + self.image_shape)

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
        return NUFFTFunction.apply(x, self.traj, self, True)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Type 1: samples ``(..., *traj.shape[:-1])`` -> images ``(..., H, W)``."""
        y = self._check(y, self.out_shape, "y", "k-space samples")
        return NUFFTFunction.apply(y, self.traj, self, False)

    def normal(self, weights=None) -> ToeplitzNormal:
        """Fast ``F^H diag(weights) F`` by Toeplitz embedding (one FFT pair of size 2H x 2W)."""
        return ToeplitzNormal(self, weights)

    def grid_convolve(self, values) -> torch.Tensor:
        """Convolve sample values with the gridding kernel: spread, then interpolate back.

        ``out_i = sum_l phi(u_i - l) sum_j phi(u_j - l) values_j``, with ``u`` the points'
        coordinates on the oversampled grid (periodic, in cells) and ``phi`` the 2D kernel
        (no FFT, no deconvolution). This is the operator ``C`` of Pipe & Menon's density
        compensation (:func:`mrct.physics.pipe_menon_density`).

        values : tensor (..., *traj.shape[:-1]), real or complex (CPU). Returns the same shape
        and dtype (float64/complex128 for float64/complex128 input, else 32-bit); not
        differentiable.
        """
        v = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
        is_real = not v.is_complex()
        v = self._check(v.detach().cpu(), self.out_shape, "values", "k-space samples")
        n1, n2 = self.grid_shape
        lead, vb, real, c = self._batched(v, len(self.out_shape), (self.n_points,))
        B = vb.shape[0]
        plan = self._plan(torch.device("cpu"))
        coords, perm, coeffs = plan.coords.numpy(), plan.perm.numpy(), c["coeffs_t"].numpy()
        grid = np.empty((B, n1, 2 * n2), dtype=vb.numpy().real.dtype)
        nufft_cpu.spread_2d(torch.view_as_real(vb).numpy(), coords, perm, self.width, coeffs,
                            self._lanes, self._ncoef, grid, plan.offsets, plan.bounds)  # fmt: skip
        out = torch.empty_like(vb)
        nt = numba.get_num_threads()
        nufft_cpu.interp_2d(grid, coords, perm, self.width, coeffs, self._lanes, self._ncoef,
                            torch.view_as_real(out).numpy(), 8 * nt)  # fmt: skip
        out = out.reshape(lead + self.out_shape)
        return out.real.contiguous() if is_real else out
