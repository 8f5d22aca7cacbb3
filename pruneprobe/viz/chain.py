"""One example chain as text at several keep ratios: kept tokens on their category's colour, deleted
tokens greyed and struck through in their category's colour — the figure a reader looks at first.

Canonical pattern::

    from pruneprobe.viz.chain import plot_pruned_chain
    fig = plot_pruned_chain(result, labels, keep_ratios=(0.9, 0.7, 0.5))

Gotchas:
- Tokens are laid out by measuring each one with the figure's renderer (matplotlib has no text
  flow), in points, so the layout does not depend on the figure height set afterwards.
- Text is drawn with ``parse_math=False``: a ``$`` in a chain is a dollar, not mathtext.
- Newlines in tokens break the line and are shown as ``↵``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from pruneprobe.core.result import PruneResult
from pruneprobe.viz.html import category_list
from pruneprobe.viz.style import DOUBLE_COLUMN, FONT_PT, add_caption, category_color, ordered_categories

DELETED_TEXT = "0.45"
KEPT_ALPHA = 0.45


@dataclass(frozen=True)
class PlacedToken:
    """One token piece at ``(x, line)`` (points from the left, line number within its panel)."""

    text: str
    x: float
    width: float
    line: int
    category: str
    kept: bool


def _measure(fig, fontsize: float):
    """``width(text)`` in points, with the figure's renderer (cached per string)."""
    renderer = fig.canvas.get_renderer()
    probe = fig.text(0, 0, "", fontsize=fontsize, parse_math=False)
    cache: dict[str, float] = {}

    def width(text: str) -> float:
        if text not in cache:
            probe.set_text(text)
            cache[text] = probe.get_window_extent(renderer).width * 72 / fig.dpi if text else 0.0
        return cache[text]

    space = width("a a") - width("aa")
    return width, space, probe


def layout_tokens(tokens: Sequence[str], categories: Sequence[str], kept: Sequence[bool], line_width: float,
                  width, space: float) -> list[PlacedToken]:
    """Flow ``tokens`` into lines of ``line_width`` points (``width``: text -> points)."""
    placed, x, line = [], 0.0, 0
    for tok, cat, keep in zip(tokens, categories, kept):
        for k, part in enumerate(tok.split("\n")):
            if k > 0:  # the newline itself: a visible mark, then a new line
                placed.append(PlacedToken("↵", x, width("↵"), line, cat, bool(keep)))
                x, line = 0.0, line + 1
            stripped = part.lstrip(" ")
            lead = (len(part) - len(stripped)) * space if x > 0 else 0.0
            if not stripped:
                x += lead
                continue
            w = width(stripped)
            if x + lead + w > line_width and x > 0:
                x, line, lead = 0.0, line + 1, 0.0
            placed.append(PlacedToken(stripped, x + lead, w, line, cat, bool(keep)))
            x += lead + w
    return placed


def _draw_panel(fig, placed: list[PlacedToken], top: float, left: float, line_height: float, fontsize: float,
                height: float, width_in: float) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    fx = 1 / (width_in * 72)
    fy = 1 / (height * 72)
    for p in placed:
        base = top - (p.line + 1) * line_height
        x0, x1 = left + p.x, left + p.x + p.width
        color = category_color(p.category)
        if p.kept:
            fig.add_artist(Rectangle((x0 * fx, (base - 0.25 * fontsize) * fy), p.width * fx, 1.15 * fontsize * fy,
                                     transform=fig.transFigure, color=color, alpha=KEPT_ALPHA, lw=0, zorder=1))
        fig.text(x0 * fx, base * fy, p.text, fontsize=fontsize, parse_math=False, va="baseline", zorder=2,
                 color="black" if p.kept else DELETED_TEXT)
        if not p.kept:
            mid = (base + 0.32 * fontsize) * fy
            fig.add_artist(Line2D([x0 * fx, x1 * fx], [mid, mid], transform=fig.transFigure, color=color, lw=1.6,
                                  zorder=3))


def plot_pruned_chain(result: PruneResult, labels=None, keep_ratios: Sequence[float] = (0.9, 0.7, 0.5),
                      width: float = DOUBLE_COLUMN, fontsize: float = FONT_PT, setting: str | None = None):
    """The reasoning of ``result`` once per keep ratio: kept tokens on their category's colour, deleted
    ones struck through in it. ``labels``: a label table, dict or list (``viz.html.category_list``)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    cats = category_list(result, labels)
    fig = plt.figure(figsize=(width, 1.0))
    width_of, space, probe = _measure(fig, fontsize)
    left, line_height, gap = 6.0, 1.6 * fontsize, 0.8 * fontsize
    panels = [(rho, layout_tokens(result.tokens, cats, result.kept_mask(rho), width * 72 - 2 * left, width_of, space))
              for rho in keep_ratios]
    probe.remove()
    legend_h = 2.2 * fontsize
    total = legend_h + sum((max((p.line for p in placed), default=0) + 2) * line_height + gap for _, placed in panels)
    height = total / 72
    fig.set_size_inches(width, height)
    top = total - legend_h
    for rho, placed in panels:
        n_kept = int(result.kept_mask(rho).sum())
        fig.text(left / (width * 72), (top - 0.9 * line_height) / total, f"ρ = {rho:g}: {n_kept} of "
                 f"{result.n_tokens} tokens kept", fontsize=fontsize, fontweight="bold", parse_math=False)
        _draw_panel(fig, placed, top - line_height, left, line_height, fontsize, height, width)
        top -= (max((p.line for p in placed), default=0) + 2) * line_height + gap
    handles = [Patch(color=category_color(c), alpha=KEPT_ALPHA, label=c) for c in ordered_categories(cats)]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False, fontsize=fontsize,
               bbox_to_anchor=(0.5, 1.0), handlelength=1.2, columnspacing=1.0)
    add_caption(fig, f"Example {result.example_id}, {display_method(result)}; shaded: kept, coloured by "
                     f"category; struck through: deleted; n = 1 example" + (f"; {setting}" if setting else ""))
    return fig


def display_method(result: PruneResult) -> str:
    """``"greedy, joint objective"`` style description of how ``result`` was pruned."""
    return f"{result.method}, {result.objective} objective" if result.objective else str(result.method)


__all__ = ["plot_pruned_chain", "layout_tokens", "PlacedToken", "display_method"]
