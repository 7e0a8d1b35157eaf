"""Deprecated: the training engine moved to :mod:`mrct.training` (and ``mrct train``'s config
-> task -> model step to :mod:`mrct.recon.train`); this re-export goes away in the next
release."""

from .._deprecated import moved

__getattr__, __dir__ = moved(__name__, "mrct.training", "mrct.training.loop",
                             "mrct.training.config", "mrct.training.distributed",
                             "mrct.recon.train")  # fmt: skip
