"""benchmarks/gpu.sh, the prepared GPU script, as far as a machine without a GPU can run it."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_script_setup_runs_offline(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, OUT=str(tmp_path / "out"),
               SITE=str(tmp_path / "site"), WHEELS=str(tmp_path / "no-wheels"))  # fmt: skip
    r = subprocess.run(["bash", "benchmarks/gpu.sh", "--setup-only"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    info = (tmp_path / "out" / "info.txt").read_text()
    assert "numba" in info and "torch" in info
    assert "setup only: done" in r.stdout


def test_gpu_script_rejects_unknown_option(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path / "out"), SITE=str(tmp_path / "site"))
    r = subprocess.run(["bash", "benchmarks/gpu.sh", "--bogus"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "unknown option --bogus" in r.stdout


def test_train_gpu_recipe_names_and_budgets(tmp_path):
    """scripts/train_gpu.sh: comma-separated names, NAME:SECONDS budgets, the dehaze and 3D
    lesion recipes and the CT data mix, as the commands it runs (PYTHON=echo)."""
    env = dict(os.environ, PYTHON="echo", OUT=str(tmp_path), DATA="mix", POOL="64",
               CHANNELS="16 32 64", FRAMES="8")  # fmt: skip
    r = subprocess.run(
        ["bash", "scripts/train_gpu.sh", "pdunet-ct-sparse16:90,dehaze,lesion3d", "30"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("scripts/train_pretrained.py pdunet-ct-sparse16 --device cuda")
    assert "--seconds 90 " in lines[0] and "--data mix --pool 64" in lines[0]
    assert lines[1].startswith("scripts/train_dehaze_priors.py --gpu --seconds 30 --frames 8")
    assert lines[2].startswith("scripts/train_lesion.py --recipe gpu --model image --seconds 30")
    assert "--channels 16 32 64" in lines[2]
    r = subprocess.run(["bash", "scripts/train_gpu.sh", "ct16:45"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    lines = r.stdout.strip().splitlines()
    assert [ln.split()[1] for ln in lines] == ["pdunet-ct-sparse16", "lpd-ct-sparse16",
                                               "fbpconvnet-ct-sparse16"]  # fmt: skip
    assert all("--seconds 45 " in ln for ln in lines)


def test_gpu_bench_report_ratios(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_bench as gb
    finally:
        sys.path.pop(0)
    monkeypatch.setattr(gb, "ROWS", [])
    monkeypatch.setattr(gb, "NOTES", [])
    monkeypatch.setitem(gb.BW, "GB/s", 1000.0)
    gb.row(
        "radon",
        "parallel forward",
        "mrct",
        "256^2",
        0.002,
        items=128,
        unit="images/s",
        nbytes=0.8e9,
    )  # 400 GB/s of 1000: 40 %
    gb.row("radon", "parallel forward", "peer", "256^2", 0.004, items=128, unit="images/s")
    meta = {"gpu": "X", "gpu_mem_gb": 1.0, "driver": "1", "cpu_threads": 2, "date": "d",
            "versions": {"mrct": "0"}}  # fmt: skip
    gb.report(tmp_path / "r.md", meta)
    text = (tmp_path / "r.md").read_text()
    assert "| parallel forward | 256^2 | mrct | 2.000 | 64,000 images/s | 40.0 |  |" in text
    assert "| 4.000 | 32,000 images/s |  | 2.00x |" in text
