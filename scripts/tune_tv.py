"""Tune TV-PDHG honestly (issue #17, item 4): choose ``lam`` and the iteration count on
validation slices - never on the test slices - and report the run time of the choice.

    python scripts/tune_tv.py --sparsity 16                       # chest val + synthetic head
    python scripts/tune_tv.py --sparsity 8 --lams 0.01 0.02 0.05 --iters 50 100 200 300
    python scripts/tune_tv.py --sparsity 16 --val head --json tv16.json

Validation sets: the held-out chest CT slices 93-102 (``CT_SPLITS["val"]``; the test slices
are 106-132) and synthetic head CT slices (:func:`mrct.data.synthetic_head_ct`, the seeds of
:mod:`mrct.recon.ct_mix`). The problem is that of ``mrct recon -m tv-pdhg`` and of
``scripts/recon_results.py``: non-negative TV, warm-started at the Hann FBP, images divided
by the 99th percentile of that FBP so that ``lam`` does not depend on the units. One run of
``max(iters)`` iterations per ``lam`` scores SSIM (data range the reference's maximum)
after each listed iteration count; the time per slice of a choice is that run's time up to
it (set-up included). Needs ``../shared/data``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mrct.metrics import ssim  # noqa: E402
from mrct.recon import tv_pdhg  # noqa: E402


def validation_sets(sparsity: int, size: int, which: str, max_slices: int | None,
                    n_head: int) -> tuple[object, dict]:  # fmt: skip
    """``(sparse operator, {name: (sinograms, references)})``."""
    from mrct.recon.ct_mix import head_ct_images
    from mrct.recon.datasets import _pairs, ct_operators, ct_task

    full, views, sparse = ct_operators(sparsity, size)
    sets = {}
    if which in ("chest", "both"):
        val = ct_task(sparsity, size, splits=("val",), max_slices=max_slices).val
        sets["chest"] = (val.inputs, val.targets)
    if which in ("head", "both"):
        sets["head"] = _pairs(full, views, head_ct_images(n_head, size))
    return sparse, sets


def tune(radon, sets: dict, lams, iters) -> list[dict]:
    """One row per (lam, iterations): mean SSIM per set and overall, seconds per slice."""
    iters = sorted(int(i) for i in iters)
    norm = float(radon.opnorm())
    acc = {}  # (lam, it) -> {"ssim": {set: [..]}, "seconds": [..]}
    for lam in lams:
        for name, (sinos, refs) in sets.items():
            for g, ref in zip(sinos, refs, strict=True):
                x0 = radon.fbp(g[None], filter="hann").clamp_min(0.0)
                s = float(np.quantile(x0.numpy(), 0.99)) or 1.0
                r, dr = ref.numpy(), float(ref.max())
                t0, scoring = time.perf_counter(), [0.0]  # scoring time is not TV's

                def cb(k, x, hist, lam=lam, name=name, s=s, r=r, dr=dr, t0=t0, scoring=scoring):
                    if k in iters:
                        t1 = time.perf_counter()
                        e = acc.setdefault((lam, k), {"ssim": {}, "seconds": []})
                        e["seconds"].append(t1 - t0 - scoring[0])
                        e["ssim"].setdefault(name, []).append(ssim(x[0].numpy() * s, r, dr))
                        scoring[0] += time.perf_counter() - t1

                tv_pdhg(radon, g[None] / s, lam, x0=x0 / s, n_iter=iters[-1], nonneg=True,
                        opnorm=norm, callback=cb)  # fmt: skip
    rows = []
    for (lam, k), e in sorted(acc.items()):
        per = {n: float(np.mean(v)) for n, v in e["ssim"].items()}
        mean = float(np.mean(list(per.values())))
        rows.append({"lam": lam, "iters": k, "ssim": per, "mean_ssim": mean,
                     "seconds_per_slice": float(np.mean(e["seconds"]))})  # fmt: skip
    return rows


def best(rows: list[dict], tolerance: float = 0.002) -> dict:
    """The highest mean SSIM; among choices within ``tolerance`` of it, the fewest iterations."""
    top = max(r["mean_ssim"] for r in rows)
    good = [r for r in rows if r["mean_ssim"] >= top - tolerance]
    return min(good, key=lambda r: (r["iters"], -r["mean_ssim"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sparsity", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--lams", type=float, nargs="+", default=[0.005, 0.01, 0.02, 0.05, 0.1])
    ap.add_argument("--iters", type=int, nargs="+", default=[50, 100, 200, 300])
    ap.add_argument("--val", choices=("chest", "head", "both"), default="both")
    ap.add_argument("--max-slices", type=int, default=None, help="chest validation slices")
    ap.add_argument("--n-head", type=int, default=8, help="synthetic head CT slices")
    ap.add_argument("--json", default=None, help="write the rows and the choice here")
    a = ap.parse_args(argv)
    with torch.no_grad():
        radon, sets = validation_sets(a.sparsity, a.size, a.val, a.max_slices, a.n_head)
        rows = tune(radon, sets, a.lams, a.iters)
    for r in rows:
        per = ", ".join(f"{n} {v:.4f}" for n, v in r["ssim"].items())
        print(f"lam {r['lam']:<7g} iters {r['iters']:>4}: SSIM {per} (mean {r['mean_ssim']:.4f})"
              f", {r['seconds_per_slice']:.2f} s / slice")  # fmt: skip
    choice = best(rows)
    print(f"chosen on validation ({', '.join(sets)}): lam {choice['lam']:g}, "
          f"{choice['iters']} iterations, mean SSIM {choice['mean_ssim']:.4f}, "
          f"{choice['seconds_per_slice']:.2f} s per slice")  # fmt: skip
    if a.json:
        from mrct.io import write_text

        write_text(a.json, json.dumps({"sparsity": a.sparsity, "rows": rows, "choice": choice},
                                      indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
