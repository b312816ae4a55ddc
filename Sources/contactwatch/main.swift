// `contactwatch`: the companion tool (replay, generate, tail). Flags in, calls out: the logic
// lives in ContactWatchTools.

import ArgumentParser
import ContactWatchTools
import ContactWatchCommon
import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct ContactWatchTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contactwatch",
        abstract: "Companion tool for ContactWatch: replay event streams, generate synthetic ones, tail alerts.",
        version: ContactWatchVersion.string,
        subcommands: [ReplayCommand.self, GenerateCommand.self, TailCommand.self, KeygenCommand.self]
    )
}

// Numeric options are parsed `.unconditional`: their value may start with a dash, so `--rate -1` is refused with the
// range ("--rate must be from 0.001 …") rather than "Missing value for '--rate <rate>'" (the companion tool's auditor,
// session 25); a flag given where a number is due is then refused as not a number.

/// The fractional flags' parser: a decimal number (`DecimalSyntax`: `2.5`, `.5`, `1e3`, `-1`, which the flag's range
/// then refuses); `Double(_:)` alone took `--rate 0x10` as 16, and `inf` and `nan`. (With a transform the parser no
/// longer shows a default, so the flags' help gives it.)
func decimalNumber(_ text: String) throws -> Double {
    guard DecimalSyntax.isDecimal(text), let value = Double(text) else {
        throw ValidationError("'\(text)' is not a decimal number (such as 2.5 or 1e3)")
    }
    return value
}

/// SIGINT and SIGTERM end the process at once (exit 130 and 143, as a shell reports them) after writing `say`'s line
/// for the signal's name: a replay interrupted while libzmq still held queued messages died without a word, and its
/// subscriber had 2,651 of 29,891 (the companion tool's auditor, session 25). Keep the result alive while it applies.
/// Returns once both are registered (`SignalSource`).
func sayOnInterrupt(_ say: @escaping @Sendable (String) -> String) -> [any DispatchSourceSignal] {
    [(SIGINT, "SIGINT", Int32(130)), (SIGTERM, "SIGTERM", Int32(143))].map { number, name, code in
        SignalSource.make(number, queue: .global()) {
            // The line is best effort: a standard error nobody reads (a full pipe) must not hold the exit back, which
            // the signal's default action never did (a reviewer, session 25).
            DispatchQueue.global().asyncAfter(deadline: .now() + 1) { _exit(code) }
            // On a terminal the progress line (`replay`, `generate`) is erased first, as before the summary line: the
            // message continued the progress text on the same row (a fault tester, session 35).
            FDWriter.standardError.line((isatty(2) == 1 ? "\r\u{1B}[K" : "") + say(name))
            _exit(code)
        }
    }
}

/// Runs `body`, turning a `ToolError` into its message on standard error and its exit code.
func runTool(_ name: String, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch {
        guard let error = error as? ToolError ?? ToolError.socketFailure(error) else { throw error }
        FDWriter.standardError.line("contactwatch \(name): \(error.message)")
        throw ExitCode(error.exitCode.rawValue)
    }
}

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Publish each line of NDJSON files as a two-frame ZeroMQ message (topic = eventType).",
        discussion: """
            Blank lines and lines starting with '#' are skipped. A line that is JSON but not an object with a \
            string eventType is sent as a one-frame message. A line that is not JSON is reported on standard \
            error with its file and line number and not sent (with --send-invalid: sent as a one-frame message). \
            Shows progress on standard error when it is a terminal, and ends with a summary line there; fails \
            when no subscriber was seen (the messages went nowhere), saying why a daemon refused it. Exit codes: 64 bad flags (or a --resume-after position beyond the files, or an open-files limit below 32), 66 a file cannot be read, \
            69 the endpoint cannot be bound or connected, too few subscribers joined, or none was seen (every message \
            was dropped), 74 a file cannot be read to its end, 75 messages still queued for a subscriber when --linger \
            ran out were dropped, or some were sent while no subscriber held a subscription (counted); 130 and 143 interrupted by SIGINT and SIGTERM (saying how many messages were queued).
            """
    )

    @Argument(help: "NDJSON files to publish, in order.")
    var files: [String]

    @Option(help: "ZeroMQ endpoint (tcp://, ipc://) to connect to (or bind, with --bind).")
    var endpoint: String

    @Flag(help: "Bind the endpoint instead of connecting.")
    var bind = false

    @Option(parsing: .unconditional, help: "Messages per second (default: as fast as possible).", transform: decimalNumber)
    var rate: Double?

    @Option(parsing: .unconditional, help: "Follow the gaps between occurredAt values, X times faster.", transform: decimalNumber)
    var speed: Double?

    @Option(parsing: .unconditional, help: "Wait until N subscribers hold a subscription before the first message.")
    var waitSubscribers: Int?

    @Option(parsing: .unconditional, help: "Seconds to wait for --wait-subscribers (default: 30).", transform: decimalNumber)
    var waitTimeout: Double?

    @Option(help: "Stamp publisherId and sequenceNumber (1, 2, 3, ...) on each JSON object.")
    var publisherId: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("With --publisher-id: pass over the messages numbered 1 to N (the daemon's position for this publisher, in its start line) and go on from N+1.", valueName: "N"))
    var resumeAfter: UInt64?

    @Option(parsing: .unconditional, help: "Replay the files N times.")
    var loop: Int = 1

    @Flag(help: "Send lines that are not JSON as one-frame messages instead of skipping them.")
    var sendInvalid = false

    @Option(parsing: .unconditional, help: ArgumentHelp("At the end, wait up to S seconds for subscribers to take what is still queued (0 to 86400; default: 60).", valueName: "S"), transform: decimalNumber)
    var linger: Double = 60

    @Option(help: ArgumentHelp("This publisher's own CURVE secret certificate (NAME.key_secret).", valueName: "file"))
    var curveCert: String?

    @Option(help: ArgumentHelp("The daemon's public certificate, to connect over CURVE.", valueName: "file"))
    var curveServerKey: String?

    @Option(help: ArgumentHelp("With --bind and --curve-cert: the *.key certificates allowed to subscribe.", valueName: "dir"))
    var curveAllow: String?

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one FILE") }
        if rate != nil && speed != nil { throw ValidationError("--rate and --speed cannot be used together") }
        // Ranges, not just signs: the pause between messages is 1/rate seconds and a gap of occurredAt divided by
        // speed, and a tiny rate or speed made it more nanoseconds than UInt64 holds (a crash, SIGILL).
        if let rate, !(rate >= 0.001 && rate <= 1e9) {
            throw ValidationError("--rate must be from 0.001 to 1000000000 messages per second")
        }
        if let speed, !(speed >= 0.001 && speed <= 1e9) {
            throw ValidationError("--speed must be from 0.001 to 1000000000 (times faster than the occurredAt gaps)")
        }
        if let waitSubscribers, waitSubscribers < 0 { throw ValidationError("--wait-subscribers must be 0 or more") }
        if let waitTimeout, !(waitTimeout >= 0 && waitTimeout <= 86400) {
            throw ValidationError("--wait-timeout must be from 0 to 86400 seconds")
        }
        // Ignored without a wait, which said nothing (a fault tester, session 35), as other flags that need another are.
        if waitTimeout != nil && waitSubscribers == nil { throw ValidationError("--wait-timeout needs --wait-subscribers N") }
        if loop < 1 { throw ValidationError("--loop must be 1 or more") }
        if !(linger >= 0 && linger <= 86400) { throw ValidationError("--linger must be from 0 to 86400 seconds") }
        if let publisherId, publisherId.unicodeScalars.isEmpty || publisherId.unicodeScalars.count > 64 {
            throw ValidationError("--publisher-id must have 1 to 64 characters")
        }
        // Without numbers of its own there is nothing to resume by: the files' own sequenceNumbers are not read.
        if resumeAfter != nil && publisherId == nil { throw ValidationError("--resume-after needs --publisher-id ID") }
        if let problem = EndpointSyntax.problem(endpoint, bind: bind) { throw ValidationError("--endpoint: \(problem)") }
        try validateCurve(bind: bind, cert: curveCert, serverKey: curveServerKey, allow: curveAllow)
    }

    func run() throws {
        // First: the signal handlers below need descriptors of their own (libdispatch's), and failed on none.
        try runTool("replay") { try DescriptorLimit.requireForSockets() }
        var options = ReplayOptions(files: files, endpoint: endpoint)
        options.bind = bind
        options.rate = rate
        options.speed = speed
        options.waitSubscribers = waitSubscribers
        options.waitTimeoutSeconds = waitTimeout ?? 30
        options.publisherId = publisherId
        options.loop = loop
        options.resumeAfter = resumeAfter ?? 0
        options.sendInvalid = sendInvalid
        options.lingerMilliseconds = Int32((linger * 1000).rounded())
        let queued = ReplayCounter()
        options.queued = queued
        let interrupts = sayOnInterrupt { name in
            let n = queued.messages.load(ordering: .relaxed)
            return "contactwatch replay: interrupted by \(name) after \(n) messages were queued"
                + (n > 0 ? ": those a subscriber had not yet taken are lost" : "")
        }
        defer { withExtendedLifetime(interrupts) {} }
        try runTool("replay") {
            options.curve = try ToolCurve.load(cert: curveCert, serverKey: curveServerKey, allow: curveAllow)
            let summary = try Replay.run(options)
            if let resumeAfter, resumeAfter > 0 {
                // A position beyond the files: not the files this publisher sent the daemon (or not this publisher's
                // position), and nothing was sent: a failure, not a success a recovery script goes on from (a reviewer).
                if summary.lastNumberPassed < resumeAfter {
                    throw ToolError(exitCode: ExitStatus.usage, "--resume-after \(resumeAfter): the files hold "
                        + "only \(summary.lastNumberPassed) numbered message\(summary.lastNumberPassed == 1 ? "" : "s"), so they are not what this publisher sent up to "
                        + "that position (another publisher's position, or other files?); nothing was sent")
                }
                FDWriter.standardError.line(summary.messages == 0
                    ? "passed over \(summary.resumedPast) lines up to sequenceNumber \(resumeAfter), the files' last: nothing was left to send"
                    : "passed over \(summary.resumedPast) lines up to sequenceNumber \(resumeAfter); resumed at \(resumeAfter + 1)")
            }
            if summary.skippedInvalid > 0 {
                FDWriter.standardError.line("skipped \(summary.skippedInvalid) \(summary.skippedInvalid == 1 ? "line that is" : "lines that are") not JSON")
            }
            if summary.skippedOverlong > 0 {
                let n = summary.skippedOverlong
                FDWriter.standardError.line("skipped \(n) \(n == 1 ? "line" : "lines") of \(LineReader.maxLineBytes) bytes or more")
            }
            FDWriter.standardError.line(summary.line)
            if summary.noSubscriber {
                throw ToolError(exitCode: ToolError.unavailable, Replay.noSubscriberMessage(options, summary))
            }
            if summary.unmatched > 0 { FDWriter.standardError.line(Replay.unmatchedMessage(options, summary)) }
            var lost: [String] = []
            if summary.droppedUnheld > 0 { lost.append(Replay.droppedMessage(options, summary)) }
            if summary.undelivered {
                // libzmq dropped what was still queued when the linger ran out; it does not say how much.
                lost.append("a subscriber had not taken every message when "
                    + "the \(formatFixed(linger, linger == linger.rounded() ? 0 : 3)) s linger ran out: the rest were dropped "
                    // Connecting, libzmq keeps a connection's queue across its loss, for the peer's return: a daemon
                    // that stopped mid-replay was blamed as a slow subscriber (a fault tester, session 35).
                    + (options.bind ? "(a subscriber stopped reading, or is far slower than the replay)"
                        : "(the daemon stopped and did not come back within the linger — the queue is kept for its return — "
                            + "or it stopped reading, or is far slower than the replay)")
                    + "; replay again, or give --linger more")
            }
            if !lost.isEmpty {
                throw ToolError(exitCode: ExitStatus.temporaryFailure, lost.joined(separator: "; and "))
            }
        }
    }
}

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a realistic synthetic event stream (NDJSON, sorted by occurredAt). Same seed, same bytes.",
        discussion: """
            Exit codes: 64 bad flags, 73 the output file cannot be created, 74 a write failed part way (a full disk, \
            a closed standard output).
            """
    )

    @Option(parsing: .unconditional, help: "Number of cases.")
    var cases: Int = 2000

    @Option(parsing: .unconditional, help: "Number of days.")
    var days: Int = 120

    @Option(parsing: .unconditional, help: "Random seed.")
    var seed: UInt64 = 1

    @Option(help: "First day, YYYY-MM-DD.")
    var start: String = "2026-01-05"

    @Option(help: "Write to FILE instead of standard output (an existing FILE is replaced, as by a shell's >).")
    var output: String?

    @Option(parsing: .unconditional, help: "Share (0-1) of enforced failures whose action is recorded 4-12 weeks after the failure (default: 0).", transform: decimalNumber)
    var lateEnforcement: Double = 0

    func validate() throws {
        // An empty --output was taken for a file with no name: "cannot create : No such file or directory" (73).
        if output?.isEmpty == true { throw ValidationError("--output must not be empty (leave it out to write to standard output)") }
        if !(lateEnforcement >= 0 && lateEnforcement <= 1) { throw ValidationError("--late-enforcement must be from 0 to 1") }
        if !(1...Generator.maxCases).contains(cases) { throw ValidationError("--cases must be from 1 to \(Generator.maxCases)") }
        if !(1...Generator.maxDays).contains(days) { throw ValidationError("--days must be from 1 to \(Generator.maxDays)") }
        let parts = start.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              let month = Int(parts[1]), let day = Int(parts[2]), (1...12).contains(month), (1...31).contains(day)
        else { throw ValidationError("--start must be a date YYYY-MM-DD") }
        // The same checks as the generator's (a date from 1970, a stream that stays in the year 9999), before
        // --output is created.
        do {
            try Generator.check(GeneratorOptions(cases: cases, days: days, seed: seed, start: start,
                                                 lateEnforcement: lateEnforcement))
        } catch let error as ToolError {
            throw ValidationError(error.message)
        }
    }

    func run() throws {
        let options = GeneratorOptions(cases: cases, days: days, seed: seed, start: start, lateEnforcement: lateEnforcement)
        try runTool("generate") {
            if output == nil { try StandardDescriptors.requireStandardOutput() }
            let fd = try output.map(openForWriting) ?? 1
            let writer = BufferedFDWriter(fd: fd)
            // Progress (days done of all, events, rate, time left) on standard error when it is a terminal.
            let meter = ProgressMeter(writer: .standardError)
            var events = 0
            try Generator.generate(options, progress: { days, all, events in
                meter.tick {
                    ProgressMeter.line(done: days, total: all, unit: "days", elapsed: meter.elapsedSeconds,
                                       rateCount: events, rateUnit: "events")
                }
            }) { chunk in
                for byte in chunk where byte == 0x0A { events += 1 }
                try writer.write(chunk)
            }
            try writer.flush()
            if fd != 1 { try closeDescriptor(fd) }
            meter.finish()
            FDWriter.standardError.line("generated \(events) events (\(cases) cases over \(days) days) in "
                + "\(formatFixed(meter.elapsedSeconds, 3)) s")
        }
    }
}

struct TailCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Print the daemon's messages (alerts, notices), one JSON body per line.",
        discussion: """
            With --journal and --from-sequence it first prints every alert after N from the daemon's journal, \
            then continues live, printing each alert exactly once in alertSequence order. Exit codes: 64 bad \
            flags (a malformed endpoint included), an unusable certificate or an open-files limit below 32, 66 a certificate or key file \
            cannot be read, 69 the journal is unavailable or libzmq refuses the endpoint, 74 standard output cannot be written (closed, a full disk). An endpoint nothing answers on is tried for ever, as a daemon may start later: a warning goes to standard error when nothing has \
            connected to it after 5 seconds (naming a host name that does not resolve).
            """
    )

    @Option(help: "The daemon's output endpoint to subscribe to.")
    var endpoint: String

    @Option(help: "A topic prefix (repeatable; default: everything).")
    var topic: [String] = []

    @Option(parsing: .unconditional, help: "Exit after N messages.")
    var count: Int?

    @Option(help: "The daemon's journal endpoint (with --from-sequence).")
    var journal: String?

    @Option(parsing: .unconditional, help: "Print alerts after this alertSequence from the journal first.")
    var fromSequence: UInt64?

    @Option(parsing: .unconditional, help: "Seconds a journal request may take (default: 5).", transform: decimalNumber)
    var requestTimeout: Double?

    @Option(help: ArgumentHelp("This consumer's own CURVE secret certificate (NAME.key_secret).", valueName: "file"))
    var curveCert: String?

    @Option(help: ArgumentHelp("The daemon's public certificate, to connect over CURVE.", valueName: "file"))
    var curveServerKey: String?

    @Option(help: "ndjson (each body as one JSON line) or text (time, topic, severity, subject, reason).")
    var format: String = "ndjson"

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be 1 or more") }
        if (journal == nil) != (fromSequence == nil) {
            throw ValidationError("--journal and --from-sequence go together")
        }
        if let requestTimeout, !(requestTimeout >= 0.001 && requestTimeout <= 86400) {
            throw ValidationError("--request-timeout must be from 0.001 to 86400 seconds")
        }
        // Ignored without a journal, which said nothing (a fault tester, session 35).
        if requestTimeout != nil && journal == nil { throw ValidationError("--request-timeout needs --journal (it bounds a journal request)") }
        // The daemon's output drops a connection that sends a frame over 512 bytes (README, "Subscriptions"), and a
        // subscription's frame is "\u{9}SUBSCRIBE" and the prefix (33 bytes more under CURVE): a longer --topic
        // would leave tail connecting and dropped, silently, forever.
        let limit = curveCert == nil ? TailOptions.maxTopicBytes : TailOptions.maxCurveTopicBytes
        for prefix in topic where prefix.utf8.count > limit {
            throw ValidationError("--topic must be at most \(limit) bytes\(curveCert == nil ? "" : " under CURVE") (the "
                + "daemon drops a consumer whose subscription frame is over 512 bytes); this one has \(prefix.utf8.count)")
        }
        if let problem = EndpointSyntax.problem(endpoint, bind: false) { throw ValidationError("--endpoint: \(problem)") }
        if let journal, let problem = EndpointSyntax.problem(journal, bind: false) { throw ValidationError("--journal: \(problem)") }
        try validateCurve(bind: false, cert: curveCert, serverKey: curveServerKey, allow: nil)
        if TailFormat(rawValue: format) == nil { throw ValidationError("--format must be ndjson or text") }
    }

    func run() throws {
        var options = TailOptions(endpoint: endpoint)
        options.topics = topic.isEmpty ? [""] : topic
        options.count = count
        options.journal = journal
        options.fromSequence = fromSequence
        options.requestTimeoutMilliseconds = Int((requestTimeout ?? 5) * 1000)
        options.format = TailFormat(rawValue: format) ?? .ndjson
        try runTool("tail") {
            try StandardDescriptors.requireStandardOutput()
            try DescriptorLimit.requireForSockets()
            options.curve = try ToolCurve.load(cert: curveCert, serverKey: curveServerKey, allow: nil)
            try Tail.run(options)
        }
    }
}

/// The CURVE flag combinations cli.md allows; anything else is a usage error (exit 64) with the reason.
func validateCurve(bind: Bool, cert: String?, serverKey: String?, allow: String?) throws {
    if bind {
        if serverKey != nil {
            throw ValidationError("--curve-server-key names the server to connect to; with --bind this side is the server (use --curve-cert and --curve-allow)")
        }
        if cert != nil && allow == nil { throw ValidationError("--bind with --curve-cert needs --curve-allow DIR (the subscribers' public certificates)") }
        if allow != nil && cert == nil { throw ValidationError("--curve-allow needs --curve-cert (this server's secret certificate)") }
    } else {
        if allow != nil { throw ValidationError("--curve-allow is for a CURVE server: use it with --bind and --curve-cert") }
        if cert != nil && serverKey == nil { throw ValidationError("--curve-cert needs --curve-server-key FILE (the daemon's public certificate) to connect over CURVE") }
        if serverKey != nil && cert == nil { throw ValidationError("--curve-server-key needs --curve-cert FILE (this side's own secret certificate)") }
    }
}

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a CURVE key pair: NAME.key (public, mode 0644) and NAME.key_secret (secret, mode 0600).",
        discussion: """
            The files are ZeroMQ certificates as czmq's zcert and pyzmq's zmq.auth write them. An existing file \
            is never overwritten. Exit codes: 64 bad flags, 73 a file exists or cannot be created, 74 standard \
            output cannot be written (the files were written).
            """
    )

    @Argument(help: "The certificate's name (file names NAME.key and NAME.key_secret).")
    var name: String

    @Option(help: ArgumentHelp("The directory to write in.", valueName: "dir"))
    var dir: String = "."

    func validate() throws {
        if name.isEmpty || name.contains("/") || name.hasPrefix(".") {
            throw ValidationError("NAME must be a plain file name (no '/', not starting with '.')")
        }
        // An empty --dir made the paths "/NAME.key" and "/NAME.key_secret": the root directory.
        if dir.isEmpty { throw ValidationError("--dir must not be empty (give . for the current directory)") }
    }

    func run() throws {
        try runTool("keygen") {
            let written = try Keygen.run(name: name, directory: dir)
            print("public certificate: \(written.publicPath)")
            print("secret certificate: \(written.secretPath) (mode 0600; keep it secret)")
        }
    }
}

// Before any thread is made: SIGINT and SIGTERM blocked by whoever started the tool would otherwise never end it.
InheritedSignals.unblock()
StandardDescriptors.reopenClosed()
// A pipe whose reader went away (`tail | head -1`, a consumer script that died) killed the tool by SIGPIPE, exit 141
// without a word, where `tail --help` and the README promise 74 for an output that cannot be written (a fault tester,
// session 36). Ignored, the write fails with EPIPE, which is said and exit 74.
signal(SIGPIPE, SIG_IGN)
// A file-size limit (`ulimit -f`) killed `generate` by SIGXFSZ, exit 153, without a word and with half a file (a
// process-environment hunter, session 53). Ignored, the write fails with EFBIG, which is said (exit 74).
signal(SIGXFSZ, SIG_IGN)
StandardDescriptors.failExitWhenStandardOutputIsLost(program: "contactwatch")
StandardDescriptors.exitWhenArgumentsAreUnreadable(program: "contactwatch")
UTF8Arguments.exitWhenInvalid(program: "contactwatch")
ContactWatchTool.main()
