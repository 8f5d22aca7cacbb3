"""The rule annotator: every word of a reasoning labelled by ordered rules, first match wins
(docs/categories.md; lexicons and rule tables in ``category_rules``).

>>> [w.category for w in annotate_words("So 3 + 4 = 7 apples.")]
['MetaDisc', 'SymbMath', 'SymbMath', 'SymbMath', 'SymbMath', 'SymbMath', 'EntName', 'Grammar']
"""

from __future__ import annotations

from pruneprobe.analysis.category_rules import (
    _ADJECTIVES,
    _CONDITIONAL,
    _COREF,
    _CURRENCY,
    _DETERMINERS,
    _ITEM,
    _MARKUP,
    _META,
    _META_INITIAL,
    _MODALS,
    _MONTHS,
    _NUMBER_WORDS,
    _OP_VERBS,
    _OPS,
    _ORDINALS,
    _PHRASE_RULES,
    _STOP,
    _SUBJECTS,
    _THAT_HEADS,
    _UNITS,
    _VERBAL,
    CO_REF,
    ENT_NAME,
    GRAMMAR,
    META_DISC,
    SYMB_MATH,
    VERBAL_MATH,
    WordLabel,
    _is_word,
    _lemma,
)


class _Chain:
    """The items of one reasoning text and their labels while the rules fill them in."""

    def __init__(self, reasoning: str):
        self.text, self.items = reasoning, [(m.group(), m.start(), m.end()) for m in _ITEM.finditer(reasoning)]
        self.tok = [t for t, _, _ in self.items]
        self.low = [t.lower().replace("’", "'") for t in self.tok]
        self.n, self.cat, self.why = len(self.items), [None] * len(self.items), [None] * len(self.items)

    def put(self, i, c, r):
        if self.cat[i] is None:
            self.cat[i], self.why[i] = c, r

    def math(self, j):
        return 0 <= j < self.n and self.cat[j] == SYMB_MATH

    def word(self, j):
        return 0 <= j < self.n and _is_word(self.tok[j])

    def lo(self, j):
        return self.low[j] if 0 <= j < self.n else ""

    def touching(self, i, j):  # no space between items i and j (adjacent)
        a, b = min(i, j), max(i, j)
        return 0 <= a and b < self.n and self.items[a][2] == self.items[b][1]

    def initial(self, i):
        """Item i opens a sentence or a line (markup such as ``**`` or ``-`` skipped)."""
        for j in range(i - 1, -1, -1):
            if "\n" in self.text[self.items[j][2]:self.items[j + 1][1]] or self.tok[j] in (".", "!", "?", ":"):
                return True
            if self.tok[j] not in _MARKUP:
                return False
        return True

    def sentence_has(self, i, words) -> bool:
        """An earlier item of i's sentence is one of ``words``."""
        j = i - 1
        while j >= 0 and not self.initial(j + 1):
            j -= 1
        return any(self.low[k] in words for k in range(max(j, 0), i))


def _symbolic(ch: _Chain) -> None:
    """Rule 1: numbers, LaTeX, operators and currency; then operators, brackets and variables in context."""
    for i, t in enumerate(ch.tok):
        if t[0].isdigit():
            ch.put(i, SYMB_MATH, "symb-number")
        elif t.startswith("\\") and len(t) > 1:
            ch.put(i, SYMB_MATH, "symb-latex")
        elif t in _OPS:
            ch.put(i, SYMB_MATH, "symb-currency" if t in _CURRENCY else "symb-operator")
    for _ in range(2):  # context rules; a second pass catches e.g. the "/" in "(48 + 24) / 2"
        for i, t in enumerate(ch.tok):
            if ch.cat[i] is not None:
                continue
            prev, nxt = i - 1, i + 1
            between = ch.math(prev) and ch.math(nxt)
            one_side = (ch.math(prev) and ch.word(nxt)) or (ch.word(prev) and ch.math(nxt))
            if (t in "-−–" and ch.math(nxt) or t in "*/" and (between or one_side) or t == "x" and (between or one_side)
                    or t == ":" and between and ch.touching(prev, i) and ch.touching(i, nxt)
                    or t == "/" and ch.touching(prev, i) and ch.touching(i, nxt) and ch.word(prev) and ch.word(nxt)):
                ch.put(i, SYMB_MATH, "symb-operator")  # a rate like days/week is math too
            elif t in "([{" and ch.math(nxt) or t in ")]}" and ch.math(prev):
                ch.put(i, SYMB_MATH, "symb-bracket")
            elif len(t) == 1 and t.isalpha() and t not in "aAI" and (ch.lo(prev) == "let" or ch.lo(nxt) == "be"):
                ch.put(i, SYMB_MATH, "symb-variable")  # "Let x be ..."
            elif len(t) == 1 and t.isalpha() and (
                    any(0 <= j < ch.n and (ch.tok[j] in _OPS or ch.math(j) and ch.tok[j] in "*/-−") for j in (prev, nxt))
                    or (t not in "aAI" and any(ch.touching(i, j) and ch.tok[j][0].isdigit() for j in (prev, nxt)))):
                ch.put(i, SYMB_MATH, "symb-variable")


def _phrases(ch: _Chain) -> None:
    """Rules 2-4: VerbalMath, MetaDisc and CoRef phrases, longest first."""
    for plist, category, rule in _PHRASE_RULES:
        split = sorted((p.split() for p in plist), key=len, reverse=True)
        for i in range(ch.n):
            for p in split:
                if ch.low[i:i + len(p)] == p and all(c is None for c in ch.cat[i:i + len(p)]):
                    for j in range(i, i + len(p)):
                        ch.put(j, category, f"{rule} '{' '.join(p)}'")
                    break


def _word_rule(ch: _Chain, i: int, qwords: set) -> tuple[str, str]:
    """Rules 5-9 for one word: the first that matches gives (category, rule name)."""
    t, w, lem, prev, nxt = ch.tok[i], ch.low[i], _lemma(ch.tok[i]), ch.lo(i - 1), ch.lo(i + 1)
    after_det = prev in _DETERMINERS - _COREF or prev.endswith("'s")  # an article or a possessive: a noun
    verb_slot = (prev in _SUBJECTS or prev in _MODALS or prev == "to" and (nxt in _DETERMINERS or nxt[:1].isdigit())
                 or t.islower() and not after_det and nxt in ("the", "a", "an"))  # "saw the comet"
    rules = ((w in _ORDINALS and prev == "the", VERBAL_MATH, "verbal-ordinal"),
             (w in _VERBAL, VERBAL_MATH, "verbal-word"),
             (w in _NUMBER_WORDS, VERBAL_MATH, "verbal-number-word"),
             (w in ("a", "an") and _lemma(nxt) in _UNITS and prev not in _STOP and (ch.word(i - 1) or ch.math(i - 1)),
              VERBAL_MATH, "verbal-per"),  # "4 pieces a day"
             (w in _OP_VERBS and not after_det, VERBAL_MATH, "verbal-operation-verb"),
             (w == "that" and prev in _THAT_HEADS and nxt not in ("is", "was"), GRAMMAR, "grammar-complementizer"),
             (w == "it" and (_lemma(nxt) in ("take", "took", "taken")
                             or nxt in _MODALS and ch.lo(i + 2) == "take"), GRAMMAR, "grammar-dummy-it"),
             (w in _COREF, CO_REF, "coref-pronoun"),
             (w == "then" and not ch.initial(i), *((META_DISC, "meta-consequent") if ch.sentence_has(i, _CONDITIONAL)
                                                   else (GRAMMAR, "grammar-temporal-then"))),
             (w in _META and (w != "i" or t == "I"), META_DISC, "meta-word"),
             (w in _META_INITIAL and ch.initial(i), META_DISC, "meta-sentence-initial"),
             (not _is_word(t), GRAMMAR, "grammar-punctuation"),
             (w in _MONTHS and t[0].isupper(), ENT_NAME, "entity-month"),
             (lem in _UNITS, ENT_NAME, "entity-unit"),
             (w in _STOP, GRAMMAR, "grammar-function-word"),
             (w in _ADJECTIVES, GRAMMAR, "grammar-adjective"),
             (verb_slot or t.islower() and (nxt[:1].isdigit() or nxt[:1] in _CURRENCY), GRAMMAR, "grammar-verb"),
             (lem in qwords, ENT_NAME, "entity-question"),
             (t[0].isupper() and not ch.initial(i), ENT_NAME, "entity-capitalised"),
             (len(w) > 4 and w.endswith("ly") or len(w) > 5 and w.endswith("ing") and not after_det,
              GRAMMAR, "grammar-adverb-or-participle"),
             (True, ENT_NAME, "entity-fallback"))
    return next((c, r) for ok, c, r in rules if ok)


def annotate_words(reasoning: str, question: str = "") -> list[WordLabel]:
    """Label every word and punctuation mark of ``reasoning`` by ordered rules (first match wins).

    Words: letter runs (``Let's`` is one), numbers (``1,200``, ``3.5``), LaTeX commands, single other
    characters. Rules in order; the rule's name is the label's ``justification``:

    1. SymbMath: ``symb-number``, ``symb-latex``, ``symb-currency`` (``$ € £ ¥ ₹ ¢``), ``symb-operator``
       (``= + × ÷ ^ < > %`` always; ``* / x`` next to a math item, ``-`` before one, a rate such as
       ``days/week``), ``symb-bracket``, ``symb-variable`` (``Let x be``, a letter next to an operator).
    2. Phrases, longest match: ``verbal-phrase`` (``half as many``, ``in total``, ``how many``),
       ``meta-phrase`` (``we need to``, ``let us``), ``coref-phrase`` (``the former``).
    3. VerbalMath: ``verbal-ordinal`` (``the first``), ``verbal-word`` (``each``, ``number``, ``left``),
       ``verbal-number-word`` (``three``), ``verbal-per`` (``4 pieces a day``), ``verbal-operation-verb``
       (verbs of exchange or change of an amount: ``sold``, ``costs``, ``eat``, ``paid``).
    4. CoRef: ``coref-pronoun`` (``she``, ``this``, ``which``); not ``that`` after ``know``/``means``
       (``grammar-complementizer``) nor ``it`` in ``it takes`` (``grammar-dummy-it``).
    5. MetaDisc: ``meta-consequent`` (``then`` after ``if``/``since``; otherwise story time,
       ``grammar-temporal-then``), ``meta-word`` (``So``, ``Therefore``, ``find``, narrator ``we``) and
       ``meta-sentence-initial`` (``Also``, ``But``, ``However`` opening a sentence or a line).
    6. ``grammar-punctuation``; EntName ``entity-month``, ``entity-unit`` (``dollars``);
       ``grammar-function-word`` (stop words), ``grammar-adjective`` (``old``, ``able``, ``whole``),
       ``grammar-verb`` (a word after a subject pronoun or modal, or right before a number).
    7. EntName: ``entity-question`` (a word whose lemma is in the question: ``Natalia``, ``clips``),
       ``entity-capitalised`` (capitalised, not opening a sentence); ``grammar-adverb-or-participle``
       (``-ly``, ``-ing``); remaining words are EntName (``entity-fallback``, mostly nouns).

    >>> [(w.word, w.category, w.justification) for w in annotate_words("Then 3 x 4 €.")]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('Then', 'MetaDisc', 'meta-word'), ('3', 'SymbMath', 'symb-number'), ('x', 'SymbMath', 'symb-operator'),
     ('4', 'SymbMath', 'symb-number'), ('€', 'SymbMath', 'symb-currency'), ('.', 'Grammar', 'grammar-punctuation')]
    """
    ch = _Chain(reasoning)
    _symbolic(ch)
    _phrases(ch)
    qwords = {_lemma(w) for w in _ITEM.findall(question) if _is_word(w) and w.lower() not in _STOP}
    for i in range(ch.n):
        if ch.cat[i] is None:
            ch.put(i, *_word_rule(ch, i, qwords))
    return [WordLabel(t, s, e, c, r) for (t, s, e), c, r in zip(ch.items, ch.cat, ch.why)]


class RuleAnnotator:
    """:func:`annotate_words` as an annotator object (``.annotate``), next to :class:`LLMAnnotator`."""

    name = "rules"
    annotate = staticmethod(annotate_words)
