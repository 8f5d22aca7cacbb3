"""Paper figures of the analyses; each function returns a matplotlib Figure.

Canonical pattern::

    from pruneprobe import viz
    viz.set_style()                                            # 9 pt text, paper widths
    fig = viz.plot_composition(comp, "retention", setting="SmolLM2-135M pruner, gsm_symbolic")
    viz.save_figure(fig, "02_retention_by_stage")             # figures/…png and .pdf

Gotchas:
- Colours come from ``viz.style`` maps by name (``method_color``, ``category_color``), never from
  the palette position; run names are shown as given, so pass names in words (``display_name``).
- Every figure ends with a caption line: ``n`` (read from the table where it has one) and
  ``setting`` (pruner, data), plus what the error bars are.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from pruneprobe.analysis.traces import trace_quantiles
from pruneprobe.viz.style import (
    DOUBLE_COLUMN,
    KEEP_RATIO,
    KIND_COLORS,
    MODEL_COLORS,
    SINGLE_COLUMN,
    TRACE_LABELS,
    add_caption,
    category_color,
    display_name,
    method_color,
    n_text,
    ordered_categories,
    set_lag_axis,
)

CI_NOTE = "error bars: 95% bootstrap CI over examples"
METRIC_LABELS = {
    "kept_iou": "kept-set IoU with\n{ref}\n(1 = same tokens kept)",
    "deleted_iou": "deleted-set IoU with\n{ref}\n(1 = same tokens deleted)",
    "kendall_tau": "Kendall τ of pruning ranks\nwith {ref}\n(1 = same order)",
    "joint_logprob": TRACE_LABELS["joint_logprob"].replace(" (", "\n("),
    "answer_logprob": TRACE_LABELS["answer_logprob"].replace(" (", "\n("),
}
KIND_NAMES = {"dynamic": "dynamic (scores k steps earlier)", "frozen": "frozen (step-1 scores)",
              "random": "random ranking"}
FEATURE_SET_NAMES = {"attention": "attention", "position": "position only", "surprisal": "surprisal only",
                     "all": "all features", "non-attention": "non-attention", "both": "both"}


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _caption(fig, *parts) -> None:
    add_caption(fig, "; ".join(str(p) for p in parts if p))


def _err(g: pd.DataFrame, mid: str, lo: str, hi: str) -> np.ndarray:
    return np.nan_to_num(np.vstack([g[mid] - g[lo], g[hi] - g[mid]]))


def _grid(plt, n: int, ncols: int, width: float, height: float, **kw):
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height * nrows), squeeze=False, **kw)
    for a in axes.flat[n:]:
        a.set_visible(False)
    return fig, list(axes.flat[:n])


# -- traces ------------------------------------------------------------------------------------
def plot_traces(result, keys=("joint_logprob", "answer_logprob"), ax=None, setting: str | None = None):
    """Objective traces (before any deletion, then after each step) against the fraction deleted."""
    plt = _plt()
    if ax is None:
        fig, axes = plt.subplots(1, len(keys), figsize=(DOUBLE_COLUMN, 2.6), squeeze=False)
        axes = list(axes[0])
    else:
        fig, axes = ax.figure, [ax]
    color = method_color(f"{result.method} {result.objective}")
    for a, key in zip(axes, keys):
        vals = np.asarray([np.nan if v is None else v for v in result.traces.get(key, [])], dtype=float)
        if len(vals):
            a.plot(np.arange(len(vals)) / result.n_tokens, vals, marker=".", ms=3, color=color)
        a.set_xlabel("fraction of reasoning tokens deleted")
        a.set_ylabel(TRACE_LABELS.get(key, key.replace("_", " ")).replace(" (", "\n("))
    fig.suptitle(f"{display_name(f'{result.method}/{result.objective}')}: example {result.example_id}")
    fig.tight_layout()
    _caption(fig, f"n = 1 example, {result.n_tokens} reasoning tokens, {result.n_steps} steps", setting)
    return fig


def plot_traces_all(results, keys: Sequence[str] = ("joint_logprob", "answer_logprob"), setting: str | None = None):
    """Median (line) and interquartile band over examples of each run's traces, relative to the full
    chain, against the fraction deleted; one panel per trace ``key``. ``results``: ``{run name:
    [PruneResult, ...]}`` (one line per objective or method) or a plain list (one run)."""
    plt = _plt()
    runs = results if isinstance(results, Mapping) else {
        display_name(f"{results[0].method}/{results[0].objective}") if results else "": list(results)}
    keys = [keys] if isinstance(keys, str) else list(keys)
    fig, axes = _grid(plt, len(keys), 2, DOUBLE_COLUMN if len(keys) > 1 else SINGLE_COLUMN * 1.3, 2.8)
    handles = {}
    for a, key in zip(axes, keys):
        q = trace_quantiles(runs, key)
        for run, g in q.groupby("run", sort=False):
            g = g[g["n_examples"] > 0]
            color = method_color(run)
            band = a.fill_between(g["fraction_deleted"], g["q25"], g["q75"], color=color, alpha=0.2, lw=0)
            (line,) = a.plot(g["fraction_deleted"], g["median"], color=color, lw=1.5)
            handles[run] = (band, line)
        a.axhline(0, color="k", lw=0.6)
        a.set_xlabel("fraction of reasoning tokens deleted")
        a.set_ylabel(TRACE_LABELS.get(key, key).split(" (")[0] + " change\nfrom full chain\n(nats, higher is better)")
    fig.legend(list(handles.values()), [f"{r}: median, interquartile band" for r in handles], loc="upper center",
               ncol=1, frameon=False, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.07 * len(handles)))
    counts = [len(rs) for rs in runs.values()]
    _caption(fig, n_text(counts) + " per run", "traces interpolated onto 5% steps of the fraction deleted", setting)
    return fig


# -- categories ---------------------------------------------------------------------------------
def plot_composition(comp: pd.DataFrame, value: str = "share", runs: Sequence[str] | None = None, ncols: int = 3,
                     setting: str | None = None, sharey: bool | None = None):
    """A grid with one panel per run: ``value`` (``share`` or ``retention``) per category against ρ.

    ``sharey``: one y scale for every panel (default: only for ``share``; retention ranges differ by
    run, so each retention panel gets its own scale, always including 1)."""
    plt = _plt()
    runs = list(runs or comp["run"].unique())
    sharey = value != "retention" if sharey is None else sharey
    fig, axes = _grid(plt, len(runs), ncols, DOUBLE_COLUMN, 2.1, sharex=True, sharey=sharey)
    for a, run in zip(axes, runs):
        d = comp[comp["run"] == run]
        for cat in ordered_categories(d["category"]):
            g = d[d["category"] == cat].sort_values("keep_ratio")
            c = category_color(cat)
            a.plot(g["keep_ratio"], g[value], marker="o", ms=2.5, lw=1.2, label=cat, color=c)
            if f"{value}_lo" in g:
                a.fill_between(g["keep_ratio"], g[f"{value}_lo"], g[f"{value}_hi"], color=c, alpha=0.15, lw=0)
        if value == "retention":
            a.axhline(1.0, color="k", lw=0.8, ls="--")
        a.set_title(str(run))
        a.set_xticks([1.0, 0.7, 0.4, 0.1])
    axes[0].invert_xaxis()
    for a in axes:
        a.set_xlabel("keep ratio ρ" if a.get_subplotspec().is_last_row() or a is axes[-1] else "")
        a.set_ylabel({"share": "share of kept tokens", "retention": "retention\n(1 = uniform deletion)"}.get(
            value, value) if a.get_subplotspec().is_first_col() else "")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(6, len(labels)), bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    note = ("retention = fraction of the category kept / fraction of all tokens kept (>1: kept preferentially)"
            if value == "retention" else "share of each category among the tokens still kept")
    if not sharey:
        note += "; each panel has its own y scale"
    ns = comp[comp["run"].isin(runs)].groupby("run")["n_examples"].max() if "n_examples" in comp else []
    _caption(fig, n_text(getattr(ns, "values", ns)) + " per run", note, setting,
             "bands: 95% bootstrap CI over examples")
    return fig


def plot_retention(comp: pd.DataFrame, keep_ratio: float = 0.5, runs: Sequence[str] | None = None,
                   setting: str | None = None):
    """Retention (relative to uniform deletion) of each category at one keep ratio, runs side by side, 95% CIs."""
    plt = _plt()
    d = comp[np.isclose(comp["keep_ratio"], keep_ratio)]
    runs = list(runs or d["run"].unique())
    cats = ordered_categories(d["category"])
    fig, ax = plt.subplots(figsize=(DOUBLE_COLUMN if len(runs) > 2 or len(cats) > 4 else SINGLE_COLUMN * 1.4, 2.8))
    w = 0.8 / len(runs)
    for i, run in enumerate(runs):
        g = d[d["run"] == run].set_index("category").reindex(cats)
        x = np.arange(len(cats)) + (i - (len(runs) - 1) / 2) * w
        ax.bar(x, g["retention"], w, yerr=_err(g, "retention", "retention_lo", "retention_hi"), capsize=1.5,
               label=run, color=method_color(run), error_kw={"lw": 0.8, "ecolor": "0.2"})
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(cats)), cats)
    ax.set_ylabel("retention (1 = uniform deletion,\n> 1 kept preferentially)")
    ax.set_title(f"Category retention at keep ratio ρ = {keep_ratio:g}")
    ax.legend(ncol=min(3, len(runs)), loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    fig.tight_layout()
    ns = d.groupby("run")["n_examples"].max() if "n_examples" in d else pd.Series(dtype=int)
    _caption(fig, n_text(ns.values) + " per run", setting, CI_NOTE)
    return fig


# -- rank dynamics ------------------------------------------------------------------------------
def plot_hit_rates(dyn: pd.DataFrame, top: int = 1, setting: str | None = None):
    """Hit rate of the deleted token in the top-``top`` of dynamic / frozen / random rankings by lag."""
    plt = _plt()
    runs = list(dyn["run"].unique())
    fig, axes = _grid(plt, len(runs), 2, DOUBLE_COLUMN if len(runs) > 1 else SINGLE_COLUMN * 1.3, 2.7, sharey=True)
    for a, run in zip(axes, runs):
        d = dyn[(dyn["run"] == run) & (dyn["top"] == top)]
        for kind, g in d.groupby("kind", sort=False):
            g = g.sort_values("lag")
            a.errorbar(g["lag"], g["hit_rate"], yerr=_err(g, "hit_rate", "ci_lo", "ci_hi"), marker="o", ms=3.5,
                       capsize=2, label=KIND_NAMES.get(kind, kind), color=KIND_COLORS.get(kind, "0.5"))
        ch = d.groupby("lag")["chance"].first()
        a.plot(ch.index, ch.values, ls=":", color=KIND_COLORS["chance"], label="chance")
        set_lag_axis(a, sorted(d["lag"].unique()))
        n_ex, n_st = (d["n_examples"].max(), d["n_steps"].max()) if len(d) else (0, 0)
        a.set_title(f"{run}\nn = {n_ex} examples, {n_st} steps")
    axes[0].set_ylabel(f"top-{top} hit rate\n(higher = ranking\npredicts the deletion)")
    handles, labels = axes[0].get_legend_handles_labels()  # above the panels: the lines fill them
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), frameon=False, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    _caption(fig, f"share of greedy steps whose deleted token is in the ranking's top {top}", setting, CI_NOTE)
    return fig


def plot_rank_correlation(corr: pd.DataFrame, setting: str | None = None):
    """Spearman correlation between step t and step t-k candidate scores against k."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(SINGLE_COLUMN * 1.3, 2.8))
    for run, g in corr.groupby("run", sort=False):
        g = g.sort_values("lag")
        ax.errorbar(g["lag"], g["spearman"], yerr=_err(g, "spearman", "ci_lo", "ci_hi"), marker="o", ms=3.5,
                    capsize=2, label=run, color=method_color(run))
    set_lag_axis(ax, sorted(corr["lag"].unique()))
    ax.set_ylabel("Spearman ρ, scores at step t\nvs step t − k (1 = same ranking)")
    ax.legend(loc="best")
    fig.tight_layout()
    ns = corr.groupby("run")["n_examples"].max() if "n_examples" in corr else []
    _caption(fig, n_text(getattr(ns, "values", ns)) + " per run", setting, CI_NOTE)
    return fig


# -- attention regression -----------------------------------------------------------------------
def plot_regression_scores(scores: pd.DataFrame, metric: str = "pearson", setting: str | None = None):
    """Held-out ``metric`` (fold mean, with per-fold points) per feature set and model."""
    import seaborn as sns

    plt = _plt()
    folds = scores[~scores["fold"].isin(["mean", "pooled"])].copy()
    folds["features"] = folds["feature_set"].map(lambda s: FEATURE_SET_NAMES.get(s, s))
    palette = {m: MODEL_COLORS.get(m, "0.5") for m in folds["model"].unique()}
    fig, ax = plt.subplots(figsize=(SINGLE_COLUMN * 1.5, 2.8))
    sns.barplot(data=folds, x="features", y=metric, hue="model", palette=palette, errorbar=("ci", 95), seed=0, ax=ax,
                capsize=0.1, saturation=1)
    sns.stripplot(data=folds, x="features", y=metric, hue="model", dodge=True, jitter=False, ax=ax,
                  palette={m: "k" for m in palette}, size=2.5, legend=False)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("features")
    name = {"pearson": "Pearson r", "spearman": "Spearman ρ"}.get(metric, metric)
    ax.set_ylabel(f"held-out {name}\n(higher is better)")
    fig.tight_layout()
    n_folds = folds["fold"].nunique()
    _caption(fig, f"GroupKFold by example, {n_folds} folds (dots: folds; bars: mean, 95% CI over folds)", setting)
    return fig


def plot_layer_contribution(layers: pd.DataFrame, setting: str | None = None):
    """Held-out Pearson of a ridge on one layer's attention features, per layer (y axis from 0)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(SINGLE_COLUMN * 1.5, 2.6))
    ax.plot(layers["layer"], layers["pearson"], marker="o", ms=3.5, label="mean over folds",
            color=MODEL_COLORS["ridge"])
    ax.plot(layers["layer"], layers["pearson_pooled"], marker="s", ms=3, ls="--", label="pooled predictions",
            color="0.4")
    ax.set_xlabel("layer")
    ticks = sorted(layers["layer"].unique())
    ax.set_xticks(ticks[::max(1, -(-len(ticks) // 10))])  # at most ~10 labels, readable at 9 pt
    ax.set_ylabel("held-out Pearson r of a ridge\non this layer (higher is better)")
    low = float(np.nanmin(layers[["pearson", "pearson_pooled"]].to_numpy(dtype=float))) if len(layers) else 0.0
    ax.set_ylim(bottom=min(0.0, low * 1.1))
    ax.legend(loc="best")
    fig.tight_layout()
    _caption(fig, "target: change of joint log-likelihood when the token alone is deleted", setting)
    return fig


# -- run comparisons and accuracy ---------------------------------------------------------------
def plot_compare(cmp: pd.DataFrame, metric: str, reference: str | None = None, setting: str | None = None):
    """One ``compare_runs`` metric: bars per run (x: keep ratio when present, else the runs), 95% CIs."""
    plt = _plt()
    d = cmp[cmp["metric"] == metric]
    if reference is not None:
        d = d[d["reference"] == reference]
    runs = list(d["run"].unique())
    rhos = sorted(d["keep_ratio"].dropna().unique(), reverse=True)
    fig, ax = plt.subplots(figsize=(SINGLE_COLUMN * 1.6, 2.8))
    if rhos:
        w = 0.8 / max(len(runs), 1)
        for i, run in enumerate(runs):
            g = d[d["run"] == run].set_index("keep_ratio").reindex(rhos)
            x = np.arange(len(rhos)) + (i - (len(runs) - 1) / 2) * w
            ax.bar(x, g["mean"], w, yerr=_err(g, "mean", "ci_lo", "ci_hi"), capsize=1.5, label=run,
                   color=method_color(run), error_kw={"lw": 0.8, "ecolor": "0.2"})
        ax.set_xticks(np.arange(len(rhos)), [f"ρ = {r:g}" for r in rhos])
        ax.set_xlabel(KEEP_RATIO)
        ax.legend(ncol=min(3, len(runs)), loc="upper center", bbox_to_anchor=(0.5, -0.25), frameon=False)
    else:
        g = d.set_index("run").reindex(runs)
        ax.bar(np.arange(len(runs)), g["mean"], 0.7, yerr=_err(g, "mean", "ci_lo", "ci_hi"), capsize=2,
               color=[method_color(r) for r in runs], error_kw={"lw": 0.8, "ecolor": "0.2"})
        ax.set_xticks(np.arange(len(runs)), runs, rotation=20, ha="right")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric.replace("_", " ")).format(ref=reference or "the reference"))
    title = {"kept_iou": "Overlap of kept tokens", "deleted_iou": "Overlap of deleted tokens",
             "kendall_tau": "Agreement of pruning order", "joint_logprob": "Joint log-likelihood reached",
             "answer_logprob": "Answer log-likelihood reached"}.get(metric, metric.replace("_", " "))
    ax.set_title(title + (f" (vs {reference})" if reference else ""))
    fig.tight_layout()
    _caption(fig, n_text(d["n_examples"], "shared examples") if "n_examples" in d else "", setting, CI_NOTE)
    return fig


__all__ = ["plot_traces", "plot_traces_all", "plot_composition", "plot_retention", "plot_hit_rates",
           "plot_rank_correlation", "plot_regression_scores", "plot_layer_contribution", "plot_compare",
           "METRIC_LABELS", "KIND_NAMES", "FEATURE_SET_NAMES"]
