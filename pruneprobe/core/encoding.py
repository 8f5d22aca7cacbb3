"""Turn an Example into the pruner's token ids and locate the reasoning span in them.

The full exchange is rendered once with the pruner's template and tokenised once; the reasoning is
then found through the tokenizer's character offsets. Question, reasoning and answer are ordinary
text: the literal characters of a special token there (``<|im_end|>``, ``<end_of_turn>``) are
split like any text, never read as the control token (``Pruner.tokenize``'s ``plain_spans``). Tokens may merge characters across an edge
of the span (``" In"`` after a plain template's ``"Answer:"``, ``".\\n"`` before the answer line):
such a token belongs to the reasoning when most of its non-whitespace characters do
(whitespace-only tokens: when their first character does). Reasoning tokens are never produced by
re-tokenising edited text.

>>> enc = encode_example(pruner, example)                 # doctest: +SKIP
>>> enc.input_ids[enc.reasoning_start:enc.reasoning_end]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pruneprobe.data.examples import Example
from pruneprobe.data.models import Pruner
from pruneprobe.errors import PruneprobeError


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of the scored sequence; ``[reasoning_start, reasoning_end)`` is the reasoning."""

    input_ids: torch.Tensor  # 1-D long
    reasoning_start: int
    reasoning_end: int
    template: str
    text: str
    reasoning_pieces: tuple[str, ...] = ()  # text of each reasoning token; they join to the reasoning

    @property
    def n_reasoning(self) -> int:
        return self.reasoning_end - self.reasoning_start

    @property
    def prefix_ids(self) -> torch.Tensor:
        return self.input_ids[: self.reasoning_start]

    @property
    def reasoning_ids(self) -> torch.Tensor:
        return self.input_ids[self.reasoning_start : self.reasoning_end]

    @property
    def suffix_ids(self) -> torch.Tensor:
        return self.input_ids[self.reasoning_end :]


def assistant_text(example: Example) -> tuple[str, str]:
    """The assistant turn (reasoning, newline, answer line) and the reasoning inside it."""
    reasoning = example.reasoning.strip()
    return reasoning + "\n" + example.prompt_format.render_answer(str(example.answer).strip()), reasoning


def encode_example(pruner: Pruner, example: Example) -> EncodedExample:
    """Render, tokenise once, and locate the reasoning tokens by character offsets."""
    example.validate()
    fmt = example.prompt_format
    assistant, reasoning = assistant_text(example)
    question = example.question.strip()
    text = pruner.render(fmt.system_prompt, question, assistant)
    start_char = _find_assistant_reasoning(text, assistant, reasoning, example.id)
    end_char = start_char + len(reasoning)
    enc = pruner.tokenize(text, plain_spans=_content_spans(text, question, assistant, reasoning, start_char))
    ids, offsets = enc["input_ids"], enc["offsets"]
    inside = [i for i, (s, e) in enumerate(offsets) if e > s and _in_span(text, s, e, start_char, end_char)]
    if not inside:
        raise PruneprobeError(
            f"example {example.id!r}: reasoning span could not be located in the tokenised prompt "
            "(no token starts inside it)"
        )
    r_start, r_end = inside[0], inside[-1] + 1
    if r_end - r_start != len(inside):
        raise PruneprobeError(f"example {example.id!r}: reasoning tokens are not contiguous in the prompt")
    if r_end >= len(ids):
        raise PruneprobeError(f"example {example.id!r}: no answer tokens after the reasoning")
    if len(ids) > pruner.max_length:
        raise PruneprobeError(
            f"example {example.id!r}: sequence of {len(ids)} tokens is longer than the model's context "
            f"({pruner.max_length})"
        )
    starts = [offsets[i][0] for i in range(r_start, r_end)] + [offsets[r_end - 1][1]]
    pieces = tuple(text[a:b] for a, b in zip(starts, starts[1:]))
    return EncodedExample(torch.tensor(ids, dtype=torch.long), r_start, r_end, pruner.template, text, pieces)


def _in_span(text: str, s: int, e: int, lo: int, hi: int) -> bool:
    """Most non-whitespace characters of text[s:e] lie in [lo, hi)."""
    solid = [i for i in range(s, e) if not text[i].isspace()]
    if not solid:
        return lo <= s < hi
    return 2 * sum(lo <= i < hi for i in solid) > len(solid)


def _content_spans(text: str, question: str, assistant: str, reasoning: str, start: int) -> list[tuple[int, int]]:
    """Where the question and the assistant turn (reasoning and answer line; only the reasoning
    when the template rewrote the turn) lie in ``text``."""
    spans = [(start, start + len(assistant if text.startswith(assistant, start) else reasoning))]
    q = text.rfind(question, 0, start)
    if q >= 0:
        spans.insert(0, (q, q + len(question)))
    return spans


def _find_assistant_reasoning(text: str, assistant: str, reasoning: str, example_id: str) -> int:
    pos = text.rfind(assistant)
    if pos < 0:  # a template that rewrote the assistant turn (trimmed, escaped): look for reasoning
        pos = text.rfind(reasoning)
    if pos < 0:
        raise PruneprobeError(
            f"example {example_id!r}: reasoning span cannot be located: the chat template changed the "
            "assistant text"
        )
    return pos
