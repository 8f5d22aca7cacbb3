"""Rejection sampling: a scripted model proves accept/reject logic; a tiny random Llama smoke-tests generate."""

from types import SimpleNamespace

import pytest
import torch

from pruneprobe.data import PROMPT_FORMATS, Example, load_examples
from pruneprobe.data.models import Pruner
from pruneprobe.data.teacher import ChainGeneration, generate_chains
from pruneprobe.errors import PruneprobeError


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from pruneprobe.data.models import materialize_embedded

    try:
        path = materialize_embedded("smollm2-135m")
    except PruneprobeError as exc:
        pytest.skip(f"embedded tokenizer unavailable: {exc}")
    return AutoTokenizer.from_pretrained(path)


class ScriptedLM(torch.nn.Module):
    """A stand-in LM whose ``generate`` answers each prompt from a script keyed by question text."""

    def __init__(self, tokenizer, script: dict[str, list[str]]):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(max_position_embeddings=4096)
        self.tok = tokenizer
        self.script = {k: list(v) for k, v in script.items()}
        self.calls: list[dict] = []

    def generate(self, input_ids, attention_mask, do_sample, max_new_tokens, pad_token_id, **kwargs):
        assert do_sample and input_ids.shape == attention_mask.shape
        prompts = [self.tok.decode(ids[mask.bool()]) for ids, mask in zip(input_ids, attention_mask)]
        assert all(mask[-1] == 1 for mask in attention_mask)  # left padded
        self.calls.append({"prompts": prompts, **kwargs})
        rows = []
        for ids, prompt in zip(input_ids.tolist(), prompts):
            key = next(k for k in self.script if k in prompt)
            text = self.script[key].pop(0) if self.script[key] else "I give up."
            rows.append(ids + self.tok(text, add_special_tokens=False)["input_ids"] + [self.tok.eos_token_id])
        width = max(map(len, rows))
        return torch.tensor([r + [pad_token_id] * (width - len(r)) for r in rows])


def problem(pid, question, answer, fmt="gsm8k"):
    return Example(question, "gold reasoning", answer, pid, {"format": fmt, "source": "test"})


def test_first_correct_sample_is_kept_and_failures_reported(tokenizer, tmp_path):
    problems = [
        problem("eggs", "How many eggs?", "18"),
        problem("hard", "An impossible one?", "5"),
        problem("planet", "Which planet?\nA. Venus\nB. Mercury", "B", "mmlu_pro"),
        problem("half", "What is half of one?", "\\frac{1}{2}", "math"),
    ]
    script = {
        "How many eggs?": ['9 * 2 = 17.\n{"answer": "17"}', '9 * 2 = 18 dollars.\n{"answer": "$18"}\nBye.',
                           'Also right.\n{"answer": "18"}'],
        "An impossible one?": ['{"answer": "4"}', "no idea at all", 'So 6.\n{"answer": "6"}'],
        "Which planet?": ["Mercury is closest. The answer is (B).", "The answer is (A)."],
        "What is half of one?": ["Thus, the final answer is: 0.5",  # right answer but no reasoning: rejected
                                 "One split in two. Thus, the final answer is: $0.5$.", "unused"],
    }
    model = ScriptedLM(tokenizer, script)
    teacher = Pruner(model=model, tokenizer=tokenizer, name="scripted")
    result = generate_chains(teacher, problems, n_samples=3, temperature=0.7, max_new_tokens=64, batch_size=3,
                             progress=False, keep_samples=True)

    assert isinstance(result, ChainGeneration)
    assert [e.id for e in result.examples] == ["eggs", "planet", "half"]  # problem order
    eggs, planet, half = result.examples
    assert eggs.reasoning == "9 * 2 = 18 dollars." and eggs.answer == "18"  # gold answer kept
    assert eggs.meta["sample_index"] == 1 and eggs.meta["teacher_answer"] == "$18"
    assert eggs.meta["teacher"] == "scripted" and eggs.meta["format"] == "gsm8k" and eggs.meta["source"] == "test"
    assert (planet.reasoning, planet.answer, planet.meta["sample_index"]) == ("Mercury is closest.", "B", 0)
    assert (half.reasoning, half.answer, half.meta["sample_index"]) == ("One split in two.", "\\frac{1}{2}", 1)
    assert result.failed == ["hard"]
    assert result.attempts == {"eggs": 2, "hard": 3, "planet": 1, "half": 2}
    # solved problems stop being sampled: their remaining scripted answers are untouched
    assert model.script["Which planet?"] == ["The answer is (A)."] and model.script["How many eggs?"]
    assert len(result.samples["hard"]) == 3 and result.samples["planet"] == ["Mercury is closest. The answer is (B)."]
    # rounds: 4 problems in batches of 3, then 3 pending, then 1
    assert [len(c["prompts"]) for c in model.calls] == [3, 1, 3, 1]
    assert all(c["temperature"] == 0.7 and c["top_k"] == 0 and c["top_p"] == 1.0 for c in model.calls)
    # each prompt uses its own format's system prompt, in the teacher's chat template
    first_prompts = model.calls[0]["prompts"] + model.calls[1]["prompts"]
    assert PROMPT_FORMATS["gsm8k"].system_prompt in first_prompts[0]
    assert PROMPT_FORMATS["mmlu_pro"].system_prompt in first_prompts[2]
    assert first_prompts[0].rstrip().endswith("assistant")

    summary = result.summary()
    assert "3/4 problems with a correct chain (75.0%), 1 failed" in summary
    assert "samples drawn: 8" in summary and "failed: hard" in summary

    saved = result.save_jsonl(tmp_path / "out" / "chains.jsonl")
    assert load_examples("jsonl", path=saved) == result.examples


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"problems": []}, "non-empty list"),
        ({"n_samples": 0}, "n_samples must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"temperature": 0}, "temperature must be > 0"),
        ({"problems": [problem("a", "q", "1"), problem("a", "q2", "2")]}, "duplicate problem id 'a'"),
        ({"problems": [problem("a", "q", " ")]}, "problem 'a' has no gold answer"),
        ({"problems": [problem("a", "q", "1", "latex")]}, "unknown prompt format 'latex'"),
        ({"problems": ["What is 2+2?"]}, "must hold Example objects"),
    ],
)
def test_bad_inputs(tokenizer, kwargs, match):
    teacher = Pruner(model=ScriptedLM(tokenizer, {}), tokenizer=tokenizer, name="scripted")
    args = {"problems": [problem("a", "q", "1")], **kwargs}
    with pytest.raises(PruneprobeError, match=match):
        generate_chains(teacher, progress=False, **args)


def test_prompt_longer_than_context_is_reported(tokenizer):
    model = ScriptedLM(tokenizer, {"q": ["x"]})
    model.config.max_position_embeddings = 64
    teacher = Pruner(model=model, tokenizer=tokenizer, name="scripted")
    with pytest.raises(PruneprobeError, match="problem 'long'.*exceeds the teacher's context of 64"):
        generate_chains(teacher, [problem("long", "q " * 50, "1")], max_new_tokens=16, progress=False)


def test_tiny_llama_generation_smoke(tokenizer, one_thread):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=64, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    teacher = Pruner.from_model(LlamaForCausalLM(config), tokenizer, name="tiny-llama")
    problems = load_examples("gsm_symbolic", n=3, seed=0)
    rng_before = torch.random.get_rng_state()
    kwargs = dict(n_samples=2, max_new_tokens=6, seed=3, batch_size=2, keep_samples=True, progress=False)
    result = generate_chains(teacher, problems, **kwargs)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the caller's RNG is left alone
    # a random model never answers correctly: every problem is reported, none silently dropped
    assert result.examples == [] and result.failed == [p.id for p in problems]
    assert result.attempts == {p.id: 2 for p in problems}
    assert all(len(s) == 2 and all(isinstance(t, str) and t for t in s) for s in result.samples.values())
    assert generate_chains(teacher, problems, **kwargs).samples == result.samples  # seeded: reproducible
    assert "0/3 problems with a correct chain" in result.summary()
