"""Numba CPU kernels for parallel, fan and cone-beam projection and backprojection.

Every kernel takes C-contiguous float32 or float64 arrays with an explicit batch axis and
writes into a preallocated output, so callers (mrct.physics) can pass torch CPU tensors
zero-copy. Work is split over rays (forward) or pixels (FBP backprojection) with ``prange``.

The exact adjoints use the forward kernels' own ray set-up and Joseph weights (shared code in
:mod:`.ray_math`) and are split so that every worker owns part of the output: image rows and
columns for the 2D adjoint (:func:`adjoint_2d`), slabs of slices for the cone-beam adjoint,
views for the FBP transpose. No write conflicts, atomics or per-worker buffers; the results
are the transpose of the forward matrix up to rounding. The ray-driven scatter forms are kept
(``*_scatter``) as independent references for the tests.

The kernels live in one module per idea and are re-exported here:

- :mod:`.radon_2d`: the 2D Joseph projector, its adjoint and the ray tables;
- :mod:`.radon_fbp`: the FBP backprojections and their transpose;
- :mod:`.radon_cone`: the cone-beam projector, its adjoint and FDK;
- :mod:`.radon_simd`: the LLVM vector intrinsics of the fast paths;
- :mod:`.radon_cpu_common`: :mod:`.ray_math` compiled for the CPU and shared helpers.
"""

from __future__ import annotations

# the ``name as name`` imports are served here too, outside __all__ (tests, benchmarks,
# mrct.physics)
from .radon_2d import adjoint_2d, forward_2d
from .radon_2d import adjoint_2d_scatter as adjoint_2d_scatter
from .radon_2d import ray_soa_2d as ray_soa_2d
from .radon_2d import ray_table_2d as ray_table_2d
from .radon_cone import adjoint_cone, backproject_fdk, forward_cone
from .radon_cone import adjoint_cone_scatter as adjoint_cone_scatter
from .radon_fbp import backproject_fbp_2d, backproject_fbp_2d_transpose, backproject_parallel_2d
from .radon_fbp import backproject_flat_2d as backproject_flat_2d

__all__ = [
    "forward_2d",
    "adjoint_2d",
    "backproject_fbp_2d",
    "backproject_parallel_2d",
    "backproject_fbp_2d_transpose",
    "forward_cone",
    "adjoint_cone",
    "backproject_fdk",
]
