"""``python -m mrct.cli`` (and ``torchrun -m mrct.cli train CONFIG``)."""

from . import app

app()
