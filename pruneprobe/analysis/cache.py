"""Result tables that take long to compute, cached as CSV next to a key of what they were computed
from; a table is recomputed when its inputs or parameters change (or on ``refresh``).

Canonical pattern::

    from pruneprobe.analysis.cache import rank_correlation_cached, regression_cached
    corr = rank_correlation_cached(results, "data/tables/rank_correlation.csv")     # seconds -> instant
    scores, layers = regression_cached(table, "data/tables")                         # ridge, MLP, per layer

Gotchas:
- The key hashes the inputs themselves (deletion orders and candidate scores; the regression table's
  values), not file dates, so a fresh checkout reuses the committed tables and new runs rebuild them.
- ``<name>.json`` beside each table holds the key, the parameters and how long the build took.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from pruneprobe.analysis.dynamics import rank_correlation_by_lag
from pruneprobe.analysis.regression import attention_rank_regression, layer_contribution
from pruneprobe.core.io import atomic_write_text


def results_digest(results: Mapping[str, Sequence]) -> str:
    """A hash of every run's example ids, deletion orders and candidate-score matrices."""
    h = hashlib.sha256()
    for run in sorted(results):
        h.update(str(run).encode())
        for r in results[run]:
            h.update(str(r.example_id).encode())
            h.update(np.asarray(r.deletion_order, dtype=np.int64).tobytes())
            if r.candidate_scores is not None:
                h.update(np.ascontiguousarray(r.candidate_scores, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def frame_digest(frame: pd.DataFrame) -> str:
    """A hash of a table's columns and values."""
    h = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def cached_table(path, key: Mapping, build: Callable[[], pd.DataFrame], refresh: bool = False) -> pd.DataFrame:
    """``path`` (CSV) when its sidecar ``.json`` holds ``key``; otherwise ``build()``, written to both."""
    path = Path(path)
    meta = path.with_suffix(".json")
    key = json.loads(json.dumps(dict(key)))
    if not refresh and path.exists() and meta.exists() and json.loads(meta.read_text()).get("key") == key:
        return pd.read_csv(path)
    t0 = time.perf_counter()
    table = build()
    seconds = round(time.perf_counter() - t0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, table.to_csv(index=False))
    atomic_write_text(meta, json.dumps({"key": key, "build_seconds": seconds}, indent=1) + "\n")
    return table


def rank_correlation_cached(results: Mapping[str, Sequence], path, lags: Sequence[int] = (1, 2, 4, 8, 16),
                            n_boot: int = 1000, seed: int = 0, refresh: bool = False) -> pd.DataFrame:
    """``rank_correlation_by_lag`` of ``results``, cached at ``path``."""
    key = {"table": "rank_correlation_by_lag", "inputs": results_digest(results), "lags": [int(x) for x in lags],
           "n_boot": n_boot, "seed": seed}
    return cached_table(path, key, lambda: rank_correlation_by_lag(results, lags=lags, n_boot=n_boot, seed=seed),
                        refresh)


def _regression_scores(table: pd.DataFrame, n_splits: int, seed: int, mlp_max_iter: int) -> pd.DataFrame:
    scores = [attention_rank_regression(table, targets=target, models=("ridge",), n_splits=n_splits, seed=seed)
              for target in ("delta_loglik", "normalized_rank")]
    scores.append(attention_rank_regression(table, targets="delta_loglik", models=("mlp",), n_splits=n_splits,
                                            seed=seed, feature_sets=("attention",), mlp_max_iter=mlp_max_iter))
    return pd.concat(scores, ignore_index=True)


def regression_cached(table: pd.DataFrame, directory, n_splits: int = 5, seed: int = 0, mlp_max_iter: int = 200,
                      refresh: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Held-out scores (ridge for both targets and every feature set, the MLP on attention against
    ``delta_loglik``) and the per-layer ridge fits of ``table``, cached under ``directory`` as
    ``regression_scores.csv`` and ``layer_contribution.csv``."""
    directory = Path(directory)
    base = {"inputs": frame_digest(table), "n_splits": n_splits, "seed": seed}
    scores = cached_table(directory / "regression_scores.csv", {**base, "table": "attention_rank_regression",
                                                                  "mlp_max_iter": mlp_max_iter},
                          lambda: _regression_scores(table, n_splits, seed, mlp_max_iter), refresh)
    layers = cached_table(directory / "layer_contribution.csv", {**base, "table": "layer_contribution"},
                          lambda: layer_contribution(table, targets="delta_loglik", n_splits=n_splits, seed=seed),
                          refresh)
    return scores, layers


__all__ = ["cached_table", "results_digest", "frame_digest", "rank_correlation_cached", "regression_cached"]
