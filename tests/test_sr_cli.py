"""``mrct sr``: NIfTI series + prior -> super-resolved 4D NIfTI."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mrct.cli import app
from mrct.data import shepp_logan_3d, simulate_dynamic_series
from mrct.physics import upsample_lowres
from mrct.recon import DDoSUNet, SRUNet, super_resolve_series
from mrct.training import save_checkpoint

runner = CliRunner()

X, Y, Z, T = 24, 20, 3, 4  # high-res grid (x, y, z) and time points


def _to_nifti(arr_zyx_t, affine):
    """(T, z, y, x) or (z, y, x) torch/numpy -> NIfTI image with axes (x, y, z[, t])."""
    a = np.asarray(arr_zyx_t, dtype=np.float32)
    a = a.transpose(3, 2, 1, 0) if a.ndim == 4 else a.transpose(2, 1, 0)
    return nib.Nifti1Image(a, affine)


@pytest.fixture
def files(tmp_path):
    vol = shepp_logan_3d((Z, Y, X))  # (z, y, x)
    sim = simulate_dynamic_series(vol, T, fraction=0.25, seed=0)
    hr_aff = np.diag([1.5, 1.5, 4.0, 1.0])
    lr_aff = np.diag([3.0, 3.0, 4.0, 1.0])
    series4d = _to_nifti(sim.lowres, lr_aff)  # (12, 10, 3, 4) low-res on its own grid
    series4d.header.set_zooms((3.0, 3.0, 4.0, 0.4))
    nib.save(series4d, tmp_path / "series.nii.gz")
    for t in range(T):
        nib.save(_to_nifti(sim.lowres[t], lr_aff), tmp_path / f"tp{t}.nii")
    nib.save(_to_nifti(sim.planning, hr_aff), tmp_path / "prior.nii.gz")
    return tmp_path, sim, hr_aff


def _run(*args):
    return runner.invoke(app, ["sr", *map(str, args)])


def test_help():
    result = _run("--help")
    assert result.exit_code == 0
    for word in ("--prior", "--model", "--method", "trilinear", "zero-filled"):
        assert word in result.output


@pytest.mark.parametrize("method", ["trilinear", "bicubic", "zero-filled"])
def test_baseline_on_a_4d_file(files, method):
    tmp, sim, hr_aff = files
    out = tmp / f"sr_{method}.nii.gz"
    result = _run(tmp / "series.nii.gz", "--prior", tmp / "prior.nii.gz", "--method", method,
                  "--out", out, "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    img = nib.load(out)
    assert img.shape == (X, Y, Z, T)
    np.testing.assert_allclose(img.affine, hr_aff)  # on the prior's grid
    assert img.header.get_zooms()[3] == pytest.approx(0.4)
    expected = upsample_lowres(torch.from_numpy(sim.lowres), (Z, Y, X), method).numpy()
    np.testing.assert_allclose(np.asarray(img.dataobj), expected.transpose(3, 2, 1, 0),
                               atol=1e-5)  # fmt: skip
    assert not list(tmp.glob(".sr_*"))  # no temporary files left


def test_list_of_3d_files_equals_the_4d_file(files):
    tmp, _, _ = files
    a, b = tmp / "a.nii", tmp / "b.nii"
    assert _run(tmp / "series.nii.gz", "-p", tmp / "prior.nii.gz", "-m", "trilinear", "-o", a,
                "--no-progress").exit_code == 0  # fmt: skip
    args = [tmp / f"tp{t}.nii" for t in range(T)]
    assert _run(*args, "-p", tmp / "prior.nii.gz", "-m", "trilinear", "-o", b,
                "--no-progress").exit_code == 0  # fmt: skip
    np.testing.assert_array_equal(nib.load(a).get_fdata(), nib.load(b).get_fdata())


def test_model_checkpoint(files):
    tmp, sim, hr_aff = files
    torch.manual_seed(0)
    model = DDoSUNet(features=4, dims=2, residual=False)
    ckpt = save_checkpoint(tmp / "ddos.safetensors", model, model_kwargs=model.config)
    out = tmp / "sr_model.nii"
    result = _run(tmp / "series.nii.gz", "--prior", tmp / "prior.nii.gz", "--model", ckpt,
                  "--out", out, "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    got = np.asarray(nib.load(out).dataobj).transpose(3, 2, 1, 0)  # (T, z, y, x)
    scale = float(np.abs(sim.planning).max())
    up = upsample_lowres(torch.from_numpy(sim.lowres), (Z, Y, X), "trilinear")
    ref = super_resolve_series(model, up / scale, torch.from_numpy(sim.planning) / scale,
                               progress=False) * scale  # fmt: skip
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-5)
    save_checkpoint(tmp / "unet.safetensors", SRUNet(features=4, dims=3),
                    model_kwargs=SRUNet(features=4, dims=3).config)  # fmt: skip
    assert (
        _run(
            tmp / "series.nii.gz",
            "-p",
            tmp / "prior.nii.gz",
            "--model",
            tmp / "unet.safetensors",
            "-o",
            tmp / "u.nii",
            "--no-progress",
        ).exit_code
        == 0
    )


def test_mismatched_shapes_are_clear_errors(files):
    tmp, sim, _ = files
    nib.save(_to_nifti(sim.planning[:2], np.eye(4)), tmp / "prior_z2.nii")
    result = _run(tmp / "series.nii.gz", "-p", tmp / "prior_z2.nii", "-m", "trilinear", "-o",
                  tmp / "x.nii")  # fmt: skip
    assert result.exit_code == 2
    assert "slices" in result.output and "(12, 10, 3, 4)" in result.output
    nib.save(_to_nifti(sim.planning[:, :8, :8], np.eye(4)), tmp / "prior_small.nii")
    result = _run(tmp / "series.nii.gz", "-p", tmp / "prior_small.nii", "-m", "trilinear",
                  "-o", tmp / "x.nii")  # fmt: skip
    assert result.exit_code == 2 and "exceeds the prior" in result.output
    nib.save(_to_nifti(np.zeros((Z, 5, 5)), np.eye(4)), tmp / "odd.nii")
    result = _run(tmp / "tp0.nii", tmp / "odd.nii", "-p", tmp / "prior.nii.gz", "-m",
                  "trilinear", "-o", tmp / "x.nii")  # fmt: skip
    assert result.exit_code == 2 and "share one grid" in result.output
    result = _run(tmp / "series.nii.gz", "-p", tmp / "prior.nii.gz", "-o", tmp / "x.nii")
    assert result.exit_code == 2 and "exactly one of --method and --model" in result.output
    result = _run(tmp / "series.nii.gz", "-p", tmp / "prior.nii.gz", "-m", "lanczos", "-o",
                  tmp / "x.nii")  # fmt: skip
    assert result.exit_code == 2 and "method must be one of" in result.output
    result = _run(tmp / "missing.nii", "-p", tmp / "prior.nii.gz", "-m", "trilinear", "-o",
                  tmp / "x.nii")  # fmt: skip
    assert result.exit_code == 2 and "does not exist" in result.output
    assert not (tmp / "x.nii").exists()
