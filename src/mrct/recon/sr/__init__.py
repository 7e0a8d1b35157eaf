"""Super-resolution of dynamic MRI (DDoS-UNet, Chatterjee et al., arXiv:2202.05355).

One import for the pieces, which live in one module per idea:

* :mod:`mrct.recon.sr.models`: :class:`SRUNet` (one input channel) and :class:`DDoSUNet`
  (prior + current time point), 3D or 2D;
* :mod:`mrct.recon.sr.inference`: :func:`super_resolve_series` (stepwise inference: the
  planning scan is the prior of time point 0, each super-resolved time point the prior of the
  next) and :func:`load_sr_model` (from a trainer checkpoint);
* :mod:`mrct.recon.sr.data`: the ``"sr"`` training task (:func:`sr_task`) on series simulated
  by :func:`mrct.data.simulate_dynamic_series`.

The degradation (:class:`mrct.physics.KSpaceTruncation`) and the interpolation baselines
(:func:`mrct.physics.upsample_lowres`) are in :mod:`mrct.physics`. See ``docs/sr.md``.
"""

from .data import SRDataset, SRTask, make_sr_task, sr_images, sr_pairs, sr_task
from .inference import load_sr_model, model_uses_prior, super_resolve_series
from .models import SR_MODELS, DDoSUNet, SRUNet

__all__ = [
    "DDoSUNet",
    "SRUNet",
    "SR_MODELS",
    "super_resolve_series",
    "load_sr_model",
    "model_uses_prior",
    "SRDataset",
    "SRTask",
    "sr_images",
    "sr_pairs",
    "sr_task",
    "make_sr_task",
]
