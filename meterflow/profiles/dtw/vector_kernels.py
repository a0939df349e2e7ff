"""The DTW kernels, written as vector LLVM IR (a numba ``intrinsic``), and the loops that call them.

One call computes the squared DTW of a row profile ``x`` against the ``LANES`` column profiles of
a lane block (``lane_blocks``: slot-major, ``LANES`` doubles per slot), as vectors of ``VECTOR``
doubles. Every cell is ``(x - y)**2`` plus the minimum of its three neighbours: ``fsub``, ``fmul``,
``fadd`` without contraction and ``min`` as compare-and-select, the operations of dtaidistance in
the same order, so the distances are bit-identical.

One template, two distances: with weights ``wv`` (an array, not None) every cell costs
``(x - y)**2 * wv[|a - b|]`` (weighted DTW, ``variants.py``), multiplied in that order; without,
the plain DTW cell above. numba compiles the loops once per kind of ``wv``.

Narrow band (window ``2..NARROW_MAX``): row ``a`` has at most ``2w - 1`` cells. By their offset
``d = b - a + w - 1`` the neighbours of cell ``(a, d)`` are the previous row's cells ``d``
(diagonal) and ``d + 1`` (up) and this row's ``d - 1`` (left), so one row of state updated in
place is the whole DP, and it stays in vector registers (SSA values carried from row to row).
The column profiles are padded with ``w - 1`` slots of ``+inf`` on both sides
(``lane_blocks(x, pad=w - 1)``): a cell outside the profile costs ``inf`` and is never on a
path, so every row is the same straight-line code. One such kernel per window, chosen by a switch.

Wide band (any other window, unconstrained included): the previous row lives in a scratch row in
L1 cache, updated in place from left to right; the diagonal (the old value just read) and the
left neighbour (the value just written) are carried in registers, so a cell costs two loads and
one store. Only the cells inside the band are visited.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .lanes import LANES

VECTOR = 8  # doubles per LLVM vector (one zmm, or two ymm on AVX2-only machines)
VECTORS = 2  # vectors per narrow-band lane group: 16 profiles in flight (best of 4 to 32)
GROUP = VECTOR * VECTORS
NARROW_MAX = 8  # widest window of the register kernel (measured: the wide one equals it at 8)

_F64 = ir.DoubleType()
_I64 = ir.IntType(64)
_VEC = ir.VectorType(_F64, VECTOR)
_INF = ir.Constant(_VEC, [np.inf] * VECTOR)
_ZERO = ir.Constant(_VEC, [0.0] * VECTOR)


def column_pad(length: int, band: int) -> int:
    """Slots of ``+inf`` padding the column profiles need: ``band - 1`` for the narrow-band
    kernel, 0 for the wide one (``band`` as ``kernel.band_width``)."""
    return band - 1 if 2 <= band <= NARROW_MAX and band < length else 0


def _int(value: int) -> ir.Constant:
    return ir.Constant(_I64, value)


def _splat(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """A vector holding ``value`` in every lane."""
    one = builder.insert_element(ir.Constant(_VEC, ir.Undefined), value, _int(0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), VECTOR), [0] * VECTOR)
    return builder.shuffle_vector(one, ir.Constant(_VEC, ir.Undefined), zeros)


def _minimum(builder: ir.IRBuilder, a: ir.Value, b: ir.Value) -> ir.Value:
    """``a if a < b else b`` lane by lane (one ``vminpd``; no NaN can occur)."""
    return builder.select(builder.fcmp_ordered("<", a, b), a, b)


def _vector_at(builder: ir.IRBuilder, base: ir.Value, offset: ir.Value) -> ir.Value:
    """Pointer to the vector of doubles at ``base[offset]``."""
    return builder.bitcast(builder.gep(base, [offset], inbounds=True), _VEC.as_pointer())


def _cell(builder, xv, y, neighbours, weight=None):
    """``(x - y)**2 + min(neighbours)``, or ``(x - y)**2 * weight + min(neighbours)``."""
    best = neighbours[0]
    for other in neighbours[1:]:
        best = _minimum(builder, best, other)
    diff = builder.fsub(xv, y)
    cost = builder.fmul(diff, diff)
    if weight is not None:
        cost = builder.fmul(cost, weight)
    return builder.fadd(cost, best)


def _weight(builder: ir.IRBuilder, wv_ptr: ir.Value | None, shift: ir.Value) -> ir.Value | None:
    """The weight of cells ``shift = |a - b|`` apart in every lane (None: unweighted)."""
    if wv_ptr is None:
        return None
    return _splat(builder, builder.load(builder.gep(wv_ptr, [shift], inbounds=True)))


def _loop(builder: ir.IRBuilder, name: str, start: ir.Value, stop: ir.Value, carried, body):
    """Emit ``for i in range(start, stop)`` (at least one iteration) whose ``body(i, values)``
    returns the next ``carried`` values; returns their final values."""
    entry = builder.block
    loop = builder.function.append_basic_block(name)
    done = builder.function.append_basic_block(name + "_done")
    builder.branch(loop)
    builder.position_at_end(loop)
    i = builder.phi(_I64)
    i.add_incoming(start, entry)
    phis = [builder.phi(v.type) for v in carried]
    for phi, value in zip(phis, carried, strict=True):
        phi.add_incoming(value, entry)
    following = body(i, phis)
    step = builder.add(i, _int(1))
    i.add_incoming(step, builder.block)
    for phi, value in zip(phis, following, strict=True):
        phi.add_incoming(value, builder.block)
    builder.cbranch(builder.icmp_signed("<", step, stop), loop, done)
    builder.position_at_end(done)
    return following


def _narrow_band(builder, x_ptr, y_ptr, wv_ptr, out_ptr, length, w):
    """The register kernel for window ``w`` over all lane groups (``y`` padded by ``w - 1``;
    cell ``d`` of a row is ``|d - (w - 1)|`` slots off the diagonal)."""
    cells = 2 * w - 1
    for lane0 in range(0, LANES, GROUP):

        def row(a, state, lane0=lane0):
            xv = _splat(builder, builder.load(builder.gep(x_ptr, [a], inbounds=True)))
            new: list[ir.Value] = []
            for d in range(cells):
                weight = _weight(builder, wv_ptr, _int(abs(d - (w - 1))))
                slot = builder.mul(builder.add(a, _int(d)), _int(LANES))
                for v in range(VECTORS):
                    at = _vector_at(builder, y_ptr, builder.add(slot, _int(lane0 + v * VECTOR)))
                    near = [state[d * VECTORS + v]]  # diagonal
                    if d + 1 < cells:
                        near.append(state[(d + 1) * VECTORS + v])  # up
                    if d > 0:
                        near.append(new[(d - 1) * VECTORS + v])  # left
                    new.append(_cell(builder, xv, builder.load(at, align=8), near, weight))
            return new

        # before row 0 only the origin (-1, -1), at offset w - 1, is reachable
        start = [_ZERO if d == w - 1 else _INF for d in range(cells) for _ in range(VECTORS)]
        final = _loop(builder, f"narrow{w}_{lane0}", _int(0), length, start, row)
        for v in range(VECTORS):
            at = _vector_at(builder, out_ptr, _int(lane0 + v * VECTOR))
            builder.store(final[(w - 1) * VECTORS + v], at, align=8)


def _wide_band(builder, x_ptr, y_ptr, wv_ptr, row_ptr, out_ptr, length, band):
    """The scratch-row kernel for any ``band`` (``y`` unpadded; ``row`` holds slots x LANES)."""
    vectors = LANES // VECTOR

    def at(ptr, slot, v):
        offset = builder.add(builder.mul(slot, _int(LANES)), _int(v * VECTOR))
        return _vector_at(builder, ptr, offset)

    def clear(b, _):
        for v in range(vectors):  # row -1: unreachable everywhere
            builder.store(_INF, at(row_ptr, b, v), align=8)
        return []

    def dp_row(a, _):
        lo = builder.sub(builder.add(a, _int(1)), band)
        lo = builder.select(builder.icmp_signed("<", lo, _int(0)), _int(0), lo)
        hi = builder.add(a, band)
        hi = builder.select(builder.icmp_signed("<", hi, length), hi, length)
        xv = _splat(builder, builder.load(builder.gep(x_ptr, [a], inbounds=True)))
        at_edge = builder.icmp_signed("==", lo, _int(0))
        edge = builder.select(builder.icmp_signed("==", a, _int(0)), _ZERO, _INF)
        before = builder.select(at_edge, _int(0), builder.sub(lo, _int(1)))
        diagonals = [
            builder.select(at_edge, edge, builder.load(at(row_ptr, before, v), align=8))
            for v in range(vectors)
        ]

        def cell(b, carried):
            diag, left = carried[:vectors], carried[vectors:]
            shift = builder.sub(a, b)
            shift = builder.select(
                builder.icmp_signed("<", shift, _int(0)), builder.neg(shift), shift
            )
            weight = _weight(builder, wv_ptr, shift)
            ups, news = [], []
            for v in range(vectors):
                up = builder.load(at(row_ptr, b, v), align=8)
                y = builder.load(at(y_ptr, b, v), align=8)
                news.append(_cell(builder, xv, y, [diag[v], up, left[v]], weight))
                builder.store(news[-1], at(row_ptr, b, v), align=8)
                ups.append(up)
            return ups + news

        _loop(builder, "wide_cells", lo, hi, diagonals + [_INF] * vectors, cell)
        return []

    _loop(builder, "wide_clear", _int(0), length, [], clear)
    _loop(builder, "wide_rows", _int(0), length, [], dp_row)
    last = builder.sub(length, _int(1))
    for v in range(vectors):
        value = builder.load(at(row_ptr, last, v), align=8)
        builder.store(value, _vector_at(builder, out_ptr, _int(v * VECTOR)), align=8)


@intrinsic
def _squared_dtw(typingctx, x, yb, band, pad, wv, row, out):
    """``out[k] = dtw(x, column k of yb)**2`` for the ``LANES`` columns of the lane block ``yb``
    (padded by ``pad = column_pad(len(x), band)``), weighted by ``wv`` unless it is None;
    ``row`` is a (slots, LANES) scratch array."""
    weighted = not isinstance(wv, types.NoneType)

    def codegen(context, builder, signature, args):
        x_arr, y_arr, row_arr, out_arr = (
            context.make_array(signature.args[k])(context, builder, args[k]) for k in (0, 1, 5, 6)
        )
        wv_ptr = None
        if weighted:
            wv_ptr = context.make_array(signature.args[4])(context, builder, args[4]).data
        length = builder.extract_value(x_arr.shape, 0)
        band_value, pad_value = args[2], args[3]
        fn = builder.function
        done = fn.append_basic_block("dtw_done")
        wide = fn.append_basic_block("dtw_wide")
        switch = builder.switch(pad_value, wide)
        for w in range(2, NARROW_MAX + 1):
            case = fn.append_basic_block(f"dtw_narrow{w}")
            switch.add_case(_int(w - 1), case)
            builder.position_at_end(case)
            _narrow_band(builder, x_arr.data, y_arr.data, wv_ptr, out_arr.data, length, w)
            builder.branch(done)
        builder.position_at_end(wide)
        _wide_band(
            builder, x_arr.data, y_arr.data, wv_ptr, row_arr.data, out_arr.data, length, band_value
        )
        builder.branch(done)
        builder.position_at_end(done)
        return context.get_dummy_value()

    return types.void(x, yb, types.int64, types.int64, wv, row, out), codegen


@njit(cache=True, nogil=True, boundscheck=False)
def _row_pairs(xi, yb, i, band, pad, wv, out, base, row, sq):
    """Row ``i`` (pairs ``(i, 0..i-1)``) into ``out[base : base + i]``."""
    for cb in range((i + LANES - 1) // LANES):
        _squared_dtw(xi, yb[cb], band, pad, wv, row, sq)
        j0 = cb * LANES
        for k in range(min(LANES, i - j0)):
            out[base + j0 + k] = np.sqrt(sq[k])


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)
def rows_parallel(x, yb, start, stop, band, pad, wv, out):
    """Rows ``start..stop-1`` of the lower triangle into ``out`` (offset ``n_pairs(start)``)."""
    base0 = start * (start - 1) // 2
    for p in prange(stop - start):
        i = stop - 1 - p  # longest rows first: better dynamic balance
        row, sq = np.empty((x.shape[1], LANES)), np.empty(LANES)
        _row_pairs(x[i], yb, i, band, pad, wv, out, i * (i - 1) // 2 - base0, row, sq)


@njit(cache=True, nogil=True, boundscheck=False)
def rows_serial(x, yb, start, stop, band, pad, wv, out):
    """Single-threaded ``rows_parallel`` (for Dask workers, which parallelise across tasks)."""
    base0 = start * (start - 1) // 2
    row, sq = np.empty((x.shape[1], LANES)), np.empty(LANES)
    for i in range(start, stop):
        _row_pairs(x[i], yb, i, band, pad, wv, out, i * (i - 1) // 2 - base0, row, sq)


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)
def cross_parallel(a, bb, nb, band, pad, wv, out):
    """``out[i, j] = dtw(a[i], b[j])`` for ``j < nb`` with ``bb = lane_blocks(b, pad)``."""
    for i in prange(a.shape[0]):
        row, sq = np.empty((a.shape[1], LANES)), np.empty(LANES)
        for cb in range(bb.shape[0]):
            _squared_dtw(a[i], bb[cb], band, pad, wv, row, sq)
            j0 = cb * LANES
            for k in range(min(LANES, nb - j0)):
                out[i, j0 + k] = np.sqrt(sq[k])
