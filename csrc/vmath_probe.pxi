# Python access to the building blocks of vmath.h, for tests/test_vmath.py:
# _vmath_probe(name, x, out) applies one of them to a contiguous float64 buffer.

cdef enum:
    P_EXP, P_EXPM1, P_LOG1P01, P_SIGMOID, P_SIGMOID_SLOPE, P_TANH, P_SOFTPLUS, P_TANHSHRINK, \
        P_EXP_D32, P_EXPM1_D32, P_LOG1P01_D32, P_TANH_D32, P_EXPM1_NONPOS

_VMATH_PROBES = {"exp": P_EXP, "expm1": P_EXPM1, "log1p_01": P_LOG1P01, "sigmoid": P_SIGMOID,
                "sigmoid_slope": P_SIGMOID_SLOPE, "tanh": P_TANH, "softplus": P_SOFTPLUS,
                "tanhshrink": P_TANHSHRINK, "exp_d32": P_EXP_D32, "expm1_d32": P_EXPM1_D32,
                "log1p_01_d32": P_LOG1P01_D32, "tanh_d32": P_TANH_D32,
                "expm1_nonpos": P_EXPM1_NONPOS}

cdef extern from "vmath.h" nogil:
    double vm_log1p_01_dd(double u, double *lo)

cdef inline double _probe_log1p(double u) noexcept nogil:
    cdef double lo
    cdef double hi = vm_log1p_01_dd(u, &lo)
    return hi + lo

def _vmath_probe(str name, const double[::1] x, double[::1] out):
    cdef Py_ssize_t i, n = _same_length(x.shape[0], out.shape[0])
    cdef int which = _VMATH_PROBES[name]
    with nogil:
        for i in range(n):
            if which == P_EXP:
                out[i] = vm_exp(x[i])
            elif which == P_EXPM1:
                out[i] = vm_expm1(x[i])
            elif which == P_LOG1P01:
                out[i] = _probe_log1p(x[i])
            elif which == P_SIGMOID:
                out[i] = vm_sigmoid(x[i])
            elif which == P_SIGMOID_SLOPE:
                out[i] = vm_sigmoid_slope(x[i])
            elif which == P_TANH:
                out[i] = vm_tanh(x[i])
            elif which == P_SOFTPLUS:
                out[i] = vm_softplus(x[i])
            elif which == P_TANHSHRINK:
                out[i] = vm_tanhshrink(x[i])
            elif which == P_EXP_D32:
                out[i] = vm_exp_d32(x[i])
            elif which == P_EXPM1_D32:
                out[i] = vm_expm1_d32(x[i])
            elif which == P_LOG1P01_D32:
                out[i] = vm_log1p_01_d32(x[i])
            elif which == P_EXPM1_NONPOS:
                out[i] = vm_expm1_nonpos(x[i])
            else:
                out[i] = vm_tanh_d32(x[i])
