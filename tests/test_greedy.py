"""greedy_prune behaviour and its errors."""

import numpy as np
import pytest
import torch
from conftest import tiny_pruner

from pruneprobe import Example, PruneprobeError, greedy_prune
from pruneprobe.core.scoring import NaiveScorer


def test_full_run_records_everything(pruner, example):
    r = greedy_prune(pruner, example)
    assert r.n_steps == r.n_tokens and sorted(r.deletion_order) == list(range(r.n_tokens))
    assert sorted(r.pruning_rank.tolist()) == list(range(1, r.n_tokens + 1))
    assert r.candidate_scores.shape == (r.n_tokens, r.n_tokens)
    # step t scores exactly the tokens still kept: R - t + 1 finite values
    assert [int(np.isfinite(row).sum()) for row in r.candidate_scores] == list(range(r.n_tokens, 0, -1))
    # the deleted token is the best-scoring candidate of its step
    for step, idx in enumerate(r.deletion_order):
        assert r.candidate_scores[step, idx] == np.nanmax(r.candidate_scores[step])
    # the trace after each step is the chosen candidate's score
    assert np.allclose(r.traces["joint_logprob"][1:], np.nanmax(r.candidate_scores, axis=1), atol=1e-4)
    assert len(r.traces["joint_ppl"]) == r.n_steps + 1 and np.isnan(r.traces["reasoning_ppl"][-1])
    md = r.metadata
    assert md["weights_hash"] and md["template"] == "chat" and md["objective"] == "joint"


def test_first_step_matches_an_independent_forward(pruner, example):
    """Score of deleting token j == summed log-likelihood from a plain forward of that sequence."""
    from pruneprobe.core.encoding import encode_example

    enc = encode_example(pruner, example)
    r = greedy_prune(pruner, example, max_steps=1)
    for j in (0, 5, enc.n_reasoning - 1):
        ids = torch.cat([enc.input_ids[: enc.reasoning_start + j], enc.input_ids[enc.reasoning_start + j + 1 :]])
        with torch.no_grad():
            logp = torch.log_softmax(pruner.model(ids[None]).logits[0, :-1].float(), -1)
        lp = logp.gather(-1, ids[1:, None]).squeeze(-1)[enc.reasoning_start - 1 :]
        assert abs(lp.double().sum().item() - r.candidate_scores[0, j]) < 1e-3


def test_keep_ratio_stops_early(pruner, example):
    full = greedy_prune(pruner, example)
    r = greedy_prune(pruner, example, keep_ratio=0.7)
    assert r.n_steps == r.n_tokens - round(0.7 * r.n_tokens)
    assert r.deletion_order == full.deletion_order[: r.n_steps]
    assert r.pruned_text(0.7) == full.pruned_text(0.7)


def test_answer_objective_and_custom_callable(pruner, example):
    ans = greedy_prune(pruner, example, "answer", max_steps=2)
    assert ans.objective == "answer"
    assert np.allclose(ans.traces["answer_logprob"][1], np.nanmax(ans.candidate_scores[0]), atol=1e-4)

    def last_token(lp, n_reasoning):
        return lp[-1]

    custom = greedy_prune(pruner, example, last_token, max_steps=2)
    assert custom.objective == "last_token" and custom.n_steps == 2


def test_shortlist_strategy_scores_a_subset(pruner, example):
    r = greedy_prune(pruner, example, strategy="shortlist", shortlist=4, shortlist_fraction=1.0, window=0, refresh_every=5, max_steps=8)
    finite = np.isfinite(r.candidate_scores).sum(axis=1)
    assert finite[0] == r.n_tokens and finite[5] == r.n_tokens - 5  # full re-scores
    assert all(finite[s] == 4 for s in (1, 2, 3, 4, 6, 7))


def test_shortlist_shrinks_with_the_kept_tokens(pruner, example):
    """By default a third of the kept tokens, between shortlist // 2 and shortlist; every token
    is scored once no more than that remain."""
    r = greedy_prune(pruner, example, strategy="shortlist", shortlist=6, shortlist_first=None, refresh_every=100)
    finite = np.isfinite(r.candidate_scores).sum(axis=1).tolist()
    kept = [r.n_tokens - step for step in range(r.n_steps)]
    expected = [k if step == 0 or k <= min(6, max(3, -(-k // 3))) else min(6, max(3, -(-k // 3)))
                for step, k in enumerate(kept)]
    assert r.n_tokens > 18 and finite == expected
    assert len(set(finite[1:])) > 2  # 6, then fewer, then every token


def test_shortlist_settings_are_checked(pruner, example):
    with pytest.raises(PruneprobeError, match="shortlist_fraction"):
        greedy_prune(pruner, example, strategy="shortlist", shortlist_fraction=0)
    with pytest.raises(PruneprobeError, match="refresh_every"):
        greedy_prune(pruner, example, strategy="shortlist", refresh_every=0)
    with pytest.raises(PruneprobeError, match="window"):
        greedy_prune(pruner, example, strategy="shortlist", window=-1)
    with pytest.raises(PruneprobeError, match="reach"):
        greedy_prune(pruner, example, strategy="shortlist", reach=-2)
    with pytest.raises(PruneprobeError, match="shortlist_first"):
        greedy_prune(pruner, example, strategy="shortlist", shortlist_first=0)
    with pytest.raises(PruneprobeError, match="margin"):
        greedy_prune(pruner, example, strategy="shortlist", margin=float("nan"))


def test_shortlist_without_refresh_scores_everything_only_first(pruner, example):
    r = greedy_prune(pruner, example, strategy="shortlist", shortlist=4, shortlist_fraction=1.0, refresh_every=None, max_steps=12)
    finite = np.isfinite(r.candidate_scores).sum(axis=1).tolist()
    assert finite == [r.n_tokens] + [4] * 11


@pytest.mark.parametrize("window,reach,first,margin", [(0, 4, None, 0), (2, None, None, 0), (2, 1, None, 0), (3, 2, None, 0),
                                                      (2, 4, 2, 0.0), (2, 4, 2, 0.05), (0, 4, 1, 0.3)])
def test_shortlist_rescores_the_best_estimates(pruner, example, window, reach, first, margin):
    """Replayed with the naive scorer as reference: after a full first step, each step scores
    exactly the ``shortlist`` tokens with the best estimate (``first`` of them, then those of the
    rest within ``margin`` of the best exact score so far) and deletes the best of them. The
    estimate: exact log-probs up to the cut, and ``window`` tokens past it for a candidate with a
    deletion since it was last scored and fewer than ``reach`` kept tokens between the two; then
    each kept token's current log-prob plus the change the candidate's deletion made to it when
    last scored."""
    from pruneprobe.core.encoding import encode_example

    size = 3 if first is None else 5
    r = greedy_prune(pruner, example, strategy="shortlist", shortlist=size, shortlist_fraction=1.0, window=window,
                     reach=reach, refresh_every=100, max_steps=8, shortlist_first=first, margin=margin)
    enc = encode_example(pruner, example)
    ref = NaiveScorer(pruner.model)
    ref.reset(enc.prefix_ids, enc.reasoning_ids, enc.suffix_ids)
    suffix_ids = [r.n_tokens + i for i in range(len(enc.suffix_ids))]
    effect, alive = {}, list(range(r.n_tokens))  # effect[(j, u)]: change in token u's log-prob when j goes
    scored_at, windowed, extended = {}, 0, []
    for step in range(r.n_steps):
        exact, state = ref.candidate_logprobs(), ref.state_logprobs()
        local = {w: ref.candidate_logprobs(max_suffix=w) for w in {0, window}}
        targets = alive[1:] + suffix_ids  # token at each position of a candidate vector past the cut
        estimate = {}
        for c, j in enumerate(alive):
            changed = any(t >= scored_at.get(j, step) and len([a for a in alive if min(g, j) < a < max(g, j)]) < (reach or 10**9)
                          for t, g in enumerate(r.deletion_order[:step]))
            w = window if changed else 0
            windowed += w > 0 and step > 0
            estimate[j] = local[w][c].double().sum().item() + sum(
                effect.get((j, targets[v]), 0.0) for v in range(c + w + 1, len(targets)))
        scored = set(np.flatnonzero(np.isfinite(r.candidate_scores[step])).tolist())
        ranked = sorted(alive, key=lambda i: -estimate[i])[:size]
        expected = set(alive if step == 0 else ranked[:first])
        if step > 0 and first is not None:
            best = max(exact[alive.index(j)].double().sum().item() for j in expected)
            more = {j for j in ranked[first:] if estimate[j] >= best - margin}
            extended.append(len(more) / (size - first))
            expected |= more
        assert scored == expected, step
        for c, j in enumerate(alive):
            if j in scored:
                assert r.candidate_scores[step, j] == pytest.approx(exact[c].double().sum().item(), abs=1e-3)
                effect.update({(j, targets[v]): (exact[c, v] - state[v + 1]).item() for v in range(c, len(targets))})
                scored_at[j] = step
        assert r.deletion_order[step] == max(scored, key=lambda i: (r.candidate_scores[step, i], -i))
        cut = alive.index(r.deletion_order[step])
        alive.pop(cut)
        ref.delete(cut)
    if window:  # the rule picked some candidates for a window and, with a reach, not all of them
        assert windowed > 0 and (reach is None or windowed < sum(r.n_tokens - s for s in range(1, r.n_steps)))
    if first is not None:  # some steps scored more than the first round, and some not all of the rest
        assert max(extended) > 0 and min(extended) < 1, extended


def test_shortlist_with_a_window_past_the_end_is_exact(pruner, example):
    """When the window covers every suffix the estimates are exact, so the shortlist holds the best."""
    exact = greedy_prune(pruner, example, max_steps=6)
    r = greedy_prune(pruner, example, strategy="shortlist", shortlist=2, shortlist_fraction=1.0, window=10_000, reach=None, refresh_every=100, max_steps=6)
    assert r.deletion_order == exact.deletion_order
    assert np.isfinite(r.candidate_scores[1:]).sum(axis=1).tolist() == [2] * 5


def test_multi_strategy_deletes_the_best_few_of_one_scoring(pruner, example):
    from pruneprobe.core.encoding import encode_example

    exact = greedy_prune(pruner, example, max_steps=3)
    r = greedy_prune(pruner, example, strategy="multi", multi_fraction=0.25)
    k0 = r.n_tokens
    m = int(0.25 * k0)
    assert m >= 2 and sorted(r.deletion_order) == list(range(k0))
    row0 = exact.candidate_scores[0]
    assert r.deletion_order[:m] == np.argsort(-row0, kind="stable")[:m].tolist()  # best first
    finite = np.isfinite(r.candidate_scores).sum(axis=1)
    assert finite[0] == k0 and all(finite[1:m] == 0) and finite[m] == k0 - m  # one scoring per batch
    scored = np.flatnonzero(finite)  # every scoring scores every kept token (no shortlist)
    assert all(finite[s] == k0 - s for s in scored) and len(scored) < k0
    # traces follow the sequence actually deleted: an independent forward after the first m deletions
    enc = encode_example(pruner, example)
    keep = [i for i in range(k0) if i not in set(r.deletion_order[:m])]
    ids = torch.cat([enc.prefix_ids, enc.reasoning_ids[keep], enc.suffix_ids])
    with torch.no_grad():
        logp = torch.log_softmax(pruner.model(ids[None]).logits[0, :-1].float(), -1)
    lp = logp.gather(-1, ids[1:, None]).squeeze(-1)[len(enc.prefix_ids) - 1:]
    assert abs(lp.double().sum().item() - r.traces["joint_logprob"][m]) < 1e-3
    assert r.traces["joint_logprob"][1] == pytest.approx(exact.traces["joint_logprob"][1], abs=1e-4)
    tiny = greedy_prune(pruner, example, strategy="multi", multi_fraction=0.01, max_steps=3)
    assert tiny.deletion_order == exact.deletion_order  # one deletion per scoring: exact


@pytest.mark.parametrize("kwargs, message", [
    ({"multi_fraction": 1.0}, "multi_fraction must be in"),
    ({"objective": "nope"}, "unknown objective"),
    ({"keep_ratio": 0}, "keep_ratio must be in"),
    ({"keep_ratio": 1.2}, "keep_ratio must be in"),
    ({"strategy": "fastest"}, "unknown strategy"),
    ({"scorer": "magic"}, "unknown scorer"),
])
def test_bad_arguments(pruner, example, kwargs, message):
    with pytest.raises(PruneprobeError, match=message):
        greedy_prune(pruner, example, **kwargs)


def test_nan_scores_are_reported(pruner, example, monkeypatch):
    original = NaiveScorer.candidate_logprobs

    def poisoned(self, candidates=None):
        out = original(self, candidates)
        out[1, 3] = float("nan")
        return out

    monkeypatch.setattr(NaiveScorer, "candidate_logprobs", poisoned)
    with pytest.raises(PruneprobeError, match="non-finite score .* at step 1"):
        greedy_prune(pruner, example, scorer="naive")


def test_model_tokenizer_pair_accepted(example):
    p = tiny_pruner("qwen2")
    r = greedy_prune((p.model, p.tokenizer), example, max_steps=1)
    assert r.n_steps == 1
    with pytest.raises(PruneprobeError, match="pruner must be"):
        greedy_prune("not a model", example)


@pytest.mark.slow
def test_embedded_pruner_keeps_the_math(smollm2):
    """The real pruner deletes words before arithmetic, and loses far less than random deletion."""
    from pruneprobe import prune_baseline

    ex = Example("Tom has 3 apples and buys 4 more. How many apples?",
                 "Tom starts with 3 apples. He buys 4 more, so 3 + 4 = 7 apples.", "7", id="tom")
    r = greedy_prune(smollm2, ex, keep_ratio=0.7)
    assert "3 + 4 = 7" in r.pruned_text(0.7)
    rand = prune_baseline(smollm2, ex, "random", seed=0)
    k = r.n_steps
    assert r.traces["joint_logprob"][k] > rand.traces["joint_logprob"][k] + 10  # nats


def test_shortlist_under_the_answer_objective(pruner, example):
    """Only answer log-probs are computed there; the estimate then rests on the stale effects."""
    r = greedy_prune(pruner, example, "answer", strategy="shortlist", shortlist=3, refresh_every=100, max_steps=4)
    exact_first = greedy_prune(pruner, example, "answer", max_steps=1)
    assert r.deletion_order[0] == exact_first.deletion_order[0]
    assert np.isfinite(r.candidate_scores[1:]).sum(axis=1).tolist() == [3, 3, 3]
    for step, idx in enumerate(r.deletion_order):
        assert r.candidate_scores[step, idx] == np.nanmax(r.candidate_scores[step])


@pytest.mark.parametrize("arch_name", ["llama", "gemma3", "gpt2"])
def test_neighbouring_equal_tokens_tie_to_the_earlier(arch_name):
    """Deleting either of two neighbouring equal tokens leaves one sequence: the earlier is deleted, with
    the fast scorer and the naive one alike, and both record the same score for the two."""
    pruner = tiny_pruner(arch_name)
    example = Example(question="What is 11 + 11?", answer="22",
                      reasoning="11  +  11 = 22.  So so the the answer is 22 22.")
    ids = pruner.tokenizer(example.reasoning, add_special_tokens=False)["input_ids"]
    assert any(a == b for a, b in zip(ids, ids[1:]))  # the chain has neighbouring equal tokens
    orders = []
    for scorer in ("fast", "naive"):
        result = greedy_prune(pruner, example, "joint", scorer=scorer, max_hours=None)
        kept = list(range(len(result.token_ids)))
        for step, deleted in enumerate(result.deletion_order):
            at = kept.index(deleted)
            left = kept[at - 1] if at > 0 else None
            if left is not None and result.token_ids[left] == result.token_ids[deleted]:
                pytest.fail(f"{scorer}: step {step} deleted token {deleted}, not its equal left neighbour {left}")
            for a, b in zip(kept, kept[1:]):
                if result.token_ids[a] == result.token_ids[b]:
                    assert result.candidate_scores[step, a] == result.candidate_scores[step, b]
            kept.pop(at)
        orders.append(result.deletion_order)
    assert orders[0] == orders[1]
