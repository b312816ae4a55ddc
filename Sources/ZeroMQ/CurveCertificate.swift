// CURVE certificates in the ZeroMQ convention that czmq's `zcert` and pyzmq's `zmq.auth` read and
// write (ZPL, rfc.zeromq.org/spec/4):
//
//     #   ZeroMQ CURVE **Secret** Certificate
//     metadata
//     curve
//         public-key = "<40 characters of Z85>"
//         secret-key = "<40 characters of Z85>"
//
// `NAME.key` holds the public key only; `NAME.key_secret` both. This file reads the few lines that
// matter (the `curve` section's two keys; comments, `metadata` and other sections are skipped but
// must be well-formed ZPL) and writes such files. No libzmq handle here: keys come from `CurveKey`.


import ContactWatchCommon
internal import CZeroMQ  // getxattr (sys/xattr.h), for `readableByOwnerAndSelfOnly`

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A certificate that cannot be used: the file, the line when there is one, and the problem.
public struct CurveCertificateError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The file or directory cannot be read.
        case unreadable
        /// The text is not a certificate (the line says where).
        case malformed
        /// A secret certificate that group or others can access.
        case tooOpen
        /// `write` would overwrite a file.
        case exists
        /// `write` could not create a file.
        case cannotCreate
    }

    public let kind: Kind
    public let path: String
    public let line: Int?
    public let problem: String

    public init(_ kind: Kind, path: String, line: Int? = nil, _ problem: String) {
        self.kind = kind
        self.path = path
        self.line = line
        self.problem = problem
    }

    /// `path:line: problem` (or `path: problem`).
    public var description: String { line.map { "\(path):\($0): \(problem)" } ?? "\(path): \(problem)" }
}

public enum CurveCertificate {
    /// The keys a certificate's text holds, with the lines they are on.
    public struct Contents: Sendable, Equatable {
        public var publicKey: CurveKey
        public var secretKey: CurveKey?
    }

    /// Parses the text of a certificate. `path` only names the file in errors.
    public static func parse(_ text: String, path: String) throws(CurveCertificateError) -> Contents {
        func fail(_ line: Int?, _ problem: String) -> CurveCertificateError { CurveCertificateError(.malformed, path: path, line: line, problem) }
        var section: [String] = []  // the path of names down to the current line's parent
        var curveLine: Int? = nil
        var publicKey: CurveKey? = nil
        var secretKey: CurveKey? = nil
        var number = 0
        // "\r\n" is one Character in Swift: split on either ending.
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            let line = Substring(raw)
            let trimmed = line.drop { $0 == " " }
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if line.contains("\t") { throw fail(number, "a tab character; ZPL indents with 4 spaces per level") }
            let indent = line.count - trimmed.count
            guard indent % 4 == 0 else { throw fail(number, "indentation of \(indent) spaces; ZPL indents with 4 spaces per level") }
            let level = indent / 4
            guard level <= section.count else { throw fail(number, "indented \(level) levels under a parent at level \(section.count - 1)") }
            section.removeLast(section.count - level)
            // name [= value] [# comment]
            let nameEnd = trimmed.firstIndex { !($0.isLetter || $0.isNumber || "$-_@.&+/".contains($0)) } ?? trimmed.endIndex
            let name = String(trimmed[..<nameEnd])
            guard !name.isEmpty, name.first!.isLetter || name.first!.isNumber else {
                throw fail(number, "expected a name (letters, digits, $-_@.&+/)")
            }
            var rest = trimmed[nameEnd...].drop { $0 == " " }
            if rest.isEmpty || rest.hasPrefix("#") {
                section.append(name)
                if level == 0 && name == "curve" {
                    if curveLine != nil { throw fail(number, "a second curve section") }
                    curveLine = number
                }
                continue
            }
            guard rest.hasPrefix("=") else { throw fail(number, "expected \"=\" after \(name)") }
            rest = rest.dropFirst().drop { $0 == " " }
            var value: Substring
            if let quote = rest.first, quote == "\"" || quote == "'" {
                let body = rest.dropFirst()
                guard let end = body.firstIndex(of: quote) else { throw fail(number, "the value of \(name) has no closing \(quote)") }
                value = body[..<end]
                let after = body[body.index(after: end)...].drop { $0 == " " }
                guard after.isEmpty || after.hasPrefix("#") else { throw fail(number, "text after the quoted value of \(name)") }
            } else {
                value = rest.prefix { $0 != " " && $0 != "#" }
            }
            // A name with a value is a leaf; it still opens a level (ZPL allows children under it).
            section.append(name)
            guard level == 1, section.first == "curve", name == "public-key" || name == "secret-key" else { continue }
            guard let key = CurveKey(z85: String(value)) else {
                throw fail(number, "\(name) is not a CURVE key (40 characters of Z85)")
            }
            if name == "public-key" {
                if publicKey != nil { throw fail(number, "a second public-key") }
                publicKey = key
            } else {
                if secretKey != nil { throw fail(number, "a second secret-key") }
                secretKey = key
            }
        }
        guard let curveLine else { throw fail(nil, "no curve section (not a ZeroMQ CURVE certificate)") }
        guard let publicKey else { throw fail(curveLine, "the curve section has no public-key") }
        if let secretKey {
            guard let derived = try? CurveKeyPair(secretKey: secretKey), derived.publicKey == publicKey else {
                throw fail(curveLine, "the public-key is not the one of the secret-key")
            }
        }
        return Contents(publicKey: publicKey, secretKey: secretKey)
    }

    /// Reads a public certificate (`NAME.key`; a secret certificate works too, only its public key is used).
    public static func readPublicKey(path: String) throws(CurveCertificateError) -> CurveKey {
        var mode: mode_t = 0
        return try parse(try readText(path, mode: &mode), path: path).publicKey
    }

    /// Reads a secret certificate (`NAME.key_secret`). It must be readable by its owner only: a file that
    /// group or others can access is refused, as ssh refuses such a key.
    /// A file that is no secret certificate says so first (a public `.key` given by mistake, mode 0644, was told to
    /// chmod 600 before it was told it had no secret key: the companion tool's auditor, session 25).
    public static func readKeyPair(path: String) throws(CurveCertificateError) -> CurveKeyPair {
        var mode: mode_t = 0
        let contents = try parse(try readText(path, mode: &mode), path: path)
        guard let secret = contents.secretKey else {
            throw CurveCertificateError(.malformed, path: path, "has no secret-key (a public certificate; give the .key_secret file)")
        }
        if (mode & 0o077) != 0 && !readableByOwnerAndSelfOnly(path: path, mode: mode) {
            throw CurveCertificateError(.tooOpen, path: path, "a secret certificate that group or others can access (mode 0"
                + "\(String(mode & 0o777, radix: 8))) is refused; make it readable by its owner only (chmod 600)")
        }
        if let why = replaceableByOthers(path) { throw CurveCertificateError(.tooOpen, path: path, why) }
        return CurveKeyPair(publicKey: contents.publicKey, secretKey: secret)
    }

    /// What `replaceableByOthers` judges: the daemon's secret certificate, or an allow-list (its directory, or a
    /// certificate in it), since who may write an allow-list decides who may connect.
    enum Guarded {
        case secretCertificate, allowListDirectory, allowListCertificate, configurationFile

        var noun: String {
            switch self {
            case .secretCertificate: "a secret certificate"
            case .allowListDirectory: "an allow-list directory"
            case .allowListCertificate: "a certificate of an allow-list"
            case .configurationFile: "with CURVE on, a configuration file"
            }
        }
        /// What the other user can do with it.
        var ownerCan: String {
            switch self {
            case .secretCertificate: "that user can read it and replace it"
            case .allowListDirectory: "that user can put their own key in it"
            case .allowListCertificate: "that user can replace it with their own key"
            case .configurationFile: "that user can point the allow-lists at keys of their own"
            }
        }
        var anyoneCan: String {
            switch self {
            case .secretCertificate: "any of them can replace it with a key of their own"
            case .allowListDirectory: "any of them can rename it away and put a directory with their own key in its place"
            case .allowListCertificate: "any of them can replace it with their own key"
            case .configurationFile: "any of them can replace it and point the allow-lists at keys of their own"
            }
        }
    }

    /// Why the configuration file at `path` can be changed by another user than the daemon's and root, when it names
    /// the certificates and allow-lists: whoever writes it decides who may connect, as whoever writes an allow-list
    /// does (a bug hunter, session 47: a file of mode 0666 pointed `allowConsumers` at the publishers' keys, applied
    /// at the next SIGHUP). The allow-lists' rule: not writable by any user (`0002`; group-writable is the
    /// operator's choice), owned by this process's user or root, no open or foreign-owned directory above it. Nil when
    /// none holds, or `stat` fails (reading the file says why).
    public static func configurationFileProblem(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        if st.st_mode & 0o002 != 0 {
            return "with CURVE on, a configuration file that any user can write (mode 0\(String(st.st_mode & 0o7777, radix: 8))) "
                + "is refused: any of them can point the allow-lists at keys of their own; chmod o-w \(path)"
        }
        return replaceableByOthers(path, what: .configurationFile)
    }

    /// Why a secret certificate at `path` is not this process's alone, as ssh's StrictModes judges a key: owned by
    /// another user than this process's (or root), that user reads it — and replaces it with a key of their own; in a
    /// directory any user can write without the sticky bit, any of them replaces it (`mv` over it). Either way the
    /// daemon served CURVE with a secret key an unprivileged user knew (a security tester, session 44). Nil when
    /// neither holds (or `stat` fails: reading the file said why already).
    /// The same for an allow-list's directory and each certificate in it (`what`): only their own `0002` bit was
    /// looked at, so a user who owned the directory or a certificate, or could write a directory above either (or
    /// above a certificate's link target), put their own key in after the next SIGHUP (a bug hunter, session 46).
    static func replaceableByOthers(_ path: String, what: Guarded = .secretCertificate) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        if st.st_uid != geteuid() && st.st_uid != 0 {
            return "\(what.noun) owned by another user (uid \(st.st_uid)) is refused: \(what.ownerCan); give it to the "
                + "user the process runs as, or to root (chown)"
        }
        // The file a link names, and every directory above it (ssh's StrictModes walks them too): a world-writable
        // directory anywhere up the path lets anyone rename what is below it away and put their own in its place;
        // the link's own directory alone passed a link into such a directory (a reviewer, session 44).
        if let open = OpenDirectories.firstWritableByAnyone(above: path) {
            return "\(what.noun) in a directory that any user can write (\(open.directory), mode \(open.modeText)) is "
                + "refused: \(what.anyoneCan); move it, or chmod o-w the directory"
        }
        if let (link, uid) = OpenDirectories.firstLinkOwnedByAnotherUser(in: path) {
            return "\(what.noun) reached through a symbolic link owned by another user (\(link), uid \(uid)) is refused: that "
                + "user can point it elsewhere; replace the link with one of your own, or give the path directly"
        }
        if let (directory, uid) = OpenDirectories.firstOwnedByAnotherUser(above: path) {
            return "\(what.noun) in a directory owned by another user (\(directory), uid \(uid)) is refused: that user "
                + "can rename what is in it and put their own in its place; move it, or give the directory to the user the "
                + "process runs as, or to root (chown)"
        }
        return nil
    }

    /// Whether a file whose group bits are set is still readable by its owner and this process's user alone: its
    /// group bits are the mask of a POSIX ACL that grants nothing to its group, to any named group or to others, and
    /// read to no named user but this process's. That is how systemd hands a service its `LoadCredential=` file where
    /// the credentials' file system has ACLs (newer systemd: root-owned 0400 plus `user:<service>:r`, which `stat`
    /// shows as 0440), and the daemon refused the documented set-up there (an operator audit, session 36).
    /// The ACL is read as the kernel stores it (`system.posix_acl_access`: a 4-byte version 2, then 8-byte entries of
    /// tag, permissions and id, little-endian).
    static func readableByOwnerAndSelfOnly(path: String, mode: mode_t) -> Bool {
        guard mode & 0o027 == 0 else { return false }  // no group write, nothing for others
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = getxattr(path, "system.posix_acl_access", &buffer, buffer.count)
        guard n >= 4, (n - 4) % 8 == 0 else { return false }
        func u16(_ at: Int) -> UInt16 { UInt16(buffer[at]) | UInt16(buffer[at + 1]) << 8 }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(buffer[at + $1]) << (8 * UInt32($1)) } }
        guard u32(0) == 2 else { return false }
        let me = UInt32(geteuid())
        for at in stride(from: 4, to: n, by: 8) {
            let (tag, permissions, id) = (u16(at), u16(at + 2), u32(at + 4))
            switch tag {
            case 0x01, 0x10: continue  // the owner; the mask
            case 0x02: if permissions != 0 && id != me { return false }  // a named user: this process's only
            case 0x04, 0x08, 0x20: if permissions != 0 { return false }  // the owning group, a named group, others
            default: return false
            }
        }
        return true
    }

    /// Every `*.key` public certificate in `directory` (sorted by file name). Other names are ignored; a `*.key` name
    /// that is not a readable regular file (a dangling symbolic link, a directory, a pipe) is an error, as a
    /// malformed certificate is.
    /// - Throws: when the directory cannot be read or a certificate in it is unusable (naming the file and line).
    public static func readAllowList(directory: String) throws(CurveCertificateError) -> [(path: String, key: CurveKey)] {
        guard let dir = opendir(directory) else {
            throw CurveCertificateError(.unreadable, path: directory, "cannot read the directory: \(String(cString: strerror(errno)))")
        }
        // Who may write the list decides who may connect: a directory or certificate any local user can write lets
        // any of them allow their own key (ssh's StrictModes refuses such files likewise). Group-writable is left
        // to the operator (a group that manages the keys).
        var dirStat = stat()
        if fstat(dirfd(dir), &dirStat) == 0, dirStat.st_mode & 0o002 != 0 {
            closedir(dir)
            throw CurveCertificateError(.tooOpen, path: directory, "an allow-list directory that any user can write (mode 0"
                + "\(String(dirStat.st_mode & 0o7777, radix: 8))) is refused: anyone could add a key; chmod o-w \(directory)")
        }
        if let why = replaceableByOthers(directory, what: .allowListDirectory) {
            closedir(dir)
            throw CurveCertificateError(.tooOpen, path: directory, why)
        }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasSuffix(".key") && !name.hasPrefix(".") { names.append(name) }
        }
        closedir(dir)
        var out: [(String, CurveKey)] = []
        for name in names.sorted() {
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            // Every `*.key` name is meant as a certificate: one that cannot be read as a file is refused like a
            // malformed one (naming it), not skipped — a skipped key is a client the operator meant to allow and
            // that would be refused without a word.
            var st = stat()
            guard stat(path, &st) == 0 else {
                let reason = String(cString: strerror(errno))
                var link = stat()
                if lstat(path, &link) == 0, (link.st_mode & S_IFMT) == S_IFLNK {
                    let target = symbolicLinkTarget(path).map { " to \($0)" } ?? ""
                    throw CurveCertificateError(.unreadable, path: path, "a symbolic link\(target) that cannot be followed (\(reason)); "
                        + "point it at the certificate or remove it")
                }
                throw CurveCertificateError(.unreadable, path: path, "cannot read the certificate: \(reason)")
            }
            if let notRegular = FileKind(mode: st.st_mode).notRegularFile {
                throw CurveCertificateError(.unreadable, path: path, "\(notRegular); "
                    + "only public certificates may be named *.key in an allow-list directory")
            }
            if st.st_mode & 0o002 != 0 {
                throw CurveCertificateError(.tooOpen, path: path, "a certificate in an allow-list that any user can write (mode 0"
                    + "\(String(st.st_mode & 0o7777, radix: 8))) is refused: anyone could put their own key in it; chmod o-w \(path)")
            }
            if let why = replaceableByOthers(path, what: .allowListCertificate) {
                throw CurveCertificateError(.tooOpen, path: path, why)
            }
            // A secret certificate under a public name (`cp NAME.key*`): the peer's secret left readable beside the
            // public keys, taken without a word (a security tester, session 44). Refused like a malformed one.
            var mode: mode_t = 0
            let contents = try parse(try readText(path, mode: &mode), path: path)
            if contents.secretKey != nil {
                throw CurveCertificateError(.tooOpen, path: path, "holds a secret-key: an allow-list takes public "
                    + "certificates only (NAME.key, from keygen or zmq.auth), and whoever reads this one can act as that peer; "
                    + "put the public certificate here, delete this copy, and make a new key pair for that peer if others "
                    + "could read it")
            }
            out.append((path, contents.publicKey))
        }
        return out
    }

    /// `path` as the daemon reads a credential: a relative path is taken from `$CREDENTIALS_DIRECTORY`
    /// when that is set (systemd `LoadCredential=`), else as it is.
    public static func resolve(_ path: String, environment: [String: String]) -> String {
        guard !path.hasPrefix("/"), let dir = environment["CREDENTIALS_DIRECTORY"], !dir.isEmpty else { return path }
        return dir.hasSuffix("/") ? dir + path : dir + "/" + path
    }

    // MARK: Writing

    /// The text of the public certificate of `keyPair`, as czmq and pyzmq write it.
    public static func publicText(_ keyPair: CurveKeyPair, generatedBy: String = "contactwatch") -> String {
        """
        #   ****  Generated on \(utcNow()) by \(generatedBy)  ****
        #   ZeroMQ CURVE Public Certificate
        #   Exchange securely, or use a secure mechanism to verify the contents
        #   of this file after exchange. Store public certificates in your home
        #   directory, in the .curve subdirectory.

        metadata
        curve
            public-key = "\(keyPair.publicKey.z85)"

        """
    }

    /// The text of the secret certificate of `keyPair`, as czmq and pyzmq write it.
    public static func secretText(_ keyPair: CurveKeyPair, generatedBy: String = "contactwatch") -> String {
        """
        #   ****  Generated on \(utcNow()) by \(generatedBy)  ****
        #   ZeroMQ CURVE **Secret** Certificate
        #   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

        metadata
        curve
            public-key = "\(keyPair.publicKey.z85)"
            secret-key = "\(keyPair.secretKey.z85)"

        """
    }

    /// Writes `NAME.key` (mode 0644) and `NAME.key_secret` (mode 0600) in `directory`. Never overwrites:
    /// when either exists nothing is written (`.exists`).
    /// - Returns: the paths of the public and the secret certificate.
    @discardableResult
    public static func write(_ keyPair: CurveKeyPair, name: String, directory: String)
        throws(CurveCertificateError) -> (publicPath: String, secretPath: String) {
        let base = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        let publicPath = base + ".key", secretPath = base + ".key_secret"
        for path in [publicPath, secretPath] {
            var st = stat()
            if lstat(path, &st) == 0 { throw CurveCertificateError(.exists, path: path, "already exists; not overwritten") }
        }
        try create(publicPath, mode: 0o644, text: publicText(keyPair))
        do {
            try create(secretPath, mode: 0o600, text: secretText(keyPair))
        } catch {
            unlink(publicPath)
            throw error
        }
        return (publicPath, secretPath)
    }

    private static func create(_ path: String, mode: mode_t, text: String) throws(CurveCertificateError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let e = errno
            // ENOENT with the directory missing is said so: "No such file or directory" of a file to be created read
            // as odd (an operator's audit, session 52); a dangling link's ENOENT keeps the system's words.
            let why = e == ENOENT && directoryPartIsMissing(of: path) ? "the directory \(directoryPart(of: path)) does not exist; create it first"
                : String(cString: strerror(e))
            throw CurveCertificateError(e == EEXIST ? .exists : .cannotCreate, path: path,
                                        e == EEXIST ? "already exists; not overwritten" : "cannot create: \(why)")
        }
        defer { close(fd) }
        // The mode exactly, whatever the umask.
        guard fchmod(fd, mode) == 0 else {
            let e = errno
            unlink(path)
            throw CurveCertificateError(.cannotCreate, path: path, "cannot set its mode: \(String(cString: strerror(e)))")
        }
        var bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeMutableBytes { posixWrite(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                unlink(path)
                throw CurveCertificateError(.cannotCreate, path: path, "cannot write: \(String(cString: strerror(e)))")
            }
            written += n
        }
        bytes.removeAll()
    }

    // MARK: Reading

    /// The file's text (at most 64 KiB) and its mode (the caller checks a secret certificate's).
    private static func readText(_ path: String, mode: inout mode_t) throws(CurveCertificateError) -> String {
        // O_NONBLOCK: opening a FIFO for reading waits for a writer, for ever (`--check-config` hung on one); the file
        // is refused below as not regular once it is open. (A regular file's reads are not affected by the flag.)
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            throw CurveCertificateError(.unreadable, path: path, "cannot read the certificate: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw CurveCertificateError(.unreadable, path: path, "cannot read the certificate: \(String(cString: strerror(errno)))")
        }
        if let notRegular = FileKind(mode: st.st_mode).notRegularFile {
            throw CurveCertificateError(.unreadable, path: path, "\(notRegular); give the certificate file itself")
        }
        mode = st.st_mode
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= 65536 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CurveCertificateError(.unreadable, path: path, "cannot read the certificate: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        guard bytes.count <= 65536 else { throw CurveCertificateError(.malformed, path: path, "is larger than 64 KiB; not a certificate") }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CurveCertificateError(.malformed, path: path, "is not UTF-8 text")
        }
        return text
    }

    private static func utcNow() -> String {
        var t = time(nil)
        var tm = tm()
        gmtime_r(&t, &tm)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S", &tm)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, p, n)
    #elseif canImport(Musl)
    Musl.write(fd, p, n)
    #else
    Darwin.write(fd, p, n)
    #endif
}
