"""Figures of what attention adds to predicting pruning: both targets side by side, per layer, per head.

Canonical pattern::

    from pruneprobe.analysis.regression_study import study_summary
    from pruneprobe.viz.attention_figures import plot_attention_study, plot_layer_scores, plot_head_scores
    fig = plot_attention_study(study_summary(scores), setting=SETTING)   # ridge / MLP x feature sets x targets
    fig = plot_layer_scores(layers)                                      # ridge on one layer at a time
    fig = plot_head_scores(heads)                                        # ridge on one head at a time

Gotchas:
- Colours only from ``viz.style.MODEL_COLORS`` (ridge, MLP); the targets differ by panel or line
  style, the head map uses a sequential colormap (no categorical colours).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pruneprobe.analysis.regression_study import GAIN
from pruneprobe.viz.style import DOUBLE_COLUMN, MODEL_COLORS, add_caption

TARGET_NAMES = {"normalized_rank": "pruning rank / R\n(0 = deleted first)",
                "delta_loglik": "post-deletion likelihood\n(step-1 Δ joint log-lik.)"}
SET_NAMES = {"attention": "attention", "non-attention": "non-attention", "both": "both"}
MODEL_NAMES = {"ridge": "ridge", "mlp": "MLP (64-64)"}


def _n(table: pd.DataFrame) -> str:
    ex = sorted({int(v) for v in table.get("n_examples", pd.Series(dtype=float)).dropna()})
    tok = sorted({int(v) for v in table.get("n_test", table.get("n_tokens", pd.Series(dtype=float))).dropna()})
    parts = [f"n = {'–'.join(map(str, ex[::max(1, len(ex) - 1)]))} examples" if ex else "",
             f"{'–'.join(map(str, tok[::max(1, len(tok) - 1)]))} tokens" if tok else ""]
    return ", ".join(p for p in parts if p)


def plot_attention_study(summary: pd.DataFrame, metric: str = "pearson", setting: str | None = None):
    """Held-out ``metric`` per target (panels), feature set (x) and model (bars), with the summary's
    CIs; each panel's title states what attention adds (``both - non-attention``, with its CI)."""
    import matplotlib.pyplot as plt

    targets = [t for t in TARGET_NAMES if t in set(summary["target"])]
    models = [m for m in MODEL_NAMES if m in set(summary["model"])]
    fig, axes = plt.subplots(1, len(targets), figsize=(DOUBLE_COLUMN, 2.9), sharey=True, squeeze=False)
    width = 0.8 / max(1, len(models))
    for ax, target in zip(axes[0], targets):
        d = summary[summary["target"] == target].set_index(["feature_set", "model"])
        sets = [s for s in SET_NAMES if s in d.index.get_level_values(0)]
        gains = []
        for i, model in enumerate(models):
            g = d.reindex([(s, model) for s in sets])
            mid = g[metric].to_numpy(dtype=float)
            err = np.nan_to_num(np.vstack([mid - g[f"{metric}_lo"], g[f"{metric}_hi"] - mid]))
            x = np.arange(len(sets)) + (i - (len(models) - 1) / 2) * width
            ax.bar(x, mid, width, yerr=err, capsize=2, color=MODEL_COLORS.get(model, "0.5"),
                   label=MODEL_NAMES[model])
            for xi, v in zip(x, mid):
                ax.text(xi, 0.02, f"{v:.2f}", ha="center", va="bottom", fontsize=8, color="white")
            if (GAIN, model) in d.index:
                r = d.loc[(GAIN, model)]
                gains.append(f"{MODEL_NAMES[model].split()[0]} {r[metric]:+.2f} [{r[f'{metric}_lo']:+.2f}, "
                             f"{r[f'{metric}_hi']:+.2f}]")
        ax.set_xticks(range(len(sets)), [SET_NAMES[s] for s in sets])
        ax.set_title(f"Target: {TARGET_NAMES[target].splitlines()[0]}"
                     + ("\nattention adds (both − non-attention):\n" + "\n".join(gains) if gains else ""))
        ax.set_xlabel("features")
        ax.axhline(0, color="k", lw=0.8)
    name = {"pearson": "Pearson r", "spearman": "Spearman ρ"}.get(metric, metric)
    axes[0][0].set_ylabel(f"held-out {name}\n(higher is better)")
    axes[0][0].set_ylim(top=max(1.0, float(np.nanmax(summary[f"{metric}_hi"])) + 0.05))
    axes[0][0].legend(loc="upper left", ncol=2)
    fig.tight_layout()
    note = "GroupKFold by example, 5 folds; bars: mean over folds, 95% t-CI over folds"
    add_caption(fig, "; ".join(p for p in (_n(summary), note, setting) if p))
    return fig


def plot_layer_scores(layers: pd.DataFrame, setting: str | None = None):
    """Held-out Pearson of a ridge on one layer's six attention features, per layer, one line per target
    (fold mean, 95% t-CI band over folds)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(DOUBLE_COLUMN * 0.75, 2.8))
    color = MODEL_COLORS["ridge"]
    for (target, d), (ls, marker) in zip(((t, layers[layers["target"] == t]) for t in TARGET_NAMES
                                          if t in set(layers["target"])), (("-", "o"), ("--", "s"))):
        d = d.sort_values("layer")
        ax.plot(d["layer"], d["pearson"], ls=ls, marker=marker, ms=3, color=color,
                label=TARGET_NAMES[target].replace("\n", " "))
        if "pearson_lo" in d:
            ax.fill_between(d["layer"], d["pearson_lo"], d["pearson_hi"], color=color, alpha=0.15, lw=0)
    ax.set_xlabel("layer")
    ax.set_ylabel("held-out Pearson r of a ridge\non this layer (higher is better)")
    top = float(np.nanmax(layers.get("pearson_hi", layers["pearson"])))
    ax.set_ylim(min(0.0, float(np.nanmin(layers["pearson"])) * 1.1), top * 1.55)
    ax.set_title("Which layers carry the signal?\n(ridge on one layer's 6 attention features)")
    ax.legend(loc="upper left", title="target", ncol=1)
    fig.tight_layout()
    add_caption(fig, "; ".join(p for p in (_n(layers), "GroupKFold by example, 5 folds; band: 95% t-CI over folds",
                                           setting) if p))
    return fig


def plot_head_scores(heads: pd.DataFrame, setting: str | None = None):
    """Held-out Pearson of a ridge on one head's three features, layer (rows) x head (columns), one
    panel per target; the best head of each panel is outlined."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    targets = [t for t in TARGET_NAMES if t in set(heads["target"])]
    fig, axes = plt.subplots(1, len(targets), figsize=(DOUBLE_COLUMN, 3.8), squeeze=False, sharey=True)
    vmax = float(np.nanmax(heads["pearson"]))
    for ax, target in zip(axes[0], targets):
        grid = heads[heads["target"] == target].pivot(index="layer", columns="head", values="pearson")
        im = ax.imshow(grid.to_numpy(), aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=vmax)
        best = np.unravel_index(np.nanargmax(grid.to_numpy()), grid.shape)
        ax.add_patch(Rectangle((best[1] - 0.5, best[0] - 0.5), 1, 1, fill=False, ec="k", lw=1.2))
        ax.set_xticks(range(grid.shape[1]), grid.columns)
        ax.set_yticks(range(0, grid.shape[0], 5), grid.index[::5])
        ax.set_xlabel("head")
        ax.grid(False)
        ax.set_title(f"Target: {TARGET_NAMES[target].splitlines()[0]}\nbest head (outlined):\nlayer {grid.index[best[0]]}, "
                     f"head {grid.columns[best[1]]}, r = {grid.to_numpy()[best]:.2f}")
    axes[0][0].set_ylabel("layer")
    fig.colorbar(im, ax=list(axes[0]), label="held-out Pearson r of a ridge on this head")
    note = ("3 features per head (attention received from the answer, later reasoning, all later positions; "
            "float32 forward); GroupKFold by example, 5 folds, fold mean")
    add_caption(fig, "; ".join(p for p in (_n(heads), note, setting) if p))
    return fig


__all__ = ["plot_attention_study", "plot_layer_scores", "plot_head_scores", "TARGET_NAMES"]
