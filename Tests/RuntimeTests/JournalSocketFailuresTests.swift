@testable import ContactWatchRuntime
import Foundation
import Testing
import ZeroMQ

/// `JournalServer.SocketFailures`: what the journal thread does about a poll or receive of its socket that failed.
@Suite("Journal socket failures: retried, then given up")
struct JournalSocketFailuresTests {
    let start = ContinuousClock.now

    @Test("EINTR is retried at once and never gives up")
    func interruptedIsRetried() {
        var f = JournalServer.SocketFailures()
        for k in 0..<100 {
            #expect(f.failed(code: EINTR, at: start + .seconds(k)) == .retryNow)
        }
        #expect(f.failingSince == nil)
    }

    @Test("a socket that is gone (ETERM, ENOTSOCK, EFAULT) is given up at once")
    func goneIsGivenUp() {
        for code in [ZMQError.ETERM, ZMQError.ENOTSOCK, EFAULT] {
            var f = JournalServer.SocketFailures()
            #expect(f.failed(code: code, at: start) == .giveUp, "errno \(code)")
        }
    }

    @Test("any other error is retried after a backoff until it has lasted 10 s without a success; a success starts afresh")
    func otherErrorsAreRetriedForTenSeconds() {
        var f = JournalServer.SocketFailures()
        #expect(f.failed(code: ENOMEM, at: start) == .retryAfterBackoff)
        #expect(f.failed(code: ENOMEM, at: start + .milliseconds(9_999)) == .retryAfterBackoff)
        f.succeeded()
        #expect(f.failed(code: ENOMEM, at: start + .seconds(15)) == .retryAfterBackoff)
        #expect(f.failed(code: ENOMEM, at: start + .milliseconds(24_999)) == .retryAfterBackoff)
        #expect(f.failed(code: ENOMEM, at: start + .seconds(25)) == .giveUp)
    }
}
