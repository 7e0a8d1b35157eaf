"""Training engine for mrct's learned reconstructors (and any model ``input -> prediction``).

:func:`fit` trains a ``torch.nn.Module`` on a dataset of ``(input, target)`` pairs with
L1 (or MSE) loss, Adam, a cosine learning-rate schedule, gradient accumulation and clipping,
mixed precision where the device supports it, seeded data order, validation, progress bars,
safetensors checkpoints (``best`` and ``last``) and exact resume. Under ``torchrun`` it trains
with ``DistributedDataParallel`` (gloo on CPU, NCCL on CUDA). :func:`train_from_config` is
what ``mrct train CONFIG`` runs: it reads a TOML/JSON :class:`TrainConfig`, builds the task
with :func:`mrct.recon.datasets.make_task` and the model named in the config, and fits it.

A run folder (``out_dir``) holds::

    config.json          the full configuration of the run
    history.json         per epoch: train loss, val loss, lr, time; every log_every steps: loss
    last.safetensors     training checkpoint (model, optimizer, scheduler, scaler, RNG, history)
    best.safetensors     weights of the epoch with the lowest validation loss (+ model_kwargs)

Examples
--------
>>> cfg = TrainConfig(epochs=20, batch_size=4, out_dir="runs/pdunet")      # doctest: +SKIP
>>> result = fit(model, train_ds, val_ds, cfg)                             # doctest: +SKIP
>>> result.history["epochs"][-1]["val_loss"]                               # doctest: +SKIP

Multi-process training (``batch_size`` is per process; the effective batch is
``batch_size x accumulate x processes``)::

    torchrun --standalone --nproc_per_node=2 -m mrct.cli train configs/pdunet-ct-sparse16.toml
    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 torchrun --standalone --nproc_per_node=2 \\
        $(which mrct) train configs/smoke.toml --out runs/smoke
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import logging
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..io import atomic_path
from .checkpoint import load_checkpoint, save_checkpoint

__all__ = [
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "fit",
    "train_from_config",
    "build_from_config",
    "seed_everything",
    "resolve_device",
]

log = logging.getLogger(__name__)

LAST = "last.safetensors"
BEST = "best.safetensors"
HISTORY = "history.json"
CONFIG = "config.json"

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
    takes the task's image scale in :func:`train_from_config`); ``grad_clip``: max gradient
    norm (None or <= 0: off).

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
    ``drop_last`` of the DataLoader; ``find_unused_parameters`` for DDP.

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


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the legacy global generator, on purpose
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"``: ``cuda:<local_rank>`` if CUDA is available, else ``cpu``; ``"cuda"`` under
    several processes picks the process's own GPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but CUDA is not available")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
    return dev


@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    created: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_pref: str) -> _Dist:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK), if any."""
    import torch.distributed as dist

    if not dist.is_available():
        return _Dist()
    if dist.is_initialized():
        return _Dist(dist.get_rank(), dist.get_world_size(),
                     int(os.environ.get("LOCAL_RANK", 0)), created=False)  # fmt: skip
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        return _Dist()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device_pref, local)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(backend)
    return _Dist(dist.get_rank(), dist.get_world_size(), local, created=True)


def _split_batch(batch) -> tuple[Any, Any]:
    if isinstance(batch, Mapping):
        if "input" in batch and "target" in batch:
            return batch["input"], batch["target"]
        raise TypeError(f"a dict batch needs 'input' and 'target' keys, got {sorted(batch)}")
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        return batch[0], batch[1]
    raise TypeError(
        "a dataset item must be an (input, target) pair or a dict with 'input' and 'target', "
        f"got {type(batch).__name__}"
        + (f" of length {len(batch)}" if hasattr(batch, "__len__") else "")
    )


def _to(x, device: torch.device):
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, (list, tuple)):
        return type(x)(_to(v, device) for v in x)
    if isinstance(x, Mapping):
        return {k: _to(v, device) for k, v in x.items()}
    return x


def _n_items(x) -> int:
    if isinstance(x, torch.Tensor):
        return int(x.shape[0]) if x.ndim else 1
    if isinstance(x, (list, tuple)) and x:
        return _n_items(x[0])
    if isinstance(x, Mapping) and x:
        return _n_items(next(iter(x.values())))
    return 1


def _worker_init(worker_id: int) -> None:  # numpy and random in DataLoader workers
    s = torch.initial_seed() % 2**32
    np.random.seed(s)  # noqa: NPY002
    random.seed(s)


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, torch.Tensor) and o.numel() == 1:
        return o.item()
    return str(o)


# ---------------------------------------------------------------------------------------
# the trainer


@dataclass
class TrainResult:
    """What :func:`fit` returns. ``history``: ``{"epochs": [...], "steps": [...], "best":
    {...}}``; ``model``: the trained module (unwrapped, on its training device); checkpoint
    paths are None where not written (and on ranks other than 0)."""

    model: nn.Module
    history: dict
    out_dir: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    epochs_done: int
    rank: int = 0
    world_size: int = 1
    epochs_trained: int = 0  # in this call (less than epochs_done after a resume)


class Trainer:
    """The training loop behind :func:`fit`; see there for the arguments.

    Attributes a callback may use: ``model`` (unwrapped), ``config``, ``epoch`` (completed
    epochs), ``global_step``, ``history``, ``rank``, ``world_size``, and ``should_stop``
    (set it to True to stop after the current epoch; ``last.safetensors`` is then written so
    that the run can be resumed).
    """

    def __init__(self, model: nn.Module, train_ds, val_ds=None, config: TrainConfig | None = None,
                 *, loss_fn: Callable | None = None, callbacks: Iterable[Callable] = (),
                 model_kwargs: dict | None = None, metadata: dict | None = None):  # fmt: skip
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if config is None:
            config = TrainConfig()
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        if train_ds is None or len(train_ds) == 0:
            raise ValueError("the training dataset is empty")
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError("the model has no trainable parameters")
        self.model = model
        self.train_ds, self.val_ds = train_ds, val_ds
        self.config = config
        self.loss_fn = loss_fn
        self.callbacks = list(callbacks)
        self.model_kwargs = model_kwargs
        self.metadata = dict(metadata or {})
        self.out_dir = Path(config.out_dir)
        self.epoch = 0
        self.global_step = 0
        self.history: dict = {"epochs": [], "steps": [], "best": None}
        self.should_stop = False
        self.rank, self.world_size = 0, 1

    # -- pieces -------------------------------------------------------------------------
    def _batch_loss(self, model, x, y, autocast) -> torch.Tensor:
        """The loss of one batch: the forward pass under ``autocast``, the loss in float32.
        Models with ``returns_loss = True`` (e.g. mrct.synth's diffusion) compute their own
        training loss as ``model(input, target)``."""
        with autocast():
            out = model(x, y) if self._model_loss else model(x)
        return out.float() if self._model_loss else self._criterion(out, y)

    def _criterion(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if isinstance(pred, torch.Tensor) and isinstance(target, torch.Tensor):
            if pred.shape != target.shape:
                raise ValueError(
                    f"the model's prediction has shape {tuple(pred.shape)} but the target has "
                    f"{tuple(target.shape)}"
                )
            pred, target = pred.float(), target.float()
        s = self._loss_scale
        if s != 1.0:
            pred, target = pred / s, target / s
        if self.loss_fn is not None:
            return self.loss_fn(pred, target)
        return F.l1_loss(pred, target) if self.config.loss == "l1" else F.mse_loss(pred, target)

    def _amp(self, device: torch.device) -> tuple[torch.dtype | None, bool]:
        """(autocast dtype or None, use a GradScaler)."""
        amp = self.config.amp
        if amp == "off" or (amp == "auto" and device.type != "cuda"):
            return None, False
        if amp in ("auto", "fp16"):
            if device.type != "cuda":
                raise ValueError('amp = "fp16" needs a CUDA device; on CPU use "bf16" or "off"')
            return torch.float16, True
        return torch.bfloat16, False  # bf16

    def _loaders(self, dist_info: _Dist, device: torch.device):
        from torch.utils.data import DataLoader, DistributedSampler, Subset

        cfg = self.config
        # the same sampler with or without DDP: epoch e is a permutation seeded by seed + e,
        # split across processes, so 2 processes x batch b see what 1 process x batch 2b sees
        sampler = DistributedSampler(self.train_ds, num_replicas=dist_info.world_size,
                                     rank=dist_info.rank, shuffle=True, seed=cfg.seed,
                                     drop_last=cfg.drop_last)  # fmt: skip
        # workers are started afresh each epoch and seeded from the global torch RNG (whose
        # state checkpoints restore), so resuming stays exact with num_workers > 0 as well
        kw = dict(num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
                  worker_init_fn=_worker_init if cfg.num_workers else None)  # fmt: skip
        train = DataLoader(self.train_ds, batch_size=cfg.batch_size, sampler=sampler,
                           drop_last=cfg.drop_last, **kw)  # fmt: skip
        if len(train) == 0:
            raise ValueError(
                f"no training batch: {len(self.train_ds)} samples over {dist_info.world_size} "
                f"process(es) with batch_size {cfg.batch_size} and drop_last"
            )
        val = None
        if self.val_ds is not None and len(self.val_ds) > 0:
            ds = self.val_ds
            if dist_info.enabled:  # shard without padding; losses are summed across ranks
                ds = Subset(ds, range(dist_info.rank, len(ds), dist_info.world_size))
            val = DataLoader(ds, batch_size=cfg.batch_size, shuffle=False, **kw)
        return sampler, train, val

    def _resume_path(self) -> Path | None:
        cfg = self.config
        last = self.out_dir / LAST
        if cfg.resume is None:
            if last.exists() and not cfg.overwrite:
                raise FileExistsError(
                    f"{self.out_dir} already holds a run ({LAST}); set resume='auto' (mrct "
                    "train --resume) to continue it, overwrite=True to start afresh, or pick "
                    "another out_dir"
                )
            return None
        if cfg.resume == "auto":
            return last if last.exists() else None
        p = Path(cfg.resume)
        if p.is_dir():
            p = p / LAST
        if not p.is_file():
            raise FileNotFoundError(f"resume checkpoint {p} does not exist")
        return p

    def _write_history(self) -> None:
        with atomic_path(self.out_dir / HISTORY) as tmp:
            tmp.write_text(json.dumps(self.history, indent=1, default=_json_default) + "\n")

    def _save_last(self, opt, sched, scaler) -> Path:
        return save_checkpoint(
            self.out_dir / LAST, self.model, opt, sched, scaler, epoch=self.epoch, rng=True,
            state={"global_step": self.global_step, "history": self.history},
            extra={"config": self.config.to_dict(), **self.metadata},
            model_kwargs=self.model_kwargs,
        )  # fmt: skip

    # -- the loop -------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        cfg = self.config
        dist_info = _init_distributed(cfg.device)
        try:
            return self._fit(dist_info)
        finally:
            if dist_info.created:
                import torch.distributed as dist

                if dist.is_initialized():
                    dist.destroy_process_group()

    def _fit(self, dist_info: _Dist) -> TrainResult:
        import torch.distributed as dist
        from tqdm.auto import tqdm

        cfg = self.config
        self.rank, self.world_size = dist_info.rank, dist_info.world_size
        main = dist_info.main
        device = resolve_device(cfg.device, dist_info.local_rank)
        seed_everything(cfg.seed)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if isinstance(cfg.loss_scale, str):
            raise ValueError(
                'loss_scale = "img_scale" is resolved by train_from_config; pass a number to fit'
            )
        self._loss_scale = float(cfg.loss_scale)
        # generic hooks: a model may compute its own loss (``returns_loss = True``, called as
        # ``model(input, target)`` -> scalar) and ask to be told after every optimizer step
        self._model_loss = bool(getattr(self.model, "returns_loss", False))
        self._step_hook = getattr(self.model, "on_optimizer_step", None)
        model = self.model.to(device)
        amp_dtype, use_scaler = self._amp(device)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        sampler, train_loader, val_loader = self._loaders(dist_info, device)
        steps_per_epoch = math.ceil(len(train_loader) / cfg.accumulate)
        sched = None
        if cfg.scheduler == "cosine":
            t_max = cfg.epochs * (steps_per_epoch if cfg.scheduler_interval == "step" else 1)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max,
                                                               eta_min=cfg.min_lr)  # fmt: skip
        scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)

        # resume, or start afresh
        resume = self._resume_path()
        if resume is not None:
            info = load_checkpoint(resume, model, opt, sched, scaler, restore_rng=True)
            self.epoch = int(info.epoch or 0)
            self.global_step = int(info.state.get("global_step", 0))
            self.history = info.state.get("history", self.history)
            old = info.extra.get("config", {})
            changed = [k for k in ("batch_size", "accumulate", "lr", "betas", "scheduler",
                                   "scheduler_interval", "loss", "epochs", "min_lr")
                       if k in old and old[k] != cfg.to_dict()[k]]  # fmt: skip
            if changed and main:
                warnings.warn(
                    f"resuming {resume} with changed settings {changed}; the optimizer and "
                    "schedule continue from their saved state", stacklevel=3)  # fmt: skip
            if main:
                log.info("resumed from %s at epoch %d", resume, self.epoch)
        start_epoch = self.epoch
        if main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if resume is None:  # a fresh run: drop what an earlier run left behind
                for name in (BEST, HISTORY):
                    (self.out_dir / name).unlink(missing_ok=True)
            cfg.save(self.out_dir / CONFIG)

        ddp_model: nn.Module = model
        if dist_info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ddp_model = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=cfg.find_unused_parameters)  # fmt: skip
        autocast = (
            (lambda: torch.autocast(device.type, dtype=amp_dtype))
            if amp_dtype is not None
            else contextlib.nullcontext
        )
        best = self.history.get("best") or {}
        best_val = best.get("val_loss", math.inf)
        last_path = resume
        best_path = self.out_dir / BEST if resume and (self.out_dir / BEST).exists() else None

        while self.epoch < cfg.epochs and not self.should_stop:
            e = self.epoch  # 0-based index of the epoch being trained
            t0 = time.perf_counter()
            sampler.set_epoch(e)
            model.train()
            n_batches = len(train_loader)
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            count = torch.zeros((), dtype=torch.float64, device=device)
            bad = torch.zeros((), dtype=torch.float64, device=device)
            bar = tqdm(total=n_batches, desc=f"epoch {e + 1}/{cfg.epochs}", unit="batch",
                       disable=not (cfg.progress and main), dynamic_ncols=True)  # fmt: skip
            opt.zero_grad(set_to_none=True)
            for i, batch in enumerate(train_loader):
                x, y = _split_batch(batch)
                x, y = _to(x, device), _to(y, device)
                group_start = (i // cfg.accumulate) * cfg.accumulate
                k = min(cfg.accumulate, n_batches - group_start)  # micro-batches in this step
                step_now = i == group_start + k - 1
                sync = (contextlib.nullcontext() if step_now or not dist_info.enabled
                        else ddp_model.no_sync())  # fmt: skip
                with sync:
                    loss = self._batch_loss(ddp_model, x, y, autocast)
                    scaler.scale(loss / k).backward()
                n = _n_items(y)
                ld = loss.detach().double()
                finite = torch.isfinite(ld)
                loss_sum += torch.where(finite, ld * n, torch.zeros_like(ld))
                count += n
                bad += (~finite).double()
                if step_now:
                    if cfg.grad_clip is not None:
                        scaler.unscale_(opt)
                        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                    scaler.step(opt)
                    scaler.update()
                    if self._step_hook is not None:  # e.g. an EMA update
                        self._step_hook()
                    opt.zero_grad(set_to_none=True)
                    self.global_step += 1
                    if sched is not None and cfg.scheduler_interval == "step":
                        sched.step()
                    if self.global_step % cfg.log_every == 0:
                        if not use_scaler and float(bad) > 0:
                            self._nonfinite(e, i)
                        lv = float(ld)
                        lr = opt.param_groups[0]["lr"]
                        self.history["steps"].append({"step": self.global_step, "epoch": e + 1,
                                                      "loss": lv, "lr": lr})  # fmt: skip
                        bar.set_postfix(loss=f"{float(loss_sum / count.clamp_min(1)):.4g}",
                                        lr=f"{lr:.3g}", refresh=False)  # fmt: skip
                bar.update(1)
            if dist_info.enabled:
                stats = torch.stack([loss_sum, count, bad]).to(device)
                dist.all_reduce(stats)
                loss_sum, count, bad = stats[0], stats[1], stats[2]
            if float(bad) > 0 and not use_scaler:
                self._nonfinite(e, n_batches - 1)
            lr_used = opt.param_groups[0]["lr"]
            if sched is not None and cfg.scheduler_interval == "epoch":
                sched.step()
            train_loss = float(loss_sum / count.clamp_min(1))
            record: dict[str, Any] = {"epoch": e + 1, "train_loss": train_loss, "lr": lr_used,
                                      "steps": self.global_step}  # fmt: skip
            if float(bad) > 0:
                record["nonfinite_batches"] = int(bad)
            do_val = val_loader is not None and ((e + 1) % cfg.val_every == 0
                                                 or e + 1 == cfg.epochs)  # fmt: skip
            if do_val:
                record["val_loss"] = self._evaluate(model, val_loader, device, autocast,
                                                    dist_info)  # fmt: skip
            record["time_s"] = time.perf_counter() - t0
            self.epoch = e + 1
            improved = do_val and record["val_loss"] < best_val
            if improved:
                best_val = record["val_loss"]
                self.history["best"] = {"epoch": self.epoch, "val_loss": best_val}
            self.history["epochs"].append(record)
            for cb in self.callbacks:
                cb(self, record)
            if dist_info.enabled:  # every rank must agree on stopping
                flag = torch.tensor(float(self.should_stop), device=device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                self.should_stop = bool(flag.item())
            post = {"train": f"{train_loss:.4g}", "lr": f"{lr_used:.3g}"}
            if do_val:
                post["val"] = f"{record['val_loss']:.4g}" + (" *" if improved else "")
            bar.set_postfix(post)
            bar.close()
            if main:
                log.info("epoch %d/%d: %s (%.1f s)", self.epoch, cfg.epochs, post,
                         record["time_s"])  # fmt: skip
                if improved:
                    best_path = save_checkpoint(
                        self.out_dir / BEST, model, epoch=self.epoch,
                        extra={"val_loss": best_val, "config": cfg.to_dict(), **self.metadata},
                        model_kwargs=self.model_kwargs)  # fmt: skip
                final = self.epoch == cfg.epochs or self.should_stop
                if self.epoch % cfg.checkpoint_every == 0 or final:
                    last_path = self._save_last(opt, sched, scaler)
                self._write_history()
        if main and not (self.out_dir / HISTORY).exists():
            self._write_history()
        if dist_info.enabled:
            dist.barrier()
        return TrainResult(model, self.history, self.out_dir,
                           last_path if main else None, best_path if main else None,
                           self.epoch, self.rank, self.world_size,
                           self.epoch - start_epoch)  # fmt: skip

    def _nonfinite(self, epoch: int, batch: int):
        raise FloatingPointError(
            f"non-finite loss in epoch {epoch + 1} (by batch {batch + 1}); lower lr, set "
            "grad_clip, or check the data for NaN/Inf"
        )

    @torch.no_grad()
    def _evaluate(self, model, loader, device, autocast, dist_info: _Dist) -> float:
        model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=device)
        for batch in loader:
            x, y = _split_batch(batch)
            x, y = _to(x, device), _to(y, device)
            loss = self._batch_loss(model, x, y, autocast)  # unwrapped: no collectives
            n = _n_items(y)
            total[0] += loss.double() * n
            total[1] += n
        if dist_info.enabled:
            import torch.distributed as dist

            dist.all_reduce(total)
        model.train()
        return float(total[0] / total[1].clamp_min(1))


def fit(model: nn.Module, train_ds, val_ds=None, config: TrainConfig | None = None, *,
        loss_fn: Callable | None = None, callbacks: Iterable[Callable] = (),
        model_kwargs: dict | None = None, metadata: dict | None = None,
        **overrides) -> TrainResult:  # fmt: skip
    """Train ``model`` on ``train_ds`` (items ``(input, target)``), validating on ``val_ds``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of inputs to predictions of the targets' shape (e.g. a reconstructor:
        sinograms (B, n_views, n_det) -> images (B, H, W)).
    train_ds, val_ds : torch.utils.data.Dataset
        Items are ``(input, target)`` pairs (or dicts with ``input`` and ``target``).
    config : TrainConfig, optional
        Settings; keyword ``overrides`` replace fields (``fit(..., epochs=3)``).
    loss_fn : callable, optional
        ``loss_fn(pred, target) -> scalar`` replacing ``config.loss``.
    callbacks : iterable of callables
        Called as ``cb(trainer, record)`` after every epoch (``record``: that epoch's
        history entry); a callback may set ``trainer.should_stop = True``.
    model_kwargs, metadata : dict, optional
        JSON-able; stored in the checkpoints (``model_kwargs`` as read by
        :func:`mrct.recon.pretrained.pretrained`, ``metadata`` inside ``extra``).

    Returns
    -------
    TrainResult
        The trained model, the history and the checkpoint paths.

    Under ``torchrun`` each process calls ``fit`` with the same arguments; the data are split
    across processes, gradients averaged, and only rank 0 writes files and progress bars.
    """
    config = config if config is not None else TrainConfig()
    if overrides:
        config = config.replace(**overrides)
    trainer = Trainer(model, train_ds, val_ds, config, loss_fn=loss_fn, callbacks=callbacks,
                      model_kwargs=model_kwargs, metadata=metadata)  # fmt: skip
    return trainer.fit()


# ---------------------------------------------------------------------------------------
# config files -> task, model, run


def _model_class(name: str):
    if ":" in name:  # "package.module:Class"
        from .plugins import import_object

        return import_object(name, "model.name")
    from .fbpconvnet import FBPConvNet
    from .primal_dual import LearnedPrimalDual, PrimalDualUNet
    from .sr_models import SR_MODELS

    classes = {"pdunet": PrimalDualUNet, "lpd": LearnedPrimalDual, "fbpconvnet": FBPConvNet}
    classes.update(SR_MODELS)  # "ddos", "ddosunet", "srunet", "unet-sr"
    if name not in classes:
        raise ValueError(
            f'model.name must be one of {sorted(classes)} or "package.module:Class", got {name!r}'
        )
    return classes[name]


def build_from_config(cfg: TrainConfig):
    """``(model, train_ds, val_ds, model_kwargs, extra)`` for a config: the task from
    :func:`mrct.recon.datasets.make_task` (``cfg.data``), the model from ``cfg.model``
    (``name`` plus keyword arguments; the task's ``img_scale`` is passed when the model takes
    one and the config does not set it)."""
    from .datasets import make_task

    out = make_task(cfg)
    if len(out) == 4:
        radon, train_ds, val_ds, extra = out
    elif len(out) == 3:
        radon, train_ds, val_ds = out
        extra = {}
    else:  # pragma: no cover - contract guard
        raise ValueError(f"make_task returned {len(out)} items; expected 3 or 4")
    model_cfg = dict(cfg.model)
    name = model_cfg.pop("name", None)
    if not name:
        raise ValueError('the config needs model.name ("pdunet", "lpd", "fbpconvnet", ...)')
    cls = _model_class(str(name))
    params = inspect.signature(cls).parameters
    kwargs = {k: v for k, v in dict(extra or {}).items() if k in params and k not in model_cfg}
    kwargs.update(model_cfg)
    model = cls(radon, **kwargs) if radon is not None else cls(**kwargs)
    if "opnorm" in params and kwargs.get("opnorm") is None and hasattr(model, "opnorm"):
        kwargs["opnorm"] = float(model.opnorm)  # saved: loading skips the power iteration
    return model, train_ds, val_ds, {"name": name, **kwargs}, dict(extra or {})


def train_from_config(config: TrainConfig | str | os.PathLike,
                      overrides: Mapping[str, Any] | None = None, *,
                      callbacks: Iterable[Callable] = ()) -> TrainResult:  # fmt: skip
    """What ``mrct train`` runs: read the config (path or :class:`TrainConfig`), seed, build
    task and model (:func:`build_from_config`) and :func:`fit`."""
    if isinstance(config, TrainConfig):
        cfg = config if not overrides else TrainConfig.from_dict(config.to_dict(), overrides)
    else:
        cfg = TrainConfig.from_file(config, overrides)
    seed_everything(cfg.seed)
    model, train_ds, val_ds, model_kwargs, extra = build_from_config(cfg)
    if cfg.loss_scale == "img_scale":
        if "img_scale" not in extra:
            raise ValueError('loss_scale = "img_scale" but the task reports no img_scale')
        cfg = cfg.replace(loss_scale=float(extra["img_scale"]))
    name = model_kwargs.pop("name")
    return fit(model, train_ds, val_ds, cfg, callbacks=callbacks,
               model_kwargs=model_kwargs, metadata={"model": name, "task": cfg.data})  # fmt: skip
