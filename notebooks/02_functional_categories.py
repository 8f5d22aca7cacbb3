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
# # 02 — Functional categories of the kept tokens
#
# Which kinds of reasoning tokens survive pruning? Every reasoning token gets one of six roles
# (SymbMath, VerbalMath, EntName, CoRef, MetaDisc, Grammar) from the transparent rule annotator
# (`pruneprobe.categories`; cached in `data/labels/`, rebuilt here when missing). For each run and
# keep ratio rho we report
# - the **share** of each category among the kept tokens, and
# - the **retention**: (fraction of the category kept) / (fraction of all tokens kept), i.e.
#   relative to what uniform deletion keeps in expectation (> 1: preserved, < 1: pruned early).
#
# 95% CIs are percentile bootstraps over examples. Runs: greedy joint, greedy answer (both
# partial: whatever examples are cached) and the four 120-example baselines.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from pruneprobe import viz
from pruneprobe.analysis import category_composition
from pruneprobe.categories import label_result
from pruneprobe.runs import load_cached_results

ROOT = Path.cwd() if (Path.cwd() / "data").is_dir() else Path.cwd().parent
FIG = ROOT / "figures"
viz.set_style()

results = load_cached_results(ROOT / "data/runs")
for name, rs in results.items():
    print(f"{name:14s} {len(rs):4d} examples")

# %% [markdown]
# Labels: cached rule labels (they depend only on the tokens, so one table covers every run on the
# same examples); examples missing from the cache are labelled here.

# %%
cached = [pd.read_parquet(p) for p in sorted((ROOT / "data/labels").glob("smollm2-*-rules.parquet"))]
labels = pd.concat(cached).drop_duplicates(["example_id", "index"]) if cached else pd.DataFrame(
    columns=["example_id", "index", "token", "category"])
have = set(labels["example_id"])
extra = [label_result(r) for rs in results.values() for r in rs if r.example_id not in have]
if extra:
    labels = pd.concat([labels, *extra]).drop_duplicates(["example_id", "index"])
print(f"labels for {labels.example_id.nunique()} examples ({len(extra)} labelled now)")
labels.category.value_counts()

# %%
comp = category_composition(results, labels, n_boot=1000, seed=0)
comp.head()

# %% [markdown]
# ## Share of each category among kept tokens, by stage

# %%
fig = viz.plot_composition(comp, "share")
viz.save_figure(fig, "02_composition", FIG)
plt.show()

# %% [markdown]
# ## Retention relative to uniform deletion

# %%
fig = viz.plot_composition(comp, "retention")
for ax in fig.axes:
    ax.axhline(1, color="k", lw=0.8, ls="--")
viz.save_figure(fig, "02_retention_by_stage", FIG)
plt.show()

# %%
for rho in (0.7, 0.5):
    fig = viz.plot_retention(comp, keep_ratio=rho)
    viz.save_figure(fig, f"02_retention_rho{int(rho * 100)}", FIG)
    plt.show()

# %% [markdown]
# Headline table: retention at rho = 0.5 with 95% CIs (greedy runs: only the cached examples).

# %%
half = comp[comp.keep_ratio == 0.5].copy()
half["cell"] = half.apply(lambda r: f"{r.retention:.2f} [{r.retention_lo:.2f}, {r.retention_hi:.2f}]", axis=1)
table = half.pivot(index="category", columns="run", values="cell").reindex(
    [c for c in viz.CATEGORY_ORDER if c in set(half.category)])[list(results)]
print(f"n examples: " + ", ".join(f"{k}={len(v)}" for k, v in results.items()))
print(table.to_string())
table
