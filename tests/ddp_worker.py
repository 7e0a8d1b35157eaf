"""Worker of the DDP smoke test in test_training.py (not a test module itself).

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python -m torch.distributed.run --standalone \\
        --nproc_per_node=2 tests/ddp_worker.py OUT_DIR

Each process trains the same tiny Learned Primal-Dual on the same data with
:func:`mrct.training.fit` (which joins the process group torchrun describes) and
writes its own final weights to ``OUT_DIR/rank<r>.safetensors`` so the test can compare
ranks; rank 0 also writes the run folder ``OUT_DIR/run``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

N_SAMPLES = 8
BATCH_PER_RANK = 2
EPOCHS = 2


def problem():
    """(dataset, model factory): 8 random 16 x 16 images and their 8-view sinograms."""
    from torch.utils.data import TensorDataset

    from mrct.physics import ParallelBeam, Radon
    from mrct.recon.primal_dual import LearnedPrimalDual

    radon = Radon(ParallelBeam(np.linspace(0, np.pi, 8, endpoint=False), 23, 1.0), (16, 16))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(N_SAMPLES, 16, 16, generator=g)
    ds = TensorDataset(radon(x), x)

    def make_model():
        torch.manual_seed(0)
        return LearnedPrimalDual(radon, n_iter=2, width=8, opnorm=float(radon.opnorm()))

    return ds, make_model


def config(out_dir, batch_size: int):
    from mrct.training import TrainConfig

    return TrainConfig(epochs=EPOCHS, batch_size=batch_size, lr=1e-2, seed=0, progress=False,
                       out_dir=str(out_dir), amp="off", device="cpu")  # fmt: skip


def main(out: Path) -> None:
    from safetensors.torch import save_file

    from mrct.training import fit

    torch.set_num_threads(1)
    ds, make_model = problem()
    res = fit(make_model(), ds, ds, config(out / "run", BATCH_PER_RANK))
    state = {k: v.detach().contiguous() for k, v in res.model.state_dict().items()}
    meta = {
        "rank": str(res.rank),
        "world_size": str(res.world_size),
        "history": json.dumps(res.history["epochs"]),
    }
    save_file(state, str(out / f"rank{res.rank}.safetensors"), metadata=meta)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    # Once in about ten runs on a loaded 2-core machine, a worker was killed by SIGABRT
    # ("terminate called without an active exception": a native thread still joinable when
    # C++ static destructors run) during interpreter teardown, after fit() had returned, the
    # process group had been destroyed and both rank files were written. The test checks what
    # training produced, so leave without running native destructors.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
