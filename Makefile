# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test install migrate bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

migrate: install
	$(BIN)/hub migrate

# Embedded mode: SQLite in ./var, web + worker + scheduler in one process.
run: migrate
	$(BIN)/hub serve

# The whole suite on SQLite, then again on PostgreSQL when HUB_TEST_POSTGRES_URL is set.
test: install
	$(BIN)/pytest
	@if [ -n "$$HUB_TEST_POSTGRES_URL" ]; then \
		echo "== again on PostgreSQL ($$HUB_TEST_POSTGRES_URL)"; \
		HUB_TEST_DB=postgres $(BIN)/pytest; \
	fi

bench: install
	$(BIN)/python bench/delivery.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
