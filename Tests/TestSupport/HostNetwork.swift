#if canImport(Glibc)
import Glibc
#endif

/// What this host's network allows, for tests that skip (with the reason shown) where it does not.
public enum HostNetwork {
    /// Whether a TCP socket can be bound to the IPv6 loopback `::1` (a kernel or container without IPv6 cannot).
    public static var canBindIPv6Loopback: Bool {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in6()
        addr.sin6_family = sa_family_t(AF_INET6)
        addr.sin6_addr = in6addr_loopback
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0 }
        }
    }
}
