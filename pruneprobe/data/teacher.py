"""Teacher chains by rejection sampling (docs/method.md, "Self-generated chains"): sample, keep the first correct chain.

Canonical pattern::

    from pruneprobe import load_examples, load_pruner
    from pruneprobe.data.teacher import generate_chains
    teacher = load_pruner("Qwen/Qwen2.5-7B-Instruct")
    problems = load_examples("gsm8k", path="path/to/gsm8k/test.jsonl", n=200)
    result = generate_chains(teacher, problems, n_samples=10, temperature=0.7)
    print(result.summary())              # accepted / failed counts, samples drawn, tokens/s
    result.save_jsonl("chains.jsonl")    # reload with load_examples("jsonl", path=...)

Gotchas:
- ``sampler="rounds"`` (the default): round k draws sample k for every problem still without a
  correct one, ``batch_size`` prompts at a time, so solved problems stop costing compute (worth it
  when most problems are solved early). ``sampler="shared"``: all ``n_samples`` of a problem are
  decoded together, ``batch_size`` rows at a time (``batch_size // n_samples`` problems), the prompt
  prefilled once per problem and finished rows dropped from the batch (faster when few problems
  are solved, as for a 135M model; ``pruneprobe generate`` uses it). Results are reproducible for
  the same problems, sampler, ``batch_size``, ``seed`` and device; the global torch RNG is left
  as it was.
- A sample counts only when its extracted answer passes :func:`~pruneprobe.data.answers.check_answer`
  (math-verify for numbers and expressions), at least ``min_reasoning_chars`` characters of
  reasoning precede the answer line *and* the sample ended (one cut at ``max_new_tokens`` is
  unfinished, often a loop, and never accepted). Problems with no accepted sample are listed in
  ``failed``, never dropped silently.
- The accepted example keeps the *gold* answer; the teacher's own answer string is in
  ``meta["teacher_answer"]``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from pruneprobe.data.answers import check_answer, split_answer
from pruneprobe.data.examples import Example
from pruneprobe.data.models import Pruner
from pruneprobe.data.sampling import eos_ids, left_padded, pad_id, sample_shared
from pruneprobe.errors import PruneprobeError

SAMPLERS = ("rounds", "shared")


@dataclass
class ChainGeneration:
    """Result of :func:`generate_chains`.

    ``examples``: accepted chains (problem order); ``failed``: ids with no correct sample;
    ``attempts``: samples drawn per problem id; ``samples``: raw generations per id when
    ``keep_samples=True``; ``new_tokens``: generated tokens counted up to each sample's end of
    sequence; ``truncated``: samples cut at ``max_new_tokens``; ``seconds``: sampling time.
    """

    examples: list[Example]
    failed: list[str]
    attempts: dict[str, int]
    teacher: str = ""
    n_samples: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)
    new_tokens: int = 0
    truncated: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """One paragraph: accepted/failed counts, samples drawn, the first failed ids.

        >>> ChainGeneration([], ["p1"], {"p1": 3}, "tiny", 3).summary().splitlines()[0]
        'teacher tiny: 0/1 problems with a correct chain (0.0%), 1 failed'
        """
        total = len(self.attempts)
        ok = len(self.examples)
        drawn = sum(self.attempts.values())
        lines = [
            f"teacher {self.teacher}: {ok}/{total} problems with a correct chain "
            f"({100.0 * ok / max(total, 1):.1f}%), {len(self.failed)} failed",
            f"samples drawn: {drawn} (mean {drawn / max(total, 1):.2f} per problem, at most {self.n_samples})",
        ]
        if self.seconds:
            lines.append(f"new tokens: {self.new_tokens} in {self.seconds:.0f} s "
                         f"({self.new_tokens / self.seconds:.1f}/s), {self.truncated} samples cut at max_new_tokens")
        if ok:
            first = sum(1 for e in self.examples if e.meta.get("sample_index") == 0)
            lines.append(f"accepted at the first sample: {first}/{ok}")
        if self.failed:
            shown = ", ".join(self.failed[:10]) + (f", ... (+{len(self.failed) - 10})" if len(self.failed) > 10 else "")
            lines.append(f"failed: {shown}")
        return "\n".join(lines)

    def save_jsonl(self, path: str | Path) -> Path:
        """Write the accepted examples as JSONL (``load_examples("jsonl", path=...)`` reads it)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for example in self.examples:
                f.write(json.dumps(example.to_dict(), ensure_ascii=False) + "\n")
        return path


def _check_inputs(problems: list[Example], n_samples: int, temperature: float, max_new_tokens: int,
                  batch_size: int, min_reasoning_chars: int, sampler: str) -> None:
    if not isinstance(problems, (list, tuple)) or not problems:
        raise PruneprobeError("problems must be a non-empty list of Example")
    for name, value in (("n_samples", n_samples), ("max_new_tokens", max_new_tokens), ("batch_size", batch_size),
                        ("min_reasoning_chars", min_reasoning_chars)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PruneprobeError(f"{name} must be a positive integer, got {value!r}")
    if sampler not in SAMPLERS:
        raise PruneprobeError(f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")
    if not temperature or temperature <= 0:
        raise PruneprobeError(f"temperature must be > 0 for sampling, got {temperature!r}")
    seen: set[str] = set()
    for problem in problems:
        if not isinstance(problem, Example):
            raise PruneprobeError(f"problems must hold Example objects, got {type(problem).__name__}")
        if problem.id in seen:
            raise PruneprobeError(f"duplicate problem id {problem.id!r}; ids must be unique")
        seen.add(problem.id)
        if problem.answer is None or not str(problem.answer).strip():
            raise PruneprobeError(f"problem {problem.id!r} has no gold answer to check samples against")
        if not problem.question or not problem.question.strip():
            raise PruneprobeError(f"problem {problem.id!r} has an empty question")
        problem.prompt_format  # raises on an unknown format


def _lengths(rows: torch.Tensor, eos: list[int]) -> tuple[list[int], list[bool]]:
    """Tokens of each generated row up to and including its first end of sequence; whether it has one."""
    ends = torch.isin(rows, torch.tensor(eos, device=rows.device))
    ended = ends.any(1)
    first = torch.where(ended, ends.int().argmax(1) + 1, torch.full_like(ends[:, 0], rows.shape[1], dtype=torch.long))
    return first.tolist(), ended.tolist()


def _sample(teacher: Pruner, batch: list[Example], max_new_tokens: int,
            gen_kwargs: dict) -> list[tuple[str, int, bool]]:
    """One sampled completion per problem with ``generate``: (text without special tokens, new tokens, ended)."""
    input_ids, mask = left_padded(teacher, batch, max_new_tokens)
    with torch.no_grad():
        out = teacher.model.generate(input_ids=input_ids, attention_mask=mask, do_sample=True,
                                     max_new_tokens=max_new_tokens, pad_token_id=pad_id(teacher), **gen_kwargs)
    new = out[:, input_ids.shape[1]:]
    return list(zip(teacher.tokenizer.batch_decode(new, skip_special_tokens=True), *_lengths(new, eos_ids(teacher))))


def accept_sample(problem: Example, text: str, min_reasoning_chars: int = 1) -> tuple[str, str] | None:
    """``(reasoning, teacher answer)`` when ``text`` answers ``problem`` right after enough reasoning, else ``None``.

    >>> p = Example("2+2?", "", "4", "p", {"format": "gsm8k"})
    >>> accept_sample(p, 'Two and two make four.\\n{"answer": "4"}'), accept_sample(p, 'So 4.\\n{"answer": "4"}', 10)
    (('Two and two make four.', '4'), None)
    """
    fmt = problem.prompt_format
    reasoning, predicted = split_answer(text, fmt)
    if predicted is None or len(reasoning) < min_reasoning_chars or not check_answer(predicted, problem.answer, fmt):
        return None
    return reasoning, predicted


def _chain(problem: Example, reasoning: str, predicted: str, **meta: Any) -> Example:
    return Example(problem.question, reasoning, problem.answer, problem.id,
                   {**problem.meta, **meta, "teacher_answer": predicted, "reasoning_source": "teacher"})


def _rounds(teacher, problems, result: ChainGeneration, bar, batch_size, max_new_tokens, min_chars, gen_kwargs,
            keep_samples, meta) -> dict[int, Example]:
    """Round k draws sample k of every problem still without a correct one."""
    accepted: dict[int, Example] = {}
    pending = list(range(len(problems)))
    for k in range(result.n_samples):
        still: list[int] = []
        for start in range(0, len(pending), batch_size):
            chunk = pending[start:start + batch_size]
            for i, (text, n_tokens, ended) in zip(chunk, _sample(teacher, [problems[i] for i in chunk],
                                                                 max_new_tokens, gen_kwargs)):
                problem = problems[i]
                result.attempts[problem.id] += 1
                result.new_tokens += n_tokens
                result.truncated += not ended
                if keep_samples:
                    result.samples[problem.id].append(text)
                found = ended and accept_sample(problem, text, min_chars)
                if found:
                    accepted[i] = _chain(problem, *found, sample_index=k, attempts=k + 1, **meta)
                    bar.update(1)
                else:
                    still.append(i)
        pending = still
        bar.set_postfix(sample=k + 1, pending=len(pending))
        if not pending:
            break
    return accepted


def _shared(teacher, problems, result: ChainGeneration, bar, batch_size, max_new_tokens, min_chars, gen_kwargs,
            keep_samples, meta, on_problem=None) -> dict[int, Example]:
    """All samples of ``batch_size // n_samples`` problems at a time; the first correct one is kept. Each problem
    is resolved (and ``on_problem`` called) as soon as all its samples have ended."""
    n = result.n_samples
    per_batch = max(1, batch_size // n)
    accepted: dict[int, Example] = {}
    started = time.perf_counter()
    for start in range(0, len(problems), per_batch):
        batch = problems[start:start + per_batch]
        resolved: set[int] = set()

        def resolve(offset: int, samples: list, start=start, batch=batch, resolved=resolved) -> None:
            if offset in resolved:
                return
            resolved.add(offset)
            problem = batch[offset]
            result.attempts[problem.id] = n
            result.new_tokens += sum(s[1] for s in samples)
            result.truncated += sum(not s[2] for s in samples)
            if keep_samples:
                result.samples[problem.id] = [s[0] for s in samples]
            found = [(k, hit) for k, (text, _, ended) in enumerate(samples)
                     if ended and (hit := accept_sample(problem, text, min_chars))]
            if found:
                (k, hit), n_correct = found[0], len(found)
                accepted[start + offset] = _chain(problem, *hit, sample_index=k, attempts=n, n_correct=n_correct,
                                                  **meta)
            if on_problem is not None:
                on_problem(problem, accepted.get(start + offset), samples)

        for offset, samples in enumerate(sample_shared(teacher, batch, n, max_new_tokens, on_problem=resolve,
                                                       **gen_kwargs)):
            resolve(offset, samples)
        bar.update(len(batch))
        bar.set_postfix(accepted=len(accepted), tok_s=f"{result.new_tokens / (time.perf_counter() - started):.1f}")
    return accepted


def generate_chains(teacher: Pruner, problems: list[Example], n_samples: int = 10, temperature: float = 0.7,
                    max_new_tokens: int = 512, seed: int = 0, batch_size: int = 8, top_p: float = 1.0,
                    top_k: int = 0, keep_samples: bool = False, progress: bool = True, min_reasoning_chars: int = 1,
                    sampler: str = "rounds", on_problem=None, **generate_kwargs: Any) -> ChainGeneration:
    """Rejection-sample up to ``n_samples`` chains per problem; keep the first correct one.

    Each problem is prompted with its format's system prompt (``teacher.render``); the text before
    the answer line becomes the reasoning, and the gold answer is kept as the answer.
    ``top_p=1, top_k=0`` (no truncation) match the paper's vLLM sampling. ``sampler="shared"``
    takes no extra ``generate_kwargs``; it calls ``on_problem(problem, chain or None, samples)`` as each
    problem is resolved, mid-batch (``pruneprobe generate`` saves there); the rounds sampler calls
    ``on_problem(problem, chain or None, None)`` at the end.

    >>> result = generate_chains(teacher, problems, n_samples=4)   # doctest: +SKIP
    >>> result.examples[0].meta["sample_index"], result.failed     # doctest: +SKIP
    (0, ['gsm8k-test-7'])
    """
    _check_inputs(problems, n_samples, temperature, max_new_tokens, batch_size, min_reasoning_chars, sampler)
    if sampler == "shared" and generate_kwargs:
        raise PruneprobeError(f"sampler='shared' takes no generate() options, got {', '.join(generate_kwargs)}")
    gen_kwargs = {"temperature": temperature, "top_p": top_p, "top_k": top_k, **generate_kwargs}
    result = ChainGeneration([], [], {p.id: 0 for p in problems}, teacher.name, n_samples,
                             {p.id: [] for p in problems} if keep_samples else {})
    meta = {"teacher": teacher.name, "temperature": temperature, "sample_seed": seed}  # "seed" stays the data's
    device = teacher.device
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    started = time.perf_counter()
    with torch.random.fork_rng(devices=rng_devices), tqdm(
        total=len(problems), desc=f"teacher {teacher.name}", unit="problem", disable=not progress
    ) as bar:
        torch.manual_seed(seed)
        if sampler == "shared":
            accepted = _shared(teacher, problems, result, bar, batch_size, max_new_tokens, min_reasoning_chars,
                               gen_kwargs, keep_samples, meta, on_problem)
        else:
            accepted = _rounds(teacher, problems, result, bar, batch_size, max_new_tokens, min_reasoning_chars,
                               gen_kwargs, keep_samples, meta)
            if on_problem is not None:  # at the end, without counts: only the shared sampler has them per problem
                for i, p in enumerate(problems):
                    on_problem(p, accepted.get(i), None)
        bar.update(len(problems) - bar.n)  # failures are resolved too
    result.seconds = time.perf_counter() - started
    result.examples = [accepted[i] for i in sorted(accepted)]
    result.failed = [p.id for i, p in enumerate(problems) if i not in accepted]
    return result
