/* Row reductions of the softmax kernels (csrc/axis.pxi) in GCC/Clang vector
   types, so that they vectorise whatever the compiler's loop analysis makes of
   them (written as Cython lane loops they stayed scalar: a max reduction, and a
   sum with a select).  LANES = 8 partial results, element i going to lane i % 8,
   and the caller combines the lanes in lane order: the same arithmetic as the
   column loops of axis.pxi, so results stay bitwise independent of the loop
   shape and of the vector width.  (Not of the ISA level for float64 data: the
   baseline level evaluates vmath.h's polynomials without FMA, and its float64
   results can differ from avx2/avx512 in the last bit at near-ties; float32
   results agree on every level.)  The lanes are held in vectors of the target's
   width (PYACT_VEC_BYTES). */
#ifndef PYACT_LANES_H
#define PYACT_LANES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PYACT_LANES 8
#define PYACT_ONE_BITS 0x3ff0000000000000LL

/* The target's vector width.  The 8 lanes are held in vectors of that width
   (PYACT_VD_SUBS of them for doubles): GCC splits wider vectors for arithmetic,
   but lowers their comparisons element by element into scalar code (vcomisd and
   cmov on AVX2, where float64 softmax over rows of 100-1000 took 2.3-2.4x the
   time). */
#if defined(__AVX512F__)
#define PYACT_VEC_BYTES 64
#elif defined(__AVX__)
#define PYACT_VEC_BYTES 32
#else
#define PYACT_VEC_BYTES 16
#endif
/* bytes of a vector of T lanes: the target's width, or all 8 lanes where they take less */
#define PYACT_SUB_BYTES(T) \
    (PYACT_LANES * sizeof(T) < PYACT_VEC_BYTES ? PYACT_LANES * sizeof(T) : PYACT_VEC_BYTES)

typedef double pyact_vd __attribute__((vector_size(PYACT_SUB_BYTES(double))));
typedef int64_t pyact_vid __attribute__((vector_size(PYACT_SUB_BYTES(double))));
enum {
    PYACT_VD_WIDTH = PYACT_SUB_BYTES(double) / sizeof(double),  /* lanes per vector */
    PYACT_VD_SUBS = PYACT_LANES / PYACT_VD_WIDTH                 /* vectors per 8 lanes */
};

/* every 8-lane group of the elements i < n (i advancing), as native vectors j */
#define PYACT_FOR_EACH_SUB(i, j, n)                                                    \
    for (; (i) + PYACT_LANES <= (n); (i) += PYACT_LANES)                               \
        for ((j) = 0; (j) < PYACT_VD_SUBS; (j)++)
/* v = native vector j of the group at p + i */
#define PYACT_LOAD_SUB(v, p, i, j) memcpy(&(v), (p) + (i) + (j) * PYACT_VD_WIDTH, sizeof(v))

/* m = the lanes of v that beat m, m's elsewhere (ties and NaN keep m) */
#define PYACT_KEEP_GREATER(m, v, IV)                                                   \
    do {                                                                               \
        IV wins_ = (v) > (m);                                                          \
        (m) = (__typeof__(m))(((IV)(v) & wins_) | ((IV)(m) & ~wins_));                 \
    } while (0)

/* max over i < n of s * x[i], lane by lane, lanes combined in order; NaN never
   wins a comparison (a NaN entry poisons the slice's sum instead).  Four native
   vectors of accumulators side by side (groups of 8 lanes, element i in group
   (i / 8) % groups), so that the loop does not wait on one compare-and-select
   chain; the maximum is the same (only which of +0 and -0 wins a tie can
   differ, as between the loop shapes). */
#define PYACT_SCALED_MAX_STEP(m, p, IV)                                                \
    do {                                                                               \
        memcpy(&v, (p), sizeof v);                                                     \
        v = v * s;                                                                     \
        PYACT_KEEP_GREATER(m, v, IV);                                                  \
    } while (0)
#define PYACT_DEFINE_SCALED_MAX(T, IT, SUFFIX)                                         \
    typedef T pyact_vm##SUFFIX __attribute__((vector_size(PYACT_SUB_BYTES(T))));       \
    typedef IT pyact_vmi##SUFFIX __attribute__((vector_size(PYACT_SUB_BYTES(T))));     \
    static inline T pyact_scaled_max_##SUFFIX(const T *x, ptrdiff_t n, T s)            \
    {                                                                                  \
        enum { W = PYACT_SUB_BYTES(T) / sizeof(T), S = PYACT_LANES / W,                \
               GROUPS = S < 4 ? 4 / S : 1 };                                           \
        T lane[PYACT_LANES];                                                           \
        pyact_vm##SUFFIX m[GROUPS][S], v;                                              \
        ptrdiff_t i = 0, k, g, j;                                                      \
        for (g = 0; g < GROUPS; g++)                                                   \
            for (j = 0; j < S; j++)                                                    \
                m[g][j] = (pyact_vm##SUFFIX){0} - (T)__builtin_inf();                  \
        for (; i + GROUPS * PYACT_LANES <= n; i += GROUPS * PYACT_LANES)               \
            for (g = 0; g < GROUPS; g++)                                               \
                for (j = 0; j < S; j++)                                                \
                    PYACT_SCALED_MAX_STEP(m[g][j], x + i + g * PYACT_LANES + j * W,    \
                                          pyact_vmi##SUFFIX);                          \
        for (; i + PYACT_LANES <= n; i += PYACT_LANES)                                 \
            for (j = 0; j < S; j++)                                                    \
                PYACT_SCALED_MAX_STEP(m[0][j], x + i + j * W, pyact_vmi##SUFFIX);      \
        for (g = 1; g < GROUPS; g++)                                                   \
            for (j = 0; j < S; j++)                                                    \
                PYACT_KEEP_GREATER(m[0][j], m[g][j], pyact_vmi##SUFFIX);               \
        memcpy(lane, m[0], sizeof lane);                                               \
        for (k = 0; i + k < n; k++) {                                                  \
            T w = s * x[i + k];                                                        \
            lane[k] = w > lane[k] ? w : lane[k];                                       \
        }                                                                              \
        T best = lane[0];                                                              \
        for (k = 1; k < PYACT_LANES; k++)                                              \
            best = lane[k] > best ? lane[k] : best;                                    \
        return best;                                                                   \
    }

PYACT_DEFINE_SCALED_MAX(float, int32_t, f)
PYACT_DEFINE_SCALED_MAX(double, int64_t, d)

/* Lane sums of exponentials e[i], i < n (lane i % 8): an exponential of exactly
   1 counts in ties, the others in rest (plain double sums, float32 data). */
static inline void pyact_add_exp_lanes(const double *e, ptrdiff_t n, double *rest, double *ties)
{
    pyact_vd r[PYACT_VD_SUBS], t[PYACT_VD_SUBS], v, tie;
    ptrdiff_t i = 0, k, j;
    memcpy(r, rest, sizeof r);
    memcpy(t, ties, sizeof t);
    PYACT_FOR_EACH_SUB(i, j, n) {
        PYACT_LOAD_SUB(v, e, i, j);
        tie = (pyact_vd)((v == 1.0) & PYACT_ONE_BITS);
        r[j] += v - tie;
        t[j] += tie;
    }
    memcpy(rest, r, sizeof r);
    memcpy(ties, t, sizeof t);
    for (k = 0; i + k < n; k++) {
        double tie = e[i + k] == 1.0 ? 1.0 : 0.0;
        rest[k] += e[i + k] - tie;
        ties[k] += tie;
    }
}

/* The same for float64 data, exponentials e + el: rest + low accumulates them by
   error-free sums (two_sum of vmath.h, lane by lane).  A negative e (and its el)
   is a tiny term scaled by -2^600 (axis.pxi, _shifted_exp): scaled back here. */
static inline void pyact_add_exp_lanes_dd(const double *e, const double *el, ptrdiff_t n,
                                          double *rest, double *low, double *ties)
{
    pyact_vd r[PYACT_VD_SUBS], lo[PYACT_VD_SUBS], t[PYACT_VD_SUBS];
    pyact_vd v, vl, tie, term, s, bb;
    ptrdiff_t i = 0, k, j;
    memcpy(r, rest, sizeof r);
    memcpy(lo, low, sizeof lo);
    memcpy(t, ties, sizeof t);
    PYACT_FOR_EACH_SUB(i, j, n) {
        PYACT_LOAD_SUB(v, e, i, j);
        PYACT_LOAD_SUB(vl, el, i, j);
        pyact_vid tiny = v < 0.0;
        pyact_vd vs = v * -0x1p-600, vls = vl * -0x1p-600;
        v = (pyact_vd)(((pyact_vid)v & ~tiny) | ((pyact_vid)vs & tiny));
        vl = (pyact_vd)(((pyact_vid)vl & ~tiny) | ((pyact_vid)vls & tiny));
        tie = (pyact_vd)((v == 1.0) & PYACT_ONE_BITS);
        term = v - tie;
        s = r[j] + term;
        bb = s - r[j];
        lo[j] += ((r[j] - (s - bb)) + (term - bb)) + vl;
        r[j] = s;
        t[j] += tie;
    }
    memcpy(rest, r, sizeof r);
    memcpy(low, lo, sizeof lo);
    memcpy(ties, t, sizeof t);
    for (k = 0; i + k < n; k++) {
        int tiny = e[i + k] < 0.0;
        double ek = tiny ? e[i + k] * -0x1p-600 : e[i + k];
        double elk = tiny ? el[i + k] * -0x1p-600 : el[i + k];
        double tie = ek == 1.0 ? 1.0 : 0.0;
        double term = ek - tie;
        double s = rest[k] + term;
        double bb = s - rest[k];
        low[k] += ((rest[k] - (s - bb)) + (term - bb)) + elk;
        rest[k] = s;
        ties[k] += tie;
    }
}

/* Lane sums of the softmax family's gradients (csrc/axis.pxi, _backward_row):
   acc + low += g[i] (log_softmax) or += g[i] y[i] (softmax, softmin; float32 data,
   whose products are exact in double), by error-free sums, element i into lane
   i % 8: the arithmetic of _add_g / _add_gy, lane by lane. */
#define PYACT_TWO_SUM_INTO(acc, low, term)                                               \
    do {                                                                                 \
        pyact_vd t_ = (term), s_ = (acc) + t_, bb_ = s_ - (acc);                        \
        (low) += ((acc) - (s_ - bb_)) + (t_ - bb_);                                      \
        (acc) = s_;                                                                      \
    } while (0)

static inline void pyact_lanes_two_sum1(double *acc, double *low, double term)
{
    double s = *acc + term;
    double bb = s - *acc;
    *low += (*acc - (s - bb)) + (term - bb);
    *acc = s;
}

#define PYACT_DEFINE_ADD_G(T, SUFFIX)                                                     \
    static inline void pyact_add_g_lanes_##SUFFIX(const T *g, ptrdiff_t n, double *acc,  \
                                                  double *low)                           \
    {                                                                                    \
        typedef T vin __attribute__((vector_size(PYACT_VD_WIDTH * sizeof(T))));         \
        pyact_vd a[PYACT_VD_SUBS], lo[PYACT_VD_SUBS];                                    \
        vin v;                                                                           \
        ptrdiff_t i = 0, k, j;                                                           \
        memcpy(a, acc, sizeof a);                                                        \
        memcpy(lo, low, sizeof lo);                                                      \
        PYACT_FOR_EACH_SUB(i, j, n) {                                                    \
            PYACT_LOAD_SUB(v, g, i, j);                                                  \
            PYACT_TWO_SUM_INTO(a[j], lo[j], __builtin_convertvector(v, pyact_vd));       \
        }                                                                                \
        memcpy(acc, a, sizeof a);                                                        \
        memcpy(low, lo, sizeof lo);                                                      \
        for (k = 0; i + k < n; k++)                                                      \
            pyact_lanes_two_sum1(&acc[k], &low[k], (double)g[i + k]);                    \
    }

PYACT_DEFINE_ADD_G(float, f)
PYACT_DEFINE_ADD_G(double, d)

static inline void pyact_add_gy_lanes_f(const float *g, const float *y, ptrdiff_t n,
                                        double *acc, double *low)
{
    typedef float vin __attribute__((vector_size(PYACT_VD_WIDTH * sizeof(float))));
    pyact_vd a[PYACT_VD_SUBS], lo[PYACT_VD_SUBS];
    vin vg, vy;
    ptrdiff_t i = 0, k, j;
    memcpy(a, acc, sizeof a);
    memcpy(lo, low, sizeof lo);
    PYACT_FOR_EACH_SUB(i, j, n) {
        PYACT_LOAD_SUB(vg, g, i, j);
        PYACT_LOAD_SUB(vy, y, i, j);
        PYACT_TWO_SUM_INTO(a[j], lo[j], __builtin_convertvector(vg, pyact_vd) *
                                        __builtin_convertvector(vy, pyact_vd));
    }
    memcpy(acc, a, sizeof a);
    memcpy(low, lo, sizeof lo);
    for (k = 0; i + k < n; k++)
        pyact_lanes_two_sum1(&acc[k], &low[k], (double)g[i + k] * (double)y[i + k]);
}

#endif
