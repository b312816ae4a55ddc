#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What the symbolic link at `path` points at, as written in it; nil when it is no link or cannot be read.
public func symbolicLinkTarget(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: 4097)
    let n = readlink(path, &buffer, buffer.count - 1)
    guard n > 0 else { return nil }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// What a path the project reads as a file turned out to be, from its `stat`: the one check behind every "not a
/// regular file" message (a configuration file, a CURVE certificate, the state store), so each says it alike.
public enum FileKind: Sendable, Equatable {
    case regular
    case directory
    /// A pipe, socket or device (or a symbolic link, from `lstat`): nothing the project can read as a file.
    case special

    public init(mode: mode_t) {
        switch mode & S_IFMT {
        case S_IFREG: self = .regular
        case S_IFDIR: self = .directory
        default: self = .special
        }
    }

    /// The kind of the file at `path` (following symbolic links), or nil when `stat` fails (`errno` says why).
    public init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        self.init(mode: st.st_mode)
    }

    /// The words every message uses for a file that must be regular and is not: "a directory, not a regular file"
    /// or "a pipe, socket or device, not a regular file"; nil for a regular file. The caller says which file it is
    /// and what to give instead.
    public var notRegularFile: String? {
        switch self {
        case .regular: nil
        case .directory: "a directory, not a regular file"
        case .special: "a pipe, socket or device, not a regular file"
        }
    }
}

/// The directory part of `path` as written (`.` without a `/`, `/` for a file at the root): for messages.
public func directoryPart(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

/// Whether the directory part of `path` is missing (ENOENT creating `path` is then the directory's, not a dangling
/// symbolic link's at `path`, a reviewer, session 52).
public func directoryPartIsMissing(of path: String) -> Bool {
    var st = stat()
    return stat(directoryPart(of: path), &st) != 0 && errno == ENOENT
}
