"""Train the two dehazing priors (tissue and haze) and record time and machine.

CPU smoke run (minutes; tiny data, one epoch, weights not worth shipping):

    python scripts/train_dehaze_priors.py --smoke --out runs/dehaze-smoke

GPU recipe (the paper's numbers: 150 training frames per prior, batch 8, lr 1e-4, 100
epochs; about an hour per prior on one modern GPU, most of it the frame simulation):

    python scripts/train_dehaze_priors.py --gpu --out runs/dehaze
    cp runs/dehaze/tissue/best.safetensors src/mrct/synth/weights/dehaze-tissue-rf.safetensors
    cp runs/dehaze/haze/best.safetensors src/mrct/synth/weights/dehaze-haze-rf.safetensors

Each run writes ``train_record.json`` (wall time, machine, torch/numba versions, config).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from mrct.io import write_text
from mrct.recon import train_from_config
from mrct.training import TrainConfig

REPO = Path(__file__).resolve().parents[1]
SMOKE = {"epochs": 1, "data.frames": 2, "data.val_frames": 1, "data.patches": 16,
         "data.val_patches": 4, "data.n_angles": 64}  # fmt: skip


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/dehaze"))
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run (2 frames, 1 epoch)")
    ap.add_argument("--gpu", action="store_true", help="train on cuda")
    ap.add_argument("--kinds", nargs="+", default=["tissue", "haze"])
    ap.add_argument("--seconds", type=float, help="wall-clock budget per prior (max_seconds)")
    ap.add_argument("--epochs", type=int, help="override the config's epochs")
    ap.add_argument("--frames", type=int, help="override the simulated training frames")
    opts = ap.parse_args(argv)
    for kind in opts.kinds:
        overrides = {"out_dir": str(opts.out / kind)}
        if opts.smoke:
            overrides.update(SMOKE)
        if opts.gpu:
            overrides["device"] = "cuda"
        if opts.seconds is not None:
            overrides["max_seconds"] = opts.seconds
        if opts.epochs is not None:
            overrides["epochs"] = opts.epochs
        if opts.frames is not None:
            overrides["data.frames"] = opts.frames
        cfg = TrainConfig.from_file(REPO / "configs" / f"dehaze-{kind}-rf.toml", overrides)
        t0 = time.perf_counter()
        res = train_from_config(cfg)
        wall = time.perf_counter() - t0
        import numba
        import torch

        record = {
            "kind": kind,
            "wall_s": round(wall, 1),
            "machine": f"{platform.node()} / {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, "
            + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"),
            "torch": torch.__version__,
            "numba": numba.__version__,
            "steps": res.history["epochs"][-1]["steps"] if res.history["epochs"] else 0,
            "epochs": len(res.history["epochs"]),
            "samples_seen": (
                res.history["epochs"][-1]["steps"] * cfg.batch_size if res.history["epochs"] else 0
            ),
            "config": cfg.to_dict(),
            "best": str(res.best_checkpoint) if res.best_checkpoint else None,
        }
        write_text(opts.out / kind / "train_record.json", json.dumps(record, indent=2))
        print(f"{kind}: {wall:.1f} s -> {res.best_checkpoint or res.last_checkpoint}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
