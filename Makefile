# Every target sets up what it needs: a fresh machine needs only `make run` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config/example.toml
STAMP  := $(VENV)/.installed
# Debian packages the test suite drives as real peers and servers.
SYSTEM_PACKAGES := sip-tester:sipp baresip-core:baresip postgresql:/usr/lib/postgresql/15/bin/postgres openssl:openssl

.PHONY: run test bench venv system-packages lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

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
	$(BIN)/softswitch run --config $(CONFIG)

test: venv system-packages
	$(BIN)/pytest -q -p no:cacheprovider

lint: venv
	$(BIN)/ruff check softswitch media routing storage config bench tests
	$(BIN)/mypy softswitch media routing storage config

# The per-issue benchmarks in turn (figures on the terminal; JSON under bench/results/).
# The side-by-side runs need Kamailio (Debian `kamailio`) and `pip install '.[bench]'`:
#   .venv/bin/python -m bench.call_bench --system softswitch,kamailio,sippy
bench: venv system-packages
	@mkdir -p bench/results
	$(BIN)/python -m bench.parser_bench
	$(BIN)/python -m bench.routing_bench
	$(BIN)/python -m bench.codec_bench
	$(BIN)/python -m bench.mixer_bench
	$(BIN)/python -m bench.conference_bench
	$(BIN)/python -m bench.register_bench --users 10000 --start-rate 2000 --json bench/results/register.json
	$(BIN)/python -m bench.call_bench --system softswitch --json bench/results/calls.json

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
