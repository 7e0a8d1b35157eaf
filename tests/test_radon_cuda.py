"""The numba.cuda kernels against the CPU kernels, under the simulator or on a GPU."""

import numpy as np
import pytest
import torch

from mrct.physics import ConeBeam, FanBeam, ParallelBeam, Radon, check_adjoint

pytestmark = pytest.mark.cuda

GEOS = {
    "parallel": (ParallelBeam(np.linspace(0.2, 3.0, 4), 13, 0.9), (9, 8)),
    "fan-flat": (FanBeam(np.linspace(0, 5.5, 4), 13, 1.2, 25.0, 15.0), (9, 8)),
    "fan-arc": (FanBeam(np.linspace(0, 5.5, 4), 13, 1.2, 25.0, 15.0, "arc"), (9, 8)),
    "cone": (ConeBeam(np.linspace(0, 5.5, 3), (5, 7), 1.1, 25.0, 15.0), (4, 6, 5)),
}


@pytest.mark.parametrize("name", sorted(GEOS))
def test_cuda_matches_cpu_and_is_adjoint(cuda_backend, name):
    device, backend = cuda_backend
    geo, shape = GEOS[name]
    cpu = Radon(geo, shape)
    gpu = Radon(geo, shape, backend=backend)
    x = torch.rand((2, *shape), dtype=torch.float64)
    y = torch.rand((2, *geo.proj_shape), dtype=torch.float64)
    torch.testing.assert_close(gpu(x.to(device)).cpu(), cpu(x), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gpu.adjoint(y.to(device)).cpu(), cpu.adjoint(y), rtol=1e-10,
                               atol=1e-12)  # fmt: skip
    check_adjoint(gpu, (1, *shape), dtype=torch.float64, device=device)
    # float32 path
    torch.testing.assert_close(gpu(x.float().to(device)).cpu(), cpu(x.float()), rtol=1e-5,
                               atol=1e-5)  # fmt: skip


@pytest.mark.parametrize("name", ["parallel", "fan-flat", "fan-arc"])
def test_cuda_fbp_matches_cpu(cuda_backend, name):
    device, backend = cuda_backend
    geo, shape = GEOS[name]
    geo = geo.with_angles(np.linspace(0, 2 * np.pi, 6, endpoint=False))
    y = torch.rand((1, *geo.proj_shape), dtype=torch.float64)
    ref = Radon(geo, shape).fbp(y)
    out = Radon(geo, shape, backend=backend).fbp(y.to(device)).cpu()
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)


def test_cuda_fdk_matches_cpu(cuda_backend):
    device, backend = cuda_backend
    geo, shape = GEOS["cone"]
    geo = geo.with_angles(np.linspace(0, 2 * np.pi, 4, endpoint=False))
    y = torch.rand((1, *geo.proj_shape), dtype=torch.float64)
    ref = Radon(geo, shape).fbp(y)
    out = Radon(geo, shape, backend=backend).fbp(y.to(device)).cpu()
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)


def test_cuda_autograd(cuda_backend):
    device, backend = cuda_backend
    geo = ParallelBeam(np.array([0.3, 1.2]), 5, 1.0)
    A = Radon(geo, (3, 4), backend=backend)
    x = torch.rand((3, 4), dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(A, (x,))


@pytest.mark.parametrize("name", ["parallel", "fan-flat", "fan-arc"])
def test_cuda_fbp_transpose_matches_cpu(cuda_backend, name):
    device, backend = cuda_backend
    geo, shape = GEOS[name]
    geo = geo.with_angles(np.linspace(0, 2 * np.pi, 6, endpoint=False))
    x = torch.rand((1, *shape), dtype=torch.float64)

    def transpose(A, dev):
        y = torch.zeros((1, *geo.proj_shape), dtype=torch.float64, device=dev, requires_grad=True)
        (g,) = torch.autograd.grad(A.fbp(y), y, grad_outputs=x.to(dev))
        return g.cpu()

    ref = transpose(Radon(geo, shape), "cpu")
    out = transpose(Radon(geo, shape, backend=backend), device)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)


GATHER_GEOS = {
    "parallel-octants": ParallelBeam(np.arange(16) * np.pi / 8, 17, 0.8),
    "fan-wide-flat": FanBeam(np.linspace(0, 6.0, 9), 21, 1.5, 12.0, 10.0),
    "fan-wide-arc": FanBeam(np.linspace(0.3, 6.0, 9), 21, 1.5, 12.0, 10.0, "arc"),
}


@pytest.mark.parametrize("name", sorted(GATHER_GEOS))
def test_cuda_gather_adjoint_matches_cpu(cuda_backend, name):
    # the pixel-driven CUDA adjoint (no atomics) against the CPU line passes, every ray
    # orientation and fans wide enough to mix x- and y-major rays in one view
    device, backend = cuda_backend
    geo = GATHER_GEOS[name]
    cpu = Radon(geo, (10, 11), pixel_size=0.9)
    gpu = Radon(geo, (10, 11), pixel_size=0.9, backend=backend)
    y = torch.rand((5, *geo.proj_shape), dtype=torch.float64)  # 5: a partial image group
    torch.testing.assert_close(gpu.adjoint(y.to(device)).cpu(), cpu.adjoint(y), rtol=1e-10,
                               atol=1e-12)  # fmt: skip
    torch.testing.assert_close(gpu.adjoint(y.float().to(device)).cpu(), cpu.adjoint(y.float()),
                               rtol=1e-4, atol=1e-4)  # fmt: skip
    check_adjoint(gpu, (1, 10, 11), dtype=torch.float32, device=device)
