"""Operators and geometries for torch users; every linear operator has an exact adjoint."""

from .adjoint_check import adjoint_error, check_adjoint
from .artefacts import add_complex_noise, cartesian_rigid_motion, radial_rigid_motion, rotate_image
from .attenuation import ATTENUATION_CONVENTIONS, hu_to_mu
from .autograd import apply_linear
from .cartesian import CartesianMRI, rss
from .coils import birdcage_maps, espirit_maps
from .drr import DRR, DRRProjector, labels_to_masks, window
from .fft import FFT2c, FFT3c, fft2c, fft3c, fftnc, ifft2c, ifft3c, ifftnc
from .geometry import (
    ConeBeam,
    FanBeam,
    ParallelBeam,
    full_scan_angles,
    short_scan_angles,
    uniform_angles,
)
from .gradient import Gradient
from .kspace_truncation import PAPER_FRACTIONS, KSpaceTruncation, kept_lines, upsample_lowres
from .nufft import NUFFT, ToeplitzNormal, nufft_kernel_params
from .operator import (
    AdjointOperator,
    ComposedOperator,
    Diagonal,
    Identity,
    LinearOperator,
    MatrixOperator,
    NormalOperator,
    ScaledOperator,
    SumOperator,
)
from .pose import Pose, carm_pose, rotation_matrix, view_pose
from .radial_sinogram import radial_to_sinogram, sinogram_to_radial
from .radon import Radon
from .sense_nufft import SenseNUFFT
from .traj_convert import (
    traj_from_bart,
    traj_from_sigpy,
    traj_from_torchkbnufft,
    traj_to_bart,
    traj_to_sigpy,
    traj_to_torchkbnufft,
)
from .trajectories import (
    GOLDEN_ANGLE,
    pipe_menon_density,
    radial_angles,
    radial_density,
    radial_trajectory,
    spiral_trajectory,
)

__all__ = [
    "add_complex_noise",
    "cartesian_rigid_motion",
    "radial_rigid_motion",
    "rotate_image",
    "CartesianMRI",
    "rss",
    "birdcage_maps",
    "espirit_maps",
    "FFT2c",
    "FFT3c",
    "fft2c",
    "fft3c",
    "fftnc",
    "ifft2c",
    "ifft3c",
    "ifftnc",
    "NUFFT",
    "SenseNUFFT",
    "ToeplitzNormal",
    "nufft_kernel_params",
    "radial_to_sinogram",
    "traj_from_bart",
    "traj_from_sigpy",
    "traj_from_torchkbnufft",
    "traj_to_bart",
    "traj_to_sigpy",
    "traj_to_torchkbnufft",
    "sinogram_to_radial",
    "GOLDEN_ANGLE",
    "pipe_menon_density",
    "radial_angles",
    "radial_density",
    "radial_trajectory",
    "spiral_trajectory",
    "ParallelBeam",
    "FanBeam",
    "ConeBeam",
    "Radon",
    "Gradient",
    "KSpaceTruncation",
    "PAPER_FRACTIONS",
    "kept_lines",
    "upsample_lowres",
    "uniform_angles",
    "full_scan_angles",
    "short_scan_angles",
    "LinearOperator",
    "AdjointOperator",
    "ComposedOperator",
    "Diagonal",
    "Identity",
    "MatrixOperator",
    "NormalOperator",
    "ScaledOperator",
    "SumOperator",
    "adjoint_error",
    "apply_linear",
    "check_adjoint",
    "ATTENUATION_CONVENTIONS",
    "hu_to_mu",
    "DRR",
    "DRRProjector",
    "labels_to_masks",
    "window",
    "Pose",
    "carm_pose",
    "rotation_matrix",
    "view_pose",
]
