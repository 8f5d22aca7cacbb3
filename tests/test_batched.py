"""Many chains in lockstep (core.batched, core.multiscorer) give what greedy_prune gives one at a time (fp32)."""

import numpy as np
import pytest
import torch
from conftest import tiny_pruner

from pruneprobe import Example, greedy_prune
from pruneprobe.core.batched import greedy_prune_many
from pruneprobe.core.exactness import make_scorer
from pruneprobe.core.multiscorer import MultiScorer
from pruneprobe.errors import PruneprobeError

WORDS = ("so she has 3 apples and 4 pears , then 3 + 4 = 7 fruits in total . "
         "next we double it : 7 * 2 = 14 .").split()
TIMING = ("elapsed_s", "tokens_computed", "reuse_across_steps", "resumed_check_max_diff")  # what may differ from one-at-a-time pruning


def example(n_words: int, i: int = 0) -> Example:
    reasoning = " ".join(WORDS[(i + w) % len(WORDS)] for w in range(n_words))
    question = "Tom has 3 apples and 4 pears. How many fruits, doubled?" + " Think." * i  # prompts differ too
    return Example(question, reasoning, "14", id=f"ex{i}")


EXAMPLES = [example(n, i) for i, n in enumerate((6, 2, 9, 4))]  # 4 chains of different lengths


def trajectory(result):
    """Per step, the kept token ids and their scores: two runs are compared by the sequences they visit
    (deleting either of two identical adjacent tokens gives the same sequence, an exact tie)."""
    alive, out = list(range(result.n_tokens)), []
    for step, idx in enumerate(result.deletion_order):
        out.append(([result.token_ids[i] for i in alive], result.candidate_scores[step, alive]))
        alive.remove(idx)
    return out


def assert_same_result(many, one, atol=1e-4):
    """Same chains visited with the same scores, traces and metadata; where the two runs part, the
    reference's scores of both choices tie (tokens out of the answer's reach under a short window)."""
    assert (many.example_id, many.n_tokens, many.n_steps) == (one.example_id, one.n_tokens, one.n_steps)
    assert many.candidate_scores.shape == one.candidate_scores.shape
    same = many.n_steps + 1  # states compared (traces: before any deletion, then after each)
    for step, ((ids_m, sc_m), (ids_o, sc_o)) in enumerate(zip(trajectory(many), trajectory(one))):
        if ids_m != ids_o:
            row, prev = one.candidate_scores[step - 1], (many.deletion_order[step - 1], one.deletion_order[step - 1])
            assert abs(row[prev[0]] - row[prev[1]]) < 1e-5, f"step {step}: orders part without a tie"
            same = step
            break
        assert np.array_equal(np.isnan(sc_m), np.isnan(sc_o))
        assert np.nanmax(np.abs(sc_m - sc_o)) < atol
    for key, values in one.traces.items():
        assert np.allclose(many.traces[key][:same], values[:same], atol=atol, rtol=1e-5, equal_nan=True), key
    assert {k: v for k, v in many.metadata.items() if k not in TIMING} == \
        {k: v for k, v in one.metadata.items() if k not in TIMING}
    assert (many.tokens, many.token_ids, many.example) == (one.tokens, one.token_ids, one.example)
    return same


def compare(pruner, examples, objective="joint", keep_ratio=None, scorer="fast", **kw):
    many = greedy_prune_many(pruner, examples, objective, keep_ratio, scorer=scorer, **kw)
    assert len(many) == len(examples)
    compared = [assert_same_result(result, greedy_prune(pruner, ex, objective, keep_ratio, scorer=scorer))
                for ex, result in zip(examples, many)]
    assert sum(compared) >= 0.75 * sum(r.n_steps + 1 for r in many)  # ties are rare: most steps compared
    return many


# sliding windows shorter than the chains: every layer (Mistral), alternating sliding / full layers (Gemma 3)
PRUNERS = {"llama": {}, "mistral": {"sliding_window": 6}, "gemma3": {"sliding_window": 5}}  # chains: 2-12 tokens


@pytest.mark.parametrize("objective", ["joint", "answer"])
@pytest.mark.parametrize("arch", sorted(PRUNERS))
def test_many_equals_one_at_a_time(one_thread, arch, objective):
    """Four chains of different lengths, three at a time (a finished chain's place is taken), small
    chunks so rows of several chains share forwards; pruned to the end."""
    pruner = tiny_pruner(arch, **PRUNERS[arch])
    many = compare(pruner, EXAMPLES, objective, batch_examples=3, batch_tokens=48)
    assert all(r.metadata["scorer"] == "fast" and r.metadata["scorer_check"] == "passed" for r in many)
    assert [r.n_steps for r in many] == [r.n_tokens for r in many]


def test_keep_ratio_and_max_steps(one_thread):
    pruner = tiny_pruner("llama")
    many = compare(pruner, EXAMPLES[:3], keep_ratio=0.6, batch_examples=2)
    assert [r.n_steps for r in many] == [r.n_tokens - round(0.6 * r.n_tokens + 1e-9) for r in many]
    short = greedy_prune_many(pruner, EXAMPLES[:2], max_steps=1)
    assert [r.n_steps for r in short] == [1, 1]
    assert greedy_prune_many(pruner, EXAMPLES[:2], keep_ratio=1.0)[0].n_steps == 0  # nothing to delete
    assert greedy_prune_many(pruner, []) == []


def test_naive_scorer_runs_one_at_a_time(one_thread):
    pruner = tiny_pruner("llama")
    results = compare(pruner, EXAMPLES[1:3], scorer="naive")
    assert {r.metadata["scorer"] for r in results} == {"naive"}


def test_multiscorer_matches_each_fast_scorer(one_thread):
    """Candidate log-probs of three chains scored together equal each chain's own; after a deletion
    (adopted from a kept suffix, or recomputed in the extra forward) the states equal a fresh forward."""
    pruner = tiny_pruner("gemma3", sliding_window=5)
    engines, fresh = [], []
    for n, ex in zip((9, 4, 12), EXAMPLES):
        g = torch.Generator().manual_seed(n)
        prefix, kept, suffix = (torch.randint(100, 20000, (m,), generator=g) for m in (n + 2, n, 3))
        for group in (engines, fresh):
            group.append(make_scorer(pruner, "fast", batch_tokens=40))
            group[-1].reset(prefix, kept, suffix)
    for keep in (True, False):
        packer = MultiScorer(pruner.model, batch_tokens=40, reuse_tokens=10_000 if keep else 0)
        got = packer.candidate_logprobs(engines)
        for lp, eng in zip(got, engines):
            assert torch.allclose(lp, eng.candidate_logprobs(), atol=1e-5, equal_nan=True)
        picks = [1, 0, engines[2].n_kept - 1]
        packer.delete(engines, picks)
        states = MultiScorer.state_logprobs(engines)
        for eng, ref, j, state in zip(engines, fresh, picks, states):
            ref.delete(j)
            ref.reset(ref.ids[: ref.p], ref.ids[ref.p : len(ref.ids) - ref.s], ref.ids[len(ref.ids) - ref.s :])
            assert torch.equal(eng.ids, ref.ids)
            assert torch.allclose(state, ref.state_logprobs(), atol=1e-5)
    answer = packer.candidate_logprobs(engines, answer_only=True)
    for lp, eng in zip(answer, engines):
        assert torch.allclose(lp, eng.candidate_logprobs(answer_only=True), atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_examples": 0}, "batch_examples must be a whole number >= 1"),
    ({"batch_examples": "8"}, "batch_examples must be a whole number >= 1"),
    ({"batch_examples": True}, "batch_examples must be a whole number >= 1"),
    ({"max_steps": -1}, "max_steps must be a whole number >= 0"),
    ({"keep_ratio": 1.5}, "keep_ratio must be in"),
    ({"objective": "nope"}, "unknown objective"),
    ({"scorer": "quick"}, "unknown scorer"),
    ({"scorer_check": "maybe"}, "unknown scorer check"),
    ({"max_hours": -1}, "max_hours must be a positive number"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(PruneprobeError, match=message):
        greedy_prune_many(tiny_pruner("llama"), EXAMPLES[:1], **kwargs)


def test_examples_must_be_a_list_of_examples():
    pruner = tiny_pruner("llama")
    with pytest.raises(PruneprobeError, match="examples must be a list of Example.*use greedy_prune"):
        greedy_prune_many(pruner, EXAMPLES[0])
    with pytest.raises(PruneprobeError, match="examples must all be Example objects, got str"):
        greedy_prune_many(pruner, [EXAMPLES[0], "a question"])
    with pytest.raises(PruneprobeError, match="empty reasoning"):
        greedy_prune_many(pruner, [EXAMPLES[0], Example("Q?", " ", "1", id="empty")])
