"""The typer application that every command module registers on, and the one way commands
turn library errors into a one-line message with exit status 2 (:func:`fail_on`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click
import typer

from .. import __version__

__all__ = ["BAD_INPUT", "app", "synth_app", "fail_on", "one_line"]

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


#: exceptions that mean "mrct cannot do this with this input or on this machine" (status 2)
BAD_INPUT: tuple[type[BaseException], ...] = (
    ValueError,  # mrct.MrctError and every reader / shape / dtype check
    TypeError,
    OSError,  # missing, unreadable or unwritable files (FileNotFoundError, PermissionError, ...)
    EOFError,
    KeyError,
    RuntimeError,  # torch: shapes that do not fit a model, CUDA not available
    ImportError,  # an optional package that is not installed
    MemoryError,
)


def one_line(command: str, err: BaseException) -> str:
    """``mrct COMMAND: message`` on one line, with a hint at what to do."""
    from ..errors import OutputExistsError, ReadError

    msg = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, MemoryError):
        msg = f"not enough memory ({msg}); use smaller inputs or a machine with more memory"
    elif isinstance(err, ImportError):
        msg = f"{msg}; install the missing package (see the README's extras)"
    elif isinstance(err, KeyError):
        msg = f"missing key {msg}"
    if not isinstance(err, (OutputExistsError, ReadError, OSError, MemoryError, ImportError)):
        msg += f" (`mrct {command} --help` shows the options)"
    return f"mrct {command}: {msg}"


@contextlib.contextmanager
def fail_on(command: str, *errors: type[BaseException]) -> Iterator[None]:
    """Turn any error raised inside the block into one line on stderr, never a traceback.

    Bad input (``errors``, by default :data:`BAD_INPUT`: mrct's own ``MrctError`` and the
    ``ValueError``, ``OSError``, ... of the libraries below) gives ``mrct COMMAND: message``
    and exit status 2; anything else is a bug, reported on one line with exit status 1
    (``MRCT_DEBUG=1`` shows its traceback instead). typer's own exits pass through."""
    import os

    try:
        yield
    except (typer.Exit, click.exceptions.ClickException, click.exceptions.Abort):
        raise
    except KeyboardInterrupt:
        typer.echo(f"mrct {command}: interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as e:
        if os.environ.get("MRCT_DEBUG"):
            raise
        if isinstance(e, errors or BAD_INPUT):
            typer.echo(one_line(command, e), err=True)
            raise typer.Exit(2) from None
        typer.echo(
            f"mrct {command}: internal error {type(e).__name__}: {' '.join(str(e).split())} "
            "(a bug: please report it; MRCT_DEBUG=1 shows the traceback)",
            err=True,
        )
        raise typer.Exit(1) from None


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
