PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint csms clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# 1,000 charge points for a minute against the embedded CSMS; Locust's table at the end, the
# run's folder (CSV, HTML report, summary, pictures) under results/.
demo: $(STAMP)
	$(BIN)/locust -f scenarios/steady.py --headless --users 1000 --spawn-rate 100 --run-time 60s \
		--heartbeat-interval 10 --authorize-interval 30 --only-summary

# lint-imports checks the import contracts of pyproject.toml ([tool.importlinter]); its cache
# lives in the virtualenv, out of the checkout.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --cache-dir $(VENV)/.import_linter_cache
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench.latency

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --cache-dir $(VENV)/.import_linter_cache

csms: $(STAMP)
	$(BIN)/python -m swarm.csms --port 9000

clean:
	rm -rf $(VENV) build *.egg-info
