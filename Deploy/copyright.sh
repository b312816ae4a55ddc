#!/bin/bash
# Writes the licence notices of what the release executables carry: `make install` puts the result in
# PREFIX/share/doc/contactwatch/copyright (the .deb's /usr/share/doc/contactwatch/copyright, Debian's place for it).
#
#   Deploy/copyright.sh BIN_PATH OUTPUT [--common-licenses]
#
# --common-licenses (make deb): the Apache License 2.0's terms, which every Debian host has in
# /usr/share/common-licenses/Apache-2.0, are named there instead of copied (Debian policy 12.5); what a file adds
# around them (a copyright line, the Swift runtime's Runtime Library Exception) is kept.
# BIN_PATH is the release build's bin path (`swift build -c release --show-bin-path`). The executables link the Swift
# runtime and the Swift packages statically, and the Apache and MIT licences of those packages ask for their text to
# go with every copy, so the list is made from the link itself, not written by hand: the modules in both products'
# `Objects.LinkFileList`, each traced to the package it was compiled from (a Swift module by its `sources` list, a C
# module by a `.d` file), then each such package's LICENSE/NOTICE/COPYING files at its top level and in the module's
# own folder (a bundled C library's, such as llhttp's), as its checkout carries them. The C libraries the executables
# load at run time (libzmq, SQLite, libsystemd, liblz4) are the host's packages, with their own notices.
set -euo pipefail

usage="usage: copyright.sh BIN_PATH OUTPUT [--common-licenses]"
bin=${1:?$usage}
out=${2:?$usage}
common=no
case "${3:-}" in
'') ;;
--common-licenses) common=yes ;;
*) echo "$usage" >&2; exit 64 ;;
esac
here=$(cd "$(dirname "$0")/.." && pwd)
products=(contactwatchd contactwatch)

for p in "${products[@]}"; do
    [ -s "$bin/$p.product/Objects.LinkFileList" ] || {
        echo "copyright.sh: $bin/$p.product/Objects.LinkFileList is missing: build the release executables first" >&2
        exit 1
    }
done

# The source file a module was compiled from, or nothing.
module_source() {
    local dir="$bin/$1.build" d
    if [ -s "$dir/sources" ]; then
        grep -m1 -v '^$' "$dir/sources"
        return
    fi
    d=$(find "$dir" -name '*.d' -print -quit 2>/dev/null || true)
    [ -n "$d" ] && sed -n 's/^ *\(\/[^ ]*\.\(c\|cc\|cpp\|S\|s\|m\)\) *\\*$/\1/p' "$d" | head -1
    return 0
}

declare -A package_dirs=()   # package folder -> 1
declare -A module_dirs=()    # module folder -> 1
modules=$(for p in "${products[@]}"; do sed -E 's#.*/([^/]+)\.build/.*#\1#' "$bin/$p.product/Objects.LinkFileList"; done | sort -u)
for m in $modules; do
    src=$(module_source "$m")
    if [ -z "$src" ]; then
        echo "copyright.sh: cannot tell which package module $m comes from" >&2
        exit 1
    fi
    case "$src" in
    */checkouts/*)
        rest=${src#*/checkouts/}
        pkg="${src%%/checkouts/*}/checkouts/${rest%%/*}"
        package_dirs[$pkg]=1
        # The module's own folder: the nearest parent named as the module.
        d=$(dirname "$src")
        while [ "$d" != "$pkg" ] && [ "$(basename "$d")" != "$m" ]; do d=$(dirname "$d"); done
        [ "$d" != "$pkg" ] && module_dirs[$d]=1
        ;;
    "$here"/*) ;;  # this project's own
    *)
        echo "copyright.sh: module $m comes from $src, outside this project and its checkouts" >&2
        exit 1
        ;;
    esac
done

# Where each checkout came from, as SwiftPM records it (the repository's address, not the local mirror's).
declare -A package_urls=()
state="$(dirname "$(dirname "$bin")")/workspace-state.json"
if [ -s "$state" ]; then
    while IFS=$'\t' read -r sub url; do package_urls[$sub]=$url; done < <(awk -F'"' '
        /"location" *:/ { location = $4 }
        /"subpath" *:/ { print $4 "\t" location }' "$state")
fi

swift_licence=""
if swiftc=$(command -v swiftc 2>/dev/null); then
    candidate="$(dirname "$(dirname "$(readlink -f "$swiftc")")")/share/swift/LICENSE.txt"
    [ -s "$candidate" ] && swift_licence=$candidate
fi

notices() {  # the licence files of one folder, top level only
    find "$1" -maxdepth 1 -type f \( -iname 'LICENSE*' -o -iname 'LICENCE*' -o -iname 'NOTICE*' -o -iname 'COPYING*' \) | sort
}

# One licence or notice file; with --common-licenses the Apache License 2.0's terms named, not copied.
emit() {
    if [ "$common" = yes ] && grep -q 'TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION' "$1" \
        && grep -q '^ *END OF TERMS AND CONDITIONS' "$1" && grep -q 'Version 2\.0, January 2004' "$1"; then
        sed -n '/^ *Apache License *$/q; p' "$1"
        echo "The Apache License, Version 2.0: its terms are in /usr/share/common-licenses/Apache-2.0."
        sed -n '/^ *END OF TERMS AND CONDITIONS/,$p' "$1" | sed '1d'
    else
        cat "$1"
    fi
}

{
    echo "ContactWatch (contactwatchd, contactwatch)"
    echo
    echo "Copyright: the ContactWatch authors. No licence has been chosen for ContactWatch itself yet."
    echo
    echo "contactwatchd and contactwatch link the Swift runtime and the Swift packages below statically; each"
    echo "package's licence and notice files follow as its checkout carries them (made at build time from the"
    echo "executables' link by Deploy/copyright.sh). The C libraries they load at run time (libzmq5,"
    echo "libsqlite3-0, libsystemd0, liblz4-1) are the host's packages, with their own notices."
    echo
    echo "==== The Swift runtime (standard library, Foundation, Dispatch) ===="
    echo "Foundation's static libraries include ICU (under the Unicode licence)."
    if [ -n "$swift_licence" ]; then
        echo "---- $swift_licence ----"
        emit "$swift_licence"
    else
        echo "The toolchain's LICENSE.txt was not found: see https://swift.org/LICENSE.txt"
    fi
    for pkg in $(printf '%s\n' "${!package_dirs[@]}" | sort); do
        name=$(basename "$pkg")
        url=${package_urls[$name]:-}
        version=$(git -c safe.directory="$pkg" -C "$pkg" describe --tags --always 2>/dev/null || true)
        files=$(notices "$pkg")
        for d in $(printf '%s\n' "${!module_dirs[@]}" | sort); do
            case "$d" in "$pkg"/*) files+=$'\n'$(notices "$d") ;; esac
        done
        files=$(printf '%s\n' "$files" | sed '/^$/d')
        if [ -z "$files" ]; then
            echo "copyright.sh: the package $name carries no LICENSE/NOTICE/COPYING file" >&2
            exit 1
        fi
        echo
        echo "==== Swift package $name${version:+ $version}${url:+ ($url)} ===="
        while IFS= read -r f; do
            echo "---- ${f#"$pkg"/} ----"
            emit "$f"
        done <<< "$files"
    done
} > "$out"
