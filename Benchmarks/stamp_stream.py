#!/usr/bin/env python3
"""stamp_stream.py SRC DST LAYOUT — a copy of an NDJSON event stream with publisherId/sequenceNumber written into
every line's root (seeded, so the output is the same on every machine). The members are written compact, each line's
own members in their order and bytes; only where the stamps go differs:

  after   right after occurredAt, where the spec's example has them (one publisher, 31 bytes, numbers 1, 2, 3, ...)
  first   before eventType, as another publisher may write them (the same publisher and numbers)
  last    after additionalInformation (the same publisher and numbers)
  mixed   each line one of those three layouts, or the stamps apart (publisherId first and sequenceNumber last, or
          the reverse), or occurredAt moved before eventType; four publishers interleaved, one of them the escaped
          spelling (\\u0041) of another's id; gaps, repeats and restarts of the numbers; and about 3% invalid
          stamps: publisherId twice, sequenceNumber twice, a publisherId that is a number, empty, null or 65
          characters long, a sequenceNumber that is 0, negative, a fraction, a string, 2^53 or null.

Lines that are not JSON objects are copied as they are. Used for the record *Root members in another order*
(fourteenth session) in Benchmarks/README.md: `contactwatch generate --cases 2000 --days 120 --seed 1 > small.ndjson;
python3 Benchmarks/stamp_stream.py small.ndjson stamped-first.ndjson first`."""
import json
import random
import sys

src, dst, layout = sys.argv[1], sys.argv[2], sys.argv[3]
assert layout in ("after", "first", "last", "mixed"), layout
rng = random.Random(14)
PUBLISHER = "contactwatch-bench-publisher-01"  # 31 bytes
assert len(PUBLISHER) == 31
# (id as written in the JSON text, the id it decodes to): the fourth writes the second's id with an escape.
PUBLISHERS = [('"%s"' % PUBLISHER, PUBLISHER), ('"cw-publisher-A"', "cw-publisher-A"), ('"nDelius-east"', "nDelius-east"),
              ('"cw-publisher-\\u0041"', "cw-publisher-A")]
numbers = {}


def stamp(members, pid, seq, where):
    """members: [(key, value text)]; returns them with the stamps placed."""
    p, s = ("publisherId", pid), ("sequenceNumber", seq)
    keys = [k for k, _ in members]
    if where == "first":
        return [p, s] + members
    if where == "last":
        return members + [p, s]
    if where == "apart":
        return [p] + members + [s]
    if where == "apart-reversed":
        return [s] + members + [p]
    if where == "occurredAt-first" and "occurredAt" in keys:
        k = keys.index("occurredAt")
        members = [members[k]] + members[:k] + members[k + 1:]
        keys = [k for k, _ in members]
    # after occurredAt (or first when there is none)
    if "occurredAt" in keys:
        k = keys.index("occurredAt") + 1
        return members[:k] + [p, s] + members[k:]
    return [p, s] + members


with open(src) as inp, open(dst, "w") as out:
    for line in inp:
        line = line.rstrip("\n")
        try:
            obj = json.loads(line)
        except ValueError:
            out.write(line + "\n")
            continue
        if not isinstance(obj, dict):
            out.write(line + "\n")
            continue
        members = [(k, json.dumps(v, separators=(",", ":"))) for k, v in obj.items()]
        if layout != "mixed":
            numbers[PUBLISHER] = numbers.get(PUBLISHER, 0) + 1
            members = stamp(members, '"%s"' % PUBLISHER, str(numbers[PUBLISHER]), layout)
        else:
            text, pid = rng.choice(PUBLISHERS)
            n = numbers.get(pid, 0) + 1
            r = rng.random()
            if r < 0.02:
                n += rng.randint(1, 5)  # a gap
            elif r < 0.03:
                n = max(1, n - 1)  # a repeat
            elif r < 0.035:
                n = 1  # a restart
            numbers[pid] = n
            seq = str(n)
            where = rng.choice(["after", "first", "last", "apart", "apart-reversed", "occurredAt-first"])
            r = rng.random()
            extra = None
            if r < 0.03:
                bad = rng.randrange(11)
                if bad == 0:
                    extra = ("publisherId", text)  # publisherId twice
                elif bad == 1:
                    extra = ("sequenceNumber", seq)  # sequenceNumber twice
                elif bad == 2:
                    text = "17"
                elif bad == 3:
                    text = '""'
                elif bad == 4:
                    text = "null"
                elif bad == 5:
                    text = '"%s"' % ("p" * 65)
                elif bad == 6:
                    seq = "0"
                elif bad == 7:
                    seq = "-3"
                elif bad == 8:
                    seq = "1.5"
                elif bad == 9:
                    seq = '"%s"' % seq
                else:
                    seq = rng.choice(["9007199254740992", "null"])
            members = stamp(members, text, seq, where)
            if extra:
                members.insert(rng.randrange(len(members) + 1), extra)
        out.write("{" + ",".join('"%s":%s' % (k, v) for k, v in members) + "}\n")
