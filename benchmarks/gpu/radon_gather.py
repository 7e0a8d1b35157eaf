"""Device check of the 2D Radon CUDA kernels (issue #16): table-driven forward and pixel-driven
gather adjoint, float32 geometry for float32 images. Times torch-radon's workload (256 x 256,
256 views, batch 128) and 512 x 512 x 720 views (batch 16), parallel and flat fan, and checks
the device against the CPU kernels. Writes $OUT/radon_gather.json.

    PYTHONPATH=src python3 benchmarks/gpu/radon_gather.py
"""

import json
import math
import os
import sys

import numpy as np
import torch

from mrct.physics import FanBeam, ParallelBeam, Radon, check_adjoint


def timed(fn, repeats=20):
    fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(repeats):
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b))
    return float(np.median(ts))


def main():
    out = {"device": torch.cuda.get_device_name(), "rows": [], "checks": []}
    # correctness against the CPU kernels
    for name, geo in [
        ("parallel", ParallelBeam(np.linspace(0, np.pi, 64, endpoint=False), 91, 1.0)),
        ("fan", FanBeam(np.linspace(0, 2 * np.pi, 64, endpoint=False), 91, 2.0, 64.0, 64.0)),
    ]:
        cpu, gpu = Radon(geo, (64, 64)), Radon(geo, (64, 64))
        y = torch.rand(5, *geo.proj_shape, dtype=torch.float64)
        x = torch.rand(5, 64, 64, dtype=torch.float64)
        for dt in (torch.float64, torch.float32):
            ref_a, ref_f = cpu.adjoint(y.to(dt)), cpu(x.to(dt))
            got_a, got_f = gpu.adjoint(y.to(dt).cuda()).cpu(), gpu(x.to(dt).cuda()).cpu()
            ea = float((got_a - ref_a).norm() / ref_a.norm())
            ef = float((got_f - ref_f).norm() / ref_f.norm())
            dot = check_adjoint(gpu, (1, 64, 64), dtype=dt, device="cuda")
            out["checks"].append(dict(geo=name, dtype=str(dt), adj_rel=ea, fwd_rel=ef, dot=dot))
            print(out["checks"][-1], flush=True)
    for n, views, batch in [(256, 256, 128), (512, 720, 16)]:
        n_det = n if n == 256 else int(math.ceil(n * math.sqrt(2)))
        ops = {
            "parallel": Radon(
                ParallelBeam(np.linspace(0, np.pi, views, endpoint=False), n_det),
                (n, n),
                check_finite=False,
            ),  # fmt: skip
            "fan": Radon(
                FanBeam(
                    np.linspace(0, 2 * np.pi, views, endpoint=False), n_det, 2.0, float(n), float(n)
                ),
                (n, n),
                check_finite=False,
            ),  # fmt: skip
        }
        x = torch.rand(batch, n, n, device="cuda")
        y = torch.rand(batch, views, n_det, device="cuda")
        with torch.no_grad():
            for name, op in ops.items():
                fns = (("forward", lambda op=op, x=x: op(x)),
                       ("adjoint", lambda op=op, y=y: op.adjoint(y)),
                       ("FBP", lambda op=op, y=y: op.fbp(y)))  # fmt: skip
                for what, fn in fns:
                    try:
                        ms = timed(fn)
                        r = dict(op=f"{name} {what}", size=f"{n}^2 {views} views B={batch}",
                                 ms=ms, images_per_s=batch / ms * 1e3)  # fmt: skip
                    except Exception as e:  # noqa: BLE001
                        r = dict(op=f"{name} {what}", error=repr(e)[:300])
                    out["rows"].append(r)
                    print(r, flush=True)
    path = os.path.join(os.environ.get("OUT", "."), "radon_gather.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
