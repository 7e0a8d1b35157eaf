"""Cold and warm start: a fresh Python process to the first result of Radon forward, FBP,
NUFFT forward and NUFFT adjoint, for mrct (empty Numba cache, then the cache that run or
``mrct warmup`` filled) next to FINUFFT and ASTRA (#18 item 7); and what ``import mrct`` adds
to ``import torch``. Writes the ``startup`` section of docs/benchmarks.md.

    python benchmarks/startup.py [--repeats 3] [--no-write]

Each number is the wall time of a new process (``subprocess``), measured inside it from the
start of the script; ``import torch`` is reported separately because every torch user pays
it. Problem: 256 x 256 image, parallel beam with 180 views x 367 bins (Radon, Ram-Lak FBP),
radial NUFFT with 64 spokes x 512 samples (eps 1e-6, complex64).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DEFAULT_OUT, machine_report, md_table, write_section  # noqa: E402

SECTION = "startup"
PACKAGES = ["mrct", "torch", "numba", "finufft", "astra-toolbox"]

_T = "import time; _t0 = time.perf_counter(); out = {}\n"
_END = "import json; print('RESULT ' + json.dumps(out), flush=True)\n"

MRCT = (
    _T
    + """
import torch
out['import torch'] = time.perf_counter() - _t0
import numpy as np
import mrct
from mrct.physics import NUFFT, ParallelBeam, Radon, radial_trajectory
out['import mrct'] = time.perf_counter() - _t0
x = torch.rand(256, 256)
op = Radon(ParallelBeam(np.linspace(0, np.pi, 180, endpoint=False), 367, 1.0), (256, 256))
y = op(x); out['Radon forward'] = time.perf_counter() - _t0
op.fbp(y); out['FBP'] = time.perf_counter() - _t0
F = NUFFT(radial_trajectory(64, 512, dtype=torch.float32), (256, 256))
k = F(x.to(torch.complex64)); out['NUFFT forward'] = time.perf_counter() - _t0
F.adjoint(k); out['NUFFT adjoint'] = time.perf_counter() - _t0
"""
    + _END
)

FINUFFT = (
    _T
    + """
import torch
out['import torch'] = time.perf_counter() - _t0
import numpy as np
import finufft
out['import'] = time.perf_counter() - _t0
rng = np.random.default_rng(0)
x = rng.random((256, 256)).astype(np.complex64)
k = np.linspace(-np.pi, np.pi, 512, endpoint=False)
a = np.linspace(0, np.pi, 64, endpoint=False)
kx = (np.cos(a)[:, None] * k).ravel().astype(np.float32)
ky = (np.sin(a)[:, None] * k).ravel().astype(np.float32)
c = finufft.nufft2d2(kx, ky, x, eps=1e-6); out['NUFFT forward'] = time.perf_counter() - _t0
finufft.nufft2d1(kx, ky, c, (256, 256), eps=1e-6)
out['NUFFT adjoint'] = time.perf_counter() - _t0
"""
    + _END
)

ASTRA = (
    _T
    + """
import torch
out['import torch'] = time.perf_counter() - _t0
import numpy as np
import astra
out['import'] = time.perf_counter() - _t0
vg = astra.create_vol_geom(256, 256)
pg = astra.create_proj_geom('parallel', 1.0, 367, np.linspace(0, np.pi, 180, endpoint=False))
pid = astra.create_projector('linear', pg, vg)
x = np.random.default_rng(0).random((256, 256)).astype(np.float32)
sid, y = astra.create_sino(x, pid); out['Radon forward'] = time.perf_counter() - _t0
rid = astra.data2d.create('-vol', vg)
cfg = astra.astra_dict('FBP'); cfg['ProjectorId'] = pid
cfg['ProjectionDataId'] = sid; cfg['ReconstructionDataId'] = rid
alg = astra.algorithm.create(cfg); astra.algorithm.run(alg)
out['FBP'] = time.perf_counter() - _t0
"""
    + _END
)

STEPS = ["import torch", "import", "Radon forward", "FBP", "NUFFT forward", "NUFFT adjoint"]


def run(code: str, env: dict) -> dict:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=900)  # fmt: skip
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed")
    line = [s for s in r.stdout.splitlines() if s.startswith("RESULT ")][-1]
    out = json.loads(line[7:])
    if "import mrct" in out:
        out["import"] = out.pop("import mrct")
    out["process"] = wall
    return out


def import_overhead(repeats: int) -> tuple[float, float, str]:
    """Median ``import torch`` and ``import torch; import mrct`` times (s) of fresh processes,
    and the five modules ``python -X importtime`` charges most to mrct."""

    def t(code):
        vals = []
        for _ in range(repeats):
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            vals.append(float(r.stdout.strip()))
        return statistics.median(vals)

    torch_s = t("import time; t=time.perf_counter(); import torch; "
                "print(time.perf_counter()-t)")  # fmt: skip
    both = t("import time; t=time.perf_counter(); import torch, mrct; "
             "print(time.perf_counter()-t)")  # fmt: skip
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", "import torch; import mrct"],
                       capture_output=True, text=True)  # fmt: skip
    rows = []
    seen_torch = False
    for line in r.stderr.splitlines():
        if "|" not in line or "import time:" not in line:
            continue
        parts = [p.strip() for p in line.split("import time:")[1].split("|")]
        name = parts[2]
        if name.strip() == "torch":
            seen_torch = True
            continue
        if seen_torch and not name.startswith(" "):  # top-level imports after torch
            rows.append((int(parts[1]), name.strip()))
    top = ", ".join(f"{n} {us / 1e3:.0f} ms" for us, n in sorted(rows, reverse=True)[:5])
    return torch_s, both, top


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="warm runs per package")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--machine", default=None)
    ap.add_argument("--no-write", action="store_true")
    opts = ap.parse_args(argv)
    base = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    results, unavailable = {}, []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(base, NUMBA_CACHE_DIR=cache)  # empty: the first process compiles
        print("mrct cold ...", flush=True)
        results["mrct, empty cache (first process on a machine)"] = [run(MRCT, env)]
        print("mrct warm ...", flush=True)
        results["mrct, after `mrct warmup` (any later process)"] = [
            run(MRCT, env) for _ in range(opts.repeats)
        ]
    for name, code, mod in (("FINUFFT", FINUFFT, "finufft"), ("ASTRA", ASTRA, "astra")):
        try:
            __import__(mod)
        except ImportError:
            unavailable.append(f"{name}: not installed (`import {mod}` fails)")
            continue
        print(f"{name} ...", flush=True)
        results[name] = [run(code, base) for _ in range(opts.repeats + 1)]
    torch_s, both, top = import_overhead(opts.repeats)

    rows = []
    for name, runs in results.items():
        med = {s: statistics.median(r[s] for r in runs) for s in runs[0] if s != "process"}
        last = max(v for k, v in med.items())
        cells = [name] + [f"{med[s]:.2f}" if s in med else "-" for s in STEPS]
        cells += [f"{last - med['import torch']:.2f}"]
        rows.append(cells)
    info = machine_report(PACKAGES, opts.machine)
    body = [
        "## Cold and warm start",
        "",
        "Seconds from the start of a fresh Python process to each first result (cumulative; "
        "median of the runs shown), written by `benchmarks/startup.py`. 256 x 256 image; "
        "Radon: parallel beam, 180 views x 367 bins, Ram-Lak FBP; NUFFT: 64 radial spokes x 512 "
        "samples, complex64, eps 1e-6. *cold*: `NUMBA_CACHE_DIR` an empty folder, so the "
        "process compiles every kernel it calls; *warm*: the same folder afterwards, as after "
        "`mrct warmup` (which `make demo` / `make test` run in their set-up). The last column "
        "is what the process needs beyond `import torch` (target: <= 0.5 s warm).",
        "",
        md_table(["process", *STEPS, "beyond torch"], rows),
        "",
        f"`import torch` alone: {torch_s:.2f} s; `import torch, mrct`: {both:.2f} s, so "
        f"mrct adds {both - torch_s:.2f} s (median of {opts.repeats} fresh processes). "
        f"Largest top-level imports after torch (`python -X importtime`): {top}.",
        "",
    ]
    if unavailable:
        body += ["Not measured: " + "; ".join(unavailable) + ".", ""]
    body += [f"- {k}: {v}" for k, v in info.items()]
    section = "\n".join(body)
    if opts.no_write:
        print(section)
    else:
        print(f"wrote {write_section(SECTION, section, opts.out)}")
        print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
