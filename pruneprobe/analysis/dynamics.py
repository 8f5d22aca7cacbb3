"""Analyses of pruning results (docs/method.md, "Analyses"); every function returns a tidy DataFrame.

Canonical pattern::

    from pruneprobe.analysis.dynamics import category_composition, rank_correlation_by_lag, rank_dynamics
    from pruneprobe.analysis.compare import compare_runs
    comp = category_composition(results, labels)   # labels: {example_id: [category of each token]}
    dyn = rank_dynamics(results)                    # greedy results with a full candidate-score matrix
    corr = rank_correlation_by_lag(results)
    cmp = compare_runs({"joint": joint_results, "answer": answer_results}, reference="joint")
    # attention -> rank regression: pruneprobe.analysis.regression

Conventions:
- ``results`` is a list of ``PruneResult`` (grouped into runs by ``"method/objective"``) or a dict
  ``{run name: [PruneResult, ...]}``; a run holds at most one result per example (two pruners with
  the same method and objective: pass a dict).
- Statistics pool tokens (or steps) over examples; 95% CIs are percentile bootstrap intervals that
  resample *examples* with replacement (``n_boot`` draws, ``seed``; ``n_boot=0`` skips them), from
  ``pruneprobe.analysis.stats`` (also the grouping of results into runs).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from pruneprobe.analysis.category_rules import CATEGORIES
from pruneprobe.analysis.stats import bootstrap, group_runs
from pruneprobe.core.result import PruneResult
from pruneprobe.errors import PruneprobeError

STAGES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)
RANKING_KINDS = ("dynamic", "frozen", "random")


# -- helpers ----------------------------------------------------------------------------------
def _labels_map(labels) -> dict[str, list[str]]:
    if isinstance(labels, pd.DataFrame):
        missing = {"example_id", "index", "category"} - set(labels.columns)
        if missing:
            raise PruneprobeError(f"labels table lacks columns {sorted(missing)}")
        out = {}
        for eid, g in labels.sort_values("index").groupby("example_id", sort=False):
            if list(g["index"]) != list(range(len(g))):
                raise PruneprobeError(f"labels of example {eid!r}: indices are not 0..R-1")
            out[str(eid)] = list(g["category"])
        return out
    return {str(k): list(v) for k, v in labels.items()}


def _clean(label) -> str:
    return "Unlabeled" if label is None or (isinstance(label, float) and np.isnan(label)) else str(label)


# -- category composition ---------------------------------------------------------------------
def category_composition(results, labels, stages: Sequence[float] = STAGES, n_boot: int = 1000,
                         seed: int = 0) -> pd.DataFrame:
    """Share of each category among the kept tokens at each keep ratio, and its retention.

    ``labels``: ``{example_id: [category per reasoning token]}`` or a table with columns
    ``example_id, index, category``. ``retention`` = (fraction of the category's tokens kept) /
    (fraction of all tokens kept), i.e. relative to what uniform random deletion keeps in
    expectation: > 1 preserved, < 1 pruned early. Columns: ``run, keep_ratio, category, share,
    share_lo, share_hi, retention, retention_lo, retention_hi, n_kept, n_tokens, n_examples``.

    >>> comp = category_composition(results, {"ex1": ["SymbMath", "Grammar", ...]})  # doctest: +SKIP
    >>> comp.pivot(index="keep_ratio", columns="category", values="retention")      # doctest: +SKIP
    """
    lab = _labels_map(labels)
    rows = []
    for run, rs in group_runs(results).items():
        missing = [r.example_id for r in rs if r.example_id not in lab]
        if missing:
            raise PruneprobeError(f"no category labels for examples {missing[:5]}")
        seen = {_clean(c) for r in rs for c in lab[r.example_id]}
        cats = [c for c in CATEGORIES if c in seen] + sorted(seen - set(CATEGORIES))
        code = {c: i for i, c in enumerate(cats)}
        e, s, c = len(rs), len(stages), len(cats)
        kc, nc, k, n = np.zeros((e, s, c)), np.zeros((e, c)), np.zeros((e, s)), np.zeros(e)
        for i, r in enumerate(rs):
            if len(lab[r.example_id]) != r.n_tokens:
                raise PruneprobeError(f"example {r.example_id!r}: {len(lab[r.example_id])} labels for "
                                      f"{r.n_tokens} reasoning tokens")
            codes = np.array([code[_clean(x)] for x in lab[r.example_id]], dtype=np.int64)
            nc[i], n[i] = np.bincount(codes, minlength=c), r.n_tokens
            for j, rho in enumerate(stages):
                mask = r.kept_mask(rho)
                kc[i, j], k[i, j] = np.bincount(codes[mask], minlength=c), mask.sum()

        def stat(sm):
            share = sm["kc"] / sm["k"][..., None]
            kept_frac = sm["k"] / np.asarray(sm["n"])[..., None]
            return np.stack([share, (sm["kc"] / sm["nc"][..., None, :]) / kept_frac[..., None]], axis=-3)

        pt, lo, hi = bootstrap({"kc": kc, "nc": nc, "k": k, "n": n}, stat, n_boot, seed)
        for j, rho in enumerate(stages):
            for ci, cat in enumerate(cats):
                rows.append({"run": run, "keep_ratio": float(rho), "category": cat,
                             "share": pt[0, j, ci], "share_lo": lo[0, j, ci], "share_hi": hi[0, j, ci],
                             "retention": pt[1, j, ci], "retention_lo": lo[1, j, ci],
                             "retention_hi": hi[1, j, ci], "n_kept": int(kc[:, j, ci].sum()),
                             "n_tokens": int(nc[:, ci].sum()), "n_examples": e})
    return pd.DataFrame(rows)


# -- rank dynamics ------------------------------------------------------------------------------
def alive_matrix(result: PruneResult) -> np.ndarray:
    """``[n_steps, R]`` bool: row ``t-1`` marks the tokens still present before step ``t``."""
    rank = result.pruning_rank
    steps = np.arange(1, result.n_steps + 1)[:, None]
    return (rank[None, :] == -1) | (rank[None, :] >= steps)


def has_full_scores(result: PruneResult) -> bool:
    """True when every token alive at every step has a finite candidate score (exact strategy)."""
    m = result.candidate_scores
    return m is not None and m.shape[0] >= result.n_steps and result.n_steps > 0 and bool(
        np.isfinite(m[: result.n_steps][alive_matrix(result)]).all())


def _usable(results, fn: str) -> dict[str, list[PruneResult]]:
    runs, skipped = {}, []
    for run, rs in group_runs(results).items():
        ok = [r for r in rs if has_full_scores(r)]
        skipped += [f"{run}:{r.example_id}" for r in rs if not has_full_scores(r)]
        if ok:
            runs[run] = ok
    if skipped:
        warnings.warn(f"{fn}: skipped {len(skipped)} result(s) without a full candidate-score matrix "
                      f"(baselines, shortlist strategy): {skipped[:5]}", stacklevel=3)
    if not runs:
        raise PruneprobeError(f"{fn} needs greedy results with strategy='exact' (a full candidate-score matrix)")
    return runs


def _ranks_of_deleted(scores: np.ndarray, alive: np.ndarray, deleted: np.ndarray) -> np.ndarray:
    """1-based rank of each deleted token among the alive ones (higher score first, ties to the
    earliest token, as greedy breaks them). ``scores`` ``[T, R]`` or ``[R]``; ``alive`` ``[T, R]``."""
    scores = np.broadcast_to(scores, alive.shape)
    sd = scores[np.arange(len(deleted)), deleted][:, None]
    idx = np.arange(alive.shape[1])[None, :]
    ahead = (scores > sd) | ((scores == sd) & (idx < deleted[:, None]))
    return (ahead & alive).sum(1) + 1


def rank_dynamics(results, lags: Sequence[int] = (1, 2, 4, 8, 16), top: Sequence[int] = (1, 5),
                  seed: int = 0, n_boot: int = 1000) -> pd.DataFrame:
    """How well earlier rankings predict the token greedy deletes now.

    For each step ``t`` and lag ``k`` with ``t - k >= 1``, ranks the tokens still alive at ``t`` by
    - ``dynamic``: their candidate scores at step ``t - k``;
    - ``frozen``: their scores at step 1 (before any deletion);
    - ``random``: a random score per token, drawn once per example (a random frozen ranking);
    and asks whether the token deleted at ``t`` is in the top ``m`` (``top``). ``chance`` is the
    expected hit rate of a random ranking, ``mean(min(m, n_alive) / n_alive)``. Hit rates pool the
    (example, step) pairs; CIs resample examples. Lag 0 is allowed (dynamic = 1.0 for exact greedy).
    Results without a full candidate-score matrix (one-shot baselines, shortlist strategy) are
    skipped with a warning. Columns: ``run, lag, kind, top, hit_rate, ci_lo, ci_hi, chance,
    n_steps, n_examples``.

    >>> rank_dynamics(results).query("top == 1").pivot(index="lag", columns="kind", values="hit_rate")  # doctest: +SKIP
    """
    lags, top_arr = [int(x) for x in lags], np.asarray(top, dtype=np.int64)
    if any(x < 0 for x in lags) or (top_arr < 1).any():
        raise PruneprobeError("lags must be >= 0 and top values >= 1")
    rng = np.random.default_rng(seed)
    rows = []
    for run, rs in _usable(results, "rank_dynamics").items():
        e, nl, nk, nt = len(rs), len(lags), len(RANKING_KINDS), len(top_arr)
        hits, counts, chance = np.zeros((e, nl, nk, nt)), np.zeros((e, nl)), np.zeros((e, nl, nt))
        for i, r in enumerate(rs):
            m, alive = r.candidate_scores[: r.n_steps], alive_matrix(r)
            order, noise = np.asarray(r.deletion_order), rng.random(r.n_tokens)
            for li, lag in enumerate(lags):
                ts = np.arange(lag + 1, r.n_steps + 1)  # 1-based steps with t - lag >= 1
                if len(ts) == 0:
                    continue
                a, d = alive[ts - 1], order[ts - 1]
                for ki, sc in enumerate((m[ts - lag - 1], m[0], noise)):
                    hits[i, li, ki] = (_ranks_of_deleted(sc, a, d)[:, None] <= top_arr).sum(0)
                n_alive = a.sum(1)[:, None]
                chance[i, li], counts[i, li] = (np.minimum(top_arr, n_alive) / n_alive).sum(0), len(ts)
        pt, lo, hi = bootstrap({"h": hits, "c": chance, "n": counts},
                               lambda s: np.concatenate([s["h"] / s["n"][..., None, None],
                                                         (s["c"] / s["n"][..., None])[..., None, :]], -2),
                               n_boot, seed)
        for li, lag in enumerate(lags):
            for ki, kind in enumerate(RANKING_KINDS):
                for ti, m_top in enumerate(top_arr):
                    rows.append({"run": run, "lag": lag, "kind": kind, "top": int(m_top),
                                 "hit_rate": pt[li, ki, ti], "ci_lo": lo[li, ki, ti], "ci_hi": hi[li, ki, ti],
                                 "chance": pt[li, nk, ti], "n_steps": int(counts[:, li].sum()),
                                 "n_examples": int((counts[:, li] > 0).sum())})
    return pd.DataFrame(rows)


def rank_correlation_by_lag(results, lags: Sequence[int] = (1, 2, 4, 8, 16), n_boot: int = 1000,
                            seed: int = 0) -> pd.DataFrame:
    """Spearman correlation between the score vectors of steps ``t`` and ``t - k``, over the tokens
    alive at ``t``, averaged over all (example, step) pairs with at least 3 such tokens and
    non-constant scores. Baselines are skipped (see ``rank_dynamics``). Columns: ``run, lag,
    spearman, ci_lo, ci_hi, n_pairs, n_examples``.

    >>> rank_correlation_by_lag(results, lags=(1, 4, 16))   # doctest: +SKIP
    """
    rows = []
    for run, rs in _usable(results, "rank_correlation_by_lag").items():
        sums, counts = np.zeros((len(rs), len(lags))), np.zeros((len(rs), len(lags)))
        for i, r in enumerate(rs):
            m, alive = r.candidate_scores, alive_matrix(r)
            for li, lag in enumerate(lags):
                for t in range(int(lag) + 1, r.n_steps + 1):
                    a = alive[t - 1]
                    x, y = m[t - 1, a], m[t - 1 - int(lag), a]
                    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
                        continue
                    sums[i, li] += np.corrcoef(stats.rankdata(x), stats.rankdata(y))[0, 1]
                    counts[i, li] += 1
        pt, lo, hi = bootstrap({"s": sums, "n": counts}, lambda s: s["s"] / s["n"], n_boot, seed)
        for li, lag in enumerate(lags):
            rows.append({"run": run, "lag": int(lag), "spearman": pt[li], "ci_lo": lo[li], "ci_hi": hi[li],
                         "n_pairs": int(counts[:, li].sum()), "n_examples": int((counts[:, li] > 0).sum())})
    return pd.DataFrame(rows)


__all__ = ["category_composition", "rank_dynamics", "rank_correlation_by_lag", "alive_matrix", "has_full_scores",
           "STAGES", "RANKING_KINDS"]
