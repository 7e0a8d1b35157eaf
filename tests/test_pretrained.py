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


def test_parse_name_covers_unshipped_models_and_rejects_bad_ones():
    from mrct.recon.pretrained import parse_name

    spec = parse_name("fbpconvnet-ct-sparse8")
    assert (spec.model, spec.task, spec.undersampling) == ("fbpconvnet", "ct", 8)
    assert parse_name("pdunet-ct-sparse16") is PRETRAINED["pdunet-ct-sparse16"]
    with pytest.raises(ValueError, match="must divide 360"):
        parse_name("lpd-ct-sparse7")
    with pytest.raises(ValueError, match="ct-sparse"):
        parse_name("unet-ct-sparse8")


def test_method_functions_load_unshipped_weights_from_a_folder(tmp_path):
    """A model saved the way scripts/train_pretrained.py saves it is found in weights_dir and
    gives the same output as the module that was saved."""
    import json

    from safetensors.torch import save_file

    from mrct.recon.compare import method_functions
    from mrct.recon.pretrained import build_model, operator_for

    radon = operator_for("ct", 8)
    torch.manual_seed(0)
    model = build_model("lpd", radon, n_iter=2).eval()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    meta = {"model_kwargs": json.dumps({"n_iter": 2, "opnorm": float(model.opnorm)})}
    save_file(state, str(tmp_path / "lpd-ct-sparse8.safetensors"), metadata=meta)

    fns, notes = method_functions("ct", radon, 8, names=("LPD", "PD-UNet"), weights_dir=tmp_path)
    assert "LPD" in fns and "PD-UNet" in notes  # no pdunet-ct-sparse8 anywhere
    g = radon(torch.rand(1, 256, 256) * 0.02)
    with torch.no_grad():
        ref = model(g).clamp_min(0)
    assert torch.allclose(fns["LPD"](g), ref, atol=1e-6)
