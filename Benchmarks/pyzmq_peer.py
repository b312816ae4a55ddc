#!/usr/bin/env python3
"""pyzmq_peer.py: the floor a user would otherwise write, for `make bench` to compare contactwatchd against.

A straightforward pyzmq daemon with ContactWatch's input validation (events.md: framing, strict UTF-8 JSON, the
envelope, every field of the four event types, contactId ownership, outcome-before-start, future skew) and rule R4
(no-privacy, rules.md: attended contact in an office / other in-person / doorstep mode in an open booth, shared public
space or on a doorstep, severity by the case's registers and the sensitive flag, once per contactId, contact versions
and staleness honoured). Alerts and invalid-event notices are published as alerts.md says (alertId = SHA-256, one
alertSequence). No other rule, no persistence, no sequence-gap tracking: it keeps everything in memory and fsyncs
nothing, so it is a generous floor.

    pyzmq_peer.py --input ENDPOINT --output ENDPOINT

SUB connects to --input (subscribes to everything), XPUB binds --output. Logs "ready", "subscriber joined" and,
on SIGTERM/SIGINT, "stopped received=N processed=N invalid=N ignored=N alertsRaised=N" to stderr, as contactwatchd
does, so Benchmarks/run.sh drives both the same way.
"""
import argparse
import calendar
import hashlib
import json
import re
import signal
import sys
import time

import zmq

MAX_INT = 9007199254740991
CONTACT = "probation-case.contact.recorded"
REGISTRATION = {
    "probation-case.registration.added": True,
    "probation-case.registration.updated": True,
    "probation-case.registration.deregistered": False,
    "probation-case.registration.deleted": False,
}
KNOWN = {CONTACT, *REGISTRATION}
CONTACT_TYPES = {
    "COAP": "OFFICE", "COAI": "OFFICE", "COSR": "OFFICE", "COOO": "OTHER_IN_PERSON", "C084": "OTHER_IN_PERSON",
    "CHVS": "HOME_VISIT", "COHV": "HOME_VISIT", "CODC": "DOORSTEP", "CODI": "DOORSTEP", "COPT": "TELEPHONE",
    "CTOA": "TELEPHONE", "CTOB": "TELEPHONE", "COVC": "VIDEO",
}
MODES = {"OFFICE", "HOME_VISIT", "DOORSTEP", "OTHER_IN_PERSON", "TELEPHONE", "VIDEO", "TEXT_OR_ONLINE"}
SETTINGS = {"PRIVATE_ROOM", "OPEN_BOOTH", "SHARED_PUBLIC_SPACE", "HOME", "DOORSTEP", "UNKNOWN"}
SENTENCES = {"COMMUNITY_ORDER", "SUSPENDED_SENTENCE_ORDER", "LICENCE", "POST_SENTENCE_SUPERVISION"}
# code: (attended, complied, enforceable)
OUTCOMES = {"ATTC": (True, True, False), "ATSS": (True, True, False), "AFTC": (True, False, True),
            "ATSH": (True, False, True), "UAAB": (False, False, True), "AFTA": (False, False, False),
            "CO05": (False, True, False)}
OUTCOMES.update({c: (False, True, False) for c in ("AACL", "AAEM", "AAFC", "AAHO", "AAME", "AARE", "AARC")})
ROSH = ("RLRH", "RMRH", "RHRH", "RVHR")
PRIVATE_MODES = {"OFFICE", "OTHER_IN_PERSON", "DOORSTEP"}
PUBLIC_SETTINGS = {"OPEN_BOOTH", "SHARED_PUBLIC_SPACE", "DOORSTEP"}
CRN = re.compile(r"[A-Z][0-9]{6}\Z")
DATE_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z")
RETENTION_MS = 400 * 86_400_000
MAX_SKEW_MS = 86_400 * 1000


class Invalid(Exception):
    def __init__(self, field, reason):
        self.field, self.reason = field, reason


def no_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError("duplicate key " + k)
        obj[k] = v
    return obj


def no_constant(name):
    raise ValueError("not JSON: " + name)


def millis(value, field):
    """RFC 3339 date-time -> epoch milliseconds (finer digits truncated)."""
    m = DATE_TIME.match(value) if isinstance(value, str) else None
    if not m:
        raise Invalid(field, field.rsplit(".", 1)[-1] + " is not an RFC 3339 date-time")
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1] and h < 24 and mi < 60 and s < 60):
        raise Invalid(field, field.rsplit(".", 1)[-1] + " is not an RFC 3339 date-time")
    ms = int((m.group(7) or "0")[:3].ljust(3, "0"))
    offset = 0
    if m.group(9):
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise Invalid(field, field.rsplit(".", 1)[-1] + " has an invalid offset")
        offset = (oh * 60 + om) * (1 if m.group(9) == "+" else -1)
    return (calendar.timegm((y, mo, d, h, mi, s)) - offset * 60) * 1000 + ms


def utc(ms):
    s, r = divmod(ms, 1000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
    return text + (".%03dZ" % r if r else "Z")


def is_int(v):
    return type(v) is int and 1 <= v <= MAX_INT


def get(obj, key):
    v = obj.get(key)
    return None if v is None else v


def optional_string(info, key, path):
    v = get(info, key)
    if v is not None and not isinstance(v, str):
        raise Invalid(path + key, key + " is not a string")
    return v


class Peer:
    def __init__(self):
        self.watermark = None
        self.contacts = {}   # contactId -> [crn, version, privacyRaised]
        self.registers = {}  # crn -> {code: level}
        self.alert_sequence = 0
        self.counts = {"received": 0, "processed": 0, "invalid": 0, "ignored": 0, "alertsRaised": 0}

    # ------------------------------------------------------------------ validation (events.md, in its order)
    def validate(self, frames, now_ms):
        if len(frames) >= 3:
            raise Invalid(None, "a message has one or two frames")
        body = frames[-1]
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(None, "the body is not UTF-8")
        if text.startswith("\ufeff"):
            raise Invalid(None, "the body starts with a byte-order mark")
        try:
            event = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant)
        except ValueError:
            raise Invalid(None, "the body is not JSON")
        if not isinstance(event, dict):
            raise Invalid(None, "the body is not a JSON object")
        event_type = get(event, "eventType")
        if not isinstance(event_type, str):
            raise Invalid("eventType", "eventType is missing or not a string")
        if len(frames) == 2 and frames[0] != event_type.encode():
            raise Invalid("eventType", "the topic frame does not match eventType")
        if event_type not in KNOWN:
            return None
        if get(event, "version") != 1 or type(event["version"]) is not int:
            raise Invalid("version", "version must be 1")
        if get(event, "occurredAt") is None:
            raise Invalid("occurredAt", "occurredAt is missing")
        occurred = millis(event["occurredAt"], "occurredAt")
        publisher = get(event, "publisherId")
        if publisher is not None and not (isinstance(publisher, str) and 1 <= len(publisher) <= 64):
            raise Invalid("publisherId", "publisherId is not a string of 1 to 64 characters")
        seq = get(event, "sequenceNumber")
        if seq is not None and not is_int(seq):
            raise Invalid("sequenceNumber", "sequenceNumber is not an integer from 1")
        crn = self.person(event)
        info = get(event, "additionalInformation")
        if not isinstance(info, dict):
            raise Invalid("additionalInformation", "additionalInformation is missing or not an object")
        if event_type in REGISTRATION:
            code = get(info, "registerTypeCode")
            if not isinstance(code, str):
                raise Invalid("additionalInformation.registerTypeCode", "registerTypeCode is missing or not a string")
            level = optional_string(info, "registerLevelCode", "additionalInformation.")
            return ("registration", occurred, crn, REGISTRATION[event_type], code, level)
        contact = self.contact(info)
        owner = self.contacts.get(contact["contactId"])
        if owner is not None and owner[0] != crn:
            raise Invalid("personReference.identifiers", "contactId belongs to another CRN")
        if contact["outcome"] is not None and contact["start"] > occurred + 300_000:
            raise Invalid("additionalInformation.outcome", "an outcome is recorded before the contact starts")
        if occurred > now_ms + MAX_SKEW_MS:
            raise Invalid("occurredAt", "occurredAt is too far in the future")
        return ("contact", occurred, crn, contact)

    def person(self, event):
        ref = get(event, "personReference")
        if not isinstance(ref, dict):
            raise Invalid("personReference", "personReference is missing or not an object")
        ids = get(ref, "identifiers")
        if not isinstance(ids, list):
            raise Invalid("personReference.identifiers", "identifiers is missing or not an array")
        crn = None
        for i, entry in enumerate(ids):
            path = "personReference.identifiers[%d]" % i
            if not isinstance(entry, dict) or not isinstance(get(entry, "type"), str):
                raise Invalid(path, "an identifier is not an object with a string type")
            if entry["type"] == "CRN":
                if crn is not None:
                    raise Invalid(path, "more than one CRN")
                value = get(entry, "value")
                if not isinstance(value, str) or not CRN.match(value):
                    raise Invalid(path + ".value", "a CRN is one capital letter and six digits")
                crn = value
        if crn is None:
            raise Invalid("personReference.identifiers", "no CRN identifier")
        return crn

    def contact(self, info):
        p = "additionalInformation."
        cid = get(info, "contactId")
        if not is_int(cid):
            raise Invalid(p + "contactId", "contactId is missing or not an integer from 1")
        version = get(info, "contactVersion")
        if version is None:
            version = 1
        elif not is_int(version):
            raise Invalid(p + "contactVersion", "contactVersion is not an integer from 1")
        if get(info, "contactStart") is None:
            raise Invalid(p + "contactStart", "contactStart is missing")
        start = millis(info["contactStart"], p + "contactStart")
        ctype = optional_string(info, "contactType", p)
        mode = get(info, "contactMode")
        if mode is not None and mode not in MODES:
            raise Invalid(p + "contactMode", "contactMode is not one of " + ", ".join(sorted(MODES)))
        if mode is None:
            if ctype is None:
                raise Invalid(p + "contactType", "neither contactType nor contactMode is given")
            mode = CONTACT_TYPES.get(ctype)
            if mode is None:
                raise Invalid(p + "contactType", "contactType is not a known code and no contactMode is given")
        outcome = get(info, "outcome")
        attended = False
        if outcome is not None:
            if not isinstance(outcome, dict):
                raise Invalid(p + "outcome", "outcome is not an object")
            code = get(outcome, "code")
            if not isinstance(code, str):
                raise Invalid(p + "outcome.code", "outcome.code is missing or not a string")
            flags = list(OUTCOMES.get(code, (None, None, None)))
            given = [get(outcome, k) for k in ("attended", "complied", "enforceable")]
            if code not in OUTCOMES and any(g is None for g in given):
                raise Invalid(p + "outcome.code", "an unknown outcome code needs attended, complied and enforceable")
            for i, k in enumerate(("attended", "complied", "enforceable")):
                if given[i] is not None:
                    if type(given[i]) is not bool:
                        raise Invalid(p + "outcome." + k, k + " is not a boolean")
                    flags[i] = given[i]
            attended = flags[0]
        action = get(info, "enforcementAction")
        if action is not None:
            if not isinstance(action, dict):
                raise Invalid(p + "enforcementAction", "enforcementAction is not an object")
            if not isinstance(get(action, "code"), str):
                raise Invalid(p + "enforcementAction.code", "enforcementAction.code is missing or not a string")
            if get(action, "actionAt") is not None:
                millis(action["actionAt"], p + "enforcementAction.actionAt")
        setting = get(info, "interviewSetting")
        if setting is not None and setting not in SETTINGS:
            raise Invalid(p + "interviewSetting", "interviewSetting is not one of " + ", ".join(sorted(SETTINGS)))
        if setting is None:
            setting = {"HOME_VISIT": "HOME", "DOORSTEP": "DOORSTEP"}.get(mode, "UNKNOWN")
        sensitive = get(info, "sensitive")
        if sensitive is None:
            sensitive = False
        elif type(sensitive) is not bool:
            raise Invalid(p + "sensitive", "sensitive is not a boolean")
        sentence = get(info, "sentenceType")
        if sentence is not None and sentence not in SENTENCES:
            raise Invalid(p + "sentenceType", "sentenceType is not one of " + ", ".join(sorted(SENTENCES)))
        for key in ("pduCode", "teamCode", "staffCode", "officeLocationCode"):
            optional_string(info, key, p)
        return {"contactId": cid, "version": version, "start": start, "mode": mode, "setting": setting,
                "sensitive": sensitive, "outcome": outcome, "attended": attended}

    # ------------------------------------------------------------------ state and R4 (rules.md)
    def categories(self, crn):
        regs = self.registers.get(crn, {})
        cats = []
        if "RVHR" in regs: cats.append("VERY_HIGH_ROSH")
        if "RHRH" in regs: cats.append("HIGH_ROSH")
        if regs.get("MAPP") in ("M2", "M3"): cats.append("MAPPA_LEVEL_2_3")
        if any(c in regs for c in ("RCPR", "RCCO", "RCHD")): cats.append("CHILD_SAFEGUARDING")
        if any(c in regs for c in ("ADVP", "ADVV")): cats.append("DOMESTIC_ABUSE")
        return cats

    def apply(self, fact, out, now_ms):
        kind, occurred, crn = fact[0], fact[1], fact[2]
        if self.watermark is None or occurred > self.watermark:
            self.watermark = occurred
        if kind == "registration":
            _, _, _, put_on, code, level = fact
            regs = self.registers.setdefault(crn, {})
            if put_on:
                if code in ROSH:
                    for other in ROSH:
                        regs.pop(other, None)
                regs[code] = level
            else:
                regs.pop(code, None)
            return
        c = fact[3]
        if c["start"] < self.watermark - RETENTION_MS:
            return  # stale
        known = self.contacts.get(c["contactId"])
        if known is not None and c["version"] <= known[1]:
            return  # duplicate
        if known is None:
            known = self.contacts[c["contactId"]] = [crn, c["version"], False]
        known[1] = c["version"]
        if known[2] or not c["attended"] or c["mode"] not in PRIVATE_MODES or c["setting"] not in PUBLIC_SETTINGS:
            return
        cats = self.categories(crn)
        if c["sensitive"] or "CHILD_SAFEGUARDING" in cats or "DOMESTIC_ABUSE" in cats:
            severity = "high"
        elif any(x in cats for x in ("VERY_HIGH_ROSH", "HIGH_ROSH", "MAPPA_LEVEL_2_3")):
            severity = "medium"
        else:
            severity = "low"
        known[2] = True
        why = []
        if c["sensitive"]:
            why.append("sensitive contact")
        if cats:
            why.append(", ".join(cats))
        reason = "Supervision contact held without privacy (%s, %s); %s" % (
            c["setting"].lower().replace("_", " "), c["mode"].lower().replace("_", " "),
            "; ".join(why) if why else "no priority category")
        key = "no-privacy|CRN|%s|%d|%d" % (crn, c["contactId"], c["version"])
        self.alert_sequence += 1
        self.counts["alertsRaised"] += 1
        alert = {
            "eventType": "probation-case.supervision-alert.raised", "version": 1, "occurredAt": utc(c["start"]),
            "detectedAt": utc(now_ms), "alertId": hashlib.sha256(key.encode()).hexdigest()[:32],
            "alertSequence": self.alert_sequence, "rule": "no-privacy", "severity": severity,
            "subject": {"type": "CRN", "value": crn},
            "personReference": {"identifiers": [{"type": "CRN", "value": crn}]},
            "reason": reason,
            "evidence": {"triggerContactId": c["contactId"], "triggerContactVersion": c["version"],
                         "contactMode": c["mode"], "interviewSetting": c["setting"], "sensitive": c["sensitive"],
                         "categories": cats},
        }
        out.send_multipart([b"alert.raised.no-privacy", json.dumps(alert, separators=(",", ":")).encode()])

    def handle(self, frames, out):
        self.counts["received"] += 1
        now_ms = int(time.time() * 1000)
        try:
            fact = self.validate(frames, now_ms)
        except Invalid as e:
            self.counts["invalid"] += 1
            topic = None
            if len(frames) >= 2:
                topic = frames[0].decode("utf-8", "replace")
            else:
                try:
                    topic = json.loads(frames[-1]).get("eventType")
                    topic = topic if isinstance(topic, str) else None
                except (ValueError, AttributeError):
                    pass
            payload = frames[-1].decode("utf-8", "replace").encode()[:4096].decode("utf-8", "ignore")
            notice = {"eventType": "contactwatch.invalid-event", "reason": e.reason, "field": e.field,
                      "topic": topic, "payload": payload, "detectedAt": utc(now_ms)}
            out.send_multipart([b"invalid-event", json.dumps(notice, separators=(",", ":")).encode()])
            return
        if fact is None:
            self.counts["ignored"] += 1
            return
        self.counts["processed"] += 1
        self.apply(fact, out, now_ms)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(args.input)
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    pub.setsockopt(zmq.LINGER, 1000)
    pub.bind(args.output)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    print("pyzmq_peer: ready", file=sys.stderr, flush=True)
    peer = Peer()
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    poller.register(pub, zmq.POLLIN)
    while not stop:
        try:
            ready = dict(poller.poll(100))
        except zmq.ZMQError as e:
            if e.errno == zmq.EINTR:
                continue
            raise
        if ready.get(pub):
            while True:
                try:
                    msg = pub.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if msg[:1] == b"\x01":
                    print("pyzmq_peer: subscriber joined", file=sys.stderr, flush=True)
        if ready.get(sub):
            for _ in range(1000):
                try:
                    frames = sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                peer.handle(frames, pub)
    print("pyzmq_peer: stopped " + " ".join("%s=%d" % kv for kv in peer.counts.items()), file=sys.stderr, flush=True)
    sub.close()
    pub.close()
    ctx.term()


if __name__ == "__main__":
    main()
