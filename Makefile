# ContactWatch — developer entry points.
#
#   make deps    install the system libraries the package links (Debian; needs root only when something is missing)
#   make build   swift build (debug)
#   make test    deps, build the tests, run them, print the summary
#   make demo    daemon + generated stream + replay + tail, then the first alerts and a count per topic
#   make demo-secure  the same flow over CURVE with keys made by contactwatch keygen
#   make bench   Benchmarks/run.sh, when there is one
#   make fuzz    libFuzzer over the engine for FUZZ_SECONDS (default 120), corpus seeded from the spec's examples
#   make clean   swift package clean
#   make help    this list
#
#   make release        both executables, release, the Swift runtime linked statically (run without the toolchain)
#   make install        PREFIX (default /usr/local) and DESTDIR: executables in PREFIX/bin (stripped), the unit in
#                       PREFIX/lib/systemd/system (ExecStart under PREFIX), /etc/contactwatch/contactwatchd.yaml
#                       unless one is there (never overwritten), the README and the licence notices (copyright) in
#                       PREFIX/share/doc/contactwatch, manual pages in PREFIX/share/man/man1
#   make uninstall      removes what install put under PREFIX; keeps the configuration and the state
#   make deb            a .deb (PREFIX=/usr) built with dpkg-deb, depending on libzmq5, libsqlite3-0, libsystemd0, liblz4-1
#   make check-install  installs into a temporary DESTDIR and runs both executables with the Swift toolchain hidden
#                       (a private mount namespace with an empty tmpfs over it); CI runs it after make test
#
# SWIFT_BUILD_FLAGS passes extra flags to swift build/test, e.g. SWIFT_BUILD_FLAGS="--scratch-path .build-ci".

SHELL := /bin/bash
SWIFT ?= swift
SWIFT_BUILD_FLAGS ?=
# sqlite3 (the shell) is for the tests: another process holding the store's lock, and the online backup the README
# documents; without it those tests are skipped with a printed reason.
DEB_PACKAGES := libzmq3-dev libsystemd-dev libsqlite3-dev liblz4-dev pkg-config sqlite3

# Installation layout (GNU conventions). The configuration lives in /etc whatever PREFIX is (cli.md).
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/contactwatch
MANDIR ?= $(PREFIX)/share/man
CONFDIR ?= /etc/contactwatch
# The version is written once, in Sources/ContactWatchCommon/Version.swift.
VERSION := $(shell sed -n 's/.*static let string = "\(.*\)".*/\1/p' Sources/ContactWatchCommon/Version.swift)
# Full RELRO (`-z relro -z now`): the dynamic symbols (libzmq, SQLite, libsystemd, libc) are bound at start and
# their table made read-only, as Debian's hardening asks of a daemon (lintian's hardening-no-bindnow before).
RELEASE_FLAGS := -c release --static-swift-stdlib -Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now $(SWIFT_BUILD_FLAGS)
# Runtime packages of an installed host (Debian names), for make deb and the README.
RUNTIME_PACKAGES := libzmq5, libsqlite3-0, libsystemd0, liblz4-1

.PHONY: all deps build test demo demo-secure bench fuzz clean help release install uninstall deb check-install

all: build

deps:
	@if ! command -v dpkg >/dev/null 2>&1; then \
	    if pkg-config --exists libzmq libsystemd sqlite3 liblz4 2>/dev/null; then \
	        echo "deps: not a Debian system, but pkg-config finds libzmq, libsystemd, sqlite3 and liblz4"; exit 0; \
	    fi; \
	    echo "deps: not a Debian system; install the development files of libzmq, libsystemd, sqlite3 and liblz4, and pkg-config" >&2; \
	    exit 1; \
	fi; \
	missing=""; \
	for p in $(DEB_PACKAGES); do \
	    dpkg -s "$$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: present ($(DEB_PACKAGES))"; exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
	    echo "deps: missing:$$missing" >&2; \
	    echo "deps: as root, run: apt-get update && apt-get install -y --no-install-recommends $(DEB_PACKAGES)" >&2; \
	    exit 1; \
	fi; \
	echo "deps: installing$$missing"; \
	apt-get update && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_PACKAGES)

build: deps
	$(SWIFT) build $(SWIFT_BUILD_FLAGS)

test: deps
	$(SWIFT) build --build-tests $(SWIFT_BUILD_FLAGS)
	@log=$$(mktemp); \
	set -o pipefail; \
	$(SWIFT) test --skip-build $(SWIFT_BUILD_FLAGS) 2>&1 | tee "$$log"; status=$$?; \
	echo; echo "== swift test summary =="; \
	grep -E '(Test run with [0-9]+ tests?|Executed [0-9]+ tests?)' "$$log" | awk '!seen[$$0]++' | tail -n 4 || echo "(no summary line found)"; \
	rm -f "$$log"; \
	exit $$status

demo: deps build
	@BIN_DIR="$$($(SWIFT) build --show-bin-path $(SWIFT_BUILD_FLAGS))" Deploy/demo.sh

demo-secure: deps build
	@BIN_DIR="$$($(SWIFT) build --show-bin-path $(SWIFT_BUILD_FLAGS))" Deploy/demo-secure.sh

bench:
	@if [ -f Benchmarks/run.sh ]; then \
	    bash Benchmarks/run.sh; \
	else \
	    echo "bench: no benchmarks yet (Benchmarks/run.sh)"; \
	fi

# The fuzz build instruments the engine (--sanitize=fuzzer) in its own scratch folder; the corpus it grows is kept
# there between runs and re-seeded from the examples each time; a crashing input lands in .build-fuzz/artifacts/.
FUZZ_SECONDS ?= 120
fuzz: deps
	$(SWIFT) build -c release --sanitize=fuzzer --product contactwatch-fuzz --scratch-path .build-fuzz -Xswiftc -DFUZZING
	@mkdir -p .build-fuzz/corpus .build-fuzz/artifacts; \
	for f in Tests/Fixtures/examples/*.ndjson; do \
	    case "$$f" in *.expected.ndjson) ;; *) cp "$$f" .build-fuzz/corpus/ ;; esac; \
	done; \
	.build-fuzz/release/contactwatch-fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=.build-fuzz/artifacts/ .build-fuzz/corpus

clean:
	$(SWIFT) package clean

# The targets, from this file's opening comment.
help:
	@sed -n '/^#   make /,/^#$$/{/^#$$/d;s/^#  //;p}' $(firstword $(MAKEFILE_LIST))

# Release executables with the Swift runtime (stdlib, Foundation, Dispatch) linked in, so that an installed host
# needs only the C libraries (libzmq5, libsqlite3-0, libsystemd0, liblz4-1) and libc.
release: deps
	$(SWIFT) build $(RELEASE_FLAGS) --product contactwatchd
	$(SWIFT) build $(RELEASE_FLAGS) --product contactwatch
	$(SWIFT) build $(RELEASE_FLAGS) --product generate-manual

# The manual pages' date: the commit's (the same bytes from the same commit), today's outside a git checkout.
MAN_DATE = $(shell d=$$(git -c safe.directory='$(CURDIR)' -C '$(CURDIR)' log -1 --format=%cd --date=short 2>/dev/null); [ -n "$(GIT_HERE)" ] && [ -n "$$d" ] && echo "$$d" || date -u +%F)

install: release
	@bin="$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)"; \
	set -e; \
	install -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(DOCDIR)" "$(DESTDIR)$(CONFDIR)" "$(DESTDIR)$(MANDIR)/man1"; \
	for exe in contactwatchd contactwatch; do \
	    install -m 0755 "$$bin/$$exe" "$(DESTDIR)$(BINDIR)/$$exe"; \
	    strip --strip-unneeded --remove-section=.comment "$(DESTDIR)$(BINDIR)/$$exe"; \
	done; \
	sed -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/usr/local/share/doc/contactwatch|$(DOCDIR)|g' \
	    Deploy/contactwatchd.service > "$(DESTDIR)$(UNITDIR)/contactwatchd.service"; \
	chmod 0644 "$(DESTDIR)$(UNITDIR)/contactwatchd.service"; \
	install -m 0644 README.md "$(DESTDIR)$(DOCDIR)/README.md"; \
	Deploy/copyright.sh "$$bin" "$(DESTDIR)$(DOCDIR)/copyright" $(COPYRIGHT_FLAGS); \
	man="$$(mktemp -d)"; trap 'rm -rf "$$man"' EXIT; \
	for exe in contactwatchd contactwatch; do \
	    "$$bin/generate-manual" "$$bin/$$exe" --output-directory "$$man" --date "$(MAN_DATE)" --section 1 >/dev/null; \
	done; \
	sed -i '/^\.Ar subcommand$$/d' "$$man/contactwatchd.1"; \
	for page in contactwatchd.1 contactwatch.1; do \
	    gzip -9n < "$$man/$$page" > "$(DESTDIR)$(MANDIR)/man1/$$page.gz"; chmod 0644 "$(DESTDIR)$(MANDIR)/man1/$$page.gz"; \
	done; \
	chmod 0644 "$(DESTDIR)$(DOCDIR)/copyright"; \
	if [ -e "$(DESTDIR)$(CONFDIR)/contactwatchd.yaml" ]; then \
	    echo "install: kept the existing $(DESTDIR)$(CONFDIR)/contactwatchd.yaml (the example is $(DOCDIR)/contactwatchd.yaml)"; \
	else \
	    install -m 0644 Deploy/contactwatchd.yaml "$(DESTDIR)$(CONFDIR)/contactwatchd.yaml"; \
	fi; \
	install -m 0644 Deploy/contactwatchd.yaml "$(DESTDIR)$(DOCDIR)/contactwatchd.yaml"; \
	if [ -n "$(DESTDIR)" ]; then echo "install: contactwatch $(VERSION) staged in $(DESTDIR)$(PREFIX) (nothing installed on this host)"; \
	else echo "install: contactwatch $(VERSION) in $(PREFIX); then: systemctl daemon-reload, edit and check /etc/contactwatch/contactwatchd.yaml (contactwatchd --check-config --config …), and systemctl enable --now contactwatchd (README: Operating it)"; fi

# The configuration (/etc/contactwatch) and the state (/var/lib/contactwatch) are the operator's: kept.
uninstall:
	rm -f "$(DESTDIR)$(BINDIR)/contactwatchd" "$(DESTDIR)$(BINDIR)/contactwatch" \
	      "$(DESTDIR)$(UNITDIR)/contactwatchd.service" \
	      "$(DESTDIR)$(DOCDIR)/README.md" "$(DESTDIR)$(DOCDIR)/contactwatchd.yaml" "$(DESTDIR)$(DOCDIR)/copyright" \
	      "$(DESTDIR)$(MANDIR)/man1/contactwatchd.1.gz" "$(DESTDIR)$(MANDIR)/man1/contactwatch.1.gz"
	-rmdir "$(DESTDIR)$(DOCDIR)" 2>/dev/null
	@echo "uninstall: kept $(DESTDIR)$(CONFDIR) and the state directory (/var/lib/contactwatch); remove them by hand if wanted"

DEB_ARCH = $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_ROOT = .build-deb/root
# The package's version carries the commit's time and hash after the program's (0.10.0+git20261206052200.1a2b3c4):
# two builds of one program version are different packages, and a later commit sorts after an earlier one. With the
# same version, `apt install ./contactwatch_….deb` over an installed build says "already the newest version" and
# installs nothing, so an upgrade between two builds of 0.9.0 silently kept the old binaries (session 38).
# Only this checkout's own commit: `-c safe.directory` for a `sudo make deb` in a checkout another user owns (git
# refused it, and the version fell back to the plain one), and none from a repository the tree sits inside. Without
# one (a tarball) the version is the plain one, which sorts below every +git build: `make deb` says so.
GIT_HERE = $(shell [ "$$(git -c safe.directory='$(CURDIR)' -C '$(CURDIR)' rev-parse --show-toplevel 2>/dev/null)" = '$(CURDIR)' ] && echo yes)
DEB_BUILD = $(if $(GIT_HERE),$(shell TZ=UTC git -c safe.directory='$(CURDIR)' log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S | sed 's/^/+git/')$(shell git -c safe.directory='$(CURDIR)' rev-parse --short=7 HEAD | sed 's/^/./'))
DEB_VERSION = $(VERSION)$(DEB_BUILD)
DEB_FILE = contactwatch_$(DEB_VERSION)_$(DEB_ARCH).deb
# Who answers for the package: set it to your organisation's (lintian calls a localhost address bogus).
DEB_MAINTAINER ?= ContactWatch maintainers <contactwatch@localhost>

# The package's bytes follow from the commit: every file's date and the archive's own are the commit's (dpkg-deb reads
# SOURCE_DATE_EPOCH), as are the manual pages' and the changelog's (reproducible-builds.org).
ifneq ($(GIT_HERE),)
deb: export SOURCE_DATE_EPOCH := $(shell git -c safe.directory='$(CURDIR)' log -1 --format=%ct)
endif

# /etc/contactwatch/contactwatchd.yaml is a conffile: dpkg keeps an operator's edits on upgrade (and its checksum is
# dpkg's own, not in md5sums, so that debsums does not call an edit a damaged file).
deb: release
	rm -rf "$(DEB_ROOT)"
	$(MAKE) --no-print-directory install DESTDIR="$(CURDIR)/$(DEB_ROOT)" PREFIX=/usr COPYRIGHT_FLAGS=--common-licenses
	install -d "$(DEB_ROOT)/DEBIAN"
# A native package's changelog (Debian policy 12.7): this build's version and the commit it was made of, dated by
# that commit (by the build's time outside a git checkout).
	set -e; doc="$(DEB_ROOT)/usr/share/doc/contactwatch"; \
	if [ -n "$(GIT_HERE)" ]; then \
	    what="Built from commit $$(git -c safe.directory='$(CURDIR)' log -1 --format='%h: %s' | tr -d '\000-\037\177')."; \
	    when=$$(LC_ALL=C TZ=UTC git -c safe.directory='$(CURDIR)' log -1 --format=%cd --date=format-local:'%a, %d %b %Y %H:%M:%S +0000'); \
	else \
	    what="Built outside a git checkout: no commit to name."; when=$$(LC_ALL=C date -u -R); \
	fi; \
	what=$$(printf '%s\n' "$$what" | fold -s -w 72 | sed -e 's/ *$$//' -e '2,$$s/^/    /'); \
	printf 'contactwatch (%s) unstable; urgency=medium\n\n  * %s\n\n -- %s  %s\n' \
	    "$(DEB_VERSION)" "$$what" "$(DEB_MAINTAINER)" "$$when" | gzip -9n > "$$doc/changelog.gz"; \
	chmod 0644 "$$doc/changelog.gz"
# Yams (the YAML reader of swift-configuration) carries libyaml's C source and is linked in like every Swift package:
# by design, so lintian's embedded-library tag is overridden, saying why.
	install -d "$(DEB_ROOT)/usr/share/lintian/overrides"
	printf '%s\n' "# libyaml comes inside the Swift package Yams, linked statically as every Swift package is (no shared Swift libraries on the host)." \
	    "contactwatch: embedded-library libyaml [usr/bin/contactwatchd]" > "$(DEB_ROOT)/usr/share/lintian/overrides/contactwatch"
	chmod 0644 "$(DEB_ROOT)/usr/share/lintian/overrides/contactwatch"
	{ echo "Package: contactwatch"; \
	  echo "Version: $(DEB_VERSION)"; \
	  echo "Architecture: $(DEB_ARCH)"; \
	  echo "Maintainer: $(DEB_MAINTAINER)"; \
	  echo "Depends: libc6 (>= 2.35), libstdc++6 (>= 12), libgcc-s1, $(RUNTIME_PACKAGES)"; \
	  echo "Suggests: sqlite3"; \
	  echo "Section: admin"; \
	  echo "Priority: optional"; \
	  echo "Installed-Size: $$(find "$(DEB_ROOT)" -path "$(DEB_ROOT)/DEBIAN" -prune -o -type f -printf '%s\n' | awk '{ k += int(($$1 + 1023) / 1024) } END { print k }')"; \
	  echo "Description: probation supervision-contact alerting daemon (ZeroMQ in, alerts out)"; \
	  echo " contactwatchd reads supervision-contact events from ZeroMQ, keeps per-case"; \
	  echo " state in SQLite and publishes alerts; contactwatch replays, generates and"; \
	  echo " tails streams. systemd unit included."; \
	} > "$(DEB_ROOT)/DEBIAN/control"
	echo "$(CONFDIR)/contactwatchd.yaml" > "$(DEB_ROOT)/DEBIAN/conffiles"
	printf '#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n' > "$(DEB_ROOT)/DEBIAN/postinst"
# A purge takes the service's enablement with it (the link `systemctl enable` made from the unit's WantedBy=), as
# dh_installsystemd's scripts do: left, a reinstall came back enabled, to start at the next boot on the example
# configuration (an operator audit, session 43). A plain remove keeps it, as Debian does, for a reinstall.
	printf '#!/bin/sh\nset -e\nif [ "$$1" = purge ]; then\n    rm -f /etc/systemd/system/multi-user.target.wants/contactwatchd.service\n    if command -v deb-systemd-helper >/dev/null; then deb-systemd-helper purge contactwatchd.service >/dev/null || true; fi\nfi\nif [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n' > "$(DEB_ROOT)/DEBIAN/postrm"
	printf '#!/bin/sh\nset -e\nif [ "$$1" = remove ] && [ -d /run/systemd/system ]; then systemctl stop contactwatchd.service || true; fi\n' > "$(DEB_ROOT)/DEBIAN/prerm"
	chmod 0755 "$(DEB_ROOT)/DEBIAN/postinst" "$(DEB_ROOT)/DEBIAN/postrm" "$(DEB_ROOT)/DEBIAN/prerm"
	cd "$(DEB_ROOT)" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum > DEBIAN/md5sums
	dpkg-deb --root-owner-group --build "$(DEB_ROOT)" "$(DEB_FILE)"
	@if [ -z "$(DEB_BUILD)" ]; then echo "deb: warning: no git commit of this tree found: the version is plain $(VERSION), which sorts below every $(VERSION)+git… build (apt takes it as a downgrade)" >&2; fi
	@echo "deb: $(DEB_FILE) (apt install ./$(DEB_FILE))"

# Proves the installed executables run on a host without the Swift toolchain: a private mount namespace hides the
# toolchain's directory under an empty tmpfs, checks that the toolchain's runtime is really gone (a debug build,
# linked against it, must fail there), then runs the installed --version of both and starts the installed daemon
# (ready, SIGTERM, exit 0). Needs root and unshare -m; without them it checks ldd only and says why.
check-install: install-check-tree
	@Deploy/check-install.sh "$(CURDIR)/.build-check-install"

.PHONY: install-check-tree
install-check-tree:
	rm -rf .build-check-install
	$(MAKE) --no-print-directory install DESTDIR="$(CURDIR)/.build-check-install" PREFIX=/usr
