"""No pickle on any load path (issue #18, item 9).

Malicious files whose unpickling would create a marker file (an object ``.npy``/``.npz``, a
``torch.save`` pickle with a ``__reduce__`` payload, also under a ``.safetensors`` name) are
given to every loader mrct has; none may run the payload. A scan of the sources checks that
no load call can unpickle.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mrct import MrctError
from mrct.errors import UnsafeFileError
from mrct.io import load_array

SRC = Path(__file__).resolve().parents[1] / "src" / "mrct"


class Payload:
    """Unpickling this creates ``marker`` (it calls ``open(marker, "w")``)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / "PWNED"
    files = {}
    np.save(tmp_path / "obj.npy", np.array([Payload(marker), 1], dtype=object), allow_pickle=True)
    files["npy"] = tmp_path / "obj.npy"
    np.savez(tmp_path / "obj.npz", x=np.array([Payload(marker)], dtype=object))
    files["npz"] = tmp_path / "obj.npz"
    torch.save({"weight": torch.zeros(2), "x": Payload(marker)}, tmp_path / "model.pt")
    files["pt"] = tmp_path / "model.pt"
    files["safetensors"] = tmp_path / "model.safetensors"
    files["safetensors"].write_bytes(files["pt"].read_bytes())
    assert not marker.exists()
    return marker, files


def test_payload_is_live(evil, tmp_path):
    """The fixture's files do run their payload when unpickled (so the tests mean something)."""
    marker, files = evil
    torch.load(files["pt"], weights_only=False)
    assert marker.exists()


def test_load_array_refuses_objects(evil):
    marker, files = evil
    for kind in ("npy", "npz"):
        with pytest.raises(UnsafeFileError, match=f"{files[kind].name}.*Python objects"):
            load_array(files[kind])
    with pytest.raises(MrctError):
        load_array(files["pt"])  # a zip archive without .npy members
    assert not marker.exists()


def test_recon_cli_reader(evil):
    from mrct.recon_cli import _read_array

    marker, files = evil
    for kind in ("npy", "npz"):
        with pytest.raises(ValueError):
            _read_array(files[kind])
    assert not marker.exists()


def _checkpoint_loaders():
    from mrct.recon import checkpoint as ck
    from mrct.recon.sr_inference import load_sr_model

    model = torch.nn.Linear(2, 2)
    loaders = {
        "read_metadata": ck.read_metadata,
        "load_checkpoint": lambda p: ck.load_checkpoint(p, model),
        "load_weights": lambda p: ck.load_weights(p, model),
        "build_model": lambda p: ck.build_model(torch.nn.Linear, p),
        "load_sr_model": load_sr_model,
    }
    try:
        from mrct.recon.pretrained import list_pretrained, load_model_file

        names = list_pretrained()
        if names:
            loaders["pretrained.load_model_file"] = lambda p: load_model_file(p, names[0])
    except ImportError:  # pragma: no cover
        pass
    try:
        from mrct.synth import ConditionalDiffusion

        loaders["ConditionalDiffusion.load"] = ConditionalDiffusion.load
    except ImportError:  # pragma: no cover - synth's optional dependencies
        pass
    return loaders


@pytest.mark.parametrize("kind", ["pt", "safetensors"])
def test_checkpoint_loaders_never_unpickle(evil, kind):
    marker, files = evil
    failures = {}
    for name, load in _checkpoint_loaders().items():
        try:
            load(files[kind])
        except Exception as e:  # any refusal is fine; the payload must not run
            failures[name] = type(e).__name__
        assert not marker.exists(), f"{name} unpickled {files[kind].name}"
    assert set(failures) == set(_checkpoint_loaders()), "a loader accepted a pickle"


# a load call that can unpickle, unless the arguments say otherwise
_RISKY = {
    r"\bpickle\.loads?\(": None,
    r"\bjoblib\.load\(": None,
    r"\btorch\.load\(": r"weights_only\s*=\s*True",
    r"\bnp\.load\(": r"allow_pickle\s*=\s*False",
    r"\bnumpy\.load\(": r"allow_pickle\s*=\s*False",
}


def test_no_pickle_in_sources():
    offences = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        for pattern, safe in _RISKY.items():
            for m in re.finditer(pattern, text):
                call = text[m.start() : m.start() + 300]
                call = call[: call.find(")\n") + 1 or None]
                if safe is None or not re.search(safe, call):
                    line = text.count("\n", 0, m.start()) + 1
                    offences.append(f"{path.relative_to(SRC)}:{line}: {call.splitlines()[0]}")
    assert not offences, "load calls that can unpickle:\n" + "\n".join(offences)
