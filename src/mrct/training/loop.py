"""The training loop: :func:`fit` and :class:`Trainer` (any model ``input -> prediction``).

:func:`fit` trains a ``torch.nn.Module`` on a dataset of ``(input, target)`` pairs with
L1 (or MSE) loss, Adam, a cosine learning-rate schedule, gradient accumulation and clipping,
mixed precision where the device supports it, seeded data order, validation, progress bars,
safetensors checkpoints (``best`` and ``last``) and exact resume. Under ``torchrun`` it trains
with ``DistributedDataParallel`` (gloo on CPU, NCCL on CUDA). ``mrct train CONFIG`` is
:func:`mrct.recon.train_from_config`, which builds the task and the model and calls :func:`fit`.

A run folder (``out_dir``) holds::

    config.json          the full configuration of the run
    history.json         per epoch: train loss, val loss, lr, time; every log_every steps: loss
    last.safetensors     training checkpoint (model, optimizer, scheduler, scaler, RNG, history)
    best.safetensors     weights of the epoch with the lowest validation loss (+ model_kwargs)

Multi-process training (``batch_size`` is per process; the effective batch is
``batch_size x accumulate x processes``)::

    torchrun --standalone --nproc_per_node=2 -m mrct.cli train configs/pdunet-ct-sparse16.toml
    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 torchrun --standalone --nproc_per_node=2 \\
        $(which mrct) train configs/smoke.toml --out runs/smoke
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..io import atomic_path
from .batches import _json_default, _n_items, _split_batch, _to, _worker_init
from .checkpoint import previous_path, save_checkpoint
from .config import TrainConfig
from .distributed import DistInfo, init_distributed, resolve_device, seed_everything
from .resume import load_first_good, resume_paths

__all__ = ["TrainResult", "Trainer", "fit", "LAST", "BEST", "HISTORY", "CONFIG"]

log = logging.getLogger(__name__)

LAST = "last.safetensors"
BEST = "best.safetensors"
HISTORY = "history.json"
CONFIG = "config.json"


@dataclass
class TrainResult:
    """What :func:`fit` returns. ``history``: ``{"epochs": [...], "steps": [...], "best":
    {...}}``; ``model``: the trained module (unwrapped, on its training device); checkpoint
    paths are None where not written (and on ranks other than 0)."""

    model: nn.Module
    history: dict
    out_dir: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    epochs_done: int
    rank: int = 0
    world_size: int = 1
    epochs_trained: int = 0  # in this call (less than epochs_done after a resume)


class Trainer:
    """The training loop behind :func:`fit`; see there for the arguments.

    Attributes a callback may use: ``model`` (unwrapped), ``config``, ``epoch`` (completed
    epochs), ``global_step``, ``history``, ``rank``, ``world_size``, and ``should_stop``
    (set it to True to stop after the current epoch; ``last.safetensors`` is then written so
    that the run can be resumed).
    """

    def __init__(self, model: nn.Module, train_ds, val_ds=None, config: TrainConfig | None = None,
                 *, loss_fn: Callable | None = None, callbacks: Iterable[Callable] = (),
                 model_kwargs: dict | None = None, metadata: dict | None = None):  # fmt: skip
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if config is None:
            config = TrainConfig()
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        if train_ds is None or len(train_ds) == 0:
            raise ValueError("the training dataset is empty")
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError("the model has no trainable parameters")
        self.model = model
        self.train_ds, self.val_ds = train_ds, val_ds
        self.config = config
        self.loss_fn = loss_fn
        self.callbacks = list(callbacks)
        self.model_kwargs = model_kwargs
        self.metadata = dict(metadata or {})
        self.out_dir = Path(config.out_dir)
        self.epoch = 0
        self.global_step = 0
        self.history: dict = {"epochs": [], "steps": [], "best": None}
        self.should_stop = False
        self.rank, self.world_size = 0, 1

    # -- pieces -------------------------------------------------------------------------
    def _batch_loss(self, model, x, y, autocast) -> torch.Tensor:
        """The loss of one batch: the forward pass under ``autocast``, the loss in float32.
        Models with ``returns_loss = True`` (e.g. mrct.synth's diffusion) compute their own
        training loss as ``model(input, target)``."""
        with autocast():
            out = model(x, y) if self._model_loss else model(x)
        return out.float() if self._model_loss else self._criterion(out, y)

    def _criterion(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if isinstance(pred, torch.Tensor) and isinstance(target, torch.Tensor):
            if pred.shape != target.shape:
                raise ValueError(
                    f"the model's prediction has shape {tuple(pred.shape)} but the target has "
                    f"{tuple(target.shape)}"
                )
            pred, target = pred.float(), target.float()
        s = self._loss_scale
        if s != 1.0:
            pred, target = pred / s, target / s
        if self.loss_fn is not None:
            return self.loss_fn(pred, target)
        return F.l1_loss(pred, target) if self.config.loss == "l1" else F.mse_loss(pred, target)

    def _amp(self, device: torch.device) -> tuple[torch.dtype | None, bool]:
        """(autocast dtype or None, use a GradScaler)."""
        amp = self.config.amp
        if amp == "off" or (amp == "auto" and device.type != "cuda"):
            return None, False
        if amp in ("auto", "fp16"):
            if device.type != "cuda":
                raise ValueError('amp = "fp16" needs a CUDA device; on CPU use "bf16" or "off"')
            return torch.float16, True
        return torch.bfloat16, False  # bf16

    def _loaders(self, dist_info: DistInfo, device: torch.device):
        from torch.utils.data import DataLoader, DistributedSampler, Subset

        cfg = self.config
        # the same sampler with or without DDP: epoch e is a permutation seeded by seed + e,
        # split across processes, so 2 processes x batch b see what 1 process x batch 2b sees
        sampler = DistributedSampler(self.train_ds, num_replicas=dist_info.world_size,
                                     rank=dist_info.rank, shuffle=True, seed=cfg.seed,
                                     drop_last=cfg.drop_last)  # fmt: skip
        # workers are started afresh each epoch and seeded from the global torch RNG (whose
        # state checkpoints restore), so resuming stays exact with num_workers > 0 as well
        kw = dict(num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
                  worker_init_fn=_worker_init if cfg.num_workers else None)  # fmt: skip
        train = DataLoader(self.train_ds, batch_size=cfg.batch_size, sampler=sampler,
                           drop_last=cfg.drop_last, **kw)  # fmt: skip
        if len(train) == 0:
            raise ValueError(
                f"no training batch: {len(self.train_ds)} samples over {dist_info.world_size} "
                f"process(es) with batch_size {cfg.batch_size} and drop_last"
            )
        val = None
        if self.val_ds is not None and len(self.val_ds) > 0:
            ds = self.val_ds
            if dist_info.enabled:  # shard without padding; losses are summed across ranks
                ds = Subset(ds, range(dist_info.rank, len(ds), dist_info.world_size))
            val = DataLoader(ds, batch_size=cfg.batch_size, shuffle=False, **kw)
        return sampler, train, val

    def _resume_paths(self) -> list[Path]:
        cfg = self.config
        return resume_paths(self.out_dir / LAST, cfg.resume, cfg.overwrite)

    def _write_history(self) -> None:
        with atomic_path(self.out_dir / HISTORY) as tmp:
            tmp.write_text(json.dumps(self.history, indent=1, default=_json_default) + "\n")

    def _save_last(self, opt, sched, scaler) -> Path:
        # keep the replaced last.safetensors as last.prev.safetensors, unless it was the
        # damaged one this run could not resume from (then the good .prev stays)
        keep, self._last_damaged = not getattr(self, "_last_damaged", False), False
        return save_checkpoint(
            self.out_dir / LAST, self.model, opt, sched, scaler, epoch=self.epoch, rng=True,
            keep_previous=keep,
            state={"global_step": self.global_step, "history": self.history},
            extra={"config": self.config.to_dict(), **self.metadata},
            model_kwargs=self.model_kwargs,
        )  # fmt: skip

    # -- the loop -------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        dist_info = init_distributed(self.config.device)
        try:
            return self._fit(dist_info)
        finally:
            if dist_info.created:
                import torch.distributed as dist

                if dist.is_initialized():
                    dist.destroy_process_group()

    def _fit(self, dist_info: DistInfo) -> TrainResult:
        """Set up (device, optimizer, schedule, loaders, resume), then train epoch by epoch:
        one pass over the data, validation, callbacks, checkpoints and history."""
        run = self._setup(dist_info)
        run.t_start = time.perf_counter()
        start_epoch = self.epoch
        while self.epoch < self.config.epochs and not self.should_stop:
            t0 = time.perf_counter()
            record, bar = self._train_epoch(run)
            self._end_epoch(run, record, bar, t0)
        if run.main and not (self.out_dir / HISTORY).exists():
            self._write_history()
        if dist_info.enabled:
            import torch.distributed as dist

            dist.barrier()
        main = run.main
        return TrainResult(self.model, self.history, self.out_dir,
                           run.last_path if main else None, run.best_path if main else None,
                           self.epoch, self.rank, self.world_size,
                           self.epoch - start_epoch)  # fmt: skip

    def _train_epoch(self, run) -> tuple[dict, Any]:
        """One pass over the training data with gradient accumulation; the epoch's record."""
        from tqdm.auto import tqdm

        cfg, e, device = self.config, self.epoch, run.device
        run.sampler.set_epoch(e)
        run.model.train()
        n_batches = len(run.train_loader)
        # loss sum, item count and non-finite batches, summed across processes at the end
        stats = torch.zeros(3, dtype=torch.float64, device=device)
        bar = tqdm(total=n_batches, desc=f"epoch {e + 1}/{cfg.epochs}", unit="batch",
                   disable=not (cfg.progress and run.main), dynamic_ncols=True)  # fmt: skip
        run.opt.zero_grad(set_to_none=True)
        for i, batch in enumerate(run.train_loader):
            x, y = _split_batch(batch)
            x, y = _to(x, device), _to(y, device)
            group_start = (i // cfg.accumulate) * cfg.accumulate
            k = min(cfg.accumulate, n_batches - group_start)  # micro-batches in this step
            step_now = i == group_start + k - 1
            sync = (contextlib.nullcontext() if step_now or not run.dist.enabled
                    else run.ddp_model.no_sync())  # fmt: skip
            with sync:
                loss = self._batch_loss(run.ddp_model, x, y, run.autocast)
                run.scaler.scale(loss / k).backward()
            ld = loss.detach().double()
            finite = torch.isfinite(ld)
            stats[0] += torch.where(finite, ld * _n_items(y), torch.zeros_like(ld))
            stats[1] += _n_items(y)
            stats[2] += (~finite).double()
            if step_now:
                self._optimizer_step(run)
                if self.global_step % cfg.log_every == 0:
                    if not run.use_scaler and float(stats[2]) > 0:
                        self._nonfinite(e, i)
                    lr = run.opt.param_groups[0]["lr"]
                    self.history["steps"].append({"step": self.global_step, "epoch": e + 1,
                                                  "loss": float(ld), "lr": lr})  # fmt: skip
                    bar.set_postfix(loss=f"{float(stats[0] / stats[1].clamp_min(1)):.4g}",
                                    lr=f"{lr:.3g}", refresh=False)  # fmt: skip
            bar.update(1)
        if run.dist.enabled:
            import torch.distributed as dist

            dist.all_reduce(stats)
        bad = int(stats[2])
        if bad > 0 and not run.use_scaler:
            self._nonfinite(e, n_batches - 1)
        lr_used = run.opt.param_groups[0]["lr"]
        if run.sched is not None and cfg.scheduler_interval == "epoch":
            run.sched.step()
        train_loss = float(stats[0] / stats[1].clamp_min(1))
        record: dict[str, Any] = {"epoch": e + 1, "train_loss": train_loss, "lr": lr_used,
                                  "steps": self.global_step}  # fmt: skip
        if bad > 0:
            record["nonfinite_batches"] = bad
        return record, bar

    # -- set-up and the pieces of an epoch ---------------------------------------------------
    def _setup(self, dist_info: DistInfo) -> SimpleNamespace:
        """Device, model, optimizer, schedule, scaler, loaders and the resumed state."""
        cfg = self.config
        self.rank, self.world_size = dist_info.rank, dist_info.world_size
        device = resolve_device(cfg.device, dist_info.local_rank)
        seed_everything(cfg.seed)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if isinstance(cfg.loss_scale, str):
            raise ValueError(
                'loss_scale = "img_scale" is resolved by train_from_config; pass a number to fit'
            )
        self._loss_scale = float(cfg.loss_scale)
        # generic hooks: a model may compute its own loss (``returns_loss = True``, called as
        # ``model(input, target)`` -> scalar) and ask to be told after every optimizer step
        self._model_loss = bool(getattr(self.model, "returns_loss", False))
        self._step_hook = getattr(self.model, "on_optimizer_step", None)
        run = SimpleNamespace(dist=dist_info, main=dist_info.main, device=device)
        run.model = model = self.model.to(device)
        amp_dtype, run.use_scaler = self._amp(device)
        run.params = [p for p in model.parameters() if p.requires_grad]
        run.opt = torch.optim.Adam(run.params, lr=cfg.lr, betas=cfg.betas,
                                   weight_decay=cfg.weight_decay)  # fmt: skip
        run.sampler, run.train_loader, run.val_loader = self._loaders(dist_info, device)
        steps_per_epoch = math.ceil(len(run.train_loader) / cfg.accumulate)
        run.sched = None
        if cfg.scheduler == "cosine":
            t_max = cfg.epochs * (steps_per_epoch if cfg.scheduler_interval == "step" else 1)
            run.sched = torch.optim.lr_scheduler.CosineAnnealingLR(run.opt, T_max=t_max,
                                                                   eta_min=cfg.min_lr)  # fmt: skip
        run.scaler = torch.amp.GradScaler(device.type, enabled=run.use_scaler)
        resume = self._resume(run)
        run.ddp_model = model
        if dist_info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            run.ddp_model = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=cfg.find_unused_parameters)  # fmt: skip
        run.autocast = (
            (lambda: torch.autocast(device.type, dtype=amp_dtype))
            if amp_dtype is not None
            else contextlib.nullcontext
        )
        run.best_val = (self.history.get("best") or {}).get("val_loss", math.inf)
        run.last_path = resume
        has_best = resume and (self.out_dir / BEST).exists()
        run.best_path = self.out_dir / BEST if has_best else None
        return run

    def _resume(self, run) -> Path | None:
        """Load ``last.safetensors`` when resuming; prepare the run folder. The checkpoint
        path, or None for a fresh run."""
        cfg = self.config
        resume, info, bad = load_first_good(self._resume_paths(), run.model, run.opt, run.sched,
                                            run.scaler, warn=run.main)  # fmt: skip
        self._last_damaged = bad and resume is not None and resume.parent == self.out_dir
        if resume is not None:
            self.epoch = int(info.epoch or 0)
            self.global_step = int(info.state.get("global_step", 0))
            self.history = info.state.get("history", self.history)
            old = info.extra.get("config", {})
            changed = [k for k in ("batch_size", "accumulate", "lr", "betas", "scheduler",
                                   "scheduler_interval", "loss", "epochs", "min_lr")
                       if k in old and old[k] != cfg.to_dict()[k]]  # fmt: skip
            if changed and run.main:
                warnings.warn(
                    f"resuming {resume} with changed settings {changed}; the optimizer and "
                    "schedule continue from their saved state", stacklevel=5)  # fmt: skip
            if run.main:
                log.info("resumed from %s at epoch %d", resume, self.epoch)
        if run.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if resume is None:  # a fresh run: drop what an earlier run left behind
                for name in (BEST, HISTORY, LAST, previous_path(LAST).name):
                    (self.out_dir / name).unlink(missing_ok=True)
            cfg.save(self.out_dir / CONFIG)
        return resume

    def _optimizer_step(self, run) -> None:
        """Clip, step (through the GradScaler), the model's step hook, the schedule."""
        cfg = self.config
        if cfg.grad_clip is not None:
            run.scaler.unscale_(run.opt)
            torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
        run.scaler.step(run.opt)
        run.scaler.update()
        if self._step_hook is not None:  # e.g. an EMA update
            self._step_hook()
        run.opt.zero_grad(set_to_none=True)
        self.global_step += 1
        if run.sched is not None and cfg.scheduler_interval == "step":
            run.sched.step()

    def _end_epoch(self, run, record: dict, bar, t0: float) -> None:
        """Validate, keep the best, call the callbacks, agree on stopping, write files."""
        cfg, e = self.config, self.epoch
        out_of_time = (cfg.max_seconds is not None
                       and time.perf_counter() - run.t_start >= cfg.max_seconds)  # fmt: skip
        if run.dist.enabled and cfg.max_seconds is not None:  # every rank stops together
            import torch.distributed as dist

            flag = torch.tensor(float(out_of_time), device=run.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            out_of_time = bool(flag.item())
        if out_of_time and e + 1 < cfg.epochs:
            self.should_stop = True
            self.history["stopped"] = {"epoch": e + 1, "reason": "max_seconds",
                                       "max_seconds": cfg.max_seconds}  # fmt: skip
        do_val = run.val_loader is not None and ((e + 1) % cfg.val_every == 0
                                                 or e + 1 == cfg.epochs
                                                 or self.should_stop)  # fmt: skip
        if do_val:
            record["val_loss"] = self._evaluate(run.model, run.val_loader, run.device,
                                                run.autocast, run.dist)  # fmt: skip
        record["time_s"] = time.perf_counter() - t0
        self.epoch = e + 1
        improved = do_val and record["val_loss"] < run.best_val
        if improved:
            run.best_val = record["val_loss"]
            self.history["best"] = {"epoch": self.epoch, "val_loss": run.best_val}
        self.history["epochs"].append(record)
        for cb in self.callbacks:
            cb(self, record)
        if run.dist.enabled:  # every rank must agree on stopping
            import torch.distributed as dist

            flag = torch.tensor(float(self.should_stop), device=run.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            self.should_stop = bool(flag.item())
        post = {"train": f"{record['train_loss']:.4g}", "lr": f"{record['lr']:.3g}"}
        if do_val:
            post["val"] = f"{record['val_loss']:.4g}" + (" *" if improved else "")
        bar.set_postfix(post)
        bar.close()
        if not run.main:
            return
        log.info("epoch %d/%d: %s (%.1f s)", self.epoch, cfg.epochs, post, record["time_s"])
        if improved:
            run.best_path = save_checkpoint(
                self.out_dir / BEST, run.model, epoch=self.epoch,
                extra={"val_loss": run.best_val, "config": cfg.to_dict(), **self.metadata},
                model_kwargs=self.model_kwargs)  # fmt: skip
        if self.epoch % cfg.checkpoint_every == 0 or self.epoch == cfg.epochs or self.should_stop:
            run.last_path = self._save_last(run.opt, run.sched, run.scaler)
        self._write_history()

    def _nonfinite(self, epoch: int, batch: int):
        raise FloatingPointError(
            f"non-finite loss in epoch {epoch + 1} (by batch {batch + 1}); lower lr, set "
            "grad_clip, or check the data for NaN/Inf"
        )

    @torch.no_grad()
    def _evaluate(self, model, loader, device, autocast, dist_info: DistInfo) -> float:
        model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=device)
        for batch in loader:
            x, y = _split_batch(batch)
            x, y = _to(x, device), _to(y, device)
            loss = self._batch_loss(model, x, y, autocast)  # unwrapped: no collectives
            n = _n_items(y)
            total[0] += loss.double() * n
            total[1] += n
        if dist_info.enabled:
            import torch.distributed as dist

            dist.all_reduce(total)
        model.train()
        return float(total[0] / total[1].clamp_min(1))


def fit(model: nn.Module, train_ds, val_ds=None, config: TrainConfig | None = None, *,
        loss_fn: Callable | None = None, callbacks: Iterable[Callable] = (),
        model_kwargs: dict | None = None, metadata: dict | None = None,
        **overrides) -> TrainResult:  # fmt: skip
    """Train ``model`` on ``train_ds`` (items ``(input, target)``), validating on ``val_ds``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of inputs to predictions of the targets' shape (e.g. a reconstructor:
        sinograms (B, n_views, n_det) -> images (B, H, W)).
    train_ds, val_ds : torch.utils.data.Dataset
        Items are ``(input, target)`` pairs (or dicts with ``input`` and ``target``).
    config : TrainConfig, optional
        Settings; keyword ``overrides`` replace fields (``fit(..., epochs=3)``).
    loss_fn : callable, optional
        ``loss_fn(pred, target) -> scalar`` replacing ``config.loss``.
    callbacks : iterable of callables
        Called as ``cb(trainer, record)`` after every epoch (``record``: that epoch's
        history entry); a callback may set ``trainer.should_stop = True``.
    model_kwargs, metadata : dict, optional
        JSON-able; stored in the checkpoints (``model_kwargs`` as read by
        :func:`mrct.recon.pretrained.pretrained`, ``metadata`` inside ``extra``).

    Returns
    -------
    TrainResult
        The trained model, the history and the checkpoint paths.

    Under ``torchrun`` each process calls ``fit`` with the same arguments; the data are split
    across processes, gradients averaged, and only rank 0 writes files and progress bars.
    """
    config = config if config is not None else TrainConfig()
    if overrides:
        config = config.replace(**overrides)
    trainer = Trainer(model, train_ds, val_ds, config, loss_fn=loss_fn, callbacks=callbacks,
                      model_kwargs=model_kwargs, metadata=metadata)  # fmt: skip
    return trainer.fit()
