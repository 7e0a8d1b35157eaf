"""k-space undersampling masks: fastMRI's 1D column masks and 2D variable-density Poisson disc.

The column masks reproduce ``fastmri/data/subsample.py`` draw for draw (same
``numpy.random.RandomState`` calls in the same order), so a seed gives the same mask as
fastMRI. Only the layout differs: mrct k-space is complex ``(..., H, W)`` with phase encoding
along ``W`` (fastMRI: a trailing real/imaginary axis, ``(..., H, W, 2)``, masks
``(..., 1, W, 1)``), so masks are float32 numpy arrays of shape ``(1, W)`` that broadcast over
the ``H`` readout rows. Use ``torch.from_numpy(mask)`` to hand one to
:class:`mrct.physics.cartesian.CartesianMRI`.

Definitions, with ``N = W`` columns and a ``(center_fraction, acceleration)`` pair:

* ``num_low_frequencies = round(N * center_fraction)`` (Python's round: half to even); the
  fully sampled centre block is columns ``[pad, pad + num_low)`` with
  ``pad = (N - num_low + 1) // 2``;
* :class:`RandomMask`: every column is also kept with probability
  ``(N / acceleration - num_low) / (N - num_low)``, so the expected number of columns is
  ``N / acceleration``;
* :class:`EquispacedMask`: columns ``around(arange(offset, N - 1, a))`` with the adjusted
  spacing ``a = acceleration (num_low - N) / (num_low acceleration - N)`` (so that about
  ``N / acceleration`` columns are sampled in all) and a random ``offset`` in
  ``[0, round(a))``: fastMRI's ``EquispacedMaskFractionFunc`` (called ``EquispacedMaskFunc``
  before fastMRI 0.2, and used for the public multicoil data). ``adjust_acceleration=False``
  gives fastMRI >= 0.2's ``EquiSpacedMaskFunc`` instead: columns ``offset::acceleration``.

With several pairs, each call picks one uniformly (``rng.randint(len(pairs))``; with
``allow_any_combination`` the centre fraction and the acceleration are drawn independently by
``rng.choice``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

__all__ = ["RandomMask", "EquispacedMask", "poisson_disc_mask"]


@contextlib.contextmanager
def _temp_seed(rng: np.random.RandomState, seed):
    """Seed ``rng`` for the block and restore its state afterwards (fastMRI's ``temp_seed``)."""
    if seed is None:
        yield
        return
    state = rng.get_state()
    rng.seed(seed)
    try:
        yield
    finally:
        rng.set_state(state)


class _ColumnMask:
    """Base class of the fastMRI-style 1D column masks (see the module docstring).

    Parameters
    ----------
    center_fractions : sequence of float in [0, 1]
        Fractions of the columns forming the fully sampled centre block.
    accelerations : sequence of float >= 1
        Undersampling factors, paired with ``center_fractions``.
    seed : int, optional
        Seed of the object's own ``numpy.random.RandomState``; calls without a ``seed``
        draw from it in turn.
    allow_any_combination : bool
        Draw the centre fraction and the acceleration independently.
    """

    def __init__(
        self,
        center_fractions: Sequence[float],
        accelerations: Sequence[float],
        seed: int | None = None,
        allow_any_combination: bool = False,
    ):
        cfs = [float(c) for c in np.atleast_1d(center_fractions)]
        accs = [float(a) for a in np.atleast_1d(accelerations)]
        if len(cfs) == 0 or len(accs) == 0:
            raise ValueError("center_fractions and accelerations must not be empty")
        if len(cfs) != len(accs) and not allow_any_combination:
            raise ValueError(
                f"center_fractions ({len(cfs)}) and accelerations ({len(accs)}) must have the "
                "same length unless allow_any_combination=True"
            )
        if not all(0.0 <= c <= 1.0 for c in cfs):
            raise ValueError(f"center_fractions must be in [0, 1], got {cfs}")
        if not all(np.isfinite(a) and a >= 1.0 for a in accs):
            raise ValueError(f"accelerations must be finite and >= 1, got {accs}")
        # keep the user's values (ints stay ints) for exact replication of fastMRI arithmetic
        self.center_fractions = list(np.atleast_1d(center_fractions).tolist())
        self.accelerations = list(np.atleast_1d(accelerations).tolist())
        self.allow_any_combination = bool(allow_any_combination)
        self.rng = np.random.RandomState(seed)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(center_fractions={self.center_fractions}, "
            f"accelerations={self.accelerations})"
        )

    def choose_acceleration(self) -> tuple[float, float]:
        """Draw a ``(center_fraction, acceleration)`` pair from the object's generator."""
        if self.allow_any_combination:
            return self.rng.choice(self.center_fractions), self.rng.choice(self.accelerations)
        choice = self.rng.randint(len(self.center_fractions))
        return self.center_fractions[choice], self.accelerations[choice]

    @staticmethod
    def _num_cols(shape) -> int:
        shape = tuple(int(s) for s in shape)
        if len(shape) < 2:
            raise ValueError(f"shape must be the k-space shape (..., H, W), got {shape}")
        if shape[-1] == 2:
            raise ValueError(
                f"shape {shape} ends in 2, which looks like fastMRI's real/imaginary axis; "
                "mrct k-space is complex (..., H, W): pass shape[:-1]"
            )
        if shape[-1] < 1:
            raise ValueError(f"shape must have at least one column, got {shape}")
        return shape[-1]

    def sample_mask(self, shape, offset: int | None = None, seed=None):
        """Centre mask, acceleration mask and ``num_low_frequencies`` (fastMRI's
        ``MaskFunc.sample_mask``); both masks are float32 ``(1, W)``."""
        num_cols = self._num_cols(shape)
        with _temp_seed(self.rng, seed):
            center_fraction, acceleration = self.choose_acceleration()
            num_low = round(num_cols * center_fraction)
            center = np.zeros(num_cols, dtype=np.float32)
            pad = (num_cols - num_low + 1) // 2
            center[pad : pad + num_low] = 1.0
            accel = self._acceleration_mask(num_cols, acceleration, offset, num_low)
        return center[None, :], accel.astype(np.float32)[None, :], int(num_low)

    def __call__(self, shape, *, seed=None, offset: int | None = None):
        """Draw a mask.

        Parameters
        ----------
        shape : sequence of int
            k-space shape ``(..., H, W)``; only ``W`` (the number of columns) is used.
        seed : int or tuple of int, optional
            Seeds the object's generator for this call only (its state is restored after),
            so the same ``(shape, seed)`` always gives the same mask, as in fastMRI.
        offset : int, optional
            First column of the equispaced lines (random when omitted; ignored by
            :class:`RandomMask`).

        Returns
        -------
        mask : ndarray, float32, shape (1, W)
            1 for sampled columns; broadcasts over the rows of ``(..., H, W)`` k-space.
        num_low_frequencies : int
            Width of the fully sampled centre block (columns).
        """
        center, accel, num_low = self.sample_mask(shape, offset, seed)
        return np.maximum(center, accel), num_low

    def _acceleration_mask(self, num_cols, acceleration, offset, num_low) -> np.ndarray:
        raise NotImplementedError


class RandomMask(_ColumnMask):
    """fastMRI's ``RandomMaskFunc``: centre block plus columns kept at random with probability
    ``(N / acceleration - num_low) / (N - num_low)`` (see the module docstring).

    Examples
    --------
    >>> mask_func = RandomMask([0.08, 0.04], [4, 8])        # fastMRI knee defaults
    >>> mask, num_low = mask_func((15, 640, 368), seed=123)  # mask: (1, 368) float32
    """

    def _acceleration_mask(self, num_cols, acceleration, offset, num_low):
        if num_cols == num_low:
            prob = 0.0
        else:
            prob = (num_cols / acceleration - num_low) / (num_cols - num_low)
        return self.rng.uniform(size=num_cols) < prob


class EquispacedMask(_ColumnMask):
    """Equispaced columns plus the centre block (fastMRI's ``EquispacedMaskFractionFunc``).

    Parameters
    ----------
    center_fractions, accelerations, seed, allow_any_combination
        As for :class:`RandomMask`.
    adjust_acceleration : bool
        True (default): spacing adjusted for the centre block so that about
        ``N / acceleration`` columns are sampled in all (fastMRI ``EquispacedMaskFractionFunc``,
        the pre-0.2 ``EquispacedMaskFunc``). False: every ``acceleration``-th column from a
        random offset in ``[0, round(acceleration))`` (fastMRI >= 0.2 ``EquiSpacedMaskFunc``;
        needs integer accelerations).
    """

    def __init__(self, center_fractions: Sequence[float], accelerations: Sequence[float],
                 seed: int | None = None, allow_any_combination: bool = False,
                 adjust_acceleration: bool = True):  # fmt: skip
        super().__init__(center_fractions, accelerations, seed, allow_any_combination)
        self.adjust_acceleration = bool(adjust_acceleration)
        if not self.adjust_acceleration and any(float(a) != int(a) for a in self.accelerations):
            raise ValueError(
                f"adjust_acceleration=False needs integer accelerations, got {self.accelerations}"
            )

    def _acceleration_mask(self, num_cols, acceleration, offset, num_low):
        mask = np.zeros(num_cols, dtype=np.float32)
        if not self.adjust_acceleration:
            acc = int(acceleration)
            if offset is None:
                offset = self.rng.randint(0, high=round(acceleration))
            mask[int(offset) :: acc] = 1.0
            return mask
        if num_low * acceleration >= num_cols:
            raise ValueError(
                f"the centre block alone ({num_low} of {num_cols} columns) reaches the "
                f"acceleration {acceleration}; lower the center fraction or the acceleration"
            )
        adjusted_accel = (acceleration * (num_low - num_cols)) / (num_low * acceleration - num_cols)
        if offset is None:
            offset = self.rng.randint(0, high=round(adjusted_accel))
        samples = np.around(np.arange(offset, num_cols - 1, adjusted_accel)).astype(np.uint64)
        mask[samples] = 1.0
        return mask


def poisson_disc_mask(
    shape: tuple[int, int],
    acceleration: float,
    calib: tuple[int, int] = (24, 24),
    seed: int = 0,
    crop_corner: bool = True,
    *,
    max_attempts: int = 30,
    tol: float = 0.1,
) -> np.ndarray:
    """Variable-density Poisson-disc 2D sampling mask (``sigpy.mri.poisson``).

    Bridson's Poisson-disc sampling with a local minimum distance growing linearly with the
    k-space radius ``r`` (density ``~ 1 / (1 + s r)``); the slope ``s`` is found by bisection
    until the acceleration ``H W / n_sampled`` is within ``tol`` (absolute) of the request.
    The central ``calib`` block, rows ``[int(H/2 - ch/2), int(H/2 + ch/2))`` and likewise for
    columns, is fully sampled (the ESPIRiT/GRAPPA calibration region).

    Parameters
    ----------
    shape : (H, W)
        k-space shape.
    acceleration : float
        Target acceleration (> 1).
    calib : (int, int)
        Calibration block size (rows, columns).
    seed : int
        Random seed (deterministic masks); numpy's global random state is restored.
    crop_corner : bool
        Zero the corners beyond the inscribed ellipse (``r >= 1``).
    max_attempts, tol : int, float
        sigpy's candidate attempts per point and acceleration tolerance.

    Returns
    -------
    ndarray, float32, shape (H, W)
        1 for sampled points. ``torch.from_numpy`` gives a mask for ``CartesianMRI``.

    Raises
    ------
    ValueError
        For bad arguments, or when sigpy cannot reach the acceleration within ``tol``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 2:
        raise ValueError(f"shape must be (H, W) with H, W >= 2, got {shape}")
    acceleration = float(acceleration)
    if not (np.isfinite(acceleration) and acceleration > 1):
        raise ValueError(f"acceleration must be > 1, got {acceleration}")
    calib = tuple(int(c) for c in calib)
    if len(calib) != 2 or min(calib) < 0 or calib[0] > shape[0] or calib[1] > shape[1]:
        raise ValueError(f"calib must be (rows, cols) within {shape}, got {calib}")
    if calib[0] * calib[1] * acceleration > shape[0] * shape[1]:
        raise ValueError(
            f"the calibration block {calib} alone exceeds 1/{acceleration} of {shape}; lower "
            "the acceleration or the calibration size"
        )
    from sigpy.mri import poisson

    mask = poisson(
        shape,
        acceleration,
        calib=calib,
        dtype=np.float32,
        crop_corner=bool(crop_corner),
        seed=int(seed),
        max_attempts=int(max_attempts),
        tol=float(tol),
    )
    return np.ascontiguousarray(mask, dtype=np.float32)
