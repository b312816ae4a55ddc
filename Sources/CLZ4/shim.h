// liblz4's block format (the journal's compressed rows, JournalChunk.swift; called only from LZ4Block.swift).
#include <lz4.h>
