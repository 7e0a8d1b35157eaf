"""Compile every CPU kernel signature that users hit, once per machine (``mrct warmup``).

mrct's Numba kernels cache their machine code on disk (``cache=True``), so only the first
process on a machine pays for compilation; this pays it up front, e.g. right after
``pip install`` (``make demo`` and ``make test`` run it in their set-up). It calls the public
operators on tiny inputs, so it compiles exactly the signatures real calls use (array sizes do
not matter to Numba, dtypes and dimensions do):

* ``Radon``: parallel, fan (flat and arc) and cone beam; forward, adjoint and FBP / FDK;
  float32 and float64;
* ``NUFFT``: forward and adjoint, complex64 and complex128, at ``eps`` 1e-6 (the default),
  1e-4 and 1e-2 (different kernel widths);
* ``DRR``: the siddon and trilinear renderers.

Where the cache lives: next to the installed ``.py`` files (``__pycache__``), or in
``NUMBA_CACHE_DIR`` when that is set. For a read-only installation (a system site-packages,
a container image) set ``NUMBA_CACHE_DIR`` to a writable folder for every process, warm up
once with the same setting (``NUMBA_CACHE_DIR=/opt/mrct-cache mrct warmup``), and keep it.
The cache is valid for one CPU model, Numba version and mrct source; a changed kernel file
compiles anew on its first call.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["warmup", "warmup_tasks"]


def _radon_tasks() -> list[tuple[str, Callable[[], object]]]:
    import numpy as np
    import torch

    from .physics import ConeBeam, FanBeam, ParallelBeam, Radon

    angles = np.linspace(0.0, np.pi, 4, endpoint=False)
    full = np.linspace(0.0, 2 * np.pi, 4, endpoint=False)
    geos = {
        "parallel": (lambda: ParallelBeam(angles, 12, 1.0), (8, 8)),
        "fan": (
            lambda: FanBeam(full, 12, 1.0, source_distance=40.0, detector_distance=20.0),
            (8, 8),
        ),
        "fan-arc": (
            lambda: FanBeam(
                full, 12, 1.0, source_distance=40.0, detector_distance=20.0, detector="arc"
            ),  # fmt: skip
            (8, 8),
        ),
        "cone": (
            lambda: ConeBeam(full, (6, 12), 1.0, source_distance=40.0, detector_distance=20.0),
            (4, 8, 8),
        ),
    }
    tasks = []
    for name, (make, shape) in geos.items():
        for dtype in (torch.float32, torch.float64):

            def run(make=make, shape=shape, dtype=dtype):
                op = Radon(make(), shape)
                x = torch.rand(shape, dtype=dtype)
                y = op(x)
                op.adjoint(y)
                op.fbp(y)  # FDK for cone beam

            tasks.append((f"Radon {name} {str(dtype)[6:]}", run))
    return tasks


def _nufft_tasks() -> list[tuple[str, Callable[[], object]]]:
    import torch

    from .physics import NUFFT, radial_trajectory

    tasks = []
    for eps in (1e-6, 1e-4, 1e-2):
        for dtype in (torch.complex64, torch.complex128):
            real = torch.float32 if dtype == torch.complex64 else torch.float64

            def run(eps=eps, dtype=dtype, real=real):
                op = NUFFT(radial_trajectory(4, 16, dtype=real), (8, 8), eps=eps)
                y = op(torch.rand(8, 8, dtype=real).to(dtype))
                op.adjoint(y)

            tasks.append((f"NUFFT eps {eps:g} {str(dtype)[6:]}", run))
    return tasks


def _drr_tasks() -> list[tuple[str, Callable[[], object]]]:
    import numpy as np

    from .physics.drr import DRR

    vol = np.full((6, 8, 8), 40.0, np.float32)
    tasks = []
    for renderer in ("siddon", "trilinear"):

        def run(renderer=renderer):
            DRR(vol, (2.0, 2.0, 2.0), height=8, width=8, renderer=renderer)(view="ap")

        tasks.append((f"DRR {renderer}", run))
    return tasks


def warmup_tasks() -> list[tuple[str, Callable[[], object]]]:
    """``(name, function)`` for every CPU kernel family and signature :func:`warmup` runs."""
    return _radon_tasks() + _nufft_tasks() + _drr_tasks()


def warmup(progress: bool = True, log: Callable[[str], None] | None = None) -> dict[str, float]:
    """Compile (or load from the disk cache) every CPU kernel signature users hit.

    Returns ``{task name: seconds}``. A task that fails is reported through ``log`` (and
    the ``logging`` module) and skipped: the others still compile. ``progress``: a tqdm bar.
    The first call on a machine takes a few minutes on 2 cores; later ones, in any process,
    take about a second (the kernels load from the cache).
    """
    import logging

    import torch
    from tqdm.auto import tqdm

    logger = logging.getLogger(__name__)
    log = log or logger.info
    times: dict[str, float] = {}
    tasks = warmup_tasks()
    with torch.no_grad():
        for name, fn in tqdm(tasks, desc="mrct warmup", unit="kernel", disable=not progress):
            t0 = time.perf_counter()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - report and go on with the others
                logger.warning("warmup %s failed: %s", name, e)
                log(f"{name}: failed ({type(e).__name__}: {e})")
                continue
            times[name] = time.perf_counter() - t0
    return times
