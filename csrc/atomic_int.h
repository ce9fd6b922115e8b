/* Relaxed atomic loads and stores of an int: pyact's thread limit
   (csrc/runtime.pyx) is set by one Python thread while kernels read it in
   others, without the GIL (and on free-threaded CPython there is none at all).
   Relaxed order suffices: the value is a hint read once per call, not a guard
   of other data.  On x86-64 and AArch64 these are plain moves. */
#ifndef PYACT_ATOMIC_INT_H
#define PYACT_ATOMIC_INT_H

#if defined(__GNUC__) || defined(__clang__)
static inline int pyact_atomic_load_int(const int *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void pyact_atomic_store_int(int *p, int value) {
    __atomic_store_n(p, value, __ATOMIC_RELAXED);
}
#else  /* MSVC: aligned int accesses are atomic on every target it has */
static inline int pyact_atomic_load_int(const int *p) {
    return *(const volatile int *)p;
}
static inline void pyact_atomic_store_int(int *p, int value) {
    *(volatile int *)p = value;
}
#endif

#endif
