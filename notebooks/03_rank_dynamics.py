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
# # 03 — Rank dynamics: rankings are re-evaluated as the context contracts
#
# Exact greedy scores every remaining token at every step (the candidate-score matrix). How well
# does a ranking computed k steps earlier predict the token deleted now?
# - **dynamic**: the scores of step t − k;
# - **frozen**: the step-1 scores (before any deletion);
# - **random**: a random ranking drawn once per example.
#
# Hit rate = share of steps whose deleted token is in the ranking's top 1 / top 5 among the tokens
# still present; chance = E[min(m, n_alive) / n_alive]. Then the Spearman correlation between the
# step-t and step-(t − k) score vectors against k. Greedy runs only (the baselines have no
# candidate-score matrix); 95% CIs bootstrap over examples.
#
# Run time: about 20-30 s on a 2-core CPU shared with other jobs. The rank correlation (71 s
# there) is read from `data/tables/rank_correlation.csv` and recomputed by itself when the runs
# change (`make tables` forces it).

# %%
import os

# chain set: "gold" (the 120 short gold chains), "gold-len128" (full-length gold) or "self" (the pruner's
# own chains); set before the pruneprobe imports below, restart the kernel to switch
os.environ.setdefault("PRUNEPROBE_CHAINS", "gold")

import matplotlib.pyplot as plt

from pruneprobe import viz
from pruneprobe.analysis import rank_dynamics
from pruneprobe.viz.notebook import FIG, SETTING, load_cached_results, rank_correlation_table, setup

setup()
results = load_cached_results(["greedy joint", "greedy answer"])
for name, rs in results.items():
    print(f"{name:26s} {len(rs):4d} examples, {sum(r.n_steps for r in rs)} steps")
LAGS = (1, 2, 4, 8, 16)

# %%
dyn = rank_dynamics(results, lags=LAGS, top=(1, 5), n_boot=1000, seed=0)
dyn.head()

# %%
for top in (1, 5):
    fig = viz.plot_hit_rates(dyn, top=top, setting=SETTING)
    viz.save_figure(fig, f"03_hit_rate_top{top}", FIG)
    plt.show()

# %% [markdown]
# Headline: top-1 hit rate by lag (95% CI).

# %%
t1 = dyn[dyn.top == 1].copy()
t1["cell"] = t1.apply(lambda r: f"{r.hit_rate:.3f} [{r.ci_lo:.3f}, {r.ci_hi:.3f}]", axis=1)
for run, g in t1.groupby("run", sort=False):
    tab = g.pivot(index="lag", columns="kind", values="cell")[["dynamic", "frozen", "random"]]
    tab["chance"] = g.groupby("lag")["chance"].first().map("{:.3f}".format)
    print(f"{run} (n examples = {len(results[run])})")
    print(tab.to_string(), "\n")

# %% [markdown]
# ## Rank correlation against lag

# %%
corr = rank_correlation_table(results, lags=LAGS)  # rank_correlation_by_lag, cached in data/tables
print(corr.to_string(index=False))
fig = viz.plot_rank_correlation(corr, setting=SETTING)
viz.save_figure(fig, "03_rank_correlation", FIG)
plt.show()
