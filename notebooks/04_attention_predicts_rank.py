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
# # 04 — Does attention predict the pruning rank?
#
# Per-token attention features (captured with nnsight, eager attention; `pruneprobe.analysis.attention`):
# for every layer, the attention a reasoning token receives from the answer tokens, from later
# reasoning tokens and from every later position (mean and max over heads), plus `position` and
# `surprisal`. They are cached by `make features` in `data/features/` (no model is loaded here).
#
# Targets (`pruneprobe.analysis.regression.regression_table`):
# - `delta_loglik`: change of the joint log-likelihood when the token alone is deleted from the
#   full chain (the paper's "post-deletion likelihood");
# - `normalized_rank`: greedy pruning rank / R.
#
# Models: ridge and a 2-layer MLP, cross-validated with GroupKFold **by example**; held-out Pearson
# and Spearman. Baselines: position-only and surprisal-only features.
#
# Run time: about 20 s on a 2-core CPU shared with other jobs. The fits (~50 s alone, 12 min
# there, mostly the MLP) are read from `data/tables/` and recomputed by themselves when the runs
# or features change (`make tables` forces it).

# %%
import matplotlib.pyplot as plt

from pruneprobe import viz
from pruneprobe.viz.notebook import FIG, SETTING, load_regression_table, regression_tables, setup

setup()
table = load_regression_table()
attn_cols = [c for c in table.columns if c.startswith("attn_")]
print(f"{len(table)} tokens, {table.example_id.nunique()} examples, {len(attn_cols)} attention features")
table[["example_id", "index", "token", "position", "surprisal", "pruning_rank", "delta_loglik"]].head()

# %% [markdown]
# Ridge for every target and feature set; the MLP (the slow part) for the attention features against
# the post-deletion log-likelihood, the paper's headline fit; then a ridge on one layer at a time.
# All cross-validated over 5 GroupKFold folds (seed 0), cached in `data/tables/`.

# %%
scores, layers = regression_tables(table)
summary = scores[scores.fold.isin(["mean", "pooled"])].pivot_table(
    index=["target", "feature_set", "model"], columns="fold", values=["pearson", "spearman"])
print(summary.round(3).to_string())

# %%
for target in ("delta_loglik", "normalized_rank"):
    fig = viz.plot_regression_scores(scores[scores.target == target], "pearson", setting=SETTING)
    fig.axes[0].set_title({"delta_loglik": "Target: change of joint log-likelihood on deletion",
                           "normalized_rank": "Target: greedy pruning rank / R"}[target]
                          + f"\n(n = {table.example_id.nunique()} examples, {len(table)} tokens)")
    viz.save_figure(fig, f"04_regression_{target}", FIG)
    plt.show()

# %% [markdown]
# ## Which layers carry the signal? Ridge on one layer's six features at a time

# %%
print(layers.round(3).to_string(index=False))
fig = viz.plot_layer_contribution(layers, setting=SETTING)
viz.save_figure(fig, "04_layer_contribution", FIG)
plt.show()

# %% [markdown]
# Headline: held-out Pearson r (mean over GroupKFold folds) for `delta_loglik`.

# %%
head = scores[(scores.fold == "mean") & (scores.target == "delta_loglik")].pivot(
    index="feature_set", columns="model", values="pearson")
print(f"n examples = {table.example_id.nunique()}, n tokens = {len(table)}")
print(head.round(3).to_string())
