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
    """Load a ConditionalDiffusion or SCTUNet checkpoint; check its task when recorded."""
    from ..recon.checkpoint import read_metadata
    from .diffusion import ConditionalDiffusion
    from .regression import SCTUNet

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model checkpoint {path} does not exist")
    meta = read_metadata(path)
    extra = meta.get("extra") or {}
    kwargs = meta.get("model_kwargs") or {}
    name = str(extra.get("model", kwargs.get("name", "")))
    if name in ("sct-unet", "mrct.synth:SCTUNet") or "depth" in kwargs:
        model = SCTUNet.load(path, device)
    elif name in ("diffusion", "mrct.synth:ConditionalDiffusion") or "block_out_channels" in kwargs:
        model = ConditionalDiffusion.load(path, device)
    else:
        raise ValueError(f"{path} is not a ConditionalDiffusion or SCTUNet checkpoint")
    mtask = (model.info or {}).get("task")
    if task is not None and mtask is not None and mtask != task:
        raise ValueError(f"{path} is a model for task {mtask!r}, not {task!r}")
    return model
