"""The ``mrct sr`` job: super-resolve a dynamic MRI series (NIfTI) with a prior scan.

Inputs
------
* ``series``: one 4D NIfTI ``(x, y, z, t)``, or several 3D NIfTI files ``(x, y, z)`` (one per
  time point, in the order given). The low-resolution time points on their own grid (in-plane
  ``(x, y)`` smaller than the prior's, the same ``z``), or already on the prior's grid (e.g.
  zero-filled by the scanner).
* ``prior``: the static high-resolution planning scan, 3D ``(x, y, z)``: it defines the output
  grid and is the prior of the first time point for a DDoS-UNet model.

Voxel axes are used as stored (no reorientation): the NIfTI ``(x, y)`` axes are the in-plane
axes (mrct's ``(W, H)``), ``z`` the through-plane axis (``D``); in torch terms a time point is
``(D, H, W) = (z, y, x)``.

Methods
-------
``--method trilinear | bicubic | zero-filled`` (:func:`mrct.physics.upsample_lowres` on the
shared-centre grid alignment), or ``--model CHECKPOINT`` (a safetensors file of ``mrct train``
with an :class:`~mrct.recon.SRUNet` or :class:`~mrct.recon.DDoSUNet`): the series is
interpolated to the prior's grid (``--interp``, trilinear as in the paper), intensities are
divided by the prior's maximum (the models were trained on images in [0, 1]), the model runs
stepwise (:func:`mrct.recon.super_resolve_series`; a 2D model runs on every ``z`` slice) and
the output is scaled back.

Output: one 4D NIfTI ``(x, y, z, t)`` float32 on the prior's grid, written atomically with the
prior's affine (the series' own affine when the series is already on that grid) and the
series' time step.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..io import check_outputs, load_nifti_array, save_nifti

logger = logging.getLogger(__name__)

__all__ = ["SR_METHODS", "load_series", "load_prior", "run_sr", "super_resolve_arrays"]

#: baseline methods of ``mrct sr --method``
SR_METHODS = ("trilinear", "bicubic", "zero-filled")


def load_series(paths: Sequence[str | Path]) -> tuple[np.ndarray, np.ndarray, object]:
    """``(data (x, y, z, t) float32, affine, header)`` of one 4D file or several 3D files."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("give the series: one 4D NIfTI or several 3D NIfTI files")
    frames, affine, header = [], None, None
    for p in paths:
        a, img = load_nifti_array(p, np.float32)
        if a.ndim == 2:
            a = a[:, :, None]
        if a.ndim == 3:
            a = a[..., None]
        if a.ndim != 4:
            raise ValueError(f"{p}: a series file must be 3D (x, y, z) or 4D (x, y, z, t), got "
                             f"shape {a.shape}")  # fmt: skip
        if frames and a.shape[:3] != frames[0].shape[:3]:
            raise ValueError(
                f"{p} has shape {a.shape[:3]} (x, y, z) but {paths[0]} has "
                f"{frames[0].shape[:3]}: all time points must share one grid"
            )
        if affine is None:
            affine, header = img.affine, img.header
        frames.append(a)
    data = np.concatenate(frames, axis=3)
    if len(paths) > 1 and any(f.shape[3] != 1 for f in frames):
        raise ValueError("give either one 4D file or several 3D files, not several 4D files")
    return data, np.asarray(affine), header


def load_prior(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(data (x, y, z) float32, affine)`` of the planning scan."""
    a, img = load_nifti_array(Path(path), np.float32)
    if a.ndim == 4 and a.shape[3] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ValueError(f"{path}: the prior must be a 3D volume (x, y, z), got shape {a.shape}")
    return a, np.asarray(img.affine)


def _check_shapes(series: np.ndarray, prior: np.ndarray) -> None:
    x, y, z, t = series.shape
    X, Y, Z = prior.shape
    if z != Z:
        raise ValueError(
            f"the series has {z} slices (z) but the prior {Z}: series (x, y, z, t) = "
            f"{series.shape}, prior (x, y, z) = {prior.shape}; k-space truncation is in-plane, "
            "so both must have the same z"
        )
    if x > X or y > Y:
        raise ValueError(
            f"the series' in-plane size (x, y) = ({x}, {y}) exceeds the prior's ({X}, {Y}): "
            f"series (x, y, z, t) = {series.shape}, prior (x, y, z) = {prior.shape}; the prior "
            "must be the high-resolution scan"
        )


def super_resolve_arrays(series: np.ndarray, prior: np.ndarray, *, method: str | None = None,
                         model=None, interp: str = "trilinear", progress: bool = True,
                         device: str = "cpu") -> np.ndarray:  # fmt: skip
    """The computation of ``mrct sr`` on arrays: ``series (x, y, z, t)``, ``prior (x, y, z)``
    -> ``(X, Y, Z, t)`` on the prior's grid (module docstring)."""
    import torch

    from ..physics import upsample_lowres

    _check_shapes(series, prior)
    if (method is None) == (model is None):
        raise ValueError("give exactly one of --method and --model")
    X, Y, Z = prior.shape
    frames = torch.from_numpy(np.ascontiguousarray(series.transpose(3, 2, 1, 0)))  # (t, z, y, x)
    same_grid = series.shape[:2] == prior.shape[:2]
    if method is not None:
        if method not in SR_METHODS:
            raise ValueError(f"method must be one of {list(SR_METHODS)}, got {method!r}")
        out = frames if same_grid else upsample_lowres(frames, (Z, Y, X), method)
    else:
        from ..recon.sr.inference import super_resolve_series

        model = model.to(device)
        p = torch.from_numpy(np.ascontiguousarray(prior.transpose(2, 1, 0)))  # (z, y, x)
        scale = float(p.abs().max())
        scale = scale if scale > 0 and math.isfinite(scale) else 1.0
        up = frames if same_grid else upsample_lowres(frames, (Z, Y, X), interp)
        out = super_resolve_series(model, up / scale, p / scale, progress=progress) * scale
    return np.ascontiguousarray(out.numpy().astype(np.float32).transpose(3, 2, 1, 0))


def _write(data: np.ndarray, affine: np.ndarray, header, path: Path) -> Path:
    units, step = None, None
    if header is not None:
        try:
            units = header.get_xyzt_units()
            zooms = header.get_zooms()
            step = float(zooms[3]) if len(zooms) >= 4 else None
        except Exception:  # pragma: no cover - a header without these fields
            units, step = None, None
    return save_nifti(path, data, affine, xyzt_units=units, time_step=step, description="mrct sr")


def run_sr(series_paths: Sequence[str | Path], prior_path: str | Path, out: str | Path, *,
           method: str | None = None, model_path: str | Path | None = None,
           interp: str = "trilinear", device: str = "cpu", progress: bool = True,
           overwrite: bool = True, log: Callable[[str], None] | None = None) -> Path:  # fmt: skip
    """What ``mrct sr`` runs; returns the output path. ``log`` receives the report lines
    (default: this module's ``logging`` logger). With ``overwrite=False`` (``mrct sr``
    without ``--force``) an existing ``out`` is an :class:`mrct.errors.OutputExistsError`,
    raised before any work."""
    log = log or logger.info
    out = Path(out)
    if not (out.name.endswith(".nii") or out.name.endswith(".nii.gz")):
        raise ValueError(f"--out must end in .nii or .nii.gz, got {out}")
    if (method is None) == (model_path is None):
        raise ValueError("give exactly one of --method and --model")
    check_outputs([out], overwrite)
    series, s_affine, header = load_series(series_paths)
    prior, p_affine = load_prior(prior_path)
    _check_shapes(series, prior)
    model = None
    if model_path is not None:
        from ..recon.sr.inference import load_sr_model

        model = load_sr_model(model_path, device)
        log(f"model: {type(model).__name__}({model.extra_repr()}) from {model_path}")
    same_grid = series.shape[:2] == prior.shape[:2]
    log(f"series (x, y, z, t) = {series.shape}, prior (x, y, z) = {prior.shape}"
        + (" (already on the prior's grid)" if same_grid else ""))  # fmt: skip
    sr = super_resolve_arrays(series, prior, method=method, model=model, interp=interp,
                              progress=progress, device=device)  # fmt: skip
    affine = s_affine if same_grid else p_affine
    _write(sr, affine, header, out)
    log(f"wrote {out} {sr.shape}")
    return out
