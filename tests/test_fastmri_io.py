"""fastMRI HDF5 files: exact layout written by h5py directly and by write_fastmri."""

import h5py
import numpy as np
import pytest
import torch

from mrct.data.fastmri import (
    FastMRIDataset,
    FastMRIFile,
    FastMRISample,
    parse_ismrmrd_header,
    read_fastmri,
    write_fastmri,
)

S, C, H, W, PAD = 3, 4, 16, 14, 1


def _header(h=H, wk=W, pad=PAD):
    # fastMRI layout: encoded 2H x Wk, recon H x H, k1 limits give the zero padding
    return f"""<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding>
 <encodedSpace><matrixSize><x>{2 * h}</x><y>{wk}</y><z>1</z></matrixSize>
 <fieldOfView_mm><x>280</x><y>140</y><z>4.5</z></fieldOfView_mm></encodedSpace>
 <reconSpace><matrixSize><x>{h}</x><y>{h}</y><z>1</z></matrixSize>
 <fieldOfView_mm><x>140</x><y>140</y><z>3</z></fieldOfView_mm></reconSpace>
 <trajectory>cartesian</trajectory>
 <encodingLimits><kspace_encoding_step_1><minimum>0</minimum><maximum>{wk - 1 - 2 * pad}</maximum>
 <center>{wk // 2 - pad}</center></kspace_encoding_step_1></encodingLimits>
</encoding></ismrmrdHeader>"""


def _volume(multicoil=True, seed=0):
    rng = np.random.default_rng(seed)
    shape = (S, C, H, W) if multicoil else (S, H, W)
    k = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    target = rng.random((S, 8, 8)).astype(np.float32)
    return k, target


def _write_raw(path, kspace, target=None, target_key="reconstruction_rss", header=None,
               mask=None, attrs=None):  # fmt: skip
    """The fastMRI recipe with h5py directly (header as bytes, as fastMRI's test files)."""
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace)
        if target is not None:
            f.create_dataset(target_key, data=target)
        if header is not None:
            f.create_dataset("ismrmrd_header", data=header)
        if mask is not None:
            f.create_dataset("mask", data=mask)
        f.attrs.update(attrs or {})


def test_read_raw_multicoil_file_one_slice_at_a_time(tmp_path):
    k, t = _volume()
    p = tmp_path / "file1000001.h5"
    attrs = {"acquisition": "CORPD_FBK", "max": float(t.max()), "norm": float(np.linalg.norm(t)),
             "patient_id": "ab" * 32}  # fmt: skip
    _write_raw(p, k, t, header=_header().encode(), attrs=attrs)
    with read_fastmri(p) as f:
        assert isinstance(f, FastMRIFile)
        assert f.n_slices == S and len(f) == S and f.multicoil and f.shape == (S, C, H, W)
        for i in range(S):
            ks = f.kspace(i)
            assert ks.dtype == np.complex64 and ks.shape == (C, H, W)
            np.testing.assert_array_equal(ks, k[i])
            np.testing.assert_array_equal(f.target(i), t[i])
        np.testing.assert_array_equal(f.kspace(-1), k[-1])
        np.testing.assert_array_equal(f.kspace(), k)
        assert f.target_key == "reconstruction_rss"
        assert f.mask is None
        assert isinstance(f.header, str) and f.header.startswith("<?xml")
        assert f.attrs == attrs
        assert f.metadata == {
            "encoding_size": (2 * H, W, 1),
            "recon_size": (H, H, 1),
            "padding_left": PAD,  # W // 2 - (W // 2 - PAD)
            "padding_right": PAD + W - 2 * PAD,
        }
        with pytest.raises(IndexError, match="out of range"):
            f.kspace(S)
    with pytest.raises(ValueError, match="closed"):
        f.kspace(0)


def test_write_then_read_single_coil_test_file(tmp_path):
    k, t = _volume(multicoil=False)
    mask = np.zeros(W, dtype=bool)
    mask[::3] = True
    p = write_fastmri(tmp_path / "sub" / "file1.h5", k * mask, mask=mask, header=_header(),
                      attrs={"acceleration": 4, "num_low_frequency": 3})  # fmt: skip
    assert p.exists() and [q.name for q in p.parent.iterdir()] == ["file1.h5"]  # no temp left
    with FastMRIFile(p) as f:
        assert not f.multicoil and f.shape == (S, H, W)
        np.testing.assert_array_equal(f.kspace(1), (k * mask)[1])
        assert f.target(1) is None and f.target_key is None
        np.testing.assert_array_equal(f.mask, mask)
        assert f.header == _header()  # str stored as a variable-length string reads back as str
        assert f.attrs == {"acceleration": 4, "num_low_frequency": 3}
        assert f.h5["ismrmrd_header"].shape == ()  # scalar dataset, as in fastMRI files


def test_write_layout_matches_fastmri(tmp_path):
    k, t = _volume()
    p = write_fastmri(tmp_path / "a.h5", k.astype(np.complex128), reconstruction_rss=t,
                      header=_header().encode(), reconstruction_esc=t)  # fmt: skip
    with h5py.File(p, "r") as f:
        assert f["kspace"].dtype == np.complex64 and f["kspace"].shape == (S, C, H, W)
        assert f["reconstruction_rss"].dtype == np.float32
        assert f["ismrmrd_header"][()] == _header().encode()
    with FastMRIFile(p) as f:
        assert f.header == _header()
        np.testing.assert_array_equal(f.target(0, key="reconstruction_esc"), t[0])


def test_errors_name_the_file(tmp_path):
    bad = tmp_path / "corrupt.h5"
    bad.write_bytes(b"this is not HDF5")
    with pytest.raises(ValueError, match="corrupt.h5.*not a readable HDF5"):
        read_fastmri(bad)
    nok = tmp_path / "nokspace.h5"
    with h5py.File(nok, "w") as f:
        f.create_dataset("data", data=np.zeros(3))
    with pytest.raises(ValueError, match="nokspace.h5 has no 'kspace' dataset.*complex64"):
        read_fastmri(nok)
    real = tmp_path / "real.h5"
    with h5py.File(real, "w") as f:
        f.create_dataset("kspace", data=np.zeros((2, 4, 4, 2), np.float32))
    with pytest.raises(ValueError, match="must be complex"):
        read_fastmri(real)
    with pytest.raises(FileNotFoundError):
        read_fastmri(tmp_path / "missing.h5")
    with pytest.raises(ValueError, match="kspace must have shape"):
        write_fastmri(tmp_path / "x.h5", np.zeros((4, 4), np.complex64))
    with pytest.raises(ValueError, match=r"mask must have shape \(14,\)"):
        write_fastmri(tmp_path / "x.h5", _volume()[0], mask=np.ones(3))
    with pytest.raises(ValueError, match="reconstruction_rss must have shape"):
        write_fastmri(tmp_path / "x.h5", _volume()[0], reconstruction_rss=np.ones((2, 8, 8)))
    assert not (tmp_path / "x.h5").exists()
    with pytest.raises(ValueError, match="lacks encoding/encodedSpace/matrixSize/x"):
        parse_ismrmrd_header(b'<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"/>')
    with pytest.raises(ValueError, match="not valid XML"):
        parse_ismrmrd_header("<unclosed")


def test_dataset_over_folder(tmp_path):
    k1, t1 = _volume(seed=1)
    k2, t2 = _volume(seed=2)
    write_fastmri(tmp_path / "b.h5", k2[:2], reconstruction_rss=t2[:2], header=_header())
    _write_raw(tmp_path / "a.h5", k1, t1, header=_header().encode(), attrs={"max": 2.0})
    (tmp_path / "notes.txt").write_text("ignored")
    ds = FastMRIDataset(tmp_path)
    assert isinstance(ds, torch.utils.data.Dataset)
    assert len(ds) == S + 2
    s = ds[4]
    assert isinstance(s, FastMRISample)
    assert s.fname == "b.h5" and s.slice_num == 1
    np.testing.assert_array_equal(s.kspace, k2[1])
    np.testing.assert_array_equal(s.target, t2[1])
    assert s.mask is None
    assert s.attrs["padding_left"] == PAD and s.attrs["recon_size"] == (H, H, 1)
    assert ds[0].attrs["max"] == 2.0 and ds[0].fname == "a.h5"

    def transform(kspace, mask, target, attrs, fname, slice_num):
        return torch.from_numpy(kspace), fname, slice_num

    ds_t = FastMRIDataset(tmp_path, transform=transform)
    kt, fname, i = ds_t[2]
    assert fname == "a.h5" and i == 2 and torch.equal(kt, torch.from_numpy(k1[2]))
    loader = torch.utils.data.DataLoader(ds_t, batch_size=5, collate_fn=list)
    assert sum(len(b) for b in loader) == 5


def test_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        FastMRIDataset(tmp_path / "nope")
    with pytest.raises(ValueError, match="no files matching"):
        FastMRIDataset(tmp_path)
    (tmp_path / "broken.h5").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="broken.h5"):
        FastMRIDataset(tmp_path)
