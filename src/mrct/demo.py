"""Deprecated: moved to :mod:`mrct.jobs.demo`; this re-export goes away in the next release."""

from ._deprecated import moved

__getattr__, __dir__ = moved(__name__, "mrct.jobs.demo")
