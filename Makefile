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

# 1,000 charge points for a minute against the embedded CSMS; Locust's table at the end,
# its CSV and HTML report in a fresh folder under results/.
demo: $(STAMP)
	@run=results/demo-$$(date +%Y%m%d-%H%M%S); mkdir -p $$run; \
	$(BIN)/locust -f locustfile.py --headless --users 1000 --spawn-rate 100 --run-time 60s \
		--heartbeat-interval 10 --authorize-interval 30 --only-summary \
		--csv $$run/demo --csv-full-history --html $$run/report.html; \
	status=$$?; echo "reports: $$run/"; exit $$status

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench.latency

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

csms: $(STAMP)
	$(BIN)/python -m swarm.csms --port 9000

clean:
	rm -rf $(VENV) build *.egg-info
