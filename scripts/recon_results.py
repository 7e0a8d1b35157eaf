"""Evaluate every reconstruction method on the held-out slices and write the tables of
``docs/results.md`` (between ``<!-- BEGIN results -->`` and ``<!-- END results -->``).

    python scripts/recon_results.py [--tv-iters 100] [--max-slices N]

Cases: sparse-view fan-beam CT at sparsity 4, 8 and 16 (chest CT test slices 106-132) and
radial MRI at acceleration 16 (brain MRI test slices 132-149). FBP and TV-PDHG run at every
undersampling; the learned models run where weights exist: mrct's shipped ones (sparsity 16,
acceleration 16) and, from ``--weights-dir`` (default ``results_weights/``), the sparsity 4 and
8 models that ``python scripts/train_pretrained.py results`` trains but mrct does not ship.
Scores: fastMRI SSIM / PSNR / NMSE per slice against the full-view Hann FBP (data range: the
slice's maximum), mean +- std over slices, and the mean time per slice on this machine.
Needs ``../shared/data``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from mrct.io import atomic_path  # noqa: E402
from mrct.recon.compare import METHODS, method_functions, run_methods  # noqa: E402
from mrct.recon.datasets import ct_task, mri_task  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "results.md"
IMG_SCALE = {"ct": 0.028, "mri": 0.9}  # as in mrct.demo


def _cell(r, key, fmt):
    if not r.scores:
        return "-"
    v = r.scores[key]
    return f"{format(v.mean(), fmt)} +- {format(v.std(), fmt)}"


CASES = {"ct4": ("ct", 4), "ct8": ("ct", 8), "ct16": ("ct", 16), "mri16": ("mri", 16)}


def evaluate(tv_iters: int, max_slices: int | None, progress: bool, weights_dir=None,
             cases=tuple(CASES)):  # fmt: skip
    rows, raw = [], {}
    for task_name, k in (CASES[c] for c in cases):
        t0 = time.time()
        if task_name == "ct":
            task = ct_task(k, splits=("test",), max_slices=max_slices)
        else:
            task = mri_task(k, splits=("test",), max_slices=max_slices)
        fns, notes = method_functions(task_name, task.radon_sparse, k, tv_iters=tv_iters,
                                      img_scale=IMG_SCALE[task_name],
                                      weights_dir=weights_dir)  # fmt: skip
        res = run_methods(fns, task.test.inputs, task.test.targets, notes, progress=progress)
        label = (f"CT, sparsity {k} ({task.radon_sparse.geometry.proj_shape[0]} views)"
                 if task_name == "ct" else f"radial MRI, x{k} (512 / {k} spokes)")  # fmt: skip
        for m in METHODS:
            r = res[m]
            rows.append([label, m, str(len(task.test)), _cell(r, "ssim", ".3f"),
                         _cell(r, "psnr", ".2f"), _cell(r, "nmse", ".2e"),
                         "-" if not r.scores else f"{r.seconds_per_slice:.2f}",
                         r.note])  # fmt: skip
        raw[f"{task_name}{k}"] = {m: r.summary() for m, r in res.items()}
        print(f"{label}: {time.time() - t0:.0f} s", flush=True)
    return rows, raw


def md_table(rows) -> str:
    head = ["case", "method", "slices", "SSIM", "PSNR (dB)", "NMSE", "s / slice", "note"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def read_section(path: Path = DOC) -> tuple[str, list[list[str]], dict]:
    """``(first line, table rows, raw JSON)`` of the results block written before."""
    m = re.search(r"<!-- BEGIN results -->\n(.*?)<!-- END results -->", path.read_text(), re.S)
    if m is None or "```json" not in m.group(1):
        raise RuntimeError(f"{path} has no results block to merge into; run without --cases")
    block = m.group(1)
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in block.splitlines()
            if line.startswith("| ") and not line.startswith("| case |")]  # fmt: skip
    raw = json.loads(re.search(r"```json\n(.*?)\n```", block, re.S).group(1))
    return block.splitlines()[0], rows, raw


def merge(old_rows, old_raw, rows, raw):
    """The old table with the re-run cases' rows replaced (in the old order)."""
    new_labels = {r[0] for r in rows}
    merged, done = [], set()
    for r in old_rows:
        if r[0] in new_labels:
            if r[0] not in done:
                merged += [x for x in rows if x[0] == r[0]]
                done.add(r[0])
        else:
            merged.append(r)
    merged += [x for x in rows if x[0] not in done]
    return merged, {**old_raw, **raw}


def write_section(body: str, path: Path = DOC) -> None:
    text = path.read_text() if path.exists() else "<!-- BEGIN results -->\n<!-- END results -->\n"
    new = f"<!-- BEGIN results -->\n{body}\n<!-- END results -->"
    text, n = re.subn(r"<!-- BEGIN results -->.*?<!-- END results -->", new, text, flags=re.S)
    if n != 1:
        raise RuntimeError(f"{path} must contain one BEGIN/END results block")
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tv-iters", type=int, default=100)
    ap.add_argument("--max-slices", type=int, default=None)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES),
                    help="re-run only these cases; merge into the existing table")  # fmt: skip
    ap.add_argument(
        "--weights-dir", type=Path, default=Path(__file__).resolve().parents[1] / "results_weights"
    )
    a = ap.parse_args(argv)
    t0 = time.time()
    rows, raw = evaluate(a.tv_iters, a.max_slices, a.progress, a.weights_dir, a.cases)
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
               f"torch {torch.__version__} ({torch.get_num_threads()} threads)")  # fmt: skip
    head = (
        f"Generated by `python scripts/recon_results.py --tv-iters {a.tv_iters}` on "
        f"{time.strftime('%Y-%m-%d')} ({machine}; {time.time() - t0:.0f} s in all). "
        "Mean +- std over the held-out slices; times are per slice on this CPU."
    )
    if set(a.cases) != set(CASES):
        old_head, old_rows, old_raw = read_section()
        rows, raw = merge(old_rows, old_raw, rows, raw)
        head = (f"{old_head} Case(s) {', '.join(a.cases)} re-run on "
                f"{time.strftime('%Y-%m-%d')} with `--cases {' '.join(a.cases)}` ({machine}; "
                f"{time.time() - t0:.0f} s).")  # fmt: skip
    body = (
        head
        + "\n\n"
        + md_table(rows)
        + "\n\n<details><summary>raw numbers (JSON)</summary>\n\n```json\n"
        + json.dumps(raw, indent=1)
        + "\n```\n</details>"
    )
    if a.no_write:
        print(body)
    else:
        write_section(body)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
