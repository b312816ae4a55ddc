import CSQLiteConfig

/// SQLite's process-wide settings, made once before the process opens its first connection (`StateStore.init` asks
/// for them first; Swift runs a static initialiser once, and other threads opening a store wait for it).
///
/// Memory statistics off: with them on (this build's default) every allocation and free inside SQLite takes one
/// process-wide mutex to keep byte counts nothing here reads — about 4% of the writer thread's samples in an
/// end-to-end run (`perf record --call-graph dwarf -t <cw-writer>`: `pthread_mutex_lock`/`unlock` under
/// `sqlite3Malloc`/`sqlite3_free`). Once SQLite is initialised (a connection was opened earlier in the process, e.g.
/// by a test that opens GRDB directly) the setting is refused and nothing changes: it only saves time, and what is
/// stored is the same either way.
enum SQLiteProcess {
    /// Whether the settings were applied (false when SQLite was already initialised).
    static let configured: Bool = cw_sqlite_disable_memory_statistics() == 0 /* SQLITE_OK */

    /// Applies the settings if this is the first use in the process; cheap afterwards.
    @inline(__always) static func configure() { _ = configured }
}
