import ContactWatchTestThreads
import Foundation
import Synchronization
import Testing
@testable import ZeroMQ
import CZeroMQ  // setxattr

/// CURVE keys, certificates (including files pyzmq wrote), the ZAP handler and handshake monitoring,
/// over ipc:// in a temporary directory (inproc:// has no security handshake).
@Suite(.blocking)
struct CurveTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/curve-pyzmq").path

    final class TempDir {
        let path: String
        init() throws {
            var template = Array("/tmp/cwcurve-XXXXXX".utf8CString)
            guard let p = mkdtemp(&template) else { throw POSIXError(.EIO) }
            path = String(cString: p)
        }
        func file(_ name: String) -> String { "\(path)/\(name)" }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    /// A copy of a fixture with the given mode (git keeps no modes: the checked-out secret files are 0644).
    static func copy(_ fixture: String, to dir: TempDir, mode: Int) throws -> String {
        let target = dir.file(fixture)
        try? FileManager.default.removeItem(atPath: target)
        try FileManager.default.copyItem(atPath: "\(fixtures)/\(fixture)", toPath: target)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: target)
        return target
    }

    static func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as! NSNumber).intValue
    }

    /// Refusals the handler reported, collected across threads.
    final class Refusals: Sendable {
        private let list = Mutex<[ZMQRefusal]>([])
        func add(_ r: ZMQRefusal) { list.withLock { $0.append(r) } }
        var all: [ZMQRefusal] { list.withLock { $0 } }
        /// Waits (bounded) until `predicate` holds for the refusals so far.
        func wait(seconds: Double = 10, until predicate: ([ZMQRefusal]) -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if predicate(all) { return true }
                usleep(5000)
            }
            return predicate(all)
        }
    }

    // MARK: keys

    @Test("a refusal's peer: libzmq's IPC form localhost:uid:gid:pid said as pid and uid; a TCP address and anything else as it is")
    func refusalPeerDescription() {
        func said(_ address: String?) -> String? {
            ZMQRefusal(domain: "output", peerAddress: address, keyPrefix: nil, reason: "r").peerDescription
        }
        #expect(said("localhost:0:0:3049") == "pid 3049 uid 0")
        #expect(said("localhost:1000:1000:77") == "pid 77 uid 1000")
        #expect(said("127.0.0.1") == "127.0.0.1")
        #expect(said("::1") == "::1")
        #expect(said("localhost:1:2") == "localhost:1:2")
        #expect(said("localhost:a:0:1") == "localhost:a:0:1")
        #expect(said(nil) == nil)
    }

    @Test func z85RoundTripAndDerivedPublicKey() throws {
        let pair = try CurveKeyPair.generate()
        #expect(pair.publicKey != pair.secretKey)
        #expect(pair.publicKey.z85.count == 40)
        #expect(CurveKey(z85: pair.publicKey.z85) == pair.publicKey)
        #expect(try CurveKeyPair(secretKey: pair.secretKey) == pair)
        #expect(CurveKey(z85: String(pair.publicKey.z85.dropLast())) == nil)
        #expect(CurveKey(z85: String(repeating: "~", count: 40)) == nil)  // not in the Z85 alphabet
        #expect(CurveKey(bytes: [1, 2, 3]) == nil)
        #expect(pair.publicKey.description == pair.publicKey.prefix + "…")
        #expect(!pair.secretKey.description.contains(pair.secretKey.z85))
    }

    // MARK: certificates

    @Test func readsCertificatesWrittenByPyzmq() throws {
        let dir = try TempDir()
        for name in ["daemon", "publisher", "consumer", "stranger"] {
            let pub = try CurveCertificate.readPublicKey(path: "\(Self.fixtures)/\(name).key")
            let secretPath = try Self.copy("\(name).key_secret", to: dir, mode: 0o600)
            let pair = try CurveCertificate.readKeyPair(path: secretPath)
            #expect(pair.publicKey == pub, "\(name)")
            #expect(try CurveKeyPair(secretKey: pair.secretKey).publicKey == pub, "\(name)")
        }
        let text = try String(contentsOfFile: "\(Self.fixtures)/daemon.key", encoding: .utf8)
        #expect(text.contains("by pyzmq"))
        let list = try CurveCertificate.readAllowList(directory: Self.fixtures)
        #expect(list.map { ($0.path as NSString).lastPathComponent } == ["consumer.key", "daemon.key", "publisher.key", "stranger.key"])
    }

    /// systemd hands a service its `LoadCredential=` file root-owned 0400 plus an ACL entry for the service's user
    /// where the credentials' file system has ACLs (newer systemd's tmpfs), which `stat` shows as 0440: refused as
    /// "group or others can access", the documented set-up could not start there (an operator audit, session 36).
    /// Only an ACL that grants nothing beyond the owner and this process's user is taken.
    @Test("a secret certificate readable through a POSIX ACL by this process's user alone is taken; one whose ACL grants a group or another user is refused")
    func secretCertificateWithCredentialACL() throws {
        let dir = try TempDir()
        // posix_acl_xattr: version 2, then (tag, permissions, id) entries, little-endian.
        func acl(_ entries: [(tag: UInt16, permissions: UInt16, id: UInt32)]) -> [UInt8] {
            var b: [UInt8] = [2, 0, 0, 0]
            for e in entries {
                b += [UInt8(e.tag & 0xff), UInt8(e.tag >> 8), UInt8(e.permissions & 0xff), UInt8(e.permissions >> 8)]
                b += (0..<4).map { UInt8((e.id >> (8 * UInt32($0))) & 0xff) }
            }
            return b
        }
        let me = UInt32(geteuid()), undefined = UInt32.max
        let systemd = acl([(0x01, 4, undefined), (0x02, 4, me), (0x04, 0, undefined), (0x10, 4, undefined), (0x20, 0, undefined)])
        let path = try Self.copy("daemon.key_secret", to: dir, mode: 0o400)
        let set = systemd.withUnsafeBytes { setxattr(path, "system.posix_acl_access", $0.baseAddress, $0.count, 0) }
        guard set == 0 else {
            print("skipped: \(dir.path) takes no POSIX ACL (\(String(cString: strerror(errno))))")
            return
        }
        var st = stat()
        try #require(stat(path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o440, "mode \(String(st.st_mode & 0o777, radix: 8))")
        #expect(try CurveCertificate.readKeyPair(path: path).publicKey == CurveCertificate.readPublicKey(path: "\(Self.fixtures)/daemon.key"))
        // The same mode from an ACL that lets the owning group, a named group, or another user read: refused.
        for entries in [[(UInt16(0x01), UInt16(4), undefined), (0x04, 4, undefined), (0x10, 4, undefined), (0x20, 0, undefined)],
                        [(0x01, 4, undefined), (0x04, 0, undefined), (0x08, 4, 1234), (0x10, 4, undefined), (0x20, 0, undefined)],
                        [(0x01, 4, undefined), (0x02, 4, me &+ 1), (0x04, 0, undefined), (0x10, 4, undefined), (0x20, 0, undefined)]] {
            let open = acl(entries.map { (tag: $0.0, permissions: $0.1, id: $0.2) })
            try #require(open.withUnsafeBytes { setxattr(path, "system.posix_acl_access", $0.baseAddress, $0.count, 0) } == 0)
            do { _ = try CurveCertificate.readKeyPair(path: path); Issue.record("taken: \(entries)") } catch {
                #expect(error.kind == .tooOpen)
            }
        }
    }

    @Test func secretCertificateReadableByGroupOrOthersIsRefused() throws {
        let dir = try TempDir()
        for mode in [0o644, 0o640, 0o604, 0o660] {
            let path = try Self.copy("daemon.key_secret", to: dir, mode: mode)
            #expect(throws: CurveCertificateError.self) { try CurveCertificate.readKeyPair(path: path) }
            do { _ = try CurveCertificate.readKeyPair(path: path) } catch {
                #expect(error.kind == .tooOpen)
                #expect(error.description.contains(path) && error.description.contains("chmod 600"))
            }
        }
        let ok = try Self.copy("daemon.key_secret", to: dir, mode: 0o400)
        #expect(try CurveCertificate.readKeyPair(path: ok).publicKey == CurveCertificate.readPublicKey(path: "\(Self.fixtures)/daemon.key"))
        // A public certificate given where the secret one is needed.
        let pub = try Self.copy("daemon.key", to: dir, mode: 0o600)
        do { _ = try CurveCertificate.readKeyPair(path: pub); Issue.record("a public certificate was accepted as a secret one") } catch {
            #expect(error.kind == .malformed && error.problem.contains("no secret-key"))
        }
    }

    /// Mode 0600 alone did not keep the key the daemon's: a certificate owned by another user, or in a directory any
    /// user can write, was taken, and the daemon served CURVE with a key an unprivileged user had made (a security
    /// tester, session 44). A sticky directory (/tmp) keeps others from replacing the file, and is fine.
    @Test("a secret certificate owned by another user, or in a directory any user can write without the sticky bit, is refused; in a sticky one it is taken")
    func secretCertificateOthersCanReplaceIsRefused() throws {
        let dir = try TempDir()
        for (mode, refused) in [(0o777, true), (0o1777, false), (0o755, false)] {
            let sub = dir.file("d\(String(mode, radix: 8))")
            try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
            #expect(chmod(sub, mode_t(mode)) == 0)
            let path = sub + "/daemon.key_secret"
            try FileManager.default.copyItem(atPath: "\(Self.fixtures)/daemon.key_secret", toPath: path)
            #expect(chmod(path, 0o600) == 0)
            do {
                _ = try CurveCertificate.readKeyPair(path: path)
                #expect(!refused, "taken in a directory of mode \(String(mode, radix: 8))")
            } catch {
                #expect(refused && error.kind == .tooOpen && error.description.contains("any user can write (\(sub), mode 0777)"),
                        "\(error)")
            }
        }
        // A world-writable directory further up, and one a link leads into: anyone can rename what is below away
        // (a reviewer, session 44: only the link's own directory was judged).
        let open = dir.file("open")
        try FileManager.default.createDirectory(atPath: open + "/private", withIntermediateDirectories: true)
        #expect(chmod(open, 0o777) == 0 && chmod(open + "/private", 0o700) == 0)
        try FileManager.default.copyItem(atPath: "\(Self.fixtures)/daemon.key_secret", toPath: open + "/private/daemon.key_secret")
        #expect(chmod(open + "/private/daemon.key_secret", 0o600) == 0)
        let safe = dir.file("safe")
        try FileManager.default.createDirectory(atPath: safe, withIntermediateDirectories: true)
        #expect(chmod(safe, 0o700) == 0)
        try FileManager.default.createSymbolicLink(atPath: safe + "/daemon.key_secret", withDestinationPath: open + "/private/daemon.key_secret")
        for path in [open + "/private/daemon.key_secret", safe + "/daemon.key_secret"] {
            do { _ = try CurveCertificate.readKeyPair(path: path); Issue.record("taken: \(path)") } catch {
                #expect(error.kind == .tooOpen && error.description.contains("any user can write (\(open), mode 0777)"), "\(error)")
            }
        }
        guard geteuid() == 0 else {
            print("skipped: a certificate owned by another user needs root to chown it")
            return
        }
        let foreign = try Self.copy("daemon.key_secret", to: dir, mode: 0o600)
        #expect(chown(foreign, 65534, 65534) == 0)
        do { _ = try CurveCertificate.readKeyPair(path: foreign); Issue.record("a certificate owned by uid 65534 was taken") } catch {
            #expect(error.kind == .tooOpen && error.description.contains("owned by another user (uid 65534)"), "\(error)")
        }
    }

    /// Who may write an allow-list decides who may connect; only the directory's and each certificate's own `0002`
    /// bit were looked at. A user who could write a directory above the list (or above a certificate's link target),
    /// or who owned the directory or a certificate, put their own key in it, taken at the next SIGHUP (a bug hunter,
    /// session 46). The secret certificate's rule now holds for both; a sticky directory (/tmp) is still fine.
    @Test("an allow-list under a directory any user can write (not sticky), a certificate linked into one, or either owned by another user: refused; under a sticky one: taken")
    func allowListOthersCanReplaceIsRefused() throws {
        let dir = try TempDir()
        func list(in parent: String) throws -> String {
            let list = parent + "/allow"
            try FileManager.default.createDirectory(atPath: list, withIntermediateDirectories: true)
            #expect(chmod(list, 0o755) == 0)
            try FileManager.default.copyItem(atPath: "\(Self.fixtures)/daemon.key", toPath: list + "/daemon.key")
            #expect(chmod(list + "/daemon.key", 0o644) == 0)
            return list
        }
        for (mode, refused) in [(0o777, true), (0o1777, false), (0o755, false)] {
            let parent = dir.file("p\(String(mode, radix: 8))")
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            #expect(chmod(parent, mode_t(mode)) == 0)
            let allow = try list(in: parent)
            do {
                #expect(try CurveCertificate.readAllowList(directory: allow).count == 1)
                #expect(!refused, "taken under a directory of mode \(String(mode, radix: 8))")
            } catch {
                #expect(refused && error.kind == .tooOpen && error.description.contains(
                    "an allow-list directory in a directory that any user can write (\(parent), mode 0777) is refused"), "\(error)")
            }
        }
        // A certificate that is a link into a world-writable directory.
        let open = dir.file("open")
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: true)
        #expect(chmod(open, 0o777) == 0)
        try FileManager.default.copyItem(atPath: "\(Self.fixtures)/daemon.key", toPath: open + "/target.key")
        let safe = dir.file("safe")
        try FileManager.default.createDirectory(atPath: safe, withIntermediateDirectories: true)
        #expect(chmod(safe, 0o755) == 0)
        try FileManager.default.createSymbolicLink(atPath: safe + "/peer.key", withDestinationPath: open + "/target.key")
        do { _ = try CurveCertificate.readAllowList(directory: safe); Issue.record("a link into \(open) was taken") } catch {
            #expect(error.kind == .tooOpen && error.description.contains(
                "a certificate of an allow-list in a directory that any user can write (\(open), mode 0777)"), "\(error)")
        }
        // The allow-list's path is a link kept in a world-writable directory, to a list in a safe one: whoever can
        // write that directory re-points the link (a bug hunter, session 47: only the target's directories were
        // walked). Through a sticky directory it is taken.
        let goodList = try list(in: safe)
        try FileManager.default.removeItem(atPath: safe + "/peer.key")
        for (holder, mode, refused) in [("openlinks", 0o777, true), ("stickylinks", 0o1777, false)] {
            let links = dir.file(holder)
            try FileManager.default.createDirectory(atPath: links, withIntermediateDirectories: true)
            #expect(chmod(links, mode_t(mode)) == 0)
            try FileManager.default.createSymbolicLink(atPath: links + "/allow", withDestinationPath: goodList)
            // The link as the last component, and a link to the list's directory in the middle of the path.
            try FileManager.default.createSymbolicLink(atPath: links + "/via", withDestinationPath: safe)
            for path in [links + "/allow", links + "/via/allow"] {
                do {
                    #expect(try CurveCertificate.readAllowList(directory: path).count == 1)
                    #expect(!refused, "a link in \(links) was taken: \(path)")
                } catch {
                    #expect(refused && error.kind == .tooOpen && error.description.contains(
                        "an allow-list directory in a directory that any user can write (\(links), mode 0777)"), "\(path): \(error)")
                }
            }
        }
        guard geteuid() == 0 else {
            print("skipped: an allow-list owned by another user needs root to chown it")
            return
        }
        // A link in a sticky directory, owned by another user: its owner can re-point it (a reviewer, session 47).
        let sticky = dir.file("stickylinks")
        try FileManager.default.createSymbolicLink(atPath: sticky + "/theirs", withDestinationPath: goodList)
        #expect(lchown(sticky + "/theirs", 65534, 65534) == 0)
        do { _ = try CurveCertificate.readAllowList(directory: sticky + "/theirs"); Issue.record("a link owned by uid 65534 was taken") } catch {
            #expect(error.kind == .tooOpen && error.description.contains(
                "an allow-list directory reached through a symbolic link owned by another user (\(sticky)/theirs, uid 65534)"), "\(error)")
        }
        // The same link in a directory of another user's (mode 0755).
        let bob = dir.file("bob")
        try FileManager.default.createDirectory(atPath: bob, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: bob + "/allow", withDestinationPath: goodList)
        #expect(chmod(bob, 0o755) == 0 && chown(bob, 65534, 65534) == 0)
        do { _ = try CurveCertificate.readAllowList(directory: bob + "/allow"); Issue.record("a link in uid 65534's directory was taken") } catch {
            #expect(error.kind == .tooOpen && error.description.contains(
                "an allow-list directory in a directory owned by another user (\(bob), uid 65534)"), "\(error)")
        }
        let owned = try list(in: dir.file("owned"))
        #expect(chown(owned, 65534, 65534) == 0)
        do { _ = try CurveCertificate.readAllowList(directory: owned); Issue.record("a directory owned by uid 65534 was taken") } catch {
            #expect(error.kind == .tooOpen && error.description.contains("an allow-list directory owned by another user (uid 65534)"), "\(error)")
        }
        let file = try list(in: dir.file("file"))
        #expect(chown(file + "/daemon.key", 65534, 65534) == 0)
        do { _ = try CurveCertificate.readAllowList(directory: file); Issue.record("a certificate owned by uid 65534 was taken") } catch {
            #expect(error.kind == .tooOpen && error.description.contains("a certificate of an allow-list owned by another user (uid 65534)"), "\(error)")
        }
        // A directory above, mode 0755 but another user's: they rename the list away (a reviewer, session 46, swapped
        // it for a link to another directory). The secret certificate is held to the same walk.
        let theirs = dir.file("theirs")
        let below = try list(in: theirs)
        #expect(chown(theirs, 65534, 65534) == 0 && chmod(theirs, 0o755) == 0)
        do { _ = try CurveCertificate.readAllowList(directory: below); Issue.record("a list under uid 65534's directory was taken") } catch {
            #expect(error.kind == .tooOpen && error.description.contains(
                "an allow-list directory in a directory owned by another user (\(theirs), uid 65534)"), "\(error)")
        }
        try FileManager.default.copyItem(atPath: "\(Self.fixtures)/daemon.key_secret", toPath: theirs + "/daemon.key_secret")
        #expect(chmod(theirs + "/daemon.key_secret", 0o600) == 0)
        do { _ = try CurveCertificate.readKeyPair(path: theirs + "/daemon.key_secret"); Issue.record("a secret certificate under uid 65534's directory was taken") } catch {
            #expect(error.kind == .tooOpen && error.description.contains("a secret certificate in a directory owned by another user (\(theirs), uid 65534)"), "\(error)")
        }
    }

    /// A consumer's secret certificate copied under the public name was taken as its public key, readable by all (a
    /// security tester, session 44).
    @Test("an allow-list *.key that holds a secret-key is refused, naming it")
    func secretCertificateInAnAllowListIsRefused() throws {
        let dir = try TempDir()
        let list = dir.file("allow")
        try FileManager.default.createDirectory(atPath: list, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(Self.fixtures)/daemon.key", toPath: list + "/daemon.key")
        #expect(try CurveCertificate.readAllowList(directory: list).count == 1)
        try FileManager.default.copyItem(atPath: "\(Self.fixtures)/consumer.key_secret", toPath: list + "/consumer.key")
        do { _ = try CurveCertificate.readAllowList(directory: list); Issue.record("a secret certificate was taken") } catch {
            #expect(error.kind == .tooOpen && error.description.contains("\(list)/consumer.key") && error.description.contains("holds a secret-key"),
                    "\(error)")
        }
    }

    @Test func writtenCertificatesHaveTheirModesReadBackAndAreNeverOverwritten() throws {
        let dir = try TempDir()
        // Under the process's umask: that the modes do not depend on it is checked in a child started under umask 0
        // (`CurveToolTests.keygen`). The umask is the whole process's, and other tests run beside this one: with it
        // set to 0 here, a sibling's allow-list directory made meanwhile came out world-writable and was refused (a
        // reviewer, session 42).
        let pair = try CurveKeyPair.generate()
        let paths = try CurveCertificate.write(pair, name: "ops", directory: dir.path)
        #expect(try Self.mode(paths.publicPath) == 0o644)
        #expect(try Self.mode(paths.secretPath) == 0o600)
        #expect(try CurveCertificate.readPublicKey(path: paths.publicPath) == pair.publicKey)
        #expect(try CurveCertificate.readKeyPair(path: paths.secretPath) == pair)
        let before = try String(contentsOfFile: paths.secretPath, encoding: .utf8)
        #expect(before.contains("ZeroMQ CURVE **Secret** Certificate"))
        let other = try CurveKeyPair.generate()
        do { try CurveCertificate.write(other, name: "ops", directory: dir.path); Issue.record("overwrote") } catch {
            #expect(error.kind == .exists)
        }
        #expect(try String(contentsOfFile: paths.secretPath, encoding: .utf8) == before)
        // Only the secret one exists: the public one is not written either.
        try FileManager.default.removeItem(atPath: paths.publicPath)
        #expect(throws: CurveCertificateError.self) { try CurveCertificate.write(other, name: "ops", directory: dir.path) }
        #expect(!FileManager.default.fileExists(atPath: paths.publicPath))
    }

    @Test func malformedCertificatesNameTheFileAndLine() throws {
        let good = try CurveKeyPair.generate()
        let cases: [(text: String, line: Int?, words: String)] = [
            ("curve\n\tpublic-key = \"\(good.publicKey.z85)\"\n", 2, "tab"),
            ("metadata\ncurve\n   public-key = \"\(good.publicKey.z85)\"\n", 3, "indentation"),
            ("curve\n    public-key = \"\(good.publicKey.z85.dropLast())\"\n", 2, "40 characters"),
            ("curve\n    public-key = \"\(good.publicKey.z85)\n", 2, "closing"),
            ("# nothing\nmetadata\n    name = \"x\"\n", nil, "no curve section"),
            ("curve\n    secret-key = \"\(good.secretKey.z85)\"\n", 1, "no public-key"),
            ("curve\n    public-key = \"\(good.publicKey.z85)\"\n    public-key = \"\(good.publicKey.z85)\"\n", 3, "second public-key"),
            ("curve\n            public-key = \"x\"\n", 2, "levels"),
            ("curve\n    = \"x\"\n", 2, "expected a name"),
        ]
        for c in cases {
            do {
                _ = try CurveCertificate.parse(c.text, path: "/etc/x.key")
                Issue.record("accepted: \(c.text)")
            } catch {
                #expect(error.kind == .malformed)
                #expect(error.line == c.line, "\(c.text)")
                #expect(error.problem.contains(c.words), "\(error)")
                #expect(error.description.hasPrefix("/etc/x.key" + (c.line.map { ":\($0):" } ?? ":")))
            }
        }
        // A secret key with somebody else's public key.
        let other = try CurveKeyPair.generate()
        let mixed = "curve\n    public-key = \"\(other.publicKey.z85)\"\n    secret-key = '\(good.secretKey.z85)'\n"
        #expect(throws: CurveCertificateError.self) { try CurveCertificate.parse(mixed, path: "m") }
        // Comments, CRLF, other sections and single quotes are fine.
        let ok = "#  c\r\nmetadata\r\n    name = \"n\"  # x\r\ncurve\r\n    public-key = '\(good.publicKey.z85)'\r\n"
        #expect(try CurveCertificate.parse(ok, path: "ok").publicKey == good.publicKey)
    }

    @Test func relativeCredentialPathsComeFromTheCredentialsDirectory() {
        #expect(CurveCertificate.resolve("d.key_secret", environment: ["CREDENTIALS_DIRECTORY": "/run/credentials/x"]) ==
                "/run/credentials/x/d.key_secret")
        #expect(CurveCertificate.resolve("/etc/d.key_secret", environment: ["CREDENTIALS_DIRECTORY": "/run/c"]) == "/etc/d.key_secret")
        #expect(CurveCertificate.resolve("d.key_secret", environment: [:]) == "d.key_secret")
    }

    // MARK: ZAP and handshakes

    /// A CURVE XPUB server on ipc with the authenticator; returns after bind.
    struct Server {
        let context: ZMQContext
        let auth: ZMQAuthenticator
        let socket: ZMQSocket
        let endpoint: String
        let pair: CurveKeyPair
    }

    static func server(dir: TempDir, refusals: Refusals, allowed: Set<CurveKey>, domain: String = "output") throws -> Server {
        let ctx = try ZMQContext()
        let auth = try ZMQAuthenticator(context: ctx) { refusals.add($0) }
        auth.setAllowedKeys(allowed, forDomain: domain)
        let pair = try CurveKeyPair.generate()
        let socket = try ctx.socket(.xpub, lingerMilliseconds: 0)
        try socket.setXPubVerbose(true)
        try socket.makeCurveServer(secretKey: pair.secretKey, zapDomain: domain)
        try auth.watchHandshakes(of: socket, domain: domain)
        let endpoint = "ipc://\(dir.path)/\(domain).sock"
        try socket.bind(endpoint)
        #expect(try socket.usesCurve)
        return Server(context: ctx, auth: auth, socket: socket, endpoint: endpoint, pair: pair)
    }

    /// Waits for one subscription message on the XPUB (true) or for `ms` to pass (false).
    static func subscriptionArrives(_ xpub: ZMQSocket, ms: Int) throws -> Bool {
        try xpub.receiveMessage(timeoutMilliseconds: ms) { $0.withUnsafeBytes(at: 0) { $0.first == 1 } } == true
    }

    @Test func allowedKeyReceivesUnknownKeyAndPlaintextAreRefusedAndCounted() throws {
        let dir = try TempDir()
        let refusals = Refusals()
        let allowed = try CurveKeyPair.generate()
        let stranger = try CurveKeyPair.generate()
        let s = try Self.server(dir: dir, refusals: refusals, allowed: [allowed.publicKey])
        defer { s.socket.close(); s.auth.stop() }

        let good = try s.context.socket(.sub, lingerMilliseconds: 0)
        defer { good.close() }
        try good.makeCurveClient(keyPair: allowed, serverKey: s.pair.publicKey)
        try good.subscribe("")
        try good.connect(s.endpoint)
        #expect(try Self.subscriptionArrives(s.socket, ms: 5000))
        try s.socket.send(strings: ["alert.raised.x", "{}"])
        #expect(try good.receiveCopy(timeoutMilliseconds: 5000).map { $0.count } == 2)

        let bad = try s.context.socket(.sub, lingerMilliseconds: 0)
        defer { bad.close() }
        try bad.makeCurveClient(keyPair: stranger, serverKey: s.pair.publicKey)
        try bad.subscribe("")
        try bad.connect(s.endpoint)
        #expect(refusals.wait { $0.contains { $0.keyPrefix == stranger.publicKey.prefix } })
        let unknown = try #require(refusals.all.first { $0.keyPrefix == stranger.publicKey.prefix })
        #expect(unknown.domain == "output")
        #expect(unknown.reason.contains("not on the output allow-list"))
        #expect(unknown.peerAddress?.hasPrefix("localhost:") == true, "libzmq's IPC peer address: \(String(describing: unknown.peerAddress))")

        let plain = try s.context.socket(.sub, lingerMilliseconds: 0)
        defer { plain.close() }
        try plain.subscribe("")
        try plain.connect(s.endpoint)
        // libzmq reports a mechanism mismatch, or no detail when the plaintext peer closed first.
        func isPlaintextRefusal(_ r: ZMQRefusal) -> Bool {
            r.keyPrefix == nil && (r.reason.contains("mechanism mismatch") || r.reason.contains("no detail"))
        }
        #expect(refusals.wait { $0.contains(where: isPlaintextRefusal) })
        let mismatch = try #require(refusals.all.first(where: isPlaintextRefusal))
        if let address = mismatch.peerAddress { #expect(address.hasPrefix("pid "), "\(address)") }

        // Neither refused peer subscribed, and neither receives what the server sends.
        #expect(try !Self.subscriptionArrives(s.socket, ms: 300))
        try s.socket.send(strings: ["alert.raised.y", "{}"])
        #expect(try good.receiveCopy(timeoutMilliseconds: 5000) != nil)
        #expect(try bad.receiveCopy(timeoutMilliseconds: 200) == nil)
        #expect(try plain.receiveCopy(timeoutMilliseconds: 200) == nil)
        #expect(s.auth.refusalCounter(forDomain: "output").count >= 2)
        #expect(s.auth.refusalCounter(forDomain: "output").count == refusals.all.count)
    }

    /// libzmq lets every CURVE client in while no ZAP handler is bound. A handler thread that ended on an error (its
    /// poll failing) left the daemon's CURVE sockets open to any key, with nothing said (an auditor, session 29):
    /// `makeCurveServer` sets `ZMQ_ZAP_ENFORCE_DOMAIN`, so the same client is refused, and the end is reported.
    @Test func aHandlerThatEndedEarlyLeavesNoClientIn() throws {
        let dir = try TempDir()
        let refusals = Refusals()
        let allowed = try CurveKeyPair.generate()
        let s = try Self.server(dir: dir, refusals: refusals, allowed: [allowed.publicKey])
        defer { s.socket.close(); s.auth.stop() }
        #expect(s.socket.enforcesZAP, "this libzmq does not take ZMQ_ZAP_ENFORCE_DOMAIN")
        #expect(s.auth.unexpectedEnd == nil)

        s.auth.simulateUnexpectedEnd("a test ended it")
        #expect(s.auth.unexpectedEnd == "a test ended it")
        // Even a key on the allow-list gets no subscription through and receives nothing: no handler answers.
        let client = try s.context.socket(.sub, lingerMilliseconds: 0)
        defer { client.close() }
        try client.makeCurveClient(keyPair: allowed, serverKey: s.pair.publicKey)
        try client.subscribe("")
        try client.connect(s.endpoint)
        #expect(try !Self.subscriptionArrives(s.socket, ms: 1000), "a client subscribed with no ZAP handler")
        try s.socket.send(strings: ["alert.raised.x", "{}"])
        #expect(try client.receiveCopy(timeoutMilliseconds: 300) == nil)
        s.auth.stop()
        #expect(s.auth.unexpectedEnd == "a test ended it", "a stop afterwards does not hide why it ended")

        // No handler bound at all (a handler whose socket libzmq has reaped): without the option libzmq accepts any
        // key here — with it, none.
        let bare = try ZMQContext()
        defer { bare.close() }
        let server = try bare.socket(.xpub, lingerMilliseconds: 0)
        defer { server.close() }
        try server.setXPubVerbose(true)
        let pair = try CurveKeyPair.generate()
        #expect(try server.makeCurveServer(secretKey: pair.secretKey, zapDomain: "output"))
        let endpoint = "ipc://\(dir.path)/bare.sock"
        try server.bind(endpoint)
        let stranger = try bare.socket(.sub, lingerMilliseconds: 0)
        defer { stranger.close() }
        try stranger.makeCurveClient(keyPair: try CurveKeyPair.generate(), serverKey: pair.publicKey)
        try stranger.subscribe("")
        try stranger.connect(endpoint)
        #expect(try !Self.subscriptionArrives(server, ms: 1000), "a stranger subscribed with no ZAP handler bound")
        try server.send(strings: ["alert.raised.x", "{}"])
        #expect(try stranger.receiveCopy(timeoutMilliseconds: 300) == nil)
    }

    @Test func keyOfAnotherDomainIsRefusedAndNamesTheList() throws {
        let dir = try TempDir()
        let refusals = Refusals()
        let publisher = try CurveKeyPair.generate()
        let s = try Self.server(dir: dir, refusals: refusals, allowed: [])
        defer { s.socket.close(); s.auth.stop() }
        s.auth.setAllowedKeys([publisher.publicKey], forDomain: "input")
        let sub = try s.context.socket(.sub, lingerMilliseconds: 0)
        defer { sub.close() }
        try sub.makeCurveClient(keyPair: publisher, serverKey: s.pair.publicKey)
        try sub.subscribe("")
        try sub.connect(s.endpoint)
        #expect(refusals.wait { !$0.isEmpty })
        #expect(refusals.all.first?.reason == "the key is on the input allow-list, not on the output one")
        #expect(s.auth.refusalCounter(forDomain: "input").count == 0)
        #expect(try !Self.subscriptionArrives(s.socket, ms: 200))
    }

    @Test func swappedAllowListRefusesNewConnectionsWhileAnExistingOneKeepsReceiving() throws {
        let dir = try TempDir()
        let refusals = Refusals()
        let a = try CurveKeyPair.generate(), b = try CurveKeyPair.generate()
        let s = try Self.server(dir: dir, refusals: refusals, allowed: [a.publicKey, b.publicKey])
        defer { s.socket.close(); s.auth.stop() }
        let first = try s.context.socket(.sub, lingerMilliseconds: 0)
        defer { first.close() }
        try first.makeCurveClient(keyPair: a, serverKey: s.pair.publicKey)
        try first.subscribe("")
        try first.connect(s.endpoint)
        #expect(try Self.subscriptionArrives(s.socket, ms: 5000))

        s.auth.setAllowedKeys([b.publicKey], forDomain: "output")  // a removed
        #expect(s.auth.allowedKeys(forDomain: "output") == [b.publicKey])
        let again = try s.context.socket(.sub, lingerMilliseconds: 0)
        defer { again.close() }
        try again.makeCurveClient(keyPair: a, serverKey: s.pair.publicKey)
        try again.subscribe("")
        try again.connect(s.endpoint)
        #expect(refusals.wait { $0.contains { $0.keyPrefix == a.publicKey.prefix } })
        try s.socket.send(strings: ["t", "still here"])
        #expect(Self.strings(try first.receiveCopy(timeoutMilliseconds: 5000)) == ["t", "still here"])
        #expect(try again.receiveCopy(timeoutMilliseconds: 200) == nil)
    }

    @Test func clientWithAWrongServerKeyIsRefusedAtTheHandshake() throws {
        let dir = try TempDir()
        let refusals = Refusals()
        let client = try CurveKeyPair.generate()
        let s = try Self.server(dir: dir, refusals: refusals, allowed: [client.publicKey])
        defer { s.socket.close(); s.auth.stop() }
        let sub = try s.context.socket(.sub, lingerMilliseconds: 0)
        defer { sub.close() }
        try sub.makeCurveClient(keyPair: client, serverKey: try CurveKeyPair.generate().publicKey)
        try sub.subscribe("")
        try sub.connect(s.endpoint)
        #expect(refusals.wait { $0.contains { $0.reason.contains("cryptographic") } })
        #expect(try !Self.subscriptionArrives(s.socket, ms: 200))
    }

    @Test func secondAuthenticatorInTheSameContextFails() throws {
        let ctx = try ZMQContext()
        let first = try ZMQAuthenticator(context: ctx)
        defer { first.stop() }
        #expect(throws: ZMQError.self) { _ = try ZMQAuthenticator(context: ctx) }
    }

    // MARK: monitor events

    @Test func connectSideMonitorReportsTheDisconnectionOfAnOversizeFrameWithItsEndpoint() throws {
        let dir = try TempDir()
        let ctx = try ZMQContext()
        let endpoint = "ipc://\(dir.path)/pub.sock"
        let pub = try ctx.socket(.xpub, lingerMilliseconds: 0)
        defer { pub.close() }
        try pub.bind(endpoint)
        let sub = try ctx.socket(.sub, lingerMilliseconds: 0)
        defer { sub.close() }
        try sub.setMaxMessageSize(100)
        try sub.subscribe("")
        let monitor = try sub.startMonitor()
        defer { monitor.close() }
        try sub.connect(endpoint)
        #expect(try Self.subscriptionArrives(pub, ms: 5000))
        var events = try monitor.events(timeoutMilliseconds: 100)  // read while the connection is up: with its peer
        try pub.send([Array("t".utf8), [UInt8](repeating: 7, count: 1000)])
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, !events.contains(where: { $0.kind == .disconnected }) {
            events += try monitor.events(timeoutMilliseconds: 100)
        }
        let connected = try #require(events.first { $0.kind == .connected })
        #expect(connected.endpoint == endpoint)
        #expect(connected.peerAddress?.hasPrefix("pid ") == true)
        let gone = try #require(events.first { $0.kind == .disconnected })
        #expect(gone.endpoint == endpoint)
        #expect(gone.value == connected.value)  // the same descriptor
        #expect(try sub.receiveCopy(timeoutMilliseconds: 100) == nil)
    }

    static func strings(_ frames: [[UInt8]]?) -> [String]? { frames.map { $0.map { String(decoding: $0, as: UTF8.self) } } }
}
