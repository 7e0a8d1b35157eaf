"""The numba.cuda DRR kernels against the CPU kernels, under the simulator or on a GPU."""

import numpy as np
import pytest
import torch

from mrct.physics import check_adjoint
from mrct.physics.drr import DRR
from mrct.physics.pose import carm_pose

pytestmark = pytest.mark.cuda


def small(renderer, backend):
    return DRR(np.zeros((3, 4, 5)), spacing=(1.4, 1.0, 1.2), attenuation="none", height=3,
               width=4, pixel_spacing=1.5, sdd=40.0, sid=25.0, renderer=renderer, step=0.5,
               backend=backend, dtype=torch.float64)  # fmt: skip


@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
def test_cuda_matches_cpu_and_is_adjoint(cuda_backend, renderer):
    device, backend = cuda_backend
    pose = carm_pose([15.0, -70.0], [10.0, 30.0], sid=25.0)
    cpu = small(renderer, "cpu").projector(pose)
    gpu = small(renderer, backend).projector(pose)
    x = torch.rand((3, 4, 5), dtype=torch.float64)
    y = torch.rand(cpu.out_shape, dtype=torch.float64)
    assert float(cpu(x).abs().max()) > 0
    torch.testing.assert_close(gpu(x.to(device)).cpu(), cpu(x), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gpu.adjoint(y.to(device)).cpu(), cpu.adjoint(y), rtol=1e-10,
                               atol=1e-12)  # fmt: skip
    check_adjoint(gpu, (3, 4, 5), dtype=torch.float64, device=device)


def test_cuda_label_thickness(cuda_backend):
    device, backend = cuda_backend
    lab = np.random.default_rng(0).integers(0, 3, size=(3, 4, 5))
    pose = carm_pose([15.0], [10.0], sid=25.0)
    ref, names = small("siddon", "cpu").label_thickness(lab, pose=pose)
    out, names_gpu = small("siddon", backend).label_thickness(lab, pose=pose)
    assert names == names_gpu == [1, 2]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
