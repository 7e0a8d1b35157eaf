"""The one model loader: :func:`load_model` rebuilds any mrct model (or a user's) from a
checkpoint by the class name stored in it, and :class:`ConfigCheckpoint` gives a model whose
``config`` dict holds its constructor arguments ``save`` / ``load`` methods.

A checkpoint written by :func:`~mrct.training.save_checkpoint` (the trainer's ``best`` and
``last`` files, ``model.save(...)``) stores the class name (metadata ``model_class``), its
import path (``model_import``, ``"package.module:Class"``) and the constructor's keyword
arguments (``model_kwargs``). mrct's own classes are found by name in :data:`MODELS` (so that
a class may move between modules without breaking old files), any other class by its import
path.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import torch

from .checkpoint import CheckpointError, build_model, load_weights, read_metadata, save_checkpoint
from .plugins import import_object

__all__ = ["MODELS", "ConfigCheckpoint", "load_model", "model_class"]

#: class name -> ``"module:Class"`` of mrct's models (imported only when a file names one)
MODELS = {
    "UNet": "mrct.nn.unet:UNet",
    "FBPConvNet": "mrct.recon.fbpconvnet:FBPConvNet",
    "LearnedPrimalDual": "mrct.recon.primal_dual:LearnedPrimalDual",
    "PrimalDualUNet": "mrct.recon.primal_dual:PrimalDualUNet",
    "SRUNet": "mrct.recon.sr.models:SRUNet",
    "DDoSUNet": "mrct.recon.sr.models:DDoSUNet",
    "SCTUNet": "mrct.synth.regression:SCTUNet",
    "ConditionalDiffusion": "mrct.synth.diffusion:ConditionalDiffusion",
}


def model_class(path: str | os.PathLike, meta: dict | None = None) -> type:
    """The model class a checkpoint was saved from: ``model_class`` looked up in
    :data:`MODELS`, else its ``model_import`` path, else an ``extra["model"]`` of the form
    ``"package.module:Class"`` (files of older mrct versions). Raises :class:`CheckpointError`
    when the file names no class that can be imported."""
    meta = read_metadata(path) if meta is None else meta
    name = meta.get("model_class")
    if name in MODELS:
        return import_object(MODELS[name], "model_class")
    extra = meta.get("extra") if isinstance(meta.get("extra"), dict) else {}
    for spec in (meta.get("model_import"), extra.get("model")):
        if isinstance(spec, str) and ":" in spec:
            try:
                return import_object(spec, "model")
            except ValueError as e:
                raise CheckpointError(f"{path}: {e}") from e
    raise CheckpointError(
        f"{path} names no model class mrct can rebuild (model_class {name!r}); load the "
        "weights into a model you build yourself with mrct.training.load_weights"
    )


def load_model(path: str | os.PathLike, *args, device: str | torch.device = "cpu",
               **kwargs) -> torch.nn.Module:  # fmt: skip
    """Rebuild the model saved in the checkpoint ``path``, with its weights, in eval mode, on
    ``device``.

    The class comes from the file (:func:`model_class`); it is built as
    ``cls(*args, **model_kwargs, **kwargs)`` where ``model_kwargs`` are the saved keyword
    arguments the constructor takes and ``args`` / ``kwargs`` what the file cannot hold (the
    ``Radon`` operator of a learned reconstructor, for instance). Raises
    ``FileNotFoundError`` for a missing file and :class:`CheckpointError` (a ``ValueError``)
    for one that does not hold a model mrct can rebuild.
    """
    meta = read_metadata(path)
    cls = model_class(path, meta)
    saved = dict(meta.get("model_kwargs") or {})
    saved.pop("name", None)
    params = inspect.signature(cls).parameters.values()
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        names = {p.name for p in params}
        saved = {k: v for k, v in saved.items() if k in names}
    saved.update(kwargs)
    try:
        model = cls(*args, **saved)
    except TypeError as e:
        raise CheckpointError(f"{path}: cannot rebuild {cls.__name__}: {e}") from e
    load_weights(path, model)
    return model.to(device).eval()


class ConfigCheckpoint:
    """Mixin for an ``nn.Module`` whose ``config`` dict holds its constructor arguments:
    :meth:`save` writes the weights (buffers included, e.g. EMA copies) and ``config`` to one
    ``.safetensors`` file, atomically (mrct checkpoint format); :meth:`load` rebuilds it."""

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> Path:
        cls = type(self)
        name = f"{cls.__module__.rsplit('.', 1)[0]}:{cls.__name__}"  # e.g. mrct.synth:SCTUNet
        return save_checkpoint(path, self, model_kwargs=self.config,
                               extra={"model": name, **(extra or {})})  # fmt: skip

    @classmethod
    def load(cls, path: str | os.PathLike, map_location="cpu"):
        """Rebuild a model from :meth:`save` (or a trainer checkpoint of this class)."""
        return build_model(cls, path, map_location)
