# Two entry points for a fresh machine: `make run` and `make test`. Each creates .venv and
# installs the pinned set (constraints.txt) on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run demo test lint typecheck audit unit benchmark clean lock browser bench-tools

# The browser tests drive Debian's Chromium (Playwright's own browser download needs the
# internet). `make test` installs it when it is missing; `make run` never needs it.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The service on embedded defaults (SQLite file + local Ray) at http://127.0.0.1:8000; it prints
# the first API key and a curl that submits a digits job.
run: $(STAMP)
	$(BIN)/automl serve

# A search from the command line: digits with progress bars and a result table.
demo: $(STAMP)
	$(BIN)/automl search --dataset digits --out runs/demo-digits --overwrite

lint: $(STAMP)
	$(BIN)/ruff check automl api workers migrations tests benchmarks
	$(BIN)/ruff format --check automl api workers migrations tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

$(CHROMIUM):
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

browser: $(CHROMIUM)

# wrk (C) sends the reads of `benchmarks/load.py --read-client wrk` and `read_burst.py
# --client wrk`; the tests do not need it.
bench-tools: /usr/bin/wrk

/usr/bin/wrk:
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk

# Known vulnerabilities in the pinned set, from PyPI's advisory data: a finding fails; an
# advisory source that cannot be reached is reported as "NOT AUDITED" and does not.
audit: $(STAMP)
	$(BIN)/python .ci/audit.py

# -n 2 --dist loadfile: two processes, each taking whole modules (a module's servers and
# clusters are shared by its tests); --durations shows where the time goes. Tests marked
# serial (one restarts PostgreSQL) run alone afterwards.
test: lint typecheck audit browser
	AUTOML_TEST_CHROMIUM=$(CHROMIUM) $(BIN)/pytest -n 2 --dist loadfile --durations=25 -m "not serial"
	AUTOML_TEST_CHROMIUM=$(CHROMIUM) $(BIN)/pytest -m serial

unit: $(STAMP)
	$(BIN)/pytest tests/unit

benchmark: $(STAMP)
	$(BIN)/python benchmarks/search_quality.py

# Re-pin after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -vi '^automl' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache runs
