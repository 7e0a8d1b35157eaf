"""mrct: MRI and CT reconstruction and image synthesis for torch.

Layers (each imports only the ones before it):
``mrct.kernels`` (Numba CPU/CUDA kernels on arrays) -> ``mrct.physics`` (operators and
geometries for torch) -> ``mrct.recon`` (reconstructors) -> ``mrct.synth`` (diffusion
synthesis). Beside them: ``mrct.data``, ``mrct.metrics``, ``mrct.cli``.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# torch and Numba each run an OpenMP thread pool, and by default idle OpenMP threads spin
# for a while after every parallel region. mrct alternates torch ops and Numba kernels, so on
# a few cores the spinning pool of one library steals the cores the other needs (measured on
# 2 cores: one A + A^T of a 64 x 64 Radon 24 ms spinning vs 1.9 ms passive). Passive waiting
# costs microseconds per kernel launch. An explicit setting by the user wins; OpenMP reads
# the variable when a runtime loads, so it covers Numba's pool always and torch's when mrct
# is imported before torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Numba's threading layer: TBB when it loads (thread- and fork-safe: kernels may run from
# several threads and in fork-ed DataLoader workers), else Numba's default; the user's
# NUMBA_THREADING_LAYER wins. Must run before any kernel; see mrct/_threading.py.
from mrct import _threading  # noqa: E402

_threading.configure()

try:
    __version__ = version("mrct")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

from mrct.errors import MrctError  # noqa: E402  (after the environment set-up above)

__all__ = ["MrctError", "__version__"]
