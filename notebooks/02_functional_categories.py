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
# # 02 — Functional categories of the kept tokens
#
# Which kinds of reasoning tokens survive pruning? Every reasoning token gets one of six roles
# (SymbMath, VerbalMath, EntName, CoRef, MetaDisc, Grammar) from the transparent rule annotator
# (`pruneprobe.analysis.categories`; cached in `data/labels/`, rebuilt here when missing). For each run and
# keep ratio rho we report
# - the **share** of each category among the kept tokens, and
# - the **retention**: (fraction of the category kept) / (fraction of all tokens kept), i.e.
#   relative to what uniform deletion keeps in expectation (> 1: preserved, < 1: pruned early).
#
# 95% CIs are percentile bootstraps over examples. Runs: greedy joint, greedy answer and the four
# baselines, 120 examples each. The retention grid gives each run its own y scale (surprisal's
# MetaDisc reaches ~5 at small rho and would flatten the others).
#
# Run time: about 50 s on a 2-core CPU shared with other jobs (mostly the composition bootstrap).

# %%
import os

# chain set: "gold" (the 120 short gold chains), "gold-len128" (full-length gold) or "self" (the pruner's
# own chains); set before the pruneprobe imports below, restart the kernel to switch
os.environ.setdefault("PRUNEPROBE_CHAINS", "gold")

import matplotlib.pyplot as plt

from pruneprobe import viz
from pruneprobe.analysis import category_composition
from pruneprobe.viz.notebook import (
    FIG,
    SETTING,
    load_cached_results,
    load_labels,
    setup,
)

setup()
results = load_cached_results()
for name, rs in results.items():
    print(f"{name:14s} {len(rs):4d} examples")

# %% [markdown]
# Labels: cached rule labels (they depend only on the tokens, so one table covers every run on the
# same examples); examples missing from the cache are labelled here.

# %%
labels = load_labels(results)
labels.category.value_counts()

# %%
comp = category_composition(results, labels, n_boot=1000, seed=0)
comp.head()

# %% [markdown]
# ## Share of each category among kept tokens, by stage

# %%
fig = viz.plot_composition(comp, "share", setting=SETTING)
viz.save_figure(fig, "02_composition", FIG)
plt.show()

# %% [markdown]
# ## Retention relative to uniform deletion

# %%
fig = viz.plot_composition(comp, "retention", setting=SETTING)
viz.save_figure(fig, "02_retention_by_stage", FIG)
plt.show()

# %%
for rho in (0.7, 0.5):
    fig = viz.plot_retention(comp, keep_ratio=rho, setting=SETTING)
    viz.save_figure(fig, f"02_retention_rho{int(rho * 100)}", FIG)
    plt.show()

# %% [markdown]
# Headline table: retention at rho = 0.5 with 95% CIs (greedy runs: only the cached examples).

# %%
half = comp[comp.keep_ratio == 0.5].copy()
half["cell"] = half.apply(lambda r: f"{r.retention:.2f} [{r.retention_lo:.2f}, {r.retention_hi:.2f}]", axis=1)
table = half.pivot(index="category", columns="run", values="cell").reindex(
    viz.ordered_categories(half.category))[list(results)]
print("n examples: " + ", ".join(f"{k}={len(v)}" for k, v in results.items()))
print(table.to_string())
table

# %% [markdown]
# Share of each category among all reasoning tokens (before any deletion; the same for every run).

# %%
full = comp[(comp.keep_ratio == 1.0) & (comp.run == viz.display_name("greedy joint"))]
print(full[["category", "share", "share_lo", "share_hi"]].round(3).to_string(index=False))
