"""Run every benchmark script in this folder (``make bench``).

Each ``benchmarks/*.py`` other than this file, ``common.py`` and names starting with ``_`` is
run in turn with the same Python and the arguments given here (``--quick``, ``--out PATH``),
so every script must accept those two options. A script that fails does not stop the others;
the exit status is non-zero if any failed.

    python benchmarks/run_all.py [--quick] [--out PATH] [--only radon,nufft]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"run_all.py", "common.py", "gpu_bench.py"}  # gpu_bench.py: GPU only, via gpu.sh


def scripts() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name not in SKIP and not p.name.startswith("_"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Run every benchmark script in benchmarks/.")
    ap.add_argument("--only", default=None, help="comma-separated script names (no .py)")
    ap.add_argument("--list", action="store_true", help="list the scripts and exit")
    opts, passthrough = ap.parse_known_args(argv)
    todo = scripts()
    if opts.only:
        keep = {s.strip().removesuffix(".py") for s in opts.only.split(",")}
        todo = [p for p in todo if p.stem in keep]
    if opts.list:
        print("\n".join(p.name for p in todo))
        return 0
    failed = []
    for script in todo:
        cmd = [sys.executable, str(script), *passthrough]
        print(f"\n=== {script.name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=HERE.parent)
        print(f"=== {script.name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"\nall {len(todo)} benchmark(s) finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
