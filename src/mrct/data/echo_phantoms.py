"""Ultrasound speckle phantoms: echogenicity maps turned into point scatterers.

* :func:`speckle_medium`: scatterers with random positions (``density`` per mm^2) and
  Gaussian reflectivity scaled by an echogenicity map (dB), the usual fully developed speckle
  model (Rayleigh envelope statistics where there are many scatterers per resolution cell);
* :func:`cyst_phantom`: a CIRS-like phantom with anechoic / hyperechoic cysts, wire targets
  and layered walls;
* :func:`cardiac_scene`: a cardiac-like scene from an axial slice of the shared chest CT and
  its heart label: contrast-filled chambers (hypoechoic), myocardium, a bright pericardium
  and the chest wall above it.

Every phantom is an :class:`EchoPhantom` (scatterers, the echogenicity map on its grid and
named region masks for gCNR / CNR). Positions in mm, ``x`` lateral, ``z`` depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..physics.ultrasound import Scatterers

__all__ = ["EchoPhantom", "speckle_medium", "cyst_phantom", "cardiac_scene", "ECHOGENICITY_DB"]

#: default echogenicity (dB relative to myocardium / background tissue) of the cardiac scene
ECHOGENICITY_DB = {
    "myocardium": 0.0,
    "chamber": -35.0,
    "pericardium": 8.0,
    "soft_tissue": -6.0,
    "fat": -12.0,
    "lung": -40.0,
    "bone": 10.0,
}


@dataclass
class EchoPhantom:
    """A speckle phantom: ``scatterers``, the echogenicity map ``echo_db`` (rows ``z``,
    columns ``x``, mm) it was drawn from, and region ``masks`` on the same grid."""

    scatterers: Scatterers
    echo_db: np.ndarray
    x: np.ndarray
    z: np.ndarray
    masks: dict[str, np.ndarray] = field(default_factory=dict)

    def mask_at(self, name: str, px, pz) -> np.ndarray:
        """Region ``name`` sampled (nearest) at points ``(px, pz)`` (mm), e.g. pixels of a DAS
        grid; points outside the map are outside the region."""
        m = self.masks[name]
        return _sample(m.astype(np.float64), self.x, self.z, px, pz, 0.0) > 0.5


def _sample(img, x, z, px, pz, fill):
    px, pz = np.asarray(px, dtype=np.float64), np.asarray(pz, dtype=np.float64)
    j = np.rint((px - x[0]) / (x[1] - x[0])).astype(np.int64)
    i = np.rint((pz - z[0]) / (z[1] - z[0])).astype(np.int64)
    ok = (i >= 0) & (i < z.size) & (j >= 0) & (j < x.size)
    out = np.full(px.shape, fill, dtype=np.float64)
    out[ok] = img[i[ok], j[ok]]
    return out


def speckle_medium(echo_db: np.ndarray, x, z, *, density: float = 4.0, seed=None,
                   floor_db: float = -60.0) -> Scatterers:  # fmt: skip
    """Point scatterers drawn from an echogenicity map.

    Parameters
    ----------
    echo_db : (nz, nx) array
        Echogenicity in dB on the grid ``z`` (rows) x ``x`` (columns), uniformly spaced (mm).
    density : scatterers per mm^2 (about 10 per resolution cell gives fully developed speckle).
    seed : int or numpy Generator.
    floor_db : regions at or below this level get no scatterers.

    Returns
    -------
    Scatterers
        Uniform random positions, reflectivity ``N(0, 1) * 10^(echo / 20)`` (nearest pixel).
    """
    rng = np.random.default_rng(seed)
    x, z = np.asarray(x, dtype=np.float64), np.asarray(z, dtype=np.float64)
    echo_db = np.asarray(echo_db, dtype=np.float64)
    if echo_db.shape != (z.size, x.size):
        raise ValueError(
            f"echo_db must be (len(z), len(x)) = {(z.size, x.size)}, got {echo_db.shape}"
        )
    if density <= 0:
        raise ValueError(f"density must be positive (per mm^2), got {density}")
    area = (x[-1] - x[0]) * (z[-1] - z[0])
    n = rng.poisson(density * area)
    px = rng.uniform(x[0], x[-1], n)
    pz = rng.uniform(z[0], z[-1], n)
    e = _sample(echo_db, x, z, px, pz, floor_db)
    keep = e > floor_db
    amp = rng.standard_normal(int(keep.sum())) * 10 ** (e[keep] / 20)
    return Scatterers(px[keep], pz[keep], amp)


def _disc(xx, zz, cx, cz, r):
    return (xx - cx) ** 2 + (zz - cz) ** 2 <= r * r


def cyst_phantom(width: float = 30.0, depth=(5.0, 45.0), *, cysts=None, wires=None,
                 layers=None, density: float = 4.0, wire_amplitude: float = 30.0,
                 pixel: float = 0.1, seed=None) -> EchoPhantom:  # fmt: skip
    """A CIRS-like phantom: background speckle (0 dB) with cysts, wires and layered walls.

    Parameters
    ----------
    width, depth : lateral extent ``[-width/2, width/2]`` and depth range (mm).
    cysts : list of ``(x, z, radius, dB)``; default an anechoic (-60 dB) and a hyperechoic
        (+6 dB) cyst of radius 4 mm.
    wires : list of ``(x, z)`` point targets of reflectivity ``wire_amplitude``; default a
        vertical column of five.
    layers : list of ``(z_top, z_bottom, dB)`` horizontal walls; default one +6 dB wall.
    density : background scatterers per mm^2.

    Masks: ``"background"``, ``"cyst{i}"`` and ``"layer{i}"``.
    """
    z0, z1 = depth
    x = np.arange(-width / 2, width / 2 + 1e-9, pixel)
    z = np.arange(z0, z1 + 1e-9, pixel)
    zz, xx = np.meshgrid(z, x, indexing="ij")
    mid = 0.5 * (z0 + z1)
    if cysts is None:
        cysts = [(-width / 4, mid, 4.0, -60.0), (width / 4, mid, 4.0, 6.0)]
    if wires is None:
        wires = [(0.0, z0 + (z1 - z0) * f) for f in (0.15, 0.3, 0.5, 0.7, 0.85)]
    if layers is None:
        layers = [(z0 + 0.05 * (z1 - z0), z0 + 0.1 * (z1 - z0), 6.0)]
    echo = np.zeros(zz.shape)
    masks = {}
    for i, (a, b, db) in enumerate(layers):
        m = (zz >= a) & (zz <= b)
        echo[m] = db
        masks[f"layer{i}"] = m
    for i, (cx, cz, r, db) in enumerate(cysts):
        m = _disc(xx, zz, cx, cz, r)
        echo[m] = db
        masks[f"cyst{i}"] = m
    background = np.ones(zz.shape, dtype=bool)
    for m in masks.values():
        background &= ~m
    masks["background"] = background
    sc = speckle_medium(echo, x, z, density=density, seed=seed)
    if len(wires):
        w = np.asarray(wires, dtype=np.float64).reshape(-1, 2)
        amp = np.concatenate([sc.amplitude, np.full(len(w), wire_amplitude)])
        sc = Scatterers(np.concatenate([sc.x, w[:, 0]]), np.concatenate([sc.z, w[:, 1]]), amp)
    return EchoPhantom(sc, echo, x, z, masks)


def cardiac_scene(slice_index: int | None = None, *, depth: float = 110.0, width: float = 120.0,
                  density: float = 2.0, echogenicity: dict | None = None, seed=None,
                  ct=None, labels=None, spacing=None) -> EchoPhantom:  # fmt: skip
    """A cardiac-like speckle scene from an axial slice of the shared chest CT.

    The heart label (id 51 of ``chest_ct_labels.csv``) is split by the contrast agent into
    chambers (HU > 200, smoothed; blood, hypoechoic) and myocardium (the rest of the heart);
    a 2-4 mm shell around the heart is the pericardium (bright). The probe sits on the
    anterior skin above the heart's centre (``x = 0, z = 0``), so the chest wall (skin, fat,
    muscle: the near field where multipath haze arises) lies above the heart.

    Parameters
    ----------
    slice_index : axial slice of :func:`mrct.data.load_chest_ct` (default: the largest heart).
    depth, width : extent of the scene below the probe (mm).
    density : scatterers per mm^2.
    echogenicity : overrides of :data:`ECHOGENICITY_DB`.
    ct, labels, spacing : a CT slice (HU), its label slice and pixel size ``(dy, dx)`` mm
        instead of the shared data (tests, other data).

    Masks: ``"myocardium"``, ``"chamber"``, ``"pericardium"``, ``"lung"``.
    """
    echo_tab = {**ECHOGENICITY_DB, **(echogenicity or {})}
    if ct is None:
        from .shared import load_chest_ct

        vol, lab = load_chest_ct(labels=True)
        heart3 = lab.array == 51
        k = int(heart3.sum(axis=(1, 2)).argmax()) if slice_index is None else int(slice_index)
        ct, labels = vol.array[k], lab.array[k]
        spacing = (vol.spacing[1], vol.spacing[2])
    ct = np.asarray(ct, dtype=np.float64)
    heart = np.asarray(labels) == 51
    if not heart.any():
        raise ValueError("the slice has no heart label (id 51)")
    dy, dx = (float(s) for s in (spacing or (1.0, 1.0)))
    rows, cols = np.nonzero(heart)
    c0 = int(round(cols.mean()))
    body = ct[:, c0] > -300
    r0 = int(np.argmax(body))  # anterior skin above the heart's centre
    chamber = ndimage.binary_opening(heart & (ndimage.uniform_filter(ct, 5) > 200), iterations=2)
    myo = heart & ~chamber
    peri = ndimage.binary_dilation(heart, iterations=max(1, int(round(3.0 / dy)))) & ~heart
    lung = ct < -500
    fat = (ct > -150) & (ct < -40)
    bone = (ct > 400) & ~heart
    echo = np.full(ct.shape, echo_tab["soft_tissue"])
    for name, m in (("fat", fat), ("lung", lung), ("bone", bone), ("pericardium", peri),
                    ("myocardium", myo), ("chamber", chamber)):  # fmt: skip
        echo[m] = echo_tab[name]
    # resample onto the scene grid: z = (row - r0) dy, x = (col - c0) dx
    pix = min(dx, dy)
    x = np.arange(-width / 2, width / 2 + 1e-9, pix)
    z = np.arange(0.0, depth + 1e-9, pix)
    zz, xx = np.meshgrid(z, x, indexing="ij")
    ri = np.clip(np.rint(zz / dy + r0).astype(int), 0, ct.shape[0] - 1)
    ci = np.clip(np.rint(xx / dx + c0).astype(int), 0, ct.shape[1] - 1)
    echo_s = echo[ri, ci]
    masks = {n: m[ri, ci] for n, m in (("myocardium", myo), ("chamber", chamber),
                                       ("pericardium", peri), ("lung", lung))}  # fmt: skip
    sc = speckle_medium(echo_s, x, z, density=density, seed=seed)
    return EchoPhantom(sc, echo_s, x, z, masks)
