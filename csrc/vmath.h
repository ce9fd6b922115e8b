/* Vectorisable math for pyact's transcendental kernels.

   Every function here is static inline, branch-free (selects only), calls no
   libm function (but the loop invariants at the end, computed once per call)
   and uses no table, so that GCC vectorises the loops that call it (SSE2 on
   baseline x86-64, AVX2 + FMA on x86-64-v3, AVX-512 on x86-64-v4).  Bit
   reinterpretation goes through memcpy, rounding to an integer through the
   1.5 * 2^52 "magic number" add; no fmin/fmax (they drop NaN): clamps are
   comparisons, through which NaN falls.

   Three families:
   * vm_*_d32: double-precision arithmetic with float32-grade polynomials
     (relative error ~2^-33), for the float32 kernels, which evaluate in double
     and round once at the end (total error 0.5 ULP + ~2^-8 ULP of float32).
   * vmf_*: float arithmetic with fmaf, for the float32 kernels of the sigmoid
     and tanh families and a few others (F32_NATIVE in kernels.pyx.tp) on
     levels with a hardware FMA (twice the lanes of double; within 1.11 ULP,
     gelu's tanh form 1.13, tanh 1.50, silu' 1.78 (2.31 times grad): see their
     section).
   * vm_*: float64 kernels in plain double.  The building blocks return
     unevaluated sums hi + lo (double-double) where a following step would
     otherwise lose bits, and the error-free transformations use a hardware
     fma when the target has one (VM_HAS_FMA: x86-64-v3/v4, every aarch64) and
     Veltkamp/Dekker splitting otherwise, so baseline x86-64 never calls the slow
     software fma().  (Without an FMA the compiler cannot contract a*b+c either, so
     the splitting is not disturbed by -ffp-contract.)

   Measured max errors (tests/test_vmath.py: ULP of the float64 result against
   long double NumPy, 200k-400k samples over the whole range incl. subnormal
   results):
     vm_exp 0.74   vm_expm1 0.80   vm_expm1_nonpos 0.52   vm_log1p_01 0.85
     vm_sigmoid 0.74   vm_sigmoid_slope 0.74   vm_tanh 0.53   vm_softplus 0.75
     vm_tanhshrink 1.53
   and of the float32-grade ones, as relative error in double on sweeps of
   float32 inputs: exp 2^-37.8, expm1 2^-36.0, log1p 2^-33.6, tanh 2^-36.3
   (the float32 kernels built on them: <= 0.5 + 2^-9 ULP, see python -m pyact check).
   Polynomial coefficients: csrc/vmath_coeffs.h, fitted by tools/fit_vmath.py.

   Inlining: _kernels.c is one large translation unit, and under GCC's default
   growth limits (large-function-growth, inline-unit-growth) some of these helpers,
   or the Cython wrappers around them, stay out of line in some loops, which then
   call them per element and do not vectorise (sigmoid float32 9.2 ns/element
   instead of 1.4).  Forcing always_inline here only moves the problem to the
   wrappers; setup.py raises the two limits instead (INLINE_GROWTH).
*/
#ifndef PYACT_VMATH_H
#define PYACT_VMATH_H

#include <float.h>
#include <math.h>    /* frexpl, log, exp: only in the hoisted functions at the end */
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

/* a * b + c in Horner steps: one rounding where the level has an FMA (fewer
   operations, and never less accurate than the two roundings of a * b + c, to
   which the bounds below were measured); -ffp-contract=off would not fuse it. */
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define VM_HAS_FMA 1
#else
#define VM_HAS_FMA 0
#endif
#if VM_HAS_FMA
#define VM_FMA(a, b, c) __builtin_fma((a), (b), (c))
#else
#define VM_FMA(a, b, c) ((a) * (b) + (c))
#endif
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
#if VM_HAS_FMA
    *err = __builtin_fma(a, b, -p);
#else
    /* Veltkamp's split (split * a) overflows for |a| > 2^996 although a * b
       may not: such an operand is split scaled by 2^-54 and the error scaled
       back, both exactly (as on the FMA levels; celu with a negative alpha
       was NaN here for results near the double range). */
    const double split = 134217729.0; /* 2^27 + 1 */
    int big_a = vm_abs(a) > 0x1p995, big_b = vm_abs(b) > 0x1p995;
    double as = big_a ? a * 0x1p-54 : a, bs = big_b ? b * 0x1p-54 : b;
    double ps = as * bs;
    double ca = split * as, cb = split * bs;
    double ah = ca - (ca - as), bh = cb - (cb - bs);
    double al = as - ah, bl = bs - bh;
    double e = ((ah * bh - ps) + ah * bl + al * bh) + al * bl;
    *err = e * (big_a ? 0x1p54 : 1.0) * (big_b ? 0x1p54 : 1.0);
#endif
    return p;
}

/* a b + c rounded once, c a correction far below a b (the low parts of a pair
   product): one fma where the level has one (never less accurate than the pair,
   and 3 operations fewer); elsewhere two_prod's pair, c joining its error term. */
static inline double vm_prod_plus(double a, double b, double c)
{
#if VM_HAS_FMA
    return __builtin_fma(a, b, c);
#else
    double pe, p = vm_two_prod(a, b, &pe);
    return p + (pe + c);
#endif
}

/* (nh + nl) - q (dh + dl) for a quotient q within a few ulp of nh / dh: nh - q dh
   exactly, the low parts to first order.  With an FMA, nh - q dh is one fma: the
   same value as (nh - p) - pe (q dh = p + pe; nh - p is exact), each being the exact
   remainder rounded once, in two fewer operations. */
static inline double vm_dd_div_remainder(double q, double nh, double nl, double dh, double dl)
{
#if VM_HAS_FMA
    return (__builtin_fma(-q, dh, nh) + nl) - q * dl;
#else
    double pe;
    double p = vm_two_prod(q, dh, &pe);
    return (((nh - p) - pe) + nl) - q * dl;
#endif
}

/* (nh + nl) / (dh + dl) to about 2^-104 relative, as q + *ql. */
static inline double vm_dd_div(double nh, double nl, double dh, double dl, double *ql)
{
    double q = nh / dh;
    *ql = vm_dd_div_remainder(q, nh, nl, dh, dl) / dh;
    return q;
}

/* vm_dd_div for 1 <= dh <= 2^900 (denominators such as 1 + e) with one division
   instead of two (the float64 sigmoid and tanh families ran 0.92-0.98x the time).
   q = nh (1/dh) is within 2 ulp of nh / dh, so nh - q dh is still exact and the
   pair as accurate; 1/dh stays normal.  A division-free 1/dh (polynomial seed and
   a Newton step) was slower, 1.06-1.30x: the divider works beside the vector
   ports, which these loops keep busy. */
static inline double vm_dd_div_moderate(double nh, double nl, double dh, double dl, double *ql)
{
    double inv = 1.0 / dh;
    double q = nh * inv;
    *ql = vm_dd_div_remainder(q, nh, nl, dh, dl) * inv;
    return q;
}

/* ---- exp ------------------------------------------------------------------ */

/* r = x - k ln2 with k = round(x / ln2) (also as the double *kd); r + *rerr is the
   reduced argument to ~2^-100 (k VM_LN2_HI is exact for |k| < 2^11: callers clamp x). */
static inline double vm_exp_reduce(double x, double *rerr, double *kd_out, int64_t *k_out)
{
    double t = VM_FMA(x, VM_INV_LN2, VM_MAGIC);
    double kd = t - VM_MAGIC;
    *kd_out = kd;
    *k_out = (int64_t)(vm_bits(t) - vm_bits(VM_MAGIC));
    double rh = VM_FMA(kd, -VM_LN2_HI, x); /* exact */
    double rl = kd * -VM_LN2_LO;
    double r = rh + rl;
    *rerr = (rh - r) + rl;
    return r;
}

/* g(r) in e^r = 1 + r + r^2 (1/2 + r g(r)), |r| <= ln2/2.  Estrin's scheme: 4 dependent
   steps instead of Horner's 9 (the float64 exp kernels ran 0.93x the time: their loops
   wait on this chain more than on the vector ports). */
static inline double vm_exp_poly(double r)
{
    double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    double c12 = VM_FMA(VM_EXPD_2, r, VM_EXPD_1), c34 = VM_FMA(VM_EXPD_4, r, VM_EXPD_3);
    double c56 = VM_FMA(VM_EXPD_6, r, VM_EXPD_5), c78 = VM_FMA(VM_EXPD_8, r, VM_EXPD_7);
    double c910 = VM_FMA(VM_EXPD_10, r, VM_EXPD_9);
    double c14 = VM_FMA(c34, r2, c12), c58 = VM_FMA(c78, r2, c56);
    return VM_FMA(c910, r8, VM_FMA(c58, r4, c14));
}

/* e^r as hi + *lo, r = x - k ln2 (vm_exp_reduce), to ~2^-60; NaN passes through
   and gives NaN hi.  fine: see vm_exp_parts_impl. */
static inline double vm_exp_core(double x, double *lo, double *kd_out, int64_t *k_out, int fine)
{
    double rerr;
    double r = vm_exp_reduce(x, &rerr, kd_out, k_out);
    double g1 = vm_exp_poly(r);
    double e1;
    double a = vm_fast_two_sum(1.0, r, &e1);
    if (!fine) {
        double p = (r * r) * (g1 * r + VM_EXPD_0) + (rerr + rerr * r);
        double b = e1 + p;
        return vm_fast_two_sum(a, b, lo);
    }
    /* r^2/2 exactly (VM_EXPD_0 = 1/2), only r^3 g1 (<= 0.007) rounded */
    double r2l, es;
    double r2h = vm_two_prod(r, r, &r2l);
    double pl = 0.5 * r2l + (r2h * r) * g1 + (rerr + rerr * r);
    double s = vm_two_sum(a, 0.5 * r2h, &es);
    return vm_fast_two_sum(s, (es + e1) + pl, lo);
}

/* 2^k = s1 * s2 (k also as the double kd), both powers of two normal for every k
   in [-2020, 1024], so that (v * s1) * s2 rounds only once, also into the
   subnormal range. */
static inline void vm_exp_scales(double kd, int64_t k, double *s1, double *s2)
{
    double th = kd * 0.5 + VM_MAGIC;
    int64_t k1 = (int64_t)(vm_bits(th) - vm_bits(VM_MAGIC));
    *s1 = vm_double((uint64_t)(k1 + 1023) << 52);
    *s2 = vm_double((uint64_t)(k - k1 + 1023) << 52);
}

/* e^x = s1 * s2 * (hi + lo), hi + lo = e^r with |r| <= ln2/2 to ~2^-60.
   x is clamped to [-1400, 710] (beyond, e^x rounds to 0 / overflows in every
   step that uses it); NaN passes through and gives NaN hi. */
static inline void vm_exp_parts_impl(double x, double *hi, double *lo, double *s1, double *s2,
                                     int fine)
{
    double kd;
    int64_t k;
    *hi = vm_exp_core(vm_clamp(x, -1400.0, 710.0), lo, &kd, &k, fine);
    vm_exp_scales(kd, k, s1, s2);
}

static inline void vm_exp_parts(double x, double *hi, double *lo, double *s1, double *s2)
{
    vm_exp_parts_impl(x, hi, lo, s1, s2, 0);
}

/* e^x, gradual underflow, overflow to +inf, NaN kept.  0.51 ULP. */
static inline double vm_exp(double x)
{
    double hi, lo, s1, s2;
    vm_exp_parts(x, &hi, &lo, &s1, &s2);
    return ((hi + lo) * s1) * s2;
}

/* c e^x rounded once from e^x's parts (vm_exp_parts), also where e^x alone would
   underflow (|c| < 2^60). */
static inline double vm_mul_exp_parts(double c, double hi, double lo, double s1, double s2)
{
    return ((c * hi + c * lo) * s1) * s2;
}

/* c e^x rounded once for x <= 0 (or NaN) and any finite c = am 2^ea (split by the
   caller's loop-invariant vm_split_*_hoisted: |am| in [1, 2), ea as an integer-valued
   double), ea joining k before the scales are formed: no step overflows or
   underflows while the product does not (elu' = alpha e^x with alpha = 1e300 was
   0 at x = -745 when alpha joined hi).  x is clamped at -1460 and k + ea to
   [-1100, 1030], beyond which c e^x is 0 for every finite c. */
static inline double vm_mul_exp_split(double am, double ea, double x)
{
    double kd, lo, s1, s2;
    int64_t k;
    double hi = vm_exp_core(x < -1460.0 ? -1460.0 : x, &lo, &kd, &k, 0);
    double kt = vm_clamp(kd + ea, -1100.0, 1030.0);
    vm_exp_scales(kt, (int64_t)(vm_bits(kt + VM_MAGIC) - vm_bits(VM_MAGIC)), &s1, &s2);
    return ((am * hi + am * lo) * s1) * s2;
}

/* e^x as hi + *lo (lo meaningful where the result is normal). */
static inline double vm_exp_dd(double x, double *lo)
{
    double hi, l, s1, s2;
    vm_exp_parts(x, &hi, &l, &s1, &s2);
    *lo = (l * s1) * s2;
    return (hi * s1) * s2;
}

/* e^x 2^extra as hi + *lo from one scale 2^(k + extra), for x where that scale and
   both parts are normal doubles (the softmax family, csrc/axis.pxi, scales its tiny
   terms up by 2^extra so): vm_exp_parts' two scales are not needed there (softmax
   float64 ran 0.9x the time).  NaN passes through. */
static inline double vm_exp_scaled_normal(double x, int extra, double *lo)
{
    double kd, l;
    int64_t k;
    double hi = vm_exp_core(x, &l, &kd, &k, 0);
    double s = vm_double((uint64_t)(k + extra + 1023) << 52);
    *lo = l * s;
    return hi * s;
}

/* e^x - 1 (minus_one) or e^x (otherwise) as hi + *lo from one range
   reduction (fine: see vm_exp_parts_impl); e^x - 1 keeps its relative accuracy
   also for tiny |x|.
   (lo of e^x meaningful where the result is normal.) */
static inline double vm_exp_or_expm1_dd(double x, int minus_one, int fine, double *lo)
{
    double hi, l, s1, s2, e;
    vm_exp_parts_impl(x, &hi, &l, &s1, &s2, fine);
    double h = (hi * s1) * s2, hl = (l * s1) * s2;
    double s = vm_two_sum(h, minus_one ? -1.0 : 0.0, &e);
    e += hl;
    int big = h > 0x1p1000;   /* large x: e^x - 1 = e^x, and h - 1 may be inf - 1 */
    double r = vm_fast_two_sum(s, e, lo);
    *lo = big ? (minus_one ? 0.0 : hl) : *lo;
    return big ? h : r;
}

static inline double vm_expm1_dd(double x, double *lo)
{
    return vm_exp_or_expm1_dd(x, 1, 0, lo);
}

static inline double vm_expm1(double x)
{
    double lo;
    double hi = vm_expm1_dd(x, &lo);
    return hi + lo;
}

/* e^y - 1 for y <= 0 (or NaN) as hi + *lo, ~2^-60 relative, without the scales of
   vm_exp_parts: (2^k - 1) + 2^k expm1(r), both exact pairs, expm1(r) with r^2/2
   exact (VM_EXPD_0 = 1/2) and only r^3 g(r) rounded.  y is clamped at -40, where
   e^y < 2^-57 (2^k stays normal), and beyond which hi + lo rounds to -1 even
   times a huge factor.  y = -0 gives +0. */
static inline double vm_expm1_nonpos_dd(double y, double *lo)
{
    double rerr, kd;
    int64_t k;
    double r = vm_exp_reduce(y < -40.0 ? -40.0 : y, &rerr, &kd, &k);
    double g = vm_exp_poly(r);
    double r2l, e1, el, sl, ml;
    double r2h = vm_two_prod(r, r, &r2l);
    double pl = 0.5 * r2l + (r2h * r) * g + VM_FMA(rerr, r, rerr);
    double eh = vm_fast_two_sum(r, 0.5 * r2h, &e1);   /* |r| <= ln2/2: r >= r^2/2 */
    eh = vm_fast_two_sum(eh, e1 + pl, &el);
    double s = vm_double((uint64_t)(k + 1023) << 52);
    double sm1 = vm_fast_two_sum(-1.0, s, &sl);        /* k <= 0 */
    double m = vm_fast_two_sum(sm1, s * eh, &ml);      /* k = 0: sm1 = 0; else |sm1| >= 1/2 */
    *lo = ml + (s * el + sl);
    return m;
}

static inline double vm_expm1_nonpos(double y)
{
    double lo;
    double hi = vm_expm1_nonpos_dd(y, &lo);
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
    double s = vm_dd_div_moderate(w, 0.0, dh, dl, &sl);
    double z = s * s;
    double h = VM_LOGD_8;
    h = VM_FMA(h, z, VM_LOGD_7); h = VM_FMA(h, z, VM_LOGD_6); h = VM_FMA(h, z, VM_LOGD_5);
    h = VM_FMA(h, z, VM_LOGD_4); h = VM_FMA(h, z, VM_LOGD_3); h = VM_FMA(h, z, VM_LOGD_2);
    h = VM_FMA(h, z, VM_LOGD_1); h = VM_FMA(h, z, VM_LOGD_0);
    /* 2s = w - s w exactly, so log1p(w) = w - (s + sl) w + s^3 h: tiny w stays exact */
    double tail = ((s * z) * h - s * w) - sl * w;
    double c = big ? VM_LN2 : 0.0, cl = big ? VM_LN2_TAIL : 0.0;
    double e;
    double r = vm_two_sum(c, w, &e);
    e += tail + cl;
    return vm_fast_two_sum(r, e, lo);
}

/* u = 2^k f with f in [1, 2), for a positive normal u; returns k.  k comes from
   the biased exponent e as the double 2^52 + e, minus 2^52 + 1023 (exact): AVX2 has
   no int64 -> double vector conversion, and with one the loops around stayed scalar. */
static inline double vm_split_exponent(double u, double *f)
{
    uint64_t bits = vm_bits(u);
    *f = vm_double((bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
    return vm_double(((bits >> 52) & 0x7ff) | 0x4330000000000000ULL) - 4503599627371519.0;
}

/* log(1 + (h + l)) for h + l >= 0, |l| <= ulp(h) (or NaN) as hi + *lo.
   Below h = 1 log1p_01(h) + l / (1 + h); above, with 1 + h + l = u + ul and
   u = 2^k f, f in [1, 2): k ln2 + log1p_01(f - 1) + ul / u (f - 1 exact). */
static inline double vm_log1p_pair(double h, double l, double *lo)
{
    double ul, e, rl;
    double u = vm_two_sum(1.0, h, &ul);
    ul += l;
    int small = h < 1.0;
    double f, k = vm_split_exponent(u, &f);
    double w = small ? h : f - 1.0;
    double kd = small ? 0.0 : k;
    double corr = (small ? l / (1.0 + h) : ul / u) + (h - h);   /* h - h: NaN stays NaN */
    double r = vm_log1p_01_dd(w, &rl);
    double s = vm_two_sum(kd * VM_LN2_HI, r, &e);   /* kd * VM_LN2_HI is exact */
    e += (rl + kd * VM_LN2_LO) + corr;
    return vm_fast_two_sum(s, e, lo);
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

/* sigmoid(x) = 1/(1 + e) or e/(1 + e), e = e^-|x|, as hi + *lo (0.51 ULP), and the
   parts of e (see vm_exp_parts), for callers that also need e^x where x is far
   below 0. */
static inline double vm_sigmoid_parts_dd(double x, double *lo, double *eh, double *el,
                                         double *s1, double *s2)
{
    double sl;
    vm_exp_parts(-vm_abs(x), eh, el, s1, s2);
    double e = (*eh * *s1) * *s2, l = (*el * *s1) * *s2;
    double s = vm_fast_two_sum(1.0, e, &sl);
    sl += l;
    int pos = x >= 0;
    return vm_dd_div_moderate(pos ? 1.0 : e, pos ? 0.0 : l, s, sl, lo);
}

static inline double vm_sigmoid_dd(double x, double *lo)
{
    double eh, el, s1, s2;
    return vm_sigmoid_parts_dd(x, lo, &eh, &el, &s1, &s2);
}

static inline double vm_sigmoid(double x)
{
    double lo;
    double hi = vm_sigmoid_dd(x, &lo);
    return hi + lo;
}

/* sigmoid'(x) = q (1 - q), q = sigmoid(-|x|) in [0, 1/2], as hi + *lo; and sigmoid(x) itself
   as *sh + *sl (1 - q above 0: one division for both), with the parts of the
   e^-|x| they are made of (vm_exp_parts). */
static inline double vm_sigmoid_both_dd(double x, double *lo, double *sh, double *sl,
                                        double *eh, double *el, double *s1, double *s2)
{
    double ql, wl, pe;
    double q = vm_sigmoid_parts_dd(-vm_abs(x), &ql, eh, el, s1, s2);
    double w = vm_fast_two_sum(1.0, -q, &wl);   /* q <= 1/2 */
    wl -= ql;
    int pos = x >= 0;
    *sh = pos ? w : q;
    *sl = pos ? wl : ql;
    double p = vm_two_prod(q, w, &pe);
    pe += q * wl + ql * w;
    return vm_fast_two_sum(p, pe, lo);
}

static inline double vm_sigmoid_slope_dd(double x, double *lo)
{
    double sh, sl, eh, el, s1, s2;
    return vm_sigmoid_both_dd(x, lo, &sh, &sl, &eh, &el, &s1, &s2);
}

static inline double vm_sigmoid_slope(double x)
{
    double lo;
    double hi = vm_sigmoid_slope_dd(x, &lo);
    return hi + lo;
}

/* c tanh'(x) = 4 c sigmoid'(2x), rounded once also where it is subnormal: for
   300 < |x| <= 700 (the end of vm_exp_parts' range), 4 sigmoid'(2x) is 4 e^-2|x|
   to 2^-860 relative, and 4 c joins it at the normal scale, before s2 rounds
   into the subnormal range.  (4 times a subnormal slope was 2.4 ULP off, and
   grad times that 4.4.)  s1 comes before c, not as in vm_mul_exp_parts, which
   needs |c| < 2^60: c is any grad here. */
static inline double vm_tanh_slope_times(double x, double c)
{
    double eh, el, s1, s2, lo, sh, sl;
    double hi = vm_sigmoid_both_dd(2.0 * x, &lo, &sh, &sl, &eh, &el, &s1, &s2);
    double tail = ((((eh + el) * s1) * 4.0) * c) * s2;   /* e^-2|x| = (eh + el) s1 s2 */
    double body = c * (4.0 * (hi + lo));
    return vm_abs(x) > 300.0 && vm_abs(x) <= 700.0 ? tail : body;
}

/* ---- tanh ------------------------------------------------------------------------ */

/* tanh(x) = -m / (2 + m), m = expm1(-2|x|), sign of x; as hi + *lo.  0.55 ULP.
   0 - m: +0 where m = -0, so that tanh(-0) = -0. */
static inline double vm_tanh_dd(double x, double *lo)
{
    double ml, dl;
    double m = vm_expm1_nonpos_dd(-2.0 * vm_abs(x), &ml);
    double d = vm_fast_two_sum(2.0, m, &dl);
    dl += ml;
    double ql;
    double q = vm_dd_div_moderate(0.0 - m, -ml, d, dl, &ql);
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
    k = VM_FMA(k, z, VM_TANHSHRINKD_12); k = VM_FMA(k, z, VM_TANHSHRINKD_11); k = VM_FMA(k, z, VM_TANHSHRINKD_10);
    k = VM_FMA(k, z, VM_TANHSHRINKD_9); k = VM_FMA(k, z, VM_TANHSHRINKD_8); k = VM_FMA(k, z, VM_TANHSHRINKD_7);
    k = VM_FMA(k, z, VM_TANHSHRINKD_6); k = VM_FMA(k, z, VM_TANHSHRINKD_5); k = VM_FMA(k, z, VM_TANHSHRINKD_4);
    k = VM_FMA(k, z, VM_TANHSHRINKD_3); k = VM_FMA(k, z, VM_TANHSHRINKD_2); k = VM_FMA(k, z, VM_TANHSHRINKD_1);
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

/* (ah + al)(bh + bl) as hi + *lo. */
static inline double vm_dd_mul(double ah, double al, double bh, double bl, double *lo)
{
    double e;
    double p = vm_two_prod(ah, bh, &e);
    e += ah * bl + al * bh;
    return vm_fast_two_sum(p, e, lo);
}

/* ---- Gaussian cdf Phi, gelu --------------------------------------------------------- */

/* Phi(x) for |x| <= 1 as hi + *lo: 1/2 + x/sqrt(2 pi) + x^3 P1(x^2), the first
   product exact. */
static inline double vm_phi_small_dd(double x, double *lo)
{
    x = vm_clamp(x, -1.0, 1.0);
    double u = x * x;
    double p = VM_PHI0_11;
    p = VM_FMA(p, u, VM_PHI0_10); p = VM_FMA(p, u, VM_PHI0_9); p = VM_FMA(p, u, VM_PHI0_8);
    p = VM_FMA(p, u, VM_PHI0_7); p = VM_FMA(p, u, VM_PHI0_6); p = VM_FMA(p, u, VM_PHI0_5);
    p = VM_FMA(p, u, VM_PHI0_4); p = VM_FMA(p, u, VM_PHI0_3); p = VM_FMA(p, u, VM_PHI0_2);
    p = VM_FMA(p, u, VM_PHI0_1); p = VM_FMA(p, u, VM_PHI0_0);
    double al;
    double a = vm_two_prod(x, VM_INV_SQRT_2PI, &al);
    al += x * VM_INV_SQRT_2PI_LO + (x * u) * p;
    double e;
    double s = vm_fast_two_sum(0.5, a, &e);
    e += al;
    return vm_fast_two_sum(s, e, lo);
}

/* G(t) = t Phi(-t) e^(t^2/2) for t in [1, 40] (clamped) as hi + *lo: one polynomial
   of degree 18 whose coefficients are selected per lane from four pieces
   (tools/fit_vmath.py; fit errors 2^-54.0 .. 2^-54.8, 0.9-1.3 x 2^-53 evaluated in
   double).  G tends to 1/sqrt(2 pi) and does not cancel in any piece. */
static inline double vm_gauss_G(double t, double *lo)
{
    t = vm_clamp(t, 1.0, 40.0);
    /* no VM_FMA here: with fma calls over the selected coefficients GCC no longer
       if-converts the selects, and the float64 gelu loops stay scalar */
    int a = t < 2.0, b = t < 4.0, c = t < 8.0;
    double inv = 1.0 / t;
    double w = a ? t - 1.5 : (b ? t - 3.0 : (c ? inv - 0.1875 : inv - 0.075));
#define VM_PHI_SEL(i) (a ? VM_PHIA_##i : (b ? VM_PHIB_##i : (c ? VM_PHIC_##i : VM_PHID_##i)))
    double q = VM_PHI_SEL(18);
    q = q * w + VM_PHI_SEL(17); q = q * w + VM_PHI_SEL(16); q = q * w + VM_PHI_SEL(15);
    q = q * w + VM_PHI_SEL(14); q = q * w + VM_PHI_SEL(13); q = q * w + VM_PHI_SEL(12);
    q = q * w + VM_PHI_SEL(11); q = q * w + VM_PHI_SEL(10); q = q * w + VM_PHI_SEL(9);
    q = q * w + VM_PHI_SEL(8); q = q * w + VM_PHI_SEL(7); q = q * w + VM_PHI_SEL(6);
    q = q * w + VM_PHI_SEL(5); q = q * w + VM_PHI_SEL(4); q = q * w + VM_PHI_SEL(3);
    q = q * w + VM_PHI_SEL(2); q = q * w + VM_PHI_SEL(1);
    return vm_two_sum(VM_PHI_SEL(0), w * q, lo);
#undef VM_PHI_SEL
}

/* R(t) = G(t) / t = Phi(-t) e^(t^2/2) as hi + *lo (t in [1, 40] or NaN). */
static inline double vm_gauss_R(double t, double *lo)
{
    double gl, pe;
    double gh = vm_gauss_G(t, &gl);
    t = vm_clamp(t, 1.0, 40.0);
    double inv = 1.0 / t;
    double p = vm_two_prod(t, inv, &pe);
    double invl = ((1.0 - p) - pe) * inv;   /* 1 - p exact (p within an ulp of 1) */
    return vm_dd_mul(gh, gl, inv, invl, lo);
}

/* e^(-t^2/2) = (hi + *lo) * s1 * s2 for t >= 0 (clamped to 40, where it is 0 in
   every use), with the rounding error pe of t^2 = p + pe corrected to first order:
   e^(-p/2 - pe/2) = e^(-p/2) (1 - pe/2); -p/2 is exact. */
static inline double vm_gauss_E(double t, double *lo, double *s1, double *s2)
{
    t = t > 40.0 ? 40.0 : t;
    double pe, hi;
    double p = vm_two_prod(t, t, &pe);
    vm_exp_parts(-0.5 * p, &hi, lo, s1, s2);
    *lo -= hi * (0.5 * pe);
    return hi;
}

/* Phi(x) as hi + *lo (about 2^-60 relative where normal; gradual underflow). */
static inline double vm_gauss_cdf_dd(double x, double *lo)
{
    double sl;
    double sh = vm_phi_small_dd(x, &sl);
    double t = vm_abs(x);
    double rl, el, s1, s2, qe;
    double rh = vm_gauss_R(t, &rl);
    double eh = vm_gauss_E(t, &el, &s1, &s2);
    double qh = vm_two_prod(rh, eh, &qe);
    double ql = qe + (rh * el + rl * eh);
    qh = (qh * s1) * s2;
    ql = (ql * s1) * s2;
    double ue;
    double uh = vm_fast_two_sum(1.0, -qh, &ue);   /* 1 - Q, Q <= 0.16 */
    ue -= ql;
    double ul;
    uh = vm_fast_two_sum(uh, ue, &ul);
    int small = t <= 1.0;
    *lo = small ? sl : (x < 0 ? ql : ul);
    return small ? sh : (x < 0 ? qh : uh);
}

/* gelu(x) = x Phi(x), rounded once also where it is subnormal.  Below -1:
   -G(t) e^(-t^2/2), the product formed in double pairs and scaled last. */
static inline double vm_gelu(double x)
{
    double pl;
    double ph = vm_gauss_cdf_dd(x, &pl);
    double m = x * ph;
    double upper = vm_prod_plus(x, ph, x * pl);
    upper = m == 0.0 ? m : upper;   /* keeps -0 */
    double t = vm_abs(x);
    double gl, el, s1, s2;
    double gh = vm_gauss_G(t, &gl);
    double eh = vm_gauss_E(t, &el, &s1, &s2);
    double lower = -((vm_prod_plus(gh, eh, gh * el + gl * eh) * s1) * s2);
    double r = x < -1.0 ? lower : upper;
    return x > 40.0 ? x : r;   /* Phi = 1 (also keeps +inf out of the pairs) */
}

/* gelu'(x) = Phi(x) + x phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi), without the
   near-zero polynomial.  Below -1: e^(-t^2/2) (R(t) - t/sqrt(2 pi)), scaled last. */
static inline double vm_gelu_d_direct(double x)
{
    double pl;
    double ph = vm_gauss_cdf_dd(x, &pl);
    double t = vm_abs(x);
    double tc = t > 40.0 ? 40.0 : t;
    double xc = vm_mulsign(tc, x);
    double el, s1, s2, me, ve;
    double eh = vm_gauss_E(t, &el, &s1, &s2);
    /* x phi(x) */
    double mh = vm_two_prod(xc, VM_INV_SQRT_2PI, &me);
    double ml = me + xc * VM_INV_SQRT_2PI_LO;
    double vh = vm_two_prod(mh, eh, &ve);
    double vl = ve + (mh * el + ml * eh);
    vh = (vh * s1) * s2;
    vl = (vl * s1) * s2;
    double se;
    double sh = vm_two_sum(ph, vh, &se);
    double upper = sh + (se + (pl + vl));
    /* below -1 */
    double rl, ke, we;
    double rh = vm_gauss_R(t, &rl);
    double kh = vm_two_prod(tc, VM_INV_SQRT_2PI, &ke);
    double kl = ke + tc * VM_INV_SQRT_2PI_LO;
    double dh = vm_two_sum(rh, -kh, &we);
    double dl = we + (rl - kl);
    double lower = (vm_prod_plus(dh, eh, dh * el + dl * eh) * s1) * s2;
    return x < -1.0 ? lower : upper;
}

/* ---- gelu tanh form, silu' (float64) ------------------------------------------------- */

/* v = 2u = K1 x + K3 x^3 as hi + *lo (x clamped to [-100, 100], beyond which
   sigmoid(v) is 0 or 1 in every use). */
static inline double vm_gelu_tanh_arg(double x, double *lo)
{
    x = vm_clamp(x, -100.0, 100.0);
    double e2, e3, al, bl, err;
    double p2 = vm_two_prod(x, x, &e2);
    double p3 = vm_two_prod(x, p2, &e3);
    double l3 = e3 + x * e2;
    double a = vm_two_prod(x, VM_GELU_K1, &al);
    al += x * VM_GELU_K1_LO;
    double b = vm_two_prod(p3, VM_GELU_K3, &bl);
    bl += p3 * VM_GELU_K3_LO + l3 * VM_GELU_K3;
    double vh = vm_two_sum(a, b, &err);
    *lo = err + (al + bl);
    return vh;
}

/* x sigmoid(v): sigmoid(vh + vl) = sigmoid(vh) + sigmoid'(vh) vl; where v < -700,
   sigmoid(v) = e^v to 2^-1000 and x e^(vh + vl) is rounded once.  One exponential,
   e^-|vh|, for all three (vm_sigmoid_dd's steps, and e^vh where vh < -700);
   sigmoid'(vh) = sh (1 - sh) from the pair is plenty for the first-order term
   (vl <= 2^-52 |vh|). */
static inline double vm_gelu_tanh(double x)
{
    double vl, sl, hi, l, s1, s2;
    double vh = vm_gelu_tanh_arg(x, &vl);
    double sh = vm_sigmoid_parts_dd(vh, &sl, &hi, &l, &s1, &s2);
    double g = sh * ((1.0 - sh) - sl);
    double xc = vm_clamp(x, -100.0, 100.0);
    double ph = xc * sh;
    double r = vm_prod_plus(xc, sh, xc * (sl + g * vl));
    r = ph == 0.0 ? ph : r;   /* keeps -0 */
    double c = xc + xc * vl;
    double tiny = vm_mul_exp_parts(c, hi, l, s1, s2);
    r = vh < -700.0 ? tiny : r;
    return x > 100.0 ? x : r;   /* also +inf; NaN: r is NaN */
}

/* gelu tanh form, derivative without the near-zero polynomial:
   sigmoid(v) + x v' sigmoid'(v), v' = K1 + 3 K3 x^2, with v = vh + vl to first order
   (sigmoid'' = sigmoid' (1 - 2 sigmoid)); where v < -700, e^v (1 + x v') rounded once. */
static inline double vm_gelu_tanh_d_direct(double x)
{
    double vl, gl, me, pe, se, e2, ae, de, oe, hi, l, s1, s2;
    double vh = vm_gelu_tanh_arg(x, &vl);
    double xc = vm_clamp(x, -100.0, 100.0);
    double sh, sl;
    double gh = vm_sigmoid_both_dd(vh, &gl, &sh, &sl, &hi, &l, &s1, &s2);   /* one division */
    /* m = x v' = x (K1 + 3 K3 x^2) as a double pair */
    double p2 = vm_two_prod(xc, xc, &e2);
    double a = vm_two_prod(VM_GELU_3K3, p2, &ae);
    ae += VM_GELU_3K3 * e2 + VM_GELU_3K3_LO * p2;
    double dv = vm_two_sum(VM_GELU_K1, a, &de);
    de += ae + VM_GELU_K1_LO;
    double m = vm_two_prod(xc, dv, &me);
    me += xc * de;
    double ph = vm_two_prod(m, gh, &pe);
    pe += me * gh + m * (gl + gh * (1.0 - 2.0 * sh) * vl);
    double h = vm_two_sum(sh, ph, &se);
    double r = h + (se + (pe + (sl + gh * vl)));
    double o = vm_two_sum(1.0, m, &oe);      /* 1 + m */
    oe += me;
    /* e^vh where vh < -700 from sigmoid's own e^-|vh| */
    double c = o + (oe + o * vl);
    double tiny = vm_mul_exp_parts(c, hi, l, s1, s2);
    r = vh < -700.0 ? tiny : r;
    return x > 100.0 ? 1.0 : r;   /* NaN: r is NaN */
}

/* silu'(x) = sigmoid(x) + x sigmoid'(x), without the near-zero polynomial; below
   -700 e^x (1 + x) rounded once. */
static inline double vm_silu_d_direct(double x)
{
    double xc = vm_clamp(x, -800.0, 800.0);
    double sh, sl, gl, pe, se, eh, el, s1, s2;
    double gh = vm_sigmoid_both_dd(x, &gl, &sh, &sl, &eh, &el, &s1, &s2);
    double ph = vm_two_prod(xc, gh, &pe);
    pe += xc * gl;
    double h = vm_two_sum(sh, ph, &se);
    double r = h + (se + (sl + pe));
    /* e^x (1 + x) from sigmoid's e^-|x| (x = xc where it is used) */
    double tiny = vm_mul_exp_parts(1.0 + xc, eh, el, s1, s2);
    return x < -700.0 ? tiny : r;
}

/* ---- mish (float64) --------------------------------------------------------------- */

/* t = tanh(softplus(x)) and 1 - t as double pairs, from e = e^-|x| (no overflow, no
   cancellation; see mish_t in scalar.pxi):
     x <= 0: n = e (e + 2), t = n / (n + 2), 1 - t = 2 / (n + 2)
     x > 0:  t = (1 + 2e) / (1 + 2e + 2e^2), 1 - t = 2e^2 / (1 + 2e + 2e^2). */
static inline double vm_mish_t_dd(double x, double *tl, double *omh, double *oml,
                                  double *ph, double *pl, double *s1, double *s2)
{
    double ql, nl, al, dl, e2, e1;
    vm_exp_parts(-vm_abs(x), ph, pl, s1, s2);   /* e^-|x| = (ph + pl) s1 s2 */
    double e = (*ph * *s1) * *s2, el = (*pl * *s1) * *s2;
    double q = vm_dd_mul(e, el, e, el, &ql);                 /* e^2 */
    double n = vm_two_sum(q, 2.0 * e, &nl);                  /* e^2 + 2e */
    nl += ql + 2.0 * el;
    double a = vm_fast_two_sum(1.0, 2.0 * e, &al);           /* 1 + 2e */
    al += 2.0 * el;
    int pos = x > 0;
    double numh = pos ? a : n, numl = pos ? al : nl;
    double oh = pos ? 2.0 * q : 2.0, ol = pos ? 2.0 * ql : 0.0;
    double d = vm_two_sum(numh, pos ? oh : 2.0, &dl);        /* (1 + 2e) + 2e^2 or n + 2 */
    dl += numl + (pos ? ol : 0.0);
    e1 = vm_fast_two_sum(d, dl, &e2);
    double t = vm_dd_div_moderate(numh, numl, e1, e2, tl);
    *omh = vm_dd_div_moderate(oh, ol, e1, e2, oml);
    return t;
}

/* x t; below -700 t = e^x to 2^-1000 relative and x e^x is rounded once (from t's
   own e^-|x|: x = xc there). */
static inline double vm_mish(double x)
{
    double tl, omh, oml, eh, el, s1, s2;
    double xc = vm_clamp(x, -800.0, 1e300);
    double t = vm_mish_t_dd(x, &tl, &omh, &oml, &eh, &el, &s1, &s2);
    double p = xc * t;
    double r = vm_prod_plus(xc, t, xc * tl);
    r = p == 0.0 ? p : r;     /* keeps -0 */
    r = x > 1e300 ? x : r;                                   /* t = 1 (and +inf) */
    double tiny = vm_mul_exp_parts(xc, eh, el, s1, s2);
    return x < -700.0 ? tiny : r;
}

/* mish' = t + x sigmoid(x) (1 - t)(2 - (1 - t)), without the near-zero polynomial;
   below -700 e^x (1 + x) rounded once. */
static inline double vm_mish_d_direct(double x)
{
    double tl, omh, oml, sl, wl, al, bl, cl, se, eh, el, s1, s2;
    double xc = vm_clamp(x, -800.0, 800.0);
    double t = vm_mish_t_dd(x, &tl, &omh, &oml, &eh, &el, &s1, &s2);
    double sh = vm_sigmoid_dd(x, &sl);
    double w = vm_fast_two_sum(2.0, -omh, &wl);              /* 2 - (1 - t), 1 - t <= 1 */
    wl -= oml;
    double a = vm_dd_mul(omh, oml, w, wl, &al);              /* 1 - t^2 */
    double b = vm_dd_mul(sh, sl, a, al, &bl);
    double c = vm_dd_mul(xc, 0.0, b, bl, &cl);
    double h = vm_two_sum(t, c, &se);
    double r = h + (se + (tl + cl));
    double tiny = vm_mul_exp_parts(1.0 + xc, eh, el, s1, s2);
    return x < -700.0 ? tiny : r;
}

/* ---- float64 derivatives near their zeros ------------------------------------------- */

/* f'(x) = d q(d) with d = x - x0 = dh - X0_LO, dh = x - X0_HI exact for |d| <= 1/4
   (Sterbenz); q fitted on |d| <= 1/4 by tools/fit_vmath.py, and the product formed
   as dh q - X0_LO q with dh q exact, so that the rounding of d does not count even
   at the zero.  The direct formulas cancel there (f' is a difference of terms
   ~0.2-0.5).  The caller selects it where vm_abs(x - X0_HI) < W.  Measured (dense
   sweeps, tests/test_vmath.py): see the callers in csrc/scalar.pxi. */
#define VM_NEAR_ZERO(P, x) do { \
        double dh_ = (x) - P##_X0_HI; \
        double q_ = P##_POLY(dh_ - P##_X0_LO); \
        return vm_prod_plus(dh_, q_, -P##_X0_LO * q_); \
    } while (0)

static inline double vm_gelu_d_near0(double x) { VM_NEAR_ZERO(VM_GELUD0, x); }
/* gelu'(x) for every x (float32 and float64 kernels). */
static inline double vm_gelu_d(double x)
{
    double near = vm_gelu_d_near0(x);
    double direct = vm_gelu_d_direct(x);
    return vm_abs(x - VM_GELUD0_X0_HI) < VM_GELUD0_W ? near : direct;
}
static inline double vm_gelu_tanh_d_near0(double x) { VM_NEAR_ZERO(VM_GELUTD0, x); }
static inline double vm_silu_d_near0(double x) { VM_NEAR_ZERO(VM_SILUD0, x); }
static inline double vm_mish_d_near0(double x) { VM_NEAR_ZERO(VM_MISHD0, x); }
/* the same at float32 grade (degree 8, 2^-36), for the float32 kernels in double */
static inline double vm_gelu_d_near0_d32(double x) { VM_NEAR_ZERO(VM_GELUD0_D32, x); }
static inline double vm_gelu_tanh_d_near0_d32(double x) { VM_NEAR_ZERO(VM_GELUTD0_D32, x); }
static inline double vm_silu_d_near0_d32(double x) { VM_NEAR_ZERO(VM_SILUD0_D32, x); }
static inline double vm_mish_d_near0_d32(double x) { VM_NEAR_ZERO(VM_MISHD0_D32, x); }

static inline double vm_gelu_tanh_d(double x)
{
    double near = vm_gelu_tanh_d_near0(x);
    double direct = vm_gelu_tanh_d_direct(x);
    return vm_abs(x - VM_GELUTD0_X0_HI) < VM_GELUTD0_W ? near : direct;
}

static inline double vm_mish_d(double x)
{
    double near = vm_mish_d_near0(x);
    double direct = vm_mish_d_direct(x);
    return vm_abs(x - VM_MISHD0_X0_HI) < VM_MISHD0_W ? near : direct;
}

static inline double vm_silu_d(double x)
{
    double near = vm_silu_d_near0(x);
    double direct = vm_silu_d_direct(x);
    return vm_abs(x - VM_SILUD0_X0_HI) < VM_SILUD0_W ? near : direct;
}

/* ---- float64 backward passes: the rare elements ------------------------------------- */

/* 1 where r = grad f'(x) of a float64 backward loop is one of its rare elements, which
   the loop computes again with f' in long double (F64_WIDE_FIXUP in kernels.pyx.tp),
   else 0: f' below the normal range and |grad| > 1, where f' rounded first (or
   clamped) shows its lost digits in the product, or r not finite from non-NaN grad and
   x: f' beyond the range (inf, or NaN for grad 0, where |grad| < 1 may bring the
   product back into it), or an infinite grad times an f' that underflowed to 0 (+-inf
   in long double unless f' is 0 there too; r = inf for |grad| >= 1 is tested again
   too, as rare as it is, for one compare fewer).  The first test not at x = 0, where
   only tanhshrink's f' is below the normal range, and exactly 0: zeros are common inputs, and the long double
   path costs tens of ns per element.  Tested on r, not f' (GCC folds a test of f'
   into the kernels' selects, and the elu and softplus loops then do not vectorise);
   a < g DBL_MIN as a 2^1022 < g, since g DBL_MIN is subnormal for g < 1 and slow to
   form.  SSE2 does not vectorise the mask logic (1-byte booleans beside double lanes):
   there the tests are 0.0/1.0 selects multiplied, in double lanes, which costs more
   instructions (on AVX-512 elu's loop took 1.26-1.35x the time with them, 1.02-1.11x with
   masks). */
#if defined(__AVX2__)
typedef int vm_rare_t;
#else
typedef uint64_t vm_rare_t;   /* the width of the double lanes: SSE2 would have to narrow */
#endif
static inline vm_rare_t vm_backward_needs_wide(double r, double grad, double x)
{
    double g = vm_abs(grad), a = vm_abs(r);
#if defined(__AVX2__)
    return ((a * 0x1p1022 < g) & (g > 1.0) & (x != 0.0)) | (!(a <= DBL_MAX) & (g == g) & (x == x));
#else
    double tiny = (a * 0x1p1022 < g ? 1.0 : 0.0) * (g > 1.0 ? 1.0 : 0.0) * (x != 0.0 ? 1.0 : 0.0);
    double huge = (a <= DBL_MAX ? 0.0 : 1.0) * (g == g ? 1.0 : 0.0) * (x == x ? 1.0 : 0.0);
    return vm_bits(0.5 - (tiny + huge)) >> 63;
#endif
}

/* ---- float32-grade versions (double arithmetic, ~2^-32 relative) ------------------ */

/* e^r - 1 for x = k ln2 + r, |r| <= ln2/2 (x not clamped): *kd = k as a double
   and *k as an integer. */
static inline double vm_exp_core_d32(double x, double *kd, int64_t *k)
{
    double t = x * VM_INV_LN2 + VM_MAGIC;
    *kd = t - VM_MAGIC;
    *k = (int64_t)(vm_bits(t) - vm_bits(VM_MAGIC));
    double r = (x - *kd * VM_LN2_HI) - *kd * VM_LN2_LO;
    double g = VM_EXPF_6;
    g = VM_FMA(g, r, VM_EXPF_5); g = VM_FMA(g, r, VM_EXPF_4); g = VM_FMA(g, r, VM_EXPF_3);
    g = VM_FMA(g, r, VM_EXPF_2); g = VM_FMA(g, r, VM_EXPF_1); g = VM_FMA(g, r, VM_EXPF_0);
    return r + (r * r) * g;
}

/* (1 + q) 2^k as ((1 + q) s1) s2 with both scales normal, so that subnormal
   results round once. */
static inline double vm_exp_scale2_d32(double q, double kd, int64_t k)
{
    double th = kd * 0.5 + VM_MAGIC;
    int64_t k1 = (int64_t)(vm_bits(th) - vm_bits(VM_MAGIC));
    double s1 = vm_double((uint64_t)(k1 + 1023) << 52);
    double s2 = vm_double((uint64_t)(k - k1 + 1023) << 52);
    return ((1.0 + q) * s1) * s2;
}

static inline double vm_exp_d32(double x)
{
    double kd;
    int64_t k;
    double q = vm_exp_core_d32(vm_clamp(x, -1400.0, 710.0), &kd, &k);
    return vm_exp_scale2_d32(q, kd, k);
}

/* e^x for results that are normal doubles (x in [-708, 709], not clamped): one
   scale 2^k instead of two. */
static inline double vm_exp_normal_d32(double x)
{
    double kd;
    int64_t k;
    double q = vm_exp_core_d32(x, &kd, &k);
    return (1.0 + q) * vm_double((uint64_t)(k + 1023) << 52);
}

/* minus_one ? expm1(x) : e^x from one evaluation (written as a select of two
   calls, GCC kept both: the float32 log_softmax vjp took 1.2-1.4x as long);
   e^x - 1 is the polynomial itself where k = 0 (keeps tiny x exact-relative). */
static inline double vm_exp_or_expm1_d32(double x, int minus_one)
{
    double kd;
    int64_t k;
    double q = vm_exp_core_d32(vm_clamp(x, -1400.0, 710.0), &kd, &k);
    double e = vm_exp_scale2_d32(q, kd, k);
    double em1 = kd == 0.0 ? q : e - 1.0;
    return minus_one ? em1 : e;
}

static inline double vm_expm1_d32(double x) { return vm_exp_or_expm1_d32(x, 1); }

/* log1p(u) for u in [0, 1] (or NaN). */
static inline double vm_log1p_01_d32(double u)
{
    int big = u >= 0.5;
    double w = big ? (u - 1.0) * 0.5 : u;
    double s = w / (2.0 + w);
    double z = s * s;
    double h = VM_LOGF_3;
    h = VM_FMA(h, z, VM_LOGF_2); h = VM_FMA(h, z, VM_LOGF_1); h = VM_FMA(h, z, VM_LOGF_0);
    return (big ? VM_LN2 : 0.0) + (2.0 * s + (s * z) * h);
}

/* log(1 + h) for h >= 0 (or NaN or inf) to float32 grade, ~2^-33 relative: below
   h = 1 log1p_01(h); above, 1 + h = 2^k f (f in [1, 2); its rounding, 2^-53
   relative, is far below that grade) and log1p(h) = k ln2 + log1p_01(f - 1). */
static inline double vm_log1p_d32(double h)
{
    double u = 1.0 + h;
    double f, k = vm_split_exponent(u, &f);
    int small = h < 1.0;
    double r = (small ? 0.0 : k * VM_LN2) + vm_log1p_01_d32(small ? h : f - 1.0);
    return h > 0x1.fffffffffffffp1023 ? h : r + (h - h);   /* inf stays inf, NaN NaN */
}

/* tanh via expm1: -m / (2 + m), m = expm1(-2|x|). */
static inline double vm_tanh_d32(double x)
{
    double m = vm_expm1_d32(-2.0 * vm_abs(x));
    return vm_copysign(-m / (2.0 + m), x);
}

/* float32-grade gelu (double arithmetic; the float32 kernels).  Phi(-t) = R(t)
   e^(-t^2/2), t = |x|, with R from one polynomial over [0, 20]
   (tools/fit_vmath.py, VM_GAUSSHF: 2^-36.8 relative), so that no coefficients are
   selected per lane (the four pieces of vm_gauss_G cost 2x the time).  Beyond
   t = 20, gelu rounds to 0 below -20 and to x above, and gelu' to 1 above 20 and
   to 0 below -20, also times any finite float32 grad (|gelu'| < 2^-278 there); t
   is clamped there, which also keeps inf out of the products.  t^2 rounds at 2^-45
   of the exponent, which does not show. */
static inline double vm_gauss_R_d32(double tc)
{
    double inv = 1.0 / (tc + VM_GAUSSHF_A);
    double s = (tc - VM_GAUSSHF_A) * inv;
    /* even and odd halves: two chains of 6 steps instead of Horner's 13 (gelu float32
       took 0.95x the time on Zen 3; Estrin's scheme spilled registers, 1.18x) */
    double s2 = s * s;
    double e = VM_GAUSSHF_12, o = VM_GAUSSHF_13;
    e = VM_FMA(e, s2, VM_GAUSSHF_10); o = VM_FMA(o, s2, VM_GAUSSHF_11);
    e = VM_FMA(e, s2, VM_GAUSSHF_8); o = VM_FMA(o, s2, VM_GAUSSHF_9);
    e = VM_FMA(e, s2, VM_GAUSSHF_6); o = VM_FMA(o, s2, VM_GAUSSHF_7);
    e = VM_FMA(e, s2, VM_GAUSSHF_4); o = VM_FMA(o, s2, VM_GAUSSHF_5);
    e = VM_FMA(e, s2, VM_GAUSSHF_2); o = VM_FMA(o, s2, VM_GAUSSHF_3);
    e = VM_FMA(e, s2, VM_GAUSSHF_0); o = VM_FMA(o, s2, VM_GAUSSHF_1);
    double h = VM_FMA(o, s, e);
    return h * (VM_GAUSSHF_A * inv);   /* (1 - s) / 2 = A / (t + A) */
}

/* gelu(x) = x Phi(x): -t Phi(-t) below 0, x (1 - Phi(-t)) above (no cancellation:
   Phi(-t) <= 1/2). */
static inline double vm_gelu_d32(double x)
{
    double t = vm_abs(x);
    double tc = t > VM_GAUSSHF_T ? VM_GAUSSHF_T : t;   /* NaN stays */
    double q = vm_gauss_R_d32(tc) * vm_exp_normal_d32(-0.5 * (tc * tc));
    double r = x < 0 ? -(tc * q) : x * (1.0 - q);
    return x > VM_GAUSSHF_T ? x : r;   /* also +inf */
}

/* gelu' without the near-zero polynomial (float32 grade): Phi(x) + x phi(x), below
   0 e^(-t^2/2) (R(t) - t / sqrt(2 pi)) (cancels at most 2.9x outside the near-zero
   window |x - x0| < 1/4).  Beyond t = 20 only e^(-t^2/2) t / sqrt(2 pi) counts (R is
   that at 20, below 1/400 of it), but with gradual underflow as in float64, up to
   t = 40: an infinite grad times it is then inf, and NaN only where it is 0. */
static inline double vm_gelu_d_direct_d32(double x)
{
    double t = vm_abs(x);
    double tc = t > VM_GAUSSHF_T ? VM_GAUSSHF_T : t;
    double tw = t > 40.0 ? 40.0 : t;
    double rt = vm_gauss_R_d32(tc);
    double e = vm_exp_d32(-0.5 * (tw * tw));
    double k = tw * VM_INV_SQRT_2PI;
    double lower = e * (rt - k);
    double upper = (1.0 - rt * e) + k * e;
    return x < 0 ? lower : upper;
}

static inline double vm_gelu_d_d32(double x)
{
    double near = vm_gelu_d_near0_d32(x);
    double direct = vm_gelu_d_direct_d32(x);
    return vm_abs(x - VM_GELUD0_D32_X0_HI) < VM_GELUD0_D32_W ? near : direct;
}

/* ---- float32 arithmetic (the float32 sigmoid and tanh kernels on FMA levels) ------- */

/* On levels with a hardware FMA the float32 kernels of the sigmoid and tanh families
   compute in float, 16 lanes per AVX-512 vector instead of 8 in double: about 2x
   faster.  Each step's rounding that matters is carried as a float pair, and the
   division's error is recovered with an fma, so the results stay within 1.11 ULP
   (1.13 for gelu's tanh form, 1.78 for silu' near its zero; tanh, which needs no
   pairs, 1.50; exhaustive over float32: python -m pyact.accuracy,
   tests/test_dispatch.py).  Without an FMA
   (baseline x86-64) fmaf would be a libm call: VM_F32_FMA is 0 there and the
   kernels keep the double versions above (vm_*_d32). */
#define VM_F32_FMA VM_HAS_FMA

static inline uint32_t vmf_bits(float x) { uint32_t u; memcpy(&u, &x, sizeof u); return u; }
static inline float vmf_float(uint32_t u) { float x; memcpy(&x, &u, sizeof x); return x; }
static inline float vmf_abs(float x) { return vmf_float(vmf_bits(x) & 0x7fffffffu); }
static inline float vmf_copysign(float x, float s)
{
    return vmf_float((vmf_bits(x) & 0x7fffffffu) | (vmf_bits(s) & 0x80000000u));
}

/* e^x = (hi + *lo) s1 s2 2^-s2_extra for x <= 0 (or NaN), hi + lo in [0.7, 1.42],
   k = round(x / ln2), s1 = 2^max(k, -100) and s2 = 2^(k - max(k, -100) + s2_extra),
   both normal: callers clamp x so that k - 100 + s2_extra >= -126.  (hi + lo) s1
   is exact and normal; only s2 (1 unless e^x < 2^-100 or s2_extra) rounds, once,
   into the subnormal range, applied last by the callers.  x - k ln2_hi is exact
   (its bits reach down to 2^-24 only), k ln2_lo rounds once; e^r = 1 + s,
   s = r + r^2 g(r), with 1 + s kept as a pair.  vmf_exp_neg_core: the same
   without the scales, for callers that apply 2^k themselves (in double);
   vmf_exp_neg_core_err also returns the rounding error of r (r_err: e^x is then
   (hi + lo) (1 + r_err) 2^k, for callers that need e^x to better than 2^-26). */
static inline float vmf_exp_neg_core_err(float x, float *lo, int32_t *k_out, float *r_err)
{
    const float magic = 0x1.8p23f;
    float t = __builtin_fmaf(x, 0x1.715476p+0f, magic);
    float kf = t - magic;
    *k_out = (int32_t)(vmf_bits(t) - vmf_bits(magic));
    float r0 = __builtin_fmaf(kf, -0x1.62e430p-1f, x);
    float r = __builtin_fmaf(kf, 0x1.05c610p-29f, r0);    /* ln2 = 0x1.62e430p-1 - 0x1.05c610p-29 */
    *r_err = __builtin_fmaf(kf, 0x1.05c610p-29f, r0 - r);  /* r0 - r is exact */
    float g = (float)VM_EXPS_5;
    g = __builtin_fmaf(g, r, (float)VM_EXPS_4); g = __builtin_fmaf(g, r, (float)VM_EXPS_3);
    g = __builtin_fmaf(g, r, (float)VM_EXPS_2); g = __builtin_fmaf(g, r, (float)VM_EXPS_1);
    g = __builtin_fmaf(g, r, (float)VM_EXPS_0);
    float s = __builtin_fmaf(r * r, g, r);
    float e = 1.0f + s;
    *lo = (1.0f - e) + s;
    return e;
}

static inline float vmf_exp_neg_core(float x, float *lo, int32_t *k_out)
{
    float r_err;
    return vmf_exp_neg_core_err(x, lo, k_out, &r_err);
}

static inline float vmf_exp_neg_parts(float x, int32_t s2_extra, float *lo, float *s1, float *s2)
{
    int32_t k;
    float e = vmf_exp_neg_core(x, lo, &k);
    int32_t k1 = k < -100 ? -100 : k;
    *s1 = vmf_float((uint32_t)(k1 + 127) << 23);
    *s2 = vmf_float((uint32_t)(k - k1 + s2_extra + 127) << 23);
    return e;
}

/* (n + nl) / (d + dl) from one division: q = n (1/d) is within an ulp of n / d, so
   fma(-q, d, n) is exact, and *rem = (n + nl) - q (d + dl) to first order; the
   quotient is q + *rem / d.  *inv = 1/d. */
static inline float vmf_div_pair(float n, float nl, float d, float dl, float *inv, float *rem)
{
    *inv = 1.0f / d;
    float q = n * *inv;
    *rem = (__builtin_fmaf(-q, d, n) + nl) - q * dl;
    return q;
}

/* c sigmoid(v + vl) rounded once: c / (1 + e) (v >= 0) or c e / (1 + e) (v < 0),
   e = e^-|v + vl| = e^-|v| (1 -+ vl) (|vl| <= 2^-24 |v| <= 2^-16 below the clamp: the
   second-order term is below 2^-33; beyond the clamp vl is dropped).  1 + e and the numerator are float pairs, and the division's
   remainder is recovered with an fma.  use_c: 0, c = 1 and the numerator is e
   itself (rounded into the subnormal range, where 1 + e = 1); 1, |c| <= 128
   (x in silu and gelu); 2, any c (grad in a backward pass: huge, or inf, which
   gives inf, not NaN).  With c, c e is formed at the normal scale and the
   subnormal scaling applied last, so that c times a subnormal sigmoid keeps its
   digits; |v| is clamped where c e underflows for every such c (a c beyond 2^64
   is applied as c 2^-64 and 2^64 goes into s2).  Without has_vl, vl = 0.  The
   flags are constants that fold away. */
static inline float vmf_sigmoid_pair_times(float v, float vl, float c, int use_c, int has_vl)
{
    float h, l, s1, s2;
    float a = vmf_abs(v);
    int big = use_c == 2 && vmf_abs(c) > 0x1p64f;
    float amax = use_c == 2 ? (big ? 200.0f : 150.0f) : (use_c ? 112.0f : 104.0f);
    h = vmf_exp_neg_parts(-(a > amax ? amax : a), big ? 64 : 0, &l, &s1, &s2);
    c = big ? c * 0x1p-64f : c;
    int pos = v >= 0;
    vl = a > amax ? 0.0f : vl;           /* clamped (or inf, NaN): the result saturates */
    l = has_vl ? __builtin_fmaf(pos ? -vl : vl, h, l) : l;
    float e1 = h * s1, el1 = l * s1;     /* exact; e^-|v| unless it is below 2^-100 */
    float d = 1.0f + e1;                 /* below 2^-100, 1 + e1 is 1 too and dl no matter */
    float dl = ((1.0f - d) + e1) + el1;
    float n, nl;
    if (use_c) {
        float ce = c * e1;
        n = pos ? c : ce;
        nl = pos ? 0.0f : __builtin_fmaf(c, e1, -ce) + c * el1;
    } else {
        n = pos ? 1.0f : e1 * s2;
        nl = pos ? 0.0f : el1 * s2;
    }
    float inv, rem;
    float q = vmf_div_pair(n, nl, d, dl, &inv, &rem);
    float r = __builtin_fmaf(rem, inv, q);
    r = (use_c == 2 && !(vmf_abs(q) <= 0x1.fffffep127f)) ? q : r;
    return use_c ? r * (pos ? (big ? 0x1p64f : 1.0f) : s2) : r;
}

static inline float vmf_sigmoid(float x) { return vmf_sigmoid_pair_times(x, 0.0f, 1.0f, 0, 0); }

/* silu(x) = x sigmoid(x), which has the sign of x; beyond -120 it is -0 (x
   clamped so that -inf * 0 is not NaN), and +inf stays +inf. */
static inline float vmf_silu(float x)
{
    float xc = x < -120.0f ? -120.0f : x;
    float r = vmf_sigmoid_pair_times(xc, 0.0f, xc, 1, 0);
    return vmf_copysign(x == __builtin_inff() ? x : r, x);   /* silu(-0) = -0 */
}

/* gelu, tanh form: x sigmoid(v), v = x (K1 + K3 x^2) as a float pair (an error of
   2^-24 relative in v would cost |v| 2^-24 relative in the far negative tail).
   x is clamped to [-100, 100] inside (beyond, sigmoid(v) is 0 or 1 in float);
   above 100 the result is x itself (inf included), and it has the sign of x. */
#define VMF_GELU_K1 ((float)VM_GELU_K1)
#define VMF_GELU_K1_LO ((float)(VM_GELU_K1 - (double)(float)VM_GELU_K1))
#define VMF_GELU_K3 ((float)VM_GELU_K3)
#define VMF_GELU_K3_LO ((float)(VM_GELU_K3 - (double)(float)VM_GELU_K3))
static inline float vmf_gelu_tanh(float x)
{
    float xs = x < -100.0f ? -100.0f : (x > 100.0f ? 100.0f : x);
    float z = xs * xs;
    float zl = __builtin_fmaf(xs, xs, -z);
    float t = VMF_GELU_K3 * z;
    float tl = __builtin_fmaf(VMF_GELU_K3, z, -t) + (VMF_GELU_K3 * zl + VMF_GELU_K3_LO * z);
    float a = VMF_GELU_K1 + t;                          /* two_sum: t may exceed K1 */
    float ab = a - VMF_GELU_K1;
    float al = ((VMF_GELU_K1 - (a - ab)) + (t - ab)) + (tl + VMF_GELU_K1_LO);
    float v = xs * a;
    float vl = __builtin_fmaf(xs, a, -v) + xs * al;
    float r = vmf_sigmoid_pair_times(v, vl, xs, 1, 1);
    return vmf_copysign(x > 100.0f ? x : r, x);
}

/* c k sigmoid'(x) = c k e / (1 + e)^2, e = e^-|x|, rounded once: k a power of two
   (4 for tanh'), c any factor (grad in a backward pass) with use_c (else 1).
   (1 + e)^2 is a float pair, the division's remainder is recovered with an fma,
   and as in vmf_sigmoid_pair_times the subnormal scaling is applied last (a
   subnormal slope rounded alone and then multiplied by grad was 13 ULP off) and
   |x| clamped where c k e underflows (c beyond 2^64 applied as c 2^-64). */
static inline float vmf_sigmoid_slope_times(float x, float k, float c, int use_c)
{
    float h, l, s1, s2;
    float a = vmf_abs(x);
    int big = use_c && vmf_abs(c) > 0x1p64f;
    float amax = use_c ? (big ? 200.0f : 152.0f) : 106.0f;
    h = vmf_exp_neg_parts(-(a > amax ? amax : a), big ? 64 : 0, &l, &s1, &s2);
    float kc = use_c ? k * (big ? c * 0x1p-64f : c) : k;
    float e1 = h * s1, el1 = l * s1;                    /* exact */
    float d = 1.0f + e1;
    float dl = ((1.0f - d) + e1) + el1;
    float dd = d * d;
    float ddl = __builtin_fmaf(d, d, -dd) + (d + d) * dl;
    float n = kc * e1;
    float nl = use_c ? __builtin_fmaf(kc, e1, -n) + kc * el1 : kc * el1;
    float inv, rem;
    float q = vmf_div_pair(n, nl, dd, ddl, &inv, &rem);
    float r = __builtin_fmaf(rem, inv, q);
    r = (use_c && !(vmf_abs(q) <= 0x1.fffffep127f)) ? q : r;
    return r * s2;
}

static inline float vmf_sigmoid_slope(float x) { return vmf_sigmoid_slope_times(x, 1.0f, 1.0f, 0); }

/* tanh(x): x + x^3 t(x^2) for |x| <= 0.55; beyond, 1 - 2e/(1 + e), e = e^-2|x|
   <= 0.34, so that the subtracted term is at most 1/2 and its rounding errors
   (and e's) reach the result at most halved: 1.50 ULP at most (exhaustive),
   with no pair arithmetic.  |x| is clamped at 10, where tanh is 1 in float
   (NaN passes through); the result has the sign of x (tanh(-0) = -0). */
static inline float vmf_tanh(float x)
{
    float a = vmf_abs(x);
    float z = x * x;
    float t = (float)VM_TANHS_4;
    t = __builtin_fmaf(t, z, (float)VM_TANHS_3); t = __builtin_fmaf(t, z, (float)VM_TANHS_2);
    t = __builtin_fmaf(t, z, (float)VM_TANHS_1); t = __builtin_fmaf(t, z, (float)VM_TANHS_0);
    float small = __builtin_fmaf(x * z, t, x);
    float h, l;
    int32_t k;
    h = vmf_exp_neg_core(-2.0f * (a > 10.0f ? 10.0f : a), &l, &k);
    float e = h * vmf_float((uint32_t)(k + 127) << 23);   /* k >= -29: one normal scale */
    float big = 1.0f - (e + e) / (1.0f + e);
    return vmf_copysign(a <= 0.55f ? small : big, x);
}

/* tanh'(x) = 1 - tanh(x)^2 = 4 sigmoid'(2x), times c (grad). */
static inline float vmf_tanh_slope_times(float x, float c)
{
    return vmf_sigmoid_slope_times(2.0f * x, 4.0f, c, 1);
}

static inline float vmf_tanh_slope(float x) { return vmf_sigmoid_slope_times(2.0f * x, 4.0f, 1.0f, 0); }

/* tanhshrink, x - tanh(x), which cancels: the float tanh above (1.50 ULP) will not
   do.  Within 0.63 ULP (exhaustive: 0.621), 0.6x the time of the double version.
   * |x| <= 1: x^3 k(x^2) in double (x^2 exact, k = VM_TANHSHRINKF within 2^-31),
     rounded once to float.
   * |x| > 1: (|x| - 1) + q, q = 1 - tanh|x| = 2e / (1 + e), e = e^-2|x|
     (vmf_tanh_tail), with e, 1 + e and q as float pairs (e to about 2^-26, the
     quotient's remainder recovered with an fma) and the last sum as a two_sum;
     q <= x - tanh(x) there, so q's error reaches the result at most once.
   |x| is clamped at 40 for e (e^-80 is normal; beyond, q is far below half an ulp
   of |x| - 1); inf and NaN pass through |x| - 1. */
static inline double vm_tanhshrink_k_d32(double z)
{
    double k = VM_TANHSHRINKF_8;
    k = VM_FMA(k, z, VM_TANHSHRINKF_7); k = VM_FMA(k, z, VM_TANHSHRINKF_6);
    k = VM_FMA(k, z, VM_TANHSHRINKF_5); k = VM_FMA(k, z, VM_TANHSHRINKF_4);
    k = VM_FMA(k, z, VM_TANHSHRINKF_3); k = VM_FMA(k, z, VM_TANHSHRINKF_2);
    k = VM_FMA(k, z, VM_TANHSHRINKF_1); k = VM_FMA(k, z, VM_TANHSHRINKF_0);
    return k;
}

static inline float vmf_tanh_tail(float a, float *ql)
{
    float l, r_err;
    int32_t k;
    float h = vmf_exp_neg_core_err(-2.0f * (a > 40.0f ? 40.0f : a), &l, &k, &r_err);
    float s1 = vmf_float((uint32_t)(k + 127) << 23);   /* k >= -116: normal */
    float e = h * s1;                                   /* exact */
    float el = __builtin_fmaf(r_err, h, l) * s1;
    float d = 1.0f + e;
    float dl = ((1.0f - d) + e) + el;
    float inv, rem;
    float q = vmf_div_pair(e + e, el + el, d, dl, &inv, &rem);
    *ql = rem * inv;
    return q;
}

static inline float vmf_tanhshrink(float x)
{
    double xd = x, z = xd * xd;
    float small = (float)(xd * z * vm_tanhshrink_k_d32(z));
    float a = vmf_abs(x);
    float ql;
    float q = vmf_tanh_tail(a, &ql);
    float s = a - 1.0f;                                 /* exact up to 2^24 */
    float u = s + q;                                    /* two_sum: q may exceed s */
    float ub = u - s;
    float big = u + (((s - (u - ub)) + (q - ub)) + ql);
    big = a > 0x1p24f ? a : big;                        /* (a - 1) + q rounds to a there */
    return vmf_copysign(a <= 1.0f ? small : big, x) + 0.0f;   /* + 0: x - tanh(x) is +0 at -0 */
}

/* c sigmoid(x) rounded once (grad times sigmoid, also where it is subnormal). */
static inline float vmf_sigmoid_times(float x, float c)
{
    return vmf_sigmoid_pair_times(x, 0.0f, c, 2, 0);
}

/* c silu'(x) rounded once (c = 1 without use_c; c = grad, any float, with it):
   silu'(x) = N / (1 + e)^2, e = e^-|x|, N = 1 + e (1 + x) for x >= 0 and
   e ((1 + x) + e) for x < 0, with 1 + e, its square, (1 + x) + e (two_sum; 1 + x
   is exact for x <= -1/2) and N as float pairs and the division's remainder
   recovered with an fma.  Within 1/4 of the zero x0 of silu', where (1 + x) + e
   cancels, d q(d) with d = (x - x0_hi) - x0_lo (the first difference exact).  As
   in vmf_sigmoid_pair_times, |x| is clamped where c silu' underflows and the
   subnormal scaling (with 2^64 for a c beyond 2^40) is applied last. */
static inline float vmf_silu_slope_times(float x, float c, int use_c)
{
    float h, l, s1, s2;
    float a = vmf_abs(x);
    int big = use_c && vmf_abs(c) > 0x1p40f;            /* |1 + x| grows too: 2^40, not 2^64 */
    float amax = use_c ? (big ? 200.0f : 140.0f) : 112.0f;
    float xc = x < -amax ? -amax : (x > amax ? amax : x);
    h = vmf_exp_neg_parts(-(a > amax ? amax : a), big ? 64 : 0, &l, &s1, &s2);
    float cc = use_c ? (big ? c * 0x1p-64f : c) : 1.0f;
    int pos = x >= 0;
    float e1 = h * s1, el1 = l * s1;                    /* exact */
    float d = 1.0f + e1;
    float dl = ((1.0f - d) + e1) + el1;
    float dd = d * d;
    float ddl = __builtin_fmaf(d, d, -dd) + (d + d) * dl;
    float w = 1.0f + xc;
    /* x >= 0: 1 + m, m = e w (no cancellation) */
    float m = e1 * w;
    float np = 1.0f + m;
    float npl = ((1.0f - np) + m) + (__builtin_fmaf(e1, w, -m) + el1 * w);
    /* x < 0: e (u + ul), u + ul = w + e exactly (two_sum) plus e's low part */
    float u = w + e1;
    float ub = u - w;
    float ul = ((w - (u - ub)) + (e1 - ub)) + el1;
    float nn = e1 * u;
    float nnl = __builtin_fmaf(e1, u, -nn) + e1 * ul;
    float n = pos ? np : nn, nl = pos ? npl : nnl;
    float inv, rem;
    float q = vmf_div_pair(n, nl, dd, ddl, &inv, &rem);
    float ql = rem * inv;
    float r = __builtin_fmaf(cc, q, cc * ql);
    float dh = x - VMF_SILUD0_X0_HI;                    /* exact */
    float pz = VMF_SILUD0_POLY(dh - VMF_SILUD0_X0_LO);
    float near = cc * __builtin_fmaf(dh, pz, -(VMF_SILUD0_X0_LO * pz));
    r = vmf_abs(dh) < VMF_SILUD0_W ? near : r;
    r = (use_c && !(vmf_abs(cc * q) <= 0x1.fffffep127f)) ? cc * q : r;
    return r * (pos ? (big ? 0x1p64f : 1.0f) : s2);
}

static inline float vmf_silu_slope(float x) { return vmf_silu_slope_times(x, 1.0f, 0); }

/* beta x > threshold, exactly: the product of two floats is exact in double, and
   the rounded difference has the sign of the exact one.  (From the float pair
   v + vl the test failed where beta x is subnormal and vl underflowed:
   beta = threshold = 2e-42 at x = 1.0000342, found by tools/fuzz.py.) */
static inline int vmf_softplus_linear(float x, float beta, float threshold)
{
    return (double)beta * (double)x - (double)threshold > 0.0;
}

/* softplus'(x) = sigmoid(beta x) (times c, any float, with use_c), 1 (c) where beta x >
   threshold: beta x as a float pair v + vl, so that sigmoid's argument keeps its
   digits (a rounded beta x cost |beta x| 2^-24 relative in the tail). */
static inline float vmf_softplus_slope_times(float x, float beta, float threshold, float c,
                                             int use_c)
{
    float v = beta * x;
    float vl = __builtin_fmaf(beta, x, -v);
    float s = vmf_sigmoid_pair_times(v, vl, use_c ? c : 1.0f, use_c ? 2 : 0, 1);
    return vmf_softplus_linear(x, beta, threshold) ? (use_c ? c : 1.0f) : s;
}

/* softplus(v + vl) = max(v, 0) + log1p(e^-|v + vl|) in double (about 2^-30
   relative: the float32 kernels round it once), for any float pair v + vl = beta x.
   e = e^-|v| (1 -+ vl) as a float pair at the scale 2^max(k, -100), where it is
   exact and normal; log1p(e) = 2 atanh(z), z = e / (2 + e) in [0, 1/3] as a pair
   (one division, its remainder by fma).  Below e = 2^-100 log1p is linear, so
   the rest of the scale, 2^(k - max(k, -100)), is applied to log1p(e) itself, in
   double: results far below float's range (softplus(beta x) / beta with a tiny
   beta) keep their digits.  |v| is clamped to 320, where e^-|v| / beta is below
   float's range for every beta; vl is dropped there (inf - inf). */
static inline double vmf_softplus_pair_d(float v, float vl)
{
    float a = vmf_abs(v);
    vl = a > 320.0f ? 0.0f : vl;
    a = a > 320.0f ? 320.0f : a;
    int pos = v >= 0;
    float l;
    int32_t k;
    float h = vmf_exp_neg_core(-a, &l, &k);
    l = __builtin_fmaf(pos ? -vl : vl, h, l);
    int32_t k1 = k < -100 ? -100 : k;
    float s1 = vmf_float((uint32_t)(k1 + 127) << 23);
    float e = h * s1, el = l * s1;                   /* exact */
    float d = 2.0f + e;
    float dl = ((2.0f - d) + e) + el;
    float inv, rem;
    float z = vmf_div_pair(e, el, d, dl, &inv, &rem);
    float zl = rem * inv;
    float u = z * z;
    float q = (float)VMF_ATANH_4;
    q = __builtin_fmaf(q, u, (float)VMF_ATANH_3); q = __builtin_fmaf(q, u, (float)VMF_ATANH_2);
    q = __builtin_fmaf(q, u, (float)VMF_ATANH_1); q = __builtin_fmaf(q, u, (float)VMF_ATANH_0);
    float lh = 2.0f * z;
    float ll = 2.0f * __builtin_fmaf(z * u, q, zl);
    double log1p_e = (double)lh + (double)ll;
    double up = ((double)v + (double)vl) + log1p_e;
    return pos ? up : log1p_e * vm_double((uint64_t)(k - k1 + 1023) << 52);
}

/* softplus(x) = softplus(beta x) / beta, x itself where beta x > threshold. */
static inline float vmf_softplus(float x, float beta, float threshold)
{
    float v = beta * x;
    float vl = __builtin_fmaf(beta, x, -v);
    float r = (float)(vmf_softplus_pair_d(v, vl) * (1.0 / (double)beta));
    return vmf_softplus_linear(x, beta, threshold) ? x : r;
}

/* log_sigmoid(x) = -softplus(-x). */
static inline float vmf_log_sigmoid(float x) { return (float)-vmf_softplus_pair_d(-x, 0.0f); }

/* ---- float32 piecewise-quadratic kernels (hardswish, hardsigmoid) ---------------- */

/* (h + l) / 6 as q + *ql (|l| <= ulp(h)): q = h (1/6) is within an ulp of h / 6, so
   its remainder h - 6 q is exact (by fma); *ql = (remainder + l) / 6.  q + *ql is
   the quotient rounded once, up to 2^-20 ULP, without a division. */
static inline float vmf_div6_pair(float h, float l, float *ql)
{
    float q = h * (1.0f / 6);
    *ql = (__builtin_fmaf(-q, 6.0f, h) + l) * (1.0f / 6);
    return q;
}

/* c (h + l), rounded once, with c = +-inf giving +-inf (h > 0) rather than NaN
   (c l is NaN where l = 0). */
static inline float vmf_times_pair(float c, float h, float l)
{
    float p = c * h;
    return vmf_abs(p) <= 0x1.fffffep127f ? __builtin_fmaf(c, h, c * l) : p;
}

/* hardsigmoid(x) = (x + 3) / 6 on (-3, 3), x + 3 as an exact pair (|x| < 3). */
static inline float vmf_hardsigmoid(float x)
{
    float s = x + 3.0f;
    float ql, q = vmf_div6_pair(s, (3.0f - s) + x, &ql);
    return x <= -3.0f ? 0.0f : (x >= 3.0f ? 1.0f : q + ql);   /* NaN: q is NaN */
}

/* hardswish(x) = x (x + 3) / 6 on (-3, 3): x + 3 and the product as exact pairs;
   x itself at 3 and above, and at +-0 (keeps the sign of zero). */
static inline float vmf_hardswish(float x)
{
    float s = x + 3.0f;
    float p = x * s;
    float pl = __builtin_fmaf(x, s, -p) + x * ((3.0f - s) + x);
    float ql, q = vmf_div6_pair(p, pl, &ql);
    return x <= -3.0f ? 0.0f : (x >= 3.0f ? x : (x == 0.0f ? x : q + ql));
}

/* hardswish'(x) = (2x + 3) / 6 on [-3, 3] (2x + 3 by two_sum), 0 below, 1 above,
   times c (c = 1 for the derivative itself), rounded once. */
static inline float vmf_hardswish_slope_times(float x, float c)
{
    float a = 2.0f * x;
    float s = a + 3.0f;
    float b = s - a;
    float sl = (a - (s - b)) + (3.0f - b);
    float ql, q = vmf_div6_pair(s, sl, &ql);
    float mid = vmf_times_pair(c, q, ql);
    return x < -3.0f ? 0.0f * c : (x <= 3.0f ? mid : (x != x ? x : c));
}

/* softsign(x) = x / (1 + |x|): 1 + |x| as an exact pair (d + dl), the division's
   remainder recovered with an fma: vmf_div_pair's steps written out without its
   + nl, an addition of 0 that GCC keeps (signed zeros; calling it took 1.07x the
   time).  |x| is clamped at 2^60, beyond which the result is +-1 in float, and it
   has the sign of x (softsign(-0) = -0).  The clamp and the two_sum's max/min are integer min/max on
   the bits (|x| >= 0), and NaN x is ORed back in as all ones at the end: GCC turns
   float selects into compare-and-blend pairs that crowd the ports the division and
   the fmas need (0.70x the time on Zen 3 with AVX2, bit-identical for every float).
   In double (two 8-lane vdivpd per 16 floats) it took 1.8x the time. */
static inline float vmf_softsign(float x)
{
    const int32_t clamp_bits = 0x5d800000, one_bits = 0x3f800000;   /* 2^60, 1 */
    int32_t ai = (int32_t)(vmf_bits(x) & 0x7fffffffu);
    ai = ai < clamp_bits ? ai : clamp_bits;
    float a = vmf_float((uint32_t)ai);
    float d = 1.0f + a;
    float larger = vmf_float((uint32_t)(ai > one_bits ? ai : one_bits));
    float smaller = vmf_float((uint32_t)(ai > one_bits ? one_bits : ai));
    float dl = (larger - d) + smaller;                    /* fast two_sum */
    float inv = 1.0f / d;
    float q = a * inv;
    float rem = __builtin_fmaf(-q, d, a) - q * dl;
    float r = __builtin_fmaf(rem, inv, q);                /* >= +0 */
    uint32_t nan_bits = x != x ? 0xffffffffu : 0u;
    return vmf_float(vmf_bits(r) | (vmf_bits(x) & 0x80000000u) | nan_bits);
}

/* ---- float32 e^x times a factor (the elu family's derivatives) ----------------- */

/* c e^(x + xl) rounded once (xl: a first-order correction, |xl| <= 2^-20 |x| or 0) for
   any float c = g (am + am_lo) 2^ea: a parameter split by the caller
   (vm_split_*_hoisted below: |am| in [1, 2), am_lo its low part where the constant
   is not a float) and g (grad), split here lane by lane into gm 2^eg, so that the
   product of the parts, gm am e^r, is in [0.35, 6) and every exponent goes into the
   two final scales: no overflow or underflow on the way, for any g (subnormal,
   huge) and any parameter.  x is clamped to [-300, 300] (beyond, the exponents
   saturate: 0 or inf).  0, inf and NaN g pass as themselves.  Below x_zero and
   above x_inf (where the float64 reference's e^x, or the parameter times it, is 0
   or inf) the result is g * (am * 0) (+-0, NaN for an infinite g) or g * (am * inf)
   (+-inf, NaN for a zero g). */
static inline float vmf_exp_times(float x, float xl, float g, float am, float am_lo,
                                  int32_t ea, float x_zero, float x_inf)
{
    float ga = vmf_abs(g);
    int tiny = ga < 0x1p-64f;
    float gn = tiny ? g * 0x1p64f : g;                  /* exact */
    uint32_t b = vmf_bits(gn);
    int special = !(ga <= 0x1.fffffep127f) | (ga == 0.0f);   /* inf, NaN, 0 */
    int32_t eg = special ? 0 : (int32_t)((b >> 23) & 0xffu) - (tiny ? 127 + 64 : 127);
    float gm = special ? g : vmf_float((b & 0x807fffffu) | 0x3f800000u);
    float ch = gm * am;                  /* |ch| in [1, 4) (an exact pair), or 0, inf, NaN */
    /* 0, inf or NaN (also for am = 0, inf): |ch| outside [1, 4), as one unsigned test */
    int pass = vmf_bits(vmf_abs(ch)) - 0x3f800000u >= 0x01000000u;
    float cl = pass ? 0.0f : __builtin_fmaf(gm, am, -ch) + gm * am_lo;
    float xc = x < -300.0f ? -300.0f : (x > 300.0f ? 300.0f : x);
    float l;
    int32_t k;
    float h = vmf_exp_neg_core(xc, &l, &k);
    l = __builtin_fmaf(xl, h, l);
    float v = pass ? ch * h : __builtin_fmaf(ch, h, __builtin_fmaf(cl, h, ch * l));
    int32_t kk = k + ea + eg;
    kk = kk < -160 ? -160 : (kk > 130 ? 130 : kk);      /* v 2^-160 rounds to 0, v 2^130 is inf */
    int32_t k1 = kk >> 1;
    float r = (v * vmf_float((uint32_t)(k1 + 127) << 23)) * vmf_float((uint32_t)(kk - k1 + 127) << 23);
    r = x > x_inf ? g * (am * __builtin_inff()) : r;
    return x < x_zero ? g * (am * 0.0f) : r;
}

/* celu'(x) c = c e^(x / alpha) for x <= 0, x / alpha as z + zl (z rounded once: its
   remainder is exact), c any float.  The remainder is divided by alpha as a product
   with 1 / alpha, both scaled by 2^64 where alpha < 2^-64 (1 / alpha would overflow). */
static inline float vmf_celu_slope_times(float x, float c, float alpha)
{
    float scale = vmf_abs(alpha) < 0x1p-64f ? 0x1p64f : 1.0f;
    float inv_alpha = 1.0f / (alpha * scale);            /* loop invariants */
    float z = x / alpha;
    float zl = (__builtin_fmaf(-z, alpha, x) * scale) * inv_alpha;
    zl = vmf_abs(zl) <= 0x1.fffffep127f ? zl : 0.0f;    /* z or alpha +-inf (alpha = 1e300
                                                           rounds to inf): no remainder */
    return vmf_exp_times(z, zl, c, 1.0f, 0.0f, 0, -0x1.74910cp+9f, 0x1.62e42ep+9f);
}

/* ---- loop invariants ------------------------------------------------------------ */

/* Functions of a parameter only (softplus(threshold) in softplus's derivative
   from y).  Inlined into a loop, GCC hoists their code out of it but then finds
   "no vectype" for the loop's loads and leaves it scalar; as a const,
   never-inlined call the whole call is hoisted and the loop vectorises. */
#if defined(__GNUC__)
#define VM_HOISTED __attribute__((const, noinline, unused))
#else
#define VM_HOISTED
#endif

/* softplus(x) as the pair hi + lo (about 2^-70 relative): the float64 kernels compare
   beta y, an exact pair, with it, so that only a y within that of the boundary
   softplus(threshold) / beta could take the other branch (with the rounded
   softplus, tools/fuzz.py found y = ln2 / 1.642578125 on the wrong side). */
static VM_HOISTED double vm_softplus_hi_hoisted(double x)
{
    double lo;
    return vm_softplus_dd(x, &lo);
}

static VM_HOISTED double vm_softplus_lo_hoisted(double x)
{
    double lo;
    vm_softplus_dd(x, &lo);
    return lo;
}

static VM_HOISTED double vm_softplus_hoisted(double x) { return vm_softplus(x); }

/* A parameter or constant a as am 2^ea, |am| in [1, 2) (am = a, ea = 0 for a = 0 or
   +-inf: a float32 parameter may round to inf), for vmf_exp_times and
   vm_mul_exp_split (the callers round am to their type); a long double constant
   also gives the float low part of am. */
static inline int vm_split_passes(long double a) { return a == 0 || !(fabsl(a) <= LDBL_MAX); }

static VM_HOISTED long double vm_split_mantissa_hoisted(long double a)
{
    int e;
    return vm_split_passes(a) ? a : 2 * frexpl(a, &e);
}

static VM_HOISTED float vmf_split_mantissa_lo_hoisted(long double a)
{
    long double m = vm_split_passes(a) ? 0 : vm_split_mantissa_hoisted(a);
    return (float)(m - (long double)(float)m);
}

static VM_HOISTED int32_t vm_split_exponent_hoisted(long double a)
{
    int e = 1;
    if (!vm_split_passes(a))
        frexpl(a, &e);
    return e - 1;
}

/* The smallest float x where a e^x, e^x rounded first as in the float64 reference,
   is neither 0 nor NaN in double (e^x >= 2^-1075, and |a| e^x too where |a| < 1; an
   infinite a times e^x = 0 is NaN); +inf for a = 0. */
static inline int vm_zero_product(double a, float x) { return !(fabs(a * exp((double)x)) > 0); }

static VM_HOISTED float vmf_exp_zero_below_hoisted(long double a)
{
    if (a == 0)
        return __builtin_inff();
    double ad = (double)a;
    float x = (float)(-1075.0 * 0.6931471805599453 - log(fmin(fabs(ad), 1.0)));
    /* the estimate is within a float ulp or two: a few steps at most (bounded anyway) */
    for (int i = 0; i < 64 && vm_zero_product(ad, x); i++)
        x = nextafterf(x, 0.0f);
    for (int i = 0; i < 64 && !vm_zero_product(ad, nextafterf(x, -__builtin_inff())); i++)
        x = nextafterf(x, -__builtin_inff());
    return x;
}
#endif
