/* Vectorisable math for pyact's transcendental kernels.

   Every function here is static inline, branch-free (selects only), calls no
   libm function and uses no table, so that GCC vectorises the loops that
   call it (SSE2 on baseline x86-64, AVX2 + FMA on x86-64-v3, AVX-512 on
   x86-64-v4).  Bit reinterpretation goes through memcpy, rounding to an
   integer through the 1.5 * 2^52 "magic number" add; no fmin/fmax (they drop
   NaN): clamps are comparisons, through which NaN falls.

   Two families:
   * vm_*_d32: double-precision arithmetic with float32-grade polynomials
     (relative error ~2^-33), for the float32 kernels, which evaluate in double
     and round once at the end (total error 0.5 ULP + ~2^-8 ULP of float32).
   * vm_*: float64 kernels in plain double.  The building blocks return
     unevaluated sums hi + lo (double-double) where a following step would
     otherwise lose bits, and the error-free transformations use a hardware
     fma when the target has one (__FMA__: x86-64-v3/v4) and Veltkamp/Dekker
     splitting otherwise, so baseline x86-64 never calls the slow software
     fma().  (Without __FMA__ the compiler cannot contract a*b+c either, so the
     splitting is not disturbed by -ffp-contract.)

   Measured max errors (tests/test_vmath.py: ULP of the float64 result against
   long double NumPy, 200k-400k samples over the whole range incl. subnormal
   results):
     vm_exp 0.74   vm_expm1 0.80   vm_log1p_01 0.85   vm_sigmoid 0.74
     vm_sigmoid_slope 0.74   vm_tanh 0.67   vm_softplus 0.75   vm_tanhshrink 1.53
   and of the float32-grade ones, as relative error in double on sweeps of
   float32 inputs: exp 2^-37.8, expm1 2^-36.0, log1p 2^-33.6, tanh 2^-36.3
   (the float32 kernels built on them: <= 0.5 + 2^-9 ULP, see python -m pyact check).
   Polynomial coefficients: csrc/vmath_coeffs.h, fitted by tools/fit_vmath.py.
*/
#ifndef PYACT_VMATH_H
#define PYACT_VMATH_H

#include <stdint.h>
#include <string.h>
#include "vmath_coeffs.h"

/* ln2 = VM_LN2_HI + VM_LN2_LO, the high part with 42 significant bits so that
   k * VM_LN2_HI is exact for |k| < 2^11; 1/ln2; ln2 as a double pair. */
#define VM_LN2_HI 0x1.62e42fefa3800p-1
#define VM_LN2_LO 0x1.ef35793c76730p-45
#define VM_INV_LN2 0x1.71547652b82fep+0
#define VM_LN2 0x1.62e42fefa39efp-1
#define VM_LN2_TAIL 0x1.abc9e3b39803fp-56
#define VM_MAGIC 0x1.8p52

static inline uint64_t vm_bits(double x) { uint64_t u; memcpy(&u, &x, sizeof u); return u; }
static inline double vm_double(uint64_t u) { double x; memcpy(&x, &u, sizeof x); return x; }

static inline double vm_abs(double x) { return vm_double(vm_bits(x) & 0x7fffffffffffffffULL); }
/* x with its sign flipped where s is negative (or -0, -NaN). */
static inline double vm_mulsign(double x, double s)
{
    return vm_double(vm_bits(x) ^ (vm_bits(s) & 0x8000000000000000ULL));
}
static inline double vm_copysign(double x, double s)
{
    return vm_double((vm_bits(x) & 0x7fffffffffffffffULL) | (vm_bits(s) & 0x8000000000000000ULL));
}
/* Clamp into [lo, hi]; NaN passes through. */
static inline double vm_clamp(double x, double lo, double hi)
{
    x = x < lo ? lo : x;
    return x > hi ? hi : x;
}

/* ---- error-free transformations ---------------------------------------- */

static inline double vm_two_sum(double a, double b, double *err)
{
    double s = a + b;
    double bb = s - a;
    *err = (a - (s - bb)) + (b - bb);
    return s;
}

/* requires |a| >= |b| (or a == 0) */
static inline double vm_fast_two_sum(double a, double b, double *err)
{
    double s = a + b;
    *err = b - (s - a);
    return s;
}

/* a * b = p + err exactly (no overflow; |a b| well above the underflow). */
static inline double vm_two_prod(double a, double b, double *err)
{
    double p = a * b;
#ifdef __FMA__
    *err = __builtin_fma(a, b, -p);
#else
    const double split = 134217729.0; /* 2^27 + 1 */
    double ca = split * a, cb = split * b;
    double ah = ca - (ca - a), bh = cb - (cb - b);
    double al = a - ah, bl = b - bh;
    *err = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
#endif
    return p;
}

/* (nh + nl) / (dh + dl) to about 2^-104 relative, as q + *ql. */
static inline double vm_dd_div(double nh, double nl, double dh, double dl, double *ql)
{
    double q = nh / dh, pe;
    double p = vm_two_prod(q, dh, &pe);
    double r = (((nh - p) - pe) + nl) - q * dl;
    *ql = r / dh;
    return q;
}

/* ---- exp ------------------------------------------------------------------ */

/* e^x = s1 * s2 * (hi + lo), hi + lo = e^r with |r| <= ln2/2 to ~2^-60.
   x is clamped to [-1400, 710] (beyond, e^x rounds to 0 / overflows in every
   step that uses it); NaN passes through and gives NaN hi.  s1, s2 are powers
   of two that are both normal for every k in [-2020, 1024], so that
   (v * s1) * s2 rounds only once, also into the subnormal range. */
static inline void vm_exp_parts(double x, double *hi, double *lo, double *s1, double *s2)
{
    x = vm_clamp(x, -1400.0, 710.0);
    double t = x * VM_INV_LN2 + VM_MAGIC;
    double kd = t - VM_MAGIC;
    int64_t k = (int64_t)(vm_bits(t) - vm_bits(VM_MAGIC));
    double th = kd * 0.5 + VM_MAGIC;
    int64_t k1 = (int64_t)(vm_bits(th) - vm_bits(VM_MAGIC));
    int64_t k2 = k - k1;
    *s1 = vm_double((uint64_t)(k1 + 1023) << 52);
    *s2 = vm_double((uint64_t)(k2 + 1023) << 52);
    double rh = x - kd * VM_LN2_HI; /* exact */
    double rl = kd * -VM_LN2_LO;
    double r = rh + rl;
    double rerr = (rh - r) + rl;
    double g = VM_EXPD_10;
    g = g * r + VM_EXPD_9; g = g * r + VM_EXPD_8; g = g * r + VM_EXPD_7;
    g = g * r + VM_EXPD_6; g = g * r + VM_EXPD_5; g = g * r + VM_EXPD_4;
    g = g * r + VM_EXPD_3; g = g * r + VM_EXPD_2; g = g * r + VM_EXPD_1;
    g = g * r + VM_EXPD_0;
    double p = (r * r) * g + (rerr + rerr * r);
    double e1;
    double a = vm_fast_two_sum(1.0, r, &e1);
    double b = e1 + p;
    *hi = vm_fast_two_sum(a, b, lo);
}

/* e^x, gradual underflow, overflow to +inf, NaN kept.  0.51 ULP. */
static inline double vm_exp(double x)
{
    double hi, lo, s1, s2;
    vm_exp_parts(x, &hi, &lo, &s1, &s2);
    return ((hi + lo) * s1) * s2;
}

/* c * e^x rounded once, also where e^x alone would underflow (|c| < 2^60). */
static inline double vm_mul_exp(double c, double x)
{
    double hi, lo, s1, s2;
    vm_exp_parts(x, &hi, &lo, &s1, &s2);
    return ((c * hi + c * lo) * s1) * s2;
}

/* e^x as hi + *lo (lo meaningful where the result is normal). */
static inline double vm_exp_dd(double x, double *lo)
{
    double hi, l, s1, s2;
    vm_exp_parts(x, &hi, &l, &s1, &s2);
    *lo = (l * s1) * s2;
    return (hi * s1) * s2;
}

/* e^x - 1 as hi + *lo, relative accuracy ~2^-60 also for tiny |x|. */
static inline double vm_expm1_dd(double x, double *lo)
{
    double hi, l, s1, s2, e;
    vm_exp_parts(x, &hi, &l, &s1, &s2);
    double h = (hi * s1) * s2, hl = (l * s1) * s2;
    double s = vm_two_sum(h, -1.0, &e);
    e += hl;
    int big = h > 0x1p1000;   /* large x: e^x - 1 = e^x, and h - 1 may be inf - 1 */
    double r = vm_fast_two_sum(s, e, lo);
    *lo = big ? 0.0 : *lo;
    return big ? h : r;
}

static inline double vm_expm1(double x)
{
    double lo;
    double hi = vm_expm1_dd(x, &lo);
    return hi + lo;
}

/* ---- log1p on [0, 1] --------------------------------------------------------- */

/* log(1 + u) for u in [0, 1] (or NaN) as hi + *lo, ~2^-62 absolute.
   u >= 1/2: log1p(u) = ln2 + log1p(w), w = (u - 1)/2 in [-1/4, 0] (exact);
   log1p(w) = 2 s + s^3 h(s^2), s = w / (2 + w) in [-1/7, 1/5] as a double pair. */
static inline double vm_log1p_01_dd(double u, double *lo)
{
    int big = u >= 0.5;
    double w = big ? (u - 1.0) * 0.5 : u;
    double dl;
    double dh = vm_fast_two_sum(2.0, w, &dl);
    double sl;
    double s = vm_dd_div(w, 0.0, dh, dl, &sl);
    double z = s * s;
    double h = VM_LOGD_8;
    h = h * z + VM_LOGD_7; h = h * z + VM_LOGD_6; h = h * z + VM_LOGD_5;
    h = h * z + VM_LOGD_4; h = h * z + VM_LOGD_3; h = h * z + VM_LOGD_2;
    h = h * z + VM_LOGD_1; h = h * z + VM_LOGD_0;
    /* 2s = w - s w exactly, so log1p(w) = w - (s + sl) w + s^3 h: tiny w stays exact */
    double tail = ((s * z) * h - s * w) - sl * w;
    double c = big ? VM_LN2 : 0.0, cl = big ? VM_LN2_TAIL : 0.0;
    double e;
    double r = vm_two_sum(c, w, &e);
    e += tail + cl;
    return vm_fast_two_sum(r, e, lo);
}

/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|), no overflow.  0.55 ULP. */
static inline double vm_softplus_dd(double x, double *lo)
{
    double el;
    double e = vm_exp_dd(-vm_abs(x), &el);
    double ll;
    double l = vm_log1p_01_dd(e, &ll);
    ll += el / (1.0 + e);
    double m = x < 0 ? 0.0 : x;   /* NaN: e is NaN and carries it */
    double err;
    double r = vm_two_sum(m, l, &err);
    err += ll;
    r = vm_fast_two_sum(r, err, lo);
    int huge = x > 0x1p60;   /* log1p(e^-x) < 2^-60 x: the result is x (also for inf) */
    *lo = huge ? 0.0 : *lo;
    return huge ? x : r;
}

static inline double vm_softplus(double x)
{
    double lo;
    double hi = vm_softplus_dd(x, &lo);
    return hi + lo;
}

/* ---- sigmoid ------------------------------------------------------------------- */

/* sigmoid(x) = 1/(1 + e) or e/(1 + e), e = e^-|x|, as hi + *lo.  0.51 ULP. */
static inline double vm_sigmoid_dd(double x, double *lo)
{
    double el, sl;
    double e = vm_exp_dd(-vm_abs(x), &el);
    double s = vm_fast_two_sum(1.0, e, &sl);
    sl += el;
    int pos = x >= 0;
    return vm_dd_div(pos ? 1.0 : e, pos ? 0.0 : el, s, sl, lo);
}

static inline double vm_sigmoid(double x)
{
    double lo;
    double hi = vm_sigmoid_dd(x, &lo);
    return hi + lo;
}

/* sigmoid'(x) = q (1 - q), q = sigmoid(-|x|) in [0, 1/2], as hi + *lo. */
static inline double vm_sigmoid_slope_dd(double x, double *lo)
{
    double ql, wl, pe;
    double q = vm_sigmoid_dd(-vm_abs(x), &ql);
    double w = vm_fast_two_sum(1.0, -q, &wl);
    wl -= ql;
    double p = vm_two_prod(q, w, &pe);
    pe += q * wl + ql * w;
    return vm_fast_two_sum(p, pe, lo);
}

static inline double vm_sigmoid_slope(double x)
{
    double lo;
    double hi = vm_sigmoid_slope_dd(x, &lo);
    return hi + lo;
}

/* ---- tanh ------------------------------------------------------------------------ */

/* tanh(x) = -m / (2 + m), m = expm1(-2|x|), sign of x; as hi + *lo.  0.51 ULP. */
static inline double vm_tanh_dd(double x, double *lo)
{
    double ml, dl;
    double m = vm_expm1_dd(-2.0 * vm_abs(x), &ml);
    double d = vm_fast_two_sum(2.0, m, &dl);
    dl += ml;
    double ql;
    double q = vm_dd_div(-m, -ml, d, dl, &ql);
    *lo = vm_mulsign(ql, x);
    return vm_mulsign(q, x);
}

static inline double vm_tanh(double x)
{
    double lo;
    double hi = vm_tanh_dd(x, &lo);
    return hi + lo;
}

/* x - tanh(x): x^3 k(x^2) (k(0) = 1/3) for |x| <= 0.625, else x - (tanh hi + lo). */
static inline double vm_tanhshrink(double x)
{
    double z = x * x;
    double k = VM_TANHSHRINKD_13;
    k = k * z + VM_TANHSHRINKD_12; k = k * z + VM_TANHSHRINKD_11; k = k * z + VM_TANHSHRINKD_10;
    k = k * z + VM_TANHSHRINKD_9; k = k * z + VM_TANHSHRINKD_8; k = k * z + VM_TANHSHRINKD_7;
    k = k * z + VM_TANHSHRINKD_6; k = k * z + VM_TANHSHRINKD_5; k = k * z + VM_TANHSHRINKD_4;
    k = k * z + VM_TANHSHRINKD_3; k = k * z + VM_TANHSHRINKD_2; k = k * z + VM_TANHSHRINKD_1;
    /* x^3 / 3 + x^3 z k1(z), k1(z) = (k(z) - k(0)) / z, with x^3 as a double pair */
    double zl, pl;
    double zz = vm_two_prod(x, x, &zl);
    double p = vm_two_prod(x, zz, &pl);
    pl += x * zl;
    double small = p / 3.0 + (pl / 3.0 + (p * z) * k);
    double tl;
    double t = vm_tanh_dd(x, &tl);
    double big = (x - t) - tl;
    return vm_abs(x) <= 0.625 ? small : big;
}

/* ---- float64 derivatives near their zeros ------------------------------------------- */

/* f'(x) = d q(d) with d = x - x0 = dh - X0_LO, dh = x - X0_HI exact for |d| <= 1/4
   (Sterbenz); q fitted on |d| <= 1/4 by tools/fit_vmath.py, and the product formed
   as dh q - X0_LO q with dh q exact, so that the rounding of d does not count even
   at the zero.  The direct formulas cancel there (f' is a difference of terms
   ~0.2-0.5).  The caller selects it where vm_abs(x - X0_HI) < W.  Measured (dense
   sweeps, tests/test_vmath.py): see the callers in csrc/scalar.pxi. */
#define VM_NEAR_ZERO(P, x) do { \
        double dh_ = (x) - P##_X0_HI, pe_; \
        double q_ = P##_POLY(dh_ - P##_X0_LO); \
        double ph_ = vm_two_prod(dh_, q_, &pe_); \
        return ph_ + (pe_ - P##_X0_LO * q_); \
    } while (0)

static inline double vm_gelu_d_near0(double x) { VM_NEAR_ZERO(VM_GELUD0, x); }
static inline double vm_gelu_tanh_d_near0(double x) { VM_NEAR_ZERO(VM_GELUTD0, x); }
static inline double vm_silu_d_near0(double x) { VM_NEAR_ZERO(VM_SILUD0, x); }
static inline double vm_mish_d_near0(double x) { VM_NEAR_ZERO(VM_MISHD0, x); }

/* ---- float32-grade versions (double arithmetic, ~2^-32 relative) ------------------ */

static inline double vm_exp_d32(double x)
{
    x = vm_clamp(x, -1400.0, 710.0);
    double t = x * VM_INV_LN2 + VM_MAGIC;
    double kd = t - VM_MAGIC;
    int64_t k = (int64_t)(vm_bits(t) - vm_bits(VM_MAGIC));
    double th = kd * 0.5 + VM_MAGIC;
    int64_t k1 = (int64_t)(vm_bits(th) - vm_bits(VM_MAGIC));
    double s1 = vm_double((uint64_t)(k1 + 1023) << 52);
    double s2 = vm_double((uint64_t)(k - k1 + 1023) << 52);
    double r = (x - kd * VM_LN2_HI) - kd * VM_LN2_LO;
    double g = VM_EXPF_6;
    g = g * r + VM_EXPF_5; g = g * r + VM_EXPF_4; g = g * r + VM_EXPF_3;
    g = g * r + VM_EXPF_2; g = g * r + VM_EXPF_1; g = g * r + VM_EXPF_0;
    double q = r + (r * r) * g;
    return ((1.0 + q) * s1) * s2;
}

/* e^x - 1: the polynomial itself where k = 0 (keeps tiny x exact-relative). */
static inline double vm_expm1_d32(double x)
{
    x = vm_clamp(x, -1400.0, 710.0);
    double t = x * VM_INV_LN2 + VM_MAGIC;
    double kd = t - VM_MAGIC;
    int64_t k = (int64_t)(vm_bits(t) - vm_bits(VM_MAGIC));
    double th = kd * 0.5 + VM_MAGIC;
    int64_t k1 = (int64_t)(vm_bits(th) - vm_bits(VM_MAGIC));
    double s1 = vm_double((uint64_t)(k1 + 1023) << 52);
    double s2 = vm_double((uint64_t)(k - k1 + 1023) << 52);
    double r = (x - kd * VM_LN2_HI) - kd * VM_LN2_LO;
    double g = VM_EXPF_6;
    g = g * r + VM_EXPF_5; g = g * r + VM_EXPF_4; g = g * r + VM_EXPF_3;
    g = g * r + VM_EXPF_2; g = g * r + VM_EXPF_1; g = g * r + VM_EXPF_0;
    double q = r + (r * r) * g;
    double big = ((1.0 + q) * s1) * s2 - 1.0;
    return kd == 0.0 ? q : big;
}

/* log1p(u) for u in [0, 1] (or NaN). */
static inline double vm_log1p_01_d32(double u)
{
    int big = u >= 0.5;
    double w = big ? (u - 1.0) * 0.5 : u;
    double s = w / (2.0 + w);
    double z = s * s;
    double h = VM_LOGF_3;
    h = h * z + VM_LOGF_2; h = h * z + VM_LOGF_1; h = h * z + VM_LOGF_0;
    return (big ? VM_LN2 : 0.0) + (2.0 * s + (s * z) * h);
}

/* tanh via expm1: -m / (2 + m), m = expm1(-2|x|). */
static inline double vm_tanh_d32(double x)
{
    double m = vm_expm1_d32(-2.0 * vm_abs(x));
    return vm_copysign(-m / (2.0 + m), x);
}

#endif
