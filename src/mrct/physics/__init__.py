"""Operators and geometries for torch users; every linear operator has an exact adjoint."""

from .adjoint_check import adjoint_error, check_adjoint
from .autograd import apply_linear
from .geometry import (
    ConeBeam,
    FanBeam,
    ParallelBeam,
    full_scan_angles,
    short_scan_angles,
    uniform_angles,
)
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
from .radon import Radon

__all__ = [
    "ParallelBeam",
    "FanBeam",
    "ConeBeam",
    "Radon",
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
]
