"""The shared statistics of the analyses: one percentile bootstrap over example resamples and one
way to group results into runs.

Canonical pattern::

    from pruneprobe.analysis.stats import bootstrap, bootstrap_ci, group_runs
    runs = group_runs(results)                                   # {"greedy/joint": [...], ...}
    pt, lo, hi = bootstrap({"hit": hits, "n": counts}, lambda s: s["hit"] / s["n"])
    lo, hi = bootstrap_ci(per_example_correct)                   # CI of a mean

Gotchas:
- Every CI resamples *examples* with replacement (multinomial resample counts, ``seed``); a
  statistic that pools tokens or steps passes per-example sums and gets the pooled ratio back.
- ``group_runs(..., unique=False)`` lets a run hold an example twice (sufficiency groups by
  ``method`` only, so two objectives of one method share a group).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Callable, Sequence

import numpy as np

from pruneprobe.core.result import PruneResult
from pruneprobe.errors import PruneprobeError


def run_name(result: PruneResult) -> str:
    """The default run of a result: ``"method/objective"``."""
    return f"{result.method}/{result.objective}"


def group_runs(results, key: Callable[[PruneResult], str] = run_name,
               unique: bool = True) -> dict[str, list[PruneResult]]:
    """``{run name: results}`` from a dict of runs, or from a list grouped by ``key`` (``method/objective``).

    ``unique``: raise when a run holds one example more than once (two pruners with the same
    method and objective: pass a dict to keep them apart).

    >>> group_runs([])
    {}
    """
    if isinstance(results, PruneResult):
        results = [results]
    if isinstance(results, Mapping):
        runs = {str(k): [v] if isinstance(v, PruneResult) else list(v) for k, v in results.items()}
    else:
        runs = {}
        for r in results:
            runs.setdefault(key(r), []).append(r)
    for name, rs in runs.items() if unique else ():
        ids = [r.example_id for r in rs]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise PruneprobeError(
                f"run {name!r} holds example {dup!r} more than once; pass a dict {{run name: results}} "
                "to keep runs (e.g. different pruners) apart"
            )
    return runs


def bootstrap(values: dict[str, np.ndarray], stat: Callable[[dict], np.ndarray], n_boot: int = 1000,
              seed: int = 0, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point estimate and percentile CI (``level``) of ``stat`` over example resamples.

    ``values`` maps names to per-example additive quantities ``[E, ...]``; ``stat`` receives their
    (resample-weighted) sums, with an extra leading bootstrap axis for the CI draws. No CI (NaN)
    for ``n_boot <= 0`` or fewer than two examples.

    >>> pt, lo, hi = bootstrap({"hit": hits, "n": counts}, lambda s: s["hit"] / s["n"])  # doctest: +SKIP
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        point = np.asarray(stat({k: np.asarray(v, dtype=float).sum(0) for k, v in values.items()}), dtype=float)
        n = len(next(iter(values.values())))
        if n_boot <= 0 or n < 2:
            return point, np.full_like(point, np.nan), np.full_like(point, np.nan)
        rng = np.random.default_rng(seed)
        w = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)  # [B, E] resample counts
        draws = np.asarray(stat({k: np.tensordot(w, np.asarray(v, dtype=float), axes=(1, 0))
                                 for k, v in values.items()}), dtype=float)
    alpha = 100 * (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        lo, hi = np.nanpercentile(draws, [alpha, 100 - alpha], axis=0)
    return point, lo, hi


def bootstrap_mean(values: Sequence[float], n_boot: int = 1000, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, lo, hi)`` of per-example values (:func:`bootstrap` of their mean); NaNs for no values.

    >>> bootstrap_mean([2.0, 2.0])
    (2.0, 2.0, 2.0)
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (float("nan"),) * 3
    pt, lo, hi = bootstrap({"x": x, "n": np.ones(x.size)}, lambda s: s["x"] / s["n"], n_boot, seed, level)
    return float(pt), float(lo), float(hi)


def bootstrap_ci(values: Sequence[float], n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean; ``(nan, nan)`` for no values, ``(mean, mean)`` without resampling.

    >>> bootstrap_ci([1, 1, 1])
    (1.0, 1.0)
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"))
    if n_boot < 1 or x.size == 1:  # a single value: every resample has its mean
        return (float(x.mean()), float(x.mean()))
    _, lo, hi = bootstrap_mean(x, n_boot, seed, level)
    return lo, hi


__all__ = ["bootstrap", "bootstrap_mean", "bootstrap_ci", "group_runs", "run_name"]
