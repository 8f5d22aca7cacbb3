"""The fast scorer's self-check: it passes where fast is exact, and catches a broken fast scorer."""

import math

import pytest
import torch
from conftest import ARCHS, MORE_ARCHS, tiny_model, tiny_pruner

from pruneprobe import Example, PruneResult, greedy_prune
from pruneprobe.core import exactness, fastscore
from pruneprobe.core.exactness import check_fast_scorer, make_scorer, shrunk_windows
from pruneprobe.core.fastscore import FastScorer, mask_windows
from pruneprobe.core.scoring import NaiveScorer
from pruneprobe.errors import PruneprobeError

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLE = Example("Tom has 3 apples and 4 pears. How many fruits?", "3 + 4 = 7 fruits in total.", "7", id="t")


def perturb_one_entry(monkeypatch, by: float = 0.01):
    """A fast scorer that is wrong by ``by`` nats in one entry of every candidate batch."""
    original = FastScorer.candidate_logprobs

    def broken(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        out[0, -1] += by
        return out

    monkeypatch.setattr(FastScorer, "candidate_logprobs", broken)


def ignore_windows(monkeypatch):
    """A fast scorer that attends over everything: the window defect this check exists for."""
    monkeypatch.setattr(fastscore, "mask_windows", lambda config: {None: None})


def break_adoption(monkeypatch):
    """Adopting a scored suffix on deletion, off by 0.01 nats in the new state's last log-prob."""
    original = FastScorer._adopt

    def broken(self, *args):
        original(self, *args)
        self.next_lp[-1] += 0.01

    monkeypatch.setattr(FastScorer, "_adopt", broken)


def break_answer_only(monkeypatch):
    """The answer-only path (LM head only where an answer token is predicted), off by 0.01 nats."""
    original = FastScorer.candidate_logprobs

    def broken(self, candidates=None, answer_only=None, max_suffix=None):
        out = original(self, candidates, answer_only, max_suffix)
        if answer_only:
            out[:, -1] += 0.01
        return out

    monkeypatch.setattr(FastScorer, "candidate_logprobs", broken)


@pytest.mark.parametrize("breaker", [break_adoption, break_answer_only])
def test_check_covers_the_adopted_state_and_the_answer_only_path(monkeypatch, breaker):
    model = tiny_model("llama", vocab_size=512)
    assert check_fast_scorer(model).passed
    breaker(monkeypatch)
    check = check_fast_scorer(model)
    assert check.status == "failed" and 0.009 < check.max_diff < 0.011


@pytest.mark.parametrize("arch", ARCHS + MORE_ARCHS)
def test_check_passes_where_fast_is_exact(arch):
    model = tiny_model(arch, vocab_size=512, sliding_window=4096)
    check = check_fast_scorer(model)
    assert check.passed and check.status == "passed" and not check.error
    assert check.max_diff < 1e-4 and check.tolerance == 1e-3 and check.model_type == model.config.model_type
    assert getattr(model.config, "sliding_window", None) in (None, 4096)  # restored after shrinking


def test_check_catches_one_wrong_entry_and_falls_back_with_a_warning(monkeypatch, caplog):
    perturb_one_entry(monkeypatch, by=0.01)
    pruner = tiny_pruner("llama")
    with caplog.at_level("WARNING"):
        scorer = make_scorer(pruner, "fast")
    assert isinstance(scorer, NaiveScorer) and scorer.name == "naive"
    assert pruner.scorer_check.status == "failed" and 0.009 < pruner.scorer_check.max_diff < 0.011
    assert "'llama'" in caplog.text and "0.01 nats" in caplog.text and "naive" in caplog.text


def test_check_raises_under_the_option(monkeypatch):
    perturb_one_entry(monkeypatch, by=0.01)
    with pytest.raises(PruneprobeError, match=r"'llama'.*largest difference 0\.01 nats.*scorer='naive'"):
        greedy_prune(tiny_pruner("llama"), EXAMPLE, scorer_check="raise")
    with pytest.raises(PruneprobeError, match="unknown scorer check"):
        make_scorer(tiny_pruner("llama"), "fast", check="sometimes")


@pytest.mark.parametrize("arch", ["mistral", "phi3", "gemma3", "qwen3"])
def test_check_catches_an_ignored_window_longer_than_its_chain(monkeypatch, caplog, arch):
    """The models' real windows (4,096 tokens) dwarf the synthetic chain: the check shrinks them,
    so a fast scorer that ignores the window is caught, and the config comes back unchanged."""
    ignore_windows(monkeypatch)
    model = tiny_model(arch, vocab_size=512, sliding_window=4096)
    check = check_fast_scorer(model)
    assert check.status == "failed" and check.max_diff > 0.1
    assert model.config.sliding_window == 4096
    # without the shrink the chain never reaches the window, and the same bug goes unseen
    assert check_fast_scorer(model, window=10**6).passed
    pruner = tiny_pruner(arch, sliding_window=4096)
    with caplog.at_level("WARNING"):
        result = greedy_prune(pruner, EXAMPLE, max_steps=1)
    assert result.metadata["scorer"] == "naive" and repr(model.config.model_type) in caplog.text


def test_shrunk_window_reaches_the_naive_forward():
    """Both scorers read the window from the config at forward time: the shrink changes naive scores."""
    model = tiny_model("mistral", vocab_size=512, sliding_window=4096)
    naive = NaiveScorer(model)
    naive.reset(torch.arange(10, 14), torch.arange(20, 32), torch.arange(40, 43))
    full = naive.candidate_logprobs()
    with shrunk_windows(model.config, 3):
        assert model.config.sliding_window == 3
        shrunk = naive.candidate_logprobs()
    assert model.config.sliding_window == 4096
    assert (full - shrunk).abs().max() > 0.1
    assert torch.equal(full, naive.candidate_logprobs())


def test_a_failing_fast_scorer_is_an_error_entry_and_the_config_is_restored(monkeypatch, caplog):
    def boom(self, *args, **kwargs):
        raise RuntimeError("4-D masks not supported")

    monkeypatch.setattr(FastScorer, "reset", boom)
    model = tiny_model("mistral", vocab_size=512, sliding_window=4096)
    check = check_fast_scorer(model)
    assert check.status == "error" and check.max_diff is None and "4-D masks not supported" in check.error
    assert model.config.sliding_window == 4096
    with caplog.at_level("WARNING"):
        assert make_scorer(model, "fast").name == "naive"
    assert "'mistral'" in caplog.text and "4-D masks not supported" in caplog.text


def test_check_runs_once_per_pruner(monkeypatch):
    calls = []
    real = exactness.check_fast_scorer
    monkeypatch.setattr(exactness, "check_fast_scorer", lambda model, **kw: calls.append(model) or real(model, **kw))
    pruner = tiny_pruner("llama")
    for objective in ("joint", "answer"):
        assert greedy_prune(pruner, EXAMPLE, objective, max_steps=2).metadata["scorer"] == "fast"
    assert len(calls) == 1 and pruner.scorer_check.passed
    greedy_prune(tiny_pruner("llama"), EXAMPLE, max_steps=1)  # another pruner: checked again
    greedy_prune(pruner, EXAMPLE, max_steps=1, scorer="naive")  # naive: no check
    greedy_prune(pruner, EXAMPLE, max_steps=1, scorer_check="off")
    assert len(calls) == 2
    make_scorer(pruner.model, "fast")  # a bare model has nowhere to cache it
    make_scorer(pruner.model, "fast")
    assert len(calls) == 4
    pruner.model.to(torch.bfloat16)  # cast after the check: checked again
    make_scorer(pruner, "fast")
    assert len(calls) == 5 and pruner.scorer_check.dtype == "bfloat16"


def test_metadata_records_the_scorer_that_ran_and_the_check(monkeypatch, tmp_path):
    pruner = tiny_pruner("llama")
    fast = greedy_prune(pruner, EXAMPLE, max_steps=1)
    assert fast.metadata["scorer"] == "fast" and fast.metadata["scorer_check"] == "passed"
    assert 0 <= fast.metadata["scorer_check_max_diff"] < 1e-4
    naive = greedy_prune(pruner, EXAMPLE, max_steps=1, scorer="naive")
    assert naive.metadata["scorer"] == "naive" and naive.metadata["scorer_check_max_diff"] is None
    unchecked = greedy_prune(pruner, EXAMPLE, max_steps=1, scorer_check="off")
    assert unchecked.metadata["scorer"] == "fast" and unchecked.metadata["scorer_check"] is None
    perturb_one_entry(monkeypatch, by=0.5)
    fallback = greedy_prune(tiny_pruner("llama"), EXAMPLE, max_steps=1)
    assert fallback.metadata["scorer"] == "naive" and fallback.metadata["scorer_check"] == "failed"
    assert fallback.metadata["scorer_check_max_diff"] == pytest.approx(0.5, abs=1e-3)
    fallback.save(tmp_path / "r.json")  # JSON without NaN/inf
    assert PruneResult.load(tmp_path / "r.json").metadata["scorer_check_max_diff"] == fallback.metadata["scorer_check_max_diff"]


def test_a_nan_where_naive_has_a_number_fails_the_check(monkeypatch, tmp_path):
    perturb_one_entry(monkeypatch, by=float("nan"))
    result = greedy_prune(tiny_pruner("llama"), EXAMPLE, max_steps=1)
    assert result.metadata["scorer"] == "naive" and result.metadata["scorer_check"] == "failed"
    assert result.metadata["scorer_check_max_diff"] is None  # infinite: not a JSON number
    result.save(tmp_path / "r.json")


def test_unknown_architecture_gets_the_fast_scorer_once_checked():
    pruner = tiny_pruner("llama")
    pruner.model.config.model_type = "mystery"
    scorer = make_scorer(pruner, "fast")
    assert isinstance(scorer, FastScorer) and scorer.check.passed and scorer.check.model_type == "mystery"


def test_bfloat16_tolerance_passes_rounding_and_catches_structure(monkeypatch):
    model = tiny_model("mistral", vocab_size=512, sliding_window=4096).to(torch.bfloat16)
    check = check_fast_scorer(model)
    assert check.passed and check.tolerance == 1.0 and check.dtype == "bfloat16"
    ignore_windows(monkeypatch)
    assert not check_fast_scorer(model).passed


def test_mask_windows_from_the_config():
    import transformers as tf

    assert mask_windows(tf.MistralConfig(sliding_window=4096)) == {None: 4096}
    assert mask_windows(tf.MistralConfig(sliding_window=None)) == {None: None}
    assert mask_windows(tf.Phi3Config(sliding_window=2047)) == {None: 2047}
    assert mask_windows(tf.LlamaConfig()) == {None: None}
    assert mask_windows(tf.Qwen2Config(use_sliding_window=False, sliding_window=4096)) == {None: None}
    qwen = tf.Qwen2Config(num_hidden_layers=4, use_sliding_window=True, sliding_window=64, max_window_layers=2)
    assert mask_windows(qwen) == {"full_attention": None, "sliding_attention": 64}
    gemma = tf.Gemma2Config(num_hidden_layers=2, sliding_window=512)
    assert mask_windows(gemma) == {"full_attention": None, "sliding_attention": 512}
    odd = tf.LlamaConfig()
    odd.layer_types = ["chunked_attention", "full_attention"]
    with pytest.raises(PruneprobeError, match="chunked_attention.*scorer='naive'"):
        mask_windows(odd)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smollm2-135m", "gemma3-270m"])
def test_embedded_models_pass_the_check(name):
    from pruneprobe import load_pruner

    check = check_fast_scorer(load_pruner(name, device="cpu").model)
    assert check.passed and check.max_diff < 1e-3 and math.isfinite(check.seconds)
