import GRDB
// The SQLite C API as GRDB itself imports it (its `GRDBSQLite` system-library module, a dependency of the GRDB
// product, so a target that depends on GRDB can import it).
import GRDBSQLite

/// One of GRDB's cached statements, driven directly through the SQLite C API: the commit path binds integers,
/// texts and blobs in place (`SQLITE_STATIC`: SQLite reads the caller's bytes during `step`, no copy) and steps,
/// instead of building a `StatementArguments` array and a `Data` per row. It must be used inside a GRDB write
/// (`queue.write`), which owns the transaction: GRDB begins and commits it, and rolls it back when a step throws.
///
/// Binding follows GRDB's own conventions, so that what is stored is exactly what `execute(arguments:)` stored:
/// a Swift `String` is bound as NUL-terminated text (length -1, as GRDB does), integers as `int64`, byte ranges as
/// blobs.
struct RawStatement {
    let handle: OpaquePointer
    let connection: OpaquePointer?
    let sql: String

    init(_ db: Database, _ sql: String) throws {
        let statement = try db.cachedStatement(sql: sql)
        handle = statement.sqliteStatement
        connection = db.sqliteConnection
        self.sql = sql
    }

    @inline(__always) func int64(_ index: Int32, _ value: Int64) throws {
        let rc = sqlite3_bind_int64(handle, index, value)
        if rc != SQLITE_OK { throw failure(rc) }
    }

    /// Binds `count` bytes at `start` as a blob, without copying: they must stay valid until `step()` returns.
    /// A zero-length range binds an empty blob (not NULL).
    @inline(__always) func blob(_ index: Int32, _ start: UnsafeRawPointer?, _ count: Int) throws {
        let rc = count > 0
            ? sqlite3_bind_blob(handle, index, start, Int32(count), nil /* SQLITE_STATIC */)
            : sqlite3_bind_zeroblob(handle, index, 0)
        if rc != SQLITE_OK { throw failure(rc) }
    }

    @inline(__always) func null(_ index: Int32) throws {
        let rc = sqlite3_bind_null(handle, index)
        if rc != SQLITE_OK { throw failure(rc) }
    }

    /// Binds `count` bytes of UTF-8 at `start` as text, without copying (valid until `step()` returns).
    @inline(__always) func text(_ index: Int32, _ start: UnsafePointer<CChar>, _ count: Int) throws {
        let rc = sqlite3_bind_text(handle, index, start, Int32(count), nil /* SQLITE_STATIC */)
        if rc != SQLITE_OK { throw failure(rc) }
    }

    /// Binds a string literal's bytes (static storage) as text.
    @inline(__always) func text(_ index: Int32, _ s: StaticString) throws {
        precondition(s.hasPointerRepresentation)
        try text(index, UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self), s.utf8CodeUnitCount)
    }

    /// Binds `s` as GRDB binds a `String` (NUL-terminated: text after an embedded NUL is not stored), then runs
    /// `body` (which steps) while the text is bound.
    @inline(__always) func withText<T>(_ index: Int32, _ s: String, _ body: () throws -> T) throws -> T {
        try s.withCString { c in
            let rc = sqlite3_bind_text(handle, index, c, -1, nil /* SQLITE_STATIC */)
            if rc != SQLITE_OK { throw failure(rc) }
            return try body()
        }
    }

    /// Runs the statement to completion and resets it (bindings stay until `clear()` or the next bind).
    @inline(__always) func step() throws {
        let rc = sqlite3_step(handle)
        if rc != SQLITE_DONE {
            let error = failure(rc == SQLITE_ROW ? SQLITE_MISUSE : rc)
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
            throw error
        }
        sqlite3_reset(handle)
    }

    /// Steps a query that returns at most one row: `body` gets the blob of column 0 of that row (nil for NULL; the
    /// bytes are valid only inside `body`), then the statement is reset. Returns false, without calling `body`, when
    /// there is no row.
    @inline(__always) func withRowBlob(_ body: (UnsafeRawBufferPointer?) throws -> Void) throws -> Bool {
        let rc = sqlite3_step(handle)
        defer { sqlite3_reset(handle) }
        switch rc {
        case SQLITE_DONE:
            return false
        case SQLITE_ROW:
            if sqlite3_column_type(handle, 0) == SQLITE_NULL {
                try body(nil)
            } else {
                let start = sqlite3_column_blob(handle, 0)
                let count = Int(sqlite3_column_bytes(handle, 0))
                try body(UnsafeRawBufferPointer(start: count > 0 ? start : nil, count: count))
            }
            return true
        default:
            throw failure(rc)
        }
    }

    /// Drops the bindings (which may point into buffers about to be freed). Call once the statement's rows are done.
    func clear() {
        sqlite3_clear_bindings(handle)
    }

    func failure(_ rc: Int32) -> DatabaseError {
        let extended = connection.map { sqlite3_extended_errcode($0) } ?? rc
        // The connection's last error is this statement's when its primary code matches.
        let code = (extended & 0xFF) == (rc & 0xFF) ? extended : rc
        let message = connection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
        return DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
    }
}
