# Kernels of the axis functions (softmax, log_softmax, softmin) and of their
# vector-Jacobian products.
#
# Buffers are C-contiguous and seen as (outer, n, inner): the function is taken
# along the middle axis (length n, stride inner), so any axis of a C array is
# reduced in place, without a transposed copy.  Three loop shapes share one
# arithmetic:
#
# * long rows (inner == 1, n > SHORT_ROW, or SHORT_ROW_VJP for the vjp): one row
#   at a time, its reductions split over LANES independent partial accumulators
#   (element i goes to lane i % LANES), so the max and the sums vectorise along
#   the row;
# * short rows (inner == 1, n up to those): COLS rows at a time, transposed into
#   a small tile, then reduced as columns (vectorised across rows);
# * a strided axis (inner > 1): up to COLS neighbouring columns at a time,
#   straight from the buffer (vectorised over the contiguous inner axis).
#
# The column loops keep the same LANES partial accumulators per column and
# combine them in the same fixed order as the row loop, so every slice gets
# bitwise the same result whichever loop shape handles it: results depend on
# the data only (not on the axis, the layout, or how rows are split between
# threads; each row or column block is independent of the others).
#
# Arithmetic in double, vectorised (csrc/vmath.h).  float32 data: exponentials
# and sums in double, each output rounded once.  float64 data: the same steps
# as double-double pairs (hi + lo) where a rounding would show in the result: the
# shift x - max (whose rounding exp would amplify), the exponentials, the sums,
# the reciprocal of the sum and the final product; each output rounded once.

from libc.math cimport INFINITY, NAN
from libc.stdlib cimport malloc, free

cdef extern from "vmath.h" nogil:
    const int VM_HAS_FMA
    double vm_exp_or_expm1_dd(double x, int minus_one, int fine, double *lo)
    double vm_exp_normal_d32(double x)
    double vm_exp_scaled_normal(double x, int extra, double *lo)
    double vm_exp_or_expm1_d32(double x, int minus_one)
    double vm_log1p_pair(double h, double l, double *lo)
    double vm_log1p_d32(double h)

cdef extern from "constants.h" nogil:
    double PYACT_VJP_TINY_Y, PYACT_VJP_Y_UP, PYACT_VJP_Y_DOWN

cdef extern from "lanes.h" nogil:
    float pyact_scaled_max_f(const float *x, Py_ssize_t n, float s)
    double pyact_scaled_max_d(const double *x, Py_ssize_t n, double s)
    void pyact_add_exp_lanes(const double *e, Py_ssize_t n, double *rest, double *ties)
    void pyact_add_exp_lanes_dd(const double *e, const double *el, Py_ssize_t n,
                                double *rest, double *low, double *ties)
    void pyact_add_g_lanes_f(const float *g, Py_ssize_t n, double *acc, double *low)
    void pyact_add_g_lanes_d(const double *g, Py_ssize_t n, double *acc, double *low)
    void pyact_add_gy_lanes_f(const float *g, const float *y, Py_ssize_t n, double *acc,
                              double *low)

cdef extern from "exp_dw.h" nogil:
    double PYACT_EXP_DW_MAX
    ctypedef struct pyact_exp_dw_memo:
        double y
    double pyact_log_softmax_vjp_exact(double g, double y, double acc, double low,
                                       pyact_exp_dw_memo* memo)
    long double pyact_ld_product_error(long double a, long double b, long double p)

cdef extern from "transpose.h" nogil:
    enum: PYACT_TILE_COLS, PYACT_TD_WIDTH
    void pyact_tile_in_f(float *tile, const float *block, Py_ssize_t n)
    void pyact_tile_in_d(double *tile, const double *block, Py_ssize_t n)
    void pyact_tile_out_f(float *block, const float *tile, Py_ssize_t n)
    void pyact_tile_out_d(double *block, const double *tile, Py_ssize_t n)

cdef enum:
    MODE_SOFTMAX = 0
    MODE_LOG_SOFTMAX = 1
    MODE_SOFTMIN = 2

AXIS_MODES = {"softmax": MODE_SOFTMAX, "log_softmax": MODE_LOG_SOFTMAX,
              "softmin": MODE_SOFTMIN}

cdef enum:
    LANES = 8            # partial accumulators per slice (part of the arithmetic)
    COLS = PYACT_TILE_COLS   # slices handled side by side by the column loops (16)
    SHORT_ROW = 63       # rows up to this length go through the transposed tiles
                         # (rows of 33-63 ran 0.55-0.98x the time of the row loop,
                         # except at 48 and 56, where the row loop has no tail: float32
                         # softmax 1.11x, float64 0.94-1.01x; at 64-128 the tiles took
                         # 1.04-1.46x, but float64 log_softmax 0.87-1.07x)
    SHORT_ROW_VJP = 23   # the same for the vjp (rows of 17-23 ran 0.48-0.92x the
                         # time through the tiles; at 24 0.87-1.15x, at 32-128
                         # 1.01-1.89x)
    TILE_SQUARES_F64 = 13    # full float64 tiles of rows up to this length are copied by
                             # square transposes (rows of 8-13: 0.71-0.86x the time of
                             # the tile-row and slice copies; 16-48: 0.83-1.10x)
    CHUNK = 4096         # exponentials of a slice held in scratch at a time
    CHUNK_ROWS = CHUNK // COLS   # the same for the column loops (COLS slices at once)
    LONG_ROW_CAP = 1 << 21       # exponentials of a long row held on the heap (16 MiB)

# -ln 2: below it log_softmax's vjp uses exp(y) itself, above exp(y) - 1.
cdef double MINUS_LN2 = -0.6931471805599453


# ---- shared steps -------------------------------------------------------------------

# hi += term (+ term_lo): plain for float32 data, an error-free pair for float64.
cdef inline void _add_pair(double* hi, double* lo, double term, double term_lo,
                           floating like) noexcept nogil:
    cdef double err
    if floating is float:
        hi[0] += term
    else:
        hi[0] = vm_two_sum(hi[0], term, &err)
        lo[0] += err + term_lo


# e^(v - m) as hi + *lo, and *d = v - m (rounded).  float32: v - m is exact in
# double and lo = 0.  float64: v - m = d + dl exactly and e^(d + dl) = e^d (1 + dl).
# float64 below d = -600 (TINY_SHIFT): the pair is -2^600 e^(v - m), normal where
# e^(v - m) itself would be subnormal and lose the digits of its low part (the
# output was 1.69 ULP off there); the sign marks it.  The sums scale it back
# (_add_term, lanes.h: log_softmax of a dominant entry is -(the sum of the tiny
# terms)), the outputs too, with a single rounding (_softmax_out).
cdef double TINY_SHIFT = -600
cdef double TINY_DOWN = 2.409919865102884e-181   # 2**-600
cdef enum:
    TINY_BITS = 600
# d is clamped here: e^-800 2^600 = 2^-554 is normal, and such terms add less than
# 2^-1100 to a sum of at least 1 for any row that fits in memory (-inf included).
cdef double EXP_FLOOR = -800

cdef inline double _shifted_exp(floating v, floating m, double* d, double* lo) noexcept nogil:
    cdef double dl, eh, el
    cdef bint tiny
    if floating is float:
        d[0] = <double>v - <double>m
        lo[0] = 0
        # float32-grade polynomial (~2^-37 relative) and one scale, d clamped at -700
        # (e^-700 is normal; such terms are far below float32's subnormals), but 0
        # where e^d underflows in double (d < -1075 ln2, -inf included), as before:
        # the sign of a zero log_softmax output depends on whether they are 0
        return 0.0 if d[0] < -745.1332191019411 else vm_exp_normal_d32(
            -700.0 if d[0] < -700 else d[0])
    else:
        d[0] = vm_two_sum(v, -m, &dl)
        tiny = d[0] < TINY_SHIFT
        eh = vm_exp_scaled_normal(EXP_FLOOR if d[0] < EXP_FLOOR else d[0],
                                  TINY_BITS if tiny else 0, &el)
        el = (el + eh * dl) if d[0] > EXP_FLOOR else 0   # d = -inf: dl is NaN
        lo[0] = -el if tiny else el
        return -eh if tiny else eh


# ---- forward ----------------------------------------------------------------------
#
# Per slice: m = max(s x) (s = -1 for softmin, else 1; NaN never wins the
# comparison and reaches the sum instead), d_i = s x_i - m, and the sum of
# exp(d_i) split as ties (entries equal to the max, each exp(0) = 1) plus the
# rest, so that log(sum) = log1p(rest + ties - 1) keeps its accuracy when one
# logit dominates.  A NaN d (NaN entry, +inf entry, or an all -inf slice) is
# added as is and poisons the slice; -inf entries give exp(-inf) = 0 exactly.
# rest is summed in LANES partial sums (lane i % LANES), added up in lane order.

cdef inline double _rest_term(double d, double e) noexcept nogil:
    return e if d < 0 else (0 if d == 0 else d)


# The slice's total = rest + ties - 1 (>= 0) from its lane sums, into rest[0], low[0].
cdef inline void _slice_total(double* rest, double* low, double* ties,
                              floating like) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(1, LANES):
        _add_pair(&rest[0], &low[0], rest[k], low[k], like)
        ties[0] += ties[k]
    _add_pair(&rest[0], &low[0], ties[0] - 1, 0, like)


# One output of log_softmax: (v - m) - log_sum (both terms <= 0: no cancellation).
# float64: v - shift, with shift = m + log_sum as a pair formed once per slice
# (_log_shift): v - shift by one two_sum, exact, where (v - m) - log_sum took two.
cdef inline double _log_shift(double m, double log_sum, double log_sum_lo,
                              double* shift_lo) noexcept nogil:
    cdef double se
    cdef double shift = vm_two_sum(m, log_sum, &se)
    shift_lo[0] = se + log_sum_lo
    return shift

cdef inline floating _log_softmax_out(floating v, floating m, double log_sum, double shift,
                                      double shift_lo) noexcept nogil:
    cdef double r, re, c
    if floating is float:
        return <floating>((<double>v - <double>m) - log_sum)
    else:
        r = vm_two_sum(v, -shift, &re)
        c = re - shift_lo
        return r + (c if c == c else 0)   # v = -inf: the correction is NaN, r is -inf


# One output of softmax: e * (1/sum), from e = eh + el and 1/sum = rh + rl.
cdef inline floating _softmax_out(double eh, double el, double rh, double rl,
                                  floating like) noexcept nogil:
    cdef double r
    cdef bint tiny
    if floating is float:
        return <floating>(eh * rh)
    else:
        tiny = eh < 0   # -2^600 e (see _shifted_exp): scaled back once at the end
        eh = -eh if tiny else eh
        el = -el if tiny else el
        r = vm_prod_plus(eh, rh, eh * rl + el * rh)
        return r * TINY_DOWN if tiny else r


# 1/(1 + total) as rh + *rl.
cdef inline double _reciprocal_sum(double total, double total_lo, double* rl) noexcept nogil:
    cdef double sl
    cdef double sh = vm_two_sum(1.0, total, &sl)
    return vm_dd_div_moderate(1.0, 0.0, sh, sl + total_lo, rl)


# log(1 + total) as hi + *lo: a pair for float64 data; float32 data needs no more
# than float32 grade (~2^-33 relative: |log_softmax| >= log_sum, so the outputs'
# error from it is as small), and the pair took a tenth of the time of float32
# log_softmax over rows of 10 to 100.
cdef inline double _log_sum(double total, double total_lo, double* lo,
                            floating like) noexcept nogil:
    if floating is float:
        lo[0] = 0
        return vm_log1p_d32(total)
    return vm_log1p_pair(total, total_lo, lo)


# The exponentials of a slice are computed a chunk at a time into scratch by a
# plain elementwise loop (which vectorises like the elementwise kernels), and
# then added into the lane sums; softmax reuses them for its outputs when the
# slice fits in one chunk (a long row gets a chunk of its length on the heap,
# _forward_tasks), and recomputes them chunk by chunk otherwise.
# An exponential of exactly 1 counts as a tie (its d is 0, or so close to 0
# that e^d rounds to 1: the total is the same).

cdef inline void _add_term(double* rest, double* low, double* ties, double e,
                           double e_lo, floating like) noexcept nogil:
    cdef double tie = 1 if e == 1 else 0
    cdef bint tiny
    if floating is double:
        tiny = e < 0   # a scaled tiny term (_shifted_exp), as in lanes.h
        e = -e * TINY_DOWN if tiny else e
        e_lo = -e_lo * TINY_DOWN if tiny else e_lo
    _add_pair(rest, low, e - tie, e_lo, like)
    ties[0] += tie


cdef inline void _exp_run(const floating* x, Py_ssize_t n, floating fsign, floating m,
                          double* eh, double* el) noexcept nogil:
    """eh[i] (+ el[i] for float64) = exp(fsign x[i] - m), i < n; eh and el have room
    for n rounded up to a multiple of LANES.  GCC ends the loop with one
    half-width vector step (4 doubles on AVX-512; 8 for float32 data, whose loop
    steps by 16), then scalar steps of ~17 ns an exponential.  Where those would be
    needed (n % 4 != 0; float32 n % 8 != 0), the last LANES exponentials are
    computed again as one full block, straight from x (rows of 103 took 1.07-1.16x
    as long without it, float32 rows of 100 1.05-1.17x); a run shorter than LANES
    goes through a block of copies (the rest of it x[0], their results unused)."""
    cdef double d, lo
    # the shortest vector step of GCC's loop, before its scalar steps
    cdef Py_ssize_t last_step = LANES if floating is float else LANES // 2
    cdef Py_ssize_t i, body = n - n % LANES if n % last_step else n
    cdef floating tail[LANES]
    for i in range(body):
        eh[i] = _shifted_exp(fsign * x[i], m, &d, &lo)
        if floating is double:
            el[i] = lo
    if body == n:
        return
    if n >= LANES:   # the last LANES again, straight from x (no scratch copy to wait on)
        for i in range(LANES):
            eh[n - LANES + i] = _shifted_exp(fsign * x[n - LANES + i], m, &d, &lo)
            if floating is double:
                el[n - LANES + i] = lo
        return
    for i in range(LANES):
        tail[i] = x[0]
    for i in range(n - body):
        tail[i] = x[body + i]
    for i in range(LANES):
        eh[body + i] = _shifted_exp(fsign * tail[i], m, &d, &lo)
        if floating is double:
            el[body + i] = lo


cdef void _forward_row(const floating* x, floating* out, Py_ssize_t n, int mode,
                       double* scratch, Py_ssize_t cap) noexcept nogil:
    """One contiguous row; scratch holds 2 * cap doubles (cap a multiple of LANES)."""
    cdef floating fsign = -1 if mode == MODE_SOFTMIN else 1
    cdef double rest[LANES]
    cdef double low[LANES]
    cdef double ties[LANES]
    cdef floating m
    cdef double log_sum, log_lo, shift, shift_lo, rh, rl
    cdef double* eh = scratch
    cdef double* el = scratch + cap
    cdef Py_ssize_t i, k, chunk, c0, c
    # the reductions along the row: csrc/lanes.h (the same lanes as the column loops)
    if floating is float:
        m = pyact_scaled_max_f(x, n, fsign)
    else:
        m = pyact_scaled_max_d(x, n, fsign)
    for k in range(LANES):
        rest[k] = 0
        low[k] = 0
        ties[k] = 0
    for chunk in range((n + cap - 1) // cap):   # cap is a multiple of LANES
        c0 = chunk * cap
        c = min(cap, n - c0)
        _exp_run(x + c0, c, fsign, m, eh, el)
        if floating is float:
            pyact_add_exp_lanes(eh, c, rest, ties)
        else:
            pyact_add_exp_lanes_dd(eh, el, c, rest, low, ties)
    _slice_total(rest, low, ties, m)
    if mode == MODE_LOG_SOFTMAX:
        log_sum = _log_sum(rest[0], low[0], &log_lo, m)
        shift = _log_shift(m, log_sum, log_lo, &shift_lo)
        for i in range(n):
            out[i] = _log_softmax_out(fsign * x[i], m, log_sum, shift, shift_lo)
        return
    rh = _reciprocal_sum(rest[0], low[0], &rl)
    for chunk in range((n + cap - 1) // cap):
        c0 = chunk * cap
        c = min(cap, n - c0)
        if n > cap:
            _exp_run(x + c0, c, fsign, m, eh, el)
        for i in range(c):
            out[c0 + i] = _softmax_out(eh[i], el[i] if floating is double else 0, rh, rl, m)


cdef void _forward_cols(const floating* x, Py_ssize_t ldx, floating* out, Py_ssize_t ldo,
                        Py_ssize_t n, Py_ssize_t w, int mode, double* scratch) noexcept nogil:
    """w <= COLS slices side by side: slice j is x[i * ldx + j], i < n (out likewise).

    The same arithmetic as _forward_row, slice by slice; scratch holds 2 * CHUNK
    doubles (CHUNK_ROWS rows of COLS)."""
    cdef floating fsign = -1 if mode == MODE_SOFTMIN else 1
    cdef floating m[COLS]
    cdef double rest[LANES][COLS]
    cdef double low[LANES][COLS]
    cdef double ties[COLS]
    cdef double total[COLS]
    cdef double total_lo[COLS]
    cdef double shift[COLS]
    cdef double shift_lo[COLS]
    cdef floating v
    cdef double d, lo
    cdef double* eh = scratch
    cdef double* el = scratch + CHUNK
    cdef Py_ssize_t i, j, k, chunk, i0, c
    for j in range(COLS):   # every column: the per-slice steps below run over all
        m[j] = -INFINITY    # COLS (vectorised), their results used for the first w
    for i in range(n):
        for j in range(w):
            v = fsign * x[i * ldx + j]
            m[j] = v if v > m[j] else m[j]
    # every column, used or not: a clear of constant size is a few vector stores,
    # one of w columns was a `rep stos` per lane (12 % of softmax over rows of 10)
    for k in range(LANES):
        for j in range(COLS):
            rest[k][j] = 0
            low[k][j] = 0
    for j in range(COLS):
        ties[j] = 0
    for chunk in range((n + CHUNK_ROWS - 1) // CHUNK_ROWS):   # a multiple of LANES
        i0 = chunk * CHUNK_ROWS
        c = min(<Py_ssize_t>CHUNK_ROWS, n - i0)
        for i in range(c):
            for j in range(w):
                eh[i * COLS + j] = _shifted_exp(fsign * x[(i0 + i) * ldx + j], m[j], &d, &lo)
                if floating is double:
                    el[i * COLS + j] = lo
        k = 0
        for i in range(c):
            for j in range(w):
                _add_term(&rest[k][j], &low[k][j], &ties[j], eh[i * COLS + j],
                          el[i * COLS + j] if floating is double else 0, m[0])
            k = 0 if k == LANES - 1 else k + 1
    # _slice_total, column by column (the same order of additions)
    for k in range(1, LANES):
        for j in range(w):
            _add_pair(&rest[0][j], &low[0][j], rest[k][j], low[k][j], m[0])
    for j in range(w):
        _add_pair(&rest[0][j], &low[0][j], ties[j] - 1, 0, m[0])
    # once per slice, but over all COLS columns: a loop of w stayed scalar (float32
    # log_softmax over rows of 10 spent a quarter of its time in scalar log1p)
    if mode == MODE_LOG_SOFTMAX:
        for j in range(COLS):
            total[j] = _log_sum(rest[0][j], low[0][j], &total_lo[j], m[0])
        for j in range(COLS):
            shift[j] = _log_shift(m[j], total[j], total_lo[j], &shift_lo[j])
        for i in range(n):
            for j in range(w):
                out[i * ldo + j] = _log_softmax_out(fsign * x[i * ldx + j], m[j], total[j],
                                                    shift[j], shift_lo[j])
        return
    for j in range(COLS):
        total[j] = _reciprocal_sum(rest[0][j], low[0][j], &total_lo[j])
    for chunk in range((n + CHUNK_ROWS - 1) // CHUNK_ROWS):
        i0 = chunk * CHUNK_ROWS
        c = min(<Py_ssize_t>CHUNK_ROWS, n - i0)
        if n > CHUNK_ROWS:
            for i in range(c):
                for j in range(w):
                    eh[i * COLS + j] = _shifted_exp(fsign * x[(i0 + i) * ldx + j], m[j], &d, &lo)
                    if floating is double:
                        el[i * COLS + j] = lo
        # a loop of its own: with the recomputation inside (under a loop-invariant
        # test) GCC left it scalar, and float64 softmax over rows of 10 took 1.37x
        # as long
        for i in range(c):
            for j in range(w):
                out[(i0 + i) * ldo + j] = _softmax_out(
                    eh[i * COLS + j], el[i * COLS + j] if floating is double else 0,
                    total[j], total_lo[j], m[0])


# ---- vector-Jacobian products -----------------------------------------------------
#
# The softmax vjp y (g - sum(g y)) cancels where g_i is close to the dot product,
# so the dot product is kept as an unevaluated sum acc + low + low2: exact
# products (float32 products are exact in double; float64 ones come from
# two_prod) added with error-free sums, in LANES partial sums added up in lane
# order.  float64 needs the third part: near a one-hot y the result is the
# rounding-error part of the sum itself (~1e-23 against g ~ 1), which a plain
# double low part would carry to ~1 ULP only.  float32 keeps low2 = 0.

cdef inline void _add_gy(double* acc, double* low, double* low2, floating g,
                         floating y) noexcept nogil:
    cdef double p, pe, err, e1, e2
    if floating is float:
        p = <double>g * <double>y
        acc[0] = vm_two_sum(acc[0], p, &err)
        low[0] += err
    else:
        p = vm_two_prod(g, y, &pe)
        acc[0] = vm_two_sum(acc[0], p, &err)
        low[0] = vm_two_sum(low[0], err, &e1)
        low[0] = vm_two_sum(low[0], pe, &e2)
        low2[0] += e1 + e2


cdef inline void _add_g(double* acc, double* low, floating g) noexcept nogil:
    cdef double err
    acc[0] = vm_two_sum(acc[0], g, &err)
    low[0] += err


# (acc, low, low2)[0] += (acc, low, low2)[k]: combining two lanes.
cdef inline void _add_lane(double* acc, double* low, double* low2, double acc_k, double low_k,
                           double low2_k, floating like) noexcept nogil:
    cdef double err, e1, e2
    acc[0] = vm_two_sum(acc[0], acc_k, &err)
    if floating is float:
        low[0] += err + low_k
    else:
        low[0] = vm_two_sum(low[0], err, &e1)
        low[0] = vm_two_sum(low[0], low_k, &e2)
        low2[0] += (e1 + e2) + low2_k


cdef inline double _log_softmax_vjp_terms(double g, double y, double acc, double low,
                                          double* size) noexcept nogil:
    """g - exp(y) (acc + low) in pairs, rounded once, and in *size the magnitude
    of the terms that cancel in it (the result's error is ~2^-60 of that).
    For a dominant class (exp(y) > 1/2) exp(y) = 1 + expm1(y): g - sum(g) is
    then exact and the rounding of the small expm1(y) hardly matters; elsewhere
    exp(y) <= 1/2 is used directly."""
    cdef double tl, th, bh, bl, p, pe, r, re
    cdef int use_m1 = y > MINUS_LN2
    th = vm_exp_or_expm1_dd(y, use_m1, 1, &tl)   # fine: ~2^-60 relative
    bh = vm_two_sum(g, -acc if use_m1 else 0.0, &bl)
    bl -= low if use_m1 else 0.0
    p = vm_two_prod(th, acc, &pe)
    r = vm_two_sum(bh, -p, &re)
    size[0] = fabs(bh) + fabs(p)
    return r + (((re + bl) - pe) - (th * low + tl * acc))


# float32 data: the same split in plain double with float32-grade exponentials
# (~2^-36 relative): the error left is ~2^-36 of the cancelling terms, under 2^-27
# of the result where they cancel by at most 8 bits; the slice loops take the others
# again (_log_softmax_vjp_rare).  *size is |base| alone: where the two terms cancel
# it is the size of both, and elsewhere the result is not below 2^-8 of it.  A
# third of the time of the pairs, and it vectorises.
cdef inline double _log_softmax_vjp_f32(double g, double y, double acc, double low,
                                        double* size) noexcept nogil:
    cdef int use_m1 = y > MINUS_LN2
    cdef double t = vm_exp_or_expm1_d32(y, use_m1)
    cdef double base = ((g - acc) - low) if use_m1 else g
    size[0] = fabs(base)
    return base - t * (acc + low)


# One softmax/softmin vjp element from the slice's acc + low + low2 = sum(g y),
# evaluated in pairs and rounded once.  float64: g - acc - low by two error-free
# sums, since near a one-hot y g - acc and low are both of the result's size
# (adding low to the rounding part instead cost 1.03 ULP of the slice's largest
# result: found by the property tests).  y (d + dl) is vm_prod_plus: one fma where
# the level has one (two_prod and two additions cost 1.14x the time of the long-row
# vjp).  A y below 2^-900 is scaled by 2^200 for the product and the result
# scaled back last (PYACT_VJP_*): y dl (and two_prod's error term) underflow
# otherwise (subnormal results were 1.02 ULP off without an FMA, results near
# 2^-1022 0.82 ULP with one).
# Those y (and y = +-0, whose result takes the sign of y d, not that of y dl) only
# occur in slices whose smallest y is below 2^-900: any_tiny, known per slice, keeps
# the test and the scaling out of the other slices' loops.
cdef inline floating _softmax_vjp_element(floating g, floating y, double acc, double low,
                                          double low2, double sign,
                                          bint any_tiny) noexcept nogil:
    cdef double t, tl, u, ul, d, dl, p, ys
    cdef bint tiny
    if floating is float:
        # g - acc is exact where the two are within a factor 2 (Sterbenz); elsewhere its
        # rounding is 2^-53 of |g - acc|, which is far below a float32 ULP of the
        # slice's largest result even where low then cancels it (there |g - acc| ~
        # |low| <= n 2^-53 sum |g y|, and the largest result is >= sum |g y| / n).
        # An error-free g - acc cost 7 more additions per element.
        return <floating>(sign * y * ((g - acc) - low))
    t = vm_two_sum(g, -acc, &tl)
    u = vm_two_sum(t, -low, &ul)
    d = vm_fast_two_sum(u, ul + (tl - low2), &dl)
    if VM_HAS_FMA and not any_tiny:
        return <floating>(sign * vm_prod_plus(y, d, y * dl))
    tiny = y < PYACT_VJP_TINY_Y
    ys = y * (PYACT_VJP_Y_UP if tiny else 1.0)
    p = vm_prod_plus(ys, d, ys * dl) if ys != 0 else ys * d
    return <floating>((sign * p) * (PYACT_VJP_Y_DOWN if tiny else 1.0))


cdef inline double _log_softmax_vjp_wide(double g, double y, double acc, double low,
                                         double* size) noexcept nogil:
    cdef long double t, base, p
    if y > MINUS_LN2:
        t = expm1l(<long double>y)
        base = (<long double>g - acc) - low
    else:
        t = expl(<long double>y)
        base = g
    p = t * acc
    size[0] = <double>(fabsl(base) + fabsl(p))
    return <double>(((base - p) - pyact_ld_product_error(t, acc, p)) - t * low)


# The elements a slice loop flags, where g - e^y sum(g) cancels by more bits than its
# exponentials keep (r and size: the loop's result and the size of its cancelling
# terms).  float32 data first with exp in double pairs (~2^-60 relative: enough to
# 2^-30 of the result for 30 bits of cancellation); then long double (expl, ~2^-63:
# enough for 7 bits), skipped where the pairs already show more; then exp_dw.h
# (~2^-115, ~0.35 us an element on Zen 3, 0.06 where y repeats: a row of equal
# logits with g = 1 cancels by ~53 bits).  y > 0 is not a log-probability (exp(y)
# may be huge): not in pairs.
cdef double _log_softmax_vjp_rare(double g, double y, double acc, double low, double r,
                                  double size, bint float_data,
                                  pyact_exp_dw_memo* memo) noexcept nogil:
    if float_data and y <= 0:
        r = _log_softmax_vjp_terms(g, y, acc, low, &size)
        if size <= 1073741824.0 * fabs(r):   # 2^30
            return r
    if not (y <= 0 and size > 128 * fabs(r)):
        r = _log_softmax_vjp_wide(g, y, acc, low, &size)
        if size <= 128 * fabs(r):
            return r
    if not (size <= DBL_MAX) or not (fabs(y) <= PYACT_EXP_DW_MAX):
        return r   # NaN and infinite terms: nothing cancels there
    return pyact_log_softmax_vjp_exact(g, y, acc, low, memo)


cdef inline double _log_softmax_vjp_fast(floating g, floating y, double acc, double low,
                                         double* size) noexcept nogil:
    if floating is float:
        return _log_softmax_vjp_f32(g, y, acc, low, size)
    return _log_softmax_vjp_terms(g, y, acc, low, size)


# float64: cancellation by more than 4 bits (~0.1 ULP of error left), or y > 0;
# float32: by more than 8 bits (also an exact 0 from terms that are not).
cdef inline bint _log_softmax_vjp_flagged(double r, double size, floating y) noexcept nogil:
    if floating is float:
        return size > 256 * fabs(r)
    return (size > 16 * fabs(r)) | (y > 0)


cdef enum:
    VJP_CHUNK = 256   # log_softmax vjp results held on the stack at a time


cdef void _log_softmax_vjp_slice(const floating* grad, const floating* y, floating* out,
                                 Py_ssize_t n, Py_ssize_t stride, double acc,
                                 double low) noexcept nogil:
    """One log_softmax slice (element i at i * stride), a chunk at a time: results
    and the size of their cancelling terms into stack buffers (out may be grad or
    y), then stored, or the flagged ones computed again (_log_softmax_vjp_rare)."""
    cdef double r[VJP_CHUNK]
    cdef double size[VJP_CHUNK]
    cdef Py_ssize_t i, j, chunk, i0, c, flagged
    cdef pyact_exp_dw_memo memo
    memo.y = NAN
    for chunk in range((n + VJP_CHUNK - 1) // VJP_CHUNK):
        i0 = chunk * VJP_CHUNK
        c = min(<Py_ssize_t>VJP_CHUNK, n - i0)
        flagged = 0
        for i in range(c):
            j = (i0 + i) * stride
            r[i] = _log_softmax_vjp_fast(grad[j], y[j], acc, low, &size[i])
            flagged += _log_softmax_vjp_flagged(r[i], size[i], y[j])
        if flagged == 0:
            for i in range(c):
                out[(i0 + i) * stride] = <floating>r[i]
            continue
        for i in range(c):
            j = (i0 + i) * stride
            out[j] = <floating>(
                _log_softmax_vjp_rare(grad[j], y[j], acc, low, r[i], size[i], floating is float,
                                      &memo)
                if _log_softmax_vjp_flagged(r[i], size[i], y[j]) else r[i])


cdef void _log_softmax_vjp_cols(const floating* grad, const floating* y, floating* out,
                                Py_ssize_t ld, Py_ssize_t n, Py_ssize_t w,
                                const double* acc, const double* low) noexcept nogil:
    """_log_softmax_vjp_slice for w <= COLS slices side by side (slice j at
    i * ld + j, its sums acc[j] + low[j]), vectorised across the slices."""
    cdef double r[VJP_CHUNK]
    cdef double size[VJP_CHUNK]
    cdef Py_ssize_t i, j, chunk, i0, c, flagged, rows = VJP_CHUNK // COLS
    cdef pyact_exp_dw_memo memo
    memo.y = NAN
    for chunk in range((n + rows - 1) // rows):
        i0 = chunk * rows
        c = min(rows, n - i0)
        flagged = 0
        for i in range(c):
            for j in range(w):
                r[i * COLS + j] = _log_softmax_vjp_fast(
                    grad[(i0 + i) * ld + j], y[(i0 + i) * ld + j], acc[j], low[j],
                    &size[i * COLS + j])
                flagged += _log_softmax_vjp_flagged(r[i * COLS + j], size[i * COLS + j],
                                                    y[(i0 + i) * ld + j])
        if flagged == 0:
            for i in range(c):
                for j in range(w):
                    out[(i0 + i) * ld + j] = <floating>r[i * COLS + j]
            continue
        for i in range(c):
            for j in range(w):
                out[(i0 + i) * ld + j] = <floating>(
                    _log_softmax_vjp_rare(grad[(i0 + i) * ld + j], y[(i0 + i) * ld + j],
                                          acc[j], low[j], r[i * COLS + j], size[i * COLS + j],
                                          floating is float, &memo)
                    if _log_softmax_vjp_flagged(r[i * COLS + j], size[i * COLS + j],
                                                y[(i0 + i) * ld + j])
                    else r[i * COLS + j])


cdef void _backward_row(const floating* grad, const floating* y, floating* out, Py_ssize_t n,
                        int mode) noexcept nogil:
    cdef double sign = -1 if mode == MODE_SOFTMIN else 1
    cdef double acc[LANES]
    cdef double low[LANES]
    cdef double low2[LANES]
    cdef double y_min[LANES]
    cdef bint any_tiny = 0
    cdef Py_ssize_t i, k, tail = n % LANES, nb = n - n % LANES
    for k in range(LANES):
        acc[k] = 0
        low[k] = 0
        low2[k] = 0
    # the lane sums in vector types (lanes.h) where they exist: as the lane loops
    # below, GCC leaves them scalar
    if mode == MODE_LOG_SOFTMAX:
        if floating is float:
            pyact_add_g_lanes_f(grad, n, acc, low)
        else:
            pyact_add_g_lanes_d(grad, n, acc, low)
    elif floating is float:
        pyact_add_gy_lanes_f(grad, y, n, acc, low)
    else:
        for k in range(LANES):
            y_min[k] = INFINITY
        for i in range(0, nb, 8):  # LANES
            for k in range(LANES):
                _add_gy(&acc[k], &low[k], &low2[k], grad[i + k], y[i + k])
                y_min[k] = y[i + k] if y[i + k] < y_min[k] else y_min[k]
        for k in range(tail):
            _add_gy(&acc[k], &low[k], &low2[k], grad[nb + k], y[nb + k])
            y_min[k] = y[nb + k] if y[nb + k] < y_min[k] else y_min[k]
        for k in range(LANES):
            any_tiny |= y_min[k] < PYACT_VJP_TINY_Y
    for k in range(1, LANES):
        _add_lane(&acc[0], &low[0], &low2[0], acc[k], low[k], low2[k], grad[0])
    # separate loops per mode (and for rows with a tiny y): each vectorises on its own
    # (GCC does not unswitch on any_tiny: one loop took 1.25x the time)
    if mode != MODE_LOG_SOFTMAX and any_tiny:
        for i in range(n):
            out[i] = _softmax_vjp_element(grad[i], y[i], acc[0], low[0], low2[0], sign, 1)
    elif mode != MODE_LOG_SOFTMAX:
        for i in range(n):
            out[i] = _softmax_vjp_element(grad[i], y[i], acc[0], low[0], low2[0], sign, 0)
    else:
        _log_softmax_vjp_slice(grad, y, out, n, 1, acc[0], low[0])


cdef void _backward_cols(const floating* grad, const floating* y, floating* out, Py_ssize_t ld,
                         Py_ssize_t n, Py_ssize_t w, int mode) noexcept nogil:
    """w <= COLS slices side by side: slice j is grad[i * ld + j], i < n (y, out likewise)."""
    cdef double sign = -1 if mode == MODE_SOFTMIN else 1
    cdef double acc[LANES][COLS]
    cdef double low[LANES][COLS]
    cdef double low2[LANES][COLS]
    cdef double y_min[COLS]
    cdef bint any_tiny = 0
    cdef Py_ssize_t i, j, k
    for k in range(LANES):
        for j in range(COLS):   # every column: see _forward_cols
            acc[k][j] = 0
            low[k][j] = 0
            low2[k][j] = 0
    for j in range(COLS):
        y_min[j] = INFINITY
    k = 0
    for i in range(n):
        if mode == MODE_LOG_SOFTMAX:
            for j in range(w):
                _add_g(&acc[k][j], &low[k][j], grad[i * ld + j])
        else:
            for j in range(w):
                _add_gy(&acc[k][j], &low[k][j], &low2[k][j], grad[i * ld + j], y[i * ld + j])
                if floating is double:
                    y_min[j] = y[i * ld + j] if y[i * ld + j] < y_min[j] else y_min[j]
        k = 0 if k == LANES - 1 else k + 1
    for j in range(w):
        any_tiny |= y_min[j] < PYACT_VJP_TINY_Y
    for k in range(1, LANES):
        for j in range(w):
            _add_lane(&acc[0][j], &low[0][j], &low2[0][j], acc[k][j], low[k][j], low2[k][j],
                      grad[0])
    if mode != MODE_LOG_SOFTMAX and any_tiny:
        for i in range(n):
            for j in range(w):
                out[i * ld + j] = _softmax_vjp_element(grad[i * ld + j], y[i * ld + j],
                                                       acc[0][j], low[0][j], low2[0][j], sign, 1)
    elif mode != MODE_LOG_SOFTMAX:
        for i in range(n):
            for j in range(w):
                out[i * ld + j] = _softmax_vjp_element(grad[i * ld + j], y[i * ld + j],
                                                       acc[0][j], low[0][j], low2[0][j], sign, 0)
    else:
        _log_softmax_vjp_cols(grad, y, out, ld, n, w, acc[0], low[0])


# ---- drivers over (outer, n, inner) buffers -------------------------------------------
#
# The work is a list of independent tasks (a block of COLS short rows, one long
# row, or a block of COLS columns of one outer index); *_tasks(t0, t1) runs tasks
# [t0, t1) with its own scratch, so ranges of tasks can go to different threads.

# Short rows to and from a tile: row j of the block (n elements) is column j of the
# tile (COLS elements per tile row).  A full block goes by square transposes in
# registers (csrc/transpose.h), float64 only up to TILE_SQUARES_F64; rows shorter
# than a square loop over the tile rows with a constant trip count inside (which
# GCC assembles into vector stores and loads); longer float64 rows, and partial
# blocks, are copied slice by slice.
cdef inline int _tile_copy_kind(Py_ssize_t n, Py_ssize_t w, floating like) noexcept nogil:
    """0: by squares, 1: by tile rows, 2: slice by slice."""
    cdef Py_ssize_t square = 4 if floating is float else PYACT_TD_WIDTH
    if w != COLS:
        return 2
    if n < square:
        return 1
    return 0 if floating is float or n <= TILE_SQUARES_F64 else 2


cdef inline void _tile_in(floating* tile, const floating* block, Py_ssize_t n,
                          Py_ssize_t w) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef int kind = _tile_copy_kind(n, w, block[0])
    if kind == 0:
        if floating is float:
            pyact_tile_in_f(tile, block, n)
        else:
            pyact_tile_in_d(tile, block, n)
    elif kind == 1:
        for i in range(n):
            for j in range(COLS):
                tile[i * COLS + j] = block[j * n + i]
    else:
        for j in range(w):
            for i in range(n):
                tile[i * COLS + j] = block[j * n + i]


cdef inline void _tile_out(floating* block, const floating* tile, Py_ssize_t n,
                           Py_ssize_t w) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef int kind = _tile_copy_kind(n, w, tile[0])
    if kind == 0:
        if floating is float:
            pyact_tile_out_f(block, tile, n)
        else:
            pyact_tile_out_d(block, tile, n)
    elif kind == 1:
        for i in range(n):
            for j in range(COLS):
                block[j * n + i] = tile[i * COLS + j]
    else:
        for j in range(w):
            for i in range(n):
                block[j * n + i] = tile[i * COLS + j]


cdef inline Py_ssize_t _n_tasks(Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner,
                                Py_ssize_t short_row) noexcept nogil:
    if inner == 1:
        return (outer + COLS - 1) // COLS if n <= short_row else outer
    return outer * ((inner + COLS - 1) // COLS)


cdef void _forward_tasks(const floating* x, floating* out, Py_ssize_t outer, Py_ssize_t n,
                         Py_ssize_t inner, int mode, Py_ssize_t t0,
                         Py_ssize_t t1) noexcept nogil:
    cdef Py_ssize_t t, r0, w, i, j, o, c0, blocks, cap
    cdef double scratch[2 * CHUNK]   # 64 KiB of exponentials, on this thread's stack
    cdef double* row_scratch
    cdef floating tile_x[SHORT_ROW * COLS]
    cdef floating tile_o[SHORT_ROW * COLS]
    if t1 <= t0:
        return
    if inner == 1 and n <= SHORT_ROW:
        for t in range(t0, t1):
            r0 = t * COLS
            w = COLS if outer - r0 > COLS else outer - r0
            _tile_in(tile_x, x + r0 * n, n, w)
            _forward_cols(tile_x, COLS, tile_o, COLS, n, w, mode, scratch)
            _tile_out(out + r0 * n, tile_o, n, w)
    elif inner == 1:
        # a long row's exponentials on the heap (up to LONG_ROW_CAP of them), so
        # that softmax and softmin do not compute them twice (log_softmax never
        # reuses them); the stack scratch otherwise
        cap = min((n + LANES - 1) // LANES * LANES, <Py_ssize_t>LONG_ROW_CAP)
        row_scratch = (<double*>malloc((2 if floating is double else 1) * cap * sizeof(double))
                       if n > CHUNK and mode != MODE_LOG_SOFTMAX else NULL)
        if row_scratch == NULL:
            row_scratch = scratch
            cap = CHUNK
        for t in range(t0, t1):
            _forward_row(x + t * n, out + t * n, n, mode, row_scratch, cap)
        if row_scratch != scratch:
            free(row_scratch)
    else:
        blocks = (inner + COLS - 1) // COLS
        for t in range(t0, t1):
            o = t // blocks
            c0 = (t % blocks) * COLS
            w = COLS if inner - c0 > COLS else inner - c0
            _forward_cols(x + o * n * inner + c0, inner, out + o * n * inner + c0, inner,
                          n, w, mode, scratch)


cdef void _backward_tasks(const floating* grad, const floating* y, floating* out,
                          Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner, int mode,
                          Py_ssize_t t0, Py_ssize_t t1) noexcept nogil:
    cdef Py_ssize_t t, r0, w, i, j, o, c0, blocks, base
    cdef floating tile_g[SHORT_ROW_VJP * COLS]
    cdef floating tile_y[SHORT_ROW_VJP * COLS]
    cdef floating tile_o[SHORT_ROW_VJP * COLS]
    if inner == 1 and n <= SHORT_ROW_VJP:
        for t in range(t0, t1):
            r0 = t * COLS
            w = COLS if outer - r0 > COLS else outer - r0
            _tile_in(tile_g, grad + r0 * n, n, w)
            _tile_in(tile_y, y + r0 * n, n, w)
            _backward_cols(tile_g, tile_y, tile_o, COLS, n, w, mode)
            _tile_out(out + r0 * n, tile_o, n, w)
    elif inner == 1:
        for t in range(t0, t1):
            _backward_row(grad + t * n, y + t * n, out + t * n, n, mode)
    else:
        blocks = (inner + COLS - 1) // COLS
        for t in range(t0, t1):
            o = t // blocks
            c0 = (t % blocks) * COLS
            base = o * n * inner + c0
            w = COLS if inner - c0 > COLS else inner - c0
            _backward_cols(grad + base, y + base, out + base, inner, n, w, mode)


cdef inline Py_ssize_t _same_shape(tuple shapes) except -1:
    if len(set(shapes)) != 1:
        raise ValueError(f"buffer shapes differ: {shapes}")
    return 0


cdef void _softmax_forward_c(const floating* x, floating* out, Py_ssize_t outer, Py_ssize_t n,
                             Py_ssize_t inner, int mode) noexcept nogil:
    """out = the function `mode` of x along axis 1 of C-contiguous (outer, n, inner)
    buffers (out may be x); contiguous ranges of the independent tasks go to the
    threads (parallel.pxi), so results do not depend on the thread count."""
    if outer * n * inner == 0:
        return
    cdef Py_ssize_t tasks = _n_tasks(outer, n, inner, SHORT_ROW)
    cdef int threads = _row_threads(tasks, outer * n * inner // tasks)
    cdef Py_ssize_t t, t0, chunk = (tasks + threads - 1) // threads
    if threads == 1:   # no parallel region: entering one, even serially, cost ~1 us a call
        _forward_tasks(x, out, outer, n, inner, mode, 0, tasks)
        return
    for t in prange(threads, num_threads=threads, schedule="static"):
        t0 = min(t * chunk, tasks)
        _forward_tasks(x, out, outer, n, inner, mode, t0, min(t0 + chunk, tasks))


cdef void _softmax_backward_c(const floating* grad, const floating* y, floating* out,
                              Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner,
                              int mode) noexcept nogil:
    """The vector-Jacobian product of `mode` from y, threaded like _softmax_forward_c."""
    if outer * n * inner == 0:
        return
    cdef Py_ssize_t tasks = _n_tasks(outer, n, inner, SHORT_ROW_VJP)
    cdef int threads = _row_threads(tasks, outer * n * inner // tasks)
    cdef Py_ssize_t t, t0, chunk = (tasks + threads - 1) // threads
    if threads == 1:   # as _softmax_forward_c
        _backward_tasks(grad, y, out, outer, n, inner, mode, 0, tasks)
        return
    for t in prange(threads, num_threads=threads, schedule="static"):
        t0 = min(t * chunk, tasks)
        _backward_tasks(grad, y, out, outer, n, inner, mode, t0, min(t0 + chunk, tasks))


def softmax_rows(const floating[:, :, ::1] x, floating[:, :, ::1] out, int mode):
    """out = softmax/log_softmax/softmin of x along axis 1 (mode from AXIS_MODES).

    x and out are C-contiguous (outer, n, inner) buffers of one shape; out may
    be x itself."""
    _same_shape(((x.shape[0], x.shape[1], x.shape[2]),
                 (out.shape[0], out.shape[1], out.shape[2])))
    if x.shape[0] * x.shape[1] * x.shape[2] == 0:
        return
    with nogil:
        _softmax_forward_c(&x[0, 0, 0], &out[0, 0, 0], x.shape[0], x.shape[1], x.shape[2], mode)


def softmax_backward_rows(const floating[:, :, ::1] grad, const floating[:, :, ::1] y,
                          floating[:, :, ::1] out, int mode):
    """Vector-Jacobian product of the function `mode` along axis 1 from its saved
    output y; C-contiguous (outer, n, inner) buffers, out may be grad or y."""
    _same_shape(((grad.shape[0], grad.shape[1], grad.shape[2]), (y.shape[0], y.shape[1], y.shape[2]),
                 (out.shape[0], out.shape[1], out.shape[2])))
    if y.shape[0] * y.shape[1] * y.shape[2] == 0:
        return
    with nogil:
        _softmax_backward_c(&grad[0, 0, 0], &y[0, 0, 0], &out[0, 0, 0], y.shape[0], y.shape[1],
                            y.shape[2], mode)
