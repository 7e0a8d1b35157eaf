"""Reconstructors: classical (FBP, SIRT, CGLS, CG-SENSE, TV-PDHG) and learned.

Classical iterative solvers (see ``docs/recon.md``): :func:`sirt` and :func:`cgls` for CT,
:func:`cg_sense` for Cartesian and non-Cartesian (:class:`mrct.physics.SenseNUFFT`) MRI,
:func:`tv_pdhg` (total-variation regularisation by Chambolle-Pock) for both. Each returns the
image, or ``(image, History)`` with ``return_history=True``.

Learned reconstructors on mrct's autograd projectors: :class:`LearnedPrimalDual`,
:class:`PrimalDualUNet`, :class:`FBPConvNet`; shipped weights through :func:`pretrained`
and :func:`recommended` (the model ``docs/results.md`` recommends per task);
:func:`simulate` turns your own image into a model's input and its reference;
``mrct train CONFIG`` through :func:`train_from_config` (:mod:`mrct.recon.train`) on the one
training engine, :mod:`mrct.training`. Super-resolution of dynamic MRI is the subpackage
:mod:`mrct.recon.sr`.

``fit``, ``Trainer``, ``TrainConfig``, ``save_checkpoint``, ``load_checkpoint`` and
``load_weights`` still import from here, with a ``DeprecationWarning``: they live in
:mod:`mrct.training`.
"""

from ..nn.unet import UNet
from .cg_sense import cg_sense
from .cgls import cgls
from .fbpconvnet import FBPConvNet
from .iterative import History
from .pretrained import list_pretrained, pretrained, recommended
from .primal_dual import LearnedPrimalDual, PrimalDualUNet
from .simulate import simulate
from .sirt import sirt
from .sr import DDoSUNet, SRUNet, load_sr_model, super_resolve_series
from .train import train_from_config
from .tv_pdhg import total_variation, tv_pdhg

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
    "recommended",
    "simulate",
    "TrainConfig",
    "Trainer",
    "fit",
    "train_from_config",
    "save_checkpoint",
    "load_checkpoint",
    "load_weights",
]

# moved to mrct.training; served with a DeprecationWarning for one release
_MOVED = {name: "mrct.training" for name in ("TrainConfig", "Trainer", "fit", "save_checkpoint",
                                              "load_checkpoint", "load_weights")}  # fmt: skip


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        from .._deprecated import warn_moved

        warn_moved(f"mrct.recon.{name}", f"{_MOVED[name]}.{name}")
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'mrct.recon' has no attribute {name!r}")
