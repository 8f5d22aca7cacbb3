"""Cross-step reuse (``core/resume.py``): the fast scorer with ``reuse_across_steps`` equals the naive
reference, pruned to the end, and computes fewer tokens than without it."""

import numpy as np
import pytest
import torch
from conftest import tiny_model, tiny_pruner
from test_fast_exact import assert_same_pruning, chain, example_with, trajectory

from pruneprobe import greedy_prune
from pruneprobe.core.encoding import encode_example
from pruneprobe.core.fastscore import FastScorer
from pruneprobe.core.scoring import NaiveScorer

pytestmark = pytest.mark.usefixtures("one_thread")


def pruned(pruner, ex, objective="joint", **kw):
    return greedy_prune(pruner, ex, objective, batch_tokens=64, **kw)


@pytest.mark.parametrize("objective", ["joint", "answer"])
@pytest.mark.parametrize("arch_", ["llama", "mistral", "gemma3", "gpt2"])
def test_reuse_equals_naive_pruned_to_the_end(arch_, objective):
    """Mistral (every layer windowed) and Gemma 3 (sliding and full layers) with a window of 8, shorter
    than the chain: kept keys that fall out of the window stay masked."""
    pruner = tiny_pruner(arch_, sliding_window=8)
    ex = example_with(chain(16))
    reuse = pruned(pruner, ex, objective, reuse_across_steps=True)
    assert reuse.metadata["scorer"] == "fast" and reuse.metadata["reuse_across_steps"] is True
    assert_same_pruning(reuse, pruned(pruner, ex, objective, scorer="naive"))
    assert reuse.metadata["tokens_computed"] < pruned(pruner, ex, objective, reuse_across_steps=False).metadata["tokens_computed"]


def expected_saving(order: list[int], n_prefix: int, n_reasoning: int, n_suffix: int) -> int:
    """Tokens reuse saves under the joint objective with every region kept: after a deletion at ``d``,
    each candidate ``i < d - 1`` keeps its positions ``i .. d - 2`` (``d - 1 - i`` tokens) when the
    rows then still have a token to recompute."""
    alive, saving, m = list(range(n_reasoning)), 0, None
    for gone in order:
        n = n_prefix + len(alive) + n_suffix
        if m is not None and n - 2 - m >= 1:
            saving += sum(m - (n_prefix + j) for j in range(len(alive)) if n_prefix + j < m)
        m = n_prefix + alive.index(gone) - 1
        alive.remove(gone)
    return saving


def test_tokens_drop_by_the_kept_positions_on_a_30_token_chain():
    """What reuse saves, measured by the scorers, is exactly the kept positions the deletion order allows."""
    pruner = tiny_pruner("llama")
    ex = example_with(chain(24))
    enc = encode_example(pruner, ex)
    assert 28 <= enc.n_reasoning <= 34
    off = pruned(pruner, ex, reuse_across_steps=False)
    on = pruned(pruner, ex, reuse_across_steps=True)
    assert_same_pruning(on, off)
    saved = off.metadata["tokens_computed"] - on.metadata["tokens_computed"]
    assert saved == expected_saving(on.deletion_order, enc.reasoning_start, enc.n_reasoning, len(enc.suffix_ids))
    assert on.metadata["tokens_computed"] < 0.9 * off.metadata["tokens_computed"]


@pytest.mark.parametrize("objective", ["joint", "answer"])
def test_memory_bound_keeps_scores_exact(objective):
    """A tiny ``max_kept_tokens`` keeps only the leftmost regions; orders and scores do not change, the
    store stays within the bound, and the work lies between no reuse and unbounded reuse."""
    pruner = tiny_pruner("mistral", sliding_window=8)
    enc = encode_example(pruner, example_with(chain(14)))
    answer_only = objective == "answer"
    runs = {}
    for bound in (None, 0, 30, 10**6):
        fast = FastScorer(pruner.model, batch_tokens=64, lm_head_everywhere=not answer_only,
                          reuse_across_steps=bound is not None, max_kept_tokens=bound or 0)
        naive = NaiveScorer(pruner.model)
        for s in (fast, naive):
            s.reset(enc.prefix_ids, enc.reasoning_ids, enc.suffix_ids)
        while fast.n_kept:
            lf, ln = fast.candidate_logprobs(), naive.candidate_logprobs()
            k = fast.n_kept
            if answer_only:
                lf, ln = lf[:, k - 1 :], ln[:, k - 1 :]
            assert torch.allclose(lf, ln, atol=1e-3, equal_nan=True)
            assert torch.allclose(fast.state_logprobs(), naive.state_logprobs(), atol=1e-3)
            j = int(ln.nansum(-1).argmax())
            fast.delete(j)
            naive.delete(j)
        runs[bound] = fast
    per_token = sum(2 * layer.shape[1] * layer.shape[-1] * 4 for layer in runs[None].keys) + 32 * 4
    assert 0 < runs[30].peak_kept_bytes <= 2 * (30 + len(enc.input_ids)) * per_token
    assert runs[0].peak_kept_bytes == 0 and runs[0].tokens_computed == runs[None].tokens_computed
    assert runs[10**6].tokens_computed < runs[30].tokens_computed < runs[None].tokens_computed


@pytest.mark.parametrize("arch_", ["llama", "gemma3", "phi3"])
@pytest.mark.parametrize("objective", ["joint", "answer"])
def test_scorer_with_reuse_equals_naive_after_every_kind_of_deletion(arch_, objective):
    """Random ids, a window of 8: deletions left and right of the last, repeated at one place, at the
    first and last kept token; a partial and a windowed scoring in between leave the store alone, and two
    deletions without a full scoring between them shorten it twice."""
    model = tiny_model(arch_, vocab_size=512, sliding_window=8)
    g = torch.Generator().manual_seed(2)
    prefix, kept, suffix = (torch.randint(0, 512, (n,), generator=g) for n in (12, 40, 6))
    answer_only = objective == "answer"
    fast = FastScorer(model, batch_tokens=64, lm_head_everywhere=not answer_only, reuse_across_steps=True)
    naive = NaiveScorer(model, batch_tokens=8192)
    for s in (fast, naive):
        s.reset(prefix, kept, suffix)
    cut = slice(None) if not answer_only else slice(-len(suffix), None)
    for step, j in enumerate((30, 36, 20, 20, 1, 33, 0, 25, 10, 28)):
        if step == 4:  # a shortlist-like partial call and a windowed estimate: the store is not rebuilt
            assert torch.allclose(fast.candidate_logprobs([2, 5])[:, cut], naive.candidate_logprobs([2, 5])[:, cut],
                                  atol=1e-3, equal_nan=True)
            fast.candidate_logprobs(max_suffix=2)
        elif step != 7:  # step 7: two deletions in a row (Multi)
            lf, ln = fast.candidate_logprobs(), naive.candidate_logprobs()
            assert torch.allclose(lf[:, cut], ln[:, cut], atol=1e-3, equal_nan=True)
        assert torch.allclose(fast.state_logprobs(), naive.state_logprobs(), atol=1e-3)
        fast.delete(j)
        naive.delete(j)
    assert torch.allclose(fast.candidate_logprobs()[:, cut], naive.candidate_logprobs()[:, cut], atol=1e-3, equal_nan=True)


def test_strategies_with_reuse_match_without():
    """Shortlist (partial calls between full ones) and Multi (several deletions per scoring) prune the
    same with and without reuse."""
    pruner = tiny_pruner("qwen3", sliding_window=8)
    ex = example_with(chain(14))
    for kw in ({"strategy": "shortlist", "refresh_every": 4}, {"strategy": "multi", "multi_fraction": 0.2}):
        on, off = pruned(pruner, ex, reuse_across_steps=True, **kw), pruned(pruner, ex, reuse_across_steps=False, **kw)
        for (ids_on, sc_on), (ids_off, sc_off) in zip(trajectory(on), trajectory(off)):  # Multi: NaN rows
            assert ids_on == ids_off and np.allclose(sc_on, sc_off, atol=1e-3, equal_nan=True)
        assert np.allclose(on.traces["joint_logprob"], off.traces["joint_logprob"], atol=1e-3)


def test_self_check_covers_the_resumed_rows_when_asked(monkeypatch):
    """``check_fast_scorer(reuse_across_steps=True)`` (the up-front option) scores a resumed candidate: a
    resumed row wrong by 0.01 nats fails it."""
    from pruneprobe.core.exactness import check_fast_scorer

    model = tiny_model("mistral", vocab_size=512, sliding_window=4096)
    assert check_fast_scorer(model, reuse_across_steps=True).passed
    resumed = break_resumed_rows(monkeypatch)
    assert check_fast_scorer(model).passed and not resumed  # without reuse the check resumes nothing
    check = check_fast_scorer(model, reuse_across_steps=True)
    assert resumed == [0] and check.status == "failed" and 0.009 < check.max_diff < 0.011
    assert check.covers_reuse


def test_make_scorer_checks_resumed_rows_on_the_chain_not_up_front(monkeypatch):
    """The cached up-front check stays at three forwards with reuse on; the resumed rows are checked
    on the real chain instead, once per chain, and their difference lands in the metadata."""
    from pruneprobe.core import exactness

    calls = []
    real = exactness.check_fast_scorer
    monkeypatch.setattr(exactness, "check_fast_scorer",
                        lambda model, **kw: calls.append(kw.get("reuse_across_steps", False)) or real(model, **kw))
    pruner = tiny_pruner("llama")
    engine = exactness.make_scorer(pruner, "fast", reuse_across_steps=True)
    assert engine.reuse_across_steps and not engine.check.covers_reuse and engine.resumed_check.max_diff is None
    assert exactness.make_scorer(pruner, "fast", reuse_across_steps=True, check="off").resumed_check is None
    assert exactness.make_scorer(pruner, "fast", reuse_across_steps=False).resumed_check is None
    result = pruned(pruner, example_with(chain(8)), reuse_across_steps=True)
    assert 0 <= result.metadata["resumed_check_max_diff"] < 1e-4 and result.metadata["reuse_across_steps"] is True
    assert pruned(pruner, example_with(chain(8)), reuse_across_steps=False).metadata["resumed_check_max_diff"] is None
    assert calls == [False]


def break_resumed_rows(monkeypatch, by: float = 0.01) -> list:
    """Make ``score_resumed`` add ``by`` to every resumed row's last log-prob; returns the rows it resumed."""
    from pruneprobe.core import fastscore, resume

    original, resumed = resume.score_resumed, []

    def broken(scorer, plan, out, answer_only):
        original(scorer, plan, out, answer_only)
        resumed.extend(plan.resumed)
        out[plan.resumed, -1] += by

    monkeypatch.setattr(fastscore, "score_resumed", broken)
    return resumed


@pytest.mark.parametrize("objective", ["joint", "answer"])
def test_a_broken_resumed_row_is_caught_on_the_chain_and_reuse_turned_off(monkeypatch, caplog, objective):
    """A resumed row wrong by 0.01 nats (the last answer token) is caught at its first use: a warning
    naming the model type, that scoring redone without reuse, the pruning identical to the naive one,
    and the pruner's later scorers do not reuse."""
    from pruneprobe.core.exactness import make_scorer

    pruner = tiny_pruner("mistral", sliding_window=8)
    ex = example_with(chain(12))
    resumed = break_resumed_rows(monkeypatch)
    with caplog.at_level("WARNING", logger="pruneprobe.core.exactness"):
        result = pruned(pruner, ex, objective, reuse_across_steps=True)
    assert resumed, "the chain never resumed a candidate"
    assert "resumed across steps disagree" in caplog.text and "'mistral'" in caplog.text
    assert result.metadata["reuse_across_steps"] is False
    assert 0.009 < result.metadata["resumed_check_max_diff"] < 0.011
    assert_same_pruning(result, pruned(pruner, ex, objective, scorer="naive"))
    assert pruner.scorer_check.reuse_failed and pruner.scorer_check.passed
    assert not make_scorer(pruner, "fast", reuse_across_steps=True).reuse_across_steps


def test_a_broken_resumed_row_raises_under_scorer_check_raise(monkeypatch):
    from pruneprobe.errors import PruneprobeError

    break_resumed_rows(monkeypatch, by=0.5)
    with pytest.raises(PruneprobeError, match="resumed across steps.*'llama'.*0.5"):
        pruned(tiny_pruner("llama"), example_with(chain(8)), reuse_across_steps=True, scorer_check="raise")


def test_default_is_on_for_a_cpu_and_the_estimate_counts_it(pruner, example):
    """``greedy_prune`` reuses states across steps on a CPU unless told; the cost estimate counts the
    saving (its ``k(k-1)/6`` model within the bounds ``tests/test_cost.py`` holds the count to)."""
    from pruneprobe.core.cost import estimate_greedy_cost
    from pruneprobe.core.exactness import make_scorer

    assert make_scorer(pruner, "fast").reuse_across_steps and not make_scorer(pruner, "fast", reuse_across_steps=False).reuse_across_steps
    pruner.info["tokens_per_s"] = 1e6
    for flag in (True, False):
        done = greedy_prune(pruner, example, reuse_across_steps=flag).metadata["tokens_computed"]
        estimate = estimate_greedy_cost(pruner, example, reuse_across_steps=flag).token_forwards
        assert 0.8 < estimate / done < 1.25
    assert estimate_greedy_cost(pruner, example).token_forwards < estimate
