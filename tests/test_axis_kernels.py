"""Tests of the axis kernels (csrc/axis.pxi) through the public functions.

The kernels see C-contiguous (outer, n, inner) buffers and take three loop
shapes: long rows (inner == 1, lane-split reductions), short rows (inner == 1,
n small: several rows at once through a transposed tile) and a strided axis
(inner > 1: several columns at once, straight from the buffer).  These tests
cover every axis of 2-D/3-D/4-D arrays around the crossovers, special values on
every loop shape, in place and out= on strided axes, bitwise agreement of the
loop shapes, and that no full copy is made for C-contiguous arrays.
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import pyact
from pyact import _kernels
from pyact import reference as ref
from pyact._registry import AXIS

DTYPES = (np.float32, np.float64)
IDS = [a.name for a in AXIS]
# lengths around the loop crossovers: the tile/row switches (after 63 forward,
# after 23 for the vjp), several multiples of the lane count, and row lengths
# that are not (their exponentials' last block is computed twice); 1000 is a
# long row
LENGTHS = list(range(1, 41)) + [47, 48, 63, 64, 65, 71, 100, 103, 1000]


from conftest import bwd, fwd, fwd_, wide  # noqa: E402  (shared helpers)


def data(shape, dtype, seed=0, scale=5.0):
    return np.random.default_rng(seed).normal(0.0, scale, shape).astype(dtype)


def masked(act):
    """The infinity that gets probability 0 (-inf; +inf for softmin)."""
    return np.inf if act.name == "softmin" else -np.inf


def check_forward(act, x, axis, y):
    err = ref.ulp_error(y, act.reference(wide(x), axis=axis), y.dtype)
    worst = float(np.max(err)) if err.size else 0.0
    assert worst <= act.max_ulp, (act.name, x.dtype, x.shape, axis, worst)


def check_backward(act, g, y, axis, r):
    """|r - exact| <= max_ulp * ulp(max |exact| over the slice), NaN == NaN."""
    exact = act.reference_derivative(wide(g), wide(y), axis=axis)
    with np.errstate(all="ignore"):
        e = exact.astype(np.float64) if r.dtype == np.float32 else exact
        scale = np.max(np.abs(np.where(np.isnan(e), 0, e)), axis=axis, keepdims=True)
        ulp = np.spacing(scale.astype(r.dtype)).astype(e.dtype)
        err = np.abs(r.astype(e.dtype) - e)
    ok = (np.isnan(r) & np.isnan(e)) | (err <= act.max_ulp * ulp)
    assert ok.all(), (act.name, r.dtype, r.shape, axis, np.argwhere(~ok)[:3])


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view({4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_same_bits(a, b, what=""):
    assert a.shape == b.shape and a.dtype == b.dtype, what
    np.testing.assert_array_equal(bits(a), bits(b), err_msg=what)


def last_axis_version(f, arrays, axis, **kw):
    """f along the last axis of contiguous moved copies, moved back: the
    long-row or short-row loop on the same slices."""
    moved = [np.ascontiguousarray(np.moveaxis(a, axis, -1)) for a in arrays]
    return np.moveaxis(f(*moved[:1], **{k: np.ascontiguousarray(np.moveaxis(v, axis, -1))
                                        for k, v in kw.items()}, axis=-1), -1, axis)


# ---- accuracy on every axis, around the crossovers ------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=IDS)
def test_forward_lengths_both_axes(act, dtype):
    for n in LENGTHS:
        # (37, n): 37 rows = two full tiles of short rows and a partial one;
        # axis 0 reduces a strided axis of length 37 over n columns
        x = data((37, n), dtype, seed=n)
        for axis in (0, 1):
            y = fwd(act)(x, axis=axis)
            check_forward(act, x, axis, y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=IDS)
def test_backward_lengths_both_axes(act, dtype):
    for n in LENGTHS:
        x = data((21, n), dtype, seed=n)
        g = data((21, n), dtype, seed=1000 + n, scale=1.0)
        for axis in (0, 1):
            y = fwd(act)(x, axis=axis)
            check_backward(act, g, y, axis, bwd(act)(g, y=y, axis=axis))


@pytest.mark.parametrize("shape", [(3, 17, 5), (2, 3, 4, 5), (4, 33, 2, 18), (1000, 3, 1)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=IDS)
def test_every_axis_3d_4d(act, dtype, shape):
    x = data(shape, dtype, seed=len(shape))
    g = data(shape, dtype, seed=7, scale=1.0)
    for axis in range(-len(shape), len(shape)):
        y = fwd(act)(x, axis=axis)
        check_forward(act, x, axis, y)
        check_backward(act, g, y, axis, bwd(act)(g, y=y, axis=axis))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=IDS)
def test_dominant_logit_on_every_loop_shape(act, dtype):
    # one logit dominates: log(sum) = log1p(tiny) must keep the tiny term
    s = -1.0 if act.name == "softmin" else 1.0
    row = s * np.array([0.0, -40.0, -35.0, -1000.0, -30.0])
    for n_rows in (1, 20):
        x = np.tile(row, (n_rows, 1)).astype(dtype)
        for arr, axis in ((x, -1), (np.ascontiguousarray(x.T), 0),
                          (np.tile(row, (n_rows, 5)).astype(dtype), -1)):
            check_forward(act, arr, axis, fwd(act)(arr, axis=axis))


# ---- special values ----------------------------------------------------------------------

def special_rows(act, n):
    """Rows of length n: masked entries, NaN, the other infinity, all masked."""
    m = masked(act)
    rng = np.random.default_rng(n)
    rows = []
    for kind in ("mask", "nan", "inf", "all", "good"):
        r = rng.normal(0.0, 3.0, n)
        if kind == "mask":
            r[rng.random(n) < 0.5] = m
            r[n // 2] = 1.0
        elif kind == "nan":
            r[rng.integers(n)] = np.nan
        elif kind == "inf":
            r[rng.integers(n)] = -m
        elif kind == "all":
            r[:] = m
        rows.append(r)
    return np.array(rows)


@pytest.mark.parametrize("n", [1, 2, 7, 16, 17, 23, 24, 32, 33, 40, 63, 64, 65, 1000])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=IDS)
def test_masks_and_bad_slices_every_loop_shape(act, dtype, n):
    rows = special_rows(act, n).astype(dtype)
    # repeated so that the short-row loop sees full tiles, and transposed for
    # the strided loop
    x = np.repeat(rows, 7, axis=0)
    kinds = np.repeat(np.arange(5), 7)
    for arr, axis in ((x, -1), (np.ascontiguousarray(x.T), 0)):
        y = fwd(act)(arr, axis=axis)
        yr = y if axis == -1 else y.T
        bad = (kinds == 1) | (kinds == 2) | (kinds == 3)
        assert np.isnan(yr[bad]).all()
        if n > 1:  # (a row of one entry is all masked in the "mask" kind too)
            assert not np.isnan(yr[~bad]).any()
            # masked entries are exactly 0 (or -inf in the log form)
            mask_rows = kinds == 0
            zero = -np.inf if act.name == "log_softmax" else 0.0
            is_masked = np.isinf(x[mask_rows])
            assert (yr[mask_rows][is_masked] == zero).all()
            check_forward(act, arr, axis, y)
        g = np.ones_like(arr)
        r = bwd(act)(g, y=y, axis=axis)
        rr = r if axis == -1 else r.T
        assert np.isnan(rr[bad]).all()
        if n > 1:
            assert np.isfinite(rr[~bad]).all()


# ---- in place and out= on strided axes --------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=IDS)
def test_in_place_and_out_on_strided_axes(act, dtype):
    for shape in ((40, 3), (5, 40, 18), (3, 1000, 2), (20, 10)):
        x = data(shape, dtype, seed=sum(shape))
        g = data(shape, dtype, seed=5, scale=1.0)
        for axis in range(len(shape)):
            y = fwd(act)(x, axis=axis)
            xi = x.copy()
            assert fwd_(act)(xi, axis=axis) is xi
            assert_same_bits(xi, y, "in place")
            out = np.empty_like(x)
            assert fwd(act)(x, axis=axis, out=out) is out
            assert_same_bits(out, y, "out=")
            # out= a strided view of a larger buffer: only its elements change
            buf = np.full((2,) + shape, 7.0, dtype)
            view = buf[1]
            fwd(act)(x, axis=axis, out=view)
            assert_same_bits(view, y, "out= view")
            assert (buf[0] == 7.0).all()
            # backward in place into grad and into y
            r = bwd(act)(g, y=y, axis=axis)
            gi = g.copy()
            assert bwd(act)(gi, y=y, axis=axis, out=gi) is gi
            assert_same_bits(gi, r, "backward out=grad")
            yi = y.copy()
            assert bwd(act)(g, y=yi, axis=axis, out=yi) is yi
            assert_same_bits(yi, r, "backward out=y")


# ---- the loop shapes agree bitwise -------------------------------------------------------
#
# All loop shapes run the same arithmetic per slice (same max, LANES partial
# sums combined in the same order, same compensated vjp), so the strided-axis
# loop, the short-row loop and the long-row loop give the same bits.

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=IDS)
def test_strided_axis_equals_last_axis_bitwise(act, dtype):
    for n in LENGTHS:
        for inner in (1, 3, 16, 21):
            x = data((2, n, inner), dtype, seed=n + inner)
            g = data((2, n, inner), dtype, seed=n * inner, scale=1.0)
            y = fwd(act)(x, axis=1)
            assert_same_bits(y, last_axis_version(fwd(act), [x], 1), f"forward n={n}")
            r = bwd(act)(g, y=y, axis=1)
            assert_same_bits(r, last_axis_version(bwd(act), [g], 1, y=y), f"backward n={n}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=IDS)
def test_rows_alone_equal_rows_in_blocks_bitwise(act, dtype):
    # a row gives the same bits alone (one partial tile) as inside a block of
    # rows, and as a long row when it is longer than the short-row limit
    for n in (3, 10, 16, 17, 23, 24, 32, 33, 40, 63, 64, 65):
        x = data((35, n), dtype, seed=n)
        y = fwd(act)(x, axis=-1)
        for i in (0, 16, 34):
            assert_same_bits(fwd(act)(x[i:i + 1], axis=-1), y[i:i + 1], f"row {i} n={n}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=IDS)
def test_rows_longer_than_the_stack_scratch(act, dtype):
    # rows beyond the 4096 exponentials kept on the stack (their exponentials go to
    # the heap), also of lengths that are not a multiple of the lane count: within
    # the bound, and the same bits as the strided-axis loop (chunks of 256)
    for n in (4104, 4101, 9001):
        x = data((3, n), dtype, seed=n)
        x[1, 7] = 40.0   # a dominant logit: a row of tiny terms and one near 1
        y = fwd(act)(x, axis=-1)
        check_forward(act, x, -1, y)
        column = np.ascontiguousarray(x.T)
        assert_same_bits(y, fwd(act)(column, axis=0).T, f"n={n}")
        out = x.copy()
        fwd_(act)(out, axis=-1)
        assert_same_bits(out, y, f"in place n={n}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=IDS)
def test_fortran_order_equals_c_order_bitwise(act, dtype):
    x = data((6, 30, 5), dtype, seed=2)
    xf = np.asfortranarray(x)
    for axis in range(3):
        assert_same_bits(fwd(act)(xf, axis=axis), fwd(act)(x, axis=axis), f"axis {axis}")


# ---- memory: no full copy for C-contiguous arrays, on any axis --------------------------

@pytest.mark.parametrize("act", AXIS, ids=IDS)
def test_no_full_copy_for_c_contiguous(act):
    shape = (400, 50, 20)
    x = data(shape, np.float64, seed=1)
    out = np.empty_like(x)
    g = data(shape, np.float64, seed=2, scale=1.0)
    y = fwd(act)(x)
    for axis in range(3):
        for call in (lambda: fwd(act)(x, axis=axis, out=out),
                     lambda: fwd_(act)(out, axis=axis),
                     lambda: bwd(act)(g, y=y, axis=axis, out=out),
                     lambda: bwd(act)(out, y=y, axis=axis, out=out)):
            tracemalloc.start()
            try:
                call()
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert peak < x.nbytes // 20, (axis, peak, x.nbytes)
    # a strided view still works through a copy (and that copy is visible)
    tracemalloc.start()
    try:
        fwd(act)(x[:, ::2], axis=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak >= x[:, ::2].nbytes


# ---- the kernel entry points --------------------------------------------------------------

def test_kernels_check_shapes_and_accept_empty():
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError):
        _kernels.softmax_rows(x, np.zeros((2, 4, 3)), 0)
    with pytest.raises(ValueError):
        _kernels.softmax_backward_rows(x, x, np.zeros((2, 3, 5)), 0)
    with pytest.raises(ValueError):  # not C-contiguous
        _kernels.softmax_rows(x.transpose(0, 2, 1), np.zeros((2, 4, 3)), 0)
    _kernels.softmax_rows(np.zeros((0, 3, 4)), np.zeros((0, 3, 4)), 0)
    _kernels.softmax_backward_rows(np.zeros((2, 0, 4)), np.zeros((2, 0, 4)),
                                   np.zeros((2, 0, 4)), 1)


@pytest.mark.parametrize("n", [4, 40, 1000])
@pytest.mark.parametrize("act", AXIS, ids=IDS)
def test_vjp_near_one_hot_needs_more_than_double_double(act, n):
    # y = [tiny, 1.0, tiny, ...]: the dominant result is -sum_j y_j (g_1 - g_j),
    # ~1e-23 against g ~ 1, so the dot product must carry more than the 106
    # bits of a double-double (a double-double version was 1.26 ULP off here).
    s = -1.0 if act.name == "softmin" else 1.0
    x = np.zeros((3, n))
    x[:, 1] = s * 52.375
    g = np.random.default_rng(330).normal(0.0, 1.0, x.shape)
    for arr, gg, axis in ((x, g, 1), (np.ascontiguousarray(x.T), np.ascontiguousarray(g.T), 0)):
        y = fwd(act)(arr, axis=axis)
        check_backward(act, gg, y, axis, bwd(act)(gg, y=y, axis=axis))



@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axis", [((60, 3), -1), ((60, 10), -1), ((6, 40), -1),
                                         ((2, 1000), -1), ((40, 9), 0)],
                         ids=["rows-of-3", "short-rows", "long-rows", "longer-rows",
                              "strided-axis"])
@pytest.mark.parametrize("name", ["softmax", "softmin"])
def test_vjp_where_y_is_zero_has_the_sign_of_y_times_the_difference(name, dtype, shape,
                                                                     axis):
    # y = +0 (underflowed) or -0 (given): the result +-y (g - sum(g y)) is a zero with
    # the sign of that product; the float64 kernels once returned +0 or -0 by the
    # signs of their rounding-error terms, about half of them wrong
    act = next(a for a in AXIS if a.name == name)
    rng = np.random.default_rng(404)
    y = fwd(act)(rng.normal(0.0, 300.0, shape).astype(dtype), axis=axis)
    y.flat[::7] = -y.flat[::7] * 0
    g = rng.normal(0.0, 1.0, shape).astype(dtype)
    want = act.reference_derivative(wide(g), wide(y), axis=axis)
    got = bwd(act)(g, y=y, axis=axis)
    zero = y == 0
    assert zero.sum() >= y.size // 8 and np.signbit(y[zero]).sum() >= 10   # both signs
    assert (want[zero] == 0).all() and (got[zero] == 0).all()
    np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(want[zero]))


@pytest.mark.parametrize("shape, axis", [((3, 40), -1), ((37, 5), -1), ((5, 24), 0),
                                         ((2, 5000), -1)],
                         ids=["long-rows", "short-rows", "strided-axis", "chunked-row"])
def test_log_softmax_vjp_deep_cancellation_elementwise(shape, axis):
    # g_k = exp(y_k) * sum(g) (1 + 2^-7) for some k: g_k - exp(y_k) sum(g) cancels
    # by 7 bits, past what exp from double pairs (~2^-60) keeps within 1 ULP, so
    # the kernel takes its long double path (2^-64) there; every element must be
    # within 1 ULP of its own exact value, also when out is grad or y (the second
    # pass must not read results).  (Deeper cancellation goes to exp_dw.h: the
    # next test.)
    act = next(a for a in AXIS if a.name == "log_softmax")
    rng = np.random.default_rng(77)
    x = rng.normal(0.0, 2.0, shape)
    y = fwd(act)(x, axis=axis)
    g = np.moveaxis(rng.normal(0.0, 1.0, shape), axis, -1).copy()
    p = np.exp(np.moveaxis(y, axis, -1).astype(np.longdouble))
    # g_k = c p_k S for k in (0, 3), S = sum(g): S = rest / (1 - c (p_0 + p_3))
    c = 1 + 2.0**-7
    rest = g.astype(np.longdouble).sum(axis=-1) - g[..., 0] - g[..., 3]
    total = rest / (1 - c * (p[..., 0] + p[..., 3]))
    for k in (0, 3):
        g[..., k] = (c * p[..., k] * total).astype(np.float64)
    g = np.ascontiguousarray(np.moveaxis(g, -1, axis))
    exact = act.reference_derivative(wide(g), wide(y), axis=axis)
    plain = bwd(act)(g, y=y, axis=axis)
    err = ref.ulp_error(plain, exact, np.float64)
    assert float(np.max(err)) <= act.max_ulp
    cancelled = np.abs(exact) < 2.0**-5 * np.abs(g)
    assert cancelled.sum() >= 2 * g.size // shape[axis]   # the case is really there
    for target in ("grad", "y"):
        gi, yi = g.copy(), y.copy()
        into = gi if target == "grad" else yi
        assert bwd(act)(gi, y=yi, axis=axis, out=into) is into
        assert_same_bits(into, plain, f"out={target}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, axis", [((7, 2), -1), ((5, 3), -1), ((40, 10), -1),
                                         ((3, 100), -1), ((2, 3000), -1), ((10, 37), 0)],
                         ids=["rows-of-2", "rows-of-3", "short-rows", "long-rows",
                              "chunked-row", "strided-axis"])
def test_log_softmax_vjp_of_equal_logits_with_equal_grads(dtype, shape, axis):
    # y = -log(n) rounded in every entry and g = c: g - exp(y) n c cancels to the
    # rounding of y, ~2^-53 (float64) or ~2^-24 (float32) of the terms, in every
    # element, so the slice's largest result is itself that small.  Long double's
    # expl was 3.7e12 ULP off there (float64), float32-grade exp 1e4 ULP (float32);
    # found by tools/fuzz.py with g = [1, 1] (int64) and y = float32(-ln 2).
    act = next(a for a in AXIS if a.name == "log_softmax")
    y = fwd(act)(np.zeros(shape, dtype), axis=axis)
    for c in (1.0, -3.0, 7e5, 2.0**-1000):
        g = np.full(shape, c, dtype)
        r = bwd(act)(g, y=y, axis=axis)
        exact = act.reference_derivative(wide(g), wide(y), axis=axis)
        err = ref.ulp_error(r, exact, dtype)   # of each element itself
        assert float(np.max(err)) <= act.max_ulp, (c, float(np.max(err)))
        gi = g.copy()
        assert_same_bits(bwd(act)(gi, y=y, axis=axis, out=gi), r, f"in place, c={c}")


def test_log_softmax_vjp_with_integer_grad_and_float32_y():
    # tools/fuzz.py: int64 grad with float32 y runs in float64; 1 - 2 exp(y) cancels
    # by 29 bits and was 32549 ULP off
    y = np.array([-0.6931472, -0.6931472], np.float32)
    r = pyact.log_softmax_backward(np.array([1, 1]), y=y)
    assert r.dtype == np.float64
    exact = ref.log_softmax_backward(np.ones(2, np.longdouble), y.astype(np.longdouble))
    assert float(np.max(ref.ulp_error(r, exact, np.float64))) <= 0.5
