import ContactWatchTestThreads
import ContactWatchCommon
import ContactWatchStore
import Testing

/// The release version's minor number moves with the store's schema: an upgrade that migrates the store (which an
/// older build then refuses, exit 74) is visible in `--version` and the package's name before it is installed. Two
/// builds of 0.10.0 were schema 5 and schema 6 (an operator audit, session 43).
@Suite("The version moves with the store's schema")
struct StoreVersionPolicyTests {
    /// The first release of each schema version, from 6 on (0.10.0 covered 5 and the first builds of 6).
    static let firstRelease: [Int: (major: Int, minor: Int)] = [6: (0, 11)]

    @Test("the schema this code writes has its first release recorded, each schema's release above the one before, and the version at least the current schema's")
    func versionFollowsSchema() throws {
        // A new schema recorded under the release of the one before (the version not moved) is caught here.
        let releases = Self.firstRelease.sorted { $0.key < $1.key }.map(\.value)
        for (earlier, later) in zip(releases, releases.dropFirst()) {
            #expect((later.major, later.minor) > (earlier.major, earlier.minor), "\(releases)")
        }
        let release = try #require(Self.firstRelease[StateStore.schemaVersion],
                                   "schema \(StateStore.schemaVersion) is new: move the minor version in Version.swift and record it here")
        let parts = ContactWatchVersion.string.split(separator: ".").compactMap { Int($0) }
        try #require(parts.count == 3, "\(ContactWatchVersion.string)")
        #expect((parts[0], parts[1]) >= (release.major, release.minor),
                "version \(ContactWatchVersion.string) for schema \(StateStore.schemaVersion), first released in \(release.major).\(release.minor)")
    }
}
