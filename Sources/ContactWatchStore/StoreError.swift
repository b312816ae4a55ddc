import ContactWatchCommon
import Foundation
import GRDB

/// Why the state store could not be opened, read or written. `description` is a complete sentence for the operator:
/// what is wrong, that the file was left alone, and what to do.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public var kind: Kind

    public enum Kind: Sendable {
        /// The file or directory cannot be read (permissions, not a regular file).
        case unreadable
        /// The file is damaged: truncated, garbage, or its records do not decode.
        case corrupt
        /// The file was written by a newer ContactWatch whose schema this version does not know.
        case newerSchema
        /// The file is a valid SQLite database of another application.
        case foreign
        /// An I/O error while creating, reading or writing (device errors).
        case io
        /// The disk is full (`ENOSPC`, `SQLITE_FULL`): nothing of the failed write is kept; temporary.
        case full
        /// The store is locked by another process for longer than the busy timeout: temporary.
        case busy
        /// The store's `-wal` or `-shm` file was deleted or replaced under the running daemon, and everything committed
        /// was copied into the database file before it stopped: temporary (a restart resumes with nothing lost).
        case sideFileLost
        /// SQLite could not allocate memory (`SQLITE_NOMEM`, `SQLITE_IOERR_NOMEM`): nothing of the failed write is
        /// kept; temporary (it was an I/O error, "check the disk", never restarted: a reviewer, session 50).
        case outOfMemory
        /// The system refused a thread the store needs (`SystemThread`): temporary, as `outOfMemory`.
        case threadRefused

        /// Whether a restart can cure it (exit 75 rather than 74). Every kind named: a new one must be decided here.
        public var isTemporary: Bool {
            switch self {
            case .full, .busy, .sideFileLost, .outOfMemory, .threadRefused: true
            case .unreadable, .corrupt, .newerSchema, .foreign, .io: false
            }
        }
    }

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    /// What a refusal says of a store it left as found (`StateStore.load` rewrites it for a store it migrated first).
    static let notModified = "it has not been modified."

    static func corrupt(_ path: String, _ detail: String) -> StoreError {
        StoreError(.corrupt, "the state store at \(path) is corrupt (\(detail)); \(notModified) " + corruptAdvice)
    }

    /// What `corrupt` tells an operator to do, which is a stopped daemon's advice: a running one that meets damage in
    /// its journal goes on (`JournalServer` says the rest; a reviewer, session 41, found both said at once).
    public static let corruptAdvice = "Restore it from a backup or move it aside to start empty."

    static func foreign(_ path: String, _ detail: String) -> StoreError {
        StoreError(.foreign, "the file at \(path) is not a ContactWatch state store (\(detail)); \(notModified) "
            + "Point --state-dir at ContactWatch's own state directory, or move the file aside to start empty.")
    }

    static func newerSchema(_ path: String, found: Int, known: Int) -> StoreError {
        StoreError(.newerSchema, "the state store at \(path) has schema version \(found), newer than this version of "
            + "ContactWatch understands (\(known)); \(notModified) Run the newer ContactWatch that wrote it, "
            + "or restore a backup made by this version.")
    }

    static func unreadable(_ path: String, _ detail: String) -> StoreError {
        StoreError(.unreadable, "the state store at \(path) cannot be opened (\(detail)). "
            + "Check that the file and its directory exist and are readable and writable by the daemon's user.")
    }

    static func io(_ path: String, _ detail: String) -> StoreError {
        StoreError(.io, "I/O error on the state store at \(path) (\(detail)). Check the disk (space, errors) and restart.")
    }

    /// `batch`: the failure was a batch's commit. Another write (the start's check that the store can be written, the
    /// record of what was published) has no batch to speak of: the start's was told "the failed batch was not
    /// committed" before any batch (a crash tester, session 47).
    static func full(_ path: String, _ detail: String, batch: Bool = true) -> StoreError {
        StoreError(.full, "the disk holding the state store at \(path) is full (\(detail)); "
            + (batch ? "the failed batch was not committed and nothing of it was published" : "nothing was written")
            + ". Free some space; the daemon resumes where it stopped.")
    }

    /// `batch`: the failure was a batch's commit (as `full`'s); anything else (a load, a journal read) wrote nothing.
    static func outOfMemory(_ path: String, _ detail: String, batch: Bool) -> StoreError {
        StoreError(.outOfMemory, "SQLite ran out of memory working on the state store at \(path) (\(detail)); "
            + (batch ? "the failed batch was not committed and nothing of it was published" : "nothing was written")
            + ". Check the host's memory (and the unit's MemoryMax=); the daemon resumes where it stopped.")
    }

    static func busy(_ path: String, _ detail: String) -> StoreError {
        StoreError(.busy, "the state store at \(path) is locked by another process (\(detail)). Stop the other "
            + "process (e.g. an sqlite3 shell holding a transaction; `fuser -v \(path) \(path)-wal \(path)-shm` names "
            + "it); the daemon resumes where it stopped.")
    }

    /// `batch`: found at a batch's commit; otherwise by the idle check, with no batch in hand (it said "the batch in
    /// hand was not committed" then too: an operator's audit, session 52).
    static func removedWhileRunning(_ path: String, batch: Bool = true) -> StoreError {
        StoreError(.io, "the state store at \(path) was deleted or replaced while the daemon was running (the path no "
            + "longer names the file it opened): "
            + (batch ? "the batch in hand was not committed and nothing of it was published. "
                     : "found between commits, so nothing uncommitted was published. ")
            + "Put the state directory back (restore it from a backup) before restarting: a daemon started on an empty "
            + "directory starts with no cases and numbers its alerts from 1 again.")
    }

    static func symbolicLink(_ file: String, target: String) -> StoreError {
        StoreError(.unreadable, "\(file) is a symbolic link (to \(target)); it has not been used. The state directory's "
            + "lock guards the directory, not what a link in it points at, so another daemon whose state directory links "
            + "to the same file would write the same store. Move the file into the state directory, or point state.dir "
            + "(--state-dir) at the directory it is in (a link to a whole directory is fine).")
    }

    static func hardLinked(_ file: String, names: Int) -> StoreError {
        StoreError(.unreadable, "\(file) has \(names) names (hard links: a copy made with cp -al or ln?); it has not been "
            + "used. Another name for it, in another state directory, would let a second daemon write the same store. "
            + "Give it one name: remove the other names, or replace it with a real copy (cp, not cp -l) while no daemon runs.")
    }

    static func truncatedWhileRunning(_ path: String, from: Int64, to: Int64, batch: Bool = true) -> StoreError {
        StoreError(.corrupt, "the state store at \(path) shrank from \(from) to \(to) bytes while the daemon was "
            + "running: another program truncated it (truncate, a log rotation's copytruncate reaching the state "
            + "directory?), and what had been written into it is gone (its header counts more pages than it holds). "
            + (batch ? "Nothing of the batch in hand was published. " : "Found between commits. ") + "Restore the store from a backup (or move it aside to start empty) before "
            + "restarting, and stop whatever truncated it.")
    }

    /// `sidePath` (the store's `-wal` or `-shm`) was deleted or replaced while the daemon ran. `notCopied` is nil when
    /// every committed frame was copied into the database file, else why the copy did not finish; `savedCopy` is then
    /// the complete copy written instead (`<store>.saved`), or why it could not be written.
    static func sideFileLost(_ path: String, _ sidePath: String, notCopied failure: String?,
                             savedCopy: Result<String, StateStore.SaveCopyFailure>?) -> StoreError {
        let what = sideFileGone(sidePath)
        let find = "Find what deletes files in the state directory (a clean-up job?) and stop it."
        guard let failure else {
            return StoreError(.sideFileLost, what + ". Everything committed (the batch in hand too, if there was one) was "
                + "copied into \(path) before stopping: nothing is lost, and a restart resumes (publishing what was "
                + "committed and not yet published). " + find)
        }
        if case .success(let saved) = savedCopy {
            return StoreError(.sideFileLost, what + ". Another process's lock or read transaction kept what it held from being "
                + "copied into \(path) (\(failure)), so a complete copy was saved as \(saved): the next start puts it in "
                + "place of \(path) (which it keeps, renamed .replaced-<time>), and nothing is lost. " + find)
        }
        let copyFailure = savedCopy.map { if case .failure(let f) = $0 { "; saving a copy failed too (\(f.why))" } else { "" } } ?? ""
        return StoreError(.io, what + ". Copying what it held into \(path) failed (\(failure))\(copyFailure): commits "
            + "since the last checkpoint, and the alerts published from them, may be missing from the store after the "
            + "restart. Check the store (contactwatch's journal, PRAGMA integrity_check) before restarting. " + find)
    }

    /// The sentence the daemon logs when a save after a lost side file starts waiting for another process's reader,
    /// and again every minute it goes on waiting (`waitedSeconds` > 0).
    static func waitingForReaders(_ path: String, _ sidePath: String,
                                  savedCopy: Result<String, StateStore.SaveCopyFailure>, waitedSeconds: Int = 0) -> String {
        let still = waitedSeconds > 0 ? "Still waiting after \(waitedSeconds) s: " : ""
        return still + sideFileGone(sidePath) + ". Another process holds a lock or a read transaction on \(path) (an "
            + "sqlite3 shell, a backup? `fuser -v \(path)` names it) and keeps what the write-ahead log held from being "
            + "copied into it. The copy is tried again until that transaction ends: end it (close the other program). "
            + "Meanwhile no input is read, and events sent until the daemon has restarted are not processed (a "
            + "publisher that numbers its messages shows them as a stream.gap after the restart: send them again, e.g. "
            + "with contactwatch replay). " + savedCopyState(savedCopy)
    }

    /// The sentence the daemon logs when the saved copy had to be written again while the save waits (deleted or
    /// replaced by something else, or not written the first time), with how that went (`now`).
    static func savedCopyRewritten(_ saved: String, _ now: Result<String, StateStore.SaveCopyFailure>,
                                   firstFailed: Bool = false) -> String {
        let written: Bool = if case .success = now { true } else { false }
        let what = firstFailed ? "the save, still waiting for the other process's reader, wrote the copy that failed before. "
            : "the saved copy \(saved) was deleted, replaced or changed while the daemon waits (a clean-up job?); "
                + (written ? "it was written again. " : "it could not be written again. ")
        return what + savedCopyState(now)
    }

    private static func savedCopyState(_ copy: Result<String, StateStore.SaveCopyFailure>) -> String {
        switch copy {
        case .success(let saved):
            return "A complete copy is saved as \(saved) (leave it in place); if the daemon is stopped before the reader "
                + "ends, the next start puts it in place of the store and nothing is lost."
        case .failure(let f):
            return "Saving a complete copy failed (\(f.why)); it is tried again while the daemon waits: stopping the "
                + "daemon before the reader ends without one loses the commits since the last checkpoint."
        }
    }

    /// Why a `<store>.saved` found at open was refused, which decides what the operator is told to do.
    enum SavedCopyRefusal {
        /// Not a file the daemon writes there (a symbolic link, not a regular file, older than the store).
        case notThisStores
        /// Not readable as a store, or a store that fails its check.
        case damaged
        /// The copy cannot be read (permissions, an I/O error).
        case unreadable
        /// The store's own file cannot be read, so the two cannot be compared.
        case storeUnreadable
    }

    /// A `<store>.saved` found at open that is not put in place of the store (`why`); nothing was moved.
    static func savedCopyRefused(_ saved: String, _ path: String, _ why: String,
                                 _ refusal: SavedCopyRefusal) -> StoreError {
        let byHand = "move \(path) and its -wal and -shm aside, then rename \(saved) to \(path)"
        let action = switch refusal {
        case .notThisStores:
            "The daemon never leaves one like it: move it out of the state directory and start again; the store at "
                + "\(path) is then opened as it is."
        case .damaged:
            "If the daemon's log said it saved a copy there, the copy was damaged afterwards (a disk fault, another "
                + "program writing into it): keep it aside for inspection, move it out of the state directory and start "
                + "again. The store at \(path) is then opened as it is and lacks the commits made after its side file "
                + "was lost (restore a later backup if there is one). If the daemon did not write it, move it out and "
                + "start again."
        case .unreadable:
            "Make it readable by the daemon's user (its permissions, the disk) and start again: it is then checked and "
                + "put in place."
        case .storeUnreadable:
            "If the daemon's log said it saved this copy (\"saved as \(saved)\"), \(byHand), and start again; if not, "
                + "move the copy out of the state directory and look at the store (PRAGMA integrity_check)."
        }
        return StoreError(.corrupt, "\(saved), a copy of the state store saved when a side file of it was deleted under "
            + "the daemon, was not put in place of the store at \(path): \(why). Nothing was moved or modified. " + action)
    }

    private static func sideFileGone(_ sidePath: String) -> String {
        "the state store's side file \(sidePath) was deleted or replaced while the daemon was running "
            + "(SQLite keeps it open: commits would have gone on into a file that no longer has a name)"
    }

    static func readOnlyFileSystem(_ path: String, _ detail: String) -> StoreError {
        StoreError(.io, "the file system holding the state store at \(path) is read-only (\(detail)): nothing more was "
            + "committed, and nothing that was not committed was published. A file system usually turns read-only after "
            + "a disk error: check the kernel log and the disk, make it writable again and restart; the daemon resumes "
            + "where it stopped.")
    }

    /// Whether a failure to open or create the store (`failure`, mapped from `error`) is the disk being full: SQLite
    /// or the errno said so, or it is an I/O or can't-open failure whose errno is not a permission or read-only one
    /// (SQLite leaves a later call's errno behind, often ENOENT) and the file system holding `directory` is full —
    /// then `fileSystem` says how (`FileCheck.fullFileSystem`).
    static func fullDisk(_ failure: StoreError, from error: any Error, systemErrno: Int32,
                         directory: String) -> (full: Bool, fileSystem: String?) {
        if failure.kind == .full { return (true, nil) }
        guard let e = error as? DatabaseError, [.SQLITE_IOERR, .SQLITE_CANTOPEN].contains(e.resultCode.primaryResultCode),
              ![EACCES, EPERM, EROFS].contains(systemErrno),
              let why = FileCheck.fullFileSystem(holding: directory.isEmpty ? "." : directory) else { return (false, nil) }
        return (true, why)
    }

    /// A write refused by the process's file-size limit (`RLIMIT_FSIZE`, `EFBIG`): not temporary, not the disk.
    /// The sizes of both files are said: the `-wal` meets the limit first under load (tens of MB, cut back to
    /// `walSizeLimitBytes`), and it is deleted at the stop, so nothing on disk showed which file had reached it (a
    /// reviewer, session 54).
    static func fileSizeLimit(_ path: String, _ detail: String) -> StoreError {
        let shown = fileSizeLimitBytes().map { "\($0) bytes" } ?? "set"
        let sizes = [path, path + "-wal"].map { file in
            var st = stat()
            return stat(file, &st) == 0 ? "\(st.st_size) bytes" : "absent"
        }
        return StoreError(.io, "the state store at \(path) cannot grow: the daemon's file-size limit "
            + "(\(fileSizeLimitKnobs)) is \(shown) (\(detail)); the database file is \(sizes[0]) and its -wal "
            + "\(sizes[1]) (the -wal alone reaches tens of MB under load, up to \(StateStore.walSizeLimitBytes / 1_048_576) "
            + "MiB); nothing of the failed write is kept. Raise or remove the limit and restart; the disk is not at fault.")
    }

    /// How the file-size limit is named in every line about it: the limit and where an operator sets it.
    public static let fileSizeLimitKnobs = "RLIMIT_FSIZE, `ulimit -f`, the unit's LimitFSIZE="

    /// The process's file-size limit (`RLIMIT_FSIZE`'s soft value) in bytes, nil when there is none.
    public static func fileSizeLimitBytes() -> UInt64? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        return UInt64(limit.rlim_cur)
    }

    /// A database file already past the file-size limit when the daemon starts: refused before SQLite opens it (it
    /// was reported ready, then stopped at the first write past the limit: session 53's note). Past, not at: the kernel
    /// refuses a write at an offset beyond the limit, so the pages there can never be written again, while a file
    /// exactly at the limit still takes every write within it (a reviewer, session 54, saw such a store take 50 events;
    /// and a `-wal` is written again from its start, so its size is not checked).
    public static func fileSizeLimitPassed(_ path: String, size: Int) -> StoreError? {
        guard let limit = fileSizeLimitBytes(), UInt64(size) > limit else { return nil }
        return StoreError(.io, "the state store at \(path) is \(size) bytes, past the daemon's file-size limit "
            + "(\(fileSizeLimitKnobs)) of \(limit) bytes: the pages past the limit could not "
            + "be written again; found at start, nothing was written. Raise or remove the limit and restart; the disk is "
            + "not at fault.")
    }

    /// Maps an error thrown by GRDB (or anything else) while working on the store at `path`. `systemErrno` is the
    /// failed system call behind it (0: unknown): SQLite's own message says only "disk I/O error", the errno says which.
    static func from(_ error: any Error, path: String, during what: String, systemErrno: Int32 = 0) -> StoreError {
        if let e = error as? StoreError { return e }
        if let e = error as? CodecError { return .corrupt(path, "a record does not decode while \(what): \(e.description)") }
        if let e = error as? SystemThread.Refused {
            return StoreError(.threadRefused, "the state store at \(path) cannot be used (\(what)): \(e); it has not been modified")
        }
        if let e = error as? DatabaseError {
            var detail = "\(what): \(e.message ?? "\(e.resultCode)")"
            let primary = e.resultCode.primaryResultCode
            if primary == .SQLITE_NOMEM || e.extendedResultCode == .SQLITE_IOERR_NOMEM {
                return .outOfMemory(path, detail, batch: what == "committing")
            }
            if systemErrno != 0, [.SQLITE_IOERR, .SQLITE_FULL, .SQLITE_CANTOPEN, .SQLITE_READONLY].contains(primary) {
                detail += "; the system said: \(FileCheck.errnoText(systemErrno))"
                if systemErrno == EROFS { return .readOnlyFileSystem(path, detail) }
                // The process's file-size limit, not the disk: "Check the disk (space, errors)" sent the operator to
                // a disk that was fine (a process-environment hunter, session 53, under `ulimit -f 100`).
                if systemErrno == EFBIG { return .fileSizeLimit(path, detail) }
                // A full disk (or quota) behind an I/O or open failure is the disk full, temporary: at open, SQLite
                // reports a -shm or -wal it could not create or grow as "disk I/O error", not SQLITE_FULL.
                if systemErrno == ENOSPC || systemErrno == EDQUOT { return .full(path, detail, batch: what == "committing") }
                // A lock on the -shm another process holds (an sqlite3 shell still open on side files the last run
                // lost): SQLite reports "disk I/O error", and the disk is fine. Temporary: it ends with that process.
                if systemErrno == EAGAIN && primary == .SQLITE_IOERR {
                    return StoreError(.busy, "the state store at \(path) cannot be opened while another process holds "
                        + "a lock on its side files (\(detail)): an sqlite3 shell or a backup still open on it? "
                        + "(`fuser -v \(path) \(path)-wal \(path)-shm` names it). End it; the daemon then resumes where "
                        + "it stopped.")
                }
            }
            switch primary {
            case .SQLITE_CORRUPT, .SQLITE_NOTADB, .SQLITE_FORMAT:
                return .corrupt(path, detail)
            case .SQLITE_READONLY:
                return StoreError(.unreadable, "the state store at \(path) cannot be written (\(detail)); it has not "
                    + "been modified. Check that the file, its directory and their file system are writable by the "
                    + "daemon's user.")
            case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH:
                return .unreadable(path, detail)
            case .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_PROTOCOL:
                // SQLITE_PROTOCOL: a WAL lock another process held through SQLite's ~10 s of retries, which no busy
                // handler shortens. It was an I/O error ("check the disk", exit 74, never restarted by the unit) for
                // what ends with that process (a runtime reviewer, session 50).
                return .busy(path, detail)
            case .SQLITE_FULL:
                return .full(path, detail, batch: what == "committing")
            default:
                return .io(path, detail)
            }
        }
        return .io(path, "\(what): \(error)")
    }
}
