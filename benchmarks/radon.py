"""CT projector benchmark: mrct's ``Radon`` against scikit-image, ASTRA (CPU) and deepinv.

For each geometry (parallel 256 x 256 / 180 views, parallel 512 x 512 / 720 views, flat fan
256 x 256 / 360 views of the Primal-Dual UNet setup) and batch size, every library is timed on
a forward projection and an FBP (median of repeats after one warm-up call; single-image
libraries loop over the batch and report the total), and scored on accuracy:

* forward: relative L2 error of its sinogram of the rasterised modified Shepp-Logan phantom
  against the analytic sinogram of the continuous phantom in the same geometry;
* FBP: relative L2 error, inside the inscribed disc of radius n/2 - 2 pixels, of the FBP
  (ramp / Ram-Lak filter) of that analytic sinogram against the rasterised phantom.

Each library is fed and scored in its own conventions (angle offset, detector direction,
rotation centre; see ``Peer`` subclasses), found by comparing its sinogram of the phantom with
the analytic one. Results replace the ``radon`` section of ``docs/benchmarks.md``.

    python benchmarks/radon.py            # full run (several minutes on 2 cores)
    python benchmarks/radon.py --quick    # fewer repeats, no 512 x 512 case
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import math
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    DEFAULT_OUT,
    fmt_err,
    fmt_ms,
    fmt_ratio,
    load_average,
    machine_report,
    md_table,
    time_interleaved,
    write_section,
)

from mrct.data import (  # noqa: E402
    fan_beam_sinogram,
    parallel_beam_sinogram,
    rasterize_ellipses,
    shepp_logan_ellipses_for_grid,
)
from mrct.physics import FanBeam, ParallelBeam, Radon  # noqa: E402

SECTION = "radon"
PACKAGES = (
    "mrct", "torch", "numpy", "scipy", "numba", "llvmlite", "scikit-image", "astra-toolbox",
    "deepinv", "torchvision",
)  # fmt: skip
# Speed goals for mrct (peer time / mrct time) at equal or better accuracy, per operation
# (FBP: issue #16, with the machine's cores against the single-threaded peers).
GOALS_BY_OP = {
    "forward": {"ASTRA": 2.0, "scikit-image": 5.0},
    "FBP": {"ASTRA": 4.0, "scikit-image": 8.0},
}
GOALS = GOALS_BY_OP["forward"]
# "Equal" accuracy: mrct's relative error may exceed the peer's by this fraction.
ERR_TOL = 0.02


class Unsupported(Exception):
    """The library cannot do this operation in this geometry (a fact, not a failure)."""


# -- cases -------------------------------------------------------------------------------------
@dataclass
class Setup:
    key: str
    title: str
    kind: str  # "parallel" or "fan"
    n: int
    angles: np.ndarray  # radians, mrct convention
    n_det: int
    det_spacing: float = 1.0
    source_distance: float = 0.0
    detector_distance: float = 0.0
    batches: tuple[int, ...] = (1,)
    pixel_size: float = 1.0
    # filled in by prepare()
    ellipses: np.ndarray | None = None
    image: np.ndarray | None = None
    mask: np.ndarray | None = None
    _refs: dict = field(default_factory=dict)

    @property
    def degrees(self) -> np.ndarray:
        return np.rad2deg(self.angles)

    def prepare(self):
        self.ellipses = shepp_logan_ellipses_for_grid((self.n, self.n), self.pixel_size)
        self.image = rasterize_ellipses(
            self.ellipses, (self.n, self.n), self.pixel_size, supersample=8
        ).astype(np.float32)
        c = (self.n - 1) / 2
        yy, xx = np.mgrid[: self.n, : self.n]
        self.mask = (yy - c) ** 2 + (xx - c) ** 2 <= (self.n / 2 - 2) ** 2

    def analytic(self, centre=(0.0, 0.0)) -> np.ndarray:
        """Analytic sinogram (V, N) float64 for a library whose rotation axis sits at world
        point ``centre`` (mm) of mrct's image frame: the phantom seen from that axis is the
        phantom translated by ``-centre``."""
        key = (float(centre[0]), float(centre[1]))
        if key not in self._refs:
            e = self.ellipses.copy()
            e[:, 3] -= key[0]
            e[:, 4] -= key[1]
            if self.kind == "parallel":
                s = parallel_beam_sinogram(e, self.angles, self.n_det, self.det_spacing)
            else:
                s = fan_beam_sinogram(
                    e, self.angles, self.n_det, self.det_spacing, self.source_distance,
                    self.detector_distance, "flat",
                )  # fmt: skip
            self._refs[key] = s
        return self._refs[key]

    def batch_images(self, b: int) -> np.ndarray:
        """``b`` slightly different copies of the phantom, (b, n, n) float32."""
        scale = (1.0 + 0.01 * np.arange(b, dtype=np.float32))[:, None, None]
        return np.ascontiguousarray(self.image[None] * scale, dtype=np.float32)


def skimage_n_det(n: int) -> int:
    """Length of ``skimage.transform.radon(img (n, n), circle=False)``: ceil(sqrt(2) n)."""
    return n + int(math.ceil(math.sqrt(2) * n - n))


def make_setups(quick: bool) -> list[Setup]:
    out = [
        Setup(
            "par256",
            "Parallel beam, 256 x 256, 180 views over [0, pi)",
            "parallel",
            256,
            np.arange(180) * np.pi / 180,
            skimage_n_det(256),
            batches=(1, 16),
        ),  # fmt: skip
    ]
    if not quick:
        out.append(
            Setup(
                "par512",
                "Parallel beam, 512 x 512, 720 views over [0, pi)",
                "parallel",
                512,
                np.arange(720) * np.pi / 720,
                skimage_n_det(512),
                batches=(1,),
            )  # fmt: skip
        )
    out.append(
        Setup(
            "fan256",
            "Fan beam (flat detector), 256 x 256, 360 views over [0, 2 pi), "
            "511 bins of 1 mm, source 400 mm, detector 150 mm",
            "fan",
            256,
            np.deg2rad(np.arange(360)),
            511,
            1.0,
            400.0,
            150.0,
            batches=(1, 16),
        )  # fmt: skip
    )
    return out


# -- libraries ---------------------------------------------------------------------------------
def _skimage_centre(n: int, ps: float) -> tuple[float, float]:
    """scikit-image (and deepinv, which copies its padding) rotate about pixel (n//2, n//2),
    which for even n is half a pixel right of and below mrct's image centre."""
    d = (n // 2 - (n - 1) / 2) * ps
    return (d, -d)


class Peer:
    """One library in one geometry. ``make_forward``/``make_fbp`` do the untimed set-up
    (operators, buffers) and return the callable that is timed."""

    name = "?"
    group = "?"  # for goals: "mrct", "ASTRA", "scikit-image", "deepinv"
    threads = ""
    centre = (0.0, 0.0)

    def __init__(self, setup: Setup):
        self.s = setup

    # native <-> standard (B, V, N) / (B, H, W) numpy layouts
    def images_in(self, x: np.ndarray):
        return x

    def sino_out(self, y) -> np.ndarray:
        return np.asarray(y)

    def sino_in(self, y: np.ndarray):
        return y

    def images_out(self, x) -> np.ndarray:
        return np.asarray(x)

    def make_forward(self, x):
        raise Unsupported("not implemented")

    def make_fbp(self, y):
        raise Unsupported("not implemented")

    def close(self):
        pass


class MrctPeer(Peer):
    name = "mrct"
    group = "mrct"

    def __init__(self, setup):
        super().__init__(setup)
        s = setup
        if s.kind == "parallel":
            geo = ParallelBeam(s.angles, s.n_det, s.det_spacing)
        else:
            geo = FanBeam(s.angles, s.n_det, s.det_spacing, s.source_distance,
                          s.detector_distance, detector="flat")  # fmt: skip
        self.A = Radon(geo, (s.n, s.n), pixel_size=s.pixel_size)
        self.A.check_finite = False
        import numba

        self.threads = f"numba {numba.get_num_threads()} / torch {torch.get_num_threads()} threads"

    def images_in(self, x):
        return torch.from_numpy(x)

    def sino_out(self, y):
        return y.numpy()

    def sino_in(self, y):
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))

    def images_out(self, x):
        return x.numpy()

    def make_forward(self, x):
        return lambda: self.A(x)

    def make_fbp(self, y):
        return lambda: self.A.fbp(y, "ram-lak")


class SkimagePeer(Peer):
    """scikit-image ``radon``/``iradon`` (parallel beam only, one image per call, one thread).

    Convention (checked against the analytic sinogram): ``radon(img, theta=deg(angles),
    circle=False).T`` has mrct's angles, detector direction and n_det = ceil(sqrt(2) n), but
    the rotation axis is pixel (n//2, n//2): for even n, (+0.5, -0.5) pixels from mrct's
    centre. Fed the analytic sinogram about that axis, ``iradon`` returns the phantom on the
    same pixel grid.
    """

    name = "scikit-image"
    group = "scikit-image"
    threads = "1 thread"

    def __init__(self, setup):
        super().__init__(setup)
        if setup.kind != "parallel":
            raise Unsupported("scikit-image has parallel-beam radon/iradon only")
        from skimage.transform import iradon, radon

        self.radon, self.iradon = radon, iradon
        self.centre = _skimage_centre(setup.n, setup.pixel_size)
        probe = radon(np.zeros((setup.n, setup.n), np.float32), theta=[0.0], circle=False)
        if probe.shape[0] != setup.n_det:
            raise RuntimeError(f"skimage n_det {probe.shape[0]} != {setup.n_det}")

    def make_forward(self, x):
        deg = self.s.degrees

        def run():
            return np.stack([self.radon(img, theta=deg, circle=False).T for img in x])

        return run

    def make_fbp(self, y):
        deg, n = self.s.degrees, self.s.n

        def run():
            return np.stack(
                [
                    self.iradon(
                        np.ascontiguousarray(p.T),
                        theta=deg,
                        circle=False,
                        filter_name="ramp",
                        output_size=n,
                    )  # fmt: skip
                    for p in y
                ]
            )

        return run


_ASTRA = None


def import_astra():
    """Import ASTRA; its wheel needs libcudart / libcufft from the nvidia-*-cu12 wheels even
    for CPU projectors. Its RUNPATH finds them in site-packages/nvidia/*/lib; if that fails,
    preload them with ctypes and retry."""
    global _ASTRA
    if _ASTRA is not None:
        return _ASTRA
    try:
        import astra
    except ImportError as first:
        import site

        roots = site.getsitepackages() + [site.getusersitepackages()]
        libs = []
        for root in roots:
            for pat in ("nvidia/cuda_runtime/lib/libcudart.so*", "nvidia/nvjitlink/lib/*.so*",
                        "nvidia/cufft/lib/libcufft.so*"):  # fmt: skip
                libs += sorted(glob.glob(os.path.join(root, pat)))
        if not libs:
            raise ImportError(f"{first} (and no nvidia-*-cu12 libraries found)") from first
        for lib in libs:
            try:
                ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                pass
        import astra
    _ASTRA = astra
    return astra


class AstraPeer(Peer):
    """ASTRA Toolbox CPU projectors (single-threaded, one image per algorithm run).

    Convention (checked against the analytic sinogram of the phantom, 256 x 256): with
    ``create_vol_geom(n, n)`` (pixel 1 mm, centred on the origin like mrct's grid), ASTRA's
    ``'parallel'`` and ``'fanflat'`` geometries built from mrct's angles, det_spacing, n_det
    (and source / detector distances) give sinograms (V, N) in mrct's layout with no angle
    offset and no detector flip: relative errors 0.014 (parallel 'linear') and 0.014 (fan
    'line_fanflat') against 0.24-0.50 for offsets of +-pi/2 or pi or a flipped detector
    (pi plus a flip is the same parallel geometry). Data are linked zero-copy
    (``astra.data2d.link``) and the algorithm objects are created before timing, so the timed
    call is only ``astra.algorithm.run`` per image.
    """

    group = "ASTRA"
    threads = "1 thread"

    def __init__(self, setup, projector: str):
        super().__init__(setup)
        self.astra = astra = import_astra()
        self.projector = projector
        self.name = f"ASTRA `{projector}`"
        s = setup
        half = s.n * s.pixel_size / 2
        self.vg = astra.create_vol_geom(s.n, s.n, -half, half, -half, half)
        if s.kind == "parallel":
            self.pg = astra.create_proj_geom("parallel", s.det_spacing, s.n_det, s.angles)
        else:
            self.pg = astra.create_proj_geom("fanflat", s.det_spacing, s.n_det, s.angles,
                                             s.source_distance, s.detector_distance)  # fmt: skip
        self.pid = astra.create_projector(projector, self.pg, self.vg)
        self._algs, self._data = [], []

    def _link(self, kind, geom, arr):
        i = self.astra.data2d.link(kind, geom, arr)
        self._data.append(i)
        return i

    def _alg(self, cfg):
        i = self.astra.algorithm.create(cfg)
        self._algs.append(i)
        return i

    def make_forward(self, x):
        astra = self.astra
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.zeros((x.shape[0], self.s.angles.size, self.s.n_det), np.float32)
        algs = []
        for k in range(x.shape[0]):
            cfg = astra.astra_dict("FP")
            cfg["ProjectorId"] = self.pid
            cfg["VolumeDataId"] = self._link("-vol", self.vg, x[k])
            cfg["ProjectionDataId"] = self._link("-sino", self.pg, out[k])
            algs.append(self._alg(cfg))

        def run():
            for a in algs:
                astra.algorithm.run(a)
            return out

        return run

    def make_fbp(self, y):
        astra = self.astra
        y = np.ascontiguousarray(y, dtype=np.float32)
        out = np.zeros((y.shape[0], self.s.n, self.s.n), np.float32)
        algs = []
        for k in range(y.shape[0]):
            cfg = astra.astra_dict("FBP")
            cfg["ProjectorId"] = self.pid
            cfg["ProjectionDataId"] = self._link("-sino", self.pg, y[k])
            cfg["ReconstructionDataId"] = self._link("-vol", self.vg, out[k])
            cfg["option"] = {"FilterType": "ram-lak"}
            try:
                algs.append(self._alg(cfg))
            except Exception as e:  # ASTRA's CPU FBP refuses fan geometries
                msg = str(e).split("Error:")[0].strip()
                msg = msg.replace("Unable to initialize algorithm: ", "")
                raise Unsupported(f"ASTRA CPU FBP: {msg}") from e

        def run():
            for a in algs:
                astra.algorithm.run(a)
            return out

        return run

    def close(self):
        for a in self._algs:
            self.astra.algorithm.delete(a)
        for d in self._data:
            self.astra.data2d.delete(d)
        self.astra.projector.delete(self.pid)
        self._algs, self._data = [], []


_DEEPINV = None
_DEEPINV_NOTE = ""


def import_deepinv():
    """Import deepinv. It imports torchvision at start-up; the torchvision wheel on PyPI is a
    CUDA build whose C++ ops cannot load next to a CPU torch, and torchvision then fails to
    register fake kernels for ``torchvision::nms``/``qnms``. Declaring those two schemas
    (never called by ``Tomography``) lets torchvision, and so deepinv, import."""
    global _DEEPINV, _DEEPINV_NOTE
    if _DEEPINV is not None:
        return _DEEPINV
    try:
        import torchvision  # noqa: F401
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
        for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[mod]
        lib = torch.library.Library("torchvision", "FRAGMENT")
        for op in ("nms", "qnms"):
            lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import_deepinv._lib = lib  # keep the fragment alive
        import torchvision  # noqa: F401,F811

        _DEEPINV_NOTE = (
            "torchvision's C++ ops do not load (CUDA wheel next to CPU torch); the benchmark "
            "declares the `torchvision::nms`/`qnms` schemas so that deepinv imports"
        )
    import deepinv

    _DEEPINV = deepinv
    return deepinv


class DeepinvPeer(Peer):
    """deepinv ``Tomography`` (pure torch, ``grid_sample`` based; batched natively).

    Built with ``circle=False, normalize=False, parallel_computation=True, device="cpu"`` and
    ``adjoint_via_backprop=False`` (its ``IRadon`` FBP for parallel beam, about twice as fast
    as the autograd adjoint; fan beam always uses the autograd adjoint). FBP is
    ``physics.fbp(y)`` (= ``A_dagger(y, fbp=True)``; plain ``A_dagger`` is an iterative
    least-squares solve in deepinv 0.5). Sinograms are (B, 1, N, V).

    Convention (checked against the analytic sinogram): angles in degrees; the rotation axis
    is pixel (n//2, n//2) as in scikit-image. Parallel beam: mrct's angles, no flip (error
    0.014 about that axis, 0.040 about mrct's centre). Fan beam (``fan_parameters`` in mm:
    pixel_spacing 1, source_radius, detector_radius, n_detector_pixels, detector_spacing):
    deepinv angle = mrct angle + 90 degrees, no flip (error 0.029 vs 0.25-0.50 otherwise).
    """

    name = "deepinv"
    group = "deepinv"

    def __init__(self, setup):
        super().__init__(setup)
        dinv = import_deepinv()
        s = setup
        self.centre = _skimage_centre(s.n, s.pixel_size)
        kw = dict(img_width=s.n, circle=False, normalize=False, parallel_computation=True,
                  adjoint_via_backprop=False, device="cpu")  # fmt: skip
        deg = s.degrees
        if s.kind == "fan":
            deg = deg + 90.0
            kw.update(fan_beam=True, fan_parameters={
                "pixel_spacing": s.pixel_size, "source_radius": s.source_distance,
                "detector_radius": s.detector_distance, "n_detector_pixels": s.n_det,
                "detector_spacing": s.det_spacing,
            })  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.P = dinv.physics.Tomography(angles=torch.tensor(deg, dtype=torch.float32), **kw)
        self.threads = f"torch {torch.get_num_threads()} threads"

    def images_in(self, x):
        return torch.from_numpy(x)[:, None]

    def sino_out(self, y):
        return y[:, 0].transpose(-1, -2).numpy()

    def sino_in(self, y):
        t = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
        return t.transpose(-1, -2)[:, None].contiguous()

    def images_out(self, x):
        return x[:, 0].detach().numpy()

    def make_forward(self, x):
        def run():
            with torch.no_grad():
                return self.P.A(x)

        return run

    def make_fbp(self, y):
        return lambda: self.P.fbp(y)


def make_peers(setup: Setup, libs: set[str]):
    """(name, peer or None, reason) for every library, mrct first."""
    specs = [("mrct", lambda: MrctPeer(setup))]
    specs.append(("scikit-image", lambda: SkimagePeer(setup)))
    projs = ("linear", "line", "strip") if setup.kind == "parallel" else (
        "line_fanflat", "strip_fanflat")  # fmt: skip
    for p in projs:
        specs.append((f"ASTRA `{p}`", lambda p=p: AstraPeer(setup, p)))
    specs.append(("deepinv", lambda: DeepinvPeer(setup)))
    out = []
    for name, make in specs:
        key = name.split()[0].lower()
        if key != "mrct" and key not in libs:
            continue
        try:
            out.append((name, make(), None))
        except Unsupported as e:
            out.append((name, None, f"not supported: {e}"))
        except Exception as e:  # not installed / cannot load
            out.append((name, None, f"unavailable: {type(e).__name__}: {_short(e)}"))
    return out


def _short(e: Exception, n: int = 160) -> str:
    s = " ".join(str(e).split())
    return s if len(s) <= n else s[: n - 3] + "..."


# -- measuring ---------------------------------------------------------------------------------
def rel(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@dataclass
class Row:
    name: str
    group: str
    threads: str = ""
    fwd: float | None = None
    fbp: float | None = None
    fwd_n: int = 0
    fbp_n: int = 0
    fwd_err: float | None = None
    fbp_err: float | None = None
    fwd_note: str = ""
    fbp_note: str = ""


def _fail_note(e: Exception) -> str:
    if isinstance(e, Unsupported):
        return f"not supported: {e}"
    return f"failed: {type(e).__name__}: {_short(e)}"


def measure_all(setup: Setup, batch: int, peers: list[Peer], opts, log) -> list[Row]:
    """Forward and FBP timings (interleaved across libraries) and, at batch 1, accuracy."""
    rows = {p.name: Row(p.name, p.group, p.threads) for p in peers}
    x_std = setup.batch_images(batch)
    scale = (1.0 + 0.01 * np.arange(batch, dtype=np.float32))[:, None, None]
    budget = opts.budget * (2 if batch > 1 else 1)
    for op in ("forward", "FBP"):
        calls = {}
        for p in peers:
            r = rows[p.name]
            ref = setup.analytic(p.centre).astype(np.float32)
            try:
                if op == "forward":
                    fn = p.make_forward(p.images_in(x_std))
                else:  # FBP of the analytic sinogram, in the library's convention
                    fn = p.make_fbp(p.sino_in(np.array(ref[None] * scale, dtype=np.float32)))
                t0 = time.perf_counter()
                out = fn()  # warm-up call, also scored
                warm = time.perf_counter() - t0
                if batch == 1 and op == "forward":
                    r.fwd_err = rel(p.sino_out(out)[0], ref)
                elif batch == 1:
                    rec = p.images_out(out)[0]
                    r.fbp_err = rel(rec[setup.mask], setup.image[setup.mask])
                calls[p.name] = fn
                err = r.fwd_err if op == "forward" else r.fbp_err
                log(f"  {op:<7} {p.name:<22} warm-up {fmt_ms(warm):>8} ms"
                    + (f", rel. error {err:.4f}" if err is not None else ""))  # fmt: skip
            except Exception as e:
                note = _fail_note(e)
                if op == "forward":
                    r.fwd_note = note
                else:
                    r.fbp_note = note
                log(f"  {op:<7} {p.name:<22} {note}")
                if not isinstance(e, Unsupported):
                    log(traceback.format_exc())
        timings, _ = time_interleaved(calls, opts.repeats, budget, warmup=False)
        for name, t in timings.items():
            r = rows[name]
            if op == "forward":
                r.fwd, r.fwd_n = t.median, t.n
            else:
                r.fbp, r.fbp_n = t.median, t.n
            log(f"  {op:<7} {name:<22} median {fmt_ms(t.median):>8} ms of {t.n}")
        calls.clear()
    return [rows[p.name] for p in peers]


# -- report ------------------------------------------------------------------------------------
def ratio(peer_t, mrct_t):
    if peer_t is None or mrct_t is None or not mrct_t > 0:
        return None
    return peer_t / mrct_t


def table_md(rows: list[Row], unavailable: list[tuple[str, str]]) -> str:
    m = rows[0]
    body = []
    for r in rows:
        body.append([
            f"**{r.name}**" if r.group == "mrct" else r.name,
            fmt_ms(r.fwd) if r.fwd is not None else "-",
            fmt_ms(r.fbp) if r.fbp is not None else "-",
            fmt_err(r.fwd_err) if r.fwd_err is not None else "-",
            fmt_err(r.fbp_err) if r.fbp_err is not None else "-",
            fmt_ratio(ratio(r.fwd, m.fwd)) if r.fwd is not None else "-",
            fmt_ratio(ratio(r.fbp, m.fbp)) if r.fbp is not None else "-",
        ])  # fmt: skip
    for name, _ in unavailable:
        body.append([name, "-", "-", "-", "-", "-", "-"])
    heads = ["library", "forward ms", "FBP ms", "forward rel. error", "FBP rel. error",
             "forward ratio (peer/mrct)", "FBP ratio (peer/mrct)"]  # fmt: skip
    text = md_table(heads, body)
    notes = []
    for r in rows:
        for what, note in (("forward", r.fwd_note), ("FBP", r.fbp_note)):
            if note:
                notes.append(f"{r.name} {what}: {note}")
    notes += [f"{name}: {why}" for name, why in unavailable]
    reps = ", ".join(f"{r.name} {r.fwd_n}/{r.fbp_n}" for r in rows if r.fwd_n or r.fbp_n)
    text += f"\n\nRuns timed (forward/FBP): {reps}."
    if notes:
        text += "\n\n" + "\n".join(f"- {n}" for n in notes)
    return text


def goal_lines(results) -> tuple[str, list[str]]:
    """A goals table and the list of items that are not met."""
    rows, misses = [], []
    measured = set()  # goal groups with at least one timed comparison
    for setup, batch, res in results:
        m = res[0]
        errs = {r.name: r for s2, b2, res2 in results if s2 is setup and b2 == 1 for r in res2}
        for op in ("forward", "FBP"):
            mt = m.fwd if op == "forward" else m.fbp
            me = errs[m.name].fwd_err if op == "forward" else errs[m.name].fbp_err
            cells = [f"{setup.key} b{batch}", op]
            for group, need in GOALS_BY_OP[op].items():
                peers = [r for r in res if r.group == group]
                items = []
                for r in peers:
                    pt = r.fwd if op == "forward" else r.fbp
                    if pt is None or mt is None:
                        continue
                    pe_row = errs.get(r.name)
                    pe = None if pe_row is None else (
                        pe_row.fwd_err if op == "forward" else pe_row.fbp_err)  # fmt: skip
                    rt = pt / mt
                    measured.add(group)
                    fast = rt >= need
                    acc = pe is None or me is None or me <= pe * (1 + ERR_TOL)
                    ok = fast and acc
                    why = []
                    if not fast:
                        why.append(f"{rt:.2f}x < {need:g}x")
                    if not acc:
                        why.append(f"error {me:.4f} > {pe:.4f}")
                    items.append(f"{r.name} {rt:.2f}x {'met' if ok else 'NOT met'}")
                    if not ok:
                        misses.append(f"{setup.key} batch {batch} {op} vs {r.name}: "
                                      + "; ".join(why))  # fmt: skip
                cells.append("; ".join(items) if items else "n/a")
            rows.append(cells)
    heads = ["case", "op"]
    heads += [
        f">= {GOALS_BY_OP['forward'][k]:g}x (forward) / {GOALS_BY_OP['FBP'][k]:g}x (FBP) faster "
        f"than {k}, error <= peer's"
        for k in GOALS
    ]
    missing = [g for g in GOALS if g not in measured]
    misses += [f"no {g} measurement in this run" for g in missing]
    return md_table(heads, rows, align=["l", "l", "l", "l"]), misses


def build_section(results, info, unavailable_global, opts, loads) -> str:
    mode = "quick run (--quick): few repeats, no 512 x 512 case" if opts.quick else "full run"
    parts = [
        "## CT projectors (`benchmarks/radon.py`)",
        "",
        f"Generated by `python benchmarks/radon.py` ({mode}). Machine: **{info['machine']}**.",
        "",
        "Times are the median wall-clock time of repeated calls after one warm-up call, in ms; "
        "the libraries are timed in turn, one call each per round, so that load from other "
        "processes falls on all of them alike; "
        "for batch 16, libraries that take one image per call (scikit-image, ASTRA) loop over "
        "the batch and the total is reported; mrct and deepinv take the whole batch. "
        "Set-up (operators, geometry tables, ASTRA data/algorithm objects) is not timed. "
        "Images are float32. Ratios are peer time / mrct time (above 1: mrct is faster). "
        "Errors (computed at batch 1): *forward* is the relative L2 error of the sinogram of "
        "the rasterised modified Shepp-Logan phantom (8 x 8 sub-samples per pixel) against the "
        "analytic sinogram of the continuous phantom; *FBP* is the relative L2 error, inside "
        "the disc of radius n/2 - 2 pixels, of the FBP (Ram-Lak/ramp filter) of the analytic "
        "sinogram against the rasterised phantom. Each library is scored in its own geometric "
        "convention (see the docstrings in `benchmarks/radon.py`): scikit-image and deepinv "
        "rotate about pixel (n/2, n/2), half a pixel off mrct's and ASTRA's image centre, so "
        "their reference sinograms are those of the phantom about that axis.",
        "",
    ]
    for setup, batch, res in results:
        parts += [f"### {setup.title}, batch {batch}", ""]
        parts += [table_md(res, unavailable_global.get((setup.key, batch), [])), ""]
    gtab, misses = goal_lines(results)
    parts += ["### Goals", "", gtab, ""]
    if misses:
        summary = (
            "**Summary.** The goals are that, on the same cores, mrct's forward projection is at "
            "least 2x faster than ASTRA's CPU projectors and 5x faster than scikit-image, and its "
            "FBP at least 4x and 8x (issue #16), at equal or better accuracy (mrct's error at most "
            f"{ERR_TOL:.0%} above the peer's). Met wherever the table says *met*; "
            f"**not met** ({len(misses)} items): " + "; ".join(misses) + ". "
        )
    else:
        summary = (
            "**Summary.** All goals are met: on the same cores mrct's forward projection is at "
            "least 2x faster than every ASTRA CPU projector and 5x faster than scikit-image, and "
            "its FBP at least 4x and 8x, at equal or better accuracy. "
        )
    summary += (
        "ASTRA's CPU projectors and scikit-image run single-threaded (ASTRA's wheel has no "
        "OpenMP; scikit-image's radon/iradon are serial NumPy/Cython), while mrct uses "
        "every core through Numba (and scipy.fft for the filtering), so on 2 cores up to "
        "about 2x of mrct's lead comes from using the second core; deepinv uses torch's "
        "threads. ASTRA's CPU FBP does not support fan geometries and scikit-image has no fan "
        "beam, hence the gaps in the fan tables."
    )
    parts += [summary, ""]
    fbp1 = {setup.key: res[0].fbp for setup, batch, res in results if batch == 1}
    if fbp1.get("fan256") and fbp1.get("par256"):
        parts += [
            f"Fan against parallel FBP (mrct, 256 x 256, batch 1): flat fan (360 views) "
            f"{fbp1['fan256'] * 1e3:.1f} ms, parallel (180 views) {fbp1['par256'] * 1e3:.1f} ms, "
            f"{fbp1['fan256'] / fbp1['par256']:.2f}x the parallel time for twice the views "
            f"({fbp1['fan256'] / fbp1['par256'] / 2:.2f}x per view).",
            "",
        ]
    parts += ["### Machine and versions", ""]
    parts += [f"- {k}: {v}" for k, v in info.items()]
    parts += [
        f"- single-threaded peers: scikit-image and ASTRA (CPU) use 1 thread; mrct: "
        f"{results[0][2][0].threads}; deepinv: torch's threads",
        f"- load average (1, 5, 15 min) at start: {loads[0]}; at end: {loads[1]} "
        "(other processes may share the cores)",
    ]
    if _DEEPINV_NOTE:
        parts.append(f"- deepinv import: {_DEEPINV_NOTE}")
    return "\n".join(parts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="few repeats, skip 512 x 512")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results Markdown file")
    ap.add_argument("--no-write", action="store_true", help="print the section, do not write")
    ap.add_argument("--repeats", type=int, default=None, help="timed calls per measurement")
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds of timed calls per measurement before stopping early",
    )
    ap.add_argument(
        "--libs",
        default="scikit-image,astra,deepinv",
        help="comma-separated peers to run (mrct always runs)",
    )
    ap.add_argument("--cases", default=None, help="comma-separated case keys (par256,...)")
    ap.add_argument("--machine", default=None,
                    help='machine description for the report, e.g. "2-core development VM, '
                         'no GPU"')  # fmt: skip
    opts = ap.parse_args(argv)
    opts.repeats = opts.repeats or (3 if opts.quick else 15)
    opts.budget = opts.budget or (2.0 if opts.quick else 15.0)
    libs = {s.strip().lower() for s in opts.libs.split(",") if s.strip()}

    def log(msg):
        print(msg, flush=True)

    loads = [load_average()]
    t_start = time.perf_counter()
    setups = make_setups(opts.quick)
    if opts.cases:
        keep = {c.strip() for c in opts.cases.split(",")}
        setups = [s for s in setups if s.key in keep]
    results, unavailable = [], {}
    for setup in setups:
        log(f"== {setup.title}")
        setup.prepare()
        peers = make_peers(setup, libs)
        live = [peer for _, peer, _ in peers if peer is not None]
        missing = [(name, why) for name, peer, why in peers if peer is None]
        for name, why in missing:
            log(f"  {name}: {why}")
        for b in setup.batches:
            log(f"-- batch {b}")
            results.append((setup, b, measure_all(setup, b, live, opts, log)))
            unavailable[(setup.key, b)] = missing
        for _, peer, _ in peers:
            if peer is not None:
                peer.close()
    loads.append(load_average())
    info = machine_report(PACKAGES, opts.machine)
    section = build_section(results, info, unavailable, opts, loads)
    log(f"\nfinished in {time.perf_counter() - t_start:.0f} s\n")
    if opts.no_write:
        print(section)
    else:
        path = write_section(SECTION, section, opts.out)
        log(f"wrote section '{SECTION}' of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
