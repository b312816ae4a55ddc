import ContactWatchTestThreads
import Foundation
import Testing

/// The engine declares its hot properties twice: plain in debug builds (the tests check exclusive access at run
/// time) and `@exclusivity(unchecked)` in release builds. The suite builds debug only, so a change made to one list
/// and not the other compiled and passed here while the release build (`make bench`, `make release`, the package)
/// failed: session 36 changed `lastPublisher`'s type in the debug list alone. The two lists must be the same
/// declarations, attribute aside.
@Suite("release declarations", .computing)
struct ReleaseDeclarationsTests {
    @Test("Engine.swift's debug and release property lists declare the same properties alike")
    func debugAndReleaseListsAgree() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/ContactWatchEngine/Engine.swift").path
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        let start = try #require(lines.firstIndex(of: "#if DEBUG"))
        let middle = try #require(lines[start...].firstIndex(of: "#else"))
        let end = try #require(lines[middle...].firstIndex(of: "#endif"))
        func declarations(_ range: Range<Int>) -> [String] {
            lines[range].filter { !$0.isEmpty && !$0.hasPrefix("//") }
        }
        let debug = declarations((start + 1)..<middle)
        let release = declarations((middle + 1)..<end)
        let attribute = "@exclusivity(unchecked) "
        #expect(release.allSatisfy { $0.hasPrefix(attribute) }, "\(release.filter { !$0.hasPrefix(attribute) })")
        let stripped = release.map { $0.hasPrefix(attribute) ? String($0.dropFirst(attribute.count)) : $0 }
        #expect(debug.count > 10)
        #expect(debug == stripped, "only in debug: \(debug.filter { !stripped.contains($0) }); only in release: \(stripped.filter { !debug.contains($0) })")
    }
}
