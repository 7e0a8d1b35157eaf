"""Code named in a config as ``"package.module:name"`` (a model class or a task function).

This is how packages built on :mod:`mrct.recon` (``mrct.synth``, a user's own) plug their
models and data into ``mrct train`` without ``mrct.recon`` importing them.
"""

from __future__ import annotations

import importlib

__all__ = ["import_object"]


def import_object(spec: str, field: str):
    """The object ``name`` of ``package.module`` for ``spec = "package.module:name"``.

    ``field`` names the config entry in the error (e.g. ``"model.name"``, ``"data.task"``).
    """
    mod, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"{field} {spec!r} cannot be imported: {e}") from e
