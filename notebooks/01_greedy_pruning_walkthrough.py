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
# # 01 — Greedy pruning, one example end to end
#
# One example from the cached run `data/runs/smollm2-greedy-joint` (SmolLM2-135M, bf16, joint
# objective, exact greedy pruned to the end). No model is loaded: everything comes from the
# cached `PruneResult` (deletion order, traces, candidate-score matrix) and the rule labels
# (`pruneprobe.analysis.categories.label_result`).
#
# Outputs: one chain at rho = 0.9 / 0.7 / 0.5 (`figures/01_pruned_chain.{png,pdf}`), an ipywidgets
# example picker and slider over the pruning steps (tokens coloured by functional category, deleted
# ones struck through), the same view as a static page `figures/01_walkthrough.html` (plain JS, no
# kernel needed) and the objective traces (`figures/01_traces*.{png,pdf}`).
#
# Run time: about 40 s on a 2-core CPU shared with other jobs.

# %%
import os

# chain set: "gold" (the 120 short gold chains), "gold-len128" (full-length gold) or "self" (the pruner's
# own chains); set before the pruneprobe imports below, restart the kernel to switch
os.environ.setdefault("PRUNEPROBE_CHAINS", "gold")

import matplotlib.pyplot as plt

from pruneprobe import viz
from pruneprobe.viz.notebook import FIG, GREEDY_JOINT, SETTING, load_cached_results, load_labels, setup

setup()
runs = load_cached_results(["greedy joint", "greedy answer"])
results = runs[GREEDY_JOINT]
labels = load_labels(runs)
print(f"{len(results)} examples in the greedy joint run")

# %% [markdown]
# Pick the example with the most reasoning tokens (the most steps to look at).

# %%
result = max(results, key=lambda r: r.n_tokens)
print(result.example_id, f"{result.n_tokens} reasoning tokens, {result.n_steps} steps")
print("Question:", result.example["question"][:300], "...")
print("Answer:", result.example["answer"])
print(result.show(keep_ratios=(0.9, 0.7, 0.5, 0.3)))

# %% [markdown]
# Token categories (rule annotator, cached in `data/labels/`) and pruning ranks: 1 = deleted first.

# %%
table = labels[labels.example_id == result.example_id].sort_values("index")[["index", "token", "category"]]
table = table.assign(pruning_rank=result.pruning_rank)
table.head(20)

# %%
table.groupby("category")["pruning_rank"].agg(["count", "mean", "median"]).sort_values("mean")

# %% [markdown]
# ## One chain at three keep ratios
#
# A typical example (median length): kept tokens shaded by category, deleted ones struck through.

# %%
by_length = sorted(results, key=lambda r: r.n_tokens)
typical = by_length[len(by_length) // 2]
fig = viz.plot_pruned_chain(typical, labels, keep_ratios=(0.9, 0.7, 0.5), setting=SETTING)
viz.save_figure(fig, "01_pruned_chain", FIG)
plt.show()

# %% [markdown]
# ## Interactive view (needs a kernel) and static HTML export (does not)
#
# Pick an example, move the slider: each step deletes the token outlined in red; the joint and answer
# log-likelihoods (nats) are those of the chain after that many deletions. The static page embeds
# five examples of different lengths.

# %%
picks = [by_length[int(q * (len(by_length) - 1))] for q in (1.0, 0.75, 0.5, 0.25, 0.0)]
html = viz.pruning_html(picks, labels, title="Greedy pruning (joint objective, SmolLM2-135M): five gsm_symbolic chains")
viz.write_html(html, FIG / "01_walkthrough.html")
print("wrote", FIG / "01_walkthrough.html", f"({len(html)} characters)")

# %%
try:
    from IPython.display import display

    from pruneprobe.viz.widget import pruning_widget

    display(pruning_widget(by_length[::-1], labels))
except ImportError:
    print("ipywidgets not installed: open figures/01_walkthrough.html instead")

# %% [markdown]
# ## Objective traces
#
# Joint and answer log-likelihood after each greedy deletion (step 0 = the full chain).

# %%
fig = viz.plot_traces(result, setting=SETTING)
viz.save_figure(fig, "01_traces", FIG)
plt.show()

# %% [markdown]
# Every example of both greedy runs: median change from the full chain with the interquartile band,
# per objective.

# %%
fig = viz.plot_traces_all(runs, setting=SETTING)
viz.save_figure(fig, "01_traces_all", FIG)
plt.show()
