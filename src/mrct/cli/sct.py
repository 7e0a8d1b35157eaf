"""``mrct synth sct``: synthetic CT from MRI or CBCT (:mod:`mrct.jobs.sct`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import fail_on, synth_app


@synth_app.command("sct")
def synth_sct(
    input: Path = typer.Option(..., "--input", "-i", help="MRI or CBCT volume (.nii / .nii.gz)."),
    task: str = typer.Option(..., "--task", help="mri (MRI -> CT) or cbct (CBCT -> CT)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output sCT (.nii / .nii.gz), HU."),
    model: Path = typer.Option(
        None,
        help="Trained ConditionalDiffusion or SCTUNet checkpoint (.safetensors); default: the "
        "shipped model of --method.",
    ),
    method: str = typer.Option(
        "unet",
        help="Shipped model to use without --model: unet (the more accurate in docs/results.md, "
        "milliseconds per slice) or diffusion (DDIM sampling).",
    ),
    steps: int = typer.Option(50, "--steps", min=1, help="DDIM sampling steps."),
    seed: int = typer.Option(0, "--seed", min=0, help="Sampling seed (same seed, same sCT)."),
    mask: Path = typer.Option(
        None, "--mask", help="Body mask on the input's grid; outside set to -1024 HU."
    ),
    batch_size: int = typer.Option(8, min=1, help="Slices per sampling batch."),
    guidance_scale: float = typer.Option(1.0, help="Classifier-free guidance weight."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
):
    """Synthetic CT from an MRI or CBCT NIfTI volume, slice by slice (2.5D when the model was
    trained so), written as NIfTI in HU with the input's affine. Without --model, the
    weights shipped with mrct (64 x 64 models trained on simulated chest data by
    scripts/train_sct.py; see docs/synth.md); nothing is downloaded."""
    from ..jobs.sct import run_sct

    with fail_on("synth sct"):
        run_sct(input, task, out, model=model, method=method, steps=steps, seed=seed,
                mask=mask, batch_size=batch_size, guidance_scale=guidance_scale, device=device,
                progress=True, overwrite=force, log=typer.echo)  # fmt: skip
