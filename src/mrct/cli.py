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
    out: Path = typer.Option(Path("demo_out"), help="Folder for the figures and metrics."),
    size: int = typer.Option(256, min=32, max=1024, help="Image size in pixels (size x size)."),
    views: int = typer.Option(360, min=8, help="Number of projection views."),
):
    """The main job on built-in data: Shepp-Logan phantom -> CT projections -> FBP and SIRT
    reconstruction from full and sparse views, with metrics (JSON) and figures (PNG)."""
    from .demo import run_demo

    summary = run_demo(out, size=size, n_views=views)
    for line in summary["lines"]:
        typer.echo(line)
    typer.echo(f"wrote {', '.join(str(p) for p in summary['files'])}")


if __name__ == "__main__":  # pragma: no cover
    app()
