"""Digitally reconstructed radiographs as JAX functions, with pose gradients.

``R = mrct.jax.drr(volume_spacing, detector, volume_shape=..., view="ap")`` wraps
:class:`mrct.physics.DRR` (same frames and conventions, docs/drr.md):

* ``R(volume)`` renders line integrals ``(..., P, height, width)`` of an attenuation volume
  ``(..., D, H, W)`` (mm^-1) for the fixed poses with mrct's Siddon or trilinear Numba
  kernels; ``R.adjoint(images)`` is the exact adjoint (host kernels, see
  :mod:`mrct.jax._host`), so ``jax.grad`` reaches the volume.
* ``R.render(volume, rotation, translation)`` is a pure ``jnp`` trilinear renderer (the
  samples of the trilinear kernel, as :class:`mrct.physics.DRR`'s pose-gradient path) that
  is differentiable in the pose (Euler angles ``ZXY`` in radians, or a rotation matrix, and
  a translation in mm relative to the isocentre) and in the volume: 2D/3D registration.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.ndimage import map_coordinates

from ..physics.drr import DRR as _TorchDRR
from ._host import HostLinear, host_linear
from ._operator import Operator, real_input

__all__ = ["DRR", "drr", "euler_to_matrix"]

_DETECTOR_KEYS = ("height", "width", "pixel_spacing", "sdd", "offset")


def _axis_rotation(axis, a):
    c, s = jnp.cos(a), jnp.sin(a)
    o, z = jnp.ones_like(a), jnp.zeros_like(a)
    rows = {
        "x": [o, z, z, z, c, -s, z, s, c],
        "y": [c, z, s, z, o, z, -s, z, c],
        "z": [c, -s, z, s, c, z, z, z, o],
    }[axis]
    return jnp.stack(rows, axis=-1).reshape(a.shape + (3, 3))


def euler_to_matrix(angles, convention: str = "ZXY"):
    """Rotation matrices ``(..., 3, 3)`` from Euler angles ``(..., 3)`` in radians, as
    :func:`mrct.physics.pose.euler_to_matrix` (uppercase intrinsic, lowercase extrinsic)."""
    angles = jnp.asarray(angles)
    mats = [_axis_rotation(ax, angles[..., n]) for n, ax in enumerate(convention.lower())]
    if convention.isupper():
        return mats[0] @ mats[1] @ mats[2]
    return mats[2] @ mats[1] @ mats[0]


class DRR(Operator):
    """DRR renderer of volumes of a fixed shape and spacing; build it with :func:`drr`."""

    def __init__(self, volume_spacing, detector, *, volume_shape, affine=None, isocentre=None,
                 renderer="siddon", step=None, sid=850.0, pose=None,
                 **pose_kw):  # fmt: skip
        if isinstance(detector, (int, np.integer)):
            detector = {"height": int(detector)}
        detector = dict(detector)
        unknown = set(detector) - set(_DETECTOR_KEYS)
        if unknown:
            raise ValueError(f"unknown detector keys {sorted(unknown)}; use {_DETECTOR_KEYS}")
        shape = tuple(int(s) for s in volume_shape)
        self.torch_drr = _TorchDRR(
            np.zeros(shape, np.float32), None if affine is not None else volume_spacing,
            affine=affine, isocentre=isocentre, renderer=renderer, step=step, sid=sid,
            attenuation="none", backend="cpu", **detector,
        )  # fmt: skip
        t = self.torch_drr
        self.volume_shape, self.height, self.width = shape, t.height, t.width
        self.spacing, self.step = t.spacing, t.step
        if not pose_kw and pose is None:
            pose_kw = {"view": "ap"}
        self.pose = t.pose(**pose_kw) if pose is None else pose
        proj = t.projector(self.pose, check_finite=False)
        self.projector = proj
        self.in_shape, self.out_shape = shape, tuple(proj.det_shape)
        self._lin = HostLinear(proj._forward_raw, proj._adjoint_raw, self.in_shape,
                               self.out_shape, name=f"drr[{t.renderer}]")  # fmt: skip
        # static data of the pose-differentiable renderer
        self._inv = np.linalg.inv(t.affine)
        n = np.asarray(shape, np.float64)
        self._centre = (t.affine @ np.append((n - 1) / 2, 1.0))[:3]
        # radius (mm) of a ball about the centre that holds the trilinear support (-1 .. n)
        self._radius = 0.5 * float(np.linalg.norm((n + 1) * np.asarray(t.spacing))) + self.step
        self._n_samples = 2 * int(math.ceil(self._radius / self.step)) + 2

    def __call__(self, volume):
        """Line integrals ``(..., P, height, width)`` of volumes ``(..., D, H, W)`` (mm^-1)
        for the operator's fixed poses (Numba kernels; exact-adjoint gradient)."""
        return host_linear(real_input(volume, "volume", self.in_shape), self._lin)

    def adjoint(self, images):
        """Exact adjoint: images ``(..., P, height, width)`` -> volumes ``(..., D, H, W)``."""
        y = real_input(images, "images", self.out_shape)
        return host_linear(y, self._lin, adjoint=True)

    def render(self, volume, rotation, translation, convention: str = "ZXY"):
        """Trilinear DRR ``(height, width)`` of one pose, differentiable in the pose.

        ``rotation``: Euler angles (3,) in radians (``convention``) or a matrix (3, 3);
        ``translation`` (3,): source position relative to the isocentre (mm). Use
        ``jax.vmap`` for several poses or volumes. Pure ``jnp`` (``map_coordinates``).
        """
        volume = real_input(volume, "volume", self.volume_shape)
        if volume.ndim != 3:
            raise ValueError("render takes one volume (D, H, W); use jax.vmap for a batch")
        dt = volume.dtype
        rotation = jnp.asarray(rotation, dt)
        R = rotation if rotation.shape == (3, 3) else euler_to_matrix(rotation, convention)
        t = self.torch_drr
        tr = jnp.asarray(translation, dt)
        dv, du = t.pixel_spacing
        y0, x0 = t.offset
        c0 = jnp.asarray([-(t.width - 1) / 2 * du + x0, -(t.height - 1) / 2 * dv + y0, t.sdd], dt)
        src = jnp.asarray(t.isocentre, dt) + tr
        det = src + R @ c0
        eu, ev = R[:, 0] * du, R[:, 1] * dv
        r = jnp.arange(t.height, dtype=dt)
        c = jnp.arange(t.width, dtype=dt)
        pix = det + c[None, :, None] * eu + r[:, None, None] * ev  # (h, w, 3) world
        dw = pix - src
        L = jnp.linalg.norm(dw, axis=-1)
        Ai = jnp.asarray(self._inv, dt)
        o = Ai[:3, :3] @ src + Ai[:3, 3]
        d = dw @ Ai[:3, :3].T
        # samples at m * step mm from the source (as the kernel), for the m whose sample
        # can fall in the volume's support: a static count around the volume centre
        s_c = jnp.linalg.norm(src - jnp.asarray(self._centre, dt))
        m0 = jax.lax.stop_gradient(jnp.floor((s_c - self._radius) / self.step))
        m = m0 + jnp.arange(self._n_samples, dtype=dt)
        frac = m[None, None, :] * (self.step / L)[..., None]  # (h, w, M)
        pos = o + frac[..., None] * d[:, :, None, :]
        vals = map_coordinates(volume, [pos[..., k] for k in range(3)], order=1, mode="constant")
        return jnp.sum(vals, axis=-1) * self.step


def drr(volume_spacing, detector, *, volume_shape, affine=None, isocentre=None,
        renderer: str = "siddon", step=None, sid: float = 850.0, pose=None,
        **pose_kw) -> DRR:  # fmt: skip
    """DRRs of ``(D, H, W)`` attenuation volumes as a JAX operator.

    Parameters
    ----------
    volume_spacing : float or (sz, sy, sx)
        Voxel size (mm) of volumes in mrct's canonical SPL orientation centred on the origin
        (or pass ``affine`` (4, 4) for any orientation; the spacing is then ignored).
    detector : int or mapping
        ``height`` or a dict of :class:`mrct.physics.DRR`'s detector arguments
        (``height``, ``width``, ``pixel_spacing``, ``sdd``, ``offset``).
    volume_shape : (D, H, W)
    renderer, step, sid, isocentre : as for :class:`mrct.physics.DRR`.
    pose or pose_kw : the fixed poses of ``op(volume)``: a :class:`mrct.physics.Pose`, or
        ``view=`` ("ap", ["ap", "lateral"], ...), ``lao=``/``cranial=`` (degrees), or
        ``rotation=``/``translation=``. Default ``view="ap"``.

    Returns
    -------
    DRR
        ``op(volume)`` -> ``(P, height, width)`` line integrals (linear, exact adjoint
        ``op.adjoint``); ``op.render(volume, rotation, translation)`` with pose gradients.
    """
    return DRR(volume_spacing, detector, volume_shape=volume_shape, affine=affine,
               isocentre=isocentre, renderer=renderer, step=step, sid=sid, pose=pose,
               **pose_kw)  # fmt: skip
