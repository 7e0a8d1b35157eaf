"""mrct.recon.simulate / recommended, `mrct recon --simulate`, and scripts/tune_tv.py."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import mrct.recon as recon
from mrct.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_simulate_ct_matches_the_training_pipeline():
    from mrct.recon.datasets import _pairs, ct_operators, hu_to_mu

    hu = np.full((512, 512), -1000.0, np.float32)
    hu[128:384, 160:352] = 40.0
    g, ref = recon.simulate(hu, "ct-sparse16")
    assert g.shape == (23, 511) and ref.shape == (256, 256) and g.dtype == torch.float32
    full, views, _ = ct_operators(16, 256)
    mu = torch.nn.functional.interpolate(hu_to_mu(torch.from_numpy(hu))[None, None],
                                         size=(256, 256), mode="area")[0]  # fmt: skip
    g2, ref2 = _pairs(full, views, mu)
    torch.testing.assert_close(g, g2[0])
    torch.testing.assert_close(ref, ref2[0])
    # any size: padded with air to a square, resampled
    g3, ref3 = recon.simulate(torch.from_numpy(hu[:300, :200]), "ct-sparse8", photons=1e5, seed=1)
    assert g3.shape == (45, 511) and ref3.shape == (256, 256)
    assert torch.equal(g3, recon.simulate(hu[:300, :200], "ct-sparse8", photons=1e5, seed=1)[0])
    with pytest.raises(ValueError, match="task"):
        recon.simulate(hu, "pet-sparse16")
    with pytest.raises(ValueError, match="2D"):
        recon.simulate(hu[None], "ct-sparse16")


def test_simulate_mri_scales_the_magnitude():
    img = np.zeros((60, 40))
    img[20:40, 10:30] = 7.0
    g, ref = recon.simulate(img, "mri-radial16")
    assert g.shape == (32, 363) and ref.shape == (256, 256)
    assert 0.5 < float(ref.max()) < 1.5  # divided by its maximum
    g2, _ = recon.simulate(img * 100 * (1 + 0j), "mri-radial16")
    torch.testing.assert_close(g, g2, atol=1e-4, rtol=1e-3)
    with pytest.raises(ValueError, match="CT"):
        recon.simulate(img, "mri-radial16", photons=1e5)


def test_recommended_models():
    from mrct.recon.pretrained import RECOMMENDED

    assert set(RECOMMENDED) == {"ct-sparse4", "ct-sparse8", "ct-sparse16", "mri-radial16"}
    with pytest.raises(ValueError, match="task must be"):
        recon.recommended("ct-sparse5")
    if RECOMMENDED["ct-sparse4"] is None:
        with pytest.raises(ValueError, match="available|recommended model"):
            recon.recommended("ct-sparse4")
    assert "pdunet-ct-sparse16" in recon.list_pretrained()  # shipped with the package
    m = recon.recommended("ct-sparse16")
    assert m.pretrained_name == RECOMMENDED["ct-sparse16"] and not m.training
    g, ref = recon.simulate(
        np.zeros((64, 64)) - 1000.0 + 1040.0 * (np.arange(64) % 2), "ct-sparse16"
    )
    with torch.no_grad():
        assert m(g[None]).shape == (1, 256, 256)


def test_recon_cli_simulate(tmp_path):
    img = np.full((128, 128), -1000.0, np.float32)
    img[32:96, 32:96] = 0.0
    np.save(tmp_path / "slice.npy", img)
    r = CliRunner().invoke(app, ["recon", "--simulate", str(tmp_path / "slice.npy"), "-m", "fbp",
                                 "-o", str(tmp_path) + "/", "--no-png"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "SSIM" in r.output and "ct-sparse16" in r.output
    assert (tmp_path / "slice_fbp.npy").is_file()
    assert np.load(tmp_path / "slice_fbp_reference.npy").shape == (256, 256)
    r = CliRunner().invoke(app, ["recon", "-m", "fbp"])
    assert r.exit_code == 2 and "--simulate" in r.output


@pytest.mark.data
def test_tune_tv_script_at_small_size(tmp_path):
    from mrct.data import require_shared_data

    require_shared_data()
    spec = importlib.util.spec_from_file_location("tune_tv", ROOT / "scripts" / "tune_tv.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "tv.json"
    assert mod.main(["--size", "32", "--max-slices", "1", "--n-head", "1", "--lams", "0.01",
                     "0.05", "--iters", "3", "6", "--json", str(out)]) == 0  # fmt: skip
    import json

    res = json.loads(out.read_text())
    assert len(res["rows"]) == 4 and res["choice"]["iters"] in (3, 6)
    assert set(res["rows"][0]["ssim"]) == {"chest", "head"}
    assert all(r["seconds_per_slice"] > 0 for r in res["rows"])
