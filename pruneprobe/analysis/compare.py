"""Comparing runs: methods, objectives and pruners (re-exported by ``pruneprobe.analysis``).

``compare_runs`` compares runs that share a tokenizer (kept-set IoU, Kendall tau, likelihood at
each rho); ``compare_pruners_by_words`` compares runs whose tokenizers differ, word by word.

    >>> from pruneprobe.analysis import compare_runs
    >>> compare_runs({"greedy": g, "h2o": h}, reference="greedy")   # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import re
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from pruneprobe.analysis.stats import bootstrap_mean, group_runs
from pruneprobe.core.result import PruneResult, n_keep_for
from pruneprobe.errors import PruneprobeError


def _ranks_for_tau(r: PruneResult) -> np.ndarray:
    rank = r.pruning_rank.astype(float)
    rank[rank < 0] = r.n_steps + 1  # never deleted: tied, after every deleted token
    return rank


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def compare_runs(tables, keep_ratios: Sequence[float] = (0.9, 0.8, 0.7), reference: str | None = None,
                 n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Agreement between runs (methods, objectives, pruners) on the examples they share.

    ``tables``: ``{run name: [PruneResult, ...]}`` (or a list, grouped by ``method/objective``).
    Pairs: ``(reference, each other run)`` when ``reference`` is given, else every pair. Metrics
    (rows; mean over examples with a bootstrap CI):
    - ``kept_iou`` / ``deleted_iou``: Jaccard index of the kept (deleted) token sets at each rho;
    - ``kendall_tau``: Kendall tau-b between the pruning ranks (never-deleted tokens tie last;
      ``keep_ratio`` is NaN);
    - ``joint_logprob`` / ``answer_logprob``: per run (``reference`` empty), the trace value after
      the deletions that reach rho, where traces exist.
    Pairs only use examples whose reasoning token ids agree (same tokenizer). Columns: ``metric,
    run, reference, keep_ratio, mean, ci_lo, ci_hi, n_examples``.

    >>> compare_runs({"greedy": g, "h2o": h, "random": u}, reference="greedy")   # doctest: +SKIP
    """
    runs = {k: {r.example_id: r for r in v} for k, v in group_runs(tables).items()}
    if reference is not None and reference not in runs:
        raise PruneprobeError(f"reference {reference!r} is not one of the runs {list(runs)}")
    common = set.intersection(*(set(v) for v in runs.values())) if runs else set()
    if runs and any(len(v) != len(common) for v in runs.values()):
        warnings.warn(f"compare_runs: using the {len(common)} examples every run has", stacklevel=2)
    ids = sorted(common)
    rows = []

    def emit(metric, run, ref, rho, vals):
        vals = np.asarray([v for v in vals if np.isfinite(v)], dtype=float)
        pt, lo, hi = bootstrap_mean(vals, n_boot, seed)
        rows.append({"metric": metric, "run": run, "reference": ref, "keep_ratio": rho, "mean": pt,
                     "ci_lo": lo, "ci_hi": hi, "n_examples": len(vals)})

    pairs = [(reference, o) for o in runs if o != reference] if reference else list(itertools.combinations(runs, 2))
    for ref, run in pairs:
        same = [i for i in ids if runs[ref][i].token_ids == runs[run][i].token_ids]
        for rho in keep_ratios:
            kept = [(_kept(runs[ref][i], rho), _kept(runs[run][i], rho)) for i in same]
            emit("kept_iou", run, ref, float(rho), [_iou(a, b) if a is not None and b is not None else np.nan
                                                    for a, b in kept])
            emit("deleted_iou", run, ref, float(rho), [_iou(~a, ~b) if a is not None and b is not None else np.nan
                                                       for a, b in kept])
        emit("kendall_tau", run, ref, np.nan,
             [stats.kendalltau(_ranks_for_tau(runs[ref][i]), _ranks_for_tau(runs[run][i])).statistic for i in same])
    for run, by_id in runs.items():
        for key in ("joint_logprob", "answer_logprob"):
            for rho in keep_ratios:
                emit(key, run, "", float(rho), [_trace_at(by_id[i], key, rho) for i in ids])
    return pd.DataFrame(rows)


def _kept(r: PruneResult, rho: float) -> np.ndarray | None:
    try:
        return r.kept_mask(rho)
    except PruneprobeError:
        return None


def _trace_at(r: PruneResult, key: str, rho: float) -> float:
    k = r.n_tokens - n_keep_for(rho, r.n_tokens)
    values = r.traces.get(key, [])
    return float(values[k]) if k < len(values) and values[k] is not None else np.nan


def word_view(r: PruneResult, rho: float) -> tuple[str, np.ndarray, np.ndarray] | None:
    """``(stripped text, kept per word, mean normalised rank per word)`` of a result at ``rho``.

    Words are whitespace-separated; a word is kept when most of its characters are, and its rank
    is the mean over its characters of their token's step / R (never deleted: 1 + 1/R)."""
    kept_tok = _kept(r, rho)
    if kept_tok is None:
        return None
    rank = _ranks_for_tau(r) / max(r.n_tokens, 1)
    chars_kept, chars_rank = [], []
    for tok, k, rk in zip(r.tokens, kept_tok, rank):
        chars_kept += [k] * len(tok)
        chars_rank += [rk] * len(tok)
    text = "".join(r.tokens)
    lead = len(text) - len(text.lstrip())
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    kept = np.array([np.mean(chars_kept[a:b]) > 0.5 for a, b in words], dtype=bool)
    ranks = np.array([np.mean(chars_rank[a:b]) for a, b in words])
    return text[lead:].rstrip(), kept, ranks


def compare_pruners_by_words(results_a, results_b, keep_ratios: Sequence[float] = (0.9, 0.8, 0.7),
                             n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Agreement of two runs with *different tokenizers* (e.g. two pruners), word by word.

    On shared examples whose reasoning text matches: kept-word IoU at each rho against the IoU two
    independent random deletions at the same word rates would give (``chance``), and the Spearman
    correlation of the words' mean normalised ranks (``keep_ratio`` NaN). Columns: ``metric,
    keep_ratio, mean, ci_lo, ci_hi, chance, n_examples``.
    """
    a = {r.example_id: r for r in results_a}
    b = {r.example_id: r for r in results_b}
    ids = sorted(set(a) & set(b))
    rows = []

    def emit(metric, rho, vals, chance=np.nan):
        vals = np.asarray([v for v in vals if np.isfinite(v)], dtype=float)
        pt, lo, hi = bootstrap_mean(vals, n_boot, seed)
        rows.append(dict(metric=metric, keep_ratio=rho, mean=pt, ci_lo=lo, ci_hi=hi, chance=chance,
                         n_examples=len(vals)))

    for rho in keep_ratios:
        iou, chance = [], []
        for i in ids:
            va, vb = word_view(a[i], rho), word_view(b[i], rho)
            if va is None or vb is None or va[0] != vb[0]:
                continue
            iou.append(_iou(va[1], vb[1]))
            n, ka, kb = len(va[1]), va[1].sum(), vb[1].sum()
            inter = ka * kb / n if n else 0.0
            chance.append(inter / (ka + kb - inter) if ka + kb - inter > 0 else 1.0)
        emit("kept_word_iou", float(rho), iou, float(np.mean(chance)) if chance else np.nan)
    rhos = []
    for i in ids:
        va, vb = word_view(a[i], 1.0), word_view(b[i], 1.0)
        if va is not None and vb is not None and va[0] == vb[0] and len(va[2]) > 2:
            rhos.append(stats.spearmanr(va[2], vb[2]).statistic)
    emit("word_rank_spearman", np.nan, rhos, 0.0)
    if not rows[-1]["n_examples"]:
        warnings.warn("compare_pruners_by_words: no shared example with the same reasoning text", stacklevel=2)
    return pd.DataFrame(rows)


__all__ = ["compare_runs", "compare_pruners_by_words", "word_view"]
