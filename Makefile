# One command to set up and run the lesson, one to set up and run the tests.
#
#   make lesson                 # execute the four notebooks (profile: auto) into out/
#   make lesson PROFILE=tiny    # seconds, offline, on the built-in sample
#   make test                   # unit tests + all notebooks on the tiny profile + ruff
#
# TORCH picks the PyTorch build. The default pins the CPU wheel this project is tested with;
# on Colab or a CUDA machine keep the torch you have: `make test TORCH=`.

PYTHON  ?= python3
VENV    ?= .venv
TORCH   ?= torch==2.13.0
PROFILE ?= auto
OUT     ?= out
PY      := $(VENV)/bin/python

.PHONY: setup lesson test lint benchmark reports clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(if $(strip $(TORCH)),$(PY) -m pip install --quiet "$(TORCH)")
	$(PY) -m pip install --quiet -e ".[notebooks,test]"
	touch $@

lesson: setup
	$(VENV)/bin/mnli-lesson lesson --profile $(PROFILE) --out $(OUT)

test: setup lint
	$(PY) -m pytest --nbval-lax -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check .

benchmark: setup
	$(PY) benchmarks/throughput.py

# Reference results in reports/ (needs MNLI data and a BERT-family checkpoint; see README).
reports: setup
	$(VENV)/bin/mnli-lesson compare finetune-vs-frozen --profile cpu --out reports $(ARGS)
	$(VENV)/bin/mnli-lesson compare pretrained-vs-scratch --profile cpu --out reports $(ARGS)
	$(VENV)/bin/mnli-lesson compare data-efficiency --profile cpu --out reports $(ARGS)

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
