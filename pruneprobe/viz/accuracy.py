"""Accuracy figures (sufficiency of pruned chains, distilled students): lines against ρ, or a dot plot
with intervals and counts when the accuracies are too small for lines to mean anything.

Canonical pattern::

    from pruneprobe.viz.accuracy import plot_accuracy, plot_accuracy_dots
    plot_accuracy(summary, refs=("Full chain", "No chain"), in_sample=("Greedy, answer objective",))
    plot_accuracy_dots(students, refs=("Full-chain student", "Zero-shot student"), panel="eval_set")

Gotchas:
- Colours come from ``viz.style.method_color`` by name; methods in ``in_sample`` are drawn dashed
  with open markers and "(in-sample)" in their label, and the caption says why.
- Points at the same ρ are spread a little along x (``dodge``) so their error bars do not hide
  each other; the ticks stay at the true ρ.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from pruneprobe.viz.style import DOUBLE_COLUMN, SINGLE_COLUMN, add_caption, method_color, n_text

IN_SAMPLE_NOTE = ("in-sample: the pruner chose the deletions with this same model's answer likelihood, "
                  "so its accuracy is not an independent test")
BANDS_NOTE = "bars and bands: 95% bootstrap CI over examples"


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _err(g: pd.DataFrame) -> np.ndarray:
    return np.nan_to_num(np.vstack([g["accuracy"] - g["ci_low"], g["ci_high"] - g["accuracy"]]))


def _caption(fig, *parts) -> None:
    add_caption(fig, "; ".join(str(p) for p in parts if p))


def _draw_refs(a, d: pd.DataFrame, hue: str, refs: Sequence[str]) -> None:
    for i, (name, g) in enumerate(d[d[hue].isin(refs)].groupby(hue, sort=False)):
        row, color = g.iloc[0], method_color(name)
        a.axhline(row["accuracy"], color=color, ls=("--", ":", "-.")[i % 3], lw=1, label=f"{name}")
        a.axhspan(row["ci_low"], row["ci_high"], color=color, alpha=0.08)


def plot_accuracy(summary: pd.DataFrame, hue: str = "method", refs: Sequence[str] = ("full", "none"),
                  panel: str | None = None, ax=None, setting: str | None = None, in_sample: Sequence[str] = (),
                  dodge: float = 0.006):
    """Accuracy (with its CI) against keep ratio per ``hue``; ``refs`` rows drawn as horizontal bands;
    one panel per value of ``panel`` (e.g. ``"eval_set"``); ``in_sample`` methods dashed and marked."""
    plt = _plt()
    panels = [None] if panel is None else list(summary[panel].unique())
    if ax is None:
        width = DOUBLE_COLUMN if len(panels) > 1 else SINGLE_COLUMN * 1.6
        fig, axes = plt.subplots(1, len(panels), figsize=(width, 2.9), sharey=True, squeeze=False)
        axes = list(axes[0])
    else:
        fig, axes = ax.figure, [ax]
    for a, value in zip(axes, panels):
        d = summary if value is None else summary[summary[panel] == value]
        _draw_refs(a, d, hue, refs)
        lines = list(d[~d[hue].isin(refs)].groupby(hue, sort=False))
        for i, (name, g) in enumerate(lines):
            g = g.sort_values("keep_ratio")
            marked = name in in_sample
            color = method_color(name)
            a.errorbar(g["keep_ratio"] + (i - (len(lines) - 1) / 2) * dodge, g["accuracy"], yerr=_err(g), marker="o",
                       ms=3.5, capsize=2, label=f"{name} (in-sample)" if marked else name, color=color,
                       ls="--" if marked else "-", mfc="white" if marked else color)
        a.set_xticks(sorted(d.loc[~d[hue].isin(refs), "keep_ratio"].unique()))
        a.set_xlabel("keep ratio ρ")
        a.invert_xaxis()
        if value is not None:
            a.set_title(str(value))
    axes[0].set_ylabel("accuracy (higher is better)")
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    n = n_text(summary["n"]) + " per point" if "n" in summary else ""
    marked = IN_SAMPLE_NOTE if any(m in set(summary[hue]) for m in in_sample) else ""
    _caption(fig, n, setting, BANDS_NOTE, marked)
    return fig


def _dot_rows(d: pd.DataFrame, hue: str, refs: Sequence[str]) -> list[tuple[str, pd.Series]]:
    """(row label, table row) top to bottom: the references, then each method at falling ρ."""
    rows = [(str(name), g.iloc[0]) for name, g in d[d[hue].isin(refs)].groupby(hue, sort=False)]
    for name, g in d[~d[hue].isin(refs)].groupby(hue, sort=False):
        g = g.sort_values("keep_ratio", ascending=False)
        rows += [(f"{name}, ρ = {r['keep_ratio']:g}", r) for _, r in g.iterrows()]
    return rows


def plot_accuracy_dots(summary: pd.DataFrame, hue: str = "method", refs: Sequence[str] = ("full", "none"),
                       panel: str | None = None, setting: str | None = None):
    """A dot plot: one row per (``hue``, ρ) and per reference, accuracy with its 95% CI as a horizontal
    bar, and the count solved (``k/n``) written at the right; one panel per value of ``panel``."""
    plt = _plt()
    panels = [None] if panel is None else list(summary[panel].unique())
    labels = [lab for lab, _ in _dot_rows(summary if panel is None else summary[summary[panel] == panels[0]],
                                          hue, refs)]
    fig, axes = plt.subplots(1, len(panels), figsize=(DOUBLE_COLUMN, 0.8 + 0.2 * len(labels)), sharey=True,
                             squeeze=False)
    axes = list(axes[0])
    x_max = max(float(summary["ci_high"].max()), 0.05) * 1.35
    for a, value in zip(axes, panels):
        d = summary if value is None else summary[summary[panel] == value]
        by_label = dict(_dot_rows(d, hue, refs))
        for y, label in enumerate(labels):
            if label not in by_label:
                continue
            r = by_label[label]
            name = r[hue]
            a.errorbar([r["accuracy"]], [y], xerr=_err(pd.DataFrame([r])), fmt="o", ms=4, capsize=2,
                       color=method_color(name), mfc="white" if name in refs else method_color(name))
            if "n" in r and np.isfinite(r["n"]):
                a.text(x_max * 0.98, y, f"{round(r['accuracy'] * r['n']):.0f}/{r['n']:.0f}", ha="right",
                       va="center", color="0.25")
        a.set_yticks(np.arange(len(labels)), labels)
        a.set_ylim(len(labels) - 0.5, -0.5)
        a.set_xlim(-0.02 * x_max, x_max)
        a.set_xlabel("accuracy (higher is better)")
        if value is not None:
            a.set_title(str(value))
    fig.tight_layout()
    n = n_text(summary["n"], "problems") + " per row (k/n: solved)" if "n" in summary else ""
    _caption(fig, n, setting, "bars: 95% bootstrap CI over problems (zero width at 0 solved)",
             "open dots: reference students")
    return fig


__all__ = ["plot_accuracy", "plot_accuracy_dots", "IN_SAMPLE_NOTE"]
