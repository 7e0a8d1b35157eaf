"""The ``mrct`` command line. Every job has ``--help``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from . import __version__
from .recon_cli import ReconMethod

app = typer.Typer(
    name="mrct",
    help="MRI and CT reconstruction and image synthesis. `mrct JOB --help` shows a job's options.",
    no_args_is_help=True,
    add_completion=False,
)


def _version_callback(value: bool):
    if value:
        typer.echo(f"mrct {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
):
    """MRI and CT reconstruction and image synthesis for torch."""


@app.command()
def info(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")):
    """Versions, Numba threads, CUDA availability and the CUDA simulator state."""
    from .info import format_info, system_info

    data = system_info()
    typer.echo(json.dumps(data, indent=2) if as_json else format_info(data))


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_out"), help="Folder for metrics.json and comparison.png."),
    ct_slices: int = typer.Option(4, min=1, help="Held-out CT slices to reconstruct."),
    mri_slices: int = typer.Option(1, min=0, help="Held-out radial MRI slices (0: no MRI)."),
    tv_iters: int = typer.Option(100, min=1, help="TV-PDHG iterations."),
    progress: bool = typer.Option(True, help="Progress bars."),
):
    """The main job: sparse-view CT (23 of 360 fan-beam views) and radial MRI (32 of 512
    spokes) reconstructed by FBP, TV-PDHG, FBPConvNet, Learned Primal-Dual and the
    Primal-Dual UNet (shipped weights), with a metrics table (SSIM, PSNR, NMSE), metrics.json
    and a comparison figure (PNG). Uses ../shared/data when present, else built-in phantoms."""
    from .demo import run_demo

    summary = run_demo(out, n_ct=ct_slices, n_mri=mri_slices, tv_iters=tv_iters,
                       progress=progress, log=typer.echo)  # fmt: skip
    typer.echo(f"wrote {', '.join(str(p) for p in summary['files'])}")


@app.command()
def train(
    config: Path = typer.Argument(..., help="Config file (TOML or JSON), e.g. configs/smoke.toml."),
    epochs: int = typer.Option(None, min=1, help="Override the number of epochs."),
    out: Path = typer.Option(None, help="Run folder (overrides out_dir in the config)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue from the run folder's last.safetensors, if present."
    ),
    device: str = typer.Option(None, help="auto, cpu, cuda or cuda:N (overrides the config)."),
    overrides: list[str] = typer.Option(
        None, "--set", help="KEY=VALUE override, repeatable: --set lr=3e-4 --set model.depth=3."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start afresh in a used folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
):
    """Train a learned reconstructor from a config file (see configs/): builds the task with
    mrct.recon.datasets.make_task (the config's data table) and the model (its model table),
    and trains with L1/MSE loss, Adam, a cosine schedule, mixed precision on CUDA,
    safetensors checkpoints (last, best), history.json and exact resume. On several
    processes (DistributedDataParallel; batch_size is per process):

    torchrun --standalone --nproc_per_node=2 -m mrct.cli train CONFIG

    (on CPU add OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1; `torchrun ... $(which mrct) train
    CONFIG` works too)."""
    from .recon.checkpoint import CheckpointError
    from .recon.training import parse_override, train_from_config

    try:
        changes = dict(parse_override(s) for s in overrides or [])
        changes.update({"epochs": epochs, "device": device, "progress": progress})
        if out is not None:
            changes["out_dir"] = str(out)
        if resume:
            changes["resume"] = "auto"
        if overwrite:
            changes["overwrite"] = True

        def echo_epoch(trainer, record):  # one line per epoch when there are no bars
            if trainer.rank == 0 and not progress:
                vals = ", ".join(f"{k} {v:.5g}" for k, v in record.items()
                                 if k in ("train_loss", "val_loss", "lr", "time_s"))  # fmt: skip
                typer.echo(f"epoch {record['epoch']}/{trainer.config.epochs}: {vals}")

        result = train_from_config(config, changes, callbacks=[echo_epoch])
    except (FileExistsError, FileNotFoundError, ValueError, CheckpointError) as e:
        typer.echo(f"mrct train: {e}", err=True)
        raise typer.Exit(2) from None
    if result.rank != 0:
        return
    h = result.history
    if result.epochs_trained == 0:
        typer.echo(f"{result.out_dir} already holds {result.epochs_done} trained epochs")
    last = h["epochs"][-1] if h["epochs"] else {}
    summary = f"epoch {result.epochs_done}: train loss {last.get('train_loss', float('nan')):.5g}"
    if h.get("best"):
        summary += f"; best val loss {h['best']['val_loss']:.5g} (epoch {h['best']['epoch']})"
    typer.echo(summary)
    files = [p for p in (result.last_checkpoint, result.best_checkpoint) if p is not None]
    typer.echo(f"checkpoints: {', '.join(str(p) for p in files)}")
    typer.echo(f"history: {result.out_dir / 'history.json'}")


@app.command()
def recon(
    input: Path = typer.Argument(
        ..., help="Sinogram or radial k-space: .npy, or .npz with key 'sinogram' or 'kspace'."
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
):
    """Reconstruct a sparse-view CT sinogram or undersampled radial MRI k-space with one
    method: fbp (Hann), tv-pdhg, sirt, cgls, or the shipped fbpconvnet, lpd and pdunet models.

    CT: fan-beam sinograms (B, views, 511) in the Primal-Dual UNet paper's geometry, every
    SPARSITY-th of 360 views (23 views for 16), attenuation per pixel (water 0.02). MRI:
    complex radial k-space (B, spokes, 363) from the equidistant 512-spoke trajectory, every
    SPARSITY-th spoke (32 for 16), or its real sinogram; intensities / 255. Writes the
    256 x 256 image(s) as .npy, .nii.gz (1 mm pixels) and .png."""
    from .recon_cli import run_recon

    try:
        run_recon(input, method.value, task, sparsity, iters=iters, lam=lam, out=out, png=png,
                  device=device, log=typer.echo)  # fmt: skip
    except (FileNotFoundError, ValueError, TypeError) as e:
        typer.echo(f"mrct recon: {e}", err=True)
        raise typer.Exit(2) from None


@app.command()
def drr(
    volume: Path = typer.Argument(..., help="CT in HU: a NIfTI file or a DICOM series folder."),
    view: list[str] = typer.Option(
        None, "--view", help="ap, pa, lateral, right-lateral (repeatable; default ap)."
    ),
    lao: list[float] = typer.Option(
        None, "--lao", help="C-arm LAO (+) / RAO (-) angle in degrees (repeatable)."
    ),
    cranial: float = typer.Option(0.0, help="C-arm cranial (+) / caudal (-) angle (degrees)."),
    out: Path = typer.Option(Path("drr_out"), "-o", "--out", help="Output folder."),
    height: int = typer.Option(512, min=1, help="Detector rows."),
    width: int = typer.Option(None, min=1, help="Detector columns (default: height)."),
    pixel_spacing: float = typer.Option(
        None, help="Detector pixel size in mm (default: 40 cm panel)."
    ),
    sdd: float = typer.Option(1020.0, help="Source-to-detector distance (mm)."),
    sid: float = typer.Option(850.0, help="Source-to-isocentre distance (mm)."),
    renderer: str = typer.Option("siddon", help="siddon or trilinear."),
    attenuation: str = typer.Option("physical", help="HU to mu convention."),
    energy: float = typer.Option(70.0, help="Effective energy (keV)."),
    output: str = typer.Option("integral", help="integral, intensity or neglog."),
):
    """Render DRRs of a CT volume; write one PNG (windowed) and one NIfTI (values) per view."""
    import nibabel as nib
    import numpy as np
    import torch

    from .data import read_dicom_series, read_nifti
    from .io import atomic_path, save_image_png
    from .physics.drr import DRR, window

    vol = read_dicom_series(volume) if volume.is_dir() else read_nifti(volume)
    renderer_ = DRR(vol, height=height, width=width, pixel_spacing=pixel_spacing, sdd=sdd,
                    sid=sid, renderer=renderer, attenuation=attenuation, energy=energy,
                    output=output)  # fmt: skip
    jobs = [(f"lao{a:+g}_cran{cranial:+g}", dict(lao=a, cranial=cranial)) for a in lao or []]
    if view or not jobs:
        jobs = [(v, dict(view=v)) for v in (view or ["ap"])] + jobs
    dv, du = renderer_.pixel_spacing
    for name, kw in jobs:
        img = renderer_(**kw).detach().cpu().numpy().astype(np.float32)
        shown = window(torch.from_numpy(img), invert=output == "intensity").numpy()
        save_image_png(shown, out / f"drr_{name}.png", vmin=0.0, vmax=1.0)
        nii = nib.Nifti1Image(img.T[:, :, None], np.diag([du, dv, 1.0, 1.0]))  # (cols, rows, 1)
        with atomic_path(out / f"drr_{name}.nii") as tmp:
            nib.save(nii, tmp)
        typer.echo(f"{name}: {out / f'drr_{name}.png'}, {out / f'drr_{name}.nii'}")


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
):
    """Super-resolve a dynamic MRI series on the grid of a high-res prior scan, with a trained
    DDoS-UNet (stepwise: the prior for the first time point, then each super-resolved time
    point for the next), a UNet SR model, or an interpolation baseline. Writes a 4D NIfTI
    (x, y, z, t) on the prior's grid, atomically. See docs/sr.md."""
    from .recon.checkpoint import CheckpointError
    from .sr_cli import run_sr

    try:
        run_sr(series, prior, out, method=method, model_path=model, interp=interp,
               device=device, progress=progress, log=typer.echo)  # fmt: skip
    except (FileNotFoundError, ValueError, TypeError, CheckpointError) as e:
        typer.echo(f"mrct sr: {e}", err=True)
        raise typer.Exit(2) from None


synth_app = typer.Typer(
    help="Image synthesis with diffusion models: synthetic CT from MRI or CBCT.",
    no_args_is_help=True,
)
app.add_typer(synth_app, name="synth")


@synth_app.command("sct")
def synth_sct(
    input: Path = typer.Option(..., "--input", "-i", help="MRI or CBCT volume (.nii / .nii.gz)."),
    task: str = typer.Option(..., "--task", help="mri (MRI -> CT) or cbct (CBCT -> CT)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output sCT (.nii / .nii.gz), HU."),
    model: Path = typer.Option(
        None,
        "--model",
        help="Trained ConditionalDiffusion or SCTUNet checkpoint (.safetensors); default: the "
        "shipped model of --method.",
    ),
    method: str = typer.Option(
        "unet",
        "--method",
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
):
    """Synthetic CT from an MRI or CBCT NIfTI volume, slice by slice (2.5D when the model was
    trained so), written as NIfTI in HU with the input's affine. Without --model, the
    weights shipped with mrct (64 x 64 models trained on simulated chest data by
    scripts/train_sct.py; see docs/synth.md); nothing is downloaded."""
    from .synth.sct_cli import run_sct

    try:
        run_sct(input, task, out, model=model, method=method, steps=steps, seed=seed,
                mask=mask, batch_size=batch_size, guidance_scale=guidance_scale, device=device,
                progress=True, log=typer.echo)  # fmt: skip
    except (FileNotFoundError, ValueError, TypeError) as e:
        typer.echo(f"mrct synth sct: {e}", err=True)
        raise typer.Exit(2) from None


if __name__ == "__main__":  # pragma: no cover
    app()
