"""Rotations, rigid poses and the view presets of the DRR renderer (torch, differentiable).

Frames (see docs/drr.md for the figure)
---------------------------------------
* **World**: patient RAS millimetres (+x patient Right, +y Anterior, +z Superior), as the
  affines of :mod:`mrct.data.readers` map voxels; poses are given relative to an isocentre
  (by default the centre of the volume).
* **Camera** (C-arm): the X-ray source is the origin, ``+z_c`` is the principal ray (source
  to detector), ``+x_c`` runs along detector columns (left to right in the image) and
  ``+y_c`` along rows (top to bottom): the right-handed pinhole (OpenCV) convention. Images
  are seen from the source (beam's eye view).
* **Pose** ``(R, t)``: maps camera coordinates to world coordinates,
  ``p_world = isocentre + R p_cam + t``. So ``t`` is the source position relative to the
  isocentre and the columns of ``R`` are the camera axes ``x_c, y_c, z_c`` in world
  coordinates. Composition ``a.compose(b)`` applies ``b`` first; a motion ``m`` of the C-arm
  about the isocentre is ``m.compose(pose)``.

Rotations
---------
``rotation_matrix(rotation, parameterization, convention)`` accepts

* ``"euler_angles"`` (..., 3) with a named ``convention`` as in
  ``scipy.spatial.transform.Rotation.from_euler``: three letters from ``XYZ``; uppercase =
  intrinsic (rotations about the moving axes, ``"ZXY"``: ``R = Rz(a) Rx(b) Ry(c)``),
  lowercase = extrinsic (about the fixed axes, ``"zxy"``: ``R = Ry(c) Rx(b) Rz(a)``);
* ``"axis_angle"`` (..., 3): rotation vector, angle = norm (Rodrigues' formula);
* ``"quaternion"`` (..., 4): ``(w, x, y, z)``, normalised here;
* ``"matrix"`` (..., 3, 3): checked to be orthonormal with determinant +1.

Angles are radians unless ``degrees=True``. Every function is differentiable in torch.

View presets (radiographic and C-arm)
-------------------------------------
``view_pose("ap" | "pa" | "lateral" | "left-lateral" | "right-lateral", sid)`` put the source
``sid`` mm from the isocentre with image rows running toward the feet:

* ``ap``: source anterior, beam A -> P; patient right on the image left (radiological display);
* ``pa``: source posterior, beam P -> A; seen from the source, so patient right is on the
  image right (flip the columns for the usual PA display);
* ``lateral`` = ``left-lateral``: patient's left side at the detector, beam R -> L, anterior
  on the image right; ``right-lateral``: beam L -> R.

``carm_pose(lao, cranial, sid)`` follows the C-arm (angiography) convention: the reference
position has the detector anterior (beam P -> A, the ``pa`` frame); the primary angle
rotates the detector about the patient's long axis toward the patient's left (LAO > 0,
RAO < 0), the secondary angle tilts it toward the head (cranial > 0, caudal < 0):
``R = Rz(lao) Rx(cranial) R_pa`` in world coordinates. ``carm_pose(90, 0)`` is the left
lateral view. (DeepDRR's ``alpha`` is ``-lao``, its ``beta`` is ``-cranial``.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "Pose",
    "rotation_matrix",
    "euler_to_matrix",
    "axis_angle_to_matrix",
    "quaternion_to_matrix",
    "matrix_to_axis_angle",
    "view_pose",
    "carm_pose",
    "VIEWS",
]

_PARAMS = ("euler_angles", "axis_angle", "quaternion", "matrix")


def _tensor(x, dtype=None, device=None, name="value") -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x
        if dtype is not None and t.dtype != dtype:
            t = t.to(dtype)
        if device is not None:
            t = t.to(device)
    else:
        try:
            t = torch.as_tensor(x, dtype=dtype or torch.float64, device=device)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name} must be a tensor or array of numbers, got {x!r}") from e
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or Inf")
    return t


def _axis_rotation(axis: str, a: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) by angle ``a`` (...) about the world axis x, y or z."""
    c, s = torch.cos(a), torch.sin(a)
    o, z = torch.ones_like(a), torch.zeros_like(a)
    if axis == "x":
        rows = [o, z, z, z, c, -s, z, s, c]
    elif axis == "y":
        rows = [c, z, s, z, o, z, -s, z, c]
    else:
        rows = [c, -s, z, s, c, z, z, z, o]
    return torch.stack(rows, dim=-1).reshape(a.shape + (3, 3))


def euler_to_matrix(angles, convention: str = "ZXY", degrees: bool = False) -> torch.Tensor:
    """Rotation matrices from Euler angles ``(..., 3)`` in a named convention (see module doc)."""
    if not isinstance(convention, str) or len(convention) != 3:
        raise ValueError(
            f"convention must be three letters from 'XYZ' or 'xyz', got {convention!r}"
        )
    if not (convention.isupper() or convention.islower()) or set(convention.lower()) - set("xyz"):
        raise ValueError(
            f"convention must be three letters from 'XYZ' (intrinsic) or 'xyz' (extrinsic), "
            f"got {convention!r}"
        )
    if any(convention[i] == convention[i + 1] for i in range(2)):
        raise ValueError(f"consecutive axes of an Euler convention must differ, got {convention!r}")
    a = _tensor(angles, name="Euler angles")
    if a.shape[-1:] != (3,):
        raise ValueError(f"Euler angles must have shape (..., 3), got {tuple(a.shape)}")
    if degrees:
        a = a * (math.pi / 180.0)
    mats = [_axis_rotation(ax, a[..., n]) for n, ax in enumerate(convention.lower())]
    if convention.isupper():  # intrinsic: R = R1 R2 R3
        return mats[0] @ mats[1] @ mats[2]
    return mats[2] @ mats[1] @ mats[0]  # extrinsic: R = R3 R2 R1


def _skew(v: torch.Tensor) -> torch.Tensor:
    z = torch.zeros_like(v[..., 0])
    x, y, w = v[..., 0], v[..., 1], v[..., 2]
    return torch.stack([z, -w, y, w, z, -x, -y, x, z], dim=-1).reshape(v.shape[:-1] + (3, 3))


def axis_angle_to_matrix(rotvec, degrees: bool = False) -> torch.Tensor:
    """Rotation matrices from rotation vectors ``(..., 3)`` (axis times angle; Rodrigues)."""
    v = _tensor(rotvec, name="axis-angle rotation")
    if v.shape[-1:] != (3,):
        raise ValueError(f"axis-angle rotations must have shape (..., 3), got {tuple(v.shape)}")
    if degrees:
        v = v * (math.pi / 180.0)
    th2 = (v * v).sum(-1)
    small = th2 < 1e-8
    th2s = torch.where(small, torch.ones_like(th2), th2)
    th = torch.sqrt(th2s)
    a = torch.where(small, 1.0 - th2 / 6.0, torch.sin(th) / th)
    b = torch.where(small, 0.5 - th2 / 24.0, (1.0 - torch.cos(th)) / th2s)
    K = _skew(v)
    eye = torch.eye(3, dtype=v.dtype, device=v.device).expand(K.shape)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)


def quaternion_to_matrix(q) -> torch.Tensor:
    """Rotation matrices from quaternions ``(..., 4)`` ordered ``(w, x, y, z)`` (normalised)."""
    q = _tensor(q, name="quaternion")
    if q.shape[-1:] != (4,):
        raise ValueError(
            f"quaternions must have shape (..., 4) as (w, x, y, z), got {tuple(q.shape)}"
        )
    n = torch.linalg.vector_norm(q, dim=-1, keepdim=True)
    if bool((n < 1e-12).any()):
        raise ValueError("quaternions must be non-zero")
    w, x, y, z = (q / n).unbind(-1)
    m = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(m, dim=-1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """Rotation vectors ``(..., 3)`` of rotation matrices (angles in [0, pi); for reporting)."""
    R = _tensor(R, name="rotation matrix")
    cos = ((R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1) / 2).clamp(-1.0, 1.0)
    th = torch.acos(cos)
    w = torch.stack(
        [R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1
    )
    s = torch.sin(th)
    scale = torch.where(s.abs() < 1e-8, 0.5 * torch.ones_like(th), th / (2 * s.clamp_min(1e-12)))
    return w * scale[..., None]


def _check_matrix(R: torch.Tensor, tol: float = 1e-4) -> torch.Tensor:
    if R.shape[-2:] != (3, 3):
        raise ValueError(f"rotation matrices must have shape (..., 3, 3), got {tuple(R.shape)}")
    eye = torch.eye(3, dtype=R.dtype, device=R.device)
    Rd = R.detach()
    err = (Rd.transpose(-1, -2) @ Rd - eye).abs().amax() if R.numel() else torch.tensor(0.0)
    tol = max(tol, 1e-4 if R.dtype == torch.float64 else 1e-3)
    if float(err) > tol:
        raise ValueError(f"rotation matrix is not orthonormal (max |R^T R - I| = {float(err):.2e})")
    if R.numel() and bool((torch.linalg.det(Rd) < 0).any()):
        raise ValueError("rotation matrix has determinant -1 (a reflection, not a rotation)")
    return R


def rotation_matrix(rotation, parameterization: str = "euler_angles", convention: str = "ZXY",
                    degrees: bool = False) -> torch.Tensor:  # fmt: skip
    """Rotation matrices ``(..., 3, 3)`` from any supported parameterisation (module doc)."""
    if parameterization == "euler_angles":
        return euler_to_matrix(rotation, convention, degrees)
    if parameterization == "axis_angle":
        return axis_angle_to_matrix(rotation, degrees)
    if parameterization == "quaternion":
        return quaternion_to_matrix(rotation)
    if parameterization == "matrix":
        return _check_matrix(_tensor(rotation, name="rotation matrix"))
    raise ValueError(f"parameterization must be one of {_PARAMS}, got {parameterization!r}")


class Pose:
    """A batch of rigid C-arm poses ``p_world = isocentre + R p_cam + t`` (module doc).

    Parameters
    ----------
    R : tensor (..., 3, 3)
        Rotation: columns are the camera axes (detector columns, rows, principal ray) in world
        (RAS) coordinates.
    t : tensor (..., 3)
        Source position relative to the isocentre (mm).
    """

    def __init__(self, R, t):
        R = _check_matrix(_tensor(R, name="rotation matrix"))
        t = _tensor(t, dtype=R.dtype, device=R.device, name="translation")
        if t.shape[-1:] != (3,):
            raise ValueError(f"translation must have shape (..., 3) (mm), got {tuple(t.shape)}")
        try:
            shape = torch.broadcast_shapes(R.shape[:-2], t.shape[:-1])
        except RuntimeError as e:
            raise ValueError(
                f"rotation batch {tuple(R.shape[:-2])} and translation batch "
                f"{tuple(t.shape[:-1])} do not broadcast"
            ) from e
        self.R = R.expand(shape + (3, 3))
        self.t = t.expand(shape + (3,))

    @classmethod
    def from_parameters(cls, rotation, translation, parameterization: str = "euler_angles",
                        convention: str = "ZXY", degrees: bool = False) -> Pose:  # fmt: skip
        """Pose from a rotation in any parameterisation and a translation (mm)."""
        R = rotation_matrix(rotation, parameterization, convention, degrees)
        return cls(R, _tensor(translation, dtype=R.dtype, device=R.device, name="translation"))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.R.shape[:-2])

    @property
    def source(self) -> torch.Tensor:
        """Source position relative to the isocentre (..., 3), mm."""
        return self.t

    @property
    def direction(self) -> torch.Tensor:
        """Unit principal-ray direction (..., 3) in world coordinates."""
        return self.R[..., :, 2]

    def compose(self, other: Pose) -> Pose:
        """``self`` after ``other``: ``(R1, t1) (R2, t2) = (R1 R2, R1 t2 + t1)``."""
        R = self.R @ other.R
        t = (self.R @ other.t[..., None])[..., 0] + self.t
        return Pose(R, t)

    def inverse(self) -> Pose:
        Rt = self.R.transpose(-1, -2)
        return Pose(Rt, -(Rt @ self.t[..., None])[..., 0])

    def apply(self, points: torch.Tensor) -> torch.Tensor:
        """Map camera points (..., 3) to world points relative to the isocentre."""
        return (self.R @ points[..., None])[..., 0] + self.t

    def to(self, dtype=None, device=None) -> Pose:
        return Pose(self.R.to(dtype=dtype, device=device), self.t.to(dtype=dtype, device=device))

    def __repr__(self) -> str:
        return f"Pose(shape={self.shape}, dtype={self.R.dtype})"


# Camera axes (x_c, y_c, z_c) as world (RAS) vectors for the radiographic views.
_FRAMES = {
    "ap": ((-1, 0, 0), (0, 0, -1), (0, -1, 0)),
    "pa": ((1, 0, 0), (0, 0, -1), (0, 1, 0)),
    "left-lateral": ((0, 1, 0), (0, 0, -1), (-1, 0, 0)),
    "right-lateral": ((0, -1, 0), (0, 0, -1), (1, 0, 0)),
}
_ALIASES = {"lateral": "left-lateral", "ll": "left-lateral", "rl": "right-lateral",
            "left_lateral": "left-lateral", "right_lateral": "right-lateral"}  # fmt: skip

#: Names accepted by :func:`view_pose`.
VIEWS = tuple(sorted(set(_FRAMES) | set(_ALIASES)))


def _frame(name: str, dtype, device) -> torch.Tensor:
    cols = torch.tensor(_FRAMES[name], dtype=dtype, device=device)
    return cols.T  # columns are the camera axes


def view_pose(view: str | Sequence[str], sid: float = 850.0, dtype=torch.float64,
              device=None) -> Pose:  # fmt: skip
    """Pose of a radiographic view (``"ap"``, ``"pa"``, ``"lateral"``...), source ``sid`` mm
    from the isocentre. A list of names gives a batch of poses."""
    if not isinstance(view, str):
        poses = [view_pose(v, sid, dtype, device) for v in view]
        return Pose(torch.stack([p.R for p in poses]), torch.stack([p.t for p in poses]))
    key = _ALIASES.get(view.lower(), view.lower())
    if key not in _FRAMES:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if not (sid > 0 and math.isfinite(sid)):
        raise ValueError(f"sid (source-to-isocentre distance) must be positive (mm), got {sid}")
    R = _frame(key, dtype, device)
    return Pose(R, -sid * R[:, 2])


def carm_pose(lao=0.0, cranial=0.0, sid: float = 850.0, degrees: bool = True,
              dtype=torch.float64, device=None) -> Pose:  # fmt: skip
    """C-arm pose from the primary (LAO > 0 / RAO < 0) and secondary (cranial > 0 / caudal < 0)
    angles about the isocentre, degrees by default; the angles broadcast to a batch."""
    if not (sid > 0 and math.isfinite(sid)):
        raise ValueError(f"sid (source-to-isocentre distance) must be positive (mm), got {sid}")
    a = _tensor(lao, dtype=dtype, device=device, name="lao")
    b = _tensor(cranial, dtype=dtype, device=device, name="cranial")
    a, b = torch.broadcast_tensors(a, b)
    if degrees:
        a, b = a * (math.pi / 180.0), b * (math.pi / 180.0)
    R = _axis_rotation("z", a) @ _axis_rotation("x", b) @ _frame("pa", dtype, device)
    return Pose(R, -sid * R[..., :, 2])
