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
import math
import threading

import numba
import numpy as np
import scipy.fft
import torch

from ..kernels import nufft_cpu, nufft_math
from .autograd import apply_linear
from .backend import kernel_array, torch_stream, use_cuda
from .operator import LinearOperator

__all__ = ["NUFFT", "nufft_kernel_params", "ToeplitzNormal"]

_COMPLEX = (torch.complex64, torch.complex128)
_OVERSAMPLING = 2.0
_WIDE_GRID_BELOW = 1e-4  # eps below which complex64 data are spread onto a float64 grid


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
    """Tap polynomials as :mod:`mrct.kernels.nufft_math` wants them: ``(n_coeffs(w), 16)``,
    highest power first, in the centred offset ``z = 2 x - 1`` in (-1, 1]; each of the ``w``
    taps is a least-squares fit of degree ``w + 3`` on Chebyshev nodes (zero rows on top and
    zero columns beyond ``w`` pad the array to the kernels' fixed shape)."""
    degree = w + 3
    z = np.cos(np.pi * (np.arange(4 * degree) + 0.5) / (4 * degree))  # Chebyshev nodes
    x = 0.5 + 0.5 * z
    coeffs = np.zeros((nufft_math.n_coeffs(w), nufft_math.MAX_TAPS))
    for i in range(w):
        coeffs[-(degree + 1) :, i] = np.polyfit(z, _es_kernel(x + 0.5 * w - 1.0 - i, w, beta),
                                                degree)  # fmt: skip
    return coeffs


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


def _stripes(n: int, w: int) -> np.ndarray:
    """Row boundaries (n_stripes + 1,) of the spreading stripes: as many stripes as fit with
    at least ``max(16, 2 * spread_reach(w))`` rows each (see :mod:`mrct.kernels.nufft_cpu`)."""
    ns = max(1, n // max(16, 2 * nufft_cpu.spread_reach(w)))
    return np.round(np.arange(ns + 1) * (n / ns)).astype(np.int64)


class _Plan:
    """Sorted grid coordinates of the points for one device (see :mod:`mrct.kernels.nufft_cpu`).

    coords : (M, 2) float64 tensor, grid coordinates in [0, n] of the points in sorted order
    (k = 0 at n / 2; the grid is modulated by ``(-1)^l`` to match, see ``NUFFT._consts``);
    perm : (M,) int64 tensor, sorted point j is point ``perm[j]`` of the flattened trajectory;
    offsets : (n_stripes + 1,) int64 numpy array, first sorted point of each row stripe;
    bounds : (n_stripes + 1,) int64 numpy array, first grid row of each stripe.
    """

    def __init__(self, k: torch.Tensor, grid_shape, width: int, device):
        n1, n2 = grid_shape
        k = k.detach().reshape(-1, 2).to(torch.float64).cpu().numpy()
        u = np.mod(k / (2 * np.pi) + 0.5, 1.0) * np.array([n1, n2], dtype=np.float64)
        bounds = _stripes(n1, width)
        stripe = np.clip(np.searchsorted(bounds, u[:, 0], side="right") - 1, 0, len(bounds) - 2)
        cbin = np.minimum(u[:, 1] // 16, n2 // 16 + 1).astype(np.int64)
        perm = np.argsort(stripe * (n2 // 16 + 2) + cbin, kind="stable")
        self.offsets = np.searchsorted(stripe[perm], np.arange(len(bounds))).astype(np.int64)
        self.bounds = bounds
        self.coords = torch.from_numpy(np.ascontiguousarray(u[perm])).to(device)
        self.perm = torch.from_numpy(perm.astype(np.int64)).to(device)


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
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.is_complex() and t.dtype not in (torch.complex64, torch.complex128):
            from ..errors import DTypeError

            raise DTypeError(f"{name} must be complex64 or complex128 ({what}), got {t.dtype}")
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
        if not _all_finite(t):
            raise ValueError(f"{name} contains NaN or Inf")
        return t

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
        lead = x.shape[:-2]
        xb = torch.resolve_conj(x).reshape(-1, H, W).contiguous()
        B = xb.shape[0]
        real = torch.float64 if x.dtype == torch.complex128 else torch.float32
        c = self._consts(x.device, real)
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
        nd = len(self.out_shape)
        lead = y.shape[: y.ndim - nd]
        yb = torch.resolve_conj(y).reshape(-1, self.n_points).contiguous()
        B = yb.shape[0]
        real = torch.float64 if y.dtype == torch.complex128 else torch.float32
        c = self._consts(y.device, real)
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
        return _NUFFTFunction.apply(x, self.traj, self, True)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Type 1: samples ``(..., *traj.shape[:-1])`` -> images ``(..., H, W)``."""
        y = self._check(y, self.out_shape, "y", "k-space samples")
        return _NUFFTFunction.apply(y, self.traj, self, False)

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
        nd = len(self.out_shape)
        lead = v.shape[: v.ndim - nd]
        vb = torch.resolve_conj(v).reshape(-1, self.n_points).contiguous()
        B = vb.shape[0]
        real = torch.float64 if v.dtype == torch.complex128 else torch.float32
        c = self._consts(torch.device("cpu"), real)
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


def _all_finite(t: torch.Tensor) -> bool:
    """No NaN or Inf in ``t`` (complex): a parallel Numba scan on the CPU, torch on the GPU."""
    if t.is_cuda or t.numel() < 4096:
        return bool(torch.isfinite(torch.view_as_real(t)).all())
    flat = torch.view_as_real(torch.resolve_conj(t)).reshape(-1)
    return nufft_cpu.count_nonfinite(flat.detach().numpy()) == 0


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
