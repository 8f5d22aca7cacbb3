# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 — Sufficiency and distillation at matched lengths
#
# Two tests of whether greedily pruned chains keep what matters (docs/method.md), from cached tables:
#
# 1. **Sufficiency** (`data/sufficiency`, `make sufficiency`): the embedded SmolLM2-135M answers from
#    question + pruned reasoning + answer prefix, for every cached run at rho = 0.9 / 0.8 / 0.7, plus the
#    unpruned chain (`full`) and no chain (`none`). Same 120 `gsm_symbolic` examples for every method.
# 2. **Distillation** (`data/distill`, `make distill`): one LoRA student (SmolLM2-135M) per method and
#    rho, trained on chains pruned by that method with lengths matched in *student* tokens, evaluated
#    on 100 held-out `gsm_symbolic` problems and the first 100 GSM8K test problems; zero-shot and
#    full-chain students as references.
#
# Intervals are bootstrap 95% CIs over examples; differences are paired on the same examples.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from pruneprobe import viz
from pruneprobe.sufficiency import paired_difference

ROOT = Path.cwd() if (Path.cwd() / "data").is_dir() else Path.cwd().parent
FIG = ROOT / "figures"
viz.set_style()

# %% [markdown]
# ## 1. Sufficiency of the pruned chains

# %%
suff = pd.read_csv(ROOT / "data/sufficiency/summary.csv")
print(suff.drop(columns=["model"]).round(3).to_string(index=False))
fig = viz.plot_accuracy(suff)
fig.axes[0].set_title("SmolLM2-135M answering from pruned chains")
viz.save_figure(fig, "06_sufficiency", FIG)
plt.show()

# %% [markdown]
# Paired differences: greedy (joint objective) minus each other method, on the same examples.

# %%
per_example = pd.read_csv(ROOT / "data/sufficiency/examples.csv")
pruned = per_example[~per_example.method.isin(["full", "none"])]
diff = paired_difference(pruned, "greedy-joint")
print(diff.round(3).to_string(index=False))

# %% [markdown]
# The answer-objective greedy run is chosen to maximise this very model's answer likelihood, so
# its sufficiency is in-sample: it measures how well the pruner's own objective transfers to
# greedy decoding, not an independent judgement.

# %% [markdown]
# ## 2. Students trained on pruned chains

# %%
students = pd.read_csv(ROOT / "data/distill/eval.csv")
cols = ["label", "eval_set", "n", "accuracy", "ci_low", "ci_high", "n_train", "achieved_mean", "matched", "eval_s"]
print(students[cols].round(3).to_string(index=False))
table = students.assign(method=students.method.replace({"none": "zero-shot", "full": "full-chain"}))
fig = viz.plot_accuracy(table, refs=("full-chain", "zero-shot"), panel="eval_set")
viz.save_figure(fig, "06_distillation", FIG)
plt.show()

# %% [markdown]
# Paired differences between students (greedy minus each baseline at the same rho), per evaluation set.

# %%
ex = pd.read_csv(ROOT / "data/distill/eval_examples.csv")
ex = ex.merge(students[["label", "eval_set", "method", "keep_ratio"]], on=["label", "eval_set"])
pairs = paired_difference(ex[ex.keep_ratio.between(0.5, 0.95)], "greedy", by=("eval_set", "keep_ratio"))
print(pairs.round(3).to_string(index=False))

# %% [markdown]
# Length matching in the student's tokens (target within 0.005): achieved mean ratio and the share
# of chains within tolerance, per method and rho.

# %%
sft = pd.read_csv(ROOT / "data/distill/sft_data.csv")
match = sft[sft.keep_ratio < 1].groupby(["method", "keep_ratio"]).agg(
    n=("example_id", "size"), achieved=("achieved_ratio", "mean"), matched=("matched", "mean"),
    student_tokens=("n_student_kept", "mean")).reset_index()
print(match.round(4).to_string(index=False))
