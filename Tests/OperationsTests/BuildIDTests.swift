@testable import ContactWatchCommon
import Foundation
import Testing

/// The daemon's `ready` line names its executable's build ID, so that after an upgrade the journal tells which build a
/// restart started (every 0.10.0 build said `version=0.10.0`: the packaging check, session 39).
@Suite("BuildID: the running executable's GNU build ID")
struct BuildIDTests {
    @Test("the build ID read from /proc/self/exe is the one readelf prints for the test executable")
    func matchesReadelf() throws {
        let id = try #require(BuildID.current, "this test executable has no build ID")
        #expect(id.count >= 16 && id.allSatisfy { $0.isHexDigit && !$0.isUppercase }, "\(id)")
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/readelf") else {
            print("BuildIDTests: skipped the comparison with readelf: /usr/bin/readelf is not installed (binutils)")
            return
        }
        let readelf = Process()
        readelf.executableURL = URL(fileURLWithPath: "/usr/bin/readelf")
        readelf.arguments = ["-n", "/proc/self/exe".replacingOccurrences(of: "self", with: "\(getpid())")]
        let pipe = Pipe()
        readelf.standardOutput = pipe
        try readelf.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        readelf.waitUntilExit()
        #expect(output.contains("Build ID: \(id)"), "\(output)")
    }

    @Test("notes without a GNU build ID, or cut short, give none; the GNU one is found after another note")
    func parsesNotes() {
        // As readelf lays notes out: the descriptor and the next note at the next multiple of the alignment.
        func note(_ name: [UInt8], type: UInt32, _ descriptor: [UInt8], alignment: Int = 4) -> [UInt8] {
            func le(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
            func pad(_ b: [UInt8]) -> [UInt8] { b + [UInt8](repeating: 0, count: (alignment - b.count % alignment) % alignment) }
            return pad(pad(le(UInt32(name.count)) + le(UInt32(descriptor.count)) + le(type) + name) + descriptor)
        }
        let gnu: [UInt8] = [0x47, 0x4E, 0x55, 0]
        let other = note(gnu, type: 1, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])  // NT_GNU_ABI_TAG
        let build = note(gnu, type: 3, [0xDE, 0xAD, 0xBE, 0xEF, 0x01])
        #expect((other + build).withUnsafeBytes { BuildID.gnuBuildID($0, alignment: 4) } == "deadbeef01")
        #expect(other.withUnsafeBytes { BuildID.gnuBuildID($0, alignment: 4) } == nil)
        #expect(Array((other + build).dropLast(4)).withUnsafeBytes { BuildID.gnuBuildID($0, alignment: 4) } == nil)
        #expect([UInt8]().withUnsafeBytes { BuildID.gnuBuildID($0, alignment: 4) } == nil)
        // An 8-aligned segment (a GNU property note first, as linkers write them): the descriptor at 16, not 20.
        let property = note(gnu, type: 5, [UInt8](repeating: 7, count: 0x10), alignment: 8)
        let build8 = note(gnu, type: 3, [0x01, 0x23, 0x45], alignment: 8)
        #expect((property + build8).withUnsafeBytes { BuildID.gnuBuildID($0, alignment: 8) } == "012345")
        // A build ID note with no descriptor is none.
        #expect(note(gnu, type: 3, []).withUnsafeBytes { BuildID.gnuBuildID($0, alignment: 4) } == nil)
    }
}
