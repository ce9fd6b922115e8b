"""Validate the pure-NumPy reference (pyact/reference.py) against mpmath.

The reference is the yardstick for the compiled kernels, so it must itself be
accurate to a small fraction of an ULP of the result type: float32 results are
evaluated in float64, float64 results in long double.  Each function is
compared with a 50-digit mpmath evaluation of its textbook formula on a sample
that covers the tails, tiny and subnormal values and huge inputs, and must be
within ``TOL`` ULPs of the narrow type.
"""
from __future__ import annotations

import importlib.util
import math
import pathlib
import warnings

import numpy as np
import pytest

mpmath = pytest.importorskip("mpmath")
mp = mpmath.mp


def _load_reference():
    try:
        from pyact import reference  # needs the compiled extension
        return reference
    except Exception:
        path = pathlib.Path(__file__).resolve().parents[1] / "pyact" / "reference.py"
        spec = importlib.util.spec_from_file_location("pyact_reference_standalone", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


ref = _load_reference()

DPS = 50
TOL = 0.05  # ULPs of the narrow type
NARROW = (np.float32, np.float64)
LONGDOUBLE_IS_WIDE = np.finfo(np.longdouble).nmant >= 63


def _skip_if_no_extended(narrow):
    if narrow is np.float64 and not LONGDOUBLE_IS_WIDE:
        pytest.skip("long double is not wider than double on this platform")


# ---------------------------------------------------------------------------
# mpmath helpers
# ---------------------------------------------------------------------------

def to_mp(v):
    """The exact value of a binary float scalar."""
    v = np.asarray(v)[()]
    n, d = v.as_integer_ratio()
    with mp.workdps(DPS):
        return mp.mpf(n) / d


def ulp_mp(exact, narrow):
    fi = np.finfo(narrow)
    p = fi.nmant + 1
    if exact == 0:
        k = fi.minexp + 1
    else:
        _, k = mpmath.frexp(abs(exact))
        k = min(max(int(k), fi.minexp + 1), fi.maxexp)
    return mpmath.ldexp(1, k - p)


def ulps(result, exact, narrow):
    """|result - exact| in ULPs of ``narrow`` (result: one wide-dtype scalar)."""
    with mp.workdps(DPS):
        return _ulps(result, exact, narrow)


def _ulps(result, exact, narrow):
    fi = np.finfo(narrow)
    overflow = to_mp(fi.max) + ulp_mp(to_mp(fi.max), narrow) / 2
    if abs(exact) >= overflow:  # the correctly rounded answer is +-inf
        with np.errstate(over="ignore"):
            rounded = np.asarray(result).astype(narrow)
        return 0.0 if np.isinf(rounded) and (rounded > 0) == (exact > 0) else math.inf
    if not np.isfinite(result):
        return math.inf
    return float(abs(to_mp(result) - exact) / ulp_mp(exact, narrow))


def mp_sig(x):
    return 1 / (1 + mp.exp(-x))


def mp_softplus(z):
    return mpmath.log1p(mp.exp(z))


SELU_ALPHA = "1.6732632423543772848170429916717"
SELU_SCALE = "1.0507009873554804934193349852946"


def mp_selu_consts():
    # parsed at the working precision (a module-level mpf would have 15 digits)
    return mp.mpf(SELU_ALPHA), mp.mpf(SELU_SCALE)


def mp_Phi(x):
    if abs(x) > 1000:
        # mpmath's erfc overflows internally for |x| ~ 1e300; the asymptotic
        # series Q(t) = phi(t)/t (1 - 1/t^2 + 3/t^4 - 15/t^6 + 105/t^8) is
        # exact to ~1e-27 relative here.
        t = abs(x)
        q = mp_phi(t) / t * (1 - t ** -2 + 3 * t ** -4 - 15 * t ** -6 + 105 * t ** -8)
        return q if x < 0 else 1 - q
    return mpmath.erfc(-x / mp.sqrt(2)) / 2


def mp_phi(x):
    return mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)


def mp_gelu_tanh_v(x):
    """2u and d(2u)/dx of the tanh form."""
    k = 2 * mp.sqrt(2 / mp.pi)
    a = mp.mpf("0.044715")
    return k * (x + a * x ** 3), k * (1 + 3 * a * x * x)


def mp_tanhshrink(x):
    # x - tanh(x) loses ~2 |log10 x| digits: raise the precision to match
    extra = 0 if x == 0 else max(0, int(-2 * mpmath.log10(abs(x))) + 5)
    with mp.workdps(DPS + extra):
        return x - mp.tanh(x)


def _piecewise(cond, a, b):
    return a if cond else b


# name -> mpmath implementation (x or y an exact mpf; params as given)
MP = {
    "sigmoid": lambda x: mp_sig(x),
    "sigmoid_derivative": lambda x: mp_sig(x) * mp_sig(-x),
    "sigmoid_derivative_y": lambda y: y * (1 - y),
    "log_sigmoid": lambda x: -mp_softplus(-x),
    "log_sigmoid_derivative": lambda x: mp_sig(-x),
    "log_sigmoid_derivative_y": lambda y: -mpmath.expm1(y),
    "tanh": lambda x: mp.tanh(x),
    "tanh_derivative": lambda x: mp.sech(x) ** 2,
    "tanh_derivative_y": lambda y: (1 - y) * (1 + y),
    "relu": lambda x: _piecewise(x > 0, x, 0),
    "relu_derivative": lambda x: _piecewise(x > 0, 1, 0),
    "relu_derivative_y": lambda y: _piecewise(y > 0, 1, 0),
    "relu6": lambda x: min(max(x, 0), 6),
    "relu6_derivative": lambda x: _piecewise(0 < x < 6, 1, 0),
    "relu6_derivative_y": lambda y: _piecewise(0 < y < 6, 1, 0),
    "leaky_relu": lambda x, negative_slope=0.01: _piecewise(x > 0, x, negative_slope * x),
    "leaky_relu_derivative": lambda x, negative_slope=0.01: _piecewise(x > 0, 1, negative_slope),
    "leaky_relu_derivative_y": lambda y, negative_slope=0.01: _piecewise(y > 0, 1, negative_slope),
    "elu": lambda x, alpha=1.0: _piecewise(x > 0, x, alpha * mpmath.expm1(x)),
    "elu_derivative": lambda x, alpha=1.0: _piecewise(x > 0, 1, alpha * mp.exp(x)),
    "elu_derivative_y": lambda y, alpha=1.0: _piecewise(y > 0, 1, y + alpha),
    "selu": lambda x: (lambda a, s: s * _piecewise(x > 0, x, a * mpmath.expm1(x)))(
        *mp_selu_consts()),
    "selu_derivative": lambda x: (lambda a, s: s * _piecewise(x > 0, 1, a * mp.exp(x)))(
        *mp_selu_consts()),
    "selu_derivative_y": lambda y: (lambda a, s: _piecewise(y > 0, s, y + s * a))(
        *mp_selu_consts()),
    "celu": lambda x, alpha=1.0: _piecewise(x > 0, x, alpha * mpmath.expm1(x / mp.mpf(alpha))),
    "celu_derivative": lambda x, alpha=1.0: _piecewise(x > 0, 1, mp.exp(x / mp.mpf(alpha))),
    "celu_derivative_y": lambda y, alpha=1.0: _piecewise(y > 0, 1, y / mp.mpf(alpha) + 1),
    "gelu": lambda x, approximate="none": (
        x * mp_Phi(x) if approximate == "none" else x * mp_sig(mp_gelu_tanh_v(x)[0])),
    "gelu_derivative": lambda x, approximate="none": (
        mp_Phi(x) + x * mp_phi(x) if approximate == "none" else
        (lambda v, dv: mp_sig(v) + x * dv * mp_sig(v) * mp_sig(-v))(*mp_gelu_tanh_v(x))),
    "silu": lambda x: x * mp_sig(x),
    "silu_derivative": lambda x: mp_sig(x) * (1 + x * mp_sig(-x)),
    "mish": lambda x: x * mp.tanh(mp_softplus(x)),
    "mish_derivative": lambda x: (mp.tanh(mp_softplus(x))
                                  + x * mp_sig(x) * mp.sech(mp_softplus(x)) ** 2),
    "softplus": lambda x, beta=1.0, threshold=20.0: _piecewise(
        beta * x > threshold, x, mp_softplus(beta * x) / beta),
    "softplus_derivative": lambda x, beta=1.0, threshold=20.0: _piecewise(
        beta * x > threshold, 1, mp_sig(beta * x)),
    "softplus_derivative_y": lambda y, beta=1.0, threshold=20.0: _piecewise(
        beta * y > mp_softplus(mp.mpf(threshold)), 1, -mpmath.expm1(-beta * y)),
    "softsign": lambda x: x / (1 + abs(x)),
    "softsign_derivative": lambda x: 1 / (1 + abs(x)) ** 2,
    "softsign_derivative_y": lambda y: (1 - abs(y)) ** 2,
    "hardsigmoid": lambda x: 0 if x <= -3 else 1 if x >= 3 else x / 6 + mp.mpf(1) / 2,
    "hardsigmoid_derivative": lambda x: _piecewise(-3 < x < 3, mp.mpf(1) / 6, 0),
    "hardsigmoid_derivative_y": lambda y: _piecewise(0 < y < 1, mp.mpf(1) / 6, 0),
    "hardswish": lambda x: 0 if x <= -3 else x if x >= 3 else x * (x + 3) / 6,
    "hardswish_derivative": lambda x: 0 if x < -3 else x / 3 + mp.mpf(1) / 2 if x <= 3 else 1,
    "hardtanh": lambda x, min_val=-1.0, max_val=1.0: min(max(x, min_val), max_val),
    "hardtanh_derivative": lambda x, min_val=-1.0, max_val=1.0: _piecewise(
        min_val < x < max_val, 1, 0),
    "hardtanh_derivative_y": lambda y, min_val=-1.0, max_val=1.0: _piecewise(
        min_val < y < max_val, 1, 0),
    "hardshrink": lambda x, lambd=0.5: _piecewise(abs(x) > lambd, x, 0),
    "hardshrink_derivative": lambda x, lambd=0.5: _piecewise(abs(x) > lambd, 1, 0),
    "hardshrink_derivative_y": lambda y, lambd=0.5: _piecewise(y != 0, 1, 0),
    "softshrink": lambda x, lambd=0.5: (x - lambd if x > lambd else x + lambd if x < -lambd
                                        else 0),
    "softshrink_derivative": lambda x, lambd=0.5: _piecewise(abs(x) > lambd, 1, 0),
    "softshrink_derivative_y": lambda y, lambd=0.5: _piecewise(y != 0, 1, 0),
    "tanhshrink": mp_tanhshrink,
    "tanhshrink_derivative": lambda x: mp.tanh(x) ** 2,
    "threshold": lambda x, threshold, value: _piecewise(x > threshold, x, value),
    "threshold_derivative": lambda x, threshold, value: _piecewise(x > threshold, 1, 0),
    "threshold_derivative_y": lambda y, threshold, value: _piecewise(y > threshold, 1, 0),
}

# (forward name, parameter sets) for every elementwise family
FAMILIES = [
    ("sigmoid", [{}]),
    ("log_sigmoid", [{}]),
    ("tanh", [{}]),
    ("relu", [{}]),
    ("relu6", [{}]),
    ("leaky_relu", [{}, {"negative_slope": 0.2}, {"negative_slope": -0.75},
                    {"negative_slope": 0.0}]),
    ("elu", [{}, {"alpha": 0.3}, {"alpha": 2.5}]),
    ("selu", [{}]),
    ("celu", [{}, {"alpha": 0.3}, {"alpha": -1.7}]),
    ("gelu", [{"approximate": "none"}, {"approximate": "tanh"}]),
    ("silu", [{}]),
    ("mish", [{}]),
    ("softplus", [{}, {"beta": 2.0, "threshold": 20.0}, {"beta": 0.3, "threshold": 5.0},
                  {"beta": -1.5, "threshold": 20.0}, {"beta": 1.0, "threshold": 1000.0},
                  {"beta": 3.7, "threshold": 20.0}]),
    ("softsign", [{}]),
    ("hardsigmoid", [{}]),
    ("hardswish", [{}]),
    ("hardtanh", [{}, {"min_val": -2.0, "max_val": 0.5}]),
    ("hardshrink", [{}, {"lambd": 0.0}, {"lambd": 1.5}]),
    ("softshrink", [{}, {"lambd": 0.0}, {"lambd": 1.5}]),
    ("tanhshrink", [{}]),
    ("threshold", [{"threshold": 0.1, "value": -1.0}, {"threshold": -1.0, "value": -20.0}]),
]

# backward from y is only meaningful under these conditions (registry y_rules)
Y_OK = {
    "leaky_relu": lambda p: p.get("negative_slope", 0.01) >= 0,
    "elu": lambda p: p.get("alpha", 1.0) >= 0,
    "threshold": lambda p: p["value"] <= p["threshold"],
}

# Zeros of derivatives (where the reference switches to a Taylor polynomial)
ROOTS = {"gelu": -0.75179152469356445, "silu": -1.2784645427610738,
         "mish": -1.1924312145154951, "gelu_tanh": -0.75246142207101626}

BASE = [1e-300, 1e-30, 1e-5, 0.1, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 6.0, 10.0, 13.5, 20.0,
        30.0, 37.0, 38.5, 80.0, 100.0, 103.0, 700.0, 745.0, 1e30]
TINY = {np.float32: [1e-40, 1.4e-45, 1.1754944e-38],
        np.float64: [5e-324, 1e-310, 2.2250738585072014e-308]}


def sample_points(narrow, name, params):
    rng = np.random.default_rng(abs(hash((name, str(narrow)))) % 2 ** 32)
    pts = [0.0]
    for v in BASE + TINY[narrow]:
        pts += [v, -v]
    pts += list(rng.uniform(-12, 12, 24))
    pts += list(rng.uniform(-2, 2, 16))
    # full-mantissa points in the tails, where argument rounding would show
    pts += list(rng.uniform(-40, 40, 32))
    pts += list(rng.uniform(-800, 800, 16))
    pts += list(np.exp(rng.uniform(-60, 7, 12)) * rng.choice([-1, 1], 12))
    for v in list(params.values()) + [-3.0, 3.0, 6.0, -1.5, 0.5, -0.5]:
        if isinstance(v, float):
            pts += [v, -v]
    # around the zeros of the derivatives and the Taylor-region edges
    for r in ROOTS.values():
        pts += [r, r * (1 + 1e-9), r * (1 - 1e-7), r + 0.1, r - 0.1, r + 0.149, r - 0.199,
                r + 0.201, r - 0.3]
    pts += [0.4999, -0.4999, 0.5001, 0.25, -0.125]
    x = np.array(pts, dtype=np.float64).astype(narrow)
    # exact neighbours of a few points (next representable values)
    extra = [np.nextafter(narrow(r), narrow(0)) for r in ROOTS.values()]
    extra += [np.nextafter(narrow(-3), narrow(0)), np.nextafter(narrow(3), narrow(0))]
    x = np.concatenate([x, np.array(extra, dtype=narrow)])
    return np.unique(x[np.isfinite(x)])


def elementwise_cases():
    cases = []
    for fam, param_sets in FAMILIES:
        for params in param_sets:
            pid = ",".join(f"{k}={v}" for k, v in params.items())
            for suffix in ("", "_derivative", "_derivative_y"):
                name = fam + suffix
                if not hasattr(ref, name) and suffix == "_derivative_y":
                    continue
                if suffix == "_derivative_y" and fam in Y_OK and not Y_OK[fam](params):
                    continue
                cases.append(pytest.param(name, fam, params, id=f"{name}[{pid}]"))
    return cases


def _mp_params(params):
    return {k: (mp.mpf(v) if isinstance(v, float) else v) for k, v in params.items()}


def measure(name, fam, params, narrow, x=None):
    """Max error (ULPs of narrow) of the reference over the sample, and where."""
    wide = ref.evaluation_dtype(narrow)
    if x is None:
        x = sample_points(narrow, name, params)
    mparams = _mp_params(params)
    with mp.workdps(DPS):
        if name.endswith("_derivative_y"):
            # sample y as the (rounded) outputs of the forward function, plus
            # the inputs themselves where they lie in its range
            fwd = MP[fam]
            ys = [float(fwd(to_mp(v), **mparams)) for v in x]
            with np.errstate(over="ignore"):
                x = np.unique(np.array(ys, dtype=np.float64).astype(narrow))
            x = x[np.isfinite(x)]
        got = getattr(ref, name)(x.astype(wide), **params)
        assert got.dtype == wide and got.shape == x.shape
        worst, where = 0.0, None
        for xi, gi in zip(x, got):
            exact = MP[name](to_mp(xi), **mparams)
            e = ulps(gi, mp.mpf(exact), narrow)
            if e > worst or where is None:
                worst, where = max(e, worst), xi
        return worst, where


# ---------------------------------------------------------------------------
# Accuracy of every elementwise function against mpmath
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("narrow", NARROW, ids=["f32", "f64"])
@pytest.mark.parametrize("name,fam,params", elementwise_cases())
def test_elementwise_accuracy(name, fam, params, narrow):
    _skip_if_no_extended(narrow)
    worst, where = measure(name, fam, params, narrow)
    assert worst < TOL, f"{name}{params} {narrow.__name__}: {worst:.3g} ULP at x={where!r}"


@pytest.mark.parametrize("narrow", NARROW, ids=["f32", "f64"])
@pytest.mark.parametrize("name,fam,params", [
    ("gelu_derivative", "gelu", {"approximate": "none"}),
    ("gelu_derivative", "gelu", {"approximate": "tanh"}),
    ("silu_derivative", "silu", {}),
    ("mish_derivative", "mish", {}),
    ("tanhshrink", "tanhshrink", {}),
])
def test_cancellation_regions_dense(name, fam, params, narrow):
    """Dense sweep where the direct formulas cancel (roots of the derivatives,
    tanhshrink near 0) and across the edges of the Taylor regions."""
    _skip_if_no_extended(narrow)
    if name == "tanhshrink":
        x = np.linspace(-0.7, 0.7, 121)
    else:
        key = "gelu_tanh" if params.get("approximate") == "tanh" else fam
        x = ROOTS[key] + np.linspace(-0.35, 0.35, 121)
    worst, where = measure(name, fam, params, narrow, x.astype(narrow))
    assert worst < TOL, f"{name}{params} {narrow.__name__}: {worst:.3g} ULP at x={where!r}"


# ---------------------------------------------------------------------------
# Special values
# ---------------------------------------------------------------------------

def all_elementwise():
    out = []
    for fam, param_sets in FAMILIES:
        for suffix in ("", "_derivative", "_derivative_y"):
            name = fam + suffix
            if hasattr(ref, name):
                for params in param_sets:
                    out.append((name, params))
    return out


@pytest.mark.parametrize("wide", [np.float64, np.longdouble], ids=["f64", "ld"])
def test_nan_gives_nan_and_no_warnings(wide):
    x = np.array([np.nan, -np.nan, 0.0, -0.0, np.inf, -np.inf, 1e300, -1e300, 5e-324,
                  -5e-324, 1.0, -3.0, 3.0, 6.0], dtype=wide)
    for name, params in all_elementwise():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = getattr(ref, name)(x, **params)
        assert y.dtype == wide and y.shape == x.shape
        assert np.isnan(y[:2]).all(), (name, params, y[:2])
        assert not np.isnan(y[2:]).any() or name.endswith("_derivative_y"), (name, params, y)


INF = math.inf
SPECIAL = [
    # name, params, x, expected
    ("sigmoid", {}, [-INF, INF, 0.0], [0, 1, 0.5]),
    ("sigmoid_derivative", {}, [-INF, INF, 0.0], [0, 0, 0.25]),
    ("log_sigmoid", {}, [-INF, INF, 0.0], [-INF, 0, -math.log(2)]),
    ("log_sigmoid_derivative", {}, [-INF, INF], [1, 0]),
    ("log_sigmoid_derivative_y", {}, [-INF, 0.0], [1, 0]),
    ("tanh", {}, [-INF, INF, -0.0], [-1, 1, 0]),
    ("tanh_derivative", {}, [-INF, INF, 0.0], [0, 0, 1]),
    ("relu", {}, [-INF, INF, 0.0, -0.0], [0, INF, 0, 0]),
    ("relu_derivative", {}, [-INF, INF, 0.0, -0.0], [0, 1, 0, 0]),
    ("relu6", {}, [-INF, INF, 6.0], [0, 6, 6]),
    ("relu6_derivative", {}, [-INF, INF, 0.0, 6.0, 5.0], [0, 0, 0, 0, 1]),
    ("leaky_relu", {"negative_slope": 0.1}, [-INF, INF, 0.0], [-INF, INF, 0]),
    ("leaky_relu", {"negative_slope": 0.0}, [-INF], [0]),
    ("leaky_relu_derivative", {"negative_slope": 0.1}, [-INF, INF, 0.0], [0.1, 1, 0.1]),
    ("elu", {"alpha": 1.5}, [-INF, INF, 0.0], [-1.5, INF, 0]),
    ("elu_derivative", {"alpha": 1.5}, [-INF, INF, 0.0], [0, 1, 1.5]),
    ("elu_derivative_y", {"alpha": 1.5}, [0.0, 1.0, -1.5], [1.5, 1, 0]),
    ("selu", {}, [INF], [INF]),
    ("selu_derivative", {}, [-INF, INF], [0, float(SELU_SCALE)]),
    ("celu", {"alpha": 2.0}, [-INF, INF, 0.0], [-2.0, INF, 0]),
    ("celu", {"alpha": -2.0}, [-INF], [-INF]),
    ("celu_derivative", {"alpha": 2.0}, [-INF, INF, 0.0], [0, 1, 1]),
    ("gelu", {"approximate": "none"}, [-INF, INF, 0.0], [0, INF, 0]),
    ("gelu", {"approximate": "tanh"}, [-INF, INF, 0.0], [0, INF, 0]),
    ("gelu_derivative", {"approximate": "none"}, [-INF, INF, 0.0], [0, 1, 0.5]),
    ("gelu_derivative", {"approximate": "tanh"}, [-INF, INF, 0.0], [0, 1, 0.5]),
    ("silu", {}, [-INF, INF, 0.0], [0, INF, 0]),
    ("silu_derivative", {}, [-INF, INF, 0.0], [0, 1, 0.5]),
    ("mish", {}, [-INF, INF, 0.0], [0, INF, 0]),
    ("mish_derivative", {}, [-INF, INF], [0, 1]),
    ("softplus", {}, [-INF, INF, 0.0], [0, INF, math.log(2)]),
    ("softplus", {"beta": -1.0}, [-INF, INF], [-INF, 0]),
    ("softplus_derivative", {}, [-INF, INF, 0.0], [0, 1, 0.5]),
    ("softplus_derivative_y", {}, [0.0, INF, 1e300], [0, 1, 1]),
    ("softsign", {}, [-INF, INF, 1e300], [-1, 1, 1]),
    ("softsign_derivative", {}, [-INF, INF, 0.0], [0, 0, 1]),
    ("hardsigmoid", {}, [-INF, INF, -3.0, 3.0], [0, 1, 0, 1]),
    ("hardsigmoid_derivative", {}, [-INF, INF, -3.0, 3.0, 0.0], [0, 0, 0, 0, 1 / 6]),
    ("hardswish", {}, [-INF, INF, -3.0, 3.0], [0, INF, 0, 3]),
    ("hardswish_derivative", {}, [-INF, INF, -3.0, 3.0, -1.5], [0, 1, -0.5, 1.5, 0]),
    ("hardtanh", {}, [-INF, INF], [-1, 1]),
    ("hardtanh_derivative", {}, [-1.0, 1.0, 0.0, -INF], [0, 0, 1, 0]),
    ("hardshrink", {}, [-INF, INF, 0.5, -0.5], [-INF, INF, 0, 0]),
    ("hardshrink_derivative", {}, [0.5, -0.5, 0.6, -INF], [0, 0, 1, 1]),
    ("hardshrink_derivative_y", {}, [0.0, -0.0, 0.7], [0, 0, 1]),
    ("softshrink", {}, [-INF, INF, 0.5], [-INF, INF, 0]),
    ("softshrink_derivative", {}, [0.5, -0.5, -0.6], [0, 0, 1]),
    ("tanhshrink", {}, [-INF, INF, 0.0], [-INF, INF, 0]),
    ("tanhshrink_derivative", {}, [-INF, INF, 0.0], [1, 1, 0]),
    ("threshold", {"threshold": 0.1, "value": -1.0}, [0.1, -INF, INF], [-1, -1, INF]),
    ("threshold_derivative", {"threshold": 0.1, "value": -1.0}, [0.1, INF], [0, 1]),
    ("threshold_derivative_y", {"threshold": 0.1, "value": -1.0}, [0.1, 0.2], [0, 1]),
]


@pytest.mark.parametrize("wide", [np.float64, np.longdouble], ids=["f64", "ld"])
@pytest.mark.parametrize("name,params,x,expected", SPECIAL,
                         ids=[f"{s[0]}-{i}" for i, s in enumerate(SPECIAL)])
def test_special_values(name, params, x, expected, wide):
    got = getattr(ref, name)(np.array(x, dtype=wide), **params)
    np.testing.assert_allclose(got.astype(np.float64), np.array(expected, dtype=np.float64),
                               rtol=1e-15, atol=0)


def test_shapes_and_dtypes():
    x = np.linspace(-4, 4, 24).reshape(2, 3, 4)
    for name, params in all_elementwise():
        for dt in (np.float64, np.longdouble):
            y = getattr(ref, name)(x.astype(dt), **params)
            assert y.shape == x.shape and y.dtype == dt
        y0 = getattr(ref, name)(np.float64(0.25), **params)
        assert isinstance(y0, np.ndarray) and y0.shape == () and y0.dtype == np.float64
    # other input dtypes are evaluated in float64
    assert ref.sigmoid(np.zeros(3, np.float32)).dtype == np.float64


def test_bad_approximate():
    with pytest.raises(ValueError):
        ref.gelu(np.zeros(2), approximate="sigmoid")


# ---------------------------------------------------------------------------
# Axis functions
# ---------------------------------------------------------------------------

def mp_softmax_row(row):
    finite = [v for v in row if not mpmath.isinf(v)]
    if any(mpmath.isnan(v) for v in row) or any(v == mp.inf for v in row) or not finite:
        return [mp.nan] * len(row)
    m = max(finite)
    e = [mp.exp(v - m) if v != -mp.inf else mp.mpf(0) for v in row]
    s = mp.fsum(e)
    return [v / s for v in e]


def mp_log_softmax_row(row):
    if any(mpmath.isnan(v) for v in row) or any(v == mp.inf for v in row) \
            or all(v == -mp.inf for v in row):
        return [mp.nan] * len(row)
    m = max(row)
    i = row.index(m)
    rest = mp.fsum(mp.exp(v - m) for j, v in enumerate(row) if j != i and v != -mp.inf)
    lse = mpmath.log1p(rest)
    return [(v - m) - lse if v != -mp.inf else -mp.inf for v in row]


def _to_mp_any(v):
    if np.isnan(v):
        return mp.nan
    if np.isinf(v):
        return mp.inf if v > 0 else -mp.inf
    return to_mp(v)


def check_rows(got, exact_rows, narrow):
    for grow, erow in zip(got, exact_rows):
        for g, e in zip(grow, erow):
            if mpmath.isnan(e):
                assert np.isnan(g)
            elif mpmath.isinf(e):
                assert g == (np.inf if e > 0 else -np.inf)
            else:
                err = ulps(g, e, narrow)
                assert err < TOL, (g, e, err)


AXIS_ROWS = [
    [0.0, -40.0],
    [0.0, -700.0, 3.0],
    [1.0, 2.0, 3.0, 4.0],
    [-np.inf, 0.5, -np.inf, 1e-3],
    [-np.inf, -np.inf, -np.inf],
    [np.inf, 1.0, 2.0],
    [np.nan, 1.0, 2.0],
    [1e30, -1e30, 0.0],
    [5.0, 5.0, 5.0],
    [-1000.0, -1000.5, -1001.0],
    [0.3, -20.0, 12.5, 100.0, 99.0],
    [80.0, 80.0 - 2 ** -40, -20.0],
]


@pytest.mark.parametrize("narrow", NARROW, ids=["f32", "f64"])
@pytest.mark.parametrize("fn", ["softmax", "log_softmax", "softmin"])
def test_axis_forward(fn, narrow):
    _skip_if_no_extended(narrow)
    wide = ref.evaluation_dtype(narrow)
    rows = [np.array(r, dtype=np.float64).astype(narrow) for r in AXIS_ROWS]
    exact_fn = mp_log_softmax_row if fn == "log_softmax" else mp_softmax_row
    with mp.workdps(DPS), warnings.catch_warnings():
        warnings.simplefilter("error")
        for r in rows:
            sign = -1 if fn == "softmin" else 1
            exact = exact_fn([sign * _to_mp_any(v) for v in r])
            got = getattr(ref, fn)(r.astype(wide))
            assert got.dtype == wide
            check_rows([got], [exact], narrow)
            # the same row along axis 0 of a 2-D array, next to another row
            stacked = np.stack([r, r[::-1]], axis=1).astype(wide)
            got2 = getattr(ref, fn)(stacked, axis=0)
            check_rows([got2[:, 0], got2[:, 1]], [exact, exact[::-1]], narrow)


def test_log_softmax_dominant_logit():
    y = ref.log_softmax(np.array([0.0, -40.0], dtype=np.longdouble))
    assert y[0] != 0
    assert abs(float(y[0]) / -math.log1p(math.exp(-40.0)) - 1) < 1e-17


def backward_data(narrow, wide, fn):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(8, 6)) * np.array([[1], [5], [30], [0.01], [1], [3], [1], [1]])
    x[6] = [1e30, -1e30, 0.0, 1e30, 5.0, -5.0]        # huge logits: y = -2e30 etc.
    x[7] = [1e4, 1e4 - 1, -1e4, 0.0, 1e4 - 0.5, -3.0]
    g = rng.normal(size=(8, 6))
    g[1] = 1.0            # constant gradient: the softmax vjp nearly cancels
    x[4, 2] = 25.0        # a confident prediction ...
    g[4] = 0.0
    g[4, 2] = -1.0        # ... with an NLL gradient: g - exp(y) sum(g) = p - 1
    g[5] = 0.0
    g[5, 0] = 1.0         # one-hot gradient
    y = getattr(ref, fn)(x.astype(narrow).astype(wide)).astype(narrow)
    return g.astype(narrow), y


@pytest.mark.parametrize("narrow", NARROW, ids=["f32", "f64"])
@pytest.mark.parametrize("fn", ["softmax", "log_softmax", "softmin"])
def test_axis_backward(fn, narrow):
    """The vector-Jacobian products from the saved output, against mpmath.

    The sums are carried in double-word arithmetic (and exp(y) too for
    log_softmax), so the error is TOL ULPs of the result plus at most
    2**-(2p-8) of the size of the cancelling terms (p: the evaluation
    precision's bits); the second term only shows where the exact result
    is 0 or cancels beyond ~2p bits."""
    _skip_if_no_extended(narrow)
    wide = ref.evaluation_dtype(narrow)
    g, y = backward_data(narrow, wide, fn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = getattr(ref, fn + "_backward")(g.astype(wide), y.astype(wide))
        got_t = getattr(ref, fn + "_backward")(g.T.astype(wide), y.T.astype(wide), axis=0)
    assert got.dtype == wide
    np.testing.assert_array_equal(got, got_t.T)
    slack = mp.mpf(2) ** -(2 * (np.finfo(wide).nmant + 1) - 8)
    with mp.workdps(DPS):
        for grow, yrow, gotrow in zip(g, y, got):
            gm = [to_mp(v) for v in grow]
            ym = [to_mp(v) for v in yrow]
            if fn == "log_softmax":
                s = mp.fsum(gm)
                sabs = mp.fsum(abs(v) for v in gm)
                exact = [gi - mp.exp(yi) * s for gi, yi in zip(gm, ym)]
                scale = [abs(gi) + mp.exp(yi) * sabs for gi, yi in zip(gm, ym)]
            else:
                dot = mp.fsum(gi * yi for gi, yi in zip(gm, ym))
                dabs = mp.fsum(abs(gi * yi) for gi, yi in zip(gm, ym))
                sign = -1 if fn == "softmin" else 1
                exact = [sign * yi * (gi - dot) for gi, yi in zip(gm, ym)]
                scale = [abs(yi) * (abs(gi) + dabs) for gi, yi in zip(gm, ym)]
            for r, e, sc in zip(gotrow, exact, scale):
                err = abs(to_mp(r) - e)
                assert err <= TOL * ulp_mp(e, narrow) + slack * sc, (fn, r, e, err)


def test_log_softmax_backward_nll_target():
    # g = -onehot, p_target = 1 - 1e-12: the result there is p - 1 = -1e-12,
    # which a single-precision exp(y) would get wrong in the 5th digit.
    x = np.array([0.0, -np.log(1e12)], dtype=np.longdouble)
    y = ref.log_softmax(x).astype(np.float64)
    g = np.array([-1.0, 0.0])
    got = ref.log_softmax_backward(g.astype(np.longdouble), y.astype(np.longdouble))
    with mp.workdps(DPS):
        exact = -1 + mp.exp(to_mp(y[0]))
        assert ulps(got[0], exact, np.float64) < TOL


def test_axis_no_warnings_and_shapes():
    x = np.array([[[-np.inf, -np.inf], [np.nan, 1.0]], [[np.inf, 0.0], [1e308, -1e308]]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in ("softmax", "log_softmax", "softmin"):
            for ax in (0, 1, 2, -1):
                y = getattr(ref, fn)(x, axis=ax)
                assert y.shape == x.shape and y.dtype == np.float64
                b = getattr(ref, fn + "_backward")(x, np.abs(y), axis=ax)
                assert b.shape == x.shape
            assert getattr(ref, fn)(np.zeros((3, 0))).shape == (3, 0)
    assert np.isnan(ref.softmax(np.array([-np.inf, -np.inf]))).all()


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def test_evaluation_dtype():
    assert ref.evaluation_dtype(np.float32) is np.float64
    assert ref.evaluation_dtype(np.dtype("float64")) is np.longdouble
    with pytest.raises(ValueError):
        ref.evaluation_dtype(np.int32)


def test_ulp_error():
    f64 = np.float64
    one = np.longdouble(1)
    eps = np.longdouble(2.0 ** -52)
    cases = [
        (f64(1.0), one, 0.0),
        (f64(1.0) + 2 ** -52, one, 1.0),
        (f64(1.0), one + eps / 4, 0.25),
        (f64(1.0) - 2 ** -53, one - eps / 4, 0.5),   # spacing just below 1 is eps/2
        (f64(5e-324), np.longdouble(0), 1.0),          # subnormal spacing
        (f64(0), np.longdouble(5e-324) * 1.5, 1.5),
        (f64(np.nan), np.longdouble(np.nan), 0.0),
        (f64(np.nan), one, np.inf),
        (f64(1.0), np.longdouble(np.nan), np.inf),
        (f64(np.inf), np.longdouble(np.inf), 0.0),
        (f64(-np.inf), np.longdouble(np.inf), np.inf),
        (f64(np.inf), one, np.inf),
        (f64(1e308), np.longdouble(np.inf), np.inf),
        (f64(np.inf), np.longdouble(1e309), 0.0),    # rounds to inf in float64
        (np.finfo(f64).max, np.longdouble(np.finfo(f64).max) * 2, (2.0 ** 53 - 1)),  # spacing at max
    ]
    for r, e, expected in cases:
        got = ref.ulp_error(np.array([r]), np.array([e]), np.float64)
        assert got.dtype == np.float64
        assert got[0] == expected or abs(got[0] - expected) <= 1e-12 * expected, (r, e, got)
    got32 = ref.ulp_error(np.float32([1.0, 2.0]), np.float64([1.0 + 2 ** -24, 2.0]), np.float32)
    np.testing.assert_allclose(got32, [0.5, 0.0])


@pytest.mark.parametrize("result_dtype,exact_dtype", [
    (np.float16, np.float64), (np.float32, np.float64), (np.float64, np.float64),
    (np.float64, np.longdouble), (np.float32, np.float32)])
def test_ulp_error_against_exact_rationals(result_dtype, exact_dtype):
    """ulp_error (which has a bit-level fast path for float16/float32 results)
    against the definition evaluated in exact rational arithmetic."""
    from fractions import Fraction
    fi = np.finfo(result_dtype)
    rng = np.random.default_rng(7)
    n = 400
    with np.errstate(all="ignore"):
        e = (rng.choice([-1, 1], n) * np.exp2(rng.uniform(fi.minexp - fi.nmant - 2, fi.maxexp, n))
             ).astype(exact_dtype)
        r = (e * (1 + rng.normal(0, 2, n) * float(fi.eps))).astype(result_dtype)
    e[:6] = [0.0, -0.0, fi.smallest_subnormal, fi.tiny, fi.max, -fi.tiny]
    r[:6] = [fi.smallest_subnormal, 0.0, 0.0, fi.tiny, fi.max, fi.smallest_subnormal]
    keep = np.isfinite(e) & np.isfinite(r)
    e, r = e[keep], r[keep]
    got = ref.ulp_error(r, e, result_dtype)
    p = fi.nmant + 1
    for gi, ri, ei in zip(got, r, e):
        exact = Fraction(*ei.as_integer_ratio())
        k = fi.minexp + 1 if exact == 0 else math.frexp(float(abs(exact)))[1]
        k = min(max(k, fi.minexp + 1), fi.maxexp)
        ulp = Fraction(2) ** (k - p)
        want = abs(Fraction(ri.item()) - exact) / ulp
        assert abs(gi - float(want)) <= 1e-9 * float(want) + 1e-300, (ri, ei, gi, float(want))
