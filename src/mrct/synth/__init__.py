"""Diffusion-based image synthesis built on diffusers.

* :class:`ConditionalDiffusion`: conditional DDPM training / DDIM sampling on a diffusers
  ``UNet2DModel`` (EMA, classifier-free guidance, 2D and 2.5D, safetensors checkpoints);
* :func:`dps` and :func:`diffpir`: posterior sampling with any mrct ``LinearOperator``;
* :class:`SCTUNet`: the deterministic UNet regression baseline;
* :mod:`mrct.synth.sct_data`: simulated CBCT->CT and MRI->CT pairs from the shared chest CT;
* :mod:`mrct.synth.sct`: the shipped sCT models and their loader (``mrct synth sct`` runs
  :mod:`mrct.jobs.sct`).
* :mod:`mrct.synth.lesion`: LeFusion-style lesion inpainting (:func:`inpaint_lesion`,
  :func:`lesion_mask`, :func:`pretrained` ``"lefusion-lung-ct"`` / ``"lefusion-mask"``;
  ``mrct lesion`` runs :mod:`mrct.jobs.lesion`).

See ``docs/synth.md``.
"""

from .diffusion import ConditionalDiffusion, stack_neighbours
from .lesion import inpaint_lesion, lesion_mask, pretrained
from .posterior import diffpir, dps
from .regression import SCTUNet

__all__ = [
    "ConditionalDiffusion",
    "SCTUNet",
    "diffpir",
    "dps",
    "inpaint_lesion",
    "lesion_mask",
    "pretrained",
    "stack_neighbours",
]
