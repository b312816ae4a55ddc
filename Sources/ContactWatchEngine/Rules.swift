// The detection rules R1–R6 of rules.md and the alert messages they publish (alerts.md).

enum Subject {
    case crn(CRN)
    case pdu(String)

    var typeName: String {
        switch self {
        case .crn: "CRN"
        case .pdu: "PDU"
        }
    }

    var value: String {
        switch self {
        case .crn(let c): c.description
        case .pdu(let p): p
        }
    }
}

/// Writes an alert's reason text, escaped, into its JSON string (the quotes are the caller's).
typealias Reason = (inout [UInt8]) -> Void

extension Engine {
    // MARK: - Alert messages

    /// Writes one alert message (raise or resolution) with the next `alertSequence`.
    func emit(raised: Bool, rule: Rule, severity: Severity, id: AlertID, subject: Subject, occurredAt: Millis,
              reason: Reason, triggerContactId: UInt64, triggerContactVersion: UInt64,
              out: inout Outbox, evidence: (inout [UInt8]) -> Void) {
        state.alertSequence += 1
        let sequence = state.alertSequence
        if raised { counters.raisedByRule[Int(rule.rawValue)] += 1 } else { counters.resolvedByRule[Int(rule.rawValue)] += 1 }
        let crn: CRN? = if case .crn(let c) = subject { c } else { nil }
        out.append(kind: raised ? .alertRaised : .alertResolved, alertSequence: sequence, alertId: id, crn: crn,
                   contactId: triggerContactId, topic: { t in
            if raised { JSONOut.raw(&t, "alert.raised.") } else { JSONOut.raw(&t, "alert.resolved.") }
            t.append(contentsOf: rule.name.utf8)
        }) { b in
            if raised {
                JSONOut.raw(&b, "{\"eventType\":\"probation-case.supervision-alert.raised\",\"version\":1,\"occurredAt\":")
            } else {
                JSONOut.raw(&b, "{\"eventType\":\"probation-case.supervision-alert.resolved\",\"version\":1,\"occurredAt\":")
            }
            JSONOut.time(&b, occurredAt)
            detectedAt(&b)
            JSONOut.raw(&b, ",\"alertId\":\"")
            id.append(to: &b)
            JSONOut.raw(&b, "\",\"alertSequence\":")
            JSONOut.uint(&b, sequence)
            JSONOut.raw(&b, ",\"rule\":\"")
            b.append(contentsOf: rule.name.utf8)
            JSONOut.raw(&b, "\",\"severity\":\"")
            b.append(contentsOf: severity.code.utf8)
            switch subject {
            case .crn(let crn):
                JSONOut.raw(&b, "\",\"subject\":{\"type\":\"CRN\",\"value\":\"")
                crn.append(to: &b)
                JSONOut.raw(&b, "\"},\"personReference\":{\"identifiers\":[{\"type\":\"CRN\",\"value\":\"")
                crn.append(to: &b)
                JSONOut.raw(&b, "\"}]}")
            case .pdu(let code):
                JSONOut.raw(&b, "\",\"subject\":{\"type\":\"PDU\",\"value\":")
                JSONOut.string(&b, code)
                b.append(UInt8(ascii: "}"))
            }
            JSONOut.raw(&b, ",\"reason\":\"")
            reason(&b)
            b.append(UInt8(ascii: "\""))
            JSONOut.raw(&b, ",\"evidence\":{\"triggerContactId\":")
            JSONOut.uint(&b, triggerContactId)
            JSONOut.raw(&b, ",\"triggerContactVersion\":")
            JSONOut.uint(&b, triggerContactVersion)
            evidence(&b)
            JSONOut.raw(&b, "}}")
        }
    }

    /// Raises an alert whose evidence is kept for its resolution; returns the open alert.
    func raise(rule: Rule, severity: Severity, subject: Subject, occurredAt: Millis, reason: Reason,
               event e: ContactEvent, out: inout Outbox, evidence: (inout [UInt8]) -> Void) -> OpenAlert {
        let id = AlertID(rule: rule, subjectType: subject.typeName, subjectValue: subject.value,
                         triggerContactId: e.contactId, triggerContactVersion: e.contactVersion)
        var ev: [UInt8] = []
        evidence(&ev)
        emit(raised: true, rule: rule, severity: severity, id: id, subject: subject, occurredAt: occurredAt, reason: reason,
             triggerContactId: e.contactId, triggerContactVersion: e.contactVersion, out: &out) { $0.append(contentsOf: ev) }
        return OpenAlert(id: id, rule: rule, severity: severity, triggerContactId: e.contactId,
                         triggerContactVersion: e.contactVersion, triggerStart: e.contactStart, evidence: ev,
                         deadline: 0, overdueRaised: false)
    }

    /// Publishes the resolution of an open case alert, repeating its evidence.
    func resolve(_ a: OpenAlert, crn: CRN, occurredAt: Millis, resolution: Resolution, by contactId: UInt64,
                 reason: Reason, out: inout Outbox) {
        emit(raised: false, rule: a.rule, severity: a.severity, id: a.id, subject: .crn(crn), occurredAt: occurredAt,
             reason: reason, triggerContactId: a.triggerContactId, triggerContactVersion: a.triggerContactVersion, out: &out) { b in
            b.append(contentsOf: a.evidence)
            self.resolutionFields(&b, resolution, contactId)
        }
    }

    func resolutionFields(_ b: inout [UInt8], _ resolution: Resolution, _ contactId: UInt64) {
        JSONOut.raw(&b, ",\"resolution\":\"")
        JSONOut.raw(&b, resolution.code)
        JSONOut.raw(&b, "\",\"resolvedByContactId\":")
        JSONOut.uint(&b, contactId)
    }

    /// Writes the date of `t` (YYYY-MM-DD) into a reason.
    func dateText(_ b: inout [UInt8], _ t: Millis) { JSONOut.dateText(&b, zone.date(of: t)) }

    // MARK: - R1 non-compliance

    func raiseNonCompliance(caseIndex ci: Int, event e: ContactEvent, date d: LocalDate, out: inout Outbox) {
        let crn = state.cases[ci].crn
        let categories = state.cases[ci].categories
        let sentence = state.cases[ci].sentenceType
        let t = e.contactStart
        var s = Millis.min
        for b in state.cases[ci].breaches where b.start <= t && b.start > s { s = b.start }
        let months = settings.nonComplianceWindowMonths
        let windowStart = d.subtracting(months: months)
        var failures = 0
        for f in state.cases[ci].failures where f.start >= s && f.start <= t && zone.date(of: f.start) >= windowStart {
            failures += 1
        }
        var lastWarning = Millis.min
        for w in state.cases[ci].warnings where w.start >= s && w.start <= t && w.start > lastWarning && zone.date(of: w.start) >= windowStart {
            lastWarning = w.start
        }
        let priority = !categories.isEmpty
        let rule: Rule
        let severity: Severity
        let code = reader.string(e.outcomeCode)
        if sentence == .licence {
            rule = .licenceReview
            severity = failures >= 2 || priority ? .high : .medium
        } else if failures >= 2 || lastWarning != .min {
            rule = .breachDue
            severity = .high
        } else {
            rule = .warningDue
            severity = priority ? .high : .medium
        }
        func failuresInWindow(_ b: inout [UInt8]) {
            if failures == 1 { JSONOut.raw(&b, "1 failure") } else { JSONOut.int(&b, failures); JSONOut.raw(&b, " failures") }
            JSONOut.raw(&b, " in ")
            JSONOut.int(&b, months)
            JSONOut.raw(&b, " months")
        }
        let reason: Reason = { b in
            JSONOut.raw(&b, "Failure to comply (")
            JSONOut.text(&b, code)
            if rule == .licenceReview { JSONOut.raw(&b, ") on licence, contact ") } else { JSONOut.raw(&b, ") on contact ") }
            JSONOut.uint(&b, e.contactId)
            JSONOut.raw(&b, " on ")
            JSONOut.dateText(&b, d)
            switch rule {
            case .licenceReview:
                JSONOut.raw(&b, ": review for recall or further action (")
                failuresInWindow(&b)
            case .breachDue:
                JSONOut.raw(&b, ": breach action is due (")
                if failures >= 2 { failuresInWindow(&b) }
                if lastWarning != .min {
                    if failures >= 2 { JSONOut.raw(&b, " and ") }
                    JSONOut.raw(&b, "a warning was given on ")
                    self.dateText(&b, lastWarning)
                }
            default:
                JSONOut.raw(&b, ": a warning is due (no other failure and no warning in ")
                JSONOut.int(&b, months)
                JSONOut.raw(&b, " months")
            }
            if s != .min {
                JSONOut.raw(&b, " since the breach of ")
                self.dateText(&b, s)
            }
            // A priority case shows in the severity and the evidence's categories, not in the sentence (example 09).
            b.append(UInt8(ascii: ")"))
        }
        var alert = raise(rule: rule, severity: severity, subject: .crn(crn), occurredAt: t, reason: reason, event: e, out: &out) { b in
            JSONOut.raw(&b, ",\"outcomeCode\":")
            JSONOut.string(&b, code)
            JSONOut.raw(&b, ",\"sentenceType\":\"")
            b.append(contentsOf: sentence.code.utf8)
            JSONOut.raw(&b, "\",\"failuresInWindow\":")
            JSONOut.int(&b, failures)
            JSONOut.raw(&b, ",\"lastWarningAt\":")
            if lastWarning == .min { JSONOut.raw(&b, "null") } else { JSONOut.time(&b, lastWarning) }
            JSONOut.raw(&b, ",\"categories\":")
            JSONOut.categories(&b, categories)
        }
        alert.deadline = business.businessDay(settings.enforcementDeadlineBusinessDays, after: d).days
        state.cases[ci].openNonCompliance.append(alert)
        if !referenceMode {
            overdueQueue.insert(OverdueItem(deadline: alert.deadline, crn: crn.key, contactId: e.contactId,
                                            version: e.contactVersion, caseIndex: UInt32(ci)))
        }
    }

    /// Step 3: a contact that is no longer a failure resolves the R1 alerts it triggered.
    func resolveReclassified(caseIndex ci: Int, contactId: UInt64, event e: ContactEvent, out: inout Outbox) {
        let outcome: String? = e.hasOutcome ? reader.string(e.outcomeCode) : nil
        resolveNonCompliance(caseIndex: ci, resolution: .reclassified, by: contactId, at: state.watermark,
                             reason: { b in
                                 JSONOut.raw(&b, "Contact ")
                                 JSONOut.uint(&b, contactId)
                                 JSONOut.raw(&b, " is no longer recorded as a failure (")
                                 if let outcome {
                                     JSONOut.raw(&b, "outcome now ")
                                     JSONOut.text(&b, outcome)
                                 } else {
                                     JSONOut.raw(&b, "no outcome recorded now")
                                 }
                                 b.append(UInt8(ascii: ")"))
                             },
                             detail: { JSONOut.raw(&$0, "reclassified") }, out: &out) { $0.triggerContactId == contactId }
    }

    /// Step 5: an action resolves the open R1 alerts of the case that it answers, oldest raised first.
    func resolveByAction(caseIndex ci: Int, event e: ContactEvent, effectiveTime: Millis, out: inout Outbox) {
        let cls = ActionCodes.actionClass(e.actionId)
        let answers: (Rule) -> Bool
        switch cls {
        case .warning: answers = { $0 == .warningDue || $0 == .licenceReview }
        case .breach, .noFurtherAction: answers = { $0.isNonCompliance }
        case .withdrawal, .other: return
        }
        let code = reader.string(e.actionCode)
        resolveNonCompliance(caseIndex: ci, resolution: .enforcementAction, by: e.contactId, at: effectiveTime,
                             reason: { b in
                                 JSONOut.raw(&b, "Enforcement action ")
                                 JSONOut.text(&b, code)
                                 JSONOut.raw(&b, " (")
                                 JSONOut.text(&b, cls.words)
                                 JSONOut.raw(&b, ") recorded on ")
                                 self.dateText(&b, effectiveTime)
                                 JSONOut.raw(&b, " on contact ")
                                 JSONOut.uint(&b, e.contactId)
                             },
                             detail: { b in
                                 JSONOut.raw(&b, "enforcement action ")
                                 JSONOut.text(&b, code)
                             }, out: &out) {
            answers($0.rule) && effectiveTime >= $0.triggerStart
        }
    }

    func resolveNonCompliance(caseIndex ci: Int, resolution: Resolution, by contactId: UInt64, at t: Millis,
                              reason: Reason, detail: Reason, out: inout Outbox, where matches: (OpenAlert) -> Bool) {
        let crn = state.cases[ci].crn
        var k = 0
        while k < state.cases[ci].openNonCompliance.count {
            let a = state.cases[ci].openNonCompliance[k]
            guard matches(a) else { k += 1; continue }
            state.cases[ci].openNonCompliance.remove(at: k)
            resolve(a, crn: crn, occurredAt: t, resolution: resolution, by: contactId, reason: reason, out: &out)
            if a.overdueRaised {
                let id = AlertID(rule: .enforcementOverdue, subjectType: "CRN", subjectValue: crn.description,
                                 triggerContactId: a.triggerContactId, triggerContactVersion: a.triggerContactVersion)
                emit(raised: false, rule: .enforcementOverdue, severity: .high, id: id, subject: .crn(crn), occurredAt: t,
                     reason: { b in
                         JSONOut.raw(&b, "No longer overdue: the ")
                         JSONOut.text(&b, a.rule.shortName)
                         JSONOut.raw(&b, " alert on contact ")
                         JSONOut.uint(&b, a.triggerContactId)
                         JSONOut.raw(&b, " was resolved (")
                         detail(&b)
                         b.append(UInt8(ascii: ")"))
                     },
                     triggerContactId: a.triggerContactId, triggerContactVersion: a.triggerContactVersion, out: &out) { b in
                    overdueEvidence(&b, a)
                    resolutionFields(&b, resolution, contactId)
                }
            }
        }
    }

    // MARK: - R6 enforcement overdue

    func overdueEvidence(_ b: inout [UInt8], _ a: OpenAlert) {
        JSONOut.raw(&b, ",\"overdueAlertId\":\"")
        a.id.append(to: &b)
        JSONOut.raw(&b, "\",\"overdueRule\":\"")
        b.append(contentsOf: a.rule.name.utf8)
        JSONOut.raw(&b, "\",\"deadline\":")
        JSONOut.date(&b, LocalDate(days: a.deadline))
    }

    /// Step 6: every open R1 alert whose deadline is before the date of W gets its overdue alert (R6); then, when R7
    /// is enabled, every armed R7 timer whose deadline is before the date of W fires.
    func raiseOverdue(out: inout Outbox) {
        guard state.watermark != .min else { return }
        if referenceMode {
            raiseOverdueByScan(out: &out)
            raiseOutcomeOverdueByScan(out: &out)
            return
        }
        let r6 = overdueQueue.min, r7 = outcomeQueue.min
        if r6 == nil && r7 == nil { return }
        let today = zone.date(of: state.watermark).days
        while let top = overdueQueue.min, top.deadline < today {
            overdueQueue.removeMin()
            raiseOverdue(top, out: &out)
        }
        while let top = outcomeQueue.min, top.deadline < today {
            outcomeQueue.removeMin()
            fireOutcomeTimer(top, out: &out)
        }
    }

    /// `raiseOverdue` as the contract reads, without the heap (reference mode).
    func raiseOverdueByScan(out: inout Outbox) {
        let today = zone.date(of: state.watermark).days
        var due: [OverdueItem] = []
        for (ci, c) in state.cases.enumerated() {
            for a in c.openNonCompliance where !a.overdueRaised && a.deadline < today {
                due.append(OverdueItem(deadline: a.deadline, crn: c.crn.key, contactId: a.triggerContactId,
                                       version: a.triggerContactVersion, caseIndex: UInt32(ci)))
            }
        }
        for item in due.sorted() { raiseOverdue(item, out: &out) }
    }

    func raiseOverdue(_ top: OverdueItem, out: inout Outbox) {
        let ci = Int(top.caseIndex)
        guard let k = state.cases[ci].openNonCompliance.firstIndex(where: {
            $0.triggerContactId == top.contactId && $0.triggerContactVersion == top.version && !$0.overdueRaised
        }) else { return }
        state.cases[ci].openNonCompliance[k].overdueRaised = true
        changes.cases.insert(top.caseIndex)
        let a = state.cases[ci].openNonCompliance[k]
        let crn = state.cases[ci].crn
        let id = AlertID(rule: .enforcementOverdue, subjectType: "CRN", subjectValue: crn.description,
                         triggerContactId: a.triggerContactId, triggerContactVersion: a.triggerContactVersion)
        let days = settings.enforcementDeadlineBusinessDays
        emit(raised: true, rule: .enforcementOverdue, severity: .high, id: id, subject: .crn(crn), occurredAt: state.watermark,
             reason: { b in
                 JSONOut.raw(&b, "No enforcement action recorded for the ")
                 JSONOut.text(&b, a.rule.shortName)
                 JSONOut.raw(&b, " alert on contact ")
                 JSONOut.uint(&b, a.triggerContactId)
                 JSONOut.raw(&b, " by its deadline ")
                 JSONOut.dateText(&b, LocalDate(days: a.deadline))
                 JSONOut.raw(&b, " (")
                 JSONOut.int(&b, days)
                 JSONOut.raw(&b, " business days after the failure)")
             },
             triggerContactId: a.triggerContactId, triggerContactVersion: a.triggerContactVersion, out: &out) { b in
            overdueEvidence(&b, a)
        }
    }

    // MARK: - R7 outcome overdue

    /// A version awaits an outcome when it has none, or one that is neither complied nor enforceable (`AFTA`).
    @inline(__always) func awaitsOutcome(_ e: ContactEvent) -> Bool { !e.hasOutcome || (!e.complied && !e.enforceable) }

    /// The Nth business day after the date of `start` [N = rules.outcomeOverdue.businessDays].
    func outcomeDeadline(_ start: Millis) -> Int32 {
        let date = zone.date(of: start).days
        let slot = Int(date & 15)
        if outcomeMemo.dates[slot] == date { return outcomeMemo.deadlines[slot] }
        let deadline = business.businessDay(settings.outcomeOverdueBusinessDays, after: LocalDate(days: date)).days
        outcomeMemo.dates[slot] = date
        outcomeMemo.deadlines[slot] = deadline
        return deadline
    }

    /// Arms the R7 deadline of a version that awaits an outcome (only while R7 is enabled; the settings in force now).
    func armOutcomeTimer(caseIndex ci: Int, event e: ContactEvent) {
        let deadline = outcomeDeadline(e.contactStart)
        state.outcomeTimers[e.contactId] = OutcomeTimer(version: e.contactVersion, deadline: deadline,
                                                        pendingCode: e.hasOutcome ? reader.string(e.outcomeCode) : nil)
        changes.outcomeTimers.insert(e.contactId)
        if !referenceMode {
            outcomeQueue.insert(OutcomeItem(deadline: deadline, crn: state.cases[ci].crn.key, contactId: e.contactId,
                                            version: e.contactVersion, caseIndex: UInt32(ci)))
        }
    }

    /// Step 3, after the R1 reclassifications: a newer version of a contact with an open R7 alert resolves it when it
    /// no longer awaits an outcome (OUTCOME_RECORDED) or when its own deadline is not before the date of W
    /// (RESCHEDULED); otherwise the alert stays open. Runs whether R7 is enabled or not.
    func resolveOutcomeOverdue(caseIndex ci: Int, event e: ContactEvent, out: inout Outbox) {
        guard let k = state.cases[ci].openOutcomeOverdue.firstIndex(where: { $0.triggerContactId == e.contactId }) else { return }
        let awaiting = awaitsOutcome(e)
        if awaiting && outcomeDeadline(e.contactStart) < zone.date(of: state.watermark).days { return }
        let a = state.cases[ci].openOutcomeOverdue.remove(at: k)
        let contactId = e.contactId
        let code = e.hasOutcome ? reader.string(e.outcomeCode) : ""
        let start = e.contactStart
        resolve(a, crn: state.cases[ci].crn, occurredAt: state.watermark,
                resolution: awaiting ? .rescheduled : .outcomeRecorded, by: contactId,
                reason: { b in
                    if awaiting {
                        JSONOut.raw(&b, "Contact ")
                        JSONOut.uint(&b, contactId)
                        JSONOut.raw(&b, " rescheduled to ")
                        self.dateText(&b, start)
                    } else {
                        JSONOut.raw(&b, "Outcome ")
                        JSONOut.text(&b, code)
                        JSONOut.raw(&b, " recorded for contact ")
                        JSONOut.uint(&b, contactId)
                    }
                }, out: &out)
    }

    /// `raiseOverdue`'s R7 part as the contract reads, without the heap (reference mode).
    func raiseOutcomeOverdueByScan(out: inout Outbox) {
        guard settings.outcomeOverdueEnabled else { return }
        let today = zone.date(of: state.watermark).days
        var due: [OutcomeItem] = []
        for (id, timer) in state.outcomeTimers where timer.deadline < today {
            guard let rec = state.contacts[id] else { continue }
            due.append(OutcomeItem(deadline: timer.deadline, crn: state.cases[Int(rec.caseIndex)].crn.key, contactId: id,
                                   version: timer.version, caseIndex: rec.caseIndex))
        }
        for item in due.sorted() { fireOutcomeTimer(item, out: &out) }
    }

    /// Step 6, R7: a timer whose deadline has passed raises `outcome-overdue` for its contact, unless the contact has
    /// moved on to another version (a stale heap entry), was forgotten (its timer went with it) or already has an
    /// open R7 alert (it stays open and is not raised again). A timer fires once.
    func fireOutcomeTimer(_ item: OutcomeItem, out: inout Outbox) {
        guard let timer = state.outcomeTimers[item.contactId], timer.version == item.version,
              timer.deadline == item.deadline else { return }
        state.outcomeTimers.removeValue(forKey: item.contactId)
        changes.outcomeTimers.insert(item.contactId)
        guard let rec = state.contacts[item.contactId] else { return }
        let ci = Int(rec.caseIndex)
        guard !state.cases[ci].openOutcomeOverdue.contains(where: { $0.triggerContactId == item.contactId }) else { return }
        let crn = state.cases[ci].crn
        let categories = state.cases[ci].categories
        let severity: Severity = categories.isEmpty ? .medium : .high
        let id = AlertID(rule: .outcomeOverdue, subjectType: "CRN", subjectValue: crn.description,
                         triggerContactId: item.contactId, triggerContactVersion: timer.version)
        let start = rec.contactStart
        let deadline = LocalDate(days: timer.deadline)
        let contactId = item.contactId
        var evidence: [UInt8] = []
        JSONOut.raw(&evidence, ",\"contactStart\":")
        JSONOut.time(&evidence, start)
        JSONOut.raw(&evidence, ",\"outcomeCode\":")
        if let code = timer.pendingCode { JSONOut.string(&evidence, code) } else { JSONOut.raw(&evidence, "null") }
        JSONOut.raw(&evidence, ",\"deadline\":")
        JSONOut.date(&evidence, deadline)
        JSONOut.raw(&evidence, ",\"categories\":")
        JSONOut.categories(&evidence, categories)
        emit(raised: true, rule: .outcomeOverdue, severity: severity, id: id, subject: .crn(crn), occurredAt: state.watermark,
             reason: { b in
                 JSONOut.raw(&b, "No outcome recorded for contact ")
                 JSONOut.uint(&b, contactId)
                 JSONOut.raw(&b, " on ")
                 self.dateText(&b, start)
                 if let code = timer.pendingCode {
                     JSONOut.raw(&b, " (decision pending: ")
                     JSONOut.text(&b, code)
                     b.append(UInt8(ascii: ")"))
                 }
                 JSONOut.raw(&b, "; due by ")
                 JSONOut.dateText(&b, deadline)
             },
             triggerContactId: contactId, triggerContactVersion: timer.version, out: &out) { $0.append(contentsOf: evidence) }
        state.cases[ci].openOutcomeOverdue.append(
            OpenAlert(id: id, rule: .outcomeOverdue, severity: severity, triggerContactId: contactId,
                      triggerContactVersion: timer.version, triggerStart: start, evidence: evidence,
                      deadline: timer.deadline, overdueRaised: false))
        changes.cases.insert(UInt32(ci))
    }

    // MARK: - R2 telephone-only

    func checkTelephoneOnly(caseIndex ci: Int, event e: ContactEvent, out: inout Outbox) {
        guard state.cases[ci].openTelephoneOnly == nil else { return }
        let last = state.cases[ci].lastInPersonAt
        let hasInPerson = last != .min
        let reference = hasInPerson ? last : state.cases[ci].firstContactAt
        let t = e.contactStart
        let categories = state.cases[ci].categories
        let priority = !categories.isEmpty
        let limit = priority ? settings.telephoneOnlyPriorityLimitDays : settings.telephoneOnlyLimitDays
        guard t - reference > Millis(limit) * millisPerDay else { return }
        let days = Int((t - reference) / millisPerDay)
        var remotes = 0
        for r in state.cases[ci].remotes where (!hasInPerson || r.start > last) && r.start <= t { remotes += 1 }
        let alert = raise(rule: .telephoneOnly, severity: priority ? .high : .medium, subject: .crn(state.cases[ci].crn), occurredAt: t,
                          reason: { b in
                              JSONOut.raw(&b, "No face-to-face contact for ")
                              JSONOut.int(&b, days)
                              JSONOut.raw(&b, " days (limit ")
                              JSONOut.int(&b, limit)
                              if priority {
                                  JSONOut.raw(&b, " for a priority case: ")
                                  JSONOut.text(&b, categories.text)
                              }
                              JSONOut.raw(&b, "); ")
                              if remotes == 1 {
                                  JSONOut.raw(&b, "1 remote contact")
                              } else {
                                  JSONOut.int(&b, remotes)
                                  JSONOut.raw(&b, " remote contacts")
                              }
                              if hasInPerson {
                                  JSONOut.raw(&b, " since the last in-person contact")
                              } else {
                                  JSONOut.raw(&b, " since supervision started")
                              }
                          },
                          event: e, out: &out) { b in
            JSONOut.raw(&b, ",\"lastInPersonAt\":")
            if hasInPerson { JSONOut.time(&b, last) } else { JSONOut.raw(&b, "null") }
            JSONOut.raw(&b, ",\"daysWithoutInPerson\":")
            JSONOut.int(&b, days)
            JSONOut.raw(&b, ",\"limitDays\":")
            JSONOut.int(&b, limit)
            JSONOut.raw(&b, ",\"remoteContactsSinceInPerson\":")
            JSONOut.int(&b, remotes)
            JSONOut.raw(&b, ",\"categories\":")
            JSONOut.categories(&b, categories)
        }
        state.cases[ci].openTelephoneOnly = alert
    }

    func resolveTelephoneOnly(caseIndex ci: Int, event e: ContactEvent, out: inout Outbox) {
        guard let a = state.cases[ci].openTelephoneOnly, e.contactStart >= a.triggerStart else { return }
        state.cases[ci].openTelephoneOnly = nil
        resolve(a, crn: state.cases[ci].crn, occurredAt: e.contactStart, resolution: .inPersonContact, by: e.contactId,
                reason: { b in
                    JSONOut.raw(&b, "Seen in person: ")
                    JSONOut.text(&b, e.mode.words)
                    JSONOut.raw(&b, " contact ")
                    JSONOut.uint(&b, e.contactId)
                    JSONOut.raw(&b, " on ")
                    self.dateText(&b, e.contactStart)
                }, out: &out)
    }

    // MARK: - R3 remote contact on an excluded case

    func raiseRemoteContact(caseIndex ci: Int, event e: ContactEvent, out: inout Outbox) {
        let categories = state.cases[ci].categories
        let mode = e.mode
        let words = mode.words
        _ = raise(rule: .remoteContactExcludedCase, severity: .high, subject: .crn(state.cases[ci].crn), occurredAt: e.contactStart,
                  reason: { b in
                      JSONOut.text(&b, words.prefix(1).uppercased() + words.dropFirst())
                      JSONOut.raw(&b, " contact on a case that must be seen face to face (")
                      JSONOut.text(&b, categories.text)
                      b.append(UInt8(ascii: ")"))
                  },
                  event: e, out: &out) { b in
            JSONOut.raw(&b, ",\"contactMode\":\"")
            b.append(contentsOf: mode.code.utf8)
            JSONOut.raw(&b, "\",\"categories\":")
            JSONOut.categories(&b, categories)
        }
    }

    // MARK: - R4 supervision without privacy

    /// Returns whether the alert was raised.
    func checkPrivacy(caseIndex ci: Int, event e: ContactEvent, out: inout Outbox) -> Bool {
        switch e.mode {
        case .office, .otherInPerson, .doorstep: break
        default: return false
        }
        switch e.setting {
        case .openBooth, .sharedPublicSpace, .doorstep: break
        default: return false
        }
        let categories = state.cases[ci].categories
        let severity: Severity
        if e.sensitive || !categories.isDisjoint(with: [.childSafeguarding, .domesticAbuse]) {
            severity = .high
        } else if !categories.isDisjoint(with: [.veryHighRosh, .highRosh, .mappa23]) {
            severity = .medium
        } else {
            severity = .low
        }
        guard severity >= settings.noPrivacyMinimumSeverity else { return false }
        let mode = e.mode, setting = e.setting, sensitive = e.sensitive
        _ = raise(rule: .noPrivacy, severity: severity, subject: .crn(state.cases[ci].crn), occurredAt: e.contactStart,
                  reason: { b in
                      JSONOut.raw(&b, "Supervision contact held without privacy (")
                      JSONOut.text(&b, setting.words)
                      JSONOut.raw(&b, ", ")
                      JSONOut.text(&b, mode.words)
                      JSONOut.raw(&b, "); ")
                      if sensitive { JSONOut.raw(&b, "sensitive contact") }
                      if !categories.isEmpty {
                          if sensitive { JSONOut.raw(&b, "; ") }
                          JSONOut.text(&b, categories.text)
                      }
                      if !sensitive && categories.isEmpty { JSONOut.raw(&b, "no priority category") }
                  },
                  event: e, out: &out) { b in
            JSONOut.raw(&b, ",\"contactMode\":\"")
            b.append(contentsOf: mode.code.utf8)
            JSONOut.raw(&b, "\",\"interviewSetting\":\"")
            b.append(contentsOf: setting.code.utf8)
            JSONOut.raw(&b, "\",\"sensitive\":")
            if sensitive { JSONOut.raw(&b, "true") } else { JSONOut.raw(&b, "false") }
            JSONOut.raw(&b, ",\"categories\":")
            JSONOut.categories(&b, categories)
        }
        return true
    }

    // MARK: - R5 area compliance rate

    /// A rate as the examples write it: one decimal ("50.0%", "77.8%").
    func percentText(_ v: Double) -> String {
        let tenths = Int((v * 1000).rounded())
        return "\(tenths / 10).\(tenths % 10)%"
    }

    /// A configured threshold: whole percentages without decimals ("75%"), others with one ("72.5%").
    func thresholdText(_ v: Double) -> String {
        let tenths = Int((v * 1000).rounded())
        return tenths % 10 == 0 ? "\(tenths / 10)%" : "\(tenths / 10).\(tenths % 10)%"
    }

    func evaluateRate(pdu index: Int32, event e: ContactEvent, out: inout Outbox) {
        let end = zone.date(of: state.watermark)
        let start = end.adding(days: -(settings.complianceRateWindowDays - 1))
        let pdu = state.pdus[Int(index)]
        let (compliant, nonCompliant) = pdu.totals(from: start.days, through: end.days)
        let n = compliant + nonCompliant
        guard n >= settings.complianceRateMinimumSample else { return }
        let rate = Double(compliant) / Double(n)
        let rounded = (rate * 10000).rounded(.toNearestOrEven) / 10000
        let evidence: (inout [UInt8]) -> Void = { b in
            JSONOut.raw(&b, ",\"pduCode\":")
            JSONOut.string(&b, pdu.code)
            JSONOut.raw(&b, ",\"rate\":")
            JSONOut.double(&b, rounded)
            JSONOut.raw(&b, ",\"compliant\":")
            JSONOut.int(&b, compliant)
            JSONOut.raw(&b, ",\"nonCompliant\":")
            JSONOut.int(&b, nonCompliant)
            JSONOut.raw(&b, ",\"windowStart\":")
            JSONOut.date(&b, start)
            JSONOut.raw(&b, ",\"windowEnd\":")
            JSONOut.date(&b, end)
        }
        let days = settings.complianceRateWindowDays
        // "Compliance in N07SUF <verb> 50.0% over the 90 days to 2026-01-06 (2 of 4 contacts complied"
        let describe: (inout [UInt8], StaticString) -> Void = { b, verb in
            JSONOut.raw(&b, "Compliance in ")
            JSONOut.text(&b, pdu.code)
            JSONOut.raw(&b, verb)
            JSONOut.text(&b, self.percentText(rate))
            JSONOut.raw(&b, " over the ")
            JSONOut.int(&b, days)
            JSONOut.raw(&b, " days to ")
            JSONOut.dateText(&b, end)
            JSONOut.raw(&b, " (")
            JSONOut.int(&b, compliant)
            JSONOut.raw(&b, " of ")
            JSONOut.int(&b, n)
            JSONOut.raw(&b, " contacts complied")
        }
        if let open = pdu.open {
            guard rate >= settings.complianceRateThreshold + settings.complianceRateHysteresis else { return }
            state.pdus[Int(index)].open = nil
            changes.pdus.insert(index)
            emit(raised: false, rule: .complianceRate, severity: open.severity, id: open.id, subject: .pdu(pdu.code),
                 occurredAt: e.contactStart,
                 reason: { b in
                     describe(&b, " recovered to ")
                     JSONOut.raw(&b, ")")
                 },
                 triggerContactId: open.triggerContactId, triggerContactVersion: open.triggerContactVersion, out: &out) { b in
                evidence(&b)
                resolutionFields(&b, .rateRecovered, e.contactId)
            }
        } else if rate < settings.complianceRateThreshold {
            let alert = raise(rule: .complianceRate, severity: .medium, subject: .pdu(pdu.code), occurredAt: e.contactStart,
                              reason: { b in
                                  describe(&b, " is ")
                                  JSONOut.raw(&b, "), below ")
                                  JSONOut.text(&b, self.thresholdText(self.settings.complianceRateThreshold))
                              },
                              event: e, out: &out, evidence: evidence)
            state.pdus[Int(index)].open = alert
            changes.pdus.insert(index)
        }
    }
}
