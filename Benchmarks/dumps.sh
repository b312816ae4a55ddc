#!/usr/bin/env bash
# Benchmarks/dumps.sh REF NEW — does a change to the engine change anything it says?
#
# REF and NEW are two builds of contactwatch-bench (a path to the binary, or the folder holding it, e.g. a release
# build of the commit before the change kept aside and this tree's .build/release). Each writes every output message
# and its final counters (`contactwatch-bench --dump FILE --now 1796000000000`, with and without --outcome-overdue)
# for five streams; the two dumps of each are compared byte for byte. Prints "dumps: N identical, M different" and
# exits 1 when any differ or a run fails. The streams (made once with NEW's `contactwatch generate`, kept in
# DUMPS_DIR, default .build/dumps/streams):
#   small     --cases 2000 --days 120 --seed 1 (30,524 events; the callgrind stream of make bench)
#   big       --cases 20000 --days 150 --seed 1 (386,456 events; make bench's stream)
#   detail    small with an unknown envelope member on every event ("detailUrl", a different URL on each line)
#   examples  the spec's example streams (Tests/Fixtures/examples/*.ndjson, expected outputs left out)
#   mixed     --cases 3000 --days 200 --seed 5, 24% of its lines rewritten by mutate_stream.py (reordered,
#             spaced, escaped, extra and duplicate members, cut lines): the general path and the error paths
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 REF NEW   (two contactwatch-bench builds, binaries or their folders)" >&2; exit 2; }
bench_of() { if [ -d "$1" ]; then echo "$1/contactwatch-bench"; else echo "$1"; fi; }
REF=$(bench_of "$1"); NEW=$(bench_of "$2")
for b in "$REF" "$NEW"; do [ -x "$b" ] || { echo "dumps: $b is not an executable contactwatch-bench" >&2; exit 2; }; done
CLI="$(dirname "$NEW")/contactwatch"
[ -x "$CLI" ] || { echo "dumps: $CLI (to generate the streams) is missing; build it beside $NEW" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${DUMPS_DIR:-.build/dumps}
S="$DIR/streams"
mkdir -p "$S" "$DIR/ref" "$DIR/new"

make_stream() {  # name → $S/name.ndjson, written whole or not at all
    local name=$1 tmp="$S/.$1.tmp"
    [ -s "$S/$name.ndjson" ] && return 0
    case "$name" in
        small) "$CLI" generate --cases 2000 --days 120 --seed 1 > "$tmp" ;;
        big) "$CLI" generate --cases 20000 --days 150 --seed 1 > "$tmp" ;;
        detail)
            make_stream small
            awk '{ sub(/"version":[0-9]+,/, "&\"detailUrl\":\"https://example.invalid/case/" NR "\","); print }' \
                "$S/small.ndjson" > "$tmp" ;;
        examples)
            for f in "$HERE"/../Tests/Fixtures/examples/*.ndjson; do
                case "$f" in *.expected.ndjson) ;; *) cat "$f" ;; esac
            done > "$tmp" ;;
        mixed)
            "$CLI" generate --cases 3000 --days 200 --seed 5 > "$S/.mixed-src.tmp"
            python3 "$HERE/mutate_stream.py" "$S/.mixed-src.tmp" "$tmp"
            rm -f "$S/.mixed-src.tmp" ;;
    esac
    mv "$tmp" "$S/$name.ndjson"
}

same=0; different=0
for s in small big detail examples mixed; do
    make_stream "$s"
    for r7 in no yes; do
        flags=(); [ "$r7" = yes ] && flags=(--outcome-overdue)
        ok=yes
        for side in ref new; do
            b=$REF; [ "$side" = new ] && b=$NEW
            if ! "$b" --input "$S/$s.ndjson" "${flags[@]}" --dump "$DIR/$side/$s-$r7.dump" --now 1796000000000 \
                    > "$DIR/$side/$s-$r7.log" 2>&1; then
                echo "failed: $b on $s (R7 $r7), see $DIR/$side/$s-$r7.log"; ok=no
            fi
        done
        if [ "$ok" = yes ] && cmp -s "$DIR/ref/$s-$r7.dump" "$DIR/new/$s-$r7.dump"; then
            same=$((same + 1))
        else
            different=$((different + 1))
            [ "$ok" = yes ] && echo "different: $s (R7 $r7): diff $DIR/ref/$s-$r7.dump $DIR/new/$s-$r7.dump"
        fi
    done
done
echo "dumps: $same identical, $different different"
[ "$different" -eq 0 ]
