import ContactWatchEngine
import Foundation
import GRDB
import Synchronization
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

    /// Binds `s`'s UTF-8, every byte of it, as text, then runs `body` (which steps) while the text is bound. Bound as a C
    /// string (length -1, as GRDB binds a `String`), text after an embedded U+0000 was not stored: a publisherId
    /// `feed\u{0}A` was kept as `feed`, another publisher's, and two pduCodes that differ after a NUL became one, a
    /// store the next start refused as corrupt (events.md allows any Unicode scalar; the store's hunter, session 45).
    /// Read such a column back with its length (`CAST(column AS BLOB)`): GRDB reads text up to its first NUL.
    @inline(__always) func withText<T>(_ index: Int32, _ s: String, _ body: () throws -> T) throws -> T {
        var s = s
        return try s.withUTF8 { utf8 in
            if let start = utf8.baseAddress, utf8.count > 0 {
                try text(index, UnsafeRawPointer(start).assumingMemoryBound(to: CChar.self), utf8.count)
            } else {
                try text(index, "")  // a NULL pointer would bind NULL, not ''
            }
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

    /// Steps a query: true when a row is there to read (its columns valid until the next step), false when the
    /// query is done (the statement is then reset).
    func nextRow() throws -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE {
            sqlite3_reset(handle)
            return false
        }
        let error = failure(rc)
        sqlite3_reset(handle)
        throw error
    }

    /// Resets a query (left before its end, or to run it again).
    func reset() { sqlite3_reset(handle) }

    @inline(__always) func columnType(_ index: Int32) -> Int32 { sqlite3_column_type(handle, index) }

    @inline(__always) func columnInt64(_ index: Int32) -> Int64 { sqlite3_column_int64(handle, index) }

    /// The blob in column `index` of the current row, in place (valid until the next step or reset); nil for NULL.
    /// A text value is read as its bytes, an empty blob as an empty buffer.
    @inline(__always) func columnBlob(_ index: Int32) -> UnsafeRawBufferPointer? {
        if sqlite3_column_type(handle, index) == SQLITE_NULL { return nil }
        let start = sqlite3_column_blob(handle, index)
        let count = Int(sqlite3_column_bytes(handle, index))
        return UnsafeRawBufferPointer(start: count > 0 ? start : nil, count: count)
    }

    /// The rows the last step of this connection's INSERT/UPDATE/DELETE changed.
    var changes: Int32 { connection.map { sqlite3_changes($0) } ?? 0 }

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

/// `cw_merge_contacts(contacts, ?, caseIndex)`: the SQL function through which a commit rewrites a case's packed
/// contacts inside the statement that writes the case row (one b-tree descent per case, instead of a `SELECT` and an
/// `UPDATE`). It returns `RecordCodec.mergeContacts` of the row's stored `contacts` with the batch's records of the
/// case `caseIndex` (NULL when none are left), and marks that case's batch row as found (`MergeContacts.Row.found`).
///
/// Contract (the unsafe part): the second argument is bound with `MergeContacts.bind`, a pointer (SQLite's pointer
/// passing interface, `sqlite3_bind_pointer`, type `contactwatch.merge`) to a `MergeContacts` that the caller keeps
/// alive, with `records`, `deleted` and `rows` pointing at live buffers, until the statement has stepped; SQLite calls the
/// function on the writer's thread during that step, so nothing else touches the object meanwhile. Any other value
/// of the argument (SQL typed by hand, a NULL) makes the function fail with an error instead of reading memory, and so
/// does a case that is not one of the object's `rows` (its records are read only through a row's checked range).
/// Registered `SQLITE_DIRECTONLY`: a schema object (trigger, view) cannot call it.
/// The result is handed to SQLite without a copy (`SQLITE_STATIC`): the bytes are the object's `writer`'s, which only
/// the next call of the function (or the object's end) changes. That holds because the function is only called as
/// the value of a `contacts = …` assignment of the statements `StateStore.writeCases` runs, once per row written:
/// SQLite copies the value into the row's record (`OP_MakeRecord`) before the statement goes on to the next row and
/// calls the function again, and it drops the value when the statement ends (the object outlives the step). It would
/// not hold in a query that kept the value for later (a `SELECT` returning it as a column, a sort), which is why the
/// function stays `SQLITE_DIRECTONLY` and is registered only on the store's write connection.
/// Its properties are not checked for exclusive access at run time (three checks a call, ~4% of the function's
/// instructions): one thread uses the object, and the function never runs inside another access to it.
final class MergeContacts {
    /// A case the statement writes: its batch records are `records[start..<end]`.
    struct Row {
        var caseIndex: Int64
        var start: Int
        var end: Int
        /// Set by the function when it merged the case's stored row (false after the step: the row was inserted).
        var found = false
    }

    /// The batch's contact records, by case then id.
    @exclusivity(unchecked) var records: UnsafeBufferPointer<(id: UInt64, record: ContactRecord)> = UnsafeBufferPointer(start: nil, count: 0)
    @exclusivity(unchecked) var deleted: UnsafeBufferPointer<UInt64> = UnsafeBufferPointer(start: nil, count: 0)
    /// The cases of the statement being stepped, ascending (the order in which SQLite writes them): a buffer the
    /// caller keeps alive until the statement has stepped, as `records`.
    @exclusivity(unchecked) var rows: UnsafeMutableBufferPointer<Row> = UnsafeMutableBufferPointer(start: nil, count: 0)
    /// Where the search for the next case starts (the row after the last one found).
    @exclusivity(unchecked) var next = 0
    @exclusivity(unchecked) var writer = ByteWriter(capacity: 4096)
    /// Set when the stored contacts did not decode, or the function was called for a case not in `rows`.
    @exclusivity(unchecked) var error: CodecError?

    /// SQLite compares pointer types by their text: a C string that lives as long as the process.
    nonisolated(unsafe) static let pointerType: UnsafePointer<CChar> = UnsafePointer(strdup("contactwatch.merge")!)

    /// Registers the function on the connection (the store's write connection, once per connection).
    static func register(_ db: Database) throws {
        let rc = sqlite3_create_function_v2(db.sqliteConnection, "cw_merge_contacts", 3,
                                            SQLITE_UTF8 | SQLITE_DIRECTONLY, nil, mergeFunction, nil, nil, nil)
        guard rc == SQLITE_OK else {
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: "cannot register cw_merge_contacts")
        }
    }

    /// Binds `self` as parameter `index` of `statement` (no copy, no ownership: see the contract above).
    func bind(_ statement: RawStatement, _ index: Int32) throws {
        let rc = sqlite3_bind_pointer(statement.handle, index, Unmanaged.passUnretained(self).toOpaque(),
                                      Self.pointerType, nil)
        if rc != SQLITE_OK { throw statement.failure(rc) }
    }

    /// The index in `rows` of case `caseIndex`: searched from `next` on (SQLite writes the rows in order, so this is
    /// normally the first or second look), then from the start; nil when it is not there.
    @inline(__always) func row(of caseIndex: Int64) -> Int? {
        var i = next
        while i < rows.count && rows[i].caseIndex < caseIndex { i += 1 }
        if i < rows.count && rows[i].caseIndex == caseIndex { return i }
        i = 0
        while i < next && i < rows.count {
            if rows[i].caseIndex == caseIndex { return i }
            i += 1
        }
        return nil
    }

    /// The merged contacts of row `i` (`stored`: the row's current `contacts`), in `writer`.
    @inline(__always) func merge(row i: Int, stored: UnsafeRawBufferPointer?) throws(CodecError) {
        let r = rows[i]
        guard r.start >= 0, r.start <= r.end, r.end <= records.count else {
            throw CodecError("case \(r.caseIndex): its batch rows are out of range")
        }
        writer.reset()
        _ = try RecordCodec.mergeContacts(stored: stored, records: UnsafeBufferPointer(rebasing: records[r.start..<r.end]),
                                          deleted: deleted, into: &writer)
    }
}

private let mergeFunction: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = {
    context, argc, argv in
    guard let argv, argc == 3,
          let raw = sqlite3_value_pointer(argv[1], MergeContacts.pointerType) else {
        sqlite3_result_error(context, "cw_merge_contacts: called without its batch", -1)
        return
    }
    let merge = Unmanaged<MergeContacts>.fromOpaque(raw).takeUnretainedValue()
    let caseIndex = sqlite3_value_int64(argv[2])
    guard sqlite3_value_type(argv[2]) == SQLITE_INTEGER, let i = merge.row(of: caseIndex) else {
        let e = CodecError("cw_merge_contacts: case \(caseIndex) is not in the batch")
        merge.error = e
        sqlite3_result_error(context, e.description, -1)
        return
    }
    let stored: UnsafeRawBufferPointer?
    if sqlite3_value_type(argv[0]) == SQLITE_NULL {
        stored = nil
    } else {
        let start = sqlite3_value_blob(argv[0])
        let count = Int(sqlite3_value_bytes(argv[0]))
        stored = UnsafeRawBufferPointer(start: count > 0 ? start : nil, count: count)
    }
    merge.rows[i].found = true
    merge.next = i + 1
    // Nothing of the case in the batch and nothing forgotten: its contacts stay as stored (SQLite's copy of them;
    // only their format byte is checked here, the load checks the rest).
    if merge.rows[i].start == merge.rows[i].end && merge.deleted.isEmpty, let stored, stored.count > 1,
       stored[0] == RecordCodec.contactsVersion {
        sqlite3_result_value(context, argv[0])
        return
    }
    do throws(CodecError) {
        try merge.merge(row: i, stored: stored)
    } catch {
        merge.error = error
        sqlite3_result_error(context, "cw_merge_contacts: \(error.description)", -1)
        return
    }
    // Only the format byte: no contacts (NULL).
    if merge.writer.count <= 1 {
        sqlite3_result_null(context)
    } else {
        // Not copied (SQLITE_STATIC): see the contract above.
        merge.writer.withBytes { b in sqlite3_result_blob(context, b.baseAddress, Int32(b.count), nil) }
    }
}

/// How many frames the write connection's WAL holds after its last commit, as SQLite reports them to a WAL hook
/// (`sqlite3_wal_hook`: called after each commit, on the committing thread, once the write lock is released, with the
/// WAL's frame count — those already copied back included), and how many commits it has seen. `StateStore` reads them
/// to run the checkpoint that `PRAGMA wal_autocheckpoint` would have run inside the commit at a time its caller chooses
/// (`StateStore.checkpointWALIfDue`).
///
/// SQLite's auto-checkpoint is itself this connection's WAL hook, so installing this one replaces it; the connection
/// also sets `wal_autocheckpoint = 0` first, because that pragma run later would remove this hook. The object must
/// outlive the connection (the store holds both and closes the connection first): SQLite keeps an unretained pointer.
final class WALFrames: Sendable {
    private let frames = Atomic<Int>(0)
    private let commits = Atomic<Int>(0)

    /// The WAL's frames after the last commit on the connection (0 before the first).
    var count: Int { frames.load(ordering: .relaxed) }
    /// Commits on the connection so far (each call of the hook).
    var commitCount: Int { commits.load(ordering: .relaxed) }

    /// Installs the hook on the connection of `db`.
    func install(on db: Database) {
        sqlite3_wal_hook(db.sqliteConnection, { context, _, _, frames in
            guard let context else { return SQLITE_OK }
            let me = Unmanaged<WALFrames>.fromOpaque(context).takeUnretainedValue()
            me.frames.store(Int(frames), ordering: .relaxed)
            me.commits.add(1, ordering: .relaxed)
            return SQLITE_OK
        }, Unmanaged.passUnretained(self).toOpaque())
    }
}

/// A store file read through its own short-lived read-only connection, which never leaves `inspect`. `immutable`
/// (`immutable=1`): SQLite takes no lock, creates no `-wal`, `-shm` or journal beside it and ignores any WAL (only
/// what was written into the file is read) — for files no process writes, the saved copy a save after a lost side file
/// left and the store it would replace when it has no `-wal`. Otherwise (`mode=ro`): the WAL beside the file is read
/// too (the store a killed daemon left, its last commits still in the WAL); a read-only connection never checkpoints
/// or deletes it. Both with the state directory locked (`StateStore.adoptSavedCopy`).
enum ImmutableFile {
    struct Contents {
        /// `PRAGMA quick_check(5)`'s rows joined ("ok" when sound).
        var quickCheck: String
        /// The store's latest alertSequence (`meta`), nil when the file has none.
        var alertSequence: UInt64?
        /// Its identity (`meta.storeId`), nil when it has none (made before it was kept).
        var storeId: String? = nil
        /// How many commits it has had (`meta.commits`), nil when it has none.
        var commits: UInt64? = nil
    }

    /// SQLite's own message when the file cannot be opened or read, its primary result code and the system's errno.
    struct Failure: Error, CustomStringConvertible {
        var description: String
        var code: Int32 = 0
        var systemErrno: Int32 = 0

        /// Another process's lock: `SQLITE_BUSY`, `SQLITE_LOCKED`, `SQLITE_PROTOCOL` (a WAL lock held through SQLite's
        /// retries), or an I/O error behind `EAGAIN` (a lock on the `-shm`). Anything else (damage, permissions) is not
        /// cured by waiting.
        var isLockHeld: Bool {
            code == SQLITE_BUSY || code == SQLITE_LOCKED || code == SQLITE_PROTOCOL
                || (code == SQLITE_IOERR && systemErrno == EAGAIN)
        }

        init(description: String, code: Int32 = 0, systemErrno: Int32 = 0) {
            self.description = description
            self.code = code
            self.systemErrno = systemErrno
        }

        init(_ db: OpaquePointer) {
            self.init(description: String(cString: sqlite3_errmsg(db)), code: sqlite3_errcode(db) & 0xff,
                      systemErrno: sqlite3_system_errno(db))
        }
    }

    /// The URI SQLite opens for `path`: every byte but unreserved ones and "/" percent-encoded ("?" and "#" in a name
    /// would end the path, "%" start an escape); an absolute path after an empty authority (`file:///…`), so that a
    /// path starting with "//" is not read as a host ("invalid uri authority").
    static func uri(_ path: String, immutable: Bool) -> String {
        let encoded = path.utf8.map { b -> String in
            let c = Character(Unicode.Scalar(b))
            return (c.isASCII && (c.isLetter || c.isNumber || "/-._~".contains(c))) ? String(c) : String(format: "%%%02X", b)
        }.joined()
        return (path.hasPrefix("/") ? "file://" : "file:") + encoded + (immutable ? "?immutable=1" : "?mode=ro")
    }

    /// Opens `path`, runs `PRAGMA quick_check` when `check` is set and reads the alertSequence; why not, when it
    /// cannot be read.
    static func inspect(_ path: String, check: Bool, immutable: Bool = true) -> Result<Contents, Failure> {
        SQLiteProcess.configure()
        var handle: OpaquePointer? = nil
        let rc = sqlite3_open_v2(uri(path, immutable: immutable), &handle, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nil)
        defer { sqlite3_close_v2(handle) }
        guard rc == SQLITE_OK, let db = handle else {
            return .failure(handle.map { Failure($0) } ?? Failure(description: "SQLite error \(rc)", code: rc & 0xff))
        }
        func rows(_ sql: String) -> Result<[String?], Failure> {
            var statement: OpaquePointer? = nil
            guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else {
                return .failure(Failure(db))
            }
            defer { sqlite3_finalize(statement) }
            var out: [String?] = []
            while true {
                switch sqlite3_step(statement) {
                case SQLITE_ROW: out.append(sqlite3_column_text(statement, 0).map { String(cString: $0) })
                case SQLITE_DONE: return .success(out)
                default: return .failure(Failure(db))
                }
            }
        }
        var contents = Contents(quickCheck: "ok", alertSequence: nil)
        if check {
            switch rows("PRAGMA quick_check(5)") {
            case .success(let r): contents.quickCheck = r.map { $0 ?? "" }.joined(separator: "; ")
            case .failure(let e): return .failure(e)
            }
            if contents.quickCheck != "ok" { return .success(contents) }
        }
        // One query for the three keys: `key || '=' || value` rows (a key holds no '=').
        switch rows("SELECT key || '=' || value FROM meta WHERE key IN ('alertSequence', 'storeId', 'commits')") {
        case .success(let r):
            for row in r.compactMap({ $0 }) {
                guard let eq = row.firstIndex(of: "=") else { continue }
                let value = String(row[row.index(after: eq)...])
                switch row[..<eq] {
                case "alertSequence": contents.alertSequence = UInt64(value)
                case "storeId": contents.storeId = value
                case "commits": contents.commits = UInt64(value)
                default: break
                }
            }
        case .failure(let e): return .failure(e)
        }
        return .success(contents)
    }
}
