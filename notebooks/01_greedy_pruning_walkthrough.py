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
# # 01 — Greedy pruning, one example end to end
#
# One example from the cached run `data/runs/smollm2-greedy-joint` (SmolLM2-135M, bf16, joint
# objective, exact greedy pruned to the end). No model is loaded: everything comes from the
# cached `PruneResult` (deletion order, traces, candidate-score matrix) and the rule labels
# (`pruneprobe.categories.label_result`).
#
# Outputs: an ipywidgets slider over the pruning steps (tokens coloured by functional category,
# deleted ones greyed), the same view as a static page `figures/01_walkthrough.html` (plain JS, no
# kernel needed) and the objective traces (`figures/01_traces.{png,pdf}`).

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pruneprobe import viz
from pruneprobe.categories import label_result
from pruneprobe.runs import load_run

ROOT = Path.cwd() if (Path.cwd() / "data").is_dir() else Path.cwd().parent
FIG = ROOT / "figures"
viz.set_style()

run = load_run(ROOT / "data/runs/smollm2-greedy-joint")
results = list(run.results())
print(run)
print(f"{len(results)} examples in the greedy joint run")

# %% [markdown]
# Pick the example with the most reasoning tokens (the most steps to look at).

# %%
result = max(results, key=lambda r: r.n_tokens)
labels = label_result(result)
print(result.example_id, f"{result.n_tokens} reasoning tokens, {result.n_steps} steps")
print("Question:", result.example["question"][:300], "...")
print("Answer:", result.example["answer"])
print(result.show(keep_ratios=(0.9, 0.7, 0.5, 0.3)))

# %% [markdown]
# Token categories (rule annotator) and pruning ranks: 1 = deleted first.

# %%
table = labels[["index", "token", "category"]].assign(pruning_rank=result.pruning_rank)
table.head(20)

# %%
table.groupby("category")["pruning_rank"].agg(["count", "mean", "median"]).sort_values("mean")

# %% [markdown]
# ## Interactive view (needs a kernel) and static HTML export (does not)

# %%
html = viz.pruning_html(result, labels)
viz.write_html(html, FIG / "01_walkthrough.html")
print("wrote", FIG / "01_walkthrough.html", f"({len(html)} characters)")

# %%
try:
    import ipywidgets as widgets
    from IPython.display import HTML, display

    colors = {c: viz.CATEGORY_COLORS.get(c, "#bbb") for c in set(labels["category"])}

    def render(step: int) -> str:
        rank = result.pruning_rank
        out = []
        for tok, cat, r in zip(result.tokens, labels["category"], rank):
            gone = 0 < r <= step
            style = ("color:#bbb;text-decoration:line-through" if gone
                     else f"background:{colors[cat]}33") + (";outline:2px solid #d62728" if r == step + 1 else "")
            out.append(f'<span style="{style}" title="{cat}">{tok.replace(chr(10), "↵<br>")}</span>')
        j = result.traces["joint_logprob"][step]
        return (f"<p>step {step}/{result.n_steps}: kept {result.n_tokens - step}/{result.n_tokens}, "
                f"joint log p = {j:.3f}</p><div style='font-family:monospace;line-height:1.9'>{''.join(out)}</div>")

    slider = widgets.IntSlider(min=0, max=result.n_steps, value=0, description="step",
                               layout=widgets.Layout(width="40em"))
    view = widgets.HTML(render(0))
    slider.observe(lambda ch: setattr(view, "value", render(ch["new"])), names="value")
    display(widgets.VBox([slider, view]))
except ImportError:
    print("ipywidgets not installed: open figures/01_walkthrough.html instead")

# %% [markdown]
# ## Objective traces
#
# Joint and answer log-likelihood after each greedy deletion (step 0 = the full chain).

# %%
fig = viz.plot_traces(result)
viz.save_figure(fig, "01_traces", FIG)
plt.show()

# %%
fig, ax = plt.subplots(figsize=(5, 3.3))
for r in results:
    t = np.asarray(r.traces["joint_logprob"], dtype=float)
    ax.plot(np.arange(len(t)) / r.n_tokens, t - t[0], lw=0.8, alpha=0.7)
ax.set_xlabel("fraction of reasoning tokens deleted")
ax.set_ylabel("joint log p (relative to full chain)")
ax.set_title(f"greedy joint, all {len(results)} examples")
fig.tight_layout()
viz.save_figure(fig, "01_traces_all", FIG)
plt.show()
