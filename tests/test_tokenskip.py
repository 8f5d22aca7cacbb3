"""TokenSkip baseline: a tiny random XLM-RoBERTa token classifier with a Unigram tokenizer trained here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import tiny_pruner

from pruneprobe import Example, PruneprobeError, PruneResult
from pruneprobe.core.encoding import encode_example
from pruneprobe.methods.tokenskip import (
    WordProbs,
    load_token_classifier,
    search_rate,
    threshold_for_rate,
    token_keep_scores,
    tokenskip_keep_mask,
    tokenskip_prune,
    word_keep_probs,
)

LONG_CHAIN = (
    "Let's work through this step by step. The bakery sells muffins at 3 dollars each and cookies at "
    "2 dollars each. On Monday it sold 48 muffins, so the muffin revenue was 48 * 3 = 144 dollars. "
    "It also sold 35 cookies, which brought in 35 * 2 = 70 dollars. So on Monday the total revenue was "
    "144 + 70 = 214 dollars. On Tuesday the bakery sold half as many muffins as on Monday, which is "
    "48 / 2 = 24 muffins, and twice as many cookies, which is 35 * 2 = 70 cookies. The muffin revenue "
    "on Tuesday was 24 * 3 = 72 dollars and the cookie revenue was 70 * 2 = 140 dollars, so Tuesday "
    "brought in 72 + 140 = 212 dollars in total. Next we need the costs. Each muffin costs the bakery "
    "1 dollar to make and each cookie costs half a dollar. Over the two days it made 48 + 24 = 72 "
    "muffins and 35 + 70 = 105 cookies. The muffins cost 72 * 1 = 72 dollars and the cookies cost "
    "105 / 2 = 52.5 dollars, so the total cost was 72 + 52.5 = 124.5 dollars. The total revenue over "
    "both days was 214 + 212 = 426 dollars. Therefore the profit is the revenue minus the cost, which "
    "is 426 - 124.5 = 301.5 dollars. Finally, the owner gives one third of the profit to her two "
    "helpers, so they receive 301.5 / 3 = 100.5 dollars together, and each of them gets 100.5 / 2 = "
    "50.25 dollars. The owner keeps the rest, which is 301.5 - 100.5 = 201 dollars."
)


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    """A random XLMRobertaForTokenClassification with a tiny trained Unigram tokenizer, saved to disk."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification, XLMRobertaTokenizer

    corpus = [LONG_CHAIN, "In May she sold 48/2 = 24 clips. In total she sold 48 + 24 = 72 clips.",
              "Natalia sold clips to 48 of her friends in April, and then half as many in May."]
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(corpus, trainers.UnigramTrainer(
        vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>"))
    vocab = [tuple(v) for v in json.loads(tok.to_str())["model"]["vocab"]]
    tokenizer = XLMRobertaTokenizer(vocab=vocab)
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=64, num_labels=2, max_position_embeddings=514,
                              pad_token_id=tokenizer.pad_token_id, bos_token_id=0, eos_token_id=2)
    path = tmp_path_factory.mktemp("llmlingua2-tiny")
    XLMRobertaForTokenClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def clf(classifier_dir):
    return load_token_classifier(str(classifier_dir))


@pytest.fixture(scope="module")
def llama():
    return tiny_pruner("llama")


LONG = Example(question="What does the bakery owner keep?", reasoning=LONG_CHAIN, answer="201", id="bakery")
SHORT = Example(question="How many clips did Natalia sell altogether?",
                reasoning="In May she sold 48/2 = 24 clips. In total she sold 48 + 24 = 72 clips.", answer="72",
                id="natalia")


def test_load_errors(tmp_path, classifier_dir):
    with pytest.raises(PruneprobeError, match="not found"):
        load_token_classifier(str(tmp_path / "missing"))
    from conftest import tiny_model

    tiny_model("gpt2", vocab_size=64).save_pretrained(tmp_path / "lm")
    with pytest.raises(PruneprobeError, match="not a token classifier"):
        load_token_classifier(str(tmp_path / "lm"))
    with pytest.raises(PruneprobeError, match="label"):
        load_token_classifier(str(classifier_dir), keep_label=2)


def test_word_probs_and_chunking(clf):
    text = "She sold  48/2 = 24 clips.\nThen more."
    wp = word_keep_probs(clf, text)
    assert wp.words == text.split() and [text[a:b] for a, b in wp.spans] == wp.words
    assert np.all((wp.probs > 0) & (wp.probs < 1))
    # tiny windows split the chain at word boundaries; each word is still classified (context changes)
    small = word_keep_probs(clf, LONG_CHAIN, max_length=16)
    assert len(small.probs) == len(LONG_CHAIN.split()) and np.all(np.isfinite(small.probs))
    one = word_keep_probs(clf, "clips")  # a single-word chunk matches the word alone in any chunk layout
    assert np.isclose(one.probs[0], word_keep_probs(clf, "clips", max_length=8).probs[0])


def test_token_scores_majority_rule():
    pieces = ["In", " May", " she", " so", "ld", "\n\n", "4", "8", " =", ".\n"]
    text = "".join(pieces)
    import re

    spans = [m.span() for m in re.finditer(r"\S+", text)]
    words = [text[a:b] for a, b in spans]
    assert words == ["In", "May", "she", "sold", "48", "=."]
    probs = np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.2])
    scores = token_keep_scores(pieces, WordProbs(text, words, spans, probs))
    assert scores.tolist() == [0.9, 0.1, 0.5, 0.7, 0.7, 0.3, 0.3, 0.3, 0.2, 0.2]  # "\n\n" follows "4"
    # a token spanning words: kept iff at least half its non-space chars are in kept words
    for piece, expect in (("x yy", 0.1), ("xx y", 0.9), ("x y", 0.9)):
        sp = [m.span() for m in re.finditer(r"\S+", piece)]
        wp = WordProbs(piece, [piece[a:b] for a, b in sp], sp, np.array([0.9, 0.1]))
        assert token_keep_scores([piece], wp).tolist() == [expect]
    with pytest.raises(PruneprobeError):
        token_keep_scores(pieces[:-1], WordProbs(text, words, spans, probs))


def test_rates_within_tolerance_on_long_chain(llama, clf):
    enc = encode_example(llama, LONG)
    assert enc.n_reasoning > 400
    for rho in (0.9, 0.8, 0.7):
        mask = tokenskip_keep_mask(llama, LONG, clf, rho)
        assert len(mask) == enc.n_reasoning
        assert abs(mask.mean() - rho) <= 0.005, (rho, mask.mean())


def test_closest_achievable_when_words_are_coarse(llama, clf):
    enc = encode_example(llama, SHORT)
    wp = word_keep_probs(clf, "".join(enc.reasoning_pieces))
    scores = token_keep_scores(enc.reasoning_pieces, wp)
    achievable = {0.0, 1.0} | {(scores > s).mean() for s in scores}  # every threshold between word scores
    for rho in (0.9, 0.8, 0.7, 0.55):
        res = search_rate(wp.probs, scores, rho)
        best = min(abs(f - rho) for f in achievable)
        assert abs(abs(res.kept_fraction - rho) - best) < 1e-9
        assert res.within_tolerance == (best <= 0.005)
        if not res.within_tolerance:
            assert "closest achievable" in res.to_dict()["note"]


def test_monotone_in_rate(llama, clf):
    enc = encode_example(llama, LONG)
    wp = word_keep_probs(clf, "".join(enc.reasoning_pieces))
    scores = token_keep_scores(enc.reasoning_pieces, wp)
    prev_words, prev_tokens = None, None
    for rate in np.linspace(0, 1, 41):
        thr = threshold_for_rate(wp.probs, rate)
        words, tokens = wp.probs > thr, scores > thr
        if prev_words is not None:  # growing the rate only ever adds words and tokens
            assert np.all(words >= prev_words) and np.all(tokens >= prev_tokens)
        prev_words, prev_tokens = words, tokens
    assert abs((wp.probs > threshold_for_rate(wp.probs, 0.5)).mean() - 0.5) <= 1 / len(wp.probs)


def test_prune_result_end_to_end(llama, clf, tmp_path):
    r = tokenskip_prune(llama, LONG, clf.name, traces=False)  # a directory: loaded on the fly
    assert r.method == "tokenskip" and r.metadata["classifier"] == clf.name
    back = PruneResult.load(r.save(tmp_path / "r.json"))
    assert back.deletion_order == r.deletion_order and back.metadata["tokenskip_rates"] == r.metadata["tokenskip_rates"]
    assert sorted(r.deletion_order) == list(range(r.n_tokens))
    scores = np.array(r.token_scores)
    assert np.all(np.diff(scores[r.deletion_order]) >= 0)  # lowest keep-probability first
    same = np.diff(scores[r.deletion_order]) == 0  # ties by position
    assert np.all(np.diff(np.array(r.deletion_order))[same] > 0)
    rates = r.metadata["tokenskip_rates"]
    assert set(rates) == {"0.9", "0.8", "0.7"}
    for rho in (0.9, 0.8, 0.7):
        info = rates[str(rho)]
        assert info["within_tolerance"] and abs(info["kept_fraction"] - rho) <= 0.005
        searched = tokenskip_keep_mask(llama, LONG, clf, rho)
        # the searched mask is a prefix of the deletion order
        n_del = r.n_tokens - int(searched.sum())
        assert set(np.flatnonzero(~searched)) == set(r.deletion_order[:n_del])
        assert abs(r.kept_mask(rho).mean() - rho) <= 1 / r.n_tokens
    assert len(r.metadata["word_probs"]) == len(LONG_CHAIN.split())


def test_keep_ratio_and_traces(llama, clf):
    from pruneprobe.core.scoring import state_logprob_batch, traces_from_state

    r = tokenskip_prune(llama, SHORT, clf, keep_ratio=0.7, objective="answer")
    n_kept = r.metadata["tokenskip_rates"]["0.7"]["n_kept"]
    assert r.n_steps == r.n_tokens - n_kept and r.objective == "answer"
    assert all(len(v) == r.n_steps + 1 for v in r.traces.values())
    enc = encode_example(llama, SHORT)
    lp = state_logprob_batch(llama.model, enc.prefix_ids, [enc.reasoning_ids], enc.suffix_ids)[0]
    for k, v in traces_from_state(lp, enc.n_reasoning).items():
        assert np.isclose(r.traces[k][0], v, rtol=1e-5)


def test_prune_baseline_dispatch(llama, clf):
    from pruneprobe.methods.registry import prune_baseline

    r = prune_baseline(llama, SHORT, "tokenskip", classifier=clf, traces=False)
    assert r.method == "tokenskip"
    with pytest.raises(PruneprobeError, match="classifier"):
        prune_baseline(llama, SHORT, "tokenskip")


def test_against_llmlingua(clf):
    pytest.importorskip("llmlingua", reason="llmlingua not installed (and it fetches a tiktoken file online at start)")
    pytest.skip("llmlingua's PromptCompressor needs the internet (tiktoken encoding) to start; not comparable offline")
