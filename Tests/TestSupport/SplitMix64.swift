/// SplitMix64 (Steele, Lea and Flood 2014): the one small seeded generator of the tests and benchmarks, so that a seed
/// gives the same streams, states and messages on every machine. (`contactwatch generate` seeds its own xoshiro256**
/// with the same steps; see `GenerateSupport.swift`.)
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in 0..<n (its modulo bias does not matter at the sizes tests use).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
