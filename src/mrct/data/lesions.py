"""Simulated lung nodules: shapes, attenuation, partial volume and noise, inserted into a CT.

The simulator is numpy/scipy only and works on any CT grid (axes ``(D, H, W)``, spacing in mm
per axis, as :func:`mrct.data.load_chest_ct` returns them):

* **shape**: a star-shaped surface ``r(u) = R (1 + sum_lm a_lm Y_lm(u))`` of real spherical
  harmonics of degree 2..``lmax`` (lobulation; the relative standard deviation of ``r`` over
  the sphere is ``lobulation``) plus thin tapering radial spikes (spiculation: cones from
  inside the surface out to 0.3-1 R beyond it, 0.4-1 mm base radius);
* **kinds** (:data:`KINDS`): ``"solid"`` (the whole nodule soft tissue, mean -40..+60 HU,
  texture std 15 HU), ``"ground-glass"`` (a ground-glass opacity: the air spaces partly
  filled, ``HU = (1 - phi) HU_lung + phi HU_tissue`` with filling ``phi`` 0.25-0.55 and a
  heterogeneous texture, so vessels stay visible through it, -750..-300 HU over
  parenchyma) and ``"part-solid"`` (a solid core of 30-60 % of the diameter inside a
  ground-glass halo);
* **partial volume**: each voxel's occupancy is the fraction of ``ceil(spacing / 0.5 mm)``
  sub-samples per axis (at least 2) inside the surface, so thick slices blur the nodule as
  the scanner does;
* **noise**: the replaced part of a voxel loses the host's noise; :func:`insert_nodule` adds
  correlated Gaussian noise of the host's standard deviation and in-plane correlation
  (:func:`estimate_noise`) in exactly the amount that keeps the noise level unchanged.
  Voxels with zero occupancy are never touched (bit-identical background).

Masks: ``mask`` = occupancy >= 0.5; per class ``core`` (solid component >= 0.5) and ``halo``
(the rest of the lesion: ground glass). :func:`read_lesion_mask` reads user masks (NIfTI on
the CT's grid; 1 = solid / any lesion, 2 = ground-glass halo) so real annotations (e.g.
LIDC-IDRI) train the same models.

>>> nod = simulate_nodule((16, 48, 48), (2.5, 0.7, 0.7), 12.0, "part-solid", seed=0)
>>> out = insert_nodule(ct, lungs, spacing=(2.5, 0.7, 0.7), diameter_mm=12, seed=0)
>>> out.image, out.mask, out.core, out.halo
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .nodule_shape import _Spikes, _Surface

__all__ = [
    "KINDS",
    "LUNG_LABELS",
    "LesionInsertion",
    "Nodule",
    "estimate_noise",
    "insert_nodule",
    "lung_mask_from_labels",
    "read_lesion_mask",
    "simulate_nodule",
]

KINDS = ("solid", "part-solid", "ground-glass")
#: lung lobes in the shared chest CT's organ map (``chest_ct_labels.csv``)
LUNG_LABELS = (10, 11, 12, 13, 14)
_TISSUE_HU = 40.0  # what fills the air spaces of ground glass (fluid, cells)


def lung_mask_from_labels(labels, ids=LUNG_LABELS) -> np.ndarray:
    """Boolean lung mask from an organ label map (a :class:`Volume` or an array); ``ids``:
    the lung labels (the five lobes of the shared chest CT's map by default)."""
    arr = np.asarray(getattr(labels, "array", labels))
    return np.isin(arr, np.asarray(ids))


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def _check_spacing(spacing, ndim: int = 3) -> tuple[float, ...]:
    sp = tuple(float(s) for s in np.atleast_1d(spacing))
    if len(sp) != ndim or not all(math.isfinite(s) and s > 0 for s in sp):
        raise ValueError(f"spacing must be {ndim} positive numbers (mm), got {spacing!r}")
    return sp


# --------------------------------------------------------------------------- the nodule


@dataclass
class Nodule:
    """A simulated nodule on a patch grid (every array has the patch's shape, float32).

    ``fraction``: partial-volume occupancy 0..1 of the whole nodule; ``core`` and ``halo``:
    occupancy of the solid and of the ground-glass component (``core + halo = fraction``);
    ``core_hu``: the solid tissue's HU (texture included); ``fill``: the ground-glass filling
    fraction ``phi`` (0..1) of the air spaces with tissue of :data:`_TISSUE_HU`.
    """

    kind: str
    diameter_mm: float
    spacing: tuple[float, ...]
    center: tuple[float, ...]
    fraction: np.ndarray
    core: np.ndarray
    halo: np.ndarray
    core_hu: np.ndarray
    fill: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray:
        """Lesion mask: occupancy >= 0.5."""
        return self.fraction >= 0.5

    @property
    def core_mask(self) -> np.ndarray:
        return self.mask & (self.core >= 0.5)

    @property
    def halo_mask(self) -> np.ndarray:
        return self.mask & ~self.core_mask

    @property
    def support(self) -> np.ndarray:
        """Every voxel the nodule touches (occupancy > 0): outside it nothing changes."""
        return self.fraction > 0

    def weight(self) -> np.ndarray:
        """How much of each voxel's host value is replaced (0 outside the support)."""
        return np.clip(self.core + self.halo * self.fill, 0.0, 1.0).astype(np.float32)

    def blend(self, background: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        """The nodule over ``background`` (HU, the patch's shape): solid part replaces, ground
        glass fills the air spaces; ``noise`` (unit-std field, optional, already scaled to the
        host's HU std) is added as ``noise * sqrt(1 - (1 - w)^2)`` so that the noise level
        stays the host's. Voxels outside :attr:`support` are returned unchanged."""
        bg = np.asarray(background, dtype=np.float32)
        if bg.shape != self.fraction.shape:
            raise ValueError(f"background {bg.shape} differs from the nodule {self.fraction.shape}")
        out = bg + self.core * (self.core_hu - bg) + self.halo * self.fill * (_TISSUE_HU - bg)
        if noise is not None:
            w = self.weight()
            out = out + noise * np.sqrt(np.clip(1.0 - (1.0 - w) ** 2, 0.0, 1.0))
        return np.where(self.support, out, bg).astype(np.float32)


def _smooth_field(shape, spacing, corr_mm: float, rng) -> np.ndarray:
    """Unit-std Gaussian random field with correlation length ``corr_mm``."""
    sig = [corr_mm / s for s in spacing]
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sig, mode="wrap")
    return (f / (f.std() + 1e-12)).astype(np.float32)


def _occupancy(shape, spacing, center, inside) -> np.ndarray:
    """Partial-volume occupancy: mean of ``inside(points_mm)`` over sub-voxel samples."""
    ks = [max(2, math.ceil(s / 0.5)) for s in spacing]
    axes = [(np.arange(n) - c) * s for n, c, s in zip(shape, center, spacing, strict=True)]
    acc = np.zeros(shape, dtype=np.float32)
    offs = [((np.arange(k) + 0.5) / k - 0.5) * s for k, s in zip(ks, spacing, strict=True)]
    for o0 in offs[0]:
        for o1 in offs[1]:
            for o2 in offs[2]:
                p = np.stack(np.meshgrid(axes[0] + o0, axes[1] + o1, axes[2] + o2,
                                         indexing="ij"), axis=-1)  # fmt: skip
                acc += inside(p)
    return acc / float(np.prod(ks))


def simulate_nodule(shape, spacing, diameter_mm: float, kind: str = "solid", seed=None, *,
                    center=None, lobulation: float | None = None,
                    spiculation: int | None = None) -> Nodule:  # fmt: skip
    """A lung nodule on a patch of ``shape`` (D, H, W) voxels of ``spacing`` mm.

    Parameters
    ----------
    shape : 3 ints
        The patch; the nodule is centred at ``center`` (voxel coordinates, floats allowed;
        the patch centre by default). Parts outside the patch are cut off.
    spacing : 3 floats
        Voxel size in mm (partial volume is computed at this size).
    diameter_mm : float
        Equivalent diameter, 3 to 30 mm.
    kind : {"solid", "part-solid", "ground-glass"}
    seed : int, numpy Generator or None
        The same seed gives the same nodule.
    lobulation : float, optional
        Relative std of the radius over directions (default: drawn, 0.03-0.15 for solid,
        0.02-0.1 otherwise).
    spiculation : int, optional
        Number of spikes (default: drawn, 0-10 for solid, 0-4 part-solid, 0 ground glass).

    Returns
    -------
    Nodule
    """
    kind = _check_kind(kind)
    sp = _check_spacing(spacing)
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be 3 positive ints, got {shape!r}")
    d = float(diameter_mm)
    if not 3.0 <= d <= 30.0:
        raise ValueError(f"diameter_mm must be in [3, 30], got {diameter_mm}")
    rng = _rng(seed)
    c = (np.asarray(shape, float) - 1) / 2 if center is None else np.asarray(center, float)
    if c.shape != (3,):
        raise ValueError(f"center must be 3 voxel coordinates, got {center!r}")
    solid = kind == "solid"
    lob = float(rng.uniform(0.03, 0.15) if solid else rng.uniform(0.02, 0.1)) \
        if lobulation is None else float(lobulation)  # fmt: skip
    n_sp = {"solid": 10, "part-solid": 4, "ground-glass": 0}[kind]
    n_sp = int(rng.integers(0, n_sp + 1)) if spiculation is None else int(spiculation)
    radius = d / 2
    surf = _Surface(radius, lob, rng)
    spikes = _Spikes.draw(n_sp, radius, rng)
    core_scale = float(rng.uniform(0.3, 0.6)) if kind == "part-solid" else 1.0

    def inside_at(scale: float, with_spikes: bool):
        def inside(p):
            rho = np.sqrt((p * p).sum(-1))
            theta = np.arccos(np.clip(p[..., 0] / np.maximum(rho, 1e-9), -1, 1))
            phi = np.arctan2(p[..., 2], p[..., 1])
            ins = rho <= surf(theta, phi, scale)
            return ins | spikes.inside(p) if with_spikes and n_sp else ins

        return inside

    # work on the bounding box of the nodule only
    reach = surf.max_r + (float((spikes.start + spikes.length).max()) if n_sp else 0.0)
    lo = np.maximum(np.floor(c - reach / np.asarray(sp) - 1), 0).astype(int)
    hi = np.minimum(np.ceil(c + reach / np.asarray(sp) + 2), shape).astype(int)
    zero = np.zeros(shape, np.float32)
    frac, core = zero.copy(), zero.copy()
    if np.all(hi > lo):
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        bshape, bc = tuple(hi - lo), c - lo
        frac[box] = _occupancy(bshape, sp, bc, inside_at(1.0, True))
        if kind == "solid":
            core[box] = frac[box]
        elif kind == "part-solid":
            core[box] = np.minimum(_occupancy(bshape, sp, bc, inside_at(core_scale, True)),
                                   frac[box])  # fmt: skip
    halo = frac - core
    if kind == "ground-glass":
        mean_fill, fill_std, solid_hu = rng.uniform(0.25, 0.55), 0.08, 0.0
    else:
        mean_fill, fill_std = rng.uniform(0.25, 0.5), 0.06
        solid_hu = rng.uniform(-40.0, 60.0)
    core_hu = (solid_hu + 15.0 * _smooth_field(shape, sp, 1.0, rng)).astype(np.float32)
    fill = np.clip(mean_fill + fill_std * _smooth_field(shape, sp, 1.5, rng), 0.05, 0.9)
    params = {"lobulation": lob, "spikes": n_sp, "core_scale": core_scale,
              "solid_hu": float(solid_hu), "fill": float(mean_fill)}  # fmt: skip
    return Nodule(kind, d, sp, tuple(float(v) for v in c), frac, core, halo.astype(np.float32),
                  core_hu, fill.astype(np.float32), params)  # fmt: skip


# ---------------------------------------------------------------------------- the noise


def estimate_noise(ct: np.ndarray, region: np.ndarray | None = None,
                   hu_range=(-950.0, -600.0)) -> tuple[float, float]:  # fmt: skip
    """Noise of a CT in HU: ``(sigma, g)``, the standard deviation and the in-plane
    correlation as the std (voxels) of a Gaussian kernel that white noise is smoothed with.

    From robust (MAD) variances of in-plane differences at lags 1 and 2 over voxels of
    ``region`` (default: all) within ``hu_range`` (lung parenchyma):
    ``D_k = 2 sigma^2 (1 - rho_k)``, ``rho_k = exp(-k^2 / (4 g^2))``.
    """
    x = np.asarray(ct, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    sel = (x >= hu_range[0]) & (x <= hu_range[1])
    if region is not None:
        sel &= np.asarray(region, bool).reshape(x.shape)

    def robust_var(k):
        ok = sel[..., k:] & sel[..., :-k]
        diff = (x[..., k:] - x[..., :-k])[ok]
        if diff.size < 50:
            return None
        return (1.4826 * np.median(np.abs(diff - np.median(diff)))) ** 2

    d1, d2 = robust_var(1), robust_var(2)
    if d1 is None or d2 is None or d1 <= 0:
        return 20.0, 0.7  # a typical chest CT when the region is too small to tell
    ratio = float(np.clip(d2 / d1, 1.05, 3.95))  # = 1 + rho + rho^2 + rho^3
    rho = float(np.roots([1, 1, 1, 1 - ratio]).real.max())
    rho = float(np.clip(rho, 0.01, 0.95))
    g = float(np.clip(math.sqrt(-1.0 / (4 * math.log(rho))), 0.3, 3.0))
    sigma = float(math.sqrt(d1 / (2 * (1 - rho))))
    return sigma, g


def _noise(shape, sigma: float, g: float, rng) -> np.ndarray:
    """Host-like noise: white noise smoothed in-plane by ``g`` voxels, std ``sigma`` HU."""
    w = rng.standard_normal(shape).astype(np.float32)
    k = np.zeros((1, 15, 15), np.float32)
    k[0, 7, 7] = 1
    norm = float(np.sqrt((ndimage.gaussian_filter(k, (0, g, g)) ** 2).sum()))
    return (ndimage.gaussian_filter(w, (0, g, g)) * (sigma / norm)).astype(np.float32)


# ------------------------------------------------------------------------ the insertion


@dataclass
class LesionInsertion:
    """What :func:`insert_nodule` returns: the image (HU, float32, the CT's shape), the lesion
    mask and its per-class masks (bool), the support (every voxel that changed may only be
    there), the nodule's centre (voxels), and the simulated :class:`Nodule` with its patch
    origin ``offset``."""

    image: np.ndarray
    mask: np.ndarray
    core: np.ndarray
    halo: np.ndarray
    support: np.ndarray
    center: tuple[int, ...]
    nodule: Nodule
    offset: tuple[int, ...]
    noise: tuple[float, float]

    @property
    def labels(self) -> np.ndarray:
        """uint8 lesion labels: 1 solid core, 2 ground-glass halo (what
        :func:`read_lesion_mask` reads back)."""
        return (self.core.astype(np.uint8) + 2 * self.halo.astype(np.uint8)).astype(np.uint8)


def _pick_center(lungs: np.ndarray, spacing, radius_mm: float, rng, tries: int = 300):
    idx = np.flatnonzero(lungs)
    if idx.size == 0:
        raise ValueError("the lung mask is empty")
    rv = np.ceil(radius_mm / np.asarray(spacing)).astype(int)
    best, best_frac = None, -1.0
    for _ in range(tries):
        c = np.array(np.unravel_index(idx[rng.integers(idx.size)], lungs.shape))
        lo, hi = np.maximum(c - rv, 0), np.minimum(c + rv + 1, lungs.shape)
        box = lungs[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
        frac = box.mean() * box.size / float(np.prod(2 * rv + 1))
        if frac > best_frac:
            best, best_frac = c, frac
        if frac >= 0.97:
            break
    return tuple(int(v) for v in best)


def insert_nodule(ct, lung_mask, center=None, diameter_mm: float | None = None,
                  kind: str | None = None, spacing=None, seed=None, *, noise="auto",
                  clip_to_lung: bool = True, **shape_kw) -> LesionInsertion:  # fmt: skip
    """Insert a simulated nodule into ``ct`` (HU, (D, H, W) array or :class:`Volume`).

    Parameters
    ----------
    ct : ndarray or Volume
        The host CT in HU; with a :class:`~mrct.data.readers.Volume` the spacing is its own.
    lung_mask : ndarray (bool) or Volume
        Where nodules may go (:func:`lung_mask_from_labels` of an organ map).
    center : 3 ints, optional
        Voxel of the nodule's centre; default: a random lung voxel around which the nodule
        fits inside the lungs.
    diameter_mm, kind
        Default: drawn (3-30 mm, log-uniform; one of :data:`KINDS`).
    spacing : 3 floats
        Voxel size in mm (required for a plain array).
    seed : int or numpy Generator
        The same seed (and inputs) give the same result.
    noise : "auto", (sigma, g) or None
        Host noise to restore inside the nodule: estimated from the lungs around the nodule
        (:func:`estimate_noise`), given, or none.
    clip_to_lung : bool
        Cut the nodule off at the lung boundary (a juxtapleural nodule stays in the lung).
    **shape_kw
        ``lobulation``, ``spiculation`` for :func:`simulate_nodule`.

    Returns
    -------
    LesionInsertion
        The background outside ``support`` is bit-identical to ``ct``.
    """
    arr = np.asarray(getattr(ct, "array", ct), dtype=np.float32)
    if spacing is None:
        spacing = getattr(ct, "spacing", None)
        if spacing is None:
            raise ValueError("pass spacing= (mm per axis) for a plain array")
    sp = _check_spacing(spacing)
    lungs = np.asarray(getattr(lung_mask, "array", lung_mask)).astype(bool)
    if arr.ndim != 3 or lungs.shape != arr.shape:
        raise ValueError(f"ct must be 3D and the lung mask on its grid, got {arr.shape} and "
                         f"{lungs.shape}")  # fmt: skip
    rng = _rng(seed)
    kind = _check_kind(kind) if kind is not None else KINDS[int(rng.integers(len(KINDS)))]
    d = float(np.exp(rng.uniform(np.log(3.0), np.log(30.0)))) if diameter_mm is None \
        else float(diameter_mm)  # fmt: skip
    if center is None:
        center = _pick_center(lungs, sp, d / 2, rng)
    center = tuple(int(v) for v in center)
    if len(center) != 3 or not all(0 <= c < n for c, n in zip(center, arr.shape, strict=True)):
        raise ValueError(f"center {center} is outside the CT of shape {arr.shape}")
    half = np.ceil(1.3 * d / np.asarray(sp)).astype(int) + 3  # spikes reach ~ 1 diameter
    lo = np.maximum(np.asarray(center) - half, 0)
    hi = np.minimum(np.asarray(center) + half + 1, arr.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    nod = simulate_nodule(tuple(hi - lo), sp, d, kind, rng,
                          center=tuple(np.asarray(center) - lo), **shape_kw)  # fmt: skip
    if clip_to_lung:
        inl = lungs[box].astype(np.float32)
        scale = np.where(nod.fraction > 0, np.minimum(inl, 1.0), 0.0)
        nod.core *= scale
        nod.halo *= scale
        nod.fraction *= scale
    patch = arr[box]
    field_ = None
    if noise == "auto":
        noise = estimate_noise(patch, lungs[box])
    if noise is not None:
        sigma, g = (float(v) for v in noise)
        field_ = _noise(patch.shape, sigma, g, rng)
    image = arr.copy()
    image[box] = nod.blend(patch, field_)
    full = np.zeros(arr.shape, bool)

    def place(a):
        out = full.copy()
        out[box] = a
        return out

    return LesionInsertion(image=image, mask=place(nod.mask), core=place(nod.core_mask),
                           halo=place(nod.halo_mask), support=place(nod.support),
                           center=center, nodule=nod, offset=tuple(int(v) for v in lo),
                           noise=(float(noise[0]), float(noise[1])) if noise is not None
                           else (0.0, 0.0))  # fmt: skip


# ------------------------------------------------------------------------- user masks


def read_lesion_mask(path: str | os.PathLike, reference=None, atol: float = 1e-3):
    """Read a lesion mask (NIfTI, same grid as the CT) with :func:`mrct.data.read_nifti`.

    Voxel values: 0 background, 1 lesion (or solid core), 2 ground-glass halo; any other
    positive value counts as 1. With ``reference`` (the CT's :class:`Volume`) the shapes and
    affines must agree (``ValueError`` otherwise). Returns a :class:`Volume` of uint8 labels
    in SPL orientation, like the CT read by :func:`read_nifti`.
    """
    from .readers import read_nifti

    vol = read_nifti(path, dtype=np.int16)
    lab = np.where(vol.array == 2, 2, np.where(vol.array > 0, 1, 0)).astype(np.uint8)
    vol.array = lab
    if reference is not None:
        if tuple(reference.shape) != tuple(lab.shape):
            raise ValueError(f"lesion mask {path} has shape {lab.shape} but the CT has "
                             f"{tuple(reference.shape)}: they must share a grid")  # fmt: skip
        if not np.allclose(reference.affine, vol.affine, atol=atol):
            raise ValueError(f"lesion mask {path} and the CT have different affines; resample "
                             "the mask onto the CT's grid first")  # fmt: skip
    return vol
