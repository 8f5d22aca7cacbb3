"""The fast scorer equals the naive reference (fp32, |delta| < 1e-3, same deletion order)."""

import numpy as np
import pytest
import torch
from conftest import MORE_ARCHS, tiny_pruner

from pruneprobe import Example, greedy_prune
from pruneprobe.core.exactness import make_scorer
from pruneprobe.core.fastscore import FastScorer
from pruneprobe.core.scoring import NaiveScorer

WORDS = ("so she has 3 apples and 4 pears , then 3 + 4 = 7 fruits in total . "
         "next we double it : 7 * 2 = 14 . ").split()


def chain(n_words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n_words))


def example_with(reasoning: str) -> Example:
    return Example("Tom has 3 apples and 4 pears. How many fruits, doubled?", reasoning, "14", id="t")


def trajectory(result):
    """Per step: the kept token ids before the deletion, and the candidate scores in kept order.

    Deleting either of two identical adjacent tokens gives the same sequence (an exact tie), so
    two runs are compared by the sequences they visit, not by which of the twins they dropped.
    """
    alive = list(range(result.n_tokens))
    out = []
    for step, idx in enumerate(result.deletion_order):
        ids = [result.token_ids[i] for i in alive]
        out.append((ids, result.candidate_scores[step, alive]))
        alive.remove(idx)
    return out


def assert_same_pruning(fast, naive, atol=1e-3):
    assert fast.n_steps == naive.n_steps
    for (ids_f, sc_f), (ids_n, sc_n) in zip(trajectory(fast), trajectory(naive)):
        assert ids_f == ids_n
        assert np.array_equal(np.isnan(sc_f), np.isnan(sc_n))
        assert np.nanmax(np.abs(sc_f - sc_n)) < atol
    for key in ("joint_logprob", "answer_logprob"):
        assert np.allclose(fast.traces[key], naive.traces[key], atol=atol)


def compare(pruner, ex, objective, fast_tokens=64, naive_tokens=4096):
    fast = greedy_prune(pruner, ex, objective, scorer="fast", batch_tokens=fast_tokens)
    naive = greedy_prune(pruner, ex, objective, scorer="naive", batch_tokens=naive_tokens)
    assert fast.metadata["scorer"] == "fast" and naive.metadata["scorer"] == "naive"  # no silent fallback
    assert_same_pruning(fast, naive)
    return fast, naive


@pytest.mark.parametrize("objective", ["joint", "answer"])
def test_fast_equals_naive_every_architecture(arch, objective):
    compare(tiny_pruner(arch), example_with(chain(14)), objective)


@pytest.mark.parametrize("n_words", [1, 2])
def test_fast_equals_naive_one_and_two_tokens(arch, n_words):
    ex = example_with(["7", "7 ."][n_words - 1])
    fast, naive = compare(tiny_pruner(arch), ex, "joint")
    assert fast.n_tokens == n_words and fast.n_steps == n_words


def test_gemma3_sliding_window_respected():
    """A window of 16 over a ~100-token sequence: packed masks must apply it like the model does."""
    pruner = tiny_pruner("gemma3", sliding_window=16)
    compare(pruner, example_with(chain(20)), "joint", fast_tokens=50)
    # and the window matters: a full-attention twin with the same weights scores differently
    twin = tiny_pruner("gemma3", sliding_window=4096)
    a = greedy_prune(pruner, example_with(chain(6)), max_steps=1).candidate_scores
    b = greedy_prune(twin, example_with(chain(6)), max_steps=1).candidate_scores
    assert np.nanmax(np.abs(a - b)) > 1e-3


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("objective", ["joint", "answer"])
@pytest.mark.parametrize("more_arch", MORE_ARCHS)
def test_fast_equals_naive_more_attention_layouts(more_arch, objective):
    """Sliding windows on every layer (Mistral, Phi-3: no ``layer_types``), one KV head, Gemma 2
    softcapping with alternating sliding / full layers, Qwen 3 q/k norms with per-layer windows:
    pruned to the end, with a window of 8, shorter than the chain and the ~60-token sequence."""
    compare(tiny_pruner(more_arch, sliding_window=8), example_with(chain(10)), objective)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("arch_", ["mistral", "phi3"])
def test_window_without_layer_types_respected(arch_):
    """Mistral and Phi-3 set ``sliding_window`` alone; the packed masks must apply it on every layer
    (ignoring it cost ~5-7 nats here). Checked fresh and after adopted and recomputed deletions."""
    from conftest import tiny_model

    model = tiny_model(arch_, vocab_size=512, sliding_window=8)
    g = torch.Generator().manual_seed(1)
    prefix, kept, suffix = (torch.randint(0, 512, (n,), generator=g) for n in (6, 30, 4))
    fast, naive = FastScorer(model, batch_tokens=64), NaiveScorer(model)
    for s in (fast, naive):
        s.reset(prefix, kept, suffix)
    for j in (10, 3, None):
        lf, ln = fast.candidate_logprobs(), naive.candidate_logprobs()
        assert torch.allclose(lf, ln, atol=1e-3)
        assert torch.allclose(fast.state_logprobs(), naive.state_logprobs(), atol=1e-3)
        if j is not None:
            fast.delete(j)
            naive.delete(j)
    # and the window matters: the same weights with full attention score differently
    twin = tiny_model(arch_, vocab_size=512, sliding_window=4096)
    full = NaiveScorer(twin)
    full.reset(prefix, naive.kept, suffix)
    assert (full.candidate_logprobs() - ln).abs().max() > 0.1


@pytest.mark.parametrize("objective", ["joint", "answer"])
def test_scores_equal_on_300_token_chain(arch, objective):
    """300 reasoning tokens (random ids, small vocab): candidate scores agree at the start, and
    again after deletions at the start, middle and end of the chain."""
    from conftest import tiny_model

    model = tiny_model(arch, vocab_size=512, sliding_window=64)
    g = torch.Generator().manual_seed(1)
    prefix, kept, suffix = (torch.randint(0, 512, (n,), generator=g) for n in (20, 300, 8))
    answer_only = objective == "answer"
    fast = FastScorer(model, batch_tokens=2048, lm_head_everywhere=not answer_only)
    naive = NaiveScorer(model, batch_tokens=8192)
    for s in (fast, naive):
        s.reset(prefix, kept, suffix)
    for j in (0, 150, 297, None):
        lf, ln = fast.candidate_logprobs(), naive.candidate_logprobs()
        if answer_only:
            lf, ln = lf[:, fast.n_kept - 1 :], ln[:, naive.n_kept - 1 :]
        assert torch.allclose(lf, ln, atol=1e-3)
        assert torch.allclose(fast.state_logprobs(), naive.state_logprobs(), atol=1e-3)
        if j is not None:
            fast.delete(j)
            naive.delete(j)


def test_batched_and_one_at_a_time_agree():
    pruner = tiny_pruner("llama")
    ex = example_with(chain(10))
    one = greedy_prune(pruner, ex, scorer="fast", batch_tokens=1)  # every candidate alone
    many = greedy_prune(pruner, ex, scorer="fast", batch_tokens=100000)
    naive_one = greedy_prune(pruner, ex, scorer="naive", batch_tokens=1)
    assert_same_pruning(one, many)
    assert_same_pruning(one, naive_one)


def test_unknown_architecture_is_checked_not_refused():
    """No list of known architectures: an unknown model type gets the fast scorer once its
    self-check against the naive reference passes."""
    pruner = tiny_pruner("llama")
    pruner.model.config.model_type = "mystery"
    scorer = make_scorer(pruner, "fast")
    assert isinstance(scorer, FastScorer) and scorer.check.passed


def test_fast_scorer_recomputes_fewer_tokens():
    pruner = tiny_pruner("llama")
    ex = example_with(chain(20))
    fast = greedy_prune(pruner, ex, scorer="fast", max_steps=3)
    naive = greedy_prune(pruner, ex, scorer="naive", max_steps=3)
    assert fast.metadata["tokens_computed"] < naive.metadata["tokens_computed"] / 2


@pytest.mark.slow
def test_embedded_smollm2_fast_equals_naive(smollm2):
    ex = example_with("3 + 4 = 7, and 7 * 2 = 14.")
    fast, naive = compare(smollm2, ex, "joint", fast_tokens=256)
    assert fast.n_steps == fast.n_tokens > 10


def test_fold_rows_pairs_long_with_short_suffixes():
    from pruneprobe.core.fastscore import fold_rows

    lengths = [40, 39, 38, 37, 36, 35, 34]  # consecutive candidates: suffixes one token apart
    rows = fold_rows(lengths)
    assert sorted(s for row in rows for s in row) == list(range(7)) and all(len(r) <= 2 for r in rows)
    assert {sum(lengths[s] for s in row) for row in rows if len(row) == 2} == {74}  # no padding
    assert fold_rows([5]) == [[0]] and fold_rows([]) == []


@pytest.mark.parametrize("window", [0, 3])
@pytest.mark.parametrize("objective", ["joint", "answer"])
def test_windowed_estimate_equals_the_naive_reference(arch, objective, window):
    """``max_suffix`` recomputes only ``window`` tokens after each cut; the naive scorer builds the
    same estimate from full rows. Checked at the start and after deletions; a window past the end is exact."""
    pruner = tiny_pruner(arch)
    from pruneprobe.core.encoding import encode_example

    enc = encode_example(pruner, example_with(chain(14)))
    answer_only = objective == "answer"
    fast = FastScorer(pruner.model, batch_tokens=40, lm_head_everywhere=not answer_only)
    naive = NaiveScorer(pruner.model)
    for s in (fast, naive):
        s.reset(enc.prefix_ids, enc.reasoning_ids, enc.suffix_ids)
    for j in (3, 0, None):
        k = fast.n_kept
        lf, ln = fast.candidate_logprobs(max_suffix=window), naive.candidate_logprobs(max_suffix=window)
        exact = naive.candidate_logprobs()
        if answer_only:
            lf, ln, exact = lf[:, k - 1 :], ln[:, k - 1 :], exact[:, k - 1 :]
        assert torch.allclose(lf, ln, atol=1e-3)
        whole = fast.candidate_logprobs(max_suffix=len(enc.input_ids))
        assert torch.allclose(whole[:, k - 1 :] if answer_only else whole, exact, atol=1e-3)
        if not answer_only:  # the estimate differs from exact, and only past each cut's window
            state = naive.state_logprobs()
            for c in range(k):
                far = slice(c + window + 1, None)
                assert torch.equal(ln[c, far], state[1:][far]) and torch.equal(ln[c, : c + window + 1], exact[c, : c + window + 1])
            assert not torch.allclose(lf, exact, atol=1e-3)
        if j is not None:
            fast.delete(j)
            naive.delete(j)


@pytest.mark.parametrize("reuse_tokens", [0, 100, 4096])
def test_delete_adopts_the_scored_suffix(arch, reuse_tokens):
    """Deleting a candidate just scored takes its packed suffix (keys, values, log-probs) with no
    forward; with a small ``reuse_tokens`` only the first chunks are kept and the rest recompute.
    Either way the state and the next scores equal the naive reference, deletion after deletion."""
    from conftest import tiny_model

    model = tiny_model(arch, vocab_size=512, sliding_window=8)
    g = torch.Generator().manual_seed(2)
    prefix, kept, suffix = (torch.randint(0, 512, (n,), generator=g) for n in (12, 40, 6))
    fast = FastScorer(model, batch_tokens=64, reuse_tokens=reuse_tokens)
    naive = NaiveScorer(model, batch_tokens=8192)
    for s in (fast, naive):
        s.reset(prefix, kept, suffix)
    adopted = 0
    for j in (0, 20, 36, 36, 1, 0, 30):
        lf, ln = fast.candidate_logprobs(), naive.candidate_logprobs()
        assert torch.allclose(lf, ln, atol=1e-3)
        assert torch.allclose(fast.state_logprobs(), naive.state_logprobs(), atol=1e-3)
        before, reusable = fast.tokens_computed, j in fast._scored
        fast.delete(j)
        naive.delete(j)
        assert (fast.tokens_computed == before) == reusable
        adopted += reusable
    assert torch.allclose(fast.candidate_logprobs(), naive.candidate_logprobs(), atol=1e-3)
    assert (adopted == 0) == (reuse_tokens == 0)
    assert (adopted == 7) == (reuse_tokens == 4096)


def test_adopted_state_applies_gemma_logit_softcapping():
    """Re-targeted rows go through the LM head outside the model's forward: softcapping included."""
    pruner = tiny_pruner("gemma3")
    pruner.model.config.final_logit_softcapping = 2.0
    fast, _ = compare(pruner, example_with(chain(8)), "joint")
    pruner.model.config.final_logit_softcapping = None
    uncapped = greedy_prune(pruner, example_with(chain(8)), max_steps=1)
    assert np.nanmax(np.abs(uncapped.candidate_scores[0] - fast.candidate_scores[0])) > 1e-2


def test_adopted_state_in_bfloat16():
    """In bf16 the adopted state keeps the model's dtype and matches a recomputed tail to bf16
    rounding (a float32 hidden state would not reach the bf16 LM head at all)."""
    from conftest import tiny_model

    model = tiny_model("llama", vocab_size=512).to(torch.bfloat16)
    g = torch.Generator().manual_seed(3)
    prefix, kept, suffix = (torch.randint(0, 512, (n,), generator=g) for n in (10, 20, 5))
    adopt, recompute = FastScorer(model), FastScorer(model, reuse_tokens=0)
    for s in (adopt, recompute):
        s.reset(prefix, kept, suffix)
    for j in (3, 10, 0):
        for s in (adopt, recompute):
            s.candidate_logprobs()
            s.delete(j)
        assert torch.allclose(adopt.state_logprobs(), recompute.state_logprobs(), atol=0.15)
    assert adopt.hidden.dtype == torch.bfloat16
