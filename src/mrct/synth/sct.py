"""The synthetic-CT models shipped with mrct (``mrct/synth/weights``) and how a checkpoint of
one is loaded. The ``mrct synth sct`` job that uses them is :mod:`mrct.jobs.sct`."""

from __future__ import annotations

from pathlib import Path

__all__ = ["TASKS", "METHODS", "WEIGHTS", "shipped_model", "load_sct_model"]

TASKS = ("mri", "cbct")
METHODS = ("diffusion", "unet")
WEIGHTS = Path(__file__).parent / "weights"


def shipped_model(task: str, method: str = "diffusion") -> Path | None:
    """The shipped checkpoint for ``task`` ("mri" | "cbct") and ``method`` ("diffusion" |
    "unet"), or None when none is shipped."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    p = WEIGHTS / f"sct-{task}-{method}.safetensors"
    return p if p.is_file() else None


def load_sct_model(path: str | Path, task: str | None = None, device: str = "cpu"):
    """Load a ConditionalDiffusion or SCTUNet checkpoint (:func:`mrct.training.load_model`,
    by the class stored in the file); check its task when recorded."""
    from ..training import load_model
    from .diffusion import ConditionalDiffusion
    from .regression import SCTUNet

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model checkpoint {path} does not exist")
    try:
        model = load_model(path, device=device)
    except ValueError as e:  # CheckpointError included
        raise ValueError(f"{path} is not a ConditionalDiffusion or SCTUNet checkpoint: {e}") from e
    if not isinstance(model, (ConditionalDiffusion, SCTUNet)):
        raise ValueError(f"{path} is not a ConditionalDiffusion or SCTUNet checkpoint (it holds "
                         f"a {type(model).__name__})")  # fmt: skip
    mtask = (model.info or {}).get("task")
    if task is not None and mtask is not None and mtask != task:
        raise ValueError(f"{path} is a model for task {mtask!r}, not {task!r}")
    return model
