"""``mrct sr``: super-resolve a dynamic MRI series (:mod:`mrct.jobs.sr`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app, fail_on


@app.command()
def sr(
    series: list[Path] = typer.Argument(
        ..., help="The dynamic series: one 4D NIfTI (x, y, z, t) or several 3D NIfTI files."
    ),
    prior: Path = typer.Option(
        ..., "--prior", "-p", help="Static high-res planning scan (3D NIfTI): the output grid."
    ),
    model: Path = typer.Option(
        None, "--model", help="SR checkpoint (safetensors of `mrct train`, DDoS-UNet or SRUNet)."
    ),
    method: str = typer.Option(
        None, "--method", "-m", help="Baseline instead of a model: trilinear, bicubic, zero-filled."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output NIfTI (.nii or .nii.gz)."),
    interp: str = typer.Option(
        "trilinear", help="How the low-res series is brought to the grid before a model."
    ),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N (for --model)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
):
    """Super-resolve a dynamic MRI series on the grid of a high-res prior scan, with a trained
    DDoS-UNet (stepwise: the prior for the first time point, then each super-resolved time
    point for the next), a UNet SR model, or an interpolation baseline. Writes a 4D NIfTI
    (x, y, z, t) on the prior's grid, atomically. See docs/sr.md."""
    from ..jobs.sr import run_sr

    with fail_on("sr"):  # CheckpointError too
        run_sr(series, prior, out, method=method, model_path=model, interp=interp,
               device=device, progress=progress, overwrite=force, log=typer.echo)  # fmt: skip
