"""Numba kernels on plain arrays: CPU (``njit(parallel=True)``) and CUDA (``numba.cuda``).

No torch here. Operators in :mod:`mrct.physics` call these kernels.
"""

__all__: list[str] = []
