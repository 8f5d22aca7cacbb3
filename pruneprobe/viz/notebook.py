"""What only the notebooks share: where the repository, its cached data and figures are, the cached
runs under the names the figures show, and the rule labels with their cache.

Canonical pattern (a notebook's first cell)::

    import os
    os.environ.setdefault("PRUNEPROBE_CHAINS", "gold")   # or "gold-len128", "self": before the import below
    from pruneprobe.viz.notebook import FIG, ROOT, SETTING, load_cached_results, load_labels, setup
    setup()                                        # paper style
    results = load_cached_results()                # {"Greedy, joint objective": [PruneResult, ...], ...}
    labels = load_labels(results)                  # cached rule labels + the examples they miss
    corr = rank_correlation_table(results)         # slow tables come from data/tables (``make tables``)

Gotchas:
- The chain set (``CHAIN_SETS``: ``gold``, the 120 short gold chains the figures show; ``gold-len128``,
  full-length gold chains; ``self``, chains the pruner wrote itself) is read from ``PRUNEPROBE_CHAINS``
  once, at import: set it before importing this module (restart the kernel to switch). Other sets than
  ``gold`` write figures to ``figures/<set>/`` and cache tables in ``data/tables/<set>/``.
- ``ROOT`` is found from the working directory (the repository or its ``notebooks/``), so the
  notebooks run from either; ``FIG`` is ``ROOT/figures``.
- Labels depend only on the tokens: one table covers every run of one pruner on the same examples.
- The slow tables (rank correlation, regressions) are cached in ``data/tables`` with a key of their
  inputs (``analysis.cache``): rebuilt when the runs or features change, or by ``make tables``
  (``python -m pruneprobe.viz.notebook``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from pruneprobe.analysis.cache import attention_study_cached, head_contribution_cached, rank_correlation_cached
from pruneprobe.analysis.categories import label_result
from pruneprobe.analysis.regression import context_features, regression_table
from pruneprobe.core.result import PruneResult
from pruneprobe.errors import PruneprobeError
from pruneprobe.runs.chainsets import CHAIN_SETS, CHAINS_ENV, ChainSet, chain_set
from pruneprobe.runs.tables import load_run
from pruneprobe.viz.style import LAGS, display_name, set_style


def repo_root(start=None) -> Path:
    """The nearest of ``start`` (default: the working directory) and its parents holding ``data/``."""
    here = Path(start or Path.cwd()).resolve()
    return next((p for p in (here, *here.parents) if (p / "data").is_dir()), here)


ROOT = repo_root()
DATA = ROOT / "data"
CHAINS = chain_set()  # from $PRUNEPROBE_CHAINS, once
FIG, TABLES, SETTING = ROOT / "figures" / CHAINS.subdir, DATA / "tables" / CHAINS.subdir, CHAINS.setting
CACHED_RUNS = CHAINS.runs  # the runs of this chain set, by short label
GREEDY_JOINT, GREEDY_ANSWER = display_name("greedy joint"), display_name("greedy answer")
LABEL_COLUMNS = ["example_id", "index", "token", "category"]


def setup() -> None:
    """Paper style for every figure of the notebook."""
    set_style()


def load_cached_results(labels: Iterable[str] | None = None, runs_dir=None, require: Iterable[str] = ("greedy joint",),
                        chains: ChainSet | None = None) -> dict[str, list[PruneResult]]:
    """Results of the chain set's (``chains``, default ``CHAINS``) cached runs present under ``runs_dir``
    (``data/runs``), keyed by name in words; runs without results are left out, and a ``PruneprobeError``
    says which of ``require`` has none.

    >>> results = load_cached_results(["greedy joint", "uniform"])  # doctest: +SKIP
    >>> list(results)                                               # doctest: +SKIP
    ['Greedy, joint objective', 'Uniform']
    """
    runs_dir, chains = Path(runs_dir or DATA / "runs"), chains or CHAINS
    chosen = chains.runs if labels is None else {label: chains.runs[label] for label in labels}
    found = {display_name(label): list(load_run(runs_dir / name).results())
             for label, name in chosen.items() if (runs_dir / name).is_dir()}
    found = {name: results for name, results in found.items() if results}  # a run just started has none
    missing = [label for label in require if display_name(label) not in found]
    if missing:
        raise PruneprobeError(f"chain set {chains.name!r}: no results yet in {', '.join(chains.runs[m] for m in missing)} "
                              f"under {runs_dir} (data/README.md says how to make them)")
    return found


def load_labels(results, pattern: str | None = None, labels_dir=None) -> pd.DataFrame:
    """Rule labels (``example_id, index, token, category``) of every example in ``results`` (a list or
    ``{run: [results]}``): the cached tables matching ``pattern`` (default: the chain set's), where their
    tokens are the result's, plus labels made now for the rest."""
    runs = results if isinstance(results, Mapping) else {"": results}
    files = sorted(Path(labels_dir or DATA / "labels").glob(pattern or CHAINS.labels_glob))
    cached = pd.concat([pd.read_parquet(p) for p in files]) if files else pd.DataFrame(columns=LABEL_COLUMNS)
    cached = cached.drop_duplicates(["example_id", "index"]).sort_values(["example_id", "index"])
    tokens = cached.groupby("example_id")["token"].agg(list).to_dict()
    extra = {r.example_id: label_result(r) for rs in runs.values() for r in rs
             if tokens.get(r.example_id) != list(r.tokens)}  # missing, or cached for other text of that id
    labels = pd.concat([cached[~cached.example_id.isin(set(extra))], *extra.values()])
    print(f"labels for {labels.example_id.nunique()} examples ({len(extra)} labelled now)")
    return labels.reset_index(drop=True)


def _greedy_joint(runs_dir=None) -> list[PruneResult]:
    return list(load_run(Path(runs_dir or DATA / "runs") / CACHED_RUNS["greedy joint"]).results())


def load_regression_table(runs_dir=None, features_dir=None, results: list[PruneResult] | None = None) -> pd.DataFrame:
    """``regression_table`` of the greedy joint run's examples (``results``: already loaded) that have
    cached attention features."""
    results = _greedy_joint(runs_dir) if results is None else results
    path = Path(features_dir or DATA / "features") / CHAINS.features_file
    if not path.exists():
        raise PruneprobeError(f"no attention features at {path}; make them with `pruneprobe features --chains {CHAINS.name}`")
    feats = pd.read_parquet(path)
    have = set(feats["example_id"])
    print(f"features: {path.name}; {len(results)} greedy joint examples, "
          f"{sum(r.example_id in have for r in results)} with cached attention features")
    return regression_table([r for r in results if r.example_id in have], feats)


def rank_correlation_table(results, lags=LAGS, refresh: bool = False) -> pd.DataFrame:
    """``rank_correlation_by_lag`` (1,000 bootstrap draws, seed 0), cached in ``data/tables``."""
    return rank_correlation_cached(results, TABLES / "rank_correlation.csv", lags=lags, n_boot=1000, seed=0,
                                   refresh=refresh)


def attention_table(runs_dir=None, features_dir=None, labels_dir=None) -> pd.DataFrame:
    """The greedy joint run's regression table with the non-attention context features (notebook 04)."""
    results = _greedy_joint(runs_dir)
    table = load_regression_table(runs_dir, features_dir, results)
    return context_features(table, load_labels(results, f"{CACHED_RUNS['greedy joint']}-rules.parquet", labels_dir))


def attention_tables(table: pd.DataFrame, refresh: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The attention study, per-layer and per-head scores of ``table`` (5 GroupKFold folds, seed 0), cached
    in ``data/tables``; the per-head features are recomputed from the model only on a miss."""
    study, layers = attention_study_cached(table, TABLES, refresh=refresh)
    heads = head_contribution_cached(table, lambda: load_cached_results(["greedy joint"])[GREEDY_JOINT], TABLES,
                                     refresh=refresh)
    return study, layers, heads


def build_tables(refresh: bool = True) -> None:
    """Remake every cached table of ``data/tables`` from the cached runs and features (``pruneprobe tables``)."""
    greedy = load_cached_results(["greedy joint", "greedy answer"])
    print(rank_correlation_table(greedy, refresh=refresh).round(3).to_string(index=False))
    if (DATA / "features" / CHAINS.features_file).exists():
        study, layers, heads = attention_tables(attention_table(), refresh=refresh)
        print(f"{len(study)} attention-study rows, {len(layers)} layer rows, {len(heads)} head rows")


__all__ = ["ROOT", "DATA", "FIG", "SETTING", "CACHED_RUNS", "CHAINS", "CHAIN_SETS", "ChainSet", "chain_set", "GREEDY_JOINT", "GREEDY_ANSWER", "repo_root", "setup",
           "CHAINS_ENV", "load_cached_results", "load_labels", "TABLES", "load_regression_table", "rank_correlation_table",
           "attention_table", "attention_tables", "build_tables"]
