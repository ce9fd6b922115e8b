# Kernels of the axis functions (softmax, log_softmax, softmin) and of their
# vector-Jacobian products.
#
# Buffers are C-contiguous and seen as (outer, n, inner): the function is taken
# along the middle axis (length n, stride inner), so any axis of a C array is
# reduced in place, without a transposed copy.  Three loop shapes share one
# arithmetic:
#
# * long rows (inner == 1, n > SHORT_ROW): one row at a time, its reductions
#   split over LANES independent partial accumulators (element i goes to lane
#   i % LANES), so the max and the sums vectorise along the row;
# * short rows (inner == 1, n <= SHORT_ROW): COLS rows at a time, transposed
#   into a small tile, then reduced as columns (vectorised across rows);
# * a strided axis (inner > 1): up to COLS neighbouring columns at a time,
#   straight from the buffer (vectorised over the contiguous inner axis).
#
# The column loops keep the same LANES partial accumulators per column and
# combine them in the same fixed order as the row loop, so every slice gets
# bitwise the same result whichever loop shape handles it: results depend on
# the data only (not on the axis, the layout, or how rows are split between
# threads; each row or column block is independent of the others).
#
# Sums and exponentials are evaluated in the wide type of scalar.pxi (double
# for float32, long double for float64) and each output is rounded once.

from libc.math cimport INFINITY
from libc.stdlib cimport malloc, free

cdef enum:
    MODE_SOFTMAX = 0
    MODE_LOG_SOFTMAX = 1
    MODE_SOFTMIN = 2

AXIS_MODES = {"softmax": MODE_SOFTMAX, "log_softmax": MODE_LOG_SOFTMAX,
              "softmin": MODE_SOFTMIN}

cdef enum:
    LANES = 8            # partial accumulators per slice (part of the arithmetic)
    COLS = 16            # slices handled side by side by the column loops
    SHORT_ROW = 16       # rows up to this length go through the transposed tiles
    SCRATCH_BYTES = 1 << 20   # exponentials kept for reuse (softmax) up to this size


# ---- transcendental calls ---------------------------------------------------------
# Every exponential and logarithm of the axis kernels goes through these three
# wrappers: switching to vectorised versions is a change here only.

cdef inline wide_t _axis_exp(wide_t d) noexcept nogil:
    return w_exp(d)

cdef inline wide_t _axis_expm1(wide_t d) noexcept nogil:
    return w_expm1(d)

cdef inline wide_t _axis_log1p(wide_t d) noexcept nogil:
    return w_log1p(d)


# ---- forward ----------------------------------------------------------------------
#
# Per slice: m = max(s x) (s = -1 for softmin, else 1; NaN never wins the
# comparison and reaches the sum instead), d_i = s x_i - m, and the sum of
# exp(d_i) split as ties (entries equal to the max, each exp(0) = 1) plus the
# rest, so that log(sum) = log1p(rest + ties - 1) keeps its accuracy when one
# logit dominates.  A NaN d (NaN entry, +inf entry, or an all -inf slice) is
# added as is and poisons the slice; -inf entries give exp(-inf) = 0 exactly.
# rest is summed in LANES partial sums (lane i % LANES), added up in lane order.

cdef inline wide_t _rest_term(wide_t d, wide_t e) noexcept nogil:
    return e if d < 0 else (0 if d == 0 else d)


cdef void _forward_row(const floating* x, floating* out, Py_ssize_t n, int mode,
                       wide_t* e_buf, wide_t like) noexcept nogil:
    """One contiguous row; e_buf (n entries, or NULL) keeps the exponentials."""
    cdef floating fsign = -1 if mode == MODE_SOFTMIN else 1
    cdef wide_t sign = fsign
    cdef floating lane_max[LANES]
    cdef wide_t rest[LANES]
    cdef wide_t ties[LANES]
    cdef floating v, mf
    cdef wide_t m, d, e, total, log_sum
    cdef Py_ssize_t i, k, tail = n % LANES, nb = n - n % LANES
    for k in range(LANES):
        lane_max[k] = -INFINITY
    for i in range(0, nb, 8):  # LANES
        for k in range(LANES):
            v = fsign * x[i + k]
            lane_max[k] = v if v > lane_max[k] else lane_max[k]
    for k in range(tail):
        v = fsign * x[nb + k]
        lane_max[k] = v if v > lane_max[k] else lane_max[k]
    mf = lane_max[0]
    for k in range(1, LANES):
        mf = lane_max[k] if lane_max[k] > mf else mf
    m = mf
    for k in range(LANES):
        rest[k] = 0
        ties[k] = 0
    for i in range(0, nb, 8):  # LANES
        for k in range(LANES):
            d = sign * x[i + k] - m
            e = _axis_exp(d)
            if e_buf != NULL:
                e_buf[i + k] = e
            rest[k] += _rest_term(d, e)
            ties[k] += d == 0
    for k in range(tail):
        d = sign * x[nb + k] - m
        e = _axis_exp(d)
        if e_buf != NULL:
            e_buf[nb + k] = e
        rest[k] += _rest_term(d, e)
        ties[k] += d == 0
    for k in range(1, LANES):
        rest[0] += rest[k]
        ties[0] += ties[k]
    total = rest[0] + (ties[0] - 1)
    if mode == MODE_LOG_SOFTMAX:
        log_sum = _axis_log1p(total)
        for i in range(n):
            out[i] = <floating>(sign * x[i] - m - log_sum)
    else:
        total = 1 + total
        if e_buf != NULL:
            for i in range(n):
                out[i] = <floating>(e_buf[i] / total)
        else:
            for i in range(n):
                out[i] = <floating>(_axis_exp(sign * x[i] - m) / total)


cdef void _forward_cols(const floating* x, Py_ssize_t ldx, floating* out, Py_ssize_t ldo,
                        Py_ssize_t n, Py_ssize_t w, int mode, wide_t* e_buf,
                        wide_t like) noexcept nogil:
    """w <= COLS slices side by side: slice j is x[i * ldx + j], i < n (out likewise).

    The same arithmetic as _forward_row, slice by slice; e_buf (n * COLS
    entries, or NULL) keeps the exponentials."""
    cdef floating fsign = -1 if mode == MODE_SOFTMIN else 1
    cdef wide_t sign = fsign
    cdef floating col_max[COLS]
    cdef wide_t m[COLS]
    cdef wide_t rest[LANES][COLS]
    cdef wide_t ties[COLS]
    cdef wide_t total[COLS]
    cdef floating v
    cdef wide_t d, e
    cdef Py_ssize_t i, j, k
    for j in range(w):
        col_max[j] = -INFINITY
    for i in range(n):
        for j in range(w):
            v = fsign * x[i * ldx + j]
            col_max[j] = v if v > col_max[j] else col_max[j]
    for j in range(w):
        m[j] = col_max[j]
        ties[j] = 0
    for k in range(LANES):
        for j in range(w):
            rest[k][j] = 0
    k = 0
    for i in range(n):
        for j in range(w):
            d = sign * x[i * ldx + j] - m[j]
            e = _axis_exp(d)
            if e_buf != NULL:
                e_buf[i * COLS + j] = e
            rest[k][j] += _rest_term(d, e)
            ties[j] += d == 0
        k = 0 if k == LANES - 1 else k + 1
    for k in range(1, LANES):
        for j in range(w):
            rest[0][j] += rest[k][j]
    for j in range(w):
        total[j] = rest[0][j] + (ties[j] - 1)
    if mode == MODE_LOG_SOFTMAX:
        for j in range(w):
            total[j] = _axis_log1p(total[j])
        for i in range(n):
            for j in range(w):
                out[i * ldo + j] = <floating>(sign * x[i * ldx + j] - m[j] - total[j])
    else:
        for j in range(w):
            total[j] = 1 + total[j]
        if e_buf != NULL:
            for i in range(n):
                for j in range(w):
                    out[i * ldo + j] = <floating>(e_buf[i * COLS + j] / total[j])
        else:
            for i in range(n):
                for j in range(w):
                    out[i * ldo + j] = <floating>(_axis_exp(sign * x[i * ldx + j] - m[j]) / total[j])


# ---- vector-Jacobian products -----------------------------------------------------
#
# The softmax vjp y (g - sum(g y)) cancels where g_i is close to the dot product,
# so the dot product is kept as an unevaluated sum hi + lo: exact products
# (float32 products are exact in double; float64 factors are split in halves
# whose products are exact in long double) added with Neumaier's compensation,
# in LANES partial (hi, lo) pairs that are added up in lane order at the end.

cdef inline void _add_compensated(wide_t* total, wide_t* low, wide_t term) noexcept nogil:
    cdef wide_t t = total[0] + term
    low[0] += ((total[0] - t) + term) if w_abs(total[0]) >= w_abs(term) else ((term - t) + total[0])
    total[0] = t

# Veltkamp split of a double into two halves of at most 27 significant bits;
# beyond 2**996 the split would overflow, and the value is kept whole.
cdef inline void _split(double a, double* high, double* low) noexcept nogil:
    cdef double t = a * 134217729.0
    cdef double h = t - (t - a)
    cdef bint huge = fabs(a) > 6.696928794914171e+299
    high[0] = a if huge else h
    low[0] = 0 if huge else a - h

# A factor beyond 2**995 is split scaled by 2**-54 and the long double products
# scaled back, both exactly: kept whole, its 53 bits times a 27-bit half would
# not fit long double's 64 (softmax_backward with grads near 1e300 was 1.4 ULP
# off where the result cancels).
cdef inline void _add_product(wide_t* total, wide_t* low, double a, double b) noexcept nogil:
    cdef double a1, a2, b1, b2
    cdef bint big_a, big_b
    cdef wide_t scale
    if wide_t is double:  # float32 factors: the product is exact in double
        _add_compensated(total, low, a * b)
    else:
        big_a = fabs(a) > 3.3484643974570854e+299  # 2**995
        big_b = fabs(b) > 3.3484643974570854e+299
        _split(a * 5.551115123125783e-17 if big_a else a, &a1, &a2)  # 2**-54
        _split(b * 5.551115123125783e-17 if big_b else b, &b1, &b2)
        scale = (<wide_t>18014398509481984.0 if big_a else 1) * (
            <wide_t>18014398509481984.0 if big_b else 1)                # 2**54
        _add_compensated(total, low, <wide_t>a1 * b1 * scale)
        _add_compensated(total, low, <wide_t>a1 * b2 * scale)
        _add_compensated(total, low, <wide_t>a2 * b1 * scale)
        _add_compensated(total, low, <wide_t>a2 * b2 * scale)


# Rounding error of the long double product p = a * b, exactly (Dekker's
# product with Veltkamp halves of 32 bits; libm's fmal is a slow software
# routine on x87).  The factors here are |e| <= 1 and a sum of float64 values,
# far from long double's overflow and underflow.
cdef inline long double _product_error(long double a, long double b, long double p) noexcept nogil:
    cdef long double c = 4294967297.0  # 2**32 + 1
    cdef long double t = c * a
    cdef long double a1 = t - (t - a)
    cdef long double a2 = a - a1
    t = c * b
    cdef long double b1 = t - (t - b)
    cdef long double b2 = b - b1
    return ((a1 * b1 - p) + a1 * b2 + a2 * b1) + a2 * b2


# g - e * s with the product's rounding error taken back (log_softmax's vjp
# cancels where one class dominates); float32 data has the spare bits of double.
cdef inline wide_t _minus_product(wide_t g, wide_t e, wide_t s) noexcept nogil:
    cdef wide_t p = e * s
    if wide_t is double:
        return g - p
    else:
        return (g - p) - _product_error(e, s, p)


# One vjp element from the slice's (acc, low) = sum(g y) (softmax, softmin) or
# sum(g) (log_softmax).
cdef inline floating _vjp_element(floating g, floating y, wide_t acc, wide_t low, int mode,
                                  wide_t sign) noexcept nogil:
    cdef wide_t t, base
    if mode != MODE_LOG_SOFTMAX:
        return <floating>(sign * y * ((g - acc) - low))
    # For a dominant class (exp(y) > 1/2) write exp(y) = 1 + expm1(y): g - sum(g)
    # is then exact and the rounding of the small expm1(y) hardly matters;
    # elsewhere exp(y) <= 1/2 is used directly.
    if y > <floating>-0.6931471805599453:
        t = _axis_expm1(<wide_t>y)
        base = (g - acc) - low
    else:
        t = _axis_exp(<wide_t>y)
        base = g
    return <floating>(_minus_product(base, t, acc) - t * low)


cdef void _backward_row(const floating* grad, const floating* y, floating* out, Py_ssize_t n,
                        int mode, wide_t like) noexcept nogil:
    cdef wide_t sign = -1 if mode == MODE_SOFTMIN else 1
    cdef wide_t acc[LANES]
    cdef wide_t low[LANES]
    cdef Py_ssize_t i, k, tail = n % LANES, nb = n - n % LANES
    for k in range(LANES):
        acc[k] = 0
        low[k] = 0
    if mode == MODE_LOG_SOFTMAX:
        for i in range(0, nb, 8):  # LANES
            for k in range(LANES):
                _add_compensated(&acc[k], &low[k], <wide_t>grad[i + k])
        for k in range(tail):
            _add_compensated(&acc[k], &low[k], <wide_t>grad[nb + k])
    else:
        for i in range(0, nb, 8):  # LANES
            for k in range(LANES):
                _add_product(&acc[k], &low[k], grad[i + k], y[i + k])
        for k in range(tail):
            _add_product(&acc[k], &low[k], grad[nb + k], y[nb + k])
    for k in range(1, LANES):
        _add_compensated(&acc[0], &low[0], acc[k])
        low[0] += low[k]
    for i in range(n):
        out[i] = _vjp_element(grad[i], y[i], acc[0], low[0], mode, sign)


cdef void _backward_cols(const floating* grad, const floating* y, floating* out, Py_ssize_t ld,
                         Py_ssize_t n, Py_ssize_t w, int mode, wide_t like) noexcept nogil:
    """w <= COLS slices side by side: slice j is grad[i * ld + j], i < n (y, out likewise)."""
    cdef wide_t sign = -1 if mode == MODE_SOFTMIN else 1
    cdef wide_t acc[LANES][COLS]
    cdef wide_t low[LANES][COLS]
    cdef Py_ssize_t i, j, k
    for k in range(LANES):
        for j in range(w):
            acc[k][j] = 0
            low[k][j] = 0
    k = 0
    for i in range(n):
        if mode == MODE_LOG_SOFTMAX:
            for j in range(w):
                _add_compensated(&acc[k][j], &low[k][j], <wide_t>grad[i * ld + j])
        else:
            for j in range(w):
                _add_product(&acc[k][j], &low[k][j], grad[i * ld + j], y[i * ld + j])
        k = 0 if k == LANES - 1 else k + 1
    for k in range(1, LANES):
        for j in range(w):
            _add_compensated(&acc[0][j], &low[0][j], acc[k][j])
            low[0][j] += low[k][j]
    for i in range(n):
        for j in range(w):
            out[i * ld + j] = _vjp_element(grad[i * ld + j], y[i * ld + j], acc[0][j],
                                           low[0][j], mode, sign)


# ---- drivers over (outer, n, inner) buffers -------------------------------------------
#
# The work is a list of independent tasks (a block of COLS short rows, one long
# row, or a block of COLS columns of one outer index); *_tasks(t0, t1) runs tasks
# [t0, t1) with its own scratch, so ranges of tasks can go to different threads.

cdef inline Py_ssize_t _n_tasks(Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner) noexcept nogil:
    if inner == 1:
        return (outer + COLS - 1) // COLS if n <= SHORT_ROW else outer
    return outer * ((inner + COLS - 1) // COLS)


cdef void _forward_tasks(const floating* x, floating* out, Py_ssize_t outer, Py_ssize_t n,
                         Py_ssize_t inner, int mode, Py_ssize_t t0, Py_ssize_t t1,
                         wide_t like) noexcept nogil:
    cdef Py_ssize_t t, r0, w, i, j, o, c0, blocks
    cdef wide_t* e_buf = NULL
    cdef floating tile_x[SHORT_ROW * COLS]
    cdef floating tile_o[SHORT_ROW * COLS]
    cdef size_t want
    if t1 <= t0:
        return
    if mode != MODE_LOG_SOFTMAX:   # log_softmax needs no exponential twice
        want = n if (inner == 1 and n > SHORT_ROW) else n * COLS
        if want * sizeof(wide_t) <= SCRATCH_BYTES:
            e_buf = <wide_t*>malloc(want * sizeof(wide_t))   # NULL: recompute
    if inner == 1 and n <= SHORT_ROW:
        for t in range(t0, t1):
            r0 = t * COLS
            w = COLS if outer - r0 > COLS else outer - r0
            for j in range(w):
                for i in range(n):
                    tile_x[i * COLS + j] = x[(r0 + j) * n + i]
            _forward_cols(tile_x, COLS, tile_o, COLS, n, w, mode, e_buf, like)
            for j in range(w):
                for i in range(n):
                    out[(r0 + j) * n + i] = tile_o[i * COLS + j]
    elif inner == 1:
        for t in range(t0, t1):
            _forward_row(x + t * n, out + t * n, n, mode, e_buf, like)
    else:
        blocks = (inner + COLS - 1) // COLS
        for t in range(t0, t1):
            o = t // blocks
            c0 = (t % blocks) * COLS
            w = COLS if inner - c0 > COLS else inner - c0
            _forward_cols(x + o * n * inner + c0, inner, out + o * n * inner + c0, inner,
                          n, w, mode, e_buf, like)
    free(e_buf)


cdef void _backward_tasks(const floating* grad, const floating* y, floating* out,
                          Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner, int mode,
                          Py_ssize_t t0, Py_ssize_t t1, wide_t like) noexcept nogil:
    cdef Py_ssize_t t, r0, w, i, j, o, c0, blocks, base
    cdef floating tile_g[SHORT_ROW * COLS]
    cdef floating tile_y[SHORT_ROW * COLS]
    cdef floating tile_o[SHORT_ROW * COLS]
    if inner == 1 and n <= SHORT_ROW:
        for t in range(t0, t1):
            r0 = t * COLS
            w = COLS if outer - r0 > COLS else outer - r0
            for j in range(w):
                for i in range(n):
                    tile_g[i * COLS + j] = grad[(r0 + j) * n + i]
                    tile_y[i * COLS + j] = y[(r0 + j) * n + i]
            _backward_cols(tile_g, tile_y, tile_o, COLS, n, w, mode, like)
            for j in range(w):
                for i in range(n):
                    out[(r0 + j) * n + i] = tile_o[i * COLS + j]
    elif inner == 1:
        for t in range(t0, t1):
            _backward_row(grad + t * n, y + t * n, out + t * n, n, mode, like)
    else:
        blocks = (inner + COLS - 1) // COLS
        for t in range(t0, t1):
            o = t // blocks
            c0 = (t % blocks) * COLS
            base = o * n * inner + c0
            w = COLS if inner - c0 > COLS else inner - c0
            _backward_cols(grad + base, y + base, out + base, inner, n, w, mode, like)


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
    cdef Py_ssize_t tasks = _n_tasks(outer, n, inner)
    cdef int threads = _row_threads(tasks, outer * n * inner // tasks)
    cdef Py_ssize_t t, t0, chunk = (tasks + threads - 1) // threads
    for t in prange(threads, num_threads=threads, schedule="static",
                    use_threads_if=threads > 1):
        t0 = min(t * chunk, tasks)
        if floating is float:
            _forward_tasks(x, out, outer, n, inner, mode, t0, min(t0 + chunk, tasks), <double>0)
        else:
            _forward_tasks(x, out, outer, n, inner, mode, t0, min(t0 + chunk, tasks),
                           <long double>0)


cdef void _softmax_backward_c(const floating* grad, const floating* y, floating* out,
                              Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner,
                              int mode) noexcept nogil:
    """The vector-Jacobian product of `mode` from y, threaded like _softmax_forward_c."""
    if outer * n * inner == 0:
        return
    cdef Py_ssize_t tasks = _n_tasks(outer, n, inner)
    cdef int threads = _row_threads(tasks, outer * n * inner // tasks)
    cdef Py_ssize_t t, t0, chunk = (tasks + threads - 1) // threads
    for t in prange(threads, num_threads=threads, schedule="static",
                    use_threads_if=threads > 1):
        t0 = min(t * chunk, tasks)
        if floating is float:
            _backward_tasks(grad, y, out, outer, n, inner, mode, t0, min(t0 + chunk, tasks),
                            <double>0)
        else:
            _backward_tasks(grad, y, out, outer, n, inner, mode, t0, min(t0 + chunk, tasks),
                            <long double>0)


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
