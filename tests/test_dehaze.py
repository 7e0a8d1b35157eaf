"""The joint tissue/haze posterior sampler of mrct.synth.dehazing."""

import pytest
import torch

from mrct.synth.dehazing.priors import GaussianPrior
from mrct.synth.dehazing.sampler import VESDE, joint_posterior_sample


def _gaussian_problem(d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda: torch.randn(d, generator=g, dtype=torch.float64)  # noqa: E731
    u = lambda: torch.rand(d, generator=g, dtype=torch.float64)  # noqa: E731
    return dict(mx=0.5 * r(), mh=0.5 * r(), vx=0.2 + u(), vh=0.2 + u(), y=r())


def _analytic_posterior(p, gamma, rho):
    """Per-pixel posterior of (x, h) for y = x + gamma h + N(0, rho^2)."""
    pxx = 1 / p["vx"] + 1 / rho**2
    phh = 1 / p["vh"] + gamma**2 / rho**2
    pxh = gamma / rho**2
    det = pxx * phh - pxh**2
    cxx, chh, cxh = phh / det, pxx / det, -pxh / det
    bx = p["mx"] / p["vx"] + p["y"] / rho**2
    bh = p["mh"] / p["vh"] + gamma * p["y"] / rho**2
    return cxx * bx + cxh * bh, cxh * bx + chh * bh, cxx, chh, cxh


def test_gaussian_priors_give_the_analytic_posterior_within_5_percent():
    p = _gaussian_problem()
    gamma, rho, n = 0.8, 0.3, 20000
    y = p["y"].expand(n, -1).clone()
    px, ph = GaussianPrior(p["mx"], p["vx"]), GaussianPrior(p["mh"], p["vh"])
    x, h = joint_posterior_sample(y, px, ph, gamma=gamma, noise_std=rho, compand=False,
                                  n_steps=200, seed=0)  # fmt: skip
    mux, muh, cxx, chh, cxh = _analytic_posterior(p, gamma, rho)
    assert torch.all((x.mean(0) - mux).abs() <= 0.05 * cxx.sqrt())
    assert torch.all((h.mean(0) - muh).abs() <= 0.05 * chh.sqrt())
    assert torch.all((x.var(0) / cxx - 1).abs() <= 0.05)
    assert torch.all((h.var(0) / chh - 1).abs() <= 0.05)
    cov = ((x - x.mean(0)) * (h - h.mean(0))).mean(0)
    assert torch.all((cov - cxh).abs() <= 0.05 * (cxx * chh).sqrt())
    assert float((cxh / (cxx * chh).sqrt()).mean()) < -0.5  # x and h strongly anti-correlated


@pytest.mark.parametrize("guidance", ["pigdm", "dps", "projection"])
def test_variants_run_are_seeded_and_move_towards_the_data(guidance):
    prior_x = GaussianPrior(0.0, 0.05)
    prior_h = GaussianPrior(0.0, 0.05)
    y = 0.3 * torch.randn(2, 1, 8, 4, generator=torch.Generator().manual_seed(1))
    kw = dict(gamma=1.0, n_steps=20, guidance=guidance, compand=True, seed=3)
    x1, h1 = joint_posterior_sample(y, prior_x, prior_h, **kw)
    x2, h2 = joint_posterior_sample(y, prior_x, prior_h, **kw)
    torch.testing.assert_close(x1, x2)
    torch.testing.assert_close(h1, h2)
    assert x1.shape == y.shape and torch.isfinite(x1).all() and torch.isfinite(h1).all()


def test_sampler_arguments_and_sde():
    sde = VESDE(25.0)
    assert float(sde.std(1.0)) ** 2 == pytest.approx((625 - 1) / (2 * 3.2188758), rel=1e-6)
    y = torch.zeros(1, 4)
    prior = GaussianPrior(0.0, 1.0)
    with pytest.raises(ValueError):
        joint_posterior_sample(y, prior, prior, guidance="nope")
    with pytest.raises(ValueError):
        joint_posterior_sample(y, prior, prior, tau=0.0)
    seen = []
    joint_posterior_sample(y, prior, prior, n_steps=3, seed=0, compand=False,
                           step_callback=lambda i, t, x, h: seen.append(i))  # fmt: skip
    assert seen == [0, 1, 2]


def test_dehaze_frames_patchwise_rf_and_bmode():
    from mrct.synth import dehaze
    from mrct.synth.dehazing import patch_starts

    assert patch_starts(300, 128, 0.1) == [0, 86, 172]
    assert patch_starts(100, 128, 0.1) == [0]
    g = torch.Generator().manual_seed(0)
    y = torch.randn(2, 40, 20, generator=g)
    prior = GaussianPrior(0.0, 0.1)
    x = dehaze(y, prior, prior, strength=1.0, n_steps=5, seed=1, patch=(16, 8))
    assert x.shape == y.shape and torch.isfinite(x).all()
    x2, h2 = dehaze(y[0], prior, prior, n_steps=5, seed=1, patch=(16, 8), return_haze=True)
    assert x2.shape == h2.shape == (40, 20)
    x3 = dehaze(y[0], prior, prior, n_steps=5, seed=1, patch=(16, 8))
    torch.testing.assert_close(x2, x3)  # seeded
    b = dehaze(torch.rand(12, 10, generator=g), prior, prior, n_steps=3, seed=0, domain="bmode",
               patch=(16, 16))  # fmt: skip
    assert b.shape == (12, 10)
    with pytest.raises(ValueError):
        dehaze(y, prior, prior, domain="iq")


def test_unet_score_prior_loss_score_and_checkpoint(tmp_path):
    from mrct.synth.dehazing import UNetScorePrior

    m = UNetScorePrior(image_size=(16, 8), block_out_channels=(8, 8), variance=0.1)
    z = torch.randn(2, 1, 16, 8)
    loss = m(z, z)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    s = m.score(z, torch.tensor([0.5, 0.1]))
    assert s.shape == z.shape
    path = m.save(tmp_path / "prior.safetensors")
    m2 = UNetScorePrior.load(path)
    torch.testing.assert_close(
        m2.score(z, torch.tensor([0.3, 0.3])), m.score(z, torch.tensor([0.3, 0.3]))
    )
    assert m2.variance == pytest.approx(0.1)


def test_pretrained_names(tmp_path, monkeypatch):
    from mrct.synth import pretrained

    with pytest.raises(ValueError):
        pretrained("dehaze-nothing")
    monkeypatch.setenv("MRCT_DEHAZE_WEIGHTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="train_dehaze_priors"):
        pretrained("dehaze-tissue-rf")


def test_training_patches_from_simulated_frames():
    from mrct.synth.dehazing.data import make_dehaze_task, random_patches

    frames = torch.randn(2, 140, 70)
    p = random_patches(frames, 5, (128, 64), seed=0)
    assert p.shape == (5, 1, 128, 64)
    _, train, val, extra = make_dehaze_task(
        {
            "kind": "haze",
            "frames": 1,
            "val_frames": 1,
            "patches": 3,
            "val_patches": 2,
            "n_angles": 64,
            "source": "phantom",
        }  # fmt: skip
    )
    x, t = train[0]
    assert x.shape == (1, 128, 64) and len(train) == 3 and len(val) == 2
    assert float(x.abs().max()) <= 1.0
    with pytest.raises(ValueError):
        make_dehaze_task({"kind": "haze", "nonsense": 1})
