"""Train small 2D DDoS-UNet and UNet SR models and evaluate dynamic-MRI super-resolution;
write the tables of ``docs/results.md`` (between ``<!-- BEGIN sr -->`` and ``<!-- END sr -->``).

    python scripts/sr_results.py [--steps 300] [--features 16] [--train-fractions 0.25 0.04]

Data: sagittal slices of the MNI152 brain (``../shared/data``; 64 x 64 pixels of 3.64 mm) with
simulated breathing motion (:func:`mrct.data.simulate_dynamic_series`, 8 time points of 0.4 s,
10 mm SI / 4 mm AP peak displacement) and centre-of-k-space truncation to 25 %, 10 %, 6.25 %
and 4 % of k-space (:class:`mrct.physics.KSpaceTruncation`). Train: left-hemisphere slices
30-84 (24 slices, 192 pairs); validation: 88-95 (4 slices); test: right-hemisphere slices
100-164 (8 slices, 64 time points). Per k-space fraction a DDoS-UNet and a UNet SR model
(2D, depth 3, ``--features`` starting features, residual) are trained with mrct's trainer
(``mrct.recon.fit``: L1, Adam 1e-3, cosine schedule, batch 8) for about ``--steps`` steps.
Scores: fastMRI SSIM and PSNR of every test time point (data range: the time point's
maximum), for DDoS-UNet (stepwise inference from the planning scan), UNet SR, trilinear
(bilinear in 2D, the paper's baseline), bicubic and zero-filled k-space; mean +- std over the
test time points, per fraction and per time point.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mrct.data import simulate_dynamic_series  # noqa: E402
from mrct.io import atomic_path  # noqa: E402
from mrct.metrics import psnr, ssim  # noqa: E402
from mrct.physics import PAPER_FRACTIONS, KSpaceTruncation, upsample_lowres  # noqa: E402
from mrct.recon import DDoSUNet, SRUNet, super_resolve_series  # noqa: E402
from mrct.recon.sr.data import source_spacing, sr_images, sr_pairs  # noqa: E402
from mrct.training import TrainConfig, fit  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "results.md"
METHODS = ("DDoS-UNet", "UNet SR", "trilinear", "bicubic", "zero-filled")
SIZE, N_FRAMES, SEED = 64, 8, 0
N_TRAIN, N_VAL, N_TEST = 24, 4, 8
SPACING = source_spacing("brain_mri", 2, SIZE)  # 3.64 mm pixels
PAPER = "0.951 +- 0.017"  # DDoS-UNet SSIM at 4 % of k-space (Chatterjee et al. 2024)


def train_model(cls, fraction, train_imgs, val_imgs, steps, features, out_dir, log):
    prior = cls.uses_prior
    train = sr_pairs(
        train_imgs, fraction=fraction, prior=prior, n_frames=N_FRAMES, seed=SEED, spacing=SPACING
    )
    val = sr_pairs(
        val_imgs,
        fraction=fraction,
        prior=prior,
        n_frames=N_FRAMES,
        seed=SEED + 100_000,
        spacing=SPACING,
    )
    batch = 8
    epochs = max(1, round(steps / math.ceil(len(train) / batch)))
    torch.manual_seed(SEED)
    model = cls(features=features, dims=2)
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=batch,
        lr=1e-3,
        loss="l1",
        seed=SEED,
        out_dir=str(out_dir),
        progress=False,
        log_every=10,
        overwrite=True,
    )
    t0 = time.time()
    res = fit(model, train, val, cfg, model_kwargs=model.config)
    h = res.history["epochs"][-1]
    log(
        f"  {cls.__name__} @ {fraction:g}: {res.history['epochs'][-1]['steps']} steps, "
        f"train L1 {h['train_loss']:.4f}, val L1 {h['val_loss']:.4f}, {time.time() - t0:.0f} s"
    )
    return res.model.eval(), {
        "steps": h["steps"],
        "train_l1": h["train_loss"],
        "val_l1": h["val_loss"],
        "time_s": time.time() - t0,
    }


def evaluate(fraction, test_imgs, models):
    """scores[method] = (n_series, T, 2) array of (SSIM, PSNR)."""
    scores = {m: [] for m in METHODS}
    op = KSpaceTruncation((SIZE, SIZE), fraction)
    for k, img in enumerate(test_imgs):
        sim = simulate_dynamic_series(
            img, N_FRAMES, fraction=fraction, seed=SEED + 200_000 + 7919 * k, spacing=SPACING
        )
        lr = torch.from_numpy(sim.lowres)
        interp = torch.from_numpy(sim.lowres_interp)
        preds = {
            "trilinear": interp,
            "bicubic": upsample_lowres(lr, (SIZE, SIZE), "bicubic"),
            # zero-filled k-space: |A^H y| of the complex truncated k-space
            "zero-filled": op.zero_filled(op(torch.from_numpy(sim.series).double())).abs().float(),
        }
        if "DDoS-UNet" in models:
            preds["DDoS-UNet"] = super_resolve_series(
                models["DDoS-UNet"], interp, torch.from_numpy(sim.planning), progress=False
            )
        if "UNet SR" in models:
            preds["UNet SR"] = super_resolve_series(models["UNet SR"], interp, progress=False)
        for m, p in preds.items():
            p = p.numpy().astype(np.float64)
            scores[m].append(
                [[ssim(p[t], sim.series[t]), psnr(p[t], sim.series[t])] for t in range(N_FRAMES)]
            )
    return {m: np.asarray(v) for m, v in scores.items() if v}


def _ms(v, fmt):
    return f"{format(v.mean(), fmt)} +- {format(v.std(), fmt)}"


def tables(results, fractions, trained, info) -> str:
    lines = []
    lines.append(
        "SSIM (mean +- std over the 64 test time points; fastMRI SSIM, data range the "
        "time point's maximum):\n"
    )
    head = "| method | " + " | ".join(f"{100 * f:g} % k-space" for f in fractions) + " |"
    lines += [head, "| --- |" + " --- |" * len(fractions)]
    for m in METHODS:
        cells = [
            (_ms(results[f][m][..., 0], ".3f") if m in results[f] else "not trained")
            for f in fractions
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines.append(
        f"| DDoS-UNet, paper (3D, abdominal) | - | - | - | {PAPER} |"
        if tuple(fractions) == tuple(PAPER_FRACTIONS)
        else ""
    )
    lines.append("\nPSNR (dB, data range the time point's maximum):\n")
    lines += [head, "| --- |" + " --- |" * len(fractions)]
    for m in METHODS:
        cells = [
            (_ms(results[f][m][..., 1], ".2f") if m in results[f] else "not trained")
            for f in fractions
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    for f in [f for f in (0.04, 0.25) if f in trained]:
        lines.append(
            f"\nSSIM per time point at {100 * f:g} % of k-space (mean over the 8 test "
            "series; time point 0 has the planning scan as DDoS-UNet's prior):\n"
        )
        lines.append("| method | " + " | ".join(f"t{t}" for t in range(N_FRAMES)) + " |")
        lines.append("| --- |" + " --- |" * N_FRAMES)
        for m in METHODS:
            per_t = results[f][m][..., 0].mean(axis=0)
            lines.append(f"| {m} | " + " | ".join(f"{v:.3f}" for v in per_t) + " |")
    if 0.04 in trained:
        lines.append("\nPSNR per time point at 4 % of k-space (dB, mean over the 8 test series):\n")
        lines.append("| method | " + " | ".join(f"t{t}" for t in range(N_FRAMES)) + " |")
        lines.append("| --- |" + " --- |" * N_FRAMES)
        for m in METHODS:
            per_t = results[0.04][m][..., 1].mean(axis=0)
            lines.append(f"| {m} | " + " | ".join(f"{v:.2f}" for v in per_t) + " |")
    lines.append(
        "\nTraining (per model): "
        + "; ".join(
            f"{name} @ {100 * f:g} %: {d['steps']} steps, val L1 {d['val_l1']:.4f}, "
            f"{d['time_s']:.0f} s"
            for (name, f), d in info["training"].items()
        )
        + "."
    )
    return "\n".join(x for x in lines if x != "")


def write_section(body: str, path: Path = DOC) -> None:
    text = path.read_text()
    new = f"<!-- BEGIN sr -->\n{body}\n<!-- END sr -->"
    if "<!-- BEGIN sr -->" not in text:
        text = text.rstrip("\n") + "\n\n" + new + "\n"
    else:
        text, n = re.subn(r"<!-- BEGIN sr -->.*?<!-- END sr -->", lambda _: new, text, flags=re.S)
        if n != 1:
            raise RuntimeError(f"{path} must contain one BEGIN/END sr block")
    with atomic_path(path) as tmp:
        tmp.write_text(text)


INTRO = """\
## Super-resolution of dynamic MRI (DDoS-UNet)

Made by `python scripts/sr_results.py` ({steps} optimizer steps per model, {features} starting
features; {minutes:.1f} min in all on {machine}, shared with other jobs).

Setup: 2D sagittal slices of the MNI152 brain at 64 x 64 pixels of 3.64 mm; simulated
breathing over 8 time points 0.4 s apart (`mrct.data.simulate_dynamic_series`: Lujan cos^4
signal, smooth displacement fields, up to ~10 mm superior-inferior and ~4 mm
anterior-posterior, i.e. about 3 and 1 pixels); the central fraction of in-plane k-space kept
(`mrct.physics.KSpaceTruncation`: {blocks} of 64 x 64 lines). DDoS-UNet and UNet SR (2D,
depth 3, residual) trained with `mrct.recon.fit` (L1, Adam 1e-3, cosine schedule, batch 8) on
24 left-hemisphere slices (192 pairs), validated on 4, tested on 8 right-hemisphere slices (64
time points). DDoS-UNet runs stepwise: the planning scan (the undeformed slice) is the prior of
time point 0, its own output the prior of each next one. Trilinear is bilinear in 2D.
{trained_note}
"""

ACCOUNT = """\
**How this compares with the paper.** Chatterjee et al. report SSIM 0.951 +- 0.017 for
DDoS-UNet from 4 % of k-space on real 3D dynamic abdominal scans (256 x 256 x 30 volumes), after
training on CHAOS for 100 epochs and fine-tuning on subject-specific static scans. The numbers
above are not comparable with theirs and do not reproduce them:

- **Short training on a CPU:** {steps} Adam steps on 192 small 2D pairs, {features}
  starting features instead of 64, L1 loss instead of their perceptual loss, no fine-tuning.
  The models are far from converged.
- **2D and small:** 64 x 64 slices, so 4 % of k-space is a 13 x 13 block: much less absolute
  information than their 51 x 51 x 30 at 256 x 256 x 30, and no through-plane context.
- **Simulated motion on a template:** a deformed MNI152 slice, not real free-breathing
  abdominal MRI; the planning scan is the exact undeformed image (noise-free, same contrast),
  which favours DDoS-UNet's prior more than a real planning scan would. The peak
  displacement is about 3 pixels SI and 1 pixel AP at this pixel size.
"""


def measured_gains(results, fractions) -> str:
    """The bullet that states, from the numbers, what the prior and the networks bought."""
    parts = []
    for f in fractions:
        r = results[f]
        if "DDoS-UNet" not in r:
            continue
        d, u, t = (float(r[m][..., 0].mean()) for m in ("DDoS-UNet", "UNet SR", "trilinear"))
        parts.append(f"{100 * f:g} %: {d - u:+.3f} over UNet SR, {d - t:+.3f} over trilinear")
    if not parts:
        return ""
    out = (
        "- **Measured here** (mean SSIM of DDoS-UNet minus the others): " + "; ".join(parts) + ".\n"
    )
    drift = []
    for f in fractions:
        if "DDoS-UNet" in results[f]:
            per_t = results[f]["DDoS-UNet"][..., 0].mean(axis=0)
            drift.append(f"{100 * f:g} %: {per_t[0]:.3f} -> {per_t[-1]:.3f}")
    out += (
        "- **The prior chain drifts.** DDoS-UNet is trained with the fully sampled previous "
        "time point as prior (as in the paper) but at inference gets its own previous "
        "output, so its errors accumulate along the series; its SSIM from the first to the "
        "last time point: " + "; ".join(drift) + ". Training on its own outputs or longer "
        "training might reduce the drift; neither was tried here.\n"
    )
    worse = [
        f
        for f in fractions
        if "DDoS-UNet" in results[f]
        and results[f]["UNet SR"][..., 1].mean() > results[f]["DDoS-UNet"][..., 1].mean()
    ]
    if worse:

        def pt(f, m, t):
            return float(results[f][m][:, t, 1].mean())

        f = worse[-1]
        out += (
            "- **PSNR tells a less favourable story.** DDoS-UNet's mean PSNR is below UNet SR's "
            f"at {', '.join(f'{100 * g:g} %' for g in worse)}: it leads at the first time point "
            f"({100 * f:g} %: {pt(f, 'DDoS-UNet', 0):.2f} vs {pt(f, 'UNet SR', 0):.2f} dB) and "
            f"falls behind as the prior chain drifts ({pt(f, 'DDoS-UNet', -1):.2f} vs "
            f"{pt(f, 'UNet SR', -1):.2f} dB at the last time point).\n"
        )
    base = ("trilinear", "bicubic", "zero-filled")
    best = {max(base, key=lambda m: results[f][m][..., 1].mean()) for f in fractions}
    if len(best) == 1:
        name = best.pop()
        why = " (the least-squares estimate from the kept k-space)" if name == "zero-filled" else ""
        out += f"- Of the baselines, {name} has the best PSNR at every fraction{why}.\n"
    return out


def run(args):
    """Train and evaluate; returns (results, info, meta)."""
    t_start = time.time()
    fractions = sorted(args.fractions, reverse=True)
    trained = args.train_fractions if args.train_fractions is not None else fractions
    train_imgs = sr_images("brain_mri", "train", 2, SIZE, max_items=N_TRAIN)
    val_imgs = sr_images("brain_mri", "val", 2, SIZE, max_items=N_VAL)
    test_imgs = sr_images("brain_mri", "test", 2, SIZE, max_items=N_TEST)
    work = args.work or Path(tempfile.mkdtemp(prefix="mrct_sr_results_"))
    results, info = {}, {"training": {}}
    for f in fractions:
        op = KSpaceTruncation((SIZE, SIZE), f)
        print(f"fraction {f:g}: low-res {op.lowres_shape}, kept {op.kept_fraction:.4f}", flush=True)
        models = {}
        if any(math.isclose(f, g) for g in trained):
            for name, cls in (("DDoS-UNet", DDoSUNet), ("UNet SR", SRUNet)):
                models[name], info["training"][(name, f)] = train_model(
                    cls,
                    f,
                    train_imgs,
                    val_imgs,
                    args.steps,
                    args.features,
                    work / f"{cls.__name__}_{f:g}",
                    lambda s: print(s, flush=True),
                )
        results[f] = evaluate(f, test_imgs, models)
        for m, v in results[f].items():
            print(
                f"  {m:12s} SSIM {_ms(v[..., 0], '.3f')}  PSNR {_ms(v[..., 1], '.2f')}", flush=True
            )
    meta = {
        "minutes": (time.time() - t_start) / 60,
        "machine": f"{os.cpu_count()} CPU cores ({platform.machine()}), torch {torch.__version__}",
        "features": args.features,
    }
    return results, info, meta


def to_json(results, info, meta) -> dict:
    raw = {"scores": {str(f): {m: v.tolist() for m, v in r.items()} for f, r in results.items()}}
    raw["training"] = {f"{n} @ {f:g}": d for (n, f), d in info["training"].items()}
    raw["meta"] = meta
    return raw


def from_json(raw: dict):
    results = {float(f): {m: np.asarray(v) for m, v in r.items()} for f, r in raw["scores"].items()}
    training = {}
    for key, d in raw["training"].items():
        name, _, f = key.rpartition(" @ ")
        training[(name, float(f))] = d
    return results, {"training": training}, raw["meta"]


def render(results, info, meta) -> str:
    fractions = sorted(results, reverse=True)
    trained = sorted({f for (_, f) in info["training"]}, reverse=True)
    not_trained = [f for f in fractions if f not in trained]
    note = (
        ""
        if not not_trained
        else f"To fit the CPU budget, models were trained at "
        f"{', '.join(f'{100 * g:g} %' for g in trained)} only; the other fractions show the "
        "interpolation baselines."
    )
    blocks = ", ".join(
        "{} x {}".format(*KSpaceTruncation((SIZE, SIZE), f).lowres_shape) for f in fractions
    )
    steps = "/".join(map(str, sorted({d["steps"] for d in info["training"].values()}) or [0]))
    return (
        INTRO.format(
            steps=steps,
            features=meta["features"],
            minutes=meta["minutes"],
            machine=meta["machine"],
            trained_note=note,
            blocks=blocks,
        )
        + "\n"
        + tables(results, fractions, trained, info)
        + "\n\n"
        + ACCOUNT.format(steps=steps, features=meta["features"])
        + measured_gains(results, fractions)
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="about this many steps per model")
    ap.add_argument("--features", type=int, default=16)
    ap.add_argument("--fractions", type=float, nargs="+", default=list(PAPER_FRACTIONS))
    ap.add_argument(
        "--train-fractions",
        type=float,
        nargs="+",
        default=None,
        help="fractions at which models are trained (default: all)",
    )
    ap.add_argument("--work", type=Path, default=None, help="keep the runs here")
    ap.add_argument("--json", type=Path, default=None, help="also write raw scores as JSON")
    ap.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="re-render the section from a --json file of an earlier run (no training)",
    )
    ap.add_argument("--no-write", action="store_true", help="print, do not edit the doc")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if args.from_json:
        results, info, meta = from_json(json.loads(args.from_json.read_text()))
    else:
        results, info, meta = run(args)
        if args.json:
            with atomic_path(args.json) as tmp:
                tmp.write_text(json.dumps(to_json(results, info, meta)))
    body = render(results, info, meta)
    print(body)
    if not args.no_write:
        write_section(body.rstrip("\n"))
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
