import Foundation
import Testing

/// A byte that is not UTF-8 in a path (a Latin-1 `é`, 0xE9) was read by Swift as U+FFFD: the daemon made and used a new
/// state directory beside the one given, and the tool wrote and read other files, without a word (a
/// process-environment hunter, session 53). Foundation's `Process` takes `String` arguments, which cannot hold such a
/// byte, so the programs are started by `/bin/sh` with the byte written by `printf`.
@Suite("arguments and environment variables that are not UTF-8")
struct UTF8ArgumentTests {
    /// Runs `script` under `/bin/sh -c` with `$0` the daemon and `$1` the tool; the exit status and standard error.
    private func shell(_ script: String) throws -> (status: Int32?, stderr: String) {
        let c = try Child("/bin/sh", ["-c", script, Executables.url("contactwatchd").path, Executables.url("contactwatch").path])
        let status = c.waitForExit(timeout: 60)
        if status == nil { c.signal(SIGKILL) }
        return (status, c.stderr.text)
    }

    /// The names in `dir` (a `caf\u{FFFD}` made in place of `caf\xE9` shows as one).
    private func entries(_ dir: TemporaryDirectory) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? ["(unreadable)"]).sorted()
    }

    @Test("the daemon refuses a --state-dir that is not UTF-8, exit 64, naming the argument and the byte, and makes no directory")
    func daemonRefusesAStateDirFlag() throws {
        let dir = try TemporaryDirectory()
        let run = try shell("""
            exec "$0" --input ipc://\(dir.path)/in --output ipc://\(dir.path)/out --state-dir "$(printf '\(dir.path)/caf\\351')"
            """)
        #expect(run.status == 64, "\(run.stderr)")
        #expect(run.stderr.contains("argument 6 (\(dir.path)/caf\\xE9, after --state-dir) is not UTF-8 (byte 0xE9 at offset \(dir.path.utf8.count + 4))"),
                "\(run.stderr)")
        #expect(entries(dir).filter { $0.hasPrefix("caf") }.isEmpty, "\(entries(dir))")
    }

    @Test("the daemon refuses CONTACTWATCH_STATE_DIR and STATE_DIRECTORY that are not UTF-8, exit 64", arguments: ["CONTACTWATCH_STATE_DIR", "STATE_DIRECTORY"])
    func daemonRefusesAnEnvironmentVariable(name: String) throws {
        let dir = try TemporaryDirectory()
        let run = try shell("""
            \(name)="$(printf '\(dir.path)/caf\\351')" exec "$0" --input ipc://\(dir.path)/in --output ipc://\(dir.path)/out
            """)
        #expect(run.status == 64, "\(run.stderr)")
        #expect(run.stderr.contains("the environment variable \(name) (\(dir.path)/caf\\xE9) is not UTF-8"), "\(run.stderr)")
        #expect(entries(dir).filter { $0.hasPrefix("caf") }.isEmpty, "\(entries(dir))")
    }

    @Test("generate refuses an --output that is not UTF-8 and writes nothing; a UTF-8 name beyond ASCII is taken as it is")
    func toolRefusesAnOutputAndTakesUTF8() throws {
        let dir = try TemporaryDirectory()
        let refused = try shell("""
            exec "$1" generate --cases 2 --days 2 --output "$(printf '\(dir.path)/g\\351.ndjson')"
            """)
        #expect(refused.status == 64, "\(refused.stderr)")
        #expect(refused.stderr.contains("contactwatch: argument 7 (\(dir.path)/g\\xE9.ndjson, after --output) is not UTF-8"), "\(refused.stderr)")
        #expect(entries(dir).isEmpty, "\(entries(dir))")
        let taken = try shell("""
            exec "$1" generate --cases 2 --days 2 --output "$(printf '\(dir.path)/caf\\303\\251.ndjson')"
            """)
        #expect(taken.status == 0, "\(taken.stderr)")
        #expect(entries(dir) == ["café.ndjson"])
    }
}
