# `make demo` and `make test` do all set-up on a fresh machine: they create .venv and install into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint demo bench bench-deps clean browser

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,config,serve,export,text]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) lint browser
	$(BIN)/python -m pytest

# Headless Chromium for tests/test_report.py (Debian packages); never fatal: without it that test is skipped.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
		{ $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			--no-install-recommends chromium chromium-driver >/dev/null; } \
		|| echo "make: could not install chromium (the browser test of the report will be skipped)"; \
	else echo "make: no apt-get as root: chromium not installed (the browser test of the report will be skipped)"; fi

demo: $(STAMP)
	$(BIN)/rnnkit demo

# Baselines that only the benchmarks compare against (statsforecast ETS/Theta, NeuralForecast's LSTM).
bench-deps: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -r bench/requirements.txt

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
