"""Figure style shared by every plot: one colour per method, one per category, names in words,
paper widths and font sizes, captions, saving.

Canonical pattern::

    from pruneprobe.viz.style import method_color, display_name, CATEGORY_COLORS
    method_color("greedy joint") == method_color("greedy/joint") == method_color("Greedy, joint objective")
    display_name("greedy-answer")        # 'Greedy, answer objective'

Gotchas:
- Colours come from the name, never from the position in a palette: a method keeps its colour
  whatever else is in the figure. Method and category hues are chosen apart (CIE76 distance >= 20).
- Names are matched loosely (case, ``/ - _`` and spaces ignored; display names and a leading
  pruner such as ``smollm2`` understood); an unknown name gets a stable colour from its hash.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Sequence

from pruneprobe.analysis.category_rules import CATEGORIES

SINGLE_COLUMN, DOUBLE_COLUMN = 3.4, 7.0  # inches, two-column paper
FONT_PT = 9

CATEGORY_COLORS = {
    "SymbMath": "#1f77b4", "VerbalMath": "#9ecae1", "EntName": "#2ca02c",
    "CoRef": "#9467bd", "MetaDisc": "#ff7f0e", "Grammar": "#b3b3b3", "Unlabeled": "#e0e0e0",
}
METHOD_COLORS = {
    "greedy joint": "#d62728", "greedy answer": "#e377c2", "surprisal": "#8c564b", "h2o": "#bcbd22",
    "uniform": "#17becf", "random": "#637939", "tokenskip": "#393b79", "full": "#000000", "none": "#5c5c5c",
}
KIND_COLORS = {"dynamic": "#d62728", "frozen": "#1f77b4", "random": "#7f7f7f", "chance": "#000000"}
MODEL_COLORS = {"ridge": "#1f77b4", "mlp": "#ff7f0e"}
PRUNER_COLORS = {"smollm2": "#d62728", "gemma3": "#6a3d9a"}
CHAIN_SET_COLORS = {"gold": "#1b9e77", "gold-len128": "#d95f02", "self": "#7570b3"}  # runs.chainsets.CHAIN_SETS
CHAIN_SET_NAMES = {"gold": "short gold (≤64 tokens)", "gold-len128": "full-length gold (≤128)",
                   "self": "self-generated (≤128)"}
_SPARE_COLORS = ("#8dd3c7", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5", "#bc80bd", "#ccebc5")

METHOD_NAMES = {
    "greedy joint": "Greedy, joint objective", "greedy answer": "Greedy, answer objective", "greedy": "Greedy",
    "surprisal": "Surprisal", "h2o": "H2O", "uniform": "Uniform", "random": "Random", "tokenskip": "TokenSkip",
    "full": "Full chain", "none": "No chain",
}
_ALIASES = {"greedy": "greedy joint", "full chain": "full", "zero shot": "none", "no chain": "none",
            "full chain student": "full", "zero shot student": "none"}
PRUNER_NAMES = {"smollm2": "SmolLM2-135M", "gemma3": "Gemma-3-270M"}
TRACE_LABELS = {
    "joint_logprob": "joint log-likelihood (nats, higher is better)",
    "answer_logprob": "answer log-likelihood (nats, higher is better)",
    "joint_ppl": "joint perplexity (lower is better)", "answer_ppl": "answer perplexity (lower is better)",
    "reasoning_ppl": "reasoning perplexity (lower is better)",
}
KEEP_RATIO = "keep ratio ρ (fraction of reasoning tokens kept)"
LAGS = (1, 2, 4, 8, 16)


def _key(name) -> str:
    return re.sub(r"[\s/_\-]+", " ", str(name).strip().lower())


_BY_DISPLAY = {_key(v): k for k, v in METHOD_NAMES.items()}


def _split(name) -> tuple[str | None, str]:
    """``(pruner or None, method key)`` of a run name such as ``"gemma3 greedy joint"``."""
    key = _key(name)
    key = _BY_DISPLAY.get(key, key)
    pruner = next((p for p in PRUNER_NAMES if key.startswith(p + " ")), None)
    if pruner:
        key = key[len(pruner) + 1:]
    else:  # a display name such as "Gemma-3-270M, greedy, joint objective"
        pruner = next((p for p, words in PRUNER_NAMES.items() if key.startswith(_key(words) + ", ")), None)
        if pruner:
            key = key[len(_key(PRUNER_NAMES[pruner])) + 2:]
            key = _BY_DISPLAY.get(key, _BY_DISPLAY.get(_key(key[:1].upper() + key[1:]), key))
    return pruner, _ALIASES.get(key, key)


def method_color(name) -> str:
    """The colour of a method or run name (a fixed map; unknown names: a stable colour from a hash)."""
    pruner, key = _split(name)
    if pruner is not None:
        return PRUNER_COLORS[pruner]
    if key in METHOD_COLORS:
        return METHOD_COLORS[key]
    return _SPARE_COLORS[zlib.crc32(key.encode()) % len(_SPARE_COLORS)]


def category_color(category) -> str:
    """The colour of a functional category (``Unlabeled`` grey for anything else)."""
    return CATEGORY_COLORS.get(str(category), CATEGORY_COLORS["Unlabeled"])


def display_name(name) -> str:
    """A method or run name in words (``"greedy/joint"`` -> ``"Greedy, joint objective"``); unknown names unchanged."""
    pruner, key = _split(name)
    words = METHOD_NAMES.get(key) or METHOD_NAMES.get(_key(name))
    if words is None:
        return str(name)
    return f"{PRUNER_NAMES[pruner]}, {words[0].lower() + words[1:]}" if pruner else words


def ordered_categories(present) -> list[str]:
    """``present`` categories in the canonical order (``category_rules.CATEGORIES``), others sorted after."""
    present = set(present)
    return [c for c in CATEGORIES if c in present] + sorted(present - set(CATEGORIES))


def n_text(counts: Sequence[int], unit: str = "examples") -> str:
    """``"n = 40 examples"`` or ``"n = 40-120 examples"`` for a range."""
    counts = sorted({int(c) for c in counts})
    if not counts:
        return f"n = 0 {unit}"
    return f"n = {counts[0]} {unit}" if len(counts) == 1 else f"n = {counts[0]}–{counts[-1]} {unit}"


def add_caption(fig, text: str) -> None:
    """A caption line under the axes (n, setting, what the bands are); kept by ``save_figure``."""
    fig.text(0.01, -0.01, text, ha="left", va="top", fontsize=FONT_PT - 0.5, color="0.25", wrap=True)


def set_lag_axis(ax, lags=LAGS) -> None:
    """Log-2 lag axis with ticks at the lags themselves (1, 2, 4, 8, 16)."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log", base=2)
    ax.set_xticks(list(lags), [str(int(x)) for x in lags])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("lag k (greedy steps)")


def set_style() -> None:
    """Seaborn ``whitegrid`` at paper sizes: every text >= 9 pt."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper", rc={
        "font.size": FONT_PT, "axes.titlesize": FONT_PT + 0.5, "axes.labelsize": FONT_PT,
        "xtick.labelsize": FONT_PT, "ytick.labelsize": FONT_PT, "legend.fontsize": FONT_PT,
        "legend.title_fontsize": FONT_PT, "figure.titlesize": FONT_PT + 1, "figure.dpi": 100})


def save_figure(fig, name: str, directory="figures", formats: Sequence[str] = ("png", "pdf"), dpi: int = 200) -> list[Path]:
    """Write ``fig`` to ``<directory>/<name>.<fmt>`` for each format; returns the paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        p = d / f"{name}.{fmt}"
        fig.savefig(p, dpi=dpi, bbox_inches="tight", metadata={"CreationDate": None} if fmt == "pdf" else None)
        paths.append(p)
    return paths


__all__ = ["CATEGORY_COLORS", "METHOD_COLORS", "KIND_COLORS", "MODEL_COLORS", "PRUNER_COLORS", "METHOD_NAMES",
           "CHAIN_SET_COLORS", "CHAIN_SET_NAMES",
           "PRUNER_NAMES", "TRACE_LABELS", "KEEP_RATIO", "LAGS", "SINGLE_COLUMN", "DOUBLE_COLUMN", "FONT_PT",
           "method_color", "category_color", "display_name", "ordered_categories", "n_text", "add_caption",
           "set_lag_axis", "set_style", "save_figure"]
