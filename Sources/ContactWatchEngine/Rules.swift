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

extension Engine {
    // MARK: - Alert messages

    /// Writes one alert message (raise or resolution) with the next `alertSequence`.
    func emit(raised: Bool, rule: Rule, severity: Severity, id: AlertID, subject: Subject, occurredAt: Millis,
              reason: String, triggerContactId: UInt64, triggerContactVersion: UInt64,
              out: inout Outbox, evidence: (inout [UInt8]) -> Void) {
        state.alertSequence += 1
        let sequence = state.alertSequence
        if raised { counters.raisedByRule[Int(rule.rawValue)] += 1 } else { counters.resolvedByRule[Int(rule.rawValue)] += 1 }
        out.append(kind: raised ? .alertRaised : .alertResolved, alertSequence: sequence, topic: { t in
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
            JSONOut.raw(&b, ",\"reason\":")
            JSONOut.string(&b, reason)
            JSONOut.raw(&b, ",\"evidence\":{\"triggerContactId\":")
            JSONOut.uint(&b, triggerContactId)
            JSONOut.raw(&b, ",\"triggerContactVersion\":")
            JSONOut.uint(&b, triggerContactVersion)
            evidence(&b)
            JSONOut.raw(&b, "}}")
        }
    }

    /// Raises an alert whose evidence is kept for its resolution; returns the open alert.
    func raise(rule: Rule, severity: Severity, subject: Subject, occurredAt: Millis, reason: String,
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
                 reason: String, out: inout Outbox) {
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

    func categoryText(_ c: Categories) -> String { c.text }

    func dateText(_ t: Millis) -> String { zone.date(of: t).description }

    // MARK: - R1 non-compliance

    func raiseNonCompliance(caseIndex ci: Int, event e: ContactEvent, date d: LocalDate, out: inout Outbox) {
        let c = state.cases[ci]
        let t = e.contactStart
        var s = Millis.min
        for b in c.breaches where b.start <= t && b.start > s { s = b.start }
        let months = settings.nonComplianceWindowMonths
        let windowStart = d.subtracting(months: months)
        var failures = 0
        let cutoff = retentionCutoff
        for f in c.failures where f.start >= s && f.start >= cutoff && f.start <= t && zone.date(of: f.start) >= windowStart {
            failures += 1
        }
        var lastWarning = Millis.min
        for w in c.warnings where w.start >= s && w.start <= t && w.start > lastWarning && zone.date(of: w.start) >= windowStart {
            lastWarning = w.start
        }
        let priority = !c.categories.isEmpty
        let rule: Rule
        let severity: Severity
        let code = reader.string(e.outcomeCode)
        let failureText = failures == 1 ? "1 failure" : "\(failures) failures"
        let sinceBreach = s == .min ? "" : " since the breach of \(dateText(s))"
        let priorityText = priority ? "; priority case: \(categoryText(c.categories))" : ""
        let reason: String
        if c.sentenceType == .licence {
            rule = .licenceReview
            severity = failures >= 2 || priority ? .high : .medium
            reason = "Failure to comply (\(code)) on licence, contact \(e.contactId) on \(d): review for recall or further action (\(failureText) in \(months) months\(sinceBreach)\(priorityText))"
        } else if failures >= 2 || lastWarning != .min {
            rule = .breachDue
            severity = .high
            var why: [String] = []
            if failures >= 2 { why.append("\(failureText) in \(months) months") }
            if lastWarning != .min { why.append("a warning was given on \(dateText(lastWarning))") }
            reason = "Failure to comply (\(code)) on contact \(e.contactId) on \(d): breach action is due (\(why.joined(separator: " and "))\(sinceBreach)\(priorityText))"
        } else {
            rule = .warningDue
            severity = priority ? .high : .medium
            reason = "Failure to comply (\(code)) on contact \(e.contactId) on \(d): a warning is due (no other failure and no warning in \(months) months\(sinceBreach)\(priorityText))"
        }
        let sentence = c.sentenceType
        let categories = c.categories
        var alert = raise(rule: rule, severity: severity, subject: .crn(c.crn), occurredAt: t, reason: reason, event: e, out: &out) { b in
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
        overdueQueue.push(.init(deadline: alert.deadline, crn: c.crn.key, contactId: e.contactId,
                                version: e.contactVersion, caseIndex: UInt32(ci)))
    }

    /// Step 3: a contact that is no longer a failure resolves the R1 alerts it triggered.
    func resolveReclassified(caseIndex ci: Int, contactId: UInt64, event e: ContactEvent, out: inout Outbox) {
        let outcome = e.hasOutcome ? "outcome now \(reader.string(e.outcomeCode))" : "no outcome recorded now"
        resolveNonCompliance(caseIndex: ci, resolution: .reclassified, by: contactId, at: state.watermark,
                             reason: "Contact \(contactId) is no longer recorded as a failure (\(outcome))",
                             detail: "reclassified", out: &out) { $0.triggerContactId == contactId }
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
                             reason: "Enforcement action \(code) (\(cls.words)) recorded on \(dateText(effectiveTime)) on contact \(e.contactId)",
                             detail: "enforcement action \(code)", out: &out) {
            answers($0.rule) && effectiveTime >= $0.triggerStart
        }
    }

    func resolveNonCompliance(caseIndex ci: Int, resolution: Resolution, by contactId: UInt64, at t: Millis,
                              reason: String, detail: String, out: inout Outbox, where matches: (OpenAlert) -> Bool) {
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
                     reason: "No longer overdue: the \(a.rule.shortName) alert on contact \(a.triggerContactId) was resolved (\(detail))",
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

    /// Step 6: every open R1 alert whose deadline is before the date of W gets its overdue alert.
    func raiseOverdue(out: inout Outbox) {
        guard let first = overdueQueue.top, state.watermark != .min else { return }
        let today = zone.date(of: state.watermark).days
        guard first.deadline < today else { return }
        while let top = overdueQueue.top, top.deadline < today {
            _ = overdueQueue.pop()
            let ci = Int(top.caseIndex)
            guard let k = state.cases[ci].openNonCompliance.firstIndex(where: {
                $0.triggerContactId == top.contactId && $0.triggerContactVersion == top.version && !$0.overdueRaised
            }) else { continue }
            state.cases[ci].openNonCompliance[k].overdueRaised = true
            changes.cases.insert(top.caseIndex)
            let a = state.cases[ci].openNonCompliance[k]
            let crn = state.cases[ci].crn
            let id = AlertID(rule: .enforcementOverdue, subjectType: "CRN", subjectValue: crn.description,
                             triggerContactId: a.triggerContactId, triggerContactVersion: a.triggerContactVersion)
            let days = settings.enforcementDeadlineBusinessDays
            emit(raised: true, rule: .enforcementOverdue, severity: .high, id: id, subject: .crn(crn), occurredAt: state.watermark,
                 reason: "No enforcement action recorded for the \(a.rule.shortName) alert on contact \(a.triggerContactId) by its deadline \(LocalDate(days: a.deadline)) (\(days) business days after the failure)",
                 triggerContactId: a.triggerContactId, triggerContactVersion: a.triggerContactVersion, out: &out) { b in
                overdueEvidence(&b, a)
            }
        }
    }

    // MARK: - R2 telephone-only

    func checkTelephoneOnly(caseIndex ci: Int, event e: ContactEvent, out: inout Outbox) {
        let c = state.cases[ci]
        guard c.openTelephoneOnly == nil else { return }
        let hasInPerson = c.lastInPersonAt != .min
        let reference = hasInPerson ? c.lastInPersonAt : c.firstContactAt
        let t = e.contactStart
        let priority = !c.categories.isEmpty
        let limit = priority ? settings.telephoneOnlyPriorityLimitDays : settings.telephoneOnlyLimitDays
        guard t - reference > Millis(limit) * millisPerDay else { return }
        let days = Int((t - reference) / millisPerDay)
        var remotes = 0
        let cutoff = retentionCutoff
        for r in c.remotes where (!hasInPerson || r.start > c.lastInPersonAt) && r.start >= cutoff && r.start <= t { remotes += 1 }
        let limitText = priority ? "limit \(limit) for a priority case: \(categoryText(c.categories))" : "limit \(limit)"
        let contactsText = remotes == 1 ? "1 remote contact" : "\(remotes) remote contacts"
        let since = hasInPerson ? "since the last in-person contact" : "since supervision started"
        let categories = c.categories
        let last = c.lastInPersonAt
        let alert = raise(rule: .telephoneOnly, severity: priority ? .high : .medium, subject: .crn(c.crn), occurredAt: t,
                          reason: "No face-to-face contact for \(days) days (\(limitText)); \(contactsText) \(since)",
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
                reason: "Seen in person: \(e.mode.words) contact \(e.contactId) on \(dateText(e.contactStart))", out: &out)
    }

    // MARK: - R3 remote contact on an excluded case

    func raiseRemoteContact(caseIndex ci: Int, event e: ContactEvent, out: inout Outbox) {
        let c = state.cases[ci]
        let mode = e.mode
        let words = mode.words
        let capitalised = words.prefix(1).uppercased() + words.dropFirst()
        _ = raise(rule: .remoteContactExcludedCase, severity: .high, subject: .crn(c.crn), occurredAt: e.contactStart,
                  reason: "\(capitalised) contact on a case that must be seen face to face (\(categoryText(c.categories)))",
                  event: e, out: &out) { b in
            JSONOut.raw(&b, ",\"contactMode\":\"")
            b.append(contentsOf: mode.code.utf8)
            JSONOut.raw(&b, "\",\"categories\":")
            JSONOut.categories(&b, c.categories)
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
        let c = state.cases[ci]
        let severity: Severity
        if e.sensitive || !c.categories.isDisjoint(with: [.childSafeguarding, .domesticAbuse]) {
            severity = .high
        } else if !c.categories.isDisjoint(with: [.veryHighRosh, .highRosh, .mappa23]) {
            severity = .medium
        } else {
            severity = .low
        }
        guard severity >= settings.noPrivacyMinimumSeverity else { return false }
        var why: [String] = []
        if e.sensitive { why.append("sensitive contact") }
        if !c.categories.isEmpty { why.append(categoryText(c.categories)) }
        if why.isEmpty { why.append("no priority category") }
        let mode = e.mode, setting = e.setting, sensitive = e.sensitive
        _ = raise(rule: .noPrivacy, severity: severity, subject: .crn(c.crn), occurredAt: e.contactStart,
                  reason: "Supervision contact held without privacy (\(setting.words), \(mode.words)); \(why.joined(separator: "; "))",
                  event: e, out: &out) { b in
            JSONOut.raw(&b, ",\"contactMode\":\"")
            b.append(contentsOf: mode.code.utf8)
            JSONOut.raw(&b, "\",\"interviewSetting\":\"")
            b.append(contentsOf: setting.code.utf8)
            JSONOut.raw(&b, "\",\"sensitive\":")
            if sensitive { JSONOut.raw(&b, "true") } else { JSONOut.raw(&b, "false") }
            JSONOut.raw(&b, ",\"categories\":")
            JSONOut.categories(&b, c.categories)
        }
        return true
    }

    // MARK: - R5 area compliance rate

    func percentText(_ v: Double) -> String {
        let p = (v * 1000).rounded() / 10
        return p == p.rounded() ? "\(Int(p))%" : "\(p)%"
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
        if let open = pdu.open {
            guard rate >= settings.complianceRateThreshold + settings.complianceRateHysteresis else { return }
            state.pdus[Int(index)].open = nil
            changes.pdus.insert(index)
            emit(raised: false, rule: .complianceRate, severity: open.severity, id: open.id, subject: .pdu(pdu.code),
                 occurredAt: e.contactStart,
                 reason: "Compliance in \(pdu.code) recovered to \(percentText(rate)) over the \(days) days to \(end) (\(compliant) of \(n) contacts complied)",
                 triggerContactId: open.triggerContactId, triggerContactVersion: open.triggerContactVersion, out: &out) { b in
                evidence(&b)
                resolutionFields(&b, .rateRecovered, e.contactId)
            }
        } else if rate < settings.complianceRateThreshold {
            let alert = raise(rule: .complianceRate, severity: .medium, subject: .pdu(pdu.code), occurredAt: e.contactStart,
                              reason: "Compliance in \(pdu.code) is \(percentText(rate)) over the \(days) days to \(end) (\(compliant) of \(n) contacts complied), below \(percentText(settings.complianceRateThreshold))",
                              event: e, out: &out, evidence: evidence)
            state.pdus[Int(index)].open = alert
            changes.pdus.insert(index)
        }
    }
}
