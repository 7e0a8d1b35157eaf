"""Per-point arithmetic of the NUFFT spreading and interpolation kernels, CPU and CUDA.

A non-uniform point at grid coordinate ``u`` (in oversampled-grid cells, any real value; the
grid is periodic) touches the ``w`` grid nodes ``l0 + i``, ``l0 = ceil(u - w / 2)``,
``i = 0 .. w-1``, with weights ``phi(u - l0 - i)``, where ``phi`` is the "exponential of
semicircle" kernel ``exp(beta (sqrt(1 - (2 x / w)^2) - 1))`` (Barnett, Magland & af Klinteberg,
SIAM J. Sci. Comput. 41(5), 2019). As in FINUFFT, each tap's weight is a polynomial, evaluated
by Horner's rule, in the centred fractional offset ``z = 2 (u - l0) - (w - 1)`` in (-1, 1]:
``coeffs[d, i]`` (shape ``(n_coeffs, n_taps)``, ``n_taps >= w``, zero columns beyond ``w`` and
zero leading rows allowed) holds tap ``i``'s coefficient of ``z^(n_coeffs - 1 - d)``. The
weights are computed in the precision of ``coeffs`` (float32 for complex64 data, float64 for
complex128); ``u`` and ``l0`` stay float64/int so that large grids keep the offset precision.

Grids are float arrays ``(B, n1, 2 * n2)`` holding interleaved (real, imag) pairs, i.e. the
float view of a complex ``(B, n1, n2)`` array, so that a row segment of ``w`` complex cells is
one contiguous run of ``2 w`` floats, handled by the run operations of ``ops`` (see
:func:`build`). The CUDA kernels use runs of exactly ``2 w`` floats; the CPU kernels use runs
of a fixed length ``nl = n_lanes(w)`` (8, 16 or 32 floats) as single SIMD operations, with
the surplus weights zero. Scratch arrays are passed in by the caller (no allocation per
point).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

MAX_TAPS = 16  #: widest kernel (coefficient arrays have this many tap columns)


def n_lanes(w: int) -> int:
    """Floats per row run of the CPU kernels for width ``w``: 8, 16 or 32 (>= 2 w)."""
    if not 1 <= w <= MAX_TAPS:
        raise ValueError(f"kernel width must be in 1..{MAX_TAPS}, got {w}")
    return 8 if w <= 4 else 16 if w <= 8 else 32


def n_coeffs(w: int) -> int:
    """Rows of the tap-polynomial array for width ``w`` (degree ``w + 3`` fits, zero-padded
    at the top to a fixed count per lane class so that the CPU kernels compile once per
    class)."""
    return n_lanes(w) // 2 + 4


def build(jit, ops):
    """Compile the shared per-point functions with ``jit``.

    ``ops`` provides the innermost operations on runs of ``n`` floats, where ``vn`` is
    whatever the kernels pass for the run length (the CPU kernels: a tuple whose length is the
    run length, for explicit SIMD code; the CUDA kernels: the int ``2 w``):

    * ``add(row, j, v)``: ``row[j] += v`` (atomic on the GPU);
    * ``scale(dst, src, f, vn)``: ``dst[:n] = f * src[:n]``;
    * ``axpy(dst, src, f, vn)``: ``dst[:n] += f * src[:n]`` (``dst`` private scratch);
    * ``scatter_axpy(dst, src, f, vn)``: the same into a grid row (atomic on the GPU; plain on
      the CPU, where no two workers touch the same rows at once);
    * ``pattern(kv, wc, vre, vim, vn)``: the row pattern ``kv[2 c] = wc_c vre``,
      ``kv[2 c + 1] = wc_c vim`` for ``c < n / 2``;
    * ``contract(acc, wc, w)``: ``(sum_c wc_c acc[2 c], sum_c wc_c acc[2 c + 1])``, c < w.

    ``wc`` holds the column weights ``wc_c`` in the back end's layout: plainly on the GPU
    (``wc[c]``), duplicated on the CPU (``wc[2 c] = wc[2 c + 1] = wc_c``, one SIMD run); the
    shared code only hands it to ``pattern`` and ``contract``.
    """
    add, scale, axpy, scatter_axpy = ops.add, ops.scale, ops.axpy, ops.scatter_axpy
    pattern, contract = ops.pattern, ops.contract

    @jit
    def offset(u, w):
        """First node ``l0`` and centred offset ``z`` (float64) of coordinate ``u``."""
        l0 = int(math.ceil(u - 0.5 * w))
        return l0, 2.0 * (u - l0) - (w - 1.0)

    @jit
    def horner(z, i, coeffs, nd):
        """Weight of tap ``i`` at centred offset ``z`` (``nd`` leading rows of ``coeffs``)."""
        v = coeffs[0, i]
        for d in range(1, nd):
            v = v * z + coeffs[d, i]
        return v

    @jit
    def taps(u, w, coeffs, out):
        """Fill ``out[:w]`` with the kernel weights of coordinate ``u``; return ``l0``.

        ``out`` (dtype of ``coeffs``) needs ``w + 1`` entries: its last one is scratch that
        rounds ``z`` to the weights' precision.
        """
        l0, z = offset(u, w)
        last = out.shape[0] - 1
        out[last] = z
        zc = out[last]
        for i in range(w):
            out[i] = horner(zc, i, coeffs, coeffs.shape[0])
        return l0

    @jit
    def wrap(i, n):
        """``i mod n`` for ``-n <= i < 2 n``."""
        if i < 0:
            return i + n
        if i >= n:
            return i - n
        return i

    @jit
    def interp_point(grid, b, l0r, l0c, wr, wc, w, nl, vn, acc):
        """``sum_a sum_c wr[a] wc[c] grid[b, l0r + a, l0c + c]`` (periodic); returns (re, im).

        ``nl`` (>= 2 w) floats per row run, ``vn`` its spec for ``ops``; ``acc`` is scratch
        of length >= nl in the grid's dtype: the rows are summed with weights ``wr`` into
        ``acc``, which is then contracted with ``wc``.
        """
        n1 = grid.shape[1]
        n2 = grid.shape[2] // 2
        if l0c >= 0 and 2 * l0c + nl <= 2 * n2:  # no wrap-around along the row
            c0 = 2 * l0c
            scale(acc, grid[b, wrap(l0r, n1), c0:], wr[0], vn)
            for a in range(1, w):
                axpy(acc, grid[b, wrap(l0r + a, n1), c0:], wr[a], vn)
        else:
            for t in range(2 * w):
                acc[t] = 0.0
            for a in range(w):
                ii = wrap(l0r + a, n1)
                f = wr[a]
                for c in range(w):
                    jj = 2 * wrap(l0c + c, n2)
                    acc[2 * c] += f * grid[b, ii, jj]
                    acc[2 * c + 1] += f * grid[b, ii, jj + 1]
        return contract(acc, wc, w)

    @jit
    def spread_point(grid, b, l0r, l0c, wr, wc, w, nl, vn, vre, vim, kv):
        """Add value (vre, vim) times the w x w weights into ``grid[b]`` (periodic).

        ``kv`` is scratch of length >= nl in the grid's dtype (the row pattern
        ``wc_c * (vre, vim)``, added to each row ``l0r + a`` times ``wr[a]``); the column
        weights must be zero beyond ``w``.
        """
        n1 = grid.shape[1]
        n2 = grid.shape[2] // 2
        pattern(kv, wc, vre, vim, vn)
        if l0c >= 0 and 2 * l0c + nl <= 2 * n2:
            c0 = 2 * l0c
            for a in range(w):
                scatter_axpy(grid[b, wrap(l0r + a, n1), c0:], kv, wr[a], vn)
        else:
            for a in range(w):
                ii = wrap(l0r + a, n1)
                f = wr[a]
                for c in range(w):
                    jj = 2 * wrap(l0c + c, n2)
                    add(grid[b, ii], jj, f * kv[2 * c])
                    add(grid[b, ii], jj + 1, f * kv[2 * c + 1])

    return SimpleNamespace(
        offset=offset, horner=horner, taps=taps, wrap=wrap, interp_point=interp_point,
        spread_point=spread_point,
    )  # fmt: skip
