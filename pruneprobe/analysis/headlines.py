"""The headline numbers of one set of runs in one tidy table, so that sets of chains (short gold, full-length
gold, the pruner's own) can be set side by side (notebook 07, ``pruneprobe.viz.chain_sets``).

Canonical pattern::

    from pruneprobe.analysis.headlines import headline_numbers
    table = headline_numbers(greedy_joint_results, labels, others={"Surprisal": surprisal_results})
    table.pivot(index=["quantity", "detail"], columns=[], values="value")

Each row is one quantity with its 95% bootstrap CI over examples and the number of examples it rests on:
chain length, retention of each category at ρ = 0.5 (``category_composition``), the top-1 hit rate of
the dynamic / frozen / random rankings at lags 1 and 4 (``rank_dynamics``), and the Kendall tau between
greedy's pruning ranks and each other run's (``compare_runs``, on the examples both have); ``attention_rows``
adds what a cached attention study (notebook 04) measured.

Gotchas: with few examples the intervals are wide, and with one there is none (NaN); every row says its n.
The hit rates need exact greedy results (a full candidate-score matrix); other results give no hit-rate rows.
"""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import pandas as pd

from pruneprobe.analysis.compare import compare_runs
from pruneprobe.analysis.dynamics import category_composition, has_full_scores, rank_dynamics
from pruneprobe.analysis.stats import bootstrap_mean
from pruneprobe.core.result import PruneResult
from pruneprobe.errors import PruneprobeError

COLUMNS = ["quantity", "detail", "value", "ci_lo", "ci_hi", "n_examples"]
RETENTION = "retention at ρ = {rho:g} (relative to uniform)"
HIT_RATE = "top-1 hit rate, lag {lag}"
TAU = "Kendall tau with greedy joint"
LENGTH = "reasoning tokens per chain"
ATTENTION = "{model} from features to {target}, held-out Pearson r"
TARGET_NAMES = {"normalized_rank": "the pruning rank", "delta_loglik": "the post-deletion likelihood"}


def _row(quantity: str, detail: str, value, lo, hi, n: int) -> dict:
    return dict(zip(COLUMNS, (quantity, detail, float(value), float(lo), float(hi), int(n))))


def _retention_rows(greedy: list[PruneResult], labels, rho: float, n_boot: int, seed: int) -> list[dict]:
    comp = category_composition({"greedy": greedy}, labels, stages=(rho,), n_boot=n_boot, seed=seed)
    return [_row(RETENTION.format(rho=rho), r.category, r.retention, r.retention_lo, r.retention_hi, r.n_examples)
            for r in comp.itertuples()]


def _hit_rate_rows(greedy: list[PruneResult], lags: Sequence[int], n_boot: int, seed: int) -> list[dict]:
    exact = [r for r in greedy if has_full_scores(r)]
    if not exact:
        return []
    dyn = rank_dynamics({"greedy": exact}, lags=lags, top=(1,), n_boot=n_boot, seed=seed)
    rows = [_row(HIT_RATE.format(lag=r.lag), r.kind, r.hit_rate, r.ci_lo, r.ci_hi, r.n_examples)
            for r in dyn.itertuples()]
    chance = dyn.groupby("lag", sort=False).first()
    return rows + [_row(HIT_RATE.format(lag=lag), "chance", r.chance, r.chance, r.chance, r.n_examples)
                   for lag, r in chance.iterrows()]


def _tau_rows(greedy: list[PruneResult], others: Mapping[str, list[PruneResult]], n_boot: int, seed: int) -> list[dict]:
    rows = []
    ids = {r.example_id for r in greedy}
    for name, results in others.items():
        shared = [r for r in results if r.example_id in ids]
        if not shared:
            continue
        with warnings.catch_warnings():  # "using the n examples every run has": n is on the row
            warnings.simplefilter("ignore")
            cmp = compare_runs({"greedy": greedy, name: shared}, reference="greedy", n_boot=n_boot, seed=seed)
        tau = cmp[cmp.metric == "kendall_tau"].iloc[0]
        rows.append(_row(TAU, name, tau["mean"], tau.ci_lo, tau.ci_hi, tau.n_examples))
    return rows


def attention_rows(study: pd.DataFrame, model: str = "mlp") -> pd.DataFrame:
    """The fold-mean rows of a cached attention study (``regression_study.attention_study``, notebook 04) as
    headline rows: held-out Pearson r of ``model`` per target and feature set, with its t-CI over folds.

    >>> study = pd.DataFrame({"target": ["normalized_rank"], "feature_set": ["both - non-attention"], "model": ["mlp"],
    ...                       "fold": ["mean"], "pearson": [0.06], "pearson_lo": [0.05], "pearson_hi": [0.08],
    ...                       "n_examples": [120]})
    >>> attention_rows(study)[["quantity", "detail", "value"]].values.tolist()
    [['MLP from features to the pruning rank, held-out Pearson r', 'both - non-attention', 0.06]]
    """
    means = study[(study["fold"].astype(str) == "mean") & (study["model"] == model)]
    rows = [_row(ATTENTION.format(model=model.upper() if model == "mlp" else model, target=TARGET_NAMES.get(r.target, r.target)),
                 r.feature_set, r.pearson, r.pearson_lo, r.pearson_hi, r.n_examples) for r in means.itertuples()]
    return pd.DataFrame(rows, columns=COLUMNS)


def headline_numbers(greedy: Sequence[PruneResult], labels, others: Mapping[str, Sequence[PruneResult]] | None = None,
                     rho: float = 0.5, lags: Sequence[int] = (1, 4), n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The headline numbers of a greedy joint run (``greedy``) and the runs compared with it (``others``,
    ``{name: results}``), as rows ``quantity, detail, value, ci_lo, ci_hi, n_examples`` (95% bootstrap CIs
    over examples). ``labels``: rule labels (``example_id, index, category``) of the greedy run's tokens.

    >>> from pruneprobe.core.result import PruneResult
    >>> r = PruneResult("ex", "greedy", "joint", [1, 2, 3, 4], ["2", "+", "3", "."], [3, 1], {})
    >>> t = headline_numbers([r], {"ex": ["SymbMath", "SymbMath", "SymbMath", "Grammar"]}, n_boot=0)
    >>> t.set_index("detail").loc[["mean", "SymbMath", "Grammar"], "value"].tolist()  # 4 tokens; at ρ = 0.5 "." went
    [4.0, 1.333..., 0.0]
    """
    greedy = list(greedy)
    if not greedy:
        raise PruneprobeError("headline_numbers needs at least one greedy result")
    mean, lo, hi = bootstrap_mean([r.n_tokens for r in greedy], n_boot, seed)
    rows = [_row(LENGTH, "mean", mean, lo, hi, len(greedy))]
    rows += _retention_rows(greedy, labels, rho, n_boot, seed)
    rows += _hit_rate_rows(greedy, lags, n_boot, seed)
    rows += _tau_rows(greedy, {k: list(v) for k, v in (others or {}).items()}, n_boot, seed)
    return pd.DataFrame(rows, columns=COLUMNS)


__all__ = ["ATTENTION", "COLUMNS", "HIT_RATE", "LENGTH", "RETENTION", "TAU", "attention_rows", "headline_numbers"]
