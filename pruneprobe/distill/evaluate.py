"""Evaluation of students: greedy accuracy on held-out problems, disjoint from the training chains.

Canonical pattern::

    from pruneprobe import load_pruner
    from pruneprobe.distill.evaluate import evaluate_student, heldout_gsm_symbolic
    problems = heldout_gsm_symbolic(100, train_seed=0, train_questions=[d.question for d in data])
    evaluate_student(trained.student, problems, label="greedy@0.7")   # trained: distill.train.train_student
    evaluate_student(load_pruner("smollm2-135m"), problems, label="zero-shot")

Gotchas:
- Generation prompts end where the completion starts in training, less trailing spaces (a token
  like ``" In"`` that straddles the boundary is trained and must be generated).
- Zero-shot and full-chain references use the same functions (no training; and
  ``build_sft_data(results, 1.0, ...)`` of :mod:`pruneprobe.distill.sft`).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import pandas as pd

from pruneprobe.data.answers import check_answer, extract_answer
from pruneprobe.data.datasets import load_examples
from pruneprobe.data.examples import Example
from pruneprobe.data.models import Pruner
from pruneprobe.distill.sufficiency import GenerateFn, assistant_prefix_prompt, generate_greedy, summarize_accuracy
from pruneprobe.errors import PruneprobeError


def student_prompt(student: Pruner, example: Example) -> str:
    """Where the completion starts in training (trailing spaces left for the model to write)."""
    fmt = example.prompt_format
    return assistant_prefix_prompt(student, fmt.system_prompt, example.question.strip(), "").rstrip(" ")


def evaluate_student(student: Pruner, problems: Sequence[Example], max_new_tokens: int = 256, batch_size: int = 8,
                     n_boot: int = 1000, seed: int = 0, *, label: str = "student", per_example: bool = False,
                     progress: bool = True, generate: GenerateFn | None = None) -> pd.DataFrame:
    """Greedy accuracy of ``student`` on ``problems``: one row ``label, n, n_correct, accuracy,
    ci_low, ci_high, answered, mean_new_tokens`` (bootstrap 95% CI). Garbage output scores 0.

    >>> evaluate_student(load_pruner("smollm2-135m"), problems, label="zero-shot")  # doctest: +SKIP
    """
    if not problems:
        raise PruneprobeError("no problems to evaluate on")
    prompts = [student_prompt(student, ex) for ex in problems]
    if generate is None:
        outputs = generate_greedy(student, prompts, max_new_tokens, batch_size, progress, desc=f"eval {label}")
    else:
        outputs = list(generate(prompts))
    if len(outputs) != len(prompts):
        raise PruneprobeError(f"generate returned {len(outputs)} outputs for {len(prompts)} prompts")
    rows = []
    for ex, text in zip(problems, outputs):
        fmt = ex.prompt_format
        pred = extract_answer(text, fmt)
        n_new = len(student.tokenizer(text or "", add_special_tokens=False)["input_ids"])
        rows.append(dict(label=label, example_id=ex.id, output=text, predicted=pred, gold=ex.answer,
                         answered=pred is not None, correct=check_answer(pred, str(ex.answer), fmt),
                         n_new_tokens=n_new))
    df = pd.DataFrame(rows)
    if per_example:
        return df
    summary = summarize_accuracy(df, ("label",), n_boot, seed)
    summary["mean_new_tokens"] = float(df.n_new_tokens.mean())
    return summary


def check_disjoint(train_questions: Iterable[str], problems: Sequence[Example]) -> None:
    """Raise when a held-out problem's question (whitespace-normalised) is in the training set."""
    norm = {" ".join(q.split()) for q in train_questions}
    shared = [p.id for p in problems if " ".join(p.question.split()) in norm]
    if shared:
        raise PruneprobeError(f"{len(shared)} held-out problems also appear in training (e.g. {shared[0]!r})")


def heldout_gsm_symbolic(n: int, train_seed: int, train_n: int | None = None,
                         train_questions: Iterable[str] | None = None, offset: int = 1_000_000) -> list[Example]:
    """``n`` gsm_symbolic problems disjoint from a training set made with ``seed=train_seed``.

    Item i of seed s is drawn with ``Random(s + i)``, so nearby seeds share items (seed 1's item 0
    is seed 0's item 1 with another template). The held-out seed is ``train_seed + offset``, whose
    RNG streams do not meet the training ones while ``train_n <= offset``; questions are checked too
    (against ``train_questions``, else a regenerated training set of ``train_n`` or ``n`` items).
    Templates are shared by design: held-out means new instantiations, not new problem types.

    >>> [p.id for p in heldout_gsm_symbolic(2, train_seed=0)]
    ['gsm_symbolic-1000000-0', 'gsm_symbolic-1000000-1']
    """
    if train_n is not None and train_n > offset:
        raise PruneprobeError(f"train_n={train_n} exceeds offset={offset}; pass a larger offset")
    problems = load_examples("gsm_symbolic", n=n, seed=train_seed + offset)
    if train_questions is None:
        train_questions = [e.question for e in load_examples("gsm_symbolic", n=train_n or n, seed=train_seed)]
    check_disjoint(train_questions, problems)
    return problems


__all__ = ["student_prompt", "evaluate_student", "check_disjoint", "heldout_gsm_symbolic"]
