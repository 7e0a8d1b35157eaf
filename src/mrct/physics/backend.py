"""Choosing CPU or CUDA kernels for a tensor, and handing its memory to Numba."""

from __future__ import annotations

import torch

__all__ = ["cuda_sim", "use_cuda", "kernel_array", "torch_stream", "device_arrays"]


def cuda_sim() -> bool:
    """Whether Numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1``)."""
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def use_cuda(t: torch.Tensor, backend: str) -> bool:
    """Whether ``t`` goes to the CUDA kernels under ``backend`` ("auto", "cpu" or "cuda").

    ``backend="cuda"`` with a CPU tensor runs the CUDA kernels in the simulator (tests).
    """
    if t.is_cuda:
        if backend == "cpu":
            raise ValueError(
                "backend='cpu' but the tensor is on a CUDA device; move it with .cpu()"
            )
        return True
    if backend == "cuda":
        if not cuda_sim():
            raise ValueError(
                "backend='cuda' needs CUDA tensors (or NUMBA_ENABLE_CUDASIM=1 to simulate); "
                f"got a tensor on {t.device}"
            )
        return True
    return False


def kernel_array(t: torch.Tensor):
    """The tensor's memory for a kernel: a numpy view (CPU) or a Numba device array (CUDA)."""
    if t.is_cuda:
        from numba import cuda

        return cuda.as_cuda_array(t.detach())
    return t.detach().numpy()


def torch_stream(t: torch.Tensor):
    """Numba handle of torch's current stream on ``t``'s device (None for CPU tensors)."""
    if not t.is_cuda:
        return None
    from numba import cuda

    return cuda.external_stream(torch.cuda.current_stream(t.device).cuda_stream)


def device_arrays(cache: dict, t: torch.Tensor, arrays) -> list:
    """``arrays`` (numpy) as the kernels take them on ``t``'s device, cached per device.

    On the CPU the numpy arrays themselves; on a CUDA device Numba device arrays over torch
    copies, which the cache keeps alive next to them.
    """
    key = (t.device.type, t.device.index)
    if key not in cache:
        if t.is_cuda:
            tensors = [torch.as_tensor(a, device=t.device) for a in arrays]
            cache[key] = (tensors, [kernel_array(x) for x in tensors])
        else:
            cache[key] = (None, list(arrays))
    return cache[key][1]
