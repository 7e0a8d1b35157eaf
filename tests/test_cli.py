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
# demo (one small run shared by the tests below; ~10 s, mostly Numba JIT compilation)
# ---------------------------------------------------------------------------------------------

SIZE, VIEWS = 64, 60


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_out")
    result = _invoke("demo", "--size", str(SIZE), "--views", str(VIEWS), "--out", str(out))
    return out, result


def test_demo_metrics(demo_run):
    out, _ = demo_run
    data = json.loads((out / "metrics.json").read_text())
    assert data["size"] == SIZE
    assert data["n_views"] == VIEWS
    recs = data["reconstructions"]
    expected = {
        f"{g}_{m}" for g in ("parallel", "fan") for m in ("fbp_full", "fbp_sparse", "sirt_sparse")
    }
    assert set(recs) == expected
    for key, m in recs.items():
        assert set(m) >= {"psnr", "ssim", "nmse", "views"}, key
    for geo in ("parallel", "fan"):
        full, sparse, it = (recs[f"{geo}_{m}"] for m in ("fbp_full", "fbp_sparse", "sirt_sparse"))
        assert full["views"] == VIEWS
        assert sparse["views"] == it["views"] < VIEWS
        # measured at 64 x 64, 60 views: parallel 21.3 dB / 0.81, fan 23.3 dB / 0.76
        assert full["psnr"] > 20.0, (geo, full)
        assert full["ssim"] > 0.7, (geo, full)
        assert full["nmse"] < 0.2, (geo, full)
        # full-view FBP beats sparse-view FBP; SIRT beats FBP on the same sparse views
        assert full["psnr"] > sparse["psnr"] + 1.0, geo
        assert it["psnr"] > sparse["psnr"] + 1.0, (geo, it, sparse)
        assert it["ssim"] > sparse["ssim"] + 0.05, (geo, it, sparse)
        assert it["nmse"] < sparse["nmse"], geo


def test_demo_stdout(demo_run):
    out, result = demo_run
    text = result.stdout
    for key in ("parallel_fbp_full", "fan_sirt_sparse", "PSNR", "SSIM"):
        assert key in text
    assert "wrote" in text
    assert str(out / "metrics.json") in text


def test_demo_pngs(demo_run):
    import matplotlib.image as mpimg

    out, _ = demo_run
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} >= {"phantom.png", "sinograms.png", "reconstructions.png"}
    for p in pngs:
        with open(p, "rb") as f:
            assert f.read(8) == PNG_MAGIC, p
        img = mpimg.imread(p)
        assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50, (p, img.shape)
        assert img.std() > 0.01, f"{p} looks blank"


def test_demo_leaves_no_temp_files(demo_run):
    out, _ = demo_run
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers == []
