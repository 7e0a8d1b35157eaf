"""The ``mrct lesion`` job: insert a controlled lung nodule into a CT (NIfTI in, NIfTI out).

* The CT and the lung mask are read with nibabel (same voxel grid and affine, checked); the
  nodule's centre is given in the file's voxel indices ``X Y Z`` (0-based, as stored) and the
  third voxel axis is the slice axis (axial for the usual scanner orientations).
* ``method="simulate"``: the physical simulator of :mod:`mrct.data.lesions` (shape, HU per
  type, partial volume at the file's voxel size, the host's noise). ``method="diffusion"``:
  the nodule's shape (classes: solid core, ground-glass halo) from the simulator, or from the
  lesion-mask diffusion model with ``shape="diffusion"``, and its texture inpainted by the
  lesion-focused diffusion model (:func:`mrct.synth.inpaint_lesion`, the histogram preset of
  the type). ``method="auto"``: diffusion when a model is given or shipped, else simulate.
* Writes the image (HU, float32) and the lesion mask (0 background, 1 solid, 2 ground glass)
  with the CT's affine and header, atomically (:func:`mrct.io.save_nifti`). Outside the
  lesion's support (dilated mask for diffusion) the image is bit-identical to the input.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..data.lesions import KINDS, insert_nodule
from ..io import check_outputs, save_nifti
from .sct import check_same_grid, read_volume

logger = logging.getLogger(__name__)

__all__ = ["METHODS", "default_mask_path", "run_lesion"]

METHODS = ("auto", "simulate", "diffusion")


def default_mask_path(out: Path) -> Path:
    """``OUT.nii.gz`` -> ``OUT_lesion.nii.gz``."""
    name = out.name
    stem, ext = (name[:-7], ".nii.gz") if name.endswith(".nii.gz") else (out.stem, out.suffix)
    return out.with_name(f"{stem}_lesion{ext}")


def _shape_from_mask_model(shape, center, diameter, kind, spacing, mask_model, seed):
    from scipy import ndimage

    from ..synth.lesion import lesion_mask

    m = lesion_mask(shape, center, diameter / 2, model=mask_model, seed=seed, spacing=spacing)
    if kind == "solid":
        return m.astype(np.uint8)
    if kind == "ground-glass":
        return (2 * m).astype(np.uint8)
    depth = ndimage.distance_transform_edt(m, sampling=spacing)
    core = depth > 0.6 * depth.max()
    return np.where(core, 1, np.where(m, 2, 0)).astype(np.uint8)


def run_lesion(ct: str | Path, mask: str | Path, out: str | Path, *, center, diameter: float,
               kind: str = "solid", method: str = "auto", model: str | Path | None = None,
               shape: str = "simulate", mask_model: str | Path | None = None,
               mask_out: str | Path | None = None, steps: int | None = 50,
               jump_length: int = 5, jump_n_sample: int = 5, seed: int = 0,
               device: str = "cpu", progress: bool = False, overwrite: bool = True,
               log: Callable[[str], None] | None = None) -> tuple[Path, Path]:  # fmt: skip
    """Insert a ``kind`` nodule of ``diameter`` mm at voxel ``center`` (X, Y, Z) of ``ct``;
    returns the paths of the image and of the lesion mask. With ``overwrite=False`` (``mrct
    lesion`` without ``--force``) an existing output is an
    :class:`mrct.errors.OutputExistsError`, raised before any work."""
    log = log or logger.info
    out = Path(out)
    for p in (out, mask_out):
        if p is not None and not (str(p).endswith(".nii") or str(p).endswith(".nii.gz")):
            raise ValueError(f"output {p} must end in .nii or .nii.gz")
    if kind not in KINDS:
        raise ValueError(f"--type must be one of {', '.join(KINDS)}, got {kind!r}")
    if method not in METHODS:
        raise ValueError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if shape not in ("simulate", "diffusion"):
        raise ValueError(f"--shape must be simulate or diffusion, got {shape!r}")
    if not 3.0 <= float(diameter) <= 30.0:
        raise ValueError(f"--diameter must be between 3 and 30 mm, got {diameter}")
    mask_out = Path(mask_out) if mask_out is not None else default_mask_path(out)
    if mask_out == out:
        raise ValueError(f"--mask-out and --out are the same file {out}; give two names")
    check_outputs([out, mask_out], overwrite)
    vol, img = read_volume(ct)
    lvol, limg = read_volume(mask)
    check_same_grid(vol.shape, img.affine, lvol.shape, limg.affine, "the CT", "the lung mask")
    c = tuple(int(v) for v in center)
    if len(c) != 3 or not all(0 <= v < n for v, n in zip(c, vol.shape, strict=True)):
        raise ValueError(f"--center {center} is outside the CT's voxel grid {vol.shape}")
    if not lvol[c] > 0:
        raise ValueError(f"--center {c} is not inside the lung mask")
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    # model axes (slice, row, column) = the file's (Z, Y, X)
    arr = np.ascontiguousarray(vol.transpose(2, 1, 0))
    lungs = np.ascontiguousarray(lvol.transpose(2, 1, 0) > 0)
    sp = zooms[::-1]
    cz = c[::-1]
    if method == "auto":
        from ..synth.lesion.inference import WEIGHTS

        method = "diffusion" if model is not None or (
            WEIGHTS / "lefusion-lung-ct.safetensors").is_file() else "simulate"  # fmt: skip
        log(f"method: {method}")
    t0 = time.perf_counter()
    ins = insert_nodule(arr, lungs, center=cz, diameter_mm=diameter, kind=kind, spacing=sp,
                        seed=seed)  # fmt: skip
    if method == "simulate":
        image, labels = ins.image, ins.labels
    else:
        from ..synth.lesion import LesionDiffusion, inpaint_lesion
        from ..synth.lesion.inference import load_lesion_model

        net = load_lesion_model(model, "lefusion-lung-ct", LesionDiffusion)
        names = ((net.info or {}).get("presets") or {}).get("names") or {}
        hist = kind if kind in names else None
        if hist is None:
            log(f"the model has no {kind} histogram preset: no texture condition")

        if shape == "diffusion":
            labels = _shape_from_mask_model(arr.shape, cz, diameter, kind, sp, mask_model, seed)
        else:
            labels = ins.labels
        labels = np.where(lungs, labels, 0).astype(np.uint8)
        if not labels.any():
            raise ValueError("the lesion mask is empty after clipping to the lungs")
        image = inpaint_lesion(arr, labels, histogram=hist, model=net, seed=seed,
                               steps=steps, jump_length=jump_length,
                               jump_n_sample=jump_n_sample, progress=progress,
                               device=device)  # fmt: skip
    dt = time.perf_counter() - t0
    save_nifti(out, image.transpose(2, 1, 0), img.affine, header=img.header)
    save_nifti(mask_out, labels.transpose(2, 1, 0).astype(np.float32), img.affine,
               header=img.header)  # fmt: skip
    n = int((labels > 0).sum())
    log(f"{kind} nodule, {diameter:g} mm at voxel {c} ({method}, {n} voxels, {dt:.1f} s)")
    log(f"wrote {out} and {mask_out}")
    return out, mask_out
