"""Read and write fastMRI HDF5 files; a torch ``Dataset`` over their slices.

Layout (one volume per file; ``fastmri/data/mri_data.py``, ``fastmri/data/README.md``):

* ``kspace``: complex64, ``(S, C, H, W)`` multi-coil or ``(S, H, W)`` single-coil; ``W`` is
  the phase-encoding direction (already undersampled in test/challenge files);
* ``reconstruction_rss`` (multi-coil) / ``reconstruction_esc`` (single-coil): float32
  ``(S, h, w)`` targets, usually 320 x 320 (absent from test/challenge files);
* ``mask``: ``(W,)`` sampling mask (test/challenge files only);
* ``ismrmrd_header``: scalar ISMRMRD XML string (h5py returns ``bytes``; decoded here);
* root attributes: ``acquisition``, ``max``, ``norm``, ``patient_id``, and in test files
  ``acceleration`` and ``num_low_frequency``.

From the header, as fastMRI's ``SliceDataset``: ``encoding_size`` and ``recon_size``
(``encoding/{encodedSpace,reconSpace}/matrixSize/{x,y,z}``) and
``padding_left = encoding_size[1] // 2 - center``, ``padding_right = padding_left + maximum + 1``
from ``encoding/encodingLimits/kspace_encoding_step_1``.

Files are opened per access (one slice is read at a time); :class:`FastMRIDataset` opens its
file in every ``__getitem__`` and never keeps a handle, which avoids the h5py memory growth
with ``DataLoader`` workers reported in fastMRI #215.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mrct.errors import MissingFileError, ReadError
from mrct.io import atomic_path

__all__ = [
    "FastMRIFile",
    "FastMRIDataset",  # noqa: F822 (served by __getattr__)
    "FastMRISample",  # noqa: F822
    "parse_ismrmrd_header",
    "read_fastmri",
    "write_fastmri",
]

ISMRMRD_NAMESPACE = "http://www.ismrm.org/ISMRMRD"
_TARGET_KEYS = ("reconstruction_rss", "reconstruction_esc")
_DEFLATE_MAX_RATIO = 1032  # no HDF5 filter in use expands data more than deflate can
#: what h5py and the decoding of values raise for a damaged file
_READ_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, UnicodeDecodeError)


def _check_storage(path: Path, name: str, ds: h5py.Dataset, file_size: int) -> None:
    """The dataset must store the bytes its shape claims (within its filters' ratio) and lie
    inside the file, so reading it never allocates more than the file could hold."""
    claimed = int(np.prod(ds.shape, dtype=object)) * ds.dtype.itemsize
    if claimed == 0:
        return
    storage = int(ds.id.get_storage_size())
    filtered = bool(ds.id.get_create_plist().get_nfilters())
    limit = storage * _DEFLATE_MAX_RATIO if filtered else storage
    if claimed > limit:
        raise ReadError(
            f"{path}: dataset '{name}' claims shape {ds.shape} of {ds.dtype} ({claimed} bytes) "
            f"but stores {storage} bytes{' (compressed)' if filtered else ''} (truncated file or "
            "inconsistent header)",
            path=path,
        )
    offset = ds.id.get_offset()  # contiguous layout only
    if offset is not None and offset + storage > file_size:
        raise ReadError(
            f"{path}: dataset '{name}' ends at byte {offset + storage}, past the end of the "
            f"{file_size}-byte file (truncated file)",
            path=path,
        )


# ---------------------------------------------------------------------------------- header


def _decode(value) -> Any:
    """bytes -> str, numpy scalars -> Python scalars (for header and attribute values)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def parse_ismrmrd_header(header: str | bytes) -> dict:
    """Sizes and padding of a fastMRI ISMRMRD header, as fastMRI's ``_retrieve_metadata``.

    Parameters
    ----------
    header : str or bytes
        The ISMRMRD XML document (root ``ismrmrdHeader`` in the ISMRMRD namespace).

    Returns
    -------
    dict
        ``encoding_size`` and ``recon_size`` (tuples ``(x, y, z)`` of int),
        ``padding_left`` and ``padding_right`` (int: k-space columns outside
        ``[padding_left, padding_right)`` were not acquired).

    Raises
    ------
    ValueError
        If the XML is malformed or lacks one of those elements.
    """
    try:
        root = ET.fromstring(header)
    except ET.ParseError as e:
        raise ValueError(f"ismrmrd_header is not valid XML: {e}") from e
    ns = {"i": ISMRMRD_NAMESPACE}

    def query(*path: str) -> int:
        # fastMRI's et_query: nested descendant search './/ns:a//ns:b...'
        q = "." + "".join(f"//i:{p}" for p in path)
        el = root.find(q, ns)
        if el is None or el.text is None:
            raise ValueError(
                f"ismrmrd_header lacks {'/'.join(path)} (in namespace {ISMRMRD_NAMESPACE})"
            )
        return int(el.text)

    enc = ("encoding", "encodedSpace", "matrixSize")
    rec = ("encoding", "reconSpace", "matrixSize")
    lims = ("encoding", "encodingLimits", "kspace_encoding_step_1")
    enc_size = tuple(query(*enc, a) for a in "xyz")
    recon_size = tuple(query(*rec, a) for a in "xyz")
    center = query(*lims, "center")
    maximum = query(*lims, "maximum") + 1
    padding_left = enc_size[1] // 2 - center
    return {
        "encoding_size": enc_size,
        "recon_size": recon_size,
        "padding_left": padding_left,
        "padding_right": padding_left + maximum,
    }


# ------------------------------------------------------------------------------------ file


class FastMRIFile:
    """An open fastMRI HDF5 file, read lazily one slice at a time.

    Use as a context manager (or call :meth:`close`)::

        with FastMRIFile("file1000001.h5") as f:
            k = f.kspace(10)         # (C, H, W) complex64
            t = f.target(10)         # (320, 320) float32, or None in test files

    Parameters
    ----------
    path : str or PathLike

    Attributes
    ----------
    path : Path
    shape : tuple of int
        Shape of the ``kspace`` dataset, ``(S, C, H, W)`` or ``(S, H, W)``.
    n_slices : int
    multicoil : bool
    attrs : dict
        Root attributes (bytes decoded, numpy scalars as Python scalars).
    header : str or None
        The ISMRMRD XML header.
    mask : ndarray or None
        The ``mask`` dataset (``(W,)``), in test/challenge files.

    Raises
    ------
    mrct.errors.MissingFileError
        If ``path`` does not exist (a ``FileNotFoundError``).
    mrct.errors.ReadError
        (a ``ValueError``) If the file is not readable HDF5, has no usable ``kspace`` dataset,
        or a dataset has the wrong kind, shape or slice count, or claims more data than the
        file stores. Reading a damaged dataset later raises ``ReadError`` too; every message
        names the file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._h5 = None
        if not self.path.exists():
            raise MissingFileError(f"No such file or directory: '{self.path}'", path=self.path)
        if self.path.is_dir():
            raise ReadError(f"{self.path} is a directory, not a fastMRI HDF5 file", path=self.path)
        try:
            self._h5 = h5py.File(self.path, "r")
        except Exception as e:  # h5py raises OSError, sometimes others, for non-HDF5 files
            raise ReadError(f"{self.path} is not a readable HDF5 file: {e}", path=self.path) from e
        try:
            self._validate()
        except ReadError:
            self.close()
            raise
        except _READ_ERRORS as e:
            self.close()
            raise ReadError(f"{self.path} is a damaged HDF5 file: {e}", path=self.path) from e
        except BaseException:
            self.close()
            raise

    def _validate(self) -> None:
        h5, path = self._h5, self.path
        size = path.stat().st_size
        if "kspace" not in h5 or not isinstance(h5["kspace"], h5py.Dataset):
            raise ReadError(
                f"{path} has no 'kspace' dataset; a fastMRI file holds complex64 kspace of "
                f"shape (slices, coils, H, W) or (slices, H, W) (found: {sorted(h5.keys())})",
                path=path,
            )
        ds = h5["kspace"]
        if ds.ndim not in (3, 4) or ds.dtype.kind != "c":
            raise ReadError(
                f"{path}: 'kspace' must be complex of shape (slices, coils, H, W) or "
                f"(slices, H, W), got dtype {ds.dtype} and shape {ds.shape}",
                path=path,
            )
        _check_storage(path, "kspace", ds, size)
        n = ds.shape[0]
        for key in _TARGET_KEYS:
            if key not in h5:
                continue
            t = h5[key]
            if not isinstance(t, h5py.Dataset) or t.ndim != 3 or t.dtype.kind not in "fiub":
                raise ReadError(
                    f"{path}: '{key}' must be a real array of shape (slices, h, w), got "
                    f"{getattr(t, 'dtype', type(t).__name__)} {getattr(t, 'shape', '')}",
                    path=path,
                )
            if t.shape[0] != n:
                raise ReadError(
                    f"{path}: '{key}' has {t.shape[0]} slices but 'kspace' has {n}", path=path
                )
            _check_storage(path, key, t, size)
        if "mask" in h5:
            m = h5["mask"]
            if not isinstance(m, h5py.Dataset) or m.ndim != 1 or m.dtype.kind not in "fiub":
                raise ReadError(
                    f"{path}: 'mask' must be a real array of shape (W,), got "
                    f"{getattr(m, 'dtype', type(m).__name__)} {getattr(m, 'shape', '')}",
                    path=path,
                )
            _check_storage(path, "mask", m, size)
        if "ismrmrd_header" in h5:
            hd = h5["ismrmrd_header"]
            if not isinstance(hd, h5py.Dataset) or hd.dtype.kind not in "SOU" or hd.size != 1:
                raise ReadError(
                    f"{path}: 'ismrmrd_header' must be one XML string, got "
                    f"{getattr(hd, 'dtype', type(hd).__name__)} {getattr(hd, 'shape', '')}",
                    path=path,
                )
            _check_storage(path, "ismrmrd_header", hd, size)

    def _read(self, what: str, fn):
        """``fn()``, with h5py's and decoding errors turned into a ReadError naming the file."""
        try:
            return fn()
        except (ReadError, IndexError):
            raise
        except _READ_ERRORS as e:
            raise ReadError(f"{self.path}: cannot read {what}: {e}", path=self.path) from e

    # -- context management ------------------------------------------------------------------
    def close(self) -> None:
        """Close the HDF5 file."""
        if getattr(self, "_h5", None) is not None:
            self._h5.close()
            self._h5 = None

    def __enter__(self) -> FastMRIFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __repr__(self) -> str:
        state = "closed" if self._h5 is None else f"shape={self.shape}"
        return f"FastMRIFile('{self.path}', {state})"

    @property
    def h5(self) -> h5py.File:
        """The underlying open ``h5py.File``."""
        if self._h5 is None:
            raise ValueError(f"{self.path} is closed")
        return self._h5

    # -- metadata ----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.h5["kspace"].shape)

    @property
    def n_slices(self) -> int:
        return self.shape[0]

    @property
    def multicoil(self) -> bool:
        return len(self.shape) == 4

    def __len__(self) -> int:
        return self.n_slices

    @property
    def attrs(self) -> dict:
        return self._read(
            "the root attributes", lambda: {k: _decode(v) for k, v in self.h5.attrs.items()}
        )

    @property
    def header(self) -> str | None:
        if "ismrmrd_header" not in self.h5:
            return None
        value = self._read("ismrmrd_header", lambda: _decode(self.h5["ismrmrd_header"][()]))
        if isinstance(value, np.ndarray) and value.size == 1:
            value = _decode(value.reshape(()))
        if not isinstance(value, str):
            raise ReadError(f"{self.path}: 'ismrmrd_header' is not a string", path=self.path)
        return value

    @property
    def metadata(self) -> dict:
        """:func:`parse_ismrmrd_header` of the header (empty when there is no header)."""
        header = self.header
        if header is None:
            return {}
        try:
            return parse_ismrmrd_header(header)
        except ValueError as e:
            raise ReadError(f"{self.path}: {e}", path=self.path) from e

    @property
    def mask(self) -> np.ndarray | None:
        if "mask" not in self.h5:
            return None
        return self._read("mask", lambda: np.asarray(self.h5["mask"]))

    @property
    def target_key(self) -> str | None:
        """``reconstruction_rss`` (multi-coil) or ``reconstruction_esc`` (single-coil) when
        present (else the other one when present), or None."""
        order = _TARGET_KEYS if self.multicoil else _TARGET_KEYS[::-1]
        for key in order:
            if key in self.h5:
                return key
        return None

    # -- data --------------------------------------------------------------------------------
    def _index(self, i: int | None) -> Any:
        if i is None:
            return ()
        i = int(i)
        n = self.n_slices
        if not -n <= i < n:
            raise IndexError(f"slice {i} is out of range for {self.path} with {n} slices")
        return i % n

    def kspace(self, i: int | None = None) -> np.ndarray:
        """k-space of slice ``i`` (``(C, H, W)`` or ``(H, W)``), or of all slices when ``i``
        is None, as complex64."""
        idx = self._index(i)
        return self._read("kspace", lambda: np.asarray(self.h5["kspace"][idx], dtype=np.complex64))

    def target(self, i: int | None = None, key: str | None = None) -> np.ndarray | None:
        """Target image of slice ``i`` (all slices when None) as float32, or None when the
        file has none (test/challenge files).

        Parameters
        ----------
        key : {"reconstruction_rss", "reconstruction_esc"}, optional
            Which target; default :attr:`target_key`.
        """
        key = key or self.target_key
        if key is None:
            return None
        if key not in self.h5:
            raise KeyError(f"{self.path} has no '{key}' dataset")
        idx = self._index(i)
        return self._read(key, lambda: np.asarray(self.h5[key][idx], dtype=np.float32))


def read_fastmri(path: str | os.PathLike) -> FastMRIFile:
    """Open a fastMRI HDF5 file for lazy reading (see :class:`FastMRIFile`)."""
    return FastMRIFile(path)


def write_fastmri(
    path: str | os.PathLike,
    kspace: np.ndarray,
    reconstruction_rss: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    header: str | bytes | None = None,
    attrs: dict | None = None,
    *,
    reconstruction_esc: np.ndarray | None = None,
) -> Path:
    """Write a volume in the fastMRI HDF5 layout, atomically.

    The file is written under a temporary name in the destination folder and renamed with
    ``os.replace``, so a reader never sees a half-written file.

    Parameters
    ----------
    path : str or PathLike
        Destination ``.h5`` file (overwritten).
    kspace : ndarray, complex, shape (S, C, H, W) or (S, H, W)
        Stored as complex64.
    reconstruction_rss, reconstruction_esc : ndarray, shape (S, h, w), optional
        Targets, stored as float32.
    mask : ndarray, shape (W,), optional
        Sampling mask (test/challenge layout), stored with its dtype.
    header : str or bytes, optional
        ISMRMRD XML; a ``str`` is stored as an HDF5 variable-length UTF-8 string, ``bytes`` as
        a fixed-length byte string (as fastMRI's own test files); both read back as ``str``.
    attrs : dict, optional
        Root attributes (``acquisition``, ``max``, ``norm``, ``patient_id``, ...).

    Returns
    -------
    Path
    """
    kspace = np.asarray(kspace)
    if kspace.ndim not in (3, 4):
        raise ValueError(
            f"kspace must have shape (slices, coils, H, W) or (slices, H, W), got {kspace.shape}"
        )
    if not (np.iscomplexobj(kspace) or np.issubdtype(kspace.dtype, np.floating)):
        raise TypeError(f"kspace must be complex, got dtype {kspace.dtype}")
    n_slices = kspace.shape[0]
    targets = {}
    for name, arr in (
        ("reconstruction_rss", reconstruction_rss),
        ("reconstruction_esc", reconstruction_esc),
    ):
        if arr is None:
            continue
        arr = np.asarray(arr)
        if arr.ndim != 3 or arr.shape[0] != n_slices:
            raise ValueError(
                f"{name} must have shape ({n_slices}, h, w) (one image per slice), got {arr.shape}"
            )
        if np.iscomplexobj(arr):
            raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
        targets[name] = arr.astype(np.float32)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.ndim != 1 or mask.shape[0] != kspace.shape[-1]:
            raise ValueError(
                f"mask must have shape ({kspace.shape[-1]},) (one entry per k-space column), "
                f"got {mask.shape}"
            )
    if header is not None and not isinstance(header, str | bytes):
        raise TypeError(f"header must be str or bytes, got {type(header).__name__}")
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("kspace", data=kspace.astype(np.complex64))
            for name, arr in targets.items():
                f.create_dataset(name, data=arr)
            if mask is not None:
                f.create_dataset("mask", data=mask)
            if header is not None:
                if isinstance(header, str):
                    f.create_dataset("ismrmrd_header", data=header, dtype=h5py.string_dtype())
                else:
                    f.create_dataset("ismrmrd_header", data=np.bytes_(header))
            for k, v in (attrs or {}).items():
                f.attrs[k] = v
    return path


def __getattr__(name: str):
    """The Dataset lives in :mod:`.fastmri_dataset` (it imports this module); served here."""
    if name in ("FastMRIDataset", "FastMRISample"):
        from . import fastmri_dataset

        return getattr(fastmri_dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
