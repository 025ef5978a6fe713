# Two commands for a newcomer: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
VPY := $(VENV)/bin/python
DEMO_HOME ?= var/demo

.PHONY: demo test soak venv bench bench-lens messages

venv: $(VENV)/.installed

# pip installs uv, and uv the pinned rest: the same set as pip, in a third of the time.
$(VENV)/.installed: requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -c constraints.txt uv
	$(VENV)/bin/uv pip install --quiet --python $(VPY) --compile-bytecode \
		-r requirements.txt -c constraints.txt
	touch $@

# The demo workspace is generated data: it is rebuilt on every `make demo`,
# but only a folder the demo itself made (it carries .polyrecon-demo) is ever removed.
demo: venv
	@if [ -e "$(DEMO_HOME)" ] && [ ! -e "$(DEMO_HOME)/.polyrecon-demo" ]; then \
		echo "$(DEMO_HOME) exists and is not a demo workspace: set DEMO_HOME to another folder"; exit 2; fi
	rm -rf "$(DEMO_HOME)"
	$(VPY) -m pipelines demo --home "$(DEMO_HOME)"

# Every test, tests/scaleout included, on one worker more than the machine has cores
# (pytest-xdist): a test waiting for its servers or subprocesses leaves its core to another. A
# fixture built once per session (the demo, the replayed mail months, the Airflow environment)
# is built by the first worker that needs it and copied per test by the others.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
test: venv
	$(VPY) -m ruff check .
	$(VPY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup

# The robustness suite with many more SIGKILL moments (SOAK_KILLS, SOAK_SEED to vary them).
SOAK_KILLS ?= 200
soak: venv
	SOAK_KILLS=$(SOAK_KILLS) $(VPY) -m pytest -q tests/robustness

# Lens API pull throughput and peak memory against the loopback fake (prints a table).
bench-lens: venv
	$(VPY) benchmarks/lens_pull.py

# The monthly job at 100k, 1M and 5M device rows against a DuckDB-only floor and a plain
# pandas script, then the monthly DAG at 100 and 1,000 customers; writes
# benchmarks/results.md. BENCH_SIZES=100000,1000000 BENCH_DAG=100 for a quicker run.
BENCH_SIZES ?= 100000,1000000,5000000
BENCH_DAG ?= 100,1000
bench: venv
	$(VPY) benchmarks/run.py --sizes $(BENCH_SIZES) --dag-customers "$(BENCH_DAG)"

# The texts to translate: extracted from the code and templates (babel.cfg), merged into each
# language's pipelines/locale/<language>/LC_MESSAGES/polyrecon.po; translate what is new there.
messages: venv
	mkdir -p var
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ -k NP_:1,2 --no-location --sort-output \
		-o var/polyrecon.pot .
	$(VENV)/bin/pybabel update -i var/polyrecon.pot -d pipelines/locale -D polyrecon \
		--width 100 --ignore-obsolete --no-fuzzy-matching
