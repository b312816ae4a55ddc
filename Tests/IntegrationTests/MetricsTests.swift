import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 request (GET unless `method` says otherwise) to 127.0.0.1:`port` over a plain socket (Connection: close): the status and the body.
func httpGet(port: Int, path: String, method: String = "GET") throws -> (status: Int, body: String, headers: String) {
    let r = try httpRequest(port: port, path: path, method: method)
    return (r.status, r.body, r.headers)
}

/// One request to 127.0.0.1:`port`, read until the server closes or `readTimeout` seconds pass without a byte:
/// the status, the body, the headers and whether the server closed the connection. `head`: the request's lines
/// after the request line (default: `Host` and `Connection: close`).
func httpRequest(port: Int, path: String, method: String = "GET", version: String = "HTTP/1.1",
                 head: String = "Host: 127.0.0.1\r\nConnection: close\r\n", readTimeout: Int = 10,
                 firstByteTimeout: Int? = nil) throws
    -> (status: Int, body: String, headers: String, closedByServer: Bool) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    defer { close(fd) }
    // The answer's first bytes may take longer on a loaded machine than the wait that then tells a kept connection.
    var timeout = timeval(tv_sec: max(readTimeout, firstByteTimeout ?? readTimeout), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    let request = Array("\(method) \(path) \(version)\r\n\(head)\r\n".utf8)
    guard send(fd, request, request.count, 0) == request.count else { throw POSIXError(.EIO) }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    var closedByServer = false
    while true {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 {
            closedByServer = n == 0
            break
        }
        if response.isEmpty, firstByteTimeout != nil {
            timeout = timeval(tv_sec: readTimeout, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        response += buffer[0..<n]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let end = text.range(of: "\r\n\r\n"),
          let status = Int(text.split(separator: " ").dropFirst().first ?? "") else { throw POSIXError(.EPROTO) }
    var body = String(text[end.upperBound...])
    if text[..<end.lowerBound].lowercased().contains("transfer-encoding: chunked") { body = dechunk(body) }
    return (status, body, String(text[..<end.lowerBound]), closedByServer)
}

/// The payload of a chunked HTTP body.
func dechunk(_ body: String) -> String {
    var out = ""
    var rest = Substring(body)
    while let lineEnd = rest.range(of: "\r\n"), let size = Int(rest[..<lineEnd.lowerBound], radix: 16), size > 0 {
        let start = lineEnd.upperBound
        let end = rest.utf8.index(start, offsetBy: size)
        out += rest[start..<end]
        rest = rest[end...].dropFirst(2)
    }
    return out
}

/// The samples of a Prometheus exposition: `name{labels}` → value, and each metric's `# TYPE` and `# HELP`.
struct Exposition {
    var samples: [String: Double] = [:]
    var types: [String: String] = [:]
    var helps: [String: String] = [:]

    init(_ text: String) {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count >= 4 { types[String(parts[2])] = String(parts[3]) }
            } else if line.hasPrefix("# HELP ") {
                let parts = line.split(separator: " ", maxSplits: 3)
                if parts.count == 4 { helps[String(parts[2])] = String(parts[3]) }
            } else if !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) {
                samples[String(line[..<space])] = value
            }
        }
    }

    subscript(_ key: String) -> Double? { samples[key] }
}

@Suite("Metrics over HTTP", .blocking)
struct MetricsTests {
    /// The metrics URL's port, from the daemon's "metrics served" line.
    static func metricsPort(_ daemon: DaemonUnderTest) throws -> Int {
        // Logged before READY=1, but the harness reads the daemon's stderr on its own thread: wait for the line.
        daemon.child.stderr.wait(timeout: 30) { $0.contains("metrics served") }
        let line = try #require(daemon.child.stderr.lines.first { $0.hasSuffix("metrics served") }, "\(daemon.child.stderr.text)")
        let url = try #require(line.split(separator: " ").first { $0.hasPrefix("url=") })
        let hostPort = try #require(url.split(separator: "/").dropFirst().first)  // "url=http:", "127.0.0.1:PORT", "metrics"
        return try #require(Int(hostPort.split(separator: ":").last ?? ""))
    }

    @Test("after a known stream /metrics counts what the daemon published; histograms, gauges and /healthz are there")
    func scrapeAfterAStream() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--subscribe", "", "--metrics", "127.0.0.1:0"])
        let port = try Self.metricsPort(daemon)
        #expect(try httpGet(port: port, path: "/healthz").status == 200)
        // A new store, no event yet: no watermark, NaN — 0 read as a lag of 56 years (a bug hunter, session 46).
        let fresh = Exposition(try httpGet(port: port, path: "/metrics").body)
        #expect(fresh["contactwatch_watermark_seconds"]?.isNaN == true, "\(String(describing: fresh["contactwatch_watermark_seconds"]))")

        // Examples with alerts raised and resolved, invalid messages and sequence gaps, then a sentinel (not JSON).
        let files = ["01-warning-then-breach", "04-invalid", "07-sequence-gaps"].map {
            Executables.fixtures.appendingPathComponent("\($0).ndjson").path
        }
        let sentinel = dir.file("sentinel.ndjson")
        try "sentinel-metrics\n".write(toFile: sentinel, atomically: true, encoding: .utf8)
        let tail = try Child("contactwatch", ["tail", "--endpoint", daemon.output])
        #expect(daemon.waitForSubscribers(1), "\(daemon.child.stderr.text)")
        let replay = try runTool(["replay"] + files + [sentinel, "--endpoint", daemon.input, "--wait-subscribers", "1",
                                                       "--send-invalid"])
        #expect(replay.status == 0, "\(replay.stderr)")
        let summary = try #require(replay.stderr.split(separator: "\n").first { $0.hasPrefix("replayed ") }, "\(replay.stderr)")
        let sent = try #require(summary.split(separator: " ").dropFirst().first.flatMap { Int($0) }, "\(summary)")
        #expect(tail.stdout.wait(timeout: 30) { $0.contains("sentinel-metrics") }, "\(tail.stdout.text)")
        let published = tail.stdout.lines.compactMap(jsonObject)
        defer {
            tail.signal(SIGKILL)
            _ = tail.waitForProcessExit(timeout: 10)
        }

        var raised: [String: Int] = [:], resolved: [String: Int] = [:]
        var invalid = 0, gaps = 0, lastSequence = 0
        for body in published {
            switch body["eventType"] as? String {
            case "probation-case.supervision-alert.raised": raised[body["rule"] as! String, default: 0] += 1
            case "probation-case.supervision-alert.resolved": resolved[body["rule"] as! String, default: 0] += 1
            case "contactwatch.invalid-event": invalid += 1
            case "contactwatch.stream.gap": gaps += 1
            default: Issue.record("unexpected message \(body)")
            }
            if let s = (body["alertSequence"] as? NSNumber)?.intValue { lastSequence = max(lastSequence, s) }
        }
        try #require(!raised.isEmpty && !resolved.isEmpty && invalid > 1 && gaps > 0,
                     "the stream should raise, resolve, be invalid and have gaps: \(published.count) messages")

        // The loop copies its counts before it publishes what they produced, so once the sentinel's notice is out
        // they are final; only the committed sequence is stored just after the send: scrape again (a few times at
        // most, no pause) if a scrape raced that store.
        var metrics = Exposition("")
        for _ in 0..<50 {
            metrics = Exposition(try httpGet(port: port, path: "/metrics").body)
            if metrics["contactwatch_alert_sequence"] == Double(lastSequence) { break }
        }
        #expect(metrics["contactwatch_events_received_total"] == Double(sent))
        #expect(metrics["contactwatch_events_invalid_total"] == Double(invalid))
        #expect(metrics["contactwatch_stream_gaps_total"] == Double(gaps))
        for (rule, n) in raised { #expect(metrics["contactwatch_alerts_raised_total{rule=\"\(rule)\"}"] == Double(n), "\(rule)") }
        for (rule, n) in resolved { #expect(metrics["contactwatch_alerts_resolved_total{rule=\"\(rule)\"}"] == Double(n), "\(rule)") }
        // Rules that raised nothing are there with 0, so a dashboard has every series from the start.
        #expect(metrics["contactwatch_alerts_raised_total{rule=\"no-privacy\"}"] == Double(raised["no-privacy"] ?? 0))
        #expect(metrics["contactwatch_alerts_raised_total{rule=\"outcome-overdue\"}"] != nil)
        #expect(metrics["contactwatch_alert_sequence"] == Double(lastSequence))
        #expect(metrics["contactwatch_subscribers"] == 1)  // the tail, subscribed to everything
        #expect((metrics["contactwatch_cases"] ?? 0) >= 1)
        #expect((metrics["contactwatch_watermark_seconds"] ?? 0) > 1_700_000_000)
        #expect((metrics["contactwatch_commit_duration_seconds_count"] ?? 0) >= 1)
        #expect((metrics["contactwatch_event_publish_latency_seconds_count"] ?? 0) >= 1)
        #expect(metrics["contactwatch_commit_duration_seconds_bucket{le=\"0.005\"}"] != nil)
        #expect(metrics["contactwatch_event_publish_latency_seconds_bucket{le=\"+Inf\"}"]
                == metrics["contactwatch_event_publish_latency_seconds_count"])
        for socket in ["input", "output", "journal"] {
            #expect(metrics["contactwatch_auth_rejected_total{socket=\"\(socket)\"}"] == 0)
        }
        // Every metric of the spec's table, with its type.
        let table: [(String, String)] = [
            ("contactwatch_events_received_total", "counter"), ("contactwatch_events_processed_total", "counter"),
            ("contactwatch_events_invalid_total", "counter"), ("contactwatch_events_ignored_total", "counter"),
            ("contactwatch_events_duplicate_total", "counter"), ("contactwatch_events_stale_total", "counter"),
            ("contactwatch_alerts_raised_total", "counter"), ("contactwatch_alerts_resolved_total", "counter"),
            ("contactwatch_stream_gaps_total", "counter"), ("contactwatch_input_disconnects_total", "counter"),
            ("contactwatch_auth_rejected_total", "counter"), ("contactwatch_publish_failures_total", "counter"),
            ("contactwatch_commit_duration_seconds", "histogram"),
            ("contactwatch_event_publish_latency_seconds", "histogram"), ("contactwatch_cases", "gauge"),
            ("contactwatch_watermark_seconds", "gauge"), ("contactwatch_alert_sequence", "gauge"),
            ("contactwatch_subscribers", "gauge"),
        ]
        for (name, type) in table { #expect(metrics.types[name] == type, "\(name)") }
        // Each with its meaning from that table as `# HELP` (promtool linted every one as "no help text" without).
        for (name, _) in table { #expect(metrics.helps[name]?.isEmpty == false, "\(name)") }
        #expect(metrics.helps["contactwatch_events_received_total"] == "messages read from the input")
        #expect(metrics.helps["contactwatch_watermark_seconds"] == "W as Unix seconds")
        #expect(metrics.helps["contactwatch_auth_rejected_total"]
                == "handshakes refused, by socket (input, output or journal)")
        #expect(metrics.types.keys.allSatisfy { name in table.contains { $0.0 == name } }, "\(metrics.types.keys.sorted())")
        #expect(try httpGet(port: port, path: "/healthz").status == 200)
        // HEAD /metrics: GET's status and type, no body (it was 404).
        // Its Content-Length is what GET sends (RFC 9110 §8.6), not 0 (a fault tester, session 33). No event arrives
        // between the two requests, but the idle daemon's commit of what it published (1 s after the stream) may, and
        // it changes the commit histogram: the pair is asked again when the lengths differ (a reviewer, session 38).
        var head = try httpGet(port: port, path: "/metrics", method: "HEAD")
        var get = try httpGet(port: port, path: "/metrics")
        func contentLength() -> Int? {
            head.headers.lowercased().split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) }
        }
        for _ in 0..<3 where contentLength() != get.body.utf8.count {
            head = try httpGet(port: port, path: "/metrics", method: "HEAD")
            get = try httpGet(port: port, path: "/metrics")
        }
        #expect(head.status == 200 && head.body.isEmpty, "HEAD /metrics: \(head.status) \(head.body.prefix(200))")
        let length = contentLength()
        #expect(length == get.body.utf8.count && length ?? 0 > 0, "HEAD: \(head.headers); GET \(get.body.utf8.count) bytes")
        // Another method: 405 naming the two it takes (it was 404, as if the path did not exist).
        // TRACE and CONNECT were still 404 (a fault tester, session 40).
        for (method, path) in [("POST", "/metrics"), ("DELETE", "/healthz"), ("OPTIONS", "/metrics"), ("TRACE", "/healthz"),
                               ("CONNECT", "/metrics")] {
            let other = try httpGet(port: port, path: path, method: method)
            #expect(other.status == 405 && other.headers.lowercased().contains("allow: get, head"), "\(method) \(path): \(other.status) \(other.headers)")
        }
        #expect(try httpGet(port: port, path: "/nowhere").status == 404)
        // HEAD /healthz likewise (it was 404: a fault tester, session 35).
        let headHealth = try httpGet(port: port, path: "/healthz", method: "HEAD")
        #expect(headHealth.status == 200 && headHealth.body.isEmpty && headHealth.headers.lowercased().contains("content-length: 3"),
                "HEAD /healthz: \(headHealth.status) \(headHealth.headers)")
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
        // Every line the stop wrote is one of the daemon's: NIO's raw "Cannot schedule tasks on an EventLoop that has
        // already shut down" came in about one stop in ten after a scrape while the endpoint's group was shut down
        // at the stop (it is now never shut down); this catches it only when the race happens.
        #expect(!daemon.child.stderr.text.contains("EventLoop"), "\(daemon.child.stderr.text)")

        // Restarted on the same state, before any input: the gauges show the loaded state (they showed 0 cases, a
        // watermark of 0 and alert sequence 0 until the first event: the soak test, session 25).
        let again = try DaemonUnderTest(dir: dir, extraArguments: ["--subscribe", "", "--metrics", "127.0.0.1:0"])
        let restarted = Exposition(try httpGet(port: try Self.metricsPort(again), path: "/metrics").body)
        #expect(restarted["contactwatch_cases"] == metrics["contactwatch_cases"], "\(restarted.samples)")
        #expect(restarted["contactwatch_watermark_seconds"] == metrics["contactwatch_watermark_seconds"])
        #expect(restarted["contactwatch_alert_sequence"] == Double(lastSequence))
        #expect(restarted["contactwatch_events_received_total"] == 0)
        #expect(again.stop() == 0, "\(again.child.stderr.text)")
    }

    /// Hummingbird closed a connection only on a literal `Connection: close`: an HTTP/1.0 request without keep-alive
    /// (a shell health check reading to the end) or `Connection: Close` kept the connection open until the 10 s idle
    /// timeout, holding one of the 32 connection slots after its answer (a fault tester, session 35).
    @Test("a request that does not ask to keep the connection (HTTP/1.0, Connection: Close) is answered and the connection closed at once; HTTP/1.0 with keep-alive stays open")
    func nonPersistentRequestsClose() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--metrics", "127.0.0.1:0"])
        let port = try Self.metricsPort(daemon)
        // Read for 5 s at most: half the idle timeout, after which the server would close any connection.
        for (version, head) in [("HTTP/1.0", ""), ("HTTP/1.0", "Connection: close\r\n"), ("HTTP/1.1", "Host: x\r\nConnection: Close\r\n"),
                                ("HTTP/1.1", "Host: x\r\nConnection: TE, close\r\n")] {
            let r = try httpRequest(port: port, path: "/healthz", version: version, head: head, readTimeout: 5)
            #expect(r.status == 200 && r.closedByServer, "\(version) \(head.debugDescription): \(r.headers), closed: \(r.closedByServer)")
        }
        let kept = try httpRequest(port: port, path: "/healthz", version: "HTTP/1.0", head: "Connection: keep-alive\r\n",
                                   readTimeout: 1, firstByteTimeout: 10)
        #expect(kept.status == 200 && !kept.closedByServer, "\(kept.headers)")
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
    }

    @Test("a metrics address that cannot be bound stops the daemon with exit 69 before READY")
    func metricsPortInUse() throws {
        let dir = try TemporaryDirectory()
        // Hold a port with a listening socket.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        try #require(withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } } == 0)
        try #require(listen(fd, 1) == 0)
        try #require(withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } } == 0)
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let c = try Child("contactwatchd", ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"),
                                            "--state-dir", dir.file("state"), "--metrics", "127.0.0.1:\(port)"])
        #expect(c.waitForExit(timeout: 30) == 69, "\(c.stderr.text)")
        #expect(c.stderr.text.contains("cannot serve metrics on 127.0.0.1:\(port): Address already in use: another "
                    + "process is listening on that port"), "\(c.stderr.text)")
        #expect(!c.stderr.text.contains("in use)") && !c.stderr.text.contains("descriptor:"), "\(c.stderr.text)")
        #expect(!c.stderr.text.contains(" ready"), "\(c.stderr.text)")
    }

    @Test("metrics addresses: HOST:PORT and [IPv6]:PORT; anything else is exit 64 naming metrics.address")
    func badMetricsAddress() throws {
        let dir = try TemporaryDirectory()
        // A bracket that is not the pair around a whole host, a port not in plain digits: taken, then exit 69 or a
        // random port (a fault tester, session 34).
        for bad in ["9464", "localhost:", "localhost:99999", "::1:9464", "[::1:9464", "127.0.0.1]:9464", "]:1", "[::1",
                    "127.0.0.1:+80", "127.0.0.1:080", "127.0.0.1:-0",
                    // A host that is no address: looked up as a name (`*` served on ::1 alone), octal (0177…), or left
                    // to the bind (exit 69, restarted for ever) — the same fault tester's second round.
                    "*:0", "nonexistent.invalid:9464", "256.0.0.1:0", "127.0.0.1.:0", "0177.0.0.1:0", "127.1:0",
                    "[::1%lo]:0", "[fe80::1%nonexistent0]:0"] {
            let c = try Child("contactwatchd", ["--state-dir", dir.file("state"), "--metrics", bad])
            #expect(c.waitForExit(timeout: 30) == 64, "\(bad): \(c.stderr.text)")
            #expect(c.stderr.text.contains("metrics.address"), "\(bad): \(c.stderr.text)")
        }
    }
}
