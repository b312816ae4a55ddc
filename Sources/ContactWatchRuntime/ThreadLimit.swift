#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The least limit on threads the daemon starts under: `RLIMIT_NPROC` (`ulimit -u`, `LimitNPROC=`; it counts every
/// process and thread of the user, and does not bind root) and the `pids.max` of its cgroup and every cgroup above
/// it (systemd's `TasksMax=` of the unit and its slice, a container's pids limit). The daemon runs about 13 threads
/// once ready (its own, libzmq's, libdispatch's, swift-nio's), and libdispatch starts more to run the signal handlers:
/// under limits of 4 to 13 it stalled before `ready` after saying a refused thread, was aborted by libzmq, trapped in
/// swift-nio (`Unable to create thread`), or got ready and then left SIGTERM unanswered (libdispatch waiting for a
/// thread, `_dispatch_temporary_resource_shortage`) — a process-environment hunter and a reviewer, session 53. Below
/// `startMinimum` it refuses to start, exit 64; above it a thread refused at run time is said (`SystemThread`).
public enum ThreadLimit {
    public static let startMinimum: UInt64 = 64

    /// The refusal, or nil. `realUID`, `rlimit` and `cgroupLimits` are seams for tests.
    public static func refusal(realUID: uid_t = getuid(), rlimit: UInt64? = processLimit(),
                               cgroupLimits: [(path: String, max: UInt64)] = cgroupPidsLimits()) -> String? {
        let fix = "raise it: the daemon runs about 13 threads once ready, and libdispatch starts more to run its signal "
            + "handlers; under fewer it stalled, crashed or ignored SIGTERM"
        if realUID != 0, let limit = rlimit, limit < startMinimum {
            return "the limit on processes and threads is \(limit) (RLIMIT_NPROC: `ulimit -u`, LimitNPROC=; it counts every "
                + "thread of the user), below the \(startMinimum) the daemon starts with: \(fix)"
        }
        if let tightest = cgroupLimits.min(by: { $0.max < $1.max }), tightest.max < startMinimum {
            return "the cgroup's limit on tasks is \(tightest.max) (\(tightest.path): TasksMax= of the unit or its slice, or "
                + "a container's pids limit), below the \(startMinimum) the daemon starts with: \(fix)"
        }
        return nil
    }

    /// The soft `RLIMIT_NPROC`, or nil when unlimited or unreadable.
    public static func processLimit() -> UInt64? {
        var limit = rlimit()
        guard getrlimit(Int32(__RLIMIT_NPROC.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        return UInt64(limit.rlim_cur)
    }

    /// The numeric `pids.max` files of the process's cgroup and of every cgroup above it that has one: cgroup v2
    /// (`/proc/self/cgroup`'s `0::` line, under `root`) and v1's `pids` controller (its `N:pids:` line, under
    /// `root/pids`). Empty where there is neither or no limit.
    public static func cgroupPidsLimits(procCgroup: String = "/proc/self/cgroup", root: String = "/sys/fs/cgroup")
        -> [(path: String, max: UInt64)] {
        guard let text = try? String(contentsOfFile: procCgroup, encoding: .utf8) else { return [] }
        var found: [(path: String, max: UInt64)] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[0] == "0" && fields[1].isEmpty {
                found += limits(root, String(fields[2]))
            } else if fields[1].split(separator: ",").contains("pids") {
                found += limits(root + "/pids", String(fields[2]))
            }
        }
        return found
    }

    /// The numeric `pids.max` of `path` under `base` and of each cgroup above it.
    private static func limits(_ base: String, _ cgroup: String) -> [(path: String, max: UInt64)] {
        var path = cgroup
        var found: [(path: String, max: UInt64)] = []
        while true {
            let file = base + (path == "/" ? "" : path) + "/pids.max"
            if let value = try? String(contentsOfFile: file, encoding: .utf8),
               let n = UInt64(value.trimmingCharacters(in: .whitespacesAndNewlines)) {
                found.append((file, n))
            }
            guard path != "/" && !path.isEmpty, let slash = path.lastIndex(of: "/") else { break }
            path = slash == path.startIndex ? "/" : String(path[..<slash])
        }
        return found
    }
}
