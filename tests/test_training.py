"""The training engine: overfitting one sample, checkpoints (round trip, errors), exact resume,
gradient accumulation, mixed precision, config files, DDP under torchrun, ``mrct train``."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import TensorDataset
from typer.testing import CliRunner

from mrct.cli import app
from mrct.data import random_ellipses, rasterize_ellipses
from mrct.nn import UNet
from mrct.physics import ParallelBeam, Radon
from mrct.recon.primal_dual import LearnedPrimalDual, PrimalDualUNet
from mrct.training import TrainConfig, fit, parse_override
from mrct.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_weights,
    read_metadata,
    save_checkpoint,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny problems: threads only add contention on a shared machine."""
    nt, nb = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(nt)
    numba.set_num_threads(nb)


@pytest.fixture(scope="module")
def radon():
    return Radon(ParallelBeam(np.linspace(0, np.pi, 8, endpoint=False), 23, 1.0), (16, 16))


def _ellipses(n: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    imgs = [rasterize_ellipses(random_ellipses(5, 7.0, rng), (16, 16), supersample=2)
            for _ in range(n)]  # fmt: skip
    return torch.from_numpy(np.stack(imgs)).float()


@pytest.fixture(scope="module")
def data(radon):
    x = _ellipses(8)
    return TensorDataset(radon(x), x)


def _cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=4, out_dir=str(tmp_path / "run"), progress=False,
                device="cpu", amp="off")  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def _pdunet(radon, seed=0):
    torch.manual_seed(seed)
    return PrimalDualUNet(radon, depth=2, wf=3)


def _lpd(radon, seed=0):
    torch.manual_seed(seed)
    return LearnedPrimalDual(radon, n_iter=2, width=8, opnorm=float(radon.opnorm()))


def _no_time(history):
    return [{k: v for k, v in r.items() if k != "time_s"} for r in history["epochs"]]


# ---------------------------------------------------------------------------------------
# learning


def test_tiny_pdunet_overfits_one_sample(radon, tmp_path):
    x = _ellipses(1, seed=3)
    ds = TensorDataset(radon(x), x)
    cfg = _cfg(tmp_path, epochs=100, batch_size=1, lr=3e-3, scheduler="none",
               checkpoint_every=100)  # fmt: skip
    res = fit(_pdunet(radon), ds, None, cfg)
    losses = [r["train_loss"] for r in res.history["epochs"]]
    assert len(losses) == 100
    # the untrained network returns the FBP; 100 steps on one sample remove most of its error
    assert losses[-1] < losses[0] / 8, (losses[0], losses[-1])
    with torch.no_grad():
        err = float((res.model(ds.tensors[0]) - x).abs().mean())
    assert err < losses[0] / 8


def test_accumulation_equals_the_large_batch(radon, data, tmp_path):
    """2 micro-batches of 4 accumulated == 1 batch of 8 (L1 is a per-sample mean)."""
    a = fit(_lpd(radon), data, None, _cfg(tmp_path / "a", batch_size=4, accumulate=2, lr=1e-2))
    b = fit(_lpd(radon), data, None, _cfg(tmp_path / "b", batch_size=8, lr=1e-2))
    assert a.history["epochs"][-1]["steps"] == b.history["epochs"][-1]["steps"] == 2
    for (k, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values(),
                         strict=True):  # fmt: skip
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=k)
    # and it did train: the weights moved
    assert not torch.equal(a.model.state_dict()["dual.0.0.weight"],
                           _lpd(radon).state_dict()["dual.0.0.weight"])  # fmt: skip


def test_cosine_schedule_and_history(radon, data, tmp_path):
    cfg = _cfg(tmp_path, epochs=4, lr=1e-3, min_lr=1e-4, val_every=2)
    res = fit(_lpd(radon), data, data, cfg)
    h = json.loads((tmp_path / "run" / "history.json").read_text())
    assert _no_time(h) == _no_time(res.history)
    lrs = [r["lr"] for r in h["epochs"]]
    want = [1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    np.testing.assert_allclose(lrs, want, rtol=1e-9)
    assert ["val_loss" in r for r in h["epochs"]] == [False, True, False, True]
    assert all(r["time_s"] > 0 for r in h["epochs"])
    best = h["best"]
    assert best["val_loss"] == min(r["val_loss"] for r in h["epochs"] if "val_loss" in r)
    # best.safetensors holds the weights of that epoch and loads for inference
    meta = read_metadata(tmp_path / "run" / "best.safetensors")
    assert meta["kind"] == "weights" and meta["epoch"] == best["epoch"]
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == cfg.to_dict()


def test_step_schedule_reaches_min_lr(radon, data, tmp_path):
    cfg = _cfg(tmp_path, epochs=2, batch_size=2, scheduler_interval="step", lr=1e-2,
               log_every=1)  # fmt: skip
    res = fit(_lpd(radon), data, None, cfg)
    steps = res.history["steps"]
    assert [s["step"] for s in steps] == list(range(1, 9))
    want = [0.5 * 1e-2 * (1 + math.cos(math.pi * k / 8)) for k in range(1, 9)]
    np.testing.assert_allclose([s["lr"] for s in steps], want, rtol=1e-9, atol=1e-15)


def test_bf16_autocast_on_cpu_trains(radon, data, tmp_path):
    res = fit(_lpd(radon), data, None, _cfg(tmp_path, amp="bf16", epochs=1, lr=1e-2))
    assert math.isfinite(res.history["epochs"][0]["train_loss"])
    assert next(res.model.parameters()).dtype == torch.float32  # master weights stay fp32


def test_max_seconds_stops_after_the_epoch_validates_and_resumes(radon, data, tmp_path):
    """A wall-clock budget ends the run after the epoch that spends it: that epoch is
    validated, last.safetensors is written, and resume = "auto" continues to the end."""
    cfg = _cfg(tmp_path, epochs=5, val_every=10, max_seconds=0.0)
    res = fit(_lpd(radon), data, data, cfg)
    assert res.epochs_done == 1 and [r["epoch"] for r in res.history["epochs"]] == [1]
    assert "val_loss" in res.history["epochs"][0]
    assert res.history["stopped"] == {"epoch": 1, "reason": "max_seconds", "max_seconds": 0.0}
    assert res.last_checkpoint is not None and res.last_checkpoint.exists()
    more = fit(_lpd(radon), data, data, cfg.replace(max_seconds=None, resume="auto"))
    assert [r["epoch"] for r in more.history["epochs"]] == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="max_seconds"):
        _cfg(tmp_path, max_seconds=-1)


def test_fp16_on_cpu_is_refused(radon, data, tmp_path):
    with pytest.raises(ValueError, match="fp16.*CUDA"):
        fit(_lpd(radon), data, None, _cfg(tmp_path, amp="fp16"))


def test_nonfinite_loss_is_reported(radon, data, tmp_path):
    x = data.tensors[1].clone()
    x[3, 0, 0] = float("nan")
    ds = TensorDataset(data.tensors[0], x)
    with pytest.raises(FloatingPointError, match="non-finite loss in epoch 1"):
        fit(_lpd(radon), ds, None, _cfg(tmp_path, epochs=1))


def test_bad_batches_and_shapes(radon, data, tmp_path):
    ds = TensorDataset(data.tensors[0], data.tensors[1][:, :, :8])
    with pytest.raises(ValueError, match=r"prediction has shape \(4, 16, 16\).*\(4, 16, 8\)"):
        fit(_lpd(radon), ds, None, _cfg(tmp_path, epochs=1))
    with pytest.raises(TypeError, match="pair"):
        fit(_lpd(radon), TensorDataset(data.tensors[0]), None, _cfg(tmp_path / "b", epochs=1))


# ---------------------------------------------------------------------------------------
# checkpoints


def _trained_state(tmp_path):
    """A model with BatchNorm buffers, Adam, cosine schedule and GradScaler after 3 steps."""
    torch.manual_seed(0)
    model = UNet(1, 1, depth=2, wf=2)
    opt = torch.optim.Adam(model.parameters(), 1e-3, betas=(0.8, 0.95))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10, eta_min=1e-5)
    scaler = torch.amp.GradScaler("cpu", init_scale=128.0)
    for _ in range(3):
        loss = model(torch.rand(2, 1, 8, 8)).abs().mean()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()
        sched.step()
    return model, opt, sched, scaler


def _fresh():
    torch.manual_seed(1)
    model = UNet(1, 1, depth=2, wf=2)
    opt = torch.optim.Adam(model.parameters(), 5e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 3)
    return model, opt, sched, torch.amp.GradScaler("cpu")


def _assert_same(a, b, where=""):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            _assert_same(u, v, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    model, opt, sched, scaler = _trained_state(tmp_path)
    path = save_checkpoint(tmp_path / "c.safetensors", model, opt, sched, scaler, epoch=3,
                           extra={"note": "x", "vals": [1.5, None]}, model_kwargs={"depth": 2},
                           state={"history": [{"loss": 0.25}]}, rng=True)  # fmt: skip
    after_save = torch.rand(5)  # what the RNG gives next, from the saved state
    m2, o2, s2, sc2 = _fresh()
    info = load_checkpoint(path, m2, o2, s2, sc2, restore_rng=True)
    torch.testing.assert_close(torch.rand(5), after_save, rtol=0, atol=0)
    _assert_same(model.state_dict(), m2.state_dict(), "model")
    _assert_same(opt.state_dict(), o2.state_dict(), "optimizer")
    _assert_same(sched.state_dict(), s2.state_dict(), "scheduler")
    _assert_same(scaler.state_dict(), sc2.state_dict(), "scaler")
    assert info.epoch == 3 and info.kind == "training"
    assert info.extra == {"note": "x", "vals": [1.5, None]}
    assert info.state["history"] == [{"loss": 0.25}]
    meta = read_metadata(path)
    assert meta["model_kwargs"] == {"depth": 2} and meta["model_class"] == "UNet"
    # the model's tensors sit under their own names: a plain safetensors state dict
    own = load_file(str(path))
    assert all(torch.equal(own[k], v) for k, v in model.state_dict().items())
    # weights-only load and weights-only files
    m3, *_ = _fresh()
    load_weights(path, m3)
    _assert_same(model.state_dict(), m3.state_dict())
    w = save_checkpoint(tmp_path / "w.safetensors", model, epoch=3)
    assert set(load_file(str(w))) == set(model.state_dict())
    assert read_metadata(w)["kind"] == "weights"
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        load_checkpoint(w, m3, _fresh()[1])


def test_checkpoint_errors_name_the_problem(tmp_path):
    model, *_ = _trained_state(tmp_path)
    path = save_checkpoint(tmp_path / "c.safetensors", model)
    # shape mismatch: key and both shapes
    other = UNet(1, 1, depth=2, wf=3)
    with pytest.raises(CheckpointError,
                       match=r"shape mismatch for 'down.0.0.weight': file has \(4, 1, 3, 3\), "
                             r"model has \(8, 1, 3, 3\)"):  # fmt: skip
        load_weights(path, other)
    # missing and unexpected keys
    with pytest.raises(CheckpointError, match=r"missing keys.*'down.2.0.weight'"):
        load_weights(path, UNet(1, 1, depth=3, wf=2))
    with pytest.raises(CheckpointError, match=r"unexpected keys.*'down.1.0.weight'"):
        load_weights(path, UNet(1, 1, depth=1, wf=2))
    # corrupt and truncated files, and a missing one
    raw = path.read_bytes()
    bad = tmp_path / "garbage.safetensors"
    bad.write_bytes(b"\x13\x00\x00\x00\x00\x00\x00\x00not a json header!!" + raw[40:])
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(raw[: len(raw) // 2])
    for p in (bad, trunc):
        with pytest.raises(CheckpointError, match=f"{p.name} is not a readable safetensors"):
            load_weights(p, model)
    with pytest.raises(FileNotFoundError, match="nope.safetensors does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors", model)
    # nothing half-written is left behind by a failing save
    with pytest.raises(TypeError, match="cannot store object"):
        save_checkpoint(tmp_path / "x.safetensors", model, state={"bad": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c.safetensors", "garbage.safetensors", "trunc.safetensors"]  # fmt: skip


# ---------------------------------------------------------------------------------------
# resume


class _StopAt:
    def __init__(self, epoch):
        self.epoch = epoch

    def __call__(self, trainer, record):
        if record["epoch"] == self.epoch:
            trainer.should_stop = True


def test_resume_equals_the_straight_run(radon, data, tmp_path):
    """4 epochs straight == 2 epochs, stop, resume for 2 more: same weights, optimizer,
    history (PD-UNet with BatchNorm, shuffled batches, cosine schedule, gradient clipping)."""
    kw = dict(epochs=4, batch_size=3, lr=3e-3, grad_clip=0.5, val_every=1)
    straight = fit(_pdunet(radon), data, data, _cfg(tmp_path / "a", **kw))
    first = fit(_pdunet(radon), data, data, _cfg(tmp_path / "b", **kw), callbacks=[_StopAt(2)])
    assert first.epochs_done == 2 and len(first.history["epochs"]) == 2
    assert read_metadata(tmp_path / "b" / "run" / "last.safetensors")["epoch"] == 2
    # a fresh process would build the model anew: other initial weights, overwritten on resume
    second = fit(_pdunet(radon, seed=7), data, data, _cfg(tmp_path / "b", resume="auto", **kw))
    assert second.epochs_done == 4
    for k, v in straight.model.state_dict().items():
        torch.testing.assert_close(second.model.state_dict()[k], v, rtol=0, atol=0, msg=k)
    assert _no_time(second.history) == _no_time(straight.history)
    assert second.history["best"] == straight.history["best"]
    # the saved training states agree too
    a = load_checkpoint(tmp_path / "a" / "run" / "last.safetensors")
    b = load_checkpoint(tmp_path / "b" / "run" / "last.safetensors")
    _assert_same(a.state["optimizer"], b.state["optimizer"], "optimizer")
    _assert_same(a.state["scheduler"], b.state["scheduler"], "scheduler")
    # resuming a finished run trains no further
    again = fit(_pdunet(radon), data, data, _cfg(tmp_path / "b", resume="auto", **kw))
    assert again.epochs_done == 4 and len(again.history["epochs"]) == 4


def test_out_dir_is_not_clobbered(radon, data, tmp_path):
    fit(_lpd(radon), data, None, _cfg(tmp_path, epochs=1))
    with pytest.raises(FileExistsError, match="already holds a run"):
        fit(_lpd(radon), data, None, _cfg(tmp_path, epochs=1))
    fit(_lpd(radon), data, None, _cfg(tmp_path, epochs=1, overwrite=True))
    with pytest.raises(FileNotFoundError, match="resume checkpoint"):
        fit(_lpd(radon), data, None, _cfg(tmp_path, resume=str(tmp_path / "none.safetensors")))
    weights = save_checkpoint(tmp_path / "w.safetensors", _lpd(radon))
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        fit(_lpd(radon), data, None, _cfg(tmp_path, resume=str(weights)))


# ---------------------------------------------------------------------------------------
# configuration


def test_config_from_toml_json_and_overrides(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text(
        'epochs = 5\nlr = 3e-4\nbetas = [0.9, 0.99]\namp = "bf16"\nout_dir = "runs/x"\n'
        '[model]\nname = "pdunet"\ndepth = 2\n[data]\ntask = "ct"\nsparsity = 16\n'
    )
    cfg = TrainConfig.from_file(toml, {"epochs": 3, "model.depth": 3, "data.size": 32})
    assert (cfg.epochs, cfg.lr, cfg.betas, cfg.amp) == (3, 3e-4, (0.9, 0.99), "bf16")
    assert cfg.model == {"name": "pdunet", "depth": 3}
    assert cfg.data == {"task": "ct", "sparsity": 16, "size": 32}
    assert cfg.batch_size == TrainConfig().batch_size  # defaults fill the rest
    js = tmp_path / "c.json"
    cfg.save(js)
    assert TrainConfig.from_file(js) == cfg
    assert parse_override("lr=1e-4") == ("lr", 1e-4)
    assert parse_override("betas=[0.5, 0.9]") == ("betas", [0.5, 0.9])
    assert parse_override("out_dir=runs/a b") == ("out_dir", "runs/a b")
    assert parse_override("progress=false") == ("progress", False)


@pytest.mark.parametrize(
    "text, match",
    [
        ("epoch = 3", r"unknown setting\(s\) \['epoch'\]"),
        ("epochs = 0", "epochs must be an integer >= 1, got 0"),
        ('amp = "fp8"', r"amp must be one of \['auto', 'off', 'bf16', 'fp16'\], got 'fp8'"),
        ("lr = -1.0", "lr must be a finite number >= 0.0"),
        ("betas = [0.9]", "betas must be two numbers"),
        ('loss = "huber"', "loss must be one of"),
        ("epochs = [", "is not valid TOML"),
    ],
)
def test_config_errors(tmp_path, text, match):
    p = tmp_path / "bad.toml"
    p.write_text(text + "\n")
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_file(p)


def test_example_configs_parse():
    files = sorted(CONFIGS.glob("*.toml"))
    names = {p.stem for p in files}
    assert {"pdunet-ct-sparse16", "lpd-ct-sparse16", "fbpconvnet-ct-sparse16",
            "pdunet-mri-radial16", "smoke"} <= names  # fmt: skip
    from mrct.recon.datasets import _import_task
    from mrct.recon.train import _model_class

    for p in files:
        cfg = TrainConfig.from_file(p)
        assert isinstance(_model_class(cfg.model["name"]), type), p  # the model resolves
        task = cfg.data.get("task")
        assert task in ("ct", "mri", "sr") or callable(_import_task(task)), p
    paper = TrainConfig.from_file(CONFIGS / "pdunet-ct-sparse16.toml")
    assert (paper.lr, paper.loss, paper.scheduler, paper.epochs) == (1e-3, "l1", "cosine", 151)
    assert paper.batch_size * paper.accumulate == 32


# ---------------------------------------------------------------------------------------
# multi-process training and the command line


def _load_worker():
    spec = importlib.util.spec_from_file_location("ddp_worker", ROOT / "tests" / "ddp_worker.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ddp_two_cpu_processes_match_one_process(tmp_path):
    """torchrun, 2 processes on gloo, batch 2 each == 1 process with batch 4."""
    worker = _load_worker()
    # the same training in one process with the combined batch (this also fills Numba's
    # kernel cache, so the two workers do not compile the same kernels at once)
    ds, make_model = worker.problem()
    ref = fit(make_model(), ds, ds, worker.config(tmp_path / "ref", 2 * worker.BATCH_PER_RANK))
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1)]
    metas = [read_metadata(tmp_path / f"rank{r}.safetensors") for r in (0, 1)]
    assert [(m["rank"], m["world_size"]) for m in metas] == [("0", "2"), ("1", "2")]
    for k in ranks[0]:  # DDP keeps the replicas identical
        assert torch.equal(ranks[0][k], ranks[1][k]), k
    run = tmp_path / "run"
    assert (run / "last.safetensors").is_file() and (run / "best.safetensors").is_file()
    last = load_file(str(run / "last.safetensors"))
    assert all(torch.equal(last[k], v) for k, v in ranks[0].items())
    hist = json.loads((run / "history.json").read_text())
    assert len(hist["epochs"]) == worker.EPOCHS
    assert hist["epochs"][-1]["steps"] == worker.EPOCHS * worker.N_SAMPLES // 4
    for k, v in ref.model.state_dict().items():
        torch.testing.assert_close(ranks[0][k], v, rtol=1e-4, atol=1e-6, msg=k)
    for a, b in zip(hist["epochs"], ref.history["epochs"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    print(f"DDP smoke test: {elapsed:.1f} s for torchrun")


runner = CliRunner()


def test_cli_train_help():
    res = runner.invoke(app, ["train", "--help"])
    assert res.exit_code == 0, res.output
    for opt in ("CONFIG", "--epochs", "--out", "--resume", "--device", "--set", "torchrun"):
        assert opt in res.output, opt


def test_cli_train_smoke_config(tmp_path):
    pytest.importorskip("mrct.recon.datasets")
    out = tmp_path / "smoke"
    args = ["train", str(CONFIGS / "smoke.toml"), "--out", str(out), "--epochs", "1",
            "--no-progress", "--set", "batch_size=4"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
    assert "last.safetensors" in res.output and "epoch 1/1: train_loss" in res.output
    assert json.loads((out / "config.json").read_text())["batch_size"] == 4
    meta = read_metadata(out / "best.safetensors")
    assert meta["model_kwargs"]["img_scale"] > 0 and meta["extra"]["model"] == "pdunet"
    # resume a finished run: nothing to do, and it says so
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
    assert "already" in res.output
    res = runner.invoke(app, args)  # a fresh run into a used folder is refused, clearly
    assert res.exit_code == 2 and "already holds a run" in res.output, res.output
