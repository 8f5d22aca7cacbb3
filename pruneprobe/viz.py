"""Plot helpers for the notebooks (each returns a matplotlib Figure) and a static HTML walkthrough.

Canonical pattern::

    from pruneprobe import viz
    fig = viz.plot_traces(result)
    viz.save_figure(fig, "01_traces")                  # figures/01_traces.png and .pdf
    html = viz.pruning_html(result, labels)            # self-contained page, slider over steps
    viz.write_html(html, "figures/01_walkthrough.html")

Gotchas:
- ``save_figure`` writes into ``figures/`` under the current directory unless ``directory`` is
  given; the notebooks pass the repository's ``figures/`` explicitly.
- ``pruning_html`` needs no kernel: every step's state is embedded as JSON and a few lines of
  plain JavaScript redraw the tokens when the slider moves.
"""

from __future__ import annotations

import html as _html
import json
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

CATEGORY_ORDER = ("SymbMath", "VerbalMath", "EntName", "CoRef", "MetaDisc", "Grammar")
CATEGORY_COLORS = {
    "SymbMath": "#1f77b4", "VerbalMath": "#17becf", "EntName": "#2ca02c",
    "CoRef": "#9467bd", "MetaDisc": "#ff7f0e", "Grammar": "#8c8c8c", "Unlabeled": "#bbbbbb",
}
KIND_COLORS = {"dynamic": "#d62728", "frozen": "#1f77b4", "random": "#7f7f7f"}

__all__ = ["set_style", "save_figure", "plot_traces", "plot_composition", "plot_retention", "plot_hit_rates",
           "plot_rank_correlation", "plot_regression_scores", "plot_layer_contribution", "plot_compare", "plot_accuracy",
           "pruning_html", "write_html", "category_list", "CATEGORY_COLORS"]


def set_style() -> None:
    """Seaborn ``whitegrid`` / ``notebook`` styling for every figure."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.9)


def save_figure(fig, name: str, directory="figures", formats: Sequence[str] = ("png", "pdf"), dpi: int = 150) -> list[Path]:
    """Write ``fig`` to ``<directory>/<name>.<fmt>`` for each format; returns the paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        p = d / f"{name}.{fmt}"
        fig.savefig(p, dpi=dpi, bbox_inches="tight", metadata={"CreationDate": None} if fmt == "pdf" else None)
        paths.append(p)
    return paths


def _plt():
    import matplotlib.pyplot as plt

    return plt


def category_list(result, labels) -> list[str]:
    """Categories of ``result``'s tokens from ``labels`` (a label table, a dict or a list)."""
    if labels is None:
        return ["Unlabeled"] * result.n_tokens
    if isinstance(labels, pd.DataFrame):
        g = labels[labels["example_id"] == result.example_id].sort_values("index")
        cats = list(g["category"])
    elif isinstance(labels, dict):
        cats = list(labels[result.example_id])
    else:
        cats = list(labels)
    if len(cats) != result.n_tokens:
        raise ValueError(f"{len(cats)} labels for {result.n_tokens} tokens of {result.example_id!r}")
    return cats


# -- figures ------------------------------------------------------------------------------------
def plot_traces(result, keys=("joint_logprob", "answer_logprob"), ax=None):
    """Objective traces (before any deletion, then after each step) against the fraction deleted."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False) if ax is None else (ax.figure, np.array([[ax]]))
    for a, key in zip(axes[0], keys):
        vals = np.asarray([np.nan if v is None else v for v in result.traces.get(key, [])], dtype=float)
        if len(vals):
            a.plot(np.arange(len(vals)) / result.n_tokens, vals, marker=".", ms=3)
        a.set_xlabel("fraction of reasoning tokens deleted")
        a.set_ylabel(key.replace("_", " "))
    fig.suptitle(f"{result.method}/{result.objective}: {result.example_id}")
    fig.tight_layout()
    return fig


def plot_composition(comp: pd.DataFrame, value: str = "share", runs: Sequence[str] | None = None):
    """One panel per run: ``value`` (share of kept tokens) per category against the keep ratio."""
    plt = _plt()
    runs = list(runs or comp["run"].unique())
    fig, axes = plt.subplots(1, len(runs), figsize=(3.6 * len(runs), 3.3), sharey=True, squeeze=False)
    for a, run in zip(axes[0], runs):
        d = comp[comp["run"] == run]
        for cat, g in d.groupby("category", sort=False):
            g = g.sort_values("keep_ratio")
            c = CATEGORY_COLORS.get(cat)
            a.plot(g["keep_ratio"], g[value], marker="o", ms=3, label=cat, color=c)
            if f"{value}_lo" in g:
                a.fill_between(g["keep_ratio"], g[f"{value}_lo"], g[f"{value}_hi"], color=c, alpha=0.15, lw=0)
        a.set_title(run)
        a.set_xlabel("keep ratio")
        a.invert_xaxis()
    axes[0, 0].set_ylabel(value)
    axes[0, -1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def plot_retention(comp: pd.DataFrame, keep_ratio: float = 0.5, runs: Sequence[str] | None = None):
    """Retention (relative to uniform deletion) of each category at one keep ratio, runs side by side, 95% CIs."""
    plt = _plt()
    d = comp[np.isclose(comp["keep_ratio"], keep_ratio)]
    runs = list(runs or d["run"].unique())
    cats = [c for c in CATEGORY_ORDER if c in set(d["category"])]
    fig, ax = plt.subplots(figsize=(1.1 * len(cats) * max(1, len(runs)) ** 0.5 + 3, 3.4))
    w = 0.8 / len(runs)
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(runs):
        g = d[d["run"] == run].set_index("category").reindex(cats)
        x = np.arange(len(cats)) + (i - (len(runs) - 1) / 2) * w
        err = np.vstack([g["retention"] - g["retention_lo"], g["retention_hi"] - g["retention"]])
        ax.bar(x, g["retention"], w, yerr=np.nan_to_num(err), capsize=2, label=run, color=palette[i % len(palette)])
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(cats)), cats)
    ax.set_ylabel(f"retention at keep ratio {keep_ratio:g}\n(1 = uniform deletion)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_hit_rates(dyn: pd.DataFrame, top: int = 1):
    """Hit rate of the deleted token in the top-``top`` of dynamic / frozen / random rankings by lag."""
    plt = _plt()
    runs = list(dyn["run"].unique())
    fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 3.3), sharey=True, squeeze=False)
    for a, run in zip(axes[0], runs):
        d = dyn[(dyn["run"] == run) & (dyn["top"] == top)]
        for kind, g in d.groupby("kind", sort=False):
            g = g.sort_values("lag")
            a.errorbar(g["lag"], g["hit_rate"], yerr=[g["hit_rate"] - g["ci_lo"], g["ci_hi"] - g["hit_rate"]],
                       marker="o", ms=4, capsize=2, label=kind, color=KIND_COLORS.get(kind))
        ch = d.groupby("lag")["chance"].first()
        a.plot(ch.index, ch.values, ls=":", color="k", label="chance")
        a.set_xscale("log", base=2)
        a.set_xlabel("lag k (steps)")
        a.set_title(f"{run}: top-{top}")
    axes[0, 0].set_ylabel("hit rate")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_accuracy(summary: pd.DataFrame, hue: str = "method", refs: Sequence[str] = ("full", "none"),
                  panel: str | None = None, ax=None):
    """Accuracy (with its CI) against keep ratio per ``hue``; ``refs`` rows drawn as horizontal bands;
    one panel per value of ``panel`` (e.g. ``"eval_set"``)."""
    plt = _plt()
    panels = [None] if panel is None else list(summary[panel].unique())
    if ax is None:
        fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4), sharey=True, squeeze=False)
        axes = axes[0]
    else:
        fig, axes = ax.figure, [ax]
    for a, value in zip(axes, panels):
        d = summary if value is None else summary[summary[panel] == value]
        for i, (name, g) in enumerate(d[d[hue].isin(refs)].groupby(hue, sort=False)):
            row = g.iloc[0]
            a.axhline(row["accuracy"], color="0.3", ls=("--", ":", "-.")[i % 3], lw=1, label=f"{name}")
            a.axhspan(row["ci_low"], row["ci_high"], color="0.5", alpha=0.12)
        for name, g in d[~d[hue].isin(refs)].groupby(hue, sort=False):
            g = g.sort_values("keep_ratio")
            a.errorbar(g["keep_ratio"], g["accuracy"], yerr=[g["accuracy"] - g["ci_low"], g["ci_high"] - g["accuracy"]],
                       marker="o", ms=4, capsize=2, label=name)
        a.set_xticks(sorted(d.loc[~d[hue].isin(refs), "keep_ratio"].unique()))
        a.set_xlabel("keep ratio rho")
        a.invert_xaxis()
        if value is not None:
            a.set_title(str(value))
    axes[0].set_ylabel("accuracy")
    axes[-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def plot_rank_correlation(corr: pd.DataFrame):
    """Spearman correlation between step t and step t-k candidate scores against k."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.3))
    for run, g in corr.groupby("run", sort=False):
        g = g.sort_values("lag")
        ax.errorbar(g["lag"], g["spearman"], yerr=[g["spearman"] - g["ci_lo"], g["ci_hi"] - g["spearman"]],
                    marker="o", ms=4, capsize=2, label=run)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("lag k (steps)")
    ax.set_ylabel("Spearman rho (scores t vs t-k)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_regression_scores(scores: pd.DataFrame, metric: str = "pearson"):
    """Held-out ``metric`` (fold mean, with per-fold points) per feature set and model."""
    import seaborn as sns

    plt = _plt()
    folds = scores[~scores["fold"].isin(["mean", "pooled"])].copy()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    sns.barplot(data=folds, x="feature_set", y=metric, hue="model", errorbar=("ci", 95), seed=0, ax=ax, capsize=0.1)
    sns.stripplot(data=folds, x="feature_set", y=metric, hue="model", dodge=True, jitter=False, ax=ax, palette="dark:k", size=3,
                  legend=False)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylabel(f"held-out {metric} (GroupKFold by example)")
    fig.tight_layout()
    return fig


def plot_layer_contribution(layers: pd.DataFrame):
    """Held-out Pearson of a ridge on one layer's attention features, per layer."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.plot(layers["layer"], layers["pearson"], marker="o", ms=4, label="fold mean")
    ax.plot(layers["layer"], layers["pearson_pooled"], marker="s", ms=3, ls="--", label="pooled")
    ax.set_xlabel("layer")
    ax.set_ylabel("held-out Pearson r")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_compare(cmp: pd.DataFrame, metric: str, reference: str | None = None):
    """One ``compare_runs`` metric: bars per run (x: keep ratio when present), 95% CIs."""
    plt = _plt()
    d = cmp[cmp["metric"] == metric]
    if reference is not None:
        d = d[d["reference"] == reference]
    fig, ax = plt.subplots(figsize=(5.5, 3.3))
    runs = list(d["run"].unique())
    rhos = sorted(d["keep_ratio"].dropna().unique(), reverse=True) or [np.nan]
    w = 0.8 / max(len(runs), 1)
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(runs):
        g = d[d["run"] == run]
        g = g.set_index("keep_ratio").reindex(rhos) if len(rhos) > 1 or not np.isnan(rhos[0]) else g
        x = np.arange(len(g)) + (i - (len(runs) - 1) / 2) * w
        err = np.vstack([g["mean"] - g["ci_lo"], g["ci_hi"] - g["mean"]])
        ax.bar(x, g["mean"], w, yerr=np.nan_to_num(err), capsize=2, label=run, color=palette[i % len(palette)])
    ax.set_xticks(np.arange(len(rhos)), [f"rho={r:g}" if np.isfinite(r) else "" for r in rhos])
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(metric + (f" vs {reference}" if reference else ""))
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


# -- HTML walkthrough ---------------------------------------------------------------------------
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; max-width: 60em; }}
#text {{ font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 1.9; border: 1px solid #ddd; padding: .8em; }}
.tok {{ border-radius: 3px; padding: 0 1px; }}
.tok.deleted {{ color: #bbb; background: #f3f3f3 !important; text-decoration: line-through; }}
.tok.next {{ outline: 2px solid #d62728; }}
.legend span {{ display: inline-block; padding: 0 .4em; margin-right: .4em; border-radius: 3px; }}
#info {{ margin: .6em 0; }}
</style>
</head>
<body>
<h2>{title}</h2>
<p class="legend">{legend}</p>
<div id="controls">
<label for="step">step</label>
<input type="range" id="step" min="{smin}" max="{smax}" value="{smin}" step="1" style="width: 30em">
<span id="stepnum"></span>
</div>
<div id="info"></div>
<div id="text">{spans}</div>
<script id="pruning-data" type="application/json">{data}</script>
<script>
(function () {{
  var d = JSON.parse(document.getElementById("pruning-data").textContent);
  var slider = document.getElementById("step");
  function draw() {{
    var s = parseInt(slider.value, 10);
    for (var i = 0; i < d.rank.length; i++) {{
      var el = document.getElementById("t" + i);
      var r = d.rank[i];
      el.className = "tok" + (r > 0 && r <= s ? " deleted" : "") + (r === s + 1 ? " next" : "");
    }}
    document.getElementById("stepnum").textContent = s + " / " + d.n_steps + " deleted";
    var parts = [];
    for (var k in d.traces) {{
      var v = d.traces[k][s];
      parts.push(k + " = " + (v === null || v === undefined ? "n/a" : v.toFixed(3)));
    }}
    document.getElementById("info").textContent =
      "kept " + (d.n_tokens - s) + "/" + d.n_tokens + " tokens; " + parts.join(", ");
  }}
  slider.addEventListener("input", draw);
  draw();
}})();
</script>
</body>
</html>
"""


def _visible(token: str) -> str:
    return token.replace("\n", "\u21b5\n")


def pruning_html(result, labels=None, steps: Sequence[int] | None = None, title: str | None = None,
                 traces: Sequence[str] = ("joint_logprob", "answer_logprob")) -> str:
    """A self-contained HTML page: the reasoning tokens coloured by category, a slider over pruning
    steps (deleted tokens greyed and struck through, the next one outlined) and the trace values.

    ``labels``: a label table (``example_id, index, category``), a dict or a list of categories,
    or None. ``steps``: the slider's range as (first, last) or any sequence whose min/max are used
    (default: 0 .. n_steps).
    """
    cats = category_list(result, labels)
    n_steps = result.n_steps
    if steps is None or len(steps) == 0:
        smin, smax = 0, n_steps
    else:
        smin, smax = max(0, int(min(steps))), min(n_steps, int(max(steps)))
    spans = "".join(
        f'<span id="t{i}" class="tok" data-category="{_html.escape(c)}" '
        f'style="background: {CATEGORY_COLORS.get(c, "#bbbbbb")}33" title="{_html.escape(c)}">'
        f"{_html.escape(_visible(t))}</span>"
        for i, (t, c) in enumerate(zip(result.tokens, cats)))
    present = [c for c in CATEGORY_ORDER if c in cats] + sorted(set(cats) - set(CATEGORY_ORDER))
    legend = "".join(f'<span style="background: {CATEGORY_COLORS.get(c, "#bbbbbb")}33">{_html.escape(c)}</span>'
                     for c in present)

    def clean(v):
        return None if v is None or not np.isfinite(v) else float(v)

    data = {"rank": [int(x) for x in result.pruning_rank], "n_steps": n_steps, "n_tokens": result.n_tokens,
            "traces": {k: [clean(v) for v in result.traces[k]] for k in traces if k in result.traces}}
    payload = json.dumps(data).replace("</", "<\\/")
    title = title or f"{result.method}/{result.objective} pruning of {result.example_id}"
    return _PAGE.format(title=_html.escape(title), legend=legend, smin=smin, smax=smax, spans=spans, data=payload)


def write_html(html: str, path) -> Path:
    """Write ``html`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(html)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path

