# cogviz: `make lab` opens the lessons, `make test` runs every test. Both build .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is installed on its own first, and only when the venv has none: a CUDA torch you put there
# yourself is kept. torch==2.13.0 takes the CPU wheel where pip finds one locally; elsewhere pass
# TORCH_PIP_ARGS="--index-url <PyTorch's CPU or CUDA wheel index>" (see README, "GPU users").
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PYTEST_ARGS ?=
STAMP := $(VENV)/.cogviz-installed
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json

.PHONY: install lab test docs bench train figures clean

install: $(STAMP) $(LAB_OVERRIDES)

$(PY):
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "cogviz needs python >= 3.11, this is " + sys.version'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	@$(PY) -c 'import torch' 2>/dev/null || $(PY) -m pip install --progress-bar off $(TORCH_SPEC) $(TORCH_PIP_ARGS)
	$(PY) -m pip install --progress-bar off -q -e '.[notebook,test]'
	@touch $(STAMP)

# JupyterLab reads <prefix>/share/jupyter/lab/settings/overrides.json: no news prompt, no update check.
$(LAB_OVERRIDES): lab-settings/overrides.json | $(STAMP)
	@mkdir -p $(dir $@) && cp lab-settings/overrides.json $@

LAB_FLAGS = --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate

lab: install
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(LAB_FLAGS) $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# the documentation site: guide, API reference, every lesson executed once -> build/docs/html
docs: install
	$(PY) docs/build.py

bench: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

figures: install
	$(PY) -m cogviz.figures --out docs/figures

train: install
	@$(PY) -c 'import sklearn' 2>/dev/null || $(PY) -m pip install --progress-bar off -q -e '.[train]'
	$(PY) -m cogviz.trainer --out cogviz/toy/weights

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
