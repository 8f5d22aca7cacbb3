"""Teacher chains by rejection sampling (docs/method.md, "Sufficiency and distillation"): sample, keep the first correct chain.

Canonical pattern::

    from pruneprobe import load_examples, load_pruner
    from pruneprobe.data.teacher import generate_chains
    teacher = load_pruner("Qwen/Qwen2.5-7B-Instruct")
    problems = load_examples("gsm8k", path="path/to/gsm8k/test.jsonl", n=200)
    result = generate_chains(teacher, problems, n_samples=10, temperature=0.7)
    print(result.summary())              # accepted / failed counts, samples drawn
    result.save_jsonl("chains.jsonl")    # reload with load_examples("jsonl", path=...)

Gotchas:
- Sampling runs in rounds: round k draws sample k for every problem still without a correct one,
  ``batch_size`` prompts at a time, so solved problems stop costing compute. Results are
  reproducible for the same problems, ``batch_size``, ``seed`` and device; the global torch RNG
  is left as it was.
- A sample counts only when its extracted answer passes :func:`~pruneprobe.data.answers.check_answer`
  *and* some reasoning precedes the answer line. Problems with no accepted sample are listed in
  ``failed``, never dropped silently.
- The accepted example keeps the *gold* answer; the teacher's own answer string is in
  ``meta["teacher_answer"]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from pruneprobe.data.answers import check_answer, split_answer
from pruneprobe.data.examples import Example
from pruneprobe.data.models import Pruner
from pruneprobe.errors import PruneprobeError


@dataclass
class ChainGeneration:
    """Result of :func:`generate_chains`.

    ``examples``: accepted chains (problem order); ``failed``: ids with no correct sample;
    ``attempts``: samples drawn per problem id; ``samples``: raw generations per id when
    ``keep_samples=True``.
    """

    examples: list[Example]
    failed: list[str]
    attempts: dict[str, int]
    teacher: str = ""
    n_samples: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)

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
                  batch_size: int) -> None:
    if not isinstance(problems, (list, tuple)) or not problems:
        raise PruneprobeError("problems must be a non-empty list of Example")
    for name, value in (("n_samples", n_samples), ("max_new_tokens", max_new_tokens), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PruneprobeError(f"{name} must be a positive integer, got {value!r}")
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


def _sample(teacher: Pruner, batch: list[Example], max_new_tokens: int, gen_kwargs: dict) -> list[str]:
    """One sampled completion per problem, decoded without special tokens."""
    tok = teacher.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    if pad_id is None:
        raise PruneprobeError(f"teacher {teacher.name!r}: tokenizer has neither a pad nor an eos token")
    add_special = teacher.template == "plain"
    rows = []
    for problem in batch:
        prompt = teacher.render(problem.prompt_format.system_prompt, problem.question)
        ids = list(tok(prompt, add_special_tokens=add_special)["input_ids"])
        if len(ids) + max_new_tokens > teacher.max_length:
            raise PruneprobeError(
                f"problem {problem.id!r}: prompt of {len(ids)} tokens + max_new_tokens={max_new_tokens} "
                f"exceeds the teacher's context of {teacher.max_length}"
            )
        rows.append(ids)
    width = max(len(r) for r in rows)  # left padding: every row's generation starts at `width`
    input_ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows], device=teacher.device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=teacher.device)
    with torch.no_grad():
        out = teacher.model.generate(input_ids=input_ids, attention_mask=mask, do_sample=True,
                                     max_new_tokens=max_new_tokens, pad_token_id=pad_id, **gen_kwargs)
    return tok.batch_decode(out[:, width:], skip_special_tokens=True)


def generate_chains(teacher: Pruner, problems: list[Example], n_samples: int = 10, temperature: float = 0.7,
                    max_new_tokens: int = 512, seed: int = 0, batch_size: int = 8, top_p: float = 1.0,
                    top_k: int = 0, keep_samples: bool = False, progress: bool = True,
                    **generate_kwargs: Any) -> ChainGeneration:
    """Rejection-sample up to ``n_samples`` chains per problem; keep the first correct one.

    Each problem is prompted with its format's system prompt (``teacher.render``); the text before
    the answer line becomes the reasoning, and the gold answer is kept as the answer.
    ``top_p=1, top_k=0`` (no truncation) match the paper's vLLM sampling.

    >>> result = generate_chains(teacher, problems, n_samples=4)   # doctest: +SKIP
    >>> result.examples[0].meta["sample_index"], result.failed     # doctest: +SKIP
    (0, ['gsm8k-test-7'])
    """
    _check_inputs(problems, n_samples, temperature, max_new_tokens, batch_size)
    gen_kwargs = {"temperature": temperature, "top_p": top_p, "top_k": top_k, **generate_kwargs}
    attempts = {p.id: 0 for p in problems}
    samples: dict[str, list[str]] = {p.id: [] for p in problems} if keep_samples else {}
    accepted: dict[int, Example] = {}
    pending = list(range(len(problems)))
    device = teacher.device
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices), tqdm(
        total=len(problems), desc=f"teacher {teacher.name}", unit="problem", disable=not progress
    ) as bar:
        torch.manual_seed(seed)
        for k in range(n_samples):
            still: list[int] = []
            for start in range(0, len(pending), batch_size):
                chunk = pending[start:start + batch_size]
                texts = _sample(teacher, [problems[i] for i in chunk], max_new_tokens, gen_kwargs)
                for i, text in zip(chunk, texts):
                    problem = problems[i]
                    attempts[problem.id] += 1
                    if keep_samples:
                        samples[problem.id].append(text)
                    fmt = problem.prompt_format
                    reasoning, predicted = split_answer(text, fmt)
                    if predicted is not None and reasoning and check_answer(predicted, problem.answer, fmt):
                        meta = {**problem.meta, "teacher": teacher.name, "sample_index": k,
                                "attempts": k + 1, "teacher_answer": predicted, "temperature": temperature,
                                "seed": seed, "reasoning_source": "teacher"}
                        accepted[i] = Example(problem.question, reasoning, problem.answer, problem.id, meta)
                        bar.update(1)
                    else:
                        still.append(i)
            pending = still
            bar.set_postfix(sample=k + 1, pending=len(pending))
            if not pending:
                break
        bar.update(len(pending))  # failures are resolved too
    return ChainGeneration(
        examples=[accepted[i] for i in sorted(accepted)],
        failed=[problems[i].id for i in pending],
        attempts=attempts,
        teacher=teacher.name,
        n_samples=n_samples,
        samples=samples,
    )
