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

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations as nio

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
        raise FileNotFoundError(f"No such file or directory: '{path}'")


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
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a readable NIfTI image.
    """
    path = Path(path)
    _check_exists(path)
    dtype = np.dtype(dtype)
    try:
        img = nib.load(str(path))
        if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
            raise TypeError(f"nibabel read it as {type(img).__name__}")
        if np.issubdtype(dtype, np.floating) and dtype.itemsize in (4, 8):
            data = img.get_fdata(dtype=dtype, caching="unchanged")
        else:
            data = np.asanyarray(img.dataobj)
            if np.issubdtype(dtype, np.integer) and not np.issubdtype(data.dtype, np.integer):
                data = np.rint(data)
            data = data.astype(dtype, copy=False)
    except Exception as exc:  # nibabel raises many types for bad files
        raise ValueError(f"{path} is not a valid NIfTI file: {exc}") from exc
    affine = np.asarray(img.affine, dtype=np.float64)
    orig_shape = data.shape
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim < 2:
        raise ValueError(f"{path} is not a valid NIfTI file: a {data.ndim}D image")
    data, new_affine, orig_codes, _ = _reorient(data, affine)
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


def _dcmread(path: Path, stop_before_pixels: bool = False):
    import pydicom

    try:
        return pydicom.dcmread(str(path), stop_before_pixels=stop_before_pixels)
    except Exception as exc:
        raise ValueError(f"{path} is not a valid DICOM file: {exc}") from exc


def _floats(ds, tag: str, n: int, path) -> np.ndarray:
    val = ds.get(tag)
    if val is None:
        raise ValueError(f"{path} is not a valid DICOM file: missing {tag}")
    try:
        arr = np.asarray([float(v) for v in val], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path} is not a valid DICOM file: bad {tag}: {exc}") from exc
    if arr.shape != (n,):
        raise ValueError(f"{path} is not a valid DICOM file: {tag} has {arr.size} values")
    return arr


def _geometry(ds, path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row cosine X, column cosine Y, position P (LPS mm) and spacing (dr, dc)."""
    if "ImageOrientationPatient" in ds:
        iop = _floats(ds, "ImageOrientationPatient", 6, path)
        X, Y = iop[:3], iop[3:]
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
    return X, Y, P, sp


def _pixels_hu(ds, path) -> np.ndarray:
    """Pixel data as float32, rescaled by RescaleSlope / RescaleIntercept when present."""
    try:
        px = ds.pixel_array
    except Exception as exc:
        raise ValueError(f"{path} is not a valid DICOM file: cannot decode pixels: {exc}") from exc
    if px.ndim != 2:
        raise ValueError(
            f"{path}: only single-frame greyscale images are supported, pixel array {px.shape}"
        )
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    inter = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    out = px.astype(np.float64) * slope + inter  # HU = slope * stored + intercept
    return out.astype(np.float32)


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
        if tag in ds:
            val = ds.get(tag)
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
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a readable single-frame DICOM image.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory; use read_dicom_series")
    ds = _dcmread(path)
    if "PixelData" not in ds:
        raise ValueError(f"{path} is not a valid DICOM file: no PixelData")
    img = _pixels_hu(ds, path)
    X, Y, P, (dr, dc) = _geometry(ds, path)
    thickness = float(ds.get("SliceThickness", 0) or 0) or 1.0
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
    return files, False


def read_dicom_series(
    folder_or_files: str | os.PathLike | Iterable[str | os.PathLike],
    series_uid: str | None = None,
) -> Volume:
    """Read all slices of one DICOM series into a canonical (SPL) volume.

    Slices are sorted along the slice normal ``n = X x Y`` by ``n . ImagePositionPatient``;
    the slice step is ``(P_last - P_first) / (n_slices - 1)`` (its length is the slice
    spacing, independent of SliceThickness), and each slice is rescaled to HU with its own
    RescaleSlope / RescaleIntercept.

    Parameters
    ----------
    folder_or_files : path or iterable of paths
        A folder (its files are scanned; files that are not DICOM images are skipped) or an
        explicit list of files (each must be a valid DICOM image).
    series_uid : str, optional
        SeriesInstanceUID to read when several series are present.

    Returns
    -------
    Volume
        ``array`` of shape ``(D, H, W)`` float32 in SPL orientation; ``metadata`` holds the
        DICOM tags of the first slice, the sorted file list and the series UID.

    Raises
    ------
    FileNotFoundError
        If the folder or a listed file does not exist.
    ValueError
        If no DICOM image is found, several series are present and ``series_uid`` is not
        given (the message lists them), ``series_uid`` is absent, a file is invalid, or the
        slices are inconsistent (shape, orientation, pixel spacing, duplicate positions).
    """
    files, scanned = _collect_files(folder_or_files)
    headers = []
    for f in files:
        try:
            ds = _dcmread(f)
        except ValueError:
            if scanned:
                continue
            raise
        if "PixelData" not in ds:
            if scanned:  # DICOMDIR, structured reports...
                continue
            raise ValueError(f"{f} is not a valid DICOM file: no PixelData")
        headers.append((f, ds))
    if not headers:
        raise ValueError(f"no DICOM images found in {folder_or_files}")

    by_series: dict[str, list] = {}
    for f, ds in headers:
        by_series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((f, ds))
    if series_uid is not None:
        if series_uid not in by_series:
            raise ValueError(f"series {series_uid} not found; available: {sorted(by_series)}")
        items = by_series[series_uid]
    elif len(by_series) > 1:
        listing = "; ".join(
            f"{uid} ({len(v)} files, {v[0][1].get('SeriesDescription', '')!s})"
            for uid, v in sorted(by_series.items())
        )
        raise ValueError(f"several DICOM series found, pass series_uid= one of: {listing}")
    else:
        items = next(iter(by_series.values()))

    # geometry and consistency checks
    f0, ds0 = items[0]
    X, Y, _, sp0 = _geometry(ds0, f0)
    normal = np.cross(X, Y)
    positions, slices = [], []
    for f, ds in items:
        Xi, Yi, Pi, spi = _geometry(ds, f)
        if not (np.allclose(Xi, X, atol=1e-4) and np.allclose(Yi, Y, atol=1e-4)):
            raise ValueError(f"inconsistent series: {f} has a different ImageOrientationPatient")
        if not np.allclose(spi, sp0, rtol=1e-4):
            raise ValueError(f"inconsistent series: {f} has PixelSpacing {spi}, expected {sp0}")
        img = _pixels_hu(ds, f)
        if slices and img.shape != slices[0].shape:
            raise ValueError(
                f"inconsistent series: {f} has shape {img.shape}, expected {slices[0].shape}"
            )
        positions.append(Pi)
        slices.append(img)
    positions = np.asarray(positions)
    order = np.argsort(positions @ normal, kind="stable")
    positions = positions[order]
    along = positions @ normal
    if len(along) > 1:
        gaps = np.diff(along)
        if np.any(gaps < 1e-6 * max(1.0, np.abs(gaps).max())):
            raise ValueError("inconsistent series: several slices share one position")
        if gaps.max() - gaps.min() > 1e-2 * gaps.mean() + 1e-3:
            warnings.warn(
                f"non-uniform slice spacing ({gaps.min():.4g}..{gaps.max():.4g} mm); "
                "using the mean step",
                stacklevel=2,
            )
        step = (positions[-1] - positions[0]) / (len(positions) - 1)
    else:
        step = normal * (float(ds0.get("SliceThickness", 0) or 0) or 1.0)
    volume = np.stack([slices[i] for i in order])
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
        **_dicom_metadata(ds0),
    }
    meta["SeriesInstanceUID"] = str(ds0.get("SeriesInstanceUID", ""))
    return _volume_from_lps(volume, A, meta, squeeze=False)
