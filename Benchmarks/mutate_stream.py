#!/usr/bin/env python3
"""mutate_stream.py SRC DST — a copy of an NDJSON event stream with a fixed share of its lines rewritten in the
forms a real bus carries and the scanner's fast path does not (seeded, so the output is the same on every machine):
8% members reordered, 6% spaces after separators (the `"eventType":"` prefix kept compact so that
contactwatch-bench still splits the line as an event), 4% one `a` after byte 60 written as the escape \\u0061,
3% an extra nested member, 2% cut in half (invalid), 1% a duplicate `version` key (invalid). Used by dumps.sh."""
import json
import random
import sys

src, dst = sys.argv[1], sys.argv[2]
rng = random.Random(11)
with open(src) as inp, open(dst, "w") as out:
    for line in inp:
        line = line.rstrip("\n")
        r = rng.random()
        try:
            obj = json.loads(line)
        except ValueError:
            out.write(line + "\n")
            continue
        if r < 0.08 and isinstance(obj, dict):
            items = list(obj.items())
            rng.shuffle(items)
            line = json.dumps(dict(items), separators=(",", ":"))
        elif r < 0.14:
            line = json.dumps(obj).replace('"eventType": "', '"eventType":"')
        elif r < 0.18:
            k = line.find("a", 60)
            line = line[:k] + "\\u0061" + line[k + 1:] if k > 0 else line
        elif r < 0.21 and isinstance(obj, dict):
            obj["extraMember"] = {"nested": [1, 2.5, None, True, "x\\y"]}
            line = json.dumps(obj, separators=(",", ":"))
        elif r < 0.23:
            line = line[: max(1, len(line) // 2)]
        elif r < 0.24 and isinstance(obj, dict) and "version" in obj:
            line = line.replace('"version"', '"version":1,"version"', 1)
        out.write(line + "\n")
