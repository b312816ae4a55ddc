#!/usr/bin/env bash
# `make demo-secure`: the `make demo` flow over CURVE. Makes key pairs with `contactwatch keygen` (the daemon's, a
# publisher's, a consumer's), lets the publisher's key publish and the consumer's key read, then runs Deploy/demo.sh
# with every socket encrypted and authenticated:
#
#   replay --bind (CURVE server; allows the daemon's key)  →  contactwatchd --input (CURVE client with
#   --input-curve-server-key)  →  contactwatchd --output (CURVE server; allow-list of consumers)  →  tail (CURVE client)
#
# At the end it shows that a consumer whose key is not on the list gets nothing, and the daemon's refusal log line.
# Environment: as Deploy/demo.sh (BIN_DIR, DEMO_GENERATE_ARGS, DEMO_KEEP).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN_DIR=${BIN_DIR:-.build/debug}
TOOL="$BIN_DIR/contactwatch"
[[ -x "$TOOL" ]] || { echo "demo-secure: $TOOL not found; run 'make build' first" >&2; exit 1; }

keys=$(mktemp -d "${TMPDIR:-/tmp}/contactwatch-keys.XXXXXX")
trap 'rm -rf "$keys"' EXIT
echo "== keys (contactwatch keygen) in $keys"
mkdir -p "$keys/certs"
for name in daemon publisher consumer stranger; do "$TOOL" keygen "$name" --dir "$keys/certs" >/dev/null; done
mkdir -p "$keys/allow-consumers" "$keys/allow-daemon"
cp "$keys/certs/consumer.key" "$keys/allow-consumers/"
cp "$keys/certs/daemon.key" "$keys/allow-daemon/"
ls -l "$keys/certs" | sed 's/^/   /'

export DEMO_DAEMON_ARGS="--curve-cert $keys/certs/daemon.key_secret --curve-allow-consumers $keys/allow-consumers --input-curve-server-key $keys/certs/publisher.key"
export DEMO_REPLAY_ARGS="--curve-cert $keys/certs/publisher.key_secret --curve-allow $keys/allow-daemon"
export DEMO_TAIL_ARGS="--curve-cert $keys/certs/consumer.key_secret --curve-server-key $keys/certs/daemon.key"
export DEMO_STRANGER_ARGS="--curve-cert $keys/certs/stranger.key_secret --curve-server-key $keys/certs/daemon.key"
BIN_DIR="$BIN_DIR" Deploy/demo.sh
