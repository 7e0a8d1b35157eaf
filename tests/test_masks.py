"""fastMRI-style column masks and Poisson-disc masks, checked against the definitions."""

import numpy as np
import pytest

from mrct.data.masks import EquispacedMask, RandomMask, poisson_disc_mask

W = 368  # fastMRI knee width
SHAPE = (15, 640, W)


def _reference_random(seed, pairs, num_cols=W):
    """fastMRI RandomMaskFunc draw for draw: randint(len) -> (cf, acc), uniform(size=N) < p."""
    rng = np.random.RandomState(seed)
    cf, acc = pairs[rng.randint(len(pairs))]
    num_low = round(num_cols * cf)
    prob = (num_cols / acc - num_low) / (num_cols - num_low)
    mask = (rng.uniform(size=num_cols) < prob).astype(np.float32)
    pad = (num_cols - num_low + 1) // 2
    mask[pad : pad + num_low] = 1
    return mask, num_low


def _reference_equispaced(seed, pairs, num_cols=W):
    rng = np.random.RandomState(seed)
    cf, acc = pairs[rng.randint(len(pairs))]
    num_low = round(num_cols * cf)
    mask = np.zeros(num_cols, np.float32)
    pad = (num_cols - num_low + 1) // 2
    mask[pad : pad + num_low] = 1
    adjusted = (acc * (num_low - num_cols)) / (num_low * acc - num_cols)
    offset = rng.randint(0, high=round(adjusted))
    mask[np.around(np.arange(offset, num_cols - 1, adjusted)).astype(np.uint)] = 1
    return mask, num_low


def test_center_block_worked_example():
    # W = 368, cf = 0.08: num_low = round(29.44) = 29, pad = (368 - 29 + 1) // 2 = 170
    for cls in (RandomMask, EquispacedMask):
        mask, num_low = cls([0.08], [4])(SHAPE, seed=0)
        assert num_low == 29
        assert mask.shape == (1, W) and mask.dtype == np.float32
        assert np.all(mask[0, 170:199] == 1)
        assert set(np.unique(mask)) <= {0.0, 1.0}


def test_random_mask_matches_fastmri_definition():
    pairs = [(0.08, 4), (0.04, 8)]
    func = RandomMask([0.08, 0.04], [4, 8])
    chosen = set()
    for seed in range(20):
        mask, num_low = func(SHAPE, seed=seed)
        ref, ref_low = _reference_random(seed, pairs)
        np.testing.assert_array_equal(mask[0], ref)
        assert num_low == ref_low
        chosen.add(num_low)
    assert chosen == {29, 15}  # both (cf, acc) pairs get picked: round(14.72) = 15


def test_random_mask_expected_count_and_determinism():
    func = RandomMask([0.08], [4])
    counts = [func(SHAPE, seed=s)[0].sum() for s in range(300)]
    # E[count] = num_low + p (N - num_low) = N / acc = 92; std of the mean ~ 0.5
    assert np.mean(counts) == pytest.approx(W / 4, abs=2.0)
    a, _ = func(SHAPE, seed=123)
    b, _ = func(SHAPE, seed=123)
    c, _ = func(SHAPE, seed=124)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # a seeded call leaves the object's own generator untouched
    f1, f2 = RandomMask([0.08], [4], seed=5), RandomMask([0.08], [4], seed=5)
    f1(SHAPE, seed=99)
    np.testing.assert_array_equal(f1(SHAPE)[0], f2(SHAPE)[0])
    assert not np.array_equal(f1(SHAPE)[0], f1(SHAPE)[0])  # unseeded calls advance it


def test_equispaced_mask_spacing_from_formula():
    # adjusted spacing a = 4 (29 - 368) / (29 * 4 - 368) = 1356 / 252 = 5.381
    func = EquispacedMask([0.08], [4])
    a = 4 * (29 - 368) / (29 * 4 - 368)
    assert a == pytest.approx(5.380952, abs=1e-6)
    for offset in range(5):
        mask, _ = func(SHAPE, offset=offset)
        lines = np.around(np.arange(offset, 367, a)).astype(int)
        expected = np.zeros(W, np.float32)
        expected[lines] = 1
        expected[170:199] = 1
        np.testing.assert_array_equal(mask[0], expected)
        assert set(np.diff(lines)) <= {5, 6}  # equispaced up to rounding
    pairs = [(0.08, 4), (0.04, 8)]
    func2 = EquispacedMask([0.08, 0.04], [4, 8])
    for seed in range(10):
        mask, num_low = func2(SHAPE, seed=seed)
        ref, ref_low = _reference_equispaced(seed, pairs)
        np.testing.assert_array_equal(mask[0], ref)
        assert num_low == ref_low
    # about N / acc lines in all
    assert func(SHAPE, seed=1)[0].sum() == pytest.approx(W / 4, rel=0.05)


def test_equispaced_unadjusted_and_any_combination():
    func = EquispacedMask([0.08], [4], adjust_acceleration=False)
    mask, _ = func(SHAPE, offset=1)
    expected = np.zeros(W, np.float32)
    expected[1::4] = 1
    expected[170:199] = 1
    np.testing.assert_array_equal(mask[0], expected)
    any_func = RandomMask([0.08, 0.04], [4, 8, 12], allow_any_combination=True)
    rng = np.random.RandomState(3)
    cf, acc = rng.choice([0.08, 0.04]), rng.choice([4, 8, 12])
    assert any_func(SHAPE, seed=3)[1] == round(W * cf)
    assert acc in (4, 8, 12)


def test_mask_validation():
    with pytest.raises(ValueError, match="same length"):
        RandomMask([0.08, 0.04], [4])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        RandomMask([1.5], [4])
    with pytest.raises(ValueError, match=">= 1"):
        RandomMask([0.08], [0.5])
    with pytest.raises(ValueError, match="real/imaginary"):
        RandomMask([0.08], [4])((640, 368, 2))
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W\)"):
        RandomMask([0.08], [4])((368,))
    with pytest.raises(ValueError, match="centre block alone"):
        EquispacedMask([0.5], [4])(SHAPE)
    with pytest.raises(ValueError, match="integer accelerations"):
        EquispacedMask([0.08], [2.5], adjust_acceleration=False)
    with pytest.raises(TypeError):
        RandomMask([0.08], [4])(SHAPE, 5)  # seed and offset are keyword-only


def test_poisson_disc_mask():
    pytest.importorskip("sigpy")
    h, w = 64, 48
    for accel in (4.0, 6.0):
        mask = poisson_disc_mask((h, w), accel, calib=(12, 12), seed=1)
        assert mask.shape == (h, w) and mask.dtype == np.float32
        assert set(np.unique(mask)) <= {0.0, 1.0}
        achieved = h * w / mask.sum()
        assert achieved == pytest.approx(accel, rel=0.1)
        assert np.all(mask[h // 2 - 6 : h // 2 + 6, w // 2 - 6 : w // 2 + 6] == 1)
    np.testing.assert_array_equal(
        poisson_disc_mask((h, w), 4.0, calib=(12, 12), seed=1),
        poisson_disc_mask((h, w), 4.0, calib=(12, 12), seed=1),
    )
    corner = poisson_disc_mask((h, w), 4.0, calib=(12, 12), seed=1, crop_corner=True)
    assert corner[0, 0] == 0 and corner[-1, -1] == 0
    with pytest.raises(ValueError, match="acceleration must be > 1"):
        poisson_disc_mask((h, w), 1.0)
    with pytest.raises(ValueError, match="calibration block"):
        poisson_disc_mask((32, 32), 4.0, calib=(24, 24))
