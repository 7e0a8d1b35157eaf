"""Compile options and the launch helper shared by the kernel modules.

``inline`` compiles the per-point and per-ray helpers of the CPU kernels (inlined into each
kernel at Numba IR level, so a helper costs no call); ``PARALLEL`` holds the options of the
parallel CPU kernels (cached on disk, see the kernel modules' notes on ``make clean-cache``);
:func:`cuda_launch` starts a 1D CUDA grid.
"""

from __future__ import annotations

import math

from numba import njit

__all__ = ["PARALLEL", "cuda_launch", "inline"]

inline = njit(fastmath=True, nogil=True, inline="always")

PARALLEL = dict(parallel=True, fastmath=True, nogil=True, cache=True)


def cuda_launch(kernel, n, threads, stream, *args):
    """Run ``kernel(*args)`` on ``ceil(n / threads)`` blocks of ``threads`` threads, on
    ``stream`` when it is not None; nothing when ``n == 0``."""
    if n == 0:
        return
    cfg = (math.ceil(n / threads), threads) + (() if stream is None else (stream,))
    kernel[cfg](*args)
