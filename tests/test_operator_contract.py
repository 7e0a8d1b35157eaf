"""The operator contract of docs/conventions.md ("Operators under bad input", issue #18 item 3):
every public operator given the wrong shape, dtype, device, a strided view, NaN/Inf, an empty
batch or a numpy array either works (views: the same result as a contiguous copy) or raises an
``mrct.MrctError`` naming what it expected and what it got."""

import warnings

import numpy as np
import pytest
import torch

from mrct import MrctError
from mrct.errors import DTypeError, ShapeError
from mrct.physics import (
    DRR,
    NUFFT,
    CartesianMRI,
    ConeBeam,
    FanBeam,
    Gradient,
    ParallelBeam,
    Radon,
    SenseNUFFT,
    radial_trajectory,
)

NAMES = ["radon-parallel", "radon-fan", "radon-cone", "cartesian", "sense", "nufft",
         "sense-nufft", "gradient", "drr"]  # fmt: skip
# operators whose kernels accept float32/float64 only (Gradient and the FFT-based MRI
# operators are torch arithmetic; see the table in docs/conventions.md)
KERNEL_REAL = {"radon-parallel", "radon-fan", "radon-cone", "drr"}
COMPLEX = {"cartesian", "sense", "nufft", "sense-nufft"}


def _op(name):
    """(operator, image shape); images are complex for the MRI operators."""
    traj = radial_trajectory(4, 8)
    maps = torch.ones(2, 8, 8, dtype=torch.complex64)
    if name == "radon-parallel":
        geo = ParallelBeam(np.linspace(0, np.pi, 8, endpoint=False), 13, 1.0)
        return Radon(geo, (9, 9)), (9, 9)
    if name == "radon-fan":
        return Radon(FanBeam(np.linspace(0, 6.0, 8), 13, 1.2, 25.0, 15.0), (9, 9)), (9, 9)
    if name == "radon-cone":
        geo = ConeBeam(np.linspace(0, 6.0, 6), (5, 7), 1.5, 30.0, 15.0)
        return Radon(geo, (4, 6, 6)), (4, 6, 6)
    if name == "cartesian":
        return CartesianMRI(torch.ones(8, 8)), (8, 8)
    if name == "sense":
        return CartesianMRI(torch.ones(8, 8), maps), (8, 8)
    if name == "nufft":
        return NUFFT(traj, (8, 8)), (8, 8)
    if name == "sense-nufft":
        return SenseNUFFT(NUFFT(traj, (8, 8)), maps), (8, 8)
    if name == "gradient":
        return Gradient((8, 8)), (8, 8)
    drr = DRR(torch.rand(6, 7, 8), spacing=(1.0, 1.0, 1.0), height=6, width=5,
              pixel_spacing=2.0, sdd=50.0, sid=30.0)  # fmt: skip
    return drr.projector(view="ap"), (6, 7, 8)


def _setup(name):
    op, ish = _op(name)
    dt = torch.complex64 if name in COMPLEX else torch.float32
    g = torch.Generator().manual_seed(0)
    x = torch.randn((3, *ish), dtype=dt, generator=g)
    osh = tuple(op(x).shape[1:])
    y = torch.randn((3, *osh), dtype=dt, generator=g)
    return op, ish, osh, dt, x, y


def _grown(t):
    """A tensor one element longer along its last axis."""
    return torch.zeros((*t.shape[:-1], t.shape[-1] + 1), dtype=t.dtype)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_shape_names_the_expected_shape(name):
    op, ish, osh, dt, x, y = _setup(name)
    with pytest.raises(ShapeError, match=r"shape.*\(\.\.\., .*got"):
        op(_grown(x))
    with pytest.raises(ShapeError, match=r"shape.*got"):
        op.adjoint(_grown(y))
    with pytest.raises(ShapeError, match="got"):
        op(torch.zeros(ish[-1:], dtype=dt))  # too few dimensions


@pytest.mark.parametrize("name", NAMES)
def test_unsupported_dtypes_are_dtype_errors(name):
    op, ish, osh, dt, x, y = _setup(name)
    with pytest.raises(DTypeError, match="got torch.int64"):
        op(torch.ones((2, *ish), dtype=torch.int64))
    if name in KERNEL_REAL:
        with pytest.raises(DTypeError, match="float32 or float64.*got torch.float16"):
            op(x.half())
    if name in COMPLEX:
        with pytest.raises(DTypeError, match="complex64 or complex128.*got torch.complex32"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "ComplexHalf support is experimental"
                op(x.to(torch.complex32))


@pytest.mark.parametrize("name", NAMES)
def test_double_precision_gives_the_same_result(name):
    op, ish, osh, dt, x, y = _setup(name)
    d = torch.complex128 if dt.is_complex else torch.float64
    ref = op(x)
    out = op(x.to(d))
    assert out.dtype == d
    tol = 1e-5 * float(ref.abs().max())
    torch.testing.assert_close(out.to(ref.dtype), ref, rtol=1e-4, atol=tol)


@pytest.mark.parametrize("name", NAMES)
def test_strided_views_give_the_contiguous_result(name):
    op, ish, osh, dt, x, y = _setup(name)
    big = torch.zeros((*x.shape[:-1], 2 * x.shape[-1]), dtype=dt)
    big[..., ::2] = x
    assert not big[..., ::2].is_contiguous()
    torch.testing.assert_close(op(big[..., ::2]), op(x))
    bigy = torch.zeros((*y.shape[:-1], 2 * y.shape[-1]), dtype=dt)
    bigy[..., ::2] = y
    torch.testing.assert_close(op.adjoint(bigy[..., ::2]), op.adjoint(y))
    # a permuted batch (non-contiguous in the batch dimensions)
    xs = torch.stack([x, x]).transpose(0, 1)
    assert not xs.is_contiguous()
    torch.testing.assert_close(op(xs)[:, 1], op(x))


@pytest.mark.parametrize("name", NAMES)
def test_nan_and_inf(name):
    op, ish, osh, dt, x, y = _setup(name)
    xn, yi = x.clone(), y.clone()
    xn.view(-1)[5] = float("nan")
    yi.view(-1)[7] = float("inf")
    if name == "gradient":  # torch arithmetic: NaN/Inf propagate (documented)
        assert torch.isnan(op(xn)).any() and (~torch.isfinite(op.adjoint(yi))).any()
        return
    with pytest.raises(MrctError, match="NaN or Inf"):
        op(xn)
    with pytest.raises(MrctError, match="NaN or Inf"):
        op.adjoint(yi)


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch_gives_empty_output(name):
    op, ish, osh, dt, x, y = _setup(name)
    assert tuple(op(torch.zeros((0, *ish), dtype=dt)).shape) == (0, *osh)
    assert tuple(op.adjoint(torch.zeros((0, *osh), dtype=dt)).shape) == (0, *ish)
    assert tuple(op(torch.zeros((2, 0, *ish), dtype=dt)).shape) == (2, 0, *osh)


@pytest.mark.parametrize("name", NAMES)
def test_numpy_input_and_other_devices_are_refused_clearly(name):
    op, ish, osh, dt, x, y = _setup(name)
    with pytest.raises(TypeError, match="torch.Tensor.*ndarray"):
        op(x.numpy())
    if name == "gradient":  # torch arithmetic: works on any device torch supports
        assert op(torch.zeros(ish, dtype=dt, device="meta")).device.type == "meta"
        return
    with pytest.raises(MrctError, match="meta"):
        op(torch.zeros(ish, dtype=dt, device="meta"))


@pytest.mark.parametrize(
    "geo, shape",
    [
        (FanBeam(np.linspace(0, 6.0, 8), 41, 1.0, 10.0, 10.0), (64, 64)),  # source at 10 mm
        (ConeBeam(np.linspace(0, 6.0, 8), (9, 9), 1.0, 5.0, 5.0), (16, 16, 16)),
    ],
)
def test_a_source_inside_the_image_is_refused(geo, shape):
    """Fan and cone beam: a source inside the image's circumscribed circle would integrate
    behind the source; the error names the distance and the image radius."""
    with pytest.raises(MrctError, match="source_distance.*radius"):
        Radon(geo, shape)


def test_a_detector_that_misses_part_of_the_image_warns():
    """Truncated projections are a valid operator (interior tomography), but rarely meant."""
    geo = ParallelBeam(np.linspace(0, np.pi, 8, endpoint=False), 5, 1.0)
    with pytest.warns(UserWarning, match="truncated"):
        A = Radon(geo, (64, 64))
    assert tuple(A(torch.rand(64, 64)).shape) == (8, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a detector that covers the image: no warning
        Radon(ParallelBeam(np.linspace(0, np.pi, 8, endpoint=False), 91, 1.0), (64, 64))
