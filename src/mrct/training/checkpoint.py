"""Checkpoints in safetensors: model weights, and the full training state for resuming.

Nothing is pickled. A checkpoint is one ``.safetensors`` file:

* the model's ``state_dict`` under its own key names (so a checkpoint's weights load like any
  safetensors state dict, e.g. with :func:`safetensors.torch.load_file`);
* for a *training* checkpoint, the tensors of the optimizer, scheduler, GradScaler and RNG
  states under names beginning with ``__train__/``, and their non-tensor parts (step counts,
  hyper-parameters, learning rates...) as JSON in the file's metadata (key ``mrct_state``),
  with each tensor referenced by name;
* metadata ``mrct_format`` (``"mrct-checkpoint/1"``), ``kind`` (``"training"`` or
  ``"weights"``), ``epoch`` and, when given, ``model_kwargs`` (JSON: the keyword arguments that
  rebuild the model, read by :func:`mrct.training.load_model`), ``model_class`` and
  ``model_import`` (the class name and ``"module:Class"``) and ``extra`` (JSON).

Files are written atomically (:func:`mrct.io.atomic_path`): a crash while saving never leaves
a half-written checkpoint under the final name. Metadata ``mrct_sha256`` holds a SHA-256 of
every tensor (name, dtype, shape and bytes, in name order) and of the other metadata; loading
verifies it, so a truncated or corrupted file is a :class:`CheckpointError` naming it, never
silently wrong weights (files without the entry, e.g. written by older mrct, load unchecked).

>>> save_checkpoint("last.safetensors", model, optimizer, scheduler, epoch=3)  # doctest: +SKIP
>>> info = load_checkpoint("last.safetensors", model, optimizer, scheduler)  # doctest: +SKIP
>>> info.epoch
3
>>> load_weights("best.safetensors", model)  # inference: weights only   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import MrctError
from ..io import atomic_path

__all__ = [
    "CheckpointError",
    "CheckpointInfo",
    "checksum",
    "previous_path",
    "save_checkpoint",
    "load_checkpoint",
    "load_weights",
    "build_model",
    "read_metadata",
    "rng_state",
    "set_rng_state",
]

FORMAT = "mrct-checkpoint/1"
TRAIN_PREFIX = "__train__/"
CHECKSUM_KEY = "mrct_sha256"


class CheckpointError(MrctError):
    """A checkpoint file is unreadable, or does not match the model or optimizer given
    (an :class:`mrct.MrctError`, so also a ValueError)."""


@dataclass
class CheckpointInfo:
    """What :func:`load_checkpoint` read besides the states it loaded in place.

    ``epoch``: completed epochs (None if not recorded); ``kind``: ``"training"`` or
    ``"weights"``; ``extra``: the JSON ``extra`` saved with the checkpoint; ``state``: the
    decoded training state (``optimizer``, ``scheduler``, ``scaler``, ``rng``... as dicts of
    tensors and Python values); ``metadata``: the raw safetensors metadata (strings).
    """

    path: Path
    epoch: int | None
    kind: str
    extra: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# nested states <-> (JSON tree, flat tensors)


def _child(name: str, key) -> str:
    return f"{name}{key}" if name.endswith("/") else f"{name}.{key}"


def _put(tensors: dict[str, torch.Tensor], name: str, t: torch.Tensor) -> str:
    base, i = name, 1
    while name in tensors:  # keys with dots could collide: make the name unique
        name, i = f"{base}#{i}", i + 1
    tensors[name] = t
    return name


def _encode(obj, name: str, tensors: dict[str, torch.Tensor]):
    """JSON-able tree of ``obj``; tensors and numpy arrays go to ``tensors`` by name."""
    if isinstance(obj, torch.Tensor):
        return {"__tensor__": _put(tensors, name, obj.detach().cpu().contiguous().clone())}
    if isinstance(obj, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {"__ndarray__": _put(tensors, name, t)}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, _child(name, i), tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, _child(name, i), tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, _child(name, k), tensors) for k, v in obj.items()}
        # non-string keys (the optimizer's parameter indices): keep them as pairs
        return {
            "__items__": [
                [_encode(k, _child(name, f"k{i}"), tensors), _encode(v, _child(name, k), tensors)]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    raise TypeError(
        f"cannot store {type(obj).__name__} at {name!r} in a checkpoint: only tensors, numpy "
        "arrays, numbers, strings, None and lists/tuples/dicts of them are supported"
    )


def _decode(tree, tensors: dict[str, torch.Tensor], path: Path):
    if isinstance(tree, list):
        return [_decode(v, tensors, path) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__tensor__" in tree or "__ndarray__" in tree:
        key = tree.get("__tensor__", tree.get("__ndarray__"))
        if key not in tensors:
            raise CheckpointError(f"{path}: the state refers to tensor {key!r}, which is missing")
        t = tensors[key]
        return t.numpy() if "__ndarray__" in tree else t
    if "__tuple__" in tree:
        return tuple(_decode(v, tensors, path) for v in tree["__tuple__"])
    if "__items__" in tree:
        return {_decode(k, tensors, path): _decode(v, tensors, path) for k, v in tree["__items__"]}
    return {k: _decode(v, tensors, path) for k, v in tree.items()}


# ---------------------------------------------------------------------------------------
# RNG states


def rng_state() -> dict:
    """The states of Python's, numpy's and torch's (CPU and CUDA) global generators."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002 - the global generator
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned (after a round trip through a checkpoint)."""
    if "python" in state:
        v = state["python"]
        random.setstate((v[0], tuple(v[1]), v[2]))
    if "numpy" in state:
        v = state["numpy"]
        np.random.set_state((v[0], np.asarray(v[1], dtype=np.uint32), *v[2:]))  # noqa: NPY002
    if "torch" in state:
        torch.set_rng_state(state["torch"].to(torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        cuda = [s.to(torch.uint8) for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


# ---------------------------------------------------------------------------------------
# saving


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, torch.nn.Module):
            model = model._orig_mod
        else:
            return model


def _model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict on CPU, contiguous, without shared storage (safetensors refuses it)."""
    out, seen = {}, set()
    for k, v in _unwrap(model).state_dict().items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"state_dict entry {k!r} is a {type(v).__name__}, not a tensor")
        if k.startswith(TRAIN_PREFIX):
            raise ValueError(f"model state key {k!r} clashes with the reserved {TRAIN_PREFIX!r}")
        t = v.detach().cpu().contiguous()
        if t.numel():
            ptr = t.untyped_storage().data_ptr()
            if ptr in seen:  # tied weights: store an own copy
                t = t.clone()
                ptr = t.untyped_storage().data_ptr()
            seen.add(ptr)
        out[k] = t
    return out


def checksum(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """SHA-256 (hex) of ``tensors`` (name, dtype, shape and bytes, in name order) and of
    ``metadata`` without its :data:`CHECKSUM_KEY` entry: what ``mrct_sha256`` holds."""
    h = hashlib.sha256()
    for k in sorted(metadata):
        if k != CHECKSUM_KEY:
            h.update(f"{k}\0{metadata[k]}\0".encode())
    for k in sorted(tensors):
        t = tensors[k].detach().cpu().contiguous()
        h.update(f"{k}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()


def _json(obj) -> str:
    return json.dumps(obj, allow_nan=True, separators=(",", ":"))


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, optimizer=None,
                    scheduler=None, scaler=None, *, epoch: int | None = None,
                    extra: dict | None = None, model_kwargs: dict | None = None,
                    state: dict | None = None, rng: bool = False,
                    keep_previous: bool = False) -> Path:  # fmt: skip
    """Write ``model``'s weights (and optionally the training state) to ``path`` atomically.

    Parameters
    ----------
    path : str or PathLike
        Target file (``.safetensors``); parent folders are created.
    model : torch.nn.Module
        Its ``state_dict`` is saved (wrappers such as DistributedDataParallel are unwrapped).
    optimizer, scheduler, scaler : optional
        Objects with ``state_dict()`` (torch optimizers, LR schedulers, ``GradScaler``);
        their states are flattened into tensors plus JSON. Giving any of them (or ``state``
        or ``rng=True``) makes this a ``"training"`` checkpoint, else a ``"weights"`` one.
    epoch : int, optional
        Completed epochs.
    extra : dict, optional
        JSON-able information (history, config, metrics...) stored in the metadata.
    model_kwargs : dict, optional
        JSON-able keyword arguments that rebuild the model (metadata ``model_kwargs``).
    state : dict, optional
        Further training state (tensors, numbers, lists and dicts), restored as
        ``CheckpointInfo.state[...]``.
    rng : bool
        Also save the global RNG states (:func:`rng_state`).
    keep_previous : bool
        Keep the file being replaced as :func:`previous_path` (``last.prev.safetensors``),
        so that a resume can fall back to it if the new one is damaged later. The new file
        is complete before the old one moves, and both renames are atomic.
    """
    path = Path(path)
    tensors = _model_tensors(model)
    train: dict[str, Any] = {}
    for key, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is not None:
            train[key] = obj.state_dict()
    if rng:
        train["rng"] = rng_state()
    for k, v in (state or {}).items():
        if k in train:
            raise ValueError(f"state key {k!r} is reserved")
        train[k] = v
    meta = {"mrct_format": FORMAT, "kind": "training" if train else "weights"}
    if epoch is not None:
        meta["epoch"] = str(int(epoch))
    if train:
        flat: dict[str, torch.Tensor] = {}
        meta["mrct_state"] = _json(_encode(train, TRAIN_PREFIX, flat))
        tensors.update(flat)
    if extra is not None:
        meta["extra"] = _json(extra)
    if model_kwargs is not None:
        meta["model_kwargs"] = _json(model_kwargs)
    cls = type(_unwrap(model))
    meta["model_class"] = cls.__name__  # how mrct.training.load_model finds the class
    meta["model_import"] = f"{cls.__module__}:{cls.__qualname__}"
    from safetensors.torch import save_file

    meta[CHECKSUM_KEY] = checksum(tensors, meta)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
        if keep_previous and path.exists():  # the old file survives as PATH.prev
            os.replace(path, previous_path(path))
    return path


def previous_path(path: str | os.PathLike) -> Path:
    """Where :func:`save_checkpoint` (``keep_previous=True``) keeps the file it replaced:
    ``last.safetensors`` -> ``last.prev.safetensors``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


# ---------------------------------------------------------------------------------------
# loading


def _open(path: str | os.PathLike, tensors: bool = True):
    """``(path, tensors or None, raw metadata)``; clear errors for a missing or bad file.

    With ``tensors`` the checksum (metadata ``mrct_sha256``, when present) is verified."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        data = load_file(str(path)) if tensors else None
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise CheckpointError(
            f"{path} is not a readable safetensors checkpoint (corrupt or truncated file?): {e}"
        ) from e
    if data is not None and CHECKSUM_KEY in meta and checksum(data, meta) != meta[CHECKSUM_KEY]:
        raise CheckpointError(
            f"{path} is corrupted: its tensors or metadata do not match the SHA-256 stored "
            "when it was written (damaged on disk or in transfer); use an earlier checkpoint"
        )
    return path, data, meta


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata of a checkpoint, with JSON entries (``extra``, ``model_kwargs``...)
    decoded; the tensors are not read."""
    _, _, meta = _open(path, tensors=False)
    out: dict[str, Any] = dict(meta)
    for k in ("extra", "model_kwargs"):
        if k in meta:
            out[k] = json.loads(meta[k])
    if "epoch" in meta:
        out["epoch"] = int(meta["epoch"])
    out.pop("mrct_state", None)
    return out


def _load_model_state(path: Path, model: torch.nn.Module, tensors: dict, strict: bool) -> None:
    model = _unwrap(model)
    own = model.state_dict()
    saved = {k: v for k, v in tensors.items() if not k.startswith(TRAIN_PREFIX)}
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    problems = []
    if strict and missing:
        problems.append(f"missing keys (in the model, not in the file): {_list(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys (in the file, not in the model): {_list(unexpected)}")
    for k in own:
        if k in saved and tuple(own[k].shape) != tuple(saved[k].shape):
            problems.append(
                f"shape mismatch for {k!r}: file has {tuple(saved[k].shape)}, model has "
                f"{tuple(own[k].shape)}"
            )
    if problems:
        raise CheckpointError(
            f"{path} does not match {type(model).__name__}: " + "; ".join(problems)
        )
    model.load_state_dict({k: v for k, v in saved.items() if k in own}, strict=strict)


def _list(keys: list[str], n: int = 8) -> str:
    more = f" ... and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(repr(k) for k in keys[:n]) + more


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module | None = None,
                    optimizer=None, scheduler=None, scaler=None, *, strict: bool = True,
                    restore_rng: bool = False) -> CheckpointInfo:  # fmt: skip
    """Load a checkpoint into ``model`` (and ``optimizer``, ``scheduler``, ``scaler``).

    The model's state must match the file key for key and shape for shape (``strict``);
    otherwise a :class:`CheckpointError` names the missing and unexpected keys and, for each
    shape mismatch, the key and both shapes. Asking for the optimizer (scheduler, scaler)
    state of a checkpoint that has none is an error too. ``restore_rng`` also restores the
    global RNG states saved with ``rng=True``. Returns a :class:`CheckpointInfo`.
    """
    path, tensors, meta = _open(path)
    if meta.get("mrct_format", FORMAT) != FORMAT:
        raise CheckpointError(
            f"{path} has format {meta['mrct_format']!r}; this mrct reads {FORMAT!r}"
        )
    kind = meta.get("kind", "weights")
    state: dict[str, Any] = {}
    if "mrct_state" in meta:
        try:
            tree = json.loads(meta["mrct_state"])
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{path}: the training state metadata is corrupt: {e}") from e
        state = _decode(tree, tensors, path)
    if model is not None:
        _load_model_state(path, model, tensors, strict)
    for key, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is None:
            continue
        if key not in state:
            raise CheckpointError(
                f"{path} holds no {key} state (a {kind!r} checkpoint); load it without the "
                f"{key}, or use a training checkpoint such as last.safetensors"
            )
        try:
            obj.load_state_dict(state[key])
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"{path}: the {key} state does not fit: {e}") from e
    if restore_rng:
        if "rng" not in state:
            raise CheckpointError(f"{path} holds no RNG state (saved without rng=True)")
        set_rng_state(state["rng"])
    extra = json.loads(meta["extra"]) if "extra" in meta else {}
    epoch = int(meta["epoch"]) if "epoch" in meta else None
    return CheckpointInfo(path, epoch, kind, extra, state, meta)


def load_weights(path: str | os.PathLike, model: torch.nn.Module,
                 strict: bool = True) -> torch.nn.Module:  # fmt: skip
    """Load only the model weights of a checkpoint (training or weights file) into ``model``;
    returns ``model``. Errors as in :func:`load_checkpoint`."""
    path, tensors, _ = _open(path)
    _load_model_state(path, model, tensors, strict)
    return model


def build_model(cls: type, path: str | os.PathLike,
                map_location: str | torch.device = "cpu") -> torch.nn.Module:  # fmt: skip
    """``cls(**model_kwargs)`` from a checkpoint's metadata, with its weights loaded, on
    ``map_location``, in eval mode. A checkpoint without ``model_kwargs``, or whose keyword
    arguments ``cls`` does not take, raises a ``ValueError`` naming ``cls``."""
    kwargs = read_metadata(path).get("model_kwargs")  # already decoded from JSON
    if not isinstance(kwargs, dict):
        raise ValueError(f"{path} holds no model_kwargs; not a {cls.__name__} checkpoint")
    kwargs = {k: v for k, v in kwargs.items() if k != "name"}
    try:
        model = cls(**kwargs)
    except TypeError as e:
        raise ValueError(f"{path} is not a {cls.__name__} checkpoint: {e}") from e
    load_weights(path, model)
    return model.to(map_location).eval()
