# Two commands matter: `make demo` and `make test`. Both install into .venv and start the local stack.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install system-deps demo test test-unit lint bench stack-up stack-down clean

install: system-deps $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python -c 'import models.recommender as m; m.warm_up()'  # compiles the numba kernels once (~20 s)
	touch $@

# redis-server, promtool (package prometheus), chromium and chromedriver from Debian when missing (as root); Java 17 and Maven are needed for the Kafka jars.
system-deps:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing redis-server (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else echo "redis-server is missing: sudo apt-get install redis-server"; exit 1; fi; }
	@command -v promtool >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing promtool (apt-get prometheus; tests check deploy/prometheus with it)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else echo "promtool is missing: sudo apt-get install prometheus"; exit 1; fi; }
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium and chromium-driver (apt-get; tests drive the dashboard page headless)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "chromium is missing: sudo apt-get install chromium chromium-driver"; exit 1; fi; }
	@command -v java >/dev/null || { echo "Java 17+ is missing: apt-get install openjdk-17-jre-headless"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is missing: apt-get install maven"; exit 1; }

stack-up: install
	$(BIN)/personalize stack up

stack-down:
	$(BIN)/personalize stack down

# DEMO_ARGS: options of `personalize demo` (e.g. DEMO_ARGS="--events 3000"); see `personalize demo --help`.
demo: stack-up
	$(BIN)/personalize demo $(DEMO_ARGS)

# Integration modules run one pytest session each: they share a session namespace and worker
# otherwise, and one module's traffic (invalid records, extra events) broke another's exact counts.
# Every module runs even when one fails; the failed ones are listed at the end.
test: stack-up
	$(BIN)/pytest -m "not integration"
	@failed=""; for module in tests/integration/test_*.py; do \
	  echo "== $$module"; $(BIN)/pytest -q -m integration $$module; rc=$$?; \
	  [ $$rc = 0 ] || [ $$rc = 5 ] || failed="$$failed $$module"; \
	done; \
	if [ -n "$$failed" ]; then echo "integration modules that failed:$$failed"; exit 1; fi

test-unit: install
	$(BIN)/pytest -m "not integration"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Throughput, freshness, lookups, scaling and memory on the local stack (about 8 min); docs/benchmarks.md.
bench: stack-up
	$(BIN)/personalize bench

clean: stack-down
	rm -rf .stack $(VENV)
