"""The settings of a training run (:class:`TrainConfig`), read from TOML/JSON files, and
``KEY=VALUE`` overrides (:func:`parse_override`, ``mrct train --set``)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_path

__all__ = ["TrainConfig", "parse_override"]

_AMP = ("auto", "off", "bf16", "fp16")
_LOSSES = ("l1", "mse")
_SCHEDULERS = ("cosine", "none")
_INTERVALS = ("epoch", "step")


# ---------------------------------------------------------------------------------------
# configuration


@dataclass
class TrainConfig:
    """Everything a training run needs besides the model and the data.

    Optimisation: ``epochs``; ``batch_size`` (per process); ``accumulate`` (micro-batches per
    optimizer step); Adam with ``lr``, ``betas``, ``weight_decay``; ``scheduler`` ``"cosine"``
    (CosineAnnealingLR from ``lr`` down to ``min_lr`` over all epochs, or over all optimizer
    steps with ``scheduler_interval = "step"``) or ``"none"``; ``loss`` ``"l1"`` or ``"mse"``
    on ``prediction / loss_scale`` and ``target / loss_scale`` (``loss_scale = "img_scale"``
    takes the task's image scale in :func:`mrct.recon.train_from_config`); ``grad_clip``: max
    gradient norm (None or <= 0: off).

    Precision: ``amp`` ``"auto"`` (float16 autocast with a GradScaler on CUDA, off on CPU),
    ``"fp16"`` (CUDA only), ``"bf16"`` (autocast to bfloat16, CPU or CUDA, no scaler) or
    ``"off"``.

    Reproducibility: ``seed`` seeds Python, numpy and torch and the data order (epoch ``e``
    is shuffled with ``seed + e``); ``deterministic`` asks torch for deterministic
    algorithms.

    Run folder and bookkeeping: ``out_dir``; ``checkpoint_every`` (epochs between writes of
    ``last.safetensors``; the final epoch is always written); ``val_every`` (epochs between
    validations; the final epoch is always validated); ``resume`` (None, ``"auto"`` = continue
    from ``out_dir/last.safetensors`` if present, or a checkpoint path); ``overwrite`` (allow
    a fresh run into a folder that already holds one); ``log_every`` (optimizer steps between
    progress-bar updates and history step records); ``progress`` (tqdm bars, on rank 0);
    ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...); ``num_workers`` and
    ``drop_last`` of the DataLoader; ``find_unused_parameters`` for DDP; ``max_seconds``
    (None: off): a wall-clock budget for this call — the run stops after the epoch in which
    it is spent, validates and writes ``last.safetensors`` (resume with ``resume = "auto"``;
    the cosine schedule still spans all ``epochs``). Use it to fit a job into a time slot.

    ``model`` and ``data`` are free-form tables for :func:`build_from_config`
    (``model.name``: ``"pdunet"``, ``"lpd"``, ``"fbpconvnet"`` or ``"package.module:Class"``,
    other keys are the model's keyword arguments; ``data`` goes to ``make_task``).
    """

    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    scheduler: str = "cosine"
    scheduler_interval: str = "epoch"
    min_lr: float = 0.0
    loss: str = "l1"
    loss_scale: float | str = 1.0
    grad_clip: float | None = None
    accumulate: int = 1
    amp: str = "auto"
    seed: int = 0
    deterministic: bool = False
    num_workers: int = 0
    drop_last: bool = False
    out_dir: str = "runs/train"
    checkpoint_every: int = 1
    val_every: int = 1
    resume: str | None = None
    overwrite: bool = False
    log_every: int = 50
    progress: bool = True
    device: str = "auto"
    find_unused_parameters: bool = False
    max_seconds: float | None = None
    model: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)

    def __post_init__(self):
        self._validate()

    # -- validation -----------------------------------------------------------------
    def _validate(self) -> None:
        def integer(name, lo):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
            setattr(self, name, int(v))

        def number(name, lo=None, allow_none=False):
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
                raise ValueError(f"{name} must be a number, got {v!r}")
            v = float(v)
            if not math.isfinite(v) or (lo is not None and v < lo):
                raise ValueError(f"{name} must be a finite number >= {lo}, got {v!r}")
            setattr(self, name, v)

        def choice(name, options):
            v = getattr(self, name)
            if v not in options:
                raise ValueError(f"{name} must be one of {list(options)}, got {v!r}")

        def boolean(name):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")

        for name in ("epochs", "batch_size", "accumulate", "checkpoint_every", "val_every",
                     "log_every"):  # fmt: skip
            integer(name, 1)
        integer("num_workers", 0)
        integer("seed", 0)
        number("lr", 0.0)
        number("weight_decay", 0.0)
        number("min_lr", 0.0)
        number("grad_clip", None, allow_none=True)
        number("max_seconds", 0.0, allow_none=True)
        if self.grad_clip is not None and self.grad_clip <= 0:
            self.grad_clip = None
        if isinstance(self.loss_scale, str):
            if self.loss_scale != "img_scale":
                raise ValueError(f'loss_scale must be a number or "img_scale", got '
                                 f"{self.loss_scale!r}")  # fmt: skip
        else:
            number("loss_scale", None)
            if self.loss_scale <= 0:
                raise ValueError(f"loss_scale must be > 0, got {self.loss_scale}")
        b = self.betas
        if (not isinstance(b, (list, tuple)) or len(b) != 2
                or not all(isinstance(x, (int, float)) and 0 <= x < 1 for x in b)):  # fmt: skip
            raise ValueError(f"betas must be two numbers in [0, 1), got {b!r}")
        self.betas = (float(b[0]), float(b[1]))
        choice("scheduler", _SCHEDULERS)
        choice("scheduler_interval", _INTERVALS)
        choice("loss", _LOSSES)
        choice("amp", _AMP)
        for name in ("deterministic", "drop_last", "overwrite", "progress",
                     "find_unused_parameters"):  # fmt: skip
            boolean(name)
        if self.resume in ("", "none", "None"):
            self.resume = None
        if self.resume is not None and not isinstance(self.resume, (str, os.PathLike)):
            raise ValueError(f'resume must be None, "auto" or a path, got {self.resume!r}')
        if self.resume is not None:
            self.resume = str(self.resume)
        if not isinstance(self.out_dir, (str, os.PathLike)) or not str(self.out_dir):
            raise ValueError(f"out_dir must be a folder path, got {self.out_dir!r}")
        self.out_dir = str(self.out_dir)
        if not isinstance(self.device, str):
            self.device = str(self.device)
        for name in ("model", "data"):
            if not isinstance(getattr(self, name), Mapping):
                raise ValueError(f"{name} must be a table (dict), got {getattr(self, name)!r}")
            setattr(self, name, dict(getattr(self, name)))

    # -- I/O ------------------------------------------------------------------------
    @classmethod
    def fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
                  source: str = "config") -> TrainConfig:  # fmt: skip
        """Build from a mapping; ``overrides`` keys may be dotted (``"model.depth"``)."""
        d = json.loads(json.dumps(dict(d)))  # deep copy of plain data
        for key, value in (overrides or {}).items():
            if value is None:
                continue
            parts = str(key).split(".")
            target = d
            for p in parts[:-1]:
                if p not in ("model", "data") and target is d:
                    raise ValueError(
                        f"override {key!r}: only the model and data tables take dotted keys"
                    )
                target = target.setdefault(p, {})
                if not isinstance(target, dict):
                    raise ValueError(f"override {key!r}: {p!r} is not a table")
            target[parts[-1]] = value
        unknown = sorted(set(d) - set(cls.fields()))
        if unknown:
            raise ValueError(
                f"{source}: unknown setting(s) {unknown}; valid settings are {cls.fields()}"
            )
        try:
            return cls(**d)
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None

    @classmethod
    def from_file(cls, path: str | os.PathLike,
                  overrides: Mapping[str, Any] | None = None) -> TrainConfig:  # fmt: skip
        """Read a TOML (``.toml``) or JSON (``.json``) file: top-level keys are the fields,
        ``[model]`` and ``[data]`` tables the sub-dicts; then apply ``overrides``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        text = path.read_text()
        try:
            if path.suffix.lower() == ".json":
                d = json.loads(text)
            else:
                import tomllib

                d = tomllib.loads(text)
        except (ValueError, ImportError) as e:
            kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
            raise ValueError(f"{path} is not valid {kind}: {e}") from e
        if not isinstance(d, dict):
            raise ValueError(f"{path} must hold a table of settings, got {type(d).__name__}")
        return cls.from_dict(d, overrides, source=str(path))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    def save(self, path: str | os.PathLike) -> Path:
        """Write the configuration as JSON, atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def parse_override(item: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> ``(KEY, value)``; VALUE is read as TOML (``3``, ``1e-3``,
    ``true``, ``[0.9, 0.99]``, ``"text"``), else kept as a plain string."""
    if "=" not in item:
        raise ValueError(f"override {item!r} must look like KEY=VALUE")
    key, raw = item.split("=", 1)
    key = key.strip()
    import tomllib

    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key, value


# ---------------------------------------------------------------------------------------
# helpers
