# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test install chromium fonts translations migrate bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

# Debian's chromium, driven by Playwright in the browser tests (`playwright install`
# downloads browsers from elsewhere and is never used). Idempotent.
CHROMIUM = /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		echo "== installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; \
	fi

# DejaVu Sans for the labels of the report e-mails' PNG charts (Cyrillic included);
# without it Pillow's own font is used. Idempotent.
DEJAVU = /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
fonts:
	@if [ ! -f $(DEJAVU) ]; then \
		echo "== installing Debian's fonts-dejavu-core for the report charts"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends fonts-dejavu-core; \
	fi

# After changing the admin's texts: refresh the catalogue template and the Russian
# catalogue, then translate the new (empty or fuzzy) entries in hub/translations/ru.
# The hub compiles the .po files itself at start-up.
translations: $(BIN)/.installed
	$(BIN)/pybabel extract -F hub/translations/babel.cfg -k _l --no-location --omit-header \
		--sort-output -o hub/translations/messages.pot hub/web/admin hub/web/templates/admin connectors
	$(BIN)/pybabel update -i hub/translations/messages.pot -d hub/translations -l ru \
		--ignore-obsolete

migrate: install
	$(BIN)/hub migrate

# Embedded mode: SQLite in ./var, web + worker + scheduler in one process.
run: migrate
	$(BIN)/hub serve

# The whole suite on SQLite, then again on PostgreSQL when HUB_TEST_POSTGRES_URL is set.
test: install chromium fonts
	$(BIN)/pytest
	@if [ -n "$$HUB_TEST_POSTGRES_URL" ]; then \
		echo "== again on PostgreSQL ($$HUB_TEST_POSTGRES_URL)"; \
		HUB_TEST_DB=postgres $(BIN)/pytest; \
	fi

bench: install
	$(BIN)/python bench/delivery.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
