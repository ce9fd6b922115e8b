# Thread control of the kernel loops, included by kernels.pyx.tp.
#
# A loop over n elements is cut into at most _threads_for(n, ...) contiguous
# blocks, one per OpenMP thread (prange, schedule static), whose boundaries are
# multiples of _GRAIN elements so that every block starts on the same vector
# alignment as the whole buffer.  Results are bitwise identical for any thread
# count: every element is computed by the same IEEE operations (no -ffast-math,
# -ffp-contract=off), and the loops store NaN as one canonical NaN, so even the
# sign and payload that C leaves unspecified cannot differ between the vector
# and scalar code or the serial and threaded copies of a loop.  Built without
# OpenMP, prange runs the blocks one after another.
#
# Thread count: OpenMP's default team size in the calling thread (OMP_NUM_THREADS,
# omp_set_num_threads, threadpoolctl) capped by pyact's own limit
# (pyact.set_num_threads, PYACT_NUM_THREADS), which lives in pyact._runtime and
# is shared by every kernel module through a capsule.

from cython.parallel cimport prange
from cpython.pycapsule cimport PyCapsule_GetPointer

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int pyact_omp_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int pyact_omp_max_threads(void) { return 1; }
    #endif
    """
    int pyact_omp_max_threads() noexcept nogil

cdef extern from "atomic_int.h":
    int pyact_atomic_load_int(const int* p) noexcept nogil

from pyact._runtime import _THREAD_LIMIT
cdef const int* _thread_limit = <const int*>PyCapsule_GetPointer(
    _THREAD_LIMIT, "pyact._runtime.thread_limit")

# Smallest number of elements worth a thread of its own.  Measured on a 2-core
# x86-64 VM (AVX-512 kernels, best of 41 interleaved runs, 1 vs 2 threads):
# relu float32 1.3x at 64K elements, 1.8x at 128K; float64 1.5x at 64K and 128K;
# sigmoid/tanh (scalar libm in double / long double) 1.7-1.9x from 2K elements.
# So two threads from 128K elements for the piecewise-linear kernels and from 8K
# for the transcendental ("wide") ones, which leaves room for the faster
# vectorised versions of those.  On a machine whose cores are busy with other
# processes, a thread may wait a scheduler quantum (~10 ms) to run its block:
# PYACT_NUM_THREADS=1 or set_num_threads(1) avoids that.  Module globals rather
# than constants so that tests can force the parallel path on small arrays
# (_parallel_tuning, a test hook, not meant to be called while kernels run).
cdef Py_ssize_t _MIN_PER_THREAD_CHEAP = 1 << 16
cdef Py_ssize_t _MIN_PER_THREAD_WIDE = 1 << 12
cdef Py_ssize_t _GRAIN = 64


cdef inline int _threads_for(Py_ssize_t n, Py_ssize_t min_per_thread) noexcept nogil:
    """Threads for a loop of n elements, each worth min_per_thread at least."""
    cdef int t = pyact_omp_max_threads()
    cdef int limit = pyact_atomic_load_int(_thread_limit)
    if 0 < limit < t:
        t = limit
    if min_per_thread < 1:
        min_per_thread = 1
    if n // min_per_thread < t:
        t = <int>(n // min_per_thread)
    return t if t > 1 else 1


cdef inline Py_ssize_t _block_size(Py_ssize_t n, int threads) noexcept nogil:
    """Elements per block: n split in `threads` parts, rounded up to _GRAIN."""
    cdef Py_ssize_t b = (n + threads - 1) // threads
    return (b + _GRAIN - 1) // _GRAIN * _GRAIN


cdef inline int _row_threads(Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    """Threads for a row kernel (softmax family): whole rows per thread only."""
    cdef int t = _threads_for(rows * cols, _MIN_PER_THREAD_WIDE)
    if rows < t:
        t = <int>rows
    return t if t > 1 else 1


def _parallel_tuning(cheap=None, wide=None, grain=None):
    """Test hook: set the per-thread minimums / grain (None keeps), return the old ones."""
    global _MIN_PER_THREAD_CHEAP, _MIN_PER_THREAD_WIDE, _GRAIN
    old = (_MIN_PER_THREAD_CHEAP, _MIN_PER_THREAD_WIDE, _GRAIN)
    if cheap is not None:
        _MIN_PER_THREAD_CHEAP = max(1, cheap)
    if wide is not None:
        _MIN_PER_THREAD_WIDE = max(1, wide)
    if grain is not None:
        _GRAIN = max(1, grain)
    return old


def _threads_for_size(Py_ssize_t n, bint wide=False):
    """Threads an elementwise kernel would use for n elements now (for tests)."""
    return _threads_for(n, _MIN_PER_THREAD_WIDE if wide else _MIN_PER_THREAD_CHEAP)


# ---- streaming stores (csrc/stream.h) -------------------------------------------
#
# A large out-of-place result is computed a tile at a time into a buffer on the
# stack and written with streaming stores, which skip reading the destination's
# lines from memory first.  relu float64 out of place on the development VM, ns
# per element with ordinary / streaming stores (each run alone, AVX-512): 0.76 /
# 0.64 at 1-2e6 elements, 1.22 / 0.64 at 4e6, 1.72 / 1.06 at 1e7.  Below the
# threshold the output may still sit in a cache, where the next operation would
# find it; streaming would push it out to memory (at 1e5, 1.24x the time).

cdef extern from "stream.h" nogil:
    int PYACT_STREAM, PYACT_STREAM_ALIGN
    void pyact_stream_store(void* dst, const void* src, size_t nbytes)
    void pyact_stream_fence()

# Bytes of results per streamed tile (a multiple of PYACT_STREAM_ALIGN), small so
# that the streaming stores drain while the next tile is computed (relu float64 at
# 1e7, in C: 0.87-1.01 ns per element with 1 KiB tiles, 1.19-1.29 with 4 KiB).
cdef enum:
    STREAM_TILE_BYTES = 1024
    STREAM_TILE_DOUBLES = STREAM_TILE_BYTES // 8   # (for array sizes)

# Outputs of at least this many bytes are streamed (a module global for the test hook).
cdef Py_ssize_t _STREAM_MIN_BYTES = 16 << 20


cdef inline bint _disjoint(const void* a, const void* b, Py_ssize_t nbytes) noexcept nogil:
    return <size_t>a + <size_t>nbytes <= <size_t>b or <size_t>b + <size_t>nbytes <= <size_t>a


cdef inline bint _streams(const void* out, const void* a, const void* b, Py_ssize_t nbytes,
                          Py_ssize_t itemsize) noexcept nogil:
    """Whether a loop writing nbytes to out, from inputs a and b (b may be NULL) of
    the same size, streams its results: a large output that overlaps no input, on
    a target with streaming stores."""
    return (PYACT_STREAM != 0 and nbytes >= _STREAM_MIN_BYTES
            and <size_t>out % <size_t>itemsize == 0 and _disjoint(out, a, nbytes)
            and (b == NULL or _disjoint(out, b, nbytes)))


cdef inline Py_ssize_t _stream_head(const void* p, Py_ssize_t itemsize) noexcept nogil:
    """Elements of itemsize bytes from p to the next PYACT_STREAM_ALIGN boundary."""
    return <Py_ssize_t>((-<size_t>p) % <size_t>PYACT_STREAM_ALIGN) // itemsize


# Whether this build has streaming stores at all (pyact.config()["stream_min_bytes"]).
STREAM_STORES = PYACT_STREAM != 0


def _streams_for(size_t out, size_t a, size_t b, Py_ssize_t nbytes, Py_ssize_t itemsize):
    """Whether an elementwise loop writing nbytes to address out from inputs at a and
    b (0: none) would stream (for tests)."""
    return _streams(<const void*>out, <const void*>a, <const void*>b if b else NULL,
                    nbytes, itemsize)


def _stream_tuning(min_bytes=None):
    """Test hook: set the smallest streamed output (bytes; None keeps), return the old one."""
    global _STREAM_MIN_BYTES
    old = _STREAM_MIN_BYTES
    if min_bytes is not None:
        _STREAM_MIN_BYTES = max(1, min_bytes)
    return old
