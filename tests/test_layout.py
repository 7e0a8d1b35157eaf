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
