"""Reproduce the weights that mrct ships in ``src/mrct/recon/weights/``.

    python scripts/train_pretrained.py pdunet-ct-sparse16 [--steps 600] [--batch 2] [--seed 0]
    python scripts/train_pretrained.py all                   # each shipped model, its own steps
    python scripts/train_pretrained.py results --steps 200   # sparsity 4 and 8 (not shipped)
    python scripts/train_pretrained.py pdunet-ct-sparse16 --device cuda --batch 32 --amp bf16 \
        --seconds 300                                         # GPU: as many steps as fit
    python scripts/train_pretrained.py pdunet-ct-sparse16 --data mix --photons 1e5 \
        --pool 2048 --workers 16 --val-every 200 --out results_weights   # issue #17's data

``--data chest`` (the default) is the recipe of the shipped weights (reproducible as before).
``--data mix`` (CT only) trains on :mod:`mrct.recon.ct_mix`: a pool of ``--pool`` images
(chest CT axial / coronal / sagittal at several fields of view, synthetic anatomy from the
organ labels, ellipses; built once by ``--workers`` processes, deterministic from the seed),
each step a batch drawn from it, randomly flipped / rotated by 90 degrees, and its sinograms
simulated on the device (Poisson noise at ``--photons`` per bin when given); validation SSIM
on held-out chest slices and synthetic head CT slices every ``--val-every`` steps and at the
end (in the metadata).

Recipe (the Primal-Dual UNet paper's, shortened for CPUs): L1 loss on images divided by the
training set's 99th percentile, Adam (lr 1e-3), cosine annealing over all steps, random
mini-batches of the training split of :mod:`mrct.recon.datasets` (chest CT slices 0-89 for
CT, brain MRI slices 40-119 for MRI; ground truth the full-view Hann FBP), fixed seed. The
paper trains for 151 epochs with batch 32 on a GPU; the shipped models see far fewer samples
(``--steps`` x ``--batch``), which ``docs/results.md`` takes into account.

Each file is a safetensors state dict with metadata: the model keyword arguments (read back by
:func:`mrct.recon.pretrained`), the recipe, the time, the machine and the held-out metrics.
Needs ``../shared/data``. Written atomically.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (mrct/__init__.py)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from mrct.io import atomic_path  # noqa: E402
from mrct.metrics import nmse, psnr, ssim  # noqa: E402
from mrct.recon.ct_mix import (  # noqa: E402
    ValidationSSIM,
    ct_mix_task,
    image_pool,
    simulate_pairs,
)
from mrct.recon.datasets import ct_task, mri_task  # noqa: E402
from mrct.recon.pretrained import PRETRAINED, build_model, parse_name  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "src" / "mrct" / "recon" / "weights"
RESULTS_WEIGHTS = Path(__file__).resolve().parents[1] / "results_weights"  # not shipped


def evaluate(model, task, device=torch.device("cpu")) -> dict:
    """Mean +- std of SSIM, PSNR, NMSE on the test split (targets' max as data range)."""
    model.eval()
    rows = []
    with torch.no_grad():
        for g, x in zip(task.test.inputs, task.test.targets, strict=True):
            out = model(g[None].to(device))[0].clamp_min(0).float().cpu().numpy()
            fbp = task.radon_sparse.fbp(g[None], filter="hann")[0].clamp_min(0).numpy()
            xr = x.numpy()
            dr = float(xr.max())
            rows.append([ssim(out, xr, dr), psnr(out, xr, dr), nmse(out, xr),
                         ssim(fbp, xr, dr), psnr(fbp, xr, dr)])  # fmt: skip
    a = np.asarray(rows)
    keys = ["ssim", "psnr", "nmse", "fbp_ssim", "fbp_psnr"]
    return {k: [float(a[:, i].mean()), float(a[:, i].std())] for i, k in enumerate(keys)}


def _autocast(device: torch.device, amp: str):
    if amp == "off":
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return torch.autocast(device.type, dtype=dtype)


def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return (f"{platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")  # fmt: skip


def train(name: str, steps: int, batch: int, seed: int, out_dir: Path, *,
          device: str = "cpu", amp: str = "off", seconds: float | None = None,
          data: str = "chest", photons: float | None = None, pool: int = 2048,
          workers: int = 1, val_every: int = 0, max_slices: int | None = None) -> Path:  # fmt: skip
    """Train one model; with ``seconds``, the number of steps is what fits in that time
    (measured over the first steps at the initial learning rate; the cosine schedule then
    covers the remaining steps)."""
    spec = parse_name(name)
    dev = torch.device(device)
    if amp == "fp16":
        raise ValueError("--amp fp16 needs a GradScaler this script does not use; use bf16")
    torch.manual_seed(seed)
    t0 = time.time()
    if data == "mix" and spec.task != "ct":
        raise ValueError("--data mix is for the CT models")
    val_ssim = None
    if data == "mix":
        task = ct_mix_task(spec.undersampling, photons=photons, splits=("val", "test"),
                           seed=seed, max_slices=max_slices)  # fmt: skip
        val_ssim = ValidationSSIM(task.info["val_sets"])
    elif spec.task == "ct":
        task = ct_task(spec.undersampling)
    else:
        task = mri_task(spec.undersampling)
    kwargs = {"img_scale": task.img_scale}
    model = build_model(spec.model, task.radon_sparse, **kwargs)
    if spec.model == "lpd":
        kwargs["opnorm"] = float(model.opnorm)  # saved so loading skips the power iteration
    model = model.to(dev)
    if data == "mix":
        images = image_pool(pool, None, 256, seed=seed, workers=workers).to(dev)
        full = task.radon_full
        views = torch.as_tensor(np.arange(0, 360, spec.undersampling), device=dev)
        n_train = len(images)
    else:
        inputs, targets = task.train.inputs.to(dev), task.train.targets.to(dev)
        n_train = len(task.train)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    scale = task.img_scale
    t_data = time.time() - t0
    model.train()

    def step():
        idx = torch.randint(n_train, (batch,), generator=gen).to(dev)
        if data == "mix":
            k, flip = (int(v) for v in torch.randint(4, (2,), generator=gen))
            imgs = torch.rot90(images[idx], k, (1, 2))
            imgs = imgs.flip(2) if flip % 2 else imgs
            with torch.no_grad():
                g, x = simulate_pairs(imgs.contiguous(), full, views, photons)
        else:
            g, x = inputs[idx], targets[idx]
        with _autocast(dev, amp):
            out = model(g)
        loss = torch.nn.functional.l1_loss(out.float() / scale, x / scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    done = 0
    if seconds is not None:  # time a few steps at the initial rate, then fit the rest
        probe = min(10, max(1, steps))
        t1 = time.time()
        for _ in range(probe):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        per_step = (time.time() - t1) / probe
        done = probe
        steps = max(done + 1, int(seconds / per_step))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps - done)
    bar = tqdm(range(done, steps), desc=name)
    for i in bar:
        loss = step()
        sched.step()
        bar.set_postfix(loss=f"{float(loss):.4f}", refresh=False)
        if val_ssim is not None and val_every and (i + 1) % val_every == 0:
            print(f"step {i + 1}: val SSIM {val_ssim.scores(model)}", flush=True)
    t_train = time.time() - t0 - t_data
    metrics = evaluate(model, task, dev)
    if val_ssim is not None:
        metrics["val_ssim"] = val_ssim.scores(model)
    model = model.cpu()
    meta = {
        "model_kwargs": json.dumps(kwargs),
        "recipe": json.dumps(
            {
                "steps": steps,
                "batch": batch,
                "samples_seen": steps * batch,
                "amp": amp,
                "seed": seed,
                "lr": 1e-3,
                "loss": "l1 / img_scale",
                "schedule": "cosine",
                "data": data,
                "train_slices" if data == "chest" else "pool_images": n_train,
                **(
                    {"mix": task.info["mix"], "photons": photons, "workers": workers}
                    if data == "mix"
                    else {}
                ),
            }
        ),  # fmt: skip
        "test_metrics": json.dumps(metrics),
        "train_seconds": f"{t_train:.0f}",
        "machine": _machine(dev),
        "date": time.strftime("%Y-%m-%d"),
    }
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.safetensors"
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    print(f"{name}: {t_train:.0f} s training; test {json.dumps(metrics)} -> {path}")
    return path


#: optimizer steps (batch 2) of the shipped weights; LPD starts from zero and needs more
SHIPPED_STEPS = {"pdunet-ct-sparse16": 300, "lpd-ct-sparse16": 1000, "fbpconvnet-ct-sparse16": 200,
                 "pdunet-mri-radial16": 200, "lpd-mri-radial16": 1000,
                 "fbpconvnet-mri-radial16": 200}  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help=f"one of {sorted(PRETRAINED)} or 'all'")
    ap.add_argument("--steps", type=int, default=None,
                    help="optimizer steps (default: the shipped model's, else 200)")  # fmt: skip
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument(
        "--data",
        choices=("chest", "mix"),
        default="chest",
        help="chest: the shipped weights' data; mix: issue #17's CT mix",
    )
    ap.add_argument(
        "--photons",
        type=float,
        default=None,
        help="--data mix: Poisson noise at this many photons per bin (default none)",
    )
    ap.add_argument(
        "--max-slices",
        type=int,
        default=None,
        help="--data mix: at most this many validation/test chest slices (smoke runs)",
    )
    ap.add_argument("--pool", type=int, default=2048, help="--data mix: images in the pool")
    ap.add_argument("--workers", type=int, default=1, help="--data mix: processes for the pool")
    ap.add_argument(
        "--val-every",
        type=int,
        default=0,
        help="--data mix: print validation SSIM every N steps (0: only at the end)",
    )
    ap.add_argument(
        "--amp",
        choices=("off", "bf16"),
        default="off",
        help="autocast the networks to bfloat16 (the operators stay float32)",
    )
    ap.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="train for about this long (sets the number of steps)",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: the package's weights/ for shipped models, "
        "results_weights/ for the others)",
    )
    a = ap.parse_args(argv)
    if a.name == "all":
        names = sorted(PRETRAINED)
    elif a.name == "results":  # the non-shipped models behind docs/results.md
        names = [f"{m}-ct-sparse{k}" for k in (4, 8) for m in ("pdunet", "lpd", "fbpconvnet")]
    else:
        names = [a.name]
    for n in names:
        try:
            parse_name(n)
        except ValueError as e:
            ap.error(str(e))
        out = a.out or (OUT if n in PRETRAINED else RESULTS_WEIGHTS)
        train(n, a.steps or SHIPPED_STEPS.get(n, 200), a.batch, a.seed, out, device=a.device,
              amp=a.amp, seconds=a.seconds, data=a.data, photons=a.photons, pool=a.pool,
              workers=a.workers, val_every=a.val_every,
              max_slices=a.max_slices)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
