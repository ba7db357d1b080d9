# The two commands a newcomer needs: `make demo` and `make test`. Everything else is a convenience.
# Python 3.12 comes from .python-version (pyenv) or PATH; uv is installed with pip when missing.

SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PY := .venv/bin/python
# The demo runs on the embedded default (SQLite under var/), whatever DATABASE_URL the shell has.
DEMO_ENV := DATABASE_URL=$(DEMO_DATABASE_URL)

.DEFAULT_GOAL := help
.PHONY: help install demo test test-fast admin airflow stop status lint lint-imports format check-migrations dags clean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

.venv/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || { \
		echo "uv not found: installing it with pip"; python3 -m pip install --quiet uv; }
	$(UV) sync --locked
	@touch $@

install: .venv/.installed ## Create .venv from uv.lock (no Python download).

demo: install ## Migrate the embedded SQLite DB, load the demo organization, run a pipeline through Airflow.
	@mkdir -p var
	$(DEMO_ENV) $(PY) manage.py migrate --noinput -v 1
	$(DEMO_ENV) $(PY) manage.py load_demo
	$(DEMO_ENV) $(PY) manage.py run_demo

test: install ## Run the whole test suite on real PostgreSQL (TEST_DATABASE_URL, or a throwaway server).
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install ## The suite without the slow tests that start real Airflow processes.
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

admin: install ## Serve the Django admin on http://127.0.0.1:8000/admin/ (embedded DB unless DATABASE_URL).
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py runserver 127.0.0.1:8000

airflow: install ## Start Airflow (api-server, scheduler, dag-processor, triggerer; EXECUTOR=celery adds Celery workers) and the admin (gunicorn) from .env.
	$(PY) -m deploy.services start $(if $(EXECUTOR),--executor $(EXECUTOR))

stop: ## Stop exactly the processes `make airflow` started.
	$(PY) -m deploy.services stop

status: ## Which of `make airflow`'s processes are running.
	$(PY) -m deploy.services status

dags: install ## Compile every active or paused pipeline into dags/generated/.
	$(PY) manage.py generate_dags

lint: install ## ruff lint and format check.
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

lint-imports: install ## The import contracts (pyproject.toml [tool.importlinter]; docs/architecture.md).
	.venv/bin/lint-imports --no-cache

format: install ## Apply ruff's formatting and safe fixes.
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

check-migrations: install ## Fail if the models have changes without a migration.
	$(DEMO_ENV) $(PY) manage.py makemigrations --check --dry-run

clean: ## Remove the embedded databases, staging and generated DAGs (keeps .venv).
	rm -rf var dags/generated
