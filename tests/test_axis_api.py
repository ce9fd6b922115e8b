"""Tests of the axis functions (softmax, log_softmax, softmin), of the public
API's registry/packaging consistency, of the README catalogue and of the
`python -m pyact` command line.

Everything is driven from pyact's registry: the axis tests iterate over
``pyact._registry.AXIS`` and the consistency tests over ``REGISTRY``.
This file defines all of its helpers itself (it does not use conftest.py).
"""
from __future__ import annotations

import inspect
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import pyact
from pyact import _baselines, _docs, _kernels
from pyact import reference as ref
from pyact._registry import AXIS, ELEMENTWISE, REGISTRY

try:
    from numpy.exceptions import AxisError
except ImportError:  # pragma: no cover - NumPy < 1.25
    AxisError = np.AxisError

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

# When a property test fails, hypothesis's pytest plugin lazily imports
# hypothesis.extra._patching (libcst -> mypy_extensions), whose import-time
# DeprecationWarning becomes an INTERNALERROR under filterwarnings=error and
# hides the real failure.  Import it once here with that warning silenced.
try:
    import warnings as _warnings
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        import hypothesis.extra._patching  # noqa: F401
except Exception:  # pragma: no cover - optional dependency (libcst) missing
    pass

ROOT = pathlib.Path(__file__).resolve().parents[1]
DTYPES = (np.float32, np.float64)
AXIS_IDS = [a.name for a in AXIS]


# ---- helpers -----------------------------------------------------------------------

from conftest import bwd, fwd, fwd_, wide  # noqa: E402  (shared helpers)


def all_axes(ndim):
    return list(range(-ndim, ndim))


def masked_value(act):
    """The infinity that gets probability 0 for this axis function.

    Derived from the reference, not from the name: -inf for softmax and
    log_softmax, +inf for softmin (which is softmax(-x))."""
    for v in (-np.inf, np.inf):
        y = act.reference(np.array([0.0, v]))
        if np.isfinite(y[0]) and not np.isnan(y[1]):
            return v
    raise AssertionError(f"{act.name}: neither infinity is masked by the reference")


def is_log_form(act):
    """True when the function returns log-probabilities (reference output <= 0 with
    sum(exp(y)) == 1), False when it returns probabilities."""
    y = act.reference(np.array([0.0, 1.0, -2.0]))
    return bool(np.any(y < 0))


def forward_ulp(act, x, axis, result):
    return ref.ulp_error(result, act.reference(wide(x), axis=axis), result.dtype)


def assert_forward(act, x, axis, result, dtype=None):
    dtype = np.dtype(dtype or x.dtype)
    assert result.dtype == dtype
    assert result.shape == x.shape
    err = forward_ulp(act, x, axis, result)
    worst = float(np.max(err)) if err.size else 0.0
    assert worst <= act.max_ulp, (
        f"{act.name} {dtype} axis={axis}: {worst} ULP > {act.max_ulp} at "
        f"{np.unravel_index(np.argmax(err), err.shape)}")


def assert_backward(act, grad, y, axis, result):
    """The vjp against the reference, with a bound relative to the slice scale.

    The vjp is g - sum(g*y) (times y for softmax/softmin), and that difference
    can cancel: an element of the result may be far smaller than the terms it
    is computed from, so its own ULP is no yardstick (a correct kernel can be
    off by many ULPs of a tiny element).  Instead each element must satisfy

        |result - exact| <= max_ulp * ulp(max |exact| over its slice along axis)

    i.e. the error is a few rounding errors of the largest value in the slice,
    which is what a correctly rounded evaluation of the formula achieves.
    The exact value is the reference evaluated in evaluation_dtype(dtype) from
    the same (rounded) grad and y the kernel saw.
    """
    dtype = result.dtype
    exact = act.reference_derivative(wide(grad), wide(y), axis=axis)
    with np.errstate(all="ignore"):
        e = exact.astype(np.float64) if dtype == np.float32 else exact
        scale = np.max(np.abs(np.where(np.isnan(e), 0, e)), axis=axis, keepdims=True)
        # ulp of dtype at the slice scale (smallest subnormal for a zero slice)
        ulp = np.spacing(scale.astype(dtype)).astype(e.dtype)
        err = np.abs(result.astype(e.dtype) - e)
    both_nan = np.isnan(result) & np.isnan(e)
    ok = both_nan | (err <= act.max_ulp * ulp)
    if not ok.all():
        i = np.unravel_index(np.argmin(ok), ok.shape)
        pytest.fail(f"{act.name}_backward {dtype} axis={axis}: at {i} got {result[i]!r}, "
                    f"exact {exact[i]!r}, error {float(err[i] / np.broadcast_to(ulp, err.shape)[i]):.3g} "
                    f"ULP of the slice scale > {act.max_ulp}")


def make_layout(base, layout):
    """An array equal to `base` in the given memory layout."""
    if layout == "C":
        return np.ascontiguousarray(base)
    if layout == "F":
        out = np.asfortranarray(base)
        return out
    if layout == "strided":
        big = np.zeros(tuple(2 * n + 1 for n in base.shape), dtype=base.dtype)
        view = big[tuple(slice(1, None, 2) for _ in base.shape)]
        view[...] = base
        return view
    if layout == "negstride":
        flipped = np.ascontiguousarray(base[tuple(slice(None, None, -1) for _ in base.shape)])
        view = flipped[tuple(slice(None, None, -1) for _ in base.shape)]
        assert all(s < 0 for s in view.strides) or view.size <= 1
        return view
    raise ValueError(layout)


SHAPES = {1: (7,), 2: (5, 6), 3: (3, 4, 5)}


def data(shape, dtype, seed=0, scale=5.0):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, scale, shape).astype(dtype)


# ---- 1. accuracy over dtypes, axes and layouts --------------------------------------

LAYOUT_PARAMS = [
    pytest.mark.parametrize("layout", ["C", "F", "strided", "negstride"]),
    pytest.mark.parametrize("ndim", [1, 2, 3]),
    pytest.mark.parametrize("dtype", DTYPES),
    pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS),
]


def with_layouts(f):
    for mark in LAYOUT_PARAMS:
        f = mark(f)
    return f


@with_layouts
def test_forward_all_axes_layouts(act, dtype, ndim, layout):
    shape = SHAPES[ndim]
    x = make_layout(data(shape, dtype, seed=ndim), layout)
    x_before = x.copy()
    for axis in all_axes(ndim):
        y = fwd(act)(x, axis=axis)
        assert_forward(act, x, axis, y)
        # in place on a copy in the same layout gives the same bits
        xi = make_layout(np.array(x), layout)
        assert fwd_(act)(xi, axis=axis) is xi
        np.testing.assert_array_equal(xi, y)
        # out= in the same layout
        out = make_layout(np.zeros(shape, dtype), layout)
        assert fwd(act)(x, axis=axis, out=out) is out
        np.testing.assert_array_equal(out, y)
    np.testing.assert_array_equal(x, x_before)


@with_layouts
def test_backward_all_axes_layouts(act, dtype, ndim, layout):
    shape = SHAPES[ndim]
    x = data(shape, dtype, seed=ndim)
    g = make_layout(data(shape, dtype, seed=100 + ndim, scale=1.0), layout)
    g_before = g.copy()
    for axis in all_axes(ndim):
        y = make_layout(fwd(act)(x, axis=axis), layout)
        y_before = y.copy()
        r = bwd(act)(g, y=y, axis=axis)
        assert r.dtype == np.dtype(dtype) and r.shape == shape
        # the layout does not change the bits
        np.testing.assert_array_equal(r, bwd(act)(np.ascontiguousarray(g), y=np.ascontiguousarray(y), axis=axis))
        np.testing.assert_array_equal(y, y_before)
        assert_backward(act, g, y, axis, r)
    np.testing.assert_array_equal(g, g_before)


@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_axis_equals_moveaxis(act):
    x = data((3, 4, 5), np.float64, seed=7)
    for axis in all_axes(3):
        moved = fwd(act)(np.moveaxis(x, axis, -1), axis=-1)
        np.testing.assert_array_equal(fwd(act)(x, axis=axis), np.moveaxis(moved, -1, axis))


@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_backward_matches_finite_difference_vjp(act):
    # d/dx_i sum(g * f(x)) by central differences, float64, small arrays.
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 1.5, (3, 4))
    g = rng.normal(0.0, 1.0, (3, 4))
    h = 1e-6
    for axis in all_axes(2):
        y = fwd(act)(x, axis=axis)
        vjp = bwd(act)(g, y=y, axis=axis)
        fd = np.empty_like(x)
        for i in np.ndindex(x.shape):
            xp, xm = x.copy(), x.copy()
            xp[i] += h
            xm[i] -= h
            fd[i] = (np.sum(g * fwd(act)(xp, axis=axis))
                     - np.sum(g * fwd(act)(xm, axis=axis))) / (2 * h)
        np.testing.assert_allclose(vjp, fd, rtol=1e-6, atol=1e-8)


# ---- 2. special values ----------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_masked_entries_get_zero_probability(act, dtype):
    m = masked_value(act)
    x = np.array([[1.0, m, 2.0, m, 0.5], [m, -3.0, m, m, 4.0]], dtype=dtype)
    y = fwd(act)(x)
    masked = np.isinf(x)
    zero = -np.inf if is_log_form(act) else 0.0
    assert np.all(y[masked] == zero)
    assert not np.signbit(y[masked]).any() or is_log_form(act)
    for row in range(x.shape[0]):
        finite = x[row][~masked[row]]
        np.testing.assert_array_equal(y[row][~masked[row]], fwd(act)(finite))
    assert_forward(act, x, -1, y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_bad_slices_are_nan_and_isolated(act, dtype):
    m = masked_value(act)
    good = [0.5, -1.0, 2.0, 0.0]
    rows = [
        good,
        [m, m, m, m],            # only masked entries
        [0.0, np.nan, 1.0, m],   # NaN
        [0.0, -m, 1.0, 2.0],     # the other infinity
        [-m, -m, 1.0, m],
        good[::-1],
    ]
    x = np.array(rows, dtype=dtype)
    for axis, arr in ((-1, x), (0, np.ascontiguousarray(x.T))):
        y = fwd(act)(arr, axis=axis)
        yr = y if axis == -1 else y.T
        assert np.isnan(yr[1:5]).all()
        assert not np.isnan(yr[[0, 5]]).any()
        np.testing.assert_array_equal(yr[0], fwd(act)(np.array(good, dtype=dtype)))
        np.testing.assert_array_equal(yr[5], fwd(act)(np.array(good[::-1], dtype=dtype)))
        assert_forward(act, arr, axis, y)
        # backward on such y: NaN slices stay NaN, others are finite
        g = np.ones_like(arr)
        r = bwd(act)(g, y=y, axis=axis)
        rr = r if axis == -1 else r.T
        assert np.isfinite(rr[[0, 5]]).all()
        assert np.isnan(rr[1:5]).all()


LARGE_ROWS = [
    [1e4, 1e4 - 1, -1e4, 0.0],
    [-1e4, -1e4 + 1.5, -1e4 - 3, -1e4],
    [1e30, -1e30, 0.0, 1e30],
    [-1e30, -1e30, -1e30 * 0.5, 1.0],
    [3e4, 3e4, 3e4, 3e4],
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_large_logits_do_not_overflow(act, dtype):
    x = np.array(LARGE_ROWS, dtype=dtype)
    for axis, arr in ((-1, x), (0, np.ascontiguousarray(x.T))):
        y = fwd(act)(arr, axis=axis)
        assert not np.isnan(y).any()
        assert not np.isposinf(y).any()
        assert_forward(act, arr, axis, y)
        g = data(arr.shape, dtype, seed=5, scale=1.0)
        r = bwd(act)(g, y=y, axis=axis)
        # y may be -inf for log_softmax (exp(-2e4) underflows), then g - 0*sum(g) is finite
        assert np.isfinite(r).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_large_logits_backward_accuracy(act, dtype):
    # near-one-hot y: the vjp g - sum(g*y) cancels strongly in the dominant entries
    x = np.array(LARGE_ROWS, dtype=dtype)
    for axis, arr in ((-1, x), (0, np.ascontiguousarray(x.T))):
        y = fwd(act)(arr, axis=axis)
        g = data(arr.shape, dtype, seed=5, scale=1.0)
        assert_backward(act, g, y, axis, bwd(act)(g, y=y, axis=axis))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_backward_near_one_hot(act, dtype):
    # Regression: with one y_i close to 1, g_i - sum(g*y) cancels to ~y_j*(g_i - g_j)
    # and the whole slice of results is tiny compared with g; a vjp whose sum
    # is only accumulated in a wider type (not compensated) was off by up to
    # ~1e7 ULPs of the slice scale in float64 (e.g. x=[22, 0] float32, or
    # rows of normal(0, 5) logits in float64).
    m = 1.0 if masked_value(act) == -np.inf else -1.0
    rows = [[0.0, -20.0, -25.0], [22.0, 0.0, 1.0], [30.0, 0.0, -5.0], [12.0, 0.5, -3.0]]
    x = m * np.array(rows, dtype=dtype)
    y = fwd(act)(x, axis=-1)
    for seed in range(20):
        g = data(x.shape, dtype, seed=seed, scale=1.0)
        assert_backward(act, g, y, -1, bwd(act)(g, y=y, axis=-1))
    # a dominant entry with |g| much larger than the rest of the slice: the
    # dominant result g_0 - p_0 * sum(g) (or y_0 (g_0 - sum(g*y))) cancels to
    # about -g_1 (found by the property test for log_softmax in float64)
    x = m * np.array([[0.0, -1e4], [-47.0819337, -1e4], [0.0, -30.0]], dtype=dtype)
    y = fwd(act)(x, axis=-1)
    g = np.array([[-2.6648755, 7.97292604e-05]] * 3, dtype=dtype)
    assert_backward(act, g, y, -1, bwd(act)(g, y=y, axis=-1))


@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_dominant_logit_keeps_relative_accuracy(act):
    # [0, -40] (or [0, 40] for the function that favours small x): the
    # non-dominant term exp(-40) = 4.248e-18 is below float64's epsilon and
    # must survive; every entry is within max_ulp ULPs of its own value.
    for dtype in DTYPES:
        for row in ([0.0, -40.0], [0.0, 40.0], [10.0, -30.0, -35.0], [-5.0, -1000.0]):
            x = np.array(row, dtype=dtype)
            assert_forward(act, x, -1, fwd(act)(x))


def test_log_softmax_dominant_logit_value():
    act = REGISTRY.get("log_softmax")
    if act is None:
        pytest.skip("no log_softmax in the registry")
    y = fwd(act)(np.array([0.0, -40.0]))
    expected = -math.log1p(math.exp(-40.0))  # -4.248354255291589e-18
    assert y[0] != 0
    assert abs(y[0] - expected) <= 2 * abs(expected) * np.finfo(np.float64).eps
    assert abs(y[1] - (-40.0 + expected)) <= 2 * np.spacing(40.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_rows_sum_to_one(act, dtype):
    x = data((50, 33), dtype, seed=11)
    y = fwd(act)(x, axis=-1)
    p = np.exp(y.astype(np.float64)) if is_log_form(act) else y.astype(np.float64)
    assert (p >= 0).all()
    eps = np.finfo(dtype).eps
    # each entry is within max_ulp of exact; the float64 sum adds little more.
    # log form: |exp(y) error| <= (max_ulp * ulp(|y|)) * p; a few eps of slack.
    tol = (8 if not is_log_form(act) else 64) * eps
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=0, atol=tol)


@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_no_warnings_on_extremes(act):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in DTYPES + (np.float16,):
            fi = np.finfo(dtype)
            x = np.array([[fi.max, -fi.max, 0, fi.tiny], [np.inf, np.nan, -np.inf, 1],
                          [-np.inf] * 4, [fi.smallest_subnormal, 0, -0.0, 1e-3]], dtype=dtype)
            y = fwd(act)(x, axis=-1)
            bwd(act)(np.ones_like(x), y=y, axis=-1)
            fwd(act)(x, axis=0)


# ---- 3. arguments, errors and aliasing -----------------------------------------------

@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_axis_out_of_range(act):
    x = np.zeros((2, 3))
    for axis in (2, -3, 100):
        with pytest.raises(AxisError):
            fwd(act)(x, axis=axis)
        with pytest.raises(AxisError):
            fwd_(act)(x, axis=axis)
        with pytest.raises(AxisError):
            bwd(act)(x, y=x, axis=axis)
    np.testing.assert_array_equal(x, 0)


@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_axis_must_be_integer(act):
    x = np.zeros((2, 3))
    for axis in (1.0, "0", None, (0,), [0]):
        with pytest.raises(TypeError):
            fwd(act)(x, axis=axis)
        with pytest.raises(TypeError):
            fwd_(act)(x, axis=axis)
        with pytest.raises(TypeError):
            bwd(act)(x, y=x, axis=axis)
    np.testing.assert_array_equal(fwd(act)(x, axis=np.int64(0)), fwd(act)(x, axis=0))
    # axis is keyword-only
    with pytest.raises(TypeError):
        fwd(act)(x, 0)


@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_zero_dim_input_is_axis_error(act):
    for x in (np.float64(1.0), np.array(1.0), 1.0):
        with pytest.raises(AxisError):
            fwd(act)(x)
    with pytest.raises(AxisError):
        fwd_(act)(np.array(1.0))
    with pytest.raises(AxisError):
        bwd(act)(np.array(1.0), y=np.array(0.5))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_empty_arrays(act, dtype):
    for shape in ((0,), (0, 5), (3, 0), (2, 0, 4)):
        x = np.zeros(shape, dtype)
        for axis in all_axes(len(shape)):
            y = fwd(act)(x, axis=axis)
            assert y.shape == shape and y.dtype == np.dtype(dtype)
            assert fwd_(act)(x, axis=axis) is x
            r = bwd(act)(x, y=x, axis=axis)
            assert r.shape == shape and r.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_single_element_axis(act, dtype):
    x = data((4, 1), dtype)
    y = fwd(act)(x, axis=-1)
    np.testing.assert_array_equal(y, 0.0 if is_log_form(act) else 1.0)
    assert_forward(act, x, -1, y)


@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_identities_and_out_is_input(act):
    x = data((4, 6), np.float64)
    expected = fwd(act)(x, axis=0)
    xi = x.copy()
    assert fwd_(act)(xi, axis=0) is xi
    np.testing.assert_array_equal(xi, expected)
    out = np.empty_like(x)
    assert fwd(act)(x, axis=0, out=out) is out
    np.testing.assert_array_equal(out, expected)
    xo = x.copy()
    assert fwd(act)(xo, axis=0, out=xo) is xo
    np.testing.assert_array_equal(xo, expected)
    # backward: out=grad in place
    g = data((4, 6), np.float64, seed=9, scale=1.0)
    expected_b = bwd(act)(g, y=expected, axis=0)
    gi = g.copy()
    assert bwd(act)(gi, y=expected, axis=0, out=gi) is gi
    np.testing.assert_array_equal(gi, expected_b)
    out = np.empty_like(g)
    assert bwd(act)(g, y=expected, axis=0, out=out) is out
    np.testing.assert_array_equal(out, expected_b)
    # out=y in place too
    yi = expected.copy()
    assert bwd(act)(g, y=yi, axis=0, out=yi) is yi
    np.testing.assert_array_equal(yi, expected_b)


@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_strided_in_place_touches_only_the_view(act):
    base = data((6, 10), np.float64, seed=4)
    before = base.copy()
    for axis in (0, 1, -1):
        b = before.copy()
        view = b[1::2, ::-3]
        expected = fwd(act)(view.copy(), axis=axis)
        assert fwd_(act)(view, axis=axis) is view
        np.testing.assert_array_equal(view, expected)
        mask = np.ones(b.shape, bool)
        mask[1::2, ::-3] = False
        np.testing.assert_array_equal(b[mask], before[mask])
        # out= a strided view of a larger buffer
        buf = np.full((6, 10), 7.0)
        out = buf[1::2, ::-3]
        fwd(act)(before[1::2, ::-3], axis=axis, out=out)
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(buf[mask], 7.0)


@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_read_only(act):
    x = data((3, 4), np.float64)
    x.flags.writeable = False
    before = x.copy()
    with pytest.raises(ValueError):
        fwd_(act)(x)
    np.testing.assert_array_equal(x, before)
    y = fwd(act)(x)  # reading a read-only array is fine
    out = np.zeros_like(x)
    out.flags.writeable = False
    with pytest.raises(ValueError):
        fwd(act)(x, out=out)
    np.testing.assert_array_equal(out, 0)
    with pytest.raises(ValueError):
        bwd(act)(x, y=y, out=out)
    np.testing.assert_array_equal(out, 0)


@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_out_checks(act):
    x = data((3, 4), np.float64)
    y = fwd(act)(x)
    for bad in (np.zeros((4, 3)), np.zeros((3, 4, 1)), np.zeros(12)):
        with pytest.raises(ValueError):
            fwd(act)(x, out=bad)
        with pytest.raises(ValueError):
            bwd(act)(x, y=y, out=bad)
        assert not bad.any()
    for bad in (np.zeros((3, 4), np.float32), np.zeros((3, 4), np.int64),
                np.zeros((3, 4), np.complex128)):
        with pytest.raises(TypeError):
            fwd(act)(x, out=bad)
        with pytest.raises(TypeError):
            bwd(act)(x, y=y, out=bad)
        assert not bad.any()
    with pytest.raises(TypeError):
        fwd(act)(x, out=[[0.0] * 4] * 3)
    # float32 in, float64 out is a dtype error too (no silent casting)
    with pytest.raises(TypeError):
        fwd(act)(x.astype(np.float32), out=np.zeros((3, 4)))
    # a non-native byte order out of the right dtype is accepted
    swapped = np.zeros((3, 4), dtype=np.dtype(np.float64).newbyteorder())
    fwd(act)(x, out=swapped)
    np.testing.assert_array_equal(swapped, fwd(act)(x))


@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_grad_y_shape_mismatch(act):
    g = np.zeros((3, 4))
    for y in (np.zeros((4, 3)), np.zeros((3, 1)), np.zeros(4), np.zeros((1, 3, 4))):
        with pytest.raises(ValueError):
            bwd(act)(g, y=y)
    with pytest.raises(TypeError):
        bwd(act)(g)  # y is required
    with pytest.raises(TypeError):
        bwd(act)(g, g)  # and keyword-only


@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_unsupported_dtypes(act):
    for bad in (np.zeros((2, 3), np.complex128), np.zeros((2, 3), object),
                np.array([["a", "b"]]), np.zeros((2, 3), "datetime64[s]")):
        with pytest.raises(TypeError):
            fwd(act)(bad)
        with pytest.raises(TypeError):
            fwd_(act)(bad)
        with pytest.raises(TypeError):
            bwd(act)(bad, y=bad)
        with pytest.raises(TypeError):
            bwd(act)(np.zeros(bad.shape), y=bad)
    with pytest.raises(TypeError):
        fwd(act)(None)
    with pytest.raises(TypeError):
        fwd(act)([[1.0, 2.0], [3.0]])  # ragged
    # in place needs a float32/float64 ndarray
    for bad in ([1.0, 2.0], np.zeros(3, np.float16), np.zeros(3, np.int64), np.zeros(3, bool)):
        with pytest.raises(TypeError):
            fwd_(act)(bad)


@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_partial_overlap(act):
    # x and out share memory but are not the same elements: the result is as
    # if x had been copied first.
    buf = data((7, 5), np.float64, seed=12)
    for axis in (0, 1):
        b = buf.copy()
        x, out = b[:-1], b[1:]
        expected = fwd(act)(x.copy(), axis=axis)
        fwd(act)(x, axis=axis, out=out)
        np.testing.assert_array_equal(out, expected)
    flat = data(12, np.float64, seed=13)
    for shift in (1, 3):
        b = flat.copy()
        x, out = b[:-shift], b[shift:]
        expected = fwd(act)(x.copy())
        fwd(act)(x, out=out)
        np.testing.assert_array_equal(out, expected)
        # reversed view of the same memory
        b = flat.copy()
        expected = fwd(act)(b[::-1].copy())
        fwd(act)(b[::-1], out=b)
        np.testing.assert_array_equal(b, expected)
    # backward with out overlapping grad and y
    g = data((7, 5), np.float64, seed=14, scale=1.0)
    y = fwd(act)(data((6, 5), np.float64, seed=15))
    expected = bwd(act)(g[:-1].copy(), y=y)
    gb = g.copy()
    bwd(act)(gb[:-1], y=y, out=gb[1:])
    np.testing.assert_array_equal(gb[1:], expected)


@pytest.mark.parametrize("act", AXIS, ids=AXIS_IDS)
def test_float16_and_integer_inputs(act):
    x16 = data((3, 5), np.float16)
    y16 = fwd(act)(x16, axis=0)
    assert y16.dtype == np.float16
    np.testing.assert_array_equal(y16, fwd(act)(x16.astype(np.float32), axis=0).astype(np.float16))
    out = np.empty((3, 5), np.float16)
    assert fwd(act)(x16, axis=0, out=out) is out
    np.testing.assert_array_equal(out, y16)
    with pytest.raises(TypeError):
        fwd(act)(x16, out=np.empty((3, 5), np.float32))
    g16 = data((3, 5), np.float16, seed=2, scale=1.0)
    r16 = bwd(act)(g16, y=y16, axis=0)
    assert r16.dtype == np.float16
    np.testing.assert_array_equal(
        r16, bwd(act)(g16.astype(np.float32), y=y16.astype(np.float32), axis=0).astype(np.float16))
    # mixed dtypes promote
    assert bwd(act)(g16, y=y16.astype(np.float32)).dtype == np.float32
    assert bwd(act)(g16.astype(np.float32), y=y16.astype(np.float64)).dtype == np.float64
    for ints in (np.arange(12, dtype=np.int64).reshape(3, 4) - 5,
                 np.arange(12, dtype=np.uint8).reshape(3, 4),
                 np.arange(12, dtype=np.int32).reshape(3, 4) % 2 == 0,
                 [[1, 2, 3], [4, 5, 6]]):
        arr = np.asarray(ints)
        y = fwd(act)(ints, axis=0)
        assert y.dtype == np.float64
        np.testing.assert_array_equal(y, fwd(act)(arr.astype(np.float64), axis=0))
        r = bwd(act)(np.ones(arr.shape, np.int64), y=y, axis=0)
        assert r.dtype == np.float64
    # python lists of floats -> float64
    assert fwd(act)([0.5, 1.5]).dtype == np.float64


# ---- 4. registry and packaging consistency --------------------------------------------

def _public_names(act):
    if act.kind == "axis":
        return [act.name, act.name + "_", act.name + "_backward"]
    return [act.name, act.name + "_", act.name + "_derivative", act.name + "_backward"]


def _expected_signature(act, public):
    """(name, kind, default) for each parameter of the public function."""
    P = inspect.Parameter
    E = P.empty
    if act.kind == "axis":
        first = "grad" if public.endswith("_backward") else "x"
        params = [(first, P.POSITIONAL_OR_KEYWORD, E)]
        if public.endswith("_backward"):
            params.append(("y", P.KEYWORD_ONLY, E))
        params.append(("axis", P.KEYWORD_ONLY, -1))
        if not public.endswith("_"):
            params.append(("out", P.KEYWORD_ONLY, None))
        return params
    kw = [(p.name, P.KEYWORD_ONLY, E if p.required else p.default) for p in act.params]
    if public == act.name + "_":
        return [("x", P.POSITIONAL_OR_KEYWORD, E)] + kw
    if public.endswith("_backward"):
        return ([("grad", P.POSITIONAL_OR_KEYWORD, E), ("x", P.KEYWORD_ONLY, None),
                 ("y", P.KEYWORD_ONLY, None), ("out", P.KEYWORD_ONLY, None)] + kw)
    return [("x", P.POSITIONAL_OR_KEYWORD, E), ("out", P.KEYWORD_ONLY, None)] + kw


@pytest.mark.parametrize("act", list(REGISTRY.values()), ids=list(REGISTRY))
def test_public_functions_and_signatures(act):
    assert act.kind in ("elementwise", "axis")
    for public in _public_names(act):
        assert public in pyact.__all__, public
        func = getattr(pyact, public)
        assert callable(func)
        assert func.__name__ == public
        sig = inspect.signature(func)
        got = [(p.name, p.kind, p.default) for p in sig.parameters.values()]
        assert got == _expected_signature(act, public), public
        # registry defaults are honoured: every non-first parameter is keyword-only
        for p in list(sig.parameters.values())[1:]:
            assert p.kind is inspect.Parameter.KEYWORD_ONLY


def test_all_is_exactly_the_registry_functions():
    expected = {n for act in REGISTRY.values() for n in _public_names(act)}
    extra = {"__version__", "REGISTRY", "config", "show_config", "get_num_threads",
             "set_num_threads"}
    assert set(pyact.__all__) == expected | extra
    assert len(pyact.__all__) == len(set(pyact.__all__))
    for name in pyact.__all__:
        assert hasattr(pyact, name)
    assert set(REGISTRY) == {a.name for a in ELEMENTWISE + AXIS}
    assert all(a.kind == "axis" for a in AXIS) and all(a.kind == "elementwise" for a in ELEMENTWISE)


@pytest.mark.parametrize("act", list(REGISTRY.values()), ids=list(REGISTRY))
def test_docstrings_mention_formula(act):
    for public in _public_names(act):
        doc = getattr(pyact, public).__doc__
        assert doc and act.formula in doc, public
        assert act.derivative in doc, public


def _baseline_cases(act):
    cp = act.choice_param
    if cp is None:
        return [act.example_params()]
    cases = []
    for c in cp.choices:
        p = act.example_params()
        p[cp.name] = c
        cases.append(p)
    return cases


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", list(REGISTRY.values()), ids=list(REGISTRY))
def test_baselines_agree(act, dtype):
    # The baselines are plain NumPy/SciPy code in working precision, so they
    # agree with pyact only to a loose tolerance: relative 1e-9 (float64) /
    # 1e-4 (float32) of the value, plus the same fraction of the largest
    # |value| of the sample as an absolute floor (covers cancellation near
    # zero, e.g. x - tanh(x) or x * sigmoid(x) near 0).
    baseline = getattr(_baselines, act.name, None)
    assert baseline is not None, f"no baseline for {act.name}"
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    x1 = np.linspace(-6.0, 6.0, 241).astype(dtype)
    for params in _baseline_cases(act):
        if act.kind == "axis":
            x = data((6, 7), dtype, seed=1, scale=3.0)
            for axis in all_axes(2):
                got = fwd(act)(x, axis=axis)
                with np.errstate(all="ignore"):
                    want = np.asarray(baseline(x, axis=axis), dtype=np.float64)
                atol = rtol * np.max(np.abs(want))
                np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
        else:
            with np.errstate(all="ignore"):
                want = baseline(x1, **params)
            if want is None:  # needs SciPy
                pytest.skip(f"baseline {act.name}{params} needs SciPy")
            want = np.asarray(want, dtype=np.float64)
            got = getattr(pyact, act.name)(x1, **params)
            atol = rtol * np.max(np.abs(want))
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=str(params))


def test_every_kernel_family_has_a_registry_entry_and_vice_versa():
    exported = {n for n in dir(_kernels) if not n.startswith("_")}
    families = {n[: -len("_forward")] for n in exported if n.endswith("_forward")}
    registry_families = {}
    for act in ELEMENTWISE:
        for fam in act.kernel_names:
            registry_families[fam] = act
    assert families == set(registry_families)
    accounted = {"AXIS_MODES", "BUILD_INFO", "STREAM_STORES", "softmax_rows",
                 "softmax_backward_rows", "install_fallbacks"}
    # every elementwise public function has a compiled fast path, and it is
    # what pyact exports
    for act in ELEMENTWISE + AXIS:
        forms = ("", "_", "_derivative", "_backward") if act.kind == "elementwise" else (
            "", "_", "_backward")
        for public in (act.name + form for form in forms):
            assert getattr(pyact, public) is getattr(_kernels, "api_" + public), public
            accounted.add("api_" + public)
    for fam, act in registry_families.items():
        forms = ["forward", "derivative", "backward"] + (["backward_y"] if act.backward_y else [])
        for form in forms:
            assert callable(getattr(_kernels, f"{fam}_{form}")), f"{fam}_{form}"
            accounted.add(f"{fam}_{form}")
        assert (f"{fam}_backward_y" in exported) == act.backward_y, fam
    # axis functions: one mode each of the shared row kernels
    assert set(_kernels.AXIS_MODES) == {a.name for a in AXIS}
    assert len(set(_kernels.AXIS_MODES.values())) == len(AXIS)
    assert callable(_kernels.softmax_rows) and callable(_kernels.softmax_backward_rows)
    assert exported <= accounted, f"unaccounted kernel exports: {sorted(exported - accounted)}"


def test_config():
    cfg = pyact.config()
    for key in ("version", "numpy", "cython", "compiler"):
        assert key in cfg and cfg[key], key
    assert cfg["version"] == pyact.__version__
    assert cfg["numpy"] == np.__version__


# ---- 5. README catalogue ----------------------------------------------------------------

def test_readme_catalogue_in_sync():
    readme = ROOT / "README.md"
    assert readme.exists(), "README.md is missing (pyproject.toml declares it as the readme)"
    text = readme.read_text(encoding="utf-8")
    assert _docs.readme_with_catalogue(text) == text, (
        "README catalogue is stale: run `python -m pyact catalogue --write README.md`")
    for act in REGISTRY.values():
        assert f"`{act.name}`" in text


def test_catalogue_lists_every_entry():
    table = _docs.catalogue_markdown()
    rows = [line for line in table.splitlines()[2:]]
    assert len(rows) == len(REGISTRY)
    for act, row in zip(REGISTRY.values(), rows):
        assert row.startswith(f"| `{act.name}` |")


# ---- 6. command line --------------------------------------------------------------------

def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "pyact", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_config():
    r = run_cli("config")
    assert r.returncode == 0, r.stderr
    for key in ("version", "numpy", "cython", "compiler"):
        assert key in r.stdout


def test_cli_catalogue():
    r = run_cli("catalogue")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == _docs.catalogue_markdown().strip()


def test_cli_check():
    r = run_cli("check", "--samples", "2000")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all within bounds" in r.stdout
    for act in REGISTRY.values():
        assert act.name in r.stdout


def test_cli_bench():
    r = run_cli("bench", "--ops", "relu", "sigmoid", "--sizes", "1000", "--repeat", "1")
    assert r.returncode == 0, r.stderr
    assert "relu" in r.stdout and "sigmoid" in r.stdout


@pytest.mark.parametrize("args", [
    ("nosuchcommand",),
    ("bench", "--ops", "nosuchop"),
    ("bench", "--sizes", "0"),
    ("bench", "--dtypes", "float16"),
    ("check", "--samples", "many"),
    ("config", "--bogus"),
])
def test_cli_bad_arguments(args):
    r = run_cli(*args)
    assert r.returncode != 0
    assert "usage" in r.stderr.lower() or "error" in r.stderr.lower()


# ---- 7. property tests ------------------------------------------------------------------

@st.composite
def axis_case(draw):
    act = draw(st.sampled_from(AXIS))
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    finite = st.floats(-60.0, 60.0, allow_nan=False, width=32)
    special = st.sampled_from([masked_value(act), -1e4, 1e4, 0.0])
    x = draw(hnp.arrays(dtype, shape, elements=st.one_of(finite, finite, finite, special)))
    seed = draw(st.integers(0, 2**32 - 1))
    return act, x, axis, seed


@settings(max_examples=120, deadline=None, database=None)
@given(axis_case())
def test_property_forward_in_place_out(case):
    act, x, axis, _ = case
    y = fwd(act)(x, axis=axis)
    assert_forward(act, x, axis, y)
    xi = x.copy()
    assert fwd_(act)(xi, axis=axis) is xi
    np.testing.assert_array_equal(xi, y)
    out = np.empty_like(x)
    fwd(act)(x, axis=axis, out=out)
    np.testing.assert_array_equal(out, y)


@settings(max_examples=120, deadline=None, database=None)
@given(axis_case())
def test_property_backward(case):
    act, x, axis, seed = case
    y = fwd(act)(x, axis=axis)
    # random normal grads (seeded by hypothesis)
    g = np.random.default_rng(seed).normal(0.0, 1.0, x.shape).astype(x.dtype)
    r = bwd(act)(g, y=y, axis=axis)
    gi = g.copy()
    assert bwd(act)(gi, y=y, axis=axis, out=gi) is gi
    np.testing.assert_array_equal(gi, r)
    assert_backward(act, g, y, axis, r)


def test_softmax_backward_near_one_hot_float64():
    """y = softmax([39.25, 2.25]) = [1 - 2**-53, 8.5e-17]: g - sum(g y) is the size of
    the sum's rounding part (found by test_property_backward under the sanitizer
    build; the element was 1.03 ULP of the slice scale off before g - acc - low was
    evaluated by error-free sums)."""
    x = np.array([39.25, 2.25])
    for seed in [110, *range(50)]:   # 110: the grads of the failing example
        g = np.random.default_rng(seed).normal(0.0, 1.0, x.shape)
        for name in ("softmax", "softmin"):
            act = next(a for a in AXIS if a.name == name)
            xs = x if name == "softmax" else -x
            y = fwd(act)(xs, axis=0)
            assert_backward(act, g, y, 0, bwd(act)(g, y=y, axis=0))


@pytest.mark.parametrize("name", ["softmax", "softmin"])
def test_softmax_forward_with_subnormal_outputs_float64(name):
    """Outputs below the normal range (exp(x - max) < 2**-1022): each within the
    bound of its own exact value, along either axis.  e^(x - max) rounded into the
    subnormal range first lost the digits of its low part (1.35 ULP here, 1.69 in the
    accuracy tool's rows)."""
    act = next(a for a in AXIS if a.name == name)
    sign = 1.0 if name == "softmax" else -1.0
    for shift in (0.0, 0.37, 0.81):
        row = sign * np.concatenate([[0.0, 0.3, -0.2, -1.1], -np.linspace(700, 746, 4001) - shift])
        for x, axis in ((row, -1), (np.tile(row, (3, 1)).T.copy(), 0)):
            assert_forward(act, x, axis, fwd(act)(x, axis=axis))


def test_log_softmax_of_a_dominant_entry_with_tiny_others_float64():
    """log_softmax of the largest entry is -log1p(sum of the others' exponentials):
    with every other x - max below -600 that is -(a sum of terms below 2**-865),
    which must keep its digits (not be taken as 0), along either axis."""
    act = next(a for a in AXIS if a.name == "log_softmax")
    row = np.array([1358.6, 1358.6 - 619.7, 1358.6 - 644.6, 1358.6 - 676.3, 1358.6 - 1013.8,
                    1358.6 - 720.0, -np.inf])
    for x, axis in ((row, -1), (np.tile(row, (3, 1)).T.copy(), 0)):
        y = fwd(act)(x, axis=axis)
        assert_forward(act, x, axis, y)
        assert np.all(np.take(y, 0, axis=axis) < 0)
