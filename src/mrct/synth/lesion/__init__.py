"""Lesion inpainting: LeFusion-style lesion-focused diffusion for CT (issue #21).

* :class:`LesionDiffusion` (:mod:`~mrct.synth.lesion.model`): learns only inside the lesion
  mask, keeps the background by RePaint, texture controlled by per-class intensity
  histograms, one channel per nodule class (solid core, ground-glass halo); 2D on diffusers'
  ``UNet2DModel`` or 3D on :class:`~mrct.synth.lesion.nets.TimeUNet3D`;
* :class:`MaskDiffusion`: lesion masks inside a control sphere;
* :func:`inpaint_lesion`, :func:`lesion_mask`, :func:`pretrained` (:mod:`.inference`);
* training data (:mod:`.data`): crops of the chest CT's lungs with nodules of
  :mod:`mrct.data.lesions`, histogram presets (k-means), ``make_lesion_task`` for
  ``mrct train configs/lesion-*.toml`` and ``scripts/train_lesion.py``.

See ``docs/synth.md``.
"""

from .data import (
    HU_RANGE,
    histogram_presets,
    hu_to_unit,
    lesion_crops,
    make_lesion_task,
    perturb_histogram,
    unit_to_hu,
)
from .inference import PRETRAINED, inpaint_lesion, lesion_mask, pretrained, resolve_histogram
from .model import LesionDiffusion, MaskDiffusion, lesion_histogram, repaint_schedule
from .nets import TimeUNet3D

__all__ = [
    "HU_RANGE",
    "PRETRAINED",
    "LesionDiffusion",
    "MaskDiffusion",
    "TimeUNet3D",
    "histogram_presets",
    "hu_to_unit",
    "inpaint_lesion",
    "lesion_crops",
    "lesion_histogram",
    "lesion_mask",
    "make_lesion_task",
    "perturb_histogram",
    "pretrained",
    "repaint_schedule",
    "resolve_histogram",
    "unit_to_hu",
]
