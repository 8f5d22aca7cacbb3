"""Extract final answers from model text and check them against gold answers (docs/method.md).

Canonical pattern::

    from pruneprobe.data.answers import extract_answer, check_answer
    pred = extract_answer('... so 9 * 2 = 18.\\n{"answer": "18"}', "gsm8k")   # -> "18"
    check_answer(pred, "18.0", "gsm8k")                                         # -> True

Gotchas:
- Nothing here raises on garbage model output: extraction gives ``None``, checking gives ``False``.
  Only an unknown format name raises :class:`PruneprobeError`.
- Numbers and expressions go through ``math_verify`` (``1,000`` == ``1000``, ``$18`` == ``18``,
  ``18.0`` == ``18``, ``\\frac12`` == ``0.5``); MMLU-Pro answers are compared as letters A-J.
- ``math_verify`` times out with ``SIGALRM``, which works only in the main thread; elsewhere
  its timeouts are switched off.
"""

from __future__ import annotations

import re
import threading
from typing import NamedTuple

from pruneprobe.data.examples import PROMPT_FORMATS, PromptFormat
from pruneprobe.errors import PruneprobeError

_MAX_ANSWER_CHARS = 500  # longer "answers" are runaway generations
_TIMEOUT_S = 2  # per math_verify parse/verify call (SIGALRM, main thread only)
_NUMBER = r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+"
_JSON_ANSWER = re.compile(r"""\{\s*["']?answer["']?\s*:\s*(?:"([^"\n]*)"|'([^'\n]*)'|([^,}\n]*?))\s*\}""",
                          re.IGNORECASE)
_HASHES = re.compile(r"####\s*([^\n]*)")
_FINAL = re.compile(r"(?:(?:thus|so|therefore|hence),?\s+)?(?:the\s+)?final\s+answer\s+is\s*:?[ \t]*([^\n]*)",
                    re.IGNORECASE)
_LETTER_PHRASE = re.compile(  # the phrase in any case, the letter in capitals only ("is a prime")
    r"(?i:(?:(?:thus|so|therefore|hence),?\s+)?(?:the\s+)?(?:final\s+)?answer\s+is)\s*:?\s*"
    r"(?:\$?\\boxed\{|\\text\{|\*\*)?\s*\(?([A-J])\)?(?![A-Za-z])")
_BARE_LETTER = re.compile(r"^\W*(?:\\boxed\{|\\text\{)?\s*\(?([A-Ja-j])\)?\s*\}?[.):]?\s*\}?\W*$")


class AnswerSpan(NamedTuple):
    """An extracted answer and where its answer line starts in the text (``None``: no marker)."""

    answer: str
    start: int | None


def get_format(fmt: PromptFormat | str) -> PromptFormat:
    """The :class:`PromptFormat` for a name or the format itself; unknown names raise."""
    if isinstance(fmt, PromptFormat):
        return fmt
    if not isinstance(fmt, str) or fmt not in PROMPT_FORMATS:
        raise PruneprobeError(f"unknown prompt format {fmt!r}; known: {', '.join(PROMPT_FORMATS)}")
    return PROMPT_FORMATS[fmt]


def last_boxed(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` (or ``\fbox{...}``), nested braces handled.

    >>> last_boxed(r"so $\boxed{\frac{1}{2}}$ and not \boxed{3")
    '\\frac{1}{2}'
    """
    if not isinstance(text, str):
        return None
    for match in reversed(list(re.finditer(r"\\(?:boxed|fbox)\s*\{", text))):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                return text[start:i].strip()
    return None


def _clean(answer: str) -> str:
    answer = answer.strip().strip("*").strip().rstrip(".").strip()
    if answer.startswith("$") and answer.endswith("$") and len(answer) > 1 and answer.count("$") == 2:
        answer = answer[1:-1].strip()
    boxed = last_boxed(answer)
    if boxed is not None:
        answer = boxed
    return answer.rstrip(".").strip()


def find_answer(text: str | None, fmt: PromptFormat | str) -> AnswerSpan | None:
    """The final answer of ``text`` and the start of its answer line, or ``None``.

    >>> find_answer('2 + 2 = 4.\\n{"answer": "4"}', "gsm8k")
    AnswerSpan(answer='4', start=11)
    """
    fmt = get_format(fmt)
    if not isinstance(text, str) or not text.strip():
        return None
    if fmt.name == "mmlu_pro":
        matches = list(_LETTER_PHRASE.finditer(text))
        if matches:
            return AnswerSpan(matches[-1].group(1).upper(), matches[-1].start())
        bare = _BARE_LETTER.match(text.strip().splitlines()[-1]) if text.strip() else None
        return AnswerSpan(bare.group(1).upper(), None) if bare else None
    if fmt.name == "gsm8k":
        for match in reversed(list(_JSON_ANSWER.finditer(text))):
            value = next((g for g in match.groups() if g is not None), "")
            if _clean(value):
                return AnswerSpan(_clean(value), match.start())
        for pattern in (_HASHES, _FINAL):
            for match in reversed(list(pattern.finditer(text))):
                if _clean(match.group(1)):
                    return AnswerSpan(_clean(match.group(1)), match.start())
        numbers = re.findall(_NUMBER, text)
        return AnswerSpan(numbers[-1].rstrip(".,"), None) if numbers else None
    # math
    for match in reversed(list(_FINAL.finditer(text))):
        value = _clean(match.group(1))
        if value:
            return AnswerSpan(value, match.start())
    boxed = last_boxed(text)
    return AnswerSpan(boxed, None) if boxed else None


def extract_answer(text: str | None, fmt: PromptFormat | str) -> str | None:
    r"""The final answer a model wrote, or ``None`` when there is none.

    gsm8k: the last ``{"answer": "..."}``, else ``#### x``, else "final answer is", else the last
    number. math: the text after "final answer is:", else the last ``\boxed{}``. mmlu_pro: the
    letter after "final answer is" / "answer is (X)".

    >>> extract_answer("The answer is (C).", "mmlu_pro")
    'C'
    """
    span = find_answer(text, fmt)
    return span.answer if span else None


def split_answer(text: str, fmt: PromptFormat | str) -> tuple[str, str | None]:
    """Split generated text into (reasoning before the answer line, extracted answer).

    Without an answer line (answer found only as a bare number or ``\\boxed{}``) the whole text
    is the reasoning.

    >>> split_answer('3 + 4 = 7.\\n{"answer": "7"}\\nextra', "gsm8k")
    ('3 + 4 = 7.', '7')
    """
    span = find_answer(text, fmt)
    if span is None:
        return (text or "").strip(), None
    reasoning = text if span.start is None else text[: span.start]
    return reasoning.strip(), span.answer


def _letter(answer: str) -> str | None:
    match = _BARE_LETTER.match(answer.strip())
    if match:
        return match.group(1).upper()
    span = find_answer(answer, "mmlu_pro")
    return span.answer if span else None


def _numeric_form(answer: str) -> str:
    """GSM8K-style cleanup: drop currency signs, thousands commas and trailing unit words."""
    text = re.sub(r"\\?[$£€]|\\%|%", "", answer).strip()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    numbers = re.findall(_NUMBER, text)
    if len(numbers) == 1 and re.fullmatch(rf"\s*({_NUMBER})\s*[A-Za-z .]*", text):
        return numbers[0]
    return text


def _parse(answer: str):
    from math_verify import parse

    timeout = _TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    for candidate in (f"\\boxed{{{answer}}}", answer, f"${answer}$"):
        try:
            parsed = parse(candidate, parsing_timeout=timeout)
        except Exception:  # math_verify is robust, but never let garbage text raise
            parsed = []
        if parsed:
            return parsed
    return []


def _plain(answer: str) -> str:
    answer = re.sub(r"\\text\{([^{}]*)\}", r"\1", answer)
    return re.sub(r"[\s$\\{}]", "", answer).lower().rstrip(".")


def check_answer(predicted: str | None, gold: str | None, fmt: PromptFormat | str) -> bool:
    """Whether ``predicted`` matches ``gold``: math_verify for numbers/expressions, letters for MMLU-Pro.

    >>> check_answer("$1,000", "1000", "gsm8k"), check_answer("(b)", "B", "mmlu_pro")
    (True, True)
    """
    fmt = get_format(fmt)
    if not isinstance(predicted, str) or not isinstance(gold, str) or not predicted.strip() or not gold.strip():
        return False
    if len(predicted) > _MAX_ANSWER_CHARS or len(gold) > _MAX_ANSWER_CHARS:  # runaway text; keeps sympy cheap
        return False
    if fmt.name == "mmlu_pro":
        pred, ref = _letter(predicted), _letter(gold)
        return pred is not None and pred == ref
    pred, ref = _clean(predicted), _clean(gold)
    if fmt.name == "gsm8k":
        pred, ref = _numeric_form(pred), _numeric_form(ref)
    if not pred or not ref:
        return False
    from math_verify import verify

    parsed_pred, parsed_ref = _parse(pred), _parse(ref)
    if not parsed_pred or not parsed_ref:  # unparseable (e.g. plain words): compare normalised text
        return _plain(pred) == _plain(ref)
    timeout = _TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    try:
        return bool(verify(parsed_ref, parsed_pred, timeout_seconds=timeout))
    except Exception:
        return False
