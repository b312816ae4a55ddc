import CLZ4

/// liblz4's block format, for the journal's compressed rows (`JournalChunk` format 2). The one file that calls liblz4.
///
/// Contract (the unsafe part): `compress` reads exactly `source.count` bytes at `source` and writes at most
/// `capacity` bytes at `destination`, which the caller owns for that many bytes; `capacity` at least
/// `bound(source.count)` guarantees success (liblz4's `LZ4_compressBound`). `decompress` hands `body` a buffer of
/// exactly `rawCount` bytes that it allocated, initialised in full and frees when `body` returns (do not keep it). It
/// relies on `LZ4_decompress_safe`'s documented guarantee that a malformed or hostile block never makes it read
/// outside the source nor write outside the destination (it returns a negative count instead): a damaged row is
/// then a `CodecError`, never a crash. Sizes are checked against `Int32` (liblz4 takes `int`) before any call.
enum LZ4Block {
    /// The most bytes one block may hold before compression (liblz4's `LZ4_MAX_INPUT_SIZE`).
    static let maxInput = 0x7E00_0000
    /// The most a block can expand on decompression, with room to spare: LZ4 encodes at most 255 bytes of a match per
    /// input byte, so a block of n bytes never holds more than about 255 × n. A declared size above this is damage,
    /// refused before anything is allocated for it.
    static let maxExpansion = 256

    /// Room `compress` needs for `count` input bytes (`count` ≤ `maxInput`).
    static func bound(_ count: Int) -> Int {
        precondition(count >= 0 && count <= maxInput)
        return Int(LZ4_compressBound(Int32(count)))
    }

    /// Compresses `source` into `destination` (`capacity` bytes, at least `bound(source.count)`); returns the
    /// compressed size (0 only for an empty source or a capacity too small).
    static func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawPointer,
                         capacity: Int) -> Int {
        guard let from = source.baseAddress, source.count > 0, source.count <= maxInput else { return 0 }
        let room = Int32(clamping: capacity)
        let n = LZ4_compress_default(from.assumingMemoryBound(to: CChar.self),
                                     destination.assumingMemoryBound(to: CChar.self), Int32(source.count), room)
        return Int(max(n, 0))
    }

    /// Decompresses `block`, which must hold exactly `rawCount` bytes once decompressed, and runs `body` on them.
    /// Throws `CodecError` when it does not (a damaged or truncated block, a wrong size).
    static func decompress<T>(_ block: UnsafeRawBufferPointer, rawCount: UInt64,
                              _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        guard let from = block.baseAddress, block.count > 0, block.count <= maxInput else {
            throw CodecError("its compressed block is empty")
        }
        guard rawCount > 0, rawCount <= UInt64(maxInput), rawCount <= UInt64(block.count) * UInt64(maxExpansion) else {
            throw CodecError("its compressed block of \(block.count) bytes declares \(rawCount) bytes")
        }
        let raw = Int(rawCount)
        let out = UnsafeMutableRawPointer.allocate(byteCount: raw, alignment: 16)
        defer { out.deallocate() }
        let n = LZ4_decompress_safe(from.assumingMemoryBound(to: CChar.self), out.assumingMemoryBound(to: CChar.self),
                                    Int32(block.count), Int32(raw))
        guard n == Int32(raw) else {
            throw CodecError(n < 0
                ? "its compressed block does not decompress (damaged or truncated)"
                : "its compressed block holds \(n) bytes, not the \(raw) it declares")
        }
        return try body(UnsafeRawBufferPointer(start: out, count: raw))
    }
}
