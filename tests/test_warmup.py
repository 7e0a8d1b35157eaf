"""``mrct warmup`` (#18 item 7): which kernels it compiles, and the command around it."""

from __future__ import annotations

from typer.testing import CliRunner

import mrct.warmup
from mrct.cli import app


def test_tasks_cover_every_kernel_family():
    names = [n for n, _ in mrct.warmup.warmup_tasks()]
    for geo in ("parallel", "fan", "fan-arc", "cone"):
        for dt in ("float32", "float64"):
            assert f"Radon {geo} {dt}" in names
    for eps in ("1e-06", "0.0001", "0.01"):
        for dt in ("complex64", "complex128"):
            assert f"NUFFT eps {eps} {dt}" in names
    assert {"DRR siddon", "DRR trilinear"} <= set(names)


def test_warmup_command_runs_and_reports_failures(monkeypatch):
    tasks = mrct.warmup.warmup_tasks()
    parallel = [t for t in tasks if t[0] == "Radon parallel float32"]

    def broken():
        raise RuntimeError("no compiler")

    monkeypatch.setattr(mrct.warmup, "warmup_tasks", lambda: parallel + [("broken", broken)])
    r = CliRunner().invoke(app, ["warmup", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "broken: failed (RuntimeError: no compiler)" in r.output
    assert "1 kernel sets ready" in r.output
