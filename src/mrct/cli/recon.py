"""``mrct recon``: reconstruct one input file with one method (:mod:`mrct.jobs.recon`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..jobs.recon import ReconMethod
from ._app import app, fail_on


@app.command()
def recon(
    input: Path = typer.Argument(
        None, help="Sinogram or radial k-space: .npy, or .npz with key 'sinogram' or 'kspace'."
    ),
    simulate: Path = typer.Option(
        None,
        help="Instead of INPUT: an image (.npy, .npz key 'image', .dcm, .nii[.gz]; HU for CT) "
        "simulated as the models' training data; prints SSIM/PSNR/NMSE vs the reference.",
    ),
    photons: float = typer.Option(
        None, min=1.0, help="With --simulate, CT: Poisson noise at this many photons per bin."
    ),
    method: ReconMethod = typer.Option(..., "--method", "-m", help="Reconstruction method."),
    task: str = typer.Option("ct", help="ct (fan-beam sinogram) or mri (radial k-space)."),
    sparsity: int = typer.Option(
        16, min=1, help="Every N-th of 360 CT views / 512 MRI spokes was acquired."
    ),
    iters: int = typer.Option(
        None,
        "--iters",
        "--tv-iters",
        min=1,
        help="Iterations of tv-pdhg / sirt / cgls (default 100 / 200 / 30).",
    ),
    lam: float = typer.Option(
        None, min=0.0, help="TV weight relative to the image scale (default 0.02 ct, 0.1 mri)."
    ),
    out: str = typer.Option(
        None,
        "--out",
        "-o",
        help="Output path without suffix, or a folder (default: INPUT's folder/<stem>_<method>).",
    ),
    png: bool = typer.Option(True, "--png/--no-png", help="Also write a PNG preview."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
):
    """Reconstruct a sparse-view CT sinogram or undersampled radial MRI k-space with one
    method: fbp (Hann), tv-pdhg, sirt, cgls, or the shipped fbpconvnet, lpd and pdunet models.

    CT: fan-beam sinograms (B, views, 511) in the Primal-Dual UNet paper's geometry, every
    SPARSITY-th of 360 views (23 views for 16), attenuation per pixel (water 0.02). MRI:
    complex radial k-space (B, spokes, 363) from the equidistant 512-spoke trajectory, every
    SPARSITY-th spoke (32 for 16), or its real sinogram; intensities / 255. Writes the
    256 x 256 image(s) as .npy, .nii.gz (1 mm pixels) and .png. With --simulate IMAGE, your
    image is turned into such data (mrct.recon.simulate), reconstructed and scored."""
    from ..jobs.recon import run_recon
    from ..jobs.recon_simulate import run_simulated

    with fail_on("recon"):
        if (input is None) == (simulate is None):
            raise ValueError("give either INPUT (a sinogram / k-space file) or --simulate IMAGE")
        if simulate is not None:
            run_simulated(simulate, method.value, task, sparsity, iters=iters, lam=lam, out=out,
                          png=png, device=device, photons=photons, overwrite=force,
                          log=typer.echo)  # fmt: skip
            return
        run_recon(input, method.value, task, sparsity, iters=iters, lam=lam, out=out, png=png,
                  device=device, overwrite=force, log=typer.echo)  # fmt: skip
