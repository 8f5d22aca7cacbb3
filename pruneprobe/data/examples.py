"""Examples (question, reasoning, answer) and the prompt formats of each dataset family.

Canonical pattern::

    from pruneprobe import load_examples
    examples = load_examples("gsm_symbolic", n=5, seed=0)

The scored sequence is ``system + question`` as the user turn and ``reasoning + "\\n" + answer
line`` as the assistant turn, where the answer line is the format's ``answer_template``.

GSM8K calculator annotations (``<<48/2=24>>``) are removed from the reasoning of every
``gsm8k``-format example, however it is made (``Example(...)``, the loaders, ``pruneprobe run``):
they are a calculator tool's markup repeating the arithmetic beside them, and GSM8K users (and
the cached runs) prune chains without them. ``keep_calculator=True`` (``--keep-calculator``)
keeps them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pruneprobe.errors import PruneprobeError


@dataclass(frozen=True)
class PromptFormat:
    """System prompt and final-answer line of one dataset family (docs/method.md)."""

    name: str
    system_prompt: str
    answer_template: str  # with one ``{answer}`` field
    answer_prefix: str  # the part of the answer line before the answer itself

    def render_answer(self, answer: str) -> str:
        return self.answer_template.format(answer=answer)


PROMPT_FORMATS: dict[str, PromptFormat] = {
    "gsm8k": PromptFormat(
        name="gsm8k",
        system_prompt=(
            "Solve the following math problem step by step. At the end, give the final answer "
            'as JSON: {"answer": "<number>"}'
        ),
        answer_template='{{"answer": "{answer}"}}',
        answer_prefix='{"answer": "',
    ),
    "math": PromptFormat(
        name="math",
        system_prompt=(
            "Solve the following math problem step by step. End with: "
            "Thus, the final answer is: <answer>"
        ),
        answer_template="Thus, the final answer is: {answer}",
        answer_prefix="Thus, the final answer is: ",
    ),
    "mmlu_pro": PromptFormat(
        name="mmlu_pro",
        system_prompt=(
            "Answer the following multiple choice question. Think step by step, then end with: "
            "Thus, the final answer is: <letter>"
        ),
        answer_template="Thus, the final answer is: {answer}",
        answer_prefix="Thus, the final answer is: ",
    ),
}


@dataclass(frozen=True)
class Example:
    """One (question, reasoning, answer) triple; ``meta["format"]`` picks the prompt format.

    A ``gsm8k``-format reasoning loses its calculator annotations unless ``keep_calculator``:

    >>> Example("Q?", "48/2 = <<48/2=24>>24 clips", "24").reasoning
    '48/2 = 24 clips'
    """

    question: str
    reasoning: str
    answer: str
    id: str = "0"
    meta: dict = field(default_factory=dict)
    keep_calculator: bool = False

    def __post_init__(self):
        if not self.keep_calculator and isinstance(self.reasoning, str) and self.meta.get("format", "gsm8k") == "gsm8k":
            object.__setattr__(self, "reasoning", strip_calculator_annotations(self.reasoning))

    @property
    def prompt_format(self) -> PromptFormat:
        name = self.meta.get("format", "gsm8k")
        if name not in PROMPT_FORMATS:
            raise PruneprobeError(f"unknown prompt format {name!r}; known: {', '.join(PROMPT_FORMATS)}")
        return PROMPT_FORMATS[name]

    def validate(self) -> None:
        """Raise a clear error for an empty reasoning or a missing answer."""
        if not self.reasoning or not self.reasoning.strip():
            raise PruneprobeError(f"example {self.id!r}: empty reasoning, nothing to prune")
        if self.answer is None or not str(self.answer).strip():
            raise PruneprobeError(f"example {self.id!r}: answer missing")
        if not self.question or not self.question.strip():
            raise PruneprobeError(f"example {self.id!r}: empty question")

    def to_dict(self) -> dict:
        d = {"question": self.question, "reasoning": self.reasoning, "answer": self.answer,
             "id": self.id, "meta": dict(self.meta)}
        return {**d, "keep_calculator": True} if self.keep_calculator else d

    @classmethod
    def from_dict(cls, d: dict) -> "Example":
        return cls(d["question"], d["reasoning"], d["answer"], str(d.get("id", "0")), dict(d.get("meta") or {}),
                   bool(d.get("keep_calculator", False)))


_ANNOTATION = re.compile(r"<<[^<>]*>>")


def strip_calculator_annotations(text: str) -> str:
    """Remove GSM8K ``<<48/2=24>>`` calculator annotations.

    >>> strip_calculator_annotations("48/2 = <<48/2=24>>24 clips")
    '48/2 = 24 clips'
    """
    return _ANNOTATION.sub("", text)

