"""Shared machinery of the classical iterative solvers: input checks, batching, stopping rules,
the objective history and the progress bar.

Every solver of :mod:`mrct.recon` (:func:`~mrct.recon.sirt`, :func:`~mrct.recon.cgls`,
:func:`~mrct.recon.cg_sense`, :func:`~mrct.recon.tv_pdhg`) follows the same contract:

* ``solver(A, y, ..., x0=None, n_iter=..., tol=..., callback=None, progress=False,
  return_history=False)``;
* ``y`` has shape ``(*batch, *A.out_shape)``: leading batch dimensions are solved as
  independent problems (step sizes, stopping tests and the history are per item; the operator
  broadcasts over them); the solution has shape ``(*batch, *A.in_shape)``. An operator
  without a fixed ``in_shape`` (``Identity``) has no batch, except in ``tv_pdhg`` (whose
  ``ndim`` trailing axes are the image);
* real (CT) and complex (MRI) data; the iterate lives on ``y.device`` in ``y``'s dtype
  (promoted to complex where the operator's adjoint returns complex);
* the loop runs under :func:`torch.no_grad` (no autograd graph, no gradients to ``y``);
* the return value is ``x``, or ``(x, history)`` with ``return_history=True``, where
  ``history`` is a :class:`History`.

Stopping rules (whichever comes first): ``n_iter`` iterations; the solver's own tolerance test
``tol`` (see each solver); a ``callback(k, x, history)`` that returns ``True``.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from ..physics import LinearOperator

__all__ = ["History", "iterative_solver", "run_solver"]


@dataclass
class History:
    """What an iterative solver did, one entry per iterate ``x_0, x_1, ..., x_n``.

    Attributes
    ----------
    objective : Tensor, shape (n_iter + 1, *batch), float64 (CPU)
        The solver's objective at each iterate (entry 0 is the starting point); see each
        solver for its definition.
    residual : Tensor, shape (n_iter + 1, *batch), float64 (CPU)
        A relative residual, see each solver: ``||y - A x|| / ||y||`` (SIRT), the normal
        equations' ``||A^H (y - A x) - lam x|| / ||A^H y||`` (CGLS, CG-SENSE), the relative
        update ``||x_k - x_{k-1}|| / ||x_k||`` (TV-PDHG; ``nan`` for ``x_0``).
    time : Tensor, shape (n_iter + 1,), float64
        Seconds since the solver started (after its set-up: weights, norms, ``A^H y``).
    n_iter : int
        Iterations run.
    converged : bool
        ``True`` when every batch item met the tolerance test (or the discrepancy principle)
        before ``n_iter`` ran out.
    stop_reason : str
        ``"tol"``, ``"discrepancy"``, ``"callback"`` or ``"n_iter"``.
    setup_time : float
        Seconds spent before the first iteration.
    info : dict
        Solver-specific extras (step sizes, operator norms, ...).
    """

    objective: torch.Tensor
    residual: torch.Tensor
    time: torch.Tensor
    n_iter: int
    converged: bool
    stop_reason: str
    setup_time: float = 0.0
    info: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        last = self.objective[-1]
        obj = f"{float(last):.6g}" if last.numel() == 1 else f"shape {tuple(last.shape)}"
        return (f"History(n_iter={self.n_iter}, converged={self.converged}, "
                f"stop_reason={self.stop_reason!r}, objective[-1]={obj}, "
                f"time={float(self.time[-1]):.3g} s)")  # fmt: skip


# -- input checks -----------------------------------------------------------------------------


def check_iter_args(n_iter, tol, callback) -> tuple[int, float]:
    if isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral) or n_iter < 1:
        raise ValueError(f"n_iter must be an integer >= 1, got {n_iter!r}")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol >= 0:
        raise ValueError(f"tol must be a real number >= 0, got {tol!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    return int(n_iter), float(tol)


def check_nonneg(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"{name} must be a real number >= 0, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


@dataclass
class Problem:
    """Validated ``(A, y, x0)`` with the batch layout: ``y`` is ``(*batch, *out)``."""

    A: LinearOperator
    y: torch.Tensor
    x0: torch.Tensor
    batch: tuple[int, ...]
    n_x: int  # number of trailing (non-batch) dims of x
    n_y: int  # of y
    aty: torch.Tensor  # A^H y, computed once by the check

    def bx(self, v: torch.Tensor) -> torch.Tensor:
        """Per-item scalars ``(*batch)`` reshaped to broadcast against x."""
        return v.reshape(self.batch + (1,) * self.n_x)

    def by(self, v: torch.Tensor) -> torch.Tensor:
        return v.reshape(self.batch + (1,) * self.n_y)

    def dot_x(self, a, b) -> torch.Tensor:
        """``Re <a, b>`` per batch item over the x dims."""
        return _redot(a, b, self.n_x)

    def dot_y(self, a, b) -> torch.Tensor:
        return _redot(a, b, self.n_y)

    def norm2_x(self, a) -> torch.Tensor:
        return _norm2(a, self.n_x)

    def norm2_y(self, a) -> torch.Tensor:
        return _norm2(a, self.n_y)


def _redot(a: torch.Tensor, b: torch.Tensor, n: int) -> torch.Tensor:
    dims = tuple(range(-n, 0))
    if a.is_complex() or b.is_complex():
        return torch.sum((a.conj() * b).real, dim=dims)
    return torch.sum(a * b, dim=dims)


def _norm2(a: torch.Tensor, n: int) -> torch.Tensor:
    dims = tuple(range(-n, 0))
    if a.is_complex():
        a = torch.view_as_real(a)
        dims = tuple(d - 1 for d in dims) + (-1,)
    return torch.sum(a * a, dim=dims)


def check_problem(A, y, x0=None, *, name: str = "solver", x_ndim: int | None = None) -> Problem:
    """Validate the operator, the data and the starting point; work out the batch layout.

    ``y`` must end in ``A.out_shape`` (when the operator fixes it); the batch dimensions are the
    ones before it. The starting point defaults to zeros shaped like ``A^H y`` (whose dtype
    tells whether the unknown is complex); ``x0`` must have that shape. For an operator without
    a fixed ``in_shape`` (``Identity``, ``Diagonal`` of a broadcast weight) the image has
    ``x_ndim`` trailing dimensions (default: all of them, i.e. no batch).
    """
    if not isinstance(A, LinearOperator):
        raise TypeError(f"{name}: A must be an mrct LinearOperator, got {type(A).__name__}")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name}: y must be a torch.Tensor, got {type(y).__name__}")
    if not (y.is_floating_point() or y.is_complex()):
        raise TypeError(f"{name}: y must be a real or complex floating tensor, got {y.dtype}")
    out = A.out_shape
    if out is not None:
        n = len(out)
        if y.ndim < n or tuple(y.shape[y.ndim - n :]) != tuple(out):
            raise ValueError(
                f"{name}: y must have shape (..., {', '.join(map(str, out))}) (the operator's "
                f"out_shape, after any batch dimensions), got {tuple(y.shape)}"
            )
    if not bool(torch.isfinite(y).all()):
        raise ValueError(f"{name}: y contains NaN or Inf")
    with torch.no_grad():
        aty = A.adjoint(y)
    if A.in_shape is not None:
        n_x = len(A.in_shape)
        batch = tuple(aty.shape[: aty.ndim - n_x])
    elif x_ndim is not None and x_ndim <= aty.ndim:
        n_x = x_ndim
        batch = tuple(aty.shape[: aty.ndim - n_x])
    else:
        n_x, batch = aty.ndim, ()
    n_y = y.ndim - len(batch)
    if n_y < 0 or tuple(y.shape[: len(batch)]) != batch:
        # the operator broadcast y against its own batch of buffers: no batch layout for y
        raise ValueError(
            f"{name}: A^H y has shape {tuple(aty.shape)}, which does not share y's batch "
            f"dimensions {tuple(y.shape)}; give y the operator's batch dimensions explicitly"
        )
    if x0 is None:
        x0 = torch.zeros_like(aty)
    else:
        if not isinstance(x0, torch.Tensor):
            raise TypeError(f"{name}: x0 must be a torch.Tensor or None, got {type(x0).__name__}")
        if tuple(x0.shape) != tuple(aty.shape):
            raise ValueError(
                f"{name}: x0 must have shape {tuple(aty.shape)} (like A^H y), got {tuple(x0.shape)}"
            )
        if x0.device != y.device:
            raise ValueError(f"{name}: x0 is on {x0.device} but y on {y.device}")
        if not bool(torch.isfinite(x0).all()):
            raise ValueError(f"{name}: x0 contains NaN or Inf")
        dtype = aty.dtype
        if x0.is_complex() and not dtype.is_complex:
            dtype = x0.dtype
        x0 = x0.detach().to(dtype).clone()
    return Problem(A, y.detach(), x0, batch, n_x, n_y, aty)


# -- iteration bookkeeping --------------------------------------------------------------------


class Recorder:
    """Collects the history, drives the progress bar and the callback, decides when to stop."""

    def __init__(self, name: str, n_iter: int, progress: bool, callback: Callable | None,
                 setup_start: float):  # fmt: skip
        self.objective: list[torch.Tensor] = []
        self.residual: list[torch.Tensor] = []
        self.times: list[float] = []
        self.callback = callback
        self.setup_time = time.perf_counter() - setup_start
        self.t0 = time.perf_counter()
        self.bar = tqdm(total=n_iter, desc=name, disable=not progress, leave=False)
        self.stop_reason = "n_iter"
        self.converged = False
        self.n_iter = 0

    def record(self, objective: torch.Tensor, residual: torch.Tensor | None) -> None:
        obj = objective.detach().to("cpu", torch.float64)
        res = (torch.full_like(obj, math.nan) if residual is None
               else residual.detach().to("cpu", torch.float64))  # fmt: skip
        self.objective.append(obj)
        self.residual.append(res)
        self.times.append(time.perf_counter() - self.t0)

    def step(self, k: int, x: torch.Tensor) -> bool:
        """After iterate ``k`` (1-based) was recorded: progress bar and callback.

        Returns ``True`` if the callback asked to stop.
        """
        self.n_iter = k
        if not self.bar.disable:
            obj = self.objective[-1]
            res = self.residual[-1]
            self.bar.set_postfix(
                objective=f"{float(obj.sum()):.4g}", residual=f"{float(res.nan_to_num().max()):.2e}"
            )
            self.bar.update(1)
        if self.callback is not None and self.callback(k, x, self._history()) is True:
            self.stop_reason = "callback"
            return True
        return False

    def stop(self, reason: str) -> None:
        self.stop_reason = reason
        self.converged = reason in ("tol", "discrepancy")

    def _history(self, info=None) -> History:
        return History(
            objective=torch.stack(self.objective),
            residual=torch.stack(self.residual),
            time=torch.tensor(self.times, dtype=torch.float64),
            n_iter=self.n_iter,
            converged=self.converged,
            stop_reason=self.stop_reason,
            setup_time=self.setup_time,
            info=dict(info or {}),
        )

    def finish(self, x: torch.Tensor, return_history: bool, info=None):
        self.bar.close()
        if return_history:
            return x, self._history(info)
        return x


# -- the one loop ----------------------------------------------------------------------------


def run_solver(name: str, start, step: Callable, *, n_iter: int, callback: Callable | None,
               progress: bool, t_start: float, return_history: bool, info=None):  # fmt: skip
    """The iteration skeleton of every solver: history, progress bar, callback, stopping.

    ``start = (x, objective, residual, done, reason)`` describes iterate 0 and
    ``step(k, active)`` computes iterate ``k`` (1-based) and returns the same five values.
    ``objective`` and ``residual`` (or None) are per batch item; ``done`` (bool per item, or
    None for no test) marks the items whose stopping test (``reason``: ``"tol"`` or
    ``"discrepancy"``) holds; ``active`` are the items still iterating, which ``step`` may
    use to freeze the others. The loop ends after ``n_iter`` iterations, when no item is
    active, or when ``callback(k, x, history)`` returns True. ``info``: a dict (or a function
    returning one, called at the end) for :attr:`History.info`. Returns ``x`` or
    ``(x, History)``.
    """
    rec = Recorder(name, n_iter, progress, callback, t_start)
    x, objective, residual, done, reason = start
    rec.record(objective, residual)
    active = torch.ones_like(objective, dtype=torch.bool) if done is None else ~done
    if not bool(active.any()):
        rec.stop(reason)
    else:
        for k in range(1, n_iter + 1):
            x, objective, residual, done, reason = step(k, active)
            rec.record(objective, residual)
            if done is not None:
                active = active & ~done
            if rec.step(k, x):
                break
            if not bool(active.any()):
                rec.stop(reason)
                break
    return rec.finish(x, return_history, info() if callable(info) else info)


def iterative_solver(name: str, *, n_iter: int, tol: float):
    """Decorator: a solver of the common contract (module docstring) from its set-up.

    The decorated ``setup(P, tol, **options)`` gets the checked :class:`Problem`
    (``check_problem(A, y, x0, name=setup.__name__)``) and the checked ``tol``, and returns
    ``(start, step, info)`` for :func:`run_solver`. The solver is
    ``solver(A, y, x0=None, n_iter=n_iter, tol=tol, *, **options, callback=None,
    progress=False, return_history=False)``, runs under :func:`torch.no_grad` and keeps the
    set-up's name and docstring; its signature lists the options of ``setup``.
    """
    default_n_iter, default_tol = n_iter, tol

    def decorate(setup):
        @functools.wraps(setup)
        def solver(A, y, x0=None, n_iter=default_n_iter, tol=default_tol, *, callback=None,
                   progress=False, return_history=False, **options):  # fmt: skip
            t_start = time.perf_counter()
            n_iter, tol = check_iter_args(n_iter, tol, callback)
            with torch.no_grad():
                P = check_problem(A, y, x0, name=setup.__name__)
                start, step, info = setup(P, tol, **options)
                return run_solver(name, start, step, n_iter=n_iter, callback=callback,
                                  progress=progress, t_start=t_start,
                                  return_history=return_history, info=info)  # fmt: skip

        solver.__signature__ = _solver_signature(setup, default_n_iter, default_tol)
        return solver

    return decorate


def _solver_signature(setup, n_iter: int, tol: float) -> inspect.Signature:
    """The public signature: the common parameters around the set-up's own options."""
    P = inspect.Parameter
    pos, kw = P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY
    options = list(inspect.signature(setup).parameters.values())[2:]
    return inspect.Signature(
        [
            P("A", pos, annotation="LinearOperator"),
            P("y", pos, annotation="torch.Tensor"),
            P("x0", pos, default=None, annotation="torch.Tensor | None"),
            P("n_iter", pos, default=n_iter, annotation="int"),
            P("tol", pos, default=tol, annotation="float"),
            *options,
            P("callback", kw, default=None, annotation="Callable | None"),
            P("progress", kw, default=False, annotation="bool"),
            P("return_history", kw, default=False, annotation="bool"),
        ]
    )


def check_discrepancy(discrepancy, batch: tuple, device) -> torch.Tensor | None:
    """The discrepancy-principle targets per batch item (float64), or None."""
    if discrepancy is None:
        return None
    disc = torch.as_tensor(discrepancy, dtype=torch.float64)
    if not bool((disc >= 0).all()) or not bool(torch.isfinite(disc).all()):
        raise ValueError(f"discrepancy must be finite and >= 0, got {discrepancy!r}")
    return torch.broadcast_to(disc, batch).to(device)


def safe_div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a / b`` with 0 where ``b == 0``."""
    nz = b != 0
    return torch.where(nz, a / torch.where(nz, b, torch.ones_like(b)), torch.zeros_like(a))
