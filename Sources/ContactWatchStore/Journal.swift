import ContactWatchEngine
import GRDB

/// One alert message as it was published (or is about to be): the durable journal's row.
public struct JournalEntry: Sendable, Equatable {
    public var alertSequence: UInt64
    /// The alert's 32 lowercase hex digits.
    public var alertId: String
    /// The topic frame (`alert.raised.<rule>` or `alert.resolved.<rule>`).
    public var topic: [UInt8]
    /// The JSON body, exactly as published.
    public var body: [UInt8]

    public init(alertSequence: UInt64, alertId: String, topic: [UInt8], body: [UInt8]) {
        self.alertSequence = alertSequence
        self.alertId = alertId
        self.topic = topic
        self.body = body
    }
}

extension StateStore {
    /// The journal entries for the alert messages of `outbox` (raises and resolutions, in order; notices are not
    /// journaled), with the alert ids the engine recorded beside each message.
    public static func journalEntries(from outbox: Outbox) -> [JournalEntry] {
        var out: [JournalEntry] = []
        outbox.forEach { entry, topic, body in
            guard entry.kind == .alertRaised || entry.kind == .alertResolved else { return }
            out.append(JournalEntry(alertSequence: entry.alertSequence, alertId: entry.alertId?.description ?? "",
                                    topic: Array(topic), body: Array(body)))
        }
        return out
    }
}

/// A read-only connection to the alert journal, for the thread that serves catch-up requests: it never writes, never
/// holds the write lock, and (the store being in WAL mode) never blocks the commits of the processing pipeline, nor
/// is blocked by them. One thread uses it.
public final class JournalReader: @unchecked Sendable {
    private let queue: DatabaseQueue
    public let path: String
    /// The connection's busy handler (SQLite's pauses up to `busyTimeoutSeconds`), ended early by `endLockWaits`.
    private let lockWait = LockWait(timeoutMilliseconds: Int(StateStore.busyTimeoutSeconds * 1000))

    /// Opens the store file at `path` (already opened and checked by `StateStore`) read-only.
    public init(path: String) throws(StoreError) {
        SQLiteProcess.configure()
        self.path = path
        var config = Configuration()
        config.label = "ContactWatchJournalReader"
        config.readonly = true
        let lockWait = self.lockWait
        config.busyMode = .callback { tries in lockWait.shouldRetry(afterTries: tries) }
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
        } catch {
            throw StoreError.from(error, path: path, during: "opening the journal read-only")
        }
    }

    /// One page of the journal: the entries after `sequence`, ascending, at most `maxAlerts` of them and at most
    /// `maxBytes` of bodies in all — but always the first one when there is one — and the latest committed
    /// alertSequence, read in the same snapshot.
    public func page(after sequence: UInt64, maxAlerts: Int, maxBytes: Int) throws(StoreError) -> (latest: UInt64, entries: [JournalEntry]) {
        do {
            return try queue.read { db in
                let latest = UInt64(bitPattern: try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'alertSequence'") ?? 0)
                // Stops reading at the byte budget (not maxAlerts rows read, then trimmed).
                let entries = try StateStore.fetchJournal(db, after: sequence, limit: max(1, maxAlerts), maxBytes: max(0, maxBytes))
                return (latest, entries)
            }
        } catch {
            throw StoreError.from(error, path: path, during: "reading the journal")
        }
    }

    /// Ends any wait for a lock another process holds, now and from now on, within `seconds`: the read fails busy.
    /// Any thread (the daemon's stop, while the journal thread may be waiting in a read: it waited up to 5 s more).
    public func endLockWaits(within seconds: Double) {
        lockWait.end(by: ContinuousClock.now + .milliseconds(Int64(seconds * 1000)))
    }

    public func close() { try? queue.close() }
}
