"""File input and output. Every writer is atomic: nothing half-written is ever left under the
final name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_path",
    "check_outputs",
    "load_nifti",
    "load_nifti_array",
    "save_figure",
    "save_image_png",
    "save_nifti",
    "write_text",
]


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


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (JSON, Markdown, CSV reports)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def check_outputs(paths, overwrite: bool = False) -> list[Path]:
    """Check, before any work, that the files in ``paths`` may be written.

    Raises :class:`mrct.errors.OutputExistsError` naming the first one that exists when
    ``overwrite`` is false (the commands' ``--force``), and :class:`mrct.errors.ReadError`
    when one is a folder or lies below an existing file. Returns the paths. Nothing is
    created."""
    from mrct.errors import OutputExistsError, ReadError

    paths = [Path(p) for p in paths]
    for p in paths:
        if p.is_dir():
            raise ReadError(f"output {p} is a folder; give a file name", path=p)
        for parent in p.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise ReadError(f"cannot write {p}: {parent} is a file, not a folder",
                                    path=parent)  # fmt: skip
                break
        if p.exists() and not overwrite:
            raise OutputExistsError(
                f"{p} exists; pass --force to overwrite it, or choose another output", path=p
            )
    return paths


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
    """``nibabel.load(path)`` with clear errors: :class:`mrct.errors.MissingFileError` (a
    ``FileNotFoundError``) for a missing file, :class:`mrct.errors.ReadError` (a
    ``ValueError``) for one nibabel cannot read (it raises several kinds of its own)."""
    import nibabel as nib

    from mrct.errors import MissingFileError, ReadError

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist", path=path)
    try:
        return nib.load(str(path))
    except Exception as e:  # nibabel raises several kinds for a file it cannot read
        raise ReadError(f"{path} is not a readable NIfTI file: {e}", path=path) from e


def load_nifti_array(path: str | os.PathLike, dtype=None):
    """``(array, image)``: :func:`load_nifti` and its voxel data (scaled by the header's
    slope and intercept when ``dtype`` is a float type, the stored values otherwise), with
    the errors of a truncated or damaged data block turned into
    :class:`mrct.errors.ReadError` naming the file."""
    import numpy as np

    from mrct.errors import ReadError

    path = Path(path)
    img = load_nifti(path)
    try:
        if dtype is not None and np.issubdtype(np.dtype(dtype), np.floating):
            data = np.asarray(img.get_fdata(dtype=dtype))
        else:
            data = np.asarray(img.dataobj, dtype=dtype)
    except MemoryError as e:
        raise ReadError(f"{path}: its header claims {img.shape} voxels, more than fits in "
                        "memory", path=path) from e  # fmt: skip
    except Exception as e:  # truncated data: EOFError, OSError, ValueError, zlib.error ...
        raise ReadError(f"{path} is truncated or damaged: cannot read its {img.shape} voxels "
                        f"({' '.join(str(e).split())})", path=path) from e  # fmt: skip
    return data, img


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


# ------------------------------------------------------------------------ .npy / .npz arrays

#: deflate (the only compression ``np.savez_compressed`` uses) expands at most ~1032:1
_DEFLATE_MAX_RATIO = 1032


def _npy_header(fh, path, what: str):
    """Parse an ``.npy`` header from ``fh``: (shape, fortran_order, dtype, header length)."""
    import numpy as np

    from mrct.errors import ReadError, UnsafeFileError

    start = fh.tell()
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unknown .npy format version {version}")
    except Exception as e:  # numpy raises ValueError, SyntaxError, EOFError...
        raise ReadError(f"{path}: {what} has no valid .npy header: {e}", path=path) from e
    if dtype.hasobject:
        raise UnsafeFileError(
            f"{path}: {what} holds Python objects (dtype {dtype}), which can only be loaded by "
            "unpickling them; mrct never unpickles (save plain numeric arrays instead)",
            path=path,
        )
    return shape, fortran, dtype, fh.tell() - start


def load_array(path: str | os.PathLike, key: str | None = None):
    """Load one array from an ``.npy`` or ``.npz`` file, safely.

    No pickle: object arrays are refused (:class:`mrct.errors.UnsafeFileError`) and
    ``np.load`` runs with ``allow_pickle=False``. The header's shape and dtype are checked
    against the bytes the file (or the ``.npz`` member) holds before anything is allocated,
    so a truncated file or a header claiming 10^12 elements is an error, not a
    ``MemoryError``.

    Parameters
    ----------
    path : str or PathLike
        An ``.npy`` file or an ``.npz`` archive (recognised by content, not by name).
    key : str, optional
        The member of an ``.npz`` archive; default: its only member.

    Returns
    -------
    ndarray

    Raises
    ------
    mrct.errors.MissingFileError
        If ``path`` does not exist.
    mrct.errors.ReadError
        If it is not a readable ``.npy`` / ``.npz`` file, is truncated, its header is
        inconsistent, or ``key`` is absent (or needed and not given); every message names the
        file. :class:`~mrct.errors.UnsafeFileError` for object arrays.
    """
    import zipfile
    import zlib

    import numpy as np

    from mrct.errors import MissingFileError, ReadError

    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"No such file or directory: '{path}'", path=path)
    if path.is_dir():
        raise ReadError(f"{path} is a directory, not an .npy or .npz file", path=path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if size == 0:
        raise ReadError(f"{path} is empty, not an .npy or .npz file", path=path)
    errors = (OSError, EOFError, ValueError, TypeError, zipfile.BadZipFile, zlib.error)

    def check(shape, dtype, have: int, what: str) -> None:
        try:
            count = int(np.prod([int(n) for n in shape], dtype=object))
        except (TypeError, ValueError) as e:
            raise ReadError(f"{path}: {what} has a bad shape {shape!r}", path=path) from e
        if any(int(n) < 0 for n in shape) or count * dtype.itemsize > have:
            raise ReadError(
                f"{path}: {what} claims shape {tuple(shape)} of {dtype} "
                f"({count * dtype.itemsize} bytes) but holds {have} bytes (truncated file or "
                "inconsistent header)",
                path=path,
            )

    if magic == b"\x93NUMPY":
        if key is not None:
            raise ReadError(f"{path} is an .npy file, which has no key {key!r}", path=path)
        with open(path, "rb") as fh:
            shape, _, dtype, header_len = _npy_header(fh, path, "the file")
        check(shape, dtype, size - header_len, "the header")
        try:
            return np.load(path, allow_pickle=False)
        except errors as e:
            raise ReadError(f"{path} is not a readable .npy file: {e}", path=path) from e
    if magic[:4] != b"PK\x03\x04":
        raise ReadError(
            f"{path} is neither an .npy file nor an .npz archive (it starts with {magic!r})",
            path=path,
        )
    try:
        with zipfile.ZipFile(path) as zf:
            members = {
                (i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i
                for i in zf.infolist()
            }
            if key is None:
                if len(members) != 1:
                    raise ReadError(
                        f"{path} holds {len(members)} arrays {sorted(members)}; pass key= one of "
                        "them",
                        path=path,
                    )
                key = next(iter(members))
            if key not in members:
                raise ReadError(
                    f"{path} has no array {key!r}; it holds {sorted(members)}", path=path
                )
            info = members[key]
            if info.file_size > max(info.compress_size, 1) * _DEFLATE_MAX_RATIO:
                raise ReadError(
                    f"{path}: member {info.filename!r} claims {info.file_size} bytes from "
                    f"{info.compress_size} compressed (more than deflate can expand)",
                    path=path,
                )
            with zf.open(info) as fh:
                shape, _, dtype, header_len = _npy_header(
                    _Peek(fh), path, f"member {info.filename!r}"
                )
            check(shape, dtype, info.file_size - header_len, f"member {info.filename!r}")
            with zf.open(info) as fh:
                arr = np.lib.format.read_array(fh, allow_pickle=False)
    except ReadError:
        raise
    except errors as e:
        raise ReadError(f"{path} is not a readable .npz archive: {e}", path=path) from e
    return arr


class _Peek:
    """A zip member stream with ``tell`` (``np.lib.format`` header parsing asks for it)."""

    def __init__(self, fh):
        self._fh, self._pos = fh, 0

    def read(self, n=-1):
        data = self._fh.read(n)
        self._pos += len(data)
        return data

    def tell(self):
        return self._pos


__all__ += ["load_array"]
