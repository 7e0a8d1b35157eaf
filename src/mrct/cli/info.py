"""``mrct info``: what mrct sees of the machine."""

from __future__ import annotations

import json

import typer

from ._app import app, fail_on


@app.command()
def info(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")):
    """Versions, Numba threads, CUDA availability and the CUDA simulator state."""
    from ..info import format_info, system_info

    with fail_on("info"):
        data = system_info()
    typer.echo(json.dumps(data, indent=2) if as_json else format_info(data))
