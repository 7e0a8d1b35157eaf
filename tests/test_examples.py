"""Execute every notebook in ``examples/`` (small size) and check that no cell fails.

The notebooks read ``MRCT_EXAMPLE_SMALL``; with ``1`` each runs in a few seconds. They run in
a ``python3`` Jupyter kernel on this interpreter (``sys.executable``): when the ``python3``
kernelspec found by jupyter_client points elsewhere, a kernelspec for this interpreter is
installed into a temporary prefix and put first on ``JUPYTER_PATH``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
KERNEL = "python3"


def _python3_kernel_is_ours() -> bool:
    """Whether the ``python3`` kernelspec launches ``sys.executable``."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        return False
    exe = spec.argv[0] if spec.argv else ""
    # jupyter_client replaces a bare "python" / "python3" / "python3.X" by sys.executable
    major, minor = sys.version_info[:2]
    bare = {"python", f"python{major}", f"python{major}.{minor}"}
    if exe in bare:
        return True
    # compare without resolving symlinks: a venv's python links to the base interpreter
    return os.path.abspath(exe) == os.path.abspath(sys.executable)


@pytest.fixture(scope="session")
def kernel_env(tmp_path_factory) -> dict[str, str]:
    """Environment overrides under which ``python3`` is a kernel of this interpreter."""
    if _python3_kernel_is_ours():
        return {}
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter_prefix")
    install(prefix=str(prefix), kernel_name=KERNEL)
    path = str(prefix / "share" / "jupyter")
    old = os.environ.get("JUPYTER_PATH")
    return {"JUPYTER_PATH": path + (os.pathsep + old if old else "")}


def _execute(path: Path, monkeypatch, env: dict[str, str]):
    """Run a notebook in a fresh kernel; return the executed notebook and its stream text."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=300,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors, f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    text = "".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and out.get("name") == "stdout"
    )
    return nb, text


def _n_images(nb) -> int:
    return sum(
        "image/png" in out.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )


def test_there_are_examples():
    assert NOTEBOOKS, f"no notebooks in {EXAMPLES}"
    assert (EXAMPLES / "README.md").is_file()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: commit notebooks without outputs"
            assert cell.execution_count is None, f"{path.name}: clear execution counts"
    readme = (EXAMPLES / "README.md").read_text()
    assert path.name in readme, f"{path.name} is not listed in examples/README.md"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch, kernel_env):
    monkeypatch.setenv("MRCT_EXAMPLE_SMALL", "1")
    nb, text = _execute(path, monkeypatch, kernel_env)
    assert _n_images(nb) > 0, f"{path.name} shows no figure"


def test_ct_projection_falls_back_to_phantom(tmp_path, monkeypatch, kernel_env):
    """Without the shared data the CT notebook still runs, on the Shepp-Logan phantom."""
    monkeypatch.setenv("MRCT_EXAMPLE_SMALL", "1")
    monkeypatch.setenv("MRCT_SHARED_DATA", str(tmp_path / "no_shared_data"))
    nb, text = _execute(EXAMPLES / "ct_projection.ipynb", monkeypatch, kernel_env)
    assert "using: modified Shepp-Logan phantom" in text
    assert _n_images(nb) >= 4


def test_mri_radial_falls_back_to_phantom(tmp_path, monkeypatch, kernel_env):
    monkeypatch.setenv("MRCT_EXAMPLE_SMALL", "1")
    monkeypatch.setenv("MRCT_SHARED_DATA", str(tmp_path / "no_shared_data"))
    nb, text = _execute(EXAMPLES / "mri_radial.ipynb", monkeypatch, kernel_env)
    assert "using: modified Shepp-Logan phantom" in text
    assert _n_images(nb) >= 6


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_full_size(path, monkeypatch, kernel_env):
    monkeypatch.setenv("MRCT_EXAMPLE_SMALL", "0")
    _execute(path, monkeypatch, kernel_env)


def test_synthetic_ct_falls_back_to_phantom(tmp_path, monkeypatch, kernel_env):
    """Without the shared data the synthetic-CT notebook runs on the chest phantom."""
    monkeypatch.setenv("MRCT_EXAMPLE_SMALL", "1")
    monkeypatch.setenv("MRCT_SHARED_DATA", str(tmp_path / "no_shared_data"))
    nb, text = _execute(EXAMPLES / "synthetic_ct.ipynb", monkeypatch, kernel_env)
    assert "source: phantom" in text
    assert "same seed, same sCT: True" in text
    assert _n_images(nb) >= 3
