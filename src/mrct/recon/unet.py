"""Deprecated: moved to :mod:`mrct.nn.unet` (``from mrct.nn import UNet``); this re-export goes
away in the next release."""

from .._deprecated import moved

__getattr__, __dir__ = moved(__name__, "mrct.nn.unet")
