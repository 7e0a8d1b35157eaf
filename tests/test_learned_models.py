"""Learned reconstructors: shapes, forward/backward at tiny sizes, the published initial
behaviour, and input checks."""

import numpy as np
import pytest
import torch

from mrct.nn import UNet
from mrct.physics import FanBeam, ParallelBeam, Radon
from mrct.recon.fbpconvnet import FBPConvNet
from mrct.recon.primal_dual import LearnedPrimalDual, PrimalDualUNet


@pytest.fixture(scope="module")
def fan():
    geo = FanBeam(np.deg2rad(np.arange(0, 360, 16)), 33, 1.0, 60.0, 25.0)
    return Radon(geo, (24, 24))


@pytest.mark.parametrize("shape", [(32, 32), (33, 50), (1, 1)])
def test_unet_keeps_size(shape):
    torch.manual_seed(0)
    assert UNet(5, 4, depth=4, wf=3)(torch.rand(2, 5, *shape)).shape == (2, 4, *shape)


def test_pdunet_starts_as_the_hann_fbp(fan):
    torch.manual_seed(0)
    g = fan(torch.rand(2, 24, 24))
    m = PrimalDualUNet(fan, depth=2, wf=3, img_scale=0.5).eval()
    torch.testing.assert_close(m(g), fan.fbp(g, filter="hann"))


@pytest.mark.parametrize("make", ["pdunet", "lpd", "fbpconvnet"])
def test_models_run_forward_and_backward(fan, make):
    torch.manual_seed(0)
    m = {
        "pdunet": lambda: PrimalDualUNet(fan, depth=2, wf=3),
        "lpd": lambda: LearnedPrimalDual(fan, n_iter=3, width=8),
        "fbpconvnet": lambda: FBPConvNet(fan, depth=2, wf=3),
    }[make]()
    if make == "pdunet":
        with torch.no_grad():  # leave the identity start so every block gets a gradient
            m.primal_weight.fill_(0.1)
    x = torch.rand(2, 24, 24)
    out = m(fan(x))
    assert out.shape == (2, 24, 24) and out.dtype == torch.float32
    torch.nn.functional.l1_loss(out, x).backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    if make != "fbpconvnet":  # gradients reach the first dual block through the projector
        first = m.dual[0][1 if make == "pdunet" else 0]
        assert float(first.weight.grad.abs().sum()) > 0


def test_lpd_uses_the_normalised_operator(fan):
    m = LearnedPrimalDual(fan, n_iter=1, width=4)
    assert float(m.opnorm) == pytest.approx(float(fan.opnorm()), rel=1e-2)


def test_models_reject_wrong_sinograms(fan):
    m = PrimalDualUNet(fan, depth=2, wf=3)
    with pytest.raises(ValueError, match=r"\(B, 23, 33\)"):
        m(torch.rand(2, 22, 33))
    with pytest.raises(ValueError, match="shape"):
        m(torch.rand(23, 33))
    with pytest.raises(TypeError, match="real floating"):
        m(torch.rand(1, 23, 33, dtype=torch.complex64))
    with pytest.raises(ValueError, match="2D"):
        geo3 = __import__("mrct.physics", fromlist=["ConeBeam"]).ConeBeam(
            np.linspace(0, 6, 4), (4, 5), 1.0, 30.0, 10.0
        )
        PrimalDualUNet(Radon(geo3, (4, 5, 5)))


def test_parallel_geometry_works_for_radial_mri_style_sinograms():
    A = Radon(ParallelBeam(np.linspace(0, np.pi, 8, endpoint=False), 23, 1.0), (16, 16))
    m = PrimalDualUNet(A, depth=2, wf=3)
    assert m(A(torch.rand(3, 16, 16))).shape == (3, 16, 16)
