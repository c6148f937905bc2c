# Every target sets up what it needs: a fresh machine needs only `make run` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config/example.toml
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
# Debian packages the test suite drives as real peers and servers, and espeak-ng, the
# switch's text-to-speech for prompts (`make run` installs it too).
SYSTEM_PACKAGES := sip-tester:sipp baresip-core:baresip postgresql:/usr/lib/postgresql/15/bin/postgres openssl:openssl espeak-ng:espeak-ng sipvicious:svcrack chromium:/usr/bin/chromium
# ... of which the switch itself needs these at run time.
RUN_PACKAGES := espeak-ng:espeak-ng
# ... and the reference system the operator bench runs beside our switch.
BENCH_PACKAGES := $(SYSTEM_PACKAGES) kamailio:/usr/sbin/kamailio
# Options for `make bench`, e.g. BENCH_ARGS="--workloads 2 --systems softswitch,kamailio".
BENCH_ARGS ?=

.PHONY: run test bench bench-parts venv system-packages lint clean

$(STAMP): pyproject.toml setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	SOFTSWITCH_PURE_PYTHON=1 $(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

# The signalling and media hot paths compiled with mypyc (the list is in setup.py), in place,
# and again whenever one of their sources changes. SOFTSWITCH_PURE_PYTHON=1 runs them
# uncompiled instead.
COMPILED_SOURCES := $(shell sed -n 's/^    "\(.*\.py\)",$$/\1/p' setup.py)
COMPILED := $(VENV)/.compiled$(if $(SOFTSWITCH_PURE_PYTHON),-pure)

$(COMPILED): $(STAMP) $(COMPILED_SOURCES)
	@rm -f $(VENV)/.compiled $(VENV)/.compiled-pure
ifeq ($(SOFTSWITCH_PURE_PYTHON),)
	@# The build's time on the group library (copies keep older times); without a C compiler
	@# or the Python headers the switch still runs, as plain Python, and says so.
	$(BIN)/python setup.py -q build_ext --inplace && touch softswitch/_compiled__mypyc.*.so \
	  || { rm -f $(COMPILED_SOURCES:.py=.cpython-*.so) softswitch/_compiled__mypyc.*.so; \
	       echo "WARNING: mypyc build failed (gcc and Python headers?): running as plain Python"; }
else
	rm -f $(COMPILED_SOURCES:.py=.cpython-*.so) softswitch/_compiled__mypyc.*.so
endif
	@touch $(COMPILED)

# The bench extra: the Sippy B2BUA (a reference system) and matplotlib (the report's plots).
$(BENCH_STAMP): $(COMPILED)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test,bench]'
	@touch $(BENCH_STAMP)

venv: $(COMPILED)

system-packages:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
	  pkg=$${pair%%:*}; probe=$${pair#*:}; \
	  if ! command -v $$probe >/dev/null 2>&1 && [ ! -x $$probe ]; then missing="$$missing $$pkg"; fi; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

run: venv
	@$(MAKE) --no-print-directory system-packages SYSTEM_PACKAGES="$(RUN_PACKAGES)"
	$(BIN)/softswitch run --config $(CONFIG)

test: venv system-packages
	$(BIN)/pytest -q -p no:cacheprovider --durations=25

lint: venv
	$(BIN)/ruff check softswitch media routing storage config peers bench tests
	$(BIN)/ruff format --check softswitch media routing storage config peers bench tests setup.py
	$(BIN)/mypy softswitch media routing storage config peers

# The operator bench suite (bench/suite.py): workloads 1-6 against our switch, Kamailio and
# Sippy; a table on the terminal, JSON and PNG plots under bench/results/. README: "Operator
# bench". `make bench BENCH_ARGS=--quick` for a short run.
bench: $(BENCH_STAMP)
	@$(MAKE) --no-print-directory system-packages SYSTEM_PACKAGES="$(BENCH_PACKAGES)"
	$(BIN)/python -m bench $(BENCH_ARGS)

# The per-issue micro-benchmarks in turn (figures on the terminal).
bench-parts: venv
	$(BIN)/python -m bench.parser_bench
	$(BIN)/python -m bench.routing_bench
	$(BIN)/python -m bench.codec_bench
	$(BIN)/python -m bench.relay_bench
	$(BIN)/python -m bench.mixer_bench
	$(BIN)/python -m bench.conference_bench
	$(BIN)/python -m bench.security_bench
	$(BIN)/python -m bench.security_srtp_bench
	$(BIN)/python -m bench.memory_overload
	$(BIN)/python -m bench.voicemail_bench
	$(BIN)/python -m bench.voicemail_prompts_bench

clean:
	rm -rf $(VENV) data build .pytest_cache .mypy_cache .ruff_cache
	find softswitch media -name '*.so' -delete
