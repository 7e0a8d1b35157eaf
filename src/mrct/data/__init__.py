"""Phantoms, analytic projections, readers and the shared real data sets.

* :mod:`mrct.data.phantoms`: Shepp-Logan and random ellipse/ellipsoid phantoms and their
  rasterisation on the grids of ``docs/conventions.md``;
* :mod:`mrct.data.line_integrals`: exact line integrals and parallel / fan / cone-beam
  projections of those phantoms (the reference for the projector tests);
* :mod:`mrct.data.readers`: NIfTI and DICOM readers returning :class:`Volume` objects in the
  canonical SPL orientation;
* :mod:`mrct.data.shared`: loaders for the chest CT and MNI152 brain of ``../shared/data``.
* :mod:`mrct.data.dynamic`: a dynamic-MRI simulator (respiration-like motion, low-res series).
* :mod:`mrct.data.synthetic_anatomy` and :mod:`mrct.data.head_ct`: training images for
  learned CT reconstruction (the chest CT in three orientations and fields of view, synthetic
  anatomy from its organ labels, augmentation) and :func:`synthetic_head_ct`.
* :mod:`mrct.data.lesions`: simulated lung nodules (solid, part-solid, ground-glass) inserted
  into a CT's lungs, and a reader for user lesion masks (imported on use: it needs scipy).
"""

from . import phantoms
from .dynamic import DynamicSeries, breathing_signal, motion_field, simulate_dynamic_series
from .head_ct import HEAD_HU, synthetic_head_ct
from .line_integrals import (
    cone_beam_projections,
    ellipse_line_integrals,
    ellipsoid_line_integrals,
    fan_beam_sinogram,
    parallel_beam_sinogram,
)
from .masks import EquispacedMask, RandomMask, poisson_disc_mask
from .phantoms import *  # noqa: F403 (re-exports phantoms.__all__)
from .readers import CANONICAL_AXCODES, Volume, read_dicom, read_dicom_series, read_nifti
from .shared import (
    SharedDataMissing,
    chest_ct_slice,
    load_brain_mri,
    load_chest_ct,
    require_shared_data,
    shared_data_dir,
)

# fastMRI files come with a torch Dataset: imported on first use (module __getattr__)
_FASTMRI = ("FastMRIFile", "FastMRIDataset", "FastMRISample", "parse_ismrmrd_header",
            "read_fastmri", "write_fastmri")  # fmt: skip

__all__ = [
    "DynamicSeries",
    "HEAD_HU",
    "synthetic_head_ct",
    "breathing_signal",
    "motion_field",
    "simulate_dynamic_series",
    "EquispacedMask",
    "RandomMask",
    "poisson_disc_mask",
    *_FASTMRI,
    "CANONICAL_AXCODES",
    "SharedDataMissing",
    "Volume",
    "chest_ct_slice",
    "cone_beam_projections",
    "ellipse_line_integrals",
    "ellipsoid_line_integrals",
    "fan_beam_sinogram",
    "load_brain_mri",
    "load_chest_ct",
    "parallel_beam_sinogram",
    "read_dicom",
    "read_dicom_series",
    "read_nifti",
    "require_shared_data",
    "shared_data_dir",
    *phantoms.__all__,
]


def __getattr__(name):
    # fastMRI files come with a torch Dataset: import torch only when they are asked for
    if name in _FASTMRI:
        from . import fastmri

        return getattr(fastmri, name)
    raise AttributeError(f"module 'mrct.data' has no attribute {name!r}")
