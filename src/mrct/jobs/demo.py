"""The main job (``mrct demo``): sparse-view CT and undersampled radial MRI reconstructed by
FBP, TV-PDHG, FBPConvNet, Learned Primal-Dual and the Primal-Dual UNet, side by side.

Data (see :mod:`mrct.recon.datasets`): held-out axial slices of the shared chest CT in the
Primal-Dual UNet paper's fan-beam geometry with every 16th of 360 views (23 views), and a
held-out slice of the shared brain MRI as radial k-space with 32 of 512 spokes, turned into a
sinogram. Without ``../shared/data`` the demo falls back to built-in phantoms (random
ellipses for CT, the modified Shepp-Logan phantom for MRI) and says so. Ground truth is the
full-view FBP, as in the paper. Learned models are the shipped weights
(:func:`mrct.recon.pretrained`); nothing is downloaded.

Outputs (written atomically with :mod:`mrct.io`): ``metrics.json`` (settings, per method and
task the mean and standard deviation of SSIM, PSNR and NMSE over slices with fastMRI's
definitions, and the time per slice) and ``comparison.png`` (one row per case, one column per
method). Runs in about a minute on 2 CPU cores.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..io import atomic_path, check_outputs, save_figure

logger = logging.getLogger(__name__)

__all__ = ["run_demo"]

# typical image values of the two tasks (training targets' 99th percentile, as in
# recon.datasets): attenuation per pixel for CT, intensity / 255 for the brain MRI
_IMG_SCALE = {"ct": 0.028, "mri": 0.9}


def _tasks(n_ct: int, n_mri: int, log):
    from ..data import shared_data_dir
    from ..recon.datasets import ct_task, mri_task

    real = shared_data_dir() is not None
    if real:
        ct = ct_task(16, splits=("test",), max_slices=n_ct)
        mri = mri_task(16, splits=("test",), max_slices=n_mri) if n_mri else None
    else:
        log("../shared/data not found: using built-in phantoms (random ellipses for CT, "
            "Shepp-Logan for MRI); the shipped models were trained on real anatomy")  # fmt: skip
        ct = ct_task(16, source="ellipses", splits=("test",), n_ellipses=8 * n_ct)
        ct.splits["test"] = type(ct.test)(ct.test.inputs[:n_ct], ct.test.targets[:n_ct])
        mri = mri_task(16, splits=("test",), source="phantom") if n_mri else None
    return real, {"ct": ct, "mri": mri}


def _figure(out: Path, cases, results, labels) -> Path:
    from matplotlib.figure import Figure

    methods = list(next(iter(results.values())).keys())
    ncol = len(methods) + 1
    fig = Figure(figsize=(2.3 * ncol, 2.5 * len(cases)), layout="constrained")
    for r, (task, i, target) in enumerate(cases):
        vmax = float(np.percentile(target, 99.5))
        ax = fig.add_subplot(len(cases), ncol, r * ncol + 1)
        ax.imshow(target, cmap="gray", vmin=0, vmax=vmax)
        ax.set_title(f"{labels[task]}\nfull-view FBP (target)", fontsize=8)
        ax.set_axis_off()
        for c, m in enumerate(methods):
            ax = fig.add_subplot(len(cases), ncol, r * ncol + c + 2)
            res = results[task][m]
            ax.set_axis_off()
            if res.images is None:
                ax.set_title(f"{m}\n({res.note})", fontsize=7)
                continue
            ax.imshow(res.images[i].numpy(), cmap="gray", vmin=0, vmax=vmax)
            ax.set_title(
                f"{m}\nSSIM {res.scores['ssim'][i]:.3f}, PSNR {res.scores['psnr'][i]:.1f}",
                fontsize=8,
            )
    return save_figure(fig, out / "comparison.png")


def run_demo(out: str | Path = "demo_out", n_ct: int = 4, n_mri: int = 1, *,
             tv_iters: int = 100, progress: bool = True, overwrite: bool = True,
             log=None) -> dict:  # fmt: skip
    """Reconstruct held-out CT slices and a radial MRI case with every method; score; plot.

    Parameters
    ----------
    out : path
        Output folder (created if needed).
    n_ct, n_mri : int
        Held-out CT slices (spread evenly over the test range) and MRI slices (0 skips MRI).
    tv_iters : int
        TV-PDHG iterations.
    progress : bool
        Progress bars per method.
    overwrite : bool
        Replace ``metrics.json`` and ``comparison.png`` when they exist; when false
        (``mrct demo`` without ``--force``) that is an :class:`mrct.errors.OutputExistsError`,
        raised before any work.

    Returns
    -------
    dict
        ``lines`` (the report), ``files`` (paths written), ``metrics``. ``log`` receives each
        report line (``mrct demo`` passes ``typer.echo``; default: this module's logger).
    """
    log = log or logger.info
    from ..recon.compare import format_table, method_functions, run_methods

    if n_ct < 1 or n_mri < 0 or tv_iters < 1:
        raise ValueError("need n_ct >= 1, n_mri >= 0 and tv_iters >= 1")
    t_start = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    check_outputs([out / "metrics.json", out / "comparison.png"], overwrite)
    out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def say(s):
        lines.append(s)
        log(s)

    real, tasks = _tasks(n_ct, n_mri, say)
    labels = {"ct": "CT, 23 of 360 views", "mri": "radial MRI, 32 of 512 spokes"}
    results, cases, metrics_tasks = {}, [], {}
    for name, task in tasks.items():
        if task is None:
            continue
        fns, notes = method_functions(
            name, task.radon_sparse, 16, tv_iters=tv_iters, img_scale=_IMG_SCALE[name]
        )
        res = run_methods(fns, task.test.inputs, task.test.targets, notes, progress=progress)
        results[name] = res
        cases += [(name, i, t.numpy()) for i, t in enumerate(task.test.targets[:2])]
        n = len(task.test)
        title = (f"{labels[name]}: {n} held-out slice{'s' * (n > 1)} "
                 f"({task.info.get('source', 'brain_mri')}), target = full-view FBP")  # fmt: skip
        for s in format_table(res, title):
            say(s)
        metrics_tasks[name] = {
            "slices": n,
            "source": task.info.get("source"),
            "views": task.radon_sparse.geometry.proj_shape[0],
            "methods": {m: r.summary() for m, r in res.items()},
        }
    fig = _figure(out, cases, results, labels)
    metrics = {
        "mrct_version": __version__,
        "real_data": real,
        "metrics": "fastMRI SSIM, PSNR (dB), NMSE per slice vs the full-view Hann FBP; "
        "data range = target slice max; mean and std over slices",
        "tv_iterations": tv_iters,
        "tasks": metrics_tasks,
        "seconds_total": round(time.perf_counter() - t_start, 2),
    }
    mpath = out / "metrics.json"
    with atomic_path(mpath) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    say(f"total {metrics['seconds_total']:.1f} s")
    return {"lines": lines, "files": [mpath, fig], "metrics": metrics}
