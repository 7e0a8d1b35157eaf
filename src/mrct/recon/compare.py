"""Run and score several reconstructors on one task's held-out data (the main job's core,
also used by ``scripts/recon_results.py`` for ``docs/results.md``).

Methods are named ``"FBP"`` (Hann filter, clipped at 0), ``"TV-PDHG"`` (:func:`tv_pdhg`,
non-negative, warm-started at the FBP), ``"FBPConvNet"``, ``"LPD"`` and ``"PD-UNet"`` (the
shipped weights of :func:`mrct.recon.pretrained` for the task; skipped with a note when a
model for that task and undersampling is not shipped). Scores are fastMRI's SSIM, PSNR and
NMSE (:mod:`mrct.metrics`) per slice against the full-view FBP, with the target slice's
maximum as the data range, reported as mean and standard deviation over slices, with the mean
reconstruction time per slice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..metrics import nmse, psnr, ssim

__all__ = ["MethodResult", "METHODS", "TV_LAMBDA", "method_functions", "run_methods",
           "format_table"]  # fmt: skip

METHODS = ("FBP", "TV-PDHG", "FBPConvNet", "LPD", "PD-UNet")
_MODEL_KEYS = {"FBPConvNet": "fbpconvnet", "LPD": "lpd", "PD-UNet": "pdunet"}
#: TV weights for images divided by the task's image scale (see method_functions), chosen
#: on two validation slices per task (SSIM/PSNR vs the full-view FBP, 100 iterations;
#: docs/results.md lists the sweep).
TV_LAMBDA = {"ct": 0.02, "mri": 0.1}


@dataclass
class MethodResult:
    """Reconstructions (n, H, W), per-slice scores and time per slice of one method."""

    name: str
    images: torch.Tensor | None = None
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    seconds_per_slice: float = float("nan")
    note: str = ""

    def summary(self) -> dict:
        out = {k: [float(v.mean()), float(v.std())] for k, v in self.scores.items()}
        out["seconds_per_slice"] = self.seconds_per_slice
        if self.note:
            out["note"] = self.note
        return out


def method_functions(
    task_name: str,
    radon,
    undersampling: int,
    names=METHODS,
    tv_iters: int = 200,
    img_scale: float = 1.0,
    weights_dir=None,
) -> tuple[dict[str, Callable], dict[str, str]]:
    """Callables ``sinograms (n, V, N) -> images (n, H, W)`` for the named methods, and notes
    for the ones that cannot run (no shipped model).

    Learned models come from ``weights_dir/{model}-{task}-{sparse|radial}{k}.safetensors``
    when that file exists (models trained by ``scripts/train_pretrained.py`` but not shipped),
    else from mrct's shipped weights.

    ``img_scale`` (a typical image value) rescales TV-PDHG's problem to images of order one,
    where its default step-size ratio converges fastest; ``TV_LAMBDA`` is in those units.
    """
    from .pretrained import PRETRAINED, load_model_file, pretrained, weights_path
    from .tv_pdhg import tv_pdhg

    fns: dict[str, Callable] = {}
    notes: dict[str, str] = {}
    for name in names:
        if name == "FBP":
            fns[name] = lambda g: radon.fbp(g, filter="hann").clamp_min(0.0)
        elif name == "TV-PDHG":
            lam = TV_LAMBDA[task_name]
            norm: list[float] = []  # ||A||, computed once per operator

            def tv(g, lam=lam, norm=norm, s=float(img_scale)):
                if not norm:
                    norm.append(float(radon.opnorm()))
                x0 = radon.fbp(g, filter="hann").clamp_min(0.0) / s
                x = tv_pdhg(radon, g / s, lam, x0=x0, n_iter=tv_iters, nonneg=True,
                            opnorm=norm[0])  # fmt: skip
                return x * s

            fns[name] = tv
        elif name in _MODEL_KEYS:
            key = f"{_MODEL_KEYS[name]}-{task_name}-" + (
                f"sparse{undersampling}" if task_name == "ct" else f"radial{undersampling}"
            )
            extra = Path(weights_dir) / f"{key}.safetensors" if weights_dir else None
            if extra is not None and extra.is_file():
                model = load_model_file(extra, key)
            elif key in PRETRAINED and weights_path(key).is_file():
                model = pretrained(key)
            else:
                notes[name] = f"no shipped model {key!r}"
                continue
            if tuple(model.radon.geometry.proj_shape) != tuple(radon.geometry.proj_shape):
                notes[name] = f"{key} expects sinograms {model.radon.geometry.proj_shape}"
                continue

            def run(g, model=model):
                with torch.no_grad():
                    return model(g).clamp_min(0.0)

            fns[name] = run
        else:
            raise ValueError(f"unknown method {name!r}; choose from {METHODS}")
    return fns, notes


def _scores(rec: torch.Tensor, target: torch.Tensor) -> dict[str, np.ndarray]:
    rows = []
    for r, t in zip(rec.numpy(), target.numpy(), strict=True):
        dr = float(t.max())
        rows.append((ssim(r, t, dr), psnr(r, t, dr), nmse(r, t)))
    a = np.asarray(rows, dtype=np.float64)
    return {"ssim": a[:, 0], "psnr": a[:, 1], "nmse": a[:, 2]}


def run_methods(fns: dict[str, Callable], sinograms: torch.Tensor, targets: torch.Tensor,
                notes: dict[str, str] | None = None,
                progress: bool = False) -> dict[str, MethodResult]:  # fmt: skip
    """Reconstruct every slice with every method (one slice at a time, timed) and score."""
    from tqdm.auto import tqdm

    out: dict[str, MethodResult] = {}
    for name, fn in fns.items():
        recs, t = [], 0.0
        for g in tqdm(sinograms, desc=name, disable=not progress, leave=False):
            t0 = time.perf_counter()
            recs.append(fn(g[None])[0].detach().float())
            t += time.perf_counter() - t0
        images = torch.stack(recs)
        out[name] = MethodResult(name, images, _scores(images, targets), t / len(recs))
    for name, why in (notes or {}).items():
        out[name] = MethodResult(name, note=why)
    return out


def format_table(results: dict[str, MethodResult], title: str) -> list[str]:
    """Plain-text table: method, SSIM, PSNR, NMSE (mean +- std), seconds per slice."""
    lines = [title, f"{'method':<11} {'SSIM':>15} {'PSNR/dB':>15} {'NMSE':>19} {'s/slice':>8}"]
    for name, r in results.items():
        if not r.scores:
            lines.append(f"{name:<11} ({r.note})")
            continue
        s, p, n = r.scores["ssim"], r.scores["psnr"], r.scores["nmse"]
        lines.append(
            f"{name:<11} {s.mean():>7.3f} +- {s.std():.3f} {p.mean():>7.2f} +- {p.std():>5.2f} "
            f"{n.mean():>9.2e} +- {n.std():.1e} {r.seconds_per_slice:>8.2f}"
        )
    return lines
