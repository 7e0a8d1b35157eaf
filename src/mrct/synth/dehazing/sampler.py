"""Joint posterior sampling of tissue ``x`` and haze ``h`` from ``y = x + h`` (Stevens et al.).

Two score priors (``prior.score(z, t)`` ~ grad log p_t(z) under the "simple" VE SDE
``dz = sigma^t dw``) are run backwards in time together by Euler-Maruyama steps, and after
each step a data-consistency update moves ``x`` and ``h`` towards ``y`` (weights ``lam`` and
``kappa``). Measurement model (``compand=True``, the paper's RF setting): the priors live in
the mu-law companded domain ``C``, and ``y = C(C^-1(x) + gamma C^-1(h))`` with the
signal-to-haze weight ``gamma`` (the user's "dehazing strength"); ``compand=False`` gives
the linear model ``y = x + gamma h``.

Guidance variants (``guidance=``):

* ``"pigdm"`` (pseudo-inverse guided, Song et al. 2023): the likelihood of ``y`` given the
  Tweedie estimates ``x0 = x_t + s_t^2 score_x``, ``h0 = h_t + s_t^2 score_h`` with variance
  ``r_x^2 + gamma^2 r_h^2 + rho^2``, ``r^2 = v s_t^2 / (v + s_t^2)`` (``v`` = the prior's
  ``variance``), differentiated through the Tweedie estimates and added to the scores, so
  that with ``lam = kappa = 1`` the reverse SDE targets the posterior. For Gaussian priors
  with diagonal covariance and the linear model this is the *exact* posterior score (the
  Gaussian-prior test of ``tests/test_dehaze.py``);
* ``"dps"`` (Chung et al. 2023): ``x -= lam grad_x ||y - f(x0, h0)||`` (unsquared norm);
* ``"projection"`` (the dehazing paper): ``x -= lam grad_x ||y_t - f(x_t, h_t)||^2 / 2`` with
  ``y_t = y`` plus forward-diffusion noise of ``t``.

The run starts at ``tau`` (CCDF: ``x_tau = y + s_tau z``, ``h_tau = y + s_tau z'``; ``tau = 1``
starts from pure noise around ``y``) and takes ``n_steps`` steps down to ``eps``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["VESDE", "joint_posterior_sample", "GUIDANCE"]

GUIDANCE = ("pigdm", "dps", "projection")


class VESDE:
    """The "simple" variance-exploding SDE ``dz = sigma^t dw``, ``t`` in ``(0, 1]``.

    Marginal std ``s(t) = sqrt((sigma^(2t) - 1) / (2 ln sigma))``; diffusion ``g(t) = sigma^t``.
    """

    def __init__(self, sigma: float = 25.0):
        if sigma <= 1:
            raise ValueError(f"sigma must be > 1, got {sigma}")
        self.sigma = float(sigma)

    def std(self, t) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float64)
        return torch.sqrt((self.sigma ** (2 * t) - 1) / (2 * math.log(self.sigma)))

    def g(self, t) -> torch.Tensor:
        return torch.as_tensor(self.sigma, dtype=torch.float64) ** torch.as_tensor(t)


def _mu_c(x, mu):
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


def _mu_e(y, mu):
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


def _forward_model(x, h, gamma, compand, mu):
    if not compand:
        return x + gamma * h
    # C^-1 is defined on [-1, 1]; noisy iterates far outside it would overflow
    x, h = x.clamp(-1.0, 1.0), h.clamp(-1.0, 1.0)
    return _mu_c(_mu_e(x, mu) + gamma * _mu_e(h, mu), mu)


def _bsum(v):
    return v.reshape(v.shape[0], -1).sum(dim=1)


def _r2(prior, s2, like):
    v = getattr(prior, "variance", 1.0)
    v = torch.as_tensor(v, dtype=like.dtype, device=like.device)
    return v * s2 / (v + s2)


def joint_posterior_sample(y: torch.Tensor, tissue_prior, haze_prior, *, gamma: float = 1.0,
                           n_steps: int = 200, tau: float = 1.0, eps: float = 1e-3,
                           lam: float | None = None, kappa: float | None = None,
                           guidance: str = "pigdm", noise_std: float = 0.0,
                           compand: bool = True, mu: float = 255.0, sde: VESDE | None = None,
                           seed: int | None = None, generator: torch.Generator | None = None,
                           progress: bool = False, step_callback=None,
                           step_transform=None):  # fmt: skip
    """Sample ``(x, h)`` from ``p(x, h | y)`` with two score priors.

    Parameters
    ----------
    y : Tensor (B, ...)
        Measurements (companded when ``compand``); any trailing shape the priors accept.
    tissue_prior, haze_prior
        Objects with ``score(z, t)`` (``t`` a (B,) tensor) and optionally ``variance``.
    gamma : the haze weight (signal-to-haze strength) of the measurement model.
    n_steps, tau, eps : steps from ``t = tau`` down to ``t = eps``.
    lam, kappa : guidance weights on ``x`` and ``h`` (default 1 for ``"pigdm"``, 0.5
        otherwise, the paper's values).
    guidance : "pigdm", "dps" or "projection" (see the module docstring).
    noise_std : ``rho``, the std of additive measurement noise (``"pigdm"``).
    compand, mu : the mu-law measurement model.
    seed, generator : reproducibility (noise is drawn on the CPU).
    step_callback : called as ``step_callback(i, t, x, h)`` after every step.
    step_transform : ``(x, h) -> (x, h)`` applied after every step (patch-wise inference
        averages overlapping patches with it).

    Returns
    -------
    (x, h) : Tensors shaped like ``y``; the last step returns the denoised (mean) estimate.
    """
    if guidance not in GUIDANCE:
        raise ValueError(f"guidance must be one of {GUIDANCE}, got {guidance!r}")
    if not 0 < eps < tau <= 1:
        raise ValueError(f"need 0 < eps < tau <= 1, got eps={eps}, tau={tau}")
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    default = 1.0 if guidance == "pigdm" else 0.5
    lam = default if lam is None else float(lam)
    kappa = default if kappa is None else float(kappa)
    sde = sde or VESDE()
    if generator is None:
        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(seed))
    dev, dt_ = y.device, y.dtype

    def randn():
        return torch.randn(y.shape, generator=generator, dtype=dt_).to(dev)

    ts = torch.linspace(tau, eps, int(n_steps) + 1, dtype=torch.float64)
    s0 = float(sde.std(tau))
    x = y + s0 * randn()
    h = y + s0 * randn()
    from tqdm.auto import tqdm

    B = y.shape[0]
    for i in tqdm(range(int(n_steps)), desc="dehaze", disable=not progress, leave=False):
        t, t_next = float(ts[i]), float(ts[i + 1])
        dt = t - t_next
        g2 = float(sde.g(t)) ** 2
        s2 = float(sde.std(t)) ** 2
        tt = torch.full((B,), t, dtype=dt_, device=dev)
        last = i == int(n_steps) - 1
        need_grad = guidance in ("pigdm", "dps")
        with torch.enable_grad() if need_grad else torch.no_grad():
            xg = x.detach().requires_grad_(need_grad)
            hg = h.detach().requires_grad_(need_grad)
            sx = tissue_prior.score(xg, tt)
            sh = haze_prior.score(hg, tt)
            if guidance == "pigdm":
                x0, h0 = xg + s2 * sx, hg + s2 * sh
                var = _r2(tissue_prior, s2, y) + gamma**2 * _r2(haze_prior, s2, y) + noise_std**2
                res = y - _forward_model(x0, h0, gamma, compand, mu)
                ll = -0.5 * _bsum(res**2 / var)
                gx, gh = torch.autograd.grad(ll.sum(), (xg, hg))
            elif guidance == "dps":
                x0, h0 = xg + s2 * sx, hg + s2 * sh
                norm = _bsum((y - _forward_model(x0, h0, gamma, compand, mu)) ** 2).sqrt()
                gx, gh = torch.autograd.grad(norm.sum(), (xg, hg))
        sx, sh = sx.detach(), sh.detach()
        with torch.no_grad():
            if guidance == "pigdm":
                sx = sx + lam * gx
                sh = sh + kappa * gh
            x_mean = x + g2 * dt * sx
            h_mean = h + g2 * dt * sh
            if last:  # the final step returns the mean (the usual noise-free last step)
                x, h = x_mean, h_mean
            else:
                x = x_mean + math.sqrt(g2 * dt) * randn()
                h = h_mean + math.sqrt(g2 * dt) * randn()
            if guidance == "dps":
                x = x - lam * gx
                h = h - kappa * gh
            elif guidance == "projection":
                y_t = y + float(sde.std(t_next)) * randn() if not last else y
                with torch.enable_grad():
                    xg = x.detach().requires_grad_(True)
                    hg = h.detach().requires_grad_(True)
                    loss = 0.5 * _bsum((y_t - _forward_model(xg, hg, gamma, compand, mu)) ** 2)
                    px, ph = torch.autograd.grad(loss.sum(), (xg, hg))
                x = x - lam * px
                h = h - kappa * ph
        if step_transform is not None:
            x, h = step_transform(x, h)
        if step_callback is not None:
            step_callback(i, t_next, x, h)
    return x.detach(), h.detach()
