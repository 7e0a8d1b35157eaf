"""Train the synthetic-CT models: conditional diffusion and UNet regression, CBCT and MRI.

    python scripts/train_sct.py                        # both tasks, both models, 64 x 64
    python scripts/train_sct.py --ship                 # ... and copy them to mrct/synth/weights
    python scripts/train_sct.py --tasks cbct --diffusion-steps 3000 --unet-steps 1500
    python scripts/train_sct.py --size 16 --slices 4 --tiny --diffusion-steps 3 --unet-steps 3

Data: :func:`mrct.synth.sct_data.make_sct_task` (simulated CBCT / synthetic MR from the
shared chest CT's training slices 0-89, ``--realisations`` simulations each, 2.5D with
``--context`` neighbours; the phantom without ``../shared/data``). Training: the mrct trainer
(:func:`mrct.training.fit`, Adam, cosine schedule, gradient clipping at 1): the
diffusion model on its DDPM loss (velocity prediction by default) with EMA weights, the UNet
on L1 of HU / 1000 with a residual to the input for CBCT. ``--*-steps`` are optimizer steps
(rounded up to whole epochs).

Writes ``OUT/sct-<task>-<diffusion|unet>.safetensors`` (EMA weights included; constructor
arguments and the recipe in the metadata) and the trainer's run folders ``OUT/runs/...``.
``scripts/sct_results.py`` evaluates them. The defaults are the recipe of the shipped weights;
``--ship`` copies the four checkpoints to ``src/mrct/synth/weights/`` (what ``mrct synth sct``
uses without ``--model``).
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

from mrct.synth import ConditionalDiffusion, SCTUNet  # noqa: E402
from mrct.synth.sct_data import make_sct_task  # noqa: E402
from mrct.training import TrainConfig, fit  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "mrct" / "synth" / "weights"


def build(
    kind: str,
    task: str,
    size: int,
    context: int,
    tiny: bool,
    channels=(32, 64, 64),
    prediction: str = "epsilon",
):
    info = {"task": task, "target_units": "HU/1000",
            "condition_units": "HU/1000" if task == "cbct" else "MR / p99"}  # fmt: skip
    c = 2 * context + 1
    if kind == "diffusion":
        arch = dict(block_out_channels=(16, 32), norm_num_groups=8) if tiny else \
            dict(block_out_channels=tuple(channels), norm_num_groups=8)  # fmt: skip
        return ConditionalDiffusion(image_size=size, cond_channels=c, context=context,
                                    layers_per_block=1, ema_decay=0.995, info=info,
                                    prediction_type=prediction, **arch)  # fmt: skip
    arch = dict(depth=2, wf=3) if tiny else dict(depth=3, wf=4)
    return SCTUNet(cond_channels=c, context=context, residual=task == "cbct", image_size=size,
                   info=info, **arch)  # fmt: skip


def main(argv=None) -> list[Path]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/sct", help="output folder")
    ap.add_argument("--tasks", nargs="+", default=["cbct", "mri"], choices=["cbct", "mri"])
    ap.add_argument("--models", nargs="+", default=["diffusion", "unet"],
                    choices=["diffusion", "unet"])  # fmt: skip
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--source", default="auto", choices=["auto", "chest_ct", "phantom"])
    ap.add_argument("--slices", type=int, default=None, help="training slices (default all 90)")
    ap.add_argument("--val-slices", type=int, default=8)
    ap.add_argument("--realisations", type=int, default=2)
    ap.add_argument("--context", type=int, default=1)
    ap.add_argument("--diffusion-steps", type=int, default=1500)
    ap.add_argument("--unet-steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument(
        "--channels",
        type=int,
        nargs="+",
        default=[16, 32, 32],
        help="diffusion UNet channels per level",
    )
    ap.add_argument(
        "--prediction",
        default="v_prediction",
        choices=["epsilon", "v_prediction", "sample"],
        help="what the diffusion UNet predicts (epsilon: DDPM noise prediction; v_prediction "
        "samples far better after short training, see docs/synth.md)",
    )
    ap.add_argument("--lr", type=float, default=None, help="both models' learning rate")
    ap.add_argument("--diffusion-lr", type=float, default=1e-3)
    ap.add_argument("--unet-lr", type=float, default=3e-3)
    ap.add_argument("--ship", action="store_true",
                    help="copy the checkpoints to src/mrct/synth/weights/")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tiny", action="store_true", help="tiny networks (tests)")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out)
    written = []
    for task in args.tasks:
        t0 = time.perf_counter()
        data = {"modality": task, "size": args.size, "max_slices": args.slices,
                "val_slices": args.val_slices, "source": args.source, "seed": args.seed,
                "realisations": args.realisations, "context": args.context}  # fmt: skip
        _, train, val, _ = make_sct_task(data)
        print(
            f"[{task}] {len(train)} training / {len(val)} validation slices "
            f"({train.pairs.info['source']}), simulated in {time.perf_counter() - t0:.1f} s"
        )
        for kind in args.models:
            torch.manual_seed(args.seed)
            model = build(
                kind, task, args.size, args.context, args.tiny, args.channels, args.prediction
            )
            steps = args.diffusion_steps if kind == "diffusion" else args.unet_steps
            batches = math.ceil(len(train) / args.batch)
            epochs = max(1, math.ceil(steps / batches))
            lr = args.lr or (args.diffusion_lr if kind == "diffusion" else args.unet_lr)
            cfg = TrainConfig(epochs=epochs, batch_size=args.batch, lr=lr,
                              scheduler="cosine", loss="l1", grad_clip=1.0, seed=args.seed,
                              out_dir=str(out / "runs" / f"sct-{task}-{kind}"), overwrite=True,
                              val_every=max(1, epochs // 5), checkpoint_every=epochs,
                              progress=args.progress, device="auto",
                              data=data)  # fmt: skip
            t1 = time.perf_counter()
            r = fit(model, train, val, cfg, model_kwargs=model.config,
                    metadata={"model": kind, "task": data})  # fmt: skip
            dt = time.perf_counter() - t1
            last = r.history["epochs"][-1]
            path = r.model.save(out / f"sct-{task}-{kind}.safetensors", extra={
                "recipe": {"steps": r.history["epochs"][-1]["steps"], "batch": args.batch,
                           "lr": cfg.lr, "data": data},
                "train_time_s": round(dt, 1), "machine": platform.processor() or platform.machine(),
                "torch": torch.__version__, "val_loss": last.get("val_loss")})  # fmt: skip
            print(
                f"[{task}] {kind}: {last['steps']} steps in {dt:.0f} s, train loss "
                f"{last['train_loss']:.4g}, val loss {last.get('val_loss', float('nan')):.4g}"
                f" -> {path}"
            )
            written.append(path)
            if args.ship:
                SHIPPED.mkdir(parents=True, exist_ok=True)
                dest = SHIPPED / path.name
                shutil.copyfile(path, dest)
                print(f"    shipped as {dest}")
    return written


if __name__ == "__main__":
    main()
