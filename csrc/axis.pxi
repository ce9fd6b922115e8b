# Row kernels of the axis functions (softmax, log_softmax, softmin) over C-contiguous
# 2-D buffers: the Python layer moves the reduced axis last.  Sums and the
# exponentials are evaluated in the wide type of scalar.pxi (double for
# float32, long double for float64) and each output is rounded once.

from libc.math cimport INFINITY

cdef enum:
    MODE_SOFTMAX = 0
    MODE_LOG_SOFTMAX = 1
    MODE_SOFTMIN = 2

AXIS_MODES = {"softmax": MODE_SOFTMAX, "log_softmax": MODE_LOG_SOFTMAX,
              "softmin": MODE_SOFTMIN}


cdef void _softmax_rows(const floating[:, ::1] x, floating[:, ::1] out, int mode,
                        wide_t like) noexcept nogil:
    cdef Py_ssize_t r, i, n = x.shape[1]
    cdef wide_t sign = -1 if mode == MODE_SOFTMIN else 1
    cdef wide_t m, d, rest, ties, log_sum, total
    for r in range(x.shape[0]):
        # NaN never wins the comparison; it reaches the sum below instead.
        m = -INFINITY
        for i in range(n):
            d = sign * x[r, i]
            m = d if d > m else m
        # Sum of exp(x - max) split as ties (entries equal to the max, each
        # exp(0) = 1) plus the rest, so log(sum) = log1p(rest + ties - 1) keeps
        # its accuracy when one logit dominates.  A NaN d (NaN entry, +inf
        # entry, or an all -inf row) is added as is and poisons the row.
        rest = 0
        ties = 0
        for i in range(n):
            d = sign * x[r, i] - m
            rest += w_exp(d) if d < 0 else (0 if d == 0 else d)
            ties += d == 0
        total = rest + (ties - 1)
        if mode == MODE_LOG_SOFTMAX:
            log_sum = w_log1p(total)
            for i in range(n):
                out[r, i] = <floating>(sign * x[r, i] - m - log_sum)
        else:
            total = 1 + total
            for i in range(n):
                out[r, i] = <floating>(w_exp(sign * x[r, i] - m) / total)


# The softmax vjp y (g - sum(g y)) cancels where g_i is close to the dot product,
# so the dot product is kept as an unevaluated sum hi + lo: exact products
# (float32 products are exact in double; float64 factors are split in halves
# whose products are exact in long double) added with Neumaier's compensation.

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

cdef inline void _add_product(wide_t* total, wide_t* low, double a, double b) noexcept nogil:
    cdef double a1, a2, b1, b2
    if wide_t is double:  # float32 factors: the product is exact in double
        _add_compensated(total, low, a * b)
    else:
        _split(a, &a1, &a2)
        _split(b, &b1, &b2)
        _add_compensated(total, low, <wide_t>a1 * b1)
        _add_compensated(total, low, <wide_t>a1 * b2)
        _add_compensated(total, low, <wide_t>a2 * b1)
        _add_compensated(total, low, <wide_t>a2 * b2)


# g - e * s with the product's rounding error taken back (log_softmax's vjp
# cancels where one class dominates); float32 data has the spare bits of double.
cdef inline wide_t _minus_product(wide_t g, wide_t e, wide_t s) noexcept nogil:
    cdef wide_t p = e * s
    if wide_t is double:
        return g - p
    else:
        return (g - p) - fmal(e, s, -p)


cdef void _softmax_backward_rows(const floating[:, ::1] grad, const floating[:, ::1] y,
                                 floating[:, ::1] out, int mode, wide_t like) noexcept nogil:
    cdef Py_ssize_t r, i, n = y.shape[1]
    cdef wide_t sign = -1 if mode == MODE_SOFTMIN else 1
    cdef wide_t acc, low, e, m
    for r in range(y.shape[0]):
        acc = 0
        low = 0
        if mode == MODE_LOG_SOFTMAX:
            for i in range(n):
                _add_compensated(&acc, &low, <wide_t>grad[r, i])
            for i in range(n):
                # For a dominant class (exp(y) > 1/2) write exp(y) = 1 + expm1(y):
                # g - sum(g) is then exact and the rounding of the small expm1(y)
                # hardly matters; elsewhere exp(y) <= 1/2 is used directly.
                e = w_exp(<wide_t>y[r, i])
                m = w_expm1(<wide_t>y[r, i])
                out[r, i] = <floating>(
                    (_minus_product((grad[r, i] - acc) - low, m, acc) - m * low)
                    if y[r, i] > <floating>-0.6931471805599453 else
                    (_minus_product(grad[r, i], e, acc) - e * low))
        else:
            for i in range(n):
                _add_product(&acc, &low, grad[r, i], y[r, i])
            for i in range(n):
                out[r, i] = <floating>(sign * y[r, i] * ((grad[r, i] - acc) - low))


cdef inline Py_ssize_t _same_shape(tuple shapes) except -1:
    if len(set(shapes)) != 1:
        raise ValueError(f"buffer shapes differ: {shapes}")
    return 0


def softmax_rows(const floating[:, ::1] x, floating[:, ::1] out, int mode):
    """out[r] = softmax/log_softmax/softmin(x[r]) for each row r (mode from AXIS_MODES)."""
    _same_shape(((x.shape[0], x.shape[1]), (out.shape[0], out.shape[1])))
    # Rows are independent: blocks of whole rows go to the threads (parallel.pxi).
    cdef Py_ssize_t t, lo, hi, rows = x.shape[0]
    cdef int threads = _row_threads(rows, x.shape[1])
    cdef Py_ssize_t block = (rows + threads - 1) // threads
    with nogil:
        for t in prange(threads, num_threads=threads, schedule="static",
                        use_threads_if=threads > 1):
            lo = min(t * block, rows)
            hi = min(lo + block, rows)
            if floating is float:
                _softmax_rows(x[lo:hi], out[lo:hi], mode, <double>0)
            else:
                _softmax_rows(x[lo:hi], out[lo:hi], mode, <long double>0)


def softmax_backward_rows(const floating[:, ::1] grad, const floating[:, ::1] y,
                          floating[:, ::1] out, int mode):
    """Vector-Jacobian product of the row function `mode` from its saved output y."""
    _same_shape(((grad.shape[0], grad.shape[1]), (y.shape[0], y.shape[1]),
                 (out.shape[0], out.shape[1])))
    cdef Py_ssize_t t, lo, hi, rows = y.shape[0]
    cdef int threads = _row_threads(rows, y.shape[1])
    cdef Py_ssize_t block = (rows + threads - 1) // threads
    with nogil:
        for t in prange(threads, num_threads=threads, schedule="static",
                        use_threads_if=threads > 1):
            lo = min(t * block, rows)
            hi = min(lo + block, rows)
            if floating is float:
                _softmax_backward_rows(grad[lo:hi], y[lo:hi], out[lo:hi], mode, <double>0)
            else:
                _softmax_backward_rows(grad[lo:hi], y[lo:hi], out[lo:hi], mode, <long double>0)
