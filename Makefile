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
#
# SWIFT_BUILD_FLAGS passes extra flags to swift build/test, e.g. SWIFT_BUILD_FLAGS="--scratch-path .build-ci".

SHELL := /bin/bash
SWIFT ?= swift
SWIFT_BUILD_FLAGS ?=
DEB_PACKAGES := libzmq3-dev libsystemd-dev libsqlite3-dev pkg-config

.PHONY: all deps build test demo demo-secure bench fuzz clean

all: build

deps:
	@if ! command -v dpkg >/dev/null 2>&1; then \
	    if pkg-config --exists libzmq libsystemd sqlite3 2>/dev/null; then \
	        echo "deps: not a Debian system, but pkg-config finds libzmq, libsystemd and sqlite3"; exit 0; \
	    fi; \
	    echo "deps: not a Debian system; install the development files of libzmq, libsystemd and sqlite3, and pkg-config" >&2; \
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
