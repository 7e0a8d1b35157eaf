"""Parallel, fan and cone-beam X-ray transforms and FBP/FDK as JAX functions.

``A = mrct.jax.radon(geometry, image_shape, pixel_size)`` wraps :class:`mrct.physics.Radon`:
the projector and its exact adjoint run mrct's Numba kernels on the host (see
:mod:`mrct.jax._host`), the FBP ramp filter and weights are ``jnp`` code, and the FBP
backprojection is another host kernel pair (backprojection and its exact transpose).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..physics.fbp_filters import parker_weights, ramp_kernel_fft
from ..physics.geometry import ConeBeam, FanBeam, ParallelBeam
from ..physics.radon import Radon as _TorchRadon
from ..physics.radon_fbp import _angular_weights
from ._host import HostLinear, host_linear, to_torch
from ._operator import Operator, real_input

__all__ = ["Radon", "radon", "apply_filter"]


def apply_filter(proj, response: np.ndarray):
    """Convolve the last axis of ``proj`` with the filter of rfft response ``response`` (jnp)."""
    n = proj.shape[-1]
    P = 2 * (response.shape[0] - 1)
    spec = jnp.fft.rfft(proj, n=P, axis=-1)
    resp = jnp.asarray(response, dtype=proj.dtype)
    return jnp.fft.irfft(spec * resp, n=P, axis=-1)[..., :n].astype(proj.dtype)


def _part_by_part(fn, x):
    """Apply a real linear map to a complex array part by part."""
    return jax.lax.complex(fn(jnp.real(x)), fn(jnp.imag(x)))


class Radon(Operator):
    """X-ray transform for :class:`ParallelBeam`, :class:`FanBeam` and :class:`ConeBeam`.

    Same contract as :class:`mrct.physics.Radon` (shapes, units, float32/float64, complex
    input projected part by part), on JAX arrays. Build it with :func:`radon`.
    """

    def __init__(self, geometry, image_shape, pixel_size=1.0):
        self.torch_op = _TorchRadon(
            geometry, image_shape, pixel_size, backend="cpu", check_finite=False
        )
        op = self.torch_op
        self.geometry = geometry
        self.image_shape = op.image_shape
        self.pixel_size = op.pixel_size
        self.in_shape, self.out_shape = op.image_shape, tuple(geometry.proj_shape)
        self._lin = HostLinear(
            op._forward_raw, op._adjoint_raw, self.in_shape, self.out_shape,
            name=f"radon[{type(geometry).__name__}]",
        )  # fmt: skip
        self._bp: dict = {}

    def __call__(self, x):
        """Project images ``(..., *image_shape)`` to ``(..., *geometry.proj_shape)``."""
        x = jnp.asarray(x)
        if jnp.iscomplexobj(x):
            return _part_by_part(self.__call__, x)
        x = real_input(x, "x", self.in_shape, "an image")
        return host_linear(x, self._lin)

    def adjoint(self, y):
        """Exact adjoint (transpose): projections -> images (complex: part by part)."""
        y = jnp.asarray(y)
        if jnp.iscomplexobj(y):
            return _part_by_part(self.adjoint, y)
        y = real_input(y, "y", self.out_shape, "projections")
        return host_linear(y, self._lin, adjoint=True)

    # -- analytic reconstruction --------------------------------------------------------------
    def fbp(self, y, filter: str = "ram-lak", *, frequency_scaling: float = 1.0,
            short_scan: bool | None = None):  # fmt: skip
        """Filtered backprojection (parallel, fan) or FDK (cone beam).

        Same arguments and result as :meth:`mrct.physics.Radon.fbp`. Parallel and fan-beam
        FBP are linear JAX functions (jit, vmap, grad: the backward runs the exact transpose
        of the backprojection kernel). FDK (cone beam) is a host callback without
        derivatives, as in torch (``jax.grad`` through it raises).
        """
        y = jnp.asarray(y)
        kw = dict(frequency_scaling=frequency_scaling, short_scan=short_scan)
        if jnp.iscomplexobj(y):
            return _part_by_part(lambda t: self.fbp(t, filter, **kw), y)
        y = real_input(y, "y", self.out_shape, "projections")
        g = self.geometry
        fs = frequency_scaling
        if isinstance(g, ParallelBeam):
            resp = ramp_kernel_fft(g.n_det, g.det_spacing, filter, frequency_scaling=fs)
            weights = _angular_weights(g.angles, math.pi)
            return self._backproject(apply_filter(y, resp), ("parallel",), weights, 0, 0.0, 0.0)
        if isinstance(g, FanBeam):
            return self._fbp_fan(y, filter, fs, short_scan)
        return self._fdk(y, filter, fs, short_scan)

    def _backproject(self, q, key, weights, mode, rs, rsd):
        lin = self._bp.get(key)
        if lin is None:
            op = self.torch_op
            args = (weights, mode, rs, rsd)
            lin = self._bp[key] = HostLinear(
                lambda t: op._backproject_raw(t, *args),
                lambda t: op._backproject_t_raw(t, *args),
                self.out_shape, self.in_shape, name=f"fbp-backprojection{key}",
            )  # fmt: skip
        return host_linear(q, lin)

    def _fbp_fan(self, y, filter, fs, short_scan):
        g = self.geometry
        rs, rsd = g.source_distance, g.source_detector_distance
        short, view_w = self.torch_op._redundancy(short_scan, g.fan_half_angle)
        if g.detector == "flat":
            s = g.det_coords * rs / rsd
            pre = rs / np.sqrt(rs**2 + s**2)
            resp = ramp_kernel_fft(g.n_det, g.det_spacing * rs / rsd, filter, frequency_scaling=fs)
            mode = 1
        else:
            pre = rs * np.cos(g.fan_angles)
            alpha = g.det_spacing / rsd
            resp = ramp_kernel_fft(g.n_det, alpha, filter, arc_spacing=alpha, frequency_scaling=fs)
            mode = 2
        yw = y * jnp.asarray(pre, dtype=y.dtype)
        if short:
            pw = parker_weights(g.angles, g.fan_angles, g.fan_half_angle)
            yw = yw * jnp.asarray(pw, dtype=y.dtype)
        return self._backproject(apply_filter(yw, resp), ("fan", short), view_w, mode, rs, rsd)

    def _fdk(self, y, filter, fs, short_scan):
        op = self.torch_op

        def host(a):
            return op._fdk(to_torch(a).contiguous(), filter, fs, short_scan).numpy()

        shape = y.shape[: y.ndim - len(self.out_shape)] + self.in_shape
        return jax.pure_callback(
            host, jax.ShapeDtypeStruct(shape, y.dtype), y, vmap_method="expand_dims"
        )


def radon(geometry, image_shape, pixel_size=1.0) -> Radon:
    """The X-ray transform of ``geometry`` as a JAX operator.

    Parameters
    ----------
    geometry : ParallelBeam, FanBeam or ConeBeam
        Acquisition geometry (mm, radians); static (part of the compiled function).
    image_shape : (H, W) for parallel and fan beam, (D, H, W) for cone beam.
    pixel_size : float, or (pz, ps) / (pz, ps, ps) for cone beam, in mm.

    Returns
    -------
    Radon
        ``A(x)`` projects ``(..., *image_shape)`` to ``(..., *geometry.proj_shape)``,
        ``A.adjoint(y)`` (or ``A.T(y)``) is the exact adjoint, ``A.fbp(y, filter)`` is
        FBP/FDK. All are JAX functions: ``jax.jit``, ``jax.grad``/``jax.vjp``/``jax.jvp``
        (exact adjoint, any order) and ``jax.vmap`` (one batched kernel call) apply.

    Examples
    --------
    >>> geo = ParallelBeam(np.linspace(0, np.pi, 180, endpoint=False), n_det=367)
    >>> A = mrct.jax.radon(geo, (256, 256))
    >>> loss = lambda x: 0.5 * jnp.sum((A(x) - sino) ** 2)
    >>> g = jax.jit(jax.grad(loss))(x)     # A^T (A x - sino)
    """
    if not isinstance(geometry, (ParallelBeam, FanBeam, ConeBeam)):
        raise TypeError(
            f"geometry must be ParallelBeam, FanBeam or ConeBeam, got {type(geometry).__name__}"
        )
    return Radon(geometry, image_shape, pixel_size)
