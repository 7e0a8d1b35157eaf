"""JAX bindings benchmark: ``mrct.jax`` operators against the torch operators they wrap, and
the NUFFT against jax-finufft, in one process on the same inputs (issue #19).

Problems: parallel-beam CT, a 256 x 256 image, 180 views, 367 detector bins (float32); the
radial NUFFT of ``benchmarks/nufft.py``, a 256 x 256 image, 402 golden-angle spokes x 512
samples, complex64, eps 1e-6 (and 1e-3 in the full run). Calls: forward and adjoint of
one image; a batch of 8 (torch: one call on ``(8, ...)``; JAX: ``jit(vmap(op))`` on the same
8, which the batching rule turns into one kernel call).

JAX calls are ``jax.jit``-compiled functions on device arrays, timed until
``block_until_ready()``; the torch calls are the ``mrct.physics`` operators (autograd glue
included, no graph built). Overhead = JAX time / torch time - 1: the price of the
``pure_callback`` round trip (argument hand-over by DLPack, result copy into an XLA buffer)
on the same kernel. jax-finufft (if installed) runs type 2 / type 1 at the same eps on the
same points (``iflag`` -1 / +1, mrct's sign conventions); its time is the reference of the
"NUFFT within 1.5x of jax-finufft" goal.

Timing: ``common.time_interleaved`` (one warm-up call each, then round-robin timed calls),
median in ms. Results replace the ``jax`` section of ``docs/benchmarks.md``.

    python benchmarks/jax.py            # full run
    python benchmarks/jax.py --quick    # few repeats, eps 1e-6 only
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# this file is called jax.py: keep its folder off sys.path while the real jax is imported
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != HERE]

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.append(str(HERE))

from common import (  # noqa: E402
    DEFAULT_OUT,
    fmt_ms,
    load_average,
    machine_report,
    md_table,
    time_interleaved,
    write_section,
)

import mrct.jax as mj  # noqa: E402
from mrct.data import shepp_logan  # noqa: E402
from mrct.physics import NUFFT, ParallelBeam, Radon, radial_trajectory  # noqa: E402

SECTION = "jax"
PACKAGES = ("mrct", "jax", "jaxlib", "jax-finufft", "torch", "numpy", "numba")
BATCH = 8
# Goals (issue #19): wrapper overhead <= 10 % on one image; vmap over 8 <= 1.2x one batched
# torch call; NUFFT within 1.5x of jax-finufft at the same eps.
OVERHEAD_GOAL, VMAP_GOAL, FINUFFT_GOAL = 0.10, 1.2, 1.5


def _ready(fn):
    """A callable that runs ``fn()`` and waits for JAX's asynchronous dispatch."""

    def run():
        out = fn()
        return jax.block_until_ready(out) if not isinstance(out, torch.Tensor) else out

    return run


def _rel(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def bench_pair(name, torch_fns, jax_fns, repeats, budget):
    """Time torch and JAX versions of the same calls interleaved; rows for the table."""
    fns = {}
    for k, f in torch_fns.items():
        fns[("torch", k)] = _ready(f)
    for k, f in jax_fns.items():
        fns[("jax", k)] = _ready(f)
    timings, results = time_interleaved(fns, repeats=repeats, budget_s=budget, min_repeats=3)
    rows = []
    for k in torch_fns:
        tt, tj = timings[("torch", k)].median, timings[("jax", k)].median
        err = _rel(results[("jax", k)], results[("torch", k)].numpy())
        ratio = tj / tt
        goal = VMAP_GOAL if k.startswith("batch") else 1 + OVERHEAD_GOAL
        rows.append([name, k, fmt_ms(tt), fmt_ms(tj), f"{100 * (ratio - 1):+.1f} %",
                     f"{err:.1e}", "yes" if ratio <= goal else "no"])  # fmt: skip
    return rows


def ct_rows(repeats, budget):
    geo = ParallelBeam(np.linspace(0, np.pi, 180, endpoint=False), n_det=367)
    T, A = Radon(geo, (256, 256)), mj.radon(geo, (256, 256))
    x = shepp_logan((256, 256)).astype(np.float32)
    xb = np.stack([np.roll(x, 3 * i, axis=1) for i in range(BATCH)])
    y, yb = T(torch.from_numpy(x)), T(torch.from_numpy(xb))
    xt, xbt = torch.from_numpy(x), torch.from_numpy(xb)
    xj, xbj, yj, ybj = (jnp.asarray(v) for v in (x, xb, y.numpy(), yb.numpy()))
    fwd, adj = jax.jit(A), jax.jit(A.adjoint)
    vf, va = jax.jit(jax.vmap(A)), jax.jit(jax.vmap(A.adjoint))
    torch_fns = {
        "forward": lambda: T(xt),
        "adjoint": lambda: T.adjoint(y),
        f"batch {BATCH} forward": lambda: T(xbt),
        f"batch {BATCH} adjoint": lambda: T.adjoint(yb),
    }
    jax_fns = {
        "forward": lambda: fwd(xj),
        "adjoint": lambda: adj(yj),
        f"batch {BATCH} forward": lambda: vf(xbj),
        f"batch {BATCH} adjoint": lambda: va(ybj),
    }
    return bench_pair("Radon parallel 256^2, 180 views", torch_fns, jax_fns, repeats, budget)


def _images():
    x = shepp_logan((256, 256)).astype(np.complex64)
    ph = np.exp(1j * np.linspace(0, np.pi, 256))[None, :]
    xb = np.stack([x * ph**i for i in range(BATCH)]).astype(np.complex64)
    return x, xb


def nufft_rows(eps, repeats, budget, finufft_rows):
    traj = radial_trajectory(402, 512, golden=True).numpy()
    T, F = NUFFT(torch.from_numpy(traj), (256, 256), eps), mj.nufft(traj, (256, 256), eps)
    x, xb = _images()
    xt, xbt = torch.from_numpy(x), torch.from_numpy(xb)
    y, yb = T(xt), T(xbt)
    xj, xbj, yj, ybj = (jnp.asarray(v) for v in (x, xb, y.numpy(), yb.numpy()))
    fwd, adj = jax.jit(F), jax.jit(F.adjoint)
    vf, va = jax.jit(jax.vmap(F)), jax.jit(jax.vmap(F.adjoint))
    torch_fns = {
        "forward": lambda: T(xt),
        "adjoint": lambda: T.adjoint(y),
        f"batch {BATCH} forward": lambda: T(xbt),
        f"batch {BATCH} adjoint": lambda: T.adjoint(yb),
    }
    jax_fns = {
        "forward": lambda: fwd(xj),
        "adjoint": lambda: adj(yj),
        f"batch {BATCH} forward": lambda: vf(xbj),
        f"batch {BATCH} adjoint": lambda: va(ybj),
    }
    rows = bench_pair(f"NUFFT 402x512 radial, eps {eps:g}", torch_fns, jax_fns, repeats, budget)
    try:
        import jax_finufft
    except ImportError:
        finufft_rows.append([f"{eps:g}", "-", "-", "-", "jax-finufft not installed"])
        return rows
    kr, kc = jnp.asarray(traj[..., 0].ravel()), jnp.asarray(traj[..., 1].ravel())
    kr, kc = kr.astype(jnp.float32), kc.astype(jnp.float32)
    f2 = jax.jit(lambda v: jax_finufft.nufft2(v, kr, kc, iflag=-1, eps=eps))
    f1 = jax.jit(lambda v: jax_finufft.nufft1((256, 256), v, kr, kc, iflag=1, eps=eps))
    yflat = yj.reshape(-1)
    fns = {
        ("mrct.jax", "forward"): _ready(lambda: fwd(xj)),
        ("jax-finufft", "forward"): _ready(lambda: f2(xj)),
        ("mrct.jax", "adjoint"): _ready(lambda: adj(yj)),
        ("jax-finufft", "adjoint"): _ready(lambda: f1(yflat)),
    }
    timings, results = time_interleaved(fns, repeats=repeats, budget_s=budget, min_repeats=3)
    for op in ("forward", "adjoint"):
        tm, tf = timings[("mrct.jax", op)].median, timings[("jax-finufft", op)].median
        a = np.asarray(results[("mrct.jax", op)]).ravel()
        b = np.asarray(results[("jax-finufft", op)]).ravel()
        met = "yes" if tm / tf <= FINUFFT_GOAL else "no"
        finufft_rows.append(
            [f"{eps:g}", op, fmt_ms(tm), fmt_ms(tf), f"{tm / tf:.2f}x", f"{_rel(a, b):.1e}", met]
        )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few repeats, eps 1e-6 only")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="results file (Markdown)")
    opts = ap.parse_args(argv)
    repeats, budget = (5, 3.0) if opts.quick else (15, 15.0)
    eps_list = (1e-6,) if opts.quick else (1e-6, 1e-3)
    load_before = load_average()
    rows = ct_rows(repeats, budget)
    fin_rows: list = []
    for eps in eps_list:
        rows += nufft_rows(eps, repeats, budget, fin_rows)
    extra = {
        "jax backend": jax.default_backend(),
        "load average": f"{load_before} -> {load_average()}",
    }
    info = machine_report(PACKAGES, extra=extra)
    lines = [
        "## JAX bindings (`benchmarks/jax.py`)",
        "",
        "`mrct.jax` operators (`jax.jit`, `pure_callback` into mrct's Numba kernels) "
        "against the `mrct.physics` torch operators on the same inputs, one process; median "
        "ms. *Overhead* is JAX / torch - 1 (negative: JAX faster); the goals are <= +10 % for "
        f"one image and <= {VMAP_GOAL}x for `jit(vmap(op))` over a batch of {BATCH} against "
        "one batched torch call. *rel. diff* compares the two outputs. The torch operators "
        "also scan their input for NaN/Inf; the JAX wrappers do not (traced values cannot "
        "raise), which is part of the difference on large batches."
        + (" Quick run (`--quick`): few repeats." if opts.quick else ""),
        "",
        md_table(
            ["problem", "call", "torch", "mrct.jax", "overhead", "rel. diff", "goal met"], rows
        ),  # fmt: skip
        "",
        "NUFFT against jax-finufft (same points, same eps, complex64; goal: mrct.jax within "
        f"{FINUFFT_GOAL}x):",
        "",
        md_table(
            ["eps", "call", "mrct.jax", "jax-finufft", "ratio", "rel. diff", "goal met"], fin_rows
        ),  # fmt: skip
        "",
        "\n".join(f"- {k}: {v}" for k, v in info.items()),
    ]
    body = "\n".join(lines)
    print(body)
    write_section(SECTION, body, opts.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
