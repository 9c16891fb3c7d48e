# The two commands: `make run` (serve the demo on http://127.0.0.1:5000) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test lint typecheck worker bench clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Both install the pinned, hashed versions of the lock files, then the gateway itself.
$(STAMP_RUN): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(STAMP_DEV): requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@ $(STAMP_RUN)

# Re-pin after changing the dependencies in pyproject.toml; `make lock UPGRADE=--upgrade`
# moves every pin to the newest release. The dev lock is held to the runtime lock's pins.
COMPILE = $(BIN)/pip-compile --quiet --strip-extras --generate-hashes --no-emit-index-url \
	--no-emit-find-links $(UPGRADE)
lock: $(STAMP_DEV)
	$(COMPILE) --output-file=requirements.lock pyproject.toml
	$(COMPILE) --allow-unsafe --extra=dev --constraint=requirements.lock \
		--output-file=requirements-dev.lock pyproject.toml

# Where `make run` serves: HOST=0.0.0.0 PORT=8000 make run.
HOST ?= 127.0.0.1
PORT ?= 5000
# The demo's payment callback path tokens, so the README's curl examples work as written;
# a token set in the environment wins (one in .env does not: export it). Secrets in production.
DEMO_TOKENS = MPESA_CALLBACK_TOKEN=$${MPESA_CALLBACK_TOKEN:-demo-mpesa} \
	MTN_MOMO_CALLBACK_TOKEN=$${MTN_MOMO_CALLBACK_TOKEN:-demo-momo} \
	AIRTEL_CALLBACK_TOKEN=$${AIRTEL_CALLBACK_TOKEN:-demo-airtel} \
	AT_PAYMENTS_CALLBACK_TOKEN=$${AT_PAYMENTS_CALLBACK_TOKEN:-demo-at}

run: $(STAMP_RUN)
	$(BIN)/paygo db upgrade
	$(BIN)/paygo demo --if-empty
	$(DEMO_TOKENS) $(BIN)/paygo dev run --host $(HOST) --port $(PORT)

test: $(STAMP_DEV)
	$(BIN)/ruff check app tests bench migrations wsgi.py
	$(BIN)/ruff format --check app tests bench migrations wsgi.py
	$(BIN)/mypy
	$(BIN)/pytest -q

worker: $(STAMP_RUN)
	$(BIN)/paygo worker

# Each prints a table, then one JSON line; payments, ussd and metrics start gunicorn (payments
# also rq workers), a private PostgreSQL database and a Redis db number on loopback, and stop them.
bench: $(STAMP_DEV)
	$(BIN)/python bench/cli.py
	$(BIN)/python bench/tokens.py
	$(BIN)/python bench/messages.py
	$(BIN)/python bench/ussd.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/payments.py

clean:
	rm -rf $(VENV) instance/*.sqlite3 .pytest_cache .mypy_cache .ruff_cache

# Generate a migration from the models against a scratch SQLite database.
migration: $(STAMP_DEV)
	rm -f /tmp/paygo-migration.sqlite3
	DATABASE_URL=sqlite:////tmp/paygo-migration.sqlite3 $(BIN)/paygo db upgrade
	DATABASE_URL=sqlite:////tmp/paygo-migration.sqlite3 $(BIN)/python -m paygo.cli.revision "$(m)"
