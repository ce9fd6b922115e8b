"""Elementwise activations: accuracy, layouts, in-place semantics, errors, dtypes.

Every test is driven by the registry (pyact._registry.ELEMENTWISE, through the
case lists in conftest.py); no activation name is hard-coded here.  The
accuracy contract checked throughout: parameters are rounded to the array
dtype, the reference is evaluated one step wider (reference.evaluation_dtype)
and every forward / derivative / backward result is within act.max_ulp ULPs.
"""
from __future__ import annotations

import sys
import threading
import time
import warnings

import numpy as np
import pytest

from conftest import (
    ALL_CASES, DTYPES, DTYPE_IDS, EXAMPLE_CASES, act_params, assert_bitwise_equal,
    assert_ulp, case_params, check_all_forms, exact_backward, exact_backward_y,
    exact_derivative, exact_forward, fn, wide, y_allowed,
)
import pyact
from pyact import _check
from pyact import reference as ref

N_SAMPLE = 3000
RNG_SEED = 12345


def _grad_like(n, dtype, seed=1):
    return np.random.default_rng(seed).normal(0.0, 1.0, n).astype(dtype)


# ---- 1. every activation x dtype x layout against the reference --------------------

def _lay_contiguous(v):
    return v.copy()


def _lay_2d_c(v):
    n = (v.size // 50) * 50
    return np.ascontiguousarray(v[:n].reshape(-1, 50))


def _lay_2d_f(v):
    n = (v.size // 50) * 50
    a = np.asfortranarray(v[:n].reshape(50, -1))
    assert a.flags.f_contiguous and not a.flags.c_contiguous
    return a


def _lay_strided(v):
    buf = np.full(3 * v.size, 7.0, dtype=v.dtype)
    buf[::3] = v
    return buf[::3]


def _lay_negative(v):
    buf = np.full(2 * v.size, 7.0, dtype=v.dtype)
    buf[::-2] = v
    a = buf[::-2]
    assert a.strides[0] < 0
    return a


def _lay_empty(v):
    return v[:0].copy()


def _lay_empty_2d(v):
    return np.empty((0, 3), dtype=v.dtype)


def _lay_3d(v):
    # a (6, 10, k) block, transposed and sliced: non-contiguous in every sense
    k = v.size // 120
    block = np.full((6, 20, k), 7.0, dtype=v.dtype)
    block[:, ::2, :] = v[:60 * k].reshape(6, 10, k)
    a = block[:, ::2, :].transpose(2, 0, 1)
    assert not a.flags.c_contiguous and not a.flags.f_contiguous
    return a


LAYOUTS = {
    "contiguous": _lay_contiguous, "2d-C": _lay_2d_c, "2d-F": _lay_2d_f,
    "strided-3": _lay_strided, "negative-stride": _lay_negative, "empty": _lay_empty,
    "empty-2d": _lay_empty_2d, "3d-transposed-sliced": _lay_3d,
}


@pytest.mark.parametrize("layout", list(LAYOUTS), ids=list(LAYOUTS))
@pytest.mark.parametrize("act,params", case_params(ALL_CASES))
def test_against_reference_layouts(act, params, dtype, layout):
    v = _check.sample(dtype, N_SAMPLE, seed=RNG_SEED)
    rng = np.random.default_rng(7)
    v = v[rng.permutation(v.size)]  # mix the special values into every layout
    g = _grad_like(v.size, dtype)
    x = LAYOUTS[layout](v)
    grad = LAYOUTS[layout](g)
    assert x.shape == grad.shape
    check_all_forms(act, params, x, grad, f"{layout}")


@pytest.mark.parametrize("act,params", case_params(ALL_CASES))
def test_against_reference_0d(act, params, dtype):
    """0-d inputs (every special value and a few random ones) one at a time."""
    values = np.concatenate([_check.special_values(dtype),
                             _check.sample(dtype, 40, seed=3)[-20:]])
    for i, v in enumerate(values):
        x = np.array(v, dtype=dtype)
        grad = np.array(-1.25 if i % 2 else 0.5, dtype=dtype)
        check_all_forms(act, params, x, grad, f"0-d x={v!r}")


# ---- 2. special values at vector-body and scalar-tail lengths -----------------------

def _special_inputs(act, params, dtype):
    dt = np.dtype(dtype).type
    info = np.finfo(dtype)
    sub = info.smallest_subnormal
    extra = [sub, 2 * sub, 1000 * sub, info.tiny / 2, -info.tiny / 2, info.tiny * 2,
             1e30, -1e30, 1e-8, -1e-8, 1e-5, -1e-5,
             88.72, 88.73, -87.33, -87.34, -103.97, -104.0, 89.0, -89.0,
             709.78, 709.79, -708.39, -708.4, -745.13, -745.14, 710.0, -710.0,
             2.0, -2.0, 4.0, -4.0, 10.0, -10.0, 15.0, 17.0, 19.0, 21.0, -20.0, 30.0, 50.0]
    # the kinks of this activation (for these parameters) and their neighbours
    kinks = [float(v) for v in params.values() if not isinstance(v, str)] + list(act.kinks)
    with np.errstate(over="ignore"):
        base = np.concatenate([_check.special_values(dtype), np.array(extra, dtype=dtype)])
        k = np.array(kinks, dtype=dtype)
    neighbours = [k, np.nextafter(k, dt(np.inf)), np.nextafter(k, dt(-np.inf)), -k]
    return np.concatenate([base] + neighbours)


@pytest.mark.parametrize("act,params", case_params(ALL_CASES))
def test_special_values_lengths(act, params, dtype):
    s = _special_inputs(act, params, dtype)
    m = s.size
    gvals = np.resize(np.array([1.0, -2.5, 0.75, 3e-3, -1.0], dtype=dtype), m)
    y_ok = y_allowed(act, params, dtype)
    exact = {"forward": exact_forward(act, params, s),
             "derivative": exact_derivative(act, params, s),
             "backward": exact_backward(act, params, gvals, s)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y_all = fn(act)(s, **params)
        if y_ok:
            exact["backward_y"] = exact_backward_y(act, params, gvals, y_all)
        for length in (1, 7, 32, 129):
            for offset in range(m):
                idx = (offset + np.arange(length)) % m
                x = s[idx]
                grad = gvals[idx]
                got = {"forward": fn(act)(x, **params),
                       "derivative": fn(act, "_derivative")(x, **params),
                       "backward": fn(act, "_backward")(grad, x=x, **params)}
                if y_ok:
                    # the same y values as y_all (elementwise), at this length/alignment
                    got["backward_y"] = fn(act, "_backward")(grad, y=y_all[idx], **params)
                for form, r in got.items():
                    assert_ulp(r, exact[form][idx], dtype, act.ulp_bound(form), x,
                               f"{form} length={length} offset={offset}", {"grad": grad})


@pytest.mark.parametrize("act,params", case_params(ALL_CASES))
def test_backward_with_infinite_and_zero_grads(act, params, dtype):
    # Wherever f' is a normal number of the reference's type, grad +-inf gives +-inf
    # (its sign times f's) and grad +-0 a zero, within the bound like any other grad:
    # also where f' is subnormal in the dtype, or underflows to 0 in it (the tails;
    # float64 tanhshrink at tiny x).  The float64 softsign backward once gave NaN for
    # an infinite grad at x = 0 (inf times a zero correction term), and the float64
    # backward passes NaN where f' underflowed in double but not in long double.
    # (Where the reference's own f' underflows gradually, its rounding to 0 and
    # pyact's can differ by a few ULPs of x: those points are left out.)
    tails = np.geomspace(1e-300, 1e5, 601)
    x = np.concatenate([np.linspace(-20.0, 20.0, 161), [0.0, -0.0, 1e-30, -1e-30],
                        tails, -tails, [5e-324, -5e-324]])
    x = x.astype(dtype)
    x = x[np.isfinite(x)]
    slope = exact_derivative(act, params, x)
    x = x[np.abs(slope) >= np.finfo(slope.dtype).tiny]
    for g in (np.inf, -np.inf, 0.0, -0.0):
        grad = np.full(x.size, g, dtype=dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = fn(act, "_backward")(grad, x=x, **params)
        assert_ulp(got, exact_backward(act, params, grad, x), dtype, act.ulp_bound("backward"),
                   x, f"backward grad={g}")


@pytest.mark.parametrize("act,params", case_params(ALL_CASES))
def test_nan_propagates(act, params, dtype):
    x = np.full(37, np.nan, dtype=dtype)
    x[::3] = np.array([-np.nan], dtype=dtype)[0]
    assert np.isnan(fn(act)(x, **params)).all()
    assert np.isnan(fn(act, "_derivative")(x, **params)).all()
    assert np.isnan(fn(act, "_backward")(np.ones_like(x), x=x, **params)).all()
    assert np.isnan(fn(act)(dtype(np.nan), **params))


@pytest.mark.parametrize("act,params", case_params(ALL_CASES))
def test_sign_of_zero_results(act, params, dtype):
    # f(+-0) has the sign of the reference's zero (tanh(-0) = -0, elu(-0) = -0,
    # x - tanh(x) = +0 at -0: the IEEE evaluation of the formula, as PyTorch);
    # the float64 tanh once gave +0, the elu family +0 and float32 tanhshrink -0
    x = np.array([-0.0, 0.0] * 20, dtype=dtype)
    exact = act.reference(x.astype(ref.evaluation_dtype(dtype)), **params)
    for part in (slice(None), slice(0, 1), slice(1, 2)):   # vector loop and scalar tail
        got, want = fn(act)(x[part], **params), exact[part]
        zero = want == 0
        np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(want[zero]))


# ---- 3. derivatives: finite differences, backward consistency -----------------------

# 8th-order central difference: f'(x) = sum_k c_k (f(x+kh) - f(x-kh)) / h + O(h^8)
_FD_COEFFS = (4 / 5, -1 / 5, 4 / 105, -1 / 280)
_FD_H = 2.0 ** -6


def _fd_points(act, params):
    """Grid points in [-6, 6] (multiples of 2**-10, so x +- k h is exact in float64),
    at least 0.2 (> 4 h) away from every kink, where the function is smooth."""
    rng = np.random.default_rng(5)
    x = np.round(rng.uniform(-6.0, 6.0, 2000) * 1024) / 1024
    # 0 is excluded as well for every activation: functions built from |x| (softsign,
    # whose registry entry lists no kink) are C1 but not C2 there, and the 8th-order
    # stencil assumes f is smooth over [x - 4h, x + 4h].  Accuracy at and near 0 is
    # covered by the reference comparisons.
    kinks = np.array(act.kinks + (0.0,), dtype=np.float64)
    x = x[np.min(np.abs(x[:, None] - kinks[None, :]), axis=1) > 0.2]
    return x


@pytest.mark.parametrize("act,params", case_params(EXAMPLE_CASES))
def test_derivative_finite_difference(act, params):
    x = _fd_points(act, params)
    f = fn(act)
    fd = np.zeros_like(x)
    for k, c in enumerate(_FD_COEFFS, start=1):
        fd += c * (f(x + k * _FD_H, **params) - f(x - k * _FD_H, **params))
    fd /= _FD_H
    # Tolerance: rounding error of the stencil is about eps * sum|c_k| * 2 * max|f| / h
    # = 2.2e-16 * 2.1 * 6 / 2**-6 ~ 3e-12 for |f| <= 6 on [-6, 6] (f is within 1 ULP, so
    # each sample has a relative error <= eps); the truncation error is
    # h**8 / 630 * |f^(9)| ~ 6e-18 * |f^(9)|, below 1e-13 for these activations, whose
    # higher derivatives are O(1..1e3) on this interval.  1e-10 absolute plus 1e-9
    # relative leaves a margin of ~30x while still catching any wrong formula or
    # wrong branch (those are off by >= 1e-4).
    tol = 1e-10 + 1e-9 * np.abs(fd)
    for what, d in (("pyact derivative", fn(act, "_derivative")(x, **params)),
                    ("reference_derivative", act.reference_derivative(x, **params))):
        bad = np.abs(d - fd) > tol
        if bad.any():
            i = int(np.argmax(np.abs(d - fd) - tol))
            raise AssertionError(f"{what} vs 8th-order FD: x={x[i]!r} derivative={d[i]!r} "
                                 f"fd={fd[i]!r} ({int(bad.sum())} points bad)")


@pytest.mark.parametrize("act,params", case_params(ALL_CASES))
def test_backward_is_grad_times_derivative(act, params, dtype):
    """backward(grad, x) is fused (rounded once); grad * derivative rounds twice, so they
    agree to within 1 ULP of the product (contract)."""
    x = _check.sample(dtype, N_SAMPLE, seed=11)
    grad = _grad_like(x.size, dtype, seed=2)
    d = fn(act, "_derivative")(x, **params)
    with np.errstate(all="ignore"):
        product = grad * d
    b = fn(act, "_backward")(grad, x=x, **params)
    assert b.dtype == x.dtype
    assert_ulp(b, product, dtype, 1.0, x, "backward vs grad*derivative",
               {"grad": grad, "deriv": d})
    # and with grad == 1 the fused result is the derivative itself, bitwise
    assert_bitwise_equal(fn(act, "_backward")(np.ones_like(x), x=x, **params), d,
                         "backward(1, x) vs derivative(x)")


@pytest.mark.parametrize("act,params", case_params(
    [c for c in ALL_CASES if c[0].backward_y]))
def test_backward_y_matches_backward_x(act, params, dtype):
    """On a well-conditioned domain (|x| < 4, away from kinks) both forms agree.

    Bound, per element, in ULPs of the result: each form is within max_ulp of its own
    exact value (2 * max_ulp); in addition the y-form sees pyact's rounded y, whose
    relative error is <= max_ulp * 2**(1-p), which moves f'(y) by kappa times that,
    kappa = |y * d f'_y/dy / f'_y| (the conditioning of f' as a function of y); one
    relative 2**(1-p) is <= 2 ULPs of the result, hence + 2 * kappa * max_ulp.  kappa is
    measured on the reference with a relative step of 2**-20 (+25% slack for the
    second-order term).
    """
    if not y_allowed(act, params, dtype):
        pytest.fail("case list should only hold cases with backward from y")  # pragma: no cover
    rng = np.random.default_rng(9)
    x = rng.uniform(-4.0, 4.0, 4000)
    pts = [float(v) for v in params.values() if not isinstance(v, str)] + list(act.kinks)
    if pts:
        x = x[np.min(np.abs(x[:, None] - np.array(pts)[None, :]), axis=1) > 0.05]
    x = x.astype(dtype)
    grad = _grad_like(x.size, dtype, seed=4)
    y = fn(act)(x, **params)
    bx = fn(act, "_backward")(grad, x=x, **params)
    by = fn(act, "_backward")(grad, y=y, **params)
    rp = _check.rounded_params(act, params, dtype)
    yw = wide(y)
    delta = 2.0 ** -20
    with np.errstate(all="ignore"):
        d0 = act.reference_derivative_y(yw, **rp)
        dp = act.reference_derivative_y(yw * (1 + delta), **rp)
        dm = act.reference_derivative_y(yw * (1 - delta), **rp)
        kappa = np.abs(dp - dm) / (2 * delta * np.abs(d0))
    kappa = np.where(np.isfinite(kappa), kappa, 0.0).astype(np.float64) * 1.25
    assert np.all(kappa < 1e4), "domain is not well conditioned; test is miscalibrated"
    err = ref.ulp_error(by, bx.astype(yw.dtype), dtype)
    bound = 2 * act.ulp_bound("backward") + 2 * kappa * act.ulp_bound("forward")
    bad = ~(err <= bound)
    if bad.any():
        i = int(np.argmax(np.where(bad, err - bound, -np.inf)))
        raise AssertionError(f"backward(y) vs backward(x): x={x[i]!r} y={y[i]!r} grad={grad[i]!r}"
                             f" from x={bx[i]!r} from y={by[i]!r}: {err[i]} ULP > {bound[i]}")


# ---- 4. in place, out=, and every error path -----------------------------------------

def _x(dtype, n=257):
    return _check.sample(dtype, n, seed=21)[:n]


@pytest.mark.parametrize("act,params", case_params(ALL_CASES))
def test_in_place_identity(act, params, dtype):
    x = _x(dtype)
    expected = fn(act)(x, **params)
    a = x.copy()
    r = fn(act, "_")(a, **params)
    assert r is a
    assert_bitwise_equal(a, expected, "in place vs out of place")
    # out= returns out, bitwise equal; for every out-of-place form
    for suffix in ("", "_derivative"):
        o = np.full_like(x, 9.0)
        r = fn(act, suffix)(x, out=o, **params)
        assert r is o
        assert_bitwise_equal(o, fn(act, suffix)(x, **params), f"{suffix} out=")
        # out=x
        a = x.copy()
        r = fn(act, suffix)(a, out=a, **params)
        assert r is a
        assert_bitwise_equal(a, fn(act, suffix)(x, **params), f"{suffix} out=x")
    grad = _grad_like(x.size, dtype)
    expected_b = fn(act, "_backward")(grad, x=x, **params)
    g = grad.copy()
    r = fn(act, "_backward")(g, x=x, out=g, **params)
    assert r is g
    assert_bitwise_equal(g, expected_b, "backward out=grad")
    a = x.copy()  # out=x also works for backward
    r = fn(act, "_backward")(grad, x=a, out=a, **params)
    assert r is a
    assert_bitwise_equal(a, expected_b, "backward out=x")
    if y_allowed(act, params, dtype):
        y = fn(act)(x, **params)
        expected_y = fn(act, "_backward")(grad, y=y, **params)
        g = grad.copy()
        assert fn(act, "_backward")(g, y=y, out=g, **params) is g
        assert_bitwise_equal(g, expected_y, "backward(y) out=grad")
        yy = y.copy()
        assert fn(act, "_backward")(grad, y=yy, out=yy, **params) is yy
        assert_bitwise_equal(yy, expected_y, "backward(y) out=y")


@pytest.mark.parametrize("act,params", case_params(ALL_CASES))
def test_in_place_strided_touches_only_view(act, params, dtype):
    x = _x(dtype, 400)
    for view in (lambda a: a[::2], lambda a: a[::-3],
                 lambda a: a.reshape(20, 20)[1::2, ::3],
                 lambda a: a.reshape(20, 20).T[:, 3:17]):
        a = x.copy()
        v = view(a)
        expected = fn(act)(view(x), **params)
        mask = np.zeros(a.shape, dtype=bool)
        view(mask)[...] = True
        r = fn(act, "_")(v, **params)
        assert r is v
        assert_bitwise_equal(v, expected, "strided in place")
        assert_bitwise_equal(a[~mask], x[~mask], "elements outside the view")
        # the same through out= a strided view
        o = np.full(400, 9.0, dtype=dtype)
        ov = view(o)
        assert fn(act)(view(x), out=ov, **params) is ov
        assert_bitwise_equal(ov, expected, "strided out=")
        assert np.all(o[~mask] == 9.0)


def _unchanged(*pairs):
    for a, b in pairs:
        assert_bitwise_equal(a, b, "array must not be written on error")


@pytest.mark.parametrize("act,params", case_params(EXAMPLE_CASES))
def test_errors_arrays(act, params, dtype):
    x = _x(dtype, 33)
    x0 = x.copy()
    grad = _grad_like(x.size, dtype)
    f, f_, fd, fb = fn(act), fn(act, "_"), fn(act, "_derivative"), fn(act, "_backward")
    sentinel = np.full_like(x, 9.0)

    def out():
        return sentinel.copy()

    # read-only input to the in-place form
    ro = x.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        f_(ro, **params)
    _unchanged((ro, x0))
    # read-only out
    for g in (lambda o: f(x, out=o, **params), lambda o: fd(x, out=o, **params),
              lambda o: fb(grad, x=x, out=o, **params)):
        o = out()
        o.flags.writeable = False
        with pytest.raises(ValueError):
            g(o)
        _unchanged((o, sentinel), (x, x0))
        # wrong shape
        o = np.full((x.size + 1,), 9.0, dtype=dtype)
        with pytest.raises(ValueError):
            g(o)
        assert np.all(o == 9.0)
        o = np.full((1, x.size), 9.0, dtype=dtype)
        with pytest.raises(ValueError):
            g(o)
        assert np.all(o == 9.0)
        # wrong dtype (including float16 and the other float width)
        other = np.float64 if dtype == np.float32 else np.float32
        for odt in (other, np.float16, np.int64, np.complex128):
            o = np.full(x.shape, 9, dtype=odt)
            with pytest.raises(TypeError):
                g(o)
            assert np.all(o == 9)
        # out not an array
        with pytest.raises(TypeError):
            g([0.0] * x.size)
    _unchanged((x, x0))
    # unsupported input dtypes, every form
    for bad in (x.astype(np.complex128), x.astype(object), np.array(["a", "b"]),
                x.astype(np.longdouble), ["a", "b"], 1 + 2j, None):
        for call in (lambda b, o: f(b, out=o, **params), lambda b, o: fd(b, out=o, **params),
                     lambda b, o: fb(np.ones(np.shape(b)), x=b, out=o, **params),
                     lambda b, o: fb(b, x=np.ones(np.shape(b)), out=o, **params)):
            o = np.full(np.shape(bad), 9.0)
            with pytest.raises(TypeError):
                call(bad, o)
            assert np.all(o == 9.0)
        with pytest.raises(TypeError):
            f_(bad, **params)
    # in place needs a float32/float64 array
    for bad in ([0.5, 1.0], np.arange(5), np.arange(5, dtype=np.int32),
                np.array([True, False]), np.ones(3, dtype=np.float16),
                np.ones(3, dtype=np.longdouble), np.ones(3, dtype=np.complex64), 0.5):
        keep = np.array(bad, copy=True)
        with pytest.raises(TypeError):
            f_(bad, **params)
        assert_bitwise_equal(np.asarray(bad), keep, "in-place TypeError input")
    # backward with neither or both of x/y
    o = out()
    with pytest.raises(TypeError):
        fb(grad, out=o, **params)
    with pytest.raises(TypeError):
        fb(grad, x=x, y=x, out=o, **params)
    _unchanged((o, sentinel))
    # grad/x (and grad/y) shape mismatch
    for saved in ("x", "y") if y_allowed(act, params) else ("x",):
        for gshape in ((x.size - 1,), (1, x.size), ()):
            g = np.ones(gshape, dtype=dtype)
            o = np.full(gshape, 9.0, dtype=dtype)
            with pytest.raises(ValueError):
                fb(g, out=o, **{saved: x}, **params)
            assert np.all(o == 9.0)
            with pytest.raises(ValueError):
                fb(g, **{saved: x}, **params)
    _unchanged((x, x0))


@pytest.mark.parametrize("act,params", case_params(EXAMPLE_CASES))
def test_errors_y_not_available(act, params):
    """y for an activation whose derivative is not a function of its output."""
    if act.backward_y:
        # then y must work for the example params (unless a y_rule forbids them)
        x = _x(np.float64, 9)
        y = fn(act)(x, **params)
        if y_allowed(act, params):
            fn(act, "_backward")(np.ones_like(x), y=y, **params)
        return
    x = _x(np.float64, 9)
    o = np.full_like(x, 9.0)
    with pytest.raises(TypeError):
        fn(act, "_backward")(np.ones_like(x), y=fn(act)(x, **params), out=o, **params)
    assert np.all(o == 9.0)


def _violating_y_params(act, params):
    """Parameters that satisfy every rule except act.y_rule (found generically)."""
    candidates = []
    for p in act.real_params:
        for v in (-params[p.name], -abs(params[p.name]) - 0.1, -1.0):
            candidates.append({**params, p.name: v})
    names = [p.name for p in act.real_params]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            candidates.append({**params, a: params[b], b: params[a]})
            candidates.append({**params, a: abs(params[a]) + 1.0, b: -abs(params[a]) - 2.0})
            candidates.append({**params, b: abs(params[b]) + 1.0, a: -abs(params[b]) - 2.0})
    from pyact._registry import validate_params
    for c in candidates:
        try:
            validate_params(act, c)
        except (TypeError, ValueError):
            continue
        if act.y_rule(c):
            return c
    raise AssertionError(f"no parameters found that violate the y_rule of {act.name}")


@pytest.mark.parametrize("act", [pytest.param(a, id=a.name) for a in
                                 (c[0] for c in EXAMPLE_CASES) if a.y_rule is not None])
def test_errors_y_rule(act):
    params = _violating_y_params(act, act.example_params())
    x = _x(np.float64, 17)
    y = fn(act)(x, **params)
    grad = np.ones_like(x)
    o = np.full_like(x, 9.0)
    with pytest.raises(ValueError):
        fn(act, "_backward")(grad, y=y, out=o, **params)
    assert np.all(o == 9.0)
    # the same parameters are fine from x, and match the reference
    b = fn(act, "_backward")(grad, x=x, out=o, **params)
    assert b is o
    assert_ulp(o, exact_backward(act, params, grad, x), np.float64, act.ulp_bound("backward"), x, "backward x")


def _all_forms(act, x, o, params):
    """Call every form with `params`, expecting the same exception from each."""
    grad = np.ones_like(x)
    calls = [lambda: fn(act)(x, out=o, **params),
             lambda: fn(act, "_derivative")(x, out=o, **params),
             lambda: fn(act, "_backward")(grad, x=x, out=o, **params),
             lambda: fn(act, "_")(x, **params)]
    if act.backward_y:
        calls.append(lambda: fn(act, "_backward")(grad, y=x, out=o, **params))
    return calls


def _invalid_param_sets(act):
    """(exception, params) pairs that every form must reject, built from the registry."""
    base = act.example_params()
    bad = [(TypeError, {**base, "no_such_parameter": 1.0}),
           (TypeError, {**base, "x": 1.0})]
    for p in act.params:
        if p.is_choice:
            bad.append((ValueError, {**base, p.name: "foo"}))
            bad.append((ValueError, {**base, p.name: p.choices[0].upper()}))
            bad.append((ValueError, {**base, p.name: None}))
            continue
        for v in (np.nan, np.inf, -np.inf, np.float32(np.nan)):
            bad.append((ValueError, {**base, p.name: v}))
        for v in ("1.0", True, 1 + 0j, None):
            bad.append((TypeError, {**base, p.name: v}))
        violating = {"nonzero": [0.0, -0.0], "nonnegative": [-0.5, -1e-300],
                     "positive": [0.0, -1.0]}.get(p.rule, [])
        for v in violating:
            bad.append((ValueError, {**base, p.name: v}))
        if p.required:
            bad.append((TypeError, {k: v for k, v in base.items() if k != p.name}))
    if act.rule is not None:
        names = [p.name for p in act.real_params]
        found = False
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                for c in ({**base, a: base[b], b: base[a]},
                          {**base, a: base[b] + 1.0, b: base[a] - 1.0},
                          {**base, b: base[a] + 1.0, a: base[b] - 1.0}):
                    if act.rule(c):
                        bad.append((ValueError, c))
                        found = True
        assert found, f"no violation of {act.name}'s cross-parameter rule found"
    return bad


@pytest.mark.parametrize("act", act_params())
def test_errors_invalid_params(act, dtype):
    x = _x(dtype, 11)
    x0 = x.copy()
    for exc, params in _invalid_param_sets(act):
        for call in _all_forms(act, x, None, params):
            o = np.full_like(x, 9.0)
            with pytest.raises(exc):
                call()
            _unchanged((x, x0))
        o = np.full_like(x, 9.0)
        for call in _all_forms(act, x, o, params):
            with pytest.raises(exc):
                call()
            assert np.all(o == 9.0), params
            _unchanged((x, x0))


# ---- 5. partial overlap between input and out ----------------------------------------

@pytest.mark.parametrize("act,params", case_params(ALL_CASES))
def test_partial_overlap(act, params, dtype):
    base = _x(dtype, 301)
    grad0 = _grad_like(base.size, dtype)
    views = [(lambda b: b[:-1], lambda b: b[1:]),
             (lambda b: b[1:], lambda b: b[:-1]),
             (lambda b: b[:-7], lambda b: b[7:]),
             (lambda b: b[2:][::2], lambda b: b[:-2][::2]),
             (lambda b: b[::-1][:-3], lambda b: b[3:]),
             (lambda b: b[:300].reshape(20, 15)[:, :-1], lambda b: b[:300].reshape(20, 15)[:, 1:])]
    for i, (xin, xout) in enumerate(views):
        for suffix in ("", "_derivative"):
            expected = fn(act, suffix)(xin(base).copy(), **params)
            buf = base.copy()
            r = fn(act, suffix)(xin(buf), out=xout(buf), **params)
            assert_bitwise_equal(r, expected, f"overlap {i} {suffix}")
            assert_bitwise_equal(xout(buf), expected, f"overlap {i} {suffix}")
        # backward: x overlapping out, and grad overlapping out
        expected = fn(act, "_backward")(grad0[:xin(base).size].reshape(xin(base).shape),
                                        x=xin(base).copy(), **params)
        buf = base.copy()
        g = grad0[:xin(base).size].reshape(xin(base).shape)
        fn(act, "_backward")(g, x=xin(buf), out=xout(buf), **params)
        assert_bitwise_equal(xout(buf), expected, f"overlap {i} backward x/out")
        gbuf = np.zeros_like(base)
        xin(gbuf)[...] = g
        x_copy = xin(base).copy()
        fn(act, "_backward")(xin(gbuf), x=x_copy, out=xout(gbuf), **params)
        assert_bitwise_equal(xout(gbuf), expected, f"overlap {i} backward grad/out")


# ---- 6. dtype handling -----------------------------------------------------------------

@pytest.mark.parametrize("act,params", case_params(EXAMPLE_CASES))
def test_dtype_promotion_to_float64(act, params):
    for value in (np.arange(-6, 7), np.arange(-6, 7, dtype=np.int8), np.arange(0, 9, dtype=np.uint16),
                  np.array([True, False, True]), [-2.5, 0.0, 0.5, 3.0], [1, 2, -3]):
        as64 = np.asarray(value).astype(np.float64)
        for suffix in ("", "_derivative"):
            r = fn(act, suffix)(value, **params)
            assert isinstance(r, np.ndarray) and r.dtype == np.float64, (value, r.dtype)
            assert_bitwise_equal(r, fn(act, suffix)(as64, **params), f"{suffix} {value!r}")
        r = fn(act, "_backward")(np.ones(as64.shape, dtype=np.int64), x=value, **params)
        assert r.dtype == np.float64
        assert_bitwise_equal(r, fn(act, "_backward")(np.ones_like(as64), x=as64, **params))
    for scalar in (0.5, -3, True, 2.0):
        r = fn(act)(scalar, **params)
        assert type(r) is np.float64, type(r)
        assert_bitwise_equal(r, fn(act)(np.float64(scalar), **params))
        r = fn(act, "_derivative")(scalar, **params)
        assert type(r) is np.float64
        r = fn(act, "_backward")(1.0, x=scalar, **params)
        assert type(r) is np.float64


@pytest.mark.parametrize("act,params", case_params(ALL_CASES))
def test_float16(act, params):
    x16 = np.concatenate([_check.special_values(np.float16),
                          np.linspace(-12, 12, 301).astype(np.float16)])
    g16 = np.resize(np.array([1.0, -2.0, 0.25], dtype=np.float16), x16.size)
    x32 = x16.astype(np.float32)
    g32 = g16.astype(np.float32)
    with np.errstate(over="ignore"):  # our own cast; float16 overflow -> inf
        expected = {"": fn(act)(x32, **params).astype(np.float16),
                    "_derivative": fn(act, "_derivative")(x32, **params).astype(np.float16),
                    "_backward": fn(act, "_backward")(g32, x=x32, **params).astype(np.float16)}
    got = {"": fn(act)(x16, **params), "_derivative": fn(act, "_derivative")(x16, **params),
           "_backward": fn(act, "_backward")(g16, x=x16, **params)}
    for k in got:
        assert got[k].dtype == np.float16
        assert_bitwise_equal(got[k], expected[k], f"float16 {k}")
    # out= a float16 array works too; 0-d float16 gives np.float16
    o = np.full_like(x16, 9.0)
    assert fn(act)(x16, out=o, **params) is o
    assert_bitwise_equal(o, expected[""])
    assert type(fn(act)(np.float16(0.5), **params)) is np.float16
    if y_allowed(act, params, np.float32):
        y16 = got[""]
        with np.errstate(over="ignore"):
            e = fn(act, "_backward")(g32, y=y16.astype(np.float32), **params).astype(np.float16)
        r = fn(act, "_backward")(g16, y=y16, **params)
        assert r.dtype == np.float16
        assert_bitwise_equal(r, e, "float16 backward y")


@pytest.mark.parametrize("act,params", case_params(EXAMPLE_CASES))
def test_mixed_dtypes(act, params):
    x64 = _x(np.float64, 50)
    with np.errstate(over="ignore"):  # our own cast of huge float64 values
        x32 = x64.astype(np.float32)
    g64 = _grad_like(50, np.float64)
    g32 = g64.astype(np.float32)
    b = fn(act, "_backward")
    r = b(g32, x=x64, **params)
    assert r.dtype == np.float64
    assert_bitwise_equal(r, b(g32.astype(np.float64), x=x64, **params), "grad32 x64")
    r = b(g64, x=x32, **params)
    assert r.dtype == np.float64
    assert_bitwise_equal(r, b(g64, x=x32.astype(np.float64), **params), "grad64 x32")
    r = b(np.ones(50, dtype=np.int32), x=x32, **params)
    assert r.dtype == np.float64
    # out must have the promoted dtype
    o = np.full(50, 9.0, dtype=np.float32)
    with pytest.raises(TypeError):
        b(g32, x=x64, out=o, **params)
    assert np.all(o == 9.0)
    o = np.full(50, 9.0)
    assert b(g32, x=x64, out=o, **params) is o


@pytest.mark.parametrize("act,params", case_params(EXAMPLE_CASES))
def test_zero_d(act, params, dtype):
    for v in (dtype(0.75), np.array(0.75, dtype=dtype), np.array(-2.0, dtype=dtype)):
        x = np.asarray(v)
        for suffix in ("", "_derivative"):
            r = fn(act, suffix)(v, **params)
            assert type(r) is dtype, type(r)
            expected = fn(act, suffix)(x.reshape(1), **params)[0]
            assert_bitwise_equal(r, expected, f"0-d {suffix}")
            o = np.array(9.0, dtype=dtype)
            assert fn(act, suffix)(v, out=o, **params) is o
            assert_bitwise_equal(o, expected)
        r = fn(act, "_backward")(dtype(2.0), x=v, **params)
        assert type(r) is dtype
        o = np.array(9.0, dtype=dtype)
        assert fn(act, "_backward")(np.array(2.0, dtype=dtype), x=v, out=o, **params) is o
        assert_bitwise_equal(o, r)
        a = x.copy()
        assert fn(act, "_")(a, **params) is a
        assert a.shape == () and a.dtype == dtype
        assert_bitwise_equal(a, fn(act)(x.reshape(1), **params)[0])


@pytest.mark.parametrize("act,params", case_params(EXAMPLE_CASES))
def test_byteswapped_and_unaligned(act, params, dtype):
    """Non-native byte order and unaligned data are accepted (read); results are correct."""
    x = _x(dtype, 101)
    expected = fn(act)(x, **params)
    sw = x.astype(x.dtype.newbyteorder())
    assert_bitwise_equal(fn(act)(sw, **params), expected, "byte-swapped input")
    raw = np.zeros(x.nbytes + 1, dtype=np.uint8)
    un = raw[1:].view(dtype)
    un[...] = x
    assert not un.flags.aligned
    assert_bitwise_equal(fn(act)(un, **params), expected, "unaligned input")
    assert fn(act, "_")(un, **params) is un
    assert_bitwise_equal(un, expected, "unaligned in place")


# ---- 7. property tests ----------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


@st.composite
def _strided_arrays(draw):
    """(view, grad, base, index, transposed): a random strided view of a random array."""
    dtype = draw(st.sampled_from(DTYPES))
    width = 32 if dtype == np.float32 else 64
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=12))
    elements = st.floats(allow_nan=True, allow_infinity=True, width=width)
    base = draw(hnp.arrays(dtype, shape, elements=elements))
    gbase = draw(hnp.arrays(dtype, shape, elements=st.floats(-8, 8, width=width)))
    index = []
    for n in shape:
        step = draw(st.sampled_from([1, 2, 3, -1, -2]))
        start = draw(st.integers(0, max(n - 1, 0)))
        index.append(slice(start, None, step) if step > 0 else slice(None, start, step))
    index = tuple(index) if index else (Ellipsis,)  # base[()] would be a scalar, not a view
    x, grad = base[index], gbase[index]
    transposed = x.ndim >= 2 and draw(st.booleans())
    if transposed:
        x, grad = x.T, grad.T
    return x, grad, base, index, transposed


def _property(act, params):
    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(_strided_arrays())
    def run(data):
        x, grad, base, index, transposed = data
        check_all_forms(act, params, x, grad, f"property {x.shape} {x.strides}")
        expected = fn(act)(x, **params)
        a = x.copy()
        assert fn(act, "_")(a, **params) is a
        assert_bitwise_equal(a, expected, "in place (copy) vs out of place")
        # in place on the strided view itself: the view changes, nothing else does
        keep = base.copy()
        mask = np.zeros(base.shape, dtype=bool)
        mview = mask[index].T if transposed else mask[index]
        mview[...] = True
        assert fn(act, "_")(x, **params) is x
        assert_bitwise_equal(x, expected, "strided in place vs out of place")
        assert_bitwise_equal(base[~mask], keep[~mask], "elements outside the view")
    run()


@pytest.mark.parametrize("act,params", case_params(ALL_CASES))
def test_property_hypothesis(act, params):
    _property(act, params)


# ---- 8. the kernels release the GIL ----------------------------------------------------

def test_kernel_releases_gil():
    """A large forward runs in a thread; the main thread must make progress while the
    worker is inside the kernel.  With the GIL held for the whole kernel call the main
    thread could run only during the Python part of the call (microseconds, plus at most
    one switch interval); we therefore look for main-thread progress in the *middle* of
    the kernel window, at least two switch intervals after it began.  No timing ratio is
    asserted; on a loaded machine the experiment is simply repeated."""
    act, params = next(((a, p) for a, p, _ in EXAMPLE_CASES if a.name == "sigmoid"),
                       EXAMPLE_CASES[0][:2])
    x = np.linspace(-5.0, 5.0, 2_000_000)
    fn(act)(x[:1000], **params)  # warm up
    margin = 2 * sys.getswitchinterval()
    outcomes = []
    for attempt in range(6):
        stamps = []
        window = {}
        started = threading.Event()

        def worker():
            started.set()
            time.sleep(0.01)  # let the main thread start spinning
            t0 = time.perf_counter()
            fn(act)(x, **params)
            window["t"] = (t0, time.perf_counter())

        t = threading.Thread(target=worker)
        t.start()
        started.wait()
        counter = 0
        while t.is_alive():
            counter += 1
            stamps.append(time.perf_counter())
        t.join()
        t0, t1 = window["t"]
        lo, hi = t0 + margin, t1 - 0.1 * (t1 - t0)
        inside = sum(lo < s < hi for s in stamps)
        outcomes.append((t1 - t0, counter, inside))
        if hi > lo and inside > 0:
            return
        x = np.concatenate([x, x]) if t1 - t0 < 4 * margin else x
    raise AssertionError(f"main thread made no progress during the kernel "
                         f"(duration, counter, samples inside window): {outcomes}")
