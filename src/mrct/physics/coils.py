"""Coil sensitivity maps: synthetic birdcage maps and ESPIRiT estimation (via sigpy).

Both follow sigpy's definitions (``sigpy.mri.birdcage_maps``, ``sigpy.mri.app.EspiritCalib``)
and return torch tensors in mrct's layout, coil axis first: ``(C, H, W)`` or ``(C, D, H, W)``.
sigpy's centred FFT (``sigpy.fft``: ifftshift, ``norm="ortho"`` FFT, fftshift) is the same
transform as :func:`mrct.physics.fft.fft2c`, so k-space made with ``fft2c`` can be handed to
sigpy unchanged.
"""

from __future__ import annotations

import numpy as np
import torch

from .fft import as_complex

__all__ = ["birdcage_maps", "espirit_maps"]

_NP_COMPLEX = {torch.complex64: np.complex64, torch.complex128: np.complex128}


def birdcage_maps(
    shape: tuple[int, ...] = (8, 256, 256),
    r: float = 1.5,
    nzz: int = 8,
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Synthetic birdcage coil sensitivities (closed form of ``sigpy.mri.birdcage_maps``).

    2D, ``shape = (C, H, W)``: coil ``c`` sits at ``(r cos(2 pi c / C), r sin(2 pi c / C))``
    in coordinates normalised so that the image spans ``[-1, 1)`` (``x = (j - W/2) / (W/2)``,
    ``y = (i - H/2) / (H/2)``). With ``(dx, dy)`` the offset of a pixel from the coil and
    ``rho = sqrt(dx^2 + dy^2)``, its sensitivity is

        s_c = exp(i (atan2(dx, -dy) - 2 pi c / C)) / rho,

    a Biot-Savart-like ``1 / distance`` magnitude with a phase that winds around the coil.
    3D, ``shape = (C, D, H, W)``: rings of ``nzz`` coils stacked along z (coil ``c`` on ring
    ``floor(c / nzz)``), with ``rho`` the 3D distance. The maps are then normalised by their
    root-sum-of-squares, so ``sum_c |s_c|^2 = 1`` at every pixel.

    Parameters
    ----------
    shape : (C, H, W) or (C, D, H, W)
        Number of coils and image (volume) shape.
    r : float
        Coil radius relative to the half field of view (``r > 1`` puts coils outside the FOV).
    nzz : int
        Coils per ring (3D only).
    dtype : torch.complex64 or torch.complex128
    device : torch device, optional

    Returns
    -------
    Tensor, shape ``shape``, complex
        Unit-RSS sensitivities (dimensionless).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise ValueError(f"shape must be (C, H, W) or (C, D, H, W) of positive sizes, got {shape}")
    if dtype not in _NP_COMPLEX:
        raise TypeError(f"dtype must be torch.complex64 or torch.complex128, got {dtype}")
    if not (np.isfinite(r) and r > 0):
        raise ValueError(f"r must be a positive relative radius, got {r}")
    if int(nzz) < 1:
        raise ValueError(f"nzz (coils per ring) must be >= 1, got {nzz}")
    nc = shape[0]
    if len(shape) == 3:
        _, ny, nx = shape
        c, y, x = np.mgrid[:nc, :ny, :nx].astype(np.float64)
        coilx = r * np.cos(c * (2 * np.pi / nc))
        coily = r * np.sin(c * (2 * np.pi / nc))
        coil_phs = -c * (2 * np.pi / nc)
        x_co = (x - nx / 2.0) / (nx / 2.0) - coilx
        y_co = (y - ny / 2.0) / (ny / 2.0) - coily
        rho = np.sqrt(x_co**2 + y_co**2)
    else:
        _, nz, ny, nx = shape
        c, z, y, x = np.mgrid[:nc, :nz, :ny, :nx].astype(np.float64)
        coilx = r * np.cos(c * (2 * np.pi / nzz))
        coily = r * np.sin(c * (2 * np.pi / nzz))
        coilz = np.floor(c / nzz) - 0.5 * (np.ceil(nc / nzz) - 1)
        coil_phs = -(c + np.floor(c / nzz)) * (2 * np.pi / nzz)
        x_co = (x - nx / 2.0) / (nx / 2.0) - coilx
        y_co = (y - ny / 2.0) / (ny / 2.0) - coily
        z_co = (z - nz / 2.0) / (nz / 2.0) - coilz
        rho = np.sqrt(x_co**2 + y_co**2 + z_co**2)
    with np.errstate(divide="ignore"):
        out = np.exp(1j * (np.arctan2(x_co, -y_co) + coil_phs)) / rho
    out /= np.sqrt(np.sum(np.abs(out) ** 2, axis=0))
    if not np.all(np.isfinite(out)):
        raise ValueError(f"a coil lies on a pixel centre (r={r}); choose another r")
    return torch.from_numpy(out.astype(_NP_COMPLEX[dtype])).to(device)


def espirit_maps(
    kspace,
    calib_width: int = 24,
    thresh: float = 0.02,
    kernel_width: int = 6,
    crop: float = 0.95,
    max_iter: int = 100,
    *,
    return_eigenvalue: bool = False,
):
    """Estimate coil sensitivities from multi-coil k-space by ESPIRiT (one set of maps).

    Thin wrapper around ``sigpy.mri.app.EspiritCalib`` (Uecker et al., MRM 71:990, 2014),
    with sigpy's defaults: the central ``calib_width^d`` k-space block builds a calibration
    matrix of ``kernel_width^d`` patches; singular vectors above ``thresh * s_max`` span the
    signal subspace; the maps are the leading eigenvectors of the resulting image-space
    operator (``max_iter`` power iterations per pixel), phase-referenced to coil 0 and set
    to zero where the eigenvalue is ``<= crop``.

    Parameters
    ----------
    kspace : Tensor or ndarray, complex, shape (C, H, W) or (C, D, H, W)
        Multi-coil k-space in the :func:`mrct.physics.fft.fft2c` convention (zero frequency at
        index ``n // 2``). Only the calibration block is used; it must be fully sampled.
    calib_width, kernel_width : int
        Sizes (samples per axis) of the calibration block and of the kernel.
    thresh : float
        Relative singular-value threshold of the calibration matrix.
    crop : float
        Eigenvalue threshold in ``[0, 1]`` below which maps are zeroed (outside the object).
    max_iter : int
        Power iterations.
    return_eigenvalue : bool
        Also return the per-pixel eigenvalue map ``(H, W)`` (about 1 inside the object).

    Returns
    -------
    Tensor, complex, same shape as ``kspace``
        Maps with ``sum_c |s_c|^2 = 1`` where not cropped; dtype complex64 unless the input is
        complex128; on the input's device (the computation itself runs on the CPU).
    Tensor, shape ``kspace.shape[1:]``, optional
        The eigenvalue map (when ``return_eigenvalue``).
    """
    if isinstance(kspace, torch.Tensor):
        device = kspace.device
        t = as_complex(kspace, "kspace").detach()
        ksp = t.cpu().numpy()
    elif isinstance(kspace, np.ndarray):
        device = torch.device("cpu")
        if not (np.iscomplexobj(kspace) or np.issubdtype(kspace.dtype, np.floating)):
            raise TypeError(f"kspace must be complex, got dtype {kspace.dtype}")
        ksp = kspace
    else:
        raise TypeError(f"kspace must be a torch.Tensor or numpy array, got {type(kspace)}")
    if ksp.ndim not in (3, 4):
        raise ValueError(
            f"kspace must have shape (C, H, W) or (C, D, H, W) (coil axis first), got {ksp.shape}"
        )
    if not np.iscomplexobj(ksp):
        ksp = ksp.astype(np.complex128 if ksp.dtype == np.float64 else np.complex64)
    ksp = np.ascontiguousarray(ksp)
    if not np.all(np.isfinite(ksp)):
        raise ValueError("kspace contains NaN or Inf")
    if min(ksp.shape[1:]) < calib_width:
        raise ValueError(
            f"calib_width={calib_width} exceeds the k-space size {ksp.shape[1:]}; "
            "choose a smaller calibration region"
        )
    if not 1 <= kernel_width <= calib_width:
        raise ValueError(f"kernel_width must be in [1, calib_width], got {kernel_width}")
    if not 0 <= crop <= 1:
        raise ValueError(f"crop must be in [0, 1], got {crop}")

    from sigpy.mri.app import EspiritCalib

    app = EspiritCalib(
        ksp,
        calib_width=int(calib_width),
        thresh=float(thresh),
        kernel_width=int(kernel_width),
        crop=float(crop),
        max_iter=int(max_iter),
        output_eigenvalue=True,
        show_pbar=False,
    )
    maps, eig = app.run()
    maps = torch.from_numpy(np.ascontiguousarray(maps)).to(device)
    if not return_eigenvalue:
        return maps
    eig = np.ascontiguousarray(np.real(eig)).reshape(ksp.shape[1:])
    return maps, torch.from_numpy(eig).to(device)
