"""Attention capture with nnsight against transformers' own ``output_attentions=True`` (eager)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_pruner

from pruneprobe import Example, PruneprobeError
from pruneprobe.analysis.attention import (
    attention_features,
    attention_features_many,
    attention_module_paths,
    capture_attention,
    feature_columns,
    feature_layers,
    feature_name,
)
from pruneprobe.core.encoding import encode_example

pytest.importorskip("nnsight")


@pytest.fixture(scope="module")
def eager_pruner():
    """Tiny llama on eager attention, q/k scaled up so attention is far from uniform."""
    p = tiny_pruner("llama")
    p.model.set_attn_implementation("eager")
    with torch.no_grad():
        for layer in p.model.model.layers:
            layer.self_attn.q_proj.weight.mul_(8.0)
            layer.self_attn.k_proj.weight.mul_(8.0)
    return p


@pytest.fixture(scope="module")
def reference(eager_pruner):
    ex = Example(question="Natalia sold clips to 48 of her friends in April, and then she sold half as many "
                 "in May. How many clips did Natalia sell altogether?",
                 reasoning="In May she sold 48/2 = 24 clips. In total she sold 48 + 24 = 72 clips.",
                 answer="72", id="natalia")
    enc = encode_example(eager_pruner, ex)
    with torch.no_grad():
        out = eager_pruner.model(enc.input_ids[None], output_attentions=True, use_cache=False)
    return ex, enc, [a[0].double() for a in out.attentions], out.logits[0].double()


def test_capture_matches_output_attentions(eager_pruner, reference):
    _, enc, ref, _ = reference
    cap = capture_attention(eager_pruner, enc.input_ids)
    assert sorted(cap) == list(range(len(ref)))
    for layer, probs in cap.items():
        assert probs.shape == ref[layer].shape
        torch.testing.assert_close(probs.double(), ref[layer], atol=1e-6, rtol=0)
        assert probs.std() > 1e-3  # scaled q/k: far from uniform, so the comparison means something
    sub = capture_attention(eager_pruner, enc.input_ids, layers=[-1])
    assert list(sub) == [len(ref) - 1]


def test_rows_sum_to_one_and_causal(eager_pruner, reference):
    _, enc, _, _ = reference
    for probs in capture_attention(eager_pruner, enc.input_ids).values():
        torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:2]), atol=1e-5, rtol=0)
        assert probs.triu(1).abs().max() == 0


def direct_features(enc, ref, logits) -> dict[str, np.ndarray]:
    """Loop-by-loop computation of every feature from output_attentions."""
    rs, re_, s = enc.reasoning_start, enc.reasoning_end, len(enc.input_ids)
    out = {}
    for layer, a in enumerate(ref):
        a = a.numpy()
        for source in ("answer", "later", "rest"):
            per_head = np.zeros((a.shape[0], re_ - rs))
            for j, p in enumerate(range(rs, re_)):
                queries = {"answer": range(re_, s), "later": range(p + 1, re_), "rest": range(p + 1, s)}[source]
                queries = list(queries)
                per_head[:, j] = a[:, queries, p].mean(1) if queries else 0.0
            out[feature_name(layer, source, "mean")] = per_head.mean(0)
            out[feature_name(layer, source, "max")] = per_head.max(0)
    lp = torch.log_softmax(logits, -1).numpy()
    out["surprisal"] = np.array([-lp[p - 1, int(enc.input_ids[p])] for p in range(rs, re_)])
    out["position"] = np.arange(re_ - rs) / (re_ - rs)
    return out


def test_features_equal_direct_computation(eager_pruner, reference):
    ex, enc, ref, logits = reference
    feats = attention_features(eager_pruner, ex)
    assert len(feats) == enc.n_reasoning
    assert list(feats["index"]) == list(range(enc.n_reasoning))
    assert (feats["example_id"] == "natalia").all()
    assert "".join(feats["token"]) == ex.reasoning
    assert len(feature_columns(feats)) == 6 * len(ref) and feature_layers(feats) == list(range(len(ref)))
    for col, want in direct_features(enc, ref, logits).items():
        np.testing.assert_allclose(feats[col].to_numpy(), want, atol=1e-6, rtol=1e-6, err_msg=col)
    assert feats[feature_name(0, "later", "mean")].iloc[-1] == 0.0  # last token: no later reasoning
    # an EncodedExample works too, and a layer subset keeps only those columns
    one = attention_features(eager_pruner, enc, layers=[1], example_id="e")
    assert feature_layers(one) == [1] and (one["example_id"] == "e").all()
    np.testing.assert_allclose(one["attn_L1_rest_max"], feats["attn_L1_rest_max"], atol=1e-7)


def test_sdpa_raises_clear_error_and_ensure_eager_restores(example):
    p = tiny_pruner("llama")
    assert p.model.config._attn_implementation == "sdpa"
    with pytest.raises(PruneprobeError, match="attn_implementation='eager'"):
        attention_features(p, example)
    with pytest.raises(PruneprobeError, match="eager"):
        capture_attention(p, torch.arange(5))
    feats = attention_features(p, example, ensure_eager=True)
    assert p.model.config._attn_implementation == "sdpa"
    assert np.isfinite(feats[feature_columns(feats)].to_numpy()).all()


def test_many_and_other_architectures(example):
    p = tiny_pruner("gpt2")
    assert attention_module_paths(p.model)[0] == ("transformer.h.0.attn", 1)
    df = attention_features_many(p, [example, example], ensure_eager=True)
    assert len(df) == 2 * encode_example(p, example).n_reasoning
    assert p.model.config._attn_implementation == "sdpa"
    with pytest.raises(PruneprobeError, match="out of range"):
        capture_attention(p, torch.arange(5), layers=[7], ensure_eager=True)


@pytest.mark.slow
def test_real_model_features_match_output_attentions(smollm2, example):
    enc = encode_example(smollm2, example)
    feats = attention_features(smollm2, example, ensure_eager=True)
    assert smollm2.model.config._attn_implementation == "sdpa"  # restored
    smollm2.model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = smollm2.model(enc.input_ids[None], output_attentions=True, use_cache=False)
    finally:
        smollm2.model.set_attn_implementation("sdpa")
    want = direct_features(enc, [a[0].double() for a in out.attentions], out.logits[0].double())
    for col in ("attn_L0_answer_mean", "attn_L15_later_max", "attn_L29_rest_mean", "surprisal"):
        np.testing.assert_allclose(feats[col].to_numpy(), want[col], atol=1e-5, rtol=1e-4, err_msg=col)
