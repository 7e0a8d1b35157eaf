"""Multipath haze: reverberation in the near-field layers plus off-axis clutter.

The haze RF ``h`` is simulated on its own and added to the tissue RF ``x`` (``y = x + h``,
the data model of Stevens et al., IEEE TMI 2024), scaled to a signal-to-haze ratio.

Model (docs/ultrasound.md):

* **Near-field layers**: skin, fat and muscle of given thicknesses and acoustic impedances
  ``Z`` (MRayl) under the probe's lens; each interface ``k`` reflects with
  ``R_k = (Z_k - Z_{k-1}) / (Z_k + Z_{k-1})`` and the probe face with ``R_probe``. The
  layers hold weak speckle and their interfaces are rough specular reflectors.
* **Reverberation**: a wave trapped between two interfaces ``a < b`` (the probe face
  included) makes ``m`` extra round trips before returning, so every near-field echo beyond
  ``b`` reappears ``m (d_b - d_a)`` deeper with amplitude ``(R_a R_b)^m`` (the classic
  reverberation series, Hindi et al. 2013; Pinton et al. 2011 simulate it with full-wave
  models). Each re-radiation adds a random lateral shift (rough, tilted interfaces and the
  spread of multiple paths), which turns the ghost echoes into the diffuse haze that fills
  the chambers of difficult echocardiograms.
* **Off-axis clutter**: strong reflectors (ribs, lung surfaces) outside the field of view
  that enter through the side and grating lobes.

The result is a set of point scatterers; :func:`simulate_haze_rf` runs them through
:func:`mrct.physics.ultrasound.simulate_rf`, and :func:`hazy_rf` mixes tissue and haze RF at
a chosen signal-to-haze ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..physics.ultrasound import Scatterers, simulate_rf

__all__ = ["HazeModel", "haze_scatterers", "simulate_haze_rf", "hazy_rf", "mix_at_shr"]


@dataclass(frozen=True)
class HazeModel:
    """Near-field layers and clutter of the haze simulator (mm, MRayl).

    ``layers`` is a tuple of ``(name, thickness_mm, impedance_MRayl, echo_db)`` from the skin
    down; ``tissue_impedance`` is the medium below them.
    """

    layers: tuple = (("skin", 2.0, 1.99, -10.0), ("fat", 8.0, 1.38, -20.0),
                     ("muscle", 10.0, 1.70, -8.0))  # fmt: skip
    lens_impedance: float = 1.45
    tissue_impedance: float = 1.62
    probe_reflection: float = 0.6
    orders: int = 4
    lateral_spread: float = 4.0
    interface_roughness: float = 0.15
    density: float = 2.0
    n_clutter: int = 300
    clutter_db: float = 0.0

    def interfaces(self) -> tuple[np.ndarray, np.ndarray]:
        """Depths (mm) of the probe face and each layer's lower interface, and their
        reflection coefficients (the probe face's first)."""
        z = np.cumsum([0.0] + [t for _, t, _, _ in self.layers])
        imp = [self.lens_impedance] + [zi for _, _, zi, _ in self.layers] + [self.tissue_impedance]
        r = [self.probe_reflection]
        for k in range(1, len(imp) - 1):
            r.append((imp[k + 1] - imp[k]) / (imp[k + 1] + imp[k]))
        # the skin surface (lens -> skin) is interface 0's partner only through the probe face
        return z, np.asarray(r)


def haze_scatterers(model: HazeModel, width: float, depth: float, *, seed=None,
                    fov_half_width: float | None = None) -> Scatterers:  # fmt: skip
    """Point scatterers whose echoes are the haze of ``model`` over ``[-width/2, width/2] x
    [0, depth]`` mm: the reverberation ghosts of the near-field speckle and interfaces (not
    the direct echoes, which belong to the tissue image) and off-axis clutter (outside
    ``|x| > fov_half_width``, default ``width / 2``)."""
    rng = np.random.default_rng(seed)
    z_if, refl = model.interfaces()
    xs, zs, amps = [], [], []
    # near-field speckle and rough specular interfaces
    for (_, _, _, db), top, bot in zip(model.layers, z_if[:-1], z_if[1:], strict=True):
        n = rng.poisson(model.density * width * (bot - top))
        xs.append(rng.uniform(-width / 2, width / 2, n))
        zs.append(rng.uniform(top, bot, n))
        amps.append(rng.standard_normal(n) * 10 ** (db / 20))
    n_if = max(int(width / 0.2), 2)
    for k in range(1, z_if.size):
        xs.append(np.linspace(-width / 2, width / 2, n_if))
        zs.append(z_if[k] + model.interface_roughness * rng.standard_normal(n_if))
        amps.append(np.full(n_if, refl[k]) * (1 + 0.3 * rng.standard_normal(n_if)))
    # the near-field echoes themselves belong to the tissue image: only their ghosts are haze
    sx, sz, sa = np.concatenate(xs), np.concatenate(zs), np.concatenate(amps)
    src = []
    # reverberation ghosts between every pair of interfaces a < b (probe face included)
    ghosts_x, ghosts_z, ghosts_a = [], [], []
    for a in range(z_if.size):
        for b in range(a + 1, z_if.size):
            gap = z_if[b] - z_if[a]
            rab = refl[a] * refl[b]
            deeper = sz >= z_if[b] - 1e-9
            for m in range(1, model.orders + 1):
                amp = rab**m
                if abs(amp) < 1e-4:
                    break
                shift = model.lateral_spread * np.sqrt(m)
                n = int(deeper.sum())
                gz = sz[deeper] + m * gap + 0.2 * rng.standard_normal(n)
                keep = gz <= depth
                ghosts_x.append(sx[deeper][keep] + shift * rng.standard_normal(int(keep.sum())))
                ghosts_z.append(gz[keep])
                ghosts_a.append(sa[deeper][keep] * amp)
    if ghosts_x:
        src.append((np.concatenate(ghosts_x), np.concatenate(ghosts_z), np.concatenate(ghosts_a)))
    # off-axis clutter: strong reflectors beside the field of view
    half = width / 2 if fov_half_width is None else fov_half_width
    if model.n_clutter:
        side = rng.choice([-1.0, 1.0], model.n_clutter)
        cx = side * (half + rng.uniform(2.0, 15.0, model.n_clutter))
        cz = rng.uniform(z_if[-1], depth, model.n_clutter)
        ca = rng.standard_normal(model.n_clutter) * 10 ** (model.clutter_db / 20)
        src.append((cx, cz, ca))
    if not src:
        return Scatterers(np.zeros(0), np.zeros(0), np.zeros(0))
    return Scatterers(*(np.concatenate(v) for v in zip(*src, strict=True)))


def simulate_haze_rf(probe, transmit, model: HazeModel | None = None, *, width: float,
                     depth: float, seed=None, **sim_kwargs) -> torch.Tensor:  # fmt: skip
    """Haze RF channel data of ``model`` (see :func:`haze_scatterers`) for one transmit."""
    sc = haze_scatterers(model or HazeModel(), width, depth, seed=seed)
    return simulate_rf(probe, sc, transmit, **sim_kwargs)


def mix_at_shr(
    x: torch.Tensor, h: torch.Tensor, shr_db: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, h_scaled)`` with ``y = x + h_scaled`` and ``10 log10(|x|^2 / |h_scaled|^2) =
    shr_db`` (signal-to-haze ratio; ``inf`` gives no haze)."""
    if np.isinf(shr_db) and shr_db > 0:
        return x.clone(), torch.zeros_like(h)
    ex, eh = float((x.double() ** 2).sum()), float((h.double() ** 2).sum())
    if eh == 0:
        raise ValueError("the haze is zero: cannot scale it to a signal-to-haze ratio")
    hs = h * float(np.sqrt(ex / eh * 10 ** (-shr_db / 10)))
    return x + hs, hs


def hazy_rf(probe, tissue, transmit, shr_db: float, model: HazeModel | None = None, *,
            seed=None, width: float | None = None, depth: float | None = None,
            **sim_kwargs):  # fmt: skip
    """Tissue RF ``x``, haze RF ``h`` (scaled) and ``y = x + h`` at signal-to-haze ratio
    ``shr_db`` (dB, over the whole channel data).

    ``tissue`` is a :class:`~mrct.physics.ultrasound.Scatterers` (or an
    :class:`~mrct.data.echo_phantoms.EchoPhantom`); the haze covers its extent unless
    ``width`` / ``depth`` are given. Returns ``(y, x, h)``.
    """
    sc = getattr(tissue, "scatterers", tissue)
    sc = Scatterers.coerce(sc)
    width = width if width is not None else float(2 * np.abs(sc.x).max())
    depth = depth if depth is not None else float(sc.z.max())
    x = simulate_rf(probe, sc, transmit, **sim_kwargs)
    sim_kwargs.setdefault("n_samples", x.shape[-1])
    h = simulate_haze_rf(probe, transmit, model, width=width, depth=depth, seed=seed, **sim_kwargs)
    y, hs = mix_at_shr(x, h, shr_db)
    return y, x, hs
