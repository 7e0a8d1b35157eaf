"""Training under faults (#18 item 5): a run killed with SIGKILL at a random step and resumed
with ``mrct train --resume`` ends with bitwise the weights, optimizer state and loss history of
an uninterrupted run (CPU, same seed); damaged checkpoints are detected by their checksum and
a resume falls back to the previous good one."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mrct.training import CheckpointError, load_checkpoint, save_checkpoint
from mrct.training.checkpoint import CHECKSUM_KEY, previous_path, read_metadata

SRC = Path(__file__).resolve().parents[1] / "src"

CONFIG = """
epochs = 3
batch_size = 2
lr = 1e-3
scheduler = "cosine"
scheduler_interval = "step"
loss = "l1"
loss_scale = "img_scale"
seed = 0
log_every = 1
checkpoint_every = 1
progress = false
[model]
name = "pdunet"
depth = 2
wf = 3
[data]
task = "ct"
source = "ellipses"
sparsity = 16
size = 16
n_ellipses = 24
"""

# runs `mrct train` and prints "step N" after every optimizer step, so the test can kill it
CHILD = textwrap.dedent(
    """
    import sys
    from mrct.training.loop import Trainer
    step = Trainer._optimizer_step
    def traced(self, run):
        step(self, run)
        print(f"step {self.global_step}", flush=True)
    Trainer._optimizer_step = traced
    from mrct.cli import app
    app(sys.argv[1:], prog_name="mrct")
    """
)


def _env():
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    env.update(OMP_WAIT_POLICY="PASSIVE", PYTHONHASHSEED="0")
    return env


def _train(cfg: Path, out: Path, *extra: str) -> None:
    cmd = [sys.executable, "-m", "mrct.cli", "train", str(cfg), "--out", str(out), *extra]
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


def _killed_run(cfg: Path, out: Path, kill_at: int) -> int:
    """Start a run, SIGKILL it once it reports step ``kill_at``; the last step it reported."""
    cmd = [sys.executable, "-c", CHILD, "train", str(cfg), "--out", str(out)]
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True)  # fmt: skip
    last = 0
    try:
        for line in p.stdout:
            if line.startswith("step "):
                last = int(line.split()[1])
                if last >= kill_at:
                    p.send_signal(signal.SIGKILL)
                    break
    finally:
        p.wait(timeout=60)
        p.stdout.close()
    assert p.returncode == -signal.SIGKILL, f"the run ended before step {kill_at} ({last})"
    return last


def _history(out: Path) -> dict:
    h = json.loads((out / "history.json").read_text())
    for rec in h["epochs"]:
        rec.pop("time_s")
    return h


def test_sigkill_at_random_step_then_resume_is_bitwise(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CONFIG)
    _train(cfg, tmp_path / "straight")  # 3 epochs x 12 steps, uninterrupted
    kill_at = random.Random().randint(14, 30)  # inside epoch 2 or 3, after a checkpoint
    _killed_run(cfg, tmp_path / "killed", kill_at)
    assert (tmp_path / "killed" / "last.safetensors").is_file()
    _train(cfg, tmp_path / "killed", "--resume")
    a = load_file(tmp_path / "straight" / "last.safetensors")
    b = load_file(tmp_path / "killed" / "last.safetensors")
    assert a.keys() == b.keys()  # weights, Adam moments, schedule, RNG states
    for k in a:
        assert torch.equal(a[k], b[k]), (k, kill_at)
    assert _history(tmp_path / "straight") == _history(tmp_path / "killed"), kill_at


def _flip_byte(path: Path, offset_from_end: int = 100) -> None:
    raw = bytearray(path.read_bytes())
    raw[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_checkpoint_is_detected(tmp_path, damage):
    model = torch.nn.Linear(8, 4)
    path = save_checkpoint(tmp_path / "ck.safetensors", model, epoch=1)
    assert len(read_metadata(path)[CHECKSUM_KEY]) == 64
    if damage == "flip":
        _flip_byte(path)  # inside the weights: safetensors itself cannot tell
    else:
        path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(CheckpointError, match="ck.safetensors"):
        load_checkpoint(path, torch.nn.Linear(8, 4))


def test_checkpoint_without_checksum_still_loads(tmp_path):
    from safetensors.torch import save_file

    model = torch.nn.Linear(3, 2)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(tmp_path / "old.safetensors"), metadata={"kind": "weights"})  # fmt: skip
    other = torch.nn.Linear(3, 2)
    load_checkpoint(tmp_path / "old.safetensors", other)
    assert torch.equal(other.weight, model.weight)


def test_save_keeps_previous(tmp_path):
    model = torch.nn.Linear(3, 2)
    p = tmp_path / "last.safetensors"
    save_checkpoint(p, model, epoch=1, keep_previous=True)
    assert not previous_path(p).exists()
    save_checkpoint(p, model, epoch=2, keep_previous=True)
    assert read_metadata(previous_path(p))["epoch"] == 1
    assert read_metadata(p)["epoch"] == 2
    assert sorted(x.name for x in tmp_path.iterdir()) == [
        "last.prev.safetensors",
        "last.safetensors",
    ]


def test_resume_falls_back_to_previous_checkpoint(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CONFIG.replace("n_ellipses = 24", "n_ellipses = 8"))
    out = tmp_path / "run"
    _train(cfg, out, "--epochs", "1")
    _train(cfg, out, "--epochs", "2", "--resume")  # last = epoch 2, prev = epoch 1
    assert read_metadata(previous_path(out / "last.safetensors"))["epoch"] == 1
    _flip_byte(out / "last.safetensors")
    cmd = [sys.executable, "-m", "mrct.cli", "train", str(cfg), "--out", str(out), "--resume",
           "--epochs", "3"]  # fmt: skip
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "last.safetensors is corrupted" in r.stderr  # the warning names the file
    assert read_metadata(out / "last.safetensors")["epoch"] == 3
    # resumed at epoch 1: epochs 2 and 3 were trained again; the damaged file was replaced
    # (not kept as .prev), so both files are good
    assert read_metadata(previous_path(out / "last.safetensors"))["epoch"] == 2
    for p in (out / "last.safetensors", previous_path(out / "last.safetensors")):
        load_checkpoint(p)
    # both damaged: a clear error naming the files, exit status 2
    _flip_byte(out / "last.safetensors")
    _flip_byte(previous_path(out / "last.safetensors"))
    r = subprocess.run(cmd[:-1] + ["4"], env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr[-3000:]
    line = r.stderr.strip().splitlines()[-1]
    assert "no usable checkpoint" in line and "last.prev.safetensors" in line
