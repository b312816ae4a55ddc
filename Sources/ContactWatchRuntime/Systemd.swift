import CSystemd
#if canImport(Glibc)
import Glibc
#endif

/// systemd's notification protocol through libsystemd (`sd_notify`). Every call is a no-op when the daemon was not
/// started by systemd (`NOTIFY_SOCKET` unset).
public enum Systemd {
    /// Sends a state string such as `READY=1`. Returns whether systemd was told.
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        sd_notify(0, state) > 0
    }

    /// Whether systemd asked for notifications (`NOTIFY_SOCKET` is set).
    public static var isSupervised: Bool { getenv("NOTIFY_SOCKET") != nil }

    /// The watchdog interval in microseconds when `WATCHDOG_USEC` asks this process for pings, else nil.
    public static func watchdogMicroseconds() -> UInt64? {
        var usec: UInt64 = 0
        return sd_watchdog_enabled(0, &usec) > 0 && usec > 0 ? usec : nil
    }
}
