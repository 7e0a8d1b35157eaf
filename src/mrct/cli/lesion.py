"""``mrct lesion``: insert a controlled lung nodule into a CT (:mod:`mrct.jobs.lesion`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app, fail_on


@app.command()
def lesion(
    ct: Path = typer.Argument(..., help="The CT (.nii / .nii.gz, HU)."),
    mask: Path = typer.Option(..., "--mask", help="Lung mask on the CT's grid (nonzero = lung)."),
    center: tuple[int, int, int] = typer.Option(
        ..., "--center", help="Nodule centre: voxel indices X Y Z of the file (0-based)."
    ),
    diameter: float = typer.Option(10.0, "--diameter", help="Diameter in mm (3-30)."),
    kind: str = typer.Option(
        "solid", "--type", help="Nodule type: solid, part-solid or ground-glass."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output image (.nii / .nii.gz, HU)."),
    mask_out: Path = typer.Option(
        None, "--mask-out", help="Output lesion mask (default OUT_lesion.nii.gz)."
    ),
    method: str = typer.Option(
        "auto",
        "--method",
        help="simulate (physical simulator), diffusion (lesion-focused diffusion inpainting) "
        "or auto (diffusion when a model is given or shipped).",
    ),
    model: Path = typer.Option(None, "--model", help="LesionDiffusion checkpoint."),
    shape: str = typer.Option(
        "simulate", "--shape", help="Lesion shape for diffusion: simulate or diffusion."
    ),
    mask_model: Path = typer.Option(None, "--mask-model", help="MaskDiffusion checkpoint."),
    steps: int = typer.Option(50, "--steps", min=1, max=300, help="Reverse diffusion steps."),
    jump_length: int = typer.Option(5, min=1, help="RePaint jump length."),
    jump_n_sample: int = typer.Option(5, min=1, help="RePaint resamplings per jump."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed (same seed, same nodule)."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
):
    """Insert a lung nodule of a chosen type, size and place into a CT and write the image and
    its lesion mask (1 solid, 2 ground glass) with the CT's affine. Outside the lesion the
    image is bit-identical to the input. See docs/synth.md."""
    from ..jobs.lesion import run_lesion

    with fail_on("lesion"):
        run_lesion(ct, mask, out, center=center, diameter=diameter, kind=kind, method=method,
                   model=model, shape=shape, mask_model=mask_model, mask_out=mask_out,
                   steps=steps, jump_length=jump_length, jump_n_sample=jump_n_sample,
                   seed=seed, device=device, progress=progress, overwrite=force,
                   log=typer.echo)  # fmt: skip
