/* e^y to about 2^-115 relative, as an unevaluated long double pair, for the rare
   elements of the log_softmax vjp (csrc/axis.pxi) whose g - e^y sum(g) cancels
   by more bits than any faster path keeps: with g = 1 over a row of equal
   logits the result is ~2^-53 of its terms, so e^y must be good to ~2^-110.

   x87 long double (64-bit significand) in pairs hi + lo: error-free sums, and
   products by Dekker's splitting with 32-bit halves (fmal is a slow software
   routine on x87).  y = (64 k + j) ln2/64 + r, |r| <= ln2/128, with ln2/64 in
   three parts (the first two of 42 bits, so that 64 k + j < 2^20 times them is
   exact); e^y = 2^k 2^(j/64) e^r, 2^(j/64) from a table of pairs, e^r by its
   Taylor series to r^12/12! (the first term left out is below 2^-130), the
   terms from r^6/6! on (below 2^-54 of the sum) in plain long double, the rest
   in pairs.  Constants: exp_dw_consts.h (tools/gen_exp_dw.py).  Scaled by 2^k
   last: exact for |y| <= PYACT_EXP_DW_MAX, within long double's normal range.
   About 500 x87 instructions (~0.35 us on Zen 3): the caller uses it only where
   cheaper ways fall short, and keeps the last e^y for runs of equal y. */
#ifndef PYACT_EXP_DW_H
#define PYACT_EXP_DW_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "exp_dw_consts.h"

/* Per significand width p of the target's long double (the bounds above are for
   x87's 64 bits; aarch64's 113 keep them, a long double that is a double does
   not): adding and subtracting 1.5 2^(p-1) rounds to an integer, and
   2^ceil(p/2) + 1 splits a significand into halves whose products are exact. */
#if LDBL_MANT_DIG == 113
#define PYACT_LD_RINT_MAGIC 0x1.8p112L
#define PYACT_LD_SPLIT 144115188075855873.0L   /* 2^57 + 1 */
#elif LDBL_MANT_DIG == 53
#define PYACT_LD_RINT_MAGIC 0x1.8p52L
#define PYACT_LD_SPLIT 134217729.0L            /* 2^27 + 1 */
#else
#define PYACT_LD_RINT_MAGIC 0x1.8p63L
#define PYACT_LD_SPLIT 4294967297.0L           /* 2^32 + 1 */
#endif

#define PYACT_EXP_DW_MAX 11000.0

static inline long double pyact_ld_two_sum(long double a, long double b, long double *err)
{
    long double s = a + b;
    long double bb = s - a;
    *err = (a - (s - bb)) + (b - bb);
    return s;
}

/* a + b = s + *err exactly, for |a| >= |b| (or a = 0) */
static inline long double pyact_ld_fast_two_sum(long double a, long double b, long double *err)
{
    long double s = a + b;
    *err = b - (s - a);
    return s;
}

/* a b - p exactly, p = a b rounded (|a|, |b| far from the overflow and underflow) */
static inline long double pyact_ld_product_error(long double a, long double b, long double p)
{
    long double t = PYACT_LD_SPLIT * a;
    long double a1 = t - (t - a), a2 = a - a1;
    t = PYACT_LD_SPLIT * b;
    long double b1 = t - (t - b), b2 = b - b1;
    return ((a1 * b1 - p) + a1 * b2 + a2 * b1) + a2 * b2;
}

/* (ah + al)(bh + bl) as a pair */
static inline long double pyact_ld_mul_pair(long double ah, long double al, long double bh,
                                            long double bl, long double *lo)
{
    long double p = ah * bh;
    long double e = pyact_ld_product_error(ah, bh, p) + (ah * bl + al * bh);
    return pyact_ld_fast_two_sum(p, e, lo);
}

/* e^y = (hi + *lo) 2^*k for finite |y| <= PYACT_EXP_DW_MAX */
static inline long double pyact_exp_dw(double y, long double *lo, int *k)
{
    /* rounded to an integer by adding and subtracting a constant: rintl is a libm call */
    long double nd = ((long double)y * PYACT_EXP_DW_INV_STEP + PYACT_LD_RINT_MAGIC)
                     - PYACT_LD_RINT_MAGIC;
    long double e1, e2;
    long double rh = (long double)y - nd * PYACT_EXP_DW_STEP_A;      /* exact */
    rh = pyact_ld_two_sum(rh, -nd * PYACT_EXP_DW_STEP_B, &e1);      /* nd B exact */
    long double rl;
    rh = pyact_ld_fast_two_sum(rh, e1 - nd * PYACT_EXP_DW_STEP_C, &rl);
    int n, steps = (int)nd, j = steps & ((1 << PYACT_EXP_DW_TABLE_BITS) - 1);
    long double t = pyact_exp_dw_fact_hi[PYACT_EXP_DW_TERMS - 1];
    for (n = PYACT_EXP_DW_TERMS - 2; n >= PYACT_EXP_DW_PAIR_TERMS; n--)
        t = t * rh + pyact_exp_dw_fact_hi[n];
    /* pairs: a = a r + 1/n! */
    long double ah = t, al = 0.0L, ph, pl;
    for (n = PYACT_EXP_DW_PAIR_TERMS - 1; n >= 0; n--) {
        ph = pyact_ld_mul_pair(ah, al, rh, rl, &pl);
        ah = pyact_ld_two_sum(ph, pyact_exp_dw_fact_hi[n], &e2);
        ah = pyact_ld_fast_two_sum(ah, e2 + (pl + pyact_exp_dw_fact_lo[n]), &al);
    }
    ah = pyact_ld_mul_pair(ah, al, pyact_exp_dw_table_hi[j], pyact_exp_dw_table_lo[j], lo);
    *k = (steps - j) / (1 << PYACT_EXP_DW_TABLE_BITS);   /* exact: floor(steps / 64) */
    return ah;
}

/* The last e^y computed, for a run of elements with the same y (a row of equal
   logits gives nothing else): y is NaN before the first. */
typedef struct {
    double y;
    long double hi, lo;
    int k;
} pyact_exp_dw_memo;

/* g - e^y (acc + low), rounded once to double, for finite y, |y| <= PYACT_EXP_DW_MAX */
static inline double pyact_log_softmax_vjp_exact(double g, double y, double acc, double low,
                                                 pyact_exp_dw_memo *memo)
{
    long double sl, pl, err;
    if (!(memo->y == y)) {
        memo->hi = pyact_exp_dw(y, &memo->lo, &memo->k);
        memo->y = y;
    }
    long double eh = memo->hi, el = memo->lo;
    int k = memo->k;
    long double sh = pyact_ld_two_sum((long double)acc, (long double)low, &sl);
    long double ph = pyact_ld_mul_pair(eh, el, sh, sl, &pl);
    if (k >= -1022 && k <= 1023) {   /* 2^k from its double bits: ldexpl is a libm call */
        uint64_t bits = (uint64_t)(k + 1023) << 52;
        double scale;
        memcpy(&scale, &bits, sizeof scale);
        ph *= scale;
        pl *= scale;
    } else {
        ph = ldexpl(ph, k);
        pl = ldexpl(pl, k);
    }
    if (!(fabsl(ph) <= 0x1p16000L))   /* e^y sum(g) beyond double's range: no cancellation */
        return (double)((long double)g - ph);
    long double th = pyact_ld_two_sum((long double)g, -ph, &err);
    return (double)(th + (err - pl));
}

#endif
