# The two commands a newcomer runs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench worker beat

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# SQLite and Celery eager, whatever the shell has set: the newcomer's portal.
run: install
	env -u DATABASE_URL -u DATABASE_OWNER_URL -u REDIS_URL $(BIN)/python manage.py migrate --noinput
	env -u DATABASE_URL -u DATABASE_OWNER_URL -u REDIS_URL $(BIN)/python manage.py load_demo
	@echo "Custos is serving at http://127.0.0.1:8000 (Ctrl-C to stop)"
	env -u DATABASE_URL -u DATABASE_OWNER_URL -u REDIS_URL $(BIN)/python manage.py runserver 127.0.0.1:8000

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/import.py
	$(BIN)/python bench/mydata.py

worker: install
	$(BIN)/celery -A governance worker --loglevel=info

beat: install
	$(BIN)/celery -A governance beat --loglevel=info
