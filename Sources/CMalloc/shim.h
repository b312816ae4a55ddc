// glibc's malloc_trim (<malloc.h>), which the Glibc module does not bring in: the daemon gives free heap memory back
// to the system after a refused message of many frames (Housekeeping.returnMemory in Pipeline.swift).
#ifndef CONTACTWATCH_MALLOC_H
#define CONTACTWATCH_MALLOC_H
#include <malloc.h>
#endif
