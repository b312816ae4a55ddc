import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// R4 — supervision without privacy.
@Suite("R4 no privacy", .computing)
struct RuleR4Tests {
    let t0 = t("2026-03-02 10:00")

    static let modes = ["OFFICE", "HOME_VISIT", "DOORSTEP", "OTHER_IN_PERSON", "TELEPHONE", "VIDEO", "TEXT_OR_ONLINE"]
    static let settings = ["PRIVATE_ROOM", "OPEN_BOOTH", "SHARED_PUBLIC_SPACE", "HOME", "DOORSTEP", "UNKNOWN"]

    @Test("modes x settings matrix", arguments: modes, settings)
    func matrix(mode: String, setting: String) throws {
        let h = Harness()
        let out = h.send(contact(id: 1, start: t0, mode: mode, outcome: "ATTC", setting: setting))
        let raises = ["OFFICE", "OTHER_IN_PERSON", "DOORSTEP"].contains(mode) && ["OPEN_BOOTH", "SHARED_PUBLIC_SPACE", "DOORSTEP"].contains(setting)
        #expect(out.count == (raises ? 1 : 0))
        guard raises else { return }
        let a = try #require(out.first)
        #expect(a.topic == "alert.raised.no-privacy")
        #expect(a.severity == "low")
        #expect(a.occurredAt == iso(t0))
        #expect(keys(a.evidence) == ["categories", "contactMode", "interviewSetting", "sensitive", "triggerContactId", "triggerContactVersion"])
        #expect(a.evString("contactMode") == mode && a.evString("interviewSetting") == setting)
        #expect(a.ev("sensitive") as? Bool == false)
        #expect(a.categories == [])
    }

    @Test("severity by categories and sensitivity", arguments: [
        (nil, nil, false, "low"), (nil, nil, true, "high"), ("RCCO", nil, false, "high"), ("RCHD", nil, false, "high"),
        ("RCPR", nil, false, "high"), ("ADVV", nil, false, "high"), ("ADVP", nil, false, "high"),
        ("RVHR", nil, false, "medium"), ("RHRH", nil, false, "medium"), ("MAPP", "M2", false, "medium"),
        ("MAPP", "M3", false, "medium"), ("MAPP", "M1", false, "low"), ("RMRH", nil, false, "low"),
        ("RHRH", nil, true, "high"),
    ] as [(String?, String?, Bool, String)])
    func severity(code: String?, level: String?, sensitive: Bool, expected: String) throws {
        let h = Harness()
        if let code { h.send(reg(code, level: level, at: t0 - day)) }
        h.send(contact(id: 1, start: t0, outcome: "ATTC", setting: "OPEN_BOOTH", sensitive: sensitive))
        let a = try #require(h.raised(R.noPrivacy).first)
        #expect(a.severity == expected)
        #expect(a.ev("sensitive") as? Bool == sensitive)
    }

    @Test("only attended contacts", arguments: [("UAAB", false), ("AFTA", false), ("AACL", false), ("AFTC", true), ("ATSH", true), ("ATSS", true)] as [(String, Bool)])
    func attendedOnly(outcome: String, raises: Bool) {
        let h = Harness()
        h.send(contact(id: 1, start: t0, outcome: outcome, setting: "SHARED_PUBLIC_SPACE"))
        #expect(h.raised(R.noPrivacy).count == (raises ? 1 : 0))
        let h2 = Harness()
        h2.send(contact(id: 1, start: t0, setting: "OPEN_BOOTH")) // no outcome
        #expect(h2.alerts.isEmpty)
    }

    @Test("an attended failure in a booth: R1 then R4 in one step")
    func r1ThenR4() {
        let h = Harness()
        let out = h.send(contact(id: 1, start: t0, outcome: "AFTC", setting: "OPEN_BOOTH"))
        #expect(out.map(\.rule) == [R.warningDue, R.noPrivacy])
    }

    @Test("minimumSeverity filters; a later version that qualifies raises once")
    func minimumSeverity() throws {
        let h = Harness { $0.noPrivacyMinimumSeverity = .medium }
        h.send(contact(id: 1, start: t0, outcome: "ATTC", setting: "OPEN_BOOTH"))
        #expect(h.alerts.isEmpty)
        h.send(contact(id: 1, v: 2, start: t0, at: t0 + 2 * hour, outcome: "ATTC", setting: "OPEN_BOOTH", sensitive: true))
        let a = try #require(h.raised(R.noPrivacy).first)
        #expect(a.severity == "high" && a.triggerContactVersion == 2)
        h.send(contact(id: 1, v: 3, start: t0, at: t0 + 3 * hour, outcome: "ATTC", setting: "OPEN_BOOTH", sensitive: true))
        #expect(h.raised(R.noPrivacy).count == 1)
        // A medium case qualifies at minimum medium.
        h.send(reg("RHRH", crn: "X100002", at: t0))
        h.send(contact("X100002", id: 2, start: t0, outcome: "ATTC", setting: "OPEN_BOOTH"))
        #expect(h.raised(R.noPrivacy).last?.severity == "medium")
    }

    @Test("minimumSeverity high drops medium alerts")
    func minimumHigh() {
        let h = Harness { $0.noPrivacyMinimumSeverity = .high }
        h.send(reg("RVHR", at: t0 - day))
        h.send(contact(id: 1, start: t0, outcome: "ATTC", setting: "OPEN_BOOTH"))
        #expect(h.alerts.isEmpty)
        h.send(reg("ADVV", at: t0))
        h.send(contact(id: 2, start: t0 + day, outcome: "ATTC", setting: "OPEN_BOOTH"))
        #expect(h.raised(R.noPrivacy).first?.severity == "high")
    }

    @Test("at most once per contactId across versions")
    func oncePerContact() {
        let h = Harness()
        h.send(contact(id: 1, start: t0, outcome: "ATTC", setting: "OPEN_BOOTH"))
        h.send(contact(id: 1, v: 2, start: t0, at: t0 + 2 * hour, outcome: "ATTC", setting: "SHARED_PUBLIC_SPACE", sensitive: true))
        h.send(contact(id: 1, v: 3, start: t0, at: t0 + 3 * hour, outcome: "ATTC", setting: "PRIVATE_ROOM"))
        h.send(contact(id: 1, v: 4, start: t0, at: t0 + 4 * hour, outcome: "ATTC", setting: "OPEN_BOOTH"))
        #expect(h.raised(R.noPrivacy).count == 1)
    }

    @Test("default interview setting by mode", arguments: [
        ("HOME_VISIT", nil, false, "HOME"), ("DOORSTEP", nil, true, "DOORSTEP"), (nil, "CODC", true, "DOORSTEP"),
        (nil, "CODI", true, "DOORSTEP"), ("OFFICE", nil, false, "UNKNOWN"), ("OTHER_IN_PERSON", nil, false, "UNKNOWN"),
        (nil, "CHVS", false, "HOME"),
    ] as [(String?, String?, Bool, String)])
    func defaultSetting(mode: String?, type: String?, raises: Bool, setting: String) {
        let h = Harness()
        h.send(contact(id: 1, start: t0, type: type, mode: mode, outcome: "ATTC"))
        #expect(h.raised(R.noPrivacy).count == (raises ? 1 : 0))
        if raises { #expect(h.raised(R.noPrivacy).first?.evString("interviewSetting") == setting) }
    }

    @Test("a point alert: never resolved")
    func pointAlert() {
        let h = Harness()
        h.send(contact(id: 1, start: t0, outcome: "ATTC", setting: "OPEN_BOOTH"))
        h.send(contact(id: 1, v: 2, start: t0, at: t0 + day, outcome: "AAME", setting: "PRIVATE_ROOM"))
        h.send(contact(id: 2, start: t0 + day, outcome: "ATTC", action: "NFA"))
        #expect(h.all.filter(\.isResolve).isEmpty)
    }
}
