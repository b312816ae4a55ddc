@testable import ContactWatchEngine
import Foundation
import Testing

/// R2 — telephone-only supervision (rules.md).
@Suite("R2 telephone-only")
struct RuleR2Tests {
    let t0 = t("2026-03-02 10:00")

    func phone(_ id: UInt64, _ start: Millis, crn: String = "X100001", v: UInt64? = nil, outcome: String? = "ATTC",
               mode: String = "TELEPHONE") -> String {
        contact(crn, id: id, v: v, start: start, mode: mode, outcome: outcome)
    }

    func office(_ id: UInt64, _ start: Millis, crn: String = "X100001", v: UInt64? = nil, outcome: String? = "ATTC",
                mode: String = "OFFICE") -> String {
        contact(crn, id: id, v: v, start: start, mode: mode, outcome: outcome)
    }

    @Test("limit 28 days: exactly 28 days does not raise, more does", arguments: [(28 * day, false), (28 * day + 1000, true), (28 * day + 1, true)])
    func limit(elapsed: Millis, raises: Bool) throws {
        let h = Harness()
        h.send(office(1, t0))
        let out = h.send(phone(2, t0 + elapsed))
        #expect(out.count == (raises ? 1 : 0))
        guard raises else { return }
        let a = try #require(out.first)
        #expect(a.topic == "alert.raised.telephone-only")
        #expect(a.severity == "medium")
        #expect(a.occurredAt == iso(t0 + elapsed))
        #expect(keys(a.evidence) == ["categories", "daysWithoutInPerson", "lastInPersonAt", "limitDays",
                                     "remoteContactsSinceInPerson", "triggerContactId", "triggerContactVersion"])
        #expect(a.evString("lastInPersonAt") == iso(t0))
        #expect(a.evInt("daysWithoutInPerson") == 28)
        #expect(a.evInt("limitDays") == 28)
        #expect(a.evInt("remoteContactsSinceInPerson") == 1)
        #expect(a.categories == [])
        #expect(a.triggerContactId == 2)
    }

    @Test("priority case: limit 14, severity high, categories", arguments: [(14 * day, false), (14 * day + 1000, true)])
    func priorityLimit(elapsed: Millis, raises: Bool) {
        let h = Harness()
        h.send(reg("ADVV", at: t0 - day))
        h.send(office(1, t0))
        h.send(phone(2, t0 + elapsed))
        let a = h.raised(R.telephoneOnly)
        #expect(a.count == (raises ? 1 : 0))
        if raises {
            #expect(a[0].severity == "high" && a[0].evInt("limitDays") == 14 && a[0].categories == ["DOMESTIC_ABUSE"])
            #expect(a[0].evInt("daysWithoutInPerson") == 14)
        }
    }

    @Test("configured limits are used")
    func configuredLimits() {
        let h = Harness { $0.telephoneOnlyLimitDays = 5; $0.telephoneOnlyPriorityLimitDays = 2 }
        h.send(office(1, t0))
        h.send(phone(2, t0 + 5 * day + 1000))
        #expect(h.raised(R.telephoneOnly).first?.evInt("limitDays") == 5)
        h.send(reg("RHRH", crn: "X100002", at: t0))
        h.send(office(3, t0, crn: "X100002"))
        h.send(phone(4, t0 + 2 * day + 1000, crn: "X100002"))
        #expect(h.raised(R.telephoneOnly).last?.evInt("limitDays") == 2)
    }

    @Test("daysWithoutInPerson is whole days, rounded down")
    func wholeDays() {
        let h = Harness()
        h.send(office(1, t0))
        h.send(phone(2, t0 + 31 * day + 23 * hour))
        #expect(h.raised(R.telephoneOnly).first?.evInt("daysWithoutInPerson") == 31)
    }

    @Test("without any in-person contact the reference is firstContactAt; lastInPersonAt is null")
    func firstContactReference() throws {
        let h = Harness()
        h.send(phone(1, t0))
        h.send(phone(2, t0 + 29 * day))
        let a = try #require(h.raised(R.telephoneOnly).first)
        #expect(a.ev("lastInPersonAt") is NSNull)
        #expect(a.evInt("daysWithoutInPerson") == 29)
        #expect(a.evInt("remoteContactsSinceInPerson") == 2)
    }

    @Test("firstContactAt counts any contact with an outcome, attended or not, in person or not")
    func firstContactAnyOutcome() {
        let h = Harness()
        h.send(office(1, t0, outcome: "UAAB"))
        h.send(phone(2, t0 + 29 * day))
        let a = h.raised(R.telephoneOnly)
        #expect(a.count == 1)
        #expect(a.first?.evInt("remoteContactsSinceInPerson") == 1)
        #expect(a.first?.ev("lastInPersonAt") is NSNull)
    }

    @Test("firstContactAt ignores contacts without an outcome")
    func firstContactNoOutcome() {
        let h = Harness()
        h.send(office(1, t0 - 100 * day, outcome: nil))
        h.send(phone(2, t0))
        h.send(phone(3, t0 + 20 * day))
        #expect(h.raised(R.telephoneOnly).isEmpty)
    }

    @Test("firstContactAt is the earliest ever processed: a later version moving the start does not move it")
    func firstContactNeverMovesForward() {
        let h = Harness()
        h.send(office(1, t0, outcome: "AFTA"))
        h.send(office(1, t0 + 10 * day, v: 2, outcome: "AFTA"))
        h.send(phone(2, t0 + 29 * day))
        #expect(h.raised(R.telephoneOnly).count == 1)
        #expect(h.raised(R.telephoneOnly).first?.evInt("daysWithoutInPerson") == 29)
    }

    @Test("lastInPersonAt never moves back: an update to an earlier start or a non-attended outcome keeps it", arguments: [
        ("start", "ATTC"), ("outcome", "AFTA"), ("outcome", "UAAB"),
    ])
    func lastInPersonNeverBack(what: String, outcome: String) {
        let h = Harness()
        h.send(office(1, t0 + 10 * day))
        // v2 of the in-person contact: earlier start, or no longer attended.
        h.send(office(1, what == "start" ? t0 : t0 + 10 * day, v: 2, outcome: outcome))
        h.send(phone(2, t0 + 30 * day)) // 20 days after the remembered lastInPersonAt
        #expect(h.raised(R.telephoneOnly).isEmpty)
        h.send(phone(3, t0 + 38 * day + 1000))
        #expect(h.raised(R.telephoneOnly).first?.evString("lastInPersonAt") == iso(t0 + 10 * day))
    }

    @Test("a late-recorded in-person contact with an earlier start does not move lastInPersonAt back")
    func lateInPerson() {
        let h = Harness()
        h.send(office(1, t0 + 10 * day))
        h.send(office(2, t0))
        h.send(phone(3, t0 + 38 * day + 1000))
        #expect(h.raised(R.telephoneOnly).first?.evString("lastInPersonAt") == iso(t0 + 10 * day))
    }

    @Test("remoteContactsSinceInPerson: current attended remote versions after lastInPersonAt, at or before t")
    func remoteCount() throws {
        let h = Harness()
        h.send(phone(1, t0 - 5 * day)) // before the in-person contact: not counted
        h.send(office(2, t0))
        h.send(phone(3, t0 + 5 * day))
        h.send(phone(4, t0 + 10 * day))
        h.send(phone(5, t0 + 12 * day, outcome: nil)) // planned: not counted
        h.send(phone(6, t0 + 14 * day))
        h.send(phone(6, t0 + 14 * day, v: 2, outcome: "AFTA")) // no longer attended: withdrawn
        h.send(phone(7, t0 + 16 * day, outcome: "AFTA")) // not attended
        h.send(phone(8, t0 + 18 * day, mode: "VIDEO")) // video is remote by default
        h.send(phone(9, t0 + 20 * day, mode: "TEXT_OR_ONLINE"))
        h.send(office(10, t0 + 22 * day, outcome: "AFTA")) // in person, not attended: no reset
        h.send(phone(11, t0 + 29 * day))
        let a = try #require(h.raised(R.telephoneOnly).first)
        #expect(a.triggerContactId == 11)
        #expect(a.evInt("remoteContactsSinceInPerson") == 5) // 3, 4, 8, 9, 11
        #expect(h.raised(R.telephoneOnly).count == 1)
    }

    @Test("a remote contact replaced by an in-person version stops counting as remote")
    func remoteWithdrawn() {
        let h = Harness()
        h.send(office(1, t0))
        h.send(phone(2, t0 + 5 * day))
        // v2 of contact 2: it was in person after all (start unchanged) -> lastInPersonAt moves to t0 + 5d.
        h.send(office(2, t0 + 5 * day, v: 2))
        h.send(phone(3, t0 + 33 * day + 1000))
        let a = h.raised(R.telephoneOnly)
        #expect(a.first?.evInt("remoteContactsSinceInPerson") == 1)
        #expect(a.first?.evString("lastInPersonAt") == iso(t0 + 5 * day))
    }

    @Test("contact types map to modes: COPT, CTOA, CTOB are telephone; COVC video", arguments: ["COPT", "CTOA", "CTOB", "COVC"])
    func contactTypes(code: String) {
        let h = Harness()
        h.send(office(1, t0))
        h.send(contact(id: 2, start: t0 + 29 * day, type: code, mode: nil, outcome: "ATTC"))
        #expect(h.raised(R.telephoneOnly).count == 1)
    }

    @Test("at most one open telephone-only alert per case")
    func oneOpen() {
        let h = Harness()
        h.send(office(1, t0))
        h.send(phone(2, t0 + 29 * day))
        h.send(phone(3, t0 + 40 * day))
        h.send(phone(4, t0 + 60 * day))
        #expect(h.raised(R.telephoneOnly).count == 1)
        // Another case is independent.
        h.send(office(5, t0, crn: "X100002"))
        h.send(phone(6, t0 + 29 * day, crn: "X100002"))
        #expect(h.raised(R.telephoneOnly).count == 2)
    }

    @Test("resolution: an attended in-person contact at or after the trigger start", arguments: [
        ("OFFICE", 0 as Millis, "ATTC", true), ("HOME_VISIT", day, "ATTC", true), ("DOORSTEP", day, "AFTC", true),
        ("OTHER_IN_PERSON", day, "ATSS", true), ("OFFICE", -1, "ATTC", false), ("OFFICE", day, "UAAB", false),
        ("OFFICE", day, "AFTA", false), ("VIDEO", day, "ATTC", false), ("TELEPHONE", day, "ATTC", false),
    ])
    func resolution(mode: String, offset: Millis, outcome: String, resolves: Bool) throws {
        let h = Harness()
        h.send(office(1, t0))
        let raise = try #require(h.send(phone(2, t0 + 29 * day)).first)
        h.send(contact(id: 3, start: t0 + 29 * day + offset, at: t0 + 31 * day, mode: mode, outcome: outcome))
        let r = h.resolved(R.telephoneOnly)
        #expect(r.count == (resolves ? 1 : 0))
        guard resolves else { return }
        #expect(r[0].alertId == raise.alertId && r[0].severity == raise.severity)
        #expect(r[0].resolution == "IN_PERSON_CONTACT" && r[0].resolvedBy == 3)
        #expect(r[0].occurredAt == iso(t0 + 29 * day + offset))
        var ev = r[0].evidence
        ev.removeValue(forKey: "resolution")
        ev.removeValue(forKey: "resolvedByContactId")
        #expect(NSDictionary(dictionary: ev) == NSDictionary(dictionary: raise.evidence))
    }

    @Test("after a resolution a new alert can be raised with a new trigger")
    func raiseAgain() {
        let h = Harness()
        h.send(office(1, t0))
        h.send(phone(2, t0 + 29 * day))
        h.send(office(3, t0 + 30 * day))
        h.send(phone(4, t0 + 50 * day))
        #expect(h.raised(R.telephoneOnly).count == 1)
        h.send(phone(5, t0 + 58 * day + 1000))
        #expect(h.raised(R.telephoneOnly).map(\.triggerContactId) == [2, 5])
        #expect(h.raised(R.telephoneOnly).last?.evInt("remoteContactsSinceInPerson") == 2)
    }

    @Test("video counts as face to face when rules.videoCountsAsFaceToFace is true")
    func videoFaceToFace() {
        let h = Harness { $0.videoCountsAsFaceToFace = true }
        h.send(office(1, t0))
        h.send(phone(2, t0 + 20 * day, mode: "VIDEO"))
        h.send(phone(3, t0 + 40 * day))
        #expect(h.raised(R.telephoneOnly).isEmpty)
        h.send(phone(4, t0 + 48 * day + 1000))
        #expect(h.raised(R.telephoneOnly).first?.evString("lastInPersonAt") == iso(t0 + 20 * day))
        h.send(phone(5, t0 + 49 * day, mode: "VIDEO"))
        #expect(h.resolved(R.telephoneOnly).first?.resolvedBy == 5)
    }

    @Test("a late-recorded remote contact before lastInPersonAt raises nothing")
    func lateRemote() {
        let h = Harness()
        h.send(office(1, t0 + 40 * day))
        h.send(phone(2, t0, v: nil))
        h.send(phone(3, t0 + 20 * day))
        #expect(h.raised(R.telephoneOnly).isEmpty)
    }
}

/// R3 — remote contact on a case excluded from remote supervision.
@Suite("R3 remote contact, excluded case")
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

/// R4 — supervision without privacy.
@Suite("R4 no privacy")
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
