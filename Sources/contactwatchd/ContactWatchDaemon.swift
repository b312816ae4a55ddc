import ArgumentParser
import ContactWatchCommon
import ContactWatchRuntime
import Foundation

/// contactwatchd: flags in, runtime wired, exit code out (cli.md).
@main
struct ContactWatchDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contactwatchd",
        abstract: "Watches probation supervision-contact events on ZeroMQ and publishes alerts.",
        discussion: """
            Settings come from flags, then CONTACTWATCH_* environment variables, then the configuration file, then \
            the embedded defaults. Exit codes: \(ExitStatus.daemonHelp).
            """,
        version: ContactWatchVersion.string
    )

    @Option(name: .long, help: ArgumentHelp("A YAML configuration file (keys as in the README's configuration table; make install puts an example at /etc/contactwatch/contactwatchd.yaml).", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("A ZeroMQ endpoint to read events from (repeatable; tcp:// or ipc://).", valueName: "endpoint"))
    var input: [String] = []

    @Flag(name: .long, help: "Bind the input endpoint instead of connecting to it.")
    var inputBind = false

    @Option(name: .long, help: ArgumentHelp("A topic prefix to subscribe to (repeatable; default probation-case.; \"\" for all).", valueName: "prefix"))
    var subscribe: [String] = []

    @Option(name: .long, help: ArgumentHelp("The endpoint the alert PUB socket binds.", valueName: "endpoint"))
    var output: String?

    @Option(name: .long, help: ArgumentHelp("Bind a ROUTER socket serving the alert journal.", valueName: "endpoint"))
    var journal: String?

    @Option(name: .long, help: ArgumentHelp("Where durable state lives (default $STATE_DIRECTORY, else ./state).", valueName: "dir"))
    var stateDir: String?

    @Option(name: .long, help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (default info).", valueName: "level"))
    var logLevel: String?

    @Option(name: .long, help: ArgumentHelp("Log lines as text (default) or json (one object per line, for log shippers).", valueName: "format"))
    var logFormat: String?

    @Option(name: .long, help: ArgumentHelp("Serve Prometheus metrics at http://HOST:PORT/metrics.", valueName: "host:port"))
    var metrics: String?

    @Option(name: .long, help: ArgumentHelp("The daemon's CURVE secret certificate (a relative path is read from $CREDENTIALS_DIRECTORY when that is set); every bound socket becomes a CURVE server.", valueName: "file"))
    var curveCert: String?

    @Option(name: .long, help: ArgumentHelp("Directory of *.key public certificates allowed to publish to a bound input.", valueName: "dir"))
    var curveAllowPublishers: String?

    @Option(name: .long, help: ArgumentHelp("Directory of *.key public certificates allowed to read the output and the journal.", valueName: "dir"))
    var curveAllowConsumers: String?

    @Option(name: .long, help: ArgumentHelp("The public certificate of the CURVE-server publishers the input connects to.", valueName: "file"))
    var inputCurveServerKey: String?

    @Flag(name: .long, help: "Resolve the configuration (file, environment, flags), report every problem, exit 0 or 64; binds nothing, touches no state.")
    var checkConfig = false

    /// argument-parser's own refusals (an unknown flag, a missing value) are written by its exit path, without the
    /// `<3>` the configuration's errors carry under journald: stored at `info`, `journalctl -p warning` hid why a
    /// start failed. Parsed here so those lines get the priority too; help and `--version` (exit 0) go as before.
    static func main() async {
        // Before anything is written: a refusal written to a pipe nobody reads (`… 2>&1 | true`) killed the process
        // by SIGPIPE (141) instead of its exit 64 (a fault tester, session 34). The daemon ignores it anyway.
        signal(SIGPIPE, SIG_IGN)
        // SIGHUP never ends the daemon (cli.md): ignored from main's first instruction (Daemon.run does it again, for
        // in-process callers), until the reload handler takes it. Set only in Daemon.run, after the arguments were
        // parsed, a SIGHUP in the first ~30 ms after exec (a config hook signalling a supervisor's restart) killed the
        // new daemon without a word (a crash-consistency tester, session 36).
        signal(SIGHUP, SIG_IGN)
        // SIGTERM, SIGINT and SIGHUP blocked by whoever started the daemon stay pending until its handlers read them
        // (libdispatch's signal sources take pending signals too), but the tools' default actions did not: unblocked
        // here as there (`InheritedSignals`) — after SIGHUP is ignored, so that one pending since before the exec is
        // dropped as any SIGHUP of the start is, not acted on by its default action (which ends the process).
        InheritedSignals.unblock()
        // A file-size limit (`ulimit -f`, LimitFSIZE=) fails the store's write with EFBIG, said as such
        // (`StoreError.fileSizeLimit`), instead of SIGXFSZ's core dump in whichever thread wrote.
        signal(SIGXFSZ, SIG_IGN)
        // Standard input, output and error opened on /dev/null when started without them (see there).
        StandardDescriptors.reopenClosed()
        StandardDescriptors.failExitWhenStandardOutputIsLost(program: "contactwatchd")
        let underJournal = LogOutput.standardErrorIsJournal(ProcessInfo.processInfo.environment["JOURNAL_STREAM"])
        StandardDescriptors.exitWhenArgumentsAreUnreadable(program: "contactwatchd", linePrefix: underJournal ? "<3>" : "")
        UTF8Arguments.exitWhenInvalid(program: "contactwatchd", linePrefix: underJournal ? "<3>" : "",
                                      environmentPrefixes: [DaemonConfiguration.environmentPrefix],
                                      environmentNames: ["STATE_DIRECTORY", "CREDENTIALS_DIRECTORY"])
        let command: ContactWatchDaemon
        do {
            command = try parse()
        } catch {
            let code = exitCode(for: error)
            if code != .success, underJournal {
                for line in fullMessage(for: error).split(separator: "\n") {
                    writeStandardError("<3>\(line)\n")
                }
                Foundation.exit(code.rawValue)
            }
            exit(withError: error)
        }
        if let warning = repeatedFlagWarning(in: Array(CommandLine.arguments.dropFirst())) {
            writeStandardError("\(underJournal ? "<4>" : "")contactwatchd: \(warning)\n")
        }
        do {
            try await command.run()
        } catch {
            exit(withError: error)
        }
    }

    /// The flags that take one value. argument-parser keeps the last of a repeated one, as Unix tools do (a wrapper's
    /// flag overridden by one appended after it), but without a word: `--config a.yaml --config b.yaml` never read
    /// `a.yaml` and nothing said so (the configuration's hunter, session 45). The last still wins; it is said at
    /// `warning` (cli.md: nothing is silently ignored).
    static let singleValued = ["--config", "--output", "--journal", "--state-dir", "--log-level", "--log-format", "--metrics",
                               "--curve-cert", "--curve-allow-publishers", "--curve-allow-consumers",
                               "--input-curve-server-key"]

    /// The first flag of `singleValued` given more than once in `arguments` (`--flag value` or `--flag=value`), with
    /// its values; nil when none is. Arguments after `--` are not flags.
    static func repeatedFlag(in arguments: [String]) -> (flag: String, values: [String])? {
        var seen: [String: [String]] = [:]
        var order: [String] = []
        var i = 0
        while i < arguments.count, arguments[i] != "--" {
            let argument = arguments[i]
            let name = String(argument.prefix { $0 != "=" })
            if singleValued.contains(name) {
                let value: String
                if argument.count > name.count {
                    value = String(argument.dropFirst(name.count + 1))
                } else {
                    value = i + 1 < arguments.count ? arguments[i + 1] : ""
                    i += 1
                }
                if seen[name] == nil { order.append(name) }
                seen[name, default: []].append(value)
            }
            i += 1
        }
        guard let flag = order.first(where: { seen[$0]!.count > 1 }) else { return nil }
        return (flag, seen[flag]!)
    }

    /// The warning for a flag of `singleValued` given more than once, or nil.
    static func repeatedFlagWarning(in arguments: [String]) -> String? {
        guard let (flag, values) = repeatedFlag(in: arguments) else { return nil }
        let times = values.count == 2 ? "twice" : "\(values.count) times"
        return "warning: \(flag) given \(times) (\(values.joined(separator: ", "))): the last, \(values.last!), is used"
    }

    func run() async throws {
        var flags = DaemonFlags()
        flags.configFile = config
        flags.inputs = input
        flags.inputBind = inputBind
        flags.subscribe = subscribe
        flags.output = output
        flags.journal = journal
        flags.stateDir = stateDir
        flags.logLevel = logLevel
        flags.logFormat = logFormat
        flags.checkConfig = checkConfig
        flags.metrics = metrics
        flags.curveCert = curveCert
        flags.curveAllowPublishers = curveAllowPublishers
        flags.curveAllowConsumers = curveAllowConsumers
        flags.inputCurveServerKey = inputCurveServerKey
        // Usage errors exit with argument-parser's validation failure code, EX_USAGE (64), as cli.md asks.
        let status = await Daemon.run(flags: flags)
        if status != .success { throw ExitCode(status.rawValue) }
    }
}
