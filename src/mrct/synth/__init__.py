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
* :mod:`mrct.synth.lesion`: LeFusion-style lesion inpainting (:func:`inpaint_lesion`,
  :func:`lesion_mask`, models ``"lefusion-lung-ct"`` / ``"lefusion-mask"``;
  ``mrct lesion`` runs :mod:`mrct.jobs.lesion`).

* :func:`pretrained` / :func:`list_pretrained`: every shipped synthesis model by name.

See ``docs/synth.md``.
"""

from .dehazing import dehaze
from .diffusion import ConditionalDiffusion, stack_neighbours
from .lesion import inpaint_lesion, lesion_mask
from .posterior import diffpir, dps
from .pretrained import list_pretrained, pretrained
from .regression import SCTUNet

__all__ = [
    "ConditionalDiffusion",
    "SCTUNet",
    "dehaze",
    "diffpir",
    "dps",
    "inpaint_lesion",
    "lesion_mask",
    "list_pretrained",
    "pretrained",
    "stack_neighbours",
]
