"""The ``mrct`` command line (typer). Every command has ``--help``.

One module per command; each only parses arguments, calls one library function (mostly a job
of :mod:`mrct.jobs`) and turns mrct's errors into a one-line message with exit status 2
(:func:`mrct.cli._app.fail_on`). A new command is a new module here that registers on
``app`` (or on ``synth_app`` for ``mrct synth ...``), imported below. No library layer
imports this package.
"""

from ._app import app, synth_app

# the import order is the order of `mrct --help`
# isort: off
from . import info, demo, train, recon, drr, sr, sct, lesion, dehaze, warmup  # noqa: F401
# isort: on

app.add_typer(synth_app, name="synth")

__all__ = ["app"]
