/* Transposes between a block of 16 short rows (row j: block[j * n + i], i < n)
   and the tile the column loops of csrc/axis.pxi reduce (tile[i * 16 + j]), for a
   full block: W x W squares, each loaded as W vectors, transposed in registers and
   stored as W vectors (float32: 4 x 4; float64: 4 x 4 on AVX levels, 2 x 2
   elsewhere).  Element by element, GCC spent a fifth of float32 softmax over rows
   of 10 on these copies (scalar moves, and the 16 row addresses spilled).  Rows
   whose length is not a multiple of W end with a square that overlaps the one
   before (the same values stored twice).  Callers need n >= W. */
#ifndef PYACT_TRANSPOSE_H
#define PYACT_TRANSPOSE_H

#include <stddef.h>
#include <stdint.h>

#define PYACT_TILE_COLS 16

#if defined(__AVX__)
#define PYACT_TD_WIDTH 4
#else
#define PYACT_TD_WIDTH 2
#endif

typedef float pyact_t4f __attribute__((vector_size(16)));
typedef int32_t pyact_t4i __attribute__((vector_size(16)));
typedef double pyact_ttd __attribute__((vector_size(PYACT_TD_WIDTH * 8)));
typedef int64_t pyact_tti __attribute__((vector_size(PYACT_TD_WIDTH * 8)));

/* Two-input shuffle with constant indices; IT is the index vector type (GCC). */
#if defined(__clang__)
#define PYACT_SHUFFLE(IT, a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define PYACT_SHUFFLE(IT, a, b, ...) __builtin_shuffle(a, b, (IT){__VA_ARGS__})
#endif

/* v[r][c] -> v[c][r] for 4 x 4 floats (unpack low/high, then move halves). */
static inline void pyact_transpose4_f(pyact_t4f v[4])
{
    pyact_t4f t0 = PYACT_SHUFFLE(pyact_t4i, v[0], v[1], 0, 4, 1, 5);
    pyact_t4f t1 = PYACT_SHUFFLE(pyact_t4i, v[2], v[3], 0, 4, 1, 5);
    pyact_t4f t2 = PYACT_SHUFFLE(pyact_t4i, v[0], v[1], 2, 6, 3, 7);
    pyact_t4f t3 = PYACT_SHUFFLE(pyact_t4i, v[2], v[3], 2, 6, 3, 7);
    v[0] = PYACT_SHUFFLE(pyact_t4i, t0, t1, 0, 1, 4, 5);
    v[1] = PYACT_SHUFFLE(pyact_t4i, t0, t1, 2, 3, 6, 7);
    v[2] = PYACT_SHUFFLE(pyact_t4i, t2, t3, 0, 1, 4, 5);
    v[3] = PYACT_SHUFFLE(pyact_t4i, t2, t3, 2, 3, 6, 7);
}

/* The same for PYACT_TD_WIDTH x PYACT_TD_WIDTH doubles (4 x 4: unpack within the
   128-bit halves, then exchange halves). */
static inline void pyact_transpose_d(pyact_ttd v[PYACT_TD_WIDTH])
{
#if PYACT_TD_WIDTH == 4
    pyact_ttd t0 = PYACT_SHUFFLE(pyact_tti, v[0], v[1], 0, 4, 2, 6);
    pyact_ttd t1 = PYACT_SHUFFLE(pyact_tti, v[0], v[1], 1, 5, 3, 7);
    pyact_ttd t2 = PYACT_SHUFFLE(pyact_tti, v[2], v[3], 0, 4, 2, 6);
    pyact_ttd t3 = PYACT_SHUFFLE(pyact_tti, v[2], v[3], 1, 5, 3, 7);
    v[0] = PYACT_SHUFFLE(pyact_tti, t0, t2, 0, 1, 4, 5);
    v[1] = PYACT_SHUFFLE(pyact_tti, t1, t3, 0, 1, 4, 5);
    v[2] = PYACT_SHUFFLE(pyact_tti, t0, t2, 2, 3, 6, 7);
    v[3] = PYACT_SHUFFLE(pyact_tti, t1, t3, 2, 3, 6, 7);
#else
    pyact_ttd t0 = PYACT_SHUFFLE(pyact_tti, v[0], v[1], 0, 2);
    v[1] = PYACT_SHUFFLE(pyact_tti, v[0], v[1], 1, 3);
    v[0] = t0;
#endif
}

/* Block -> tile (tile_in) and tile -> block (tile_out), a W x W square at a time:
   the square at rows i.., slices j0.. is read as W vectors from one side,
   transposed, and written as W vectors to the other.  The vectors are loaded and
   stored through unaligned, aliasing vector types, one statement each (through
   memcpy into an array GCC kept the square on the stack and reloaded it in
   halves, which made float64 slower than element by element). */
#define PYACT_FOR_EACH_SQUARE(i0, i, j0, n, W)                                         \
    for ((i0) = 0; (i0) < (n); (i0) += (W))                                            \
        for ((i) = (i0) + (W) <= (n) ? (i0) : (n) - (W), (j0) = 0;                     \
             (j0) < PYACT_TILE_COLS; (j0) += (W))
/* The third and fourth vectors are indexed W - 2 and W - 1, not 2 and 3, so that
   the W = 2 copies index their two-vector array in range in the dead branch. */
#define PYACT_LOAD_SQUARE(v, UT, p, stride, W)                                         \
    do {                                                                               \
        (v)[0] = *(const UT *)(p);                                                     \
        (v)[1] = *(const UT *)((p) + (stride));                                        \
        if ((W) == 4) {                                                                \
            (v)[(W) - 2] = *(const UT *)((p) + 2 * (stride));                          \
            (v)[(W) - 1] = *(const UT *)((p) + 3 * (stride));                          \
        }                                                                              \
    } while (0)
#define PYACT_STORE_SQUARE(v, UT, p, stride, W)                                        \
    do {                                                                               \
        *(UT *)(p) = (v)[0];                                                           \
        *(UT *)((p) + (stride)) = (v)[1];                                              \
        if ((W) == 4) {                                                                \
            *(UT *)((p) + 2 * (stride)) = (v)[(W) - 2];                                \
            *(UT *)((p) + 3 * (stride)) = (v)[(W) - 1];                                \
        }                                                                              \
    } while (0)
#define PYACT_DEFINE_TILE_COPIES(T, VT, W, TRANSPOSE, SUFFIX)                          \
    typedef T pyact_tu_##SUFFIX                                                        \
        __attribute__((vector_size(sizeof(VT)), aligned(sizeof(T)), may_alias));       \
    static inline void pyact_tile_in_##SUFFIX(T *tile, const T *block, ptrdiff_t n)    \
    {                                                                                  \
        VT v[W];                                                                       \
        ptrdiff_t i0, i, j0;                                                           \
        PYACT_FOR_EACH_SQUARE(i0, i, j0, n, W) {                                       \
            PYACT_LOAD_SQUARE(v, pyact_tu_##SUFFIX, block + j0 * n + i, n, W);         \
            TRANSPOSE(v);                                                              \
            PYACT_STORE_SQUARE(v, pyact_tu_##SUFFIX, tile + i * PYACT_TILE_COLS + j0,  \
                               PYACT_TILE_COLS, W);                                    \
        }                                                                              \
    }                                                                                  \
    static inline void pyact_tile_out_##SUFFIX(T *block, const T *tile, ptrdiff_t n)   \
    {                                                                                  \
        VT v[W];                                                                       \
        ptrdiff_t i0, i, j0;                                                           \
        PYACT_FOR_EACH_SQUARE(i0, i, j0, n, W) {                                       \
            PYACT_LOAD_SQUARE(v, pyact_tu_##SUFFIX, tile + i * PYACT_TILE_COLS + j0,   \
                              PYACT_TILE_COLS, W);                                     \
            TRANSPOSE(v);                                                              \
            PYACT_STORE_SQUARE(v, pyact_tu_##SUFFIX, block + j0 * n + i, n, W);        \
        }                                                                              \
    }

PYACT_DEFINE_TILE_COPIES(float, pyact_t4f, 4, pyact_transpose4_f, f)
PYACT_DEFINE_TILE_COPIES(double, pyact_ttd, PYACT_TD_WIDTH, pyact_transpose_d, d)

#endif
