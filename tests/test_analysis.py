"""Analyses on synthetic PruneResults with known answers, plus a couple of tiny-model greedy runs."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_pruner

from pruneprobe import PruneprobeError, PruneResult, greedy_prune
from pruneprobe.analysis import (
    alive_matrix,
    attention_rank_regression,
    category_composition,
    compare_runs,
    has_full_scores,
    layer_contribution,
    rank_correlation_by_lag,
    rank_dynamics,
    regression_table,
)
from pruneprobe.core.result import TRACE_KEYS


def synth(order, r=None, matrix=None, eid="e0", method="greedy", objective="joint", token_ids=None):
    r = r or len(order)
    n = len(order)
    traces = {k: [np.nan] * (n + 1) for k in TRACE_KEYS}
    traces["joint_logprob"] = [-float(i) for i in range(n + 1)]
    return PruneResult(example_id=eid, method=method, objective=objective,
                       token_ids=list(token_ids or range(100, 100 + r)), tokens=[f"t{i}" for i in range(r)],
                       deletion_order=list(order), traces=traces, candidate_scores=matrix)


def drifting(order, reverse_rest=True) -> np.ndarray:
    """Row s-1 (step s): d_s scores 100, d_{s+1} 99, the later tokens j score j (reverse) or -j."""
    t = len(order)
    m = np.full((t, t), np.nan)
    for s in range(1, t + 1):
        for j in range(s, t + 1):
            m[s - 1, order[j - 1]] = 100 if j == s else 99 if j == s + 1 else (j if reverse_rest else -j)
    return m


def fixed_order(order) -> np.ndarray:
    """Every token keeps one score (higher = deleted sooner): fully consistent rankings."""
    t = len(order)
    score = np.empty(t)
    score[list(order)] = -np.arange(t, dtype=float)
    m = np.tile(score, (t, 1))
    m[~alive_matrix(synth(order))] = np.nan
    return m + np.arange(t)[:, None]  # a drift common to all tokens changes no ranking


def assert_argmax_deletions(res):
    for s, d in enumerate(res.deletion_order):
        assert np.nanargmax(res.candidate_scores[s]) == d


# -- rank dynamics ------------------------------------------------------------------------------
def test_consistent_matrix_gives_perfect_dynamic_and_frozen():
    rng = np.random.default_rng(1)
    results = [synth(list(order), matrix=fixed_order(order), eid=f"e{i}")
               for i, order in enumerate(rng.permutation(12) for _ in range(5))]
    for res in results:
        assert_argmax_deletions(res)
        assert has_full_scores(res)
    df = rank_dynamics(results, lags=(0, 1, 2, 4), n_boot=50)
    hit = df.set_index(["lag", "kind", "top"])["hit_rate"]
    for lag in (0, 1, 2, 4):
        assert hit[(lag, "dynamic", 1)] == 1.0 and hit[(lag, "frozen", 1)] == 1.0
    assert set(df["run"]) == {"greedy/joint"}
    assert (df.query("lag == 1")["n_steps"] == 5 * 11).all()
    corr = rank_correlation_by_lag(results, lags=(1, 3), n_boot=20)
    np.testing.assert_allclose(corr["spearman"], 1.0)


def test_drifting_matrix_known_rates():
    t = 10
    order = list(np.random.default_rng(0).permutation(t))
    res = synth(order, matrix=drifting(order))
    assert_argmax_deletions(res)
    df = rank_dynamics([res], lags=(1, 2), top=(1,), n_boot=0).set_index(["lag", "kind"])
    assert df.loc[(1, "dynamic"), "hit_rate"] == 1.0
    assert df.loc[(1, "frozen"), "hit_rate"] == pytest.approx(2 / (t - 1))  # hits at t=2 and t=T only
    assert df.loc[(2, "dynamic"), "hit_rate"] == pytest.approx(1 / (t - 2))  # only t=T
    assert df.loc[(2, "frozen"), "hit_rate"] == pytest.approx(1 / (t - 2))
    chance = np.mean([1 / (t - s + 1) for s in range(2, t + 1)])
    assert df.loc[(1, "dynamic"), "chance"] == pytest.approx(chance)
    assert df.loc[(1, "dynamic"), "n_steps"] == t - 1


def test_random_ranking_matches_chance():
    rng = np.random.default_rng(2)
    results = []
    for i in range(200):
        order = list(rng.permutation(10))
        results.append(synth(order, matrix=drifting(order), eid=f"e{i}"))
    df = rank_dynamics(results, lags=(1,), top=(1, 5), seed=3, n_boot=100).set_index(["kind", "top"])
    for m in (1, 5):
        row = df.loc[("random", m)]
        assert abs(row["hit_rate"] - row["chance"]) < 0.04
        assert row["ci_lo"] <= row["hit_rate"] <= row["ci_hi"]
    assert df.loc[("dynamic", 1), "hit_rate"] == 1.0


def test_baselines_skipped_with_warning():
    order = [3, 1, 0, 2]
    good = synth(order, matrix=fixed_order(order), eid="g")
    base = synth(order, eid="b", method="uniform")
    with pytest.warns(UserWarning, match="skipped 1"):
        df = rank_dynamics([good, base], n_boot=0)
    assert set(df["run"]) == {"greedy/joint"}
    with pytest.raises(PruneprobeError, match="strategy='exact'"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rank_correlation_by_lag([base])
    with pytest.raises(PruneprobeError, match="more than once"):
        rank_dynamics([good, good])


# -- composition --------------------------------------------------------------------------------
def test_category_composition_known_retention():
    a = synth([5, 6, 7, 8, 9, 0, 1, 2, 3, 4], eid="a")
    b = synth([2, 3, 0, 1], eid="b")
    labels = {"a": ["SymbMath"] * 5 + ["Grammar"] * 5, "b": ["SymbMath", "SymbMath", "CoRef", "CoRef"]}
    df = category_composition([a], labels, stages=(1.0, 0.8, 0.5), n_boot=0).set_index(["keep_ratio", "category"])
    assert df.loc[(1.0, "SymbMath"), "share"] == 0.5 and df.loc[(1.0, "Grammar"), "retention"] == 1.0
    assert df.loc[(0.8, "SymbMath"), "share"] == pytest.approx(5 / 8)
    assert df.loc[(0.8, "SymbMath"), "retention"] == pytest.approx(1.25)
    assert df.loc[(0.8, "Grammar"), "retention"] == pytest.approx(0.75)
    assert df.loc[(0.5, "SymbMath"), "retention"] == pytest.approx(2.0)
    assert df.loc[(0.5, "Grammar"), "share"] == 0.0
    # two examples pool their tokens; the table form of the labels gives the same result
    table = pd.DataFrame([{"example_id": k, "index": i, "category": c} for k, v in labels.items()
                          for i, c in enumerate(v)])
    both = category_composition([a, b], table, stages=(0.5,), n_boot=200)
    pooled = both.set_index("category")
    assert pooled.loc["SymbMath", "retention"] == pytest.approx(1.0 / (7 / 14))
    assert pooled.loc["CoRef", "n_tokens"] == 2 and pooled.loc["CoRef", "n_kept"] == 0
    assert list(pooled.index) == ["SymbMath", "CoRef", "Grammar"]  # canonical category order
    assert (pooled["retention_lo"] <= pooled["retention"] + 1e-12).all()
    assert pooled["share"].sum() == pytest.approx(1.0)
    with pytest.raises(PruneprobeError, match="no category labels"):
        category_composition([a], {"b": labels["b"]})
    with pytest.raises(PruneprobeError, match="labels for"):
        category_composition([a], {"a": ["Grammar"] * 3})


# -- compare_runs -------------------------------------------------------------------------------
def test_compare_runs_known_values():
    fwd = [synth(list(range(10)), eid=f"e{i}") for i in range(3)]
    rev = [synth(list(range(9, -1, -1)), eid=f"e{i}", method="uniform") for i in range(3)]
    other_tok = [synth(list(range(10)), eid=f"e{i}", token_ids=range(10)) for i in range(3)]
    df = compare_runs({"fwd": fwd, "rev": rev, "same": fwd, "tok": other_tok}, keep_ratios=(0.8,),
                      reference="fwd", n_boot=50)
    get = df.set_index(["metric", "run"])
    assert get.loc[("kept_iou", "rev"), "mean"] == pytest.approx(0.6)
    assert get.loc[("deleted_iou", "rev"), "mean"] == 0.0
    assert get.loc[("kendall_tau", "rev"), "mean"] == pytest.approx(-1.0)
    assert get.loc[("kendall_tau", "same"), "mean"] == pytest.approx(1.0)
    assert get.loc[("kept_iou", "same"), "mean"] == 1.0
    assert get.loc[("kept_iou", "tok"), "n_examples"] == 0  # different tokenizations are not compared
    assert get.loc[("joint_logprob", "fwd"), "mean"] == -2.0  # two deletions reach rho = 0.8
    assert np.isnan(get.loc[("answer_logprob", "fwd"), "mean"])
    pairs = compare_runs({"fwd": fwd, "rev": rev, "same": fwd}, n_boot=0)
    assert len(pairs.query("metric == 'kendall_tau'")) == 3


# -- regression ---------------------------------------------------------------------------------
def synthetic_features(n_ex=30, n_tok=25, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n_ex):
        for i in range(n_tok):
            row = {"example_id": f"e{e}", "index": i, "position": i / n_tok, "surprisal": rng.exponential(2)}
            for layer in (0, 1):
                for src in ("answer", "later", "rest"):
                    for red in ("mean", "max"):
                        row[f"attn_L{layer}_{src}_{red}"] = rng.normal()
            rows.append(row)
    df = pd.DataFrame(rows)
    w = rng.normal(size=6)
    df["linear"] = df[[c for c in df if c.startswith("attn_L1_")]].to_numpy() @ w + 0.05 * rng.normal(size=len(df))
    df["noise"] = rng.normal(size=len(df))
    return df


def test_regression_linear_target_and_noise():
    df = synthetic_features()
    out = attention_rank_regression(df, "linear", "example_id", models=("ridge",))
    mean = out.query("fold == 'mean'").set_index("feature_set")
    assert mean.loc["attention", "pearson"] > 0.95 and mean.loc["all", "pearson"] > 0.95
    assert abs(mean.loc["position", "pearson"]) < 0.3
    assert len(out.query("feature_set == 'attention'")) == 5 + 2
    noise = attention_rank_regression(df, "noise", "example_id", models=("ridge",), feature_sets=("attention",))
    assert abs(noise.query("fold == 'pooled'")["pearson"].item()) < 0.15
    mlp = attention_rank_regression(df, df["linear"].to_numpy(), df["example_id"].to_numpy(), models=("mlp",),
                                    feature_sets=("attention",), n_splits=3, mlp_hidden=(16,), mlp_max_iter=300)
    assert mlp.query("fold == 'mean'")["pearson"].item() > 0.9
    layers = layer_contribution(df, "linear").set_index("layer")
    assert layers.loc[1, "pearson"] > 0.95 and abs(layers.loc[0, "pearson"]) < 0.3
    with pytest.raises(PruneprobeError, match="at least 2 examples"):
        attention_rank_regression(df.query("example_id == 'e0'"), "linear", models=("ridge",))


def study_table(n_ex=24, n_tok=20, seed=1) -> pd.DataFrame:
    """Synthetic features with tokens and labels: ``on_attention`` depends only on one attention
    column, ``on_position`` only on position."""
    from pruneprobe.analysis.regression import context_features

    df = synthetic_features(n_ex, n_tok, seed)
    rng = np.random.default_rng(seed)
    df["token"] = rng.choice([" the", " 3", "=", ".", "Tom", "\n"], size=len(df))
    labels = df[["example_id", "index"]].assign(category=rng.choice(["SymbMath", "Grammar"], size=len(df)))
    df["on_attention"] = df["attn_L0_later_max"] + 0.1 * rng.normal(size=len(df))
    df["on_position"] = df["position"] + 0.05 * rng.normal(size=len(df))
    return context_features(df, labels)


def test_context_features_and_feature_sets():
    from pruneprobe.analysis.regression import _feature_sets

    df = study_table()
    assert {"ctx_tokens_to_end", "ctx_digit", "ctx_cat_SymbMath", "ctx_cat_Grammar"} <= set(df.columns)
    assert df.loc[df["token"] == " 3", "ctx_digit"].eq(1).all() and df.loc[df["token"] == "=", "ctx_math"].eq(1).all()
    assert (df.groupby("example_id")["ctx_tokens_to_end"].min() == 0).all()
    sets = _feature_sets(df, ("attention", "non-attention", "both"))
    assert not set(sets["attention"]) & set(sets["non-attention"])
    assert set(sets["both"]) == set(sets["attention"]) | set(sets["non-attention"])
    with pytest.raises(PruneprobeError, match="context_features"):
        _feature_sets(synthetic_features(3, 5), ("non-attention",))


def test_attention_study_gain_only_where_attention_carries_the_target():
    from pruneprobe.analysis.regression_study import GAIN, attention_study, study_summary

    df = study_table()
    scores = attention_study(df, targets=("on_attention", "on_position"), models=("ridge",), n_boot=100)
    mean = study_summary(scores).set_index(["target", "feature_set"])
    att, pos = mean.loc["on_attention"], mean.loc["on_position"]
    assert att.loc["attention", "pearson"] > 0.9 and att.loc["non-attention", "pearson"] < 0.3
    assert att.loc[GAIN, "pearson_lo"] > 0.5  # attention adds, and the CI says so
    assert pos.loc["non-attention", "pearson"] > 0.9 and abs(pos.loc[GAIN, "pearson"]) < 0.02
    assert pos.loc[GAIN, "pearson_lo"] <= 0.005  # nothing added: the CI reaches (about) 0
    pooled = study_summary(scores, "pooled").set_index(["target", "feature_set"])
    assert (pooled["pearson_lo"] <= pooled["pearson"]).all() and (pooled["pearson"] <= pooled["pearson_hi"]).all()
    folds = scores[scores["fold"].map(lambda f: isinstance(f, int))]
    assert folds.groupby(["target", "feature_set"]).size().eq(5).all()
    assert (mean["n_examples"] == 24).all()


def test_head_contribution_finds_the_head():
    from pruneprobe.analysis.regression_study import head_contribution, layer_scores

    df = study_table(n_ex=12, n_tok=15)
    rng = np.random.default_rng(0)
    heads = df[["example_id", "index"]].copy()
    for layer in (0, 1):
        for head in (0, 1, 2):
            for src in ("answer", "later", "rest"):
                heads[f"head_L{layer}_H{head}_{src}"] = rng.normal(size=len(df))
    df["on_head"] = heads["head_L1_H2_rest"] + 0.1 * rng.normal(size=len(df))
    out = head_contribution(df, heads, targets=("on_head",), n_splits=3).set_index(["layer", "head"])
    assert len(out) == 6 and out["pearson"].idxmax() == (1, 2) and out.loc[(1, 2), "pearson"] > 0.9
    assert out.drop(index=(1, 2))["pearson"].abs().max() < 0.3
    layers = layer_scores(df, targets=("on_attention",), n_splits=3).set_index("layer")
    assert layers.loc[0, "pearson"] > 0.9 and layers.loc[0, "pearson_lo"] < layers.loc[0, "pearson"]
    with pytest.raises(PruneprobeError, match="cover"):
        head_contribution(df, heads.iloc[:10], targets=("on_head",))


# -- tiny-model greedy runs ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def greedy_runs():
    from pruneprobe import Example

    pruner = tiny_pruner("llama")
    exs = [Example(question="Tom has 3 apples and buys 4 more. How many apples?", answer="7",
                   reasoning="Tom starts with 3 apples. He buys 4, so 3 + 4 = 7.", id="tom"),
           Example(question="A box holds 6 eggs. How many eggs in 2 boxes?", answer="12",
                   reasoning="Each box has 6 eggs, and 2 * 6 = 12 eggs in total.", id="eggs")]
    return pruner, exs, [greedy_prune(pruner, ex) for ex in exs]


def test_tiny_greedy_runs(greedy_runs):
    from pruneprobe.analysis.attention import attention_features_many
    from pruneprobe.methods.registry import prune_baseline

    pruner, exs, results = greedy_runs
    assert all(has_full_scores(r) for r in results)
    dyn = rank_dynamics(results, lags=(0, 1, 4), n_boot=50)
    assert (dyn.query("lag == 0 and kind == 'dynamic'")["hit_rate"] == 1.0).all()
    assert dyn["hit_rate"].between(0, 1).all() and dyn["n_examples"].max() == 2
    corr = rank_correlation_by_lag(results, lags=(1, 2), n_boot=20)
    assert corr["spearman"].between(-1, 1).all() and (corr["n_pairs"] > 0).all()
    uniform = [prune_baseline(pruner, ex, "uniform", traces=False) for ex in exs]
    cmp = compare_runs({"greedy": results, "uniform": uniform}, reference="greedy", n_boot=20)
    assert cmp.query("metric == 'kept_iou'")["mean"].between(0, 1).all()
    assert cmp.query("metric == 'joint_logprob' and run == 'greedy'")["mean"].notna().all()
    feats = attention_features_many(pruner, exs, ensure_eager=True)
    table = regression_table(results, feats)
    assert len(table) == sum(r.n_tokens for r in results)
    r0 = results[0]
    want = r0.candidate_scores[0] - r0.traces["joint_logprob"][0]
    np.testing.assert_allclose(table.query("example_id == 'tom'")["delta_loglik"], want)
    assert table["normalized_rank"].between(0, 1).all()
    with pytest.raises(PruneprobeError, match="feature rows"):
        regression_table(results[:1], {"tom": feats.iloc[:3]})


def tokenized(tokens, order, eid="e0"):
    traces = {k: [np.nan] * (len(order) + 1) for k in TRACE_KEYS}
    return PruneResult(example_id=eid, method="greedy", objective="joint", token_ids=list(range(len(tokens))),
                       tokens=tokens, deletion_order=list(order), traces=traces)


def test_compare_pruners_by_words_aligns_different_tokenizations():
    from pruneprobe.analysis import compare_pruners_by_words, word_view

    # "So 12 apples cost 30" in two tokenizations; both delete the words "So" then "apples" first
    a = tokenized(["So", " 12", " app", "les", " cost", " 30"], [0, 2, 3, 4, 1, 5])
    b = tokenized([" So", " 1", "2", " apples", " cost", " 3", "0"], [0, 3, 4, 1, 2, 5, 6])
    text, kept, _ = word_view(a, 0.5)
    assert text == "So 12 apples cost 30" and kept.tolist() == [False, True, False, True, True]
    out = compare_pruners_by_words([a], [b], keep_ratios=(0.7, 0.5))
    iou = out[out.metric == "kept_word_iou"].set_index("keep_ratio")
    # rho 0.5: a keeps 12, cost, 30 (3 of 6 tokens); b keeps 1, 2, 3, 0 -> words 12, 30 (cost deleted)
    assert iou.loc[0.5, "mean"] == pytest.approx(2 / 3) and iou.loc[0.5, "n_examples"] == 1
    assert 0 < iou.loc[0.5, "chance"] < iou.loc[0.5, "mean"]
    rho = out[out.metric == "word_rank_spearman"]["mean"].iloc[0]
    assert 0.5 < rho <= 1.0
    c = tokenized(["So", " 13", " apples"], [0, 1, 2])  # other text: skipped with a warning
    with pytest.warns(UserWarning, match="no shared example"):
        assert compare_pruners_by_words([a], [c]).n_examples.sum() == 0


def test_one_bootstrap_and_one_grouping_for_every_stage():
    from pruneprobe.analysis.stats import bootstrap_ci, bootstrap_mean, group_runs
    from pruneprobe.distill.sufficiency import bootstrap_ci as suff_ci
    from pruneprobe.distill.sufficiency import group_results

    assert suff_ci is bootstrap_ci
    x = [0.0, 1.0] * 20
    pt, lo, hi = bootstrap_mean(x, n_boot=300, seed=3)
    assert pt == 0.5 and bootstrap_ci(x, n_boot=300, seed=3) == (lo, hi) and lo < 0.5 < hi
    a, b = synth([0, 1], eid="e"), synth([1, 0], eid="e", objective="answer")
    assert group_runs([a, b]) == {"greedy/joint": [a], "greedy/answer": [b]}
    assert group_results([a, b]) == {"greedy": [a, b]}  # by method, repeats allowed
    with pytest.raises(PruneprobeError):
        group_runs([a, a])
