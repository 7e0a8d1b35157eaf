"""The :class:`Volume` every reader returns, and the canonical orientation helpers.

Axes run toward patient Superior, Posterior and Left (``"SPL"``); see :mod:`mrct.data.readers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations as nio

from mrct.errors import MissingFileError

__all__ = ["CANONICAL_AXCODES", "Volume"]

#: Axis codes of the canonical array orientation (axis 0 -> S, axis 1 -> P, axis 2 -> L).
CANONICAL_AXCODES = ("S", "P", "L")

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(eq=False)
class Volume:
    """An image volume with its geometry.

    Attributes
    ----------
    array : ndarray, shape (D, H, W) or (H, W)
        Voxel values (float32 by default; HU for CT). ``(H, W)`` for a single DICOM image.
    spacing : tuple of float
        Voxel size in mm along each array axis (same order as ``array.shape``).
    affine : ndarray, shape (4, 4)
        Maps ``(k, i, j, 1)`` array indices to RAS world mm. For a 2D array the first column
        is the slice normal (scaled by the slice thickness) and ``affine @ (0, i, j, 1)`` is
        the centre of pixel ``(i, j)``.
    orientation : str
        Axis codes of the array axes, one letter per axis (``"SPL"``; ``"PL"`` for an axial
        2D image).
    metadata : dict
        Reader-specific information (source path(s), original orientation, DICOM tags...).
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    affine: np.ndarray
    orientation: str
    metadata: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of :attr:`array`."""
        return self.array.shape

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.4g}" for s in self.spacing)
        return (
            f"Volume(shape={self.array.shape}, dtype={self.array.dtype}, spacing=({sp}), "
            f"orientation={self.orientation!r})"
        )


# ------------------------------------------------------------------------- orientation


def _reorient(
    data: np.ndarray, affine: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str, np.ndarray]:
    """Reorient the first three axes of ``data`` to :data:`CANONICAL_AXCODES`.

    Returns the reoriented (C-contiguous) array, its affine ``A_new = A inv_ornt_aff``
    (so that the same voxel maps to the same world point), the original axis codes and the
    ``(3, 2)`` orientation transform (row ``i``: new axis index and flip of original axis i).
    """
    orig = nio.io_orientation(affine)
    target = nio.axcodes2ornt(CANONICAL_AXCODES)
    transform = nio.ornt_transform(orig, target)
    new = nio.apply_orientation(data, transform)
    new_affine = affine @ nio.inv_ornt_aff(transform, data.shape[:3])
    orig_codes = "".join(c or "?" for c in nio.ornt2axcodes(orig))
    return np.ascontiguousarray(new), new_affine, orig_codes, transform


def _spacing_from_affine(affine: np.ndarray) -> tuple[float, ...]:
    """Voxel sizes (mm): column norms of the affine's linear part."""
    return tuple(float(v) for v in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))


def _axcodes(affine: np.ndarray) -> str:
    return "".join(c or "?" for c in nib.aff2axcodes(affine))


# ------------------------------------------------------------------------------- NIfTI


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise MissingFileError(f"No such file or directory: '{path}'", path=path)
