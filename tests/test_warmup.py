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


def test_cached_kernels_have_distinct_cache_names():
    """Numba's disk cache files a function under its module and qualified name: two cached
    dispatchers with one name (closures of one builder) evict each other's entries, so every
    new process compiles them again (it cost the NUFFT ~0.9 s of warm start)."""
    import importlib
    import pkgutil

    from numba.core.caching import NullCache

    import mrct.kernels as kernels

    seen: dict = {}
    n_cached = 0
    for info in pkgutil.iter_modules(kernels.__path__):
        if "cuda" in info.name:
            continue
        mod = importlib.import_module(f"mrct.kernels.{info.name}")
        for name, obj in vars(mod).items():
            cache = getattr(obj, "_cache", None)
            if cache is None or isinstance(cache, NullCache):
                continue
            n_cached += 1
            key = (obj.py_func.__module__, obj.py_func.__qualname__)
            other = seen.setdefault(key, obj)
            assert other is obj, (
                f"{info.name}.{name} shares its cache name {key} with another kernel"
            )
    assert n_cached >= 20
