"""``mrct warmup``: compile every CPU kernel once per machine (:func:`mrct.warmup.warmup`)."""

from __future__ import annotations

import typer

from ._app import app, fail_on


@app.command()
def warmup(
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
):
    """Compile every CPU kernel signature users hit (Radon parallel / fan / cone forward,
    adjoint and FBP / FDK in float32 and float64, NUFFT forward and adjoint in complex64 and
    complex128 at three accuracies, DRR siddon and trilinear) into Numba's disk cache, so
    that no later process waits for compilation. Run it once after installing or upgrading
    mrct; for a read-only installation set NUMBA_CACHE_DIR to a writable folder, here and for
    every later process. Takes minutes the first time, about a second after."""
    import os
    import time

    from ..warmup import warmup as run_warmup

    with fail_on("warmup"):
        t0 = time.perf_counter()
        times = run_warmup(progress=progress, log=typer.echo)
    where = os.environ.get("NUMBA_CACHE_DIR") or "beside the installed kernels (__pycache__)"
    typer.echo(f"{len(times)} kernel sets ready in {time.perf_counter() - t0:.1f} s; "
               f"cache: {where}")  # fmt: skip
