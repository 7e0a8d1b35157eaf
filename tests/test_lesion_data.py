"""The lung-nodule simulator (mrct.data.lesions): sizes, HU, untouched background, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from mrct.data.lesions import (
    KINDS,
    estimate_noise,
    insert_nodule,
    lung_mask_from_labels,
    read_lesion_mask,
    simulate_nodule,
)
from mrct.data.lesions import _noise as host_noise

SP = (2.5, 0.7, 0.7)


def _host(shape=(24, 96, 96), seed=0):
    """A lung-like host: parenchyma at -850 HU with correlated noise, soft tissue around."""
    rng = np.random.default_rng(seed)
    ct = -850.0 + host_noise(shape, 25.0, 0.8, rng)
    lungs = np.zeros(shape, bool)
    lungs[2:-2, 8:-8, 8:-8] = True
    ct[~lungs] = 40.0
    return ct.astype(np.float32), lungs


@pytest.mark.parametrize("d", [3.0, 10.0, 30.0])
def test_equivalent_diameter_matches(d):
    shape = (int(2 * d / SP[0]) + 6, int(1.6 * d / SP[1]) + 8, int(1.6 * d / SP[2]) + 8)
    nod = simulate_nodule(shape, SP, d, "solid", seed=1, spiculation=0, lobulation=0.05)
    vol = float(nod.fraction.sum()) * np.prod(SP)
    d_eq = (6 * vol / np.pi) ** (1 / 3)
    assert d_eq == pytest.approx(d, rel=0.12)
    assert nod.mask.any() and nod.fraction.max() <= 1.0 and nod.fraction.min() >= 0.0
    np.testing.assert_allclose(nod.core + nod.halo, nod.fraction, atol=1e-6)


def test_classes_per_kind():
    solid = simulate_nodule((12, 40, 40), SP, 12, "solid", seed=0)
    ggo = simulate_nodule((12, 40, 40), SP, 12, "ground-glass", seed=0)
    ps = simulate_nodule((12, 40, 40), SP, 16, "part-solid", seed=0)
    assert solid.core_mask.sum() == solid.mask.sum() and not solid.halo_mask.any()
    assert ggo.halo_mask.sum() == ggo.mask.sum() and not ggo.core_mask.any()
    assert ps.core_mask.any() and ps.halo_mask.any()
    assert ps.core_mask.sum() < ps.halo_mask.sum()
    assert not (ps.core_mask & ps.halo_mask).any()


@pytest.mark.parametrize("kind", KINDS)
def test_insert_hu_ranges_and_untouched_background(kind):
    ct, lungs = _host()
    r = insert_nodule(ct, lungs, center=(12, 48, 48), diameter_mm=14, kind=kind, spacing=SP,
                      seed=2)  # fmt: skip
    assert r.image.shape == ct.shape and r.image.dtype == np.float32
    assert np.array_equal(r.image[~r.support], ct[~r.support])  # bit-identical
    assert not (r.mask & ~r.support).any() and r.mask.sum() > 50
    assert (r.core | r.halo).sum() == r.mask.sum()
    if r.core.any():
        assert -120 < float(r.image[r.core].mean()) < 120  # soft tissue
    if r.halo.any():
        assert -780 < float(r.image[r.halo].mean()) < -250  # ground glass over -850 HU lung
    if kind == "solid":
        assert not r.halo.any()
    if kind == "ground-glass":
        assert not r.core.any()
    assert set(np.unique(r.labels)) <= {0, 1, 2}


def test_noise_level_kept_and_estimated():
    rng = np.random.default_rng(0)
    flat = -850.0 + host_noise((8, 128, 128), 25.0, 0.8, rng)
    sigma, g = estimate_noise(flat)
    assert sigma == pytest.approx(25.0, rel=0.12) and g == pytest.approx(0.8, rel=0.2)
    ct, lungs = _host(seed=3)
    r = insert_nodule(ct, lungs, center=(12, 48, 48), diameter_mm=25, kind="solid",
                      spacing=SP, seed=1, spiculation=0)  # fmt: skip
    full = np.zeros(ct.shape, np.float32)
    full[tuple(slice(o, o + n) for o, n in zip(r.offset, r.nodule.core.shape, strict=True))] = (
        r.nodule.core
    )
    inner = full >= 0.999
    assert inner.sum() > 100
    # inside a solid nodule: the host's noise (25 HU) and the 15 HU tissue texture
    std = float(r.image[inner].std())
    assert 18 < std < 45


def test_determinism_with_seed():
    ct, lungs = _host()
    a = insert_nodule(ct, lungs, spacing=SP, seed=7)
    b = insert_nodule(ct, lungs, spacing=SP, seed=7)
    c = insert_nodule(ct, lungs, spacing=SP, seed=8)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert a.center == b.center and a.nodule.kind == b.nodule.kind
    assert not np.array_equal(a.image, c.image)
    assert lungs[a.center]


def test_bad_input():
    with pytest.raises(ValueError, match="kind"):
        simulate_nodule((8, 8, 8), SP, 5, "calcified")
    with pytest.raises(ValueError, match="diameter"):
        simulate_nodule((8, 8, 8), SP, 40, "solid")
    with pytest.raises(ValueError, match="spacing"):
        simulate_nodule((8, 8, 8), (1, 1), 5, "solid")
    ct, lungs = _host()
    with pytest.raises(ValueError, match="spacing"):
        insert_nodule(ct, lungs)
    with pytest.raises(ValueError, match="outside"):
        insert_nodule(ct, lungs, center=(100, 0, 0), spacing=SP)
    with pytest.raises(ValueError, match="empty"):
        insert_nodule(ct, np.zeros_like(lungs), spacing=SP)


def test_read_lesion_mask_round_trip(tmp_path):
    from mrct.data import read_nifti
    from mrct.io import save_nifti

    aff = np.diag([-0.7, -0.7, 2.5, 1.0])
    lab = np.zeros((20, 20, 6), np.float32)
    lab[5:9, 5:9, 2:4] = 1
    lab[9:11, 5:9, 2:4] = 2
    lab[0, 0, 0] = 7  # any other positive value is a lesion
    save_nifti(tmp_path / "m.nii.gz", lab, aff)
    save_nifti(tmp_path / "ct.nii.gz", np.zeros_like(lab), aff)
    ref = read_nifti(tmp_path / "ct.nii.gz")
    m = read_lesion_mask(tmp_path / "m.nii.gz", reference=ref)
    assert m.array.dtype == np.uint8 and m.array.shape == ref.shape
    assert (m.array == 1).sum() == 33 and (m.array == 2).sum() == 16
    save_nifti(tmp_path / "other.nii.gz", np.zeros_like(lab), np.diag([1.0, 1, 1, 1]))
    with pytest.raises(ValueError, match="affine"):
        read_lesion_mask(tmp_path / "m.nii.gz", reference=read_nifti(tmp_path / "other.nii.gz"))


@pytest.mark.data
def test_insert_into_the_shared_chest_ct():
    from mrct.data import load_chest_ct, require_shared_data

    require_shared_data()
    ct, lab = load_chest_ct(labels=True)
    lungs = lung_mask_from_labels(lab)
    r = insert_nodule(ct, lungs, diameter_mm=12, kind="part-solid", seed=0)
    assert lungs[r.center] and (r.mask & lungs).sum() == r.mask.sum()
    assert np.array_equal(r.image[~r.support], ct.array[~r.support])
    assert 15 < r.noise[0] < 60
