"""Per-point arithmetic of the NUFFT spreading and interpolation kernels, CPU and CUDA.

A non-uniform point at grid coordinate ``u`` (in oversampled-grid cells, any real value; the
grid is periodic) touches the ``w`` grid nodes ``l0 + i``, ``l0 = ceil(u - w / 2)``,
``i = 0 .. w-1``, with weights ``phi(u - l0 - i)``, where ``phi`` is the "exponential of
semicircle" kernel ``exp(beta (sqrt(1 - (2 x / w)^2) - 1))`` (Barnett, Magland & af Klinteberg,
SIAM J. Sci. Comput. 41(5), 2019). As in FINUFFT, each tap's weight is evaluated as a
polynomial in the fractional offset ``x = u - l0 - (w / 2 - 1)`` in (0, 1] (Horner's rule):
``coeffs[i, d]`` holds tap ``i``'s coefficient of ``x^d``, highest degree first.

Grids and values are float arrays with a trailing (real, imag) axis, so the same code runs on
the CPU and, with atomic adds, on the GPU.
"""

from __future__ import annotations

import math
from types import SimpleNamespace


def build(jit, add):
    """Compile the shared per-point functions with ``jit``.

    ``add(grid, b, i, j, c, v)`` accumulates ``v`` into ``grid[b, i, j, c]`` (plain ``+=`` on
    the CPU where every worker owns its grid; an atomic add on the GPU).
    """

    @jit
    def taps(u, w, coeffs, out):
        """Fill ``out[:w]`` with the kernel weights of coordinate ``u``; return ``l0``."""
        l0 = int(math.ceil(u - 0.5 * w))
        x = u - l0 - (0.5 * w - 1.0)
        deg = coeffs.shape[1]
        for i in range(w):
            acc = coeffs[i, 0]
            for d in range(1, deg):
                acc = acc * x + coeffs[i, d]
            out[i] = acc
        return l0

    @jit
    def interp_point(grid, b, l0r, l0c, wr, wc, w):
        """Sum of ``grid[b]`` over the w x w taps; returns (real, imag)."""
        n1 = grid.shape[1]
        n2 = grid.shape[2]
        re = 0.0
        im = 0.0
        inside = l0c >= 0 and l0c + w <= n2
        for a in range(w):
            ii = l0r + a
            if ii < 0:
                ii += n1
            elif ii >= n1:
                ii -= n1
            sre = 0.0
            sim = 0.0
            if inside:  # no wrap-around along the row: contiguous reads
                for c in range(w):
                    sre += wc[c] * grid[b, ii, l0c + c, 0]
                    sim += wc[c] * grid[b, ii, l0c + c, 1]
            else:
                for c in range(w):
                    jj = (l0c + c) % n2
                    sre += wc[c] * grid[b, ii, jj, 0]
                    sim += wc[c] * grid[b, ii, jj, 1]
            re += wr[a] * sre
            im += wr[a] * sim
        return re, im

    @jit
    def spread_point(grid, b, l0r, l0c, wr, wc, w, vre, vim):
        """Add value (vre, vim) times the w x w taps into ``grid[b]``."""
        n1 = grid.shape[1]
        n2 = grid.shape[2]
        inside = l0c >= 0 and l0c + w <= n2
        for a in range(w):
            ii = l0r + a
            if ii < 0:
                ii += n1
            elif ii >= n1:
                ii -= n1
            fr = wr[a] * vre
            fi = wr[a] * vim
            if inside:
                for c in range(w):
                    add(grid, b, ii, l0c + c, 0, wc[c] * fr)
                    add(grid, b, ii, l0c + c, 1, wc[c] * fi)
            else:
                for c in range(w):
                    jj = (l0c + c) % n2
                    add(grid, b, ii, jj, 0, wc[c] * fr)
                    add(grid, b, ii, jj, 1, wc[c] * fi)

    return SimpleNamespace(taps=taps, interp_point=interp_point, spread_point=spread_point)
