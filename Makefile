# One command each, from a fresh clone: `make train` and `make test`.
# Both create .venv and install darkforge into it on first use (about a minute for torch).
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin
ARGS   ?=

.PHONY: setup train test lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

train: setup  ## the main job: Darknet-53 on CIFAR-10 (downloads it on first use)
	$(BIN)/darkforge train archs/darknet53.yaml $(ARGS)

test: setup  ## the test suite (fast; `make test ARGS="-m slow"` runs the slow real-data tests)
	$(BIN)/python -m pytest $(ARGS)

lint: setup
	$(BIN)/ruff check darkforge tests benchmarks
	$(BIN)/ruff format --check darkforge tests benchmarks
	$(BIN)/mypy darkforge
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info
