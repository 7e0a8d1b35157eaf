"""The one training engine, for every layer that trains a model (``mrct.recon``,
super-resolution in ``mrct.recon.sr``, ``mrct.synth``).

* :func:`fit` / :class:`Trainer` (:mod:`~mrct.training.loop`): the loop, with validation,
  callbacks, gradient accumulation and clipping, mixed precision, DDP under ``torchrun``
  (:mod:`~mrct.training.distributed`), ``best`` / ``last`` checkpoints and exact resume;
  models may compute their own loss and keep an EMA (``returns_loss``, ``on_optimizer_step``);
* :class:`TrainConfig` (:mod:`~mrct.training.config`): the settings, from TOML/JSON files;
* :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`load_weights`
  (:mod:`~mrct.training.checkpoint`): safetensors files, nothing pickled;
* :func:`load_model` (:mod:`~mrct.training.loader`): rebuild a model from a checkpoint by the
  class name stored in it.

This package knows nothing of operators or data sets: ``mrct train CONFIG`` (which builds the
task and the model from a config file) is :func:`mrct.recon.train_from_config`.

Examples
--------
>>> cfg = TrainConfig(epochs=20, batch_size=4, out_dir="runs/pdunet")      # doctest: +SKIP
>>> result = fit(model, train_ds, val_ds, cfg)                             # doctest: +SKIP
>>> result.history["epochs"][-1]["val_loss"]                               # doctest: +SKIP
"""

from .checkpoint import (
    CheckpointError,
    CheckpointInfo,
    build_model,
    load_checkpoint,
    load_weights,
    read_metadata,
    save_checkpoint,
)
from .config import TrainConfig, parse_override
from .distributed import resolve_device, seed_everything
from .ema import ema_update
from .loader import ConfigCheckpoint, load_model, model_class
from .loop import Trainer, TrainResult, fit
from .plugins import import_object

__all__ = [
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "fit",
    "parse_override",
    "seed_everything",
    "resolve_device",
    "CheckpointError",
    "CheckpointInfo",
    "save_checkpoint",
    "load_checkpoint",
    "load_weights",
    "read_metadata",
    "build_model",
    "load_model",
    "model_class",
    "ConfigCheckpoint",
    "import_object",
    "ema_update",
]
