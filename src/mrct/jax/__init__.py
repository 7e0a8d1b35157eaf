"""JAX bindings: mrct's operators as jit-, grad- and vmap-able JAX functions.

Install with ``pip install mrct[jax]``. Every operator factory returns an object ``op`` with
``op(x)``, ``op.adjoint(y)`` (also ``op.T(y)``) and, for CT, ``op.fbp(y)``:

* :func:`radon` - parallel, fan and cone-beam X-ray transforms (Numba kernels on the host);
* :func:`nufft` - the 2D NUFFT (type 2 forward, type 1 adjoint; Toeplitz normal operator);
* :func:`cartesian`, :func:`sense` - masked centred FFTs, single and multi-coil (plain jnp);
* :func:`drr` - digitally reconstructed radiographs of a CT volume;
* :mod:`mrct.jax.recon` - TV-regularised CT (PDHG) and CG-SENSE written with ``jax.lax`` loops.

Host-kernel operators are one JAX primitive with exact-adjoint transpose, linear JVP and a
batching rule that makes one batched kernel call (see :mod:`mrct.jax._host` and docs/jax.md).
"""

from __future__ import annotations

from . import mri, recon
from ._operator import AdjointOperator, Operator
from .ct import Radon, radon
from .drr import DRR, drr, euler_to_matrix
from .mri import *  # noqa: F403 (re-exports mri.__all__)

__all__ = [
    "recon",
    "Operator",
    "AdjointOperator",
    "Radon",
    "radon",
    "DRR",
    "drr",
    "euler_to_matrix",
    *mri.__all__,
]
