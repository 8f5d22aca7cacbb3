"""Functional categories of reasoning tokens (DESIGN §4): a rule annotator, an LLM annotator, agreement.

Six roles: SymbMath (``48/2 = 24``), VerbalMath (``half as many``, ``in total``, ``each``), EntName
(``Natalia``, ``clips``, ``May``), CoRef (``she``, ``they``, ``this``), MetaDisc (``First``, ``So``,
``Let's``, ``we need to``) and Grammar (articles, prepositions, auxiliaries, plain punctuation).

>>> [(w.word, w.category) for w in annotate_words("So she sold 48/2 = 24 clips.", "Natalia sold clips")]
... # doctest: +NORMALIZE_WHITESPACE
[('So', 'MetaDisc'), ('she', 'CoRef'), ('sold', 'EntName'), ('48', 'SymbMath'), ('/', 'SymbMath'),
 ('2', 'SymbMath'), ('=', 'SymbMath'), ('24', 'SymbMath'), ('clips', 'EntName'), ('.', 'Grammar')]
>>> label_tokens([" She", " sold", " 1", "2", "0", "."], " She sold 120.")
['CoRef', 'EntName', 'SymbMath', 'SymbMath', 'SymbMath', 'Grammar']
>>> a = agreement(["SymbMath", "SymbMath", "Grammar", "Grammar"], ["SymbMath", "Grammar", "Grammar", "Grammar"])
>>> a.cohen_kappa, a.accuracy, a.n
(0.5, 0.75, 4)

Words come from an *annotator*: ``None`` (the rules of :func:`annotate_words`), an object with
``.annotate(reasoning, question) -> list[WordLabel]`` (e.g. :class:`LLMAnnotator`), or such a callable.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# names, lexicons and rule tables (the public names are re-exported here)
from .category_rules import (_ALIAS, _COREF, _ITEM, _MARKUP, _MATH_PUNCT, _META, _META_INITIAL, _MONTHS,
                             _NUMBER_WORDS, _OPS, _PHRASE_RULES, _STOP, _THAT_HEADS, _UNITS, _VERBAL,
                             CATEGORIES, CATEGORY_DESCRIPTIONS, CO_REF, ENT_NAME, GRAMMAR, META_DISC, SYMB_MATH,
                             VERBAL_MATH, _is_word, _lemma)
from .errors import PruneprobeError
from .result import atomic_write_text


class AnnotationError(PruneprobeError):
    """An annotator could not produce valid word labels (e.g. the LLM never replied valid JSON)."""


@dataclass(frozen=True)
class WordLabel:
    """One word of the reasoning: text, character span ``[start, end)``, category and why."""

    word: str
    start: int
    end: int
    category: str
    justification: str


# --- rule annotator (lexicons and rule tables: category_rules.py) ---------------------------------
def annotate_words(reasoning: str, question: str = "") -> list[WordLabel]:
    """Label every word and punctuation mark of ``reasoning`` by ordered rules (first match wins).

    Words: letter runs (``Let's`` is one), numbers (``1,200``, ``3.5``), LaTeX commands, single other
    characters. Rules in order; the rule's name is the label's ``justification``:

    1. SymbMath: ``symb-number``, ``symb-latex``, ``symb-operator`` (``= + × ÷ ^ < > $ %`` always; ``- * /
       :`` and ``x`` between math items, a minus before one), ``symb-bracket`` (math on the inner side),
       ``symb-variable`` (a single letter next to an operator or touching a number).
    2. Phrases, longest match, in this order: ``verbal-phrase`` (``half as many``, ``in total``, ``how
       many``), ``meta-phrase`` (``we need to``, ``let us``), ``coref-phrase`` (``the former``).
    3. VerbalMath words: ``verbal-word`` (``each``, ``times``, ``left``), ``verbal-number-word`` (``three``).
    4. CoRef: ``coref-pronoun`` (``she``, ``this``, ``which``), except ``that`` after ``know``/``means``/...
       (``grammar-complementizer``).
    5. MetaDisc: ``meta-word`` (``So``, ``Therefore``, ``find``, ``answer``, narrator ``we``/``I``) and
       ``meta-sentence-initial`` (``Also``, ``But``, ``However`` opening a sentence or a line).
    6. ``grammar-punctuation``; EntName ``entity-month`` (capitalised) and ``entity-unit`` (``dollars``);
       ``grammar-function-word`` (stop-word list: articles, prepositions, auxiliaries, ``may``...).
    7. EntName: ``entity-question`` (a word whose lemma is in the question: ``Natalia``, ``clips``, also
       its verbs like ``sold``), ``entity-capitalised`` (capitalised, not opening a sentence).
    8. Fallback: remaining words are EntName (``entity-fallback``): the categories are exhaustive, other
       open-class words describe the problem's world, and Grammar stays closed-class filler. Filter on
       the justification to re-map them.

    >>> [(w.word, w.category, w.justification) for w in annotate_words("Then 3 x 4.")]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('Then', 'MetaDisc', 'meta-word'), ('3', 'SymbMath', 'symb-number'), ('x', 'SymbMath', 'symb-operator'),
     ('4', 'SymbMath', 'symb-number'), ('.', 'Grammar', 'grammar-punctuation')]
    """
    items = [(m.group(), m.start(), m.end()) for m in _ITEM.finditer(reasoning)]
    n, text = len(items), [t for t, _, _ in items]
    low, cat, why = [t.lower() for t in text], [None] * n, [None] * n

    def put(i, c, r):
        if cat[i] is None:
            cat[i], why[i] = c, r

    def math(j):
        return 0 <= j < n and cat[j] == SYMB_MATH

    def touching(i, j):  # no space between items i and j (adjacent)
        return 0 <= min(i, j) and max(i, j) < n and items[min(i, j)][2] == items[max(i, j)][1]

    def initial(i):
        j = i - 1
        while j >= 0:
            if "\n" in reasoning[items[j][2]:items[j + 1][1]] or text[j] in (".", "!", "?", ":"):
                return True
            if text[j] not in _MARKUP:
                return False
            j -= 1
        return True

    # 1. SymbMath
    for i, t in enumerate(text):
        if t[0].isdigit():
            put(i, SYMB_MATH, "symb-number")
        elif t.startswith("\\") and len(t) > 1:
            put(i, SYMB_MATH, "symb-latex")
        elif t in _OPS:
            put(i, SYMB_MATH, "symb-operator")
    for _ in range(2):  # context rules; a second pass catches e.g. the "/" in "(48 + 24) / 2"
        for i, t in enumerate(text):
            if cat[i] is not None:
                continue
            between, nb = math(i - 1) and math(i + 1), (i - 1, i + 1)
            if (t in "-−–" and math(i + 1) or t in "*/" and between or t == "x" and between
                    or t == ":" and between and touching(i - 1, i) and touching(i, i + 1)):
                put(i, SYMB_MATH, "symb-operator")
            elif t in "([{" and math(i + 1) or t in ")]}" and math(i - 1):
                put(i, SYMB_MATH, "symb-bracket")
            elif len(t) == 1 and t.isalpha() and (
                    any(0 <= j < n and (text[j] in _OPS or math(j) and text[j] in "*/-−") for j in nb)
                    or (t not in "aAI" and any(touching(i, j) and text[j][0].isdigit() for j in nb))):
                put(i, SYMB_MATH, "symb-variable")

    # 2-4. phrases, longest first: VerbalMath, then MetaDisc, then CoRef
    for plist, category, rule in _PHRASE_RULES:
        split = sorted((p.split() for p in plist), key=len, reverse=True)
        for i in range(n):
            for p in split:
                if low[i:i + len(p)] == p and all(c is None for c in cat[i:i + len(p)]):
                    for j in range(i, i + len(p)):
                        put(j, category, f"{rule} '{' '.join(p)}'")
                    break
    # 2-8. single words, first match wins
    qwords = {_lemma(w) for w in _ITEM.findall(question) if _is_word(w) and w.lower() not in _STOP}
    for i, t in enumerate(text):
        w, lem = low[i].replace("’", "'"), _lemma(t)
        rules = ((w in _VERBAL, VERBAL_MATH, "verbal-word"),
                 (w in _NUMBER_WORDS, VERBAL_MATH, "verbal-number-word"),
                 (w == "that" and i > 0 and low[i - 1] in _THAT_HEADS, GRAMMAR, "grammar-complementizer"),
                 (w in _COREF, CO_REF, "coref-pronoun"),
                 (w in _META and (w != "i" or t == "I"), META_DISC, "meta-word"),
                 (w in _META_INITIAL and initial(i), META_DISC, "meta-sentence-initial"),
                 (not _is_word(t), GRAMMAR, "grammar-punctuation"),
                 (w in _MONTHS and t[0].isupper(), ENT_NAME, "entity-month"),
                 (lem in _UNITS, ENT_NAME, "entity-unit"),
                 (w in _STOP, GRAMMAR, "grammar-function-word"), (lem in qwords, ENT_NAME, "entity-question"),
                 (t[0].isupper() and not initial(i), ENT_NAME, "entity-capitalised"),
                 (True, ENT_NAME, "entity-fallback"))
        put(i, *next((c, r) for ok, c, r in rules if ok))
    return [WordLabel(t, s, e, c, r) for (t, s, e), c, r in zip(items, cat, why)]


class RuleAnnotator:
    """:func:`annotate_words` as an annotator object (``.annotate``), next to :class:`LLMAnnotator`."""

    name = "rules"
    annotate = staticmethod(annotate_words)


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
            out.append((GRAMMAR, "whitespace-only token"))
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
    return out


def label_tokens(tokens: list[str], reasoning: str, question: str = "", annotator=None) -> list[str]:
    """One category per token piece (``"".join(tokens) == reasoning``), for any tokenizer.

    A token takes the category of the word holding most of its non-space characters (ties: the first
    in ``CATEGORIES``), so every piece of a split number is SymbMath. Punctuation-only tokens are
    SymbMath when they are math symbols (or a ``.``/``,`` between digits) inside a SymbMath word,
    otherwise Grammar; whitespace-only tokens are Grammar.

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


# --- LLM annotator -------------------------------------------------------------------------------


def normalize_category(name) -> str:
    """Map a category name or alias, case- and punctuation-insensitively, to its canonical name.

    >>> normalize_category("Symbolic Math"), normalize_category("meta-disc"), normalize_category("ENTITY")
    ('SymbMath', 'MetaDisc', 'EntName')
    """
    key = re.sub(r"[^a-z]", "", str(name).lower())
    if key not in _ALIAS:
        raise AnnotationError(f"unknown category {name!r}; expected one of {', '.join(CATEGORIES)}")
    return _ALIAS[key]


def _extract_json(reply: str):
    """The first JSON object/list in ``reply``: whole text, a code fence, or embedded in prose."""
    def load(text, parse):
        try:
            obj = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
        return obj if isinstance(obj, (dict, list)) else None

    i, j = reply.find("{"), reply.rfind("}")
    cands = [reply.strip(), *re.findall(r"```(?:json|JSON)?\s*(.*?)```", reply, re.S)]
    for c in cands + ([reply[i:j + 1]] if 0 <= i < j else []):
        for parse in (json.loads, ast.literal_eval):  # literal_eval accepts single-quoted dicts
            if (obj := load(c, parse)) is not None:
                return obj
    for m in list(re.finditer(r"[{\[]", reply))[:50]:  # a JSON value followed by more prose
        if (obj := load(reply, lambda t: json.JSONDecoder().raw_decode(t, m.start())[0])) is not None:
            return obj
    raise AnnotationError("no JSON object found in the reply")


def parse_reply(reply: str, words: list[str]) -> list[tuple[str, str]]:
    """Validate an LLM reply against the expected ``words``; return (category, justification) pairs.

    >>> parse_reply('Sure!\\n```json\\n{"words": [{"word": "She", "category": "coref"}]}\\n```', ["She"])
    [('CoRef', '')]
    """
    obj = _extract_json(reply)
    items = obj.get("words") if isinstance(obj, dict) else obj
    if not isinstance(items, list):
        raise AnnotationError('the JSON must be {"words": [...]}')
    if len(items) != len(words):
        raise AnnotationError(f"expected {len(words)} words, got {len(items)}")
    out = []
    for k, (item, want) in enumerate(zip(items, words)):
        if not isinstance(item, dict) or "category" not in item:
            raise AnnotationError(f"entry {k} must be an object with word, category, justification")
        got = str(item.get("word", want))
        if re.sub(r"\W", "", got.lower()) != re.sub(r"\W", "", want.lower()):
            raise AnnotationError(f"entry {k} is the word {got!r}, expected {want!r} (words must follow "
                                  f"the list in order, none missing)")
        try:
            cat = normalize_category(item["category"])
        except AnnotationError as e:
            raise AnnotationError(f"entry {k} ({want!r}): {e}") from None
        out.append((cat, str(item.get("justification", ""))))
    return out


def build_prompt(reasoning: str, question: str = "") -> str:
    """The one prompt per chain: category definitions, the question, the chain and its word list."""
    words = reasoning.split()
    cats = "\n".join(f"- {c}: {d}" for c, d in CATEGORY_DESCRIPTIONS.items())
    return (f"Label each word of a chain of thought with its functional category.\nCategories:\n{cats}\n\n"
            f"Question (context only, do not label it):\n{question}\n\nChain of thought:\n{reasoning}\n\n"
            f"Its {len(words)} whitespace-separated words, in order:\n{json.dumps(words, ensure_ascii=False)}\n\n"
            'Reply with only a JSON object {"words": [{"word": ..., "category": ..., "justification": ...}, '
            f"...]}} with exactly {len(words)} entries, one per listed word in the same order, the word copied "
            f"exactly, the category one of {', '.join(CATEGORIES)}, and a short justification.")


class LLMAnnotator:
    """Label words with an LLM: one prompt per chain (:func:`build_prompt`), JSON reply, cached.

    ``client_or_callable`` is a callable ``prompt -> str`` or an OpenAI-compatible client
    (``client.chat.completions.create(model=..., messages=[...]).choices[0].message.content``).
    Words are the whitespace-separated words of the chain. A reply that is not valid JSON, misses or
    reorders words, or uses an unknown category is retried with the error appended to the prompt, up
    to ``max_retries`` times after the first try. Then ``on_failure="raise"`` (default) raises
    :class:`AnnotationError`, so one analysis never silently mixes annotators; ``"rules"`` warns and
    labels the chain with :func:`annotate_words`. With ``cache_dir``, a valid reply is stored as JSON
    (written atomically) under a hash of (model, prompt); a cache hit makes no call.

    >>> fake = lambda prompt: '{"words": [{"word": "So", "category": "MetaDisc", "justification": "connective"}]}'
    >>> [(w.word, w.category) for w in LLMAnnotator(fake).annotate("So")]
    [('So', 'MetaDisc')]
    """

    def __init__(self, client_or_callable, model: str = "gpt-5-mini", cache_dir=None, max_retries: int = 3,
                 on_failure: str = "raise"):
        if on_failure not in ("raise", "rules"):
            raise PruneprobeError(f"on_failure must be 'raise' or 'rules', got {on_failure!r}")
        self.client, self.model, self.max_retries = client_or_callable, model, max_retries
        self.on_failure = on_failure
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.name = f"llm:{model}"

    def _call(self, prompt: str) -> str:
        if hasattr(self.client, "chat"):
            resp = self.client.chat.completions.create(model=self.model,
                                                       messages=[{"role": "user", "content": prompt}])
            return resp.choices[0].message.content or ""
        if callable(self.client):
            return str(self.client(prompt))
        raise PruneprobeError("client_or_callable must be callable or an OpenAI-compatible client")

    def cache_path(self, prompt: str) -> Path | None:
        """The cache file of (model, prompt); None without a cache_dir."""
        key = hashlib.sha256(json.dumps([self.model, prompt]).encode()).hexdigest()
        return None if self.cache_dir is None else self.cache_dir / f"{key}.json"

    def annotate(self, reasoning: str, question: str = "") -> list[WordLabel]:
        spans = [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", reasoning)]
        if not spans:
            return []
        words = [w for w, _, _ in spans]
        prompt = build_prompt(reasoning, question)
        path, pairs = self.cache_path(prompt), None
        if path is not None and path.exists():
            try:
                pairs = parse_reply(json.loads(path.read_text())["reply"], words)
            except (ValueError, KeyError, TypeError):
                pass  # unreadable or stale entry: ask again
        attempt_prompt, errors = prompt, []
        for attempt in range(0 if pairs is not None else self.max_retries + 1):
            reply = self._call(attempt_prompt)
            try:
                pairs = parse_reply(reply, words)
            except AnnotationError as e:
                errors.append(str(e))
                attempt_prompt = (f"{prompt}\n\nYour previous reply was rejected: {e}. Reply again with only "
                                  f"the JSON object, exactly {len(words)} entries.")
                continue
            if path is not None:
                atomic_write_text(path, json.dumps({"model": self.model, "attempt": attempt + 1,
                                                    "reply": reply}, ensure_ascii=False))
            break
        if pairs is None:
            msg = f"LLM annotator ({self.model}) gave no valid reply in {len(errors)} tries: {'; '.join(errors)}"
            if self.on_failure == "raise":
                raise AnnotationError(msg)
            warnings.warn(msg + "; falling back to the rule annotator", stacklevel=2)
            return annotate_words(reasoning, question)
        return [WordLabel(w, s, e, c, j) for (w, s, e), (c, j) in zip(spans, pairs)]


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
           "LLMAnnotator", "Agreement", "agreement"]
