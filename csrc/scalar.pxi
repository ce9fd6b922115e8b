# Scalar kernels: one small inline function per activation and form, kept apart
# from the loops (csrc/kernels.pyx.tp) that apply them to buffers.
#
# Naming: for a kernel family K (a registry name, or name_choice such as
# gelu_tanh), K_f(x, params) is the function, K_df(x, params) its derivative and
# K_dfy(y, params) its derivative as a function of the output y.
#
# Two kinds of families:
# * exact (piecewise linear: relu, hardtanh, ...): written over `floating` and
#   evaluated in the buffer's own precision, where they are exact or within
#   one rounding; the compiler vectorises their loops.
# * transcendental (listed in WIDE_FAMILIES in kernels.pyx.tp): written over
#   `wide_t` and evaluated one step wider than the buffer, float32 in double and
#   float64 in long double, then rounded once. The extra bits absorb the
#   rounding of intermediate steps and the wider exponent range keeps tiny
#   (subnormal) results exact, so these are accurate to about 0.5 ULP over the
#   whole range.
#
# Every function is branch-free at the element level (selects only) and keeps
# NaN: a NaN input gives a NaN result, derivatives included.  Comparisons are
# written so that NaN falls through to the branch that carries x along.

from libc.math cimport (fmal, exp, expl, expm1, expm1l, log1p, log1pl, tanh, tanhl,
                        erfc, erfcl, sqrt, sqrtl, fabs, fabsl)
from cython cimport floating

cdef extern from "constants.h":
    long double PYACT_SELU_SCALE
    long double PYACT_SELU_SCALED_ALPHA
    long double PYACT_SELU_SCALED_ALPHA_LO
    long double PYACT_INV_SQRT2
    long double PYACT_INV_SQRT2_LO
    long double PYACT_FOUR_OVER_PI
    long double PYACT_INV_SQRT_2PI
    long double PYACT_GELU_K1
    long double PYACT_GELU_CUBIC
    long double PYACT_SOFTSIGN_SATURATES_ABOVE

# Beyond these |x| the product x * (a factor that is already 0) is 0 in every
# precision; clamping there keeps x = -inf from giving -inf * 0 = NaN.
cdef enum:
    GELU_ZERO_BELOW = 40
    GELU_TANH_ZERO_BELOW = 100
    SILU_ZERO_BELOW = 800

ctypedef fused wide_t:
    double
    long double


# ---- wide-precision building blocks ---------------------------------------

cdef inline wide_t w_exp(wide_t x) noexcept nogil:
    if wide_t is double:
        return exp(x)
    else:
        return expl(x)

cdef inline wide_t w_expm1(wide_t x) noexcept nogil:
    if wide_t is double:
        return expm1(x)
    else:
        return expm1l(x)

cdef inline wide_t w_log1p(wide_t x) noexcept nogil:
    if wide_t is double:
        return log1p(x)
    else:
        return log1pl(x)

cdef inline wide_t w_tanh(wide_t x) noexcept nogil:
    if wide_t is double:
        return tanh(x)
    else:
        return tanhl(x)

cdef inline wide_t w_erfc(wide_t x) noexcept nogil:
    if wide_t is double:
        return erfc(x)
    else:
        return erfcl(x)

cdef inline wide_t w_abs(wide_t x) noexcept nogil:
    if wide_t is double:
        return fabs(x)
    else:
        return fabsl(x)

cdef inline wide_t w_sqrt(wide_t x) noexcept nogil:
    if wide_t is double:
        return sqrt(x)
    else:
        return sqrtl(x)

# min(x, 0) and max(x, 0) that keep NaN (fmin/fmax would drop it).
cdef inline wide_t w_min0(wide_t x) noexcept nogil:
    return 0 if x > 0 else x

cdef inline wide_t w_max0(wide_t x) noexcept nogil:
    return 0 if x < 0 else x

# Clamp into [-bound, bound] keeping NaN: used where x multiplies a factor that
# has already reached 0 (x * 0 would be NaN at +-inf).
cdef inline wide_t w_clamp(wide_t x, wide_t bound) noexcept nogil:
    return -bound if x < -bound else (bound if x > bound else x)

# sigmoid(x) = 1/(1+e^-x) from e = exp(-|x|): never overflows.
cdef inline wide_t w_sigmoid(wide_t x) noexcept nogil:
    cdef wide_t e = w_exp(-w_abs(x))
    cdef wide_t r = 1 / (1 + e)
    return r if x >= 0 else e * r

# sigmoid'(x) = e/(1+e)^2 with e = exp(-|x|): keeps the tails (no 1 - y).
cdef inline wide_t w_sigmoid_slope(wide_t x) noexcept nogil:
    cdef wide_t e = w_exp(-w_abs(x))
    cdef wide_t r = 1 / (1 + e)
    return e * r * r

# log(1 + exp(x)) without overflow.
cdef inline wide_t w_softplus(wide_t x) noexcept nogil:
    return w_max0(x) + w_log1p(w_exp(-w_abs(x)))


# ---- NaN-keeping selects in the buffer precision ---------------------------

# Derivatives of piecewise-linear functions are 0/1 steps; keep_nan makes a NaN
# input give NaN instead of the step value.
cdef inline floating keep_nan(floating x, floating value) noexcept nogil:
    return x if x != x else value


# ---- transcendental families (wide_t) ---------------------------------------

cdef inline wide_t sigmoid_f(wide_t x) noexcept nogil:
    return w_sigmoid(x)

cdef inline wide_t sigmoid_df(wide_t x) noexcept nogil:
    return w_sigmoid_slope(x)

cdef inline wide_t sigmoid_dfy(wide_t y) noexcept nogil:
    return y * (1 - y)


cdef inline wide_t log_sigmoid_f(wide_t x) noexcept nogil:
    return -w_softplus(-x)

cdef inline wide_t log_sigmoid_df(wide_t x) noexcept nogil:
    return w_sigmoid(-x)

cdef inline wide_t log_sigmoid_dfy(wide_t y) noexcept nogil:
    return -w_expm1(y)


cdef inline wide_t tanh_f(wide_t x) noexcept nogil:
    return w_tanh(x)

# 1 - tanh^2 = 4 e / (1 + e)^2 with e = exp(-2|x|): exact in the tails.
cdef inline wide_t tanh_df(wide_t x) noexcept nogil:
    return 4 * w_sigmoid_slope(2 * x)

cdef inline wide_t tanh_dfy(wide_t y) noexcept nogil:
    return (1 - y) * (1 + y)


cdef inline wide_t elu_f(wide_t x, wide_t alpha) noexcept nogil:
    return x if x > 0 else alpha * w_expm1(w_min0(x))

cdef inline wide_t elu_df(wide_t x, wide_t alpha) noexcept nogil:
    return 1 if x > 0 else alpha * w_exp(w_min0(x))

cdef inline wide_t elu_dfy(wide_t y, wide_t alpha) noexcept nogil:
    return 1 if y > 0 else y + alpha


cdef inline wide_t selu_f(wide_t x) noexcept nogil:
    cdef wide_t scale = <wide_t>PYACT_SELU_SCALE
    cdef wide_t scaled_alpha = <wide_t>PYACT_SELU_SCALED_ALPHA
    return scale * x if x > 0 else scaled_alpha * w_expm1(w_min0(x))

cdef inline wide_t selu_df(wide_t x) noexcept nogil:
    cdef wide_t scale = <wide_t>PYACT_SELU_SCALE
    cdef wide_t scaled_alpha = <wide_t>PYACT_SELU_SCALED_ALPHA
    return scale if x > 0 else scaled_alpha * w_exp(w_min0(x))

# y + scale*alpha cancels as x -> -inf: add the constant's low part last.
cdef inline wide_t selu_dfy(wide_t y) noexcept nogil:
    cdef wide_t scale = <wide_t>PYACT_SELU_SCALE
    cdef wide_t scaled_alpha = <wide_t>PYACT_SELU_SCALED_ALPHA
    cdef wide_t low = <wide_t>(PYACT_SELU_SCALED_ALPHA - <long double>scaled_alpha
                               + PYACT_SELU_SCALED_ALPHA_LO)
    return scale if y > 0 else (y + scaled_alpha) + low


cdef inline wide_t celu_f(wide_t x, wide_t alpha) noexcept nogil:
    return x if x > 0 else alpha * w_expm1(w_min0(x) / alpha)

cdef inline wide_t celu_df(wide_t x, wide_t alpha) noexcept nogil:
    return 1 if x > 0 else w_exp(w_min0(x) / alpha)

# (y + alpha) / alpha rather than y / alpha + 1: y + alpha is exact where it
# cancels (y -> -alpha as x -> -inf), so the small result keeps its accuracy.
cdef inline wide_t celu_dfy(wide_t y, wide_t alpha) noexcept nogil:
    return 1 if y > 0 else (y + alpha) / alpha



# Phi(x) = erfc(-x/sqrt(2))/2.  In long double the rounding of z = -x/sqrt(2)
# would cost up to 2 z^2 ulp in the tail, so it is corrected to first order:
# erfc(z + dz) = erfc(z) (1 + dz L(z)), with L = d log erfc / dz close to
# -(z + sqrt(z^2 + 4/pi)) (exact at 0 and as z -> inf).  In double (float32
# kernels) the 29 spare bits make this unnecessary.
cdef inline wide_t w_gauss_cdf(wide_t x) noexcept nogil:
    cdef wide_t c = <wide_t>PYACT_INV_SQRT2
    cdef wide_t z = -x * c
    cdef long double xc, zc, dz
    if wide_t is double:
        return w_erfc(z) / 2
    else:
        xc = w_clamp(x, <wide_t>GELU_ZERO_BELOW)  # keeps +-inf out of the correction
        zc = -xc * c
        dz = fmal(-xc, c, -zc) - xc * PYACT_INV_SQRT2_LO
        return w_erfc(z) / 2 * (1 - dz * (zc + sqrtl(zc * zc + PYACT_FOUR_OVER_PI)))

# exp(-x^2/2) with the rounding of x^2 corrected in long double (it would cost
# x^2/2 ulp); x is clamped where the result is 0 anyway.
cdef inline wide_t w_gauss_kernel(wide_t x) noexcept nogil:
    cdef wide_t xc = w_clamp(x, <wide_t>GELU_ZERO_BELOW)
    cdef wide_t square = xc * xc
    if wide_t is double:
        return w_exp(-square / 2)
    else:
        return w_exp(-square / 2) * (1 - fmal(xc, xc, -square) / 2)

cdef inline wide_t gelu_none_f(wide_t x) noexcept nogil:
    cdef wide_t xc = w_clamp(x, <wide_t>GELU_ZERO_BELOW) if x < 0 else x
    return xc * w_gauss_cdf(x)

cdef inline wide_t gelu_none_df(wide_t x) noexcept nogil:
    cdef wide_t xc = w_clamp(x, <wide_t>GELU_ZERO_BELOW)
    return w_gauss_cdf(x) + xc * (w_gauss_kernel(x) * <wide_t>PYACT_INV_SQRT_2PI)


# tanh approximation: x/2 (1 + tanh(u)) = x * sigmoid(2u),
# 2u = x (K1 + K2 x^2), K1 = 2 sqrt(2/pi), K2 = 0.044715 K1.

cdef inline wide_t gelu_tanh_f(wide_t x) noexcept nogil:
    cdef wide_t xc = w_clamp(x, <wide_t>GELU_TANH_ZERO_BELOW) if x < 0 else x
    cdef wide_t k2 = <wide_t>(PYACT_GELU_CUBIC * PYACT_GELU_K1)
    return xc * w_sigmoid(xc * (<wide_t>PYACT_GELU_K1 + k2 * xc * xc))

cdef inline wide_t gelu_tanh_df(wide_t x) noexcept nogil:
    cdef wide_t xc = w_clamp(x, <wide_t>GELU_TANH_ZERO_BELOW)
    cdef wide_t k2 = <wide_t>(PYACT_GELU_CUBIC * PYACT_GELU_K1)
    cdef wide_t two_u = x * (<wide_t>PYACT_GELU_K1 + k2 * x * x)
    cdef wide_t two_uc = xc * (<wide_t>PYACT_GELU_K1 + k2 * xc * xc)
    return w_sigmoid(two_u) + xc * (<wide_t>PYACT_GELU_K1 + 3 * k2 * xc * xc) * w_sigmoid_slope(two_uc)



cdef inline wide_t silu_f(wide_t x) noexcept nogil:
    cdef wide_t xc = w_clamp(x, <wide_t>SILU_ZERO_BELOW) if x < 0 else x
    return xc * w_sigmoid(x)

cdef inline wide_t silu_df(wide_t x) noexcept nogil:
    cdef wide_t xc = w_clamp(x, <wide_t>SILU_ZERO_BELOW)
    return w_sigmoid(x) + xc * w_sigmoid_slope(x)


# mish: t = tanh(softplus(x)) written in e = exp(-|x|) so that neither t nor
# 1 - t overflows or cancels:
#   x <= 0 (e = e^x):  n = e (e + 2),  t = n / (n + 2),  1 - t = 2 / (n + 2)
#   x > 0 (e = e^-x):  d = 1 + 2e + 2e^2,  t = (1 + 2e) / d,  1 - t = 2 e^2 / d
cdef inline wide_t mish_t(wide_t x) noexcept nogil:
    cdef wide_t e = w_exp(-w_abs(x))
    cdef wide_t n = e * (e + 2)
    return (1 + 2 * e) / (1 + 2 * e + 2 * e * e) if x > 0 else n / (n + 2)

cdef inline wide_t mish_one_minus_t(wide_t x) noexcept nogil:
    cdef wide_t e = w_exp(-w_abs(x))
    cdef wide_t n = e * (e + 2)
    return 2 * e * e / (1 + 2 * e + 2 * e * e) if x > 0 else 2 / (n + 2)

cdef inline wide_t mish_f(wide_t x) noexcept nogil:
    cdef wide_t xc = w_clamp(x, <wide_t>SILU_ZERO_BELOW) if x < 0 else x
    return xc * mish_t(x)

# mish' = t + x sigmoid(x) (1 - t^2), with 1 - t^2 = (1 - t)(2 - (1 - t)).
cdef inline wide_t mish_df(wide_t x) noexcept nogil:
    cdef wide_t xc = w_clamp(x, <wide_t>SILU_ZERO_BELOW)
    cdef wide_t om = mish_one_minus_t(x)
    return mish_t(x) + xc * w_sigmoid(x) * (om * (2 - om))


# PyTorch semantics: linear where beta * x > threshold.
cdef inline wide_t softplus_f(wide_t x, wide_t beta, wide_t threshold) noexcept nogil:
    cdef wide_t bx = beta * x
    return x if bx > threshold else w_softplus(bx) / beta

cdef inline wide_t softplus_df(wide_t x, wide_t beta, wide_t threshold) noexcept nogil:
    cdef wide_t bx = beta * x
    return 1 if bx > threshold else w_sigmoid(bx)

# From y: beta y = log(1 + e^{beta x}) so sigmoid(beta x) = 1 - e^{-beta y}.
# The linear region starts where beta y passes softplus(threshold).
cdef inline wide_t softplus_dfy(wide_t y, wide_t beta, wide_t threshold) noexcept nogil:
    cdef wide_t by = beta * y
    return 1 if by > w_softplus(threshold) else -w_expm1(-by)


# x - tanh(x) cancels for small |x|: use its Taylor series there, where 8 terms
# reach the wide type's precision (term ratio <= 0.004 at |x| = 0.1).

cdef inline wide_t tanhshrink_f(wide_t x) noexcept nogil:
    cdef wide_t x2 = x * x
    cdef wide_t series = x * x2 * (<wide_t>1 / 3 + x2 * (<wide_t>-2 / 15 + x2 * (
        <wide_t>17 / 315 + x2 * (<wide_t>-62 / 2835 + x2 * (<wide_t>1382 / 155925 + x2 * (
            <wide_t>-21844 / 6081075 + x2 * (<wide_t>929569 / <wide_t>638512875.0
                                            + x2 * (<wide_t>-6404582 / <wide_t>10854718875.0))))))))
    return series if w_abs(x) < <wide_t>0.1 else x - w_tanh(x)

cdef inline wide_t tanhshrink_df(wide_t x) noexcept nogil:
    cdef wide_t t = w_tanh(x)
    return t * t


# softsign saturates: beyond 2**60 the result is +-1 in every precision, and
# clamping there keeps x = +-inf from giving inf / inf.
cdef inline wide_t softsign_f(wide_t x) noexcept nogil:
    cdef wide_t xc = w_clamp(x, <wide_t>PYACT_SOFTSIGN_SATURATES_ABOVE)
    return xc / (1 + w_abs(xc))

# 1 / (1 + |x|)^2 as r * r so that large |x| underflows gradually.
cdef inline wide_t softsign_df(wide_t x) noexcept nogil:
    cdef wide_t r = 1 / (1 + w_abs(x))
    return r * r

cdef inline wide_t softsign_dfy(wide_t y) noexcept nogil:
    cdef wide_t r = 1 - w_abs(y)
    return r * r


cdef inline wide_t hardswish_f(wide_t x) noexcept nogil:
    return 0 if x <= -3 else (x if x >= 3 else x * (x + 3) / 6)

# PyTorch's convention at the kinks: x/3 + 1/2 on [-3, 3] inclusive, written
# (2x + 3)/6 so that it does not cancel near its zero at x = -1.5.
cdef inline wide_t hardswish_df(wide_t x) noexcept nogil:
    return 0 if x < -3 else ((2 * x + 3) / 6 if x <= 3 else (x if x != x else 1))


# ---- exact families (floating) ----------------------------------------------

cdef inline floating relu_f(floating x) noexcept nogil:
    return 0 if x <= 0 else x

cdef inline floating relu_df(floating x) noexcept nogil:
    return keep_nan(x, <floating>(x > 0))

cdef inline floating relu_dfy(floating y) noexcept nogil:
    return keep_nan(y, <floating>(y > 0))


cdef inline floating hardtanh_f(floating x, floating min_val, floating max_val) noexcept nogil:
    return min_val if x <= min_val else (max_val if x >= max_val else x)

cdef inline floating hardtanh_df(floating x, floating min_val, floating max_val) noexcept nogil:
    return keep_nan(x, <floating>((x > min_val) & (x < max_val)))

cdef inline floating hardtanh_dfy(floating y, floating min_val, floating max_val) noexcept nogil:
    return hardtanh_df(y, min_val, max_val)


cdef inline floating relu6_f(floating x) noexcept nogil:
    return hardtanh_f(x, <floating>0, <floating>6)

cdef inline floating relu6_df(floating x) noexcept nogil:
    return hardtanh_df(x, <floating>0, <floating>6)

cdef inline floating relu6_dfy(floating y) noexcept nogil:
    return hardtanh_df(y, <floating>0, <floating>6)


cdef inline floating leaky_relu_f(floating x, floating negative_slope) noexcept nogil:
    return x if x > 0 else x * negative_slope

cdef inline floating leaky_relu_df(floating x, floating negative_slope) noexcept nogil:
    return keep_nan(x, <floating>1 if x > 0 else negative_slope)

cdef inline floating leaky_relu_dfy(floating y, floating negative_slope) noexcept nogil:
    return leaky_relu_df(y, negative_slope)


cdef inline floating hardsigmoid_f(floating x) noexcept nogil:
    return 0 if x <= -3 else (1 if x >= 3 else (x + 3) / 6)

cdef inline floating hardsigmoid_df(floating x) noexcept nogil:
    return keep_nan(x, (<floating>1 / 6) if ((x > -3) & (x < 3)) else <floating>0)

cdef inline floating hardsigmoid_dfy(floating y) noexcept nogil:
    return keep_nan(y, (<floating>1 / 6) if ((y > 0) & (y < 1)) else <floating>0)


cdef inline floating hardshrink_f(floating x, floating lambd) noexcept nogil:
    return x if ((x > lambd) | (x < -lambd)) else keep_nan(x, <floating>0)

cdef inline floating hardshrink_df(floating x, floating lambd) noexcept nogil:
    return keep_nan(x, <floating>((x > lambd) | (x < -lambd)))

cdef inline floating hardshrink_dfy(floating y, floating lambd) noexcept nogil:
    return keep_nan(y, <floating>(y != 0))


cdef inline floating softshrink_f(floating x, floating lambd) noexcept nogil:
    return x - lambd if x > lambd else (x + lambd if x < -lambd else keep_nan(x, <floating>0))

cdef inline floating softshrink_df(floating x, floating lambd) noexcept nogil:
    return hardshrink_df(x, lambd)

cdef inline floating softshrink_dfy(floating y, floating lambd) noexcept nogil:
    return hardshrink_dfy(y, lambd)


cdef inline floating threshold_f(floating x, floating threshold, floating value) noexcept nogil:
    return value if x <= threshold else x

cdef inline floating threshold_df(floating x, floating threshold, floating value) noexcept nogil:
    return keep_nan(x, <floating>(x > threshold))

cdef inline floating threshold_dfy(floating y, floating threshold, floating value) noexcept nogil:
    return keep_nan(y, <floating>(y > threshold))
