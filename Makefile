# um2n: the two commands are `make run` (the main job) and `make test` (the test suite).
# Both run the install step first; it is a no-op in seconds once the environment exists.
SHELL := /bin/bash
PYTEST_ARGS ?=
RUN_ARGS ?=

.PHONY: install run test test-fast acceptance shell help

help:
	@echo "make run      install if needed, then run the main job (see README)"
	@echo "make test     install if needed, then run the test suite (what CI runs; at most 20 min)"
	@echo "make acceptance  the long acceptance runs (tests marked 'acceptance'; about 13 min)"
	@echo "make install  build/refresh the environment (idempotent)"
	@echo "make shell    a shell whose python is the um2n environment"

install:
	@bash install/install.sh

run: install
	@bash install/run.sh -m um2n simulate swirl --config configs/swirl.toml --mover none um2n --static-lc 0.02 0.015 $(RUN_ARGS)

test: install
	@bash install/run.sh -m pytest -m "not acceptance" $(PYTEST_ARGS)

test-fast: install
	@bash install/run.sh -m pytest -m "not slow and not acceptance" $(PYTEST_ARGS)

acceptance: install
	@bash install/run.sh -m pytest -m acceptance $(PYTEST_ARGS)

shell: install
	@bash install/run.sh -c 'import os, sys; os.execvp("bash", ["bash"])'
