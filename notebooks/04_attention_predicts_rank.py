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
# # 04 — Does attention predict the pruning rank?
#
# Per-token attention features (captured with nnsight, eager attention; `pruneprobe.attention`):
# for every layer, the attention a reasoning token receives from the answer tokens, from later
# reasoning tokens and from every later position (mean and max over heads), plus `position` and
# `surprisal`. They are cached by `make features` in `data/features/` (no model is loaded here).
#
# Targets (`pruneprobe.analysis_regression.regression_table`):
# - `delta_loglik`: change of the joint log-likelihood when the token alone is deleted from the
#   full chain (the paper's "post-deletion likelihood");
# - `normalized_rank`: greedy pruning rank / R.
#
# Models: ridge and a 2-layer MLP, cross-validated with GroupKFold **by example**; held-out Pearson
# and Spearman. Baselines: position-only and surprisal-only features.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from pruneprobe import viz
from pruneprobe.analysis_regression import attention_rank_regression, layer_contribution, regression_table
from pruneprobe.runs import load_run

ROOT = Path.cwd() if (Path.cwd() / "data").is_dir() else Path.cwd().parent
FIG = ROOT / "figures"
viz.set_style()

results = list(load_run(ROOT / "data/runs/smollm2-greedy-joint").results())
files = sorted((ROOT / "data/features").glob("smollm2-*-attention.parquet"))
feats = pd.concat([pd.read_parquet(p) for p in files]).drop_duplicates(["example_id", "index"])
print("feature files:", [p.name for p in files])
covered = [r for r in results if r.example_id in set(feats.example_id)]
print(f"{len(results)} greedy joint examples, {len(covered)} with cached attention features "
      f"(run `make features` after `make runs` adds examples)")

# %%
table = regression_table(covered, feats)
attn_cols = [c for c in table.columns if c.startswith("attn_")]
print(f"{len(table)} tokens, {table.example_id.nunique()} examples, {len(attn_cols)} attention features")
table[["example_id", "index", "token", "position", "surprisal", "pruning_rank", "delta_loglik"]].head()

# %% [markdown]
# Ridge for every target and feature set; the MLP (the slow part: ~4 s a fit here) for the
# attention features against the post-deletion log-likelihood, the paper's headline fit.

# %%
N_SPLITS = min(5, table.example_id.nunique())
scores = [attention_rank_regression(table, targets=target, models=("ridge",), n_splits=N_SPLITS, seed=0)
          for target in ("delta_loglik", "normalized_rank")]
scores.append(attention_rank_regression(table, targets="delta_loglik", models=("mlp",), n_splits=N_SPLITS, seed=0,
                                        feature_sets=("attention",), mlp_max_iter=200))
scores = pd.concat(scores, ignore_index=True)
summary = scores[scores.fold.isin(["mean", "pooled"])].pivot_table(
    index=["target", "feature_set", "model"], columns="fold", values=["pearson", "spearman"])
print(summary.round(3).to_string())

# %%
for target in ("delta_loglik", "normalized_rank"):
    fig = viz.plot_regression_scores(scores[scores.target == target], "pearson")
    fig.axes[0].set_title(f"target: {target} ({table.example_id.nunique()} examples)")
    viz.save_figure(fig, f"04_regression_{target}", FIG)
    plt.show()

# %% [markdown]
# ## Which layers carry the signal? Ridge on one layer's six features at a time

# %%
layers = layer_contribution(table, targets="delta_loglik", n_splits=N_SPLITS, seed=0)
print(layers.round(3).to_string(index=False))
fig = viz.plot_layer_contribution(layers)
viz.save_figure(fig, "04_layer_contribution", FIG)
plt.show()

# %% [markdown]
# Headline: held-out Pearson r (mean over GroupKFold folds) for `delta_loglik`.

# %%
head = scores[(scores.fold == "mean") & (scores.target == "delta_loglik")].pivot(
    index="feature_set", columns="model", values="pearson")
print(f"n examples = {table.example_id.nunique()}, n tokens = {len(table)}")
print(head.round(3).to_string())
