"""Chain sets side by side (notebook 07): the same headline numbers on the short gold chains, the full-length gold
chains and the chains the pruner wrote itself, each with its n and 95% bootstrap CI.

Canonical pattern::

    from pruneprobe.viz.chain_sets import chain_set_table, plot_chain_sets
    table = chain_set_table()      # every chain set with greedy joint results; written to data/tables/chain_sets.csv
    fig = plot_chain_sets(table)   # retention by category, hit rates, Kendall tau with the baselines

Gotchas: a set whose greedy joint run has no results yet is left out (printed), not an error; the sets differ in
more than their chains (the gold set was pruned in bf16 on a GPU, the others in fp32 on a CPU), which the
table's ``setting`` column states.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from pruneprobe.analysis.headlines import HIT_RATE, RETENTION, TAU, attention_rows, headline_numbers
from pruneprobe.core.io import atomic_write_text
from pruneprobe.errors import PruneprobeError
from pruneprobe.runs.chainsets import CHAIN_SETS, chain_set
from pruneprobe.viz.notebook import DATA, GREEDY_JOINT, load_cached_results, load_labels
from pruneprobe.viz.style import CHAIN_SET_COLORS, CHAIN_SET_NAMES, DOUBLE_COLUMN, add_caption, ordered_categories

KINDS = ("dynamic", "frozen", "random")
SHORT_RUN_NAMES = {"Greedy, answer objective": "greedy\n(answer)"}


def set_headlines(name: str, runs_dir=None, labels_dir=None, n_boot: int = 1000, seed: int = 0,
                  tables_dir=None) -> pd.DataFrame | None:
    """``headline_numbers`` of one chain set's greedy joint run against its other runs, plus the attention study
    notebook 04 cached for it under ``tables_dir`` (``data/tables``), with columns ``chain_set`` and ``setting`` in
    front; None (and a printed note) when its greedy joint run has no results yet."""
    chains = chain_set(name)
    try:
        results = load_cached_results(runs_dir=runs_dir, chains=chains)
    except PruneprobeError as err:
        print(f"{name}: left out ({err})")
        return None
    greedy = results.pop(GREEDY_JOINT)
    labels = load_labels({GREEDY_JOINT: greedy}, chains.labels_glob, labels_dir)
    table = headline_numbers(greedy, labels, results, n_boot=n_boot, seed=seed)
    study = Path(tables_dir or DATA / "tables") / chains.subdir / "attention_study.csv"
    if study.exists():  # what notebook 04 measured on this set (its rows say on how many examples)
        table = pd.concat([table, attention_rows(pd.read_csv(study))], ignore_index=True)
    table.insert(0, "setting", chains.setting)
    table.insert(0, "chain_set", name)
    return table


def chain_set_table(names: Iterable[str] = tuple(CHAIN_SETS), runs_dir=None, labels_dir=None, path=None,
                    n_boot: int = 1000, seed: int = 0, tables_dir=None) -> pd.DataFrame:
    """The headline numbers of every chain set in ``names`` that has results, one table, also written
    (atomically) to ``path`` (default ``data/tables/chain_sets.csv``; ``path=False``: not written)."""
    tables = [t for t in (set_headlines(n, runs_dir, labels_dir, n_boot, seed, tables_dir) for n in names) if t is not None]
    if not tables:
        raise PruneprobeError(f"no chain set among {list(names)} has greedy joint results yet")
    table = pd.concat(tables, ignore_index=True)
    if path is not False:
        atomic_write_text(Path(path or DATA / "tables" / "chain_sets.csv"), table.to_csv(index=False))
    return table


def headline_cells(table: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """``value [lo, hi] (n)`` per quantity and detail (rows) and chain set (columns), for printing."""
    def cell(r) -> str:
        ci = "" if np.isnan(r.ci_lo) else f" [{r.ci_lo:.{digits}f}, {r.ci_hi:.{digits}f}]"
        return f"{r.value:.{digits}f}{ci} (n={r.n_examples})"

    cells = table.assign(cell=table.apply(cell, axis=1))
    out = cells.pivot_table(index=["quantity", "detail"], columns="chain_set", values="cell", aggfunc="first", sort=False)
    return out[[c for c in table.chain_set.unique()]]


def _dodged(ax, table: pd.DataFrame, quantity: str, details: list[str]) -> None:
    sets = list(table.chain_set.unique())
    w = 0.8 / len(sets)
    for i, name in enumerate(sets):
        g = table[(table.chain_set == name) & (table.quantity == quantity)].set_index("detail").reindex(details)
        x = np.arange(len(details)) + (i - (len(sets) - 1) / 2) * w
        err = np.nan_to_num(np.vstack([g.value - g.ci_lo, g.ci_hi - g.value]))
        n = int(g.n_examples.max()) if g.n_examples.notna().any() else 0
        ax.errorbar(x, g.value, yerr=err, fmt="o", ms=4, capsize=2, lw=0.9, color=CHAIN_SET_COLORS[name],
                    label=f"{CHAIN_SET_NAMES[name]} (n = {n})")
    ax.set_xticks(np.arange(len(details)), details)


def plot_chain_sets(table: pd.DataFrame, rho: float = 0.5, lag: int = 1):
    """One colour per chain set: category retention at ``rho`` (top), the top-1 hit rate of the dynamic / frozen /
    random rankings at ``lag`` and the Kendall tau of each other run's ranks with greedy's (bottom)."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(DOUBLE_COLUMN, 5.0))
    grid = fig.add_gridspec(2, 2, width_ratios=[1, 1.6], height_ratios=[1, 1.1])
    top, left, right = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    retention = RETENTION.format(rho=rho)
    _dodged(top, table, retention, ordered_categories(table.loc[table.quantity == retention, "detail"]))
    top.axhline(1.0, color="k", lw=0.8, ls="--")
    top.set_ylabel("retention\n(1 = uniform deletion)")
    top.set_title(f"Category retention at keep ratio ρ = {rho:g}, greedy (joint)")
    _dodged(left, table, HIT_RATE.format(lag=lag), list(KINDS))
    chance = table[(table.quantity == HIT_RATE.format(lag=lag)) & (table.detail == "chance")].value
    if len(chance):
        left.axhline(chance.mean(), color="k", lw=0.8, ls=":")
        left.text(0.03, chance.mean(), "chance", transform=left.get_yaxis_transform(), ha="left", va="bottom")
    left.set_ylabel(f"top-1 hit rate at lag {lag}\n(share of greedy steps)")
    left.set_title("Which ranking predicts the deletion")
    taus = list(dict.fromkeys(table.loc[table.quantity == TAU, "detail"]))
    _dodged(right, table, TAU, taus)
    right.set_xticks(np.arange(len(taus)), [SHORT_RUN_NAMES.get(t, t) for t in taus])
    right.axhline(0.0, color="k", lw=0.8)
    right.set_ylabel("Kendall tau with\ngreedy (joint) ranks")
    right.set_title("Agreement of other runs with greedy")
    handles, labels = top.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), frameon=False, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    lengths = table[table.detail == "mean"].set_index("chain_set").value
    add_caption(fig, "; ".join(f"{CHAIN_SET_NAMES[k]}: mean {v:.0f} reasoning tokens" for k, v in lengths.items())
                + ". n = examples per set (Kendall tau: examples both runs have); error bars: 95% bootstrap CI over "
                  "examples (none with one example)")
    return fig


__all__ = ["chain_set_table", "headline_cells", "plot_chain_sets", "set_headlines"]
