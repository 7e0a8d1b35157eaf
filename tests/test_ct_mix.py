"""Issue #17's training data: synthetic head CT, synthetic anatomy, the CT mix, the configs."""

from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.data
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def shared():
    from mrct.data import require_shared_data

    return require_shared_data()


def test_synthetic_head_ct_is_a_seeded_head_in_hu(shared):
    from mrct.data import HEAD_HU, synthetic_head_ct

    a = synthetic_head_ct((96, 96))
    assert a.shape == (96, 96) and a.dtype == np.float32
    assert np.array_equal(a, synthetic_head_ct((96, 96)))  # seed=None: fixed
    b, c = synthetic_head_ct((96, 96), seed=5), synthetic_head_ct((96, 96), seed=6)
    assert np.array_equal(b, synthetic_head_ct((96, 96), seed=5)) and not np.array_equal(b, c)
    assert a.min() == pytest.approx(-1000.0) and a[0, 0] == -1000.0  # air outside
    assert a.max() > 1000.0  # cortical bone
    inside = a[36:60, 36:60]  # the brain at the centre: CSF .. grey matter
    assert HEAD_HU["csf"][0] - 5 < np.median(inside) < HEAD_HU["grey_matter"][1] + 5
    v = synthetic_head_ct((24, 28, 28), seed=1)
    assert v.shape == (24, 28, 28) and v.max() > 500 and (v == -1000).any()
    with pytest.raises(ValueError, match="shape"):
        synthetic_head_ct((8,))


def test_chest_views_and_synthetic_anatomy(shared):
    from mrct.data.synthetic_anatomy import (
        augment_slice,
        chest_ct_view,
        chest_slice,
        synthetic_anatomy,
    )

    for o in ("axial", "coronal", "sagittal"):
        img = chest_ct_view(o, None, 64, 300.0, s_range=(0, 90))
        assert img.shape == (64, 64) and img.min() >= -1000.0 and img.max() > 100.0
    hu, lab, sp = chest_slice("coronal", 256, (0, 90))
    assert hu.shape == (90, 512) and sp == (2.5, 0.703125)
    rng = np.random.default_rng(0)
    s = synthetic_anatomy(lab, hu, rng)
    assert s.shape == hu.shape and not np.allclose(s, hu)
    lung = np.isin(lab, np.arange(10, 15))
    assert -950 < np.median(s[lung]) < -650  # lungs keep lung HU
    bone = np.isin(lab, np.arange(25, 51))
    assert np.median(s[bone]) > 150
    w = augment_slice(np.zeros((32, 32), np.float32), rng, fill=-1000.0)
    assert w.shape == (32, 32)
    with pytest.raises(ValueError, match="orientation"):
        chest_slice("oblique")


def test_mix_images_and_on_the_fly_pairs(shared):
    from mrct.recon.ct_mix import DEFAULT_MIX, image_pool, mix_image, poisson_noise
    from mrct.recon.datasets import ct_operators

    rng = np.random.default_rng(0)
    kinds = {mix_image(rng, None, 32)[1] for _ in range(40)}
    assert kinds == set(DEFAULT_MIX)
    img, kind = mix_image(np.random.default_rng(1), {"synthetic": 1.0}, 48)
    assert kind == "synthetic" and img.shape == (48, 48) and 0 <= img.min() and img.max() < 0.2
    pool = image_pool(3, {"chest": 1, "ellipses": 1}, 32, seed=3)
    assert torch.equal(pool, image_pool(3, {"chest": 1, "ellipses": 1}, 32, seed=3))
    with pytest.raises(ValueError, match="mix"):
        mix_image(rng, {"brain": 1.0})
    full, views, sparse = ct_operators(16, 32)
    y = full(pool)
    noisy = poisson_noise(y, 1e4, torch.Generator().manual_seed(0))
    assert 0.001 < float((noisy - y).std()) < 0.2


def test_make_task_mix_and_train_logs_both_validation_ssims(shared, tmp_path):
    from mrct.recon import train_from_config
    from mrct.recon.datasets import make_task

    radon, train, val, extra = make_task({"data": {
        "task": "ct", "source": "mix", "sparsity": 16, "size": 32, "photons": 1e5,
        "samples_per_epoch": 3, "n_head": 2, "max_slices": 2}})  # fmt: skip
    assert len(train) == 3 and len(val) == 2 and set(extra["val_sets"]) == {"chest", "head"}
    g, x = train[0]
    assert g.shape == radon.geometry.proj_shape and x.shape == (32, 32)
    assert 0.005 < extra["img_scale"] < 0.05
    res = train_from_config(CONFIGS / "pdunet-ct-mix-sparse16.toml", {
        "epochs": 1, "out_dir": str(tmp_path / "run"), "progress": False,
        "model.depth": 2, "model.wf": 3, "data.size": 32, "data.samples_per_epoch": 2,
        "data.n_head": 1, "data.max_slices": 1})  # fmt: skip
    rec = res.history["epochs"][-1]
    assert 0 < rec["val_ssim_chest"] <= 1 and 0 < rec["val_ssim_head"] <= 1
