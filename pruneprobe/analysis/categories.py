"""Functional categories of reasoning tokens: a rule annotator, token alignment, agreement.

Six roles (definitions, edge cases and agreement with the hand-annotated gold set:
``docs/categories.md``): SymbMath (``48/2 = 24``, ``£``), VerbalMath (``half as many``, ``in total``,
``each``, ``sold``), EntName (``Natalia``, ``clips``, ``May``), CoRef (``she``, ``they``, ``this``),
MetaDisc (``First``, ``So``, ``Let's``, ``we need to``) and Grammar (articles, prepositions,
auxiliaries, plain punctuation, verbs and adjectives that state no math).

>>> [(w.word, w.category) for w in annotate_words("So she sold 48/2 = 24 clips.", "Natalia sold clips")]
... # doctest: +NORMALIZE_WHITESPACE
[('So', 'MetaDisc'), ('she', 'CoRef'), ('sold', 'VerbalMath'), ('48', 'SymbMath'), ('/', 'SymbMath'),
 ('2', 'SymbMath'), ('=', 'SymbMath'), ('24', 'SymbMath'), ('clips', 'EntName'), ('.', 'Grammar')]
>>> label_tokens([" She", " sold", " ", "1", "2", "0", "."], " She sold 120.")
['CoRef', 'VerbalMath', 'SymbMath', 'SymbMath', 'SymbMath', 'SymbMath', 'Grammar']
>>> a = agreement(["SymbMath", "SymbMath", "Grammar", "Grammar"], ["SymbMath", "Grammar", "Grammar", "Grammar"])
>>> a.cohen_kappa, a.accuracy, a.n
(0.5, 0.75, 4)

Words come from an *annotator*: ``None`` (the rules of :func:`annotate_words`), an object with
``.annotate(reasoning, question) -> list[WordLabel]`` (e.g. :class:`LLMAnnotator`), or such a callable.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

# names, lexicons and rule tables (the public names are re-exported here)
from pruneprobe.analysis.category_rules import (
    _MATH_PUNCT,
    CATEGORIES,
    CATEGORY_DESCRIPTIONS,
    CO_REF,
    ENT_NAME,
    GRAMMAR,
    META_DISC,
    SYMB_MATH,
    VERBAL_MATH,
    AnnotationError,
    WordLabel,
    normalize_category,
)
from pruneprobe.analysis.llm_annotator import LLMAnnotator, build_prompt, hf_generator, openai_endpoint, parse_reply
from pruneprobe.analysis.rule_annotator import RuleAnnotator, annotate_words
from pruneprobe.errors import PruneprobeError


def _annotate(annotator, reasoning: str, question: str) -> list[WordLabel]:
    if annotator is None:
        return annotate_words(reasoning, question)
    if hasattr(annotator, "annotate"):
        return annotator.annotate(reasoning, question)
    if callable(annotator):
        return annotator(reasoning, question)
    raise PruneprobeError(f"annotator must be None, have .annotate(reasoning, question) or be callable, "
                          f"got {type(annotator).__name__}")


def _align(tokens, reasoning: str, words: list[WordLabel]) -> list[tuple[str, str]]:
    if "".join(tokens) != reasoning:
        raise PruneprobeError("tokens must join to the reasoning text exactly (character pieces of it)")
    out, end, w0 = [], 0, 0
    words = sorted(words, key=lambda w: w.start)
    for tok in tokens:
        start, end, core = end, end + len(tok), tok.strip()
        if not core:
            out.append(None)
            continue
        while w0 < len(words) and words[w0].end <= start:
            w0 += 1
        best, best_key = None, None
        for w in words[w0:]:
            if w.start >= end:
                break
            chars = sum(not c.isspace() for c in reasoning[max(start, w.start):min(end, w.end)])
            key = (chars, -CATEGORIES.index(normalize_category(w.category)))  # most chars, then category order
            if chars and (best_key is None or key > best_key):
                best, best_key = w, key
        if best is None:
            out.append((GRAMMAR, "no annotated word under this token"))
            continue
        why, cat = f"{best.justification} ({best.word!r})", normalize_category(best.category)
        if any(c.isalnum() for c in core):
            out.append((cat, why))
        elif cat == SYMB_MATH and (set(core) <= _MATH_PUNCT or (
                core in (".", ",") and reasoning[start - 1:start].isdigit() and reasoning[end:end + 1].isdigit())):
            out.append((SYMB_MATH, f"math punctuation in {why}"))
        else:
            out.append((GRAMMAR, f"punctuation in {why}"))
    return _carry_whitespace(out)


def _carry_whitespace(out: list) -> list[tuple[str, str]]:
    """A whitespace-only token takes the label of the next token with text (the last one's: the previous)."""
    nxt = None
    for k in range(len(out) - 1, -1, -1):
        if out[k] is None:
            out[k] = (nxt[0], f"whitespace before {nxt[1]}") if nxt else None
        else:
            nxt = out[k]
    prev = (GRAMMAR, "whitespace-only text")
    for k, o in enumerate(out):
        if o is None:
            out[k] = (prev[0], f"whitespace after {prev[1]}")
        prev = out[k]
    return out


def label_tokens(tokens: list[str], reasoning: str, question: str = "", annotator=None) -> list[str]:
    """One category per token piece (``"".join(tokens) == reasoning``), for any tokenizer.

    A token takes the category of the word holding most of its non-space characters (ties: the first
    in ``CATEGORIES``), so every piece of a split number is SymbMath. Punctuation-only tokens are
    SymbMath when they are math symbols (or a ``.``/``,`` between digits) inside a SymbMath word,
    otherwise Grammar. A whitespace-only token (a space some tokenizers split off before digits, a
    newline) is carried by the token it precedes, as a leading space inside ``" clips"`` already is;
    its justification starts with ``whitespace before``, so analyses can still set it apart.

    >>> label_tokens([" 48", "/", "2", " =", " 24", " clips", ".\\n"], " 48/2 = 24 clips.\\n", "48 clips")
    ['SymbMath', 'SymbMath', 'SymbMath', 'SymbMath', 'SymbMath', 'EntName', 'Grammar']
    """
    return [c for c, _ in _align(tokens, reasoning, _annotate(annotator, reasoning, question))]


def label_result(result, annotator=None) -> pd.DataFrame:
    """Token table of a ``PruneResult``: example_id, index, token, category, justification."""
    reasoning = "".join(result.tokens)
    question = (result.example or {}).get("question", "") or ""
    pairs = _align(result.tokens, reasoning, _annotate(annotator, reasoning, question))
    return pd.DataFrame({"example_id": result.example_id, "index": range(len(result.tokens)),
                         "token": list(result.tokens), "category": [c for c, _ in pairs],
                         "justification": [j for _, j in pairs]})


# --- agreement -----------------------------------------------------------------------------------
@dataclass
class Agreement:
    """Agreement of two label sequences; ``confusion`` rows are annotator a, columns annotator b."""

    cohen_kappa: float
    accuracy: float
    confusion: pd.DataFrame
    n: int


def agreement(labels_a, labels_b) -> Agreement:
    """Cohen's kappa (sklearn), accuracy and the 6x6 confusion matrix of two category sequences.

    Labels are normalised with :func:`normalize_category`. Identical labels give kappa 1 even when
    a single category is used (where sklearn's formula is 0/0).
    """
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    a = [normalize_category(x) for x in labels_a]
    b = [normalize_category(x) for x in labels_b]
    if len(a) != len(b) or not a:
        raise PruneprobeError(f"agreement needs two non-empty label lists of equal length, got {len(a)}, {len(b)}")
    acc = sum(x == y for x, y in zip(a, b)) / len(a)
    kappa = 1.0 if acc == 1 else float(cohen_kappa_score(a, b, labels=list(CATEGORIES)))
    cm = confusion_matrix(a, b, labels=list(CATEGORIES))
    conf = pd.DataFrame(cm, index=pd.Index(CATEGORIES, name="a"), columns=pd.Index(CATEGORIES, name="b"))
    return Agreement(cohen_kappa=kappa, accuracy=acc, confusion=conf, n=len(a))


__all__ = ["SYMB_MATH", "VERBAL_MATH", "ENT_NAME", "CO_REF", "META_DISC", "GRAMMAR", "CATEGORIES",
           "CATEGORY_DESCRIPTIONS", "AnnotationError", "WordLabel", "annotate_words", "RuleAnnotator",
           "label_tokens", "label_result", "normalize_category", "parse_reply", "build_prompt",
           "LLMAnnotator", "openai_endpoint", "hf_generator", "Agreement", "agreement"]
