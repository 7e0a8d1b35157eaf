"""Peak memory of big problems (issue #18 item 6): cone-beam forward, backprojection and FDK of
a 512^3 volume with 720 views of a 768 x 768 detector, and the chest CT rendered as a
1024 x 1024 DRR by mrct and by DiffDRR.

Each case runs in its own subprocess. The process imports everything, compiles at a tiny size
and reads its resident memory (``/proc/self/statm``) as the baseline; then it allocates the
input, runs the operation once and reads its peak resident memory (``ru_maxrss``). The table
gives *peak above baseline* next to the bytes of the input and output arrays; the budget of
the issue is ``peak above baseline <= 3 x (input + output)``, and every case must stay within
24 GB in all. DRR: the input is the attenuation volume the renderer holds (float32), the
output the image; DiffDRR runs with ``patch_size=128`` (its bounded-memory mode; without
patches a 1024^2 Siddon rendering of this volume does not fit in 24 GB).

    python benchmarks/memory.py                 # full sizes (CPU: tens of minutes)
    python benchmarks/memory.py --quick         # 128^3 / 180 x 192^2 and a 256^2 DRR
    python benchmarks/memory.py --cases fdk,drr # a subset
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DEFAULT_OUT, load_average, machine_report, md_table, write_section  # noqa: E402

SECTION = "memory"
PACKAGES = ["mrct", "torch", "numba", "numpy", "diffdrr"]
CASES = ["cone_forward", "cone_adjoint", "fdk", "drr_mrct", "drr_diffdrr"]
FULL = {"n": 512, "views": 720, "det": 768, "drr": 1024}
QUICK = {"n": 128, "views": 180, "det": 192, "drr": 256}
BUDGET = 3.0
LIMIT_GB = 24.0


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cone(n, views, det):
    import numpy as np

    from mrct.physics import ConeBeam, Radon

    # 1 mm voxels; source 1500 mm and panel 500 mm from the axis, 1.6 mm pixels: the panel
    # (1229 mm) sees the whole 512 mm volume at magnification 1.33
    geo = ConeBeam(np.linspace(0, 2 * np.pi, views, endpoint=False), (det, det),
                   1.6 * 768 / det, 1500.0 * n / 512, 500.0 * n / 512)  # fmt: skip
    return Radon(geo, (n, n, n), pixel_size=1.0)


def worker(case: str, sz: dict) -> dict:
    import torch

    torch.set_grad_enabled(False)
    if case.startswith("cone") or case == "fdk":
        small = _cone(8, 4, 8)
        x0 = torch.rand(8, 8, 8)
        small.fbp(small(x0)), small.adjoint(small(x0))  # compile (or load from the cache)
        A = _cone(sz["n"], sz["views"], sz["det"])
        base = _rss_mb()
        t0 = time.perf_counter()
        if case == "cone_forward":
            x = torch.rand(A.image_shape)
            y = A(x)
            arrays = x.nbytes + y.nbytes
        else:
            y = torch.rand(A.geometry.proj_shape)
            x = A.adjoint(y) if case == "cone_adjoint" else A.fbp(y)
            arrays = x.nbytes + y.nbytes
    else:
        from mrct.data import load_chest_ct
        from mrct.physics.drr import DRR

        size = sz["drr"]
        ct = load_chest_ct()
        if case == "drr_mrct":
            DRR(ct, height=16, pixel_spacing=400.0 / 16, sdd=1020.0, sid=850.0)(view="ap")
            base = _rss_mb()
            t0 = time.perf_counter()
            drr = DRR(ct, height=size, pixel_spacing=400.0 / size, sdd=1020.0, sid=850.0)
            img = drr(view="ap")
            arrays = drr.mu.nbytes + img.nbytes
        else:
            from drr import SID, _diffdrr

            from mrct.data.shared import require_shared_data

            path = require_shared_data() / "chest_ct" / "chest_ct.nii.gz"
            base = _rss_mb()
            t0 = time.perf_counter()
            d = _diffdrr("siddon", size, 1, path)
            rot = torch.zeros((1, 3))
            xyz = torch.tensor([[0.0, SID, 0.0]])
            img = d(rot, xyz, parameterization="euler_angles", convention="ZXY")
            arrays = d.density.numel() * 4 + img.nbytes
    wall = time.perf_counter() - t0
    return {"base_mb": base, "peak_mb": _peak_mb(), "arrays_mb": arrays / 2**20, "wall_s": wall}


def run_case(case: str, quick: bool, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", case] + (["--quick"] if quick else [])
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["?"]
        return {"error": f"exit {r.returncode}: {tail[0][:120]}"}
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res["process_s"] = time.perf_counter() - t0
    return res


def _label(case: str, sz: dict) -> tuple[str, str]:
    n, v, d, s = sz["n"], sz["views"], sz["det"], sz["drr"]
    cone = f"{n}^3 <-> {v} x {d}^2"
    return {
        "cone_forward": ("mrct cone-beam forward (Joseph)", cone),
        "cone_adjoint": ("mrct cone-beam backprojection (exact adjoint)", cone),
        "fdk": ("mrct FDK (filter + backprojection)", cone),
        "drr_mrct": ("mrct DRR, Siddon", f"chest CT -> {s} x {s}"),
        "drr_diffdrr": (
            "DiffDRR, Siddon" + (", patch_size=128" if s > 256 else ""),
            f"chest CT -> {s} x {s}",
        ),
    }[case]


def _section(rows, opts, load0) -> str:
    info = machine_report(PACKAGES, opts.machine)
    body = [
        "## Memory of big problems",
        "",
        "Peak resident memory of one call, each case in its own process, written by "
        "`benchmarks/memory.py`" + (" (`--quick` sizes)" if opts.quick else "") + ". *arrays*: "
        "bytes of the input plus the output (float32); *above baseline*: peak RSS minus the "
        "RSS of the process after its imports and a tiny warm-up call, so temporaries, "
        "tables and copies count; *ratio*: above baseline / arrays (target <= 3); *peak RSS*: "
        "the whole process (target <= 24 GB). Cone geometry: 1 mm voxels, source 1500 mm and "
        "panel 500 mm from the axis. DRR: AP view, 40 cm panel, sdd 1020 mm; the input is "
        "the attenuation volume the renderer holds. Wall times are from a shared machine "
        "(other jobs running); they are not speed measurements.",
        "",
        md_table(
            [
                "operation",
                "size",
                "arrays GB",
                "above baseline GB",
                "ratio",
                "peak RSS GB",
                "wall s",
                "budget",
            ],
            rows,
        ),  # fmt: skip
        "",
        f"Load average before / now: {load0} / {load_average()}.",
        "",
    ]
    body += [f"- {k}: {v}" for k, v in info.items()]
    return "\n".join(body)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per case")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--machine", default=None)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    sz = QUICK if opts.quick else FULL
    if opts.worker:
        print(json.dumps(worker(opts.worker, sz)))
        return 0
    cases = [c.strip() for c in opts.cases.split(",") if c.strip()]
    bad = sorted(set(cases) - set(CASES))
    if bad:
        ap.error(f"unknown case(s) {bad}; choose from {CASES}")
    load0 = load_average()
    rows = []
    for case in cases:
        print(f"{case} ...", flush=True)
        res = run_case(case, opts.quick, opts.timeout)
        what, size = _label(case, sz)
        if "error" in res:
            rows.append([what, size, "-", "-", "-", "-", "-", res["error"]])
            print(f"  {res['error']}", flush=True)
            continue
        above = res["peak_mb"] - res["base_mb"]
        ratio = above / res["arrays_mb"]
        ok = ratio <= BUDGET and res["peak_mb"] / 1024 <= LIMIT_GB
        rows.append([what, size, f"{res['arrays_mb'] / 1024:.2f}", f"{above / 1024:.2f}",
                     f"{ratio:.2f}", f"{res['peak_mb'] / 1024:.2f}", f"{res['wall_s']:.0f}",
                     "within budget" if ok else "OVER budget"])  # fmt: skip
        print(f"  {rows[-1]}", flush=True)
        if not opts.no_write:  # after every case: a long run that is stopped keeps its rows
            write_section(SECTION, _section(rows, opts, load0), opts.out)
    section = _section(rows, opts, load0)
    print(section if opts.no_write else f"wrote {opts.out}\n{section}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
