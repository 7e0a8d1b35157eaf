"""Diffusion-based image synthesis built on diffusers.

* :class:`ConditionalDiffusion`: conditional DDPM training / DDIM sampling on a diffusers
  ``UNet2DModel`` (EMA, classifier-free guidance, 2D and 2.5D, safetensors checkpoints);
* :func:`dps` and :func:`diffpir`: posterior sampling with any mrct ``LinearOperator``;
* :class:`SCTUNet`: the deterministic UNet regression baseline;
* :mod:`mrct.synth.sct_data`: simulated CBCT->CT and MRI->CT pairs from the shared chest CT;
* :func:`dehaze` (:mod:`mrct.synth.dehazing`): ultrasound dehazing by joint posterior
  sampling with a tissue and a haze prior;
* :mod:`mrct.synth.sct`: the shipped sCT models and their loader (``mrct synth sct`` runs
  :mod:`mrct.jobs.sct`).

See ``docs/synth.md``.
"""

from .dehazing import dehaze, pretrained
from .diffusion import ConditionalDiffusion, stack_neighbours
from .posterior import diffpir, dps
from .regression import SCTUNet

__all__ = [
    "ConditionalDiffusion",
    "SCTUNet",
    "dehaze",
    "diffpir",
    "pretrained",
    "dps",
    "stack_neighbours",
]
