"""Ultrasound benchmark: mrct's RF simulator and delay-and-sum against pymust (SIMUS, DASMTX)
and vbeam, in one process on the same scene.

Scene (issue #20): a speckle phantom of 50,000 point scatterers (uniform in x in [-19, 19] mm,
z in [5, 40] mm, Gaussian reflectivity), a 128-element 7.6 MHz linear array (pymust's
``L11-5v``: pitch 0.3 mm, element width 0.27 mm, 77 % bandwidth, fs = 4 fc), one plane wave
at 0 degrees, attenuation 0.5 dB/cm/MHz. mrct runs with ``pulse="windowed-sine"`` (MUST's
pulse model) so that the two simulators model the same probe.

Accuracy: correlation of mrct's RF channel data with pymust's SIMUS output, and of the
B-modes (envelope + 60 dB log compression of the same mrct DAS) of the two RF data sets;
correlation of pymust's DAS B-mode (``rf2iq`` + ``dasmtx``) with mrct's DAS B-mode of the same
(pymust) RF. DAS grid: 38 mm x 35 mm, pitch / 2 by wavelength / 4 pixels, f-number 1.5.

Timing: median wall-clock of repeated calls after one warm-up (pymust's SIMUS runs once: it
takes minutes). pymust's DAS is timed as building the sparse DAS matrix (``dasmtx``, needed
once per geometry) and as applying it. vbeam runs on JAX (CPU) when installed.

    python benchmarks/ultrasound.py            # full scene (pymust SIMUS takes minutes)
    python benchmarks/ultrasound.py --quick    # 5,000 scatterers
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

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

from mrct.physics.ultrasound import (  # noqa: E402
    LinearArray,
    LinearGrid,
    PlaneWave,
    Scatterers,
    bmode,
    das,
    simulate_rf,
)

SECTION = "ultrasound"
PACKAGES = ("mrct", "numba", "torch", "numpy", "pymust", "vbeam", "jax")
ATT = 0.5


def _corr(a, b) -> float:
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def scene(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return Scatterers(rng.uniform(-19, 19, n), rng.uniform(5, 40, n), rng.standard_normal(n))


def run_pymust_simus(probe, sc, tx):
    import pymust

    param = pymust.getparam("L11-5v")
    param.fs = probe.fs * 1e6
    param.attenuation = ATT
    dels = tx.delays(probe)[None] * 1e-6
    t0 = time.perf_counter()
    rf, _ = pymust.simus(sc.x[None] * 1e-3, sc.z[None] * 1e-3, sc.amplitude[None], dels, param)
    return np.ascontiguousarray(rf.T), time.perf_counter() - t0, param


def run_pymust_das(rf, probe, grid, tx, param):
    import pymust

    param.fnumber = 1.5
    zz, xx = np.meshgrid(grid.z * 1e-3, grid.x * 1e-3, indexing="ij")
    dels = tx.delays(probe)[None] * 1e-6
    iq = pymust.rf2iq(rf.T, param.fs, param.fc)
    t0 = time.perf_counter()
    M = pymust.dasmtx(iq, xx, zz, dels, param)
    t_build = time.perf_counter() - t0
    vec = iq.flatten(order="F")
    t_apply = time_call(lambda: M @ vec, repeats=5, budget_s=10.0)
    img = np.abs((M @ vec).reshape(xx.shape, order="F"))
    db = 20 * np.log10(np.maximum(img / img.max(), 1e-3))
    return db, t_build, t_apply.median


def run_vbeam(rf, probe, grid, tx):
    """vbeam's DAS (JAX backend, CPU) of the same RF data (IQ by Hilbert transform)."""
    from scipy.signal import hilbert
    from spekk import Spec
    from vbeam.apodization import NoApodization
    from vbeam.beamformers import get_das_beamformer
    from vbeam.core import ElementGeometry, WaveData
    from vbeam.data_importers.setup import SignalForPointSetup
    from vbeam.fastmath import backend_manager
    from vbeam.interpolation import FastInterpLinspace
    from vbeam.scan import linear_scan
    from vbeam.wavefront import PlaneWavefront, ReflectedWavefront

    backend_manager.active_backend = "jax"
    import jax.numpy as np_

    c = probe.speed_of_sound
    n_t = rf.shape[1]
    pos = np.stack([probe.element_x * 1e-3, np.zeros(probe.n_elements),
                    np.zeros(probe.n_elements)], -1).astype("float32")  # fmt: skip
    receivers = ElementGeometry(np_.array(pos), np_.array(np.zeros(probe.n_elements)),
                                np_.array(np.zeros(probe.n_elements)))  # fmt: skip
    sender = ElementGeometry(np_.array([0.0, 0.0, 0.0], dtype="float32"), 0.0, 0.0)
    sig = np.asarray(hilbert(rf, axis=-1), dtype="complex64")[None]  # (1, n_el, n_t)
    setup = SignalForPointSetup(
        sender=sender,
        point_position=None,
        receiver=receivers,
        signal=np_.array(sig),
        transmitted_wavefront=PlaneWavefront(),
        reflected_wavefront=ReflectedWavefront(),
        speed_of_sound=np_.array(float(c), dtype="float32"),
        wave_data=WaveData(
            azimuth=np_.array([tx.angle]),
            elevation=np_.array([0.0]),
            source=np_.array([[0.0, 0.0, 0.0]]),
            t0=np_.array([0.0]),
        ),  # fmt: skip
        interpolate=FastInterpLinspace(min=0.0, d=1 / (probe.fs * 1e6), n=n_t),
        modulation_frequency=np_.array(0.0),
        apodization=NoApodization(),
        spec=Spec(
            {
                "signal": ["transmits", "receivers", "signal_time"],
                "receiver": ["receivers"],
                "point_position": ["points"],
                "wave_data": ["transmits"],
            }
        ),  # fmt: skip
        scan=linear_scan(np_.array(grid.x * 1e-3), np_.array(grid.z * 1e-3)),
    )
    bf = get_das_beamformer(setup, log_compress=True, scan_convert=False)
    import jax

    fn = jax.jit(bf)
    data = setup.data

    def call():
        return np.asarray(fn(**data))

    t = time_call(call, repeats=5, budget_s=20.0)
    return np.asarray(call()).T, t.median


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="5,000 scatterers")
    ap.add_argument("--no-peer", action="store_true", help="mrct only")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results Markdown file")
    ap.add_argument("--no-write", action="store_true", help="print the section, do not write")
    ap.add_argument("--machine", default=None, help="machine description for the report")
    opts = ap.parse_args(argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    n = 5000 if opts.quick else 50000
    probe = LinearArray(element_width=0.27, pulse="windowed-sine")
    tx = PlaneWave()
    sc = scene(n)
    grid = LinearGrid.from_probe(probe, depth=(5, 40), width=38.0)
    loads = [load_average()]
    notes, rows = [], []

    log(f"-- mrct simulate_rf, {n} scatterers")
    sim = lambda: simulate_rf(probe, sc, tx, attenuation=ATT)  # noqa: E731
    t_sim = time_call(sim, repeats=5, budget_s=20.0)
    rf_mrct = sim().double().numpy()
    A = das(probe, grid, tx, n_samples=rf_mrct.shape[1], f_number=1.5)
    rf32 = torch.as_tensor(rf_mrct, dtype=torch.float32)
    t_das = time_call(lambda: A(rf32), repeats=7, budget_s=20.0)
    t_adj = time_call(lambda: A.adjoint(A(rf32)), repeats=5, budget_s=20.0)
    log(f"   simulate {t_sim.median:.3f} s, DAS {t_das.median:.3f} s")

    peer = {}
    if not opts.no_peer:
        try:
            log("-- pymust SIMUS (minutes for the full scene)")
            rf_must, t_must, param = run_pymust_simus(probe, sc, tx)
            n_t = min(rf_must.shape[1], rf_mrct.shape[1])
            peer["simus"] = t_must
            peer["rf_corr"] = _corr(rf_mrct[:, :n_t], rf_must[:, :n_t])
            A2 = das(probe, grid, tx, n_samples=rf_must.shape[1], f_number=1.5)
            b_must_rf = bmode(A2(torch.as_tensor(rf_must))).numpy()
            rf_pad = np.zeros_like(rf_must)
            rf_pad[:, :n_t] = rf_mrct[:, :n_t]
            peer["bmode_corr"] = _corr(bmode(A2(torch.as_tensor(rf_pad))).numpy(), b_must_rf)
            log(f"   SIMUS {t_must:.1f} s; rf corr {peer['rf_corr']:.3f}, "
                f"bmode corr {peer['bmode_corr']:.3f}")  # fmt: skip
            db, t_build, t_apply = run_pymust_das(rf_must, probe, grid, tx, param)
            peer["dasmtx"], peer["das_apply"] = t_build, t_apply
            peer["das_corr"] = _corr(np.maximum(db, -60), b_must_rf)
        except Exception as e:  # noqa: BLE001 - reported in the section
            notes.append(f"pymust failed: {type(e).__name__}: {e}")
            log(traceback.format_exc())
        try:
            log("-- vbeam DAS (JAX, CPU)")
            img, t_vb = run_vbeam(rf_mrct, probe, grid, tx)
            peer["vbeam"] = t_vb
            full = das(probe, grid, tx, n_samples=rf_mrct.shape[1], f_number=0)  # as vbeam's
            peer["vbeam_corr"] = _corr(np.maximum(img, -60), bmode(full(rf32.double())).numpy())
        except Exception as e:  # noqa: BLE001
            notes.append(f"vbeam not run: {type(e).__name__}: {e}")
            log(traceback.format_exc())
    loads.append(load_average())

    def cell(key):
        return fmt_ms(peer.get(key)) if key in peer else "not run"

    def ratio(key, ours):
        return fmt_ratio(peer[key] / ours) if key in peer else ""

    rows.append((f"RF simulation, {n:,} scatterers", fmt_ms(t_sim.median), "pymust SIMUS",
                 cell("simus"), ratio("simus", t_sim.median)))  # fmt: skip
    rows.append(("DAS forward (RF -> image)", fmt_ms(t_das.median), "pymust dasmtx (build)",
                 cell("dasmtx"), ratio("dasmtx", t_das.median)))  # fmt: skip
    rows.append(("", "", "pymust dasmtx (apply only)", cell("das_apply"),
                 ratio("das_apply", t_das.median)))  # fmt: skip
    rows.append(("", "", "vbeam DAS (JAX CPU, jit)", cell("vbeam"), ratio("vbeam", t_das.median)))
    rows.append(("DAS forward + adjoint", fmt_ms(t_adj.median), "", "", ""))
    table = md_table(["operation", "mrct (ms)", "peer", "peer (ms)", "peer / mrct"], rows,
                     align="lrlrr")  # fmt: skip
    acc = []
    labels = {
        "rf_corr": "RF channel data, mrct vs pymust SIMUS",
        "bmode_corr": "B-mode (mrct DAS) of mrct RF vs of pymust RF",
        "das_corr": "B-mode of pymust RF: pymust DAS (IQ, own aperture window) vs mrct DAS",
        "vbeam_corr": "B-mode of mrct RF: vbeam DAS vs mrct DAS, both full aperture",
    }
    for key, what in labels.items():
        if key in peer:
            acc.append(f"- {what}: correlation {peer[key]:.3f}")
    grid_desc = f"{grid.shape[0]} x {grid.shape[1]} pixels"
    info = machine_report(PACKAGES, opts.machine)
    body = [
        "## Ultrasound simulation and beamforming (`benchmarks/ultrasound.py`)",
        "",
        f"Speckle phantom of {n:,} scatterers, 128-element 7.6 MHz linear array (L11-5v), one "
        f"plane wave, 0.5 dB/cm/MHz; DAS to {grid_desc}, f-number 1.5, float32 RF. Median "
        "wall-clock; pymust's SIMUS once.",
        "",
        table,
        "",
        *acc,
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        f"- load average before / after: {loads[0]} / {loads[1]}",
        *(f"- note: {x}" for x in notes),
    ]
    text = "\n".join(body)
    if opts.no_write:
        print(text)
    else:
        write_section(SECTION, text, opts.out)
        log(f"wrote section {SECTION!r} of {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
