"""The import rules of docs/architecture.md: each layer imports only the layers above it."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mrct"

# layer -> the mrct parts it must never import (lazily inside a function included)
_APPS = {"jobs", "cli", "demo", "recon_cli", "sr_cli"}  # the commands and their jobs
FORBIDDEN = {
    "kernels": {"physics", "nn", "training", "recon", "synth", "data", "metrics", "jax"} | _APPS,
    "physics": {"nn", "training", "recon", "synth", "data", "jax"} | _APPS,
    # network blocks and the training engine know nothing of operators, data or their users
    "nn": {"physics", "training", "recon", "synth", "data", "jax"} | _APPS,
    "training": {"physics", "nn", "recon", "synth", "data", "jax"} | _APPS,
    "recon": {"synth", "jax"} | _APPS,
    "synth": {"recon", "jax"} | _APPS,
    # data's simulators may use physics forward models; physics must not import data back
    "data": {"nn", "training", "recon", "synth", "jax"} | _APPS,
    "jobs": {"cli", "jax"},
    # the JAX bindings wrap physics (and its kernels); nothing in mrct imports them
    "jax": {"nn", "training", "recon", "synth", "data", "metrics"} | _APPS,
}


def _mrct_imports(path: Path, source: str | None = None) -> set[tuple[str, int]]:
    """``(first part below mrct, line)`` for every import of an mrct module in ``path``."""
    module = path.relative_to(SRC.parent).with_suffix("").parts  # ("mrct", "recon", "x")
    package = module[:-1]  # the package a relative import starts from
    found = set()
    source = path.read_text() if source is None else source
    for node in ast.walk(ast.parse(source, str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                mod = node.module.split(".") if node.module else []
                names = [base + mod + ([] if mod else [a.name]) for a in node.names]
            elif node.module:
                names = [node.module.split(".") + [a.name] for a in node.names]
        for parts in names:
            if len(parts) >= 2 and parts[0] == "mrct":
                found.add((parts[1], node.lineno))
    return found


def _torch_imports(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "torch" for a in node.names
        ):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if node.module.split(".")[0] == "torch":
                lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_the_layers_above(layer):
    bad = []
    for path in sorted((SRC / layer).rglob("*.py")):
        for part, line in sorted(_mrct_imports(path)):
            if part in FORBIDDEN[layer]:
                bad.append(f"{path.relative_to(SRC)}:{line} imports mrct.{part}")
    assert not bad, "layering violations (docs/architecture.md):\n" + "\n".join(bad)


def test_kernels_have_no_torch():
    bad = [f"{p.relative_to(SRC)}:{line}" for layer in ("kernels",)
           for p in sorted((SRC / layer).rglob("*.py")) for line in _torch_imports(p)]  # fmt: skip
    assert not bad, "torch imported in mrct.kernels: " + ", ".join(bad)


def test_the_checker_sees_every_kind_of_import():
    src = """
import mrct.synth.diffusion
from mrct.physics import Radon
from .. import metrics
def f():
    from ..synth import ConditionalDiffusion
    from .training import fit
"""
    found = _mrct_imports(SRC / "recon" / "x.py", src)
    assert found == {("synth", 2), ("physics", 3), ("metrics", 4), ("synth", 6), ("recon", 7)}


def test_numpy_row_stack_alias_for_numba_cuda(monkeypatch):
    """numba-cuda 0.30 overloads np.row_stack, which numpy 2.5 removed: mrct.kernels must
    restore the alias (an autofix once turned it into a no-op, and every CUDA test failed on
    the device). Simulate numpy 2.5 by removing the alias, then re-run the module."""
    import importlib

    import numpy as np

    import mrct.kernels

    monkeypatch.delattr(np, "row_stack", raising=False)
    importlib.reload(mrct.kernels)
    assert getattr(np, "row_stack", None) is np.vstack
