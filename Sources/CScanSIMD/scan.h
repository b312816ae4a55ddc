// SSE2 classification of sixteen bytes for the engine's event scanner (EventScanner.fastStringEnd). Header only: the
// Swift compiler imports the static inline function and inlines it (Swift's own SIMD types are scalarised here).
//
// Contract: `p` must have sixteen readable bytes (the caller checks against the body's length); nothing is written.
#ifndef CONTACTWATCH_SCAN_H
#define CONTACTWATCH_SCAN_H

#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/// Bit k set when byte k of p[0..<16] is '"', '\\', a control character (< 0x20) or not ASCII (>= 0x80): the bytes
/// that end a JSON string body or need a closer look.
static inline uint32_t cw_string_specials16(const uint8_t *p) {
#if defined(__SSE2__)
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    __m128i backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    // As signed bytes, both the control characters and the bytes from 0x80 up are below 0x20.
    __m128i low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
    return (uint32_t)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), low));
#else
    uint32_t m = 0;
    for (int k = 0; k < 16; k++) {
        uint8_t x = p[k];
        if (x == '"' || x == '\\' || x < 0x20 || x >= 0x80) m |= (uint32_t)1 << k;
    }
    return m;
#endif
}

#endif
