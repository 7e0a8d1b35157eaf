"""The ultrasound numba.cuda kernels against the CPU kernels (simulator or GPU)."""

import numpy as np
import pytest
import torch

from mrct.physics import check_adjoint
from mrct.physics.ultrasound import (
    FocusedWave,
    LinearArray,
    LinearGrid,
    PlaneWave,
    PolarGrid,
    Scatterers,
    das,
    simulate_rf,
)

pytestmark = pytest.mark.cuda

P = LinearArray(n_elements=8, pitch=0.3, center_frequency=5.0, bandwidth=0.7)


def test_cuda_simulate_rf_matches_cpu(cuda_backend):
    device, backend = cuda_backend
    rng = np.random.default_rng(0)
    sc = Scatterers(rng.uniform(-1, 1, 5), rng.uniform(3, 6, 5), rng.standard_normal(5))
    tx = FocusedWave((0.0, 5.0))
    ref = simulate_rf(P, sc, tx, attenuation=0.5, dtype=torch.float64)
    out = simulate_rf(P, sc, tx, attenuation=0.5, dtype=torch.float64, device=device,
                      backend=backend)  # fmt: skip
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-9, atol=1e-12)


GRIDS = [
    LinearGrid(np.linspace(-1, 1, 4), np.linspace(3, 5, 5)),
    PolarGrid(np.linspace(-0.3, 0.3, 3), np.linspace(3, 5, 4)),
]


@pytest.mark.parametrize("grid", GRIDS)
def test_cuda_das_matches_cpu_and_is_adjoint(cuda_backend, grid):
    device, backend = cuda_backend
    cpu = das(P, grid, PlaneWave(0.1), n_samples=60)
    gpu = das(P, grid, PlaneWave(0.1), n_samples=60, backend=backend)
    rf = torch.randn(2, 8, 60, dtype=torch.float64)
    img = torch.randn(2, *grid.shape, dtype=torch.float64)
    torch.testing.assert_close(gpu(rf.to(device)).cpu(), cpu(rf), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gpu.adjoint(img.to(device)).cpu(), cpu.adjoint(img), rtol=1e-10,
                               atol=1e-12)  # fmt: skip
    check_adjoint(gpu, dtype=torch.float64, device=device)
