"""``mrct dehaze``: ultrasound dehazing by joint posterior sampling (:mod:`mrct.jobs.dehaze`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app, fail_on


@app.command()
def dehaze(
    input: Path = typer.Argument(..., help="RF frames (npy, h5) or B-mode (npy, png, nii, dcm)."),
    out: Path = typer.Option(Path("dehaze_out"), "-o", "--out", help="Output folder."),
    strength: float = typer.Option(1.0, help="Dehazing strength gamma (haze weight)."),
    domain: str = typer.Option("rf", help="rf (beamformed RF frames) or bmode."),
    steps: int = typer.Option(200, min=1, help="Sampler steps."),
    tau: float = typer.Option(0.8, min=0.01, max=1.0, help="CCDF start time in (0, 1]."),
    tissue_prior: str = typer.Option(None, help="Tissue prior: a .safetensors file or name."),
    haze_prior: str = typer.Option(None, help="Haze prior: a .safetensors file or name."),
    seed: int = typer.Option(0, help="Random seed."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
):
    """Remove multipath haze; write dehazed.npy, haze.npy and before_after.png."""
    from ..jobs.dehaze import run_dehaze

    with fail_on("dehaze"):
        run_dehaze(input, out, strength=strength, domain=domain, n_steps=steps, tau=tau,
                   tissue_prior=tissue_prior, haze_prior=haze_prior, seed=seed,
                   progress=True, overwrite=force, log=typer.echo)  # fmt: skip
