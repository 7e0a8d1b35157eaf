"""NIfTI-1/2 reader (``.nii``, ``.nii.gz``) with header checks before any allocation."""

from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from mrct.errors import ReadError

from .volume import (
    Volume,
    _axcodes,
    _check_exists,
    _reorient,
    _spacing_from_affine,
)

__all__ = ["read_nifti"]


#: A reader allocates at most this many bytes per byte of file (raw float64 output of int8
#: data is 8x; the reorientation makes one copy) before it has checked that the file holds
#: the data its header claims.
_DEFLATE_MAX_RATIO = 1032  # deflate cannot expand data more than ~1032:1


def _nifti_error(path: Path, what: str) -> ReadError:
    return ReadError(f"{path} is not a valid NIfTI file: {what}", path=path)


def _gunzip_bounded(path: Path, limit: int) -> bytes:
    """Decompress a gzip file in chunks, refusing more than ``limit`` bytes of output."""
    out = []
    total = 0
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(1 << 20)
            if not chunk:
                break
            while chunk:
                piece = d.decompress(chunk, max(1, limit + 1 - total))
                total += len(piece)
                out.append(piece)
                if total > limit:
                    raise _nifti_error(path, f"decompresses to more than {limit} bytes")
                chunk = d.unconsumed_tail
                if d.eof:  # a second gzip member: start again on what is left
                    rest = d.unused_data + fh.read()
                    if not rest.strip(b"\x00"):
                        return b"".join(out)
                    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    chunk = rest
    if not d.eof:
        raise _nifti_error(path, "the gzip stream is truncated")
    return b"".join(out)


def _load_nifti_image(path: Path):
    """The nibabel image of ``path`` after checking that the file holds what its header claims.

    ``.nii``: the header's data size (``vox_offset + prod(dim) * bitpix / 8``) must fit in the
    file before anything is allocated. ``.nii.gz``: the stream is decompressed in chunks up to
    the largest size deflate allows for the file and parsed from memory, so a truncated or
    lying stream is an error and never a large allocation.
    """
    size = path.stat().st_size
    if size == 0:
        raise _nifti_error(path, "the file is empty")
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == b"\x1f\x8b":
        try:
            raw = _gunzip_bounded(path, size * _DEFLATE_MAX_RATIO + (1 << 16))
        except (OSError, EOFError, zlib.error) as exc:
            raise _nifti_error(path, f"bad gzip stream: {exc}") from exc
    else:
        raw = None
        if path.name.lower().endswith(".gz"):
            raise _nifti_error(path, "the name ends in .gz but the file is not gzip-compressed")
    nbytes = len(raw) if raw is not None else size
    try:
        if raw is not None:
            header_bytes = raw[:540]
        else:
            with open(path, "rb") as fh:
                header_bytes = fh.read(540)
        klass = _nifti_class(header_bytes)
        if klass is None:
            raise _nifti_error(path, "no NIfTI-1 or NIfTI-2 header (bad sizeof_hdr or magic)")
        hdr = klass.header_class.from_fileobj(io.BytesIO(header_bytes))
        shape = hdr.get_data_shape()
        dtype = hdr.get_data_dtype()
        offset = int(hdr.get_data_offset())
    except ReadError:
        raise
    except Exception as exc:
        raise _nifti_error(path, f"bad header: {exc}") from exc
    if any(int(n) < 0 for n in shape):
        raise _nifti_error(path, f"negative dimension in the header: {tuple(shape)}")
    claimed = offset + int(np.prod([int(n) for n in shape], dtype=object)) * dtype.itemsize
    if claimed > nbytes:
        raise _nifti_error(
            path,
            f"the header claims {tuple(int(n) for n in shape)} voxels of {dtype} "
            f"({claimed} bytes with the {offset}-byte offset) but the "
            f"{'decompressed ' if raw is not None else ''}file holds {nbytes} bytes "
            "(truncated file or inconsistent header)",
        )
    try:
        if raw is not None:
            return klass.from_bytes(raw)
        return klass.from_filename(str(path))
    except MemoryError:
        raise
    except Exception as exc:  # nibabel raises many types for bad headers
        raise _nifti_error(path, str(exc) or type(exc).__name__) from exc


def _nifti_class(header_bytes: bytes):
    """Nifti1Image or Nifti2Image from sizeof_hdr (either endianness), or None."""
    if len(header_bytes) < 348:
        return None
    for order in ("<", ">"):
        n = int(np.frombuffer(header_bytes[:4], dtype=f"{order}i4")[0])
        if n == 348:
            return nib.Nifti1Image
        if n == 540 and len(header_bytes) >= 540:
            return nib.Nifti2Image
    return None


def _check_affine(path: Path, affine: np.ndarray) -> None:
    lin = affine[:3, :3]
    if not np.all(np.isfinite(affine)):
        raise _nifti_error(path, f"non-finite affine (NaN or Inf voxel size or offset):\n{affine}")
    sizes = np.sqrt((lin**2).sum(axis=0))
    if np.any(sizes == 0) or abs(np.linalg.det(lin)) <= 1e-12 * float(np.prod(sizes)):
        raise _nifti_error(
            path, f"singular affine (a voxel size of 0 or collinear axes), zooms {sizes}"
        )


def read_nifti(path: str | os.PathLike, dtype=np.float32) -> Volume:
    """Read a NIfTI-1/2 file (``.nii`` or ``.nii.gz``) in the canonical SPL orientation.

    Values are scaled by ``scl_slope`` / ``scl_inter`` (nibabel's ``get_fdata``), so CT stays
    in HU. The axes are permuted/flipped with ``nibabel.orientations`` (``io_orientation``,
    ``ornt_transform``, ``apply_orientation``) so that they run toward S, P, L, and the affine
    is updated with ``inv_ornt_aff``: the reoriented voxel ``[k, i, j]`` maps to the same
    world point as the original voxel it came from. Extra (e.g. time) axes of a 4D file are
    moved in front: ``(T, D, H, W)``.

    Parameters
    ----------
    path : str or PathLike
        The file.
    dtype : numpy dtype
        Output dtype. Floating dtypes use ``get_fdata``; integer dtypes (label maps) round
        the scaled values.

    Returns
    -------
    Volume
        ``array`` of shape ``(D, H, W)``, ``spacing`` ``(s_S, s_P, s_L)`` in mm,
        ``orientation == "SPL"``; ``metadata`` holds the source path, original shape, axis
        codes and affine.

    Raises
    ------
    mrct.errors.MissingFileError
        If ``path`` does not exist (a ``FileNotFoundError``).
    mrct.errors.ReadError
        If the file is not a readable NIfTI image (a ``ValueError``): truncated, not NIfTI, a
        header whose data does not fit in the file, a non-finite or singular affine,
        non-finite scaling, no voxels. The message names the file and the problem.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        raise ReadError(f"{path} is a directory, not a NIfTI file", path=path)
    dtype = np.dtype(dtype)
    img = _load_nifti_image(path)
    try:
        affine = np.asarray(img.affine, dtype=np.float64)
    except Exception as exc:
        raise _nifti_error(path, f"bad geometry in the header: {exc}") from exc
    _check_affine(path, affine)
    slope, inter = img.header.get_slope_inter()
    for name, v in (("scl_slope", slope), ("scl_inter", inter)):
        if v is not None and not np.isfinite(v):
            raise _nifti_error(path, f"non-finite {name} {v}")
    if 0 in img.shape:
        raise _nifti_error(path, f"the image has no voxels (shape {img.shape})")
    try:
        if np.issubdtype(dtype, np.floating) and dtype.itemsize in (4, 8):
            data = img.get_fdata(dtype=dtype, caching="unchanged")
        else:
            data = np.asanyarray(img.dataobj)
            if np.issubdtype(dtype, np.integer) and not np.issubdtype(data.dtype, np.integer):
                data = np.rint(data)
            data = data.astype(dtype, copy=False)
    except MemoryError:
        raise
    except Exception as exc:  # nibabel raises many types for bad files
        raise _nifti_error(path, str(exc) or type(exc).__name__) from exc
    orig_shape = data.shape
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim < 2:
        raise _nifti_error(path, f"a {data.ndim}D image")
    try:
        data, new_affine, orig_codes, _ = _reorient(data, affine)
    except Exception as exc:
        raise _nifti_error(path, f"cannot reorient the affine {affine.tolist()}: {exc}") from exc
    if data.ndim > 3:  # (D, H, W, *extra) -> (*extra, D, H, W)
        data = np.ascontiguousarray(np.moveaxis(data, (0, 1, 2), (-3, -2, -1)))
    hdr = img.header
    meta = {
        "path": str(path),
        "format": "nifti",
        "original_shape": tuple(orig_shape),
        "original_orientation": orig_codes,
        "original_affine": affine,
        "zooms": tuple(float(z) for z in hdr.get_zooms()),
        "descrip": _nifti_descrip(hdr),
    }
    return Volume(
        array=data,
        spacing=_spacing_from_affine(new_affine),
        affine=new_affine,
        orientation=_axcodes(new_affine),
        metadata=meta,
    )


def _nifti_descrip(hdr) -> str:
    try:
        raw = hdr["descrip"]
        return bytes(np.asarray(raw).item()).decode("latin-1").strip("\x00 ")
    except Exception:
        return ""
