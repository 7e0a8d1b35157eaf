"""The ``mrct synth sct`` job: synthetic CT from an MRI or CBCT NIfTI volume, slice by slice.

* The input is read with nibabel; slices are taken along the file's third voxel axis (axial
  for the usual scanner orientations) and the output keeps the input's voxel grid, affine and
  orientation exactly (``float32`` HU, written atomically).
* The model is a checkpoint of :class:`mrct.synth.ConditionalDiffusion` or
  :class:`mrct.synth.SCTUNet` (``scripts/train_sct.py`` or ``mrct train configs/sct-*.toml``).
  No weights are downloaded; without ``--model`` the job uses the shipped weights of
  ``--method`` (``mrct/synth/weights/sct-<task>-<method>.safetensors``, made by
  ``scripts/train_sct.py --ship``) and stops with a clear message if there are none.
* Inputs are scaled as in training (:mod:`mrct.synth.sct_data`): CBCT ``HU / 1000``; MR
  divided by its 99th percentile over voxels above 5 % of the maximum. Slices whose in-plane
  size differs from the model's training size are resampled to it (bilinear) and back.
* ``--mask`` (optional, same grid as the input): voxels outside are set to -1024 HU.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..io import check_outputs, load_nifti_array, save_nifti
from ..synth.sct import METHODS, TASKS, WEIGHTS, load_sct_model, shipped_model

logger = logging.getLogger(__name__)

__all__ = ["TASKS", "METHODS", "WEIGHTS", "load_sct_model", "read_volume", "check_same_grid",
           "run_sct", "shipped_model"]  # fmt: skip


def read_volume(path: str | Path):
    """``(data (X, Y, Z) float32, nibabel image)``; a 2D file gets Z = 1."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input {path} does not exist")
    if not (path.name.endswith(".nii") or path.name.endswith(".nii.gz")):
        raise ValueError(f"input {path} must be a NIfTI file (.nii or .nii.gz)")
    data, img = load_nifti_array(path, np.float32)
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3D volume, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError(f"{path} contains NaN or Inf")
    return data, img


def check_same_grid(a_shape, a_affine, b_shape, b_affine, a_name: str, b_name: str,
                    atol: float = 1e-3) -> None:  # fmt: skip
    """Raise ValueError unless two volumes share shape and affine (voxel-to-world, mm)."""
    if tuple(a_shape[:3]) != tuple(b_shape[:3]):
        raise ValueError(
            f"{b_name} has shape {tuple(b_shape)} but {a_name} has {tuple(a_shape)}; they "
            "must be on the same voxel grid"
        )
    if not np.allclose(np.asarray(a_affine), np.asarray(b_affine), atol=atol):
        raise ValueError(
            f"{b_name} and {a_name} have different affines (voxel-to-world):\n"
            f"{np.asarray(b_affine).round(4)}\nvs\n{np.asarray(a_affine).round(4)}\n"
            "resample one onto the other's grid first"
        )


def _normalise(vol: np.ndarray, task: str) -> np.ndarray:
    if task == "cbct":
        return np.clip(vol, -1024.0, 3000.0) / 1000.0
    fg = vol[vol > 0.05 * float(vol.max())] if float(vol.max()) > 0 else vol
    p99 = float(np.percentile(fg, 99)) if fg.size else 1.0
    return vol / max(p99, 1e-6)


def _write_nifti(data: np.ndarray, ref_img, out: Path) -> Path:
    return save_nifti(out, data, ref_img.affine, header=ref_img.header)


def run_sct(input: str | Path, task: str, out: str | Path, *, model: str | Path | None = None,
            method: str = "unet", steps: int = 50, seed: int = 0,
            mask: str | Path | None = None, batch_size: int = 8, guidance_scale: float = 1.0,
            device: str = "cpu", progress: bool = False, overwrite: bool = True,
            log: Callable[[str], None] | None = None) -> Path:  # fmt: skip
    """Synthesise a CT (HU) from ``input`` and write it to ``out`` with the input's affine.

    ``model``: a checkpoint; without one, the shipped model of ``method`` for ``task``. With
    ``overwrite=False`` (``mrct synth sct`` without ``--force``) an existing ``out`` is an
    :class:`mrct.errors.OutputExistsError`, raised before any work."""
    log = log or logger.info
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    out = Path(out)
    if not (out.name.endswith(".nii") or out.name.endswith(".nii.gz")):
        raise ValueError(f"output {out} must end in .nii or .nii.gz")
    check_outputs([out], overwrite)
    if model is None:
        model = shipped_model(task, method)
        if model is None:
            raise FileNotFoundError(
                f"no {method} sCT model for task {task!r} is shipped with mrct; pass --model "
                f"CKPT.safetensors (train one with scripts/train_sct.py or `mrct train "
                f"configs/sct-{task}-diffusion.toml`); mrct downloads nothing"
            )
    log(f"model: {model}")
    vol, img = read_volume(input)
    m = None
    if mask is not None:
        mvol, mimg = read_volume(mask)
        check_same_grid(vol.shape, img.affine, mvol.shape, mimg.affine, "the input", "the mask")
        m = mvol > 0
    net = load_sct_model(model, task, device)
    size = int(net.config.get("image_size", vol.shape[0]))
    x = torch.from_numpy(_normalise(vol, task)).permute(2, 0, 1).contiguous()  # (Z, X, Y)
    per = net.cond_channels // (2 * net.context + 1)
    if per != 1:
        raise ValueError(f"the model expects {per} condition channels per slice; mrct synth "
                         "sct feeds one image")  # fmt: skip
    hw = tuple(x.shape[-2:])
    if hw != (size, size):
        log(f"resampling slices {hw} -> ({size}, {size}) for the model and back")
        x = F.interpolate(x[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    t0 = time.perf_counter()
    with torch.no_grad():
        pred = net.sample_volume(x, batch_size=batch_size, steps=steps, seed=seed,
                                 guidance_scale=guidance_scale,
                                 progress=progress)[:, 0]  # fmt: skip
    dt = time.perf_counter() - t0
    if hw != (size, size):
        pred = F.interpolate(pred[:, None], size=hw, mode="bilinear", align_corners=False)[:, 0]
    hu = (pred * 1000.0).permute(1, 2, 0).numpy()
    if m is not None:
        hu = np.where(m, hu, -1024.0)
    _write_nifti(hu, img, out)
    log(f"wrote {out} ({vol.shape[2]} slices, {dt / max(vol.shape[2], 1):.3g} s per slice)")
    return out
