"""``mrct recon``: a user's sparse-view CT sinogram or radial MRI k-space file -> image files.

References are computed here independently of the job: the Hann FBP of the same operator,
the phantom the data came from, and (MRI) the FBP of the phantom's Radon projections, which
radial k-space must reproduce by the Fourier slice theorem.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mrct.cli import app
from mrct.data import read_nifti, shepp_logan
from mrct.jobs.recon import METHODS, expected_shape, output_prefix
from mrct.physics import NUFFT, radial_trajectory
from mrct.recon.datasets import ellipse_images
from mrct.recon.pretrained import list_pretrained, operator_for

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def _recon(*args):
    return runner.invoke(app, ["recon", *map(str, args)])


def _ok(*args):
    result = _recon(*args)
    assert result.exit_code == 0, f"exit {result.exit_code}:\n{result.output}\n{result.exception!r}"
    return result


def _rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def ct_case(tmp_path_factory):
    """Two 256 x 256 ellipse phantoms, their 23-view fan-beam sinograms and the Hann FBP."""
    folder = tmp_path_factory.mktemp("ct")
    truth = ellipse_images(2, 256, seed=11)
    A = operator_for("ct", 16)
    sino = A(truth)
    fbp = A.fbp(sino, filter="hann").clamp_min(0.0)
    np.save(folder / "scan.npy", sino.numpy())
    np.save(folder / "slice.npy", sino[0].numpy())
    return {"dir": folder, "truth": truth.numpy(), "sino": sino.numpy(), "fbp": fbp.numpy()}


def test_expected_shapes_match_the_operators():
    assert expected_shape("ct", 16) == (23, 511) == operator_for("ct", 16).geometry.proj_shape
    assert expected_shape("mri", 16) == (32, 363) == operator_for("mri", 16).geometry.proj_shape
    assert expected_shape("ct", 4) == operator_for("ct", 4).geometry.proj_shape


def test_help_lists_the_methods():
    out = _ok("--help").output
    for name in METHODS:
        assert name in out
    for opt in ("--method", "--task", "--sparsity", "--out", "--device"):
        assert opt in out


def test_fbp_batch_writes_npy_nifti_png(ct_case):
    result = _ok(ct_case["dir"] / "scan.npy", "--method", "fbp")
    prefix = ct_case["dir"] / "scan_fbp"  # default: next to the input
    npy, nii, png = (prefix.with_name(prefix.name + s) for s in (".npy", ".nii.gz", ".png"))
    for p in (npy, nii, png):
        assert p.is_file() and str(p) in result.output
    assert "FBP of 2 sinograms" in result.output and " s" in result.output
    img = np.load(npy)
    assert img.shape == (2, 256, 256) and img.dtype == np.float32
    np.testing.assert_allclose(img, ct_case["fbp"], rtol=1e-5, atol=1e-7)
    assert _rel(img, ct_case["truth"]) < 0.5  # a sparse-view FBP of the phantom, not noise
    vol = read_nifti(nii)
    np.testing.assert_array_equal(vol.array, img)  # same orientation back
    np.testing.assert_allclose(vol.spacing, (1.0, 1.0, 1.0))
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert not list(ct_case["dir"].glob(".*"))  # no temporary files left


def test_tv_pdhg_single_slice_to_a_named_output(ct_case, tmp_path):
    out = tmp_path / "res" / "tv.nii.gz"  # a known suffix is dropped from -o
    result = _ok(ct_case["dir"] / "slice.npy", "-m", "tv-pdhg", "--tv-iters", 8, "-o", out,
                 "--no-png")  # fmt: skip
    assert "8 iterations" in result.output
    img = np.load(tmp_path / "res" / "tv.npy")
    assert img.shape == (256, 256)  # 2D in, 2D out
    assert not (tmp_path / "res" / "tv.png").exists()
    assert read_nifti(tmp_path / "res" / "tv.nii.gz").array.shape == (1, 256, 256)
    truth, fbp = ct_case["truth"][0], ct_case["fbp"][0]
    assert img.min() >= 0.0
    # TV removes streaks: closer to the phantom than the FBP it starts from
    assert _rel(img, truth) < 0.95 * _rel(fbp, truth)


def test_sirt_into_a_folder(ct_case, tmp_path):
    _ok(ct_case["dir"] / "slice.npy", "-m", "sirt", "--iters", 5, "-o", f"{tmp_path}/")
    img = np.load(tmp_path / "slice_sirt.npy")
    assert img.shape == (256, 256) and img.min() >= 0.0
    assert _rel(img, ct_case["truth"][0]) < 1.0


@pytest.mark.parametrize("method", ["fbpconvnet", "lpd", "pdunet"])
def test_learned_method_or_clear_error(ct_case, tmp_path, method):
    name = f"{method}-ct-sparse16"
    result = _recon(ct_case["dir"] / "slice.npy", "-m", method, "-o", tmp_path / "x")
    if name not in list_pretrained():
        assert result.exit_code == 2
        assert f"{name!r} are not installed" in result.output
        assert "installed models" in result.output
        assert not (tmp_path / "x.npy").exists()
        return
    assert result.exit_code == 0, result.output
    img = np.load(tmp_path / "x.npy")
    assert img.shape == (256, 256) and np.isfinite(img).all() and img.min() >= 0.0
    corr = np.corrcoef(img.ravel(), ct_case["fbp"][0].ravel())[0, 1]
    assert corr > 0.8  # the same object as the FBP shows


def test_learned_method_runs_the_installed_weights(ct_case, tmp_path, monkeypatch):
    """With (stand-in) weights installed, the job gives exactly the model's output."""
    import importlib
    import json

    from safetensors.torch import save_file

    pre = importlib.import_module("mrct.recon.pretrained")  # mrct.recon.pretrained is a function

    kwargs = {"n_iter": 1, "depth": 2, "wf": 2, "width": 8, "img_scale": 0.03}
    torch.manual_seed(0)
    model = pre.build_model("pdunet", operator_for("ct", 16), **kwargs).eval()
    weights = tmp_path / "w.safetensors"
    save_file(model.state_dict(), str(weights), metadata={"model_kwargs": json.dumps(kwargs)})
    real = pre.weights_path
    monkeypatch.setattr(pre, "weights_path", lambda name: weights if name ==
                        "pdunet-ct-sparse16" else real(name))  # fmt: skip
    _ok(ct_case["dir"] / "scan.npy", "-m", "pdunet", "-o", tmp_path / "p", "--no-png")
    with torch.no_grad():
        ref = model(torch.from_numpy(ct_case["sino"])).clamp_min(0.0).numpy()
    img = np.load(tmp_path / "p.npy")
    assert img.shape == (2, 256, 256)
    np.testing.assert_allclose(img, ref, rtol=1e-4, atol=1e-6)


def test_learned_method_without_a_shipped_model(ct_case, tmp_path):
    A = operator_for("ct", 8)
    np.save(tmp_path / "s8.npy", A(torch.from_numpy(ct_case["truth"][:1])).numpy())
    result = _recon(tmp_path / "s8.npy", "-m", "pdunet", "--sparsity", 8)
    assert result.exit_code == 2
    assert "no shipped PD-UNet model for CT sparsity 8" in result.output


@pytest.fixture(scope="module")
def mri_case(tmp_path_factory):
    """Shepp-Logan phantom: radial k-space on 32 of 512 equidistant spokes (exact NUFFT)."""
    folder = tmp_path_factory.mktemp("mri")
    x = torch.from_numpy(np.asarray(shepp_logan((256, 256)), np.float32))
    n_samples = int(math.ceil(256 * math.sqrt(2))) | 1
    traj = radial_trajectory(512, n_samples, golden=False)[::16].contiguous()
    k = NUFFT(traj, (256, 256), eps=1e-6)(x[None].to(torch.complex64))
    np.save(folder / "kspace.npy", k.numpy())
    np.savez(folder / "both.npz", kspace=k[0].numpy())
    A = operator_for("mri", 16)
    ref = A.fbp(A(x[None]), filter="hann").clamp_min(0.0)[0].numpy()
    return {"dir": folder, "truth": x.numpy(), "kspace": k.numpy(), "ref": ref}


def test_mri_radial_kspace_fbp(mri_case):
    _ok(mri_case["dir"] / "kspace.npy", "-m", "fbp", "--task", "mri", "--no-png")
    img = np.load(mri_case["dir"] / "kspace_fbp.npy")
    assert img.shape == (1, 256, 256)
    # Fourier slice theorem: k-space spokes give the Radon projections of the phantom
    assert _rel(img, mri_case["ref"]) < 0.05
    assert _rel(img, mri_case["truth"]) < 0.6


def test_mri_npz_kspace_and_real_sinogram_agree(mri_case, tmp_path):
    from mrct.physics import radial_to_sinogram

    _ok(mri_case["dir"] / "both.npz", "-m", "fbp", "--task", "mri", "-o", tmp_path / "a")
    angles = np.arange(0, 512, 16) * math.pi / 512
    sino = radial_to_sinogram(torch.from_numpy(mri_case["kspace"][0]), angles, (256, 256))[0]
    np.savez(tmp_path / "s.npz", sinogram=sino.real.numpy())
    _ok(tmp_path / "s.npz", "-m", "fbp", "--task", "mri", "-o", tmp_path / "b")
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == b.shape == (256, 256)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "make, args, message",
    [
        (lambda d: np.save(d / "x.npy", np.zeros((22, 511), np.float32)), [],
         "expected shape (23, 511) or (B, 23, 511) for CT sparsity 16, got (22, 511)"),
        (lambda d: np.save(d / "x.npy", np.zeros((4, 2, 23, 511), np.float32)), [],
         "got (4, 2, 23, 511)"),
        (lambda d: np.save(d / "x.npy", np.zeros((32, 363), np.float32)), [],
         "this is the shape for --task mri"),
        (lambda d: np.save(d / "x.npy", np.full((23, 511), np.nan, np.float32)), [],
         "11753 of 11753 values are NaN or Inf"),
        (lambda d: np.save(d / "x.npy", np.zeros((23, 511), np.complex64)), [],
         "a CT sinogram must be real"),
        (lambda d: np.save(d / "x.npy", np.array(["a"] * 3)), [], "expected a numeric array"),
        (lambda d: np.save(d / "x.npy", np.zeros((0, 23, 511), np.float32)), [],
         "the batch is empty"),
        (lambda d: np.savez(d / "x.npz", image=np.zeros((23, 511))), [],
         "exactly one array named 'sinogram' or 'kspace', found ['image']"),
        (lambda d: np.savez(d / "x.npz", kspace=np.zeros((32, 363))), ["--task", "mri"],
         "'kspace' must be complex"),
        (lambda d: (d / "x.txt").write_text("1 2 3"), [], "must be a .npy or .npz file"),
        (lambda d: None, [], "input file not found"),
        (lambda d: np.save(d / "x.npy", np.zeros((23, 511), np.float32)), ["--task", "pet"],
         'task must be "ct" or "mri"'),
        (lambda d: np.save(d / "x.npy", np.zeros((23, 511), np.float32)), ["--sparsity", 200],
         "sparsity must be an integer in 1 .. 180"),
        (lambda d: np.save(d / "x.npy", np.zeros((23, 511), np.float32)), ["--device", "tpu"],
         "device must be"),
    ],
)  # fmt: skip
def test_bad_inputs_are_clear_errors(tmp_path, make, args, message):
    make(tmp_path)
    files = sorted(tmp_path.iterdir())
    path = files[0] if files else tmp_path / "missing.npy"
    result = _recon(path, "-m", "fbp", *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert sorted(tmp_path.iterdir()) == files  # nothing written


def test_unknown_method_is_rejected(ct_case):
    result = _recon(ct_case["dir"] / "slice.npy", "-m", "art")
    assert result.exit_code != 0
    assert "art" in result.output


def test_output_prefix(tmp_path):
    src = tmp_path / "a" / "scan.npz"
    assert output_prefix(src, "lpd") == tmp_path / "a" / "scan_lpd"
    assert output_prefix(src, "lpd", tmp_path / "r.npy") == tmp_path / "r"
    assert output_prefix(src, "lpd", tmp_path) == tmp_path / "scan_lpd"
    assert output_prefix(src, "lpd", f"{tmp_path}/new/") == tmp_path / "new" / "scan_lpd"
