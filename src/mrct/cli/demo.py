"""``mrct demo``: the main job (:func:`mrct.jobs.demo.run_demo`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app, fail_on


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_out"), help="Folder for metrics.json and comparison.png."),
    ct_slices: int = typer.Option(4, min=1, help="Held-out CT slices to reconstruct."),
    mri_slices: int = typer.Option(1, min=0, help="Held-out radial MRI slices (0: no MRI)."),
    tv_iters: int = typer.Option(100, min=1, help="TV-PDHG iterations."),
    progress: bool = typer.Option(True, help="Progress bars."),
    force: bool = typer.Option(
        False, "--force", help="Overwrite metrics.json and comparison.png in OUT."
    ),
):
    """The main job: sparse-view CT (23 of 360 fan-beam views) and radial MRI (32 of 512
    spokes) reconstructed by FBP, TV-PDHG, FBPConvNet, Learned Primal-Dual and the
    Primal-Dual UNet (shipped weights), with a metrics table (SSIM, PSNR, NMSE), metrics.json
    and a comparison figure (PNG). Uses ../shared/data when present, else built-in phantoms."""
    from ..jobs.demo import run_demo

    with fail_on("demo"):
        summary = run_demo(out, n_ct=ct_slices, n_mri=mri_slices, tv_iters=tv_iters,
                           progress=progress, overwrite=force, log=typer.echo)  # fmt: skip
    typer.echo(f"wrote {', '.join(str(p) for p in summary['files'])}")
