#!/bin/bash
# Writes the licence notices of what the release executables carry: `make install` puts the result in
# PREFIX/share/doc/contactwatch/copyright (the .deb's /usr/share/doc/contactwatch/copyright, Debian's place for it).
#
#   Deploy/copyright.sh BIN_PATH OUTPUT [--common-licenses]
#
# BIN_PATH is the release build's bin path (`swift build -c release --show-bin-path`). The executables link the Swift
# runtime and the Swift packages statically, and the licences of that code ask for their text to go with every copy,
# so the list is made from the link itself, not written by hand: the modules in both products' `Objects.LinkFileList`,
# each traced to the package it was compiled from (a Swift module by its `sources` list, a C module by a `.d` file),
# then for each such package:
# - its LICENSE/NOTICE/COPYING files at its top level and in each linked module's own folder (llhttp's, in swift-nio);
# - for a linked C module whose folder has no such file, the distinct copyright notices at the head of its sources that
#   are not the Apache License 2.0's (BoringSSL's OpenSSL, SSLeay and ISC notices, in swift-crypto);
# - for a C library whose sources carry no notice at all, its licence as kept in Deploy/licenses (libyaml, in Yams:
#   the `License` of libyaml 0.2.5, the release Yams' CYaml follows).
# The C libraries the executables load at run time (libzmq, SQLite, libsystemd, liblz4) are the host's packages.
#
# --common-licenses (make deb): the Apache License 2.0's terms, which every Debian host has in
# /usr/share/common-licenses/Apache-2.0, are named there instead of copied (Debian policy 12.5); what a file adds
# around them (a copyright line, the Swift runtime's Runtime Library Exception) is kept.
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
here=$(cd -P "$(dirname "$0")/.." && pwd)
[ -d "$bin" ] || { echo "copyright.sh: $bin is not a folder: build the release executables first" >&2; exit 1; }
bin=$(cd -P "$bin" && pwd)  # absolute, as the build's own records name the sources
scratch=$(dirname "$(dirname "$bin")")
checkouts="$scratch/checkouts"
products=(contactwatchd contactwatch)
# C modules whose sources carry no licence notice, and the file in Deploy/licenses that holds their library's.
declare -A kept_licences=([CYaml]=libyaml.txt)

for p in "${products[@]}"; do
    [ -s "$bin/$p.product/Objects.LinkFileList" ] || {
        echo "copyright.sh: $bin/$p.product/Objects.LinkFileList is missing: build the release executables first" >&2
        exit 1
    }
done

# The source file a module was compiled from, or nothing. A `.d` file names it on its second line, with a space
# written as `\ `.
module_source() {
    local dir="$bin/$1.build" d
    if [ -s "$dir/sources" ]; then
        grep -m1 -v '^$' "$dir/sources"
        return 0
    fi
    d=$(find "$dir" -name '*.d' -print -quit 2>/dev/null || true)
    [ -n "$d" ] && sed -n '2{s/^ *//; s/ *\\$//; s/\\ / /g; p; q}' "$d"
    return 0
}

declare -A package_dirs=()   # package folder -> 1
declare -A module_dirs=()    # module folder -> its module's name
while IFS= read -r m; do
    [ -n "$m" ] || continue
    src=$(module_source "$m")
    if [ -z "$src" ]; then
        echo "copyright.sh: cannot tell which package module $m comes from" >&2
        exit 1
    fi
    case "$src" in
    "$checkouts"/*)
        rest=${src#"$checkouts"/}
        pkg="$checkouts/${rest%%/*}"
        package_dirs[$pkg]=1
        # The module's own folder: the nearest parent named as the module.
        d=$(dirname "$src")
        while [ "$d" != "$pkg" ] && [ "$(basename "$d")" != "$m" ]; do d=$(dirname "$d"); done
        [ "$d" != "$pkg" ] && module_dirs[$d]=$m
        ;;
    "$here"/Packages/*)
        echo "copyright.sh: module $m comes from an edited package ($src): unedit it (swift package unedit) first" >&2
        exit 1
        ;;
    "$here"/*) ;;  # this project's own
    *)
        echo "copyright.sh: module $m comes from $src, outside this project and its checkouts" >&2
        exit 1
        ;;
    esac
done < <(for p in "${products[@]}"; do sed -E 's#.*/([^/]+)\.build/.*#\1#' "$bin/$p.product/Objects.LinkFileList"; done | LC_ALL=C sort -u)

# Where each checkout came from, as SwiftPM records it (the repository's address, not the local mirror's).
declare -A package_urls=()
state="$scratch/workspace-state.json"
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
    find "$1" -maxdepth 1 -type f \( -iname 'LICENSE*' -o -iname 'LICENCE*' -o -iname 'NOTICE*' -o -iname 'COPYING*' \) \
        | LC_ALL=C sort
}

# The first comment of each file named on the input — a `/* … */` block or a run of `//` lines, after any blank or
# preprocessor (`#`) lines — when it holds a copyright notice and is not the Apache License 2.0's header; each distinct
# text once, in the files' order, without the comment's syntax. (An assembly file's ISC notice comes as `//` lines after
# its `#define`s: BoringSSL's HRSS code, a review, session 39.)
headers() {
    awk '
    {
        file = $0; block = ""; state = 0; done = 0; n = 0
        while (!done && (getline line < file) > 0) {
            n++
            sub(/\r$/, "", line)
            if (state == 0) {
                if (line ~ /^[ \t]*$/ || line ~ /^[ \t]*#/) { if (n > 60) done = 1; continue }
                if (line ~ /^[ \t]*\/\*/) state = 1
                else if (line ~ /^[ \t]*\/\//) state = 2
                else { done = 1; continue }
            }
            if (state == 2) {
                if (line !~ /^[ \t]*\/\//) { done = 1; continue }
                sub(/^[ \t]*\/\/+ ?/, "", line)
                block = block line "\n"
                if (n > 200) done = 1
                continue
            }
            end = (line ~ /\*\//)
            sub(/^[ \t]*\/\*+ ?/, "", line); sub(/[ \t]*\*+\/.*$/, "", line); sub(/^[ \t]*\* ?/, "", line)
            block = block line "\n"
            if (end || n > 200) done = 1
        }
        close(file)
        if (block ~ /[Cc]opyright/ && block !~ /Apache License/ && !(block in seen)) { seen[block] = 1; order[++count] = block }
    }
    END { for (i = 1; i <= count; i++) { sub(/\n+$/, "\n", order[i]); printf "%s\n", order[i] } }'
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
    echo "package's licence and notice files follow as its checkout carries them, with the notices of the C"
    echo "libraries they embed (made at build time from the executables' link by Deploy/copyright.sh). The C"
    echo "libraries the executables load at run time (libzmq5, libsqlite3-0, libsystemd0, liblz4-1) are the"
    echo "host's packages, with their own notices."
    echo
    echo "==== The Swift runtime (standard library, Foundation, Dispatch) ===="
    echo "Foundation's static libraries include ICU (under the Unicode licence)."
    if [ -n "$swift_licence" ]; then
        echo "---- the Swift toolchain's LICENSE.txt ----"
        emit "$swift_licence"
    else
        echo "The toolchain's LICENSE.txt was not found: see https://swift.org/LICENSE.txt"
    fi
    while IFS= read -r pkg; do
        [ -n "$pkg" ] || continue
        name=$(basename "$pkg")
        url=${package_urls[$name]:-}
        version=$(git -c safe.directory="$pkg" -C "$pkg" describe --tags --always 2>/dev/null || true)
        files=$(notices "$pkg")
        embedded=()
        while IFS= read -r d; do
            case "$d" in "$pkg"/*) ;; *) continue ;; esac
            m=${module_dirs[$d]}
            own=$(notices "$d")
            if [ -n "$own" ]; then
                files+=$'\n'$own
            elif [ -n "${kept_licences[$m]:-}" ]; then
                embedded+=("licence:$m:$here/Deploy/licenses/${kept_licences[$m]}")
            elif find "$d" -type f \( -name '*.c' -o -name '*.cc' -o -name '*.h' \) -print -quit | grep . >/dev/null; then
                embedded+=("headers:$m:$d")
            fi
        done < <(printf '%s\n' "${!module_dirs[@]}" | LC_ALL=C sort)
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
        for e in ${embedded[@]+"${embedded[@]}"}; do
            kind=${e%%:*}; rest=${e#*:}; m=${rest%%:*}; path=${rest#*:}
            if [ "$kind" = licence ]; then
                [ -s "$path" ] || { echo "copyright.sh: $path is missing (the licence of the C library in $m)" >&2; exit 1; }
                echo "---- the licence of the C library in $m (its sources carry none; kept in Deploy/licenses) ----"
                cat "$path"
            else
                text=$(find "$path" -type f \( -name '*.c' -o -name '*.cc' -o -name '*.h' -o -name '*.S' \) | LC_ALL=C sort | headers)
                [ -n "$text" ] || continue
                echo "---- the copyright notices at the head of $m's sources (each distinct one once) ----"
                printf '%s\n' "$text"
            fi
        done
    done < <(printf '%s\n' "${!package_dirs[@]}" | LC_ALL=C sort)
} > "$out"
