"""Reconstructors: classical (FBP, SIRT, CGLS, CG-SENSE, TV-PDHG) and learned.

Classical iterative solvers (see ``docs/recon.md``): :func:`sirt` and :func:`cgls` for CT,
:func:`cg_sense` for Cartesian and non-Cartesian (:class:`mrct.physics.SenseNUFFT`) MRI,
:func:`tv_pdhg` (total-variation regularisation by Chambolle-Pock) for both. Each returns the
image, or ``(image, History)`` with ``return_history=True``.

Learned reconstructors on mrct's autograd projectors: :class:`LearnedPrimalDual`,
:class:`PrimalDualUNet`, :class:`FBPConvNet`; shipped weights through :func:`pretrained`;
training with :func:`fit` / :class:`Trainer` / ``mrct train`` (:mod:`mrct.recon.training`).
"""

from .cg_sense import cg_sense
from .cgls import cgls
from .checkpoint import load_checkpoint, load_weights, save_checkpoint
from .fbpconvnet import FBPConvNet
from .iterative import History
from .pretrained import list_pretrained, pretrained
from .primal_dual import LearnedPrimalDual, PrimalDualUNet
from .sirt import sirt
from .sr import DDoSUNet, SRUNet, load_sr_model, super_resolve_series
from .training import TrainConfig, Trainer, fit, train_from_config
from .tv_pdhg import total_variation, tv_pdhg
from .unet import UNet

__all__: list[str] = [
    "History",
    "cg_sense",
    "cgls",
    "sirt",
    "total_variation",
    "tv_pdhg",
    "FBPConvNet",
    "LearnedPrimalDual",
    "PrimalDualUNet",
    "UNet",
    "DDoSUNet",
    "SRUNet",
    "super_resolve_series",
    "load_sr_model",
    "list_pretrained",
    "pretrained",
    "TrainConfig",
    "Trainer",
    "fit",
    "train_from_config",
    "save_checkpoint",
    "load_checkpoint",
    "load_weights",
]
