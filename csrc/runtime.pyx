# cython: language_level=3
"""CPU features and thread state shared by pyact's kernel modules (pyact._runtime).

Compiled for the baseline instruction set, so it always imports: pyact._dispatch
asks it which ISA levels this CPU can run before importing any kernel module.
The thread limit set by pyact.set_num_threads lives here, in one C int that every
kernel module reads through a capsule (csrc/parallel.pxi), so that all of them,
whichever ISA level, see one setting.  It is read and written atomically
(csrc/atomic_int.h): it is the one piece of mutable state the compiled modules
share between threads.
"""
from cpython.pycapsule cimport PyCapsule_New

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define PYACT_OPENMP _OPENMP
    static int pyact_omp_max_threads(void) { return omp_get_max_threads(); }
    static void pyact_omp_set_num_threads(int n) { omp_set_num_threads(n); }
    static int pyact_omp_num_procs(void) { return omp_get_num_procs(); }
    #else
    #define PYACT_OPENMP 0
    static int pyact_omp_max_threads(void) { return 1; }
    static void pyact_omp_set_num_threads(int n) { (void)n; }
    static int pyact_omp_num_procs(void) { return 1; }
    #endif

    /* 0: no limit beyond OpenMP's own; n > 0: at most n threads per call. */
    static int pyact_thread_limit = 0;

    /* __builtin_cpu_supports (GCC >= 8, Clang) reads CPUID and, for AVX and
       AVX-512, also XCR0 through XGETBV: a feature is reported only when the
       OS saves its register state (libgcc's cpuinfo: avx_usable /
       avx512_usable).  GCC >= 12 also knows the ISA levels themselves. */
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    #define PYACT_X86_DETECT 1
    #define PYACT_HAS(name) (__builtin_cpu_supports(name) ? 1 : 0)
    #if defined(__clang__) || __GNUC__ < 12
    #define PYACT_HAS_LEVEL(name) 1
    #else
    #define PYACT_HAS_LEVEL(name) PYACT_HAS(name)
    #endif
    static void pyact_cpu_init(void) { __builtin_cpu_init(); }
    static int pyact_cpu_avx(void) { return PYACT_HAS("avx"); }
    static int pyact_cpu_avx2(void) { return PYACT_HAS("avx2"); }
    static int pyact_cpu_fma(void) { return PYACT_HAS("fma"); }
    static int pyact_cpu_bmi(void) { return PYACT_HAS("bmi"); }
    static int pyact_cpu_bmi2(void) { return PYACT_HAS("bmi2"); }
    static int pyact_cpu_avx512f(void) { return PYACT_HAS("avx512f"); }
    static int pyact_cpu_avx512bw(void) { return PYACT_HAS("avx512bw"); }
    static int pyact_cpu_avx512cd(void) { return PYACT_HAS("avx512cd"); }
    static int pyact_cpu_avx512dq(void) { return PYACT_HAS("avx512dq"); }
    static int pyact_cpu_avx512vl(void) { return PYACT_HAS("avx512vl"); }
    static int pyact_cpu_v3(void) { return PYACT_HAS_LEVEL("x86-64-v3"); }
    static int pyact_cpu_v4(void) { return PYACT_HAS_LEVEL("x86-64-v4"); }
    #else
    #define PYACT_X86_DETECT 0
    static void pyact_cpu_init(void) { }
    static int pyact_cpu_avx(void) { return 0; }
    static int pyact_cpu_avx2(void) { return 0; }
    static int pyact_cpu_fma(void) { return 0; }
    static int pyact_cpu_bmi(void) { return 0; }
    static int pyact_cpu_bmi2(void) { return 0; }
    static int pyact_cpu_avx512f(void) { return 0; }
    static int pyact_cpu_avx512bw(void) { return 0; }
    static int pyact_cpu_avx512cd(void) { return 0; }
    static int pyact_cpu_avx512dq(void) { return 0; }
    static int pyact_cpu_avx512vl(void) { return 0; }
    static int pyact_cpu_v3(void) { return 0; }
    static int pyact_cpu_v4(void) { return 0; }
    #endif
    """
    int PYACT_OPENMP
    int PYACT_X86_DETECT
    int pyact_thread_limit
    int pyact_omp_max_threads() noexcept nogil
    void pyact_omp_set_num_threads(int n) noexcept nogil
    int pyact_omp_num_procs() noexcept nogil
    void pyact_cpu_init() noexcept nogil
    int pyact_cpu_avx() noexcept nogil
    int pyact_cpu_avx2() noexcept nogil
    int pyact_cpu_fma() noexcept nogil
    int pyact_cpu_bmi() noexcept nogil
    int pyact_cpu_bmi2() noexcept nogil
    int pyact_cpu_avx512f() noexcept nogil
    int pyact_cpu_avx512bw() noexcept nogil
    int pyact_cpu_avx512cd() noexcept nogil
    int pyact_cpu_avx512dq() noexcept nogil
    int pyact_cpu_avx512vl() noexcept nogil
    int pyact_cpu_v3() noexcept nogil
    int pyact_cpu_v4() noexcept nogil

cdef extern from "atomic_int.h":
    int pyact_atomic_load_int(const int* p) noexcept nogil
    void pyact_atomic_store_int(int* p, int value) noexcept nogil

# The kernel modules read (never write) the limit through this pointer.
_THREAD_LIMIT = PyCapsule_New(&pyact_thread_limit, "pyact._runtime.thread_limit", NULL)

pyact_cpu_init()


def cpu_features():
    """{feature: bool} for the x86 features the ISA levels need ({} elsewhere)."""
    if not PYACT_X86_DETECT:
        return {}
    return {
        "avx": bool(pyact_cpu_avx()), "avx2": bool(pyact_cpu_avx2()),
        "fma": bool(pyact_cpu_fma()), "bmi": bool(pyact_cpu_bmi()),
        "bmi2": bool(pyact_cpu_bmi2()), "avx512f": bool(pyact_cpu_avx512f()),
        "avx512bw": bool(pyact_cpu_avx512bw()), "avx512cd": bool(pyact_cpu_avx512cd()),
        "avx512dq": bool(pyact_cpu_avx512dq()), "avx512vl": bool(pyact_cpu_avx512vl()),
    }


def cpu_levels():
    """ISA levels this CPU (and OS) can run, lowest first; "baseline" always."""
    levels = ["baseline"]
    f = cpu_features()
    if f and all(f[k] for k in ("avx", "avx2", "fma", "bmi", "bmi2")) and pyact_cpu_v3():
        levels.append("avx2")
        if all(f[k] for k in ("avx512f", "avx512bw", "avx512cd", "avx512dq",
                              "avx512vl")) and pyact_cpu_v4():
            levels.append("avx512")
    return tuple(levels)


def openmp_version():
    """The _OPENMP date (e.g. 201511) this module was compiled with, 0 without OpenMP."""
    return PYACT_OPENMP


def omp_max_threads():
    """OpenMP's default team size in the calling thread (1 without OpenMP)."""
    return pyact_omp_max_threads()


def omp_set_num_threads(int n):
    pyact_omp_set_num_threads(n)


def num_procs():
    return pyact_omp_num_procs()


def thread_limit():
    return pyact_atomic_load_int(&pyact_thread_limit)


def set_thread_limit(int n):
    pyact_atomic_store_int(&pyact_thread_limit, n)
