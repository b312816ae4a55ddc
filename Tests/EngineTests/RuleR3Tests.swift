import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// R3 — remote contact on a case excluded from remote supervision.
@Suite("R3 remote contact, excluded case", .computing)
struct RuleR3Tests {
    let t0 = t("2026-03-02 10:00")

    static let registers: [(String, String?, [String]?)] = [
        ("RVHR", nil, ["VERY_HIGH_ROSH"]), ("RHRH", nil, nil), ("RMRH", nil, nil), ("RLRH", nil, nil),
        ("MAPP", "M2", ["MAPPA_LEVEL_2_3"]), ("MAPP", "M3", ["MAPPA_LEVEL_2_3"]), ("MAPP", "M1", nil), ("MAPP", nil, nil),
        ("RCPR", nil, ["CHILD_SAFEGUARDING"]), ("RCCO", nil, nil), ("RCHD", nil, nil),
        ("ADVP", nil, ["DOMESTIC_ABUSE"]), ("ADVV", nil, nil), ("ZZZZ", nil, nil),
    ]

    @Test("excluding registers raise on an attended remote contact; others do not", arguments: registers)
    func excluding(code: String, level: String?, categories: [String]?) throws {
        let h = Harness()
        h.send(reg(code, level: level, at: t0 - day))
        let out = h.send(contact(id: 1, start: t0, mode: "TELEPHONE", outcome: "ATTC"))
        #expect(out.count == (categories == nil ? 0 : 1))
        guard let categories else { return }
        let a = try #require(out.first)
        #expect(a.topic == "alert.raised.remote-contact.excluded-case")
        #expect(a.severity == "high")
        #expect(a.occurredAt == iso(t0))
        #expect(keys(a.evidence) == ["categories", "contactMode", "triggerContactId", "triggerContactVersion"])
        #expect(a.evString("contactMode") == "TELEPHONE")
        #expect(a.categories == categories)
    }

    @Test("every remote mode raises; in-person and non-attended contacts do not", arguments: [
        ("TELEPHONE", "ATTC", true), ("TEXT_OR_ONLINE", "ATTC", true), ("VIDEO", "ATTC", true), ("TELEPHONE", "AFTC", true),
        ("TELEPHONE", "UAAB", false), ("TELEPHONE", "AFTA", false), ("TELEPHONE", "AACL", false),
        ("OFFICE", "ATTC", false), ("HOME_VISIT", "ATTC", false),
    ])
    func modes(mode: String, outcome: String, raises: Bool) {
        let h = Harness()
        h.send(reg("ADVP", at: t0 - day))
        h.send(contact(id: 1, start: t0, mode: mode, outcome: outcome))
        #expect(h.raised(R.excluded).count == (raises ? 1 : 0))
        if raises { #expect(h.raised(R.excluded).first?.evString("contactMode") == mode) }
    }

    @Test("video is in person (no R3) when videoCountsAsFaceToFace")
    func videoSetting() {
        let h = Harness { $0.videoCountsAsFaceToFace = true }
        h.send(reg("RVHR", at: t0 - day))
        h.send(contact(id: 1, start: t0, mode: "VIDEO", outcome: "ATTC"))
        #expect(h.raised(R.excluded).isEmpty)
    }

    @Test("at most once per contactId, across versions; a new contact raises again")
    func oncePerContact() {
        let h = Harness()
        h.send(reg("RCPR", at: t0 - day))
        h.send(contact(id: 1, start: t0, mode: "TELEPHONE", outcome: "ATTC"))
        h.send(contact(id: 1, v: 2, start: t0, at: t0 + 2 * hour, mode: "TEXT_OR_ONLINE", outcome: "ATTC"))
        h.send(contact(id: 1, v: 3, start: t0, at: t0 + 3 * hour, mode: "TELEPHONE", outcome: "ATSS"))
        #expect(h.raised(R.excluded).count == 1)
        h.send(contact(id: 2, start: t0 + day, mode: "TELEPHONE", outcome: "ATTC"))
        #expect(h.raised(R.excluded).map(\.triggerContactId) == [1, 2])
    }

    @Test("a contact that becomes attended remote in a later version raises with that version")
    func laterVersion() {
        let h = Harness()
        h.send(reg("RCPR", at: t0 - day))
        h.send(contact(id: 1, start: t0, mode: "TELEPHONE"))
        h.send(contact(id: 1, v: 2, start: t0, at: t0 + 2 * hour, mode: "TELEPHONE", outcome: "ATTC"))
        #expect(h.raised(R.excluded).first?.triggerContactVersion == 2)
    }

    @Test("disabled by rules.remoteContact.enabled = false")
    func disabled() {
        let h = Harness { $0.remoteContactEnabled = false }
        h.send(reg("RVHR", at: t0 - day))
        h.send(contact(id: 1, start: t0, mode: "TELEPHONE", outcome: "ATTC"))
        #expect(h.alerts.isEmpty)
    }

    @Test("RoSH codes replace each other: RVHR then another RoSH code removes the exclusion", arguments: [
        ("RHRH", "added", ["HIGH_ROSH"]), ("RLRH", "added", []), ("RMRH", "updated", []), ("RVHR", "updated", ["VERY_HIGH_ROSH"]),
    ])
    func roshReplace(code: String, kind: String, categories: [String]) {
        let h = Harness()
        h.send(reg("RVHR", at: t0 - 2 * day))
        h.send(reg(code, kind: kind, at: t0 - day))
        h.send(contact(id: 1, start: t0, mode: "TELEPHONE", outcome: "UAAB"))
        h.send(contact(id: 2, start: t0 + hour, mode: "TELEPHONE", outcome: "ATTC"))
        #expect(h.raised(R.excluded).count == (code == "RVHR" ? 1 : 0))
        #expect(h.lastR1?.categories == categories)
    }

    @Test("deregistered and deleted take the register off", arguments: ["deregistered", "deleted"])
    func takenOff(kind: String) {
        let h = Harness()
        h.send(reg("ADVP", at: t0 - 2 * day))
        h.send(reg("RCCO", at: t0 - 2 * day))
        h.send(reg("ADVP", kind: kind, at: t0 - day))
        h.send(reg("RVHR", kind: kind, at: t0 - day)) // not on the case: not an error
        h.send(contact(id: 1, start: t0, mode: "TELEPHONE", outcome: "AFTC"))
        #expect(h.notices.isEmpty)
        #expect(h.raised(R.excluded).isEmpty)
        #expect(h.lastR1?.categories == ["CHILD_SAFEGUARDING"])
    }

    @Test("MAPP level changes with updated; without a level the register has no level")
    func mappaLevels() {
        let h = Harness()
        h.send(reg("MAPP", level: "M2", at: t0 - 3 * day))
        h.send(reg("MAPP", level: "M1", kind: "updated", at: t0 - 2 * day))
        h.send(contact(id: 1, start: t0, mode: "TELEPHONE", outcome: "ATTC"))
        #expect(h.raised(R.excluded).isEmpty)
        h.send(reg("MAPP", level: "M3", kind: "updated", at: t0 + day))
        h.send(contact(id: 2, start: t0 + 2 * day, mode: "TELEPHONE", outcome: "ATTC"))
        #expect(h.raised(R.excluded).count == 1)
        h.send(reg("MAPP", kind: "added", at: t0 + 3 * day))
        h.send(contact(id: 3, start: t0 + 4 * day, mode: "TELEPHONE", outcome: "ATTC"))
        #expect(h.raised(R.excluded).count == 1)
    }

    @Test("categories are listed in table order")
    func categoryOrder() {
        let h = Harness()
        for code in ["ADVP", "RCCO", "MAPP", "RHRH"] { h.send(reg(code, level: code == "MAPP" ? "M2" : nil, at: t0 - day)) }
        h.send(contact(id: 1, start: t0, mode: "TELEPHONE", outcome: "ATTC"))
        #expect(h.raised(R.excluded).first?.categories == ["HIGH_ROSH", "MAPPA_LEVEL_2_3", "CHILD_SAFEGUARDING", "DOMESTIC_ABUSE"])
    }
}
