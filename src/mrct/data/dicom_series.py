"""DICOM series: one volume from a folder or list of slices; damaged slices are named (or
skipped with a warning when asked) and never move the others."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mrct.errors import ReadError

from .dicom import (
    _dcmread,
    _dicom_error,
    _dicom_metadata,
    _geometry,
    _get,
    _has_dicm_prefix,
    _number,
    _pixels_hu,
    _volume_from_lps,
)
from .volume import (
    Volume,
    _check_exists,
)

__all__ = ["read_dicom_series"]


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
