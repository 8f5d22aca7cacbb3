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
# # 05 — Objectives and pruners compared
#
# On the examples every compared run shares (`pruneprobe.analysis.dynamics.compare_runs`):
# - **joint vs answer objective** (both greedy): kept-set IoU at rho = 0.9 / 0.8 / 0.7 and Kendall
#   tau between the pruning ranks;
# - **greedy vs each baseline** (surprisal, H2O, uniform, random): the same agreement metrics;
# - the joint log-likelihood each run reaches at rho = 0.9 / 0.8 / 0.7 (from its traces).
#
# 95% CIs bootstrap over examples. The greedy runs are partial (whatever is cached), so every
# comparison uses only the shared examples.
#
# Run time: about 20-30 s on a 2-core CPU shared with other jobs.

# %%
import os

# chain set: "gold" (the 120 short gold chains), "gold-len128" (full-length gold) or "self" (the pruner's
# own chains); set before the pruneprobe imports below, restart the kernel to switch
os.environ.setdefault("PRUNEPROBE_CHAINS", "gold")

import warnings

import matplotlib.pyplot as plt
import pandas as pd

from pruneprobe import viz
from pruneprobe.analysis import (
    category_composition,
    compare_pruners_by_words,
    compare_runs,
)
from pruneprobe.runs import load_run
from pruneprobe.viz.notebook import (
    CACHED_RUNS,
    CHAINS,
    DATA,
    FIG,
    GREEDY_ANSWER,
    GREEDY_JOINT,
    SETTING,
    load_cached_results,
    load_labels,
    setup,
)

setup()
RHOS = (0.9, 0.8, 0.7)

results = load_cached_results()
for name, rs in results.items():
    print(f"{name:26s} {len(rs):4d} examples")

# %% [markdown]
# ## Joint vs answer objective

# %%
if GREEDY_ANSWER not in results:
    print(f"no greedy answer run of the {CHAINS.name} chains yet: skipping the objective comparison")
else:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obj = compare_runs({k: results[k] for k in (GREEDY_JOINT, GREEDY_ANSWER)}, keep_ratios=RHOS,
                           reference=GREEDY_JOINT)
    print(obj.round(3).to_string(index=False))
    fig = viz.plot_compare(obj, "kept_iou", reference=GREEDY_JOINT, setting=SETTING)
    viz.save_figure(fig, "05_objective_kept_iou", FIG)
    plt.show()

# %% [markdown]
# ## Greedy (joint) vs the baselines

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    base = compare_runs({k: v for k, v in results.items() if k != GREEDY_ANSWER}, keep_ratios=RHOS,
                        reference=GREEDY_JOINT)
print("shared examples:", int(base.n_examples.max()))
iou = base[base.metric == "kept_iou"].pivot(index="keep_ratio", columns="run", values="mean")
tau = base[base.metric == "kendall_tau"].set_index("run")[["mean", "ci_lo", "ci_hi"]]
print("kept-set IoU with greedy joint:\n", iou.round(3).to_string())
print("Kendall tau of the pruning ranks with greedy joint:\n", tau.round(3).to_string())

# %%
for metric in ("kept_iou", "kendall_tau"):
    fig = viz.plot_compare(base, metric, reference=GREEDY_JOINT, setting=SETTING)
    viz.save_figure(fig, f"05_baselines_{metric}", FIG)
    plt.show()

# %% [markdown]
# ## Joint log-likelihood reached at each keep ratio (higher is better)

# %%
ll = base[base.metric == "joint_logprob"]
print(ll.pivot(index="keep_ratio", columns="run", values="mean").round(3).to_string())
fig = viz.plot_compare(ll.assign(reference=None), "joint_logprob", setting=SETTING)
viz.save_figure(fig, "05_joint_logprob", FIG)
plt.show()

# %% [markdown]
# ## A second pruner: Gemma-3-270M
#
# `data/runs/gemma3-greedy-joint` (gold chains; `gemma3-greedy-joint-len128` for the full-length ones)
# prunes the first examples of the SmolLM2 runs with Gemma-3-270M
# (joint objective, exact greedy). The tokenizers differ, so ranks are not compared token by token;
# instead each pruner's category retention (its own tokens, its own rule labels) on the shared
# examples, and the word-level agreement of the kept text at each rho.

# %%
gemma_run = CHAINS.pruners.get("gemma3")  # this chain set's Gemma-3 run, if it has one
g_results = list(load_run(DATA / "runs" / gemma_run).results()) if gemma_run and (DATA / "runs" / gemma_run).is_dir() else []
if not g_results:
    print(f"no Gemma-3 run of the {CHAINS.name} chains with results yet: skipping the pruner comparison")
else:
    shared = {r.example_id for r in g_results}
    s_results = [r for r in results[GREEDY_JOINT] if r.example_id in shared]
    pruners = {viz.display_name(f"{name} greedy joint"): (rs, load_labels(rs, f"{run}-rules.parquet"))
               for name, run, rs in (("smollm2", CACHED_RUNS["greedy joint"], s_results), ("gemma3", gemma_run, g_results))}
    comps = [category_composition({name: rs}, lab, stages=(0.9, 0.7, 0.5), n_boot=500)
             for name, (rs, lab) in pruners.items()]
    comp = pd.concat(comps, ignore_index=True)
    print(f"{len(g_results)} shared examples")
    print(comp.pivot_table(index="category", columns=["run", "keep_ratio"], values="retention").round(2).to_string())
    fig = viz.plot_retention(comp, keep_ratio=0.5, setting="greedy, joint objective, exact; gsm_symbolic chains")
    viz.save_figure(fig, "05_pruners_retention", FIG)
    plt.show()
    words = compare_pruners_by_words(s_results, g_results, keep_ratios=RHOS)
    print(words.round(3).to_string(index=False))
