"""Train the lesion models: lesion-focused inpainting diffusion and lesion-mask diffusion.

    python scripts/train_lesion.py --recipe cpu            # 2D 64 x 64, minutes on 2 cores
    python scripts/train_lesion.py --recipe gpu            # 3D 32 x 64 x 64 (one GPU)
    python scripts/train_lesion.py --recipe gpu --model mask
    python scripts/train_lesion.py --recipe cpu --steps 20 --n-train 16 --tiny   # smoke
    python scripts/train_lesion.py --recipe gpu --ship     # copy to src/mrct/synth/weights

Data: :func:`mrct.synth.lesion.make_lesion_task`: crops of the shared chest CT's lungs
(centres on its training slices 0-89; validation 93-102) with one simulated nodule each
(:mod:`mrct.data.lesions`: solid, part-solid, ground-glass, 3-30 mm), HU clamped to
[-1000, 400] and scaled to [-1, 1]; the synthetic lung host without ``../shared/data``.
Training: :func:`mrct.training.fit` (Adam, cosine schedule, gradient clipping at 1, EMA);
``--steps`` are optimizer steps (rounded up to whole epochs).

Recipes (``--recipe``; every option below overrides them):

* ``cpu``: 2D (diffusers UNet2DModel, channels 16-32-64), 256 crops, batch 8, lr 1e-3,
  300 steps (about 2 minutes on 2 cores);
* ``gpu``: 3D (TimeUNet3D, channels 32-64-128), 2,000 crops, batch 16, lr 2e-4,
  20,000 steps (LeFusion trains 50,000 at batch 20 on five A100s; "good after 20k").

Writes ``OUT/lefusion-lung-ct.safetensors`` (``--model image``) or
``OUT/lefusion-mask.safetensors`` (``--model mask``) with the steps, the training time, the
machine and the recipe in the metadata, and the trainer's run folder ``OUT/runs/...``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from mrct.synth.lesion import LesionDiffusion, MaskDiffusion, make_lesion_task  # noqa: E402
from mrct.training import TrainConfig, fit  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "mrct" / "synth" / "weights"
RECIPES = {
    "cpu": dict(dims=2, channels=[16, 32, 64], n_train=256, n_val=16, batch=8, lr=1e-3,
                steps=300),
    "gpu": dict(dims=3, channels=[32, 64, 128], n_train=2000, n_val=32, batch=16, lr=2e-4,
                steps=20000),
}  # fmt: skip
NAMES = {"image": "lefusion-lung-ct", "mask": "lefusion-mask"}


def _machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", default="cpu", choices=sorted(RECIPES))
    ap.add_argument("--model", default="image", choices=["image", "mask"])
    ap.add_argument("--out", default="runs/lesion")
    ap.add_argument("--dims", type=int, choices=[2, 3])
    ap.add_argument("--channels", type=int, nargs="+")
    ap.add_argument("--n-train", type=int)
    ap.add_argument("--n-val", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--seconds", type=float, help="wall-clock budget for the training")
    ap.add_argument("--source", default="auto", choices=["auto", "chest_ct", "synthetic"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tiny", action="store_true", help="tiny network (tests)")
    ap.add_argument("--ship", action="store_true", help="copy to src/mrct/synth/weights/")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    r = dict(RECIPES[args.recipe])
    for key in ("dims", "channels", "n_train", "n_val", "batch", "lr", "steps"):
        if getattr(args, key) is not None:
            r[key] = getattr(args, key)
    if args.tiny:
        r["channels"] = [8, 16]
    out = Path(args.out)
    t0 = time.perf_counter()
    data = {"dims": r["dims"], "n_train": r["n_train"], "n_val": r["n_val"], "seed": args.seed,
            "source": args.source, "model": args.model}  # fmt: skip
    _, train, val, extra = make_lesion_task(data)
    t_data = time.perf_counter() - t0
    print(f"{len(train)} training / {len(val)} validation crops ({train.source}) in {t_data:.0f} s")
    torch.manual_seed(args.seed)
    cls = LesionDiffusion if args.model == "image" else MaskDiffusion
    model = cls(dims=r["dims"], channels=r["channels"], info=extra["info"])
    batches = math.ceil(len(train) / r["batch"])
    epochs = max(1, math.ceil(r["steps"] / batches))
    name = NAMES[args.model]
    cfg = TrainConfig(epochs=epochs, batch_size=r["batch"], lr=r["lr"], scheduler="cosine",
                      grad_clip=1.0, seed=args.seed, out_dir=str(out / "runs" / name),
                      overwrite=True, val_every=max(1, epochs // 4), checkpoint_every=epochs,
                      progress=args.progress, device="auto", data=data,
                      max_seconds=args.seconds)  # fmt: skip
    t1 = time.perf_counter()
    res = fit(model, train, val, cfg, model_kwargs=model.config,
              metadata={"model": args.model, "task": data})  # fmt: skip
    dt = time.perf_counter() - t1
    last = res.history["epochs"][-1]
    path = res.model.save(out / f"{name}.safetensors", extra={
        "recipe": {"name": args.recipe, **r, "data": data}, "steps": last["steps"],
        "samples_seen": last["steps"] * r["batch"],
        "train_time_s": round(dt, 1), "data_time_s": round(t_data, 1), "machine": _machine(),
        "torch": torch.__version__, "val_loss": last.get("val_loss")})  # fmt: skip
    print(
        f"{name}: {last['steps']} steps in {dt:.0f} s, train loss {last['train_loss']:.4g}, "
        f"val loss {last.get('val_loss', float('nan')):.4g} -> {path}"
    )
    if args.ship:
        SHIPPED.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SHIPPED / path.name)
        print(f"shipped as {SHIPPED / path.name}")
    return path


if __name__ == "__main__":
    main()
