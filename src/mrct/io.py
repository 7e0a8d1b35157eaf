"""File input and output. Every writer is atomic: nothing half-written is ever left under the
final name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "load_nifti", "save_figure", "save_image_png", "save_nifti"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files; give the result the usual mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically (format from the suffix, PNG usually)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    return path


def save_image_png(image, path: str | os.PathLike, vmin=None, vmax=None, cmap="gray") -> Path:
    """Save a 2D array as a PNG image atomically (no pyplot: leaves the backend alone)."""
    from matplotlib.image import imsave

    with atomic_path(path) as tmp:
        imsave(tmp, image, vmin=vmin, vmax=vmax, cmap=cmap, format="png")
    return Path(path)


def load_nifti(path: str | os.PathLike):
    """``nibabel.load(path)`` with clear errors: ``FileNotFoundError`` for a missing file,
    ``ValueError`` for one nibabel cannot read (it raises several kinds of its own)."""
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return nib.load(str(path))
    except Exception as e:  # nibabel raises several kinds for a file it cannot read
        raise ValueError(f"{path} is not a readable NIfTI file: {e}") from e


def save_nifti(path: str | os.PathLike, array, affine=None, *, header=None,
               xyzt_units: tuple | None = None, time_step: float | None = None,
               description: str | None = None) -> Path:  # fmt: skip
    """Write ``array`` (float32, voxel axes as stored) as NIfTI-1 to ``path``, atomically.

    ``affine``: voxel-to-world (4 x 4, mm; the identity when None), kept exactly. The file is
    gzipped when ``path`` ends in ``.gz`` (``.nii.gz``). ``header``: a nibabel header to start
    from (e.g. the input's, so that the output keeps its orientation codes and units; its
    scaling is reset to slope 1, intercept 0). ``xyzt_units``: ``("mm",)`` or
    ``("mm", "sec")``; ``time_step``: the fourth zoom of a 4D file; ``description``: the
    header's ``descrip`` field. Returns ``path``.
    """
    import gzip

    import nibabel as nib
    import numpy as np

    path = Path(path)
    data = np.asarray(array, dtype=np.float32)
    affine = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
    if header is not None:
        header = header.copy()
        header.set_data_dtype(np.float32)
    img = nib.Nifti1Image(data, affine, header)
    if header is not None:
        img.header.set_slope_inter(1.0, 0.0)
    if xyzt_units is not None:
        img.header.set_xyzt_units(*xyzt_units)
    if time_step is not None and data.ndim >= 4:
        img.header.set_zooms((*img.header.get_zooms()[:3], float(time_step)))
    if description is not None:
        img.header["descrip"] = description.encode()[:79]
    raw = img.to_bytes()
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(raw, compresslevel=6) if path.name.endswith(".gz") else raw)
    return path
