"""The ``mrct drr`` job: render DRRs of a CT volume (NIfTI file or DICOM series folder) and
write one windowed PNG and one NIfTI of the values per view, atomically."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..io import check_outputs, save_image_png, save_nifti

__all__ = ["render_drrs"]

logger = logging.getLogger(__name__)


def render_drrs(volume: str | Path, out: str | Path = "drr_out", *,
                views: Sequence[str] | None = None, lao: Sequence[float] | None = None,
                cranial: float = 0.0, overwrite: bool = True,
                log: Callable[[str], None] | None = None,
                **drr_options) -> list[Path]:  # fmt: skip
    """Render ``views`` (``ap``, ``pa``, ``lateral``, ``right-lateral``; ``ap`` when neither
    ``views`` nor ``lao`` is given) and C-arm angles ``lao`` (with ``cranial``) of the CT in
    ``volume``; ``drr_options`` go to :class:`mrct.physics.drr.DRR` (``height``, ``width``,
    ``pixel_spacing``, ``sdd``, ``sid``, ``renderer``, ``attenuation``, ``energy``,
    ``output``). Writes ``drr_<name>.png`` and ``drr_<name>.nii`` into ``out``; returns the
    paths. ``log`` receives one line per view (default: this module's logger). With
    ``overwrite=False`` (``mrct drr`` without ``--force``) an existing output file is an
    :class:`mrct.errors.OutputExistsError`, raised before any work."""
    import torch

    from ..data import read_dicom_series, read_nifti
    from ..physics.drr import DRR, window

    log = log or logger.info
    volume, out = Path(volume), Path(out)
    jobs = [(f"lao{a:+g}_cran{cranial:+g}", dict(lao=a, cranial=cranial)) for a in lao or []]
    if views or not jobs:
        jobs = [(v, dict(view=v)) for v in (views or ["ap"])] + jobs
    sid, sdd = drr_options.get("sid"), drr_options.get("sdd")
    if sid is not None and sdd is not None and not 0 < sid < sdd:
        raise ValueError(f"need 0 < --sid < --sdd (the isocentre lies between source and "
                         f"detector), got sid {sid:g}, sdd {sdd:g}")  # fmt: skip
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    check_outputs([out / f"drr_{n}{s}" for n, _ in jobs for s in (".png", ".nii")], overwrite)
    vol = read_dicom_series(volume) if volume.is_dir() else read_nifti(volume)
    if vol.array.ndim != 3:
        from ..errors import ShapeError

        raise ShapeError(f"{volume}: a DRR needs a 3D CT volume, got shape {vol.array.shape}")
    renderer = DRR(vol, **drr_options)
    output = drr_options.get("output", "integral")
    dv, du = renderer.pixel_spacing
    files = []
    for name, kw in jobs:
        img = renderer(**kw).detach().cpu().numpy().astype(np.float32)
        shown = window(torch.from_numpy(img), invert=output == "intensity").numpy()
        png = save_image_png(shown, out / f"drr_{name}.png", vmin=0.0, vmax=1.0)
        # (cols, rows, 1) with the detector pixel size as voxel size
        nii = save_nifti(out / f"drr_{name}.nii", img.T[:, :, None], np.diag([du, dv, 1.0, 1.0]))
        files += [png, nii]
        log(f"{name}: {png}, {nii}")
    return files
