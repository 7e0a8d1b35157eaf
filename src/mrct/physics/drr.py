"""``DRR``: digitally reconstructed radiographs (cone-beam X-ray rendering of a CT volume).

``drr = DRR(volume, spacing, sdd=1020.0, height=256, width=256, pixel_spacing=...)`` holds a CT
in HU (a :class:`mrct.data.Volume` from the NIfTI/DICOM readers, or a ``(D, H, W)`` array with
its voxel spacing and optional affine) converted to linear attenuation (mm^-1,
:func:`mrct.physics.attenuation.hu_to_mu`). ``drr(view="ap")``, ``drr(rotation, translation)``
or ``drr(pose=...)`` return ``(..., height, width)`` images: line integrals by default,
transmitted intensity ``I0 exp(-p)`` (optionally with Poisson noise) or its negative log.

Geometry (docs/drr.md): world = patient RAS mm through the volume's affine; camera = the
source at the origin, principal ray ``+z_c``, detector columns ``+x_c``, rows ``+y_c``
(:mod:`mrct.physics.pose`); pixel ``(r, c)`` sits at
``x_c = (c - (width - 1) / 2) du + x0``, ``y_c = (r - (height - 1) / 2) dv + y0``,
``z_c = sdd``; a pose ``(R, t)`` maps camera to world: ``p = isocentre + R p_cam + t``.

Renderers: ``"siddon"`` (exact voxel intersection lengths) and ``"trilinear"`` (ray marching
at ``step`` mm), Numba CPU and CUDA kernels (:mod:`mrct.kernels.drr_math`), batched over
poses. Both are linear in the volume with a matched adjoint (:class:`DRRProjector`), so
autograd reaches the volume. Poses that require gradients are rendered by a pure-torch
trilinear renderer (``grid_sample``) that computes the same samples as the trilinear kernel,
so 2D/3D registration can optimise a pose.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..kernels import drr_cpu
from .attenuation import hu_to_mu
from .backend import kernel_array, torch_stream
from .drr_grid import _as_affine, _as_spacing, spl_affine
from .drr_projector import _RENDERERS, DRRProjector
from .pose import Pose, carm_pose, view_pose

__all__ = ["DRR", "DRRProjector", "window", "labels_to_masks", "spl_affine"]

_OUTPUTS = ("integral", "intensity", "neglog")


def window(
    img: torch.Tensor,
    level: float | None = None,
    width: float | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    invert: bool = False,
) -> torch.Tensor:
    """Display windowing to [0, 1]: ``clip((img - level) / width + 1/2, 0, 1)``.

    Without ``level`` and ``width`` the window spans the given percentiles of each image
    (over its last two axes). ``invert`` gives white = low values.
    """
    if level is None or width is None:
        flat = img.detach().flatten(-2).float()
        lo = torch.quantile(flat, percentiles[0] / 100.0, dim=-1)[..., None, None]
        hi = torch.quantile(flat, percentiles[1] / 100.0, dim=-1)[..., None, None]
        out = (img - lo.to(img.dtype)) / (hi - lo).clamp_min(1e-12).to(img.dtype)
    else:
        if width <= 0:
            raise ValueError(f"window width must be positive, got {width}")
        out = (img - level) / width + 0.5
    out = out.clamp(0.0, 1.0)
    return 1.0 - out if invert else out


def labels_to_masks(thickness: torch.Tensor, threshold: float = 1.0) -> torch.Tensor:
    """Binary masks of projected label thickness maps: ``thickness > threshold`` (mm)."""
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0 mm, got {threshold}")
    return thickness > threshold


class DRR(torch.nn.Module):
    """Cone-beam DRR renderer of a CT volume (module doc for the conventions).

    Parameters
    ----------
    volume : mrct.data.Volume, tensor or ndarray (D, H, W)
        CT in HU (or attenuation with ``attenuation="none"``). A ``Volume`` brings its spacing
        and affine; a plain array is taken to be in mrct's canonical SPL orientation, centred
        on the origin, unless ``affine`` is given. A tensor that requires grad keeps its graph
        (the HU-to-mu conversion runs at each call).
    spacing : float or (sz, sy, sx), optional
        Voxel size in mm along the array axes (required for plain arrays without ``affine``).
    affine : (4, 4) array, optional
        Maps array indices ``(k, i, j, 1)`` to world RAS mm (any orientation, also oblique).
    sdd : float
        Source-to-detector distance (mm).
    height, width : int
        Detector rows and columns (``width`` defaults to ``height``).
    pixel_spacing : float or (dv, du), optional
        Detector pixel size (mm); default ``400 / max(height, width)`` (a 40 cm panel).
    offset : (y0, x0)
        Principal-point offset of the detector centre (mm, along rows and columns).
    sid : float
        Source-to-isocentre distance (mm) used by the view presets.
    isocentre : (3,), optional
        World point (RAS mm) about which poses are given; default the volume's centre.
    renderer : {"siddon", "trilinear"}
    step : float, optional
        Trilinear sample spacing (mm); default the smallest voxel size.
    attenuation : str
        HU-to-mu convention (:func:`mrct.physics.attenuation.hu_to_mu`).
    energy : float
        Effective energy (keV) of the attenuation convention.
    output : {"integral", "intensity", "neglog"}
        Default output of :meth:`forward`.
    i0, photons : float
        Incident intensity, and the photon count per pixel for Poisson noise (None = none).
    backend : {"auto", "cpu", "cuda"}
    dtype : torch dtype of the stored attenuation volume (float32 default).
    """

    def __init__(self, volume, spacing=None, *, affine=None, sdd: float = 1020.0,
                 height: int = 256, width: int | None = None, pixel_spacing=None,
                 offset=(0.0, 0.0), sid: float = 850.0, isocentre=None,
                 renderer: str = "siddon", step: float | None = None,
                 attenuation: str = "physical", energy: float = 70.0,
                 output: str = "integral", i0: float = 1.0, photons: float | None = None,
                 backend: str = "auto", dtype=torch.float32):  # fmt: skip
        super().__init__()
        arr, spacing, affine = self._unpack(volume, spacing, affine)
        if not isinstance(arr, torch.Tensor):
            arr = torch.as_tensor(np.asarray(arr))
        if arr.ndim != 3 or min(arr.shape) < 1:
            raise ValueError(f"volume must be a 3D array (D, H, W), got shape {tuple(arr.shape)}")
        if not (arr.is_floating_point() or arr.dtype in (torch.int16, torch.int32, torch.uint8,
                                                         torch.int8, torch.int64)):  # fmt: skip
            raise TypeError(f"volume must be real (HU), got {arr.dtype}")
        arr = arr.to(dtype)
        if not bool(torch.isfinite(arr).all()):
            raise ValueError("volume contains NaN or Inf")
        self.shape = tuple(arr.shape)
        if affine is None:
            if spacing is None:
                raise ValueError("spacing (mm) is required for a plain array without an affine")
            spacing = _as_spacing(spacing)
            affine = spl_affine(self.shape, spacing)
        else:
            spacing = None if spacing is None else _as_spacing(spacing)
            affine = _as_affine(affine, spacing)
        self.affine = affine
        self.spacing = tuple(float(v) for v in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
        self._inv = np.linalg.inv(affine)
        # detector
        width = height if width is None else width
        if int(height) != height or int(width) != width or height < 1 or width < 1:
            raise ValueError(f"height and width must be positive integers, got {height}, {width}")
        self.height, self.width = int(height), int(width)
        if not (sdd > 0 and math.isfinite(sdd)):
            raise ValueError(f"sdd must be positive (mm), got {sdd}")
        self.sdd = float(sdd)
        if pixel_spacing is None:
            pixel_spacing = 400.0 / max(self.height, self.width)
        ps = np.broadcast_to(np.asarray(pixel_spacing, dtype=np.float64), (2,))
        if not np.all(ps > 0) or not np.all(np.isfinite(ps)):
            raise ValueError(f"pixel_spacing must be positive (mm), got {pixel_spacing!r}")
        self.pixel_spacing = (float(ps[0]), float(ps[1]))
        off = np.broadcast_to(np.asarray(offset, dtype=np.float64), (2,))
        if not np.all(np.isfinite(off)):
            raise ValueError(f"offset must be finite (mm), got {offset!r}")
        self.offset = (float(off[0]), float(off[1]))
        if not (sid > 0 and math.isfinite(sid)):
            raise ValueError(f"sid must be positive (mm), got {sid}")
        self.sid = float(sid)
        if isocentre is None:
            centre = np.array([(s - 1) / 2 for s in self.shape] + [1.0])
            isocentre = (affine @ centre)[:3]
        iso = np.asarray(isocentre, dtype=np.float64)
        if iso.shape != (3,) or not np.all(np.isfinite(iso)):
            raise ValueError(f"isocentre must be a finite (3,) point in mm, got {isocentre!r}")
        self.isocentre = iso
        if renderer not in _RENDERERS:
            raise ValueError(f"renderer must be 'siddon' or 'trilinear', got {renderer!r}")
        self.renderer = renderer
        self.step = min(self.spacing) if step is None else float(step)
        if not (self.step > 0 and math.isfinite(self.step)):
            raise ValueError(f"step must be positive (mm), got {step}")
        if output not in _OUTPUTS:
            raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}")
        self.output = output
        self.i0 = float(i0)
        self.photons = photons
        if backend not in ("auto", "cpu", "cuda"):
            raise ValueError(f'backend must be "auto", "cpu" or "cuda", got {backend!r}')
        self.backend = backend
        self.attenuation = attenuation
        self.energy = energy
        if arr.requires_grad:
            self._hu = arr
            self.register_buffer("mu", None)
        else:
            self._hu = None
            self.register_buffer("mu", hu_to_mu(arr, attenuation, energy).contiguous())

    @staticmethod
    def _unpack(volume, spacing, affine):
        if hasattr(volume, "array") and hasattr(volume, "affine"):  # mrct.data.Volume
            if affine is None:
                affine = volume.affine
            return volume.array, spacing, affine
        if isinstance(volume, torch.Tensor) or isinstance(volume, np.ndarray):
            return volume, spacing, affine
        raise TypeError(
            f"volume must be a mrct.data.Volume, torch.Tensor or numpy array, got "
            f"{type(volume).__name__}"
        )

    def extra_repr(self) -> str:
        return (f"volume={self.shape}, spacing={self.spacing}, detector=({self.height}, "
                f"{self.width}), pixel_spacing={self.pixel_spacing}, sdd={self.sdd}, "
                f"renderer={self.renderer!r}")  # fmt: skip

    # -- geometry -------------------------------------------------------------------------------
    def attenuation_volume(self) -> torch.Tensor:
        """The attenuation volume (D, H, W), mm^-1 (with the HU graph if the input had one)."""
        if self.mu is not None:
            return self.mu
        return hu_to_mu(self._hu, self.attenuation, self.energy)

    def pose(self, rotation=None, translation=None, *, view=None, lao=None, cranial=None,
             parameterization: str = "euler_angles", convention: str = "ZXY",
             degrees: bool = False) -> Pose:  # fmt: skip
        """Build a :class:`Pose` from a view name, C-arm angles (degrees) or rotation and
        translation (relative to the isocentre, mm)."""
        if view is not None:
            if rotation is not None or translation is not None or lao is not None:
                raise ValueError("give either view=, lao=/cranial= or rotation and translation")
            return view_pose(view, self.sid)
        if lao is not None or cranial is not None:
            if rotation is not None or translation is not None:
                raise ValueError("give either lao=/cranial= or rotation and translation")
            return carm_pose(0.0 if lao is None else lao, 0.0 if cranial is None else cranial,
                             self.sid)  # fmt: skip
        if rotation is None or translation is None:
            raise ValueError("a pose needs view=, lao=/cranial=, or both rotation and translation")
        r_shape = tuple(getattr(rotation, "shape", np.shape(rotation)))
        t_shape = tuple(getattr(translation, "shape", np.shape(translation)))
        if (parameterization != "matrix" and r_shape[-2:] == (3, 3)
                and t_shape[:-1] != r_shape[:-1]):  # fmt: skip
            # a 3 x 3 matrix would silently become three Euler / axis-angle triples
            raise ValueError(
                f"rotation of shape {r_shape} looks like a rotation matrix, but "
                f"parameterization={parameterization!r} reads it as {r_shape[-2]} triples; pass "
                "parameterization='matrix' (or a translation of shape (..., 3, 3) for "
                "several poses)"
            )
        return Pose.from_parameters(rotation, translation, parameterization, convention, degrees)

    def detector_vectors(self, pose: Pose):
        """World (RAS mm) source ``(P, 3)``, centre of pixel (0, 0), column and row steps."""
        R, t = pose.R.reshape(-1, 3, 3), pose.t.reshape(-1, 3)
        iso = torch.as_tensor(self.isocentre, dtype=R.dtype, device=R.device)
        dv, du = self.pixel_spacing
        y0, x0 = self.offset
        c0 = torch.tensor([-(self.width - 1) / 2 * du + x0, -(self.height - 1) / 2 * dv + y0,
                           self.sdd], dtype=R.dtype, device=R.device)  # fmt: skip
        src = iso + t
        det = src + (R @ c0)
        return src, det, R[:, :, 0] * du, R[:, :, 1] * dv

    def _index_geometry(self, pose: Pose):
        src, det, eu, ev = (v.detach().cpu().double().numpy() for v in self.detector_vectors(pose))
        Ai = self._inv
        to_idx = lambda p: p @ Ai[:3, :3].T + Ai[:3, 3]  # noqa: E731
        return [to_idx(src), to_idx(det), eu @ Ai[:3, :3].T, ev @ Ai[:3, :3].T]

    def projector(self, pose: Pose | None = None, renderer: str | None = None,
                  check_finite: bool = True, **pose_kw) -> DRRProjector:  # fmt: skip
        """The linear map volume (mm^-1) -> line integrals for fixed poses (exact adjoint)."""
        pose = self.pose(**pose_kw) if pose is None else pose
        return DRRProjector(self.shape, self.affine[:3, :3], self._index_geometry(pose),
                            (self.height, self.width), renderer or self.renderer, self.step,
                            self.backend, check_finite)  # fmt: skip

    # -- rendering ------------------------------------------------------------------------------
    def forward(self, rotation=None, translation=None, *, view=None, lao=None, cranial=None,
                pose: Pose | None = None, parameterization: str = "euler_angles",
                convention: str = "ZXY", degrees: bool = False, volume=None,
                output: str | None = None, renderer: str | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """Render images ``(*pose.shape, height, width)``.

        Give ``view=`` ("ap", "pa", "lateral", a list of them), ``lao=`` / ``cranial=``
        (degrees), ``pose=`` or ``rotation`` and ``translation``. ``volume`` replaces the
        stored attenuation (same shape, mm^-1). If the pose requires grad, the pure-torch
        trilinear renderer is used so gradients reach it.
        """
        if pose is None:
            pose = self.pose(rotation, translation, view=view, lao=lao, cranial=cranial,
                             parameterization=parameterization, convention=convention,
                             degrees=degrees)  # fmt: skip
        mu = self.attenuation_volume() if volume is None else volume
        if not isinstance(mu, torch.Tensor) or mu.shape != self.shape:
            raise ValueError(f"volume must be a tensor of shape {self.shape}")
        lead = pose.shape
        if pose.R.requires_grad or pose.t.requires_grad:
            img = self._render_torch(mu, pose)
        else:
            # the stored volume was checked once at construction
            proj = self.projector(pose, renderer, check_finite=volume is not None)
            img = proj(mu)
        img = img.reshape(lead + (self.height, self.width))
        return self._output(img, output or self.output, generator)

    def _output(self, p, output, generator):
        if output not in _OUTPUTS:
            raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}")
        if output == "integral":
            return p
        trans = torch.exp(-p)
        if self.photons is not None:
            n = float(self.photons)
            if not n > 0:
                raise ValueError(f"photons must be positive, got {self.photons}")
            counts = torch.poisson((n * trans).detach(), generator=generator)
            # keep the gradient of the mean (straight-through) for differentiable pipelines
            trans = trans + (counts / n - trans).detach()
        if output == "intensity":
            return self.i0 * trans
        return -torch.log(trans.clamp_min(0.5 / float(self.photons or 1e12)))

    def _render_torch(self, mu: torch.Tensor, pose: Pose, max_samples: int = 2**22):
        """Pure-torch trilinear renderer: the trilinear kernel's samples via ``grid_sample``."""
        if min(self.shape) < 2:
            raise ValueError("pose gradients need a volume with at least 2 voxels per axis")
        dt = mu.dtype
        src, det, eu, ev = self.detector_vectors(pose.to(dtype=dt, device=mu.device))
        Ai = torch.as_tensor(self._inv, dtype=dt, device=mu.device)
        r = torch.arange(self.height, dtype=dt, device=mu.device)
        c = torch.arange(self.width, dtype=dt, device=mu.device)
        pix = (det[:, None, None, :] + c[None, None, :, None] * eu[:, None, None, :]
               + r[None, :, None, None] * ev[:, None, None, :])  # (P, R, C, 3) world  # fmt: skip
        dw = pix - src[:, None, None, :]
        L = torch.linalg.vector_norm(dw, dim=-1)  # (P, R, C)
        o = src @ Ai[:3, :3].T + Ai[:3, 3]  # (P, 3) index
        d = dw @ Ai[:3, :3].T  # (P, R, C, 3)
        # global sample range (no gradient needed: samples outside the support are zero)
        with torch.no_grad():
            n = torch.tensor(self.shape, dtype=dt, device=mu.device)
            oo = o[:, None, None, :].expand_as(d)
            safe = torch.where(d == 0, torch.full_like(d, 1e-30), d)
            ta, tb = (-1.0 - oo) / safe, (n - oo) / safe
            t0 = torch.minimum(ta, tb).amax(-1).clamp(0.0, 1.0)
            t1 = torch.maximum(ta, tb).amin(-1).clamp(0.0, 1.0)
            hit = t1 > t0
            if not bool(hit.any()):
                return torch.zeros(L.shape, dtype=dt, device=mu.device) * mu.sum() * 0
            m_lo = int(torch.ceil((t0 * L / self.step)[hit].min()))
            m_hi = int(torch.floor((t1 * L / self.step)[hit].max()))
        scale = 2.0 / (n - 1)  # index -> normalised [-1, 1] (align_corners=True)
        vol = mu[None, None]
        P, R, C = L.shape
        chunk = max(1, max_samples // (P * R * C))
        total = torch.zeros((P, R, C), dtype=dt, device=mu.device)
        for m0 in range(m_lo, m_hi + 1, chunk):
            m = torch.arange(m0, min(m0 + chunk, m_hi + 1), dtype=dt, device=mu.device)
            t = m[None, None, None, :] * (self.step / L)[..., None]  # (P, R, C, M)
            pos = o[:, None, None, None, :] + t[..., None] * d[:, :, :, None, :]
            g = (pos * scale - 1.0).flip(-1)  # (x, y, z) = (j, i, k)
            s = torch.nn.functional.grid_sample(vol, g.reshape(1, P * R, C * m.numel(), 1, 3),
                                                mode="bilinear", padding_mode="zeros",
                                                align_corners=True)  # fmt: skip
            total = total + s.reshape(P, R, C, m.numel()).sum(-1)
        return total * self.step

    def label_thickness(self, labels, *, groups=None, pose: Pose | None = None,
                        **pose_kw) -> tuple[torch.Tensor, list]:  # fmt: skip
        """Projected thickness (mm) of labels along each ray (PAXRay-style label projection).

        Parameters
        ----------
        labels : Volume, tensor or ndarray (D, H, W) of integer labels on the CT's grid
        groups : None, list of int, or dict name -> int or list of int
            Channels: ``None`` = one per label value present (0 = background excluded); a list
            = one per label; a dict = one per named group of labels (unions).
        pose, **pose_kw : as for :meth:`forward` (``view=``, ``lao=``, rotation/translation).

        Returns
        -------
        (tensor (*pose.shape, n_channels, height, width), list of channel names/labels)
        """
        lab = labels.array if hasattr(labels, "array") else labels
        lab = lab.detach().cpu().numpy() if isinstance(lab, torch.Tensor) else np.asarray(lab)
        if lab.shape != self.shape:
            raise ValueError(f"labels must have the volume's shape {self.shape}, got {lab.shape}")
        if not np.issubdtype(lab.dtype, np.integer):
            if not np.all(lab == np.round(lab)):
                raise TypeError("labels must be integers")
        lab = np.ascontiguousarray(lab.astype(np.int32, copy=False))
        if lab.min(initial=0) < 0:
            raise ValueError("labels must be >= 0")
        n_lab = int(lab.max(initial=0)) + 1
        lut = -np.ones(n_lab, dtype=np.int64)
        if groups is None:
            present = np.flatnonzero(np.bincount(lab.ravel(), minlength=n_lab))
            names = [int(v) for v in present if v != 0]
            for ch, v in enumerate(names):
                lut[v] = ch
        else:
            items = groups.items() if isinstance(groups, dict) else [(int(g), g) for g in groups]
            names = []
            for ch, (name, ids) in enumerate(items):
                names.append(name)
                for v in np.atleast_1d(ids):
                    v = int(v)
                    if v < 0:
                        raise ValueError(f"label ids must be >= 0, got {v}")
                    if v < n_lab:
                        if lut[v] >= 0:
                            raise ValueError(f"label {v} appears in more than one group")
                        lut[v] = ch
        pose = self.pose(**pose_kw) if pose is None else pose
        geo = self._index_geometry(pose)
        lin = np.ascontiguousarray(self.affine[:3, :3])
        out = np.zeros((geo[0].shape[0], len(names), self.height, self.width), dtype=np.float32)
        mu_cuda = self.mu is not None and self.mu.is_cuda
        if len(names) and (self.backend == "cuda" or (self.backend == "auto" and mu_cuda)):
            from ..kernels import drr_cuda

            dev = self.mu.device if mu_cuda else torch.device("cpu")
            ts = [torch.as_tensor(a, device=dev) for a in (lab, lut, *geo, lin)]
            out_t = torch.as_tensor(out, device=dev)
            drr_cuda.label_thickness(*(kernel_array(t) for t in ts), kernel_array(out_t),
                                     stream=torch_stream(out_t))  # fmt: skip
            out = out_t.cpu().numpy()
        elif len(names):
            drr_cpu.label_thickness(lab, lut, *geo, lin, out)
        res = torch.from_numpy(out).reshape(pose.shape + out.shape[1:])
        return res, names
