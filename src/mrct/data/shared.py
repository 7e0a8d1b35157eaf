"""Access to the real volumes of the sibling ``shared/data`` folder (not shipped with mrct).

The folder lives next to the repository (``<repo>/../shared/data``) or wherever the
environment variable ``MRCT_SHARED_DATA`` points; see its ``README.md`` for provenance and
licences. Files used here:

* ``chest_ct/chest_ct.nii.gz``: thoracic CT in HU (LIDC-IDRI-0001), on disk 512 x 512 x 133
  (LAS) at 0.703 x 0.703 x 2.5 mm; ``chest_ct/chest_ct_labels.nii.gz``: its organ labels.
* ``brain_mri/mni152_{t1,gm,wm}.nii.gz``: the MNI152 2009a template (T1, grey and white
  matter probabilities, uint8), on disk 197 x 233 x 189 (RAS) at 1 mm.

All loaders return :class:`~mrct.data.readers.Volume` objects in the canonical SPL
orientation.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mrct.errors import MissingFileError

from .readers import Volume, read_nifti

__all__ = [
    "CT_SPLITS",
    "SharedDataMissing",
    "chest_ct_slice",
    "load_brain_mri",
    "load_chest_ct",
    "require_shared_data",
    "shared_data_dir",
]

ENV_VAR = "MRCT_SHARED_DATA"
#: slice ranges of the shared chest CT (133 axial slices, S axis) for training, validation
#: and test; gaps avoid neighbours across splits (slices are 2.5 mm apart)
CT_SPLITS = {"train": (0, 90), "val": (93, 103), "test": (106, 133)}
_BRAIN_TISSUES = ("t1", "gm", "wm")


class SharedDataMissing(MissingFileError):
    """The shared data folder, or a file in it, is not available (a ``FileNotFoundError`` and
    an :class:`mrct.MrctError`)."""


def _candidates() -> list[Path]:
    """Every ``<ancestor>/shared/data`` of this file's and the working directory's paths."""
    starts = [Path(__file__).resolve().parent, Path.cwd().resolve()]
    out: list[Path] = []
    for start in starts:
        for anc in (start, *start.parents):
            cand = anc / "shared" / "data"
            if cand not in out:
                out.append(cand)
    return out


def shared_data_dir() -> Path | None:
    """Location of the shared data folder, or None when it cannot be found.

    ``$MRCT_SHARED_DATA`` wins when set (None if it is not a directory). Otherwise the
    first existing ``shared/data`` folder found by walking up from this module's location
    and then from the current working directory (i.e. ``<repo root>/../shared/data``, or
    ``<repo root>/shared/data``).

    Returns
    -------
    pathlib.Path or None
    """
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        return p.resolve() if p.is_dir() else None
    for cand in _candidates():
        if cand.is_dir():
            return cand
    return None


def _missing_message(what: str) -> str:
    env = os.environ.get(ENV_VAR)
    if env:
        where = f"${ENV_VAR}={env!r}"
    else:
        looked = ", ".join(str(c) for c in _candidates()[:4])
        where = f"{looked}, ... (every 'shared/data' above the package and the working dir)"
    return (
        f"{what} is not available. Looked in {where}. Put the data in '<repo>/../shared/data' "
        f"or set the environment variable {ENV_VAR} to the folder that holds chest_ct/ and "
        "brain_mri/."
    )


def _data_file(*parts: str) -> Path:
    root = shared_data_dir()
    if root is None:
        raise SharedDataMissing(_missing_message("the shared data folder"))
    path = root.joinpath(*parts)
    if not path.is_file():
        raise SharedDataMissing(_missing_message(f"'{'/'.join(parts)}' (under {root})"))
    return path


def require_shared_data() -> Path:
    """Return :func:`shared_data_dir` or skip the calling pytest test when it is absent."""
    root = shared_data_dir()
    if root is None:
        import pytest

        pytest.skip(_missing_message("the shared data folder"))
    return root


def load_chest_ct(labels: bool = False) -> Volume | tuple[Volume, Volume]:
    """Load the shared thoracic CT (HU, float32) in SPL orientation.

    Parameters
    ----------
    labels : bool
        Also load the TotalSegmentator label map (uint8 ids 0..118, see
        ``chest_ct/chest_ct_labels.csv``) on the same grid.

    Returns
    -------
    Volume or (Volume, Volume)
        The CT, shape ``(133, 512, 512)``, spacing ``(2.5, 0.703125, 0.703125)`` mm; with
        ``labels=True`` the tuple ``(ct, labels)``.

    Raises
    ------
    SharedDataMissing
        If the files cannot be found.
    """
    ct = read_nifti(_data_file("chest_ct", "chest_ct.nii.gz"))
    if not labels:
        return ct
    lab = read_nifti(_data_file("chest_ct", "chest_ct_labels.nii.gz"), dtype=np.uint8)
    return ct, lab


def load_brain_mri(tissue: str = "t1") -> Volume:
    """Load the MNI152 template (float32, values 0..255) in SPL orientation.

    Parameters
    ----------
    tissue : {"t1", "gm", "wm"}
        T1-weighted image, grey-matter or white-matter probability map.

    Returns
    -------
    Volume
        Shape ``(189, 233, 197)`` (S, P, L), 1 mm isotropic.
    """
    tissue = str(tissue).lower()
    if tissue not in _BRAIN_TISSUES:
        raise ValueError(f"tissue must be one of {_BRAIN_TISSUES}, got {tissue!r}")
    return read_nifti(_data_file("brain_mri", f"mni152_{tissue}.nii.gz"))


def chest_ct_slice(index: int | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    """One axial slice of the shared chest CT.

    Parameters
    ----------
    index : int, optional
        Slice index along the S axis of :func:`load_chest_ct` (negative counts from the
        top); the middle slice ``D // 2`` by default.

    Returns
    -------
    image : ndarray, shape (512, 512), float32
        HU, radiological view (anterior at the top, patient right on the left).
    spacing : (float, float)
        Pixel size ``(s_y, s_x)`` in mm.
    """
    ct = load_chest_ct()
    D = ct.array.shape[0]
    k = D // 2 if index is None else int(index)
    if not -D <= k < D:
        raise IndexError(f"slice index {index} out of range for {D} slices")
    return np.ascontiguousarray(ct.array[k]), (ct.spacing[1], ct.spacing[2])
