// SSE2 helpers for the engine's event scanner: classification of sixteen bytes (EventScanner.fastStringEnd), the
// comparison of 64 bytes (its prefix memo) and of sixteen bytes with an envelope template (its template memo). Header
// only: the Swift compiler imports the static inline functions and inlines them (Swift's own SIMD types are
// scalarised here).
//
// Contract: each function reads only the bytes its comment names, which the caller must have checked are readable
// (against the body's length); nothing is written.
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

/// The envelope template's comparison of sixteen bytes (EventScanner's `TemplateMemo`): bit k set when p[k] differs
/// from t[k] where exact[k] is 0xFF (the other bytes are not compared).
///
/// Contract: `p`, `t` and `exact` must each have 16 readable bytes (the caller checks the body's length); nothing is
/// written.
static inline uint32_t cw_template_differ16(const uint8_t *p, const uint8_t *t, const uint8_t *exact) {
#if defined(__SSE2__)
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i d = _mm_loadu_si128((const __m128i *)(const void *)t);
    __m128i m = _mm_loadu_si128((const __m128i *)(const void *)exact);
    return (uint32_t)_mm_movemask_epi8(_mm_andnot_si128(_mm_cmpeq_epi8(v, d), m));
#else
    uint32_t bad = 0;
    for (int k = 0; k < 16; k++) {
        if (exact[k] == 0xFF && p[k] != t[k]) bad |= (uint32_t)1 << k;
    }
    return bad;
#endif
}

/// Bit k set when p[k] == q[k], for k < 64: the scanner's comparison of a body's first 64 bytes with its memo.
///
/// Contract: `p` and `q` must each have 64 readable bytes (the caller checks the body's length); nothing is written.
static inline uint64_t cw_equal64(const uint8_t *p, const uint8_t *q) {
#if defined(__SSE2__)
    uint64_t m = 0;
    for (int k = 0; k < 4; k++) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(q + 16 * k));
        m |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(a, b)) << (16 * k);
    }
    return m;
#else
    uint64_t m = 0;
    for (int k = 0; k < 64; k++) {
        if (p[k] == q[k]) m |= (uint64_t)1 << k;
    }
    return m;
#endif
}

#endif
