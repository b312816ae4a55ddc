#!/usr/bin/env bash
# `make check-install`: proves that installed executables run on a host without the Swift toolchain.
#
# Usage: Deploy/check-install.sh ROOT   (ROOT: a DESTDIR that `make install PREFIX=/usr` filled)
#
# 1. The installed executables must not name a Swift runtime library (ldd), and every C library they name must be
#    found: libzmq5, libsqlite3-0, libsystemd0 and liblz4-1 (the journal's compressed rows) on the host.
# 2. In a private mount namespace (unshare -m) an empty tmpfs hides the toolchain's directory. A debug build, which
#    loads the runtime from there, must FAIL to start in it (so the hiding is real); the installed contactwatchd and
#    contactwatch must print their version, and the installed daemon must start on ipc:// endpoints with a fresh
#    state directory, report ready, and stop with exit 0 on SIGTERM.
# Step 2 needs root and a working `unshare -m`; without them it is skipped with the reason (exit 0).
set -euo pipefail
cd "$(dirname "$0")/.."

root=${1:?usage: $0 DESTDIR}
daemon="$root/usr/bin/contactwatchd"
tool="$root/usr/bin/contactwatch"
version=$(sed -n 's/.*static let string = "\(.*\)".*/\1/p' Sources/ContactWatchCommon/Version.swift)
fail() { echo "check-install: FAILED: $*" >&2; exit 1; }

for exe in "$daemon" "$tool"; do
    [[ -x "$exe" ]] || fail "$exe is not installed"
    if ldd "$exe" | grep -E 'libswift|libFoundation|libdispatch|libBlocksRuntime|/opt/swift'; then
        fail "$exe still loads the Swift runtime (above)"
    fi
    if ldd "$exe" | grep 'not found'; then
        fail "$exe needs a library this host does not have (above): apt-get install libzmq5 libsqlite3-0 libsystemd0 liblz4-1"
    fi
done
# Not `ldd | grep -q`: grep -q stops at the first match, ldd (a script) then dies of SIGPIPE, and pipefail failed the
# check now and then on a daemon that does link liblz4 (an operator audit, session 36: 2 runs in 10 under load).
ldd "$daemon" | grep 'liblz4\.so' >/dev/null || fail "$daemon does not link liblz4 (the journal's rows need it)"
echo "check-install: ldd: no Swift runtime library in $daemon or $tool; every C library found, liblz4 among the daemon's"
for f in "$root/usr/lib/systemd/system/contactwatchd.service" "$root/etc/contactwatch/contactwatchd.yaml" \
         "$root/usr/share/doc/contactwatch/README.md"; do
    [[ -f "$f" ]] || fail "$f is not installed"
done
# The licence notices: made from the link, so a package the daemon links (swift-nio, for the metrics server) and the
# runtime's licence must be named.
copyright="$root/usr/share/doc/contactwatch/copyright"
[[ -s "$copyright" ]] || fail "$copyright is not installed"
for package in swift-nio swift-argument-parser GRDB.swift; do
    grep -q "^==== Swift package $package " "$copyright" || fail "$copyright does not carry the licence of $package"
done
grep -q '^==== The Swift runtime' "$copyright" || fail "$copyright does not carry the Swift runtime's licence"
# The C libraries inside Swift packages: BoringSSL's notices (from its sources' heads) and libyaml's (Deploy/licenses).
grep 'Eric Young' "$copyright" >/dev/null || fail "$copyright does not carry BoringSSL's notices (swift-crypto's CCryptoBoringSSL)"
grep 'Kirill Simonov' "$copyright" >/dev/null || fail "$copyright does not carry libyaml's licence (Yams' CYaml)"
echo "check-install: $copyright names $(grep -c '^==== Swift package ' "$copyright") Swift packages and the runtime"
# The manual pages, made from each executable's own --help.
for page in contactwatchd contactwatch; do
    zcat "$root/usr/share/man/man1/$page.1.gz" 2>/dev/null | grep '^\.Nm '"$page"'$' >/dev/null \
        || fail "$root/usr/share/man/man1/$page.1.gz is not the manual page of $page"
done
zcat "$root/usr/share/man/man1/contactwatchd.1.gz" | grep '^\.Op Fl -check-config$' >/dev/null \
    || fail "the manual page of contactwatchd does not document --check-config"
echo "check-install: manual pages of contactwatchd and contactwatch installed"
grep -q '^ExecStart=/usr/bin/contactwatchd ' "$root/usr/lib/systemd/system/contactwatchd.service" \
    || fail "the installed unit's ExecStart is not under PREFIX=/usr"
grep -q '^Documentation=file:///usr/share/doc/contactwatch/README.md' "$root/usr/lib/systemd/system/contactwatchd.service" \
    || fail "the installed unit's Documentation= does not point at the installed README"

# The toolchain: the directory above usr/bin/swift (e.g. /opt/swift). When the toolchain lives in /usr itself, hide
# only its runtime directory /usr/lib/swift.
swift_path=$(command -v swift || true)
[[ -n "$swift_path" ]] || { echo "check-install: no swift on PATH; the installed executables ran above only through ldd"; exit 0; }
toolchain=$(dirname "$(dirname "$(dirname "$(readlink -f "$swift_path")")")")
if [[ "$toolchain" == / || "$toolchain" == /usr ]]; then hide=/usr/lib/swift; else hide=$toolchain; fi

if [[ $(id -u) -ne 0 ]]; then echo "check-install: SKIPPED the hidden-toolchain run: needs root (unshare -m, mount)"; exit 0; fi
if ! command -v unshare >/dev/null; then echo "check-install: SKIPPED the hidden-toolchain run: no unshare"; exit 0; fi
if ! unshare -m --propagation private true 2>/dev/null; then
    echo "check-install: SKIPPED the hidden-toolchain run: unshare -m is not permitted here"; exit 0
fi

work=$(mktemp -d /tmp/cw-check-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
control=""
debug_bin=".build/debug/contactwatchd"
[[ -x "$debug_bin" ]] && control=$(readlink -f "$debug_bin")

export CI_HIDE="$hide" CI_DAEMON="$daemon" CI_TOOL="$tool" CI_VERSION="$version" CI_WORK="$work" CI_CONTROL="$control" CI_ROOT="$root"
unshare -m --propagation private bash -euo pipefail -c '
    mount -t tmpfs -o size=1m,mode=0755 contactwatch-hide "$CI_HIDE"
    echo "check-install: $CI_HIDE hidden (empty tmpfs in a private mount namespace)"
    [[ ! -e "$CI_HIDE/usr/bin/swift" ]] || { echo "check-install: FAILED: the toolchain is still visible" >&2; exit 1; }
    if [[ -n "$CI_CONTROL" ]]; then
        if "$CI_CONTROL" --version >/dev/null 2>&1; then
            echo "check-install: FAILED: the debug build (linked to the toolchain runtime) still starts: nothing was hidden" >&2
            exit 1
        fi
        echo "check-install: control: the debug build does not start without the toolchain (as expected)"
    else
        echo "check-install: control skipped: no debug build (.build/debug/contactwatchd) to show that a binary linked to the toolchain fails here; the toolchain directory is hidden all the same"
    fi
    v=$("$CI_DAEMON" --version); [[ "$v" == "$CI_VERSION" ]] || { echo "check-install: FAILED: contactwatchd --version printed \"$v\", expected $CI_VERSION" >&2; exit 1; }
    v=$("$CI_TOOL" --version);   [[ "$v" == "$CI_VERSION" ]] || { echo "check-install: FAILED: contactwatch --version printed \"$v\", expected $CI_VERSION" >&2; exit 1; }
    echo "check-install: contactwatchd --version and contactwatch --version print $CI_VERSION without the toolchain"
    "$CI_DAEMON" --check-config --config "$CI_ROOT/etc/contactwatch/contactwatchd.yaml" >/dev/null \
        || { echo "check-install: FAILED: the installed daemon rejects the installed configuration" >&2; exit 1; }
    echo "check-install: contactwatchd --check-config accepts the installed configuration"
    "$CI_DAEMON" --state-dir "$CI_WORK/state" --input "ipc://$CI_WORK/in" --output "ipc://$CI_WORK/out" \
        --metrics 127.0.0.1:0 2> "$CI_WORK/daemon.log" &
    pid=$!
    for _ in $(seq 1 200); do grep -qw ready "$CI_WORK/daemon.log" && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    grep -qw ready "$CI_WORK/daemon.log" || { cat "$CI_WORK/daemon.log" >&2; kill -KILL $pid 2>/dev/null || true; echo "check-install: FAILED: the installed daemon did not report ready" >&2; exit 1; }
    grep -q "metrics served" "$CI_WORK/daemon.log" || { cat "$CI_WORK/daemon.log" >&2; kill -KILL $pid; echo "check-install: FAILED: no metrics endpoint" >&2; exit 1; }
    kill -TERM $pid
    status=0; wait $pid || status=$?
    [[ $status -eq 0 ]] || { cat "$CI_WORK/daemon.log" >&2; echo "check-install: FAILED: the installed daemon exited $status on SIGTERM" >&2; exit 1; }
    echo "check-install: the installed daemon started (ready, metrics served), stopped on SIGTERM with exit 0, without the toolchain"
'
echo "check-install: OK"
