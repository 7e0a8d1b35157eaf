"""Numba's threading layer: fork-safe and thread-safe where possible (docs/conventions.md).

Numba runs ``parallel=True`` kernels on one of three thread pools, chosen once per process at
the first parallel launch:

========== =========== ========= ==================================================
layer      thread-safe fork-safe
========== =========== ========= ==================================================
tbb        yes         yes       needs the ``tbb`` package (a dependency of mrct where
                                 wheels exist)
omp        yes         no        GNU OpenMP: a process forked after a kernel ran is
                                 killed ("fork() called from a process already
                                 using GNU OpenMP, this is unsafe")
workqueue  no          yes       aborts the process when two threads launch kernels
                                 at once
========== =========== ========= ==================================================

mrct asks for ``tbb`` when it can load it (preloading the library that ``pip install tbb``
puts in ``<prefix>/lib``, where Numba does not look by itself), so that kernels may run from
several Python threads and in ``fork``-ed ``DataLoader`` workers. Without TBB it keeps Numba's
default (OpenMP), which is thread-safe, and warns before a ``fork`` that would kill the child.
A ``NUMBA_THREADING_LAYER`` set by the user always wins.
"""

from __future__ import annotations

import os
import sys
import warnings

_TBB_NAMES = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib", "win32": "tbb12.dll"}
_TBB_MIN_INTERFACE = 12060  # Numba's requirement: TBB 2021 update 6
_chosen: str | None = None
_warned = False


def _load_tbb() -> bool:
    """Load a TBB runtime Numba can use (globally, so Numba's own lookup finds it)."""
    name = _TBB_NAMES.get(sys.platform)
    if name is None:
        return False
    import ctypes

    candidates = [
        os.path.join(sys.prefix, "lib", name),  # pip install tbb (venv, conda)
        os.path.join(sys.prefix, "Library", "bin", name),  # conda on Windows
        name,  # the loader's search path (LD_LIBRARY_PATH, system TBB)
    ]
    for cand in candidates:
        if os.sep in cand and not os.path.exists(cand):
            continue
        try:
            lib = ctypes.CDLL(cand, mode=getattr(ctypes, "RTLD_GLOBAL", 0))
            version = lib.TBB_runtime_interface_version
        except (OSError, AttributeError):
            continue
        version.restype = ctypes.c_int
        if version() >= _TBB_MIN_INTERFACE:
            return True
    return False


def configure() -> str:
    """Pick Numba's threading layer for this process (called by ``import mrct``).

    Returns the layer asked for: the user's ``NUMBA_THREADING_LAYER`` when set, else
    ``"tbb"`` when a TBB runtime loads, else ``"default"`` (Numba's choice: OpenMP, then
    workqueue). Has no effect once a Numba parallel kernel has run in this process.
    """
    global _chosen
    user = os.environ.get("NUMBA_THREADING_LAYER", "").strip().lower()
    has_tbb = (
        _load_tbb() if user in ("", "tbb", "safe", "forksafe", "threadsafe", "default") else False
    )
    layer = user or ("tbb" if has_tbb else "default")
    if not user and layer != "default":
        os.environ["NUMBA_THREADING_LAYER"] = layer  # also read by spawned workers
    numba = sys.modules.get("numba")
    if numba is not None and not user:  # imported before mrct: its config is already read
        parallel = sys.modules.get("numba.np.ufunc.parallel")
        if parallel is None or not getattr(parallel, "_is_initialized", False):
            numba.config.THREADING_LAYER = layer
    _chosen = layer
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before_fork)
    return layer


def _before_fork() -> None:
    """Warn (once) before a fork that GNU OpenMP in Numba will kill."""
    global _warned
    if _warned:
        return
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    if parallel is None or not getattr(parallel, "_is_initialized", False):
        return
    if getattr(parallel, "_threading_layer", None) != "omp" or sys.platform != "linux":
        return
    _warned = True
    warnings.warn(
        "mrct: Numba runs its kernels on GNU OpenMP, which kills a process forked after a "
        "kernel ran (e.g. DataLoader workers). Install TBB (`pip install tbb`, a dependency "
        "of mrct on x86-64) or use DataLoader(multiprocessing_context='spawn' or "
        "'forkserver').",
        RuntimeWarning,
        stacklevel=2,
    )
