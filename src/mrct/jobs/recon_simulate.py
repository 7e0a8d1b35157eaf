"""``mrct recon --simulate IMAGE``: a user's image -> the shipped models' input and reference
(:func:`mrct.recon.simulate`) -> one method's reconstruction, scored and written."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ..io import check_outputs
from .recon import METHODS, _check_task, output_files, output_prefix, reconstruct, write_outputs

logger = logging.getLogger(__name__)

__all__ = ["load_image", "run_simulated"]


def load_image(path: str | Path) -> np.ndarray:
    """A 2D image from ``.npy``, ``.npz`` (key ``image``), DICOM (``.dcm``, HU for CT) or
    NIfTI (``.nii``, ``.nii.gz``; the middle slice of the first axis of a volume)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    name = path.name.lower()
    if name.endswith(".npy"):
        arr = np.load(path, allow_pickle=False)
    elif name.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            if "image" not in z.files:
                raise ValueError(f"{path} must hold an array named 'image', found {z.files}")
            arr = z["image"]
    elif name.endswith(".dcm"):
        from ..data import read_dicom

        arr = read_dicom(path).array
    elif name.endswith((".nii", ".nii.gz")):
        from ..data import read_nifti

        arr = read_nifti(path).array
    else:
        raise ValueError(f"image must be .npy, .npz, .dcm, .nii or .nii.gz, got {path.name!r}")
    arr = np.squeeze(np.asarray(arr))
    if arr.ndim == 3:
        arr = arr[arr.shape[0] // 2]
    if arr.ndim != 2:
        raise ValueError(f"{path.name}: expected a 2D image (or a volume), got {arr.shape}")
    return arr


def run_simulated(image_path: str | Path, method: str, task: str = "ct", sparsity: int = 16, *,
                  iters: int | None = None, lam: float | None = None,
                  out: str | Path | None = None, png: bool = True, device: str = "cpu",
                  photons: float | None = None, overwrite: bool = True,
                  log=None) -> dict:  # fmt: skip
    """``mrct recon --simulate IMAGE``: :func:`mrct.recon.simulate` the image for the task
    (``"ct-sparse{k}"`` / ``"mri-radial{k}"``), reconstruct with ``method``, score SSIM,
    PSNR and NMSE against the full-data reference (data range: its maximum), write the
    reconstruction and ``<prefix>_reference``. Returns the dict of :func:`run_recon` plus
    ``metrics``."""
    import torch

    from ..metrics import nmse, psnr, ssim
    from ..recon.simulate import simulate

    log = log or logger.info
    method = getattr(method, "value", method)
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    _check_task(task, sparsity)
    name = f"ct-sparse{sparsity}" if task == "ct" else f"mri-radial{sparsity}"
    prefix = output_prefix(image_path, method, out)
    ref_prefix = prefix.with_name(prefix.name + "_reference")
    check_outputs(output_files(prefix, png) + output_files(ref_prefix, png), overwrite)
    g, ref = simulate(load_image(image_path), name, photons=photons)
    t0 = time.perf_counter()
    img = reconstruct(g[None], method, task, sparsity, iters=iters, lam=lam, device=device)
    seconds = time.perf_counter() - t0
    rec, r = img[0].numpy(), ref.numpy()
    dr = float(r.max()) or 1.0
    metrics = {"ssim": ssim(rec, r, dr), "psnr": psnr(rec, r, dr), "nmse": nmse(rec, r)}
    lines = [f"{METHODS[method]} of {Path(image_path).name} simulated as {name}"
             f"{f' ({photons:g} photons)' if photons else ''} in {seconds:.2f} s: "
             f"SSIM {metrics['ssim']:.4f}, PSNR {metrics['psnr']:.2f} dB, "
             f"NMSE {metrics['nmse']:.2e} (vs the full-data FBP reference)"]  # fmt: skip
    files = write_outputs(img.numpy(), prefix, batched=False, png=png)
    files += write_outputs(torch.as_tensor(r)[None].numpy(),
                           ref_prefix, False, png)  # fmt: skip
    lines.append("wrote " + ", ".join(str(p) for p in files))
    for s in lines:
        log(s)
    return {"images": img.numpy(), "files": files, "seconds": seconds, "lines": lines,
            "metrics": metrics}  # fmt: skip
