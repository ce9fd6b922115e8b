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

# (exp, expm1, log1p, tanh, fabs are also used by axis.pxi)
from libc.math cimport (exp, expm1, log1p, tanh, fabs, expl, expm1l, log1pl, tanhl, INFINITY,
                        sqrt, sqrtl, fabsl, fmal, erfcl)
from libc.float cimport DBL_MAX, FLT_MAX
from cython cimport floating

cdef extern from "vmath.h" nogil:
    # float64 building blocks (see csrc/vmath.h for their measured errors)
    double vm_abs(double x)
    double VM_FMA(double a, double b, double c)   # fused where the level has an FMA
    ctypedef unsigned long long vm_rare_t   # an integer type (vmath.h)
    vm_rare_t vm_backward_needs_wide(double r, double grad, double x)
    double vm_mulsign(double x, double s)
    double vm_two_prod(double a, double b, double *err)
    double vm_prod_plus(double a, double b, double c)
    double vm_two_sum(double a, double b, double *err)
    double vm_fast_two_sum(double a, double b, double *err)
    double vm_dd_div(double nh, double nl, double dh, double dl, double *ql)
    double vm_dd_div_moderate(double nh, double nl, double dh, double dl, double *ql)
    double vm_exp(double x)
    double vm_mul_exp_parts(double c, double hi, double lo, double s1, double s2)
    double vm_mul_exp_split(double am, double ea, double x)
    long double vm_split_mantissa_hoisted(long double a)
    int vm_split_exponent_hoisted(long double a)
    double vm_exp_dd(double x, double *lo)
    double vm_expm1(double x)
    double vm_expm1_dd(double x, double *lo)
    double vm_expm1_nonpos(double y)
    double vm_expm1_nonpos_dd(double y, double *lo)
    double vm_softplus(double x)
    double vm_softplus_dd(double x, double *lo)
    double vm_sigmoid(double x)
    double vm_sigmoid_dd(double x, double *lo)
    double vm_sigmoid_parts_dd(double x, double *lo, double *eh, double *el, double *s1,
                               double *s2)
    double vm_sigmoid_slope(double x)
    double vm_tanh_slope_times(double x, double c)
    void vm_exp_parts(double x, double *hi, double *lo, double *s1, double *s2)
    double vm_tanh(double x)
    double vm_tanhshrink(double x)
    double vm_gelu(double x)
    double vm_gelu_d(double x)
    double vm_gelu_d32(double x)
    double vm_gelu_d_d32(double x)
    double vm_gelu_tanh(double x)
    double vm_gelu_tanh_d(double x)
    double vm_silu_d(double x)
    double vm_mish(double x)
    double vm_mish_d(double x)
    # float32-grade derivatives near their zeros, and where to use them (|x - X0_HI| < W)
    double vm_gelu_tanh_d_near0_d32(double x)
    double vm_silu_d_near0_d32(double x)
    double vm_mish_d_near0_d32(double x)
    double VM_GELUTD0_D32_X0_HI, VM_GELUTD0_D32_W, VM_SILUD0_D32_X0_HI, VM_SILUD0_D32_W
    double VM_MISHD0_D32_X0_HI, VM_MISHD0_D32_W
    # float32-grade versions in double, for the float32 kernels
    double vm_exp_d32(double x)
    double vm_expm1_d32(double x)
    double vm_log1p_01_d32(double u)
    double vm_tanh_d32(double x)
    # float arithmetic for the float32 kernels (FMA levels; see vmath.h)
    const int VM_F32_FMA
    float vmf_sigmoid(float x)
    float vmf_sigmoid_slope(float x)
    float vmf_silu(float x)
    float vmf_gelu_tanh(float x)
    float vmf_tanh(float x)
    float vmf_tanh_slope(float x)
    float vmf_tanhshrink(float x)
    float vmf_sigmoid_slope_times(float x, float k, float c, int use_c)
    float vmf_tanh_slope_times(float x, float c)
    float vmf_sigmoid_times(float x, float c)
    float vmf_silu_slope(float x)
    float vmf_softplus_slope_times(float x, float beta, float threshold, float c, int use_c)
    float vmf_silu_slope_times(float x, float c, int use_c)
    float vmf_softplus(float x, float beta, float threshold)
    float vmf_log_sigmoid(float x)
    float vmf_hardsigmoid(float x)
    float vmf_hardswish(float x)
    float vmf_hardswish_slope_times(float x, float c)
    float vmf_softsign(float x)
    float vmf_times_pair(float c, float h, float l)
    float vmf_exp_times(float x, float xl, float g, float am, float am_lo, int ea, float x_zero,
                        float x_inf)
    float vmf_celu_slope_times(float x, float c, float alpha)
    float vmf_split_mantissa_lo_hoisted(long double a)
    float vmf_exp_zero_below_hoisted(long double a)
    # loop invariants (see vmath.h)
    double vm_softplus_hoisted(double x)
    double vm_softplus_hi_hoisted(double x)
    double vm_softplus_lo_hoisted(double x)

cdef extern from "constants.h":
    long double PYACT_SELU_SCALE
    long double PYACT_SELU_SCALED_ALPHA
    double PYACT_SELU_SCALED_ALPHA_DLO
    long double PYACT_INV_SQRT2
    long double PYACT_FOUR_OVER_PI
    long double PYACT_INV_SQRT_2PI
    long double PYACT_GELU_K1
    long double PYACT_GELU_CUBIC
    long double PYACT_SOFTSIGN_SATURATES_ABOVE
    double PYACT_SOFTSIGN_PAIR_BELOW

# Beyond these |x| the product x * (a factor that is already 0) is 0 in double
# (the _LD ones: in long double, whose exponent reaches e^-11400, for the float64
# backward's rare elements); clamping there keeps x = -inf from giving -inf * 0 = NaN.
cdef enum:
    GELU_ZERO_BELOW = 40
    GELU_ZERO_BELOW_LD = 160
    GELU_TANH_ZERO_BELOW = 100
    SILU_ZERO_BELOW = 800
    SILU_ZERO_BELOW_LD = 12000

ctypedef fused wide_t:
    double
    long double


# ---- wide-precision building blocks ---------------------------------------

# w_*: libm, correctly rounded to about 0.5 ULP of the wide type (used by
# axis.pxi).  v_*: what the elementwise families use: in double (float32
# kernels) the vectorisable float32-grade versions of vmath.h, in long double
# (float64 families not yet moved to native double) libm.
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

cdef inline wide_t v_exp(wide_t x) noexcept nogil:
    if wide_t is double:
        return vm_exp_d32(x)
    else:
        return expl(x)

cdef inline wide_t v_expm1(wide_t x) noexcept nogil:
    if wide_t is double:
        return vm_expm1_d32(x)
    else:
        return expm1l(x)

# only for x in [0, 1] (v_softplus)
cdef inline wide_t v_log1p_01(wide_t x) noexcept nogil:
    if wide_t is double:
        return vm_log1p_01_d32(x)
    else:
        return log1pl(x)

cdef inline wide_t v_tanh(wide_t x) noexcept nogil:
    if wide_t is double:
        return vm_tanh_d32(x)
    else:
        return tanhl(x)

cdef inline wide_t w_abs(wide_t x) noexcept nogil:
    if wide_t is double:
        return vm_abs(x)
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

# min(x, 0) under the test x >= 0, for the elu family's forward, which selects x
# itself at +-0 (elu(-0) = -0) by that test: one mask then serves both selects
# (w_min0's x > 0 beside it cost the float32 forwards 1.11-1.19x).
cdef inline wide_t w_min0_ge(wide_t x) noexcept nogil:
    return 0 if x >= 0 else x

# Clamp into [-bound, bound] keeping NaN: used where x multiplies a factor that
# has already reached 0 (x * 0 would be NaN at +-inf).
cdef inline wide_t w_clamp(wide_t x, wide_t bound) noexcept nogil:
    return -bound if x < -bound else (bound if x > bound else x)

# x clamped where silu's and mish's factor e^x is 0 in x's type.
cdef inline wide_t w_silu_clamp(wide_t x) noexcept nogil:
    if wide_t is double:
        return w_clamp(x, <double>SILU_ZERO_BELOW)
    else:
        return w_clamp(x, <long double>SILU_ZERO_BELOW_LD)

# sigmoid(x) = 1/(1+e^-x) from e = exp(-|x|): never overflows.
# sigmoid(x), and sigmoid'(x) = e/(1+e)^2 as *slope, from one e = exp(-|x|) and
# one division; the slope keeps the tails (no 1 - y).
cdef inline wide_t w_sigmoid_both(wide_t x, wide_t* slope) noexcept nogil:
    cdef wide_t e = v_exp(-w_abs(x))
    cdef wide_t r = 1 / (1 + e)
    slope[0] = e * r * r
    return r if x >= 0 else e * r

cdef inline wide_t w_sigmoid(wide_t x) noexcept nogil:
    cdef wide_t slope
    return w_sigmoid_both(x, &slope)

cdef inline wide_t w_sigmoid_slope(wide_t x) noexcept nogil:
    cdef wide_t slope
    w_sigmoid_both(x, &slope)
    return slope

# log(1 + exp(x)) without overflow.
cdef inline wide_t w_softplus(wide_t x) noexcept nogil:
    return w_max0(x) + v_log1p_01(v_exp(-w_abs(x)))


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
    return -v_expm1(y)


cdef inline wide_t tanh_f(wide_t x) noexcept nogil:
    return v_tanh(x)

# 1 - tanh^2 = 4 e / (1 + e)^2 with e = exp(-2|x|): exact in the tails.
cdef inline wide_t tanh_df(wide_t x) noexcept nogil:
    return 4 * w_sigmoid_slope(2 * x)

cdef inline wide_t tanh_dfy(wide_t y) noexcept nogil:
    return (1 - y) * (1 + y)


cdef inline wide_t elu_f(wide_t x, wide_t alpha) noexcept nogil:
    return x if x >= 0 else alpha * v_expm1(w_min0_ge(x))

cdef inline wide_t elu_df(wide_t x, wide_t alpha) noexcept nogil:
    return 1 if x > 0 else alpha * v_exp(w_min0(x))

cdef inline wide_t elu_dfy(wide_t y, wide_t alpha) noexcept nogil:
    return 1 if y > 0 else y + alpha


cdef inline wide_t selu_f(wide_t x) noexcept nogil:
    cdef wide_t scale = <wide_t>PYACT_SELU_SCALE
    cdef wide_t scaled_alpha = <wide_t>PYACT_SELU_SCALED_ALPHA
    return scale * x if x >= 0 else scaled_alpha * v_expm1(w_min0_ge(x))

cdef inline wide_t selu_df(wide_t x) noexcept nogil:
    cdef wide_t scale = <wide_t>PYACT_SELU_SCALE
    cdef wide_t scaled_alpha = <wide_t>PYACT_SELU_SCALED_ALPHA
    return scale if x > 0 else scaled_alpha * v_exp(w_min0(x))

# y + scale*alpha cancels as x -> -inf: the constant as a double pair, its low part
# added last (y + hi is exact there).
cdef inline wide_t selu_dfy(wide_t y) noexcept nogil:
    cdef wide_t scale = <wide_t>PYACT_SELU_SCALE
    cdef wide_t scaled_alpha_hi = <double>PYACT_SELU_SCALED_ALPHA
    return scale if y > 0 else (y + scaled_alpha_hi) + <wide_t>PYACT_SELU_SCALED_ALPHA_DLO


cdef inline wide_t celu_f(wide_t x, wide_t alpha) noexcept nogil:
    return x if x >= 0 else alpha * v_expm1(w_min0_ge(x) / alpha)

cdef inline wide_t celu_df(wide_t x, wide_t alpha) noexcept nogil:
    return 1 if x > 0 else v_exp(w_min0(x) / alpha)

# (y + alpha) / alpha rather than y / alpha + 1: y + alpha is exact where it
# cancels (y -> -alpha as x -> -inf), so the small result keeps its accuracy.
cdef inline wide_t celu_dfy(wide_t y, wide_t alpha) noexcept nogil:
    return 1 if y > 0 else (y + alpha) / alpha



# gelu (exact form): vmath.h's vectorisable Phi (polynomials times e^(-x^2/2)):
# float32 kernels with the float32-grade version in double (one polynomial),
# rounded once; float64 kernels (gelu_none_f64 below) in double pairs (pieces
# selected per lane).  Measured errors: README's accuracy table.
cdef inline wide_t gelu_none_f(wide_t x) noexcept nogil:
    return vm_gelu_d32(<double>x)

# In long double (the float64 backward's rare elements, far out in the tail):
# Phi(x) + x phi(x), with x^2 carried exactly (h and fmal's remainder).
cdef inline wide_t gelu_none_df(wide_t x) noexcept nogil:
    cdef long double xc, h
    if wide_t is double:
        return vm_gelu_d_d32(<double>x)
    else:
        xc = w_clamp(x, <long double>GELU_ZERO_BELOW_LD)
        h = xc * xc
        return (erfcl(-xc * PYACT_INV_SQRT2) / 2
                + xc * (expl(-h / 2) * (1 - fmal(xc, xc, -h) / 2) * PYACT_INV_SQRT_2PI))


# tanh approximation: x/2 (1 + tanh(u)) = x * sigmoid(2u),
# 2u = x (K1 + K2 x^2), K1 = 2 sqrt(2/pi), K2 = 0.044715 K1.

cdef inline wide_t gelu_tanh_f(wide_t x) noexcept nogil:
    cdef wide_t xc = w_clamp(x, <wide_t>GELU_TANH_ZERO_BELOW) if x < 0 else x
    cdef wide_t k2 = <wide_t>(PYACT_GELU_CUBIC * PYACT_GELU_K1)
    return xc * w_sigmoid(xc * (<wide_t>PYACT_GELU_K1 + k2 * xc * xc))

cdef inline wide_t gelu_tanh_df(wide_t x) noexcept nogil:
    cdef wide_t xc = w_clamp(x, <wide_t>GELU_TANH_ZERO_BELOW)
    cdef wide_t k2 = <wide_t>(PYACT_GELU_CUBIC * PYACT_GELU_K1)
    cdef wide_t two_uc = xc * (<wide_t>PYACT_GELU_K1 + k2 * xc * xc)
    # sigmoid(2u) and sigmoid'(2u) at the clamped 2u: beyond |x| = 100 e^-|2u| is 0
    # whether clamped or not
    cdef wide_t slope
    cdef wide_t sig = w_sigmoid_both(two_uc, &slope)
    cdef wide_t direct = sig + xc * (<wide_t>PYACT_GELU_K1 + 3 * k2 * xc * xc) * slope
    cdef double near
    if wide_t is double:
        near = vm_gelu_tanh_d_near0_d32(x)
        direct = near if vm_abs(x - VM_GELUTD0_D32_X0_HI) < VM_GELUTD0_D32_W else direct
    return x if x != x else direct  # the same NaN whether or not the compiler fuses the terms



cdef inline wide_t silu_f(wide_t x) noexcept nogil:
    cdef wide_t xc = w_clamp(x, <wide_t>SILU_ZERO_BELOW) if x < 0 else x
    return xc * w_sigmoid(x)

cdef inline wide_t silu_df(wide_t x) noexcept nogil:
    cdef wide_t xc = w_silu_clamp(x)
    cdef wide_t slope
    cdef wide_t direct = w_sigmoid_both(x, &slope)
    direct = direct + xc * slope
    cdef double near
    if wide_t is double:
        near = vm_silu_d_near0_d32(x)
        return near if vm_abs(x - VM_SILUD0_D32_X0_HI) < VM_SILUD0_D32_W else direct
    return direct


# mish: t = tanh(softplus(x)) written in e = exp(-|x|) so that neither t nor
# 1 - t overflows or cancels:
#   x <= 0 (e = e^x):  n = e (e + 2),  t = n / (n + 2),  1 - t = 2 / (n + 2)
#   x > 0 (e = e^-x):  d = 1 + 2e + 2e^2,  t = (1 + 2e) / d,  1 - t = 2 e^2 / d
cdef inline wide_t mish_t(wide_t x) noexcept nogil:
    cdef wide_t e = v_exp(-w_abs(x))
    cdef wide_t n = e * (e + 2)
    return (1 + 2 * e) / (1 + 2 * e + 2 * e * e) if x > 0 else n / (n + 2)

cdef inline wide_t mish_one_minus_t(wide_t x) noexcept nogil:
    cdef wide_t e = v_exp(-w_abs(x))
    cdef wide_t n = e * (e + 2)
    return 2 * e * e / (1 + 2 * e + 2 * e * e) if x > 0 else 2 / (n + 2)

cdef inline wide_t mish_f(wide_t x) noexcept nogil:
    cdef wide_t xc = w_clamp(x, <wide_t>SILU_ZERO_BELOW) if x < 0 else x
    return xc * mish_t(x)

# mish' = t + x sigmoid(x) (1 - t^2), with 1 - t^2 = (1 - t)(2 - (1 - t)).
cdef inline wide_t mish_df(wide_t x) noexcept nogil:
    cdef wide_t xc = w_silu_clamp(x)
    cdef wide_t om = mish_one_minus_t(x)
    cdef wide_t direct = mish_t(x) + xc * w_sigmoid(x) * (om * (2 - om))
    cdef double near
    if wide_t is double:
        near = vm_mish_d_near0_d32(x)
        return near if vm_abs(x - VM_MISHD0_D32_X0_HI) < VM_MISHD0_D32_W else direct
    return direct


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
    cdef wide_t linear_above
    if wide_t is double:
        linear_above = vm_softplus_hoisted(threshold)   # as accurate as float64's
    else:
        linear_above = w_softplus(threshold)
    return 1 if by > linear_above else -v_expm1(-by)


# x - tanh(x) cancels for small |x|: use its Taylor series there, where 8 terms
# reach the wide type's precision (term ratio <= 0.004 at |x| = 0.1).

cdef inline wide_t tanhshrink_f(wide_t x) noexcept nogil:
    cdef wide_t x2 = x * x
    cdef wide_t series = x * x2 * (<wide_t>1 / 3 + x2 * (<wide_t>-2 / 15 + x2 * (
        <wide_t>17 / 315 + x2 * (<wide_t>-62 / 2835 + x2 * (<wide_t>1382 / 155925 + x2 * (
            <wide_t>-21844 / 6081075 + x2 * (<wide_t>929569 / <wide_t>638512875.0
                                            + x2 * (<wide_t>-6404582 / <wide_t>10854718875.0))))))))
    return (series if w_abs(x) < <wide_t>0.1 else x - v_tanh(x)) + 0   # + 0: +0 at -0, as x - tanh(x)

cdef inline wide_t tanhshrink_df(wide_t x) noexcept nogil:
    cdef wide_t t = v_tanh(x)
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


# ---- float32 kernels in float (K_<form>32) ---------------------------------------
#
# The float32 loops call these instead of the double versions above (see
# F32_NATIVE in kernels.pyx.tp).  On levels with a hardware FMA (VM_F32_FMA, a
# compile-time constant) they compute in float, twice the vector lanes of
# double, within 1.11 ULP (gelu tanh form: 1.13, tanh 1.50, silu' 1.78; vmath.h's vmf_*); elsewhere they round the double
# versions to float.

cdef inline float sigmoid_f32(float x) noexcept nogil:
    return vmf_sigmoid(x) if VM_F32_FMA else <float>sigmoid_f(<double>x)

cdef inline float sigmoid_df32(float x) noexcept nogil:
    return vmf_sigmoid_slope(x) if VM_F32_FMA else <float>sigmoid_df(<double>x)

cdef inline float log_sigmoid_f32(float x) noexcept nogil:
    return vmf_log_sigmoid(x) if VM_F32_FMA else <float>log_sigmoid_f(<double>x)

cdef inline float log_sigmoid_df32(float x) noexcept nogil:
    return vmf_sigmoid(-x) if VM_F32_FMA else <float>log_sigmoid_df(<double>x)

cdef inline float tanh_f32(float x) noexcept nogil:
    return vmf_tanh(x) if VM_F32_FMA else <float>tanh_f(<double>x)

cdef inline float tanh_df32(float x) noexcept nogil:
    return vmf_tanh_slope(x) if VM_F32_FMA else <float>tanh_df(<double>x)

# Backward passes: grad joins the product before the final rounding (see
# backward_call in kernels.pyx.tp).
cdef inline float sigmoid_df32_times(float x, float grad) noexcept nogil:
    return vmf_sigmoid_slope_times(x, 1, grad, 1) if VM_F32_FMA else <float>(grad * sigmoid_df(<double>x))

cdef inline float log_sigmoid_df32_times(float x, float grad) noexcept nogil:
    return vmf_sigmoid_times(-x, grad) if VM_F32_FMA else <float>(grad * log_sigmoid_df(<double>x))

cdef inline float tanh_df32_times(float x, float grad) noexcept nogil:
    return vmf_tanh_slope_times(x, grad) if VM_F32_FMA else <float>(grad * tanh_df(<double>x))

cdef inline float tanhshrink_f32(float x) noexcept nogil:
    return vmf_tanhshrink(x) if VM_F32_FMA else <float>tanhshrink_f(<double>x)

cdef inline float gelu_tanh_f32(float x) noexcept nogil:
    return vmf_gelu_tanh(x) if VM_F32_FMA else <float>gelu_tanh_f(<double>x)

cdef inline float silu_f32(float x) noexcept nogil:
    return vmf_silu(x) if VM_F32_FMA else <float>silu_f(<double>x)

cdef inline float silu_df32(float x) noexcept nogil:
    return vmf_silu_slope(x) if VM_F32_FMA else <float>silu_df(<double>x)

cdef inline float silu_df32_times(float x, float grad) noexcept nogil:
    return vmf_silu_slope_times(x, grad, 1) if VM_F32_FMA else <float>(grad * silu_df(<double>x))

cdef inline float softplus_f32(float x, float beta, float threshold) noexcept nogil:
    if VM_F32_FMA:
        return vmf_softplus(x, beta, threshold)
    return <float>softplus_f(<double>x, <double>beta, <double>threshold)

cdef inline float softplus_df32(float x, float beta, float threshold) noexcept nogil:
    if VM_F32_FMA:
        return vmf_softplus_slope_times(x, beta, threshold, 1, 0)
    return <float>softplus_df(<double>x, <double>beta, <double>threshold)

cdef inline float softplus_df32_times(float x, float grad, float beta,
                                      float threshold) noexcept nogil:
    if VM_F32_FMA:
        return vmf_softplus_slope_times(x, beta, threshold, grad, 1)
    return <float>(grad * softplus_df(<double>x, <double>beta, <double>threshold))

# hardswish and hardsigmoid: x + 3 (2x + 3) and the product as exact float pairs, the
# division by 6 by a reciprocal and an fma remainder (within 2^-20 ULP of the
# once-rounded result).  hardsigmoid is not a wide family: in the buffer's precision
# `(x + 3) / 6` would round x + 3 first, so its fallback is double like the others.
cdef inline float hardsigmoid_f32(float x) noexcept nogil:
    return vmf_hardsigmoid(x) if VM_F32_FMA else <float>hardsigmoid_f(<double>x)

cdef inline float hardswish_f32(float x) noexcept nogil:
    return vmf_hardswish(x) if VM_F32_FMA else <float>hardswish_f(<double>x)

cdef inline float hardswish_df32(float x) noexcept nogil:
    return vmf_hardswish_slope_times(x, 1) if VM_F32_FMA else <float>hardswish_df(<double>x)

cdef inline float hardswish_df32_times(float x, float grad) noexcept nogil:
    if VM_F32_FMA:
        return vmf_hardswish_slope_times(x, grad)
    return <float>(grad * hardswish_df(<double>x))

cdef inline float softsign_f32(float x) noexcept nogil:
    return vmf_softsign(x) if VM_F32_FMA else <float>softsign_f(<double>x)

# elu', selu' and celu' times grad: (scale alpha) e^x, or e^(x / alpha), times grad
# rounded once, the constant's exponent and grad's carried apart from their
# mantissas (vmf_exp_times), so that no intermediate overflows or underflows
# whatever alpha and grad are.
cdef inline float elu_df32_times(float x, float grad, float alpha) noexcept nogil:
    # the hoisted parts first, outside the select: GCC then lifts them out of the loop
    cdef float am = <float>vm_split_mantissa_hoisted(alpha)
    cdef int ea = vm_split_exponent_hoisted(alpha)
    cdef float x_zero = vmf_exp_zero_below_hoisted(alpha)
    cdef float r
    if VM_F32_FMA:
        r = vmf_exp_times(x, 0, grad, am, 0, ea, x_zero, INFINITY)
        return grad if x > 0 else r
    return <float>(grad * elu_df(<double>x, <double>alpha))

cdef inline float elu_df32(float x, float alpha) noexcept nogil:
    return elu_df32_times(x, 1, alpha)

# grad scale for x > 0 with scale as a float pair (one rounding of the product).
cdef inline float selu_df32_times(float x, float grad) noexcept nogil:
    cdef float scale_hi = <float>PYACT_SELU_SCALE
    cdef float scale_lo = <float>(PYACT_SELU_SCALE - <long double>scale_hi)
    cdef float am = <float>vm_split_mantissa_hoisted(PYACT_SELU_SCALED_ALPHA)
    cdef float am_lo = vmf_split_mantissa_lo_hoisted(PYACT_SELU_SCALED_ALPHA)
    cdef int ea = vm_split_exponent_hoisted(PYACT_SELU_SCALED_ALPHA)
    cdef float x_zero = vmf_exp_zero_below_hoisted(PYACT_SELU_SCALED_ALPHA)
    cdef float r
    if VM_F32_FMA:
        r = vmf_exp_times(x, 0, grad, am, am_lo, ea, x_zero, INFINITY)
        return vmf_times_pair(grad, scale_hi, scale_lo) if x > 0 else r
    return <float>(grad * selu_df(<double>x))

cdef inline float selu_df32(float x) noexcept nogil:
    return selu_df32_times(x, 1)

cdef inline float celu_df32_times(float x, float grad, float alpha) noexcept nogil:
    cdef float r
    if VM_F32_FMA:
        r = vmf_celu_slope_times(x, grad, alpha)
        return grad if x > 0 else r
    return <float>(grad * celu_df(<double>x, <double>alpha))

cdef inline float celu_df32(float x, float alpha) noexcept nogil:
    return celu_df32_times(x, 1, alpha)

# ---- float64 kernels in native double (K_<form>64) ------------------------------
#
# The loops call these for float64 data instead of the long double versions
# (see F64_NATIVE in kernels.pyx.tp).  They use the double-double building
# blocks of vmath.h where a step would otherwise lose bits, and add the
# rounding error of a scaled argument (beta x, x / alpha) to first order:
# f(z + dz) = f(z) + f'(z) dz.

# The rounding error of a * b, or 0 where it is meaningless (inf, NaN, huge).
# Where a * b underflows to 0 (the error too), the smallest subnormal with the
# product's sign: it decides a tie with a threshold of 0 the right way (fuzz:
# softplus(5e-324, beta=0.5, threshold=0) took the softplus branch, 1.386 for x),
# and is negligible as a correction.
cdef inline double _prod_err(double a, double b, double p) noexcept nogil:
    cdef double err
    vm_two_prod(a, b, &err)
    cdef bint lost = (p == 0) & (a != 0) & (b != 0)
    return vm_mulsign(vm_mulsign(4.9406564584124654e-324, a), b) if lost else (
        err if vm_abs(p) < 1e300 else 0.0)

cdef inline double sigmoid_f64(double x) noexcept nogil:
    return vm_sigmoid(x)

cdef inline double sigmoid_df64(double x) noexcept nogil:
    return vm_sigmoid_slope(x)

# y (1 - y) with the rounding of 1 - y (y < 1/2) kept.
cdef inline double sigmoid_dfy64(double y) noexcept nogil:
    cdef double wl
    cdef double w = vm_two_sum(1.0, -y, &wl)
    return vm_prod_plus(y, w, y * wl)


cdef inline double log_sigmoid_f64(double x) noexcept nogil:
    return -vm_softplus(-x)

cdef inline double log_sigmoid_df64(double x) noexcept nogil:
    return vm_sigmoid(-x)

cdef inline double log_sigmoid_dfy64(double y) noexcept nogil:
    return -vm_expm1(y)


cdef inline double tanh_f64(double x) noexcept nogil:
    return vm_tanh(x)

cdef inline double tanh_df64(double x) noexcept nogil:
    return vm_tanh_slope_times(x, 1)

cdef inline double tanh_df64_times(double x, double grad) noexcept nogil:
    return vm_tanh_slope_times(x, grad)

cdef inline double tanh_dfy64(double y) noexcept nogil:
    return (1 - y) * (1 + y)


cdef inline double elu_f64(double x, double alpha) noexcept nogil:
    return x if x >= 0 else alpha * vm_expm1_nonpos(w_min0_ge(x))

# alpha e^x rounded once: also where e^x alone underflows (a huge alpha); alpha's
# parts first, outside the select, so that GCC lifts them out of the loop
cdef inline double elu_df64(double x, double alpha) noexcept nogil:
    cdef double am = <double>vm_split_mantissa_hoisted(alpha)
    cdef double ea = vm_split_exponent_hoisted(alpha)
    cdef double r = vm_mul_exp_split(am, ea, w_min0(x))
    return 1 if x > 0 else r

cdef inline double elu_dfy64(double y, double alpha) noexcept nogil:
    return elu_dfy(y, alpha)


# scale * alpha as a double pair: (hi + lo) (h + l) with h + l = expm1 or exp.
cdef inline double _selu_scaled(double h, double l) noexcept nogil:
    cdef double hi = <double>PYACT_SELU_SCALED_ALPHA
    cdef double lo = PYACT_SELU_SCALED_ALPHA_DLO
    return vm_prod_plus(h, hi, h * lo + l * hi)

cdef inline double selu_f64(double x) noexcept nogil:
    cdef double lo
    cdef double h = vm_expm1_nonpos_dd(w_min0_ge(x), &lo)
    return <double>PYACT_SELU_SCALE * x if x >= 0 else _selu_scaled(h, lo)

# grad selu'(x) for x <= 0 is grad v s2, v = scale alpha e^x / s2 at the normal
# scale of vm_exp_parts (s2 a power of two).  Where the slope is subnormal
# (x < -700), grad joins before s2 rounds into the subnormal range (grad times the
# rounded subnormal slope was 4.07 ULP off on the baseline level); elsewhere v s2
# is exact and grad comes last, which cannot overflow early.
cdef inline double selu_df64_times(double x, double grad) noexcept nogil:
    cdef double eh, el, s1, s2
    vm_exp_parts(w_min0(x), &eh, &el, &s1, &s2)
    cdef double v = _selu_scaled(eh * s1, el * s1)
    cdef double neg = (v * grad) * s2 if (x >= -1400) & (x < -700) else (v * s2) * grad
    return grad * <double>PYACT_SELU_SCALE if x > 0 else neg

cdef inline double selu_df64(double x) noexcept nogil:
    return selu_df64_times(x, 1)

cdef inline double selu_dfy64(double y) noexcept nogil:
    return selu_dfy(y)


# z + dz = min(x, 0) / alpha as a double pair.
cdef inline double _celu_arg(double x, double alpha, double *dz) noexcept nogil:
    cdef double xm = w_min0(x)
    cdef double z = xm / alpha
    cdef double err
    cdef double p = vm_two_prod(z, alpha, &err)
    cdef double d = ((xm - p) - err) / alpha
    dz[0] = d if vm_abs(z) < 800 else 0.0
    return z

# With alpha < 0, x / alpha grows without bound: where e^(x/alpha) overflows,
# the result is the infinity p (or h) itself, which the correction terms
# (inf - inf) would turn into NaN.  Where |x / alpha| < 2^-60 (a huge alpha),
# alpha expm1(x / alpha) = x (1 + x / (2 alpha) + ...) rounds to x, while
# x / alpha itself may underflow.
cdef inline double celu_f64(double x, double alpha) noexcept nogil:
    cdef double dz, lo
    cdef double z = _celu_arg(x, alpha, &dz)
    cdef double h = vm_expm1_dd(z, &lo)
    cdef double p = alpha * h
    cdef double r = vm_prod_plus(alpha, h, alpha * (lo + (1 + h) * dz))
    cdef bint linear = (x > 0) | (vm_abs(z) < 8.673617379884035e-19)  # 2^-60
    return x if linear else (r if vm_abs(p) <= DBL_MAX else p)

cdef inline double celu_df64(double x, double alpha) noexcept nogil:
    cdef double dz, lo
    cdef double z = _celu_arg(x, alpha, &dz)
    cdef double h = vm_exp_dd(z, &lo)
    return 1 if x > 0 else (h + (lo + h * dz) if h <= DBL_MAX else h)

cdef inline double celu_dfy64(double y, double alpha) noexcept nogil:
    return celu_dfy(y, alpha)


# x sigmoid(x); below -700 sigmoid(x) = e^x to 2^-1000 and x e^x is rounded
# once (it underflows gradually where e^x alone would already be subnormal).
cdef inline double silu_f64(double x) noexcept nogil:
    cdef double xc = w_clamp(x, <double>SILU_ZERO_BELOW) if x < 0 else x
    cdef double lo, eh, el, s1, s2
    cdef double h = vm_sigmoid_parts_dd(x, &lo, &eh, &el, &s1, &s2)
    cdef double r = xc * h
    r = r + xc * lo if x < 1e300 else r
    # x e^x rounded once below -700, from sigmoid's e^-|x| (x = xc there)
    cdef double tiny = vm_mul_exp_parts(xc, eh, el, s1, s2) if xc > -760 else xc * 0.0
    return tiny if xc < -700 else r


# Whether the exact beta x = b + db is above t.
# (b > t) | ((b == t) & (db > 0)) written as one comparison so that it stays a
# select: on a tie, nudge b by db (|db| >= 2^-106 |b| unless 0, so 2^60 db moves
# t + 2^60 db off t in db's direction).  No `db > 0` test: GCC would fold it with
# _prod_err's select into a select of booleans (a 1-byte mask type), leaving no
# vector type for the double loads ("no vectype for stmt"), and the softplus
# float64 loops would not vectorise.
cdef inline bint _above(double b, double db, double t) noexcept nogil:
    return b + (0.0 if b != t else db) * 1152921504606846976.0 > t

# softplus(beta x) / beta with beta x = b + db, softplus(b + db) = softplus(b) + sigmoid(b) db.
# A tiny beta can take the quotient beyond the double range: q = inf is the
# result then (its correction qlo is NaN).
cdef inline double softplus_f64(double x, double beta, double threshold) noexcept nogil:
    cdef double b = beta * x
    cdef double db = _prod_err(beta, x, b)
    cdef double lo, qlo
    cdef double h = vm_softplus_dd(b, &lo)
    cdef double q = vm_dd_div(h, lo + vm_sigmoid(b) * db, beta, 0.0, &qlo)
    return x if _above(b, db, threshold) else (q + qlo if vm_abs(q) <= DBL_MAX else q)

cdef inline double softplus_df64(double x, double beta, double threshold) noexcept nogil:
    cdef double b = beta * x
    cdef double db = _prod_err(beta, x, b)
    cdef double lo
    cdef double h = vm_sigmoid_dd(b, &lo)
    return 1 if _above(b, db, threshold) else h + (lo + h * (1 - h) * db)

# 1 - e^(-beta y) = -expm1(-b - db) = -expm1(-b) + e^(-b) db.
cdef inline double softplus_dfy64(double y, double beta, double threshold) noexcept nogil:
    cdef double b = beta * y
    cdef double db = _prod_err(beta, y, b)
    cdef double lo
    cdef double h = vm_expm1_dd(-b, &lo)
    cdef double limit_lo = vm_softplus_lo_hoisted(threshold)
    cdef double above = (b - vm_softplus_hi_hoisted(threshold)) + (db - limit_lo)
    return 1 if above > 0 else -h + ((1 + h) * db - lo)


# gelu (both forms), silu', mish in double (vmath.h): the products and sums formed
# in double pairs, tiny results rounded once, and the derivatives with a zero
# (gelu, gelu tanh, silu, mish) switched to d q(d) near it.  Measured max ULP
# (1.3M samples over the whole range, plus the dense sweeps of tests/test_vmath.py):
# gelu 1.09 / gelu' 2.05 (at the edge of the near-zero window), gelu tanh 1.67
# (x ~ -21, where v < -700) / gelu tanh' 1.87, silu' 1.72, mish 1.40 / mish' 1.91.
cdef inline double gelu_none_f64(double x) noexcept nogil:
    return vm_gelu(x)

cdef inline double gelu_none_df64(double x) noexcept nogil:
    return vm_gelu_d(x)

cdef inline double gelu_tanh_f64(double x) noexcept nogil:
    return vm_gelu_tanh(x)

cdef inline double gelu_tanh_df64(double x) noexcept nogil:
    return vm_gelu_tanh_d(x)

cdef inline double silu_df64(double x) noexcept nogil:
    return vm_silu_d(x)

cdef inline double mish_f64(double x) noexcept nogil:
    return vm_mish(x)

cdef inline double mish_df64(double x) noexcept nogil:
    return vm_mish_d(x)


cdef inline double tanhshrink_f64(double x) noexcept nogil:
    return vm_tanhshrink(x)

cdef inline double tanhshrink_df64(double x) noexcept nogil:
    cdef double t = vm_tanh(x)
    return t * t


cdef inline double softsign_f64(double x) noexcept nogil:
    return softsign_f(x)

# grad r^2 rounded once, r = 1 / (1 + |x|) as a double pair r + rl (1 + |x| an exact
# pair; one division: vm_dd_div_moderate, whose 1 <= d <= 2^900 holds where p + pl is
# used, the larger d of the other path measured with the rest) and r^2 = p + pl: an fma
# of grad and the pair (a product and a sum without an FMA).  The pair is exact while
# r^2 >= 2^-968 (PYACT_SOFTSIGN_PAIR_BELOW); beyond, w = grad r rounded, then
# w r + w 2 rl rounded once: w is below the normal range only where the result rounds
# to 0 (r <= 2^-484).  (grad r) r, with the
# rounding of r twice over, was 2.84 ULP off.  Where that gives NaN from non-NaN
# inputs (an infinite grad times a zero correction term; rl itself is NaN at |x| =
# inf), (grad r) r is the limit: inf, or grad 0 at |x| = inf; where it gives 0, the
# zero of (grad r) r has grad's sign (a correction term's +0 plus -0 is +0).  This
# keeps softsign out of the long double fix-up of tiny slopes (F64_WIDE_FIXUP),
# whose masks and tiles took about a third of the backward's time.
cdef inline double softsign_df64_times(double x, double grad) noexcept nogil:
    cdef double dl, rl, pe
    cdef double d = vm_two_sum(1.0, vm_abs(x), &dl)
    cdef double r = vm_dd_div_moderate(1.0, 0.0, d, dl, &rl)
    cdef double p = vm_two_prod(r, r, &pe)
    cdef double pl = pe + 2 * r * rl
    cdef double w = grad * r
    cdef double res = (VM_FMA(grad, p, grad * pl) if vm_abs(x) < PYACT_SOFTSIGN_PAIR_BELOW
                       else VM_FMA(w, r, w * (rl + rl)))
    return res if vm_abs(res) > 0 else w * r   # not for NaN or 0

# the times form itself, so that backward(1, x) is derivative(x) bit for bit
cdef inline double softsign_df64(double x) noexcept nogil:
    return softsign_df64_times(x, 1)

cdef inline double softsign_dfy64(double y) noexcept nogil:
    return softsign_dfy(y)


cdef inline double hardswish_f64(double x) noexcept nogil:
    return hardswish_f(x)

cdef inline double hardswish_df64(double x) noexcept nogil:
    return hardswish_df(x)


# ---- exact families (floating) ----------------------------------------------

cdef inline floating relu_f(floating x) noexcept nogil:
    return 0 if x <= 0 else x

cdef inline floating relu_df(floating x) noexcept nogil:
    return keep_nan(x, <floating>1 if x > 0 else <floating>0)   # as hardtanh_df

cdef inline floating relu_dfy(floating y) noexcept nogil:
    return keep_nan(y, <floating>1 if y > 0 else <floating>0)


cdef inline floating hardtanh_f(floating x, floating min_val, floating max_val) noexcept nogil:
    return min_val if x <= min_val else (max_val if x >= max_val else x)

cdef inline floating hardtanh_df(floating x, floating min_val, floating max_val) noexcept nogil:
    # a select of constants, not a cast of the int mask: float64 loops then keep the
    # mask in double lanes instead of narrowing it to 32-bit ints and converting back
    return keep_nan(x, <floating>1 if ((x > min_val) & (x < max_val)) else <floating>0)

cdef inline floating hardtanh_dfy(floating y, floating min_val, floating max_val) noexcept nogil:
    return hardtanh_df(y, min_val, max_val)


cdef inline floating relu6_f(floating x) noexcept nogil:
    return hardtanh_f(x, <floating>0, <floating>6)

cdef inline floating relu6_df(floating x) noexcept nogil:
    return hardtanh_df(x, <floating>0, <floating>6)

cdef inline floating relu6_dfy(floating y) noexcept nogil:
    return hardtanh_df(y, <floating>0, <floating>6)


# A zero slope at x = -inf gives the limit 0 (as -0.0, like every other x < 0),
# not 0 * inf = NaN: x is clamped to the type's finite range first, a bound the
# loop hoists (a finite nonzero slope keeps -inf, whose product is right).
cdef inline floating leaky_relu_f(floating x, floating negative_slope) noexcept nogil:
    cdef floating most = FLT_MAX if floating is float else DBL_MAX
    cdef floating bound = -most if negative_slope == 0 else -<floating>INFINITY
    return x if x > 0 else (bound if x < bound else x) * negative_slope   # NaN: x < bound is false

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
    return keep_nan(x, <floating>1 if ((x > lambd) | (x < -lambd)) else <floating>0)   # as hardtanh_df

cdef inline floating hardshrink_dfy(floating y, floating lambd) noexcept nogil:
    return keep_nan(y, <floating>1 if y != 0 else <floating>0)


# x - clamp(x, -lambd, lambd): x - lambd, x + lambd, or x - x = +0 in the band (a
# min and a max); NaN passes the clamp and stays NaN.  But +0 (or NaN) for every x
# where lambd is inf (a float64 lambd beyond float32's range): the band then holds
# +-inf too, and inf - inf is NaN (tools/fuzz.py).  lambd is the same for the
# whole loop, which GCC unswitches on that test (selects per element cost 1.1-1.2x).
cdef inline floating softshrink_f(floating x, floating lambd) noexcept nogil:
    if lambd == INFINITY:
        return keep_nan(x, <floating>0)
    return x - (lambd if x > lambd else (-lambd if x < -lambd else x))

cdef inline floating softshrink_df(floating x, floating lambd) noexcept nogil:
    return hardshrink_df(x, lambd)

cdef inline floating softshrink_dfy(floating y, floating lambd) noexcept nogil:
    return hardshrink_dfy(y, lambd)


cdef inline floating threshold_f(floating x, floating threshold, floating value) noexcept nogil:
    return value if x <= threshold else x

cdef inline floating threshold_df(floating x, floating threshold, floating value) noexcept nogil:
    return keep_nan(x, <floating>1 if x > threshold else <floating>0)

cdef inline floating threshold_dfy(floating y, floating threshold, floating value) noexcept nogil:
    return keep_nan(y, <floating>1 if y > threshold else <floating>0)
