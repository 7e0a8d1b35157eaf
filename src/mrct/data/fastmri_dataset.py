"""A torch ``Dataset`` over the slices of a folder of fastMRI HDF5 files (see :mod:`.fastmri`).

Each item opens its file, reads one slice and closes it; no handle is kept (fastMRI #215).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch.utils.data

from mrct.errors import MissingFileError, ReadError

from .fastmri import (
    FastMRIFile,
)

__all__ = ["FastMRIDataset", "FastMRISample"]


class FastMRISample(NamedTuple):
    """One slice, in the order fastMRI's ``SliceDataset`` passes it to a transform."""

    kspace: np.ndarray
    """complex64, ``(C, H, W)`` or ``(H, W)``"""
    mask: np.ndarray | None
    """the file's ``mask`` dataset, or None"""
    target: np.ndarray | None
    """float32 ``(h, w)``, or None"""
    attrs: dict
    """root attributes updated with :func:`parse_ismrmrd_header`'s fields"""
    fname: str
    """file name (no folder)"""
    slice_num: int


class FastMRIDataset(torch.utils.data.Dataset):
    """Map-style dataset over every slice of every fastMRI file in a folder.

    The index is built from the ``kspace`` shapes (and headers) only; each item opens its file,
    reads one slice and closes it. Items are :class:`FastMRISample` tuples, or
    ``transform(kspace, mask, target, attrs, fname, slice_num)`` when a transform is given,
    the call signature of fastMRI's ``SliceDataset`` (so fastMRI transforms plug in).

    Parameters
    ----------
    folder : str or PathLike
        Folder of ``.h5`` files (sorted by name).
    transform : callable, optional
    pattern : str
        Glob pattern of the files (``"*.h5"``; ``"**/*.h5"`` to recurse).

    Raises
    ------
    mrct.errors.MissingFileError
        If ``folder`` does not exist (a ``FileNotFoundError``).
    mrct.errors.ReadError
        If it holds no matching file, or a file is not a fastMRI HDF5 file (the message names
        it).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        transform: Callable | None = None,
        *,
        pattern: str = "*.h5",
    ):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise MissingFileError(f"No such folder: '{self.folder}'", path=self.folder)
        self.transform = transform
        self.files = sorted(p for p in self.folder.glob(pattern) if p.is_file())
        if not self.files:
            raise ReadError(f"no files matching '{pattern}' in {self.folder}", path=self.folder)
        self.samples: list[tuple[Path, int]] = []
        self._metadata: dict[Path, dict] = {}
        for p in self.files:
            with FastMRIFile(p) as f:
                self._metadata[p] = f.metadata
                self.samples.extend((p, i) for i in range(f.n_slices))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, i = self.samples[index]
        with FastMRIFile(path) as f:
            kspace = f.kspace(i)
            mask = f.mask
            target = f.target(i)
            attrs = f.attrs
        attrs.update(self._metadata[path])
        if self.transform is None:
            return FastMRISample(kspace, mask, target, attrs, path.name, i)
        return self.transform(kspace, mask, target, attrs, path.name, i)
