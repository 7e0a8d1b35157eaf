"""A synthetic head CT (HU) built from the MNI152 grey/white-matter maps of ``../shared``.

The MNI152 template (:func:`mrct.data.load_brain_mri`) is skull-stripped, so the head around
the brain is modelled:

* **intracranial space**: the template's brain mask (holes filled) dilated by 2 mm; inside it
  ``HU = p_gm HU_gm + p_wm HU_wm + (1 - p_gm - p_wm) HU_csf`` with the template's grey and
  white matter probabilities (so ventricles and sulci are CSF);
* **skull**: a shell 5-8 mm thick outside it (the thickness varies smoothly around the
  head): inner and outer tables of cortical bone, cancellous diploe between;
* **scalp**: 4-7 mm of soft tissue with a subcutaneous fat band, then air;
* **air sinuses**: a frontal sinus (an air-filled ellipsoid in the frontal bone, with a bone
  rim) at the level of the inferior frontal lobes, and mastoid air cells low in the
  posterior-lateral skull.

:func:`synthetic_head_ct` returns the head resampled to the requested 2D or 3D shape. With
``seed=None`` it uses the mid-range HU values of :data:`HEAD_HU` and fixed geometry; with an
integer seed the HU values, bone thicknesses, the axial level (2D) and the sinus sizes are
drawn from their ranges, reproducibly.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from .synthetic_anatomy import AIR_HU, resample_fov

__all__ = ["HEAD_HU", "synthetic_head_ct"]

#: HU ranges (low, high) of the head's tissues; ``seed=None`` uses their middles
HEAD_HU = {
    "csf": (0.0, 15.0),
    "grey_matter": (35.0, 45.0),
    "white_matter": (22.0, 32.0),
    "cortical_bone": (1300.0, 1900.0),
    "cancellous_bone": (300.0, 700.0),
    "scalp": (25.0, 55.0),
    "fat": (-110.0, -70.0),
    "sinus_air": (-1000.0, -900.0),
}


@functools.lru_cache(maxsize=1)
def _template():
    """(p_gm, p_wm, intracranial mask) on the 1 mm MNI grid (S, P, L), S index 0 inferior."""
    from .shared import load_brain_mri

    gm = np.asarray(load_brain_mri("gm").array, np.float32) / 255.0
    wm = np.asarray(load_brain_mri("wm").array, np.float32) / 255.0
    t1 = np.asarray(load_brain_mri("t1").array, np.float32)
    brain = ndimage.binary_fill_holes(ndimage.binary_closing((t1 > 5) | (gm + wm > 0.2),
                                                             iterations=2))  # fmt: skip
    icv = ndimage.binary_dilation(brain, iterations=2)
    icv = np.stack([ndimage.binary_fill_holes(s) for s in icv])  # cisterns are CSF
    return gm, wm, icv


def _draw(rng, key):
    lo, hi = HEAD_HU[key]
    return (lo + hi) / 2 if rng is None else float(rng.uniform(lo, hi))


def _head_hu(gm, wm, icv, rng, sinus_center, sinus_dz2: float = 0.0, mastoid=None):
    """HU of the modelled head on the grid of ``gm`` (2D or 3D, 1 mm). ``sinus_center``:
    the frontal sinus centre in the grid's coordinates (None: not in this slice);
    ``sinus_dz2``: for a 2D slice, the squared normalised distance of the slice from the
    sinus centre; ``mastoid``: where mastoid cells may lie (a boolean mask of the grid's first
    axis for 3D, True/False for a 2D slice)."""
    hu_gm, hu_wm, hu_csf = (_draw(rng, k) for k in ("grey_matter", "white_matter", "csf"))
    p_csf = np.clip(1.0 - gm - wm, 0.0, 1.0)
    brain = gm * hu_gm + wm * hu_wm + p_csf * hu_csf
    d = ndimage.distance_transform_edt(~icv)  # mm outside the intracranial space
    g = np.random.default_rng(0) if rng is None else rng
    vary = ndimage.gaussian_filter(g.standard_normal(icv.shape), 12.0)
    vary = vary / (np.abs(vary).max() + 1e-12)
    thick = (6.5 if rng is None else rng.uniform(5.0, 8.0)) * (1.0 + 0.2 * vary)
    table = 1.8 if rng is None else rng.uniform(1.3, 2.3)
    scalp_t = 5.5 if rng is None else rng.uniform(4.0, 7.0)
    bone = (d > 0) & (d <= thick)
    cortical = bone & ((d <= table) | (d > thick - table))
    out = np.full(icv.shape, AIR_HU, np.float32)
    out[icv] = brain[icv]
    out[bone] = _draw(rng, "cancellous_bone")
    out[cortical] = _draw(rng, "cortical_bone")
    scalp = (d > thick) & (d <= thick + scalp_t)
    fat = scalp & (d > thick + 0.3 * scalp_t) & (d <= thick + 0.7 * scalp_t)
    out[scalp] = _draw(rng, "scalp")
    out[fat] = _draw(rng, "fat")
    # frontal sinus: an air ellipsoid in a bone block in front of the inferior frontal lobes
    if sinus_center is not None:
        semi = np.array([7.0, 5.0, 12.0]) * (1.0 if rng is None else rng.uniform(0.7, 1.3))
        grids = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in icv.shape],
                            indexing="ij")  # fmt: skip
        r2 = sinus_dz2 + sum(((x - c) / a) ** 2 for x, c, a in
                             zip(grids, sinus_center, semi[-icv.ndim:], strict=True))  # fmt: skip
        block = (r2 <= 1.6) & ~icv
        out[block & (r2 > 1.0)] = _draw(rng, "cortical_bone")
        out[block & (r2 <= 1.0)] = _draw(rng, "sinus_air")
        rim = (r2 > 1.6) & (r2 <= 2.6) & ~icv & (out == AIR_HU)
        out[rim] = _draw(rng, "scalp")
    # mastoid air cells: small air pockets in the lower posterior-lateral bone
    if mastoid is not None and np.any(mastoid):
        cand = np.argwhere(bone & ~cortical)
        if icv.ndim == 3:
            cand = cand[np.asarray(mastoid)[cand[:, 0]]]
        if cand.size:
            ax_p = icv.ndim - 2  # the P axis
            lateral = np.abs(cand[:, -1] - icv.shape[-1] / 2) > 0.3 * icv.shape[-1]
            post = cand[:, ax_p] > 0.55 * icv.shape[ax_p]
            cand = cand[lateral & post]
            if len(cand):
                pick = cand[g.choice(len(cand), min(len(cand), 40), replace=False)]
                air = np.zeros(icv.shape, bool)
                air[tuple(pick.T)] = True
                air = ndimage.binary_dilation(air, iterations=1) & bone
                out[air] = _draw(rng, "sinus_air")
    return out


def synthetic_head_ct(shape, seed: int | None = None, fov_mm: float = 250.0) -> np.ndarray:
    """A synthetic head CT in HU (float32; air -1000), 2D axial slice or 3D volume.

    Parameters
    ----------
    shape : (H, W) or (D, H, W)
        Output grid. 2D: one axial slice (anterior at the top, patient right on the left);
        3D: the head in (S, P, L) order, superior slice last. Isotropic pixels of
        ``fov_mm / max(shape)`` mm, centred on the head (e.g. ``(256, 256)``: 0.98 mm).
    seed : int, optional
        None: tissue HU at the middles of :data:`HEAD_HU`, fixed geometry and (2D) the axial
        level through the lateral ventricles. An integer: HU values, bone and scalp
        thicknesses, sinus size and (2D) the axial level drawn from their ranges; the same
        seed gives the same image.
    fov_mm : float
        Field of view (mm) along the longest output axis.

    Raises :class:`mrct.data.SharedDataMissing` when ``../shared/data`` is absent.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"shape must be (H, W) or (D, H, W) of positive sizes, got {shape}")
    rng = None if seed is None else np.random.default_rng(seed)
    gm, wm, icv = _template()
    zs = np.nonzero(icv.any(axis=(1, 2)))[0]
    z_lo, z_hi = int(zs[0]), int(zs[-1])
    # frontal sinus centre: midline, in front of the brain, ~25 % up the intracranial height
    zc = int(z_lo + 0.3 * (z_hi - z_lo))
    mid = icv.shape[2] // 2
    ys = np.nonzero(icv[zc, :, mid - 8 : mid + 8].any(axis=1))[0]
    sinus = np.array([zc, ys[0] - 6.0, mid], float)
    if len(shape) == 2:
        frac = 0.55 if rng is None else rng.uniform(0.2, 0.9)
        z = int(round(z_lo + frac * (z_hi - z_lo)))
        dz2 = ((z - sinus[0]) / 7.0) ** 2  # the slice's distance from the sinus centre
        sc = sinus[1:] if dz2 < 1.0 else None
        hu = _head_hu(gm[z], wm[z], icv[z], rng, sc, dz2, mastoid=frac < 0.3)
    else:
        hu = _head_hu(
            gm, wm, icv, rng, sinus, mastoid=np.arange(icv.shape[0]) < z_lo + 0.3 * (z_hi - z_lo)
        )
    box = np.argwhere(hu > -500)
    center = (box.min(0) + box.max(0)) / 2.0
    return resample_fov(hu, 1.0, shape, fov_mm, center)
