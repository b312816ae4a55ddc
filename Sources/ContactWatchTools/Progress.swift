// Progress on a terminal for `replay` and `generate`: one line rewritten in place (carriage return, erase to end of
// line) at most four times a second, with what is done out of the total, the rate and the time left. Nothing is
// written when the diagnostics descriptor is not a terminal (a pipe, a file, a test), so logs stay clean.

/// A throttled progress line on a terminal.
public final class ProgressMeter {
    private let writer: FDWriter
    /// Whether anything is shown (a terminal, unless forced).
    public let enabled: Bool
    private let start: UInt64
    private var next: UInt64
    private var shown = false
    private let intervalNanos: UInt64 = 250_000_000

    /// - Parameter enabled: nil: when `writer` is a terminal.
    public init(writer: FDWriter, enabled: Bool? = nil) {
        self.writer = writer
        self.enabled = enabled ?? writer.isTerminal
        start = ToolClock.nanos()
        next = start + intervalNanos
    }

    /// Seconds since the meter was made.
    public var elapsedSeconds: Double { Double(ToolClock.nanos() - start) / 1e9 }

    /// Shows `line()` when a quarter of a second has passed since the last one. Cheap when it is not time yet.
    @inline(__always)
    public func tick(_ line: () -> String) {
        guard enabled else { return }
        let now = ToolClock.nanos()
        guard now >= next else { return }
        next = now + intervalNanos
        shown = true
        try? writer.write("\r" + line() + "\u{1B}[K")
    }

    /// Erases the progress line before another line is written in its place (a diagnostic while the work goes on); the
    /// next tick draws it again below. The diagnostics were written after the unfinished row and stayed glued to it in
    /// the scroll-back (the companion tool's hunter, session 45).
    public func clear() {
        guard enabled, shown else { return }
        shown = false
        try? writer.write("\r\u{1B}[K")
    }

    /// Erases the progress line (the summary that follows gets a clean line).
    public func finish() {
        guard enabled, shown else { return }
        try? writer.write("\r\u{1B}[K")
    }

    /// `done/total unit (p%), rate unit/s, ETA m:ss` — without a total: `done unit, rate unit/s`.
    /// `rateCount` (default `done`) is what the rate counts, in `rateUnit` (default `unit`).
    public static func line(done: Int, total: Int?, unit: String, elapsed: Double,
                            rateCount: Int? = nil, rateUnit: String? = nil) -> String {
        let count = rateCount ?? done
        let rate = elapsed > 0 ? Double(count) / elapsed : 0
        var s: String
        if let total, total > 0 {
            let fraction = min(1, Double(done) / Double(total))
            s = "\(done)/\(total) \(unit) (\(formatFixed(fraction * 100, 1))%)"
        } else {
            s = "\(done) \(unit)"
        }
        if let rateCount { s += ", \(rateCount) \(rateUnit ?? unit)" }
        s += ", \(formatFixed(rate, 0)) \(rateUnit ?? unit)/s"
        if let total, total > 0, done > 0, elapsed > 0 {
            let left = elapsed * Double(max(0, total - done)) / Double(done)
            s += ", ETA \(duration(left))"
        }
        return s
    }

    /// `m:ss`, or `h:mm:ss` from an hour.
    public static func duration(_ seconds: Double) -> String {
        let total = Int(max(0, seconds.isFinite ? seconds : 0).rounded(.up))
        let h = total / 3600, m = (total % 3600) / 60, s = total % 60
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return h > 0 ? "\(h):\(two(m)):\(two(s))" : "\(m):\(two(s))"
    }
}
