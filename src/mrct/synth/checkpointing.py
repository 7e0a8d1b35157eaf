"""Save and load mrct.synth models through their constructor arguments (``self.config``)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ConfigCheckpoint"]


class ConfigCheckpoint:
    """Mixin for an ``nn.Module`` whose ``config`` dict holds its constructor arguments:
    :meth:`save` writes the weights (buffers included, e.g. EMA copies) and ``config`` to one
    ``.safetensors`` file, atomically (mrct checkpoint format); :meth:`load` rebuilds it."""

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> Path:
        from ..recon.checkpoint import save_checkpoint

        name = f"mrct.synth:{type(self).__name__}"
        return save_checkpoint(path, self, model_kwargs=self.config,
                               extra={"model": name, **(extra or {})})  # fmt: skip

    @classmethod
    def load(cls, path: str | os.PathLike, map_location="cpu"):
        """Rebuild a model from :meth:`save` (or a trainer checkpoint of this class)."""
        from ..recon.checkpoint import build_model

        return build_model(cls, path, map_location)
