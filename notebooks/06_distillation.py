# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-all
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
#
# Run time: about 15-25 s on a 2-core CPU shared with other jobs (cached tables only).

# %%
import matplotlib.pyplot as plt
import pandas as pd

from pruneprobe import viz
from pruneprobe.distill.sufficiency import paired_difference
from pruneprobe.viz.notebook import DATA, FIG, setup

setup()

# %% [markdown]
# ## 1. Sufficiency of the pruned chains

# %%
suff = pd.read_csv(DATA / "sufficiency/summary.csv")
print(suff.drop(columns=["model"]).round(3).to_string(index=False))
fig = viz.plot_accuracy(suff.assign(method=suff.method.map(viz.display_name)), refs=("Full chain", "No chain"),
                        in_sample=(viz.display_name("greedy answer"),),
                        setting="SmolLM2-135M answers from question + pruned chain, gsm_symbolic")
fig.axes[0].set_title("Sufficiency of pruned chains")
viz.save_figure(fig, "06_sufficiency", FIG)
plt.show()

# %% [markdown]
# Paired differences: greedy (joint objective) minus each other method, on the same examples.

# %%
per_example = pd.read_csv(DATA / "sufficiency/examples.csv")
pruned = per_example[~per_example.method.isin(["full", "none"])]
diff = paired_difference(pruned, "greedy-joint")
print(diff.round(3).to_string(index=False))

# %% [markdown]
# The answer-objective greedy run is chosen to maximise this very model's answer likelihood, so
# its sufficiency is in-sample (dashed, open markers in the figure): it measures how well the
# pruner's own objective transfers to greedy decoding, not an independent judgement.

# %% [markdown]
# ## 2. Students trained on pruned chains

# %%
students = pd.read_csv(DATA / "distill/eval.csv")
cols = ["label", "eval_set", "n", "accuracy", "ci_low", "ci_high", "n_train", "achieved_mean", "matched", "eval_s"]
print(students[cols].round(3).to_string(index=False))
names = {"none": "Zero-shot student", "full": "Full-chain student"}
table = students.assign(method=students.method.map(lambda m: names.get(m) or viz.display_name(m)),
                        eval_set=students.eval_set.map({"gsm_symbolic": "gsm_symbolic, held-out problems",
                                                        "gsm8k": "GSM8K test"}).fillna(students.eval_set))
# every accuracy is at most a few percent: a dot plot with intervals and counts, not lines
fig = viz.plot_accuracy_dots(table, refs=tuple(names.values()), panel="eval_set",
                             setting="LoRA students (SmolLM2-135M) trained on chains pruned to ρ in student tokens")
viz.save_figure(fig, "06_distillation", FIG)
plt.show()

# %% [markdown]
# Paired differences between students (greedy minus each baseline at the same rho), per evaluation set.

# %%
ex = pd.read_csv(DATA / "distill/eval_examples.csv")
ex = ex.merge(students[["label", "eval_set", "method", "keep_ratio"]], on=["label", "eval_set"])
pairs = paired_difference(ex[ex.keep_ratio.between(0.5, 0.95)], "greedy", by=("eval_set", "keep_ratio"))
print(pairs.round(3).to_string(index=False))

# %% [markdown]
# Length matching in the student's tokens (target within 0.005): achieved mean ratio and the share
# of chains within tolerance, per method and rho.

# %%
sft = pd.read_csv(DATA / "distill/sft_data.csv")
match = sft[sft.keep_ratio < 1].groupby(["method", "keep_ratio"]).agg(
    n=("example_id", "size"), achieved=("achieved_ratio", "mean"), matched=("matched", "mean"),
    student_tokens=("n_student_kept", "mean")).reset_index()
print(match.round(4).to_string(index=False))
