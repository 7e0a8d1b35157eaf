"""The typer application that every command module registers on, and the one way commands
turn library errors into a one-line message with exit status 2 (:func:`fail_on`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from .. import __version__

__all__ = ["app", "synth_app", "fail_on"]

app = typer.Typer(
    name="mrct",
    help="MRI and CT reconstruction and image synthesis. `mrct JOB --help` shows a job's options.",
    no_args_is_help=True,
    add_completion=False,
)
synth_app = typer.Typer(
    help="Image synthesis with diffusion models: synthetic CT from MRI or CBCT.",
    no_args_is_help=True,
)


@contextlib.contextmanager
def fail_on(command: str, *errors: type[BaseException]) -> Iterator[None]:
    """Turn ``errors`` raised inside the block into ``mrct COMMAND: message`` on stderr and
    exit status 2 (bad input, not a crash); anything else keeps its traceback."""
    try:
        yield
    except errors as e:
        typer.echo(f"mrct {command}: {e}", err=True)
        raise typer.Exit(2) from None


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
