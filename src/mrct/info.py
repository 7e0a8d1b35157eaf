"""What mrct sees of this machine: versions, threads, CUDA and the CUDA simulator."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version

__all__ = ["system_info", "format_info"]

PACKAGES = (
    "mrct",
    "torch",
    "numpy",
    "scipy",
    "numba",
    "llvmlite",
    "sigpy",
    "diffusers",
    "h5py",
    "nibabel",
    "pydicom",
    "jax",
)


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def system_info() -> dict:
    """Collect versions, thread counts and the CUDA state as a plain dict.

    CUDA is reported twice because torch and Numba find the driver independently; the
    simulator flag is Numba's ``NUMBA_ENABLE_CUDASIM`` (CUDA kernels then run in Python on the
    CPU, for testing).
    """
    import numba
    import torch
    from numba import cuda

    info: dict = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": {name: _version(name) for name in PACKAGES},
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": numba.config.THREADING_LAYER,
        "torch_threads": torch.get_num_threads(),
        "cuda_simulator": bool(numba.config.ENABLE_CUDASIM),
        "torch_cuda_available": torch.cuda.is_available(),
        "torch_cuda_version": torch.version.cuda,
        "numba_cuda_available": False,
        "gpus": [],
    }
    # under the simulator numba.cuda.is_available() is always True: report the real device
    if not info["cuda_simulator"]:
        try:
            info["numba_cuda_available"] = bool(cuda.is_available())
        except Exception:  # a broken driver must not break `mrct info`
            info["numba_cuda_available"] = False
    if info["torch_cuda_available"]:
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def format_info(info: dict) -> str:
    """Human-readable text of :func:`system_info`."""
    lines = [f"python       {info['python']} ({info['platform']})"]
    lines += [f"{name:<12} {ver}" for name, ver in info["packages"].items()]
    lines += [
        f"cpu cores    {info['cpu_count']}",
        f"numba threads {info['numba_threads']} (layer: {info['numba_threading_layer']})",
        f"torch threads {info['torch_threads']}",
        f"CUDA (torch) {'available' if info['torch_cuda_available'] else 'not available'}"
        + (f", CUDA {info['torch_cuda_version']}" if info["torch_cuda_version"] else ", CPU build"),
        f"CUDA (numba) {'available' if info['numba_cuda_available'] else 'not available'}",
        f"CUDA simulator {'on' if info['cuda_simulator'] else 'off'} (NUMBA_ENABLE_CUDASIM)",
    ]
    if info["gpus"]:
        lines += [f"GPU {i}        {name}" for i, name in enumerate(info["gpus"])]
    return "\n".join(lines)
