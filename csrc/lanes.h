/* Row reductions of the softmax kernels (csrc/axis.pxi) in GCC/Clang vector
   types, so that they vectorise whatever the compiler's loop analysis makes of
   them (written as Cython lane loops they stayed scalar: a max reduction, and a
   sum with a select).  LANES = 8 partial results, element i going to lane i % 8,
   and the caller combines the lanes in lane order: the same arithmetic as the
   column loops of axis.pxi, so results stay bitwise independent of the loop
   shape and of the ISA level.  Narrower targets split the vectors. */
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

/* max over i < n of s * x[i], lane by lane, lanes combined in order; NaN never
   wins a comparison (a NaN entry poisons the slice's sum instead). */
#define PYACT_DEFINE_SCALED_MAX(T, IT, SUFFIX)                                         \
    typedef T pyact_v8##SUFFIX __attribute__((vector_size(8 * sizeof(T))));            \
    typedef IT pyact_v8i##SUFFIX __attribute__((vector_size(8 * sizeof(T))));          \
    static inline T pyact_scaled_max_##SUFFIX(const T *x, ptrdiff_t n, T s)            \
    {                                                                                  \
        T lane[PYACT_LANES];                                                           \
        pyact_v8##SUFFIX m = (pyact_v8##SUFFIX){0} - (T)__builtin_inf();               \
        ptrdiff_t i = 0, k;                                                            \
        for (; i + PYACT_LANES <= n; i += PYACT_LANES) {                               \
            pyact_v8##SUFFIX v;                                                        \
            memcpy(&v, x + i, sizeof v);                                               \
            v = v * s;                                                                 \
            pyact_v8i##SUFFIX wins = v > m;                                            \
            m = (pyact_v8##SUFFIX)(((pyact_v8i##SUFFIX)v & wins) |                     \
                                   ((pyact_v8i##SUFFIX)m & ~wins));                    \
        }                                                                              \
        memcpy(lane, &m, sizeof m);                                                    \
        for (k = 0; i + k < n; k++) {                                                  \
            T v = s * x[i + k];                                                        \
            lane[k] = v > lane[k] ? v : lane[k];                                       \
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
   error-free sums (two_sum of vmath.h, lane by lane). */
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
        double tie = e[i + k] == 1.0 ? 1.0 : 0.0;
        double term = e[i + k] - tie;
        double s = rest[k] + term;
        double bb = s - rest[k];
        low[k] += ((rest[k] - (s - bb)) + (term - bb)) + el[i + k];
        rest[k] = s;
        ties[k] += tie;
    }
}

#endif
