# The two commands: `make test` (the test suite) and `make book` (the reproduction as a site).
PY ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
JOBS ?= auto
PROFILE ?= tiny
CONFIG ?=
FROM_SCRATCH ?=
MODELS_BUDGET ?=

.PHONY: test test-slow install book clean

$(VPY):
	$(PY) -m venv $(VENV)

# torch and torchvision first, pinned to the tested pair, then the project with its extras.
$(STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(VPY) -m pip install -q -e '.[dev,book]'
	touch $(STAMP)

install: $(STAMP)

# pytest-xdist: one worker per core (JOBS=1: one process), each test file on one worker so that its
# module fixtures are built once; the smoke book and models are built once and shared by the workers.
test: $(STAMP)
	$(VPY) -m pytest -q -n $(JOBS) --dist loadfile $(PYTEST_ARGS)

test-slow: $(STAMP)
	RCDM_SLOW=1 $(VPY) -m pytest -q -n $(JOBS) --dist loadfile $(PYTEST_ARGS)

# CONFIG=FILE: your own settings (a YAML file with a profile's keys) merged over the profile.
# Models (reused with their hashes checked, or trained; FROM_SCRATCH=1 retrains), the
# notebooks (papermill, cached), the JavaScript (npm when present), then jupyter-book.
book: $(STAMP)
	@echo "[book] environment: $(VENV) ready; profile $(PROFILE)"
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(VPY) scripts/run_notebooks.py --profile $(PROFILE) \
		$(if $(CONFIG),--config $(abspath $(CONFIG)),) --models --build \
		$(if $(filter 1 yes true,$(FROM_SCRATCH)),--from-scratch,) \
		$(if $(MODELS_BUDGET),--models-budget $(MODELS_BUDGET),)

clean:
	rm -rf $(VENV) .pytest_cache book/_build
