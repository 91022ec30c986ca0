# The two commands: `make test` (the test suite) and `make book` (arrives with the book issue).
PY ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test test-slow install book clean

$(VPY):
	$(PY) -m venv $(VENV)

# torch and torchvision first, pinned to the tested pair, then the project with its extras.
$(STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(VPY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(VPY) -m pytest -q $(PYTEST_ARGS)

test-slow: $(STAMP)
	RCDM_SLOW=1 $(VPY) -m pytest -q $(PYTEST_ARGS)

book:
	@echo "make book arrives with the book issue (#5); until then only 'make test' exists." >&2; exit 2

clean:
	rm -rf $(VENV) .pytest_cache book/_build
