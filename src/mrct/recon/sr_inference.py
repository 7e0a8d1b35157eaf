"""Deprecated: moved to :mod:`mrct.recon.sr.inference`; this re-export goes away
in the next release."""

from .._deprecated import moved

__getattr__, __dir__ = moved(__name__, "mrct.recon.sr.inference")
