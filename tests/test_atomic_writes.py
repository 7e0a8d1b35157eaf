"""Every file mrct writes appears atomically or not at all (#18 item 5): a static scan of
``src/mrct`` for file writes outside a ``with atomic_path(...)`` block (``mrct.io`` holds the
writers: ``atomic_path``, ``save_nifti``, ``save_figure``, ``save_image_png``, ``write_text``;
checkpoints go through ``atomic_path`` too)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "mrct"
# attribute calls that write a file given its path (or an open handle of one)
WRITERS = {"save", "savez", "savez_compressed", "savefig", "write_text", "write_bytes",
           "save_file", "imsave", "to_filename", "dump", "tofile", "savetxt"}  # fmt: skip


def _writes(tree: ast.AST):
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
        if name in WRITERS and isinstance(f, ast.Attribute):
            if name == "save" and not (isinstance(f.value, ast.Name) and f.value.id in
                                       ("np", "numpy", "torch", "nib")):  # fmt: skip
                continue  # cfg.save(...), model.save(...): mrct's own atomic writers
            if name == "dump" and not (isinstance(f.value, ast.Name) and f.value.id == "json"):
                continue
            yield node
        elif name in ("open", "File"):
            modes = [a for a in node.args[1:2]] + [
                k.value for k in node.keywords if k.arg == "mode"
            ]
            if any(isinstance(m, ast.Constant) and isinstance(m.value, str)
                   and set(m.value) & set("wax+") for m in modes):  # fmt: skip
                yield node


def _inside_atomic(node: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.With):
            for item in node.items:
                c = item.context_expr
                if isinstance(c, ast.Call) and getattr(
                    c.func, "id", getattr(c.func, "attr", "")
                ) in ("atomic_path",):
                    return True
    return False


def test_every_write_is_atomic():
    bad, seen = [], 0
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "io.py" and path.parent == SRC:
            continue
        tree = ast.parse(path.read_text(), str(path))
        parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        for node in _writes(tree):
            seen += 1
            if not _inside_atomic(node, parents):
                bad.append(f"{path.relative_to(SRC.parent)}:{node.lineno}")
    assert seen >= 8  # the scan sees the writes (np.save, write_text, save_file, h5py ...)
    assert not bad, "file writes outside mrct.io.atomic_path: " + ", ".join(bad)


def test_write_text_is_atomic(tmp_path, monkeypatch):
    from mrct.io import write_text

    p = write_text(tmp_path / "a" / "r.json", "{}\n")
    assert p.read_text() == "{}\n" and sorted(x.name for x in p.parent.iterdir()) == ["r.json"]
