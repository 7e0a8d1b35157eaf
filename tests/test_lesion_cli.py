"""``mrct lesion``: a controlled nodule into a NIfTI CT, affine kept, exit 2 on bad input."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mrct.cli import app
from mrct.io import save_nifti
from mrct.jobs.lesion import default_mask_path
from mrct.synth.lesion import LesionDiffusion
from mrct.synth.lesion.data import synthetic_host

AFF = np.array([[-0.7, 0, 0, 10.0], [0, -0.7, 0, 20.0], [0, 0, 2.5, -30.0], [0, 0, 0, 1]])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("lesion")
    ct, lungs = synthetic_host((20, 64, 64), seed=2)  # (Z, Y, X) -> file (X, Y, Z)
    save_nifti(d / "ct.nii.gz", ct.transpose(2, 1, 0), AFF)
    save_nifti(d / "lungs.nii.gz", lungs.transpose(2, 1, 0).astype(np.float32), AFF)
    torch.manual_seed(0)
    LesionDiffusion(dims=3, channels=(8, 16)).save(d / "model.safetensors")
    return d


def _run(args):
    return CliRunner().invoke(app, ["lesion", *map(str, args)])


@pytest.mark.parametrize("kind", ["solid", "part-solid", "ground-glass"])
def test_simulate_writes_image_and_mask(files, tmp_path, kind):
    out = tmp_path / "out.nii.gz"
    r = _run([files / "ct.nii.gz", "--mask", files / "lungs.nii.gz", "--center", 30, 34, 10,
              "--diameter", 8, "--type", kind, "--out", out, "--method", "simulate"])  # fmt: skip
    assert r.exit_code == 0, r.output
    img, msk = nib.load(out), nib.load(default_mask_path(out))
    np.testing.assert_allclose(img.affine, AFF)
    np.testing.assert_allclose(msk.affine, AFF)
    src = nib.load(files / "ct.nii.gz").get_fdata()
    lab = msk.get_fdata()
    assert lab[30, 34, 10] > 0 and set(np.unique(lab)) <= {0, 1, 2}
    changed = img.get_fdata() != src
    assert changed.any() and not (changed & (lab == 0)).all()
    far = np.ones_like(lab, bool)
    far[15:46, 19:50, 4:17] = False
    assert not changed[far].any()


def test_diffusion_with_a_model_keeps_the_background(files, tmp_path):
    out = tmp_path / "d.nii"
    r = _run([files / "ct.nii.gz", "--mask", files / "lungs.nii.gz", "--center", 30, 34, 10,
              "--diameter", 6, "--type", "part-solid", "--out", out, "--model",
              files / "model.safetensors", "--steps", 4, "--jump-length", 2,
              "--jump-n-sample", 1, "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    from scipy import ndimage

    lab = nib.load(default_mask_path(out)).get_fdata() > 0
    grown = ndimage.binary_dilation(lab, ndimage.generate_binary_structure(3, 1))
    src = nib.load(files / "ct.nii.gz").get_fdata(dtype=np.float32)
    res = nib.load(out).get_fdata(dtype=np.float32)
    assert np.array_equal(res[~grown], src[~grown]) and (res[lab] != src[lab]).any()


@pytest.mark.parametrize(
    "extra, msg",
    [
        (["--type", "calcified"], "--type"),
        (["--diameter", 50], "--diameter"),
        (["--center", 999, 0, 0], "outside"),
        (["--center", 0, 0, 0], "not inside the lung mask"),
        (["--method", "magic"], "--method"),
    ],
)
def test_bad_input_exits_2_with_one_line(files, tmp_path, extra, msg):
    args = [files / "ct.nii.gz", "--mask", files / "lungs.nii.gz", "--center", 30, 34, 10,
            "--out", tmp_path / "x.nii.gz", "--method", "simulate"]  # fmt: skip
    r = _run(args + extra)
    assert r.exit_code == 2
    assert msg in r.output and len(r.output.strip().splitlines()) == 1


def test_missing_and_mismatched_files(files, tmp_path):
    r = _run([tmp_path / "none.nii.gz", "--mask", files / "lungs.nii.gz", "--center", 1, 1, 1,
              "--out", tmp_path / "x.nii.gz"])  # fmt: skip
    assert r.exit_code == 2 and "does not exist" in r.output
    save_nifti(tmp_path / "other.nii.gz", np.ones((64, 64, 20), np.float32), np.eye(4))
    r = _run([files / "ct.nii.gz", "--mask", tmp_path / "other.nii.gz", "--center", 30, 34, 10,
              "--out", tmp_path / "x.nii.gz"])  # fmt: skip
    assert r.exit_code == 2 and "affine" in r.output
