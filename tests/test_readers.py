"""Tests of the NIfTI / DICOM readers and the shared data loaders of mrct.data."""

import gzip
import os

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from mrct.data import (
    SharedDataMissing,
    Volume,
    chest_ct_slice,
    load_brain_mri,
    load_chest_ct,
    read_dicom,
    read_dicom_series,
    read_nifti,
    require_shared_data,
    shared_data_dir,
)

CT_SMALL = get_testdata_file("CT_small.dcm")
ANATOMICAL = os.path.join(os.path.dirname(nib.__file__), "tests", "data", "anatomical.nii")


def _hu(ds):
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


# ------------------------------------------------------------------------------- DICOM


def test_read_dicom_ct_small():
    ds = pydicom.dcmread(CT_SMALL)
    vol = read_dicom(CT_SMALL)
    assert isinstance(vol, Volume)
    assert vol.array.shape == (128, 128) and vol.array.dtype == np.float32
    # axial image with IOP = [1,0,0, 0,1,0]: rows run toward P, columns toward L already
    assert vol.orientation == "PL"
    np.testing.assert_array_equal(vol.array, _hu(ds))
    assert float(ds.RescaleIntercept) == -1024.0
    assert -1100 < vol.array.min() < -800 and vol.array.max() > 500  # air/soft tissue/bone
    np.testing.assert_allclose(vol.spacing, [float(v) for v in ds.PixelSpacing])
    # pixel (0, 0) is ImagePositionPatient, LPS -> RAS negates x and y
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    np.testing.assert_allclose(vol.affine @ [0, 0, 0, 1], [-ipp[0], -ipp[1], ipp[2], 1])
    # moving one column goes toward patient left (RAS x decreases), one row toward posterior
    dc = vol.affine[:3, 2]
    dr = vol.affine[:3, 1]
    assert dc[0] < 0 and dr[1] < 0
    assert vol.metadata["Modality"] == "CT"


def test_read_dicom_flipped_orientation_is_canonicalised(tmp_path):
    """An image stored with rows toward A and columns toward R is flipped to P / L."""
    ds = pydicom.dcmread(CT_SMALL)
    hu = _hu(ds)
    ds.ImageOrientationPatient = [-1, 0, 0, 0, -1, 0]  # columns -> R, rows -> A (LPS)
    path = tmp_path / "flipped.dcm"
    ds.save_as(path)
    vol = read_dicom(path)
    assert vol.orientation == "PL"
    np.testing.assert_array_equal(vol.array, hu[::-1, ::-1])
    # the same pixel keeps its world position: canonical (i, j) is stored (127 - i, 127 - j)
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    s = float(ds.PixelSpacing[0])
    stored_00_lps = ipp  # stored pixel (0, 0)
    ras = np.array([-stored_00_lps[0], -stored_00_lps[1], stored_00_lps[2]])
    np.testing.assert_allclose((vol.affine @ [0, 127, 127, 1])[:3], ras, atol=1e-9)
    np.testing.assert_allclose(vol.spacing, [s, s])


def _write_series(folder, z_positions, uid=None, prefix="im"):
    """Copies of CT_small at the given z, pixel values offset by 10 * their z-rank."""
    base = pydicom.dcmread(CT_SMALL)
    px = base.pixel_array
    ranks = np.argsort(np.argsort(z_positions))
    paths = []
    for n, (z, rank) in enumerate(zip(z_positions, ranks, strict=True)):
        ds = pydicom.dcmread(CT_SMALL)
        ds.ImagePositionPatient = [ds.ImagePositionPatient[0], ds.ImagePositionPatient[1], z]
        ds.SliceLocation = z
        ds.InstanceNumber = len(z_positions) - n  # deliberately not the z order
        ds.PixelData = (px + 10 * int(rank)).astype(px.dtype).tobytes()
        if uid is not None:
            ds.SeriesInstanceUID = uid
        path = folder / f"{prefix}{n:02d}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


def test_read_dicom_series_sorted(tmp_path):
    z = [-70.0, -77.5, -72.5, -75.0]  # shuffled, 2.5 mm apart
    paths = _write_series(tmp_path, z)
    (tmp_path / "README.txt").write_text("not a DICOM file")  # skipped in a folder scan
    base_hu = _hu(pydicom.dcmread(CT_SMALL))
    for source in (tmp_path, paths[::-1]):
        vol = read_dicom_series(source)
        assert vol.array.shape == (4, 128, 128) and vol.array.dtype == np.float32
        assert vol.orientation == "SPL"
        assert vol.spacing[0] == pytest.approx(2.5)
        assert vol.spacing[1] == pytest.approx(0.661468)
        for k in range(4):  # axis 0 runs toward superior: increasing z
            np.testing.assert_array_equal(vol.array[k], base_hu + 10 * k)
        np.testing.assert_allclose((vol.affine @ [0, 0, 0, 1])[2], -77.5)
        np.testing.assert_allclose(vol.affine[:3, 0], [0, 0, 2.5], atol=1e-9)
        assert [os.path.basename(f) for f in vol.metadata["files"]] == [
            "im01.dcm",
            "im03.dcm",
            "im02.dcm",
            "im00.dcm",
        ]


def test_read_dicom_series_several_series(tmp_path):
    _write_series(tmp_path, [0.0, 2.0, 4.0])
    _write_series(tmp_path, [0.0, 5.0], uid="1.2.3.4.5", prefix="other")
    first_uid = str(pydicom.dcmread(CT_SMALL).SeriesInstanceUID)
    with pytest.raises(ValueError, match="several DICOM series") as info:
        read_dicom_series(tmp_path)
    assert "1.2.3.4.5" in str(info.value) and first_uid in str(info.value)
    vol = read_dicom_series(tmp_path, series_uid="1.2.3.4.5")
    assert vol.array.shape == (2, 128, 128) and vol.spacing[0] == pytest.approx(5.0)
    vol = read_dicom_series(tmp_path, series_uid=first_uid)
    assert vol.array.shape == (3, 128, 128) and vol.spacing[0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="not found"):
        read_dicom_series(tmp_path, series_uid="9.9")


def test_read_dicom_series_inconsistent(tmp_path):
    paths = _write_series(tmp_path, [0.0, 2.0, 4.0])
    ds = pydicom.dcmread(paths[1])
    cropped = ds.pixel_array[:64, :64].copy()
    ds.Rows, ds.Columns = 64, 64
    ds.PixelData = cropped.tobytes()
    ds.save_as(paths[1])
    with pytest.raises(ValueError, match="shape"):
        read_dicom_series(tmp_path)
    dup = tmp_path / "dup"
    dup.mkdir()
    _write_series(dup, [1.0, 1.0])
    with pytest.raises(ValueError, match="position"):
        read_dicom_series(dup)


def test_dicom_errors(tmp_path):
    missing = tmp_path / "nope.dcm"
    with pytest.raises(FileNotFoundError, match="nope.dcm"):
        read_dicom(missing)
    with pytest.raises(FileNotFoundError, match="nope"):
        read_dicom_series(tmp_path / "nope")
    rand = tmp_path / "random.dcm"
    rand.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(ValueError, match="is not a valid DICOM file"):
        read_dicom(rand)
    with pytest.raises(ValueError, match="is not a valid DICOM file"):
        read_dicom_series([rand])
    raw = open(CT_SMALL, "rb").read()
    for n in (1000, 30000):  # header only / pixel data cut short
        trunc = tmp_path / f"trunc{n}.dcm"
        trunc.write_bytes(raw[:n])
        with pytest.raises(ValueError, match="is not a valid DICOM file"):
            read_dicom(trunc)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no DICOM"):
        read_dicom_series(empty)


# ------------------------------------------------------------------------------- NIfTI


def test_read_nifti_anatomical():
    img = nib.load(ANATOMICAL)
    orig = np.asarray(img.get_fdata())
    assert "".join(nib.aff2axcodes(img.affine)) == "LAS"
    vol = read_nifti(ANATOMICAL)
    # LAS (33, 41, 25) -> SPL: S <- axis 2, P <- axis 1 flipped, L <- axis 0
    assert vol.array.shape == (25, 41, 33) and vol.array.dtype == np.float32
    assert vol.orientation == "SPL"
    assert vol.spacing == pytest.approx((2.0, 2.0, 2.0))
    np.testing.assert_array_equal(vol.array, orig[:, ::-1, :].transpose(2, 1, 0))
    # index (0, 0, 0) is the original voxel (0, 40, 0): same world point
    np.testing.assert_allclose(vol.affine @ [0, 0, 0, 1], img.affine @ [0, 40, 0, 1])
    # and every voxel keeps its world position and value
    rng = np.random.default_rng(0)
    idx = rng.integers(0, vol.array.shape, size=(50, 3))
    world = vol.affine @ np.c_[idx, np.ones(50)].T
    orig_idx = np.rint(np.linalg.solve(img.affine, world)[:3].T).astype(int)
    np.testing.assert_array_equal(vol.array[tuple(idx.T)], orig[tuple(orig_idx.T)])
    assert vol.metadata["original_orientation"] == "LAS"


def test_read_nifti_ras_roundtrip(tmp_path):
    arr = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)  # (x, y, z) in RAS
    aff = np.diag([2.0, 3.0, 4.0, 1.0])
    aff[:3, 3] = [-3.0, 5.0, 7.0]
    img = nib.Nifti1Image(arr, aff)
    img.header.set_slope_inter(0.5, -10.0)
    path = tmp_path / "ras.nii.gz"
    nib.save(img, path)
    vol = read_nifti(path)
    assert vol.orientation == "SPL"
    assert vol.array.shape == (6, 5, 4)
    assert vol.spacing == pytest.approx((4.0, 3.0, 2.0))
    # out[k, i, j] = arr[X - 1 - j, Y - 1 - i, k] (L and P flip the R and A axes)
    expected = arr[::-1, ::-1, :].transpose(2, 1, 0) * 0.5 - 10.0
    np.testing.assert_allclose(vol.array, expected)
    np.testing.assert_allclose(vol.affine @ [0, 0, 0, 1], aff @ [3, 4, 0, 1])
    np.testing.assert_allclose(vol.affine[:3, :3], [[0, 0, -2], [0, -3, 0], [4, 0, 0]])
    labels = read_nifti(path, dtype=np.int32)
    assert labels.array.dtype == np.int32
    np.testing.assert_array_equal(labels.array, np.rint(expected).astype(np.int32))


def test_nifti_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nii"):
        read_nifti(tmp_path / "missing.nii")
    rand = tmp_path / "random.nii"
    rand.write_bytes(np.random.default_rng(1).bytes(4000))
    with pytest.raises(ValueError, match="is not a valid NIfTI file"):
        read_nifti(rand)
    raw = open(ANATOMICAL, "rb").read()
    trunc = tmp_path / "trunc.nii"
    trunc.write_bytes(raw[:20000])
    with pytest.raises(ValueError, match="is not a valid NIfTI file"):
        read_nifti(trunc)
    gz = gzip.compress(raw)
    trunc_gz = tmp_path / "trunc.nii.gz"
    trunc_gz.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(ValueError, match="is not a valid NIfTI file"):
        read_nifti(trunc_gz)


# --------------------------------------------------------------------------- shared data


def test_shared_data_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MRCT_SHARED_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path.resolve()
    with pytest.raises(SharedDataMissing, match="MRCT_SHARED_DATA") as info:
        load_brain_mri("t1")
    assert isinstance(info.value, FileNotFoundError)
    assert "brain_mri" in str(info.value)
    monkeypatch.setenv("MRCT_SHARED_DATA", str(tmp_path / "absent"))
    assert shared_data_dir() is None
    with pytest.raises(SharedDataMissing):
        load_chest_ct()


def test_shared_data_dir_env_with_copy(tmp_path, monkeypatch):
    """MRCT_SHARED_DATA points the loaders at another folder (a tiny fake brain here)."""
    (tmp_path / "brain_mri").mkdir()
    aff = np.eye(4)
    nib.save(
        nib.Nifti1Image(np.zeros((3, 4, 5), np.uint8), aff), tmp_path / "brain_mri/mni152_wm.nii.gz"
    )
    monkeypatch.setenv("MRCT_SHARED_DATA", str(tmp_path))
    assert load_brain_mri("WM").array.shape == (5, 4, 3)
    with pytest.raises(ValueError):
        load_brain_mri("csf")


@pytest.fixture(scope="module")
def chest_ct():
    require_shared_data()
    return load_chest_ct(labels=True)


@pytest.mark.data
def test_chest_ct(chest_ct):
    ct, labels = chest_ct
    assert ct.array.shape == (133, 512, 512) and ct.array.dtype == np.float32
    assert ct.spacing == pytest.approx((2.5, 0.703125, 0.703125))
    assert ct.orientation == "SPL" and ct.metadata["original_orientation"] == "LAS"
    assert -2048 <= ct.array.min() and ct.array.max() <= 3071
    assert ct.array.min() < -1000 and ct.array.max() > 1000  # air and bone, in HU
    # lungs (air, around -800 HU) lie left and right of the centre of the middle slice
    mid = ct.array[66]
    assert np.median(mid[200:300, 100:200]) < -500 and np.median(mid[200:300, 312:412]) < -500
    assert labels.array.shape == ct.array.shape and labels.array.dtype == np.uint8
    assert labels.array.max() == 118
    np.testing.assert_allclose(labels.affine, ct.affine, atol=1e-4)


@pytest.mark.data
def test_chest_ct_slice(chest_ct, monkeypatch):
    ct, _ = chest_ct
    import mrct.data.shared as shared

    monkeypatch.setattr(shared, "load_chest_ct", lambda labels=False: ct)  # no second read
    img, spacing = chest_ct_slice()
    np.testing.assert_array_equal(img, ct.array[66])
    assert spacing == pytest.approx((0.703125, 0.703125))
    img, _ = chest_ct_slice(-1)
    np.testing.assert_array_equal(img, ct.array[132])
    with pytest.raises(IndexError):
        chest_ct_slice(133)


@pytest.mark.data
def test_brain_mri():
    root = require_shared_data()
    src = nib.load(root / "brain_mri" / "mni152_t1.nii.gz")
    assert src.shape == (197, 233, 189) and "".join(nib.aff2axcodes(src.affine)) == "RAS"
    vol = load_brain_mri("t1")
    # RAS -> SPL: S <- z, P <- y flipped, L <- x flipped
    assert vol.array.shape == (189, 233, 197)
    assert vol.spacing == pytest.approx((1.0, 1.0, 1.0))
    data = np.asarray(src.dataobj)
    np.testing.assert_array_equal(vol.array, data[::-1, ::-1, :].transpose(2, 1, 0))
    assert 0 <= vol.array.min() and vol.array.max() <= 255
    gm = load_brain_mri("gm")
    assert gm.array.shape == vol.array.shape


def test_require_shared_data_skips(monkeypatch, tmp_path):
    monkeypatch.setenv("MRCT_SHARED_DATA", str(tmp_path / "absent"))
    with pytest.raises(pytest.skip.Exception, match="MRCT_SHARED_DATA"):
        require_shared_data()
