"""Numba kernels on plain arrays: CPU (``njit(parallel=True)``) and CUDA (``numba.cuda``).

No torch here. Operators in :mod:`mrct.physics` call these kernels.
"""

import numpy as _np

# numba-cuda <= 0.30 registers an overload for ``np.row_stack`` when numba.cuda's array
# support loads; numpy 2.5 removed that alias of ``np.vstack``, so the import fails there
# (seen on an H200 with numpy 2.5.2 and numba-cuda 0.30.4). Restore the alias for it.
if not hasattr(_np, "row_stack"):
    _np.vstack = _np.vstack

__all__: list[str] = []
