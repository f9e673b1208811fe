# Two commands do everything on a fresh machine with Python >= 3.11: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements/dev.lock pyproject.toml Makefile | cksum | cut -d' ' -f1)
UV_VERSION := 0.13.9

.PHONY: install browser postgres demo test lint format bench bench-scale bench-capability bench-incremental bench-remote soak lock ui clean

$(STAMP): requirements/dev.lock pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@# bytecode compiled once here: with PYTHONDONTWRITEBYTECODE set, every process would otherwise
	@# recompile mlflow, sklearn and pandas from source (about 10 s per command on 2 cores)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements/dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP) ## create .venv from the pinned lock files

demo: $(STAMP) ## the main job on the synthetic world
	$(BIN)/recommender demo

browser: ## headless Chromium and pdftotext (Debian packages) for the brief's rendering test
	@command -v chromium >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium and poppler-utils (Debian packages) for the brief's rendering test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium poppler-utils >/dev/null) \
	      || echo "could not install chromium: the brief's rendering test will say so and skip"; \
	  else echo "chromium is not installed and apt-get is not available as root: the brief's rendering test will skip"; fi; }

postgres: ## a PostgreSQL server (Debian package) for the team-mode tests, which start their own on 127.0.0.1
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing postgresql (Debian package) for the team-mode tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null) \
	      || echo "could not install postgresql: the team-mode tests will say so and skip"; \
	  else echo "PostgreSQL is not installed and apt-get is not available as root: the team-mode tests will skip"; fi; }

test: $(STAMP) browser postgres ## lint, the layer contracts and the test suite
	$(BIN)/ruff check recommender features models tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15  # two workers, one test module each at a time

lint: $(STAMP)
	$(BIN)/ruff check recommender features models tests benchmarks

format: $(STAMP)
	$(BIN)/ruff check --fix recommender features models tests benchmarks
	$(BIN)/ruff format recommender features models tests benchmarks

REAL_DATA := $(or $(RECOMMENDER_REAL_DATA),$(wildcard ../shared/data))

bench: $(STAMP) ## benchmarks; results go to benchmarks/results/ (quality needs the real data)
	RECOMMENDER_REAL_DATA=$(REAL_DATA) $(BIN)/python -m benchmarks.run

bench-scale: $(STAMP) ## a whole BACI HS6 world (220 countries x 5,000 products x 25 years): ingest, train, recommend, on both engines (hours)
	$(BIN)/python -m benchmarks.run scale

bench-capability: $(STAMP) ## joint projects with capability signals (each partner's yearly diversification probability) on development years (needs the real data)
	RECOMMENDER_REAL_DATA=$(REAL_DATA) $(BIN)/python -m benchmarks.run capability

bench-incremental: $(STAMP) ## a new year in a trained bank: incremental vs cold train (INCREMENTAL_SIZE=mid|baci12|baci)
	$(BIN)/python -m benchmarks.run incremental

soak: $(STAMP) postgres ## a team server on PostgreSQL with --auth under 8 analysts, 2 trainings and a reader for 10 min (SOAK_SECONDS, SOAK_ANALYSTS)
	$(BIN)/python -m benchmarks.run soak

bench-remote: $(STAMP) ## the 12-year BACI-width bank on S3 (127.0.0.1): push, read, Dask training from it (needs SCALE_SIZE=baci12 make bench-scale first)
	$(BIN)/python -m benchmarks.run remote

ui: $(STAMP)
	$(BIN)/recommender ui

lock: $(STAMP) ## re-pin the lock files
	$(BIN)/uv pip compile pyproject.toml --extra s3 --python-version 3.11 --no-header --no-annotate -o requirements/main.lock
	$(BIN)/uv pip compile pyproject.toml --extra s3 --extra dev --python-version 3.11 --no-header --no-annotate -o requirements/dev.lock

clean:
	rm -rf $(VENV) .recommender .pytest_cache .ruff_cache
