"""Numba CPU kernels of the 2D NUFFT: interpolation (grid -> points), spreading (points ->
grid), and the deconvolve-and-pad / crop-and-deconvolve steps around the FFT.

Conventions (see :mod:`.nufft_math` for the per-point arithmetic):

* grids are complex ``(B, n1, n2)`` arrays, handed to the spreading and interpolation kernels
  as their float view ``(B, n1, 2 * n2)`` (interleaved real, imag);
* ``coords`` (M, 2) float64 are grid coordinates (row, col) in cells, **sorted** so that
  neighbouring points touch neighbouring memory, and ``perm`` (M,) int64 maps sorted point
  ``j`` to its index ``perm[j]`` in the caller's order: values are read from and written to
  ``vals[b, perm[j]]`` directly, so no permuted copy of the data is ever made;
* the kernel weights are evaluated for blocks of 16 points at a time, the points in the SIMD
  lanes (Horner's rule with a fixed number of coefficients, ``nufft_math.n_coeffs``), then
  used for every batch element; the row runs have a fixed length ``lanes = (0,) *
  nufft_math.n_lanes(w)`` (a tuple whose length Numba compiles in as a constant);
* spreading is race-free without a grid per thread and in a single parallel region: the
  sorted points are grouped into row stripes (``offsets``; stripe ``s`` holds the points whose
  row coordinate lies in rows ``bounds[s] .. bounds[s + 1] - 1``, each stripe at least
  ``2 * spread_reach(w)`` rows high), and consecutive stripes into one band per thread with
  about equal point counts. A point writes only to rows within ``spread_reach(w)`` of its
  stripe. Each thread spreads its band's first ("head") stripe into a small private tile and
  the rest of the band straight into the grid, after zeroing the grid rows from its head
  stripe's end to the next band's head stripe's end (less the reach): exactly the rows that
  only it writes. The tiles are added into the grid afterwards (a few rows per band).
"""

from __future__ import annotations

from types import SimpleNamespace

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from . import nufft_math
from ._compile import PARALLEL as _par
from ._compile import inline as _jit

__all__ = [
    "interp_2d",
    "spread_2d",
    "spread_reach",
    "band_split",
    "pad_deconv_2d",
    "crop_deconv_2d",
    "count_nonfinite",
    "zero_fill",
]


# -- explicit SIMD on runs of N = len(lanes) floats ------------------------------------------
# Numba leaves LLVM's SLP vectoriser off and fully unrolls short constant loops before the loop
# vectoriser sees them, so runs of 8-32 floats would compile to scalar code. These intrinsics
# emit one LLVM vector operation (<N x float32|float64>, unaligned loads and stores) instead;
# LLVM splits it into the host's registers (AVX-512, AVX2, SSE, NEON). Callers guarantee that
# both arrays are contiguous and hold at least N elements from their first one.
def _run_ptr(context, builder, aryty, val, vt):
    ary = context.make_array(aryty)(context, builder, val)
    return builder.bitcast(ary.data, vt.as_pointer())


def _run_setup(context, builder, sig, args, n):
    """Element type, ``<n x element>`` vector type, alignment (bytes) and vector pointer to the
    data of the first argument of an intrinsic on runs of ``n`` floats."""
    dt = sig.args[0].dtype
    vt = ir.VectorType(context.get_value_type(dt), n)
    return dt, vt, dt.bitwidth // 8, _run_ptr(context, builder, sig.args[0], args[0], vt)


def _splat(builder, x, vt):
    n = vt.count
    v = builder.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), n), [0] * n)
    return builder.shuffle_vector(v, ir.Constant(vt, ir.Undefined), mask)


def _run_intrinsic(accumulate: bool):
    def typer(typingctx, dst, src, f, lanes):
        ok = (
            isinstance(lanes, types.UniTuple)
            and isinstance(dst, types.Array)
            and isinstance(src, types.Array)
            and dst.dtype == src.dtype
            and dst.dtype in (types.float32, types.float64)
        )
        if not ok:
            return None
        n = lanes.count

        def codegen(context, builder, sig, args):
            dt, vt, al, dp = _run_setup(context, builder, sig, args, n)
            sp = _run_ptr(context, builder, sig.args[1], args[1], vt)
            fv = _splat(builder, context.cast(builder, args[2], sig.args[2], dt), vt)
            r = builder.fmul(builder.load(sp, align=al, typ=vt), fv, flags=("fast",))
            if accumulate:
                r = builder.fadd(builder.load(dp, align=al, typ=vt), r, flags=("fast",))
            builder.store(r, dp, align=al)
            return context.get_dummy_value()

        return types.void(dst, src, f, lanes), codegen

    return intrinsic(typer)


_vaxpy = _run_intrinsic(True)  # dst[:N] += f * src[:N]
_vscale = _run_intrinsic(False)  # dst[:N] = f * src[:N]


@intrinsic
def _vhorner(typingctx, out, z, coeffs, ncoef):
    """``out[:N] = sum_d coeffs[d] z[:N]^(K-1-d)`` (Horner), N = len(z) lanes given by the
    ``_P``-long arrays, K = len(ncoef); ``coeffs`` a contiguous 1D array of K values."""
    if not isinstance(ncoef, types.UniTuple) or out.dtype != z.dtype or out.dtype != coeffs.dtype:
        return None
    k = ncoef.count

    def codegen(context, builder, sig, args):
        dt, vt, al, op = _run_setup(context, builder, sig, args, _P)
        zv = builder.load(_run_ptr(context, builder, sig.args[1], args[1], vt), align=al, typ=vt)
        cary = context.make_array(sig.args[2])(context, builder, args[2])
        et = context.get_value_type(dt)

        def coef(d):
            ptr = builder.gep(cary.data, [ir.Constant(ir.IntType(64), d)])
            return _splat(builder, builder.load(ptr, align=al, typ=et), vt)

        acc = coef(0)
        for d in range(1, k):
            acc = builder.fadd(builder.fmul(acc, zv, flags=("fast",)), coef(d), flags=("fast",))
        builder.store(acc, op, align=al)
        return context.get_dummy_value()

    return types.void(out, z, coeffs, ncoef), codegen


@intrinsic
def _vpattern(typingctx, kv, wdup, vre, vim, lanes):
    """``kv[:N] = wdup[:N] * (vre, vim, vre, vim, ...)``, N = len(lanes)."""
    floats = (types.float32, types.float64)
    if not isinstance(lanes, types.UniTuple) or kv.dtype not in floats or wdup.dtype not in floats:
        return None
    n = lanes.count

    def codegen(context, builder, sig, args):
        dt, vt, al, kp = _run_setup(context, builder, sig, args, n)
        st = sig.args[1].dtype
        wt = ir.VectorType(context.get_value_type(st), n)
        wp = _run_ptr(context, builder, sig.args[1], args[1], wt)
        wv = builder.load(wp, align=st.bitwidth // 8, typ=wt)
        if st != dt:  # float32 weights, float64 grid
            wv = builder.fpext(wv, vt)
        i32 = ir.IntType(32)
        pair = ir.Constant(vt, ir.Undefined)
        pair = builder.insert_element(pair, context.cast(builder, args[2], sig.args[2], dt),
                                      ir.Constant(i32, 0))  # fmt: skip
        pair = builder.insert_element(pair, context.cast(builder, args[3], sig.args[3], dt),
                                      ir.Constant(i32, 1))  # fmt: skip
        mask = ir.Constant(ir.VectorType(i32, n), [t % 2 for t in range(n)])
        pat = builder.shuffle_vector(pair, ir.Constant(vt, ir.Undefined), mask)
        builder.store(builder.fmul(wv, pat, flags=("fast",)), kp, align=al)
        return context.get_dummy_value()

    return types.void(kv, wdup, vre, vim, lanes), codegen


@_jit
def _add(row, j, v):
    row[j] += v


@_jit
def _contract(acc, wdup, w):
    re = wdup[0] * acc[0]
    im = wdup[0] * acc[1]
    for c in range(1, w):
        re += wdup[2 * c] * acc[2 * c]
        im += wdup[2 * c] * acc[2 * c + 1]
    return re, im


_nm = nufft_math.build(
    _jit,
    SimpleNamespace(add=_add, scale=_vscale, axpy=_vaxpy, scatter_axpy=_vaxpy,
                    pattern=_vpattern, contract=_contract),
)  # fmt: skip
_offset = _nm.offset
_interp_point = _nm.interp_point
_spread_point = _nm.spread_point

_P = 16  # points per block of kernel-weight evaluations (the SIMD lanes)


@_jit
def _block_taps(coords, j0, n, w, coeffs_t, ncoef, zb, lb, tb, td):
    """Weights of sorted points ``j0 .. j0 + n - 1`` (n <= _P): ``tb[dim, i, p]`` is tap
    ``i`` of point ``j0 + p`` along ``dim``, ``lb[dim, p]`` its first node, and
    ``td[p, 2 i] = td[p, 2 i + 1]`` the column taps duplicated for (real, imag) runs.
    ``coeffs_t`` is the transposed tap-polynomial array (taps, n_coeffs)."""
    for dim in range(2):
        for p in range(n):
            l0, z = _offset(coords[j0 + p, dim], w)
            lb[dim, p] = l0
            zb[dim, p] = z
        for i in range(w):
            _vhorner(tb[dim, i], zb[dim], coeffs_t[i], ncoef)
    for p in range(n):
        for i in range(w):
            v = tb[1, i, p]
            td[p, 2 * i] = v
            td[p, 2 * i + 1] = v


@_jit
def _scratch(coeffs_t, grid, nl):
    tb = np.zeros((2, nufft_math.MAX_TAPS, _P), dtype=coeffs_t.dtype)
    td = np.zeros((_P, 2 * nufft_math.MAX_TAPS), dtype=coeffs_t.dtype)
    zb = np.zeros((2, _P), dtype=coeffs_t.dtype)
    lb = np.zeros((2, _P), dtype=np.int64)
    acc = np.zeros(nl, dtype=grid.dtype)
    return tb, td, zb, lb, acc


@njit(**_par)
def interp_2d(grid, coords, perm, w, coeffs_t, lanes, ncoef, out, n_chunks):
    """Interpolate oversampled grids at non-uniform points.

    grid : (B, n1, 2 n2) float (interleaved real, imag); coords : (M, 2) float64 sorted grid
    coordinates (row, col) in cells; perm : (M,) int64, sorted point j is output point
    ``perm[j]``; w : kernel width; coeffs_t : (16, n_coeffs(w)) transposed tap polynomials
    (dtype of grid); lanes : ``(0,) * n_lanes(w)``; ncoef : ``(0,) * n_coeffs(w)``;
    out : (B, M, 2) float, overwritten; n_chunks : parallel work items.
    """
    M = coords.shape[0]
    B = grid.shape[0]
    nl = len(lanes)
    for ch in prange(n_chunks):
        tb, td, zb, lb, acc = _scratch(coeffs_t, grid, nl)
        start = (M * ch) // n_chunks
        stop = (M * (ch + 1)) // n_chunks
        for j0 in range(start, stop, _P):
            n = min(_P, stop - j0)
            _block_taps(coords, j0, n, w, coeffs_t, ncoef, zb, lb, tb, td)
            for p in range(n):
                q = perm[j0 + p]
                l0r, l0c = lb[0, p], lb[1, p]
                wr = tb[0, :, p]
                wc = td[p]
                for b in range(B):
                    re, im = _interp_point(grid, b, l0r, l0c, wr, wc, w, nl, lanes, acc)
                    out[b, q, 0] = re
                    out[b, q, 1] = im


@_jit
def _spread_range(
    vals, coords, perm, w, coeffs_t, lanes, ncoef, grid, j_start, j_stop, row0, tb, td, zb, lb, kv
):
    """Spread sorted points ``j_start .. j_stop - 1`` into ``grid``, whose row 0 is grid row
    ``row0`` (0 for the full grid, the first row of a tile otherwise)."""
    B = vals.shape[0]
    nl = len(lanes)
    for j0 in range(j_start, j_stop, _P):
        n = min(_P, j_stop - j0)
        _block_taps(coords, j0, n, w, coeffs_t, ncoef, zb, lb, tb, td)
        for b in range(B):  # coil by coil: the block's rows of one grid stay in cache
            for p in range(n):
                q = perm[j0 + p]
                _spread_point(grid, b, lb[0, p] - row0, lb[1, p], tb[0, :, p], td[p], w, nl,
                              lanes, vals[b, q, 0], vals[b, q, 1], kv)  # fmt: skip


@njit(**_par)
def _spread_bands(
    vals, coords, perm, w, coeffs_t, lanes, ncoef, grid, offsets, bounds, bands, tiles, reach
):
    n1 = grid.shape[1]
    ns = bounds.shape[0] - 1
    for t in prange(bands.shape[0] - 1):
        s0 = bands[t]
        s1 = bands[t + 1]
        tb, td, zb, lb, kv = _scratch(coeffs_t, grid, len(lanes))
        # zero the rows that only this band writes: from the end of its head stripe to the end
        # of the next band's head stripe (less the reach)
        head_end_next = bounds[s1 + 1] if s1 < ns else n1 + bounds[bands[0] + 1]
        for r in range(bounds[s0 + 1] - reach, head_end_next - reach):
            grid[:, r % n1, :] = 0.0
        # head stripe: into this band's private tile
        tile = tiles[t]
        tile[:] = 0.0
        _spread_range(vals, coords, perm, w, coeffs_t, lanes, ncoef, tile, offsets[s0],
                      offsets[s0 + 1], bounds[s0] - reach, tb, td, zb, lb, kv)  # fmt: skip
        # the other stripes: straight into the grid
        _spread_range(vals, coords, perm, w, coeffs_t, lanes, ncoef, grid, offsets[s0 + 1],
                      offsets[s1], 0, tb, td, zb, lb, kv)  # fmt: skip


@njit(fastmath=True, nogil=True, cache=True)
def _add_tiles(grid, tiles, bounds, bands, reach):
    n1 = grid.shape[1]
    for t in range(bands.shape[0] - 1):
        r0 = bounds[bands[t]] - reach
        for r in range(tiles.shape[2]):
            rr = (r0 + r) % n1
            for b in range(grid.shape[0]):
                grid[b, rr, :] += tiles[t, b, r, :]


def spread_reach(w: int) -> int:
    """Rows beyond its stripe that a point's kernel may touch (with a margin of one)."""
    return w // 2 + 2


def band_split(offsets: np.ndarray, n_bands: int) -> np.ndarray:
    """Stripe indices (n + 1,) starting each of ``n <= n_bands`` bands of whole stripes with
    about equal numbers of points (each band at least one stripe)."""
    ns = offsets.shape[0] - 1
    n = max(1, min(n_bands, ns))
    if n == 1:
        return np.array([0, ns], dtype=np.int64)
    target = offsets[-1] * np.arange(1, n) / n
    cuts = np.searchsorted(offsets[1:-1], target) + 1  # first stripe of bands 1 .. n-1
    cuts = np.unique(np.clip(cuts, 1, ns - 1))
    return np.concatenate([[0], cuts, [ns]]).astype(np.int64)


def spread_2d(vals, coords, perm, w, coeffs_t, lanes, ncoef, grid, offsets, bounds, n_bands=None):
    """Spread values at non-uniform points onto oversampled grids (adjoint of interp_2d).

    vals : (B, M, 2) float, in the caller's order; coords, perm, w, coeffs_t, lanes, ncoef as
    for :func:`interp_2d`; grid : (B, n1, 2 n2) float, **overwritten**; offsets :
    (n_stripes + 1,) int64, sorted points ``offsets[s] .. offsets[s + 1] - 1`` lie in row
    stripe ``s``, which covers grid rows ``bounds[s] .. bounds[s + 1] - 1``; every stripe must
    be at least ``2 * spread_reach(w)`` rows high (see the module docstring); n_bands : bands
    (default: ``numba.get_num_threads()``; the result does not depend on it beyond rounding).
    """
    reach = spread_reach(w)
    heights = np.diff(bounds)
    if heights.min() < 2 * reach or bounds[0] != 0 or bounds[-1] != grid.shape[1]:
        raise ValueError(f"stripes must tile the grid rows, each >= {2 * reach} rows high")
    bands = band_split(offsets, n_bands or numba.get_num_threads())
    tile_rows = int(heights[bands[:-1]].max()) + 2 * reach
    tiles = np.empty((len(bands) - 1, grid.shape[0], tile_rows, grid.shape[2]), grid.dtype)
    _spread_bands(vals, coords, perm, w, coeffs_t, lanes, ncoef, grid, offsets, bounds, bands,
                  tiles, reach)  # fmt: skip
    _add_tiles(grid, tiles, bounds, bands, reach)


@_jit
def _shift_rows(src, dst, dr, dc, to_grid):
    """The copy between an image and the corners of its oversampled grid, scaled by the
    deconvolution factors: image ``src`` into grid ``dst`` (``to_grid``) or grid ``src`` into
    image ``dst``. Image row i is grid row (i - H // 2) mod n1; image columns j < W // 2 go
    to the end of the grid row, the others to its start."""
    B, H, W = src.shape if to_grid else dst.shape
    n1, n2 = (dst.shape[1], dst.shape[2]) if to_grid else (src.shape[1], src.shape[2])
    w2 = W // 2
    for b in range(B):
        for i in range(H):
            gi = i - H // 2
            if gi < 0:
                gi += n1
            f = dr[i]
            for j in range(W):
                gj = j + n2 - w2 if j < w2 else j - w2
                if to_grid:
                    dst[b, gi, gj] = src[b, i, j] * (f * dc[j])
                else:
                    dst[b, i, j] = src[b, gi, gj] * (f * dc[j])


# two module-level kernels (not one builder's closures): Numba's disk cache keys a function
# by its qualified name, so two closures of one builder evict each other's cache entries
@njit(fastmath=True, nogil=True, cache=True)
def pad_deconv_2d(x, dr, dc, grid):
    """``grid[b, (i - H // 2) mod n1, (j - W // 2) mod n2] = x[b, i, j] dr[i] dc[j]``.

    x : (B, H, W) complex; dr (H,), dc (W,) real; grid : (B, n1, n2) complex with
    n1 >= H, n2 >= W. Only the image's cells are written: the rest of ``grid`` is left as it
    is (zero it once and reuse it). Serial: it is memory-bound and short.
    """
    _shift_rows(x, grid, dr, dc, True)


@njit(fastmath=True, nogil=True, cache=True)
def crop_deconv_2d(grid, dr, dc, out):
    """``out[b, i, j] = grid[b, (i - H // 2) mod n1, (j - W // 2) mod n2] dr[i] dc[j]``
    (the adjoint of :func:`pad_deconv_2d`); out : (B, H, W) complex, overwritten."""
    _shift_rows(grid, out, dr, dc, False)


@njit(nogil=True, cache=True)
def zero_fill(a):
    """Set the 1D float array ``a`` to zero."""
    a[:] = 0.0


@njit(nogil=True, cache=True)  # no fastmath: it would assume finite values
def count_nonfinite(a):
    """Number of NaN or infinite entries of the 1D float array ``a``."""
    bad = 0
    for k in range(a.shape[0]):
        if not np.isfinite(a[k]):
            bad += 1
    return bad
