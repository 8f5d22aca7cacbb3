"""One-shot baselines: surprisal, H2O attention, uniform, random (tiny models of four architectures)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_pruner

from pruneprobe import PruneprobeError, PruneResult
from pruneprobe.core.encoding import encode_example
from pruneprobe.core.result import TRACE_KEYS
from pruneprobe.core.scoring import state_logprob_batch, traces_from_state
from pruneprobe.methods.baselines import (
    attention_received,
    random_order,
    uniform_order,
)
from pruneprobe.methods.registry import METHODS, list_methods, prune_baseline


@pytest.fixture(scope="module", params=("llama", "qwen2", "gemma3", "gpt2"))
def any_pruner(request):
    return tiny_pruner(request.param)


def _plain_logprobs(pruner, enc) -> np.ndarray:
    with torch.no_grad():
        logits = pruner.model(input_ids=enc.input_ids[None]).logits[0]
    lp = torch.log_softmax(logits.double(), -1)[:-1].gather(-1, enc.input_ids[1:, None])[:, 0]
    return lp[enc.reasoning_start - 1 : enc.reasoning_end - 1].numpy()


def test_surprisal_matches_plain_forward(any_pruner, example):
    r = prune_baseline(any_pruner, example, "surprisal", traces=False)
    lp = _plain_logprobs(any_pruner, encode_example(any_pruner, example))
    np.testing.assert_allclose(r.token_scores, lp, atol=1e-4)
    assert r.deletion_order == np.argsort(-np.array(r.token_scores), kind="stable").tolist()
    assert np.all(np.diff(lp[r.deletion_order]) <= 1e-4)  # most predictable first
    assert r.method == "surprisal" and r.candidate_scores is None
    assert sorted(r.deletion_order) == list(range(r.n_tokens))
    assert all(np.isnan(v).all() and len(v) == r.n_tokens + 1 for v in r.traces.values())


def _expected_attention(pruner, enc, normalizations=("relative", "mean", "sum")) -> dict[str, np.ndarray]:
    """Independent computation from ``output_attentions=True`` with explicit loops over keys."""
    model, before = pruner.model, pruner.model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            atts = model(input_ids=enc.input_ids[None], output_attentions=True).attentions
    finally:
        model.set_attn_implementation(before)
    s = len(enc.input_ids)
    rows = {n: [] for n in normalizations}
    for layer, a in enumerate(atts):
        a = a[0].double().numpy()  # [H, S, S]
        seen = (a > 0).sum(-1)  # keys each query sees: q + 1, or at most the window on sliding layers
        causal = np.arange(1, s + 1)
        if (getattr(model.config, "layer_types", None) or ["full"] * len(atts))[layer] == "sliding_attention":
            causal = np.minimum(causal, model.config.sliding_window)
        assert np.array_equal(seen, np.broadcast_to(causal, seen.shape))
        for n in normalizations:
            row = []
            for j in range(enc.reasoning_start, enc.reasoning_end):
                col = a[:, j + 1 :, j]  # from every later query, every head
                if n == "sum":
                    row.append(col.sum())
                else:
                    w = col * seen[:, j + 1 :] if n == "relative" else col
                    row.append(w.sum() / (col > 0).sum())
            rows[n].append(row)
    return {n: np.array(r) for n, r in rows.items()}


def test_h2o_matches_output_attentions(any_pruner, example):
    enc = encode_example(any_pruner, example)
    before = any_pruner.model.config._attn_implementation
    expected = _expected_attention(any_pruner, enc)
    for normalize, exp in expected.items():
        got = attention_received(any_pruner, enc, normalize)
        assert got.shape == (any_pruner.model.config.num_hidden_layers, enc.n_reasoning)
        np.testing.assert_allclose(got, exp, rtol=1e-5)
    assert any_pruner.model.config._attn_implementation == before  # restored
    r = prune_baseline(any_pruner, example, "h2o", traces=False)
    np.testing.assert_allclose(r.token_scores, expected["relative"].mean(0), rtol=1e-5)
    assert r.deletion_order == np.argsort(r.token_scores, kind="stable").tolist()  # least attended first
    assert r.metadata["h2o_normalize"] == "relative"


def test_h2o_bad_normalize(pruner, example):
    with pytest.raises(PruneprobeError, match="normalize"):
        prune_baseline(pruner, example, "h2o", normalize="max")


def test_traces_and_kept_mask(any_pruner, example):
    # traces are computed by shared code: one method per architecture keeps the tier fast
    method = {"llama": "surprisal", "qwen2": "uniform", "gemma3_text": "random", "gpt2": "h2o"}[
        any_pruner.model.config.model_type]
    r = prune_baseline(any_pruner, example, method, objective="answer", seed=1)
    enc = encode_example(any_pruner, example)
    assert r.objective == "answer" and r.metadata["objective"] == "answer"
    assert set(r.traces) == set(TRACE_KEYS) and all(len(v) == r.n_tokens + 1 for v in r.traces.values())
    lp0 = state_logprob_batch(any_pruner.model, enc.prefix_ids, [enc.reasoning_ids], enc.suffix_ids)[0]
    for k, v in traces_from_state(lp0, enc.n_reasoning).items():
        assert r.traces[k][0] == pytest.approx(v, rel=1e-5)
    assert r.metadata["traces_scorer"] == "fast"  # each state recomputed past its deletion only
    mask = np.ones(r.n_tokens, bool)
    states = [enc.reasoning_ids]
    for i in r.deletion_order:  # every later step against its explicit state
        mask[i] = False
        states.append(enc.reasoning_ids[torch.from_numpy(mask.copy())])
    explicit = state_logprob_batch(any_pruner.model, enc.prefix_ids, states, enc.suffix_ids)
    joint = [traces_from_state(lp, len(kept))["joint_logprob"] for lp, kept in zip(explicit, states)]
    assert np.allclose(r.traces["joint_logprob"], joint, atol=1e-4, rtol=0)
    for rho in (0.9, 0.8, 0.7):
        m = r.kept_mask(rho)
        assert m.sum() == int(np.floor(rho * r.n_tokens + 0.5)) and len(r.pruned_text(rho)) < len("".join(r.tokens))
    assert PruneResult.from_dict(r.to_dict()).deletion_order == r.deletion_order


def test_traces_fall_back_to_whole_states_when_the_fast_scorer_fails_its_check(pruner, example, caplog):
    """A pruner whose fast scorer failed its self-check gets its traces from whole states, the same values."""
    from dataclasses import replace

    from pruneprobe.core.exactness import check_fast_scorer

    fast = prune_baseline(pruner, example, "random", seed=2)
    pruner.scorer_check = replace(check_fast_scorer(pruner.model), max_diff=1.0)  # cached as failed
    try:
        with caplog.at_level("WARNING"):
            naive = prune_baseline(pruner, example, "random", seed=2)
    finally:
        pruner.scorer_check = None
    assert "using the naive scorer" in caplog.text and naive.metadata["traces_scorer"] == "naive"
    assert fast.metadata["traces_scorer"] == "fast"
    for k in TRACE_KEYS:
        assert np.allclose(fast.traces[k], naive.traces[k], rtol=1e-5, atol=1e-4, equal_nan=True)


def test_uniform_order_is_even_at_every_ratio():
    assert uniform_order(1) == [0] and uniform_order(0) == []
    for n in (7, 32, 45, 100, 257):
        order = uniform_order(n)
        assert sorted(order) == list(range(n))
        kept = np.ones(n, bool)
        kept[order[: n - int(np.floor(0.5 * n + 0.5))]] = False
        runs = np.diff(np.flatnonzero(np.diff(np.r_[-1, kept.astype(int), -1]) != 0))
        assert runs.max() <= 3 and (runs > 1).sum() <= 2, (n, runs)  # rho = 0.5: alternation
        for k in range(1, n + 1):  # any number k of deletions: every window holds ~ k/n of them
            deleted = np.zeros(n)
            deleted[order[:k]] = 1
            excess = np.r_[0, np.cumsum(deleted)] - k * np.arange(n + 1) / n
            assert excess.max() - excess.min() <= 1 + np.log2(n) / 2, (n, k)


def test_uniform_result_alternates(pruner, example):
    r = prune_baseline(pruner, example, "uniform", traces=False)
    mask = r.kept_mask(0.5)
    assert np.abs(np.diff(mask.astype(int))).sum() >= 0.8 * (r.n_tokens - 1)


def test_random_is_seeded(pruner, example):
    a = prune_baseline(pruner, example, "random", seed=0, traces=False)
    b = prune_baseline(pruner, example, "random", seed=0, traces=False)
    c = prune_baseline(pruner, example, "random", seed=1, traces=False)
    assert a.deletion_order == b.deletion_order != c.deletion_order
    assert a.metadata["seed"] == 0 and c.metadata["seed"] == 1
    assert random_order(10, 3) == random_order(10, 3)


def test_registry(pruner, example):
    assert list_methods() == ["greedy", "surprisal", "h2o", "uniform", "random", "tokenskip"]
    assert [m for m, spec in METHODS.items() if spec.one_shot] == ["surprisal", "h2o", "uniform", "random"]
    assert [m for m, spec in METHODS.items() if spec.needs_classifier] == ["tokenskip"]
    with pytest.raises(PruneprobeError, match="known methods: greedy, surprisal, h2o"):
        prune_baseline(pruner, example, "lottery")
    r = prune_baseline(pruner, example, "greedy", keep_ratio=0.95)
    assert r.method == "greedy"


@pytest.mark.slow
def test_smollm2_surprisal_and_h2o(smollm2, example):
    enc = encode_example(smollm2, example)
    before = smollm2.model.config._attn_implementation
    s = prune_baseline(smollm2, example, "surprisal")
    np.testing.assert_allclose(s.token_scores, _plain_logprobs(smollm2, enc), atol=1e-3)
    assert s.traces["joint_logprob"][0] == pytest.approx(sum(s.token_scores) + s.traces["answer_logprob"][0], rel=1e-6)
    h = prune_baseline(smollm2, example, "h2o", traces=False)
    assert smollm2.model.config._attn_implementation == before
    assert np.all(np.isfinite(h.token_scores)) and sorted(h.deletion_order) == list(range(h.n_tokens))
    np.testing.assert_allclose(attention_received(smollm2, enc, "sum"),
                               _expected_attention(smollm2, enc, ("sum",))["sum"], rtol=1e-4)
    print(s.show(), h.show(), sep="\n")
