"""Posterior sampling with a diffusion prior and mrct physics.

Both samplers solve ``y = A x + n`` for any :class:`mrct.physics.LinearOperator` ``A`` (sparse-
view :class:`~mrct.physics.Radon`, undersampled :class:`~mrct.physics.CartesianMRI`, ...) with
a :class:`~mrct.synth.ConditionalDiffusion` prior, unconditional or conditional:

* :func:`dps`: diffusion posterior sampling (Chung et al., ICLR 2023). At every step the
  Tweedie estimate ``x0_hat(x_t)`` is pushed through ``A`` and the sample is moved against the
  gradient (through the UNet, by autograd) of the *unsquared* residual norm:
  ``x_{t-1} = DDIM_step(x_t) - scale * grad_{x_t} ||y - A x0_hat(x_t)||``. The DPS paper uses
  1000 ancestral DDPM steps with ``scale`` 0.3-1 (images in [-1, 1]); here the DDIM scheduler
  with ``eta = 1`` (ancestral) and any number of steps. ``scale`` depends on the size of ``A``
  and ``y``: tune it per operator.
* :func:`diffpir`: DiffPIR (Zhu et al., CVPRW 2023), a plug-and-play sampler: at every step
  the denoised estimate ``x0`` is replaced by the proximal solution
  ``argmin_z 1/2 ||A z - y||^2 + rho_t / 2 ||z - x0||^2`` with ``rho_t = lam sigma_n^2 /
  sigma_bar_t^2`` and ``sigma_bar_t^2 = (1 - abar_t) / abar_t`` (solved by a few conjugate-
  gradient steps, so any operator works), then re-noised with a mix ``zeta`` of fresh and
  predicted noise. No gradient through the UNet: far cheaper per step, and ~10-100 steps.

Units: the model works in *model units*; the operator sees ``image_scale * x + image_offset``
(e.g. ``image_scale=1000`` for a model trained on HU / 1000 and an operator on HU). Images of
a one-channel model are passed to ``A`` as ``(B, H, W)``; real images go into complex
operators as they are (CartesianMRI promotes them).
"""

from __future__ import annotations

import torch

__all__ = ["dps", "diffpir", "data_residual"]


def _to_op(x: torch.Tensor, scale: float, offset: float) -> torch.Tensor:
    img = x * scale + offset
    return img[:, 0] if img.shape[1] == 1 else img


def _bnorm(r: torch.Tensor) -> torch.Tensor:
    """Per-sample 2-norm over all but the first axis (complex-safe)."""
    r = r.abs() if r.is_complex() else r
    return r.reshape(r.shape[0], -1).norm(dim=1)


def data_residual(operator, measurements: torch.Tensor, x: torch.Tensor, *,
                  image_scale: float = 1.0, image_offset: float = 0.0) -> torch.Tensor:  # fmt: skip
    """Per-sample data-consistency residual ``||A (image_scale x + image_offset) - y||``
    for samples ``x`` (B, C, H, W) in model units; returns (B,)."""
    with torch.no_grad():
        return _bnorm(operator(_to_op(x, image_scale, image_offset)) - measurements)


def _setup(model, measurements, condition, shape, seed, generator):
    cond = model._check_cond(condition)
    y = measurements.to(model.device)
    if cond is not None:
        shape = (cond.shape[0], model.out_channels, *cond.shape[-2:])
    if shape is None:
        raise ValueError("an unconditional prior needs shape=(B, out_channels, H, W)")
    if y.shape[0] != shape[0]:
        raise ValueError(
            f"measurements must have a leading batch axis of {shape[0]}, got {tuple(y.shape)}"
        )
    g = model._generator(seed, generator)
    return cond, y, tuple(shape), g


def dps(model, operator, measurements: torch.Tensor, *, condition=None, shape=None,
        steps: int = 200, scale: float = 1.0, eta: float = 1.0, seed: int | None = None,
        generator: torch.Generator | None = None, image_scale: float = 1.0,
        image_offset: float = 0.0, guidance_scale: float = 1.0, use_ema: bool = True,
        progress: bool = False) -> torch.Tensor:  # fmt: skip
    """Diffusion posterior sampling (Chung et al. 2023) with any mrct LinearOperator.

    Parameters
    ----------
    model : ConditionalDiffusion
        The prior (unconditional: ``cond_channels = 0``, give ``shape``; or conditional).
    operator : LinearOperator
        ``A``, differentiable by autograd (all mrct operators are), acting on images
        ``(B, H, W)`` (one-channel models) in the units ``image_scale * x + image_offset``.
    measurements : Tensor
        ``y`` with a leading batch axis: ``A(image)`` plus noise, shape ``(B, *A.out_shape)``.
    condition : Tensor, optional
        The prior's condition ``(B, cond_channels, H, W)``.
    shape : tuple, optional
        ``(B, out_channels, H, W)`` for an unconditional prior.
    steps, eta
        DDIM steps and stochasticity (eta = 1: ancestral, as DPS's DDPM sampler).
    scale : float
        Step size ``zeta`` on ``grad ||y - A x0_hat||`` (unsquared norm, as in the DPS code).
    seed, generator
        Reproducibility (noise is drawn on the CPU).

    Returns
    -------
    Tensor (B, out_channels, H, W), model units.
    """
    cond, y, shape, g = _setup(model, measurements, condition, shape, seed, generator)
    sched = model.ddim_scheduler(steps)
    dev = model.device
    x = torch.randn(shape, generator=g).to(dev)
    from tqdm.auto import tqdm

    for t in tqdm(sched.timesteps, desc="DPS", disable=not progress, leave=False):
        ti = int(t)
        x_in = x.detach().requires_grad_(True)
        with torch.enable_grad():
            out = model.model_output(x_in, ti, cond, guidance_scale=guidance_scale,
                                     use_ema=use_ema)  # fmt: skip
            _, x0 = model.eps_and_x0(x_in, ti, out)
            norm = _bnorm(operator(_to_op(x0, image_scale, image_offset)) - y)
            (grad,) = torch.autograd.grad(norm.sum(), x_in)
        noise = torch.randn(shape, generator=g).to(dev) if eta > 0 else None
        with torch.no_grad():
            step = sched.step(out.detach(), t, x_in.detach(), eta=eta, variance_noise=noise)
            x = step.prev_sample
            x = x - scale * grad
    return x.detach().float()


def _cg(normal, rhs: torch.Tensor, x: torch.Tensor, iters: int) -> torch.Tensor:
    """Batched conjugate gradients for ``normal(x) = rhs`` (real, SPD), per sample."""

    def dot(a, b):
        return (a * b).reshape(a.shape[0], -1).sum(1)

    def bc(v):
        return v.view(-1, *([1] * (x.ndim - 1)))

    r = rhs - normal(x)
    p = r.clone()
    rs = dot(r, r)
    for _ in range(iters):
        ap = normal(p)
        alpha = rs / dot(p, ap).clamp_min(1e-30)
        x = x + bc(alpha) * p
        r = r - bc(alpha) * ap
        rs_new = dot(r, r)
        p = r + bc(rs_new / rs.clamp_min(1e-30)) * p
        rs = rs_new
    return x


def diffpir(model, operator, measurements: torch.Tensor, *, condition=None, shape=None,
            steps: int = 20, lam: float = 7.0, sigma_n: float = 0.05, zeta: float = 0.3,
            cg_iters: int = 5, seed: int | None = None, generator: torch.Generator | None = None,
            image_scale: float = 1.0, image_offset: float = 0.0, guidance_scale: float = 1.0,
            use_ema: bool = True, progress: bool = False) -> torch.Tensor:  # fmt: skip
    """DiffPIR plug-and-play sampling (Zhu et al. 2023) with any mrct LinearOperator.

    Per step ``t`` (DDIM timesteps, trailing spacing): ``x0`` = Tweedie estimate from the
    UNet; ``x0_hat = argmin_z 1/2 ||A(s z + o) - y||^2 + rho_t/2 ||z - x0||^2`` (``cg_iters``
    CG steps warm-started at ``x0``; ``rho_t = lam sigma_n^2 / sigma_bar_t^2``);
    ``eps_hat = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t)``;
    ``x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev) (sqrt(1 - zeta) eps_hat +
    sqrt(zeta) eps)``. ``sigma_n`` is the measurement noise level in the units of ``y``
    (it only enters through ``lam sigma_n^2``). Other arguments as :func:`dps`.

    Returns
    -------
    Tensor (B, out_channels, H, W), model units.
    """
    cond, y, shape, g = _setup(model, measurements, condition, shape, seed, generator)
    sched = model.ddim_scheduler(steps)
    ac = model.alphas_cumprod.to(model.device)
    dev = model.device
    s, o = float(image_scale), float(image_offset)
    with torch.no_grad():
        y_eff = y - operator(_to_op(torch.zeros(shape, device=dev), s, o))  # y - A(o)
        aty = operator.adjoint(y_eff)
        aty = (aty.real if aty.is_complex() else aty).reshape(shape) * s

    def normal(z):
        out = operator.adjoint(operator(_to_op(z, s, 0.0)))
        return (out.real if out.is_complex() else out).reshape(z.shape) * s

    x = torch.randn(shape, generator=g).to(dev)
    ts = [int(t) for t in sched.timesteps]
    from tqdm.auto import tqdm

    with torch.no_grad():
        for i, t in enumerate(tqdm(ts, desc="DiffPIR", disable=not progress, leave=False)):
            out = model.model_output(x, t, cond, guidance_scale=guidance_scale, use_ema=use_ema)
            _, x0 = model.eps_and_x0(x, t, out)
            a = ac[t]
            rho = lam * sigma_n**2 * a / (1 - a)
            x0h = _cg(lambda z, rho=rho: normal(z) + rho * z, aty + rho * x0, x0, cg_iters)
            x0h = x0h.clamp(-model.clip_range, model.clip_range)
            if i == len(ts) - 1:
                x = x0h
                break
            a_prev = ac[ts[i + 1]]
            eps_hat = (x - a.sqrt() * x0h) / (1 - a).sqrt()
            eps = torch.randn(shape, generator=g).to(dev)
            x = a_prev.sqrt() * x0h + (1 - a_prev).sqrt() * (
                (1 - zeta) ** 0.5 * eps_hat + zeta**0.5 * eps
            )
    return x.float()
