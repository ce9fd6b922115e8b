"""The vectorisable building blocks of csrc/vmath.h, through pyact._kernels._vmath_probe.

float64 versions: max ULP error against long double NumPy (expl etc., ~0.5 ULP of
long double) on large samples over their whole range, subnormal results included.
float32-grade versions (evaluated in double for the float32 kernels): relative error
on dense sweeps of float32 inputs, against float64 NumPy.
"""
import numpy as np
import pytest

from pyact import _kernels
from pyact import reference as ref

LD = np.longdouble


def probe(name, x):
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    _kernels._vmath_probe(name, x, out)
    return out


def _ld_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _ld_tanhshrink(x):
    return x - np.tanh(x)


def _sample64(lo, hi, n=400_000, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.uniform(lo, hi, n // 2),
                        np.sign(rng.uniform(-1, 1, n // 2)) *
                        np.exp2(rng.uniform(-60, np.log2(max(abs(lo), abs(hi))), n // 2))])
    return x[(x >= lo) & (x <= hi)]


# name, long double reference, input range, stated bound (ULP, float64)
FLOAT64_CASES = [
    ("exp", np.exp, (-745.2, 709.8), 0.8),
    ("expm1", np.expm1, (-745.2, 709.8), 0.85),
    ("expm1_nonpos", np.expm1, (-745.2, 0.0), 0.6),
    ("log1p_01", np.log1p, (0.0, 1.0), 0.9),
    ("sigmoid", _ld_sigmoid, (-745.2, 745.2), 0.8),
    ("sigmoid_slope", lambda x: _ld_sigmoid(x) * _ld_sigmoid(-x), (-745.2, 745.2), 0.8),
    ("tanh", np.tanh, (-30.0, 30.0), 0.6),
    ("softplus", lambda x: np.where(x > 0, x, 0) + np.log1p(np.exp(-np.abs(x))), (-745.2, 800.0), 0.8),
    ("tanhshrink", _ld_tanhshrink, (-3.0, 3.0), 1.6),
]


@pytest.mark.parametrize("name,reference,bounds,bound", FLOAT64_CASES, ids=[c[0] for c in FLOAT64_CASES])
def test_float64_blocks(name, reference, bounds, bound):
    x = _sample64(*bounds)
    if name == "tanhshrink":  # the long double reference cancels near 0
        x = x[np.abs(x) > 0.3]
    with np.errstate(all="ignore"):
        exact = reference(x.astype(LD))
    err = ref.ulp_error(probe(name, x), exact, np.float64)
    assert err.max() <= bound, (name, err.max(), x[np.argmax(err)])


def test_exp_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 709.78, 709.79, 710.0, -745.1, -745.2, -746.0, 0.0, -0.0, 1e-310])
    got = probe("exp", x)
    assert np.isnan(got[0]) and got[1] == np.inf and got[2] == 0.0
    assert np.isfinite(got[3]) and got[4] == np.inf and got[5] == np.inf
    assert got[6] == 5e-324 and got[7] == 0.0 and got[8] == 0.0
    assert got[9] == 1.0 and got[10] == 1.0 and got[11] == 1.0
    # gradual underflow: every subnormal result within 0.8 ULP (one rounding into the subnormal range)
    xs = np.linspace(-745.13, -708.4, 200_001)
    assert ref.ulp_error(probe("exp", xs), np.exp(xs.astype(LD)), np.float64).max() <= 0.8
    assert np.isnan(probe("tanh", np.array([np.nan])))[0]
    got = probe("tanh", np.array([np.inf, -np.inf, -0.0, 0.0]))
    assert got.tolist() == [1.0, -1.0, 0.0, 0.0] and np.signbit(got).tolist() == [False, True, True, False]
    got = probe("expm1_nonpos", np.array([np.nan, -np.inf, -40.0, -50.0, -0.0, 0.0, -5e-324]))
    assert np.isnan(got[0]) and got[1:4].tolist() == [-1.0, -1.0, -1.0]
    assert got[4:6].tolist() == [0.0, 0.0] and got[6] == -5e-324


def _float32_sweep(lo, hi, stride):
    """Every stride-th float32 (by bit pattern) in [lo, hi], both signs as needed."""
    def span(a, b):  # non-negative a <= b
        ia, ib = np.array([a, b], dtype=np.float32).view(np.int32)
        return np.arange(ia, ib + 1, stride, dtype=np.int32).view(np.float32)
    parts = []
    if hi > 0:
        parts.append(span(0.0, hi))
    if lo < 0:
        parts.append(-span(0.0, -lo))
    return np.concatenate(parts).astype(np.float64)


# name, float64 reference, float32 range, stride, bound on the relative error
FLOAT32_CASES = [
    ("exp_d32", np.exp, (-104.0, 89.0), 61, 2.0 ** -32),
    ("expm1_d32", np.expm1, (-104.0, 89.0), 61, 2.0 ** -32),
    ("log1p_01_d32", np.log1p, (0.0, 1.0), 7, 2.0 ** -31),
    ("tanh_d32", np.tanh, (-10.0, 10.0), 61, 2.0 ** -31),
]


@pytest.mark.parametrize("name,reference,bounds,stride,bound", FLOAT32_CASES,
                         ids=[c[0] for c in FLOAT32_CASES])
def test_float32_grade_blocks(name, reference, bounds, stride, bound):
    x = _float32_sweep(*bounds, stride)
    got = probe(name, x)
    exact = reference(x)
    nz = exact != 0
    rel = np.abs(got[nz] - exact[nz]) / np.abs(exact[nz])
    assert rel.max() <= bound, (name, rel.max(), x[nz][np.argmax(rel)])
    assert np.all(got[~nz] == 0)


# Zeros of f' (mpmath, tools/fit_vmath.py): the direct formulas for f' cancel
# around them, and the random samples of `python -m pyact check` rarely land
# close enough to see it.  Dense sweeps: every float around the zero, and a fine
# grid across the region where vmath.h switches to the polynomial (|x - x0| < 1/4)
# and out of it on both sides.
DERIVATIVE_ZEROS = [
    ("gelu", {"approximate": "none"}, -0.7517915246935644575),
    ("gelu", {"approximate": "tanh"}, -0.7524614220710162585),
    ("silu", {}, -1.278464542761073795),
    ("mish", {}, -1.192431214515495212),
]


def _around(x0, dtype, n_ulps=20_000, half_width=0.6, n_grid=200_001):
    x0 = dtype(x0)
    steps = np.arange(-n_ulps, n_ulps + 1)
    bits = np.array([x0], dtype=dtype).view(np.int32 if dtype == np.float32 else np.int64)[0]
    ulps = (bits + steps).astype(bits.dtype).view(dtype)   # x0 < 0: both directions stay negative
    grid = np.linspace(float(x0) - half_width, float(x0) + half_width, n_grid).astype(dtype)
    edges = np.concatenate([np.linspace(float(x0) + s * 0.25 - 1e-6, float(x0) + s * 0.25 + 1e-6, 2001)
                            for s in (-1, 1)]).astype(dtype)
    return np.concatenate([ulps, grid, edges])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name,params,x0", DERIVATIVE_ZEROS,
                         ids=[f"{n}-{p.get('approximate', '')}" for n, p, _ in DERIVATIVE_ZEROS])
def test_derivative_zero_sweeps(name, params, x0, dtype):
    from pyact._check import elementwise_errors
    from pyact._registry import get

    act = get(name)
    errors = elementwise_errors(act, dtype, _around(x0, dtype), params)
    for form, err in errors.items():
        assert err <= act.ulp_bound(form), (name, params, np.dtype(dtype).name, form, err)


# gelu (exact form) over its whole range, densely: the central polynomial, the four
# tail pieces of G(t) and their joins at |x| = 1, 2, 4, 8, the far tail where
# x Phi(x) becomes subnormal (float64 below ~-37.5, float32 below ~-13) and where it
# underflows to 0, and the saturation at large x.  The other float64 kernels moved
# from long double to double pairs likewise, with their tiny-result branches
# (gelu tanh: v < -700 near x = -21; silu', mish: x < -700).
def _joins(points, half=1e-4, n=2001):
    return np.concatenate([np.linspace(p - half, p + half, n) for p in points])


DENSE_CASES = [
    ("gelu", {"approximate": "none"},
     [np.linspace(-40.0, 10.0, 500_001), np.linspace(-38.6, -36.0, 100_001),
      np.linspace(-14.5, -12.0, 100_001), _joins([-8, -4, -2, -1, 1, 2, 4, 8])]),
    ("gelu", {"approximate": "tanh"},
     [np.linspace(-100.0, 10.0, 500_001), np.linspace(-22.0, -20.0, 200_001),
      np.linspace(-6.0, -4.0, 100_001)]),
    ("silu", {}, [np.linspace(-760.0, 40.0, 500_001), np.linspace(-720.0, -690.0, 100_001),
                  np.linspace(-110.0, -80.0, 100_001)]),
    ("mish", {}, [np.linspace(-760.0, 40.0, 500_001), np.linspace(-720.0, -690.0, 100_001),
                  np.linspace(-110.0, -80.0, 100_001), np.linspace(-5.0, 5.0, 200_001)]),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name,params,parts", DENSE_CASES,
                         ids=[f"{n}-{p.get('approximate', '')}" for n, p, _ in DENSE_CASES])
def test_dense_whole_range(name, params, parts, dtype):
    from pyact._check import elementwise_errors
    from pyact._registry import get

    act = get(name)
    with np.errstate(over="ignore"):
        x = np.concatenate(parts).astype(dtype)
    errors = elementwise_errors(act, dtype, x[np.isfinite(x)], params)
    for form, err in errors.items():
        assert err <= act.ulp_bound(form), (name, params, np.dtype(dtype).name, form, err)
