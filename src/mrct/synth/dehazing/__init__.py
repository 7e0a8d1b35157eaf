"""Ultrasound dehazing by joint posterior sampling with two diffusion priors.

After Stevens, Meral, Yu, Apostolakis, Robert and van Sloun, "Dehazing Ultrasound using
Diffusion Models", IEEE TMI 2024: hazy data ``y = x + h`` is separated into tissue ``x`` and
haze ``h`` by sampling ``p(x, h | y)`` with a tissue prior and a haze prior trained
separately. See ``docs/ultrasound.md``.

* :func:`dehaze`: whole frames (RF or B-mode), patch-wise with overlap;
* :func:`joint_posterior_sample`: the sampler (score-SDE Euler-Maruyama on ``x`` and ``h``,
  data consistency in the expanded domain, CCDF start, ``"pigdm"``, ``"dps"`` and
  ``"projection"`` guidance);
* :class:`GaussianPrior`, :class:`UNetScorePrior`: closed-form and diffusers score priors.
"""

from .frames import dehaze, patch_starts
from .pretrained import PRETRAINED, pretrained
from .priors import GaussianPrior, UNetScorePrior
from .sampler import GUIDANCE, VESDE, joint_posterior_sample

__all__ = [
    "GUIDANCE",
    "PRETRAINED",
    "GaussianPrior",
    "UNetScorePrior",
    "VESDE",
    "dehaze",
    "joint_posterior_sample",
    "patch_starts",
    "pretrained",
]
