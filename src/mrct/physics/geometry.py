"""CT acquisition geometries: parallel, fan (flat or arc detector) and cone beam.

Small dataclasses in millimetres and radians; see docs/conventions.md for the exact placement
of source, detector and rays. The Primal-Dual UNet setup (256 x 256 image, 360 views at 1
degree, source distance 400, detector distance 150, 511 flat detector pixels of spacing 1) is
``FanBeam(np.deg2rad(np.arange(360)), 511, 1.0, 400.0, 150.0)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ParallelBeam",
    "FanBeam",
    "ConeBeam",
    "uniform_angles",
    "full_scan_angles",
    "short_scan_angles",
]


def _as_angles(angles) -> np.ndarray:
    if hasattr(angles, "detach"):  # torch tensor
        angles = angles.detach().cpu().numpy()
    a = np.asarray(angles, dtype=np.float64)
    if a.ndim == 0:
        a = a[None]
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"angles must be a non-empty 1D array of radians, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("angles contain NaN or Inf")
    return a


def _positive(name, value):
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number (mm), got {value}")
    return value


def _positive_int(name, value):
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def uniform_angles(n_angles: int, arc: float = math.pi, start: float = 0.0) -> np.ndarray:
    """``n_angles`` equally spaced angles covering ``[start, start + arc)`` (radians)."""
    n_angles = _positive_int("n_angles", n_angles)
    return start + arc * np.arange(n_angles, dtype=np.float64) / n_angles


def full_scan_angles(n_angles: int) -> np.ndarray:
    """``n_angles`` equally spaced angles over a full turn ``[0, 2 pi)``."""
    return uniform_angles(n_angles, 2 * math.pi)


def short_scan_angles(n_angles: int, fan_half_angle: float) -> np.ndarray:
    """Short scan: ``n_angles`` angles over ``[0, pi + 2 gamma_max]`` (both ends included)."""
    n_angles = _positive_int("n_angles", n_angles)
    return np.linspace(0.0, math.pi + 2 * fan_half_angle, n_angles, dtype=np.float64)


class _Views:
    """Mix-in: angle handling shared by the geometries."""

    angles: np.ndarray

    @property
    def n_angles(self) -> int:
        return int(self.angles.shape[0])

    def subsample(self, k: int):
        """The same geometry keeping every ``k``-th view (sparse-view CT)."""
        k = _positive_int("k", k)
        return dataclasses.replace(self, angles=self.angles[::k].copy())

    def with_angles(self, angles):
        """The same geometry with other view angles."""
        return dataclasses.replace(self, angles=angles)

    def angular_coverage(self) -> float:
        """Angular range covered (radians), counting one view step past the last angle."""
        a = np.sort(self.angles)
        if a.size == 1:
            return 0.0
        step = np.median(np.diff(a))
        return float(a[-1] - a[0] + step)

    def _in_plane_axes(self) -> tuple[np.ndarray, np.ndarray]:
        """Detector axis ``e_u = (cos, sin)`` and ray axis ``e_r = (-sin, cos)`` of each view,
        each (n_angles, 1, 2)."""
        c, s = np.cos(self.angles), np.sin(self.angles)
        return np.stack([c, s], -1)[:, None, :], np.stack([-s, c], -1)[:, None, :]


def _ray_arrays(origins: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray origins and directions broadcast to one shape, as contiguous float64 arrays."""
    origins, dirs = np.broadcast_arrays(origins, dirs)
    return np.ascontiguousarray(origins), np.ascontiguousarray(dirs)


@dataclass(frozen=True, eq=False)
class ParallelBeam(_Views):
    """Parallel-beam geometry.

    Parameters
    ----------
    angles : array or tensor (n_angles,)
        View angles in radians.
    n_det : int
        Number of detector bins.
    det_spacing : float
        Detector bin spacing in mm.
    """

    angles: np.ndarray
    n_det: int
    det_spacing: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "angles", _as_angles(self.angles))
        object.__setattr__(self, "n_det", _positive_int("n_det", self.n_det))
        object.__setattr__(self, "det_spacing", _positive("det_spacing", self.det_spacing))

    @classmethod
    def uniform(cls, n_angles: int, n_det: int, det_spacing: float = 1.0, arc=math.pi):
        """Equally spaced views over ``[0, arc)`` (default a half turn)."""
        return cls(uniform_angles(n_angles, arc), n_det, det_spacing)

    @property
    def det_coords(self) -> np.ndarray:
        """Detector bin centres along ``e_u`` (mm), shape (n_det,)."""
        return (np.arange(self.n_det) - (self.n_det - 1) / 2) * self.det_spacing

    @property
    def proj_shape(self) -> tuple[int, int]:
        return (self.n_angles, self.n_det)

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """Ray origins and directions, each (n_angles, n_det, 2) float64 in mm."""
        e_u, e_r = self._in_plane_axes()
        return _ray_arrays(self.det_coords[None, :, None] * e_u, e_r)


@dataclass(frozen=True, eq=False)
class FanBeam(_Views):
    """Fan-beam geometry with a flat or an arc (equiangular) detector.

    Parameters
    ----------
    angles : array or tensor (n_angles,)
        Source angles in radians; the source sits at ``-source_distance * e_r``.
    n_det : int
        Number of detector bins.
    det_spacing : float
        Bin spacing in mm on the detector (arc length for an arc detector).
    source_distance, detector_distance : float
        Distances (mm) from the rotation axis to the source and to the detector centre.
    detector : {"flat", "arc"}
        Flat panel, or a circular arc centred on the source.
    """

    angles: np.ndarray
    n_det: int
    det_spacing: float
    source_distance: float
    detector_distance: float
    detector: str = "flat"

    def __post_init__(self):
        object.__setattr__(self, "angles", _as_angles(self.angles))
        object.__setattr__(self, "n_det", _positive_int("n_det", self.n_det))
        object.__setattr__(self, "det_spacing", _positive("det_spacing", self.det_spacing))
        rs = _positive("source_distance", self.source_distance)
        object.__setattr__(self, "source_distance", rs)
        object.__setattr__(
            self, "detector_distance", _positive("detector_distance", self.detector_distance)
        )
        if self.detector not in ("flat", "arc"):
            raise ValueError(f'detector must be "flat" or "arc", got {self.detector!r}')
        if self.fan_half_angle >= math.pi / 2:
            raise ValueError(
                f"the fan is too wide: half-angle {math.degrees(self.fan_half_angle):.1f} deg "
                "(must be below 90 deg); check det_spacing, n_det and the distances"
            )

    @classmethod
    def full_scan(cls, n_angles, n_det, det_spacing, source_distance, detector_distance,
                  detector="flat"):  # fmt: skip
        """Equally spaced source positions over a full turn."""
        return cls(full_scan_angles(n_angles), n_det, det_spacing, source_distance,
                   detector_distance, detector)  # fmt: skip

    @classmethod
    def short_scan(cls, n_angles, n_det, det_spacing, source_distance, detector_distance,
                   detector="flat"):  # fmt: skip
        """Source positions over ``pi + 2 * fan_half_angle`` (Parker short scan)."""
        geo = cls(np.zeros(1), n_det, det_spacing, source_distance, detector_distance, detector)
        return geo.with_angles(short_scan_angles(n_angles, geo.fan_half_angle))

    @property
    def source_detector_distance(self) -> float:
        return self.source_distance + self.detector_distance

    @property
    def det_coords(self) -> np.ndarray:
        """Detector bin centres along the detector (mm), shape (n_det,)."""
        return (np.arange(self.n_det) - (self.n_det - 1) / 2) * self.det_spacing

    @property
    def fan_angles(self) -> np.ndarray:
        """Fan angle of each bin's ray (radians, positive towards ``e_u``), shape (n_det,)."""
        t = self.det_coords
        if self.detector == "arc":
            return t / self.source_detector_distance
        return np.arctan(t / self.source_detector_distance)

    @property
    def fan_half_angle(self) -> float:
        """Half of the full fan angle, to the outer edge of the outermost bin."""
        t = (self.n_det / 2) * self.det_spacing
        if self.detector == "arc":
            return t / self.source_detector_distance
        return math.atan(t / self.source_detector_distance)

    @property
    def proj_shape(self) -> tuple[int, int]:
        return (self.n_angles, self.n_det)

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """Ray origins (the source) and directions (source to bin), each (n_angles, n_det, 2)."""
        e_u, e_r = self._in_plane_axes()
        g = self.fan_angles[None, :, None]
        # from the source, unit vectors towards each bin
        return _ray_arrays(-self.source_distance * e_r, np.sin(g) * e_u + np.cos(g) * e_r)


@dataclass(frozen=True, eq=False)
class ConeBeam(_Views):
    """Circular-orbit cone-beam geometry with a flat panel.

    Parameters
    ----------
    angles : array or tensor (n_angles,)
        Source angles in radians (orbit in the z = 0 plane).
    det_shape : (n_rows, n_cols)
        Detector pixels; rows run along +z, columns along ``e_u``.
    det_spacing : float or (d_row, d_col)
        Detector pixel spacing in mm.
    source_distance, detector_distance : float
        Distances (mm) from the rotation axis to the source and to the panel centre.
    """

    angles: np.ndarray
    det_shape: tuple[int, int]
    det_spacing: float | tuple[float, float]
    source_distance: float
    detector_distance: float

    def __post_init__(self):
        object.__setattr__(self, "angles", _as_angles(self.angles))
        shape = tuple(self.det_shape) if np.ndim(self.det_shape) else (self.det_shape,) * 2
        if len(shape) != 2:
            raise ValueError(f"det_shape must be (n_rows, n_cols), got {self.det_shape}")
        object.__setattr__(
            self,
            "det_shape",
            (_positive_int("n_rows", shape[0]), _positive_int("n_cols", shape[1])),
        )
        sp = self.det_spacing
        sp = (sp, sp) if np.ndim(sp) == 0 else tuple(sp)
        if len(sp) != 2:
            raise ValueError(f"det_spacing must be a float or (d_row, d_col), got {sp}")
        object.__setattr__(
            self, "det_spacing", (_positive("det_spacing", sp[0]), _positive("det_spacing", sp[1]))
        )
        object.__setattr__(
            self, "source_distance", _positive("source_distance", self.source_distance)
        )
        object.__setattr__(
            self, "detector_distance", _positive("detector_distance", self.detector_distance)
        )

    @classmethod
    def full_scan(cls, n_angles, det_shape, det_spacing, source_distance, detector_distance):
        """Equally spaced source positions over a full turn."""
        return cls(full_scan_angles(n_angles), det_shape, det_spacing, source_distance,
                   detector_distance)  # fmt: skip

    @property
    def source_detector_distance(self) -> float:
        return self.source_distance + self.detector_distance

    @property
    def proj_shape(self) -> tuple[int, int, int]:
        return (self.n_angles, *self.det_shape)

    def vectors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """ASTRA-style per-view vectors, each (n_angles, 3) float64 in mm.

        Returns the source position, the centre of detector pixel (0, 0), and the steps from
        one detector column (``e_u`` direction) and one row (``+z``) to the next.
        """
        c, s = np.cos(self.angles), np.sin(self.angles)
        zero = np.zeros_like(c)
        e_u = np.stack([c, s, zero], -1)
        e_r = np.stack([-s, c, zero], -1)
        e_z = np.stack([zero, zero, zero + 1.0], -1)
        dv, du = self.det_spacing
        rows, cols = self.det_shape
        src = -self.source_distance * e_r
        det00 = self.detector_distance * e_r - (cols - 1) / 2 * du * e_u - (rows - 1) / 2 * dv * e_z
        return (
            np.ascontiguousarray(src),
            np.ascontiguousarray(det00),
            np.ascontiguousarray(du * e_u),
            np.ascontiguousarray(dv * e_z),
        )
