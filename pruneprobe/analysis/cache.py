"""Result tables that take long to compute, cached as CSV next to a key of what they were computed
from; a table is recomputed when its inputs or parameters change (or on ``refresh``).

Canonical pattern::

    from pruneprobe.analysis.cache import attention_study_cached, rank_correlation_cached
    corr = rank_correlation_cached(results, "data/tables/rank_correlation.csv")     # seconds -> instant
    study, layers = attention_study_cached(table, "data/tables")                   # ridge, MLP, per layer
    study, layers = attention_study_cached(context_features(table, labels), "data/tables")   # both targets
    heads = head_contribution_cached(table, lambda: results, "data/tables")  # loads the model on a miss

Gotchas:
- The key hashes the inputs themselves (deletion orders and candidate scores; the regression table's
  values), not file dates, so a fresh checkout reuses the committed tables and new runs rebuild them.
  Table values are hashed at float32 precision, as text otherwise: another numpy, BLAS or pandas
  (float64 last bits, ``str`` vs ``object`` columns) must not turn a committed table stale.
- ``<name>.json`` beside each table holds the key, the parameters and how long the build took.
- The per-head table needs features the cached parquet does not hold (it averages over heads): on a
  miss it loads the pruner and runs one eager forward per example (float32: bf16 matmuls are ~6x
  slower on a CPU; about 2 s per example there), then fits ridge per layer x head.
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
from pruneprobe.analysis.regression_study import attention_head_features_many, attention_study, head_contribution
from pruneprobe.analysis.regression_study import layer_scores
from pruneprobe.data.examples import Example
from pruneprobe.data.models import load_pruner
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
    """A hash of a table's column names and values that ignores how they are stored: numbers are
    hashed as float32 (so float64 noise in the last bits, or an int or float32 column, gives the same
    key) and everything else as text (object or string dtype alike)."""
    h = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan).astype(np.float32)
            h.update(np.ascontiguousarray(values).tobytes())
        else:
            h.update("\x1f".join("\x00" if pd.isna(v) else str(v) for v in column.tolist()).encode())
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


def attention_study_cached(table: pd.DataFrame, directory, n_splits: int = 5, seed: int = 0, n_boot: int = 1000,
                           mlp_max_iter: int = 200, refresh: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``attention_study`` (both targets x ridge/MLP x attention / non-attention / both) and
    ``layer_scores`` (ridge per layer, both targets) of ``table`` (with its ``ctx_*`` columns), cached
    under ``directory`` as ``attention_study.csv`` and ``layer_scores.csv``."""
    directory = Path(directory)
    base = {"inputs": frame_digest(table), "n_splits": n_splits, "seed": seed}
    study = cached_table(directory / "attention_study.csv",
                         {**base, "table": "attention_study", "n_boot": n_boot, "mlp_max_iter": mlp_max_iter},
                         lambda: attention_study(table, n_splits=n_splits, seed=seed, n_boot=n_boot,
                                                 mlp_max_iter=mlp_max_iter), refresh)
    layers = cached_table(directory / "layer_scores.csv", {**base, "table": "layer_scores"},
                          lambda: layer_scores(table, n_splits=n_splits, seed=seed), refresh)
    return study, layers


def _head_scores(table, results, pruner, dtype, n_splits, seed) -> pd.DataFrame:
    results = results() if callable(results) else results
    have = set(table["example_id"])
    chosen = [r for r in results if r.example_id in have]
    if isinstance(pruner, str):
        pruner = load_pruner(pruner, dtype=dtype)
    examples = [Example.from_dict({**r.example, "id": r.example_id}) for r in chosen]
    heads = attention_head_features_many(pruner, examples, progress=True)
    return head_contribution(table, heads, n_splits=n_splits, seed=seed)


def head_contribution_cached(table: pd.DataFrame, results, directory, pruner="smollm2-135m", dtype: str = "float32",
                             n_splits: int = 5, seed: int = 0, refresh: bool = False) -> pd.DataFrame:
    """``head_contribution`` (ridge per layer x head, both targets) cached as ``head_contribution.csv``.

    ``results``: the greedy results of ``table``'s examples, or a function returning them (called only
    on a miss). On a miss the per-head features are computed with ``pruner`` (a name for
    ``load_pruner`` in ``dtype``, or a loaded pruner); the key is the table's tokens and targets, the
    pruner's name and dtype.
    """
    cols = ["example_id", "index", "token", "delta_loglik", "normalized_rank"]
    key = {"table": "head_contribution", "inputs": frame_digest(table[cols]),
           "pruner": pruner if isinstance(pruner, str) else type(pruner).__name__, "dtype": dtype,
           "n_splits": n_splits, "seed": seed}
    return cached_table(Path(directory) / "head_contribution.csv", key,
                        lambda: _head_scores(table, results, pruner, dtype, n_splits, seed), refresh)


__all__ = ["cached_table", "results_digest", "frame_digest", "rank_correlation_cached",
           "attention_study_cached", "head_contribution_cached"]
