"""NIfTI and DICOM readers returning volumes in one canonical orientation.

Every reader returns a :class:`Volume` whose array axes run toward patient Superior,
Posterior and Left (axis codes ``"SPL"``): an axial slice ``vol.array[k]`` shown with
``imshow`` is in radiological view (anterior at the top, patient right on the image left).
The ``affine`` maps array indices ``(k, i, j, 1)`` to RAS world millimetres, as nibabel's
affines do, so ``affine @ (k, i, j, 1)`` is the centre of voxel ``[k, i, j]``.

DICOM geometry (PS3.3 C.7.6.2.1.1): with row cosine ``X`` and column cosine ``Y``
(ImageOrientationPatient), pixel spacing ``(dr, dc)`` and position ``P``
(ImagePositionPatient, LPS), pixel ``(r, c)`` lies at ``P + c dc X + r dr Y``; LPS becomes
RAS by negating the first two coordinates.
"""

from __future__ import annotations

import io
import os
import warnings
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations as nio

from mrct.errors import MissingFileError, ReadError

__all__ = [
    "CANONICAL_AXCODES",
    "Volume",
    "read_dicom",
    "read_dicom_series",
    "read_nifti",
]

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


# ------------------------------------------------------------------------------- DICOM


def _dicom_error(path, what: str) -> ReadError:
    return ReadError(f"{path} is not a valid DICOM file: {what}", path=path)


def _has_dicm_prefix(path: Path) -> bool:
    """Whether ``path`` carries the DICOM Part 10 prefix (``DICM`` after 128 bytes)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _dcmread(path: Path, stop_before_pixels: bool = False):
    import pydicom

    try:
        if path.stat().st_size == 0:
            raise _dicom_error(path, "the file is empty")
        # parse from memory: a damaged element length then reads what the file holds, where
        # a buffered file object would first allocate the length it claims (up to 4 GB)
        with open(path, "rb") as fh:
            data = io.BytesIO(fh.read())
        return pydicom.dcmread(data, stop_before_pixels=stop_before_pixels)
    except ReadError:
        raise
    except Exception as exc:  # pydicom raises many types for damaged files
        raise _dicom_error(path, str(exc) or type(exc).__name__) from exc


def _get(ds, tag: str, path):
    """``ds.get(tag)``; a value pydicom cannot convert is a ReadError naming the tag."""
    try:
        return ds.get(tag)
    except Exception as exc:
        raise _dicom_error(path, f"bad {tag}: {exc}") from exc


def _number(ds, tag: str, path, default: float) -> float:
    """A finite scalar numeric tag (``default`` when absent or empty)."""
    val = _get(ds, tag, path)
    if val is None or (isinstance(val, str | bytes) and not val.strip()):
        return default
    if hasattr(val, "__len__") and not isinstance(val, str | bytes):
        if len(val) != 1:
            raise _dicom_error(path, f"{tag} has {len(val)} values, expected one")
        val = val[0]
    try:
        num = float(val)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _dicom_error(path, f"{tag} {str(val)!r} is not a number") from exc
    if not np.isfinite(num):
        raise _dicom_error(path, f"{tag} is {str(val)!r}, not a finite number")
    return num


def _integer(ds, tag: str, path, default: int | None = None) -> int:
    val = _get(ds, tag, path)
    if val is None or val == "":
        if default is None:
            raise _dicom_error(path, f"missing {tag}")
        return default
    try:
        num = int(val)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _dicom_error(path, f"{tag} {str(val)!r} is not an integer") from exc
    return num


def _floats(ds, tag: str, n: int, path) -> np.ndarray:
    val = _get(ds, tag, path)
    if val is None:
        raise _dicom_error(path, f"missing {tag}")
    try:
        if isinstance(val, str | bytes) or not hasattr(val, "__iter__"):
            val = [val]
        arr = np.asarray([float(v) for v in val], dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _dicom_error(path, f"bad {tag}: {exc}") from exc
    if arr.shape != (n,):
        raise _dicom_error(path, f"{tag} has {arr.size} values, expected {n}")
    if not np.all(np.isfinite(arr)):
        raise _dicom_error(path, f"{tag} is not finite: {arr.tolist()}")
    return arr


def _geometry(ds, path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row cosine X, column cosine Y, position P (LPS mm) and spacing (dr, dc), checked:
    finite, X and Y orthogonal unit vectors, positive spacing."""
    if "ImageOrientationPatient" in ds:
        iop = _floats(ds, "ImageOrientationPatient", 6, path)
        X, Y = iop[:3], iop[3:]
        if (
            abs(np.linalg.norm(X) - 1) > 1e-2
            or abs(np.linalg.norm(Y) - 1) > 1e-2
            or abs(X @ Y) > 1e-2
        ):
            raise _dicom_error(
                path, f"ImageOrientationPatient {iop.tolist()} is not two orthogonal unit vectors"
            )
    else:  # secondary captures etc.: assume an axial image
        X, Y = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    P = (
        _floats(ds, "ImagePositionPatient", 3, path)
        if "ImagePositionPatient" in ds
        else np.zeros(3)
    )
    if "PixelSpacing" in ds:
        sp = _floats(ds, "PixelSpacing", 2, path)
    elif "ImagerPixelSpacing" in ds:
        sp = _floats(ds, "ImagerPixelSpacing", 2, path)
    else:
        sp = np.ones(2)
    if np.any(sp <= 0):
        raise _dicom_error(path, f"pixel spacing {sp.tolist()} is not positive")
    return X, Y, P, sp


def _check_pixel_data_size(ds, path) -> None:
    """The PixelData element must hold what Rows x Columns x ... claim, before decoding."""
    rows = _integer(ds, "Rows", path)
    cols = _integer(ds, "Columns", path)
    bits = _integer(ds, "BitsAllocated", path)
    spp = _integer(ds, "SamplesPerPixel", path, 1)
    frames = _integer(ds, "NumberOfFrames", path, 1)
    if min(rows, cols, spp, frames) < 1 or bits not in (1, 8, 16, 32, 64):
        raise _dicom_error(
            path,
            f"bad image size: Rows {rows}, Columns {cols}, SamplesPerPixel {spp}, "
            f"NumberOfFrames {frames}, BitsAllocated {bits}",
        )
    if frames != 1 or spp != 1:
        raise _dicom_error(
            path,
            f"only single-frame greyscale images are supported (NumberOfFrames {frames}, "
            f"SamplesPerPixel {spp})",
        )
    needed = (rows * cols * spp * frames * bits + 7) // 8
    try:
        raw = ds["PixelData"].value
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        compressed = bool(syntax is not None and syntax.is_compressed)
    except Exception as exc:
        raise _dicom_error(path, f"cannot read PixelData: {exc}") from exc
    have = len(raw) if raw is not None else 0
    limit = have * _DEFLATE_MAX_RATIO if compressed else have
    if needed > limit:
        raise _dicom_error(
            path,
            f"PixelData holds {have} bytes{' (compressed)' if compressed else ''}, but "
            f"Rows {rows} x Columns {cols} x {bits} bits need {needed} (truncated file or "
            "inconsistent header)",
        )


def _pixels_hu(ds, path) -> np.ndarray:
    """Pixel data as float32, rescaled by RescaleSlope / RescaleIntercept when present."""
    slope = _number(ds, "RescaleSlope", path, 1.0)
    inter = _number(ds, "RescaleIntercept", path, 0.0)
    if slope == 0:
        raise _dicom_error(path, "RescaleSlope is 0")
    _check_pixel_data_size(ds, path)
    try:
        px = ds.pixel_array
    except Exception as exc:
        raise _dicom_error(path, f"cannot decode pixels: {exc}") from exc
    if px.ndim != 2:
        raise _dicom_error(
            path, f"only single-frame greyscale images are supported, pixel array {px.shape}"
        )
    out = (px.astype(np.float64) * slope + inter).astype(np.float32)  # HU = slope*stored + b
    if not np.all(np.isfinite(out)):
        raise _dicom_error(
            path, f"RescaleSlope {slope} / RescaleIntercept {inter} overflow float32"
        )
    return out


_META_TAGS = (
    "Modality",
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SeriesDescription",
    "Manufacturer",
    "SliceThickness",
    "KVP",
    "RescaleSlope",
    "RescaleIntercept",
    "WindowCenter",
    "WindowWidth",
    "ImageOrientationPatient",
)


def _dicom_metadata(ds) -> dict:
    meta = {}
    for tag in _META_TAGS:
        try:
            if tag not in ds:
                continue
            val = ds.get(tag)
        except Exception:  # a value pydicom cannot convert: leave it out of the metadata
            continue
        if hasattr(val, "__iter__") and not isinstance(val, str | bytes):
            val = [_plain(v) for v in val]
        else:
            val = _plain(val)
        meta[tag] = val
    return meta


def _plain(v):
    """Convert pydicom value types (DSfloat, IS, UID, PersonName) to plain Python."""
    for cast in (int, float):
        try:
            if cast is int and "." in str(v):
                continue
            return cast(v)
        except (TypeError, ValueError):
            pass
    return str(v)


def _volume_from_lps(
    array: np.ndarray, affine_lps: np.ndarray, meta: dict, squeeze: bool
) -> Volume:
    """Reorient a ``(n_slices, rows, cols)`` array with an LPS index affine into a Volume."""
    affine = _LPS_TO_RAS @ affine_lps
    data, new_affine, orig_codes, transform = _reorient(array, affine)
    meta["original_orientation"] = orig_codes
    spacing = _spacing_from_affine(new_affine)
    codes = _axcodes(new_affine)
    if squeeze:
        # drop the singleton slice axis; move its affine column first (see Volume.affine)
        ax = int(transform[0, 0])  # where the original slice axis 0 went
        keep = [i for i in range(3) if i != ax]
        data = np.ascontiguousarray(data.squeeze(axis=ax))
        perm = [ax, *keep]
        new_affine = new_affine.copy()
        new_affine[:3, :3] = new_affine[:3, perm]
        spacing = tuple(spacing[i] for i in keep)
        codes = "".join(codes[i] for i in keep)
    return Volume(array=data, spacing=spacing, affine=new_affine, orientation=codes, metadata=meta)


def read_dicom(path: str | os.PathLike) -> Volume:
    """Read one single-frame DICOM image.

    Values are ``stored * RescaleSlope + RescaleIntercept`` (HU for CT) when those tags are
    present. The image is flipped/transposed in-plane to the canonical orientation (an
    axial image becomes ``"PL"``: rows toward posterior, columns toward patient left).

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    Volume
        ``array`` of shape ``(H, W)`` float32, ``spacing`` from PixelSpacing (row, column
        spacing for an axial image), ``affine`` whose first column is the slice normal
        scaled by SliceThickness (1 mm when absent).

    Raises
    ------
    mrct.errors.MissingFileError
        If ``path`` does not exist (a ``FileNotFoundError``).
    mrct.errors.ReadError
        If the file is not a readable single-frame DICOM image (a ``ValueError``): damaged or
        truncated, PixelData shorter than Rows x Columns claim, a RescaleSlope / Intercept
        that is not a finite number, non-finite or non-orthonormal geometry. The message
        names the file and the problem.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        raise ReadError(f"{path} is a directory; use read_dicom_series", path=path)
    ds = _dcmread(path)
    return _single_image(ds, path)


def _single_image(ds, path: Path) -> Volume:
    if "PixelData" not in ds:
        raise _dicom_error(path, "no PixelData")
    img = _pixels_hu(ds, path)
    X, Y, P, (dr, dc) = _geometry(ds, path)
    thickness = _number(ds, "SliceThickness", path, 0.0)
    thickness = thickness if thickness > 0 else 1.0
    normal = np.cross(X, Y)
    A = np.eye(4)
    A[:3, 0] = normal * thickness
    A[:3, 1] = Y * dr
    A[:3, 2] = X * dc
    A[:3, 3] = P
    meta = {"path": str(path), "format": "dicom", **_dicom_metadata(ds)}
    return _volume_from_lps(img[None], A, meta, squeeze=True)


def _collect_files(folder_or_files) -> tuple[list[Path], bool]:
    """Files to consider and whether they came from a folder scan."""
    if isinstance(folder_or_files, str | os.PathLike):
        p = Path(folder_or_files)
        _check_exists(p)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
            return files, True
        return [p], False
    files = [Path(f) for f in folder_or_files]
    for f in files:
        _check_exists(f)
        if f.is_dir():
            raise ReadError(f"{f} is a directory, not a DICOM file", path=f)
    return files, False


def _names(paths, limit: int = 10) -> str:
    names = [str(p) for p in paths]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def read_dicom_series(
    folder_or_files: str | os.PathLike | Iterable[str | os.PathLike],
    series_uid: str | None = None,
    *,
    skip_bad: bool = False,
) -> Volume:
    """Read all slices of one DICOM series into a canonical (SPL) volume.

    Slices are sorted along the slice normal ``n = X x Y`` by ``n . ImagePositionPatient``;
    the slice step is ``(P_last - P_first) / (n_slices - 1)`` (its length is the slice
    spacing, independent of SliceThickness), and each slice is rescaled to HU with its own
    RescaleSlope / RescaleIntercept.

    A damaged slice (a file with the DICOM prefix that cannot be read, decoded or placed) is
    an error naming it, unless ``skip_bad=True``: then it is left out with a warning naming
    it. Slices are never moved to close a gap: when the positions leave room for whole
    missing slices (a skipped or absent file), the volume keeps every slice at its own
    position and the missing ones are NaN, with a warning; ``metadata["missing_slices"]``
    lists their indices.

    Parameters
    ----------
    folder_or_files : path or iterable of paths
        A folder (its files are scanned; files without the DICOM prefix, such as a README,
        are skipped with a warning, and DICOMDIR or other files without pixels silently) or
        an explicit list of files (each must be a valid DICOM image).
    series_uid : str, optional
        SeriesInstanceUID to read when several series are present.
    skip_bad : bool
        Leave damaged slices out (with a warning naming them) instead of raising.

    Returns
    -------
    Volume
        ``array`` of shape ``(D, H, W)`` float32 in SPL orientation; ``metadata`` holds the
        DICOM tags of the first slice, the sorted file list, the series UID, and
        ``skipped_files`` / ``missing_slices``.

    Raises
    ------
    mrct.errors.MissingFileError
        If the folder or a listed file does not exist (a ``FileNotFoundError``).
    mrct.errors.ReadError
        (a ``ValueError``) If a slice is damaged (and ``skip_bad`` is False), no DICOM image
        is found, several series are present and ``series_uid`` is not given (the message
        lists them), ``series_uid`` is absent, or the slices are inconsistent (shape,
        orientation, pixel spacing, duplicate positions, positions off one grid). The message
        names the file.
    """
    files, scanned = _collect_files(folder_or_files)
    where = folder_or_files if scanned else (files[0] if len(files) == 1 else "the files given")
    not_dicom: list[Path] = []
    bad: list[tuple[Path, ReadError]] = []
    slices: list[tuple[Path, object, np.ndarray, tuple]] = []  # (file, ds, image, geometry)
    for f in files:
        if scanned and not _has_dicm_prefix(f):
            not_dicom.append(f)
            continue
        try:
            ds = _dcmread(f)
            if "PixelData" not in ds:
                if scanned:  # DICOMDIR, structured reports...
                    continue
                raise _dicom_error(f, "no PixelData")
            geo = _geometry(ds, f)
            img = _pixels_hu(ds, f)
        except ReadError as exc:
            bad.append((f, exc))
            continue
        slices.append((f, ds, img, geo))
    if not_dicom:
        warnings.warn(
            f"read_dicom_series: skipped {len(not_dicom)} file(s) without the DICOM prefix in "
            f"{folder_or_files}: {_names(p.name for p in not_dicom)}",
            stacklevel=2,
        )
    if bad:
        listing = "; ".join(str(e) for _, e in bad[:5]) + (" ..." if len(bad) > 5 else "")
        if not skip_bad:
            raise ReadError(
                f"{len(bad)} damaged DICOM file(s) in {where}: {listing} (pass skip_bad=True "
                "to read the other slices)",
                path=bad[0][0],
            )
        warnings.warn(
            f"read_dicom_series: skipped {len(bad)} damaged DICOM file(s): {listing}",
            stacklevel=2,
        )
    if not slices:
        raise ReadError(f"no DICOM images found in {where} (none readable)", path=str(where))

    by_series: dict[str, list] = {}
    for item in slices:
        by_series.setdefault(str(_get(item[1], "SeriesInstanceUID", item[0]) or ""), []).append(
            item
        )
    if series_uid is not None:
        if series_uid not in by_series:
            raise ReadError(
                f"series {series_uid} not found in {where}; available: {sorted(by_series)}",
                path=str(where),
            )
        items = by_series[series_uid]
    elif len(by_series) > 1:
        listing = "; ".join(
            f"{uid} ({len(v)} files, {v[0][1].get('SeriesDescription', '')!s})"
            for uid, v in sorted(by_series.items())
        )
        raise ReadError(
            f"several DICOM series found in {where}, pass series_uid= one of: {listing}",
            path=str(where),
        )
    else:
        items = next(iter(by_series.values()))

    # geometry and consistency checks
    f0, ds0, img0, (X, Y, _, sp0) = items[0]
    normal = np.cross(X, Y)
    positions = []
    for f, _ds, img, (Xi, Yi, Pi, spi) in items:
        if not (np.allclose(Xi, X, atol=1e-4) and np.allclose(Yi, Y, atol=1e-4)):
            raise ReadError(
                f"inconsistent series: {f} has a different ImageOrientationPatient", path=f
            )
        if not np.allclose(spi, sp0, rtol=1e-4):
            raise ReadError(
                f"inconsistent series: {f} has PixelSpacing {spi}, expected {sp0}", path=f
            )
        if img.shape != img0.shape:
            raise ReadError(
                f"inconsistent series: {f} has shape {img.shape}, expected {img0.shape}", path=f
            )
        positions.append(Pi)
    positions = np.asarray(positions)
    order = np.argsort(positions @ normal, kind="stable")
    positions = positions[order]
    along = positions @ normal
    index = np.arange(len(order))  # volume index of each sorted slice
    missing: list[int] = []
    if len(along) > 1:
        gaps = np.diff(along)
        same = gaps < 1e-6 * max(1.0, np.abs(gaps).max())
        if np.any(same):
            dup = [str(items[order[j]][0]) for i in np.flatnonzero(same) for j in (i, i + 1)]
            raise ReadError(
                f"inconsistent series: several slices share one position ({_names(dup)})",
                path=dup[0] if dup else None,
            )
        ratio = gaps / gaps.min()
        whole = np.rint(ratio)
        if whole.max() >= 2 and np.all(np.abs(ratio - whole) <= 0.02):
            index = np.concatenate([[0], np.cumsum(whole)]).astype(np.int64)
            missing = sorted(set(range(int(index[-1]) + 1)) - set(index.tolist()))
            warnings.warn(
                f"read_dicom_series: {len(missing)} slice position(s) of the "
                f"{gaps.min():.4g} mm grid have no image (indices {missing[:20]}); they are "
                "NaN in the volume, the other slices keep their positions",
                stacklevel=2,
            )
        elif gaps.max() - gaps.min() > 1e-2 * gaps.mean() + 1e-3:
            odd = int(np.argmax(np.abs(ratio - whole)))
            pair = [str(items[order[odd]][0]), str(items[order[odd + 1]][0])]
            raise ReadError(
                f"non-uniform slice spacing ({gaps.min():.4g}..{gaps.max():.4g} mm; "
                f"{gaps[odd]:.4g} mm between {pair[0]} and {pair[1]}): the slices do not lie "
                "on one grid, so one affine cannot place them (read the files of each "
                "uniform part with read_dicom_series(files))",
                path=pair[0],
            )
        step = (positions[-1] - positions[0]) / int(index[-1])
    else:
        thickness = _number(ds0, "SliceThickness", f0, 0.0)
        step = normal * (thickness if thickness > 0 else 1.0)
    volume = np.full((int(index[-1]) + 1, *img0.shape), np.nan, dtype=np.float32)
    for k, i in zip(index, order, strict=True):
        volume[k] = items[i][2]
    dr, dc = sp0
    A = np.eye(4)
    A[:3, 0] = step
    A[:3, 1] = Y * dr
    A[:3, 2] = X * dc
    A[:3, 3] = positions[0]
    meta = {
        "format": "dicom",
        "files": [str(items[i][0]) for i in order],
        "n_slices": len(items),
        "skipped_files": [str(f) for f, _ in bad],
        "missing_slices": missing,
        **_dicom_metadata(ds0),
    }
    meta["SeriesInstanceUID"] = str(_get(ds0, "SeriesInstanceUID", f0) or "")
    return _volume_from_lps(volume, A, meta, squeeze=False)
