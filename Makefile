# Mesa: `make run` serves the portal, `make test` runs the tests. Both set everything up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
FLASK := MESA_ENV=$${MESA_ENV:-development} HF_HUB_OFFLINE=1 $(BIN)/flask --app portal
HOST ?= 127.0.0.1
PORT ?= 5000
# The production server listens on MESA_BIND when it is set, else on HOST:PORT.
BIND := $(or $(MESA_BIND),$(HOST):$(PORT))
GUNICORN := MESA_ENV=$${MESA_ENV:-development} MESA_BIND=$(BIND) HF_HUB_OFFLINE=1 $(BIN)/gunicorn \
	-c python:portal.gunicorn_conf

.PHONY: run serve setup demo test test-postgres fuzz translations chromium dovecot extract-messages bench bench-quality bench-hosts bench-startup bench-load bench-reports bench-scale calibrate clean

$(BIN)/.installed: requirements.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

translations: $(BIN)/.installed
	$(BIN)/pybabel compile --statistics -d portal/translations

setup: $(BIN)/.installed translations
	$(FLASK) db upgrade
	$(FLASK) kb import
	$(FLASK) index build
	$(FLASK) users demo
	$(FLASK) desk defaults

# Production server (gunicorn, MESA_WORKERS processes of MESA_THREADS threads); developers who want the
# reloader run `$(FLASK) run --debug` instead.
run: setup
	$(FLASK) demo offer
	$(GUNICORN) portal.wsgi:app

# Four months of demo activity (tickets, questions, surveys, votes) for trying the desk and the reports;
# `$(FLASK) demo remove` takes it out.
demo: setup
	$(FLASK) demo seed

# The same server without the setup steps (the database, index and accounts already prepared).
serve: $(BIN)/.installed translations
	$(GUNICORN) portal.wsgi:app

# Debian's chromium for the browser tests (tests/browser/), installed when missing.
chromium:
	scripts/install-chromium.sh

# Debian's Dovecot for the mail-in tests (a throwaway server per test session), installed when missing.
dovecot:
	scripts/dovecot.sh install

test: $(BIN)/.installed translations chromium dovecot
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The JSON API fuzzed by schemathesis from /api/openapi.json against a live server on 127.0.0.1 (a throwaway
# instance, fake ranking), as an admin, a customer and an anonymous caller: no 5xx, every answer matches the
# document (about 3 minutes; FUZZ_ARGS="--seconds 20" for a shorter run).
fuzz: $(BIN)/.installed translations
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/fuzz_api.py $(FUZZ_ARGS)

# Developers: refresh the message catalogs after changing user-facing strings.
extract-messages: $(BIN)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k N_ --no-location --sort-output -o portal/translations/messages.pot .
	$(BIN)/pybabel update -i portal/translations/messages.pot -d portal/translations

# Retrieval quality of the default ranking and the two baselines on every dev pack, as a Markdown table.
bench-quality: $(BIN)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/python -m indexer eval bench/packs/*/ bench/starter --compare --table

# Re-fit the confidence of each shipped ranking on the benchmark packs and the starter question set
# (indexer/calibration/<ranking>.json; the next `flask index build` uses it).
calibrate: $(BIN)/.installed
	for ranking in hybrid+e5 e5-hybrid hybrid use+bm25 fake; do \
	  HF_HUB_OFFLINE=1 $(BIN)/python -m indexer calibrate bench/packs/*/ bench/starter --config $$ranking || exit 1; done

# Speed and memory at 1k, 10k and 100k chunks (about an hour on 2 cores, most of it embedding 100k chunks).
bench-scale: $(BIN)/.installed translations
	HF_HUB_OFFLINE=1 $(BIN)/python bench/scale.py

# Several hosts over one database: publish -> found by another host, publishes during a rebuild, kill -9
# in the middle of a publish and of a build; on SQLite, then on a throwaway PostgreSQL (bench/hosts.py).
bench-hosts: $(BIN)/.installed translations
	HF_HUB_OFFLINE=1 $(BIN)/python bench/hosts.py --database-url ""
	scripts/with-postgres.sh env HF_HUB_OFFLINE=1 $(BIN)/python bench/hosts.py

# A web worker's start at 100k chunks, from the database and from its snapshot (bench/startup.py).
bench-startup: $(BIN)/.installed translations
	HF_HUB_OFFLINE=1 $(BIN)/python bench/startup.py

bench: bench-quality bench-hosts bench-startup bench-load bench-reports bench-scale

# The reports and trends pages at ~15k tickets and ~100k portal events (a year of demo data), then how well and
# how fast unanswered questions are grouped (the FAQ to write) on the packs (about 5 minutes).
bench-reports: $(BIN)/.installed translations
	HF_HUB_OFFLINE=1 $(BIN)/python bench/reports_cost.py
	HF_HUB_OFFLINE=1 $(BIN)/python bench/gap_clusters.py --backends use e5

# Throughput and latency through gunicorn with 2 workers on 127.0.0.1, on a throwaway instance (about 5 minutes).
bench-load: $(BIN)/.installed translations
	HF_HUB_OFFLINE=1 $(BIN)/python bench/load.py


clean:
	rm -rf $(VENV) instance .pytest_cache

# The database tests again on a throwaway PostgreSQL server (installed if missing).
test-postgres: $(BIN)/.installed translations dovecot
	scripts/with-postgres.sh env HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not real_model and not browser" $(PYTEST_ARGS)
