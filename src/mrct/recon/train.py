"""``mrct train CONFIG``: a config file -> the task, the model, and a run of the training
engine (:func:`mrct.training.fit`).

The config's ``data`` table names the task (:func:`mrct.recon.datasets.make_task`: ``"ct"``,
``"mri"``, ``"sr"`` or ``"package.module:function"``) and its ``model`` table the model (a short
name of mrct.recon's, or ``"package.module:Class"``: how ``mrct.synth`` plugs its models in).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..training import TrainConfig, TrainResult, fit, seed_everything

__all__ = ["build_from_config", "train_from_config"]


def _model_class(name: str):
    if ":" in name:  # "package.module:Class"
        from ..training.plugins import import_object

        return import_object(name, "model.name")
    from .fbpconvnet import FBPConvNet
    from .primal_dual import LearnedPrimalDual, PrimalDualUNet
    from .sr.models import SR_MODELS

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
    if extra.get("val_sets"):  # e.g. the CT mix: SSIM on held-out chest and synthetic head
        from .ct_mix import ValidationSSIM

        callbacks = [*callbacks, ValidationSSIM(extra["val_sets"], every=cfg.val_every)]
    return fit(model, train_ds, val_ds, cfg, callbacks=callbacks,
               model_kwargs=model_kwargs, metadata={"model": name, "task": cfg.data})  # fmt: skip
