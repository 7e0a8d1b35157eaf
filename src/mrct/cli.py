"""The ``mrct`` command line. Every job has ``--help``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from . import __version__

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


if __name__ == "__main__":  # pragma: no cover
    app()
