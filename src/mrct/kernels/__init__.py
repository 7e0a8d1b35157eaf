"""Numba kernels on plain arrays: CPU (``njit(parallel=True)``) and CUDA (``numba.cuda``).

No torch here. Operators in :mod:`mrct.physics` call these kernels.
"""

import os as _os

import numpy as _np

# Numba's OpenMP thread pool (system libgomp) and torch's (its own bundled libgomp) are two
# OpenMP runtimes. With the default wait policy each keeps its idle workers spinning after a
# parallel region, so on a machine with few cores one pool starves the other whenever mrct
# alternates torch ops and Numba kernels (measured on 2 cores: a 0.2 ms torch op took 40 ms
# right after a Numba kernel, and 2-thread FBP was slower than 1-thread). Numba starts its
# pool at the first parallel launch, after this import, so a passive default here lets its
# workers sleep when idle (and torch's too, when mrct is imported before torch). An explicit
# OMP_WAIT_POLICY in the environment is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# numba-cuda <= 0.30 registers an overload for ``np.row_stack`` when numba.cuda's array
# support loads; numpy 2.5 removed that alias of ``np.vstack``, so the import fails there
# (seen on an H200 with numpy 2.5.2 and numba-cuda 0.30.4). Restore the alias for it.
if not hasattr(_np, "row_stack"):
    _np.row_stack = _np.vstack  # noqa: NPY201 (the fix would undo the alias)

__all__: list[str] = []
