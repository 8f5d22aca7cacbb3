"""Rejection sampling: a scripted model proves accept/reject logic; a tiny random Llama smoke-tests generate;
the shared sampler decodes as ``generate``; ``pruneprobe generate`` writes, resumes and refuses."""

import json
from types import SimpleNamespace

import pytest
import torch
from conftest import make_model_dir, tiny_pruner

import pruneprobe.data.teacher as teacher_module
from pruneprobe.cli import main
from pruneprobe.data import PROMPT_FORMATS, Example, load_examples, sampling
from pruneprobe.data.models import Pruner
from pruneprobe.data.sampling import left_padded, sample_shared
from pruneprobe.data.teacher import ChainGeneration, accept_sample, generate_chains
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


# -- the shared sampler and `pruneprobe generate` ---------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["llama", "mistral"])  # mistral: sliding windows keep the model's own cache
def test_shared_sampler_decodes_as_generate(arch, one_thread, monkeypatch):
    """Greedy through the shared sampler equals greedy ``generate``, also for rows that end early and leave."""
    teacher = tiny_pruner(arch)
    assert (sampling._growing_cache(teacher.model, 16) is None) == (arch == "mistral")
    problems = load_examples("gsm_symbolic", n=3, seed=0)
    ids, mask = left_padded(teacher, problems, 12)
    plain = teacher.model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=12,
                                   pad_token_id=teacher.tokenizer.pad_token_id)[:, ids.shape[1]:]
    row0 = plain[0].tolist()  # a token new in problem 0's greedy text after 2 tokens ends its rows early
    at = next(i for i in range(2, 12) if row0[i] not in row0[:i])
    stop = row0[at]
    teacher.model.generation_config.eos_token_id = [teacher.tokenizer.eos_token_id, stop]
    reference = teacher.model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=12,
                                       pad_token_id=teacher.tokenizer.pad_token_id)[:, ids.shape[1]:].tolist()
    monkeypatch.setattr(sampling, "_pick", lambda logits, *args: logits.argmax(-1))
    got = sample_shared(teacher, problems, 2, 12, temperature=0.7)
    for row, samples in zip(reference, got):
        n = row.index(stop) + 1 if stop in row else len(row)
        expected = (teacher.tokenizer.decode(row[:n], skip_special_tokens=True), n, stop in row)
        assert samples == [expected, expected]
    assert got[0][0][1] == at + 1 < 12 and got[0][0][2]  # problem 0 did end early


def scripted_samples(answers: dict[str, list[tuple[str, bool]]]):
    """A stand-in for ``sample_shared``: each problem's samples from a script of (text, ended)."""
    def fake(teacher, batch, n_per_problem, max_new_tokens, temperature, top_k=0, top_p=1.0, on_problem=None):
        return [[(text, 7, ended) for text, ended in answers[p.question][:n_per_problem]] for p in batch]
    return fake


def test_shared_rejection_keeps_the_first_right_finished_long_enough_sample(tokenizer, monkeypatch):
    long = "Nine times two is eighteen, as nine plus nine makes eighteen. " * 2
    script = {
        "eggs": [("Too short.\n{\"answer\": \"18\"}", True), (long + "\n{\"answer\": \"17\"}", True),
                 (long + "\n{\"answer\": \"18\"}", False), (long + "\n{\"answer\": \"$18\"}", True),
                 (long + "\n{\"answer\": \"18\"}", True)],
        "none": [(long + "\n{\"answer\": \"4\"}", True)] * 5,
    }
    monkeypatch.setattr(teacher_module, "sample_shared", scripted_samples(script))
    teacher = Pruner(model=ScriptedLM(tokenizer, {}), tokenizer=tokenizer, name="scripted")
    problems = [problem("e", "eggs", "18"), problem("n", "none", "5")]
    result = generate_chains(teacher, problems, n_samples=5, batch_size=10, sampler="shared", min_reasoning_chars=100,
                             progress=False, keep_samples=True)
    (chain,) = result.examples
    # sample 0: too little reasoning; 1: wrong; 2: right but cut at max_new_tokens; 3: right ($18 == 18)
    assert (chain.id, chain.meta["sample_index"], chain.meta["n_correct"], chain.meta["attempts"]) == ("e", 3, 2, 5)
    assert chain.reasoning == long.strip() and chain.answer == "18" and chain.meta["teacher_answer"] == "$18"
    assert result.failed == ["n"] and result.attempts == {"e": 5, "n": 5}
    assert result.new_tokens == 70 and result.truncated == 1 and len(result.samples["e"]) == 5
    short = generate_chains(teacher, problems, n_samples=5, batch_size=10, sampler="shared", min_reasoning_chars=5,
                            progress=False)
    assert short.examples[0].meta["sample_index"] == 0  # the short chain passes a lower bar
    assert accept_sample(problems[0], long + "\n{\"answer\": \"18\"}", 100) == (long.strip(), "18")


def random_samples(teacher, batch, n_per_problem, max_new_tokens, temperature, top_k=0, top_p=1.0, on_problem=None):
    """A stand-in for ``sample_shared`` drawing from the torch RNG: right about a third of the time; each problem
    reported to ``on_problem`` as it is drawn, as the real sampler does when a problem's samples have all ended."""
    out = []
    for i, p in enumerate(batch):
        rows = []
        for _ in range(n_per_problem):
            right = torch.randint(0, 3, ()).item() == 0
            value = p.answer if right else p.answer + "1"
            rows.append((f"Step by step, the numbers in the question give {value}. " * 3 + f'\n{{"answer": "{value}"}}',
                         int(torch.randint(5, 50, ()).item()), True))
        out.append(rows)
        if on_problem is not None:
            on_problem(i, rows)
    return out


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("teacher") / "model")


def generate_argv(teacher_dir, out, *extra):
    return ["generate", "--dataset", "gsm_symbolic", "--n", "7", "--teacher", str(teacher_dir), "--n-samples", "3",
            "--batch-size", "6", "--max-new-tokens", "8", "--out", str(out), "--no-progress", *extra]


def stable(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k not in ("seconds", "tokens_per_s", "updated", "chunks")}


def test_generate_writes_resumes_as_uninterrupted_and_refuses_other_settings(teacher_dir, tmp_path, monkeypatch,
                                                                             capsys, one_thread):
    monkeypatch.setattr(teacher_module, "sample_shared", random_samples)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(generate_argv(teacher_dir, whole)) == 0
    manifest = json.loads((whole / "manifest.json").read_text())
    chains = load_examples("jsonl", path=whole / "chains.jsonl")  # what `pruneprobe run --dataset jsonl` reads
    assert manifest["status"] == "complete" and manifest["questions_done"] == 7 and manifest["samples_drawn"] == 21
    assert [c["questions"] for c in manifest["chunks"]] == [2, 2, 2, 1]  # 6 rows: 2 questions a chunk
    assert manifest["accepted"] == len(chains) > 0 and len(manifest["failed"]) == 7 - len(chains)
    assert manifest["yield"] == round(len(chains) / 7, 4) and manifest["new_tokens"] > 0
    assert manifest["config"]["min_reasoning_chars"] == 100 and manifest["teacher"]["weights_hash"]
    assert all(c.meta["reasoning_source"] == "teacher" and c.meta["format"] == "gsm8k" for c in chains)
    assert all(c.meta["seed"] == 0 and c.meta["sample_seed"] != 0 for c in chains)  # the data seed is kept
    assert [c.id for c in chains] == sorted((c.id for c in chains), key=lambda i: int(i.rsplit("-", 1)[1]))

    calls = []

    def killed_in_chunk_3(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return random_samples(*args, **kwargs)

    monkeypatch.setattr(teacher_module, "sample_shared", killed_in_chunk_3)
    assert main(generate_argv(teacher_dir, cut)) == 130
    torn = json.loads((cut / "manifest.json").read_text())
    assert torn["status"] == "incomplete" and torn["questions_done"] == 4  # chunks 0 and 1 kept
    monkeypatch.setattr(teacher_module, "sample_shared", random_samples)
    assert main(generate_argv(teacher_dir, cut)) == 0
    assert (cut / "chains.jsonl").read_text() == (whole / "chains.jsonl").read_text()
    assert stable(json.loads((cut / "manifest.json").read_text())) == stable(manifest)
    assert main(generate_argv(teacher_dir, cut)) == 0  # nothing left: no model loaded, same files
    assert (cut / "chains.jsonl").read_text() == (whole / "chains.jsonl").read_text()

    capsys.readouterr()
    assert main(generate_argv(teacher_dir, cut, "--temperature", "0.8")) == 2
    assert "temperature: 0.7 there, 0.8 now" in capsys.readouterr().err


def test_generate_keeps_the_questions_resolved_before_a_kill_mid_chunk(teacher_dir, tmp_path, monkeypatch, one_thread):
    """Killed while chunk 1's second question is still being sampled: its first question is already saved."""
    monkeypatch.setattr(teacher_module, "sample_shared", random_samples)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(generate_argv(teacher_dir, whole)) == 0
    calls = []

    def killed_after_one_question_of_chunk_1(teacher, batch, *args, on_problem=None, **kwargs):
        calls.append(1)
        if len(calls) < 2:
            return random_samples(teacher, batch, *args, on_problem=on_problem, **kwargs)
        random_samples(teacher, batch[:1], *args, on_problem=on_problem, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(teacher_module, "sample_shared", killed_after_one_question_of_chunk_1)
    assert main(generate_argv(teacher_dir, cut)) == 130
    torn = json.loads((cut / "manifest.json").read_text())
    assert torn["status"] == "incomplete" and torn["done"] == [f"gsm_symbolic-0-{i}" for i in range(3)]
    assert torn["chunks"][-1]["questions"] == 1 and torn["samples_drawn"] == 9  # 3 questions x 3 samples
    kept = {e.id for e in load_examples("jsonl", path=cut / "chains.jsonl")} if (cut / "chains.jsonl").read_text() else set()
    assert kept == set(torn["done"]) - set(torn["failed"])
    monkeypatch.setattr(teacher_module, "sample_shared", random_samples)
    assert main(generate_argv(teacher_dir, cut)) == 0
    done = json.loads((cut / "manifest.json").read_text())
    assert done["status"] == "complete" and done["questions_done"] == 7 and done["samples_drawn"] == 21
    assert [c["chunk"] for c in done["chunks"]] == [0, 1, 1, 2, 3]  # chunk 1 finished after the resume
    whole_chains = (whole / "chains.jsonl").read_text().splitlines()
    cut_chains = (cut / "chains.jsonl").read_text().splitlines()
    first = [line for line in whole_chains if json.loads(line)["id"] in {"gsm_symbolic-0-0", "gsm_symbolic-0-1"}]
    assert first == [line for line in cut_chains if json.loads(line)["id"] in {"gsm_symbolic-0-0", "gsm_symbolic-0-1"}]


def test_shared_sampler_reports_each_problem_once_as_it_ends(one_thread, monkeypatch):
    """``on_problem`` hears of every problem once, with the samples ``sample_shared`` returns; a problem whose
    rows all end early is reported before the others are finished."""
    teacher = tiny_pruner("llama")
    problems = load_examples("gsm_symbolic", n=3, seed=0)
    ids, mask = left_padded(teacher, problems, 12)
    plain = teacher.model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=12,
                                   pad_token_id=teacher.tokenizer.pad_token_id)[:, ids.shape[1]:]
    row0 = plain[0].tolist()
    stop = row0[next(i for i in range(2, 12) if row0[i] not in row0[:i])]  # ends problem 0's rows early
    teacher.model.generation_config.eos_token_id = [teacher.tokenizer.eos_token_id, stop]
    monkeypatch.setattr(sampling, "_pick", lambda logits, *args: logits.argmax(-1))
    steps, heard = [], []
    model_forward = teacher.model.forward
    monkeypatch.setattr(teacher.model, "forward", lambda *a, **k: steps.append(1) or model_forward(*a, **k))
    got = sample_shared(teacher, problems, 2, 12, temperature=0.7,
                        on_problem=lambda i, samples: heard.append((i, samples, len(steps))))
    assert sorted(i for i, _, _ in heard) == [0, 1, 2]
    assert all(samples == got[i] for i, samples, _ in heard)
    assert heard[0][0] == 0 and heard[0][2] < len(steps)  # problem 0 was reported before decoding finished


def test_generate_with_the_real_sampler(teacher_dir, tmp_path, one_thread):
    out = tmp_path / "real"
    assert main(generate_argv(teacher_dir, out, "--n", "3")) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    # a random model answers nothing: every question is reported failed, 3 samples each, at most 8 tokens a sample
    assert manifest["failed"] == [f"gsm_symbolic-0-{i}" for i in range(3)] and manifest["samples_drawn"] == 9
    assert 9 <= manifest["new_tokens"] <= 72 and (out / "chains.jsonl").read_text() == ""
