"""Lesion-focused diffusion (mrct.synth.lesion): RePaint keeps the background bit-identical,
seeds, histograms and presets, the mask model, checkpoints and the training script."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrct.data.lesions import insert_nodule
from mrct.synth.lesion import (
    LesionDiffusion,
    MaskDiffusion,
    histogram_presets,
    hu_to_unit,
    inpaint_lesion,
    lesion_crops,
    lesion_histogram,
    lesion_mask,
    make_lesion_task,
    perturb_histogram,
    repaint_schedule,
    unit_to_hu,
)
from mrct.synth.lesion.data import CHEST_SPACING, synthetic_host

SMALL = dict(steps=8, jump_length=2, jump_n_sample=2)


@pytest.fixture(scope="module")
def host():
    ct, lungs = synthetic_host((24, 64, 64), seed=1)
    r = insert_nodule(ct, lungs, center=(12, 32, 32), diameter_mm=9, kind="part-solid",
                      spacing=CHEST_SPACING, seed=0)  # fmt: skip
    return ct, lungs, r


@pytest.fixture(scope="module")
def crops(host):
    ct, lungs, _ = host
    return lesion_crops(6, dims=2, host=(ct, lungs, CHEST_SPACING), seed=0, diameters=(4, 12))


def _model(dims, crops=None, **kw):
    torch.manual_seed(0)
    info = {}
    if crops is not None:
        info["presets"] = histogram_presets(crops.hists, crops.kinds)
    return LesionDiffusion(dims=dims, channels=(8, 16), info=info, **kw).eval()


def test_repaint_schedule():
    s = repaint_schedule(10, 1, 1)
    assert s == list(range(9, -2, -1))
    s = repaint_schedule(300, 5, 5)
    assert s[0] == 299 and s[-1] == -1
    down = sum(1 for a, b in zip(s[:-1], s[1:], strict=True) if b < a)
    assert down == 300 + 59 * 4 * 5  # every jump is walked down again
    with pytest.raises(ValueError):
        repaint_schedule(10, 0, 1)


def test_units_and_histogram():
    hu = np.array([-2000.0, -1000.0, -300.0, 400.0, 900.0])
    u = hu_to_unit(hu)
    np.testing.assert_allclose(u, [-1, -1, 0, 1, 1])
    np.testing.assert_allclose(unit_to_hu(u)[1:4], hu[1:4], atol=1e-3)
    img = torch.linspace(-1, 1, 64).reshape(1, 1, 8, 8)
    m = torch.zeros(1, 2, 8, 8)
    m[0, 0, :4] = 1
    h = lesion_histogram(img, m)
    assert h.shape == (1, 32)
    assert float(h[0, :16].sum()) == pytest.approx(1.0) and float(h[0, 16:].sum()) == 0
    p = perturb_histogram(h[0].numpy(), 0.1, seed=0)
    assert p[:16].sum() == pytest.approx(1.0, rel=1e-5) and np.all(p[16:] == 0)
    assert not np.allclose(p, h[0].numpy())


@pytest.mark.parametrize("dims", [2, 3])
def test_masked_loss_ignores_the_background(dims):
    m = _model(dims).train()
    size = (8, 16, 16) if dims == 3 else (16, 16)
    masks = torch.zeros(2, 2, *size)
    masks[:, 0, ..., 4:8, 4:8] = 1
    hist = torch.rand(2, 32)
    img = torch.rand(2, 1, *size) * 2 - 1
    g = torch.Generator().manual_seed(0)
    a = m((masks, hist), img, generator=g)
    img2 = img.clone()
    img2[..., 12:, 12:] = -1  # change the background only
    # the same noise and timesteps; the loss only sees the mask (the network sees everything,
    # so compare a masks-only effect: an empty mask has zero loss)
    with torch.no_grad():
        assert float(m((torch.zeros_like(masks), hist), img2)) == 0.0
    a.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.net.parameters())


@pytest.mark.parametrize("dims", [2, 3])
def test_inpaint_background_bit_identical_and_seeded(host, crops, dims):
    ct, _, r = host
    model = _model(dims, crops)
    out = inpaint_lesion(ct, r.labels, model=model, seed=3, **SMALL)
    assert out.shape == ct.shape and out.dtype == np.float32
    from scipy import ndimage

    grown = ndimage.binary_dilation(r.labels > 0, ndimage.generate_binary_structure(3, 1))
    assert np.array_equal(out[~grown], ct[~grown])  # bit-identical outside the dilated mask
    assert (out[r.labels > 0] != ct[r.labels > 0]).mean() > 0.9
    assert out.min() >= -1000 - 1e-3 and out.max() <= 400 + 1e-3
    again = inpaint_lesion(ct, r.labels, model=model, seed=3, **SMALL)
    other = inpaint_lesion(ct, r.labels, model=model, seed=4, **SMALL)
    assert np.array_equal(out, again) and not np.array_equal(out, other)
    tight = inpaint_lesion(ct, r.labels, model=model, seed=3, dilate=0, crop="model", **SMALL)
    assert np.array_equal(tight[r.labels == 0], ct[r.labels == 0])


def test_inpaint_histogram_options(host, crops):
    ct, _, r = host
    model = _model(2, crops)
    for h in ("solid", "ground-glass", 1, np.full(32, 1 / 32), None):
        inpaint_lesion(ct[10:14], r.labels[10:14], histogram=h, model=model, seed=0,
                       perturb=0.1, **SMALL)  # fmt: skip
    # 16 bins for a one-class mask (bool: all solid)
    inpaint_lesion(ct[10:14], r.labels[10:14] > 0, histogram=np.full(16, 1 / 16), model=model,
                   seed=0, **SMALL)  # fmt: skip
    with pytest.raises(ValueError, match="preset"):
        inpaint_lesion(ct, r.labels, histogram="calcified", model=model, **SMALL)
    with pytest.raises(ValueError, match="values"):
        inpaint_lesion(ct, r.labels, histogram=np.ones(5), model=model, **SMALL)
    with pytest.raises(ValueError, match="empty"):
        inpaint_lesion(ct, np.zeros_like(r.labels), model=model)
    with pytest.raises(ValueError, match="shape"):
        inpaint_lesion(ct, r.labels[0], model=model)


def test_presets_name_the_kinds(crops):
    p = histogram_presets(crops.hists, crops.kinds, k=3, seed=0)
    assert len(p["clusters"]) == 3 and len(p["clusters"][0]) == 32
    assert set(p["names"]) <= {"solid", "part-solid", "ground-glass"}


def test_lesion_mask_stays_in_the_sphere():
    torch.manual_seed(0)
    mm = MaskDiffusion(dims=3, image_size=(8, 32, 32), channels=(8, 16)).eval()
    m = lesion_mask((20, 48, 48), (10, 20, 24), 4.0, model=mm, seed=0, steps=6,
                    spacing=CHEST_SPACING)  # fmt: skip
    assert m.shape == (20, 48, 48) and m.dtype == bool and m.any()
    centre = (10, 20, 24)
    axes = [(np.arange(n) - c) * s for n, c, s in zip(m.shape, centre, CHEST_SPACING, strict=True)]
    g = np.meshgrid(*axes, indexing="ij")
    assert not (m & (sum(x * x for x in g) > 16.0)).any()
    again = lesion_mask((20, 48, 48), (10, 20, 24), 4.0, model=mm, seed=0, steps=6,
                        spacing=CHEST_SPACING)  # fmt: skip
    assert np.array_equal(m, again)
    sphere = torch.ones(1, 1, 8, 32, 32)
    loss = mm.train()(sphere, sphere)
    assert loss.ndim == 0 and float(loss.detach()) > 0
    with pytest.raises(ValueError, match="center"):
        lesion_mask((20, 48, 48), (30, 0, 0), 4.0, model=mm)


def test_checkpoint_round_trip(tmp_path, crops):
    from mrct.training import load_model

    m = _model(2, crops)
    path = m.save(tmp_path / "m.safetensors")
    back = load_model(path)
    assert isinstance(back, LesionDiffusion) and back.info["presets"] == m.info["presets"]
    for a, b in zip(m.state_dict().values(), back.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_pretrained_names():
    from mrct.synth import pretrained

    with pytest.raises(ValueError, match="lefusion"):
        pretrained("nope")
    for name in ("lefusion-lung-ct", "lefusion-mask"):
        try:
            m = pretrained(name)
        except FileNotFoundError as e:
            assert "train_lesion.py" in str(e)
        else:
            assert isinstance(m, LesionDiffusion if name.endswith("ct") else MaskDiffusion)


def test_task_and_training_script(tmp_path):
    _, train, val, extra = make_lesion_task({"dims": 2, "n_train": 4, "n_val": 2,
                                             "source": "synthetic"})  # fmt: skip
    (masks, hist), img = train[0]
    assert masks.shape == (2, 64, 64) and hist.shape == (32,) and img.shape == (1, 64, 64)
    assert "presets" in extra["info"]
    with pytest.raises(ValueError, match="unknown"):
        make_lesion_task({"bogus": 1})
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "train_lesion", Path(__file__).resolve().parents[1] / "scripts" / "train_lesion.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path = mod.main(["--steps", "2", "--n-train", "4", "--n-val", "2", "--tiny", "--source",
                     "synthetic", "--model", "mask", "--out", str(tmp_path)])  # fmt: skip
    from mrct.training import load_model, read_metadata

    assert isinstance(load_model(path), MaskDiffusion)
    meta = read_metadata(path)["extra"]
    assert meta["steps"] >= 2 and "machine" in meta and "train_time_s" in meta


def test_config_builds_the_model_and_task():
    from pathlib import Path

    from mrct.recon.train import build_from_config
    from mrct.training import TrainConfig

    path = Path(__file__).resolve().parents[1] / "configs" / "lesion-lung-ct.toml"
    cfg = TrainConfig.from_file(path)
    cfg = cfg.replace(
        model={**cfg.model, "dims": 2, "channels": [8, 16]},
        data={**cfg.data, "dims": 2, "n_train": 3, "n_val": 1, "source": "synthetic"},
    )
    model, train, val, _, _ = build_from_config(cfg)
    assert isinstance(model, LesionDiffusion) and "presets" in model.info
    (masks, hist), img = train[0]
    loss = model((masks[None], hist[None]), img[None])
    assert loss.ndim == 0


def test_shipped_image_weights_are_small_and_recorded():
    from mrct.synth.lesion.inference import WEIGHTS
    from mrct.training import read_metadata

    path = WEIGHTS / "lefusion-lung-ct.safetensors"
    assert path.is_file(), f"lefusion-lung-ct is registered as shipped but {path} is missing"
    assert path.stat().st_size <= 20 * 2**20
    meta = read_metadata(path)["extra"]
    assert meta["steps"] > 0 and meta["train_time_s"] > 0 and meta["machine"]
