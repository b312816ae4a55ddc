// A cache-line prefetch for the engine (ContactTable.prefetch, Engine.prefetchSubject). Header only: the Swift compiler
// imports the static inline function and inlines it to one instruction (Swift has no prefetch of its own).
//
// Contract: a hint only. `p` may point anywhere (a prefetch never faults and nothing is read or written through it).
#ifndef CONTACTWATCH_PREFETCH_H
#define CONTACTWATCH_PREFETCH_H

/// Asks for the cache line holding `p` to be loaded (for reading, kept in every cache level).
static inline void cw_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

#endif
