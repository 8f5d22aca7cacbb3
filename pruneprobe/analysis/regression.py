"""Does attention predict pruning? Regressions from per-token features to pruning targets (docs/method.md, "Analyses").

Canonical pattern::

    from pruneprobe.analysis.attention import attention_features_many
    from pruneprobe.analysis.regression import regression_table, attention_rank_regression, layer_contribution
    feats = attention_features_many(pruner, examples)            # one row per reasoning token
    table = regression_table(results, feats)                     # + targets per token
    scores = attention_rank_regression(table)                    # target "delta_loglik" by default
    scores.query("fold == 'mean'")
    layer_contribution(table)                                    # ridge on one layer at a time

Targets (columns of ``regression_table``):
- ``delta_loglik`` (default): how the objective's summed log-likelihood changes when the token
  alone is deleted from the full chain, ``candidate_scores[0, i] - objective before any
  deletion`` (the paper's "post-deletion likelihood"; subtracting the per-example baseline makes
  examples comparable). Needs a greedy result (NaN for one-shot baselines).
- ``normalized_rank``: pruning rank / R (small = deleted early); any result.

Feature sets: ``attention`` (every ``attn_L*`` column), ``position``, ``surprisal``, ``all``
(attention + position + surprisal) and, after ``context_features(table, labels)``,
``non-attention`` (position, distance to the end, surprisal, token shape, category one-hot: the
``ctx_*`` columns) and ``both`` (attention + non-attention). What attention adds is the difference
``both - non-attention`` (``pruneprobe.analysis.regression_study``).

Models: ``ridge`` = standardisation + ``RidgeCV`` (alpha chosen inside each training fold);
``mlp`` = standardisation + ``MLPRegressor`` with two hidden layers (``mlp_hidden``, default
64-64, ReLU, Adam, early stopping), target standardised. Cross-validation is ``GroupKFold`` over
example ids, so no example has tokens on both sides of a split. Every feature set is fitted on the
same rows: those whose target and every used feature are finite. Fits run with one BLAS/OpenMP
thread (``threadpool_limits(1)``): on a small shared CPU more threads only oversubscribe it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from pruneprobe.analysis.attention import feature_columns, feature_layers
from pruneprobe.core.result import PruneResult
from pruneprobe.errors import PruneprobeError

TARGETS = ("delta_loglik", "normalized_rank")
FEATURE_SETS = ("attention", "position", "surprisal", "all")
STUDY_SETS = ("attention", "non-attention", "both")
CONTEXT_PREFIX = "ctx_"
_PUNCT = set(".,;:!?()[]{}'\"-")


def context_features(table: pd.DataFrame, labels: pd.DataFrame | None = None) -> pd.DataFrame:
    """``table`` plus the non-attention ``ctx_*`` columns, for the ``non-attention`` / ``both`` sets.

    From ``index`` and the example's length R: ``ctx_tokens_to_end`` (R-1-index) and its log1p;
    from ``token``: ``ctx_n_chars``, ``ctx_space`` (starts with whitespace), ``ctx_digit``,
    ``ctx_alpha``, ``ctx_punct``, ``ctx_math`` (``+-*/=``), ``ctx_newline``; from ``labels``
    (``example_id, index, category``; optional): ``ctx_cat_<category>`` one-hot (0 where unlabeled).

    >>> t = pd.DataFrame({"example_id": "a", "index": [0, 1, 2], "token": ["There", " 3", "."]})
    >>> context_features(t)[["ctx_tokens_to_end", "ctx_digit", "ctx_punct"]].to_numpy().tolist()
    [[2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    out = table.drop(columns=[c for c in table.columns if str(c).startswith(CONTEXT_PREFIX)])
    n = out.groupby("example_id", sort=False)["index"].transform("max").to_numpy() + 1
    out["ctx_tokens_to_end"] = (n - 1 - out["index"].to_numpy()).astype(float)
    out["ctx_log_tokens_to_end"] = np.log1p(out["ctx_tokens_to_end"])
    tok = out["token"].astype(str)
    core = tok.str.strip()
    shape = {"n_chars": tok.str.len(), "space": tok.str.match(r"^\s"), "digit": core.str.fullmatch(r"\d+"),
             "alpha": core.str.fullmatch(r"[^\W\d_]+"), "punct": core.map(lambda t: bool(t) and set(t) <= _PUNCT),
             "math": core.str.fullmatch(r"[-+*/=×÷]+"), "newline": tok.str.contains("\n")}
    for name, values in shape.items():
        out[CONTEXT_PREFIX + name] = values.fillna(False).astype(float)
    if labels is not None:
        lab = labels[["example_id", "index", "category"]].drop_duplicates(["example_id", "index"])
        cat = out[["example_id", "index"]].merge(lab, on=["example_id", "index"], how="left")["category"]
        for c in sorted(lab["category"].dropna().unique()):
            out[f"{CONTEXT_PREFIX}cat_{c}"] = (cat == c).to_numpy(dtype=float)
    return out


def regression_table(results, features_by_example) -> pd.DataFrame:
    """Features joined with the targets of each result, one row per reasoning token.

    ``features_by_example``: ``{example_id: attention_features(...)}`` or one concatenated table
    with an ``example_id`` column. Adds ``method, objective, pruning_rank, normalized_rank,
    step1_score, delta_loglik``. Results without features are skipped with a warning.

    >>> table = regression_table(results, attention_features_many(pruner, examples))  # doctest: +SKIP
    """
    if isinstance(results, PruneResult):
        results = [results]
    if isinstance(features_by_example, pd.DataFrame):
        if "example_id" not in features_by_example.columns:
            raise PruneprobeError("features table needs an example_id column")
        feats = {str(k): g for k, g in features_by_example.groupby("example_id", sort=False)}
    else:
        feats = {str(k): v for k, v in features_by_example.items()}
    frames, missing = [], []
    for r in results:
        f = feats.get(str(r.example_id))
        if f is None:
            missing.append(r.example_id)
            continue
        f = f.sort_values("index") if "index" in f.columns else f
        if len(f) != r.n_tokens:
            raise PruneprobeError(f"example {r.example_id!r}: {len(f)} feature rows for {r.n_tokens} reasoning "
                                  "tokens (features from a pruner with another tokenizer?)")
        t = f.reset_index(drop=True).copy()
        t["example_id"], t["index"] = r.example_id, np.arange(r.n_tokens)
        t["method"], t["objective"] = r.method, r.objective
        rank = r.pruning_rank
        t["pruning_rank"] = rank
        t["normalized_rank"] = np.where(rank > 0, rank / r.n_tokens, np.nan)
        first = r.candidate_scores[0] if r.candidate_scores is not None and r.n_steps else np.full(r.n_tokens, np.nan)
        base = r.traces.get(f"{r.objective}_logprob", [np.nan])[0]
        t["step1_score"], t["delta_loglik"] = first, first - base
        frames.append(t)
    if missing:
        warnings.warn(f"regression_table: no features for {len(missing)} result(s): {missing[:5]}", stacklevel=2)
    if not frames:
        raise PruneprobeError("regression_table: no result has features")
    return pd.concat(frames, ignore_index=True)


def _column(df: pd.DataFrame, value, name: str) -> np.ndarray:
    if isinstance(value, str):
        if value not in df.columns:
            raise PruneprobeError(f"{name} column {value!r} not in the features table")
        return df[value].to_numpy()
    arr = np.asarray(value)
    if len(arr) != len(df):
        raise PruneprobeError(f"{name} has {len(arr)} values for {len(df)} feature rows")
    return arr


def _feature_sets(df: pd.DataFrame, feature_sets) -> dict[str, list[str]]:
    if isinstance(feature_sets, Mapping):
        return {k: list(v) for k, v in feature_sets.items()}
    attn = feature_columns(df)
    ctx = ["position", "surprisal"] + [c for c in df.columns if str(c).startswith(CONTEXT_PREFIX)]
    known = {"attention": attn, "position": ["position"], "surprisal": ["surprisal"],
             "all": attn + ["position", "surprisal"], "non-attention": ctx, "both": attn + ctx}
    out = {}
    for name in feature_sets:
        if name not in known:
            raise PruneprobeError(f"unknown feature set {name!r}; use {FEATURE_SETS + STUDY_SETS[1:]} or a dict "
                                  "of columns")
        if name in STUDY_SETS[1:] and len(ctx) == 2:
            raise PruneprobeError(f"feature set {name!r} needs the ctx_* columns: table = context_features(table, "
                                  "labels)")
        out[name] = known[name]
    for name, cols in out.items():
        absent = [c for c in cols if c not in df.columns]
        if not cols or absent:
            raise PruneprobeError(f"feature set {name!r}: columns missing from the table {absent or '(none)'}")
    return out


def make_model(kind: str, seed: int = 0, n_train: int = 1000, mlp_hidden: Sequence[int] = (64, 64),
               mlp_max_iter: int = 500):
    """A fresh scikit-learn regressor: ``"ridge"`` or ``"mlp"`` (see the module docstring)."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "ridge":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    if kind == "mlp":
        mlp = MLPRegressor(hidden_layer_sizes=tuple(mlp_hidden), alpha=1e-3, max_iter=mlp_max_iter,
                           early_stopping=n_train >= 100, n_iter_no_change=20, random_state=seed)
        return TransformedTargetRegressor(make_pipeline(StandardScaler(), mlp), transformer=StandardScaler())
    raise PruneprobeError(f"unknown model {kind!r}; use 'ridge' or 'mlp'")


def _corr(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    if len(y) < 3 or np.ptp(y) == 0 or np.ptp(p) == 0:
        return np.nan, np.nan
    return float(stats.pearsonr(y, p).statistic), float(stats.spearmanr(y, p).statistic)


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray, kind: str, n_splits: int = 5, seed: int = 0,
                **model_kw) -> tuple[np.ndarray, list[np.ndarray]]:
    """Out-of-fold predictions of a ``kind`` model under ``GroupKFold`` by ``groups``, and each fold's
    test rows. Deterministic: the same groups give the same folds for every feature set and model.

    >>> x = np.arange(40.0)[:, None]; g = np.repeat(np.arange(8), 5)
    >>> pred, folds = out_of_fold(x, 2 * x[:, 0], g, "ridge", n_splits=4)
    >>> len(folds), bool(np.corrcoef(pred, x[:, 0])[0, 1] > 0.99)
    (4, True)
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GroupKFold
    from threadpoolctl import threadpool_limits

    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise PruneprobeError("cross-validation by example needs at least 2 examples")
    oof, folds = np.full(len(y), np.nan), []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for tr, te in GroupKFold(n_splits=min(n_splits, n_groups)).split(x, y, groups):
            model = make_model(kind, seed=seed, n_train=len(tr), **model_kw)
            model.fit(x[tr], y[tr])
            oof[te] = model.predict(x[te])
            folds.append(te)
    return oof, folds


def fold_scores(y: np.ndarray, oof: np.ndarray, folds: Sequence[np.ndarray]) -> list[dict]:
    """Per-fold held-out Pearson/Spearman, then ``mean`` (over folds) and ``pooled`` (out-of-fold) rows."""
    rows = []
    for fold, te in enumerate(folds):
        pr, sp = _corr(y[te], oof[te])
        rows.append({"fold": fold, "pearson": pr, "spearman": sp, "n_train": len(y) - len(te), "n_test": len(te)})
    rows.append({"fold": "mean", "pearson": float(np.nanmean([r["pearson"] for r in rows])),
                 "spearman": float(np.nanmean([r["spearman"] for r in rows])), "n_train": np.nan,
                 "n_test": np.nan})
    pr, sp = _corr(y, oof)
    rows.append({"fold": "pooled", "pearson": pr, "spearman": sp, "n_train": np.nan, "n_test": len(y)})
    return rows


def _cross_validate(x: np.ndarray, y: np.ndarray, groups: np.ndarray, kind: str, n_splits: int, seed: int,
                    **model_kw) -> list[dict]:
    """Per-fold held-out Pearson/Spearman, then ``mean`` (over folds) and ``pooled`` (out-of-fold) rows."""
    oof, folds = out_of_fold(x, y, groups, kind, n_splits, seed, **model_kw)
    return fold_scores(y, oof, folds)


def _prepare(features, targets, groups, sets: dict[str, list[str]]):
    y = _column(features, targets, "targets").astype(float)
    g = _column(features, groups, "groups")
    cols = sorted({c for v in sets.values() for c in v})
    ok = np.isfinite(y) & np.isfinite(features[cols].to_numpy(dtype=float)).all(1)
    if ok.sum() < 3:
        raise PruneprobeError(f"only {int(ok.sum())} rows with a finite target and features")
    return features.loc[ok], y[ok], g[ok]


def attention_rank_regression(features: pd.DataFrame, targets="delta_loglik", groups="example_id",
                              models: Sequence[str] = ("ridge", "mlp"), n_splits: int = 5, seed: int = 0, *,
                              feature_sets=FEATURE_SETS, mlp_hidden: Sequence[int] = (64, 64),
                              mlp_max_iter: int = 500) -> pd.DataFrame:
    """Held-out Pearson and Spearman of each (feature set, model), cross-validated by example.

    ``targets`` / ``groups``: column names of ``features`` or arrays. ``feature_sets``: names from
    ``FEATURE_SETS`` and ``STUDY_SETS`` (``non-attention`` and ``both`` need ``context_features``) or
    ``{name: [columns]}``. Rows per fold, plus
    ``fold == "mean"`` (mean over folds) and ``fold == "pooled"`` (all out-of-fold predictions).
    Columns: ``target, feature_set, model, fold, pearson, spearman, n_features, n_train, n_test``.

    >>> attention_rank_regression(table, models=("ridge",)).query("fold == 'mean'")   # doctest: +SKIP
    """
    sets = _feature_sets(features, feature_sets)
    df, y, g = _prepare(features, targets, groups, sets)
    rows = []
    for name, cols in sets.items():
        x = df[cols].to_numpy(dtype=float)
        for kind in models:
            for row in _cross_validate(x, y, g, kind, n_splits, seed, mlp_hidden=mlp_hidden,
                                       mlp_max_iter=mlp_max_iter):
                rows.append({"target": targets if isinstance(targets, str) else "custom", "feature_set": name,
                             "model": kind, **row, "n_features": len(cols)})
    cols_order = ["target", "feature_set", "model", "fold", "pearson", "spearman", "n_features", "n_train", "n_test"]
    return pd.DataFrame(rows)[cols_order]


def layer_contribution(features: pd.DataFrame, targets="delta_loglik", groups="example_id", n_splits: int = 5,
                       seed: int = 0) -> pd.DataFrame:
    """Ridge on one layer's six attention features at a time: held-out fit per layer (all layers on
    the same rows).

    Columns: ``layer, pearson, spearman`` (fold means), ``pearson_pooled, spearman_pooled``,
    ``n_features``.

    >>> layer_contribution(table).plot(x="layer", y="pearson")   # doctest: +SKIP
    """
    layers = feature_layers(features)
    if not layers:
        raise PruneprobeError("no attention feature columns (attn_L{layer}_...) in the table")
    sets = {l: feature_columns(features, l) for l in layers}
    df, y, g = _prepare(features, targets, groups, sets)
    rows = []
    for layer, cols in sets.items():
        cv = {r["fold"]: r for r in _cross_validate(df[cols].to_numpy(dtype=float), y, g, "ridge", n_splits, seed)}
        rows.append({"layer": layer, "pearson": cv["mean"]["pearson"], "spearman": cv["mean"]["spearman"],
                     "pearson_pooled": cv["pooled"]["pearson"], "spearman_pooled": cv["pooled"]["spearman"],
                     "n_features": len(cols)})
    return pd.DataFrame(rows)


__all__ = ["regression_table", "attention_rank_regression", "layer_contribution", "make_model", "TARGETS",
           "FEATURE_SETS", "STUDY_SETS", "CONTEXT_PREFIX", "context_features", "out_of_fold", "fold_scores"]
