/* Row reductions of the softmax kernels (csrc/axis.pxi) in GCC/Clang vector
   types, so that they vectorise whatever the compiler's loop analysis makes of
   them (written as Cython lane loops they stayed scalar: a max reduction, and a
   sum with a select).  LANES = 8 partial results, element i going to lane i % 8,
   and the caller combines the lanes in lane order: the same arithmetic as the
   column loops of axis.pxi, so results stay bitwise independent of the loop
   shape and of the vector width.  (Not of the ISA level for float64 data: the
   baseline level evaluates vmath.h's polynomials without FMA, and its float64
   results can differ from avx2/avx512 in the last bit at near-ties; float32
   results agree on every level.)  Narrower targets split the vectors. */
#ifndef PYACT_LANES_H
#define PYACT_LANES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PYACT_LANES 8
#define PYACT_ONE_BITS 0x3ff0000000000000LL

typedef double pyact_v8d __attribute__((vector_size(8 * sizeof(double))));

/* macros, not functions: a function taking or returning a vector wider than the
   target's registers draws GCC's -Wpsabi note on the baseline build */
#define PYACT_LOAD8D(v, p) memcpy(&(v), (p), sizeof(pyact_v8d))
#define PYACT_STORE8D(p, v) memcpy((p), &(v), sizeof(pyact_v8d))

/* m = the lanes of v that beat m, m's elsewhere (ties and NaN keep m) */
#define PYACT_KEEP_GREATER(m, v, IV)                                                   \
    do {                                                                               \
        IV wins_ = (v) > (m);                                                          \
        (m) = (__typeof__(m))(((IV)(v) & wins_) | ((IV)(m) & ~wins_));                 \
    } while (0)

/* max over i < n of s * x[i], lane by lane, lanes combined in order; NaN never
   wins a comparison (a NaN entry poisons the slice's sum instead).  Four
   accumulators side by side (element i in accumulator (i / 8) % 4), so that the
   loop does not wait on one compare-and-select chain; the maximum is the same
   (only which of +0 and -0 wins a tie can differ, as between the loop shapes). */
#define PYACT_SCALED_MAX_STEP(m, p, IV)                                                \
    do {                                                                               \
        memcpy(&v, (p), sizeof v);                                                     \
        v = v * s;                                                                     \
        PYACT_KEEP_GREATER(m, v, IV);                                                  \
    } while (0)
#define PYACT_DEFINE_SCALED_MAX(T, IT, SUFFIX)                                         \
    typedef T pyact_v8##SUFFIX __attribute__((vector_size(8 * sizeof(T))));            \
    typedef IT pyact_v8i##SUFFIX __attribute__((vector_size(8 * sizeof(T))));          \
    static inline T pyact_scaled_max_##SUFFIX(const T *x, ptrdiff_t n, T s)            \
    {                                                                                  \
        T lane[PYACT_LANES];                                                           \
        pyact_v8##SUFFIX m0 = (pyact_v8##SUFFIX){0} - (T)__builtin_inf();              \
        pyact_v8##SUFFIX m1 = m0, m2 = m0, m3 = m0, v;                                 \
        ptrdiff_t i = 0, k;                                                            \
        for (; i + 4 * PYACT_LANES <= n; i += 4 * PYACT_LANES) {                       \
            PYACT_SCALED_MAX_STEP(m0, x + i, pyact_v8i##SUFFIX);                       \
            PYACT_SCALED_MAX_STEP(m1, x + i + PYACT_LANES, pyact_v8i##SUFFIX);         \
            PYACT_SCALED_MAX_STEP(m2, x + i + 2 * PYACT_LANES, pyact_v8i##SUFFIX);     \
            PYACT_SCALED_MAX_STEP(m3, x + i + 3 * PYACT_LANES, pyact_v8i##SUFFIX);     \
        }                                                                              \
        for (; i + PYACT_LANES <= n; i += PYACT_LANES)                                 \
            PYACT_SCALED_MAX_STEP(m0, x + i, pyact_v8i##SUFFIX);                       \
        PYACT_KEEP_GREATER(m0, m1, pyact_v8i##SUFFIX);                                 \
        PYACT_KEEP_GREATER(m0, m2, pyact_v8i##SUFFIX);                                 \
        PYACT_KEEP_GREATER(m0, m3, pyact_v8i##SUFFIX);                                 \
        memcpy(lane, &m0, sizeof m0);                                                  \
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
    pyact_v8d r, t, v, tie;
    ptrdiff_t i = 0, k;
    PYACT_LOAD8D(r, rest);
    PYACT_LOAD8D(t, ties);
    for (; i + PYACT_LANES <= n; i += PYACT_LANES) {
        PYACT_LOAD8D(v, e + i);
        tie = (pyact_v8d)((v == 1.0) & PYACT_ONE_BITS);
        r += v - tie;
        t += tie;
    }
    PYACT_STORE8D(rest, r);
    PYACT_STORE8D(ties, t);
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
    pyact_v8d r, lo, t, v, vl, tie, term, s, bb;
    ptrdiff_t i = 0, k;
    PYACT_LOAD8D(r, rest);
    PYACT_LOAD8D(lo, low);
    PYACT_LOAD8D(t, ties);
    for (; i + PYACT_LANES <= n; i += PYACT_LANES) {
        PYACT_LOAD8D(v, e + i);
        PYACT_LOAD8D(vl, el + i);
        pyact_v8id tiny = v < 0.0;
        pyact_v8d vs = v * -0x1p-600, vls = vl * -0x1p-600;
        v = (pyact_v8d)(((pyact_v8id)v & ~tiny) | ((pyact_v8id)vs & tiny));
        vl = (pyact_v8d)(((pyact_v8id)vl & ~tiny) | ((pyact_v8id)vls & tiny));
        tie = (pyact_v8d)((v == 1.0) & PYACT_ONE_BITS);
        term = v - tie;
        s = r + term;
        bb = s - r;
        lo += ((r - (s - bb)) + (term - bb)) + vl;
        r = s;
        t += tie;
    }
    PYACT_STORE8D(rest, r);
    PYACT_STORE8D(low, lo);
    PYACT_STORE8D(ties, t);
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
        pyact_v8d t_ = (term), s_ = (acc) + t_, bb_ = s_ - (acc);                       \
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
        typedef T vin __attribute__((vector_size(8 * sizeof(T))));                      \
        pyact_v8d a, lo;                                                                 \
        vin v;                                                                           \
        ptrdiff_t i = 0, k;                                                              \
        PYACT_LOAD8D(a, acc);                                                            \
        PYACT_LOAD8D(lo, low);                                                           \
        for (; i + PYACT_LANES <= n; i += PYACT_LANES) {                                 \
            memcpy(&v, g + i, sizeof v);                                                 \
            PYACT_TWO_SUM_INTO(a, lo, __builtin_convertvector(v, pyact_v8d));             \
        }                                                                                \
        PYACT_STORE8D(acc, a);                                                           \
        PYACT_STORE8D(low, lo);                                                          \
        for (k = 0; i + k < n; k++)                                                      \
            pyact_lanes_two_sum1(&acc[k], &low[k], (double)g[i + k]);                    \
    }

PYACT_DEFINE_ADD_G(float, f)
PYACT_DEFINE_ADD_G(double, d)

static inline void pyact_add_gy_lanes_f(const float *g, const float *y, ptrdiff_t n,
                                        double *acc, double *low)
{
    typedef float v8f __attribute__((vector_size(8 * sizeof(float))));
    pyact_v8d a, lo;
    v8f vg, vy;
    ptrdiff_t i = 0, k;
    PYACT_LOAD8D(a, acc);
    PYACT_LOAD8D(lo, low);
    for (; i + PYACT_LANES <= n; i += PYACT_LANES) {
        memcpy(&vg, g + i, sizeof vg);
        memcpy(&vy, y + i, sizeof vy);
        PYACT_TWO_SUM_INTO(a, lo, __builtin_convertvector(vg, pyact_v8d) *
                                  __builtin_convertvector(vy, pyact_v8d));
    }
    PYACT_STORE8D(acc, a);
    PYACT_STORE8D(low, lo);
    for (k = 0; i + k < n; k++)
        pyact_lanes_two_sum1(&acc[k], &low[k], (double)g[i + k] * (double)y[i + k]);
}

#endif
