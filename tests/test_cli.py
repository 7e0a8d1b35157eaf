"""The ``mrct`` command line: help, version, ``info`` and a small ``demo`` run."""

from __future__ import annotations

import json

import numba
import pytest
import torch
import typer
from typer.testing import CliRunner

import mrct
from mrct.cli import app

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

runner = CliRunner()


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (
        f"mrct {' '.join(args)} exited with {result.exit_code}:\n{result.output}\n"
        f"{result.exception!r}"
    )
    return result


def _command_names() -> list[str]:
    return sorted(typer.main.get_command(app).commands)


def test_help_lists_commands():
    out = _invoke("--help").output
    assert "Usage" in out
    for name in ("info", "demo"):
        assert name in out


def test_no_args_shows_help():
    result = runner.invoke(app, [])
    assert "Usage" in result.output
    assert "demo" in result.output


def test_known_commands_registered():
    assert {"info", "demo"} <= set(_command_names())


@pytest.mark.parametrize("name", _command_names())
def test_every_command_has_help(name):
    out = _invoke(name, "--help").output
    assert "Usage" in out
    assert name in out


def test_version():
    out = _invoke("--version").output
    assert out.strip() == f"mrct {mrct.__version__}"


@pytest.mark.parametrize("sim", [False, True])
def test_info_text(monkeypatch, sim):
    # numba.cuda must already be imported (as it is by the time any kernel ran): importing it
    # while the flag is patched would swap the simulator for the real driver module
    import numba.cuda  # noqa: F401

    monkeypatch.setattr(numba.config, "ENABLE_CUDASIM", int(sim))
    out = _invoke("info").output
    assert f"torch        {torch.__version__}" in out
    assert f"numba        {numba.__version__}" in out
    assert f"CUDA simulator {'on' if sim else 'off'}" in out
    assert f"CUDA simulator {'off' if sim else 'on'}" not in out


def test_info_text_matches_environment():
    out = _invoke("info").output
    state = "on" if numba.config.ENABLE_CUDASIM else "off"
    assert f"CUDA simulator {state}" in out


def test_info_json():
    data = json.loads(_invoke("info", "--json").stdout)
    assert data["cuda_simulator"] == bool(numba.config.ENABLE_CUDASIM)
    assert data["torch_cuda_available"] == torch.cuda.is_available()
    assert data["packages"]["torch"] == torch.__version__
    assert data["packages"]["numba"] == numba.__version__
    assert data["packages"]["mrct"] == mrct.__version__


# ---------------------------------------------------------------------------------------------
# demo: the main job, one small run shared by the tests below (1 CT and 1 MRI slice, a short
# TV-PDHG); real data when ../shared/data exists, built-in phantoms otherwise
# ---------------------------------------------------------------------------------------------

METHODS = ("FBP", "TV-PDHG", "FBPConvNet", "LPD", "PD-UNet")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_out")
    result = _invoke("demo", "--ct-slices", "1", "--mri-slices", "1", "--tv-iters", "30",
                     "--no-progress", "--out", str(out))  # fmt: skip
    return out, result


def test_demo_metrics(demo_run):
    from mrct.recon.pretrained import list_pretrained

    out, _ = demo_run
    data = json.loads((out / "metrics.json").read_text())
    assert set(data["tasks"]) == {"ct", "mri"}
    shipped = set(list_pretrained())
    for task, t in data["tasks"].items():
        assert t["slices"] == 1
        assert set(t["methods"]) == set(METHODS), task
        fbp, tv = t["methods"]["FBP"], t["methods"]["TV-PDHG"]
        for m in (fbp, tv):
            assert set(m) >= {"ssim", "psnr", "nmse", "seconds_per_slice"}
        # the regularised reconstruction beats FBP on the same undersampled data
        assert tv["ssim"][0] > fbp["ssim"][0] + 0.1, (task, tv, fbp)
        assert tv["nmse"][0] < fbp["nmse"][0], task
        for name, key in (("PD-UNet", "pdunet"), ("LPD", "lpd"), ("FBPConvNet", "fbpconvnet")):
            tag = f"{key}-{task}-" + ("sparse16" if task == "ct" else "radial16")
            m = t["methods"][name]
            if tag in shipped:
                assert "ssim" in m, (task, name, m)
            else:
                assert "no shipped model" in m["note"], (task, name, m)
        if (
            data["real_data"]
            and f"pdunet-{task}-" + ("sparse16" if task == "ct" else "radial16") in shipped
        ):
            assert t["methods"]["PD-UNet"]["ssim"][0] > fbp["ssim"][0] + 0.1, task


def test_demo_stdout(demo_run):
    out, result = demo_run
    text = result.stdout
    for key in ("CT, 23 of 360 views", "radial MRI, 32 of 512 spokes", "SSIM", "PSNR", *METHODS):
        assert key in text
    assert "wrote" in text
    assert str(out / "metrics.json") in text


def test_demo_pngs(demo_run):
    import matplotlib.image as mpimg

    out, _ = demo_run
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} == {"comparison.png"}
    for p in pngs:
        with open(p, "rb") as f:
            assert f.read(8) == PNG_MAGIC, p
        img = mpimg.imread(p)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 600, (p, img.shape)
        assert img.std() > 0.01, f"{p} looks blank"


def test_demo_leaves_no_temp_files(demo_run):
    out, _ = demo_run
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_drr_writes_png_and_nifti(tmp_path):
    import nibabel as nib
    import numpy as np

    hu = np.full((24, 20, 16), -1000.0, np.float32)
    hu[6:18, 5:15, 4:12] = 0.0  # a water box in air
    hu[10:14, 8:12, 6:10] = 1000.0  # bone inside
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(hu, np.diag([2.0, 2.0, 2.0, 1.0])), path)
    out = tmp_path / "drr"
    res = _invoke("drr", str(path), "--view", "ap", "--view", "lateral", "--height", "24",
                  "--pixel-spacing", "3", "-o", str(out))  # fmt: skip
    for v in ("ap", "lateral"):
        assert (out / f"drr_{v}.png").read_bytes()[:8] == PNG_MAGIC
        img = np.asarray(nib.load(out / f"drr_{v}.nii").dataobj)
        assert img.shape[:2] == (24, 24) and float(img.max()) > 0.5  # mm * mm^-1 of tissue
        assert v in res.stdout
