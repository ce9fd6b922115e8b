"""Pure-NumPy reference implementations of every pyact activation.

This module is the yardstick the compiled kernels are tested against, so it is
written for accuracy and independence, not speed.

Precision contract
------------------
Every function takes an array of dtype ``float64`` or ``np.longdouble`` (the
*evaluation* precision; other inputs are converted to ``float64``) and returns
an array of the same dtype and shape.  A float32 result is checked against a
float64 evaluation and a float64 result against a long double evaluation
(x86-64: 64-bit mantissa, see :func:`evaluation_dtype`).  In that setting each
function is accurate to a small fraction (< 0.05) of an ULP of the *narrower*
result type over its whole range: tails, subnormal results (never flushed to
zero), huge inputs, +-inf and NaN.

How that is achieved:

* Formulas are the textbook ones, evaluated in the wide type whose larger
  exponent range keeps intermediates such as ``exp(745)`` or ``cosh(x)**2``
  finite where the narrow type would overflow or underflow.
* Where a textbook formula cancels it is rewritten exactly (``1/cosh**2``
  instead of ``1 - tanh**2``, ``(x + 3)/6`` instead of ``x/6 + 1/2``).
* Where a rounding error in the *argument* of ``exp`` would be amplified by
  the size of the argument (``exp(beta*x)``, ``exp(-x**2/2)``, the GELU tanh
  polynomial, ``x - max`` in softmax) the argument is carried as an unevaluated
  sum ``hi + lo`` (error-free transformations: Dekker's product, Knuth's sum)
  and the correction applied to first order.
* Near the interior zeros of the SiLU, Mish and GELU derivatives, and for
  ``x - tanh(x)`` near 0, every direct formula cancels without bound; there
  the functions are evaluated as Taylor polynomials whose centre and
  coefficients are computed once, lazily, to 70 digits with :mod:`decimal`
  (truncated power-series arithmetic), so they are derived from the same
  formulas and not copied from anywhere.
* The normal CDF is computed from ``x`` directly (series for ``|x| < 1.25``,
  Laplace's continued fraction beyond), never from ``erfc(-x/sqrt(2))``,
  whose rounded argument would cost ``x**2`` relative error in the tail.

Axis functions (softmax, log_softmax, softmin) meet the same bound.  Their
vector-Jacobian products carry the sums, and exp(y) for log_softmax, in
double-word arithmetic: they are within the bound of the result except where
the result cancels beyond ~2**-(2p) of its terms (p: bits of the evaluation
type), e.g. when it is exactly 0; the absolute error is then below about
2**-(2p-8) times the size of the cancelling terms.

Special values: NaN in gives NaN out for every elementwise function and
derivative; +-inf give the mathematical limits (also leaky_relu(-inf) = 0 for
a zero slope).  No floating-point warnings escape.  Derivative conventions at
kinks follow PyTorch autograd.  The SELU constants are the 32-digit decimals
PyTorch uses, taken as exact.

Runtime dependencies: NumPy and the standard library only.
"""
from __future__ import annotations

import functools
import math
from decimal import Decimal, localcontext
from typing import Callable, List, Sequence, Tuple

import numpy as np

__all__ = [
    "SELU_ALPHA", "SELU_SCALE", "evaluation_dtype", "ulp_error",
    "sigmoid", "sigmoid_derivative", "sigmoid_derivative_y",
    "log_sigmoid", "log_sigmoid_derivative", "log_sigmoid_derivative_y",
    "tanh", "tanh_derivative", "tanh_derivative_y",
    "relu", "relu_derivative", "relu_derivative_y",
    "relu6", "relu6_derivative", "relu6_derivative_y",
    "leaky_relu", "leaky_relu_derivative", "leaky_relu_derivative_y",
    "elu", "elu_derivative", "elu_derivative_y",
    "selu", "selu_derivative", "selu_derivative_y",
    "celu", "celu_derivative", "celu_derivative_y",
    "gelu", "gelu_derivative",
    "silu", "silu_derivative",
    "mish", "mish_derivative",
    "softplus", "softplus_derivative", "softplus_derivative_y",
    "softsign", "softsign_derivative", "softsign_derivative_y",
    "hardsigmoid", "hardsigmoid_derivative", "hardsigmoid_derivative_y",
    "hardswish", "hardswish_derivative",
    "hardtanh", "hardtanh_derivative", "hardtanh_derivative_y",
    "hardshrink", "hardshrink_derivative", "hardshrink_derivative_y",
    "softshrink", "softshrink_derivative", "softshrink_derivative_y",
    "tanhshrink", "tanhshrink_derivative",
    "threshold", "threshold_derivative", "threshold_derivative_y",
    "softmax", "softmax_backward", "log_softmax", "log_softmax_backward",
    "softmin", "softmin_backward",
]

# SELU constants (Klambauer et al. 2017) as decimal strings; the reference
# treats these decimals as exact (they are parsed in long double precision).
_SELU_ALPHA_STR = "1.6732632423543772848170429916717"
_SELU_SCALE_STR = "1.0507009873554804934193349852946"
SELU_ALPHA = float(_SELU_ALPHA_STR)
SELU_SCALE = float(_SELU_SCALE_STR)
_GELU_CUBIC_STR = "0.044715"

_EVAL_DTYPES = (np.dtype(np.float64), np.dtype(np.longdouble))
_DIGITS = 70  # working precision (decimal digits) of the import-time constants


# ---------------------------------------------------------------------------
# dtype helpers and the ULP yardstick
# ---------------------------------------------------------------------------

def evaluation_dtype(result_dtype) -> type:
    """The precision in which to evaluate the reference for a given result dtype.

    float16/float32 -> float64, float64 -> np.longdouble.  On platforms where
    long double is no wider than double the float64 contract cannot be met.
    """
    dt = np.dtype(result_dtype)
    if dt in (np.dtype(np.float16), np.dtype(np.float32)):
        return np.float64
    if dt == np.dtype(np.float64):
        return np.longdouble
    raise ValueError(f"no evaluation precision for result dtype {dt}")


def ulp_error(result, exact, dtype) -> np.ndarray:
    """Elementwise |result - exact| in ULPs of ``dtype`` at |exact|.

    The ULP is the spacing of ``dtype`` at the exact value (the subnormal
    spacing below the smallest normal; the spacing at the largest finite value
    when the exact value overflows ``dtype``).  NaN vs NaN and equal infinities
    are 0; NaN vs a number, or an infinity vs a value that does not round to
    that infinity in ``dtype``, is +inf.  Returns float64.
    """
    dt = np.dtype(dtype)
    fi = np.finfo(dt)
    r = np.asarray(result)
    e = np.asarray(exact)
    wide = np.longdouble if np.longdouble in (r.dtype.type, e.dtype.type) else np.float64
    r, e = np.broadcast_arrays(r.astype(wide, copy=False), e.astype(wide, copy=False))
    p = fi.nmant + 1
    with np.errstate(all="ignore"):
        if wide is np.float64 and dt.itemsize < 8:
            # The hot path of the exhaustive float32 sweeps: the exponent k of
            # frexp (|e| in [2**(k-1), 2**k)) read from the bits, clipped as
            # below, and 1/ulp = 2**(p-k) built from its bits (a double for
            # float32 and float16 results; not for float64's 2**1074).
            biased = np.array(e.view(np.uint64) >> np.uint64(52), dtype=np.int64)
            biased &= 0x7FF                      # k + 1022 for normal doubles
            np.clip(biased, fi.minexp + 1 + 1022, fi.maxexp + 1022, out=biased)
            inv_ulp = np.array((p + 2 * 1022 + 1 - biased) << 52).view(np.float64)
            err = np.abs(r - e) * inv_ulp
        else:
            _, k = np.frexp(np.abs(e))              # |e| in [2**(k-1), 2**k)
            k = np.where(e == 0, fi.minexp + 1, k)
            k = np.clip(k, fi.minexp + 1, fi.maxexp)  # subnormal spacing / spacing at max
            ulp = np.ldexp(np.ones_like(e), k - p)
            err = np.abs(r - e) / ulp
        special = ~(np.isfinite(r) & np.isfinite(e))
        if special.any():
            rs, es = r[special], e[special]
            rnan, enan = np.isnan(rs), np.isnan(es)
            # an infinite result is right only if the exact value rounds to it in dtype
            inf_ok = np.isinf(rs) & (es.astype(dt).astype(wide) == rs)
            err = np.array(err, dtype=np.float64)
            err[special] = np.where(rnan | enan, np.where(rnan & enan, 0.0, np.inf),
                                    np.where(inf_ok, 0.0, np.inf))
        return np.asarray(err, dtype=np.float64)   # a huge long double error is inf


def _as_eval(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype not in _EVAL_DTYPES:
        a = a.astype(np.float64)
    return a


def _elementwise(func: Callable) -> Callable:
    """Run ``func`` on a flat view in the input's evaluation dtype, with all
    floating-point warnings silenced, NaN passed through, same shape out."""

    @functools.wraps(func)
    def wrapper(x, *args, **kwargs):
        x = _as_eval(x)
        flat = x.reshape(-1)
        with np.errstate(all="ignore"):
            out = np.asarray(func(flat, *args, **kwargs), dtype=x.dtype)
            out = np.where(np.isnan(flat), flat, np.broadcast_to(out, flat.shape))
        return out.reshape(x.shape)

    return wrapper


# ---------------------------------------------------------------------------
# Error-free transformations (valid for any binary type with round-to-nearest)
# ---------------------------------------------------------------------------

def _splitter(dtype) -> float:
    # Dekker's split constant 2**ceil(p/2) + 1 for a p-bit significand.
    p = np.finfo(dtype).nmant + 1
    return float(2 ** ((p + 1) // 2) + 1)


def _split(a):
    c = a * a.dtype.type(_splitter(a.dtype))
    hi = c - (c - a)
    return hi, a - hi


def _finite_or_zero(e):
    # A correction term is meaningless (NaN/inf) when its operands are
    # infinite: then the leading term alone is the answer.
    return np.where(np.isfinite(e), e, 0)


def _two_prod(a, b):
    """a*b = p + e exactly (barring overflow/underflow)."""
    a, b = np.asarray(a), np.asarray(b)
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, _finite_or_zero(e)


def _two_sum(a, b):
    """a+b = s + e exactly."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, _finite_or_zero(e)


def _fast_two_sum(a, b):
    """a+b = s + e exactly, for |a| >= |b|."""
    s = a + b
    return s, _finite_or_zero(b - (s - a))


def _dw_mul(ah, al, bh, bl):
    p, e = _two_prod(ah, bh)
    return _fast_two_sum(p, e + (ah * bl + al * bh))


def _dw_add(ah, al, bh, bl):
    s, e = _two_sum(ah, bh)
    return _fast_two_sum(s, e + (al + bl))


def _div_dw(a, b):
    """a/b as q + ql, with ql the first-order remainder correction."""
    q = a / b
    p, e = _two_prod(q, b)
    return q, _finite_or_zero(((a - p) - e) / b)


# ---------------------------------------------------------------------------
# Import-time high-precision constants (decimal)
# ---------------------------------------------------------------------------

def _dec_pi() -> Decimal:
    # Machin: pi = 16 atan(1/5) - 4 atan(1/239)
    def atan_inv(n: int) -> Decimal:
        eps = Decimal(10) ** -(_DIGITS + 5)
        power, total, k, sign = Decimal(1) / n, Decimal(0), 0, 1
        while power > eps:
            total += sign * power / (2 * k + 1)
            power /= n * n
            k += 1
            sign = -sign
        return total

    return 16 * atan_inv(5) - 4 * atan_inv(239)


def _dec_of(v) -> Decimal:
    n, d = v.as_integer_ratio()
    with localcontext() as ctx:
        ctx.prec = 200
        return Decimal(n) / Decimal(d)


def _to_dw(value: Decimal, dtype) -> Tuple:
    """A decimal value as hi + lo in ``dtype`` (about twice its precision).

    Built from Python floats (correctly rounded from Decimal) rather than by
    parsing strings, so it does not depend on NumPy's long double parser."""
    t = np.dtype(dtype).type
    with localcontext() as ctx:
        ctx.prec = _DIGITS + 30
        h1 = float(value)
        h2 = float(value - Decimal(h1))
        hi = t(h1) + t(h2)   # h1 + h2 rounded once to dtype
        lo = t(float(value - _dec_of(hi)))
    return hi, lo


def _to_w(value: Decimal, dtype):
    return _to_dw(value, dtype)[0]


class _Consts:
    """Constants of one evaluation dtype, as (hi, lo) pairs where it matters."""

    def __init__(self, dtype):
        t = np.dtype(dtype).type
        with localcontext() as ctx:
            ctx.prec = _DIGITS
            pi = _dec_pi()
            alpha, scale = Decimal(_SELU_ALPHA_STR), Decimal(_SELU_SCALE_STR)
            k1 = 2 * (2 / pi).sqrt()             # d(2u)/dx at 0 in the tanh-GELU
            k3 = k1 * Decimal(_GELU_CUBIC_STR)   # cubic coefficient of 2u
            inv_sqrt_2pi = 1 / (2 * pi).sqrt()
            sa = alpha * scale
            ln2 = Decimal(2).ln()
            inv_fact = [Decimal(1)]
            for n in range(1, _EXP_TERMS + 1):
                inv_fact.append(inv_fact[-1] / n)
        self.selu_alpha = _to_w(alpha, dtype)
        self.selu_scale = _to_w(scale, dtype)
        self.selu_sa = _to_dw(sa, dtype)
        self.gelu_k1 = _to_dw(k1, dtype)
        self.gelu_k3 = _to_dw(k3, dtype)
        self.inv_sqrt_2pi = _to_w(inv_sqrt_2pi, dtype)
        self.ln2 = _to_dw(ln2, dtype)
        self.inv_fact = [_to_dw(c, dtype) for c in inv_fact]
        self.sixth = t(1) / t(6)


@functools.lru_cache(maxsize=None)
def _consts(dtype) -> _Consts:
    return _Consts(dtype)


# ---------------------------------------------------------------------------
# Truncated power series over Decimal, for Taylor expansions at import time
# ---------------------------------------------------------------------------

class _Series:
    """Truncated Taylor series sum c[k] d**k with Decimal coefficients."""

    def __init__(self, c: Sequence[Decimal]):
        self.c = list(c)

    @classmethod
    def var(cls, x0: Decimal, n: int) -> "_Series":
        return cls([Decimal(x0), Decimal(1)] + [Decimal(0)] * (n - 1))

    def _coerce(self, o) -> "_Series":
        if isinstance(o, _Series):
            return o
        return _Series([Decimal(o)] + [Decimal(0)] * (len(self.c) - 1))

    def __add__(self, o):
        o = self._coerce(o)
        return _Series([a + b for a, b in zip(self.c, o.c)])

    __radd__ = __add__

    def __neg__(self):
        return _Series([-a for a in self.c])

    def __sub__(self, o):
        return self + (-self._coerce(o))

    def __rsub__(self, o):
        return self._coerce(o) - self

    def __mul__(self, o):
        if not isinstance(o, _Series):
            return _Series([a * Decimal(o) for a in self.c])
        a, b = self.c, o.c
        return _Series([sum((a[i] * b[k - i] for i in range(k + 1)), Decimal(0))
                        for k in range(len(a))])

    __rmul__ = __mul__

    def recip(self) -> "_Series":
        a = self.c
        b = [1 / a[0]]
        for k in range(1, len(a)):
            b.append(-sum((a[j] * b[k - j] for j in range(1, k + 1)), Decimal(0)) / a[0])
        return _Series(b)

    def __truediv__(self, o):
        return self * (o.recip() if isinstance(o, _Series) else 1 / Decimal(o))

    def __rtruediv__(self, o):
        return self.recip() * o

    def exp(self) -> "_Series":
        # b' = a' b
        a = self.c
        b = [a[0].exp()]
        for k in range(1, len(a)):
            b.append(sum((j * a[j] * b[k - j] for j in range(1, k + 1)), Decimal(0)) / k)
        return _Series(b)

    def log(self) -> "_Series":
        # a b' = a'
        a = self.c
        b = [a[0].ln()]
        for k in range(1, len(a)):
            acc = sum((j * b[j] * a[k - j] for j in range(1, k)), Decimal(0))
            b.append((a[k] - acc / k) / a[0])
        return _Series(b)

    def integral(self, c0: Decimal) -> "_Series":
        return _Series([Decimal(c0)] + [a / (k + 1) for k, a in enumerate(self.c[:-1])])


def _s_sigmoid(z: _Series) -> _Series:
    return 1 / (1 + (-z).exp())


def _s_tanh(z: _Series) -> _Series:
    return 1 - 2 / (1 + (2 * z).exp())


def _dec_Phi(x: Decimal) -> Decimal:
    # Phi(x) = 1/2 + phi(x) sum x^(2n+1)/(2n+1)!!  (only used for |x| < 2)
    pi = _dec_pi()
    term, total, n = x, x, 0
    eps = Decimal(10) ** -(_DIGITS + 5)
    while abs(term) > eps:
        n += 1
        term = term * x * x / (2 * n + 1)
        total += term
    return Decimal(1) / 2 + (-x * x / 2).exp() / (2 * pi).sqrt() * total


def _gelu_none_d_series(x0: Decimal, n: int) -> _Series:
    pi = _dec_pi()
    x = _Series.var(x0, n)
    phi = (-(x * x) / 2).exp() / (2 * pi).sqrt()
    return phi.integral(_dec_Phi(x0)) + x * phi


def _gelu_tanh_d_series(x0: Decimal, n: int) -> _Series:
    pi = _dec_pi()
    k1 = 2 * (2 / pi).sqrt()
    a = Decimal(_GELU_CUBIC_STR)
    x = _Series.var(x0, n)
    v = k1 * (x + a * x * x * x)          # v = 2u
    dv = k1 * (1 + 3 * a * x * x)
    s, sm = _s_sigmoid(v), _s_sigmoid(-v)
    return s + x * dv * s * sm


def _silu_d_series(x0: Decimal, n: int) -> _Series:
    x = _Series.var(x0, n)
    s = _s_sigmoid(x)
    return s + x * s * (1 - s)


def _mish_d_series(x0: Decimal, n: int) -> _Series:
    x = _Series.var(x0, n)
    t = _s_tanh((1 + x.exp()).log())
    return t + x * _s_sigmoid(x) * (1 - t * t)


def _tanhshrink_series(x0: Decimal, n: int) -> _Series:
    x = _Series.var(x0, n)
    return x - _s_tanh(x)


# name: (series of the function, initial guess of the zero to expand about or
# None to expand about 0, half-width of the region where the Taylor polynomial
# replaces the direct formula, order).  The widths keep the direct formula's
# cancellation outside the region below a factor ~6; the orders make the
# truncation error < 2**-78 of the leading term at the edge of the region.
_TAYLOR = {
    "gelu_none_d": (_gelu_none_d_series, "-0.7518", 0.25, 26),
    "gelu_tanh_d": (_gelu_tanh_d_series, "-0.7525", 0.25, 28),
    "silu_d": (_silu_d_series, "-1.2785", 0.25, 26),
    "mish_d": (_mish_d_series, "-1.1924", 0.3, 30),
    "tanhshrink": (_tanhshrink_series, None, 0.75, 80),
}


@functools.lru_cache(maxsize=None)
def _taylor_dec(name: str) -> Tuple[Decimal, List[Decimal]]:
    series, guess, _, order = _TAYLOR[name]
    with localcontext() as ctx:
        ctx.prec = _DIGITS
        if guess is None:
            x0 = Decimal(0)
        else:
            x0 = Decimal(guess)
            for _ in range(100):  # Newton on the derivative's zero
                c = series(x0, 2).c
                step = c[0] / c[1]
                x0 -= step
                if abs(step) < Decimal(10) ** -(_DIGITS - 5):
                    break
        return x0, series(x0, order).c


@functools.lru_cache(maxsize=None)
def _taylor(name: str, dtype):
    x0, coeffs = _taylor_dec(name)
    x0h, x0l = _to_dw(x0, dtype)
    return x0h, x0l, [_to_w(c, dtype) for c in coeffs]


def _taylor_region(name: str, x, f):
    """Overwrite f (in place) with the Taylor polynomial near the centre."""
    x0h, x0l, coeffs = _taylor(name, x.dtype)
    width = _TAYLOR[name][2]
    sel = np.abs(x - x0h) < width
    if np.any(sel):
        d = (x[sel] - x0h) - x0l   # x - x0h is exact (Sterbenz)
        acc = np.zeros_like(d)
        for c in coeffs[:0:-1]:    # Horner over c[K..1]; c[0] is 0 at a zero
            acc = (acc + c) * d
        f[sel] = acc + coeffs[0]
    return f


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------

def _sig(z):
    return 1 / (1 + np.exp(-z))


def _sig_dw(zh, zl):
    """sigmoid(zh + zl) and sigmoid(-(zh + zl)) to first order in zl."""
    s, sm = _sig(zh), _sig(-zh)
    ds = _finite_or_zero(s * sm * zl)
    return s + ds, sm - ds


def _softplus_w(z):
    # log1p(exp(z)) without overflow
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _exp_minus_half_sq(x):
    """exp(-x**2/2) for finite x, with x**2 formed exactly from halves of x."""
    xh, xl = _split(x)
    a = xh * xh * 0.5              # exact
    b = xh * xl + xl * xl * 0.5    # tiny next to a; its rounding is harmless
    e = np.exp(-a) * np.exp(-b)
    return np.where(a > 1e5, 0, e)  # exp(-a) is 0 there; avoid 0*inf from b


# Laplace's continued fraction for the Mills ratio M(t) = Q(t)/phi(t),
# M(t) = 1/(t + 1/(t + 2/(t + 3/(t + ...)))), evaluated backwards from a
# fixed depth.  Depth per band (measured against mpmath): the truncation error
# is below 2**-72 at the lower end of each band and falls with t.
_MILLS_BANDS = ((8.0, 25), (5.0, 45), (3.0, 95), (2.0, 190), (1.5, 320), (1.25, 460))
_SERIES_LIMIT = 1.25
_SERIES_TERMS = 30  # x^(2n+1)/(2n+1)!! < 2**-80 of the sum for |x| < 1.25


def _mills(t):
    out = np.empty_like(t)
    todo = np.ones(t.shape, dtype=bool)
    for lower, depth in _MILLS_BANDS:
        sel = todo & (t >= lower)
        if np.any(sel):
            ts = t[sel]
            r = ts.copy()
            for k in range(depth, 0, -1):
                r = ts + k / r
            out[sel] = 1 / r
        todo &= ~sel
    return out


def _gauss(x):
    """Phi(x) and G(x) = Phi(x) + x phi(x) = d/dx (x Phi(x)), for 1-D x."""
    t = x.dtype.type
    Phi = np.full_like(x, np.nan)
    G = np.full_like(x, np.nan)
    fin = np.isfinite(x)
    phi = np.zeros_like(x)
    phi[fin] = _exp_minus_half_sq(x[fin]) * _consts(x.dtype).inv_sqrt_2pi

    mid = fin & (np.abs(x) < _SERIES_LIMIT)
    if np.any(mid):
        xm = x[mid]
        x2 = xm * xm
        term, s = xm.copy(), xm.copy()
        for n in range(1, _SERIES_TERMS):
            term = term * x2 / (2 * n + 1)
            s = s + term
        Phi[mid] = t(0.5) + phi[mid] * s
        G[mid] = t(0.5) + phi[mid] * (s + xm)

    low = fin & (x <= -_SERIES_LIMIT)
    if np.any(low):
        tt = -x[low]
        m = _mills(tt)
        Phi[low] = phi[low] * m
        G[low] = phi[low] * (m - tt)

    high = fin & (x >= _SERIES_LIMIT)
    if np.any(high):
        tt = x[high]
        m = _mills(tt)
        Phi[high] = 1 - phi[high] * m
        G[high] = 1 - phi[high] * (m - tt)

    for v, lim in ((-np.inf, 0), (np.inf, 1)):
        Phi[x == v] = lim
        G[x == v] = lim
    return Phi, G


def _gelu_tanh_arg(x):
    """v = 2u = k1 x + k3 x**3 as vh + vl (u the tanh argument)."""
    c = _consts(x.dtype)
    (k1h, k1l), (k3h, k3l) = c.gelu_k1, c.gelu_k3
    p2, e2 = _two_prod(x, x)
    p3, e3 = _two_prod(x, p2)
    l3 = e3 + x * e2                       # x**3 = p3 + l3
    ah, al = _two_prod(x, k1h)
    al = al + x * k1l
    bh, bl = _two_prod(p3, k3h)
    bl = bl + (p3 * k3l + l3 * k3h)
    vh, vl = _two_sum(ah, bh)
    return vh, _finite_or_zero(vl + (al + bl))


def _scalar(v, dtype):
    return np.dtype(dtype).type(v)


_EXP_TERMS = 27  # (ln2/2)**n / n! < 2**-130 beyond this


def _exp_dw(y):
    """exp(y) as hi + lo with about twice the working precision, y finite.

    Used where exp(y) is subtracted from something of its own size (the
    log_softmax VJP), so that even the libm's last-bit error would show.
    y = k ln2 + r with |r| <= ln2/2, exp(r) by its Taylor series in
    double-word arithmetic, then scaled by 2**k."""
    c = _consts(y.dtype)
    ln2h, ln2l = c.ln2
    k = np.rint(y / ln2h)
    ph, pl = _two_prod(k, ln2h)
    rh, rl = _two_sum(y, -ph)
    rh, rl = _fast_two_sum(rh, rl - (pl + k * ln2l))
    ah, al = c.inv_fact[_EXP_TERMS]
    ah, al = np.full_like(rh, ah), np.full_like(rh, al)
    for n in range(_EXP_TERMS - 1, -1, -1):
        ah, al = _dw_mul(ah, al, rh, rl)
        ah, al = _dw_add(ah, al, *c.inv_fact[n])
    ki = np.clip(k, -40000, 40000).astype(np.int64)
    return np.ldexp(ah, ki), np.ldexp(al, ki)


# ---------------------------------------------------------------------------
# Elementwise functions
# ---------------------------------------------------------------------------

@_elementwise
def sigmoid(x):
    return _sig(x)


@_elementwise
def sigmoid_derivative(x):
    # sigmoid(x) sigmoid(-x) = e/(1+e)**2 with e = exp(-|x|): no 1 - s cancellation
    e = np.exp(-np.abs(x))
    return e / ((1 + e) * (1 + e))


@_elementwise
def sigmoid_derivative_y(y):
    return y * (1 - y)


@_elementwise
def log_sigmoid(x):
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


@_elementwise
def log_sigmoid_derivative(x):
    return _sig(-x)


@_elementwise
def log_sigmoid_derivative_y(y):
    return -np.expm1(y)


@_elementwise
def tanh(x):
    return np.tanh(x)


@_elementwise
def tanh_derivative(x):
    # 1/cosh**2, not 1 - tanh**2 (cancels in the tails); cosh**2 -> inf gives 0
    c = np.cosh(x)
    return 1 / (c * c)


@_elementwise
def tanh_derivative_y(y):
    return (1 - y) * (1 + y)


@_elementwise
def relu(x):
    return np.where(x > 0, x, 0)


@_elementwise
def relu_derivative(x):
    return np.where(x > 0, 1, 0)


@_elementwise
def relu_derivative_y(y):
    return np.where(y > 0, 1, 0)


@_elementwise
def relu6(x):
    return np.where(x > 0, np.minimum(x, 6), 0)


@_elementwise
def relu6_derivative(x):
    return np.where((x > 0) & (x < 6), 1, 0)


@_elementwise
def relu6_derivative_y(y):
    return np.where((y > 0) & (y < 6), 1, 0)


@_elementwise
def leaky_relu(x, negative_slope=0.01):
    s = _scalar(negative_slope, x.dtype)
    # slope 0 at x = -inf: the limit is 0, not 0*inf = NaN
    neg = s * x if s != 0 else np.zeros_like(x)
    return np.where(x > 0, x, neg)


@_elementwise
def leaky_relu_derivative(x, negative_slope=0.01):
    return np.where(x > 0, 1, _scalar(negative_slope, x.dtype))


@_elementwise
def leaky_relu_derivative_y(y, negative_slope=0.01):
    return np.where(y > 0, 1, _scalar(negative_slope, y.dtype))


@_elementwise
def elu(x, alpha=1.0):
    a = _scalar(alpha, x.dtype)
    return np.where(x >= 0, x, a * np.expm1(x))   # x itself at +-0, as PyTorch


@_elementwise
def elu_derivative(x, alpha=1.0):
    a = _scalar(alpha, x.dtype)
    return np.where(x > 0, 1, a * np.exp(x))


@_elementwise
def elu_derivative_y(y, alpha=1.0):
    # y + alpha is one rounding of exact operands: no loss even as y -> -alpha
    return np.where(y > 0, 1, y + _scalar(alpha, y.dtype))


@_elementwise
def selu(x):
    c = _consts(x.dtype)
    return np.where(x >= 0, c.selu_scale * x, c.selu_sa[0] * np.expm1(x))


@_elementwise
def selu_derivative(x):
    c = _consts(x.dtype)
    return np.where(x > 0, c.selu_scale, c.selu_sa[0] * np.exp(x))


@_elementwise
def selu_derivative_y(y):
    # y + scale*alpha cancels as x -> -inf: add the product's low part last
    c = _consts(y.dtype)
    sah, sal = c.selu_sa
    return np.where(y > 0, c.selu_scale, (y + sah) + sal)


@_elementwise
def celu(x, alpha=1.0):
    a = _scalar(alpha, x.dtype)
    q, ql = _div_dw(x, a)   # exact x/alpha: exp amplifies its rounding by |x/alpha|
    corr = _finite_or_zero(np.exp(q) * ql)   # expm1(q + ql) to first order
    return np.where(x >= 0, x, a * (np.expm1(q) + corr))


@_elementwise
def celu_derivative(x, alpha=1.0):
    a = _scalar(alpha, x.dtype)
    q, ql = _div_dw(x, a)
    e = np.exp(q)
    return np.where(x > 0, 1, e + _finite_or_zero(e * ql))


@_elementwise
def celu_derivative_y(y, alpha=1.0):
    # y/alpha + 1 == (y + alpha)/alpha; the latter does not cancel
    a = _scalar(alpha, y.dtype)
    return np.where(y > 0, 1, (y + a) / a)


@_elementwise
def gelu(x, approximate="none"):
    if approximate == "none":
        Phi, _ = _gauss(x)
        return np.where(np.isneginf(x), 0, x * Phi)
    if approximate == "tanh":
        # 0.5 x (1 + tanh(u)) = x sigmoid(2u): no cancellation for x < 0
        vh, vl = _gelu_tanh_arg(x)
        s, _ = _sig_dw(vh, vl)
        return np.where(np.isneginf(x), 0, x * s)
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


@_elementwise
def gelu_derivative(x, approximate="none"):
    if approximate == "none":
        _, G = _gauss(x)
        return _taylor_region("gelu_none_d", x, G)
    if approximate == "tanh":
        c = _consts(x.dtype)
        vh, vl = _gelu_tanh_arg(x)
        s, sm = _sig_dw(vh, vl)
        dv = c.gelu_k1[0] + 3 * c.gelu_k3[0] * (x * x)
        # s or sm underflows to 0 before x*dv overflows in the narrow type's range
        f = s + np.where((s == 0) | (sm == 0), 0, x * dv * s * sm)
        f = np.where(np.isinf(x), np.where(x > 0, 1, 0), f)
        return _taylor_region("gelu_tanh_d", x, f)
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


@_elementwise
def silu(x):
    return np.where(np.isneginf(x), 0, x * _sig(x))


@_elementwise
def silu_derivative(x):
    # s (1 + x (1 - s)), with 1 - s = sigmoid(-x) computed directly
    f = _sig(x) * (1 + x * _sig(-x))
    f = np.where(np.isinf(x), np.where(x > 0, 1, 0), f)
    return _taylor_region("silu_d", x, f)


@_elementwise
def mish(x):
    return np.where(np.isneginf(x), 0, x * np.tanh(_softplus_w(x)))


@_elementwise
def mish_derivative(x):
    sp = _softplus_w(x)
    c = np.cosh(sp)
    f = np.tanh(sp) + x * _sig(x) / (c * c)   # 1 - tanh**2 = 1/cosh**2
    f = np.where(np.isinf(x), np.where(x > 0, 1, 0), f)
    return _taylor_region("mish_d", x, f)


def _beta_x(x, beta, threshold):
    b = _scalar(beta, x.dtype)
    t = _scalar(threshold, x.dtype)
    zh, zl = _two_prod(x, b)   # beta*x exactly: exp amplifies its rounding
    linear = (zh > t) | ((zh == t) & (zl > 0))
    return b, zh, zl, linear


@_elementwise
def softplus(x, beta=1.0, threshold=20.0):
    b, zh, zl, linear = _beta_x(x, beta, threshold)
    sp = _softplus_w(zh) + _finite_or_zero(_sig(zh) * zl)
    return np.where(linear, x, sp / b)


@_elementwise
def softplus_derivative(x, beta=1.0, threshold=20.0):
    b, zh, zl, linear = _beta_x(x, beta, threshold)
    s, _ = _sig_dw(zh, zl)
    return np.where(linear, 1, s)


@_elementwise
def softplus_derivative_y(y, beta=1.0, threshold=20.0):
    t = _scalar(threshold, y.dtype)
    limit = _softplus_w(t)   # the largest beta*y on the smooth branch
    b, zh, zl, _ = _beta_x(y, beta, threshold)
    linear = (zh > limit) | ((zh == limit) & (zl > 0))
    # 1 - exp(-beta y) with beta*y = zh + zl
    f = -np.expm1(-zh) + _finite_or_zero(np.exp(-zh) * zl)
    return np.where(linear, 1, f)


@_elementwise
def softsign(x):
    return np.where(np.isinf(x), np.sign(x), x / (1 + np.abs(x)))


@_elementwise
def softsign_derivative(x):
    d = 1 + np.abs(x)
    return 1 / (d * d)


@_elementwise
def softsign_derivative_y(y):
    d = 1 - np.abs(y)
    return d * d


@_elementwise
def hardsigmoid(x):
    # (x + 3)/6, not x/6 + 1/2, which cancels near x = -3
    return np.where(x <= -3, 0, np.where(x >= 3, 1, (x + 3) / 6))


@_elementwise
def hardsigmoid_derivative(x):
    return np.where((x > -3) & (x < 3), _consts(x.dtype).sixth, 0)


@_elementwise
def hardsigmoid_derivative_y(y):
    return np.where((y > 0) & (y < 1), _consts(y.dtype).sixth, 0)


@_elementwise
def hardswish(x):
    return np.where(x <= -3, 0, np.where(x >= 3, x, x * (x + 3) / 6))


@_elementwise
def hardswish_derivative(x):
    # x/3 + 1/2 == (2x + 3)/6, which does not cancel near x = -1.5
    return np.where(x < -3, 0, np.where(x <= 3, (2 * x + 3) / 6, 1))


@_elementwise
def hardtanh(x, min_val=-1.0, max_val=1.0):
    lo, hi = _scalar(min_val, x.dtype), _scalar(max_val, x.dtype)
    return np.minimum(np.maximum(x, lo), hi)


@_elementwise
def hardtanh_derivative(x, min_val=-1.0, max_val=1.0):
    return np.where((x > min_val) & (x < max_val), 1, 0)


@_elementwise
def hardtanh_derivative_y(y, min_val=-1.0, max_val=1.0):
    return np.where((y > min_val) & (y < max_val), 1, 0)


@_elementwise
def hardshrink(x, lambd=0.5):
    return np.where(np.abs(x) > lambd, x, 0)


@_elementwise
def hardshrink_derivative(x, lambd=0.5):
    return np.where(np.abs(x) > lambd, 1, 0)


@_elementwise
def hardshrink_derivative_y(y, lambd=0.5):
    return np.where(y != 0, 1, 0)


@_elementwise
def softshrink(x, lambd=0.5):
    lam = _scalar(lambd, x.dtype)
    return np.where(x > lam, x - lam, np.where(x < -lam, x + lam, 0))


@_elementwise
def softshrink_derivative(x, lambd=0.5):
    return np.where(np.abs(x) > lambd, 1, 0)


@_elementwise
def softshrink_derivative_y(y, lambd=0.5):
    return np.where(y != 0, 1, 0)


@_elementwise
def tanhshrink(x):
    # x - tanh(x) cancels near 0 (relative error ~ 1/x**2): Taylor series there
    f = x - np.tanh(x)
    return _taylor_region("tanhshrink", x, f)


@_elementwise
def tanhshrink_derivative(x):
    t = np.tanh(x)
    return t * t


@_elementwise
def threshold(x, threshold, value):
    return np.where(x > threshold, x, _scalar(value, x.dtype))


@_elementwise
def threshold_derivative(x, threshold, value):
    return np.where(x > threshold, 1, 0)


@_elementwise
def threshold_derivative_y(y, threshold, value):
    return np.where(y > threshold, 1, 0)


# ---------------------------------------------------------------------------
# Axis functions
# ---------------------------------------------------------------------------

def _accurate_sum(a):
    """Sum over the last axis as hi + lo, as if in twice the precision.

    Pairwise tree of error-free additions (vectorised over log2(n) levels);
    the rounding errors are collected and added at the end."""
    n = a.shape[-1]
    if n == 0:
        z = np.zeros(a.shape[:-1], dtype=a.dtype)
        return z, z.copy()
    err = np.zeros(a.shape[:-1], dtype=a.dtype)
    while a.shape[-1] > 1:
        if a.shape[-1] % 2:
            a = np.concatenate([a, np.zeros_like(a[..., :1])], axis=-1)
        s, e = _two_sum(a[..., 0::2], a[..., 1::2])
        err = err + np.sum(e, axis=-1)
        a = s
    return _two_sum(a[..., 0], err)


def _axis_last(x, axis):
    x = _as_eval(x)
    if x.ndim == 0:
        raise ValueError("axis functions need at least one dimension")
    return np.moveaxis(x, axis, -1)


def _shifted(x):
    """(x - max) as dh + dl per row, exp of it, and the mask of NaN rows."""
    m = np.max(x, axis=-1, keepdims=True) if x.shape[-1] else np.zeros(x.shape[:-1] + (1,), x.dtype)
    bad = ~np.isfinite(m)            # NaN in the row, +inf in the row, or all -inf
    m = np.where(bad, 0, m)
    dh, dl = _two_sum(x, -m)
    e = np.exp(dh)
    e = e + _finite_or_zero(e * dl)
    return dh, dl, e, bad


def softmax(x, axis=-1):
    """exp(x_i) / sum_j exp(x_j) along ``axis``."""
    xm = _axis_last(x, axis)
    with np.errstate(all="ignore"):
        _, _, e, bad = _shifted(xm)
        sh, sl = _accurate_sum(e)
        sh, sl = sh[..., None], sl[..., None]
        y = e / sh
        y = y - y * (sl / sh)
        y = np.where(bad, np.nan, y)
    return np.moveaxis(y, -1, axis)


def log_softmax(x, axis=-1):
    """x_i - logsumexp(x) along ``axis``; accurate when one logit dominates."""
    xm = _axis_last(x, axis)
    with np.errstate(all="ignore"):
        dh, dl, e, bad = _shifted(xm)
        if xm.shape[-1]:
            # the sum is 1 + (sum of the other terms): log1p of the latter
            idx = np.argmax(np.where(np.isnan(xm), -np.inf, xm), axis=-1)[..., None]
            rest = e.copy()
            np.put_along_axis(rest, idx, 0, axis=-1)
            rh, rl = _accurate_sum(rest)
            lse = (np.log1p(rh) + rl / (1 + rh))[..., None]
        else:
            lse = 0
        y = (dh - lse) + dl
        y = np.where(bad, np.nan, y)
    return np.moveaxis(y, -1, axis)


def softmin(x, axis=-1):
    """softmax(-x) along ``axis``."""
    return softmax(-_as_eval(x), axis=axis)


def _grad_y(grad, y, axis):
    grad, y = _as_eval(grad), _as_eval(y)
    dt = np.result_type(grad, y)
    grad, y = np.broadcast_arrays(grad.astype(dt), y.astype(dt))
    return _axis_last(grad, axis), _axis_last(y, axis)


def softmax_backward(grad, y, axis=-1):
    """Vector-Jacobian product of softmax from its output: y (g - sum(g y))."""
    g, ym = _grad_y(grad, y, axis)
    with np.errstate(all="ignore"):
        p, pe = _two_prod(g, ym)
        dh, dl = _accurate_sum(np.concatenate([p, pe], axis=-1))
        th, tl = _two_sum(g, -dh[..., None])
        out = ym * (th + (tl - dl[..., None]))
    return np.moveaxis(out, -1, axis)


def log_softmax_backward(grad, y, axis=-1):
    """Vector-Jacobian product of log_softmax from its output: g - exp(y) sum(g)."""
    g, ym = _grad_y(grad, y, axis)
    with np.errstate(all="ignore"):
        sh, sl = _accurate_sum(g)
        sh, sl = sh[..., None], sl[..., None]
        # g - exp(y) sum(g) cancels for the target of an NLL loss (g = -1,
        # exp(y) -> 1): exp(y) and the product are carried in double-word
        fi = np.finfo(ym.dtype)
        limit = (fi.nmant - fi.minexp + 2) * math.log(2)   # exp underflows below -limit
        fin = np.abs(ym) < limit
        eh, el = _exp_dw(np.where(fin, ym, 0))
        eh = np.where(fin, eh, np.exp(ym))   # 0 or inf; NaN propagates
        el = np.where(fin, el, 0)
        ph, pl = _dw_mul(eh, el, sh, sl)
        th, tl = _two_sum(g, -ph)
        out = th + (tl - pl)
    return np.moveaxis(out, -1, axis)


def softmin_backward(grad, y, axis=-1):
    """Vector-Jacobian product of softmin from its output: -y (g - sum(g y))."""
    return -softmax_backward(grad, y, axis=axis)
