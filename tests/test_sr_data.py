"""The dynamic-series simulator and the SR training task (mrct train with an "sr" config)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mrct.cli import app
from mrct.data import (
    breathing_signal,
    load_brain_mri,
    require_shared_data,
    shepp_logan,
    shepp_logan_3d,
    simulate_dynamic_series,
)
from mrct.physics import KSpaceTruncation
from mrct.recon import DDoSUNet, SRUNet, load_sr_model
from mrct.recon.sr.data import make_sr_task, source_spacing, sr_task

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _image(size=48):
    return shepp_logan((size, size)).astype(np.float64)


def test_simulator_is_seeded_and_deterministic():
    a = simulate_dynamic_series(_image(), 6, fraction=0.04, seed=3)
    b = simulate_dynamic_series(_image(), 6, fraction=0.04, seed=3)
    c = simulate_dynamic_series(_image(), 6, fraction=0.04, seed=4)
    for name in ("planning", "series", "breathing", "displacement", "lowres", "lowres_interp"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.series, c.series)
    assert not np.array_equal(a.breathing, c.breathing)


def test_simulator_shapes_and_reference_phase():
    img = _image()
    sim = simulate_dynamic_series(img, 5, fraction=0.0625, seed=0, noise=0.0)
    assert sim.n_frames == 5
    assert sim.series.shape == (5, 48, 48) and sim.series.dtype == np.float32
    assert sim.displacement.shape == (5, 2, 48, 48)
    np.testing.assert_array_equal(sim.planning, img.astype(np.float32))  # reference phase
    op = KSpaceTruncation((48, 48), 0.0625)
    assert sim.lowres.shape == (5, *op.lowres_shape)
    assert sim.lowres_interp.shape == (5, 48, 48)
    # lowres is exactly |KSpaceTruncation.degrade| of the ground-truth frames
    ref = op.degrade(torch.from_numpy(sim.series.astype(np.float64))).abs().float().numpy()
    np.testing.assert_allclose(sim.lowres, ref, atol=1e-6)
    # a frame at exhale (s = 0) is the planning scan; motion only where s > 0
    still = simulate_dynamic_series(img, 3, amplitude_mm=(0.0, 0.0), seed=0)
    np.testing.assert_allclose(still.series, np.broadcast_to(img, (3, 48, 48)), atol=1e-5)


def test_motion_is_smooth_and_respiration_like():
    sim = simulate_dynamic_series(_image(64), 12, seed=1, frame_time=0.4, period=4.0,
                                  amplitude_mm=(10.0, 4.0), spacing=2.0)  # fmt: skip
    d = sim.displacement.astype(np.float64)
    assert np.all((sim.breathing >= 0) & (sim.breathing <= 1))
    # SI component larger than AP, both follow the breathing signal
    assert np.abs(d[:, 0]).max() > np.abs(d[:, 1]).max() > 0
    peak_px = np.abs(d[:, 0]).max()
    assert peak_px <= 10.0 / 2.0 * (1 + 0.15) + 1e-9  # amplitude mm / spacing, with jitter
    # spatially smooth: gradients far below 1 (no folding), temporally smooth: steps bounded
    grad = max(np.abs(np.diff(d, axis=a)).max() for a in (2, 3))
    assert grad < 0.2
    step = np.abs(np.diff(d, axis=0)).max()
    assert step < 0.6 * peak_px
    # the displacement field is the breathing signal times a fixed field
    ratio = d[:, 0] / np.maximum(sim.breathing[:, None, None], 1e-6)
    big = sim.breathing > 0.2
    np.testing.assert_allclose(ratio[big], np.broadcast_to(ratio[big][0], ratio[big].shape),
                               rtol=1e-4)  # fmt: skip
    # Lujan's signal: rests at exhale (s near 0 longer than near 1)
    s = breathing_signal(np.linspace(0, 4, 400), period=4.0)
    assert (s < 0.1).mean() > (s > 0.9).mean()


def test_simulator_3d_volume_motion_along_chosen_axes():
    vol = shepp_logan_3d((8, 24, 24))
    sim = simulate_dynamic_series(vol, 3, fraction=0.25, seed=0, si_axis=0, ap_axis=1)
    assert sim.series.shape == (3, 8, 24, 24)
    assert sim.lowres.shape == (3, 8, 12, 12)
    assert sim.lowres_interp.shape == (3, 8, 24, 24)


def test_simulator_errors():
    with pytest.raises(ValueError, match="2D"):
        simulate_dynamic_series(np.zeros(10), 3)
    with pytest.raises(ValueError, match="n_frames"):
        simulate_dynamic_series(_image(), 0)
    with pytest.raises(ValueError, match="differ"):
        simulate_dynamic_series(_image(), 3, si_axis=1, ap_axis=1)
    with pytest.raises(ValueError, match="fraction"):
        simulate_dynamic_series(_image(), 3, fraction=2.0)


@pytest.mark.data
def test_simulator_on_the_real_brain():
    require_shared_data()
    sag = load_brain_mri().array[:, :, 60] / 255.0  # (S, P) sagittal slice
    sim = simulate_dynamic_series(sag, 4, fraction=0.04, seed=0)
    assert sim.series.shape == (4, 189, 233)
    assert sim.lowres.shape == (4, 38, 47)
    moved = np.abs(sim.series - sim.planning).max(axis=(1, 2))
    assert (moved[sim.breathing > 0.3] > 0.05).all()


def test_sr_task_pairs_use_the_previous_ground_truth_as_prior():
    task = sr_task(0.04, source="phantom", size=24, n_frames=3, max_slices=2,
                   splits=("train",))  # fmt: skip
    ds = task.train
    assert len(ds) == 6
    x, y = ds[0]
    assert x.shape == (2, 24, 24) and y.shape == (1, 24, 24)
    spacing = source_spacing("phantom", 2, 24)  # the task's default: a 256 mm field of view
    sim = simulate_dynamic_series(
        ds.inputs[0, 0].numpy(), 3, fraction=0.04, seed=0, spacing=spacing
    )
    np.testing.assert_allclose(ds.inputs[0:3, 1].numpy(), sim.lowres_interp, atol=1e-6)
    np.testing.assert_allclose(ds.targets[0:3, 0].numpy(), sim.series, atol=1e-6)
    np.testing.assert_allclose(ds.inputs[1, 0].numpy(), sim.series[0], atol=1e-6)  # t - 1
    np.testing.assert_allclose(ds.inputs[2, 0].numpy(), sim.series[1], atol=1e-6)
    single = sr_task(0.04, prior=False, source="phantom", size=24, n_frames=3, max_slices=2,
                     splits=("train",))  # fmt: skip
    assert single.train.inputs.shape == (6, 1, 24, 24)


def test_make_sr_task_checks_model_and_prior():
    data = {"source": "phantom", "size": 16, "n_frames": 2, "max_slices": 1}
    _, train, val, extra = make_sr_task(data, {"model": {"name": "srunet"}})
    assert train.inputs.shape[1] == 1 and extra["dims"] == 2
    _, train, _, _ = make_sr_task(data, {"model": {"name": "ddos"}})
    assert train.inputs.shape[1] == 2
    with pytest.raises(ValueError, match="prior"):
        make_sr_task({**data, "prior": True}, {"model": {"name": "srunet"}})


def test_mrct_train_ddos_smoke_config(tmp_path):
    """`mrct train configs/ddos-smoke.toml` trains a few steps and writes loadable weights."""
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(CONFIGS / "ddos-smoke.toml"), "--out",
                                      str(out), "--no-progress", "--epochs", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    hist = json.loads((out / "history.json").read_text())
    assert hist["epochs"][0]["train_loss"] > 0
    model = load_sr_model(out / "best.safetensors")
    assert isinstance(model, DDoSUNet) and model.dims == 2 and model.features == 8
    # the same task with the UNet SR model, one input channel
    result = CliRunner().invoke(app, ["train", str(CONFIGS / "ddos-smoke.toml"), "--out",
                                      str(tmp_path / "unet"), "--no-progress", "--epochs", "1",
                                      "--set", "model.name=\"srunet\""])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert isinstance(load_sr_model(tmp_path / "unet" / "best.safetensors"), SRUNet)


@pytest.mark.parametrize("name", ["ddos-smoke.toml", "ddos-brain-2d.toml",
                                  "sr-unet-brain-2d.toml", "ddos-3d.toml"])  # fmt: skip
def test_sr_configs_parse(name):
    from mrct.recon.train import _model_class
    from mrct.training import TrainConfig

    cfg = TrainConfig.from_file(CONFIGS / name)
    assert cfg.data["task"] == "sr"
    assert _model_class(cfg.model["name"]) in (DDoSUNet, SRUNet)
