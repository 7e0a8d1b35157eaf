"""Input checks shared by the physics operators: tensor type, dtype, trailing shape, finiteness."""

from __future__ import annotations

import torch

from ..errors import DTypeError, MrctError, ShapeError
from ..kernels import nufft_cpu

__all__ = ["REAL_FLOATS", "all_finite", "check_device", "check_real", "check_trailing",
           "flatten_batch"]  # fmt: skip

REAL_FLOATS = (torch.float32, torch.float64)


def _about(what: str | None) -> str:
    return "" if what is None else f" ({what})"


def check_trailing(t: torch.Tensor, trailing, name: str, what: str | None = None) -> None:
    """``t`` must have shape ``(..., *trailing)``; a str entry of ``trailing`` names an axis of
    any length (e.g. ``"n_samples"``)."""
    n = len(trailing)
    ok = t.ndim >= n and all(isinstance(s, str) or t.shape[t.ndim - n + i] == s
                             for i, s in enumerate(trailing))  # fmt: skip
    if not ok:
        raise ShapeError(
            f"{name} must have shape (..., {', '.join(map(str, trailing))}){_about(what)}, "
            f"got {tuple(t.shape)}"
        )


def check_real(t, trailing, name: str, what: str | None = None, check_finite: bool = True):
    """``t`` must be a float32/float64 torch tensor of shape ``(..., *trailing)`` (see
    :func:`check_trailing`), without NaN or Inf when ``check_finite``."""
    if not isinstance(t, torch.Tensor):
        raise DTypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in REAL_FLOATS:
        raise DTypeError(f"{name} must be float32 or float64{_about(what)}, got {t.dtype}")
    check_trailing(t, trailing, name, what)
    check_device(t, name)
    if check_finite and not all_finite(t):
        raise MrctError(f"{name} contains NaN or Inf")


def check_device(t: torch.Tensor, name: str) -> None:
    """mrct's kernels run on CPU and CUDA tensors only (not meta, mps, xla, ...)."""
    if t.device.type not in ("cpu", "cuda"):
        raise MrctError(
            f"{name} is on device {t.device}; mrct's kernels run on cpu or cuda tensors"
        )


def all_finite(t: torch.Tensor) -> bool:
    """No NaN or Inf in ``t`` (real or complex).

    Large CPU tensors are scanned by a parallel Numba loop, so that no torch op wakes torch's
    OpenMP pool between Numba kernels (see :mod:`mrct.kernels`); small and GPU tensors by torch.
    """
    if t.is_complex():
        t = torch.view_as_real(torch.resolve_conj(t))
    if t.device.type != "cpu" or t.numel() < 4096:
        return bool(torch.isfinite(t).all())
    return nufft_cpu.count_nonfinite(t.detach().reshape(-1).numpy()) == 0


def flatten_batch(t: torch.Tensor, n_trailing: int):
    """``(lead, flat)``: the batch dimensions of ``t`` before its ``n_trailing`` last ones, and
    ``t`` as one contiguous ``(batch, *trailing)`` tensor."""
    lead = t.shape[: t.ndim - n_trailing]
    return lead, t.reshape((-1,) + tuple(t.shape[t.ndim - n_trailing :])).contiguous()
