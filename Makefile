# The two commands a newcomer needs:
#   make run    serve the demo portal on http://127.0.0.1:8000 (SQLite, synthetic cluster, demo Prometheus)
#   make test   run the whole test suite (lint, types, checks, unit, and stack tests when CI=true)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ENV := PORTAL_DEBUG=true
DEMO_SEED ?= 42

.PHONY: run test venv venv-dev demo lint typecheck checks unit unit-postgres unit-mariadb messages screenshots prolog stack-up stack-down stack-run clean

venv:
	@scripts/bootstrap

venv-dev:
	@scripts/bootstrap dev

demo: venv
	$(DEMO_ENV) $(PY) manage.py migrate --noinput -v 0
	$(DEMO_ENV) $(PY) manage.py seed_demo --seed $(DEMO_SEED)
	$(DEMO_ENV) $(PY) manage.py seed_robinhood --seed $(DEMO_SEED)
	$(DEMO_ENV) $(PY) manage.py create_dev_users

# The demo's Prometheus (scripts/demo-prometheus) loads beside runserver (it says when it is ready,
# within a minute) and stops with it; without one (no prometheus package, not root) the portal
# still runs and its pages say "Prometheus unavailable".
DEMO_PROMETHEUS_PORT ?= 9091
run: demo
	@echo "Serving the demo portal on http://127.0.0.1:8000 (sign in as alice / demo-alice or admin / demo-admin)"
	@trap 'scripts/demo-prometheus stop' EXIT; \
	  { PY=$(PY) DEMO_PROMETHEUS_PORT=$(DEMO_PROMETHEUS_PORT) scripts/demo-prometheus start || echo "make run: serving without the demo Prometheus (no graphs, no top figures)"; } & \
	  $(DEMO_ENV) PROMETHEUS_URL=http://127.0.0.1:$(DEMO_PROMETHEUS_PORT) $(PY) manage.py runserver 127.0.0.1:8000

test: venv-dev
	@scripts/test

lint: venv-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv-dev
	$(VENV)/bin/mypy

unit: venv-dev
	$(VENV)/bin/pytest -m "not integration and not browser"

messages: venv-dev
	PORTAL_DEBUG=true $(PY) manage.py makemessages -l fr -l th --no-obsolete --ignore '.venv/*' --ignore 'var/*' --ignore 'tests/*'
	PORTAL_DEBUG=true $(PY) manage.py makemessages -d djangojs -l fr -l th --no-obsolete --ignore '.venv/*' --ignore 'var/*' --ignore 'static/vendor/*'
	PORTAL_DEBUG=true $(PY) manage.py compilemessages --ignore '.venv/*'

screenshots: venv-dev
	$(VENV)/bin/pytest -m browser tests/browser -k screenshots

# The job-script uploader as the one file a site copies to the slurmctld host (slurm_prolog/README.md).
# PROLOG_PYTHON: the interpreter on that host (its #! line).
PROLOG_PYTHON ?= /usr/bin/python3
prolog:
	python3 -m zipapp slurm_prolog/userportal_prolog -p $(PROLOG_PYTHON) -o slurm_prolog/slurm_prolog_userportal.pyz
	@echo "Built slurm_prolog/slurm_prolog_userportal.pyz: install it and userportal-prolog.ini as slurm_prolog/README.md says"

stack-up:
	scripts/stack up

stack-down:
	scripts/stack down

clean:
	rm -rf var/*.sqlite3 var/static
