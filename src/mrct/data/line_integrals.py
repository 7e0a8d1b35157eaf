"""Exact line integrals of ellipse / ellipsoid phantoms: the analytic reference for projectors.

A line ``p + l d`` (``|d| = 1``) meets the ellipse ``|M R(-phi) (x - x0)|^2 <= 1`` with
``M = diag(1/a, 1/b)`` where, with ``q = M R(-phi) (p - x0)`` and ``e = M R(-phi) d``,

    |q + l e|^2 = 1   <=>   A l^2 + 2 B l + C = 0,   A = e.e,  B = q.e,  C = q.q - 1,

so the chord has length ``2 sqrt(B^2 - A C) / A`` (zero when ``B^2 < A C``) and the integral
of the phantom along the line is ``sum_k value_k * chord_k``. Ellipsoids are the same in 3D
with ``M = diag(1/a, 1/b, 1/c)`` and the rotation about z.

The acquisition geometries follow ``docs/conventions.md`` (``e_u = (cos t, sin t)``,
``e_r = (-sin t, cos t)``, detector coordinate ``t_u = (u - (n - 1) / 2) d``).
"""

from __future__ import annotations

import numpy as np

from ._phantom_args import _as_ellipses, _as_ellipsoids

__all__ = [
    "cone_beam_projections",
    "ellipse_line_integrals",
    "ellipsoid_line_integrals",
    "fan_beam_sinogram",
    "parallel_beam_sinogram",
]


def _rays(origins, directions, dim: int) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Broadcast rays to flat ``(N, dim)`` arrays with unit directions."""
    o = np.asarray(origins, dtype=np.float64)
    d = np.asarray(directions, dtype=np.float64)
    if o.shape[-1:] != (dim,) or d.shape[-1:] != (dim,):
        raise ValueError(
            f"origins and directions must have shape (..., {dim}), got {o.shape} and {d.shape}"
        )
    o, d = np.broadcast_arrays(o, d)
    shape = o.shape[:-1]
    o = o.reshape(-1, dim)
    d = d.reshape(-1, dim)
    norm = np.linalg.norm(d, axis=1, keepdims=True)
    if np.any(norm == 0) or not np.all(np.isfinite(norm)):
        raise ValueError("directions must be finite and non-zero")
    return o, d / norm, shape


def _chord(q: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Chord length (in the line parameter) of ``{l : |q + l e|^2 <= 1}``; q, e are (N, k)."""
    A = np.einsum("ij,ij->i", e, e)
    B = np.einsum("ij,ij->i", q, e)
    C = np.einsum("ij,ij->i", q, q) - 1.0
    disc = B * B - A * C
    return 2.0 * np.sqrt(np.maximum(disc, 0.0)) / A


def ellipse_line_integrals(ellipses, origins, directions) -> np.ndarray:
    """Exact integrals of an ellipse phantom along full lines ``origin + l * direction``.

    Parameters
    ----------
    ellipses : array_like, shape (n, 6)
        Rows ``(value, a, b, x0, y0, phi)`` (mm, radians).
    origins : array_like, shape (..., 2)
        A point of each line (mm).
    directions : array_like, shape (..., 2)
        Direction of each line (any non-zero length; normalised here). Broadcasts with
        ``origins``.

    Returns
    -------
    ndarray, shape (...), float64
        ``sum_k value_k * chord_k`` with chords in mm (arc length), i.e. mm times the
        phantom's units.
    """
    e = _as_ellipses(ellipses)
    o, d, shape = _rays(origins, directions, 2)
    out = np.zeros(len(o))
    for v, a, b, x0, y0, phi in e:
        c, s = np.cos(phi), np.sin(phi)
        # R(-phi) = [[c, s], [-s, c]], then scale by diag(1/a, 1/b)
        rot = np.array([[c, s], [-s, c]]) / np.array([[a], [b]])
        q = (o - (x0, y0)) @ rot.T
        u = d @ rot.T
        out += v * _chord(q, u)
    return out.reshape(shape)


def ellipsoid_line_integrals(ellipsoids, origins, directions) -> np.ndarray:
    """Exact integrals of an ellipsoid phantom along full lines ``origin + l * direction``.

    Parameters
    ----------
    ellipsoids : array_like, shape (n, 8)
        Rows ``(value, a, b, c, x0, y0, z0, phi)`` (phi about z).
    origins : array_like, shape (..., 3)
        A point of each line (mm).
    directions : array_like, shape (..., 3)
        Directions (normalised here); broadcast with ``origins``.

    Returns
    -------
    ndarray, shape (...), float64
    """
    e = _as_ellipsoids(ellipsoids)
    o, d, shape = _rays(origins, directions, 3)
    out = np.zeros(len(o))
    for v, a, b, cz, x0, y0, z0, phi in e:
        c, s = np.cos(phi), np.sin(phi)
        rot = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]]) / np.array([[a], [b], [cz]])
        q = (o - (x0, y0, z0)) @ rot.T
        u = d @ rot.T
        out += v * _chord(q, u)
    return out.reshape(shape)


# ------------------------------------------------------------------------------ geometry


def _unit_vectors(angles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    th = np.atleast_1d(np.asarray(angles, dtype=np.float64))
    if th.ndim != 1:
        raise ValueError(f"angles must be a 1D array, got shape {th.shape}")
    e_u = np.stack([np.cos(th), np.sin(th)], axis=-1)  # (n_angles, 2)
    e_r = np.stack([-np.sin(th), np.cos(th)], axis=-1)
    return th, e_u, e_r


def _detector_coords(n: int, spacing: float, name: str) -> np.ndarray:
    if int(n) != n or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
    if not np.isfinite(spacing) or spacing <= 0:
        raise ValueError(f"detector spacing must be positive, got {spacing}")
    return (np.arange(int(n)) - (n - 1) / 2.0) * spacing


def _check_distances(source_distance: float, detector_distance: float) -> None:
    if not source_distance > 0:
        raise ValueError(f"source_distance must be positive, got {source_distance}")
    if not source_distance + detector_distance > 0:
        raise ValueError("source_distance + detector_distance must be positive")


def parallel_beam_sinogram(ellipses, angles, n_det: int, det_spacing: float = 1.0) -> np.ndarray:
    """Exact parallel-beam sinogram (Radon transform) of an ellipse phantom.

    Ray ``u`` at angle ``theta`` is ``{t_u e_u + l e_r}`` with ``e_u = (cos, sin)``,
    ``e_r = (-sin, cos)`` and ``t_u = (u - (n_det - 1) / 2) det_spacing``.

    Parameters
    ----------
    ellipses : array_like, shape (n, 6)
    angles : array_like, shape (n_angles,)
        View angles (radians).
    n_det : int
        Number of detector bins.
    det_spacing : float
        Bin spacing (mm).

    Returns
    -------
    ndarray, shape (n_angles, n_det), float64
    """
    _, e_u, e_r = _unit_vectors(angles)
    t = _detector_coords(n_det, det_spacing, "n_det")
    origins = t[None, :, None] * e_u[:, None, :]  # (n_angles, n_det, 2)
    return ellipse_line_integrals(ellipses, origins, e_r[:, None, :])


def fan_beam_sinogram(
    ellipses,
    angles,
    n_det: int,
    det_spacing: float,
    source_distance: float,
    detector_distance: float,
    detector: str = "flat",
) -> np.ndarray:
    """Exact fan-beam sinogram of an ellipse phantom.

    The source is at ``S = -R_s e_r``. Flat detector: bin ``u`` is at ``R_d e_r + t_u e_u``.
    Arc detector (centred on the source, radius ``R_s + R_d``): bin ``u`` has fan angle
    ``gamma_u = t_u / (R_s + R_d)`` and lies at
    ``S + (R_s + R_d) (sin(gamma_u) e_u + cos(gamma_u) e_r)``. Ray ``u`` joins S to its bin.

    Parameters
    ----------
    ellipses, angles, n_det
        As for :func:`parallel_beam_sinogram`.
    det_spacing : float
        Bin spacing (mm; arc length along the arc for ``detector="arc"``).
    source_distance, detector_distance : float
        ``R_s`` and ``R_d``: distances of source and detector from the rotation axis (mm).
    detector : {"flat", "arc"}

    Returns
    -------
    ndarray, shape (n_angles, n_det), float64
    """
    _check_distances(source_distance, detector_distance)
    _, e_u, e_r = _unit_vectors(angles)
    t = _detector_coords(n_det, det_spacing, "n_det")
    src = -source_distance * e_r  # (n_angles, 2)
    if detector == "flat":
        bins = detector_distance * e_r[:, None, :] + t[None, :, None] * e_u[:, None, :]
        directions = bins - src[:, None, :]
    elif detector == "arc":
        gamma = t / (source_distance + detector_distance)
        directions = (
            np.sin(gamma)[None, :, None] * e_u[:, None, :]
            + np.cos(gamma)[None, :, None] * e_r[:, None, :]
        )
    else:
        raise ValueError(f"detector must be 'flat' or 'arc', got {detector!r}")
    return ellipse_line_integrals(ellipses, src[:, None, :], directions)


def cone_beam_projections(
    ellipsoids,
    angles,
    det_shape: tuple[int, int],
    det_spacing: float | tuple[float, float],
    source_distance: float,
    detector_distance: float,
) -> np.ndarray:
    """Exact circular-orbit cone-beam projections of an ellipsoid phantom (flat panel).

    The source is at ``S = (-R_s e_r, 0)``; panel pixel ``(v, u)`` is at
    ``R_d e_r + t_u e_u + t_v e_z`` with ``t_u = (u - (n_cols - 1) / 2) d_u`` and
    ``t_v = (v - (n_rows - 1) / 2) d_v`` (row ``v`` runs along +z).

    Parameters
    ----------
    ellipsoids : array_like, shape (n, 8)
    angles : array_like, shape (n_angles,)
        View angles (radians).
    det_shape : (int, int)
        ``(n_rows, n_cols)``.
    det_spacing : float or (float, float)
        Pixel spacing ``d`` or ``(d_v, d_u)`` in mm.
    source_distance, detector_distance : float
        ``R_s`` and ``R_d`` (mm).

    Returns
    -------
    ndarray, shape (n_angles, n_rows, n_cols), float64
    """
    _check_distances(source_distance, detector_distance)
    e = _as_ellipsoids(ellipsoids)
    if len(tuple(det_shape)) != 2:
        raise ValueError(f"det_shape must be (n_rows, n_cols), got {det_shape!r}")
    n_rows, n_cols = det_shape
    sp = np.broadcast_to(np.asarray(det_spacing, dtype=np.float64), (2,))
    d_v, d_u = float(sp[0]), float(sp[1])
    th, e_u, e_r = _unit_vectors(angles)
    t_v = _detector_coords(n_rows, d_v, "n_rows")
    t_u = _detector_coords(n_cols, d_u, "n_cols")
    out = np.empty((len(th), len(t_v), len(t_u)))
    for i in range(len(th)):  # one view at a time bounds memory to n_rows * n_cols rays
        eu = np.append(e_u[i], 0.0)
        er = np.append(e_r[i], 0.0)
        src = -source_distance * er
        pix = (
            detector_distance * er
            + t_u[None, :, None] * eu
            + t_v[:, None, None] * np.array([0.0, 0.0, 1.0])
        )  # (n_rows, n_cols, 3)
        out[i] = ellipsoid_line_integrals(e, src, pix - src)
    return out
