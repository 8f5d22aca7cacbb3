"""Objective traces of many examples summarised on a common grid: median and interquartile range per run.

Canonical pattern::

    from pruneprobe.analysis.traces import trace_quantiles
    q = trace_quantiles({"Greedy, joint objective": results}, key="joint_logprob")
    q.head()   # run, fraction_deleted, median, q25, q75, n_examples

Gotchas:
- Each trace is taken relative to its full chain (step 0) and linearly interpolated onto the grid of
  fractions deleted; an example contributes only where its trace reaches (runs stopped early end
  before 1.0), so ``n_examples`` can fall along the grid.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from pruneprobe.core.result import PruneResult


def _relative_trace(result: PruneResult, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(fraction deleted, trace minus its full-chain value) over the finite points of one trace."""
    values = np.asarray([np.nan if v is None else v for v in result.traces.get(key, [])], dtype=float)
    if not len(values) or not np.isfinite(values[0]):
        return np.empty(0), np.empty(0)
    x = np.arange(len(values)) / max(result.n_tokens, 1)
    ok = np.isfinite(values)
    return x[ok], values[ok] - values[0]


def trace_quantiles(results: Mapping[str, Sequence[PruneResult]] | Sequence[PruneResult], key: str = "joint_logprob",
                    grid: Sequence[float] | None = None) -> pd.DataFrame:
    """Median and quartiles over examples of each run's ``key`` trace (change from the full chain) on
    ``grid`` (default: 0, 0.05, ..., 1 fraction deleted). Columns: ``run, fraction_deleted, median,
    q25, q75, n_examples``; a plain list of results is one run named ``""``."""
    runs = results if isinstance(results, Mapping) else {"": list(results)}
    grid = np.linspace(0, 1, 21) if grid is None else np.asarray(grid, dtype=float)
    rows = []
    for run, rs in runs.items():
        curves = np.full((len(rs), len(grid)), np.nan)
        for i, r in enumerate(rs):
            x, y = _relative_trace(r, key)
            if len(x):
                inside = grid <= x[-1] + 1e-9
                curves[i, inside] = np.interp(grid[inside], x, y)
        for j, g in enumerate(grid):
            col = curves[:, j][np.isfinite(curves[:, j])]
            q25, med, q75 = np.percentile(col, [25, 50, 75]) if len(col) else (np.nan,) * 3
            rows.append({"run": run, "fraction_deleted": float(g), "median": med, "q25": q25, "q75": q75,
                         "n_examples": int(len(col))})
    return pd.DataFrame(rows)


__all__ = ["trace_quantiles"]
