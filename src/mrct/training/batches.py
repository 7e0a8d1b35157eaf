"""Batches as the loop sees them: ``(input, target)`` pairs (or dicts), moved to a device,
counted; seeding of DataLoader workers; JSON for the history."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__: list[str] = []  # internal to mrct.training


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
