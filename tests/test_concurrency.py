"""Operators from several threads and in DataLoader workers (issue #18, item 4).

The same Radon, NUFFT and DRR objects are called at once from 4 Python threads (100 calls
per family) and must give bitwise the results of serial calls; then, after the kernels have
run in the parent, from 2 fork-ed and 2 spawn-ed DataLoader workers set up as ``mrct train``
sets them up (DistributedSampler, ``_worker_init``): every item delivered, identical.
"""

from __future__ import annotations

import sys
import threading

import numba
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

import mrct  # noqa: F401  (chooses Numba's threading layer before any kernel runs)
from mrct.physics import DRR, NUFFT, ParallelBeam, Radon, radial_trajectory

N_THREADS = 4
CALLS = 100  # per family, spread over the threads


def _operators():
    """Small operators of the three families and an input for each."""
    gen = torch.Generator().manual_seed(0)
    radon = Radon(ParallelBeam(np.linspace(0, np.pi, 24, endpoint=False), n_det=37), (24, 24))
    nufft = NUFFT(radial_trajectory(12, 32), (16, 16))
    vol = torch.rand(12, 14, 10, generator=gen, dtype=torch.float64)
    drr = DRR(vol, spacing=(2.0, 1.5, 1.0), attenuation="none", height=9, width=7,
              pixel_spacing=3.0, sdd=400.0, sid=250.0, dtype=torch.float64)  # fmt: skip
    return {
        "radon": (radon, torch.rand(2, 24, 24, generator=gen)),
        "nufft": (nufft, torch.randn(2, 16, 16, dtype=torch.complex64, generator=gen)),
        "drr": (drr, None),
    }


def _call(family, op, x, i):
    """Item ``i`` of a family: a forward (and an adjoint) that depends on ``i``."""
    if family == "drr":
        return op(view=["ap", "lateral"][i % 2])
    y = op(x * (1 + i % 5))
    return torch.cat([y.flatten(), op.adjoint(y).flatten()])


@pytest.fixture(scope="module")
def operators():
    return _operators()


@pytest.mark.parametrize("family", ["radon", "nufft", "drr"])
def test_threads_match_serial(operators, family):
    op, x = operators[family]
    serial = [_call(family, op, x, i) for i in range(CALLS)]
    results: dict[int, torch.Tensor] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(N_THREADS)

    def work(t):
        try:
            barrier.wait(timeout=30)
            for i in range(t, CALLS, N_THREADS):
                results[i] = _call(family, op, x, i)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hangs"
    assert not errors, errors
    mismatches = [i for i in range(CALLS) if not torch.equal(results[i], serial[i])]
    assert len(results) == CALLS and not mismatches, f"{len(mismatches)} mismatches"


class OperatorDataset(Dataset):
    """Items computed by the three operator families (built lazily in each worker)."""

    def __init__(self, n: int = 12):
        self.n = n
        self._ops = None

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if self._ops is None:
            self._ops = _operators()
        family = ["radon", "nufft", "drr"][i % 3]
        op, x = self._ops[family]
        return i, _call(family, op, x, i).to(torch.complex128)


def _fork_safe_layer() -> bool:
    """Whether the Numba threading layer in use survives fork (tbb, workqueue; not GNU omp)."""
    return numba.threading_layer() != "omp" or sys.platform != "linux"


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers_after_parent_ran(context):
    from mrct.training.batches import _worker_init  # what mrct train's DataLoader uses

    ds = OperatorDataset()
    expected = {i: ds[i][1] for i in range(len(ds))}  # the kernels run in the parent first
    if context == "fork" and not _fork_safe_layer():
        pytest.skip(
            "Numba uses GNU OpenMP here (no TBB runtime found), which kills fork-ed workers: "
            "install tbb (`pip install -e .` does on x86-64) to run this test"
        )
    sampler = DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=0)
    loader = DataLoader(ds, batch_size=None, sampler=sampler, num_workers=2,
                        multiprocessing_context=context, worker_init_fn=_worker_init,
                        timeout=120)  # fmt: skip
    got = dict(loader)
    assert sorted(got) == list(range(len(ds))), "items lost"
    for i, value in got.items():
        assert torch.equal(value, expected[i]), f"item {i} differs from the parent's"


def test_threading_layer_choice():
    """mrct asks Numba for TBB when it loads, and respects a user's NUMBA_THREADING_LAYER."""
    import os

    from mrct import _threading

    layer = numba.threading_layer()
    if os.environ.get("NUMBA_THREADING_LAYER") in (None, "", "tbb") and _threading._load_tbb():
        assert layer == "tbb"
    assert layer in ("tbb", "omp", "workqueue")
