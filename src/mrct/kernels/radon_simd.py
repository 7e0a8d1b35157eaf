"""Explicit SIMD (LLVM intrinsics) for the CPU projector and the FBP backprojection.

LLVM's loop vectoriser leaves the pixel loop of the backprojection scalar (its two reads of the
detector row are indirect), so these intrinsics do ``L`` pixels at a time with vector
arithmetic and two hardware gathers (llvm.masked.gather; AVX-512/AVX2 gathers, scalarised
elsewhere). About 3x faster per pixel on AVX-512 than the scalar loop. Callers of the
backprojection runs guarantee that every bin read, int(p) and int(p) + 1, lies inside the
(zero-padded) row and that p >= -1e-3 (so that truncation is floor, or reads only the padding),
and that acc holds ``L`` values from j0. :func:`fwd_run` masks its gathers instead.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

L = 16  # lanes per vector run
_FAST = ("fast",)


def _splat(builder, x, vt):
    v = builder.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), vt.count), [0] * vt.count)
    return builder.shuffle_vector(v, ir.Constant(vt, ir.Undefined), mask)


def _sfx(al):
    return "f32" if al == 4 else "f64"


def _gather(builder, vt, al, addr, mask, passthru):
    """``llvm.masked.gather`` of the ``L`` elements at the integer addresses ``addr``."""
    et = vt.element
    ptv = ir.VectorType(et.as_pointer(), L)
    name = f"llvm.masked.gather.v{L}{_sfx(al)}.v{L}p0{_sfx(al)}"
    mod = builder.module
    fn = mod.globals.get(name)
    if fn is None:
        fnty = ir.FunctionType(vt, [ptv, ir.IntType(32), ir.VectorType(ir.IntType(1), L), vt])
        fn = ir.Function(mod, fnty, name=name)
    return builder.call(fn, [builder.inttoptr(addr, ptv), ir.Constant(ir.IntType(32), al), mask,
                             passthru])  # fmt: skip


def _lerp(builder, a0, a1, f):
    """``a0 + f (a1 - a0)``, lane-wise."""
    return builder.fadd(a0, builder.fmul(f, builder.fsub(a1, a0, flags=_FAST), flags=_FAST),
                        flags=_FAST)  # fmt: skip


def _lanes(builder, j0, vt):
    """The vector ``j0 + (0, 1, ..., L - 1)`` in the float type of ``vt``."""
    jf = builder.sitofp(j0, vt.element)
    lanes = ir.Constant(vt, [float(v) for v in range(L)])
    return builder.fadd(_splat(builder, jf, vt), lanes, flags=_FAST)


def _lerp_acc_codegen(context, builder, sig, args, p, w, vt, al):
    """acc[j0 : j0 + L] += w * (row[i] + f (row[i + 1] - row[i])), i = int(p), f = p - i."""
    acc_a = context.make_array(sig.args[0])(context, builder, args[0])
    row_a = context.make_array(sig.args[2])(context, builder, args[2])
    iv = builder.fptosi(p, ir.VectorType(ir.IntType(32), L))
    f = builder.fsub(p, builder.sitofp(iv, vt), flags=_FAST)
    i64v = ir.VectorType(ir.IntType(64), L)
    base = _splat(builder, builder.ptrtoint(row_a.data, ir.IntType(64)), i64v)
    addr0 = builder.add(base, builder.mul(builder.sext(iv, i64v), ir.Constant(i64v, [al] * L)))
    addr1 = builder.add(addr0, ir.Constant(i64v, [al] * L))
    mask = ir.Constant(ir.VectorType(ir.IntType(1), L), [1] * L)
    undef = ir.Constant(vt, ir.Undefined)
    val = _lerp(builder, _gather(builder, vt, al, addr0, mask, undef),
                _gather(builder, vt, al, addr1, mask, undef), f)  # fmt: skip
    dp = builder.bitcast(builder.gep(acc_a.data, [args[1]]), vt.as_pointer())
    d = builder.load(dp, align=al)
    builder.store(builder.fadd(d, builder.fmul(w, val, flags=_FAST), flags=_FAST), dp, align=al)
    return context.get_dummy_value()


def _bp_types_ok(acc, row):
    return (
        isinstance(acc, types.Array)
        and isinstance(row, types.Array)
        and acc.dtype == row.dtype
        and acc.dtype in (types.float32, types.float64)
        and acc.layout == "C"
        and row.layout in ("C", "A")
    )


def _bp_codegen(points):
    """Codegen of a backprojection run: ``points(builder, jv, c)`` gives the bin coordinates
    ``p`` and weights ``w`` of the ``L`` pixels ``jv`` from the scalar arguments ``c`` (args[3:],
    splatted, in the data's dtype)."""

    def codegen(context, builder, sig, args):
        dt_ = sig.args[0].dtype
        vt = ir.VectorType(context.get_value_type(dt_), L)
        c = [_splat(builder, context.cast(builder, args[k], sig.args[k], dt_), vt)
             for k in range(3, len(args))]  # fmt: skip
        p, w = points(builder, _lanes(builder, args[1], vt), c)
        return _lerp_acc_codegen(context, builder, sig, args, p, w, vt, dt_.bitwidth // 8)

    return codegen


def _parallel_points(builder, jv, c):
    t0, dt, w = c
    return builder.fadd(t0, builder.fmul(jv, dt, flags=_FAST), flags=_FAST), w


def _flat_points(builder, jv, c):
    p0, pj, l0, lj, cf, wf = c
    den = builder.fadd(l0, builder.fmul(jv, lj, flags=_FAST), flags=_FAST)
    inv = builder.fdiv(ir.Constant(jv.type, [1.0] * L), den, flags=_FAST)
    num = builder.fadd(p0, builder.fmul(jv, pj, flags=_FAST), flags=_FAST)
    p = builder.fadd(builder.fmul(num, inv, flags=_FAST), cf, flags=_FAST)
    return p, builder.fmul(wf, builder.fmul(inv, inv, flags=_FAST), flags=_FAST)


@intrinsic
def bp_run_parallel(typingctx, acc, j0, row, t0, dt, w):
    """``acc[j0 + l] += w * row(t0 + (j0 + l) dt)`` for l < L (linear interpolation)."""
    if not _bp_types_ok(acc, row):
        return None
    return types.void(acc, j0, row, t0, dt, w), _bp_codegen(_parallel_points)


@intrinsic
def bp_run_flat(typingctx, acc, j0, row, p0, pj, l0, lj, cf, wf):
    """Flat fan: ``inv = 1 / (l0 + j lj)``, ``p = (p0 + j pj) inv + cf``,
    ``acc[j] += wf inv^2 row(p)`` for j = j0 .. j0 + L - 1."""
    if not _bp_types_ok(acc, row):
        return None
    return types.void(acc, j0, row, p0, pj, l0, lj, cf, wf), _bp_codegen(_flat_points)


@intrinsic
def fwd_run(typingctx, img2, m0, p0, slope, n_minor, s_major, s_minor):
    """Sum over the L samples m = m0 .. m0 + L - 1 of a Joseph ray of the 2D image ``img2``:
    ``q = p0 + slope m``, ``(1 - f) img[m, floor(q)] + f img[m, floor(q) + 1]`` with zero
    outside ``0 <= q < n_minor`` (masked gathers), where ``img[m, q]`` is the element at
    ``m s_major + q s_minor``; arithmetic in the image's dtype."""
    if not isinstance(img2, types.Array) or img2.dtype not in (types.float32, types.float64):
        return None
    if img2.layout != "C" or img2.ndim != 2:
        return None

    def codegen(context, builder, sig, args):
        dt_ = sig.args[0].dtype
        et = context.get_value_type(dt_)
        vt = ir.VectorType(et, L)
        al = dt_.bitwidth // 8
        i64v = ir.VectorType(ir.IntType(64), L)
        img_a = context.make_array(sig.args[0])(context, builder, args[0])
        m0, nmin, smaj, smin = (context.cast(builder, args[k], sig.args[k], types.int64)
                                for k in (1, 4, 5, 6))  # fmt: skip
        p0, sl = (context.cast(builder, args[k], sig.args[k], dt_) for k in (2, 3))
        mv = builder.add(_splat(builder, m0, i64v), ir.Constant(i64v, list(range(L))))
        q = builder.fadd(_splat(builder, p0, vt),
                         builder.fmul(builder.sitofp(mv, vt), _splat(builder, sl, vt), flags=_FAST),
                         flags=_FAST)  # fmt: skip
        mod = builder.module
        fl_name = f"llvm.floor.v{L}{_sfx(al)}"
        fl_fn = mod.globals.get(fl_name) or ir.Function(mod, ir.FunctionType(vt, [vt]), fl_name)
        qf = builder.call(fl_fn, [q])
        f = builder.fsub(q, qf, flags=_FAST)
        qi = builder.fptosi(qf, i64v)
        zero = ir.Constant(i64v, [0] * L)
        nv = _splat(builder, nmin, i64v)
        qi1 = builder.add(qi, ir.Constant(i64v, [1] * L))
        mask0 = builder.and_(builder.icmp_signed(">=", qi, zero), builder.icmp_signed("<", qi, nv))
        mask1 = builder.and_(builder.icmp_signed(">=", qi1, zero),
                             builder.icmp_signed("<", qi1, nv))  # fmt: skip
        base = _splat(builder, builder.ptrtoint(img_a.data, ir.IntType(64)), i64v)
        esz = ir.Constant(i64v, [al] * L)
        off = builder.add(builder.mul(mv, _splat(builder, smaj, i64v)),
                          builder.mul(qi, _splat(builder, smin, i64v)))  # fmt: skip
        addr0 = builder.add(base, builder.mul(off, esz))
        addr1 = builder.add(addr0, builder.mul(_splat(builder, smin, i64v), esz))
        zf = ir.Constant(vt, [0.0] * L)
        val = _lerp(builder, _gather(builder, vt, al, addr0, mask0, zf),
                    _gather(builder, vt, al, addr1, mask1, zf), f)  # fmt: skip
        r_name = f"llvm.vector.reduce.fadd.v{L}{_sfx(al)}"
        r_fn = mod.globals.get(r_name) or ir.Function(mod, ir.FunctionType(et, [et, vt]), r_name)
        return builder.call(r_fn, [ir.Constant(et, 0.0), val], fastmath=_FAST)

    return img2.dtype(img2, m0, p0, slope, n_minor, s_major, s_minor), codegen
