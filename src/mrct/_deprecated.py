"""Thin re-export modules for import paths that moved (kept for one release).

An old module such as ``mrct.recon_cli`` is a few lines::

    from ._deprecated import moved
    __getattr__, __dir__ = moved(__name__, "mrct.jobs.recon")

Importing it warns once with a ``DeprecationWarning`` naming the new path, and every name of
the new module (private ones included) is served from there, so ``from mrct.recon_cli import
run_recon`` and ``mrct.recon_cli.run_recon`` keep working.
"""

from __future__ import annotations

import importlib
import warnings

__all__ = ["moved", "warn_moved"]


def warn_moved(old: str, new: str, stacklevel: int = 3) -> None:
    """Warn that ``old`` moved to ``new`` and will be removed in the next release."""
    warnings.warn(f"{old} is deprecated and will be removed in the next release; use {new}",
                  DeprecationWarning, stacklevel=stacklevel)  # fmt: skip


def moved(old: str, new: str, *more: str):
    """``(__getattr__, __dir__)`` for the module ``old`` that now lives at ``new`` (names not
    found there are looked up in ``more``, in order); warns."""
    warn_moved(old, new, stacklevel=4)
    targets = [importlib.import_module(m) for m in (new, *more)]

    def __getattr__(name: str):
        for target in targets:
            if hasattr(target, name):
                return getattr(target, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    def __dir__():
        return sorted({n for t in targets for n in dir(t)})

    return __getattr__, __dir__
