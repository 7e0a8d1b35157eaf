"""Operators on empty batches and unsupported complex dtypes (issue #18, item 3, first part)."""

import numpy as np
import pytest
import torch

from mrct import MrctError
from mrct.physics import NUFFT, CartesianMRI, FanBeam, ParallelBeam, Radon, radial_trajectory


def _ops():
    m = torch.ones(8, 8)
    maps = torch.ones(2, 8, 8, dtype=torch.complex64)
    return {
        "cartesian": (CartesianMRI(m), (8, 8), (8, 8)),
        "sense": (CartesianMRI(m, maps), (8, 8), (2, 8, 8)),
        "nufft": (NUFFT(radial_trajectory(4, 8), (8, 8)), (8, 8), (4, 8)),
    }


@pytest.mark.parametrize("name", ["cartesian", "sense", "nufft"])
def test_empty_batch_gives_empty_output(name):
    op, ishape, oshape = _ops()[name]
    y = op(torch.zeros((0, *ishape), dtype=torch.complex64))
    assert tuple(y.shape) == (0, *oshape) and y.dtype == torch.complex64
    x = op.adjoint(torch.zeros((0, *oshape), dtype=torch.complex64))
    assert tuple(x.shape) == (0, *ishape)


@pytest.mark.parametrize("geo", [ParallelBeam(np.linspace(0, np.pi, 8, endpoint=False), 13, 1.0),
                                 FanBeam(np.linspace(0, 6.0, 8), 13, 1.2, 25.0, 15.0)])  # fmt: skip
def test_radon_empty_batch(geo):
    A = Radon(geo, (9, 9))
    assert tuple(A(torch.zeros(0, 9, 9)).shape) == (0, *geo.proj_shape)
    assert tuple(A.adjoint(torch.zeros(0, *geo.proj_shape)).shape) == (0, 9, 9)
    assert tuple(A.fbp(torch.zeros(0, *geo.proj_shape)).shape) == (0, 9, 9)


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
@pytest.mark.parametrize("name", ["cartesian", "sense", "nufft"])
def test_complex32_is_a_clear_dtype_error(name):
    op, ishape, _ = _ops()[name]
    with pytest.raises(MrctError, match="complex64 or complex128"):
        op(torch.zeros(ishape, dtype=torch.complex32))
    with pytest.raises(TypeError):  # a DTypeError is also a TypeError
        op(torch.zeros(ishape, dtype=torch.complex32))
