"""mrct.synth core: ConditionalDiffusion (training, DDIM, EMA, CFG, 2.5D, checkpoints),
posterior sampling (DPS, DiffPIR) with mrct operators, and the SynthRAD2023 metric names."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mrct.metrics import synthrad_mae, synthrad_psnr, synthrad_ssim
from mrct.synth import ConditionalDiffusion, diffpir, dps, stack_neighbours
from mrct.synth.posterior import data_residual

TINY = dict(block_out_channels=(16, 32), norm_num_groups=8, num_train_timesteps=200)


def _pair(n=16):
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    target = ((xx**2 + yy**2) < 0.5).float() - 0.5 + 0.5 * (xx > 0.3).float()
    cond = 0.5 * target + 0.1
    return cond[None, None], target[None, None]


def _train(model, cond, target, steps, lr=2e-3, batch=4):
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(steps):
        c = None if cond is None else cond.repeat(batch, 1, 1, 1)
        loss = model(c, target.repeat(batch, 1, 1, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.on_optimizer_step()
    return model.eval()


# ------------------------------------------------------------------------------ metrics


def test_synthrad_metrics_hand_computed():
    # 8 x 8 image, mask = 4 x 4 centre block; prediction off by +100 HU on the mask and by a
    # huge value outside (which must not count), and one voxel beyond the clip range
    target = np.zeros((8, 8))
    mask = np.zeros((8, 8))
    mask[2:6, 2:6] = 1
    pred = target + 100.0
    pred[0, 0] = 5000.0  # outside the mask
    assert synthrad_mae(pred, target, mask) == pytest.approx(100.0)
    # MAE is unclipped: a voxel at 4000 HU inside the mask counts fully
    pred2 = pred.copy()
    pred2[3, 3] = 4000.0
    assert synthrad_mae(pred2, target, mask) == pytest.approx((15 * 100 + 4000) / 16)
    # PSNR clips to [-1024, 3000] first: error 3000 at that voxel, 100 elsewhere
    mse = (15 * 100**2 + 3000**2) / 16
    assert synthrad_psnr(pred2, target, mask) == pytest.approx(10 * math.log10(4024**2 / mse))
    assert synthrad_psnr(pred, target, mask) == pytest.approx(10 * math.log10(4024**2 / 100**2))
    # SSIM of identical images is 1; constant offset inside a constant mask region: by hand
    assert synthrad_ssim(target, target, mask) == pytest.approx(1.0)


def test_synthrad_ssim_constant_images_by_hand():
    # 7 x 7 (one SSIM window after the 3-pixel crop = centre pixel), all-inside mask, constant
    # images a and b: variances 0, so SSIM = (2 ua ub + C1) / (ua^2 + ub^2 + C1), shifted +1024
    a, b = 0.0, 200.0
    mask = np.ones((7, 7))
    ua, ub = a + 1024, b + 1024
    c1 = (0.01 * 4024) ** 2
    want = (2 * ua * ub + c1) / (ua**2 + ub**2 + c1)
    got = synthrad_ssim(np.full((7, 7), b), np.full((7, 7), a), mask)
    assert got == pytest.approx(want, rel=1e-12)


# ------------------------------------------------------------------------------ diffusion


@pytest.fixture
def one_thread():
    """Small convolutions run fastest (and reproducibly) on one thread on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_overfits_one_pair_and_samples_it_back(one_thread):
    # v-prediction: with ~250 steps a tiny epsilon-prediction model samples this pair back only
    # for some initialisations (its x0 estimates at high noise amplify eps errors by
    # sqrt((1 - abar) / abar)); the velocity parametrisation does so reliably
    torch.manual_seed(0)
    cond, target = _pair()
    m = ConditionalDiffusion(image_size=16, cond_channels=1, ema_decay=0.0,
                             prediction_type="v_prediction", **TINY)  # fmt: skip
    _train(m, cond, target, 250)
    s = m.sample(cond, steps=20, seed=0)
    assert s.shape == target.shape
    err = (s - target).abs().mean().item()
    assert err < 0.1, err  # target spans [-0.5, 1]
    assert err < 0.3 * (cond - target).abs().mean().item()


def test_noise_prediction_loss_decreases(one_thread):
    """The default DDPM noise-prediction (epsilon) loss trains: the fixed-generator eval loss
    falls well below its start (1 for a network that predicts 0)."""
    torch.manual_seed(1)
    cond, target = _pair()
    m = ConditionalDiffusion(image_size=16, cond_channels=1, ema_decay=0.0, **TINY)
    assert m.prediction_type == "epsilon"
    start = m.eval()(cond.repeat(8, 1, 1, 1), target.repeat(8, 1, 1, 1)).item()
    _train(m, cond, target, 60)
    end = m(cond.repeat(8, 1, 1, 1), target.repeat(8, 1, 1, 1)).item()
    assert end < 0.3 * start, (start, end)
    s = m.sample(cond, steps=10, seed=0)
    assert torch.isfinite(s).all() and s.abs().max() <= m.clip_range + 1e-5


def test_ddim_same_seed_is_deterministic_and_seeds_differ():
    torch.manual_seed(0)
    cond, _ = _pair()
    m = ConditionalDiffusion(image_size=16, cond_channels=1, **TINY).eval()
    a = m.sample(cond, steps=5, seed=3)
    b = m.sample(cond, steps=5, seed=3)
    c = m.sample(cond, steps=5, seed=4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(m.sample(cond, steps=5, generator=g1, eta=1.0),
                       m.sample(cond, steps=5, generator=g2, eta=1.0))  # fmt: skip
    # without a seed: a fresh one for the sampler only, the global torch RNG is left alone
    state = torch.get_rng_state()
    m.sample(cond, steps=2)
    assert torch.equal(torch.get_rng_state(), state)


def test_loss_shapes_errors_and_eval_determinism():
    m = ConditionalDiffusion(image_size=16, cond_channels=1, **TINY)
    cond, target = _pair()
    loss = m(cond[:, 0], target[:, 0])  # (B, H, W) accepted for one channel
    assert loss.ndim == 0 and torch.isfinite(loss)
    m.eval()
    assert m(cond, target).item() == m(cond, target).item()
    with pytest.raises(ValueError, match="condition"):
        m(torch.zeros(1, 2, 16, 16), target)
    with pytest.raises(ValueError, match="differ"):
        m(torch.zeros(2, 1, 16, 16), target)
    with pytest.raises(ValueError, match="needs a condition"):
        m.sample(None, shape=(1, 1, 16, 16))
    with pytest.raises(ValueError, match="prediction_type"):
        ConditionalDiffusion(prediction_type="x")


def test_ema_tracks_weights():
    torch.manual_seed(0)
    cond, target = _pair()
    m = ConditionalDiffusion(image_size=16, cond_channels=1, ema_decay=0.9, **TINY)
    before = [p.clone() for p in m.ema.parameters()]
    _train(m, cond, target, 3)
    assert int(m.ema_steps) == 3
    moved = any(not torch.equal(a, b) for a, b in zip(before, m.ema.parameters(), strict=True))
    assert moved
    # EMA is not the online network (decay > 0 after warm-up)
    assert any(not torch.equal(a, b) for a, b in
               zip(m.ema.parameters(), m.unet.parameters(), strict=True))  # fmt: skip
    assert not any(p.requires_grad for p in m.ema.parameters())


def test_classifier_free_guidance():
    torch.manual_seed(0)
    cond, target = _pair()
    m = ConditionalDiffusion(image_size=16, cond_channels=1, cond_drop_prob=0.2, **TINY)
    assert m.unet.config.in_channels == 3  # target + condition + indicator
    _train(m, cond, target, 2)
    a = m.sample(cond, steps=4, seed=0, guidance_scale=1.0)
    b = m.sample(cond, steps=4, seed=0, guidance_scale=3.0)
    assert a.shape == b.shape and not torch.equal(a, b)
    plain = ConditionalDiffusion(image_size=16, cond_channels=1, **TINY)
    with pytest.raises(ValueError, match="cond_drop_prob"):
        plain.sample(cond, steps=2, seed=0, guidance_scale=2.0)


def test_stack_neighbours_and_volume_sampling():
    vol = torch.arange(4.0)[:, None, None].expand(4, 8, 8)
    st = stack_neighbours(vol, 1)
    assert st.shape == (4, 3, 8, 8)
    assert st[0, :, 0, 0].tolist() == [0, 0, 1]  # edge replicated
    assert st[2, :, 0, 0].tolist() == [1, 2, 3]
    m = ConditionalDiffusion(image_size=16, cond_channels=3, context=1, **TINY).eval()
    out = m.sample_volume(torch.zeros(5, 16, 16), batch_size=2, steps=2, seed=0)
    assert out.shape == (5, 1, 16, 16)
    with pytest.raises(ValueError, match="2.5D"):
        m.sample_volume(torch.zeros(5, 2, 16, 16), steps=2)
    with pytest.raises(ValueError, match="divisible"):
        ConditionalDiffusion(cond_channels=2, context=1)


def test_safetensors_roundtrip(tmp_path):
    torch.manual_seed(0)
    cond, target = _pair()
    m = ConditionalDiffusion(image_size=16, cond_channels=1, info={"task": "cbct"}, **TINY)
    _train(m, cond, target, 2)
    p = m.save(tmp_path / "m.safetensors")
    from safetensors import safe_open

    with safe_open(str(p), "pt") as f:
        assert "model_kwargs" in f.metadata()
    m2 = ConditionalDiffusion.load(p)
    assert m2.info == {"task": "cbct"}
    assert torch.equal(m.sample(cond, steps=3, seed=1), m2.sample(cond, steps=3, seed=1))
    with pytest.raises(FileNotFoundError):
        ConditionalDiffusion.load(tmp_path / "missing.safetensors")


# ------------------------------------------------------------------------------ posterior


@pytest.fixture(scope="module")
def prior():
    """A tiny unconditional prior briefly trained on the Shepp-Logan phantom (in [-1, 1])."""
    from mrct.data import shepp_logan

    torch.manual_seed(0)
    x = torch.from_numpy(np.asarray(shepp_logan((32, 32)), np.float32))
    m = ConditionalDiffusion(image_size=32, cond_channels=0, ema_decay=0.0,
                             prediction_type="v_prediction", **TINY)  # fmt: skip
    _train(m, None, (2 * x - 1)[None, None], 40)
    return m, x


def _sparse_ct(n=32):
    from mrct.physics import ParallelBeam, Radon

    return Radon(ParallelBeam(np.linspace(0, np.pi, 8, endpoint=False), 47), (n, n))


def _undersampled_mri(n=32):
    from mrct.physics import CartesianMRI

    cols = torch.zeros(n)
    cols[::3] = 1
    cols[n // 2 - 2 : n // 2 + 2] = 1
    return CartesianMRI(cols[None, :].expand(n, n).contiguous())


@pytest.mark.parametrize("kind", ["ct", "mri"])
def test_posterior_sampling_lowers_data_residual(prior, kind):
    m, x = prior
    op, scale = (_sparse_ct(), 0.2) if kind == "ct" else (_undersampled_mri(), 2.0)
    y = op(x[None])
    kw = dict(image_scale=0.5, image_offset=0.5)  # model units [-1, 1] -> image [0, 1]
    shape = (1, 1, 32, 32)
    free = data_residual(op, y, m.sample(shape=shape, steps=10, seed=1), **kw)
    post = dps(m, op, y, shape=shape, steps=10, scale=scale, seed=1, **kw)
    pir = diffpir(m, op, y, shape=shape, steps=8, seed=1, **kw)
    r_dps = data_residual(op, y, post, **kw)
    r_pir = data_residual(op, y, pir, **kw)
    assert post.shape == pir.shape == shape
    assert r_dps.item() < 0.85 * free.item()  # ~0.57 (CT) and ~0.65-0.75 (MRI) measured
    assert r_pir.item() < 0.5 * free.item()
    # determinism of the posterior samplers
    assert torch.equal(pir, diffpir(m, op, y, shape=shape, steps=8, seed=1, **kw))


def test_posterior_argument_errors(prior):
    m, x = prior
    op = _sparse_ct()
    y = op(x[None])
    with pytest.raises(ValueError, match="shape"):
        dps(m, op, y, steps=2)
    with pytest.raises(ValueError, match="batch"):
        diffpir(m, op, y, shape=(2, 1, 32, 32), steps=2)
