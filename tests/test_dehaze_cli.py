"""``mrct dehaze``: RF / B-mode frames in, dehazed frames and a before/after PNG out."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from mrct.cli import app
from mrct.synth.dehazing import UNetScorePrior

runner = CliRunner()


@pytest.fixture
def priors(tmp_path):
    paths = []
    for k in range(2):
        m = UNetScorePrior(image_size=(16, 8), block_out_channels=(8, 8))
        paths.append(str(m.save(tmp_path / f"prior{k}.safetensors")))
    return paths


def test_dehaze_rf_npy(tmp_path, priors):
    rf = np.random.default_rng(0).standard_normal((2, 24, 12)).astype(np.float32)
    np.save(tmp_path / "rf.npy", rf)
    out = tmp_path / "out"
    res = runner.invoke(app, ["dehaze", str(tmp_path / "rf.npy"), "--out", str(out),
                              "--steps", "3", "--strength", "0.5", "--tissue-prior", priors[0],
                              "--haze-prior", priors[1]])  # fmt: skip
    assert res.exit_code == 0, res.output
    x = np.load(out / "dehazed.npy")
    assert x.shape == rf.shape and np.isfinite(x).all()
    assert np.load(out / "haze.npy").shape == rf.shape
    assert (out / "before_after.png").stat().st_size > 1000


def test_dehaze_bmode_png_and_errors(tmp_path, priors):
    from mrct.io import save_image_png

    save_image_png(np.random.default_rng(1).random((20, 16)), tmp_path / "b.png")
    args = ["--steps", "2", "--tissue-prior", priors[0], "--haze-prior", priors[1]]
    res = runner.invoke(app, ["dehaze", str(tmp_path / "b.png"), "--domain", "bmode",
                              "--out", str(tmp_path / "o"), *args])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert np.load(tmp_path / "o" / "dehazed.npy").shape == (1, 20, 16)
    res = runner.invoke(app, ["dehaze", str(tmp_path / "b.png"), *args])  # an image as RF
    assert res.exit_code == 2 and "--domain bmode" in res.output
    res = runner.invoke(app, ["dehaze", str(tmp_path / "missing.npy"), *args])
    assert res.exit_code == 2
