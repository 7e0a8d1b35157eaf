"""Your own image in, the shipped models' input and reference out: :func:`simulate`."""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["SIMULATE_TASKS", "parse_task", "simulate"]

#: the tasks of the shipped (and the results') models; "ct-sparse{k}" / "mri-radial{k}" with
#: other k work as well (every k-th of 360 views / 512 spokes)
SIMULATE_TASKS = ("ct-sparse4", "ct-sparse8", "ct-sparse16", "mri-radial16")
SIZE = 256


def parse_task(task: str) -> tuple[str, int]:
    """``"ct-sparse16"`` -> ``("ct", 16)``; ``"mri-radial16"`` -> ``("mri", 16)``."""
    m = re.fullmatch(r"(ct-sparse|mri-radial)(\d+)", str(task))
    k = int(m.group(2)) if m else 0
    if m is None or not 1 <= k <= (180 if m.group(1) == "ct-sparse" else 256):
        raise ValueError(
            f"task must be one of {SIMULATE_TASKS} (or 'ct-sparse{{k}}', k in 1 .. 180, "
            f"'mri-radial{{k}}', k in 1 .. 256), got {task!r}"
        )
    return ("ct" if m.group(1) == "ct-sparse" else "mri"), k


def _to_256(img: torch.Tensor, fill: float) -> torch.Tensor:
    """Pad to a square (centred, with ``fill``), then resample to 256 x 256: area averaging
    for integer reductions (as the chest CT's 512 -> 256), else anti-aliased bilinear."""
    h, w = img.shape
    n = max(h, w)
    ph, pw = n - h, n - w
    img = F.pad(img[None, None] - fill, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)) + fill
    if n == SIZE:
        return img[0, 0]
    if n > SIZE and n % SIZE == 0:
        return F.interpolate(img, size=(SIZE, SIZE), mode="area")[0, 0]
    return F.interpolate(img, size=(SIZE, SIZE), mode="bilinear", antialias=True,
                         align_corners=False)[0, 0]  # fmt: skip


def simulate(image, task: str = "ct-sparse16", *, photons: float | None = None,
             seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The model input and the full-data reference for your own 2D image, made exactly as
    the training and ``docs/results.md`` make them.

    Parameters
    ----------
    image : array or tensor, (H, W)
        CT tasks: HU (air -1000, water 0). MRI tasks: a magnitude image (any units; complex
        input uses its modulus).
    task : {"ct-sparse4", "ct-sparse8", "ct-sparse16", "mri-radial16"}
        The undersampling of the model you want to try (:func:`recommended` gives it).
    photons : float, optional
        CT only: Poisson noise at this many incident photons per detector bin and view
        (:func:`mrct.recon.ct_mix.poisson_noise`); default none, as in ``docs/results.md``.
    seed : int, optional
        Seed of that noise.

    Returns
    -------
    (model_input, reference) : torch.Tensor, float32
        CT: the sparse fan-beam sinogram ``(360 / k, 511)`` and the reference ``(256, 256)``.
        MRI: the radial sinogram ``(512 / k, 363)`` and the reference ``(256, 256)``. Pass
        ``model_input[None]`` to a model; score against ``reference`` (data range: its max).

    Notes
    -----
    Field of view and scaling: the image is padded (centred) to a square - with -1000 HU
    (CT) or 0 (MRI) - and resampled to 256 x 256, so the longer side spans the 256 pixels
    (area averaging for 512, 768, ...; anti-aliased bilinear otherwise). The models work in
    pixel units whatever the pixel size in mm. CT: attenuation per pixel
    ``0.02 (1 + HU / 1000)`` clipped at 0 (:func:`mrct.recon.datasets.hu_to_mu`), the
    paper's 360-view fan beam (:func:`mrct.recon.datasets.ct_geometry`), every k-th view
    kept. MRI: the magnitude divided by its maximum (the training images are the MNI152
    template / 255, maximum ~0.9-1), 512 equidistant radial spokes (exact NUFFT), turned into
    a sinogram, every k-th spoke kept (:class:`mrct.recon.datasets.MRISimulator`). The
    reference is the Hann-filtered FBP of the full (noise-free) data, clipped at 0: what the
    models are trained to output.
    """
    from .datasets import MRISimulator, ct_operators, hu_to_mu

    kind, k = parse_task(task)
    img = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image)
    if img.ndim != 2 or min(img.shape) < 2:
        raise ValueError(f"image must be a 2D array (H, W), got shape {tuple(img.shape)}")
    if img.is_complex():
        img = img.abs()
    img = img.detach().cpu().float()
    if not torch.isfinite(img).all():
        raise ValueError("image contains NaN or Inf")
    if kind == "ct":
        mu = hu_to_mu(_to_256(img.clamp_min(-1000.0), -1000.0))
        full, views, _ = ct_operators(k, SIZE)
        y = full(mu[None].contiguous())
        ref = full.fbp(y, filter="hann").clamp_min(0.0)[0]
        g = y[0, views]
        if photons:
            from .ct_mix import poisson_noise

            gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
            g = poisson_noise(g, float(photons), gen)
        return g.contiguous(), ref
    if photons:
        raise ValueError("photons applies to CT tasks only")
    mag = img.abs()
    top = float(mag.max())
    if top <= 0:
        raise ValueError("the MRI image is all zeros")
    g, ref = MRISimulator(k, SIZE).pairs(_to_256(mag / top, 0.0).clamp_min(0.0)[None])
    return g[0], ref[0]
