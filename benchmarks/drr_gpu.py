"""GPU throughput of mrct's DRR renderer (renders per second), for ``benchmarks/gpu.sh``.

Goal of issue #5: at least 1,000 renders per second at 200 x 200 (DiffDRR: 25.2 ms per render
on an RTX 2080 Ti; nanodrr claims 946 frames/s on an RTX 6000 Ada). Uses the shared chest CT
when present, else a synthetic volume of the same size (512 x 512 x 133, HU). Prints a
Markdown table; run it on a machine with a GPU.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from mrct.physics import DRR


def main() -> None:
    from mrct.data import SharedDataMissing, load_chest_ct

    dev = torch.device("cuda")
    try:
        vol, what = load_chest_ct(), "chest CT"
    except SharedDataMissing:
        rng = np.random.default_rng(0)
        hu = rng.normal(0.0, 50.0, (133, 512, 512)).astype(np.float32)
        vol, what = (hu, (2.5, 0.703125, 0.703125)), "synthetic 133 x 512 x 512"
    print("| volume | renderer | poses per call | renders/s |\n|---|---|---:|---:|")
    for renderer in ("siddon", "trilinear"):
        args = (vol,) if not isinstance(vol, tuple) else vol
        drr = DRR(*args, height=200, width=200, pixel_spacing=2.0, renderer=renderer).to(dev)
        for n in (1, 8, 64):
            lao = torch.linspace(-40.0, 40.0, n, device=dev)
            drr(lao=lao)
            torch.cuda.synchronize()
            t0, reps = time.perf_counter(), 10
            for _ in range(reps):
                drr(lao=lao)
            torch.cuda.synchronize()
            rate = n * reps / (time.perf_counter() - t0)
            print(f"| {what} | {renderer} | {n} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
