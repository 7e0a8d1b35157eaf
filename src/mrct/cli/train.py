"""``mrct train``: train a model from a config file (:func:`mrct.recon.train_from_config`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app, fail_on


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
    overwrite: bool = typer.Option(
        False, "--overwrite", "--force", help="Start afresh in a used folder."
    ),
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
    from ..recon.train import train_from_config
    from ..training import parse_override

    with fail_on("train"):
        if resume and overwrite:
            raise ValueError(
                "--resume continues the run and --overwrite starts it afresh: give one"
            )
        changes = dict(parse_override(s) for s in overrides or [])
        # options given on the command line win over --set; unset ones leave --set alone
        changes.update({k: v for k, v in {"epochs": epochs, "device": device}.items()
                        if v is not None})  # fmt: skip
        changes["progress"] = progress
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
