"""Conditional denoising diffusion on diffusers' ``UNet2DModel`` and schedulers.

:class:`ConditionalDiffusion` is the one diffusion model of :mod:`mrct.synth`:

* **network**: a diffusers ``UNet2DModel`` whose input is the noisy target (``out_channels``
  channels) concatenated with the condition image(s) (``cond_channels`` channels) and, when
  classifier-free guidance is enabled, one indicator channel (1 = condition given, 0 =
  dropped); ``cond_channels = 0`` gives an unconditional prior (for :func:`mrct.synth.dps`);
* **training** (DDPM, Ho et al. 2020): ``model(condition, target)`` returns the MSE between the
  UNet's output and the noise (``prediction_type="epsilon"``), the velocity (``"v_prediction"``)
  or the clean image (``"sample"``) at uniformly drawn timesteps of diffusers'
  ``DDPMScheduler``; the condition is dropped with probability ``cond_drop_prob`` (CFG);
  the mrct trainer (:mod:`mrct.training`) calls this and, after every optimizer step,
  :meth:`ConditionalDiffusion.on_optimizer_step`, which updates the **EMA** copy of the
  weights (``ema_decay``, with the usual ``(1 + n) / (10 + n)`` warm-up);
* **sampling**: DDIM (Song et al. 2021) with diffusers' ``DDIMScheduler``, any number of steps,
  ``eta`` (0 = deterministic), a seed or a ``torch.Generator`` (the initial noise is drawn on
  the CPU, so a seed gives the same sample on every device), guidance scale ``w``
  (``eps = eps_uncond + w (eps_cond - eps_uncond)``; ``w = 1`` is plain conditional sampling)
  and tqdm progress bars;
* **2.5D**: with ``context = k`` the condition of slice ``i`` is slices ``i-k .. i+k`` of the
  condition volume as channels (edges replicated); :meth:`ConditionalDiffusion.sample_volume`
  assembles a volume slice by slice;
* **checkpoints**: :meth:`save` / :meth:`load` write and read one ``.safetensors`` file (the
  mrct checkpoint format of :mod:`mrct.training.checkpoint`; the constructor's arguments are in
  the metadata, so no code or pickle is needed to rebuild the model).

Images are in *model units*: whatever scaling the caller chose (``mrct.synth.sct_data`` uses
HU / 1000 for CT). Samples are clipped to ``[-clip_range, clip_range]`` at every DDIM step.

>>> m = ConditionalDiffusion(image_size=32, cond_channels=1)
>>> loss = m(cond, target)                  # (B, 1, 32, 32) each -> scalar, for training
>>> x = m.sample(cond, steps=50, seed=0)    # (B, 1, 32, 32)
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..training.ema import ema_step
from ..training.loader import ConfigCheckpoint

__all__ = ["ConditionalDiffusion", "stack_neighbours"]

_PREDICTIONS = ("epsilon", "v_prediction", "sample")


def stack_neighbours(volume: torch.Tensor, context: int) -> torch.Tensor:
    """2.5D conditions: ``(D, C, H, W)`` -> ``(D, C (2 context + 1), H, W)``.

    Slice ``i`` gets slices ``i - context .. i + context`` (in that order) as channels; indices
    beyond the volume repeat the edge slice. A ``(D, H, W)`` volume is read as ``C = 1``.
    """
    if volume.ndim == 3:
        volume = volume[:, None]
    if volume.ndim != 4:
        raise ValueError(f"volume must be (D, H, W) or (D, C, H, W), got {tuple(volume.shape)}")
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")
    if context == 0:
        return volume
    d = volume.shape[0]
    idx = torch.arange(d, device=volume.device)
    parts = [volume[(idx + o).clamp(0, d - 1)] for o in range(-context, context + 1)]
    return torch.cat(parts, dim=1)


def _rank_world() -> tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _as_nchw(x: torch.Tensor, channels: int, name: str) -> torch.Tensor:
    """(B, H, W) -> (B, 1, H, W) when ``channels == 1``; check the channel count."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 3 and channels == 1:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(
            f"{name} must have shape (B, {channels}, H, W)"
            + (" or (B, H, W)" if channels == 1 else "")
            + f", got {tuple(x.shape)}"
        )
    return x


class ConditionalDiffusion(ConfigCheckpoint, nn.Module):
    """Conditional DDPM/DDIM model on a diffusers ``UNet2DModel``.

    Parameters
    ----------
    image_size : int
        Training image side (pixels); any size divisible by ``2 ** (len(block_out_channels)
        - 1)`` works at sampling time.
    out_channels : int
        Channels of the generated image (1 for a CT slice).
    cond_channels : int
        Channels of the condition after 2.5D stacking (``base x (2 context + 1)``); 0 for an
        unconditional model.
    context : int
        Neighbouring slices on each side used as condition channels (2.5D); informational for
        :meth:`sample_volume` (``cond_channels`` must be divisible by ``2 context + 1``).
    block_out_channels, layers_per_block, attention, norm_num_groups
        The UNet: channels per resolution level, ResNet blocks per level, whether the lowest
        level uses self-attention blocks, GroupNorm groups.
    num_train_timesteps, beta_schedule
        Diffusion schedule (diffusers names: ``"linear"``, ``"scaled_linear"``,
        ``"squaredcos_cap_v2"`` = cosine).
    prediction_type : {"epsilon", "v_prediction", "sample"}
        What the UNet predicts; the training loss is the MSE to it (noise prediction by default).
    cond_drop_prob : float
        Probability of dropping the condition in training (classifier-free guidance). Any value
        > 0, or ``guidance=True``, adds the indicator channel.
    guidance : bool
        Build the indicator channel even with ``cond_drop_prob = 0``.
    ema_decay : float
        EMA decay per optimizer step (0 disables EMA).
    clip_range : float
        DDIM clips the predicted clean image to ``[-clip_range, clip_range]`` (model units).
    default_steps : int
        DDIM steps of :meth:`forward` without a target (inference).
    info : dict, optional
        JSON-able notes saved with the checkpoint (task, units of condition and target...).
    """

    #: the mrct trainer calls ``model(input, target)`` and uses the result as the loss
    returns_loss = True

    def __init__(self, image_size: int = 64, out_channels: int = 1, cond_channels: int = 1,
                 context: int = 0, block_out_channels=(32, 64, 64), layers_per_block: int = 1,
                 attention: bool = False, norm_num_groups: int = 8,
                 num_train_timesteps: int = 1000, beta_schedule: str = "squaredcos_cap_v2",
                 prediction_type: str = "epsilon", cond_drop_prob: float = 0.0,
                 guidance: bool = False, ema_decay: float = 0.999, clip_range: float = 3.0,
                 default_steps: int = 50, info: dict | None = None):  # fmt: skip
        super().__init__()
        from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel

        if prediction_type not in _PREDICTIONS:
            raise ValueError(
                f"prediction_type must be one of {_PREDICTIONS}, got {prediction_type!r}"
            )
        if not 0.0 <= cond_drop_prob < 1.0:
            raise ValueError(f"cond_drop_prob must be in [0, 1), got {cond_drop_prob}")
        if cond_channels < 0 or out_channels < 1:
            raise ValueError("cond_channels must be >= 0 and out_channels >= 1")
        if context < 0 or (cond_channels and cond_channels % (2 * context + 1)):
            raise ValueError(
                f"cond_channels={cond_channels} must be divisible by 2*context+1={2 * context + 1}"
            )
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        blocks = tuple(int(c) for c in block_out_channels)
        self.config = dict(
            image_size=int(image_size), out_channels=int(out_channels),
            cond_channels=int(cond_channels), context=int(context), block_out_channels=list(blocks),
            layers_per_block=int(layers_per_block), attention=bool(attention),
            norm_num_groups=int(norm_num_groups), num_train_timesteps=int(num_train_timesteps),
            beta_schedule=str(beta_schedule), prediction_type=prediction_type,
            cond_drop_prob=float(cond_drop_prob), guidance=bool(guidance),
            ema_decay=float(ema_decay), clip_range=float(clip_range),
            default_steps=int(default_steps), info=dict(info or {}),
        )  # fmt: skip
        self.out_channels = int(out_channels)
        self.cond_channels = int(cond_channels)
        self.context = int(context)
        self.guided = bool(cond_channels) and (cond_drop_prob > 0 or guidance)
        self.cond_drop_prob = float(cond_drop_prob)
        self.prediction_type = prediction_type
        self.clip_range = float(clip_range)
        self.default_steps = int(default_steps)
        self.ema_decay = float(ema_decay)
        self.info = self.config["info"]  # one dict: edits are saved
        in_ch = out_channels + cond_channels + int(self.guided)
        n = len(blocks)
        down = ["DownBlock2D"] * n
        up = ["UpBlock2D"] * n
        if attention:
            down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
        self.unet = UNet2DModel(
            sample_size=int(image_size), in_channels=in_ch, out_channels=out_channels,
            layers_per_block=int(layers_per_block), block_out_channels=blocks,
            down_block_types=tuple(down), up_block_types=tuple(up),
            norm_num_groups=int(norm_num_groups),
        )  # fmt: skip
        self.ema = None
        if self.ema_decay > 0:
            self.ema = copy.deepcopy(self.unet).requires_grad_(False)
        self.register_buffer("ema_steps", torch.zeros((), dtype=torch.int64))
        sched_kw = dict(num_train_timesteps=int(num_train_timesteps), beta_schedule=beta_schedule,
                        prediction_type=prediction_type)  # fmt: skip
        self.train_scheduler = DDPMScheduler(**sched_kw, clip_sample=False)
        self._ddim_kw = dict(**sched_kw, clip_sample=True, clip_sample_range=self.clip_range,
                             set_alpha_to_one=True, timestep_spacing="trailing")  # fmt: skip
        self._DDIM = DDIMScheduler
        self.register_buffer("alphas_cumprod",
                             self.train_scheduler.alphas_cumprod.clone().float(),
                             persistent=False)  # fmt: skip

    # -- basics ---------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def num_train_timesteps(self) -> int:
        return self.config["num_train_timesteps"]

    def ddim_scheduler(self, steps: int):
        """A fresh diffusers ``DDIMScheduler`` with ``steps`` inference steps."""
        if int(steps) < 1 or int(steps) > self.num_train_timesteps:
            raise ValueError(f"steps must be in 1 .. {self.num_train_timesteps}, got {steps}")
        s = self._DDIM(**self._ddim_kw)
        s.set_timesteps(int(steps))
        return s

    def _net(self, use_ema: bool) -> nn.Module:
        return self.ema if (use_ema and self.ema is not None) else self.unet

    def _inputs(self, x_t, cond, keep: torch.Tensor | None):
        """Concatenate the noisy image, the condition and the indicator channel."""
        parts = [x_t]
        if self.cond_channels:
            b = x_t.shape[0]
            if keep is None:
                keep = torch.ones(b, device=x_t.device, dtype=x_t.dtype)
            k = keep.to(x_t.dtype).view(b, 1, 1, 1)
            parts.append(cond * k)
            if self.guided:
                parts.append(k.expand(b, 1, *x_t.shape[-2:]))
        return torch.cat(parts, dim=1)

    def _check_cond(self, cond, batch: int | None = None):
        if self.cond_channels == 0:
            if cond is not None:
                raise ValueError("this model is unconditional (cond_channels=0); pass no condition")
            return None
        if cond is None:
            raise ValueError(f"this model needs a condition with {self.cond_channels} channel(s)")
        cond = _as_nchw(cond, self.cond_channels, "condition").to(self.device, torch.float32)
        return cond

    # -- training -------------------------------------------------------------------------
    def forward(self, condition=None, target=None, *, steps: int | None = None,
                seed: int | None = 0):  # fmt: skip
        """Training loss (``target`` given) or a deterministic DDIM sample (``target=None``).

        ``model(condition, target)`` -> scalar loss (what the mrct trainer calls);
        ``model(condition)`` -> ``model.sample(condition, steps=default_steps, seed=0)``.
        For an unconditional model pass ``condition=None`` and ``target``.
        """
        if target is None:
            return self.sample(condition, steps=steps or self.default_steps, seed=seed)
        return self.loss(condition, target)

    def loss(self, condition, target, generator: torch.Generator | None = None) -> torch.Tensor:
        """DDPM training loss: MSE between the UNet output and its target (noise, velocity
        or clean image) at random timesteps. ``target``: (B, out_channels, H, W) or (B, H, W)
        in model units; ``condition``: (B, cond_channels, H, W) or (B, H, W).

        In eval mode (validation) a fixed generator makes the loss deterministic.
        """
        x0 = _as_nchw(target, self.out_channels, "target").float()
        b = x0.shape[0]
        cond = None
        if self.cond_channels:
            cond = _as_nchw(condition, self.cond_channels, "condition").float()
            if cond.shape[0] != b or cond.shape[-2:] != x0.shape[-2:]:
                raise ValueError(
                    f"condition {tuple(cond.shape)} and target {tuple(x0.shape)} differ in batch "
                    "size or image size"
                )
        if generator is None and not self.training:
            generator = torch.Generator().manual_seed(0)
        dev = x0.device
        # Noise, timesteps and condition dropout come from the global torch RNG (which the
        # trainer seeds and checkpoints) or ``generator``, drawn on the CPU. Under DDP every
        # process has the same RNG state, so each draws for all processes and keeps its own
        # share: the processes see different noise, and resuming stays exact.
        rank, world = _rank_world() if generator is None and self.training else (0, 1)
        noise = torch.randn((world, *x0.shape), generator=generator)[rank].to(dev)
        t = torch.randint(0, self.num_train_timesteps, (world, b), generator=generator)[rank]
        t = t.to(dev)
        drop = torch.rand((world, b), generator=generator)[rank]
        x_t = self.train_scheduler.add_noise(x0, noise, t)
        keep = None
        if self.guided and self.training and self.cond_drop_prob > 0:
            keep = (drop >= self.cond_drop_prob).to(dev)
        out = self.unet(self._inputs(x_t, cond, keep), t).sample
        if self.prediction_type == "epsilon":
            goal = noise
        elif self.prediction_type == "v_prediction":
            goal = self.train_scheduler.get_velocity(x0, noise, t)
        else:
            goal = x0
        return F.mse_loss(out.float(), goal)

    @torch.no_grad()
    def on_optimizer_step(self) -> None:
        """Update the EMA weights (called by the mrct trainer after every optimizer step)."""
        ema_step(self, self.unet)

    # -- sampling -------------------------------------------------------------------------
    def model_output(self, x_t, t, cond=None, *, guidance_scale: float = 1.0,
                     use_ema: bool = True) -> torch.Tensor:  # fmt: skip
        """The UNet output at timestep ``t`` (int or (B,) tensor) with classifier-free
        guidance ``guidance_scale`` (needs a model trained with condition dropout)."""
        net = self._net(use_ema)
        b = x_t.shape[0]
        tt = torch.as_tensor(t, device=x_t.device).reshape(-1).expand(b)
        out = net(self._inputs(x_t, cond, None), tt).sample
        if guidance_scale != 1.0:
            if not self.guided:
                raise ValueError("guidance_scale != 1 needs a model built with cond_drop_prob > 0")
            zero = torch.zeros(b, device=x_t.device)
            unc = net(self._inputs(x_t, cond, zero), tt).sample
            out = unc + guidance_scale * (out - unc)
        return out

    def eps_and_x0(self, x_t, t: int, model_out):
        """``(eps, x0)`` from the UNet output at timestep ``t`` (Tweedie's estimate of x0)."""
        a = self.alphas_cumprod[int(t)].to(x_t.device, x_t.dtype)
        sa, s1 = a.sqrt(), (1 - a).sqrt()
        if self.prediction_type == "epsilon":
            eps = model_out
            x0 = (x_t - s1 * eps) / sa
        elif self.prediction_type == "v_prediction":
            x0 = sa * x_t - s1 * model_out
            eps = sa * model_out + s1 * x_t
        else:
            x0 = model_out
            eps = (x_t - sa * x0) / s1
        return eps, x0

    @staticmethod
    def _generator(seed, generator) -> torch.Generator:
        if generator is not None:
            return generator
        g = torch.Generator()
        if seed is None:
            g.seed()  # a fresh seed for this generator only, not the global RNG
        else:
            g.manual_seed(int(seed))
        return g

    @torch.no_grad()
    def sample(self, condition=None, *, steps: int | None = None, seed: int | None = None,
               generator: torch.Generator | None = None, guidance_scale: float = 1.0,
               eta: float = 0.0, use_ema: bool = True, shape: tuple[int, ...] | None = None,
               progress: bool = False) -> torch.Tensor:  # fmt: skip
        """DDIM sampling (diffusers ``DDIMScheduler``).

        Parameters
        ----------
        condition : Tensor (B, cond_channels, H, W) or (B, H, W), optional
            The condition in model units (None for an unconditional model, then give
            ``shape = (B, out_channels, H, W)``).
        steps : int
            DDIM steps (default ``default_steps``).
        seed, generator
            Reproducibility: the same seed gives the same output (noise is drawn on the CPU).
        guidance_scale : float
            Classifier-free guidance weight ``w``; 1 = plain conditional sampling.
        eta : float
            DDIM stochasticity (0 deterministic, 1 DDPM-like).
        use_ema : bool
            Sample with the EMA weights (when the model has them).

        Returns
        -------
        Tensor (B, out_channels, H, W), float32, model units, on the model's device.
        """
        cond = self._check_cond(condition)
        if cond is not None:
            b, hw = cond.shape[0], tuple(cond.shape[-2:])
            if shape is not None and (shape[0] != b or tuple(shape[-2:]) != hw):
                raise ValueError(f"shape {shape} does not match the condition {tuple(cond.shape)}")
            shape = (b, self.out_channels, *hw)
        elif shape is None:
            raise ValueError("an unconditional model needs shape=(B, out_channels, H, W)")
        g = self._generator(seed, generator)
        sched = self.ddim_scheduler(steps or self.default_steps)
        dev = self.device
        x = torch.randn(tuple(shape), generator=g).to(dev)
        from tqdm.auto import tqdm

        for t in tqdm(sched.timesteps, desc="DDIM", disable=not progress, leave=False):
            out = self.model_output(x, int(t), cond, guidance_scale=guidance_scale,
                                    use_ema=use_ema)  # fmt: skip
            noise = torch.randn(x.shape, generator=g).to(dev) if eta > 0 else None
            x = sched.step(out, t, x, eta=eta, variance_noise=noise).prev_sample
        return x.float()

    @torch.no_grad()
    def sample_volume(self, condition: torch.Tensor, *, batch_size: int = 8, **kwargs):
        """Slice-by-slice sampling of a volume: ``condition`` (D, C, H, W) or (D, H, W) in
        model units, *before* 2.5D stacking (C = cond_channels / (2 context + 1)); returns
        (D, out_channels, H, W). Slice batches share one generator (``seed`` / ``generator``
        in ``kwargs``, other keywords as :meth:`sample`)."""
        stacked = stack_neighbours(condition, self.context)
        if stacked.shape[1] != self.cond_channels:
            raise ValueError(
                f"the condition volume has {stacked.shape[1]} channel(s) after 2.5D stacking "
                f"(context {self.context}) but the model expects {self.cond_channels}"
            )
        g = self._generator(kwargs.pop("seed", None), kwargs.pop("generator", None))
        progress = kwargs.pop("progress", False)
        from tqdm.auto import tqdm

        outs = []
        for s in tqdm(range(0, stacked.shape[0], batch_size), desc="slices",
                      disable=not progress):  # fmt: skip
            outs.append(self.sample(stacked[s : s + batch_size], generator=g, **kwargs).cpu())
        return torch.cat(outs)
