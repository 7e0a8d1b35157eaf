"""``mrct.synth.pretrained(name)``: one entry point for every shipped synthesis model.

Names are routed to the capability that owns them: ``"lefusion-*"`` to
:func:`mrct.synth.lesion.pretrained`, ``"dehaze-*"`` to
:func:`mrct.synth.dehazing.pretrained`. :func:`list_pretrained` lists them all.
"""

from __future__ import annotations

__all__ = ["pretrained", "list_pretrained"]


def _registries() -> dict:
    from .dehazing import pretrained as dehaze_pretrained
    from .dehazing.pretrained import PRETRAINED as DEHAZE
    from .lesion import pretrained as lesion_pretrained
    from .lesion.inference import PRETRAINED as LESION

    def dehaze(name, device):
        return dehaze_pretrained(name, map_location=device)

    def lesion(name, device):
        return lesion_pretrained(name, device=device)

    return {**{n: lesion for n in LESION}, **{n: dehaze for n in DEHAZE}}


def list_pretrained() -> list[str]:
    """Names accepted by :func:`pretrained` (whether or not their weights are shipped yet)."""
    return sorted(_registries())


def pretrained(name: str, device: str = "cpu"):
    """Load the shipped synthesis model ``name`` in eval mode on ``device``.

    ``"lefusion-lung-ct"``, ``"lefusion-mask"`` (lesion inpainting, ``docs/synth.md``),
    ``"dehaze-tissue-rf"``, ``"dehaze-haze-rf"`` and the B-mode variants (ultrasound
    dehazing priors, ``docs/ultrasound.md``). A name whose weights are not shipped raises
    ``FileNotFoundError`` naming the script that trains them; an unknown name raises
    ``ValueError`` listing the known ones.
    """
    reg = _registries()
    if name not in reg:
        raise ValueError(f"unknown synthesis model {name!r}; known: {sorted(reg)}")
    return reg[name](name, device)
