"""Which checkpoint a run resumes from: ``last.safetensors``, else the one it replaced
(``last.prev.safetensors``) when the newer one is damaged (#18 item 5)."""

from __future__ import annotations

import warnings
from pathlib import Path

from .checkpoint import CheckpointError, CheckpointInfo, load_checkpoint, previous_path

__all__ = ["load_first_good", "resume_paths"]


def resume_paths(last: Path, resume: str | None, overwrite: bool) -> list[Path]:
    """The checkpoints to resume from, best first: ``last``, then :func:`previous_path`;
    empty for a fresh run. ``resume``: None (fresh: an existing run is an error unless
    ``overwrite``), ``"auto"`` or a checkpoint (or run folder) path."""
    found = [p for p in (last, previous_path(last)) if p.exists()]
    if resume is None:
        if found and not overwrite:
            raise FileExistsError(
                f"{last.parent} already holds a run ({found[0].name}); set resume='auto' "
                "(mrct train --resume) to continue it, overwrite=True (--overwrite) to "
                "start afresh, or pick another out_dir"
            )
        return []
    if resume == "auto":
        return found
    p = Path(resume)
    if p.is_dir():
        p = p / last.name
    if not p.is_file():
        raise FileNotFoundError(f"resume checkpoint {p} does not exist")
    return [p] + [q for q in (previous_path(p),) if q.is_file()]


def load_first_good(
    paths, model, optimizer, scheduler, scaler, *, warn: bool = True
) -> tuple[Path | None, CheckpointInfo | None, bool]:
    """Load the first of ``paths`` that is intact (checksum) and fits, with the RNG states;
    warn about each damaged one. ``(path, info, whether one was skipped)``; ``(None, None,
    False)`` for no paths; a :class:`CheckpointError` naming them all when none loads."""
    paths = list(paths)
    bad: list[str] = []
    for i, path in enumerate(paths):
        try:
            info = load_checkpoint(path, model, optimizer, scheduler, scaler, restore_rng=True)
        except CheckpointError as e:
            if i == len(paths) - 1:
                if not bad:
                    raise
                raise CheckpointError(
                    "no usable checkpoint to resume from: " + "; ".join([*bad, str(e)])
                ) from e
            bad.append(str(e))
            if warn:
                warnings.warn(f"cannot resume from {path}: {e}; trying {paths[i + 1]}",
                              stacklevel=3)  # fmt: skip
            continue
        return path, info, bool(bad)
    return None, None, False
