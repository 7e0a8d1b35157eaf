"""The ``mrct recon`` job: reconstruct a user's sparse-view CT sinogram or radial MRI k-space
file with one method, and write the image(s) as ``.npy``, NIfTI and a PNG preview.

Inputs are in the geometries of the shipped models (:mod:`mrct.recon.datasets`, pixel units,
256 x 256 images):

* ``task="ct"``: a fan-beam sinogram ``(n_views, 511)`` or ``(B, n_views, 511)``, real, with
  every ``sparsity``-th of 360 views at 1 degree (:func:`mrct.recon.datasets.ct_geometry`,
  source 400, detector 150, 511 flat-detector bins of spacing 1): 23 views for sparsity 16.
  Values are line integrals of attenuation per pixel (water 0.02) for the learned models.
* ``task="mri"``: radial k-space ``(n_spokes, 363)`` complex, the kept spokes (every
  ``sparsity``-th) of the equidistant 512-spoke trajectory of
  :func:`mrct.recon.datasets.mri_task` (``radial_trajectory(512, 363, golden=False)``,
  NUFFT sign ``exp(-i k . r)``), turned into a parallel-beam sinogram by
  :func:`mrct.physics.radial_to_sinogram`; or that sinogram directly (real). 32 spokes for
  sparsity 16. Intensities / 255 of the brain MRI for the learned models.

Methods (:data:`METHODS`): ``fbp`` (Hann filter, clipped at 0), ``tv-pdhg`` (non-negative TV,
warm-started at the FBP), ``sirt`` (non-negative), ``cgls`` (unconstrained), and the shipped
``fbpconvnet``, ``lpd`` and ``pdunet`` models (:func:`mrct.recon.pretrained`; only for the
undersampling they were trained for).

Files are ``.npy`` (float32, the input's batch shape: ``(H, W)`` or ``(B, H, W)``),
``.nii.gz`` (float32, 1 mm pixels; :func:`mrct.data.read_nifti` gives the ``(B, H, W)`` array
back) and ``.png`` (a montage of up to 16 slices), each written atomically.
"""

from __future__ import annotations

import logging
import math
import time
from enum import Enum
from pathlib import Path

import numpy as np

from ..io import atomic_path, check_outputs, save_image_png, save_nifti

logger = logging.getLogger(__name__)

__all__ = [
    "METHODS",
    "ReconMethod",
    "expected_shape",
    "load_input",
    "reconstruct",
    "output_files",
    "output_prefix",
    "write_outputs",
    "run_recon",
]

#: CLI method name -> display name (as in :mod:`mrct.recon.compare`).
METHODS = {
    "fbp": "FBP",
    "tv-pdhg": "TV-PDHG",
    "sirt": "SIRT",
    "cgls": "CGLS",
    "fbpconvnet": "FBPConvNet",
    "lpd": "LPD",
    "pdunet": "PD-UNet",
}
LEARNED = ("fbpconvnet", "lpd", "pdunet")
#: default iterations of the iterative methods
DEFAULT_ITERS = {"tv-pdhg": 100, "sirt": 200, "cgls": 30}
IMAGE_SIZE = 256
N_VIEWS_FULL = {"ct": 360, "mri": 512}
_PNG_MAX_SLICES = 16


class ReconMethod(str, Enum):
    """The methods of ``mrct recon`` (values are the CLI names)."""

    fbp = "fbp"
    tv_pdhg = "tv-pdhg"
    sirt = "sirt"
    cgls = "cgls"
    fbpconvnet = "fbpconvnet"
    lpd = "lpd"
    pdunet = "pdunet"


def _check_task(task: str, sparsity: int) -> None:
    if task not in N_VIEWS_FULL:
        raise ValueError(f'task must be "ct" or "mri", got {task!r}')
    limit = N_VIEWS_FULL[task] // 2
    if isinstance(sparsity, bool) or int(sparsity) != sparsity or not 1 <= sparsity <= limit:
        raise ValueError(f"sparsity must be an integer in 1 .. {limit} for {task}, got {sparsity}")


def expected_shape(task: str, sparsity: int) -> tuple[int, int]:
    """``(n_views, n_det)`` of one input slice: ``(23, 511)`` for CT sparsity 16, ``(32, 363)``
    for MRI sparsity 16 (spokes x samples of k-space, or views x bins of its sinogram)."""
    _check_task(task, sparsity)
    n_views = len(range(0, N_VIEWS_FULL[task], int(sparsity)))
    n_det = 511 if task == "ct" else int(math.ceil(IMAGE_SIZE * math.sqrt(2))) | 1
    return n_views, n_det


def _describe(task: str, sparsity: int) -> str:
    v, n = expected_shape(task, sparsity)
    what = "CT" if task == "ct" else "MRI"
    return f"({v}, {n}) or (B, {v}, {n}) for {what} sparsity {sparsity}"


def _read_array(path: Path) -> tuple[np.ndarray, str]:
    """The array in ``path`` (.npy, or .npz with key ``sinogram`` or ``kspace``) and its key."""
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False), "npy"
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = [k for k in ("sinogram", "kspace") if k in z.files]
                if len(keys) != 1:
                    raise ValueError(
                        f"{path} must hold exactly one array named 'sinogram' or 'kspace', "
                        f"found {sorted(z.files)}"
                    )
                return z[keys[0]], keys[0]
    except ValueError as e:
        if "must hold" in str(e):
            raise
        raise ValueError(f"{path} is not a readable numpy file: {e}") from e
    raise ValueError(f"input must be a .npy or .npz file, got {path.name!r}")


def load_input(path: str | Path, task: str = "ct", sparsity: int = 16):
    """Read and check an input file; return a float32 sinogram tensor ``(B, n_views, n_det)``,
    whether the input had a batch axis, and a description of what was read.

    Real arrays are sinograms. Complex arrays are radial k-space (``task="mri"`` only; an npz
    key ``kspace`` must be complex and ``sinogram`` real) and go through
    :func:`mrct.physics.radial_to_sinogram`.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Unknown format, wrong shape (the message names the expected one), non-numeric dtype,
        complex CT data, NaN or Inf values.
    """
    import torch

    path = Path(path)
    _check_task(task, sparsity)
    arr, key = _read_array(path)
    want = _describe(task, sparsity)
    if arr.dtype.kind not in "biufc" or arr.dtype.kind == "b":
        raise ValueError(f"{path.name}: expected a numeric array {want}, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3) or arr.shape[-2:] != expected_shape(task, sparsity):
        hint = ""
        other = "mri" if task == "ct" else "ct"
        if arr.ndim in (2, 3) and arr.shape[-2:] == expected_shape(other, sparsity):
            hint = f" (this is the shape for --task {other})"
        raise ValueError(f"{path.name}: expected shape {want}, got {arr.shape}{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{path.name}: the batch is empty, shape {arr.shape}")
    complex_in = arr.dtype.kind == "c"
    if complex_in and task == "ct":
        raise ValueError(f"{path.name}: a CT sinogram must be real, got dtype {arr.dtype}")
    if key == "kspace" and not complex_in:
        raise ValueError(f"{path.name}: 'kspace' must be complex, got dtype {arr.dtype}")
    if key == "sinogram" and complex_in:
        raise ValueError(f"{path.name}: 'sinogram' must be real (radial k-space goes under "
                         f"the key 'kspace'), got dtype {arr.dtype}")  # fmt: skip
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise ValueError(f"{path.name}: {bad} of {arr.size} values are NaN or Inf")
    batched = arr.ndim == 3
    arr = arr if batched else arr[None]
    if complex_in:
        from ..physics import radial_to_sinogram

        n = N_VIEWS_FULL["mri"]
        angles = np.arange(0, n, int(sparsity)) * math.pi / n
        k = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.complex64))
        sino = radial_to_sinogram(k, angles, (IMAGE_SIZE, IMAGE_SIZE))[0].real
        kind = "radial k-space"
    else:
        sino = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        kind = "sinogram"
    v, n_det = expected_shape(task, sparsity)
    desc = (f"{arr.shape[0]} {kind}{'s' * (arr.shape[0] > 1)} ({v} "
            f"{'views' if task == 'ct' else 'spokes'} x {n_det}, {task.upper()} sparsity "
            f"{sparsity})")  # fmt: skip
    return sino.float().contiguous(), batched, desc


def _device(device: str):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ValueError(f'device must be "cpu", "cuda", "cuda:N" or "auto", got {device!r}') from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f'device must be "cpu", "cuda", "cuda:N" or "auto", got {device!r}')
    return dev


def _pretrained_name(method: str, task: str, sparsity: int) -> str:
    return f"{method}-{task}-" + (f"sparse{sparsity}" if task == "ct" else f"radial{sparsity}")


def _load_model(method: str, task: str, sparsity: int, device):
    from ..recon.pretrained import PRETRAINED, list_pretrained, pretrained, weights_path

    name = _pretrained_name(method, task, sparsity)
    present = list_pretrained()
    if name not in PRETRAINED:
        shipped = sorted(k for k in PRETRAINED if k.startswith(f"{method}-{task}-"))
        raise ValueError(
            f"no shipped {METHODS[method]} model for {task.upper()} sparsity {sparsity} "
            f"({name!r}); shipped: {shipped}; installed: {present or 'none'}"
        )
    if not weights_path(name).is_file():
        raise ValueError(
            f"the weights of {name!r} are not installed (installed models: "
            f"{present or 'none'}); run `python scripts/train_pretrained.py {name}` to "
            f"reproduce them"
        )
    return pretrained(name, device=device)


def reconstruct(sinograms, method: str, task: str = "ct", sparsity: int = 16, *,
                iters: int | None = None, lam: float | None = None, device: str = "cpu",
                chunk: int = 8):  # fmt: skip
    """Reconstruct sinograms ``(B, n_views, n_det)`` with one method -> images ``(B, 256, 256)``
    (float32, on the CPU).

    ``iters``: iterations of ``tv-pdhg``, ``sirt`` and ``cgls`` (default
    :data:`DEFAULT_ITERS`). ``lam``: TV weight relative to the image scale (default
    :data:`mrct.recon.compare.TV_LAMBDA` of the task); the image scale is the 99th
    percentile of the input's FBP (clipped at 0), so ``lam`` does not depend on the units.
    Slices are processed ``chunk`` at a time.
    """
    import torch

    from ..recon.compare import TV_LAMBDA
    from ..recon.pretrained import operator_for

    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    _check_task(task, sparsity)
    want = (*expected_shape(task, sparsity),)
    if sinograms.ndim != 3 or tuple(sinograms.shape[-2:]) != want:
        raise ValueError(f"sinograms must be (B, {want[0]}, {want[1]}), got "
                         f"{tuple(sinograms.shape)}")  # fmt: skip
    if iters is None:
        iters = DEFAULT_ITERS.get(method, 0)
    if method in DEFAULT_ITERS and (int(iters) != iters or iters < 1):
        raise ValueError(f"iters must be a positive integer, got {iters}")
    if lam is None:
        lam = TV_LAMBDA[task]
    if not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be finite and >= 0, got {lam}")
    dev = _device(device)
    if method in LEARNED:
        model = _load_model(method, task, sparsity, dev)

        def fn(g):
            with torch.no_grad():
                return model(g).clamp_min(0.0)
    else:
        radon = operator_for(task, sparsity)
        fn = _classical(method, radon, int(iters), float(lam))
    out = [fn(sinograms[s : s + chunk].to(dev)).detach().float().cpu()
           for s in range(0, sinograms.shape[0], chunk)]  # fmt: skip
    return torch.cat(out)


def _classical(method: str, radon, iters: int, lam: float):
    from ..recon.cgls import cgls
    from ..recon.sirt import sirt
    from ..recon.tv_pdhg import tv_pdhg

    def fbp(g):
        return radon.fbp(g, filter="hann").clamp_min(0.0)

    if method == "fbp":
        return fbp
    if method == "sirt":
        return lambda g: sirt(radon, g, n_iter=iters, nonneg=True)
    if method == "cgls":
        return lambda g: cgls(radon, g, n_iter=iters)
    norm: list[float] = []

    def tv(g):
        if not norm:  # ||A||, once per operator
            norm.append(float(radon.opnorm(tol=1e-4, device=g.device)))
        x0 = fbp(g)
        s = float(np.quantile(x0.cpu().numpy(), 0.99)) or 1.0
        x = tv_pdhg(radon, g / s, lam, x0=x0 / s, n_iter=iters, nonneg=True, opnorm=norm[0])
        return x * s

    return tv


def output_prefix(input_path: str | Path, method: str, out: str | Path | None = None) -> Path:
    """Where the outputs go, without suffix: ``out`` (a known suffix .npy, .nii.gz, .nii or
    .png is dropped), ``out/<stem>_<method>`` when ``out`` is an existing folder or ends with
    a path separator, or ``<input folder>/<stem>_<method>`` by default."""
    input_path = Path(input_path)
    stem = input_path.name
    for suf in (".npy", ".npz"):
        if stem.lower().endswith(suf):
            stem = stem[: -len(suf)]
    default_name = f"{stem}_{method}"
    if out is None:
        return input_path.parent / default_name
    text = str(out)
    out = Path(out)
    if out.is_dir() or text.endswith(("/", "\\")):
        return out / default_name
    name = out.name
    for suf in (".nii.gz", ".npy", ".nii", ".png"):
        if name.lower().endswith(suf):
            return out.with_name(name[: -len(suf)])
    return out


def _montage(images: np.ndarray) -> np.ndarray:
    """Up to 16 slices tiled in a near-square grid (zeros between)."""
    imgs = images[:_PNG_MAX_SLICES]
    n, h, w = imgs.shape
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.zeros((rows * h, cols * w), np.float32)
    for i, im in enumerate(imgs):
        r, c = divmod(i, cols)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = im
    return grid


def write_nifti(images: np.ndarray, path: str | Path, pixel_size: float = 1.0) -> Path:
    """Write ``(B, H, W)`` images as a NIfTI-1 file (float32; gzipped for ``.nii.gz``), atomically.

    The file's voxel axes are (column, row, slice) with ``pixel_size`` mm pixels and 1 mm
    slices; the affine puts rows toward posterior and columns toward the patient's left (the
    radiological view that ``imshow`` shows), so :func:`mrct.data.read_nifti` returns the
    ``(B, H, W)`` array unchanged.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise ValueError(f"images must be (B, H, W), got shape {images.shape}")
    b, h, w = images.shape
    affine = np.array([
        [-pixel_size, 0.0, 0.0, (w - 1) / 2 * pixel_size],   # column j -> left (-x in RAS)
        [0.0, -pixel_size, 0.0, (h - 1) / 2 * pixel_size],   # row i -> posterior (-y)
        [0.0, 0.0, 1.0, -(b - 1) / 2],                        # slice k -> superior (+z)
        [0.0, 0.0, 0.0, 1.0],
    ])  # fmt: skip
    return save_nifti(
        path, images.transpose(2, 1, 0), affine, xyzt_units=("mm",), description="mrct recon"
    )


def output_files(prefix: str | Path, png: bool = True) -> list[Path]:
    """The files :func:`write_outputs` writes for ``prefix``."""
    prefix = Path(prefix)
    sufs = (".npy", ".nii.gz", ".png") if png else (".npy", ".nii.gz")
    return [prefix.with_name(prefix.name + s) for s in sufs]


def write_outputs(images, prefix: str | Path, batched: bool = True, png: bool = True):
    """Write ``prefix.npy``, ``prefix.nii.gz`` and (``png``) ``prefix.png``; return the paths.

    ``images`` is ``(B, H, W)``; with ``batched=False`` (and B = 1) the ``.npy`` is ``(H, W)``.
    """
    images = np.asarray(images, dtype=np.float32)
    prefix = Path(prefix)
    files = []
    npy = prefix.with_name(prefix.name + ".npy")
    with atomic_path(npy) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, images if batched else images[0])
    files.append(npy)
    files.append(write_nifti(images, prefix.with_name(prefix.name + ".nii.gz")))
    if png:
        grid = _montage(images)
        vmax = float(np.percentile(grid, 99.5)) or float(grid.max()) or 1.0
        files.append(save_image_png(grid, prefix.with_name(prefix.name + ".png"), 0.0, vmax))
    return files


def run_recon(input_path: str | Path, method: str, task: str = "ct", sparsity: int = 16, *,
              iters: int | None = None, lam: float | None = None,
              out: str | Path | None = None, png: bool = True, device: str = "cpu",
              overwrite: bool = True, log=None) -> dict:  # fmt: skip
    """The whole job: read and check ``input_path``, reconstruct, write, report.

    Returns a dict with ``images`` (``(B, H, W)`` float32 numpy), ``files`` (paths written),
    ``seconds`` (reconstruction time) and ``lines`` (what was logged). ``log``: a function
    that receives each report line (the command passes ``typer.echo``; default: the
    ``logging`` logger of this module). With ``overwrite=False`` (``mrct recon`` without
    ``--force``) an existing output file is an :class:`mrct.errors.OutputExistsError`, raised
    before any work.
    """
    log = log or logger.info
    method = getattr(method, "value", method)
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    lines: list[str] = []

    def say(s: str) -> None:
        lines.append(s)
        log(s)

    sino, batched, desc = load_input(input_path, task, sparsity)
    prefix = output_prefix(input_path, method, out)
    check_outputs(output_files(prefix, png), overwrite)
    t0 = time.perf_counter()
    images = reconstruct(sino, method, task, sparsity, iters=iters, lam=lam, device=device)
    seconds = time.perf_counter() - t0
    images = images.numpy()
    extra = ""
    if method in DEFAULT_ITERS:
        extra = f", {iters or DEFAULT_ITERS[method]} iterations"
        if method == "tv-pdhg":
            from ..recon.compare import TV_LAMBDA

            extra += f", lam {TV_LAMBDA[task] if lam is None else lam:g}"
    say(f"{METHODS[method]} of {desc} -> {images.shape[0]} x {images.shape[1]} x "
        f"{images.shape[2]} in {seconds:.2f} s{extra}")  # fmt: skip
    files = write_outputs(images, prefix, batched=batched, png=png)
    say("wrote " + ", ".join(str(p) for p in files))
    return {"images": images, "files": files, "seconds": seconds, "lines": lines}
