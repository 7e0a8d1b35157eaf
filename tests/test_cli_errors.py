"""Every ``mrct`` command under bad input: status 2 and one line naming what to do, never a
traceback; no command overwrites an existing output without ``--force`` (#18 item 8).

Each case fails before any model runs, so the whole table takes seconds."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from mrct.cli import app
from mrct.cli._app import fail_on

runner = CliRunner()


def _nifti(path, shape, affine=None):
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), np.eye(4) if affine is None else affine),
             str(path))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_errors")
    _nifti(d / "vol.nii.gz", (8, 8, 4))
    _nifti(d / "vol_shifted.nii.gz", (8, 8, 4), np.diag([2.0, 2.0, 2.0, 1.0]))
    _nifti(d / "vol2.nii.gz", (8, 8, 5))
    _nifti(d / "flat.nii", (8, 8, 2, 3, 2))  # 5D
    _nifti(d / "lores.nii.gz", (4, 4, 4, 2))
    _nifti(d / "big.nii", (16, 16, 16))
    raw = (d / "big.nii").read_bytes()
    (d / "cut.nii").write_bytes(raw[: len(raw) // 2])  # header intact, data truncated
    gz = (d / "vol.nii.gz").read_bytes()
    (d / "cut.nii.gz").write_bytes(gzip.compress(raw)[: len(gzip.compress(raw)) // 2])
    (d / "garbage.nii.gz").write_bytes(gz[:10])
    (d / "text.txt").write_text("hello\n")
    (d / "text.npy").write_text("hello\n")
    (d / "text.safetensors").write_text("hello\n")
    (d / "bad.toml").write_text("this is = = not toml\n")
    (d / "trunc.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 20)
    np.save(d / "empty.npy", np.zeros((0,), np.float32))
    np.save(d / "sino_small.npy", np.zeros((10, 10), np.float32))
    np.save(d / "sino.npy", np.zeros((23, 511), np.float32))
    (d / "sino_fbp.npy").write_bytes(b"exists")  # the default output of `recon sino.npy -m fbp`
    (d / "exists.nii.gz").write_bytes(b"exists")
    out_dir = d / "used"
    out_dir.mkdir()
    for name in ("metrics.json", "comparison.png", "drr_ap.png", "dehazed.npy"):
        (out_dir / name).write_bytes(b"exists")
    np.save(d / "frames.npy", np.ones((1, 8, 8)))
    cfg = {"out_dir": str(d / "run"), "epochs": 1, "model": {"name": "pdunet", "depth": 2,
           "wf": 3}, "data": {"task": "ct", "source": "ellipses", "size": 16}}  # fmt: skip
    (d / "cfg.json").write_text(json.dumps(cfg))
    return d


# (command, arguments with {d} for the folder, what the line must contain)
CASES = [
    # recon
    ("recon", "{d}/missing.npy -m fbp", "not found"),
    ("recon", "{d}/text.txt -m fbp", ".npy or .npz"),
    ("recon", "{d}/text.npy -m fbp", "text.npy"),
    ("recon", "{d}/empty.npy -m fbp", "expected shape"),
    ("recon", "{d}/sino_small.npy -m fbp", "expected shape"),
    ("recon", "{d}/sino.npy -m fbp --simulate {d}/vol.nii.gz", "either INPUT"),
    ("recon", "-m fbp", "either INPUT"),
    ("recon", "--simulate {d}/missing.npy -m fbp", "missing.npy"),
    ("recon", "{d}/sino.npy -m fbp", "--force"),  # sino_fbp.npy exists
    ("recon", "{d}/sino.npy -m fbp --task xray", "task"),
    # sr
    (
        "sr",
        "{d}/missing.nii.gz --prior {d}/vol.nii.gz -o {d}/o.nii.gz -m trilinear",
        "missing.nii.gz",
    ),
    ("sr", "{d}/text.txt --prior {d}/vol.nii.gz -o {d}/o.nii.gz -m trilinear", "text.txt"),
    ("sr", "{d}/cut.nii --prior {d}/big.nii -o {d}/o.nii.gz -m trilinear", "cut.nii"),
    ("sr", "{d}/lores.nii.gz --prior {d}/cut.nii.gz -o {d}/o.nii.gz -m trilinear", "cut.nii.gz"),
    (
        "sr",
        "{d}/lores.nii.gz --prior {d}/garbage.nii.gz -o {d}/o.nii.gz -m bicubic",
        "garbage.nii.gz",
    ),
    ("sr", "{d}/lores.nii.gz --prior {d}/vol2.nii.gz -o {d}/o.nii.gz -m trilinear", "slices"),
    ("sr", "{d}/lores.nii.gz --prior {d}/vol.nii.gz -o {d}/o.nii.gz", "exactly one"),
    (
        "sr",
        "{d}/lores.nii.gz --prior {d}/vol.nii.gz -o {d}/o.nii.gz -m trilinear --model {d}/x",
        "exactly one",
    ),
    (
        "sr",
        "{d}/lores.nii.gz --prior {d}/vol.nii.gz -o {d}/o.nii.gz --model {d}/text.safetensors",
        "text.safetensors",
    ),
    ("sr", "{d}/lores.nii.gz --prior {d}/vol.nii.gz -o {d}/o.txt -m trilinear", ".nii"),
    ("sr", "{d}/lores.nii.gz --prior {d}/vol.nii.gz -o {d}/exists.nii.gz -m trilinear", "--force"),
    # synth sct
    ("synth sct", "-i {d}/missing.nii.gz --task mri -o {d}/s.nii.gz", "missing.nii.gz"),
    ("synth sct", "-i {d}/text.txt --task mri -o {d}/s.nii.gz", "NIfTI"),
    ("synth sct", "-i {d}/cut.nii --task mri -o {d}/s.nii.gz", "cut.nii"),
    ("synth sct", "-i {d}/cut.nii.gz --task mri -o {d}/s.nii.gz", "cut.nii.gz"),
    ("synth sct", "-i {d}/flat.nii --task mri -o {d}/s.nii.gz", "3D"),
    (
        "synth sct",
        "-i {d}/vol.nii.gz --task mri -o {d}/s.nii.gz --model {d}/text.safetensors",
        "text.safetensors",
    ),
    ("synth sct", "-i {d}/vol.nii.gz --task xray -o {d}/s.nii.gz", "task"),
    ("synth sct", "-i {d}/vol.nii.gz --task mri -o {d}/s.nii.gz --mask {d}/vol2.nii.gz", "grid"),
    ("synth sct", "-i {d}/vol.nii.gz --task mri -o {d}/exists.nii.gz", "--force"),
    # drr
    ("drr", "{d}/missing.nii.gz -o {d}/drr", "missing.nii.gz"),
    ("drr", "{d}/text.txt -o {d}/drr", "text.txt"),
    ("drr", "{d}/cut.nii -o {d}/drr", "cut.nii"),
    ("drr", "{d}/flat.nii -o {d}/drr", "flat.nii"),
    ("drr", "{d}/vol.nii.gz -o {d}/drr --renderer xx", "renderer"),
    ("drr", "{d}/vol.nii.gz -o {d}/drr --view up", "up"),
    ("drr", "{d}/vol.nii.gz -o {d}/drr --sid 2000 --sdd 1000", "sid"),
    ("drr", "{d}/vol.nii.gz -o {d}/text.txt", "folder"),
    ("drr", "{d}/vol.nii.gz -o {d}/used", "--force"),
    # train
    ("train", "{d}/missing.toml", "missing.toml"),
    ("train", "{d}/bad.toml", "TOML"),
    ("train", "{d}/text.txt", "text.txt"),
    ("train", "{d}/cfg.json --set epochs=abc", "epochs"),
    ("train", "{d}/cfg.json --set nonsense", "KEY=VALUE"),
    ("train", "{d}/cfg.json --resume --overwrite", "resume"),
    # lesion
    (
        "lesion",
        "{d}/missing.nii.gz --mask {d}/vol.nii.gz --center 1 1 1 -o {d}/l.nii.gz",
        "missing",
    ),
    ("lesion", "{d}/text.txt --mask {d}/vol.nii.gz --center 1 1 1 -o {d}/l.nii.gz", "text.txt"),
    ("lesion", "{d}/cut.nii --mask {d}/big.nii --center 1 1 1 -o {d}/l.nii.gz", "cut.nii"),
    ("lesion", "{d}/vol.nii.gz --mask {d}/vol2.nii.gz --center 1 1 1 -o {d}/l.nii.gz", "grid"),
    ("lesion", "{d}/vol.nii.gz --mask {d}/vol.nii.gz --center 100 1 1 -o {d}/l.nii.gz", "--center"),
    (
        "lesion",
        "{d}/vol.nii.gz --mask {d}/vol.nii.gz --center 1 1 1 -o {d}/l.nii.gz --diameter 99",
        "diameter",
    ),
    (
        "lesion",
        "{d}/vol.nii.gz --mask {d}/vol.nii.gz --center 1 1 1 -o {d}/l.nii.gz "
        "--mask-out {d}/l.nii.gz",
        "same file",
    ),
    (
        "lesion",
        "{d}/vol.nii.gz --mask {d}/vol.nii.gz --center 1 1 1 -o {d}/exists.nii.gz",
        "--force",
    ),
    # dehaze
    ("dehaze", "{d}/missing.npy -o {d}/dh", "missing.npy"),
    ("dehaze", "{d}/text.txt -o {d}/dh", "text.txt"),
    ("dehaze", "{d}/text.npy -o {d}/dh", "text.npy"),
    ("dehaze", "{d}/trunc.h5 -o {d}/dh", "trunc.h5"),
    ("dehaze", "{d}/empty.npy -o {d}/dh", "expected frames"),
    ("dehaze", "{d}/cut.nii -o {d}/dh --domain bmode", "cut.nii"),
    ("dehaze", "{d}/frames.npy -o {d}/dh --domain xx", "domain"),
    ("dehaze", "{d}/frames.npy -o {d}/used", "--force"),
    # demo
    ("demo", "--out {d}/text.txt --ct-slices 1 --mri-slices 0 --tv-iters 1", "folder"),
    ("demo", "--out {d}/used --ct-slices 1 --mri-slices 0 --tv-iters 1", "--force"),
]


@pytest.mark.parametrize(("command", "args", "expect"), CASES,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)])  # fmt: skip
def test_bad_input_is_one_line_status_2(d, command, args, expect):
    before = sorted(p.name for p in d.rglob("*"))
    argv = command.split() + args.format(d=d).split()
    res = runner.invoke(app, argv)
    err = res.stderr.strip()
    assert res.exit_code == 2, (argv, res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"mrct {command}: "), err
    assert expect in err, err
    assert sorted(p.name for p in d.rglob("*")) == before, "a failed command wrote a file"
    assert all(p.read_bytes() == b"exists" for p in d.rglob("*") if p.name.startswith(
        ("exists", "sino_fbp", "metrics", "comparison", "drr_ap", "dehazed")))  # fmt: skip


def test_every_command_has_a_case():
    names = set(typer.main.get_command(app).commands) - {"synth", "info", "warmup"}
    names |= {"synth sct"}
    assert names <= {c for c, _, _ in CASES}


def test_force_overwrites(d, tmp_path):
    np.save(tmp_path / "sino.npy", np.zeros((23, 511), np.float32))
    argv = ["recon", str(tmp_path / "sino.npy"), "-m", "fbp", "--no-png"]
    assert runner.invoke(app, argv).exit_code == 0
    res = runner.invoke(app, argv)
    assert res.exit_code == 2 and "--force" in res.stderr
    assert runner.invoke(app, [*argv, "--force"]).exit_code == 0


def test_unexpected_errors_are_one_line_status_1(monkeypatch, capsys):
    def boom():
        with fail_on("x"):
            raise ZeroDivisionError("division by zero\nsecond line")

    with pytest.raises(typer.Exit) as e:
        boom()
    assert e.value.exit_code == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "internal error ZeroDivisionError" in err
    monkeypatch.setenv("MRCT_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        boom()


def test_typer_exits_pass_through():
    with pytest.raises(typer.Exit) as e:
        with fail_on("x"):
            raise typer.Exit(0)
    assert e.value.exit_code == 0
