"""Centre-of-k-space truncation: the low-resolution acquisition of dynamic MRI.

A dynamic MRI series trades spatial for temporal resolution by acquiring only the centre of
k-space. :class:`KSpaceTruncation` models that acquisition, as in DDoS-UNet (Chatterjee et al.,
IEEE Access 2024, arXiv:2202.05355; the ``Center4MaskWoPad`` pattern of its code): of the
centred orthonormal 2D DFT of every slice (:func:`mrct.physics.fft2c`, over the **last two
axes**, the in-plane ones) only a centred block is kept.

Conventions
-----------
* ``fraction`` is the fraction of the in-plane k-space **area** that is kept (0.25, 0.10, 0.0625
  and 0.04 in the paper; 0.04 is a theoretical acceleration of 25). Each in-plane axis of
  length ``n`` keeps ``m = max(1, floor(sqrt(fraction) * n + 0.5))`` lines (:func:`kept_lines`),
  centred on the zero frequency at index ``n // 2``: indices ``n // 2 - m // 2 ..
  n // 2 - m // 2 + m - 1``. The kept area is therefore ``fraction`` up to rounding
  (``op.kept_fraction`` gives the exact value: 51 x 51 of 256 x 256 is 3.97 % for 4 %).
* The through-plane axis (``D`` of ``(D, H, W)``) is fully sampled and untouched.
* ``forward(x)``: image ``(..., [D,] H, W)`` -> truncated k-space ``(..., [D,] h, w)``
  (complex: complex64 for complex64/float32 input, complex128 for complex128/float64), i.e.
  ``y = C F x`` with ``F`` the unitary centred in-plane DFT and ``C`` the centred crop.
  ``adjoint(y) = F^H C^T y`` zero-pads the block back to ``(H, W)`` and inverts the DFT: the
  **zero-filled** reconstruction on the full grid (:meth:`KSpaceTruncation.zero_filled`).
  Because ``F`` is unitary, ``A A^H = I`` and the adjoint is exact to rounding.
* :meth:`KSpaceTruncation.lowres` turns the truncated k-space into the low-resolution image on
  the coarse ``(h, w)`` grid (the inverse DFT of the block alone, "without padding"), scaled by
  ``sqrt(h w / (H W))`` so that intensities keep their scale (a constant image stays that
  constant). The coarse and the full grid share the centre: pixel ``h // 2`` of the coarse grid
  and pixel ``H // 2`` of the full grid are the same point (the DFT's origin), and coarse pixels
  are ``H / h`` full pixels apart.
* Baselines that bring a low-resolution image back to the full grid
  (:func:`upsample_lowres`): ``"zero-filled"`` (zero padding in k-space, i.e. sinc
  interpolation; identical to :meth:`~KSpaceTruncation.zero_filled` of the same data),
  ``"trilinear"``, ``"bilinear"``, ``"bicubic"`` and ``"nearest"`` interpolation on the grid
  alignment above, the coarse image extended periodically (as the DFT implies). Truncation
  is in-plane only, so trilinear interpolation (the paper's input to the network) equals
  bilinear interpolation of every slice and is computed that way.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

from .fft import as_complex, fftnc, ifftnc
from .operator import LinearOperator

__all__ = [
    "KSpaceTruncation",
    "kept_lines",
    "upsample_lowres",
    "UPSAMPLE_METHODS",
    "PAPER_FRACTIONS",
]

#: the k-space fractions of the DDoS-UNet paper
PAPER_FRACTIONS = (0.25, 0.10, 0.0625, 0.04)
#: methods of :func:`upsample_lowres`
UPSAMPLE_METHODS = ("zero-filled", "trilinear", "bilinear", "bicubic", "nearest")


def _check_fraction(fraction) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
        raise TypeError(f"fraction must be a real number in (0, 1], got {fraction!r}")
    f = float(fraction)
    if not math.isfinite(f) or not 0.0 < f <= 1.0:
        raise ValueError(
            f"fraction (the kept fraction of the in-plane k-space area) must be in (0, 1], "
            f"got {fraction!r}; e.g. 0.04 keeps the central 4 %"
        )
    return f


def kept_lines(n: int, fraction: float) -> int:
    """Number of central lines an axis of length ``n`` keeps: ``sqrt(fraction) * n`` rounded
    half up, at least 1 (``fraction`` is the kept fraction of the 2D k-space area)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    f = _check_fraction(fraction)
    return int(min(n, max(1, math.floor(math.sqrt(f) * n + 0.5))))


def _centre_slice(n: int, m: int) -> slice:
    start = n // 2 - m // 2
    return slice(start, start + m)


def _check_shape(shape, name: str = "shape") -> tuple[int, ...]:
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be (H, W) or (D, H, W), got {shape!r}") from None
    if len(shape) not in (2, 3) or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in shape
    ):
        raise ValueError(f"{name} must be (H, W) or (D, H, W) of positive integers, got {shape}")
    return tuple(int(s) for s in shape)


def _check_tensor(x, trailing: tuple[int, ...], name: str, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not (x.is_complex() or x.is_floating_point()):
        raise TypeError(
            f"{name} must be complex (complex64/complex128) or real floating point, got {x.dtype}"
        )
    n = len(trailing)
    if x.ndim < n or tuple(x.shape[-n:]) != trailing:
        raise ValueError(
            f"{name} must have shape (..., {', '.join(map(str, trailing))}) ({what}), "
            f"got {tuple(x.shape)}"
        )
    return as_complex(x, name)


class KSpaceTruncation(LinearOperator):
    """Keep the central ``fraction`` of the in-plane k-space area (see the module docstring).

    Parameters
    ----------
    shape : (H, W) or (D, H, W)
        The full (high-resolution) image grid; the in-plane axes are the last two.
    fraction : float in (0, 1]
        Kept fraction of the in-plane k-space area; each in-plane axis keeps
        ``kept_lines(n, fraction)`` central lines. ``fraction = 1`` keeps everything
        (``forward`` is then the unitary DFT and ``adjoint(forward(x)) == x``).

    Attributes
    ----------
    image_shape : tuple
        ``shape``.
    lowres_shape : tuple
        ``(h, w)`` or ``(D, h, w)``: the shape of the truncated k-space and of the low-res image.
    kept_fraction : float
        ``h w / (H W)``, the exact kept area fraction.
    mask : Tensor
        The kept region as a 0/1 float32 ``(H, W)`` mask on the full centred k-space grid.

    Examples
    --------
    >>> A = KSpaceTruncation((256, 256), 0.04)          # 51 x 51 central lines
    >>> y = A(x)                                        # (..., 51, 51) complex k-space
    >>> x_zf = A.zero_filled(y)                         # (..., 256, 256) complex
    >>> lr = A.lowres(y).abs()                          # (..., 51, 51) low-res magnitude
    >>> x_tri = upsample_lowres(lr, (256, 256), "trilinear")
    """

    def __init__(self, shape, fraction):
        shape = _check_shape(shape)
        f = _check_fraction(fraction)
        H, W = shape[-2:]
        h, w = kept_lines(H, f), kept_lines(W, f)
        lowres_shape = (*shape[:-2], h, w)
        super().__init__(shape, lowres_shape)
        self.image_shape = shape
        self.lowres_shape = lowres_shape
        self.fraction = f
        self.kept_fraction = (h * w) / (H * W)
        self._sh, self._sw = _centre_slice(H, h), _centre_slice(W, w)
        self._scale = math.sqrt((h * w) / (H * W))

    @property
    def mask(self) -> torch.Tensor:
        H, W = self.image_shape[-2:]
        m = torch.zeros(H, W)
        m[self._sh, self._sw] = 1.0
        return m

    @property
    def ndim(self) -> int:
        """Number of image axes (2 or 3)."""
        return len(self.image_shape)

    # -- the operator -------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image ``(..., [D,] H, W)`` -> truncated centred k-space ``(..., [D,] h, w)``."""
        x = _check_tensor(x, self.image_shape, "x", "an image on the full grid")
        k = fftnc(x, (-2, -1))
        return k[..., self._sh, self._sw].contiguous()

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Truncated k-space ``(..., [D,] h, w)`` -> zero-filled image ``(..., [D,] H, W)``."""
        y = _check_tensor(y, self.lowres_shape, "y", "truncated k-space")
        full = y.new_zeros((*y.shape[:-2], *self.image_shape[-2:]))
        full[..., self._sh, self._sw] = y
        return ifftnc(full, (-2, -1))

    def normal(self) -> LinearOperator:
        from .operator import NormalOperator

        return NormalOperator(self)

    # -- helpers ------------------------------------------------------------------------
    def zero_filled(self, y: torch.Tensor) -> torch.Tensor:
        """Zero-filled reconstruction on the full grid: ``adjoint(y)`` (complex)."""
        return self.adjoint(y)

    def lowres(self, y: torch.Tensor) -> torch.Tensor:
        """The low-resolution image ``(..., [D,] h, w)`` (complex) on the coarse grid: the
        inverse DFT of the kept block, scaled by ``sqrt(h w / (H W))`` (intensity-preserving)."""
        y = _check_tensor(y, self.lowres_shape, "y", "truncated k-space")
        return ifftnc(y, (-2, -1)) * self._scale

    def lowres_to_kspace(self, image: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`lowres`: the truncated k-space of a low-res image."""
        image = _check_tensor(image, self.lowres_shape, "image", "a low-res image")
        return fftnc(image, (-2, -1)) / self._scale

    def degrade(self, x: torch.Tensor) -> torch.Tensor:
        """``lowres(forward(x))``: the low-res image ``(..., [D,] h, w)`` (complex)."""
        return self.lowres(self.forward(x))

    def extra_repr(self) -> str:
        return (
            f"image_shape={self.image_shape}, fraction={self.fraction:g}, "
            f"lowres_shape={self.lowres_shape}, kept_fraction={self.kept_fraction:.4f}"
        )


# ---------------------------------------------------------------------------------------
# baselines: low-res image -> full grid


def _grid_1d(n_out: int, n_in: int, dtype, device, pad: int = 0) -> torch.Tensor:
    """Normalised (align_corners=True) coordinates of the full-grid pixels in the coarse
    grid padded by ``pad`` on both sides, with the shared centre: full index i sits at coarse
    index (i - N//2) n/N + n//2 (within [-1/2, n - 1/2])."""
    i = torch.arange(n_out, dtype=dtype, device=device)
    u = (i - n_out // 2) * (n_in / n_out) + n_in // 2 + pad
    return 2.0 * u / (n_in + 2 * pad - 1) - 1.0


_PAD = 2  # periodic padding of the coarse image (bicubic needs two neighbours)


def _interp_real(img: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """(N, h, w) real -> (N, H, W) by grid_sample on the centred alignment, the coarse image
    extended periodically (as the DFT implies) so that the full grid's edge pixels beyond the
    last coarse pixel interpolate towards the opposite edge, not a repeated border."""
    n, h, w = img.shape
    H, W = size
    dtype = img.dtype if img.dtype in (torch.float32, torch.float64) else torch.float32
    rows = torch.arange(-_PAD, h + _PAD, device=img.device) % h
    cols = torch.arange(-_PAD, w + _PAD, device=img.device) % w
    x = img.to(dtype)[:, rows][:, :, cols][:, None]  # (N, 1, h + 4, w + 4)
    gy = _grid_1d(H, h, dtype, img.device, _PAD)
    gx = _grid_1d(W, w, dtype, img.device, _PAD)
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)  # (H, W, 2): (x, y)
    grid = grid[None].expand(n, H, W, 2)
    out = F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=True)
    return out[:, 0].to(img.dtype)


def upsample_lowres(image: torch.Tensor, shape, method: str = "trilinear") -> torch.Tensor:
    """Bring a low-resolution image ``(..., [D,] h, w)`` to the full grid ``shape``.

    Parameters
    ----------
    image : Tensor, real or complex, shape (..., h, w) or (..., D, h, w)
        E.g. ``KSpaceTruncation.lowres(y).abs()``; in-plane axes last.
    shape : (H, W) or (D, H, W)
        The full grid. ``D`` must equal the image's ``D`` (truncation is in-plane only) and
        ``H >= h``, ``W >= w``.
    method : {"zero-filled", "trilinear", "bilinear", "bicubic", "nearest"}
        ``"zero-filled"``: centred zero padding of the image's k-space (sinc interpolation;
        equals :meth:`KSpaceTruncation.zero_filled`). The others: ``torch``'s ``grid_sample``
        on the shared-centre alignment (full pixel ``i`` sits at coarse position
        ``(i - H//2) h/H + h//2``), with the coarse image extended periodically as the DFT
        implies (full pixels beyond the last coarse pixel interpolate towards the first);
        ``"trilinear"`` equals ``"bilinear"`` because the through-plane axis is not resampled.

    Returns
    -------
    Tensor, shape (..., [D,] H, W)
        Real input gives a real image (the magnitude for ``"zero-filled"``, as MR images are
        magnitudes), complex input a complex image.
    """
    if method not in UPSAMPLE_METHODS:
        raise ValueError(f"method must be one of {list(UPSAMPLE_METHODS)}, got {method!r}")
    shape = _check_shape(shape)
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if not (image.is_complex() or image.is_floating_point()):
        raise TypeError(f"image must be real floating point or complex, got {image.dtype}")
    nd = len(shape)
    if image.ndim < nd:
        raise ValueError(
            f"image must have at least {nd} axes to go to the grid {shape}, got shape "
            f"{tuple(image.shape)}"
        )
    h, w = image.shape[-2:]
    H, W = shape[-2:]
    if nd == 3 and image.shape[-3] != shape[0]:
        raise ValueError(
            f"the through-plane size must not change (truncation is in-plane): image has "
            f"D = {image.shape[-3]} (shape {tuple(image.shape)}), the grid {shape}"
        )
    if h > H or w > W:
        raise ValueError(
            f"the low-res in-plane size ({h}, {w}) must not exceed the full grid's ({H}, {W})"
        )
    lead = image.shape[:-2]
    flat = image.reshape(-1, h, w)
    if method == "zero-filled":
        k = fftnc(as_complex(flat, "image"), (-2, -1)) * math.sqrt((H * W) / (h * w))
        full = k.new_zeros((flat.shape[0], H, W))
        full[:, _centre_slice(H, h), _centre_slice(W, w)] = k
        out = ifftnc(full, (-2, -1))
        if not image.is_complex():
            out = out.abs().to(image.dtype)
        return out.reshape(*lead, H, W)
    mode = {"trilinear": "bilinear", "bilinear": "bilinear", "bicubic": "bicubic",
            "nearest": "nearest"}[method]  # fmt: skip
    if image.is_complex():
        out = torch.complex(_interp_real(flat.real, (H, W), mode),
                            _interp_real(flat.imag, (H, W), mode))  # fmt: skip
    else:
        out = _interp_real(flat, (H, W), mode)
    return out.reshape(*lead, H, W)
