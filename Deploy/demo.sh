#!/usr/bin/env bash
# The `make demo` walk-through: start contactwatchd on its default endpoints with a throw-away state directory,
# tail its alert socket, generate a synthetic stream, replay it into the daemon, wait for the notice of the invalid
# end-of-stream event sent after it, stop the daemon with SIGTERM, and show the first alerts and a count of messages
# per topic.
#
# Endpoints (the daemon's defaults): input tcp://127.0.0.1:7401 (the daemon connects; replay binds it),
# output tcp://127.0.0.1:7402 (the daemon binds; tail connects).
#
# Environment: BIN_DIR (default .build/debug), DEMO_GENERATE_ARGS (extra `contactwatch generate` flags,
# e.g. "--cases 500 --days 60"), DEMO_KEEP=1 keeps the temporary directory. DEMO_DAEMON_ARGS, DEMO_REPLAY_ARGS and
# DEMO_TAIL_ARGS add flags to each program (Deploy/demo-secure.sh uses them for CURVE).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN_DIR=${BIN_DIR:-.build/debug}
DAEMON="$BIN_DIR/contactwatchd"
TOOL="$BIN_DIR/contactwatch"
INPUT=tcp://127.0.0.1:7401
OUTPUT=tcp://127.0.0.1:7402
read -r -a GENERATE_ARGS <<< "${DEMO_GENERATE_ARGS:-}"
read -r -a DAEMON_ARGS <<< "${DEMO_DAEMON_ARGS:-}"
read -r -a REPLAY_ARGS <<< "${DEMO_REPLAY_ARGS:-}"
read -r -a TAIL_ARGS <<< "${DEMO_TAIL_ARGS:-}"
read -r -a STRANGER_ARGS <<< "${DEMO_STRANGER_ARGS:-}"  # a second tail whose key is not allowed (demo-secure)

for exe in "$DAEMON" "$TOOL"; do
    [[ -x "$exe" ]] || { echo "demo: $exe not found; run 'make build' first" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/contactwatch-demo.XXXXXX")
daemon_pid=""
tail_pid=""
stranger_pid=""

stop() { # pid, seconds: SIGTERM, wait up to the bound, then SIGKILL
    local pid=$1 limit=$2 i=0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && (( i < limit * 10 )); do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    [[ -n "$tail_pid" ]] && stop "$tail_pid" 2
    [[ -n "$stranger_pid" ]] && stop "$stranger_pid" 2
    [[ -n "$daemon_pid" ]] && stop "$daemon_pid" 10
    wait 2>/dev/null || true
    if [[ "${DEMO_KEEP:-0}" == 1 ]]; then echo "demo: files kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for port in 7401 7402; do
    if port_open "$port"; then
        echo "demo: something already listens on 127.0.0.1:$port; stop it first" >&2
        exit 1
    fi
done

echo "== generate"
"$TOOL" generate --output "$work/events.ndjson" "${GENERATE_ARGS[@]}"
events=$(grep -c . "$work/events.ndjson" || true)
echo "   $events events in $work/events.ndjson"

echo "== start contactwatchd (state in $work/state; R7 outcome-overdue enabled)"
# R7 (outcome overdue) ships off by default; the demo turns it on, as Deploy/contactwatchd.yaml does.
CONTACTWATCH_RULES_OUTCOME_OVERDUE_ENABLED=true \
    "$DAEMON" --input "$INPUT" --output "$OUTPUT" --state-dir "$work/state" "${DAEMON_ARGS[@]}" 2> "$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 1 100); do
    port_open 7402 && break
    if ! kill -0 "$daemon_pid" 2>/dev/null; then
        echo "demo: contactwatchd exited during start-up:" >&2
        tail -n 20 "$work/daemon.log" >&2
        daemon_pid=""
        exit 1
    fi
    sleep 0.1
done
port_open 7402 || { echo "demo: contactwatchd did not bind $OUTPUT within 10 s" >&2; tail -n 20 "$work/daemon.log" >&2; exit 1; }

echo "== tail $OUTPUT"
"$TOOL" tail --endpoint "$OUTPUT" "${TAIL_ARGS[@]}" > "$work/alerts.ndjson" 2> "$work/tail.log" &
tail_pid=$!
if (( ${#STRANGER_ARGS[@]} > 0 )); then
    echo "== tail $OUTPUT with a key that is not on the consumers' allow-list"
    "$TOOL" tail --endpoint "$OUTPUT" "${STRANGER_ARGS[@]}" > "$work/stranger.ndjson" 2> "$work/stranger.log" &
    stranger_pid=$!
fi
sleep 1 # let the subscription reach the daemon's PUB socket before anything is published

echo "== replay into $INPUT"
replay_status=0
# After the stream, one event that is invalid (no version) under a subscribed topic: its invalid-event notice,
# published after everything the stream caused, tells when the daemon is through (it is left out of the counts).
sentinel="demo-end-of-stream-$$"
echo "{\"eventType\":\"probation-case.contact.recorded\",\"note\":\"$sentinel\"}" > "$work/sentinel.ndjson"
timeout 300 "$TOOL" replay "$work/events.ndjson" "$work/sentinel.ndjson" --endpoint "$INPUT" --bind \
    --wait-subscribers 1 "${REPLAY_ARGS[@]}" || replay_status=$?
if (( replay_status != 0 )); then
    echo "demo: replay failed (exit $replay_status)" >&2
    exit 1
fi

echo "== waiting for the daemon to get through the stream (its notice for the end-of-stream line)"
for _ in $(seq 1 1500); do # every 0.2 s, at most 300 s
    grep -q "$sentinel" "$work/alerts.ndjson" 2>/dev/null && break
    if ! kill -0 "$daemon_pid" 2>/dev/null; then break; fi
    sleep 0.2
done
grep -q "$sentinel" "$work/alerts.ndjson" 2>/dev/null || echo "demo: the end-of-stream notice did not arrive within 300 s; counting what did" >&2

echo "== stop contactwatchd (SIGTERM)"
kill -TERM "$daemon_pid"
daemon_status=0
for _ in $(seq 1 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$daemon_pid" 2>/dev/null; then
    echo "demo: contactwatchd still running 10 s after SIGTERM; killing it" >&2
    kill -KILL "$daemon_pid" 2>/dev/null || true
fi
wait "$daemon_pid" || daemon_status=$?
daemon_pid=""
stop "$tail_pid" 2
wait "$tail_pid" 2>/dev/null || true
tail_pid=""
echo "   contactwatchd exited with status $daemon_status"

grep -v "$sentinel" "$work/alerts.ndjson" > "$work/alerts.only.ndjson" || true
mv "$work/alerts.only.ndjson" "$work/alerts.ndjson"
messages=$(grep -c . "$work/alerts.ndjson" || true)
echo
echo "== first alerts"
if command -v jq >/dev/null 2>&1; then
    head -n 15 "$work/alerts.ndjson" | jq -r '
        [(.occurredAt // .detectedAt), (.eventType | sub("^probation-case.supervision-alert."; "")),
         (.rule // ""), (.severity // ""), (.subject.value // .publisherId // ""), (.reason // "")] | @tsv'
else
    head -n 15 "$work/alerts.ndjson" | cut -c 1-240
fi

echo
echo "== summary"
echo "   events replayed:    $events"
echo "   messages received:  $messages"
echo "   daemon exit status: $daemon_status"
if [[ -n "$stranger_pid" ]]; then
    stop "$stranger_pid" 2
    wait "$stranger_pid" 2>/dev/null || true
    stranger_pid=""
    echo "   messages received by the refused consumer: $(grep -c . "$work/stranger.ndjson" || true)"
    echo "   the daemon's refusal of its key (first line):"
    grep -m1 'key=.*refused a peer' "$work/daemon.log" | sed 's/^/     /' || echo "     (none logged)"
fi
echo "   messages per topic:"
# The alert body names its topic: alert.raised.<rule>, alert.resolved.<rule>, stream.gap, invalid-event.
awk '
    {
        et = ""; rule = ""
        if (match($0, /"eventType":"[^"]*"/)) et = substr($0, RSTART + 13, RLENGTH - 14)
        if (match($0, /"rule":"[^"]*"/)) rule = substr($0, RSTART + 8, RLENGTH - 9)
        if (et == "probation-case.supervision-alert.raised") topic = "alert.raised." rule
        else if (et == "probation-case.supervision-alert.resolved") topic = "alert.resolved." rule
        else if (et == "contactwatch.stream.gap") topic = "stream.gap"
        else if (et == "contactwatch.invalid-event") topic = "invalid-event"
        else topic = "other: " et
        count[topic]++
    }
    END { for (t in count) printf "%8d  %s\n", count[t], t }
' "$work/alerts.ndjson" | sort -k2

if (( messages == 0 )); then
    echo "demo: no messages arrived from contactwatchd; its log:" >&2
    tail -n 20 "$work/daemon.log" >&2
    exit 1
fi
if (( daemon_status != 0 )); then
    echo "demo: contactwatchd did not stop cleanly; its log:" >&2
    tail -n 20 "$work/daemon.log" >&2
    exit 1
fi
exit 0
