"""A JAX primitive for linear maps that run on the host (mrct's Numba kernels).

``host_linear(x, lin, adjoint=False)`` applies ``lin.forward`` (or ``lin.adjoint``) to a JAX
array. It is one primitive, ``mrct_host_linear``, with all of JAX's rules:

* **jit** lowers it to ``jax.pure_callback``: XLA hands the buffer to the host function,
  which views it as a torch tensor without a copy (DLPack) and runs the torch operator's raw
  kernel path (the same code as ``mrct.physics``, without its autograd layer);
* **jvp** is the map itself (it is linear) and the **transpose** (reverse mode: ``grad``,
  ``vjp``) is the exact adjoint kernel, so derivatives of any order reuse the two kernels;
  nothing is differentiated through a loop or by finite differences;
* **vmap** moves the batch axis to the front and calls the kernel once on the whole batch
  (the kernels take any number of leading dimensions), not once per example.

Complex linear maps: JAX's transpose of ``A`` is ``A^T = conj(A^H conj(.))``, which is what
the transpose rule applies when ``lin.complex`` is set. Real maps (the X-ray transforms) are
given real arrays only; complex images are split into real and imaginary parts by callers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
from jax.interpreters import ad, batching, mlir

try:  # jax >= 0.4.36
    from jax.extend.core import Primitive
except ImportError:  # pragma: no cover - older jax
    from jax.core import Primitive

__all__ = ["HostLinear", "host_linear", "to_torch"]


def to_torch(a) -> torch.Tensor:
    """A CPU torch view of a host array handed to a callback (zero-copy where possible)."""
    if isinstance(a, np.ndarray):
        if not a.flags.writeable or not a.flags.c_contiguous:
            a = np.array(a, copy=True, order="C")
        return torch.from_numpy(a)
    try:
        return torch.from_dlpack(a)
    except Exception:  # pragma: no cover - arrays without a DLPack export
        return torch.from_numpy(np.array(a, copy=True, order="C"))


class HostLinear:
    """A linear map ``(..., *in_shape) -> (..., *out_shape)`` computed by host functions.

    Parameters
    ----------
    forward, adjoint : callables taking and returning CPU torch tensors with any number of
        leading (batch) dimensions; they must not keep references to their input.
    in_shape, out_shape : trailing shapes of the domain and range.
    complex : whether the map acts on complex arrays (its JAX transpose is then the
        conjugated adjoint); real maps get real arrays.
    name : for error messages and jaxprs.

    Instances are hashed by identity, so they can be a static parameter of the primitive.
    """

    def __init__(self, forward, adjoint, in_shape, out_shape, *, complex=False, name="linear"):
        self.fwd_fn, self.adj_fn = forward, adjoint
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        self.complex = bool(complex)
        self.name = name

    def __repr__(self) -> str:
        return f"HostLinear({self.name}: {self.in_shape} -> {self.out_shape})"

    def shapes(self, adjoint: bool):
        return (self.out_shape, self.in_shape) if adjoint else (self.in_shape, self.out_shape)

    def host_torch(self, adjoint: bool):
        """The host function for one direction: array in, CPU torch tensor out."""
        fn = self.adj_fn if adjoint else self.fwd_fn

        def run(a):
            t = to_torch(a)
            with torch.no_grad():
                return fn(t.contiguous())

        return run

    def host(self, adjoint: bool):
        """The host function for one direction: array in, numpy array out (for callbacks)."""
        run = self.host_torch(adjoint)
        return lambda a: run(a).numpy()


def _out_aval(x, lin: HostLinear, adjoint: bool):
    src, dst = lin.shapes(adjoint)
    n = len(src)
    if tuple(x.shape[x.ndim - n :]) != src or x.ndim < n:
        raise ValueError(
            f"{lin.name}{'.adjoint' if adjoint else ''} expects shape (..., "
            f"{', '.join(map(str, src))}), got {tuple(x.shape)}"
        )
    return tuple(x.shape[: x.ndim - n]) + dst


host_linear_p = Primitive("mrct_host_linear")


def _abstract_eval(x, *, lin, adjoint):
    return jax.core.ShapedArray(_out_aval(x, lin, adjoint), x.dtype)


def _callback_impl(x, *, lin, adjoint):
    shape = _out_aval(x, lin, adjoint)
    return jax.pure_callback(lin.host(adjoint), jax.ShapeDtypeStruct(shape, x.dtype), x)


def _eager_impl(x, *, lin, adjoint):
    # outside jit on the CPU: call the kernel directly (no compile, no callback round trip)
    devices = x.devices() if isinstance(x, jax.Array) else ()
    if all(d.platform == "cpu" for d in devices):
        return _to_jax(lin.host_torch(adjoint)(x))
    return _jitted_callback(x, lin=lin, adjoint=adjoint)


def _to_jax(t: torch.Tensor):
    """A JAX array sharing the memory of the kernel's fresh output tensor (DLPack, no copy;
    ``jnp.asarray`` of its numpy view costs a copy plus a dispatch: ~1 ms per NUFFT call)."""
    try:
        return jax.dlpack.from_dlpack(t)
    except Exception:  # pragma: no cover - a dtype or alignment DLPack does not carry
        return jnp.asarray(t.numpy())


def _transpose(ct, x, *, lin, adjoint):
    if lin.complex:
        return [jnp.conj(host_linear_p.bind(jnp.conj(ct), lin=lin, adjoint=not adjoint))]
    return [host_linear_p.bind(ct, lin=lin, adjoint=not adjoint)]


def _batch(args, dims, *, lin, adjoint):
    (x,), (d,) = args, dims
    x = jnp.moveaxis(x, d, 0) if d is not None else x
    return host_linear_p.bind(x, lin=lin, adjoint=adjoint), 0


_jitted_callback = jax.jit(_callback_impl, static_argnames=("lin", "adjoint"))

host_linear_p.def_abstract_eval(_abstract_eval)
host_linear_p.def_impl(_eager_impl)
mlir.register_lowering(host_linear_p, mlir.lower_fun(_callback_impl, multiple_results=False))
ad.deflinear2(host_linear_p, _transpose)
batching.primitive_batchers[host_linear_p] = _batch


def host_linear(x, lin: HostLinear, adjoint: bool = False):
    """Apply ``lin`` (or its adjoint) to the JAX array ``x``; see the module docstring."""
    return host_linear_p.bind(x, lin=lin, adjoint=bool(adjoint))
