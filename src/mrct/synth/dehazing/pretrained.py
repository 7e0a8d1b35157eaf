"""Shipped dehazing priors: ``pretrained("dehaze-tissue-rf")`` and ``"dehaze-haze-rf"``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PRETRAINED", "pretrained"]

_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"

#: name -> weights file in ``mrct/synth/weights``
PRETRAINED = {
    "dehaze-tissue-rf": "dehaze-tissue-rf.safetensors",
    "dehaze-haze-rf": "dehaze-haze-rf.safetensors",
    "dehaze-tissue-bmode": "dehaze-tissue-bmode.safetensors",
    "dehaze-haze-bmode": "dehaze-haze-bmode.safetensors",
}


def pretrained(name: str, map_location="cpu"):
    """Load a shipped dehazing prior (a :class:`~mrct.synth.dehazing.UNetScorePrior`).

    ``MRCT_DEHAZE_WEIGHTS`` may name a folder holding the files instead of the package's.
    Raises ``FileNotFoundError`` (with the command that trains them) when the weights are not
    there.
    """
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained prior {name!r}; choose from {sorted(PRETRAINED)}")
    folder = Path(os.environ.get("MRCT_DEHAZE_WEIGHTS", _WEIGHTS))
    path = folder / PRETRAINED[name]
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: no {name} weights are shipped yet. Train them with "
            "`python scripts/train_dehaze_priors.py --gpu --out runs/dehaze` and copy "
            "runs/dehaze/<kind>/best.safetensors there (or set MRCT_DEHAZE_WEIGHTS)"
        )
    from .priors import UNetScorePrior

    return UNetScorePrior.load(path, map_location=map_location).eval()
