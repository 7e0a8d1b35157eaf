"""Small trained reconstructors shipped with mrct, loaded offline.

Each entry of :data:`PRETRAINED` names a model class, its task (operator geometry) and a
safetensors file in ``mrct/recon/weights/``. The weights are produced by
``scripts/train_pretrained.py`` (its docstring and ``docs/results.md`` give the data, the
settings, the time and the machine); nothing is downloaded.

>>> model = mrct.recon.pretrained("pdunet-ct-sparse16")   # doctest: +SKIP
>>> image = model(sinogram)      # (B, 23, 511) -> (B, 256, 256), attenuation per pixel
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

__all__ = [
    "PRETRAINED",
    "PretrainedSpec",
    "list_pretrained",
    "load_model_file",
    "parse_name",
    "pretrained",
    "recommended",
    "RECOMMENDED",
    "weights_path",
]


@dataclass(frozen=True)
class PretrainedSpec:
    """What a shipped model is: class, task and the file holding its weights."""

    name: str
    model: str  # "pdunet" | "lpd" | "fbpconvnet"
    task: str  # "ct" | "mri"
    undersampling: int  # CT sparsity or radial acceleration
    description: str

    @property
    def filename(self) -> str:
        return f"{self.name}.safetensors"


_MODELS = {  # model class -> what it is
    "pdunet": "Primal-Dual UNet",
    "lpd": "Learned Primal-Dual",
    "fbpconvnet": "FBPConvNet baseline",
}
_TASKS = {  # task -> (name suffix, undersampling, what the data are)
    "ct": ("sparse16", 16, "fan-beam CT (paper geometry), every 16th of 360 views"),
    "mri": ("radial16", 16, "radial MRI as sinograms, 32 of 512 spokes"),
}

PRETRAINED = {
    s.name: s
    for s in (
        PretrainedSpec(f"{model}-{task}-{suffix}", model, task, n, f"{what}, {data}")
        for task, (suffix, n, data) in _TASKS.items()
        for model, what in _MODELS.items()
    )
}


def weights_path(name: str) -> Path:
    """Path of the shipped weights of ``name`` (which may not exist in a source checkout
    that has not run ``scripts/train_pretrained.py``)."""
    spec = _spec(name)
    return Path(str(resources.files("mrct.recon") / "weights" / spec.filename))


def list_pretrained() -> list[str]:
    """Names accepted by :func:`pretrained` whose weights are present."""
    return [n for n in PRETRAINED if weights_path(n).is_file()]


def _spec(name: str) -> PretrainedSpec:
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained model {name!r}; available: {sorted(PRETRAINED)}")
    return PRETRAINED[name]


def operator_for(task: str, undersampling: int, size: int = 256):
    """The sparse-view Radon operator of a shipped model's task."""
    import math

    import numpy as np

    from ..physics import ParallelBeam, Radon
    from .datasets import ct_geometry

    if task == "ct":
        if size != 256:
            raise ValueError("the shipped CT models use the paper's 256 x 256 geometry")
        return Radon(ct_geometry(undersampling), (size, size))
    n_spokes = 512
    n_det = int(math.ceil(size * math.sqrt(2))) | 1
    angles = np.arange(0, n_spokes, undersampling) * math.pi / n_spokes
    return Radon(ParallelBeam(angles, n_det, 1.0), (size, size))


def build_model(kind: str, radon, **kwargs):
    """Instantiate a reconstructor class by its short name around ``radon``."""
    from .fbpconvnet import FBPConvNet
    from .primal_dual import LearnedPrimalDual, PrimalDualUNet

    classes = {"pdunet": PrimalDualUNet, "lpd": LearnedPrimalDual, "fbpconvnet": FBPConvNet}
    if kind not in classes:
        raise ValueError(f"model must be one of {sorted(classes)}, got {kind!r}")
    return classes[kind](radon, **kwargs)


def parse_name(name: str) -> PretrainedSpec:
    """The spec of a shipped model, or of any ``{pdunet|lpd|fbpconvnet}-ct-sparse{k}`` /
    ``...-mri-radial{k}`` name (models that ``scripts/train_pretrained.py`` can train but mrct
    does not ship, e.g. the sparsity 4 and 8 models behind ``docs/results.md``)."""
    if name in PRETRAINED:
        return PRETRAINED[name]
    m = re.fullmatch(r"(pdunet|lpd|fbpconvnet)-(ct-sparse|mri-radial)(\d+)", name)
    if m is None:
        raise ValueError(
            f"unknown pretrained model {name!r}; shipped: {sorted(PRETRAINED)}; other names "
            "follow '{pdunet|lpd|fbpconvnet}-ct-sparse{k}' or '...-mri-radial{k}'"
        )
    task = "ct" if m.group(2) == "ct-sparse" else "mri"
    k = int(m.group(3))
    if k < 1 or (task == "ct" and 360 % k) or (task == "mri" and 512 % k):
        raise ValueError(
            f"{name!r}: undersampling {k} must divide 360 views (CT) or 512 spokes (MRI)"
        )
    return PretrainedSpec(name, m.group(1), task, k, "not shipped (results only)")


def load_model_file(path: str | Path, name: str,
                    device: str | torch.device = "cpu") -> torch.nn.Module:  # fmt: skip
    """Load weights written by ``scripts/train_pretrained.py`` for model ``name`` (see
    :func:`parse_name`) from ``path``, in eval mode, on ``device``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from ..errors import MissingFileError, ReadError

    spec = parse_name(name)
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such weights file", path=path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        kwargs = json.loads(meta.get("model_kwargs", "{}"))
        state = load_file(str(path))
    except (OSError, ValueError, json.JSONDecodeError) as e:
        raise ReadError(f"{path}: not readable safetensors weights ({e})", path=path) from e
    except Exception as e:  # safetensors' SafetensorError derives from Exception only
        if type(e).__name__ != "SafetensorError":
            raise
        raise ReadError(f"{path}: not readable safetensors weights ({e})", path=path) from e
    model = build_model(spec.model, operator_for(spec.task, spec.undersampling), **kwargs)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ReadError(
            f"{path} does not match {spec.model}: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}",
            path=path,
        )
    return model.to(device).eval()


def pretrained(name: str, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a shipped model, in eval mode, on ``device``.

    The returned module maps a (B, n_views, n_det) sinogram to a (B, H, W) image in the
    paper's units (attenuation with water at 0.02 per pixel for CT; image / 255 for the brain
    MRI task); ``model.radon`` is the sparse-view operator it was trained with.
    """
    _spec(name)
    path = weights_path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights of {name!r} are missing at {path}; run `python scripts/train_pretrained.py "
            f"{name}` to reproduce them"
        )
    return load_model_file(path, name, device)


#: the model ``docs/results.md`` recommends per task. For now the best shipped model for the
#: task in its tables (PD-UNet: CT sparsity 16 SSIM 0.899 vs LPD 0.841, FBPConvNet 0.809;
#: radial MRI x16 PSNR 42.9 dB vs 35.9 / 38.1, SSIM within one std of LPD's); None: no
#: shipped model for that task yet (issue #17 trains them)
RECOMMENDED: dict[str, str | None] = {
    "ct-sparse4": None,
    "ct-sparse8": None,
    "ct-sparse16": "pdunet-ct-sparse16",
    "mri-radial16": "pdunet-mri-radial16",
}


def recommended(task: str, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The model ``docs/results.md`` recommends for ``task`` ("ct-sparse4", "ct-sparse8",
    "ct-sparse16", "mri-radial16"), loaded as :func:`pretrained` loads it (same contract:
    ``model.radon``, ``model(sinogram)``, eval mode); ``model.pretrained_name`` names it.
    Feed it :func:`mrct.recon.simulate` ``(image, task)[0][None]``.

    Raises
    ------
    ValueError
        An unknown task, or a task with no shipped model yet (the message lists what is
        available).
    """
    if task not in RECOMMENDED:
        raise ValueError(f"task must be one of {sorted(RECOMMENDED)}, got {task!r}")
    name = RECOMMENDED[task]
    if name is None or name not in list_pretrained():
        have = sorted(t for t, n in RECOMMENDED.items() if n and n in list_pretrained())
        raise ValueError(
            f"no shipped model for {task!r} yet; tasks with a recommended model: {have}; "
            f"installed models: {list_pretrained()}. Models for other sparsities can be "
            "trained with `python scripts/train_pretrained.py results` (see docs/results.md)"
        )
    model = pretrained(name, device)
    model.pretrained_name = name
    return model
