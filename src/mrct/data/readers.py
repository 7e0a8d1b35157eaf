"""NIfTI and DICOM readers returning volumes in one canonical orientation.

Every reader returns a :class:`Volume` whose array axes run toward patient Superior,
Posterior and Left (axis codes ``"SPL"``): an axial slice ``vol.array[k]`` shown with
``imshow`` is in radiological view (anterior at the top, patient right on the image left).
The ``affine`` maps array indices ``(k, i, j, 1)`` to RAS world millimetres, as nibabel's
affines do, so ``affine @ (k, i, j, 1)`` is the centre of voxel ``[k, i, j]``.

DICOM geometry (PS3.3 C.7.6.2.1.1): with row cosine ``X`` and column cosine ``Y``
(ImageOrientationPatient), pixel spacing ``(dr, dc)`` and position ``P``
(ImagePositionPatient, LPS), pixel ``(r, c)`` lies at ``P + c dc X + r dr Y``; LPS becomes
RAS by negating the first two coordinates.

The code lives in :mod:`.volume`, :mod:`.nifti`, :mod:`.dicom` and
:mod:`.dicom_series`; this module gathers
the public names (``mrct.data.readers.read_nifti`` etc. keep working).
"""

from .dicom import read_dicom
from .dicom_series import read_dicom_series
from .nifti import read_nifti
from .volume import CANONICAL_AXCODES, Volume

__all__ = [
    "CANONICAL_AXCODES",
    "Volume",
    "read_dicom",
    "read_dicom_series",
    "read_nifti",
]
