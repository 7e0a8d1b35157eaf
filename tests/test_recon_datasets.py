"""Datasets of the learned reconstructors: geometry, units, ground truth and splits."""

import numpy as np
import pytest
import torch

from mrct.recon.datasets import (
    CT_SPLITS,
    ct_geometry,
    ct_task,
    hu_to_mu,
    make_task,
    mri_task,
)


def test_paper_geometry_and_sparsity():
    geo = ct_geometry(16)
    assert geo.n_det == 511 and geo.source_distance == 400.0 and geo.detector_distance == 150.0
    assert len(geo.angles) == 23  # np.arange(360)[::16]
    np.testing.assert_allclose(np.rad2deg(geo.angles), np.arange(0, 360, 16))


def test_hu_to_mu():
    np.testing.assert_allclose(hu_to_mu(np.array([-2048.0, -1000.0, 0.0, 1000.0])),
                               [0.0, 0.0, 0.02, 0.04])  # fmt: skip


def test_ct_task_on_ellipses_gives_consistent_pairs():
    t = ct_task(8, size=48, source="ellipses", n_ellipses=6, splits=("train", "val"))
    g, x = t.train[0]
    assert g.shape == t.radon_sparse.geometry.proj_shape and x.shape == (48, 48)
    assert g.dtype == torch.float32 and x.dtype == torch.float32
    assert float(x.min()) >= 0.0  # targets are clipped FBPs
    # the sparse sinogram is the subset of the full one whose FBP is the target
    full_sino = t.radon_full(torch.as_tensor(x))  # projections of the target ~ of the image
    assert full_sino.shape[-2] == 360
    assert 0.005 < t.img_scale < 0.05
    # the sparse FBP is worse than the target but correlated with it
    fbp = t.radon_sparse.fbp(g[None], filter="hann")[0]
    r = np.corrcoef(fbp.flatten().numpy(), x.flatten().numpy())[0, 1]
    assert r > 0.8


def test_make_task_reads_the_data_section():
    radon, train, val, extra = make_task(
        {
            "data": {
                "task": "ct",
                "sparsity": 16,
                "size": 32,
                "source": "ellipses",
                "n_ellipses": 4,
            }
        }  # fmt: skip
    )
    assert radon.geometry.proj_shape[0] == 23 and len(train) == 4 and len(val) == 4
    assert extra["img_scale"] > 0
    with pytest.raises(ValueError, match="task"):
        make_task({"data": {"task": "pet"}})
    with pytest.raises(ValueError, match="sparsity"):
        ct_task(0, size=32, source="ellipses")


@pytest.mark.data
def test_chest_ct_splits_are_disjoint_and_in_the_papers_units():
    from mrct.data import require_shared_data

    require_shared_data()
    ranges = sorted(CT_SPLITS.values())
    assert all(a[1] <= b[0] for a, b in zip(ranges[:-1], ranges[1:], strict=True))
    t = ct_task(16, size=64, max_slices=2, splits=("test",))
    x = t.test.targets
    assert x.shape == (2, 64, 64)
    # soft tissue ~ 0.02 per pixel (water), bone higher
    assert 0.015 < float(x.median()) < 0.03 or float((x > 0.015).float().mean()) > 0.3


@pytest.mark.data
def test_mri_task_radial_sinograms_reconstruct_the_slice():
    from mrct.data import require_shared_data
    from mrct.metrics import psnr

    require_shared_data()
    t = mri_task(16, size=64, splits=("test",), max_slices=2)
    g, x = t.test[0]
    assert g.shape == (32, 91)  # 512 / 16 spokes, ceil(64 sqrt 2) | 1 samples
    fbp = t.radon_sparse.fbp(g[None], filter="hann")[0].clamp_min(0)
    assert psnr(x.numpy(), fbp.numpy()) > 20
