"""Word lists, lexicons and rule tables of the functional categories (used by ``categories.py``).

The six category names and their descriptions (also shown to the LLM annotator), the lower-case
lexicons and phrase lists behind the rules of :func:`pruneprobe.analysis.categories.annotate_words`, the
phrase-rule table, the word tokenizer and lemmatizer, and the category aliases accepted by
:func:`pruneprobe.analysis.categories.normalize_category`. Edit a list here to change what a rule matches.

>>> "each" in _VERBAL, _lemma("clips"), _ALIAS["coreference"]
(True, 'clip', 'CoRef')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pruneprobe.errors import PruneprobeError

SYMB_MATH, VERBAL_MATH, ENT_NAME, CO_REF, META_DISC, GRAMMAR = (
    "SymbMath", "VerbalMath", "EntName", "CoRef", "MetaDisc", "Grammar")
CATEGORIES = (SYMB_MATH, VERBAL_MATH, ENT_NAME, CO_REF, META_DISC, GRAMMAR)  # also the tie-break order
CATEGORY_DESCRIPTIONS = {
    SYMB_MATH: "numbers in digits, operators, equation signs, currency signs and math symbols (48/2 = 24, $, €, %, x)",
    VERBAL_MATH: "arithmetic relations or quantities said in words (half as many, in total, each, per, times, "
                 "more than, twice, number of, remaining, left, three) and verbs of exchange or change of an "
                 "amount (sold, buys, costs, paid, earns, eat)",
    ENT_NAME: "entities of the problem: people, objects and items counted, units, months, places, and modifiers "
              "naming which items (Natalia, clips, dollars, May, green in 'green blocks')",
    CO_REF: "pronouns and referring expressions (she, he, they, it, them, her, his, this, which)",
    META_DISC: "the reasoning talking about itself: planning, steps, conclusions, narrator (First, So, Let's, "
               "we need to, Therefore, Now, find, calculate)",
    GRAMMAR: "syntax only: articles, prepositions, conjunctions, auxiliaries, punctuation without math, and verbs "
             "or adjectives that state no math (arrive, place, able, whole)",
}


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


def _words(s: str) -> frozenset:
    return frozenset(s.split())


# --- lexicons (lower case) ------------------------------------------------------------------------
_NUMBER_WORDS = _words("two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                       "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty "
                       "ninety hundred hundreds thousand thousands million millions dozen dozens one once")
_VERBAL = _words(
    "each every per times twice thrice half halves double doubled triple tripled quarter quarters sum sums "
    "total totals difference product quotient remainder remaining remains left altogether combined together "
    "plus minus add adds added adding addition subtract subtracts subtracted subtracting subtraction "
    "multiply multiplies multiplied multiplying multiplication divide divides divided dividing division "
    "equal equals average ratio percent percentage fraction increase increased decrease decreased "
    "more fewer less rest extra additional another number numbers amount amounts count quantity chance chances "
    "probability")
# verbs that state an exchange or a change of an amount (VerbalMath); other verbs are Grammar
_OP_VERBS = _words(
    "buy buys buying bought sell sells selling sold spend spends spending spent pay pays paying paid cost costs "
    "costing charge charges charged charging earn earns earned earning save saves saved saving lose loses losing "
    "lost give gives giving gave given receive receives received receiving eat eats eating ate eaten drink drinks "
    "drinking drank drunk use uses used using consume consumes consumed consuming donate donates donated owe "
    "owes owed gain gains gained remain remained increases increasing decreases decreasing")
_VERBAL_PHRASES = ["half as many", "half as much", "twice as many", "twice as much", "times as many",
                   "times as much", "as many as", "as much as", "as many", "as much", "in total", "in all",
                   "how many", "how much", "more than", "less than", "fewer than", "greater than",
                   "divided by", "multiplied by", "out of", "per cent", "left over", "in addition", "how long",
                   "equal to"]
_META_PHRASES = ["we need to", "i need to", "we have to", "need to", "let us", "let me", "figure out",
                 "step by step", "in other words", "we are asked", "we know", "we can", "we get", "we have"]
_META = _words("so then now next therefore thus hence first firstly second secondly third finally lastly "
               "step steps find calculate calculating compute solve determine answer check verify wait "
               "okay ok alternatively recall note means know problem question asks asked start begin "
               "conclude final result let let's i we us our me my you your")
_META_INITIAL = _words("also and but however well additionally meanwhile instead moreover "
                       "furthermore")  # MetaDisc only sentence-initially; subordinators (if, since) are Grammar
_ORDINALS = _words("first second third fourth fifth last")  # after "the": a number in words (VerbalMath)
_CONDITIONAL = _words("if since because when as once")  # "then" after one of these is the consequent (MetaDisc)
_COREF = _words("she he they it them her him his hers its their theirs this that these those which who "
                "whom whose itself himself herself themselves it's that's she's he's they're")
_COREF_PHRASES = ["the former", "the latter", "one another", "each other"]
_THAT_HEADS = _words("know knows means mean note see given say says find found so such assume "
                               "implies shows show ensure check verify notice remember recall realize think")
_MONTHS = _words("january february march april may june july august september october november december "
                 "monday tuesday wednesday thursday friday saturday sunday")
_UNITS = _words("dollar cent hour minute second day week month year mile km kilometer meter metre cm mm "
                "feet foot inch yard pound lb kg kilogram gram liter litre ml gallon cup ounce oz mph degree")
_STOP = _words(
    "a an the of in on at to for from with by about into onto upon over under between through during "
    "before up down out off than as within without across along around among against toward towards via "
    "until till is are was were be been being am do does did done has have had having will would can "
    "could should shall may might must not no nor and or but if because since while whether though "
    "although also just very too there here what how when where why some any all both such own same only "
    "yet still even again further s after back already away")
# adjectives that neither name an entity nor state math (Grammar); entity-identifying modifiers are EntName
_ADJECTIVES = _words("old young late early whole full sure able unable different original initial new other "
                     "certain possible enough")
_DETERMINERS = _words("the a an this that these those his her their its my our your each every some any no")
_SUBJECTS = _words("he she they it we i you who which")  # a word right after one of these is a verb
_MODALS = _words("can could will would should must might shall do does did don't doesn't didn't won't can't "
                 "cannot be been being not")  # a word right after one of these is a verb or a predicate
_OPS = set("=+×÷^<>≤≥≈≠$%·€£¥₹¢")  # always SymbMath (currency signs included)
_CURRENCY = set("$€£¥₹¢")
_MATH_PUNCT = _OPS | set("-−–*/():[]{}")  # punctuation that may carry math
_MARKUP = set("*#-•>\"“'`(")  # skipped when deciding whether a word starts a sentence

_ITEM = re.compile(r"\d+(?:[.,]\d+)*|\\[A-Za-z]+|[^\W\d_]+(?:['’][^\W\d_]+)*|\S")

# phrase rules, applied in this order (longest phrase first within each): (phrases, category, rule name)
_PHRASE_RULES = ((_VERBAL_PHRASES, VERBAL_MATH, "verbal-phrase"), (_META_PHRASES, META_DISC, "meta-phrase"),
                 (_COREF_PHRASES, CO_REF, "coref-phrase"))


def _lemma(word: str) -> str:
    w = re.sub(r"['’]s$", "", word.lower())
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("es") and w[:-2].endswith(("s", "x", "ch", "sh")):
        return w[:-2]
    return w[:-1] if w.endswith("s") and not w.endswith("ss") and len(w) > 3 else w


def _is_word(t: str) -> bool:
    return t[:1].isalpha()


# --- category aliases (normalize_category) ---------------------------------------------------
_ALIASES = {
    SYMB_MATH: "symbmath symbolicmath symbolic symbmaths math equation equations number numbers",
    VERBAL_MATH: "verbalmath verbal verbalarithmetic wordmath",
    ENT_NAME: "entname entity entities entityname entitynames name names ent",
    CO_REF: "coref coreference pronoun pronouns reference referring",
    META_DISC: "metadisc metadiscourse meta discourse narration structure",
    GRAMMAR: "grammar grammatical function functionword filler punctuation",
}
_ALIAS = {a: c for c, s in _ALIASES.items() for a in s.split()}


def normalize_category(name) -> str:
    """Map a category name or alias, case- and punctuation-insensitively, to its canonical name.

    >>> normalize_category("Symbolic Math"), normalize_category("meta-disc"), normalize_category("ENTITY")
    ('SymbMath', 'MetaDisc', 'EntName')
    """
    key = re.sub(r"[^a-z]", "", str(name).lower())
    if key not in _ALIAS:
        raise AnnotationError(f"unknown category {name!r}; expected one of {', '.join(CATEGORIES)}")
    return _ALIAS[key]
