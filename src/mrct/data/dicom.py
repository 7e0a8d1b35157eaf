"""DICOM reader for single files (geometry, HU rescaling, metadata), with checks before decoding."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from mrct.errors import ReadError

from .nifti import _DEFLATE_MAX_RATIO
from .volume import (
    _LPS_TO_RAS,
    Volume,
    _axcodes,
    _check_exists,
    _reorient,
    _spacing_from_affine,
)

__all__ = ["read_dicom"]

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
