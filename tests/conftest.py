"""Shared fixtures: the CUDA back end under test (real GPU or Numba's simulator)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see mrct/__init__.py; before torch loads

import numba  # noqa: E402
import pytest
import torch


@pytest.fixture
def cuda_backend():
    """(device, backend) for CUDA-kernel tests.

    On a machine with a GPU (and the simulator off) tensors live on ``cuda``; under
    ``NUMBA_ENABLE_CUDASIM=1`` (``make test`` sets it) the CUDA kernels run in the simulator
    on CPU tensors. Without either the CUDA kernels cannot run at all.
    """
    if numba.config.ENABLE_CUDASIM:
        return torch.device("cpu"), "cuda"
    if torch.cuda.is_available():
        return torch.device("cuda"), "auto"
    pytest.skip("CUDA kernels need a GPU or NUMBA_ENABLE_CUDASIM=1 (make test sets it)")
