"""GPU benchmarks of mrct's CUDA kernels against the GPU peers, side by side in one process.

Run by ``benchmarks/gpu.sh`` on a machine with an NVIDIA GPU; every part is guarded, so a peer
that does not install or a part that fails leaves an error row and the rest goes on. Writes a
Markdown report (``--out``/gpu_bench.md) and the raw numbers (gpu_bench.json).

Parts (issue #16):
- ``radon``: torch-radon's published workload (256 x 256, 256 views, batch 128, float32):
  parallel/fan forward, exact adjoint, the FBP backprojector and FBP; batch-1 latency; 512 x 512
  with 720 views. ASTRA's CUDA projectors on the same data: ``parallel3d`` with one detector
  row per image (a batch of 2D parallel projections, GPU memory in and out through
  ``GPULink``) and the 2D ``fanflat``/FBP_CUDA algorithms (host memory in and out, one image per
  call: that is ASTRA's 2D API).
- ``fdk``: cone-beam FDK on 256^3 (mrct ``Radon(ConeBeam).fbp`` vs ASTRA ``FDK_CUDA``).
- ``nufft``: 2D type 2 (forward) and type 1 (adjoint), 256 x 256 image, 402 x 512 golden-angle
  radial points, 1 and 8 coils, complex64, eps 1e-3 and 1e-6, against cuFINUFFT and
  torchkbnufft on the GPU; relative difference to cuFINUFFT at eps 1e-6 as a check.
- ``drr``: the chest CT at 256^2 and 1024^2 detectors (Siddon and trilinear; 1 and 8 poses)
  against DiffDRR on the same GPU.

Bandwidth: every row's "% of BW" is the compulsory traffic (each input read once, each output
written once) over the time, as a fraction of the measured device-to-device copy bandwidth.
Times: median of ``--repeats`` calls after warm-up, host timer around ``torch.cuda.synchronize``
(peers run on their own streams/runtimes; a device-wide sync covers them all).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROWS: list[dict] = []
NOTES: list[str] = []
BW = {"GB/s": float("nan")}


def sync():
    torch.cuda.synchronize()


def timed(fn, repeats=10, warmup=2, budget_s=8.0):
    """Median seconds of ``fn()`` (device-synchronised), at most ``budget_s`` of timing."""
    for _ in range(warmup):
        fn()
    sync()
    ts = []
    t_start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
        if time.perf_counter() - t_start > budget_s and len(ts) >= 3:
            break
    return statistics.median(ts)


def row(part, op, impl, size, t, *, items=None, unit=None, nbytes=None, note=""):
    r = {"part": part, "op": op, "impl": impl, "size": size, "ms": 1e3 * t, "note": note}
    if items is not None:
        r["rate"] = items / t
        r["unit"] = unit
    if nbytes is not None and BW["GB/s"] == BW["GB/s"]:
        r["bw_pct"] = 100.0 * nbytes / t / 1e9 / BW["GB/s"]
    ROWS.append(r)
    rate = f"{r['rate']:,.0f} {unit}" if items is not None else ""
    print(f"  {part:6s} {op:34s} {impl:28s} {size:24s} {1e3 * t:10.3f} ms  {rate}", flush=True)
    return r


def fail(part, what, exc):
    msg = f"{part}: {what} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    NOTES.append(msg)
    print("  !! " + msg, flush=True)
    traceback.print_exc(limit=3)


def guard(part, what, fn):
    try:
        return fn()
    except Exception as e:  # a failing peer or part must not stop the others
        fail(part, what, e)
        return None


# -- device --------------------------------------------------------------------------------
def measure_bandwidth():
    n = 2 << 30  # 2 GiB per buffer
    a = torch.empty(n, dtype=torch.uint8, device="cuda")
    a.random_(0, 255)
    b = torch.empty_like(a)
    t = timed(lambda: b.copy_(a), repeats=10)
    BW["GB/s"] = 2 * n / t / 1e9
    a = b = None
    torch.cuda.empty_cache()
    print(f"device-to-device copy: {BW['GB/s']:.0f} GB/s (read + write)", flush=True)


# -- Radon ---------------------------------------------------------------------------------
def _astra():
    import astra

    if not astra.use_cuda():
        raise RuntimeError("ASTRA reports no CUDA")
    return astra


def radon_part(repeats, quick):
    from mrct.physics import FanBeam, ParallelBeam, Radon

    cases = [(256, 256, 128)] if quick else [(256, 256, 128), (256, 256, 1), (512, 720, 16)]
    for n, views, batch in cases:
        size = f"{n}^2, {views} views, B={batch}"
        n_det = n if n == 256 else int(math.ceil(n * math.sqrt(2)))
        par = Radon(
            ParallelBeam(np.linspace(0, np.pi, views, endpoint=False), n_det, 1.0),
            (n, n),
            check_finite=False,
        )
        fan_geo = FanBeam(
            np.linspace(0, 2 * np.pi, views, endpoint=False), n_det, 2.0, float(n), float(n)
        )
        fan = Radon(fan_geo, (n, n), check_finite=False)
        g = torch.Generator(device="cuda").manual_seed(0)
        x = torch.rand(batch, n, n, device="cuda", generator=g)
        y = torch.rand(batch, views, n_det, device="cuda", generator=g)
        img_b, sino_b = x.numel() * 4, y.numel() * 4
        for name, op in (("parallel", par), ("fan", fan)):
            with torch.no_grad():
                rows = [
                    ("forward", lambda op=op: op(x)),
                    ("exact adjoint", lambda op=op: op.adjoint(y)),
                    ("FBP (filter + backprojection)", lambda op=op: op.fbp(y)),
                ]
                for what, fn in rows:
                    guard(
                        "radon",
                        f"mrct {name} {what} {size}",
                        lambda fn=fn, what=what, name=name: row(
                            "radon",
                            f"{name} {what}",
                            "mrct",
                            size,
                            timed(fn, repeats),
                            items=batch,
                            unit="images/s",
                            nbytes=img_b + sino_b,
                        ),
                    )
        guard(
            "radon",
            f"astra {size}",
            lambda: _astra_radon(n, views, n_det, batch, x, y, repeats, size),
        )
        x = y = None
        torch.cuda.empty_cache()


def _astra_radon(n, views, n_det, batch, x, y, repeats, size):
    astra = _astra()
    from astra.experimental import direct_BP3D, direct_FP3D
    from astra.pythonutils import GPULink

    angles = np.linspace(0, np.pi, views, endpoint=False)
    # a batch of 2D parallel projections = parallel3d with one detector row per image
    vg = astra.create_vol_geom(n, n, batch)
    pg = astra.create_proj_geom("parallel3d", 1.0, 1.0, batch, n_det, angles)
    pid = astra.create_projector("cuda3d", pg, vg)
    sino = torch.zeros(batch, views, n_det, device="cuda")  # ASTRA order (rows, angles, cols)
    vol = torch.zeros(batch, n, n, device="cuda")
    xl = GPULink(x.data_ptr(), n, n, batch, n * 4)
    sl = GPULink(sino.data_ptr(), n_det, views, batch, n_det * 4)
    yl = GPULink(y.data_ptr(), n_det, views, batch, n_det * 4)
    vl = GPULink(vol.data_ptr(), n, n, batch, n * 4)
    nb = x.numel() * 4 + y.numel() * 4
    row(
        "radon",
        "parallel forward",
        "ASTRA cuda3d parallel3d",
        size,
        timed(lambda: direct_FP3D(pid, xl, sl), repeats),
        items=batch,
        unit="images/s",
        nbytes=nb,
        note="GPU memory (GPULink)",
    )
    row(
        "radon",
        "parallel exact adjoint",
        "ASTRA cuda3d parallel3d BP",
        size,
        timed(lambda: direct_BP3D(pid, vl, yl), repeats),
        items=batch,
        unit="images/s",
        nbytes=nb,
        note="GPU memory (GPULink); ASTRA's BP is its own matched backprojector",
    )
    astra.projector3d.delete(pid)
    # agreement of the forward projections: ``sino`` holds ASTRA's last timed forward of x
    from mrct.physics import ParallelBeam, Radon

    ref = Radon(ParallelBeam(angles, n_det, 1.0), (n, n), check_finite=False)(x)
    rel = float((sino - ref).norm() / ref.norm())
    NOTES.append(
        f"radon {size}: ASTRA parallel3d forward vs mrct forward, relative L2 difference {rel:.2e}"
    )
    # 2D API (fan beam and FBP): host memory, one image per call
    if batch >= 16:
        k = 16
        xs = x[:k].cpu().numpy()
        ys = y[:k].cpu().numpy()
        vg2 = astra.create_vol_geom(n, n)
        fang = np.linspace(0, 2 * np.pi, views, endpoint=False)
        pg_fan = astra.create_proj_geom("fanflat", 2.0, n_det, fang, float(n), float(n))
        pg_par = astra.create_proj_geom("parallel", 1.0, n_det, angles)

        def run2d(algo, pg, data_in, is_fp):
            pid = astra.create_projector("cuda", pg, vg2)
            outs = []
            for i in range(k):
                if is_fp:
                    did = astra.data2d.create("-vol", vg2, data_in[i])
                    oid = astra.data2d.create("-sino", pg, 0)
                    cfg = astra.astra_dict(algo)
                    cfg["VolumeDataId"], cfg["ProjectionDataId"] = did, oid
                else:
                    did = astra.data2d.create("-sino", pg, data_in[i])
                    oid = astra.data2d.create("-vol", vg2, 0)
                    cfg = astra.astra_dict(algo)
                    cfg["ProjectionDataId"], cfg["ReconstructionDataId"] = did, oid
                cfg["ProjectorId"] = pid
                aid = astra.algorithm.create(cfg)
                astra.algorithm.run(aid)
                outs.append(astra.data2d.get_shared(oid))
                astra.algorithm.delete(aid)
                astra.data2d.delete([did, oid])
            astra.projector.delete(pid)
            return outs

        for op, algo, pg, d, fp in (
            ("fan forward", "FP_CUDA", pg_fan, xs, True),
            ("fan exact adjoint", "BP_CUDA", pg_fan, ys, False),
            ("parallel FBP (filter + backprojection)", "FBP_CUDA", pg_par, ys, False),
            ("fan FBP (filter + backprojection)", "FBP_CUDA", pg_fan, ys, False),
        ):
            guard(
                "radon",
                f"astra 2D {op}",
                lambda op=op, algo=algo, pg=pg, d=d, fp=fp: row(
                    "radon",
                    op,
                    f"ASTRA 2D {algo}",
                    size,
                    timed(lambda: run2d(algo, pg, d, fp), max(3, repeats // 4)),
                    items=k,
                    unit="images/s",
                    note="host memory in/out, one image per call (ASTRA 2D API)",
                ),
            )


# -- FDK -----------------------------------------------------------------------------------
def fdk_part(repeats, quick):
    from mrct.physics import ConeBeam, Radon

    n = 128 if quick else 256
    views = 360
    det = (int(n * 1.5), int(n * 1.5))
    sod, sdd = 2.0 * n, 3.0 * n
    angles = np.linspace(0, 2 * np.pi, views, endpoint=False)
    geo = ConeBeam(angles, det, 1.5, sod, sdd - sod)
    A = Radon(geo, (n, n, n), check_finite=False)
    g = torch.Generator(device="cuda").manual_seed(1)
    vol = torch.rand(1, n, n, n, device="cuda", generator=g)
    size = f"{n}^3, {views} views, det {det[0]}x{det[1]}"
    with torch.no_grad():
        proj = A(vol)
        guard(
            "fdk",
            "mrct forward",
            lambda: row(
                "fdk",
                "cone forward",
                "mrct",
                size,
                timed(lambda: A(vol), max(3, repeats // 2)),
                nbytes=(vol.numel() + proj.numel()) * 4,
            ),
        )
        guard(
            "fdk",
            "mrct adjoint",
            lambda: row(
                "fdk",
                "cone adjoint (exact, atomics)",
                "mrct",
                size,
                timed(lambda: A.adjoint(proj), max(3, repeats // 2)),
                nbytes=(vol.numel() + proj.numel()) * 4,
            ),
        )
        guard(
            "fdk",
            "mrct FDK",
            lambda: row(
                "fdk",
                "FDK",
                "mrct",
                size,
                timed(lambda: A.fbp(proj), max(3, repeats // 2)),
                nbytes=(vol.numel() + proj.numel()) * 4,
            ),
        )
    guard("fdk", "astra FDK", lambda: _astra_fdk(geo, n, proj, size, repeats))


def _astra_fdk(geo, n, proj, size, repeats):
    astra = _astra()
    R, C = geo.det_shape
    vg = astra.create_vol_geom(n, n, n)
    ds = float(np.atleast_1d(geo.det_spacing)[0])
    pg = astra.create_proj_geom(
        "cone", ds, ds, R, C, geo.angles, geo.source_distance, geo.detector_distance
    )
    p = np.ascontiguousarray(proj[0].permute(1, 0, 2).cpu().numpy())  # (rows, angles, cols)

    def run():
        pid = astra.data3d.create("-sino", pg, p)
        rid = astra.data3d.create("-vol", vg, 0)
        cfg = astra.astra_dict("FDK_CUDA")
        cfg["ProjectionDataId"], cfg["ReconstructionDataId"] = pid, rid
        aid = astra.algorithm.create(cfg)
        astra.algorithm.run(aid)
        out = astra.data3d.get_shared(rid)
        astra.algorithm.delete(aid)
        astra.data3d.delete([pid, rid])
        return out

    row(
        "fdk",
        "FDK",
        "ASTRA FDK_CUDA",
        size,
        timed(run, max(3, repeats // 2)),
        note="host memory in/out (ASTRA's algorithm API)",
    )


# -- NUFFT ---------------------------------------------------------------------------------
def nufft_part(repeats, quick):
    from mrct.physics import NUFFT, radial_trajectory

    N, spokes, samples = 256, 402, 512
    k = radial_trajectory(spokes, samples, golden=True, flatten=True, dtype=torch.float32)
    k = k * 0.9999  # strictly inside [-pi, pi) in float32 (see issue #18)
    M = k.shape[0]
    kd = k.cuda()
    coils = (1,) if quick else (1, 8)
    for eps in (1e-3, 1e-6):
        F = NUFFT(kd, (N, N), eps=eps)
        for C in coils:
            g = torch.Generator(device="cuda").manual_seed(2)
            x = torch.randn(C, N, N, dtype=torch.complex64, device="cuda", generator=g)
            y = torch.randn(C, M, dtype=torch.complex64, device="cuda", generator=g)
            size = f"{N}^2, M={M}, C={C}, eps={eps:g}"
            nb = (x.numel() + y.numel()) * 8
            with torch.no_grad():
                guard(
                    "nufft",
                    "mrct type2",
                    lambda: row(
                        "nufft",
                        "type 2 (forward)",
                        "mrct",
                        size,
                        timed(lambda: F(x), repeats),
                        items=M * C,
                        unit="points/s",
                        nbytes=nb,
                    ),
                )
                guard(
                    "nufft",
                    "mrct type1",
                    lambda: row(
                        "nufft",
                        "type 1 (adjoint)",
                        "mrct",
                        size,
                        timed(lambda: F.adjoint(y), repeats),
                        items=M * C,
                        unit="points/s",
                        nbytes=nb,
                    ),
                )
            guard("nufft", "cufinufft", lambda: _cufinufft(k, N, C, eps, x, y, size, repeats, F))
            if eps == 1e-3:
                guard("nufft", "torchkbnufft", lambda: _tkbn(k, N, C, x, y, size, repeats))
    NOTES.append(
        "nufft: mrct's NUFFT is 2D only (3D NUFFT not implemented), so the 3D rows "
        "of issue #16 are not measured"
    )


def _cufinufft(k, N, C, eps, x, y, size, repeats, F):
    import cufinufft

    M = k.shape[0]
    kr = k[:, 0].contiguous().cuda()
    kc = k[:, 1].contiguous().cuda()
    p2 = cufinufft.Plan(2, (N, N), n_trans=C, eps=eps, dtype="complex64", isign=-1)
    p2.setpts(kr, kc)
    p1 = cufinufft.Plan(1, (N, N), n_trans=C, eps=eps, dtype="complex64", isign=1)
    p1.setpts(kr, kc)
    xs = x if C > 1 else x[0]
    ys = y if C > 1 else y[0]
    nb = (x.numel() + y.numel()) * 8
    row(
        "nufft",
        "type 2 (forward)",
        "cuFINUFFT",
        size,
        timed(lambda: p2.execute(xs), repeats),
        items=M * C,
        unit="points/s",
        nbytes=nb,
    )
    row(
        "nufft",
        "type 1 (adjoint)",
        "cuFINUFFT",
        size,
        timed(lambda: p1.execute(ys), repeats),
        items=M * C,
        unit="points/s",
        nbytes=nb,
    )
    with torch.no_grad():
        a2, b2 = F(x).reshape(C, M), torch.as_tensor(p2.execute(xs), device="cuda").reshape(C, M)
        a1 = F.adjoint(y).reshape(C, N, N)
        b1 = torch.as_tensor(p1.execute(ys), device="cuda").reshape(C, N, N)
    NOTES.append(
        f"nufft {size}: relative difference mrct vs cuFINUFFT: type 2 "
        f"{float((a2 - b2).norm() / b2.norm()):.2e}, type 1 "
        f"{float((a1 - b1).norm() / b1.norm()):.2e}"
    )


def _tkbn(k, N, C, x, y, size, repeats):
    import torchkbnufft as tkbn

    M = k.shape[0]
    kt = k.T.contiguous().cuda()
    fwd = tkbn.KbNufft(im_size=(N, N)).cuda()
    adj = tkbn.KbNufftAdjoint(im_size=(N, N)).cuda()
    nb = (x.numel() + y.numel()) * 8
    with torch.no_grad():
        row(
            "nufft",
            "type 2 (forward)",
            "torchkbnufft (GPU)",
            size,
            timed(lambda: fwd(x[None], kt), max(3, repeats // 2)),
            items=M * C,
            unit="points/s",
            nbytes=nb,
        )
        row(
            "nufft",
            "type 1 (adjoint)",
            "torchkbnufft (GPU)",
            size,
            timed(lambda: adj(y[None], kt), max(3, repeats // 2)),
            items=M * C,
            unit="points/s",
            nbytes=nb,
        )


# -- DRR -----------------------------------------------------------------------------------
def _volume():
    from mrct.data import SharedDataMissing, load_chest_ct

    try:
        v = load_chest_ct()
        return v, "chest CT 133 x 512 x 512"
    except SharedDataMissing:
        rng = np.random.default_rng(0)
        hu = rng.normal(0.0, 50.0, (133, 512, 512)).astype(np.float32)
        return (hu, (2.5, 0.703125, 0.703125)), "synthetic 133 x 512 x 512"


def drr_part(repeats, quick):
    from mrct.physics import DRR

    vol, what = _volume()
    args = vol if isinstance(vol, tuple) else (vol,)
    sizes = (256,) if quick else (256, 1024)
    for size in sizes:
        for renderer in ("siddon", "trilinear"):
            drr = DRR(
                *args,
                height=size,
                pixel_spacing=400.0 / size,
                sdd=1020.0,
                sid=850.0,
                renderer=renderer,
            ).to("cuda")
            for n in (1, 8):
                lao = np.linspace(-40.0, 40.0, n) if n > 1 else None
                with torch.no_grad():
                    fn = (lambda: drr(view="ap")) if n == 1 else (lambda lao=lao: drr(lao=lao))
                    guard(
                        "drr",
                        f"mrct {renderer} {size} {n}",
                        lambda fn=fn, n=n, r=renderer: row(
                            "drr",
                            f"{r}, {n} pose(s)",
                            "mrct",
                            f"{size}^2, {what}",
                            timed(fn, repeats),
                            items=n,
                            unit="renders/s",
                        ),
                    )
            drr = None
            torch.cuda.empty_cache()
        guard("drr", f"diffdrr {size}", lambda size=size: _diffdrr(vol, what, size, repeats))


def _stub_simpleitk():
    """torchio imports SimpleITK at import time; the benchmark builds DiffDRR's subject from
    tensors (no file reading), so a stand-in module is enough when SimpleITK is absent."""
    try:
        import SimpleITK  # noqa: F401
    except ImportError:
        import types

        m = types.ModuleType("SimpleITK")
        m.__getattr__ = lambda name: type(name, (), {})  # types and constants, never used
        sys.modules["SimpleITK"] = m


def _diffdrr(vol, what, size, repeats):
    _stub_simpleitk()
    from diffdrr.data import read
    from diffdrr.drr import DRR as DiffDRR
    from torchio import ScalarImage

    from mrct.physics.attenuation import hu_to_mu
    from mrct.physics.drr import spl_affine

    if isinstance(vol, tuple):
        arr, spacing = vol
        affine = spl_affine(arr.shape, spacing)
    else:
        arr, affine = vol.array, vol.affine
    # torchio wants (C, X, Y, Z) with a voxel->RAS affine: our (D, H, W) axes as (k, i, j)
    data = torch.as_tensor(np.ascontiguousarray(np.transpose(arr, (1, 2, 0))))[None].float()
    A = np.asarray(affine, dtype=np.float64)
    aff = A[:, [1, 2, 0, 3]]
    subject = read(ScalarImage(tensor=data, affine=aff))
    for renderer in ("siddon", "trilinear"):
        drr = DiffDRR(
            subject,
            sdd=1020.0,
            height=size,
            delx=400.0 / size,
            renderer=renderer,
            patch_size=256 if size > 512 else None,
        ).to("cuda")
        drr.density = hu_to_mu(subject.volume.data.squeeze().float()).cuda().contiguous()
        for n in (1, 8):
            rot = torch.zeros(n, 3, device="cuda")
            if n > 1:
                rot[:, 0] = torch.deg2rad(torch.linspace(-40.0, 40.0, n, device="cuda"))
            xyz = torch.tensor([[0.0, 850.0, 0.0]], device="cuda").repeat(n, 1)
            with torch.no_grad():
                fn = lambda rot=rot, xyz=xyz: drr(
                    rot,
                    xyz,
                    parameterization="euler_angles",  # noqa: E731
                    convention="ZXY",
                )
                guard(
                    "drr",
                    f"diffdrr {renderer} {size} {n}",
                    lambda fn=fn, n=n, r=renderer: row(
                        "drr",
                        f"{r}, {n} pose(s)",
                        "DiffDRR",
                        f"{size}^2, {what}",
                        timed(fn, max(3, repeats // 2)),
                        items=n,
                        unit="renders/s",
                    ),
                )
        drr = None
        torch.cuda.empty_cache()


# -- report --------------------------------------------------------------------------------
def versions():
    out = {}
    for name in (
        "mrct",
        "torch",
        "numba",
        "numba-cuda",
        "numpy",
        "astra-toolbox",
        "cufinufft",
        "torchkbnufft",
        "diffdrr",
    ):
        try:
            from importlib.metadata import version

            out[name] = version(name)
        except Exception:
            out[name] = "not installed"
    return out


def report(path: Path, meta: dict):
    lines = [
        f"GPU: **{meta['gpu']}** ({meta['gpu_mem_gb']:.0f} GB), driver {meta['driver']}, "
        f"CPU threads {meta['cpu_threads']}, {meta['date']}; device-to-device copy "
        f"{BW['GB/s']:.0f} GB/s (the bandwidth reference).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        "",
    ]
    for part in ("radon", "fdk", "nufft", "drr"):
        rs = [r for r in ROWS if r["part"] == part]
        if not rs:
            continue
        lines += [
            f"### {part}",
            "",
            "| operation | size | implementation | ms | rate | % of copy BW | vs mrct |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for r in rs:
            ref = next(
                (
                    q
                    for q in rs
                    if q["impl"] == "mrct" and q["op"] == r["op"] and q["size"] == r["size"]
                ),
                None,
            )
            ratio = "" if ref is None or r is ref else f"{r['ms'] / ref['ms']:.2f}x"
            rate = f"{r['rate']:,.0f} {r['unit']}" if "rate" in r else ""
            bw = f"{r['bw_pct']:.1f}" if "bw_pct" in r else ""
            note = f" ({r['note']})" if r["note"] else ""
            lines.append(
                f"| {r['op']} | {r['size']} | {r['impl']}{note} | {r['ms']:.3f} | "
                f"{rate} | {bw} | {ratio} |"
            )
        lines.append("")
    lines += [
        "\"vs mrct\": the peer's time over mrct's for the same operation and size "
        "(> 1: mrct is faster).",
        "",
    ]
    if NOTES:
        lines += ["Notes:", ""] + [f"- {n}" for n in NOTES] + [""]
    from mrct.io import write_text

    write_text(path, "\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.environ.get("OUT", "gpu_out"))
    ap.add_argument("--parts", default="radon,fdk,nufft,drr")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available():
        sys.exit("gpu_bench.py needs a CUDA GPU (torch.cuda.is_available() is False)")
    import subprocess

    drv = subprocess.run(
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    prop = torch.cuda.get_device_properties(0)
    meta = {
        "gpu": prop.name,
        "gpu_mem_gb": prop.total_memory / 1e9,
        "driver": drv,
        "cpu_threads": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "host": platform.node(),
        "versions": versions(),
    }
    guard("device", "bandwidth", measure_bandwidth)
    parts = {"radon": radon_part, "fdk": fdk_part, "nufft": nufft_part, "drr": drr_part}
    for name in a.parts.split(","):
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        guard(name, "part", lambda name=name: parts[name](a.repeats, a.quick))
        print(f"== {name} done in {time.perf_counter() - t0:.1f} s", flush=True)
        report(out / "gpu_bench.md", meta)
        from mrct.io import write_text

        write_text(
            out / "gpu_bench.json",
            json.dumps(
                {"meta": meta, "bandwidth_GBps": BW["GB/s"], "rows": ROWS, "notes": NOTES}, indent=1
            ),
        )
    print((out / "gpu_bench.md").read_text())


if __name__ == "__main__":
    main()
