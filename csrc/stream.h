/* Streaming (non-temporal) stores for large out-of-place results.

   An ordinary store first reads the destination's cache line from memory (a
   read for ownership) and writes it back later: an out-of-place kernel over
   arrays larger than the caches moves its output twice.  Streaming stores write
   whole lines straight to memory: on the development VM relu float64 over 1e7
   elements took 0.6x the time.  They bypass the caches, so csrc/parallel.pxi uses
   them only for large outputs that overlap no input (an in-place loop has read
   the line already: streaming there took 1.4x the time).

   pyact_stream_store copies nbytes from src (any alignment) to dst, which is
   PYACT_STREAM_ALIGN-aligned, nbytes a multiple of it, with the widest streaming
   store of the target (AVX-512, AVX or SSE2; any x86-64 has SSE2).  The stores
   are weakly ordered: pyact_stream_fence orders them before anything the thread
   does next (the end of an OpenMP region then publishes them to the caller).
   PYACT_STREAM is 0 on other targets, where the loops keep ordinary stores. */
#ifndef PYACT_STREAM_H
#define PYACT_STREAM_H

#include <stddef.h>

#define PYACT_STREAM_ALIGN 64

#if defined(__SSE2__) || defined(_M_X64)
#include <immintrin.h>
#define PYACT_STREAM 1

static inline void pyact_stream_store(void *dst, const void *src, size_t nbytes)
{
    char *d = (char *)dst;
    const char *s = (const char *)src;
    size_t i;
    for (i = 0; i < nbytes; i += PYACT_STREAM_ALIGN) {
#if defined(__AVX512F__)
        _mm512_stream_si512((void *)(d + i), _mm512_loadu_si512((const void *)(s + i)));
#elif defined(__AVX__)
        _mm256_stream_si256((__m256i *)(d + i), _mm256_loadu_si256((const __m256i *)(s + i)));
        _mm256_stream_si256((__m256i *)(d + i + 32), _mm256_loadu_si256((const __m256i *)(s + i + 32)));
#else
        _mm_stream_si128((__m128i *)(d + i), _mm_loadu_si128((const __m128i *)(s + i)));
        _mm_stream_si128((__m128i *)(d + i + 16), _mm_loadu_si128((const __m128i *)(s + i + 16)));
        _mm_stream_si128((__m128i *)(d + i + 32), _mm_loadu_si128((const __m128i *)(s + i + 32)));
        _mm_stream_si128((__m128i *)(d + i + 48), _mm_loadu_si128((const __m128i *)(s + i + 48)));
#endif
    }
}

static inline void pyact_stream_fence(void) { _mm_sfence(); }

#else
#define PYACT_STREAM 0
static inline void pyact_stream_store(void *dst, const void *src, size_t nbytes)
{
    (void)dst; (void)src; (void)nbytes;   /* never called: PYACT_STREAM is 0 */
}
static inline void pyact_stream_fence(void) {}
#endif

#endif
