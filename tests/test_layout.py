"""The layout of issue 15: old import paths warn and still work; mrct.io.save_nifti."""

from __future__ import annotations

import importlib
import sys

import nibabel as nib
import numpy as np
import pytest

from mrct.io import save_nifti

# old module -> (new module, a name both serve)
MOVED = {
    "mrct.recon_cli": ("mrct.jobs.recon", "run_recon"),
    "mrct.sr_cli": ("mrct.jobs.sr", "run_sr"),
    "mrct.demo": ("mrct.jobs.demo", "run_demo"),
    "mrct.synth.sct_cli": ("mrct.jobs.sct", "run_sct"),
    "mrct.recon.training": ("mrct.training", "fit"),
    "mrct.recon.checkpoint": ("mrct.training.checkpoint", "save_checkpoint"),
    "mrct.recon.plugins": ("mrct.training.plugins", "import_object"),
    "mrct.recon.unet": ("mrct.nn.unet", "UNet"),
    "mrct.recon.sr_models": ("mrct.recon.sr.models", "DDoSUNet"),
    "mrct.recon.sr_inference": ("mrct.recon.sr.inference", "load_sr_model"),
    "mrct.recon.sr_data": ("mrct.recon.sr.data", "sr_task"),
    "mrct.synth.checkpointing": ("mrct.training.loader", "ConfigCheckpoint"),
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_module_paths_warn_and_reexport(old):
    new, name = MOVED[old]
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        mod = importlib.import_module(old)
    assert getattr(mod, name) is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError):
        mod.no_such_name  # noqa: B018


def test_sct_cli_still_serves_the_model_helpers():
    sys.modules.pop("mrct.synth.sct_cli", None)
    with pytest.warns(DeprecationWarning):
        from mrct.synth.sct_cli import load_sct_model, shipped_model
    from mrct.synth.sct import load_sct_model as new_load
    from mrct.synth.sct import shipped_model as new_shipped

    assert load_sct_model is new_load and shipped_model is new_shipped


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_save_nifti_keeps_affine_and_gzips_by_suffix(tmp_path, suffix):
    data = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    affine = np.array([[-2.0, 0, 0, 10], [0, 1.5, 0, -3], [0, 0, 3, 7], [0, 0, 0, 1]])
    path = save_nifti(tmp_path / f"x{suffix}", data, affine)
    assert path == tmp_path / f"x{suffix}"
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == (suffix == ".nii.gz")
    img = nib.load(str(path))
    np.testing.assert_array_equal(img.affine, affine)
    got = np.asarray(img.dataobj)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, data.astype(np.float32))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_save_nifti_defaults_and_header_fields(tmp_path):
    path = save_nifti(tmp_path / "s.nii.gz", np.ones((2, 2, 2, 3)), time_step=2.5,
                      xyzt_units=("mm", "sec"), description="mrct test")  # fmt: skip
    img = nib.load(str(path))
    np.testing.assert_array_equal(img.affine, np.eye(4))
    assert img.header.get_zooms()[3] == pytest.approx(2.5)
    assert img.header.get_xyzt_units() == ("mm", "sec")
    assert img.header["descrip"].tobytes().rstrip(b"\0") == b"mrct test"


def test_save_nifti_is_atomic(tmp_path):
    path = tmp_path / "keep.nii"
    save_nifti(path, np.zeros((2, 2, 2)))
    before = path.read_bytes()
    with pytest.raises(ValueError):
        save_nifti(path, np.zeros((2, 2, 2)), affine=np.eye(3))  # a bad affine
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.nii"]


def test_recon_training_shim_serves_the_config_step_too():
    sys.modules.pop("mrct.recon.training", None)
    with pytest.warns(DeprecationWarning):
        from mrct.recon.training import TrainConfig, _model_class, train_from_config
    import mrct.recon.train as new
    import mrct.training as training

    assert TrainConfig is training.TrainConfig
    assert _model_class is new._model_class and train_from_config is new.train_from_config


@pytest.mark.parametrize("name", ["fit", "Trainer", "TrainConfig", "save_checkpoint",
                                  "load_checkpoint", "load_weights"])  # fmt: skip
def test_training_names_of_mrct_recon_warn_and_still_work(name):
    import mrct.recon
    import mrct.training

    with pytest.warns(DeprecationWarning, match=rf"mrct\.training\.{name}"):
        obj = getattr(mrct.recon, name)
    assert obj is getattr(mrct.training, name)
    assert name in mrct.recon.__all__


def test_every_public_name_of_the_layers_still_imports():
    import warnings

    for mod in ("mrct", "mrct.physics", "mrct.recon", "mrct.synth", "mrct.data", "mrct.metrics",
                "mrct.training", "mrct.nn", "mrct.io"):  # fmt: skip
        m = importlib.import_module(mod)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            missing = [n for n in getattr(m, "__all__", []) if not hasattr(m, n)]
        assert not missing, f"{mod} lost {missing}"


# -- mrct.training.load_model: one loader, dispatching on the class stored in the file ------


def test_load_model_dispatches_on_the_stored_class(tmp_path):
    import torch

    from mrct.nn import UNet
    from mrct.recon import DDoSUNet, SRUNet
    from mrct.training import load_model, read_metadata, save_checkpoint

    torch.manual_seed(0)
    cases = [
        (SRUNet(features=4, depth=2, dims=2), {"features": 4, "depth": 2, "dims": 2}),
        (DDoSUNet(features=4, depth=2, dims=2), {"features": 4, "depth": 2, "dims": 2}),
        (UNet(1, 1, depth=2, wf=2), {"in_channels": 1, "out_channels": 1, "depth": 2, "wf": 2}),
    ]
    for model, kwargs in cases:
        path = save_checkpoint(tmp_path / f"{type(model).__name__}.safetensors", model,
                               model_kwargs={**kwargs, "name": "x", "img_scale": 0.5})  # fmt: skip
        meta = read_metadata(path)
        assert meta["model_class"] == type(model).__name__
        assert meta["model_import"].endswith(":" + type(model).__name__)
        got = load_model(path)
        assert type(got) is type(model) and not got.training
        for k, v in model.state_dict().items():
            torch.testing.assert_close(got.state_dict()[k], v)


def test_load_model_rebuilds_synth_models_and_takes_constructor_arguments(tmp_path):
    import torch

    from mrct.synth import SCTUNet
    from mrct.training import load_model

    net = SCTUNet(cond_channels=1, depth=2, wf=2, image_size=16)
    path = net.save(tmp_path / "sct.safetensors")
    got = load_model(path)
    assert type(got) is SCTUNet
    x = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(got(x), net.eval()(x))


def test_load_model_user_class_by_import_path_and_clear_errors(tmp_path):
    import torch

    from mrct.training import CheckpointError, load_model, save_checkpoint

    lin = torch.nn.Linear(3, 2)
    path = save_checkpoint(tmp_path / "lin.safetensors", lin,
                           model_kwargs={"in_features": 3, "out_features": 2})  # fmt: skip
    got = load_model(path)  # torch.nn.modules.linear:Linear, by its stored import path
    assert isinstance(got, torch.nn.Linear)
    torch.testing.assert_close(got.weight, lin.weight)
    with pytest.raises(CheckpointError, match="cannot rebuild Linear"):
        load_model(path, bogus=1)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(CheckpointError, match="names no model class"):
        load_model(tmp_path / "bare.safetensors")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.safetensors")


def test_synth_pretrained_routes_every_capability():
    import pytest

    from mrct import synth

    names = synth.list_pretrained()
    assert {"lefusion-lung-ct", "lefusion-mask", "dehaze-tissue-rf", "dehaze-haze-rf"} <= set(names)
    with pytest.raises(ValueError, match="known"):
        synth.pretrained("no-such-model")
    # the shipped lesion model loads; unshipped priors say how to train them
    assert synth.pretrained("lefusion-lung-ct") is not None
    with pytest.raises(FileNotFoundError, match="train"):
        synth.pretrained("dehaze-tissue-rf")
