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
# # 07 — Chain sets side by side: short gold, full-length gold, the pruner's own chains
#
# The paper's pruner prunes its own correct chains of 100-500 tokens; the cached runs the other
# notebooks show by default are 120 short gold chains (at most 64 SmolLM2 tokens). This notebook sets
# the same headline numbers of every chain set side by side (`runs.chainsets.CHAIN_SETS`):
# - **short gold** (`gold`): 120 `gsm_symbolic` gold chains of at most 64 tokens, bf16 pruner;
# - **full-length gold** (`gold-len128`): the first `gsm_symbolic` chains of at most 128 tokens, fp32;
# - **self-generated** (`self`): chains SmolLM2-135M sampled itself (rejection sampling, answer checked),
#   pruned by the same model, fp32.
#
# Numbers (`analysis.headlines.headline_numbers`): category retention at ρ = 0.5 (greedy joint), the
# top-1 hit rate of dynamic / frozen / random rankings at lags 1 and 4 (notebook 03), and the Kendall
# tau of every other run's pruning ranks with greedy's (notebook 05), and what notebook 04 measured on the
# set where it has run there (MLP from attention / non-attention / both feature sets to the pruning rank and
# to the post-deletion likelihood, held-out Pearson r, CI over folds). Every number carries its n and a
# 95% CI (bootstrap over examples unless said). The full-length and self-generated runs are complete (200
# and 44 chains, made on a CPU: `data/README.md`); a set whose greedy run has no results is left out.
#
# Outputs: `figures/07_chain_sets.{png,pdf}` and `data/tables/chain_sets.csv`.
#
# Run time: about 20 s on a 2-core CPU shared with other jobs (17 s in the test suite there).

# %%
import matplotlib.pyplot as plt
import pandas as pd

from pruneprobe import viz
from pruneprobe.viz.chain_sets import chain_set_table, headline_cells, plot_chain_sets
from pruneprobe.viz.notebook import ROOT, setup

setup()
table = chain_set_table(n_boot=1000, seed=0)  # also written to data/tables/chain_sets.csv
table.head()

# %% [markdown]
# ## Headline numbers, value [95% CI] (n examples)

# %%
with pd.option_context("display.width", 200, "display.max_colwidth", 40):
    print(headline_cells(table).to_string())

# %%
fig = plot_chain_sets(table)
viz.save_figure(fig, "07_chain_sets", ROOT / "figures")
plt.show()
