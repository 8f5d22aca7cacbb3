"""What attention adds: both targets x ridge/MLP x attention / non-attention / both, with CIs, and
per-layer and per-head fits (docs/findings.md, "Attention").

Canonical pattern::

    from pruneprobe.analysis.regression import context_features, regression_table
    from pruneprobe.analysis.regression_study import attention_study, study_summary, head_contribution
    table = context_features(regression_table(results, feats), labels)   # + ctx_* (non-attention) columns
    scores = attention_study(table)          # per fold, fold mean (t CI), pooled (bootstrap CI over examples)
    study_summary(scores)                    # one row per target x feature set x model, + "both - non-attention"
    heads = head_contribution(table, attention_head_features_many(pruner, examples))  # ridge per layer x head

Definitions:
- Targets: ``normalized_rank`` (greedy pruning rank / R, in [0, 1] per example: what the toolkit
  promises to predict) and ``delta_loglik`` (step-1 change of the joint log-likelihood when the
  token alone is deleted: the paper's post-deletion likelihood, its r = 0.88 target).
- Rows ``fold == "mean"``: mean over the GroupKFold folds, CI = 95% t-interval over the folds.
  Rows ``fold == "pooled"``: correlation of all out-of-fold predictions, CI = 95% percentile
  bootstrap over examples (resampled with replacement; predictions fixed, no refit).
- ``feature_set == "both - non-attention"``: the difference of the two fits, paired by fold (mean
  rows) and by the same bootstrap draws (pooled rows): what attention adds.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from pruneprobe.analysis.attention import SOURCES, attention_head_features, eager_attention, feature_columns
from pruneprobe.analysis.attention import feature_layers, head_feature_name
from pruneprobe.analysis.regression import STUDY_SETS, TARGETS, _feature_sets, _prepare, fold_scores, out_of_fold
from pruneprobe.data.examples import Example
from pruneprobe.errors import PruneprobeError

GAIN = "both - non-attention"
SCORE_COLUMNS = ["target", "feature_set", "model", "fold", "pearson", "pearson_lo", "pearson_hi", "spearman",
                 "spearman_lo", "spearman_hi", "n_features", "n_train", "n_test", "n_examples"]
HEAD_RE = r"^head_L(\d+)_H(\d+)_(answer|later|rest)$"


def _t_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return np.nan, np.nan
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean() - half), float(v.mean() + half)


def _draw_scores(y: np.ndarray, preds: dict, groups: np.ndarray, n_boot: int, seed: int) -> dict:
    """``{name: [n_boot, 2]}``: pooled Pearson and Spearman of each prediction on example-bootstrap draws."""
    rng = np.random.default_rng(seed)
    rows = pd.Series(np.arange(len(y))).groupby(groups, sort=True).apply(np.asarray).tolist()
    out = {k: np.full((n_boot, 2), np.nan) for k in preds}
    for b in range(n_boot):
        idx = np.concatenate([rows[i] for i in rng.integers(0, len(rows), len(rows))])
        yb, ry = y[idx], stats.rankdata(y[idx])
        for k, p in preds.items():
            out[k][b] = np.corrcoef(yb, p[idx])[0, 1], np.corrcoef(ry, stats.rankdata(p[idx]))[0, 1]
    return out


def _summary_rows(per_fold: list[dict], pooled: dict, draws: np.ndarray) -> list[dict]:
    """``mean`` row (t CI over folds) and ``pooled`` row (bootstrap CI) from per-fold rows and draws."""
    mean, pool = {"fold": "mean"}, {"fold": "pooled"}
    for i, m in enumerate(("pearson", "spearman")):
        vals = [r[m] for r in per_fold]
        mean[m] = float(np.nanmean(vals))
        mean[f"{m}_lo"], mean[f"{m}_hi"] = _t_ci(vals)
        pool[m] = pooled[m]
        pool[f"{m}_lo"], pool[f"{m}_hi"] = (float(q) for q in np.nanpercentile(draws[:, i], [2.5, 97.5]))
    return [mean, pool]


def _study_target(table, target, feature_sets, models, n_splits, seed, n_boot, model_kw) -> list[dict]:
    sets = _feature_sets(table, feature_sets)
    df, y, g = _prepare(table, target, "example_id", sets)
    preds, per_fold, base = {}, {}, {"target": target, "n_examples": len(np.unique(g))}
    for name, cols in sets.items():
        for kind in models:
            oof, folds = out_of_fold(df[cols].to_numpy(dtype=float), y, g, kind, n_splits, seed, **model_kw)
            preds[name, kind] = oof
            rows = fold_scores(y, oof, folds)
            per_fold[name, kind] = ([r for r in rows if isinstance(r["fold"], int)], rows[-1], len(cols))
    draws = _draw_scores(y, preds, g, n_boot, seed)
    out = []
    for (name, kind), (folds, pooled, n_feat) in per_fold.items():
        info = {**base, "feature_set": name, "model": kind, "n_features": n_feat}
        out += [{**info, **r} for r in folds]
        out += [{**info, **r, "n_test": len(y)} for r in _summary_rows(folds, pooled, draws[name, kind])]
    if {"both", "non-attention"} <= set(sets):
        for kind in models:
            a, b = per_fold["both", kind], per_fold["non-attention", kind]
            diff = [{"fold": fa["fold"], **{m: fa[m] - fb[m] for m in ("pearson", "spearman")},
                     "n_train": fa["n_train"], "n_test": fa["n_test"]} for fa, fb in zip(a[0], b[0])]
            pooled = {m: a[1][m] - b[1][m] for m in ("pearson", "spearman")}
            info = {**base, "feature_set": GAIN, "model": kind, "n_features": a[2] - b[2]}
            out += [{**info, **r} for r in diff]
            dd = draws["both", kind] - draws["non-attention", kind]
            out += [{**info, **r, "n_test": len(y)} for r in _summary_rows(diff, pooled, dd)]
    return out


def attention_study(table: pd.DataFrame, targets: Sequence[str] = TARGETS, feature_sets=STUDY_SETS,
                    models: Sequence[str] = ("ridge", "mlp"), n_splits: int = 5, seed: int = 0, n_boot: int = 1000,
                    mlp_hidden: Sequence[int] = (64, 64), mlp_max_iter: int = 200) -> pd.DataFrame:
    """Held-out scores of every target x feature set x model, with CIs (see the module docstring).

    ``table`` needs the ``ctx_*`` columns (``context_features``). Columns: ``SCORE_COLUMNS``; rows
    per fold, ``mean`` and ``pooled``, and the ``both - non-attention`` difference when both sets
    are fitted. Every feature set of a target is fitted on the same rows and folds.

    >>> scores = attention_study(table, models=("ridge",), n_boot=200)   # doctest: +SKIP
    """
    kw = {"mlp_hidden": mlp_hidden, "mlp_max_iter": mlp_max_iter}
    rows = [r for t in targets for r in _study_target(table, t, feature_sets, models, n_splits, seed, n_boot, kw)]
    return pd.DataFrame(rows)[SCORE_COLUMNS]


def study_summary(scores: pd.DataFrame, fold: str = "mean") -> pd.DataFrame:
    """One row per target x feature set x model: ``fold`` ("mean" or "pooled") values with CIs."""
    out = scores[scores["fold"].astype(str) == fold].drop(columns=["fold", "n_train"])
    return out.reset_index(drop=True)


def layer_scores(table: pd.DataFrame, targets: Sequence[str] = TARGETS, n_splits: int = 5,
                 seed: int = 0) -> pd.DataFrame:
    """``layer_contribution`` (ridge on one layer's six head-mean/max features) for each target, with
    a t CI over folds. Columns: ``target, layer, pearson, pearson_lo, pearson_hi, spearman,
    pearson_pooled, spearman_pooled, n_features``."""
    sets = {layer: feature_columns(table, layer) for layer in feature_layers(table)}
    return _unit_scores(table, sets, targets, n_splits, seed, ["layer"])


def _unit_scores(table, sets: dict, targets, n_splits, seed, keys: list[str]) -> pd.DataFrame:
    if not sets:
        raise PruneprobeError("no attention feature columns in the table")
    rows = []
    for target in targets:
        df, y, g = _prepare(table, target, "example_id", sets)
        for unit, cols in sets.items():
            oof, folds = out_of_fold(df[cols].to_numpy(dtype=float), y, g, "ridge", n_splits, seed)
            cv = fold_scores(y, oof, folds)
            lo, hi = _t_ci([r["pearson"] for r in cv[:-2]])
            rows.append({"target": target, **dict(zip(keys, unit if isinstance(unit, tuple) else (unit,))),
                         "pearson": cv[-2]["pearson"], "pearson_lo": lo, "pearson_hi": hi,
                         "spearman": cv[-2]["spearman"], "pearson_pooled": cv[-1]["pearson"],
                         "spearman_pooled": cv[-1]["spearman"], "n_features": len(cols),
                         "n_examples": len(np.unique(g)), "n_tokens": len(y)})
    return pd.DataFrame(rows)


def head_contribution(table: pd.DataFrame, heads: pd.DataFrame, targets: Sequence[str] = TARGETS,
                      n_splits: int = 5, seed: int = 0) -> pd.DataFrame:
    """Ridge on one head's three features (attention received from the answer, later reasoning, all
    later positions) at a time, per layer x head. ``heads``: ``attention_head_features`` rows
    (``example_id, index, head_L*_H*_*``). Columns: ``target, layer, head, pearson, ...`` as
    ``layer_scores``.

    >>> head_contribution(table, heads).pivot(index="layer", columns="head", values="pearson")  # doctest: +SKIP
    """
    found = [(c, re.match(HEAD_RE, str(c))) for c in heads.columns]
    cols = [c for c, m in found if m]
    units = sorted({(int(m.group(1)), int(m.group(2))) for _, m in found if m})
    merged = table[["example_id", "index", *targets]].merge(heads[["example_id", "index", *cols]],
                                                           on=["example_id", "index"], how="inner")
    if len(merged) != len(table):
        raise PruneprobeError(f"head features cover {len(merged)} of {len(table)} table rows")
    sets = {(layer, head): [head_feature_name(layer, head, s) for s in SOURCES] for layer, head in units}
    return _unit_scores(merged, sets, targets, n_splits, seed, ["layer", "head"])


def attention_head_features_many(pruner, examples: Iterable[Example], *, layers: Sequence[int] | None = None,
                                 progress: bool = False) -> pd.DataFrame:
    """``attention_head_features`` of several examples (eager attention switched on for the batch)."""
    examples = list(examples)
    it = examples
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(examples, desc="attention heads", unit="ex")
    with eager_attention(pruner.model, True):
        frames = [attention_head_features(pruner, ex, layers=layers) for ex in it]
    df = pd.concat(frames, ignore_index=True)
    num = [c for c in df.columns if c.startswith("head_")]
    df[num] = df[num].astype(np.float32)
    return df


__all__ = ["attention_study", "study_summary", "layer_scores", "head_contribution", "attention_head_features_many",
           "GAIN", "SCORE_COLUMNS"]
