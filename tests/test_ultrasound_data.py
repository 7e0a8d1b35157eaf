"""mrct.data.echo_phantoms and mrct.data.haze: speckle phantoms, cardiac scene, haze RF."""

import numpy as np
import pytest
import torch

from mrct.data.echo_phantoms import cardiac_scene, cyst_phantom, speckle_medium
from mrct.data.haze import HazeModel, haze_scatterers, hazy_rf, mix_at_shr
from mrct.physics.ultrasound import LinearArray, PlaneWave


def test_speckle_medium_density_and_echogenicity():
    x, z = np.linspace(-5, 5, 101), np.linspace(0, 10, 101)
    echo = np.zeros((101, 101))
    echo[:, 51:] = -20.0
    echo[:50, :] = -80.0  # below the floor: no scatterers
    sc = speckle_medium(echo, x, z, density=20.0, seed=0)
    assert len(sc) == pytest.approx(20 * 100 / 2, rel=0.1)
    assert sc.z.min() >= 4.9
    left, right = sc.amplitude[sc.x < -0.5], sc.amplitude[sc.x > 0.5]
    assert np.std(right) / np.std(left) == pytest.approx(0.1, rel=0.15)
    with pytest.raises(ValueError):
        speckle_medium(echo[:, :10], x, z)


def test_cyst_phantom_regions_and_wires():
    ph = cyst_phantom(seed=1)
    assert {"background", "cyst0", "cyst1", "layer0"} <= set(ph.masks)
    inside = ph.mask_at("cyst0", ph.scatterers.x, ph.scatterers.z)
    assert inside.sum() == 0  # anechoic: no scatterers
    assert np.sum(ph.scatterers.amplitude == 30.0) == 5
    assert ph.echo_db.shape == (ph.z.size, ph.x.size)


def _synthetic_heart():
    yy, xx = np.mgrid[:200, :200]
    ct = np.full((200, 200), 40.0)
    ct[:10] = -1000.0  # air above the skin
    r = np.hypot(yy - 110, xx - 100)
    labels = np.where(r < 50, 51, 0).astype(np.uint8)
    ct[r < 35] = 350.0  # contrast-filled chamber
    return ct, labels


def test_cardiac_scene_from_a_synthetic_slice():
    ct, labels = _synthetic_heart()
    ph = cardiac_scene(ct=ct, labels=labels, spacing=(0.7, 0.7), depth=120, width=100, seed=0)
    for name in ("myocardium", "chamber", "pericardium"):
        assert ph.masks[name].any(), name
    e = ph.echo_db
    assert e[ph.masks["chamber"]].mean() < e[ph.masks["myocardium"]].mean() - 20
    assert e[ph.masks["pericardium"]].mean() > e[ph.masks["myocardium"]].mean()
    # the probe sits on the skin: the chamber centre is at (0, (110 - 10) * 0.7) mm
    zc = ph.z[ph.masks["chamber"].any(axis=1)].mean()
    assert zc == pytest.approx(70.0, abs=3.0)


@pytest.mark.data
def test_cardiac_scene_from_the_chest_ct():
    pytest.importorskip("nibabel")
    from mrct.data import SharedDataMissing

    try:
        ph = cardiac_scene(seed=0, density=0.5)
    except SharedDataMissing as e:
        pytest.skip(str(e))
    assert ph.masks["chamber"].sum() > 1000 and ph.masks["myocardium"].sum() > 1000


def test_haze_model_reflections_and_ghosts():
    m = HazeModel()
    z, r = m.interfaces()
    assert z.tolist() == [0.0, 2.0, 10.0, 20.0]
    assert r[1] == pytest.approx((1.38 - 1.99) / (1.38 + 1.99))
    sc = haze_scatterers(m, width=20, depth=60, seed=0)
    assert len(sc) > 100
    # ghosts lie below the first interface; clutter lies outside the field of view
    assert sc.z.min() > 2.0
    assert np.sum(np.abs(sc.x) > 10 + 1.9) >= m.n_clutter
    none = haze_scatterers(HazeModel(orders=0, n_clutter=0), 20, 60, seed=0)
    assert len(none) == 0


def test_hazy_rf_mixes_at_the_signal_to_haze_ratio():
    p = LinearArray(n_elements=16, center_frequency=5.0)
    ph = cyst_phantom(width=4, depth=(5, 25), cysts=[], wires=[], layers=[], density=2, seed=0)
    model = HazeModel(n_clutter=5, density=1.0)
    y, x, h = hazy_rf(p, ph, PlaneWave(), -6.0, model, seed=2)
    assert y.shape == x.shape == h.shape
    shr = 10 * np.log10(float((x.double() ** 2).sum() / (h.double() ** 2).sum()))
    assert shr == pytest.approx(-6.0, abs=1e-6)
    torch.testing.assert_close(y, x + h)
    y0, h0 = mix_at_shr(x, h, float("inf"))
    torch.testing.assert_close(y0, x)
    assert h0.abs().sum() == 0
