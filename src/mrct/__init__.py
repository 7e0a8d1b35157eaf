"""mrct: MRI and CT reconstruction and image synthesis for torch.

Layers (each imports only the ones before it):
``mrct.kernels`` (Numba CPU/CUDA kernels on arrays) -> ``mrct.physics`` (operators and
geometries for torch) -> ``mrct.recon`` (reconstructors) -> ``mrct.synth`` (diffusion
synthesis). Beside them: ``mrct.data``, ``mrct.metrics``, ``mrct.cli``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mrct")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

__all__ = ["__version__"]
