"""SRUNet / DDoSUNet and the stepwise inference of DDoS-UNet."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mrct.recon import DDoSUNet, SRUNet, load_sr_model, super_resolve_series
from mrct.recon.sr.data import sr_task
from mrct.training import save_checkpoint


@pytest.mark.parametrize("cls, c", [(SRUNet, 1), (DDoSUNet, 2)])
@pytest.mark.parametrize("dims, spatial", [(2, (17, 20)), (3, (5, 12, 9))])
def test_shapes_any_size(cls, c, dims, spatial):
    m = cls(features=4, dims=dims)
    x = torch.rand(2, c, *spatial)
    y = m(x)
    assert y.shape == (2, 1, *spatial)
    # residual with a zero last layer: the untrained model returns its current input
    torch.testing.assert_close(y, x[:, c - 1 : c])


def test_paper_configuration():
    m = DDoSUNet()
    assert (m.dims, m.depth, m.features, m.in_channels) == (3, 3, 64, 2)
    convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv3d)]
    assert convs[0].in_channels == 2 and convs[0].out_channels == 64
    assert max(c.out_channels for c in convs) == 256  # 64 -> 128 -> 256
    assert not any(isinstance(mod, nn.modules.batchnorm._BatchNorm) for mod in m.modules())
    assert SRUNet().in_channels == 1 and not SRUNet.uses_prior and DDoSUNet.uses_prior


def test_wrong_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        DDoSUNet(features=4, dims=2)(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 1, D, H, W\)"):
        SRUNet(features=4, dims=3)(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="dims"):
        SRUNet(dims=4)


class Recorder(nn.Module):
    """A mock DDoS model: records every input, returns prior + 10 * (t + 1) for step t."""

    uses_prior = True
    dims = 2

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.clone())
        return x[:, :1] + 10.0 * len(self.inputs)


def test_stepwise_inference_uses_the_right_prior():
    T, H, W = 4, 6, 5
    series = torch.rand(T, H, W, dtype=torch.float64)
    prior = torch.rand(H, W, dtype=torch.float64)
    rec = Recorder()
    out = super_resolve_series(rec, series, prior, progress=False)
    assert out.shape == (T, H, W) and out.dtype == torch.float64
    assert len(rec.inputs) == T
    for t, x in enumerate(rec.inputs):
        assert x.shape == (1, 2, H, W)
        torch.testing.assert_close(x[0, 1], series[t])  # the current time point
        expected_prior = prior if t == 0 else out[t - 1]  # planning scan, then SR output t-1
        torch.testing.assert_close(x[0, 0], expected_prior)
    # the outputs chain: out[t] = prior + 10 (1 + 2 + ... + (t + 1))
    for t in range(T):
        torch.testing.assert_close(out[t], prior + 10.0 * sum(range(1, t + 2)))


def test_stepwise_inference_with_a_real_ddos_model_and_batch_axes():
    """A 2D model on a 3D series (T, D, H, W): the D slices are a batch, priors chain per slice."""
    torch.manual_seed(0)
    m = DDoSUNet(features=4, dims=2, residual=False)
    series, prior = torch.rand(3, 2, 16, 16), torch.rand(2, 16, 16)
    out = super_resolve_series(m, series, prior, progress=False)
    assert out.shape == (3, 2, 16, 16)
    with torch.no_grad():
        p = prior[:, None]
        for t in range(3):
            p = m(torch.cat([p, series[t][:, None]], 1))
            torch.testing.assert_close(out[t], p[:, 0])
    assert m.training  # training mode restored


def test_srunet_ignores_the_prior():
    torch.manual_seed(0)
    m = SRUNet(features=4, dims=2, residual=False)
    series = torch.rand(3, 16, 16)
    a = super_resolve_series(m, series, torch.rand(16, 16), progress=False)
    b = super_resolve_series(m, series, None, progress=False)
    torch.testing.assert_close(a, b)
    with torch.no_grad():
        torch.testing.assert_close(a, m(series[:, None])[:, 0])


def test_mismatched_shapes_are_clear_errors():
    m = DDoSUNet(features=4, dims=2)
    with pytest.raises(
        ValueError, match=r"prior must have the shape of one time point.*\(16, 16\)"
    ):
        super_resolve_series(m, torch.rand(3, 16, 16), torch.rand(32, 32), progress=False)
    with pytest.raises(ValueError, match=r"prior must have the shape"):
        super_resolve_series(m, torch.rand(3, 2, 16, 16), torch.rand(16, 16), progress=False)
    with pytest.raises(ValueError, match="planning scan"):
        super_resolve_series(m, torch.rand(3, 16, 16), None, progress=False)
    with pytest.raises(ValueError, match=r"\(T, \.\.\., D, H, W\)"):
        super_resolve_series(DDoSUNet(features=4, dims=3), torch.rand(3, 16, 16),
                             torch.rand(16, 16), progress=False)  # fmt: skip
    with pytest.raises(TypeError, match="real floating"):
        super_resolve_series(m, torch.zeros(3, 16, 16, dtype=torch.int32), None, progress=False)
    with pytest.raises(ValueError, match="NaN"):
        super_resolve_series(m, torch.full((3, 16, 16), float("nan")), torch.rand(16, 16),
                             progress=False)  # fmt: skip


def test_tiny_model_overfits_one_pair():
    """A tiny DDoS-UNet fits one (prior + low-res, high-res) pair: the loss drops >= 8x."""
    task = sr_task(0.04, source="phantom", size=32, n_frames=2, max_slices=1, splits=("train",))
    x, y = task.train.inputs[1:2], task.train.targets[1:2]
    assert x.shape == (1, 2, 32, 32) and y.shape == (1, 1, 32, 32)
    torch.manual_seed(0)
    m = DDoSUNet(features=8, dims=2)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(300):
        loss = torch.mean((m(x) - y) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[0] / min(losses[-10:]) > 8, (losses[0], losses[-10:])


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    m = DDoSUNet(features=4, dims=2, residual=False)
    path = save_checkpoint(tmp_path / "m.safetensors", m, model_kwargs=m.config)
    back = load_sr_model(path)
    assert isinstance(back, DDoSUNet) and back.config == m.config
    x = torch.rand(1, 2, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(back(x), m(x))
