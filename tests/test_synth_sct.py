"""Synthetic CT: paired-data simulation, training through the mrct trainer, the UNet baseline,
the ``mrct synth sct`` CLI (NIfTI in/out, affines, errors) and the results script."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mrct.cli import app
from mrct.metrics import synthrad_mae
from mrct.synth import ConditionalDiffusion, SCTUNet
from mrct.synth.sct_data import (
    SCTDataset,
    body_mask,
    chest_phantom,
    hu_to_unit,
    sct_pairs,
    simulate_cbct,
    simulate_mri,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(block_out_channels=(16, 32), norm_num_groups=8, num_train_timesteps=100)


# ------------------------------------------------------------------------------ data


def test_phantom_and_body_mask():
    hu, lab = chest_phantom(4, 32, seed=0)
    assert hu.shape == lab.shape == (4, 32, 32) and hu.dtype == np.float32
    m = body_mask(hu)
    assert m.dtype == bool and m[:, 16, 16].all() and not m[:, 0, 0].any()
    assert (hu[m] < -700).any() and (hu[m] > 500).any()  # lungs and bone inside the body
    assert m.sum() > (hu > -400).sum()  # lungs filled in


def test_cbct_simulation_is_degraded_but_close():
    hu, _ = chest_phantom(8, 32, seed=1)
    m = body_mask(hu)
    clean = simulate_cbct(hu, 350 / 32, truncation=1.3, scatter_fraction=0.0,
                          photons=float("inf"))  # fmt: skip
    dirty = simulate_cbct(hu, 350 / 32, seed=0)
    assert clean.shape == dirty.shape == hu.shape
    mae_clean, mae_dirty = synthrad_mae(clean, hu, m), synthrad_mae(dirty, hu, m)
    assert mae_clean < mae_dirty < 500
    assert mae_clean < 150
    # seeds change the noise
    assert not np.allclose(dirty, simulate_cbct(hu, 350 / 32, seed=1))


def test_mri_simulation_contrast():
    hu, lab = chest_phantom(4, 32, seed=2)
    m = body_mask(hu)
    mr = simulate_mri(hu, lab, seed=0, noise=0.0, bias=0.0, blur=0.0, jitter=0.0)
    fat = m & (hu > -400) & (hu < -30)
    assert mr[fat].mean() > mr[m & (hu > -30) & (hu < 150)].mean()  # fat bright
    assert mr[m & (hu > 400)].mean() < mr[fat].mean()  # cortical bone dark
    assert mr[~m].max() < 1e-6  # air
    a, b = simulate_mri(hu, lab, seed=0), simulate_mri(hu, lab, seed=1)
    assert not np.allclose(a, b)  # randomised contrast, bias and noise


@pytest.mark.parametrize("task", ["cbct", "mri"])
def test_pairs_and_dataset_phantom(task):
    p = sct_pairs(task, "test", size=32, max_slices=6, source="phantom", realisations=2)
    assert p.condition.shape == p.target.shape == p.mask.shape == (12, 32, 32)
    ds = SCTDataset(p, context=1)
    c, t = ds[0]
    assert c.shape == (3, 32, 32) and t.shape == (1, 32, 32)
    assert torch.allclose(t[0], hu_to_unit(torch.from_numpy(p.target[0])))
    # splits differ (different slab / realisation)
    q = sct_pairs(task, "val", size=32, max_slices=6, source="phantom")
    assert not np.allclose(q.target[:6], p.target[:6])


def test_pairs_from_shared_chest_ct():
    from mrct.data.shared import require_shared_data

    require_shared_data()
    p = sct_pairs("cbct", "test", size=32, max_slices=4, source="chest_ct")
    assert p.info["source"] == "chest_ct" and p.target.shape == (4, 32, 32)
    assert p.info["slice_thickness"] == pytest.approx(2.5)
    assert 0.2 < p.mask.mean() < 0.9


# ------------------------------------------------------------------------------ training


def _config(tmp_path, model: dict, task: str, name: str) -> Path:
    import tomllib  # noqa: F401 - the configs are TOML

    lines = ["epochs = 1", "batch_size = 4", "lr = 1e-3", "progress = false",
             f'out_dir = "{tmp_path / name}"', "[model]"]  # fmt: skip
    for k, v in model.items():
        if isinstance(v, dict):  # TOML inline table
            v = "{ " + ", ".join(f"{a} = {json.dumps(b)}" for a, b in v.items()) + " }"
            lines.append(f"{k} = {v}")
        else:
            lines.append(f"{k} = {json.dumps(v)}")
    lines += ["[data]", 'task = "mrct.synth.sct_data:make_sct_task"', f'modality = "{task}"',
              "size = 16", 'source = "phantom"',
              "max_slices = 4", "val_slices = 2", "context = 1"]  # fmt: skip
    p = tmp_path / f"{name}.toml"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_train_diffusion_and_unet_with_mrct_trainer(tmp_path):
    from mrct.recon import train_from_config
    from mrct.synth.sct import load_sct_model

    diff = dict(name="mrct.synth:ConditionalDiffusion", image_size=16, cond_channels=3,
                context=1, ema_decay=0.9, info={"task": "cbct"},
                **{k: list(v) if isinstance(v, tuple) else v for k, v in TINY.items()})  # fmt: skip
    r = train_from_config(_config(tmp_path, diff, "cbct", "diff"))
    assert isinstance(r.model, ConditionalDiffusion)
    assert int(r.model.ema_steps) == r.history["epochs"][-1]["steps"] > 0  # EMA hook ran
    assert np.isfinite(r.history["epochs"][-1]["val_loss"])
    m = load_sct_model(r.last_checkpoint, "cbct")
    assert isinstance(m, ConditionalDiffusion) and m.context == 1
    unet = dict(name="mrct.synth:SCTUNet", cond_channels=3, context=1, depth=2, wf=3, residual=True,
                image_size=16, info={"task": "mri"})  # fmt: skip
    r2 = train_from_config(_config(tmp_path, unet, "mri", "unet"))
    assert isinstance(r2.model, SCTUNet)
    m2 = load_sct_model(r2.best_checkpoint, "mri")
    with pytest.raises(ValueError, match="task 'mri'"):
        load_sct_model(r2.best_checkpoint, "cbct")
    out = m2.sample_volume(torch.zeros(3, 16, 16))
    assert out.shape == (3, 1, 16, 16)


def test_shipped_configs_parse():
    from mrct.training import TrainConfig

    for name in ("sct-cbct-diffusion", "sct-mri-diffusion", "sct-cbct-unet", "sct-mri-unet"):
        cfg = TrainConfig.from_file(ROOT / "configs" / f"{name}.toml")
        assert cfg.model["name"] in ("mrct.synth:ConditionalDiffusion", "mrct.synth:SCTUNet")
        assert cfg.data["task"] == "mrct.synth.sct_data:make_sct_task"
        assert cfg.data["modality"] in ("cbct", "mri")


# ------------------------------------------------------------------------------ shipped weights

SHIPPED = [(t, m) for t in ("cbct", "mri") for m in ("diffusion", "unet")]


@pytest.mark.parametrize(("task", "method"), SHIPPED)
def test_shipped_weights_are_small_and_load(task, method):
    from mrct.synth.sct import load_sct_model, shipped_model

    path = shipped_model(task, method)
    assert path is not None, f"run `python scripts/train_sct.py --ship` ({task}, {method})"
    assert path.stat().st_size < 20e6
    model = load_sct_model(path, task)
    assert isinstance(model, ConditionalDiffusion if method == "diffusion" else SCTUNet)
    assert model.info["task"] == task and model.context == 1
    with pytest.raises(ValueError, match="method"):
        shipped_model(task, "gan")


@pytest.mark.data
@pytest.mark.parametrize(("task", "method"), SHIPPED)
def test_shipped_model_beats_the_baseline_on_held_out_slices(task, method):
    """The shipped models on 4 held-out chest slices (106-132 range) beat the untouched CBCT
    (CBCT -> CT) or water bulk density in the body (MRI -> CT) in MAE inside the body."""
    from mrct.data import require_shared_data
    from mrct.synth.sct import load_sct_model, shipped_model

    require_shared_data()
    model = load_sct_model(shipped_model(task, method), task)
    pairs = sct_pairs(task, "test", size=model.config["image_size"], max_slices=4,
                      source="chest_ct")  # fmt: skip
    cond = pairs.condition_units()[:, 0]
    with torch.no_grad():
        hu = model.sample_volume(cond, steps=20, seed=0)[:, 0].numpy() * 1000.0
    if task == "cbct":
        baseline = pairs.condition
    else:
        baseline = np.where(pairs.mask > 0, 0.0, -1024.0)
    mae, mae0 = synthrad_mae(hu, pairs.target, pairs.mask), synthrad_mae(baseline, pairs.target,
                                                                          pairs.mask)  # fmt: skip
    assert mae < mae0, (task, method, mae, mae0)


# ------------------------------------------------------------------------------ CLI

runner = CliRunner()


@pytest.fixture
def tiny_model(tmp_path):
    torch.manual_seed(0)
    m = ConditionalDiffusion(image_size=16, cond_channels=3, context=1, info={"task": "cbct"},
                             **TINY)  # fmt: skip
    return m.save(tmp_path / "tiny.safetensors")


def _nifti(path, data, affine=None):
    affine = np.diag([0.8, 0.8, 2.5, 1.0]) if affine is None else affine
    affine = affine.copy()
    affine[:3, 3] = [-10.0, 20.0, 5.0]
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), str(path))
    return path


def test_cli_help():
    r = runner.invoke(app, ["synth", "sct", "--help"])
    assert r.exit_code == 0
    for opt in ("--input", "--task", "--model", "--steps", "--seed", "--out"):
        assert opt in r.output
    assert runner.invoke(app, ["synth", "--help"]).exit_code == 0


def test_cli_tiny_run_keeps_affine(tmp_path, tiny_model):
    hu, _ = chest_phantom(3, 20, seed=0)
    src = _nifti(tmp_path / "cbct.nii.gz", hu.transpose(1, 2, 0))  # (X, Y, Z)
    out = tmp_path / "sct.nii.gz"
    args = ["synth", "sct", "--input", str(src), "--task", "cbct", "-o", str(out),
            "--model", str(tiny_model), "--steps", "2", "--seed", "1"]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    a, b = nib.load(str(src)), nib.load(str(out))
    assert b.shape == a.shape
    np.testing.assert_allclose(b.affine, a.affine)
    assert b.get_data_dtype() == np.float32
    first = b.get_fdata()
    assert runner.invoke(app, args).exit_code == 2  # the output exists: needs --force
    args.append("--force")
    assert runner.invoke(app, args).exit_code == 0  # same seed: same output
    np.testing.assert_array_equal(nib.load(str(out)).get_fdata(), first)
    # with a mask on the same grid, outside is -1024
    mask = _nifti(tmp_path / "mask.nii.gz", (hu > -400).transpose(1, 2, 0).astype(np.float32))
    r = runner.invoke(app, args + ["--mask", str(mask)])
    assert r.exit_code == 0, r.output
    res = nib.load(str(out)).get_fdata()
    assert np.all(res[(hu <= -400).transpose(1, 2, 0)] == -1024)


@pytest.mark.parametrize("method", ["unet", "diffusion"])
def test_cli_uses_the_shipped_model(tmp_path, method):
    """Without --model, `mrct synth sct` runs the shipped model of --method (unet by default);
    a CBCT phantom on another grid is resampled to 64 x 64 and back, affine kept."""
    hu, _ = chest_phantom(3, 32, seed=1)
    aff = np.diag([2.0, 2.0, 2.5, 1.0])
    src = _nifti(tmp_path / "cbct.nii.gz", hu.transpose(1, 2, 0), aff)
    out = tmp_path / "sct.nii.gz"
    args = ["synth", "sct", "--input", str(src), "--task", "cbct", "-o", str(out)]
    if method == "diffusion":
        args += ["--method", "diffusion", "--steps", "3"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert f"sct-cbct-{method}.safetensors" in r.output
    img = nib.load(str(out))
    res = img.get_fdata()
    assert res.shape == (32, 32, 3) and np.isfinite(res).all()
    assert np.allclose(img.affine, nib.load(str(src)).affine)
    body = hu.transpose(1, 2, 0) > -400
    assert res[body].mean() > res[~body].mean() + 300  # a CT-like body, not noise


def test_cli_errors(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setattr("mrct.synth.sct.WEIGHTS", tmp_path / "no_weights")
    hu, _ = chest_phantom(3, 16, seed=0)
    src = _nifti(tmp_path / "cbct.nii.gz", hu.transpose(1, 2, 0))
    out = str(tmp_path / "sct.nii.gz")
    base = ["synth", "sct", "--input", str(src), "-o", out]
    # no model given and none shipped: name the option
    r = runner.invoke(app, base + ["--task", "cbct"])
    assert r.exit_code == 2 and "--model" in r.output
    # a mask on another grid
    bad_aff = _nifti(tmp_path / "m1.nii.gz", np.ones((16, 16, 3)), np.diag([1.0, 0.8, 2.5, 1.0]))
    r = runner.invoke(app, base + ["--task", "cbct", "--model", str(tiny_model), "--mask",
                                   str(bad_aff)])  # fmt: skip
    assert r.exit_code == 2 and "affine" in r.output
    bad_shape = _nifti(tmp_path / "m2.nii.gz", np.ones((16, 16, 4)))
    r = runner.invoke(app, base + ["--task", "cbct", "--model", str(tiny_model), "--mask",
                                   str(bad_shape)])  # fmt: skip
    assert r.exit_code == 2 and "shape" in r.output
    # model for the other task, unknown task, missing input, wrong suffix
    r = runner.invoke(app, base + ["--task", "mri", "--model", str(tiny_model)])
    assert r.exit_code == 2 and "task 'cbct'" in r.output
    r = runner.invoke(app, base + ["--task", "pet", "--model", str(tiny_model)])
    assert r.exit_code == 2 and "task" in r.output
    r = runner.invoke(app, ["synth", "sct", "--input", str(tmp_path / "none.nii.gz"), "--task",
                            "cbct", "-o", out, "--model", str(tiny_model)])  # fmt: skip
    assert r.exit_code == 2 and "does not exist" in r.output
    garbage = tmp_path / "garbage.nii"
    garbage.write_bytes(b"not a nifti file" * 40)
    r = runner.invoke(app, ["synth", "sct", "--input", str(garbage), "--task", "cbct", "-o", out,
                            "--model", str(tiny_model)])  # fmt: skip
    assert r.exit_code == 2 and "not a readable NIfTI" in r.output
    r = runner.invoke(app, base[:-1] + [str(tmp_path / "x.npy"), "--task", "cbct", "--model",
                                        str(tiny_model)])  # fmt: skip
    assert r.exit_code == 2 and ".nii" in r.output


# ------------------------------------------------------------------------------ scripts


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_and_results_scripts_smoke(tmp_path):
    train = _script("train_sct")
    results = _script("sct_results")
    runs = tmp_path / "runs"
    train.main(["--out", str(runs), "--size", "16", "--source", "phantom", "--slices", "4",
                "--diffusion-steps", "3", "--unet-steps", "3", "--tiny"])  # fmt: skip
    for task in ("cbct", "mri"):
        for kind in ("diffusion", "unet"):
            assert (runs / f"sct-{task}-{kind}.safetensors").is_file()
    doc = tmp_path / "results.md"
    doc.write_text("# Results\n\nother text\n")
    results.main(
        [
            "--runs",
            str(runs),
            "--size",
            "16",
            "--source",
            "phantom",
            "--slices",
            "3",
            "--steps",
            "2",
            "--doc",
            str(doc),
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    text = doc.read_text()
    assert text.startswith("# Results\n\nother text\n")
    assert "<!-- BEGIN synth -->" in text and "<!-- END synth -->" in text
    assert "SynthRAD2023" in text and "CBCT" in text
    rows = json.loads((tmp_path / "r.json").read_text())
    assert {r["task"] for r in rows} == {"cbct", "mri"}
    # rewriting replaces the block instead of appending a second one
    results.main(["--runs", str(runs), "--size", "16", "--source", "phantom", "--slices", "3",
                  "--steps", "2", "--doc", str(doc)])  # fmt: skip
    assert doc.read_text().count("<!-- BEGIN synth -->") == 1
