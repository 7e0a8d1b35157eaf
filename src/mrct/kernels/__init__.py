"""Numba kernels on plain arrays: CPU (``njit(parallel=True)``) and CUDA (``numba.cuda``).

No torch here. Operators in :mod:`mrct.physics` call these kernels.
"""

import numpy as _np

# OMP_WAIT_POLICY=PASSIVE (Numba's and torch's OpenMP pools must not spin against each other)
# is set by mrct/__init__.py, which Python runs before this package on any import of it.

# numba-cuda <= 0.30 registers an overload for ``np.row_stack`` when numba.cuda's array
# support loads; numpy 2.5 removed that alias of ``np.vstack``, so the import fails there
# (seen on an H200 with numpy 2.5.2 and numba-cuda 0.30.4). Restore the alias for it.
if not hasattr(_np, "row_stack"):
    _np.row_stack = _np.vstack  # noqa: NPY201 (the fix would undo the alias)

__all__: list[str] = []
