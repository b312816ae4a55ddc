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

extension AlertID {
    init(rule: Rule, subject: Subject, triggerContactId: UInt64, triggerContactVersion: UInt64) {
        switch subject {
        case .crn(let crn):
            self.init(rule: rule, crn: crn, triggerContactId: triggerContactId, triggerContactVersion: triggerContactVersion)
        case .pdu(let code):
            self.init(rule: rule, subjectType: "PDU", subjectValue: code, triggerContactId: triggerContactId,
                      triggerContactVersion: triggerContactVersion)
        }
    }
}

/// Writes an alert's reason text, escaped, into its JSON string (the quotes are the caller's).
typealias Reason = (inout JSONWriter) -> Void

extension Engine {
    // MARK: - Alert messages

    /// Writes one alert message (raise or resolution) with the next `alertSequence`, in `writer`, then into `out`.
    /// Returns where the rule's evidence members are in `writer` (valid until the next message).
    @discardableResult
    func emit(raised: Bool, rule: Rule, severity: Severity, id: AlertID, subject: Subject, occurredAt: Millis,
              reason: Reason, triggerContactId: UInt64, triggerContactVersion: UInt64,
              out: inout Outbox, evidence: (inout JSONWriter) -> Void) -> Range<Int> {
        state.alertSequence += 1
        let sequence = state.alertSequence
        if raised { counters.raisedByRule[Int(rule.rawValue)] += 1 } else { counters.resolvedByRule[Int(rule.rawValue)] += 1 }
        let crn: CRN? = if case .crn(let c) = subject { c } else { nil }
        writer.reset()
        if raised { writer.raw("alert.raised.") } else { writer.raw("alert.resolved.") }
        writer.raw(rule.staticName)
        let topicCount = writer.count
        if raised {
            writer.raw("{\"eventType\":\"probation-case.supervision-alert.raised\",\"version\":1,\"occurredAt\":")
        } else {
            writer.raw("{\"eventType\":\"probation-case.supervision-alert.resolved\",\"version\":1,\"occurredAt\":")
        }
        writer.time(occurredAt)
        writer.raw(",\"detectedAt\":")
        writer.time(now)
        writer.raw(",\"alertId\":\"")
        writer.alertID(id)
        writer.raw("\",\"alertSequence\":")
        writer.uint(sequence)
        writer.raw(",\"rule\":\"")
        writer.raw(rule.staticName)
        writer.raw("\",\"severity\":\"")
        writer.raw(severity.staticCode)
        switch subject {
        case .crn(let crn):
            writer.raw("\",\"subject\":{\"type\":\"CRN\",\"value\":\"")
            writer.crn(crn)
            writer.raw("\"},\"personReference\":{\"identifiers\":[{\"type\":\"CRN\",\"value\":\"")
            writer.crn(crn)
            writer.raw("\"}]}")
        case .pdu(let code):
            writer.raw("\",\"subject\":{\"type\":\"PDU\",\"value\":")
            writer.string(code)
            writer.byte(UInt8(ascii: "}"))
        }
        writer.raw(",\"reason\":\"")
        reason(&writer)
        writer.byte(UInt8(ascii: "\""))
        writer.raw(",\"evidence\":{\"triggerContactId\":")
        writer.uint(triggerContactId)
        writer.raw(",\"triggerContactVersion\":")
        writer.uint(triggerContactVersion)
        let e0 = writer.count
        evidence(&writer)
        let e1 = writer.count
        writer.raw("}}")
        writer.bytes(0..<writer.count) { m in
            out.append(kind: raised ? .alertRaised : .alertResolved, alertSequence: sequence, alertId: id, crn: crn,
                       contactId: triggerContactId, message: m, topicCount: topicCount)
        }
        return e0..<e1
    }

    /// Raises an alert whose evidence is kept for its resolution; returns the open alert.
    func raise(rule: Rule, severity: Severity, subject: Subject, occurredAt: Millis, reason: Reason,
               event e: ContactEvent, out: inout Outbox, evidence: (inout JSONWriter) -> Void) -> OpenAlert {
        let id = AlertID(rule: rule, subject: subject, triggerContactId: e.contactId, triggerContactVersion: e.contactVersion)
        let range = emit(raised: true, rule: rule, severity: severity, id: id, subject: subject, occurredAt: occurredAt,
                         reason: reason, triggerContactId: e.contactId, triggerContactVersion: e.contactVersion, out: &out,
                         evidence: evidence)
        return OpenAlert(id: id, rule: rule, severity: severity, triggerContactId: e.contactId,
                         triggerContactVersion: e.contactVersion, triggerStart: e.contactStart, evidence: writer.array(range),
                         deadline: 0, overdueRaised: false)
    }

    /// Raises a point alert (R3, R4): nothing of it is kept.
    func raisePoint(rule: Rule, severity: Severity, subject: Subject, occurredAt: Millis, reason: Reason,
                    event e: ContactEvent, out: inout Outbox, evidence: (inout JSONWriter) -> Void) {
        let id = AlertID(rule: rule, subject: subject, triggerContactId: e.contactId, triggerContactVersion: e.contactVersion)
        emit(raised: true, rule: rule, severity: severity, id: id, subject: subject, occurredAt: occurredAt,
             reason: reason, triggerContactId: e.contactId, triggerContactVersion: e.contactVersion, out: &out,
             evidence: evidence)
    }

    /// Publishes the resolution of an open case alert, repeating its evidence.
    func resolve(_ a: OpenAlert, crn: CRN, occurredAt: Millis, resolution: Resolution, by contactId: UInt64,
                 reason: Reason, out: inout Outbox) {
        emit(raised: false, rule: a.rule, severity: a.severity, id: a.id, subject: .crn(crn), occurredAt: occurredAt,
             reason: reason, triggerContactId: a.triggerContactId, triggerContactVersion: a.triggerContactVersion, out: &out) { b in
            b.raw(a.evidence)
            self.resolutionFields(&b, resolution, contactId)
        }
    }

    func resolutionFields(_ b: inout JSONWriter, _ resolution: Resolution, _ contactId: UInt64) {
        b.raw(",\"resolution\":\"")
        b.raw(resolution.code)
        b.raw("\",\"resolvedByContactId\":")
        b.uint(contactId)
    }

    /// Writes the date of `t` (YYYY-MM-DD) into a reason.
    func dateText(_ b: inout JSONWriter, _ t: Millis) { b.dateText(localDate(t)) }

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
        for f in state.cases[ci].failures where f.start >= s && f.start <= t && localDate(f.start) >= windowStart {
            failures += 1
        }
        var lastWarning = Millis.min
        for w in state.cases[ci].warnings where w.start >= s && w.start <= t && w.start > lastWarning && localDate(w.start) >= windowStart {
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
        func failuresInWindow(_ b: inout JSONWriter) {
            if failures == 1 { b.raw("1 failure") } else { b.int(failures); b.raw(" failures") }
            b.raw(" in ")
            b.int(months)
            b.raw(months == 1 ? " month" : " months")
        }
        let reason: Reason = { b in
            b.raw("Failure to comply (")
            b.text(code)
            if rule == .licenceReview { b.raw(") on licence, contact ") } else { b.raw(") on contact ") }
            b.uint(e.contactId)
            b.raw(" on ")
            b.dateText(d)
            switch rule {
            case .licenceReview:
                b.raw(": review for recall or further action (")
                failuresInWindow(&b)
            case .breachDue:
                b.raw(": breach action is due (")
                if failures >= 2 { failuresInWindow(&b) }
                if lastWarning != .min {
                    if failures >= 2 { b.raw(" and ") }
                    b.raw("a warning was given on ")
                    self.dateText(&b, lastWarning)
                }
            default:
                b.raw(": a warning is due (no other failure and no warning in ")
                b.int(months)
                b.raw(months == 1 ? " month" : " months")
            }
            if s != .min {
                b.raw(" since the breach of ")
                self.dateText(&b, s)
            }
            // A priority case shows in the severity and the evidence's categories, not in the sentence (example 09).
            b.byte(UInt8(ascii: ")"))
        }
        var alert = raise(rule: rule, severity: severity, subject: .crn(crn), occurredAt: t, reason: reason, event: e, out: &out) { b in
            b.raw(",\"outcomeCode\":")
            b.string(code)
            b.raw(",\"sentenceType\":\"")
            b.ascii(sentence.code)
            b.raw("\",\"failuresInWindow\":")
            b.int(failures)
            b.raw(",\"lastWarningAt\":")
            if lastWarning == .min { b.raw("null") } else { b.time(lastWarning) }
            b.raw(",\"categories\":")
            b.categories(categories)
        }
        let deadline = enforcementDeadline(d)
        alert.deadline = deadline
        // Moved into the case (a copy retained its evidence, and the local's end released it).
        state.cases[ci].openNonCompliance.append(consume alert)
        if !referenceMode {
            overdueQueue.insert(OverdueItem(deadline: deadline, crn: crn.key, contactId: e.contactId,
                                            version: e.contactVersion, caseIndex: UInt32(ci)))
            quietUntil = .min
        }
    }

    /// Step 3: a contact that is no longer a failure resolves the R1 alerts it triggered.
    func resolveReclassified(caseIndex ci: Int, contactId: UInt64, event e: ContactEvent, out: inout Outbox) {
        let outcome: String? = e.hasOutcome ? reader.string(e.outcomeCode) : nil
        resolveNonCompliance(caseIndex: ci, resolution: .reclassified, by: contactId, at: state.watermark,
                             reason: { b in
                                 b.raw("Contact ")
                                 b.uint(contactId)
                                 b.raw(" is no longer recorded as a failure (")
                                 if let outcome {
                                     b.raw("outcome now ")
                                     b.text(outcome)
                                 } else {
                                     b.raw("no outcome recorded now")
                                 }
                                 b.byte(UInt8(ascii: ")"))
                             },
                             detail: { $0.raw("reclassified") }, out: &out) { $0.triggerContactId == contactId }
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
                                 b.raw("Enforcement action ")
                                 b.text(code)
                                 b.raw(" (")
                                 b.text(cls.words)
                                 b.raw(") recorded on ")
                                 self.dateText(&b, effectiveTime)
                                 b.raw(" on contact ")
                                 b.uint(e.contactId)
                             },
                             detail: { b in
                                 b.raw("enforcement action ")
                                 b.text(code)
                             }, out: &out) {
            answers($0.rule) && effectiveTime >= $0.triggerStart
        }
    }

    /// What `resolveNonCompliance`'s test of an open alert may read (plain values: see there).
    struct AlertKey {
        var rule: Rule
        var triggerContactId: UInt64
        var triggerStart: Millis
    }

    func resolveNonCompliance(caseIndex ci: Int, resolution: Resolution, by contactId: UInt64, at t: Millis,
                              reason: Reason, detail: Reason, out: inout Outbox, where matches: (AlertKey) -> Bool) {
        let crn = state.cases[ci].crn
        var k = 0
        while k < state.cases[ci].openNonCompliance.count {
            // Each alert is tested by three of its fields, read where it lies, and only a match is moved out
            // (`remove(at:)` hands it over): a copy of every alert tested (also when passed by pointer to a closure
            // taking an `OpenAlert`) retained and released its evidence, a cache miss of its own in a large caseload.
            let key = state.cases[ci].openNonCompliance.withUnsafeBufferPointer {
                AlertKey(rule: $0[k].rule, triggerContactId: $0[k].triggerContactId, triggerStart: $0[k].triggerStart)
            }
            guard matches(key) else { k += 1; continue }
            let a = state.cases[ci].openNonCompliance.remove(at: k)
            resolve(a, crn: crn, occurredAt: t, resolution: resolution, by: contactId, reason: reason, out: &out)
            if a.overdueRaised {
                let id: AlertID
                // The cached id only when it is this case's: a contact forgotten on this case with its R6 open that came
                // back under another case and raised an R6 there replaced the entry, and this case's resolution went
                // out under the other case's alertId (an assertion in debug builds; the store's hunter, session 45).
                if let known = overdueIds[a.triggerContactId], known.version == a.triggerContactVersion,
                   known.caseIndex == UInt32(ci) {
                    overdueIds.removeValue(forKey: a.triggerContactId)
                    id = known.id
                    assert(id == AlertID(rule: .enforcementOverdue, subject: .crn(crn), triggerContactId: a.triggerContactId,
                                         triggerContactVersion: a.triggerContactVersion))
                } else {
                    id = AlertID(rule: .enforcementOverdue, subject: .crn(crn),
                                 triggerContactId: a.triggerContactId, triggerContactVersion: a.triggerContactVersion)
                }
                emit(raised: false, rule: .enforcementOverdue, severity: .high, id: id, subject: .crn(crn), occurredAt: t,
                     reason: { b in
                         b.raw("No longer overdue: the ")
                         b.text(a.rule.shortName)
                         b.raw(" alert on contact ")
                         b.uint(a.triggerContactId)
                         b.raw(" was resolved (")
                         detail(&b)
                         b.byte(UInt8(ascii: ")"))
                     },
                     triggerContactId: a.triggerContactId, triggerContactVersion: a.triggerContactVersion, out: &out) { b in
                    overdueEvidence(&b, id: a.id, rule: a.rule, deadline: a.deadline)
                    resolutionFields(&b, resolution, contactId)
                }
            }
        }
    }

    // MARK: - R6 enforcement overdue

    /// An R6 alert's evidence after the trigger fields: the R1 alert's id, its rule, its deadline.
    func overdueEvidence(_ b: inout JSONWriter, id: AlertID, rule: Rule, deadline: Int32) {
        b.raw(",\"overdueAlertId\":\"")
        b.alertID(id)
        b.raw("\",\"overdueRule\":\"")
        b.raw(rule.staticName)
        b.raw("\",\"deadline\":")
        b.date(LocalDate(days: deadline))
    }

    /// Step 6: every open R1 alert whose deadline is before the date of W gets its overdue alert (R6); then, when R7
    /// is enabled, every armed R7 timer whose deadline is before the date of W fires.
    @inline(__always) func raiseOverdue(out: inout Outbox) {
        // Nothing is due before `quietUntil` (the queues have not changed since it was set): one comparison an event,
        // inline. (`quietUntil` stays `.min` in reference mode and while the watermark is unset.)
        if state.watermark < quietUntil { return }
        raiseOverdueNow(out: &out)
    }

    /// `raiseOverdue` past its `quietUntil` check.
    @inline(never) func raiseOverdueNow(out: inout Outbox) {
        guard state.watermark != .min else { return }
        if referenceMode {
            raiseOverdueByScan(out: &out)
            raiseOutcomeOverdueByScan(out: &out)
            return
        }
        let first = min(overdueQueue.min?.deadline ?? .max, outcomeQueue.min?.deadline ?? .max)
        if first == .max {
            quietUntil = .max
            return
        }
        let today = localDate(state.watermark, memo: &watermarkDay).days
        if first >= today {
            quietUntil = quietBound(first)
            return
        }
        while let top = overdueQueue.min, top.deadline < today {
            overdueQueue.removeMin()
            raiseOverdue(top, out: &out)
        }
        while let top = outcomeQueue.min, top.deadline < today {
            outcomeQueue.removeMin()
            fireOutcomeTimer(top, out: &out)
        }
    }

    /// An instant after the watermark before which every instant's local date is at most `date` (today ≤ `date`):
    /// the start of local day `date + 1` at the offset of the zone span holding the watermark, or the span's end when
    /// that comes first (the offset may change there). The watermark itself when no remembered span holds it.
    func quietBound(_ date: Int32) -> Millis {
        let w = state.watermark
        let span: ZoneSpan
        if w >= zoneSpan.from && w < zoneSpan.until { span = zoneSpan }
        else if w >= zoneSpanBefore.from && w < zoneSpanBefore.until { span = zoneSpanBefore }
        else { return w }
        // For t in [w, bound): t + offset < (date + 1) · day, so its local date is at most `date`.
        return min((Millis(date) + 1) * millisPerDay - span.offset, span.until)
    }

    /// `raiseOverdue` as the contract reads, without the heap (reference mode).
    func raiseOverdueByScan(out: inout Outbox) {
        let today = localDate(state.watermark, memo: &watermarkDay).days
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
        // The deadline too: an R1 alert resolved before its deadline leaves its heap item, and a contact forgotten and
        // back in the same case with the same version opens a new R1 alert that item matched, raising R6 before the
        // new alert's deadline — which a restart, building the heap from the open alerts, did not (the restart
        // hunter, session 45).
        guard let k = state.cases[ci].openNonCompliance.firstIndex(where: {
            $0.triggerContactId == top.contactId && $0.triggerContactVersion == top.version && $0.deadline == top.deadline
                && !$0.overdueRaised
        }) else { return }
        state.cases[ci].openNonCompliance[k].overdueRaised = true
        changes.cases.insert(top.caseIndex)
        // The fields the R6 alert repeats, read in place (a copy of the alert retained and released its evidence).
        let (r1ID, r1Rule, deadline) = state.cases[ci].openNonCompliance.withUnsafeBufferPointer { ($0[k].id, $0[k].rule, $0[k].deadline) }
        let triggerContactId = top.contactId, triggerContactVersion = top.version
        let crn = state.cases[ci].crn
        let id = AlertID(rule: .enforcementOverdue, subject: .crn(crn),
                         triggerContactId: triggerContactId, triggerContactVersion: triggerContactVersion)
        overdueIds[triggerContactId] = OverdueID(version: triggerContactVersion, id: id, caseIndex: top.caseIndex)
        let days = settings.enforcementDeadlineBusinessDays
        emit(raised: true, rule: .enforcementOverdue, severity: .high, id: id, subject: .crn(crn), occurredAt: state.watermark,
             reason: { b in
                 b.raw("No enforcement action recorded for the ")
                 b.text(r1Rule.shortName)
                 b.raw(" alert on contact ")
                 b.uint(triggerContactId)
                 b.raw(" by its deadline ")
                 b.dateText(LocalDate(days: deadline))
                 b.raw(" (")
                 b.int(days)
                 b.raw(days == 1 ? " business day after the failure)" : " business days after the failure)")
             },
             triggerContactId: triggerContactId, triggerContactVersion: triggerContactVersion, out: &out) { b in
            overdueEvidence(&b, id: r1ID, rule: r1Rule, deadline: deadline)
        }
    }

    // MARK: - R7 outcome overdue

    /// A version awaits an outcome when it has none, or one that is neither complied nor enforceable (`AFTA`).
    @inline(__always) func awaitsOutcome(_ e: ContactEvent) -> Bool { !e.hasOutcome || (!e.complied && !e.enforceable) }

    /// The Nth business day after the date of `start` [N = rules.outcomeOverdue.businessDays].
    func outcomeDeadline(_ start: Millis) -> Int32 {
        let date = localDate(start).days
        let slot = Int(date & 15)
        if outcomeMemo.dates[slot] == date { return outcomeMemo.deadlines[slot] }
        let deadline = business.businessDay(settings.outcomeOverdueBusinessDays, after: LocalDate(days: date)).days
        outcomeMemo.dates[slot] = date
        outcomeMemo.deadlines[slot] = deadline
        return deadline
    }

    /// The R1 enforcement deadline of a failure on date `d`: the Nth business day after it
    /// [N = rules.nonCompliance.enforcementDeadlineBusinessDays], memoised as `outcomeDeadline` is.
    func enforcementDeadline(_ d: LocalDate) -> Int32 {
        let slot = Int(d.days & 15)
        if enforcementMemo.dates[slot] == d.days { return enforcementMemo.deadlines[slot] }
        let deadline = business.businessDay(settings.enforcementDeadlineBusinessDays, after: d).days
        enforcementMemo.dates[slot] = d.days
        enforcementMemo.deadlines[slot] = deadline
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
            quietUntil = .min
        }
    }

    /// Step 3, after the R1 reclassifications: a newer version of a contact with an open R7 alert resolves it when it
    /// no longer awaits an outcome (OUTCOME_RECORDED) or when its own deadline is not before the date of W
    /// (RESCHEDULED); otherwise the alert stays open. Runs whether R7 is enabled or not.
    func resolveOutcomeOverdue(caseIndex ci: Int, event e: ContactEvent, out: inout Outbox) {
        guard let k = state.cases[ci].openOutcomeOverdue.firstIndex(where: { $0.triggerContactId == e.contactId }) else { return }
        let awaiting = awaitsOutcome(e)
        if awaiting && outcomeDeadline(e.contactStart) < localDate(state.watermark, memo: &watermarkDay).days { return }
        let a = state.cases[ci].openOutcomeOverdue.remove(at: k)
        let contactId = e.contactId
        let code = e.hasOutcome ? reader.string(e.outcomeCode) : ""
        let start = e.contactStart
        resolve(a, crn: state.cases[ci].crn, occurredAt: state.watermark,
                resolution: awaiting ? .rescheduled : .outcomeRecorded, by: contactId,
                reason: { b in
                    if awaiting {
                        b.raw("Contact ")
                        b.uint(contactId)
                        b.raw(" rescheduled to ")
                        self.dateText(&b, start)
                    } else {
                        b.raw("Outcome ")
                        b.text(code)
                        b.raw(" recorded for contact ")
                        b.uint(contactId)
                    }
                }, out: &out)
    }

    /// `raiseOverdue`'s R7 part as the contract reads, without the heap (reference mode).
    func raiseOutcomeOverdueByScan(out: inout Outbox) {
        guard settings.outcomeOverdueEnabled else { return }
        let today = localDate(state.watermark, memo: &watermarkDay).days
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
    /// An item of another case is stale too: a contact forgotten with its timer that came back under another case with
    /// the same version and deadline has an item of its own there, and the old one fired first, in the old case's
    /// place of the order (alertSequence swapped against a restart's: the restart hunter, session 45).
    func fireOutcomeTimer(_ item: OutcomeItem, out: inout Outbox) {
        guard let timer = state.outcomeTimers[item.contactId], timer.version == item.version,
              timer.deadline == item.deadline else { return }
        if let rec = state.contacts[item.contactId], rec.caseIndex != item.caseIndex { return }
        state.outcomeTimers.removeValue(forKey: item.contactId)
        changes.outcomeTimers.insert(item.contactId)
        guard let rec = state.contacts[item.contactId] else { return }
        let ci = Int(rec.caseIndex)
        guard !state.cases[ci].openOutcomeOverdue.contains(where: { $0.triggerContactId == item.contactId }) else { return }
        let crn = state.cases[ci].crn
        let categories = state.cases[ci].categories
        let severity: Severity = categories.isEmpty ? .medium : .high
        let id = AlertID(rule: .outcomeOverdue, subject: .crn(crn),
                         triggerContactId: item.contactId, triggerContactVersion: timer.version)
        let start = rec.contactStart
        let deadline = LocalDate(days: timer.deadline)
        let contactId = item.contactId
        let range = emit(raised: true, rule: .outcomeOverdue, severity: severity, id: id, subject: .crn(crn), occurredAt: state.watermark,
             reason: { b in
                 b.raw("No outcome recorded for contact ")
                 b.uint(contactId)
                 b.raw(" on ")
                 self.dateText(&b, start)
                 if let code = timer.pendingCode {
                     b.raw(" (decision pending: ")
                     b.text(code)
                     b.byte(UInt8(ascii: ")"))
                 }
                 b.raw("; due by ")
                 b.dateText(deadline)
             },
             triggerContactId: contactId, triggerContactVersion: timer.version, out: &out) { b in
            b.raw(",\"contactStart\":")
            b.time(start)
            b.raw(",\"outcomeCode\":")
            if let code = timer.pendingCode { b.string(code) } else { b.raw("null") }
            b.raw(",\"deadline\":")
            b.date(deadline)
            b.raw(",\"categories\":")
            b.categories(categories)
        }
        state.cases[ci].openOutcomeOverdue.append(
            OpenAlert(id: id, rule: .outcomeOverdue, severity: severity, triggerContactId: contactId,
                      triggerContactVersion: timer.version, triggerStart: start, evidence: writer.array(range),
                      deadline: timer.deadline, overdueRaised: false))
        changes.cases.insert(UInt32(ci))
    }

    // MARK: - R2 telephone-only

    func checkTelephoneOnly(caseIndex ci: Int, event e: ContactEvent, out: inout Outbox) {
        guard !state.cases[ci].hasOpenTelephoneOnly else { return }
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
                              // Whole days rounded down, as the evidence: raised after 7 days and an hour against a
                              // limit of 7, "for 7 days (limit 7)" read as at the limit (a differential tester,
                              // session 54); said "more than" then.
                              b.raw(days == limit ? "No face-to-face contact for more than " : "No face-to-face contact for ")
                              b.int(days)
                              b.raw(days == 1 ? " day (limit " : " days (limit ")
                              b.int(limit)
                              if priority {
                                  b.raw(" for a priority case: ")
                                  b.text(categories.text)
                              }
                              b.raw("); ")
                              if remotes == 1 {
                                  b.raw("1 remote contact")
                              } else {
                                  b.int(remotes)
                                  b.raw(" remote contacts")
                              }
                              if hasInPerson {
                                  b.raw(" since the last in-person contact")
                              } else {
                                  b.raw(" since supervision started")
                              }
                          },
                          event: e, out: &out) { b in
            b.raw(",\"lastInPersonAt\":")
            if hasInPerson { b.time(last) } else { b.raw("null") }
            b.raw(",\"daysWithoutInPerson\":")
            b.int(days)
            b.raw(",\"limitDays\":")
            b.int(limit)
            b.raw(",\"remoteContactsSinceInPerson\":")
            b.int(remotes)
            b.raw(",\"categories\":")
            b.categories(categories)
        }
        state.cases[ci].openTelephoneOnly = alert
    }

    func resolveTelephoneOnly(caseIndex ci: Int, event e: ContactEvent, out: inout Outbox) {
        guard state.cases[ci].hasOpenTelephoneOnly, let a = state.cases[ci].openTelephoneOnly,
              e.contactStart >= a.triggerStart else { return }
        state.cases[ci].openTelephoneOnly = nil
        resolve(a, crn: state.cases[ci].crn, occurredAt: e.contactStart, resolution: .inPersonContact, by: e.contactId,
                reason: { b in
                    b.raw("Seen in person: ")
                    b.text(e.mode.words)
                    b.raw(" contact ")
                    b.uint(e.contactId)
                    b.raw(" on ")
                    self.dateText(&b, e.contactStart)
                }, out: &out)
    }

    // MARK: - R3 remote contact on an excluded case

    func raiseRemoteContact(caseIndex ci: Int, event e: ContactEvent, out: inout Outbox) {
        let categories = state.cases[ci].categories
        let mode = e.mode
        raisePoint(rule: .remoteContactExcludedCase, severity: .high, subject: .crn(state.cases[ci].crn), occurredAt: e.contactStart,
                  reason: { b in
                      b.raw(mode.capitalizedWords)
                      b.raw(" contact on a case that must be seen face to face (")
                      b.text(categories.text)
                      b.byte(UInt8(ascii: ")"))
                  },
                  event: e, out: &out) { b in
            b.raw(",\"contactMode\":\"")
            b.ascii(mode.code)
            b.raw("\",\"categories\":")
            b.categories(categories)
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
        raisePoint(rule: .noPrivacy, severity: severity, subject: .crn(state.cases[ci].crn), occurredAt: e.contactStart,
                  reason: { b in
                      b.raw("Supervision contact held without privacy (")
                      b.text(setting.words)
                      b.raw(", ")
                      b.text(mode.words)
                      b.raw("); ")
                      if sensitive { b.raw("sensitive contact") }
                      if !categories.isEmpty {
                          if sensitive { b.raw("; ") }
                          b.text(categories.text)
                      }
                      if !sensitive && categories.isEmpty { b.raw("no priority category") }
                  },
                  event: e, out: &out) { b in
            b.raw(",\"contactMode\":\"")
            b.ascii(mode.code)
            b.raw("\",\"interviewSetting\":\"")
            b.ascii(setting.code)
            b.raw("\",\"sensitive\":")
            if sensitive { b.raw("true") } else { b.raw("false") }
            b.raw(",\"categories\":")
            b.categories(categories)
        }
        return true
    }

    // MARK: - R5 area compliance rate

    /// A rate as the examples write it: one decimal ("50.0%", "77.8%"), rounded to the nearest (half away from zero).
    /// Below `threshold` (a raise) it is rounded down where the nearest would read at or above the threshold: a rate of
    /// 0.7498 against 0.75 reads "74.9%", not "75.0% … below 75%" (a rules auditor, session 43). Rounding down
    /// never reaches a threshold the rate is below.
    func percentText(_ v: Double, below threshold: Double? = nil) -> String {
        var tenths = Int((v * 1000).rounded())
        if let threshold, Double(tenths) / 1000 >= threshold { tenths = Int((v * 1000).rounded(.down)) }
        return "\(tenths / 10).\(tenths % 10)%"
    }

    /// A configured threshold as a percentage with the decimals it has, up to four: "75%", "72.5%", "66.68%" (one
    /// decimal made 0.6668 read "66.7%", the rate's own text for 2 of 3). A threshold with more decimals is rounded
    /// up at the fourth, never down: 0.7500004 read "75%", and a rate of 3 of 4 below it "75.0% … below 75%" (a
    /// reviewer, session 44); now "below 75.0001%". A threshold written with at most six decimals reads as written
    /// (the division is correctly rounded, so it gives back the same double).
    func thresholdText(_ v: Double) -> String {
        var units = Int((v * 1_000_000).rounded())
        if Double(units) / 1_000_000 < v { units += 1 }
        var fraction = units % 10_000
        guard fraction != 0 else { return "\(units / 10_000)%" }
        var digits = 4
        while fraction % 10 == 0 { fraction /= 10; digits -= 1 }
        let text = String(fraction)
        return "\(units / 10_000)." + String(repeating: "0", count: digits - text.count) + text + "%"
    }

    func evaluateRate(pdu index: Int32, event e: ContactEvent, out: inout Outbox) {
        let end = localDate(state.watermark, memo: &watermarkDay)
        let start = end.adding(days: -(settings.complianceRateWindowDays - 1))
        let (compliant, nonCompliant) = state.pdus[Int(index)].totals(from: start.days, through: end.days)
        #if DEBUG
        assert(state.pdus[Int(index)].totalsAfresh(from: start.days, through: end.days) == (compliant, nonCompliant))
        #endif
        let n = compliant + nonCompliant
        guard n >= settings.complianceRateMinimumSample else { return }
        let rate = Double(compliant) / Double(n)
        // Most evaluations change nothing: decide before anything is copied or built.
        if state.pdus[Int(index)].open?.rule != nil {
            guard rate >= settings.complianceRateThreshold + settings.complianceRateHysteresis else { return }
        } else {
            guard rate < settings.complianceRateThreshold else { return }
        }
        emitRate(pdu: index, event: e, compliant: compliant, nonCompliant: nonCompliant, start: start, end: end, out: &out)
    }

    /// `evaluateRate`'s raise or resolution, once it is decided.
    @inline(never)
    func emitRate(pdu index: Int32, event e: ContactEvent, compliant: Int, nonCompliant: Int, start: LocalDate, end: LocalDate,
                  out: inout Outbox) {
        let pdu = state.pdus[Int(index)]
        let n = compliant + nonCompliant
        let rate = Double(compliant) / Double(n)
        let rounded = (rate * 10000).rounded(.toNearestOrEven) / 10000
        let evidence: (inout JSONWriter) -> Void = { b in
            b.raw(",\"pduCode\":")
            b.string(pdu.code)
            b.raw(",\"rate\":")
            b.double(rounded)
            b.raw(",\"compliant\":")
            b.int(compliant)
            b.raw(",\"nonCompliant\":")
            b.int(nonCompliant)
            b.raw(",\"windowStart\":")
            b.date(start)
            b.raw(",\"windowEnd\":")
            b.date(end)
        }
        let days = settings.complianceRateWindowDays
        // "Compliance in N07SUF <verb> 50.0% over the 90 days to 2026-01-06 (2 of 4 contacts complied"
        let describe: (inout JSONWriter, StaticString, Double?) -> Void = { b, verb, threshold in
            b.raw("Compliance in ")
            b.text(pdu.code)
            b.raw(verb)
            b.text(self.percentText(rate, below: threshold))
            b.raw(" over the ")
            b.int(days)
            b.raw(days == 1 ? " day to " : " days to ")
            b.dateText(end)
            b.raw(" (")
            b.int(compliant)
            b.raw(" of ")
            b.int(n)
            b.raw(n == 1 ? " contact complied" : " contacts complied")
        }
        if let open = pdu.open {
            guard rate >= settings.complianceRateThreshold + settings.complianceRateHysteresis else { return }
            state.pdus[Int(index)].open = nil
            changes.pdus.insert(index)
            emit(raised: false, rule: .complianceRate, severity: open.severity, id: open.id, subject: .pdu(pdu.code),
                 occurredAt: e.contactStart,
                 reason: { b in
                     describe(&b, " recovered to ", nil)
                     b.raw(")")
                 },
                 triggerContactId: open.triggerContactId, triggerContactVersion: open.triggerContactVersion, out: &out) { b in
                evidence(&b)
                resolutionFields(&b, .rateRecovered, e.contactId)
            }
        } else if rate < settings.complianceRateThreshold {
            let alert = raise(rule: .complianceRate, severity: .medium, subject: .pdu(pdu.code), occurredAt: e.contactStart,
                              reason: { b in
                                  describe(&b, " is ", self.settings.complianceRateThreshold)
                                  b.raw("), below ")
                                  b.text(self.thresholdText(self.settings.complianceRateThreshold))
                              },
                              event: e, out: &out, evidence: evidence)
            state.pdus[Int(index)].open = alert
            changes.pdus.insert(index)
        }
    }
}
