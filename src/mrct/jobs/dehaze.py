"""``mrct dehaze``: remove multipath haze from ultrasound RF or B-mode frames.

Reads RF frames from ``.npy`` / HDF5 (``--domain rf``) or B-mode from ``.npy``, PNG,
NIfTI and DICOM (single and multi-frame; ``--domain bmode``), runs
:func:`mrct.synth.dehaze` with a tissue and a haze prior, and writes into the output folder
``dehazed.npy`` and ``haze.npy`` (frames ``(F, H, W)``, the input's units) and
``before_after.png`` (first frame). Every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import atomic_path, check_outputs, save_figure

__all__ = ["read_frames", "run_dehaze"]

_BMODE_SUFFIXES = (".png", ".jpg", ".jpeg", ".nii", ".nii.gz", ".dcm")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def read_frames(path: str | Path, domain: str) -> np.ndarray:
    """Frames ``(F, H, W)`` float64 from ``path`` (B-mode images scaled to ``[0, 1]``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    sfx = _suffix(path)
    if sfx == ".npy":
        from ..io import load_array

        a = load_array(path)
    elif sfx in (".h5", ".hdf5"):
        import h5py

        from ..errors import ReadError

        try:
            with h5py.File(path, "r") as f:
                names = [k for k in f if isinstance(f[k], h5py.Dataset)]
                key = "rf" if "rf" in f else (names[0] if names else None)
                if key is None:
                    raise ReadError(f"{path}: no dataset found (expected 'rf')", path=path)
                a = f[key][...]
        except (OSError, KeyError, TypeError, RuntimeError) as e:  # h5py: damaged file
            raise ReadError(f"cannot read {path} as HDF5: {e}", path=path) from e
    elif sfx in (".png", ".jpg", ".jpeg"):
        from matplotlib.image import imread

        a = imread(path)
        if a.ndim == 3:
            a = a[..., :3].mean(axis=-1)
    elif sfx in (".nii", ".nii.gz"):
        from ..io import load_nifti_array

        a = load_nifti_array(path)[0]
        a = np.moveaxis(a, -1, 0) if a.ndim == 3 else a
    elif sfx == ".dcm" or path.is_file():
        import pydicom

        try:
            ds = pydicom.dcmread(path)
            a = ds.pixel_array
        except Exception as e:  # noqa: BLE001 - pydicom raises many kinds
            raise ValueError(f"cannot read {path}: {e}") from None
        if a.ndim == 4 or (a.ndim == 3 and a.shape[-1] in (3, 4) and
                           getattr(ds, "SamplesPerPixel", 1) > 1):  # fmt: skip
            a = a[..., :3].mean(axis=-1)
    else:
        raise ValueError(f"unsupported input {path} (npy, h5, png, nii, dcm)")
    a = np.asarray(a, dtype=np.float64)
    a = np.squeeze(a)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or min(a.shape) < 1:
        raise ValueError(f"{path}: expected frames (H, W) or (F, H, W), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{path} contains NaN or Inf")
    if domain == "bmode":
        lo, hi = a.min(), a.max()
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    elif sfx in _BMODE_SUFFIXES:
        raise ValueError(f"{path} is an image: use --domain bmode (RF comes as npy or HDF5)")
    return a


def _prior(spec, default):
    from ..synth.dehazing import UNetScorePrior, pretrained

    spec = spec or default
    if Path(str(spec)).suffix == ".safetensors":
        if not Path(spec).is_file():
            raise FileNotFoundError(f"prior checkpoint {spec} does not exist")
        return UNetScorePrior.load(spec).eval()
    return pretrained(str(spec))


def _bmode(frame, domain):
    if domain == "bmode":
        return frame.numpy(), (0.0, 1.0)
    from ..physics.ultrasound import envelope, log_compress

    env = envelope(frame, axis=-2)
    return log_compress(env, 60.0).numpy(), (-60.0, 0.0)


def run_dehaze(input: str | Path, out: str | Path = "dehaze_out", *, strength: float = 1.0,
               domain: str = "rf", n_steps: int = 200, tau: float = 0.8,
               tissue_prior: str | None = None, haze_prior: str | None = None,
               seed: int | None = 0, patch=(128, 64), progress: bool = False,
               overwrite: bool = True, log=None) -> dict:  # fmt: skip
    """Dehaze the frames in ``input``; returns the paths written. With ``overwrite=False``
    (``mrct dehaze`` without ``--force``) an existing output file is an
    :class:`mrct.errors.OutputExistsError`, raised before any work."""
    import torch

    from ..synth import dehaze

    if domain not in ("rf", "bmode"):
        raise ValueError(f'--domain must be "rf" or "bmode", got {domain!r}')
    log = log or (lambda s: None)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    check_outputs([out / "dehazed.npy", out / "haze.npy", out / "before_after.png"], overwrite)
    frames = read_frames(input, domain)
    log(f"read {frames.shape[0]} frame(s) of {frames.shape[1]} x {frames.shape[2]} ({domain})")
    tp = _prior(tissue_prior, f"dehaze-tissue-{domain}")
    hp = _prior(haze_prior, f"dehaze-haze-{domain}")
    for m in (tp, hp):
        for p in getattr(m, "parameters", lambda: [])():
            p.requires_grad_(False)
    y = torch.as_tensor(frames, dtype=torch.float32)
    x, h = dehaze(y, tp, hp, strength=strength, n_steps=n_steps, seed=seed, domain=domain,
                  tau=tau, patch=patch, progress=progress, return_haze=True)  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, arr in (("dehazed", x), ("haze", h)):
        with atomic_path(out / f"{name}.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, arr.numpy().astype(np.float32))
        paths[name] = out / f"{name}.npy"
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 5))
    for ax, img, title in zip(axes, (y[0], x[0]), ("input", f"dehazed (strength {strength:g})"),
                              strict=True):  # fmt: skip
        b, (lo, hi) = _bmode(img, domain)
        ax.imshow(b, cmap="gray", vmin=lo, vmax=hi, aspect="auto")
        ax.set_title(title)
        ax.axis("off")
    paths["figure"] = save_figure(fig, out / "before_after.png")
    plt.close(fig)
    for k, v in paths.items():
        log(f"wrote {k}: {v}")
    return paths
