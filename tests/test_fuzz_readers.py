"""Readers under fuzzing (issue #18, item 2).

Every reader is fed files made from small valid seeds by truncation, flipped bytes, header
fields set to hostile values (NaN pixdim, 10^12 voxels, RescaleSlope "abc"...), wrong magic,
missing keys, wrong dtypes, empty files and folders. Each case must either return a
consistent result or raise one :class:`mrct.MrctError` subclass naming the file; in every
case: no other exception, under 2 s, peak traced allocation within a small factor of the
file size, nothing written next to the file.

The default suite runs a deterministic sample (``FAST`` cases per reader); ``make test-slow``
(``-m slow``) runs ``SLOW`` (>= 300) per reader.
"""

from __future__ import annotations

import gzip
import shutil
import struct
import time
import tracemalloc
import warnings
from collections import Counter
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from mrct import MrctError
from mrct.data import read_dicom, read_dicom_series, read_nifti
from mrct.data.fastmri import FastMRIFile, write_fastmri
from mrct.io import load_array

FAST = 25
SLOW = 320
TIME_LIMIT = 2.0
MEM_FACTOR = 24  # traced peak <= MEM_FACTOR x the seed's (decompressed) size + MEM_FLOOR
MEM_FLOOR = 4 << 20

CT_SMALL = get_testdata_file("CT_small.dcm")
MR_SMALL = get_testdata_file("MR_small.dcm")
OUTCOMES: dict[str, Counter] = {}


class Seeds(dict):
    """Seed files by name (a short repr keeps hypothesis reports readable)."""

    def __repr__(self) -> str:
        return f"Seeds({sorted(self)})"


# ------------------------------------------------------------------------------ the check


def _listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((p.name, p.stat().st_size) for p in folder.iterdir())


def _check(reader: str, read, path: Path, budget: int, names=None, validate=None):
    """Run ``read(path)`` under the contract; return the outcome name."""
    folder = path if path.is_dir() else path.parent
    before = _listing(folder)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = read(path)
        outcome = "ok"
    except MrctError as e:
        msg = str(e)
        expected = names or [path.name]
        assert any(n in msg for n in expected), f"{type(e).__name__} does not name the file: {msg}"
        outcome = type(e).__name__
        out = None
    finally:
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < TIME_LIMIT, f"{reader} took {elapsed:.2f} s on {path}"
    assert peak <= MEM_FACTOR * budget + MEM_FLOOR, f"{reader} allocated {peak} bytes"
    assert _listing(folder) == before, f"{reader} wrote next to {path}"
    if out is not None and validate is not None:
        validate(out)
    OUTCOMES.setdefault(reader, Counter())[outcome] += 1
    return outcome


def _valid_volume(vol) -> None:
    assert np.all(np.isfinite(vol.affine))
    assert all(np.isfinite(s) and s > 0 for s in vol.spacing), vol.spacing
    assert vol.array.size > 0


# ----------------------------------------------------------------------------- mutations


def _pack(fmt: str, value) -> bytes:
    try:
        return struct.pack(fmt, value)
    except (struct.error, OverflowError):
        return struct.pack(fmt, 0)


_HOSTILE = [0, 1, -1, 7, 255, 32767, -32768, 2**31 - 1, -(2**31), 10**12]
_HOSTILE_F = [float("nan"), float("inf"), -float("inf"), 0.0, -1.0, 1e-30, 1e30, 1e12]


def mutations(fields: list[int] | None = None, header: int = 512):
    """A strategy of functions bytes -> bytes."""
    n_any = st.integers(0, 10**9)

    def truncate(frac):
        return lambda b: b[: int(len(b) * frac)]

    def flip(spots):
        def f(b):
            b = bytearray(b)
            for pos, x in spots:
                if b:
                    b[pos % len(b)] ^= x
            return bytes(b)

        return f

    def flip_header(spots):
        def f(b):
            b = bytearray(b)
            for pos, x in spots:
                if b:
                    b[pos % min(len(b), header)] ^= x
            return bytes(b)

        return f

    def put(offset, fmt, value):
        def f(b):
            data = _pack(fmt, value)
            if offset + len(data) > len(b):
                return b
            return b[:offset] + data + b[offset + len(data) :]

        return f

    spots = st.lists(st.tuples(n_any, st.integers(1, 255)), min_size=1, max_size=8)
    options = [
        st.floats(0, 1, exclude_max=True).map(truncate),
        spots.map(flip),
        spots.map(flip_header),
        st.just(lambda b: b""),
        st.just(lambda b: b"\x00" * len(b)),
        st.binary(min_size=1, max_size=16).map(lambda junk: lambda b: junk + b[len(junk) :]),
    ]
    if fields:
        options.append(
            st.builds(
                put,
                st.sampled_from(fields),
                st.sampled_from(["<h", "<i", "<q"]),
                st.sampled_from(_HOSTILE),
            )
        )
        options.append(
            st.builds(put, st.sampled_from(fields), st.just("<f"), st.sampled_from(_HOSTILE_F))
        )
    return st.one_of(options)


SETTINGS = dict(
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
fast = settings(max_examples=FAST, derandomize=True, **SETTINGS)
slow = settings(max_examples=SLOW, **SETTINGS)


# ---------------------------------------------------------------------------------- NIfTI

# NIfTI-1 header fields: dim, datatype, bitpix, pixdim, vox_offset, scl_slope/inter,
# qform/sform codes, quaternions, srow, magic
NIFTI_FIELDS = [0, 40, 42, 44, 46, 48, 70, 72, 76, 80, 84, 88, 108, 112, 116, 252, 254, 256]
NIFTI_FIELDS += [260, 264, 268, 272, 276, 280, 284, 288, 292, 296, 344]


@pytest.fixture(scope="module")
def nifti_seeds(tmp_path_factory):
    d = tmp_path_factory.mktemp("nifti_seeds")
    rng = np.random.default_rng(0)
    aff = np.array([[0, 0, -1.5, 10], [0, 2.0, 0, -5], [1.2, 0, 0, 3], [0, 0, 0, 1]])
    seeds = {}
    img = nib.Nifti1Image(rng.integers(-1000, 2000, (7, 8, 9)).astype(np.int16), aff)
    img.header.set_slope_inter(0.5, -10)
    nib.save(img, d / "int16.nii")
    nib.save(nib.Nifti1Image(rng.random((6, 5, 4, 2), dtype=np.float32), np.eye(4)), d / "f4d.nii")
    nib.save(nib.Nifti2Image(rng.random((5, 6, 7)).astype(np.float32), aff), d / "n2.nii")
    for name in ("int16.nii", "f4d.nii", "n2.nii"):
        seeds[name] = (d / name).read_bytes()
    return Seeds(seeds)


def _nifti_case(tmp_path, seeds, which, gz_inner, mutate):
    raw = seeds[which]
    if gz_inner is None:  # plain .nii
        data, name = mutate(raw), "case.nii"
    elif gz_inner:  # mutate the uncompressed stream, then compress
        data, name = gzip.compress(mutate(raw), 1), "case.nii.gz"
    else:  # mutate the compressed bytes
        data, name = mutate(gzip.compress(raw, 1)), "case.nii.gz"
    path = tmp_path / name
    path.write_bytes(data)
    try:
        _check("nifti", read_nifti, path, len(raw), validate=_valid_volume)
    finally:
        path.unlink()


nifti_cases = dict(
    which=st.sampled_from(["int16.nii", "f4d.nii", "n2.nii"]),
    gz_inner=st.sampled_from([None, True, False]),
    mutate=mutations(NIFTI_FIELDS, header=352),
)


@fast
@given(**nifti_cases)
def test_fuzz_nifti(tmp_path_factory, nifti_seeds, which, gz_inner, mutate):
    _nifti_case(tmp_path_factory.mktemp("n"), nifti_seeds, which, gz_inner, mutate)


@pytest.mark.slow
@slow
@given(**nifti_cases)
def test_fuzz_nifti_slow(tmp_path_factory, nifti_seeds, which, gz_inner, mutate):
    _nifti_case(tmp_path_factory.mktemp("n"), nifti_seeds, which, gz_inner, mutate)


def _nifti_with(tmp_path, name="x.nii", **header):
    img = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4))
    path = tmp_path / name
    nib.save(img, path)
    raw = bytearray(path.read_bytes())
    for offset, (fmt, value) in header.items():
        raw[int(offset[1:]) : int(offset[1:]) + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(raw))
    return path


def test_nifti_named_cases(tmp_path):
    """The cases of the issue, each a ReadError naming the file."""
    nan = float("nan")
    cases = {
        "nan pixdim": _nifti_with(tmp_path, "nanpix.nii", o80=("<f", nan), o254=("<h", 0)),
        "10^12 voxels": _nifti_with(
            tmp_path, "huge.nii", o42=("<h", 10000), o44=("<h", 10000), o46=("<h", 10000)
        ),
        "nan slope": _nifti_with(tmp_path, "nanslope.nii", o112=("<f", 1.0), o116=("<f", nan)),
        "bad datatype": _nifti_with(tmp_path, "dtype.nii", o70=("<h", 12345)),
        "wrong magic": _nifti_with(tmp_path, "magic.nii", o344=("<i", 0x12345678)),
        "negative dim": _nifti_with(tmp_path, "neg.nii", o42=("<h", -5)),
    }
    (tmp_path / "empty.nii").write_bytes(b"")
    cases["empty"] = tmp_path / "empty.nii"
    cases["empty gz"] = tmp_path / "empty.nii.gz"
    cases["empty gz"].write_bytes(gzip.compress(b""))
    cases["not gz"] = tmp_path / "plain.nii.gz"
    cases["not gz"].write_bytes((tmp_path / "nanpix.nii").read_bytes())
    (tmp_path / "adir.nii").mkdir()
    cases["directory"] = tmp_path / "adir.nii"
    # 10^12 voxels in a small gzip file: refused from the header, not by a MemoryError
    huge_gz = tmp_path / "huge.nii.gz"
    huge_gz.write_bytes(gzip.compress((tmp_path / "huge.nii").read_bytes()))
    cases["10^12 voxels gz"] = huge_gz
    for what, path in cases.items():
        outcome = _check("nifti", read_nifti, path, 1 << 16)
        assert outcome == "ReadError", (what, outcome)
    # nibabel repairs a zero pixdim to 1 mm (and logs it): a usable, finite geometry
    zero = _nifti_with(tmp_path, "zeropix.nii", o80=("<f", 0.0), o254=("<h", 0))
    assert _check("nifti", read_nifti, zero, 1 << 16, validate=_valid_volume) == "ok"


# ---------------------------------------------------------------------------------- DICOM


def _dicom_structural():
    """Strategy of functions Dataset -> None that set hostile values."""
    sets = {
        "RescaleSlope": ["abc", "nan", "inf", "0", "1e400", "-nan", ""],
        "RescaleIntercept": ["abc", "nan", "-inf", "1e400"],
        "Rows": [0, 1, 65535],
        "Columns": [0, 3, 65535],
        "BitsAllocated": [0, 1, 12, 32, 64],
        "BitsStored": [0, 40],
        "HighBit": [200],
        "SamplesPerPixel": [0, 3],
        "NumberOfFrames": ["0", "5", "abc", "1000000000"],
        "PixelRepresentation": [2, 7],
        "PhotometricInterpretation": ["RGB", "PALETTE COLOR", "XYZ"],
        "ImageOrientationPatient": [
            ["nan", "0", "0", "0", "1", "0"],
            ["0", "0", "0", "0", "0", "0"],
            ["1", "0", "0", "1", "0", "0"],
            ["1", "0"],
            ["a", "b", "c", "d", "e", "f"],
        ],
        "ImagePositionPatient": [["nan", "0", "0"], ["1e400", "0", "0"], ["1", "2"]],
        "PixelSpacing": [["0", "0"], ["-1", "1"], ["nan", "1"], ["abc"], ["1"]],
        "SliceThickness": ["nan", "-2", "abc", "inf"],
    }

    def setter(tag, value):
        return lambda ds: _set_raw(ds, tag, value)

    def delete(tag):
        def f(ds):
            if tag in ds:
                delattr(ds, tag)

        return f

    def cut_pixels(frac):
        def f(ds):
            ds.PixelData = ds.PixelData[: int(len(ds.PixelData) * frac) & ~1]

        return f

    options = [st.builds(setter, st.just(t), st.sampled_from(v)) for t, v in sorted(sets.items())]
    options += [
        st.sampled_from(["PixelData", "Rows", "BitsAllocated", "SeriesInstanceUID"]).map(delete),
        st.floats(0, 1, exclude_max=True).map(cut_pixels),
    ]
    return st.one_of(options)


def _rle_syntax(b: bytes) -> bytes:
    """Claim RLE Lossless (an encapsulated syntax) for native pixel data (same UID length)."""
    return b.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.5\x00", 1)


def _set_raw(ds, tag: str, value) -> None:
    """Set ``tag`` to ``value`` as stored text (LO), bypassing pydicom's value checks, so that
    "abc" or "nan" reach the file as a scanner might write them; integers keep their VR."""
    if isinstance(value, int):
        setattr(ds, tag, value)
        return
    ds[pydicom.datadict.tag_for_keyword(tag)] = pydicom.DataElement(
        pydicom.datadict.tag_for_keyword(tag), "LO", value
    )


def _apply(seed: bytes, kind: str, mutate, path: Path) -> None:
    if kind == "bytes":
        path.write_bytes(mutate(seed))
        return
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(seed))
    mutate(ds)
    with pydicom.config.disable_value_validation(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=False)


@pytest.fixture(scope="module")
def dicom_seeds():
    return Seeds(ct=Path(CT_SMALL).read_bytes(), mr=Path(MR_SMALL).read_bytes())


def _valid_image(vol) -> None:
    _valid_volume(vol)
    assert vol.array.ndim == 2 and np.all(np.isfinite(vol.array))


dicom_cases = dict(
    which=st.sampled_from(["ct", "mr"]),
    mutation=st.one_of(
        st.tuples(st.just("bytes"), mutations(header=1024)),
        st.tuples(st.just("bytes"), st.just(_rle_syntax)),
        st.tuples(st.just("tags"), _dicom_structural()),
    ),
)


def _dicom_case(tmp_path, seeds, which, mutation):
    path = tmp_path / "case.dcm"
    kind, mutate = mutation
    _apply(seeds[which], kind, mutate, path)
    try:
        _check("dicom", read_dicom, path, len(seeds[which]), validate=_valid_image)
    finally:
        path.unlink()


@fast
@given(**dicom_cases)
def test_fuzz_dicom(tmp_path_factory, dicom_seeds, which, mutation):
    _dicom_case(tmp_path_factory.mktemp("d"), dicom_seeds, which, mutation)


@pytest.mark.slow
@slow
@given(**dicom_cases)
def test_fuzz_dicom_slow(tmp_path_factory, dicom_seeds, which, mutation):
    _dicom_case(tmp_path_factory.mktemp("d"), dicom_seeds, which, mutation)


def test_dicom_named_cases(tmp_path):
    seed = Path(CT_SMALL).read_bytes()
    for value in ("abc", "nan", "inf"):
        path = tmp_path / f"slope_{value}.dcm"

        _apply(seed, "tags", lambda ds, v=value: _set_raw(ds, "RescaleSlope", v), path)
        with pytest.raises(MrctError, match=f"slope_{value}.dcm.*RescaleSlope"):
            read_dicom(path)
    path = tmp_path / "rows.dcm"

    def huge(ds):
        ds.Rows = ds.Columns = 65535

    _apply(seed, "tags", huge, path)
    with pytest.raises(MrctError, match="rows.dcm.*PixelData holds"):
        read_dicom(path)
    (tmp_path / "empty.dcm").write_bytes(b"")
    with pytest.raises(MrctError, match="empty.dcm.*empty"):
        read_dicom(tmp_path / "empty.dcm")
    with pytest.raises(MrctError, match="directory"):
        read_dicom(tmp_path)


# --------------------------------------------------------------------------- DICOM series

SERIES_Z = [-70.0, -72.5, -75.0, -77.5, -80.0]


def _write_series(folder: Path, seed: bytes) -> list[Path]:
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(seed))
    base = ds.pixel_array.copy()
    paths = []
    for i, z in enumerate(SERIES_Z):
        ds.ImagePositionPatient = [-158.135803, -179.035797, z]
        ds.InstanceNumber = i + 1
        ds.PixelData = (base + 10 * i).astype(base.dtype).tobytes()
        p = folder / f"im{i:02d}.dcm"
        ds.save_as(p)
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def series_reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("series_ref")
    seed = Path(CT_SMALL).read_bytes()
    paths = _write_series(folder, seed)
    vol = read_dicom_series(folder)
    files = Seeds({p.name: p.read_bytes() for p in paths})
    return Seeds(vol=vol, files=files)


def _slice_z(vol, k):
    return float((vol.affine @ [k, 0, 0, 1])[2])


def _series_case(tmp_path, reference, victim, mutation, skip_bad):
    ref, files = reference["vol"], reference["files"]
    folder = tmp_path / "series"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    name = f"im{victim:02d}.dcm"
    kind, mutate = mutation
    _apply(files[name], kind, mutate, folder / name)
    victim_z = SERIES_Z[victim]

    def validate(vol):
        # every undamaged slice is where it belongs, with its own pixels
        assert vol.array.shape[1:] == ref.array.shape[1:]
        seen = 0
        for k in range(vol.array.shape[0]):
            z = _slice_z(vol, k)
            if np.all(np.isnan(vol.array[k])) or abs(z - victim_z) < 1e-3:
                continue
            j = int(np.argmin([abs(_slice_z(ref, i) - z) for i in range(ref.array.shape[0])]))
            assert abs(_slice_z(ref, j) - z) < 1e-3, f"slice {k} at z={z} is misplaced"
            np.testing.assert_array_equal(vol.array[k], ref.array[j])
            seen += 1
        assert seen >= len(SERIES_Z) - 1 or vol.array.shape[0] < len(SERIES_Z)

    def read(folder):
        return read_dicom_series(folder, skip_bad=skip_bad)

    try:
        _check(
            "dicom_series",
            read,
            folder,
            sum(len(b) for b in files.values()),
            names=[name, "series"],
            validate=validate,
        )
    finally:
        shutil.rmtree(folder)


series_cases = dict(
    victim=st.integers(0, len(SERIES_Z) - 1),
    mutation=st.one_of(
        st.tuples(st.just("bytes"), mutations(header=1024)),
        st.tuples(st.just("bytes"), st.just(_rle_syntax)),
        st.tuples(st.just("tags"), _dicom_structural()),
    ),
    skip_bad=st.booleans(),
)


@fast
@given(**series_cases)
def test_fuzz_dicom_series(tmp_path_factory, series_reference, victim, mutation, skip_bad):
    _series_case(tmp_path_factory.mktemp("s"), series_reference, victim, mutation, skip_bad)


@pytest.mark.slow
@slow
@given(**series_cases)
def test_fuzz_dicom_series_slow(tmp_path_factory, series_reference, victim, mutation, skip_bad):
    _series_case(tmp_path_factory.mktemp("s"), series_reference, victim, mutation, skip_bad)


@pytest.mark.parametrize("victim", [2, 4])
def test_series_damaged_slice_is_named_or_skipped(tmp_path, series_reference, victim):
    """The issue's case: a damaged interior (or last) slice is an error naming it; with
    skip_bad=True a warning names it and the other slices keep their positions."""
    ref, files = series_reference["vol"], series_reference["files"]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    bad = tmp_path / f"im{victim:02d}.dcm"
    bad.write_bytes(files[bad.name][:-3000])  # pixel data cut short
    with pytest.raises(MrctError, match=f"{bad.name}.*skip_bad=True"):
        read_dicom_series(tmp_path)
    with pytest.warns(UserWarning, match=bad.name):
        vol = read_dicom_series(tmp_path, skip_bad=True)
    assert vol.metadata["skipped_files"] == [str(bad)]
    if victim == 4:  # the last file is the lowest z: the volume starts one slice higher
        assert vol.array.shape[0] == 4
        np.testing.assert_array_equal(vol.array, ref.array[1:])
        np.testing.assert_allclose(vol.affine, ref.affine @ _shift(1))
    else:  # an interior slice: its place is NaN, the others are where they were
        assert vol.array.shape == ref.array.shape and vol.metadata["missing_slices"] == [2]
        assert np.all(np.isnan(vol.array[2]))
        keep = [0, 1, 3, 4]
        np.testing.assert_array_equal(vol.array[keep], ref.array[keep])
        np.testing.assert_allclose(vol.affine, ref.affine)


def _shift(k):
    m = np.eye(4)
    m[0, 3] = k
    return m


def test_series_empty_folder_and_odd_spacing(tmp_path):
    with pytest.raises(MrctError, match="no DICOM images found"):
        read_dicom_series(tmp_path)
    seed = Path(CT_SMALL).read_bytes()
    paths = _write_series(tmp_path, seed)
    ds = pydicom.dcmread(paths[2])
    ds.ImagePositionPatient = [-158.135803, -179.035797, -74.1]  # off the 2.5 mm grid
    ds.save_as(paths[2])
    with pytest.raises(MrctError, match="non-uniform slice spacing"):
        read_dicom_series(tmp_path)


# -------------------------------------------------------------------------------- fastMRI

HEADER = """<?xml version="1.0"?><ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding>
<encodedSpace><matrixSize><x>16</x><y>6</y><z>1</z></matrixSize></encodedSpace>
<reconSpace><matrixSize><x>4</x><y>4</y><z>1</z></matrixSize></reconSpace>
<encodingLimits><kspace_encoding_step_1><minimum>0</minimum><maximum>5</maximum>
<center>3</center></kspace_encoding_step_1></encodingLimits></encoding></ismrmrdHeader>"""


@pytest.fixture(scope="module")
def fastmri_seeds(tmp_path_factory):
    d = tmp_path_factory.mktemp("fastmri_seeds")
    rng = np.random.default_rng(0)
    k = (rng.standard_normal((3, 2, 8, 6)) + 1j * rng.standard_normal((3, 2, 8, 6))).astype(
        np.complex64
    )
    write_fastmri(
        d / "multi.h5",
        k,
        reconstruction_rss=rng.random((3, 4, 4), dtype=np.float32),
        header=HEADER,
        attrs={"acquisition": "CORPD_FBK", "max": 1.0, "patient_id": "x"},
    )
    write_fastmri(
        d / "single.h5", k[:, 0], mask=np.ones(6, np.float32), header=HEADER.encode(), attrs={}
    )
    return Seeds({p.name: p.read_bytes() for p in d.iterdir()})


def _read_fastmri_all(path):
    with FastMRIFile(path) as f:
        for i in range(f.n_slices):
            f.kspace(i)
            f.target(i)
        return f.attrs, f.mask, f.metadata, f.header


def _h5_structural():
    """Strategy of functions h5py.File -> None (missing keys, wrong dtypes, huge claims)."""

    def drop(key):
        def f(h5):
            if key in h5:
                del h5[key]

        return f

    def replace(key, data):
        def f(h5):
            if key in h5:
                del h5[key]
            h5[key] = data

        return f

    def huge(key, shape):
        def f(h5):
            if key in h5:
                del h5[key]
            h5.create_dataset(key, shape=shape, dtype=np.complex64, chunks=(1, 1, 1, 8))

        return f

    def attr(h5):
        h5.attrs["acquisition"] = np.frombuffer(b"\xff\xfe\x00", dtype="S3")[0]

    return st.one_of(
        st.sampled_from(["kspace", "reconstruction_rss", "ismrmrd_header", "mask"]).map(drop),
        st.builds(
            replace,
            st.sampled_from(["kspace", "reconstruction_rss", "mask", "ismrmrd_header"]),
            st.sampled_from(
                [
                    np.zeros((3, 8, 6), np.float32),
                    np.zeros((2, 2, 8, 6), np.complex64),
                    np.zeros((3,), np.complex64),
                    np.array([b"abc"]),
                    np.array(7),
                    np.zeros((3, 2, 8, 6), np.int8),
                    np.zeros((3, 4, 4), np.complex64),
                ]
            ),
        ),
        st.builds(
            huge,
            st.sampled_from(["kspace"]),
            st.sampled_from([(10**6, 10**3, 10**3, 8), (3, 2, 10**6, 10**6)]),
        ),
        st.just(attr),
        st.just(replace("ismrmrd_header", "<not xml")),
        st.just(replace("ismrmrd_header", HEADER.replace("<x>16</x>", "<x>abc</x>"))),
    )


fastmri_cases = dict(
    which=st.sampled_from(["multi.h5", "single.h5"]),
    mutation=st.one_of(
        st.tuples(st.just("bytes"), mutations(header=2048)),
        st.tuples(st.just("h5"), _h5_structural()),
    ),
)


def _fastmri_case(tmp_path, seeds, which, mutation):
    path = tmp_path / "case.h5"
    path.write_bytes(seeds[which])
    kind, mutate = mutation
    if kind == "bytes":
        path.write_bytes(mutate(seeds[which]))
    else:
        with h5py.File(path, "r+") as h5:
            mutate(h5)
    try:
        _check("fastmri", _read_fastmri_all, path, max(len(seeds[which]), path.stat().st_size))
    finally:
        path.unlink()


@fast
@given(**fastmri_cases)
def test_fuzz_fastmri(tmp_path_factory, fastmri_seeds, which, mutation):
    _fastmri_case(tmp_path_factory.mktemp("f"), fastmri_seeds, which, mutation)


@pytest.mark.slow
@slow
@given(**fastmri_cases)
def test_fuzz_fastmri_slow(tmp_path_factory, fastmri_seeds, which, mutation):
    _fastmri_case(tmp_path_factory.mktemp("f"), fastmri_seeds, which, mutation)


def test_fastmri_named_cases(tmp_path, fastmri_seeds):
    (tmp_path / "empty.h5").write_bytes(b"")
    (tmp_path / "dir.h5").mkdir()
    for name in ("empty.h5", "dir.h5"):
        assert _check("fastmri", _read_fastmri_all, tmp_path / name, 1 << 16) == "ReadError"
    path = tmp_path / "huge.h5"
    path.write_bytes(fastmri_seeds["multi.h5"])
    with h5py.File(path, "r+") as h5:
        del h5["kspace"]
        h5.create_dataset("kspace", shape=(10**4, 10, 10**4, 10**4), dtype=np.complex64,
                          chunks=(1, 1, 8, 8))  # fmt: skip
    with pytest.raises(MrctError, match="huge.h5: dataset 'kspace' claims shape"):
        _read_fastmri_all(path)


# -------------------------------------------------------------------------------- npy/npz


@pytest.fixture(scope="module")
def array_seeds(tmp_path_factory):
    d = tmp_path_factory.mktemp("array_seeds")
    rng = np.random.default_rng(0)
    np.save(d / "a.npy", rng.random((6, 7)).astype(np.float32))
    np.save(d / "c.npy", (rng.random((4, 5)) + 1j).astype(np.complex64))
    np.savez(d / "one.npz", x=rng.random((5, 5)))
    np.savez_compressed(d / "onez.npz", x=np.zeros((40, 40), np.int16))
    return Seeds({p.name: p.read_bytes() for p in d.iterdir()})


# .npy header: magic (6), version (2), header length (2), then the dict literal
NPY_FIELDS = [0, 6, 7, 8, 9, 10, 20, 30, 40, 50]
array_cases = dict(
    which=st.sampled_from(["a.npy", "c.npy", "one.npz", "onez.npz"]),
    mutate=mutations(NPY_FIELDS, header=160),
)


def _array_case(tmp_path, seeds, which, mutate):
    path = tmp_path / which
    path.write_bytes(mutate(seeds[which]))
    try:
        _check("npy_npz", load_array, path, len(seeds[which]))
    finally:
        path.unlink()


@fast
@given(**array_cases)
def test_fuzz_arrays(tmp_path_factory, array_seeds, which, mutate):
    _array_case(tmp_path_factory.mktemp("a"), array_seeds, which, mutate)


@pytest.mark.slow
@slow
@given(**array_cases)
def test_fuzz_arrays_slow(tmp_path_factory, array_seeds, which, mutate):
    _array_case(tmp_path_factory.mktemp("a"), array_seeds, which, mutate)


def test_array_named_cases(tmp_path, array_seeds):
    raw = array_seeds["a.npy"]
    header_end = raw.index(b"\n") + 1
    header = raw[10:header_end].decode("latin1").replace("(6, 7)", "(1000000, 1000000)")
    header = header.ljust(header_end - 10 - 1) + "\n"
    (tmp_path / "huge.npy").write_bytes(raw[:10] + header.encode("latin1") + raw[header_end:])
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "trunc.npy").write_bytes(raw[:-5])
    np.savez(tmp_path / "two.npz", a=np.ones(2), b=np.ones(3))
    for name in ("huge.npy", "empty.npy", "trunc.npy", "two.npz"):
        assert _check("npy_npz", load_array, tmp_path / name, len(raw)) == "ReadError", name
    with pytest.raises(MrctError, match="two.npz has no array 'c'"):
        load_array(tmp_path / "two.npz", key="c")
    np.testing.assert_array_equal(load_array(tmp_path / "two.npz", key="b"), np.ones(3))


# ------------------------------------------------------------------------------- summary


def test_zz_outcome_summary(capsys):
    """Print how the cases of this run ended (visible with -s; the slow run's report)."""
    with capsys.disabled():
        for reader, counts in sorted(OUTCOMES.items()):
            total = sum(counts.values())
            print(f"\n[fuzz] {reader}: {total} cases: {dict(counts)}", end="")
    assert all(sum(c.values()) > 0 for c in OUTCOMES.values())
