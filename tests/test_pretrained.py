"""The shipped weights: present, small, loadable offline, and better than FBP on held-out data."""

import pytest
import torch

from mrct.recon import list_pretrained, pretrained
from mrct.recon.pretrained import PRETRAINED, weights_path

PUBLIC = ("pdunet-ct-sparse16", "lpd-ct-sparse16", "pdunet-mri-radial16")


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_weights_are_shipped_and_small(name):
    path = weights_path(name)
    assert path.is_file(), f"{path} missing: run scripts/train_pretrained.py {name}"
    assert path.stat().st_size <= 20 * 2**20
    assert name in list_pretrained()


def test_public_names_are_registered():
    assert set(PUBLIC) <= set(PRETRAINED)


@pytest.mark.parametrize("name", PUBLIC)
def test_pretrained_model_contract(name):
    model = pretrained(name)
    assert not model.training
    V, N = model.radon.geometry.proj_shape
    assert model.radon.image_shape == (256, 256)
    with torch.no_grad():
        out = model(torch.zeros(1, V, N))
    assert out.shape == (1, 256, 256) and torch.isfinite(out).all()


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="pdunet-ct-sparse16"):
        pretrained("pdunet-ct-sparse99")


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_pretrained_beats_fbp_on_a_held_out_slice(name):
    from mrct.data import require_shared_data
    from mrct.metrics import ssim
    from mrct.recon.datasets import ct_task, mri_task

    require_shared_data()
    spec = PRETRAINED[name]
    make = ct_task if spec.task == "ct" else mri_task
    task = make(spec.undersampling, splits=("test",), max_slices=2)
    model = pretrained(name)
    g, x = task.test.inputs, task.test.targets
    with torch.no_grad():
        rec = model(g).clamp_min(0)
    fbp = task.radon_sparse.fbp(g, filter="hann").clamp_min(0)
    for i in range(len(x)):
        dr = float(x[i].max())
        s_model = ssim(rec[i].numpy(), x[i].numpy(), dr)
        s_fbp = ssim(fbp[i].numpy(), x[i].numpy(), dr)
        assert s_model > s_fbp + 0.05, (name, i, s_model, s_fbp)
