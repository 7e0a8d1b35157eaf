"""GPU throughput of mrct's CT projectors (images per second), for ``benchmarks/gpu.sh``.

Workload of torch-radon's published V100 figures: 256 x 256 images, 256 views, batch 128,
float32; parallel-beam forward projection and fan-beam backprojection (the adjoint).
torch-radon reports 19,546 images/s (parallel forward) and 20,412 images/s (fan
backprojection) on a V100. Prints a Markdown table; run it on a machine with a GPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mrct.physics import FanBeam, ParallelBeam, Radon


def rate(fn, batch, device, repeats=20):
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * repeats / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--views", type=int, default=256)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--repeats", type=int, default=20)
    a = ap.parse_args()
    dev = torch.device(a.device)
    n = a.size
    angles = np.linspace(0, np.pi, a.views, endpoint=False)
    par = Radon(ParallelBeam(angles, n, 1.0), (n, n), check_finite=False)
    fan = Radon(FanBeam(np.linspace(0, 2 * np.pi, a.views, endpoint=False), n, 2.0, n, n),
                (n, n), check_finite=False)  # fmt: skip
    x = torch.rand(a.batch, n, n, device=dev)
    y = torch.rand(a.batch, a.views, n, device=dev)
    rows = [
        ("parallel forward", rate(lambda: par(x), a.batch, dev, a.repeats), 19546),
        ("parallel adjoint", rate(lambda: par.adjoint(y), a.batch, dev, a.repeats), None),
        ("fan forward", rate(lambda: fan(x), a.batch, dev, a.repeats), None),
        (
            "fan adjoint (backprojection)",
            rate(lambda: fan.adjoint(y), a.batch, dev, a.repeats),
            20412,
        ),  # fmt: skip
        ("parallel FBP", rate(lambda: par.fbp(y), a.batch, dev, a.repeats), None),
    ]
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(f"device: {name}; {n} x {n}, {a.views} views, batch {a.batch}, float32\n")
    print("| operation | mrct images/s | torch-radon V100 images/s |")
    print("| --- | ---: | ---: |")
    for op, r, ref in rows:
        print(f"| {op} | {r:,.0f} | {'' if ref is None else f'{ref:,}'} |")


if __name__ == "__main__":
    main()
