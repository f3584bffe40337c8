# The two commands a newcomer needs: `make demo` and `make test`. Both build .venv themselves,
# pinned by constraints.txt, so a fresh machine gets exactly what was tested.
# `make demo PORT=9000` runs the demo on another port.
PYTHON ?= python3
PORT   ?= 8080
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
# LlamaIndex pins an older openai SDK than ours, so the one test that drives it runs it from a
# venv of its own (tests/integration/test_llamaindex.py), pinned by constraints-llamaindex.txt.
LLAMA  := .venv-llamaindex

.PHONY: demo test test-services lint typecheck unit format bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[dev]'
	@touch $@ $(VENV)/.installed

# The demo extra adds the openai SDK, which the demo's printed SDK example uses.
$(VENV)/.installed-demo: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[demo]'
	@touch $@ $(VENV)/.installed

demo: $(VENV)/.installed-demo
	$(BIN)/octoroute demo --port $(PORT)

$(LLAMA)/.installed: constraints-llamaindex.txt
	$(PYTHON) -m venv $(LLAMA)
	$(LLAMA)/bin/python -m pip install --quiet --disable-pip-version-check \
		-c constraints-llamaindex.txt llama-index-llms-openai-like llama-index-embeddings-openai-like
	@touch $@

# The shared-state tests run a real redis-server, and the dashboard's browser tests Debian's
# chromium and chromium-driver; installed here when they are missing.
test-services:
	@sh scripts/ensure-redis-server.sh
	@sh scripts/ensure-chromium.sh

test: $(VENV)/.installed-dev $(LLAMA)/.installed test-services
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

unit: $(VENV)/.installed-dev
	$(BIN)/pytest tests/unit

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

# Re-pin every dependency to what is installed in .venv now (after a deliberate upgrade).
lock: $(VENV)/.installed-dev
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^octoroute' > constraints.txt

clean:
	rm -rf $(VENV) $(LLAMA) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
