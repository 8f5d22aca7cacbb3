"""Functional categories: rule annotator, token alignment, LLM annotator (fake clients), agreement."""

import doctest
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import pruneprobe.analysis.categories as C
from pruneprobe import PruneprobeError, PruneResult
from pruneprobe.analysis.categories import (
    CATEGORIES,
    AnnotationError,
    LLMAnnotator,
    agreement,
    annotate_words,
    label_result,
    label_tokens,
    normalize_category,
)

QUESTION = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
            "How many clips did Natalia sell altogether in April and May?")


def cats(text, question=QUESTION):
    return [(w.word, w.category) for w in annotate_words(text, question)]


def test_module_doctests():
    import pruneprobe.analysis.category_rules
    import pruneprobe.analysis.gold
    import pruneprobe.analysis.llm_annotator

    for module in (C, pruneprobe.analysis.category_rules, pruneprobe.analysis.gold, pruneprobe.analysis.llm_annotator):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def test_every_category_on_hand_written_sentences():
    assert cats("Natalia sold 48/2 = 24 clips in May.") == [
        ("Natalia", "EntName"), ("sold", "VerbalMath"), ("48", "SymbMath"), ("/", "SymbMath"), ("2", "SymbMath"),
        ("=", "SymbMath"), ("24", "SymbMath"), ("clips", "EntName"), ("in", "Grammar"), ("May", "EntName"),
        (".", "Grammar")]
    assert cats("She sold half as many clips in total.") == [
        ("She", "CoRef"), ("sold", "VerbalMath"), ("half", "VerbalMath"), ("as", "VerbalMath"),
        ("many", "VerbalMath"), ("clips", "EntName"), ("in", "VerbalMath"), ("total", "VerbalMath"),
        (".", "Grammar")]
    assert cats("First, we need to find how many clips she sold altogether.") == [
        ("First", "MetaDisc"), (",", "Grammar"), ("we", "MetaDisc"), ("need", "MetaDisc"), ("to", "MetaDisc"),
        ("find", "MetaDisc"), ("how", "VerbalMath"), ("many", "VerbalMath"), ("clips", "EntName"),
        ("she", "CoRef"), ("sold", "VerbalMath"), ("altogether", "VerbalMath"), (".", "Grammar")]
    assert cats("So the answer is 72.") == [("So", "MetaDisc"), ("the", "Grammar"), ("answer", "MetaDisc"),
                                           ("is", "Grammar"), ("72", "SymbMath"), (".", "Grammar")]


def test_rule_names_are_the_justification():
    why = {w.word: w.justification for w in annotate_words("She sold half as many clips in May.", QUESTION)}
    assert why["She"] == "coref-pronoun" and why["clips"] == "entity-question" and why["May"] == "entity-month"
    assert why["half"] == "verbal-phrase 'half as many'" and why["."] == "grammar-punctuation"


def test_symbolic_context_rules():
    d = dict(cats("Let's compute (48 + 24) / 2 = 36 and 3 x 4 = 12, then x - 3 = 5.", ""))
    assert all(d[t] == "SymbMath" for t in "( 48 + 24 ) / 2 = 36 3 x 4 12 -".split())
    got = cats("It costs $5 per T-shirt, 20% more than 1,200 or 3.5 dollars. **Step 2:** done", "")
    assert got[:3] == [("It", "CoRef"), ("costs", "VerbalMath"), ("$", "SymbMath")]
    assert ("T", "EntName") in got and ("-", "Grammar") in got  # a hyphen is not a minus
    assert ("%", "SymbMath") in got and ("1,200", "SymbMath") in got and ("3.5", "SymbMath") in got
    assert ("dollars", "EntName") in got and ("per", "VerbalMath") in got and ("than", "VerbalMath") in got
    assert [c for w, c in got if w in "*:"] == ["Grammar"] * 5  # markdown and a label colon
    assert ("Step", "MetaDisc") in got


def test_coref_meta_grammar_and_fallback():
    d = {w.word: (w.category, w.justification) for w in
         annotate_words("We know that it is the former. Also, he and they left. Then Bob ate apples.", "")}
    assert d["that"] == ("Grammar", "grammar-complementizer")
    assert d["the"][0] == d["former"][0] == d["it"][0] == d["they"][0] == "CoRef"
    assert d["Also"] == ("MetaDisc", "meta-sentence-initial")
    assert d["and"] == ("Grammar", "grammar-function-word")  # not sentence-initial
    assert d["left"][0] == "VerbalMath" and d["We"][0] == d["Then"][0] == "MetaDisc"
    assert d["Bob"] == ("EntName", "entity-capitalised")
    assert d["apples"] == ("EntName", "entity-fallback")
    assert d["ate"] == ("VerbalMath", "verbal-operation-verb")
    assert cats("Add 5\nBut not 6", "")[2] == ("But", "MetaDisc")  # a line start opens a sentence
    assert dict(cats("Wait. In May she may go.", ""))["may"] == "Grammar"


def test_words_cover_every_non_space_character():
    text = "Natalia's clips: 48/2=24;\n\n- Then (x+1)*2 = 10 \\frac{1}{2} — done!"
    labels = annotate_words(text, QUESTION)
    assert all(text[w.start:w.end] == w.word for w in labels)
    covered = "".join(text[w.start:w.end] for w in labels)
    assert covered == re.sub(r"\s", "", text)
    assert {w.category for w in labels} <= set(CATEGORIES)
    assert annotate_words("") == []


def test_alignment_with_hand_cut_pieces():
    tokens = [" In", " May", " she", " sold", " 48", "/", "2", " =", " 24", " clips", ".\n", "Then", " 1", "2",
              "0", " in May", " ", "2.", "\n"]
    text = "".join(tokens)
    got = label_tokens(tokens, text, QUESTION)
    assert got == ["Grammar", "EntName", "CoRef", "VerbalMath", "SymbMath", "SymbMath", "SymbMath", "SymbMath",
                   "SymbMath", "EntName", "Grammar", "MetaDisc", "SymbMath", "SymbMath", "SymbMath",
                   "EntName",  # " in May": "May" holds 3 of its 5 non-space characters
                   "SymbMath",  # whitespace-only: carried by the token it precedes
                   "SymbMath",  # "2." ties 1:1, SymbMath comes first
                   "SymbMath"]  # trailing whitespace: nothing follows, so the previous token's
    with pytest.raises(PruneprobeError, match="join"):
        label_tokens([" a", "b"], " ab ")


def test_alignment_with_real_smollm2_pieces():
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import smol_tokenizer_dir
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smol_tokenizer_dir())
    text = " Natalia sold 48/2 = 24 clips in May.\nShe sold 120 clips altogether, so the answer is 1,200."
    starts = [s for s, _ in tok(text, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]]
    pieces = [text[a:b] for a, b in zip([0] + starts[1:], starts[1:] + [len(text)])]
    assert "".join(pieces) == text and len(pieces) > 20
    got = dict(enumerate(label_tokens(pieces, text, QUESTION)))
    for i, p in enumerate(pieces):
        core = p.strip()
        if core.isdigit() or core in ("/", "="):
            assert got[i] == "SymbMath", (p, got[i])
        if core in ("Natal", "ia", "clips", "May"):
            assert got[i] == "EntName", (p, got[i])
    commas = [got[i] for i, p in enumerate(pieces) if p == ","]
    assert commas == ["Grammar", "SymbMath"]  # after "altogether" vs inside "1,200"
    assert got[len(pieces) - 1] == "Grammar"  # the final "."


def test_label_result_table():
    tokens = [" She", " sold", " 4", "8", " clips", "."]
    res = PruneResult("ex7", "greedy", "joint", list(range(6)), tokens, [5, 0], {},
                      example={"question": QUESTION, "reasoning": "".join(tokens), "answer": "48"})
    df = label_result(res)
    assert list(df.columns) == ["example_id", "index", "token", "category", "justification"]
    assert (df.example_id == "ex7").all() and df["index"].tolist() == list(range(6))
    assert df.category.tolist() == ["CoRef", "VerbalMath", "SymbMath", "SymbMath", "EntName", "Grammar"]
    assert df.justification[3] == "symb-number ('48')"
    assert label_result(res, annotator=C.RuleAnnotator()).equals(df)
    assert label_result(res, annotator=lambda r, q: annotate_words(r, "")).category[4] == "EntName"
    with pytest.raises(PruneprobeError, match="annotator"):
        label_result(res, annotator=42)


# --- LLM annotator with fake clients ----------------------------------------------------------------
def good_reply(prompt, category_of=lambda w: "SymbMath" if re.search(r"\d", w) else "grammar", drop=None):
    words = json.loads(re.search(r"in order:\n(\[.*?\])\n", prompt).group(1))
    entries = [{"word": w, "category": category_of(w), "justification": "j"} for i, w in enumerate(words)
               if i != drop]
    return entries


class Fake:
    def __init__(self, *replies):
        self.replies, self.prompts = list(replies), []

    def __call__(self, prompt):
        self.prompts.append(prompt)
        r = self.replies.pop(0)
        return r(prompt) if callable(r) else r


def test_llm_retries_after_garbage_and_parses_fenced_json():
    fenced = lambda p: "Here you go:\n```json\n" + json.dumps({"words": good_reply(p)}) + "\n```\nHope it helps!"
    fake = Fake("I cannot do that {oops", fenced)
    labels = LLMAnnotator(fake).annotate("She sold 48/2=24 clips.")
    assert [(w.word, w.category) for w in labels] == [("She", "Grammar"), ("sold", "Grammar"),
                                                     ("48/2=24", "SymbMath"), ("clips.", "Grammar")]
    assert len(fake.prompts) == 2 and "previous reply was rejected" in fake.prompts[1]
    assert fake.prompts[1].startswith(fake.prompts[0])
    assert labels[2].start == 9 and labels[2].end == 16


def test_llm_missing_word_unknown_category_and_failure_modes():
    missing = lambda p: json.dumps({"words": good_reply(p, drop=1)})
    unknown = lambda p: json.dumps({"words": good_reply(p, category_of=lambda w: "Banana")})
    ok = lambda p: "Sure. " + json.dumps({"words": good_reply(p)}) + " Done."
    fake = Fake(missing, unknown, ok)
    assert len(LLMAnnotator(fake).annotate("So 2 + 2 = 4")) == 6
    assert "expected 6 words, got 5" in fake.prompts[1] and "unknown category 'Banana'" in fake.prompts[2]

    with pytest.raises(AnnotationError, match="no valid reply in 3 tries"):
        LLMAnnotator(Fake(missing, missing, missing), max_retries=2).annotate("So 2 + 2 = 4")
    with pytest.warns(UserWarning, match="rule annotator"):
        labels = LLMAnnotator(Fake(missing, missing), max_retries=1, on_failure="rules").annotate("So 2 + 2")
    assert [w.justification for w in labels][:2] == ["meta-word", "symb-number"]


def test_llm_single_quotes_aliases_and_openai_client():
    single = lambda p: str({"words": [{"word": "She", "category": "pronoun", "justification": "x"},
                                      {"word": "left.", "category": "VERBAL math"}]})
    assert [w.category for w in LLMAnnotator(Fake(single)).annotate("She left.")] == ["CoRef", "VerbalMath"]
    assert [normalize_category(x) for x in ["symbmath", "Entity", "meta_disc", "CoReference", "GRAMMAR"]] == [
        "SymbMath", "EntName", "MetaDisc", "CoRef", "Grammar"]

    seen = []

    def create(model, messages):
        seen.append(model)
        content = json.dumps({"words": good_reply(messages[0]["content"])})
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=content))])

    client = SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=create)))
    assert [w.category for w in LLMAnnotator(client, model="m1").annotate("x 7")] == ["Grammar", "SymbMath"]
    assert seen == ["m1"] and LLMAnnotator(Fake()).annotate("  ") == []


def test_llm_cache_hit_makes_no_call(tmp_path):
    fake = Fake("garbage", lambda p: json.dumps({"words": good_reply(p)}))
    first = LLMAnnotator(fake, cache_dir=tmp_path).annotate("She has 3 clips.", "q")
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["attempt"] == 2
    again = Fake()  # would fail if called
    assert LLMAnnotator(again, cache_dir=tmp_path).annotate("She has 3 clips.", "q") == first
    assert again.prompts == []
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temp file
    other = Fake(lambda p: json.dumps({"words": good_reply(p)}))
    LLMAnnotator(other, model="another", cache_dir=tmp_path).annotate("She has 3 clips.", "q")
    assert len(other.prompts) == 1 and len(list(tmp_path.glob("*.json"))) == 2  # key includes the model


def test_llm_words_align_to_tokens():
    fake = Fake(lambda p: json.dumps({"words": good_reply(
        p, category_of=lambda w: "SymbMath" if re.search(r"\d", w) else "EntName")}))
    tokens = [" Natal", "ia", " 48", "/", "2", "=", "2", "4", " clips", "."]
    got = label_tokens(tokens, "".join(tokens), annotator=LLMAnnotator(fake))
    assert got == ["EntName", "EntName"] + ["SymbMath"] * 6 + ["EntName", "Grammar"]


# --- agreement --------------------------------------------------------------------------------------
def test_agreement_identical_and_constructed():
    same = ["SymbMath", "Grammar", "CoRef", "EntName", "MetaDisc", "VerbalMath"]
    a = agreement(same, same)
    assert a.cohen_kappa == 1 and a.accuracy == 1 and a.n == 6
    assert np.array_equal(a.confusion.values, np.eye(6, dtype=int))
    assert list(a.confusion.index) == list(a.confusion.columns) == list(CATEGORIES)
    assert agreement(["Grammar"] * 3, ["grammar"] * 3).cohen_kappa == 1

    # p_o = 3/4; marginals a: S 1/2, G 1/2; b: S 1/4, G 3/4; p_e = 1/8 + 3/8 = 1/2; kappa = (3/4-1/2)/(1/2)
    b = agreement(["SymbMath", "SymbMath", "Grammar", "Grammar"], ["SymbMath", "Grammar", "Grammar", "Grammar"])
    assert b.cohen_kappa == pytest.approx(0.5) and b.accuracy == 0.75 and b.n == 4
    assert b.confusion.loc["SymbMath", "Grammar"] == 1 and b.confusion.loc["Grammar", "Grammar"] == 2
    assert b.confusion.values.sum() == 4
    with pytest.raises(PruneprobeError):
        agreement(["Grammar"], [])
    with pytest.raises(AnnotationError):
        agreement(["Grammar"], ["Noise"])


# --- fixed rules: whitespace, currency, verbs and adjectives ----------------------------------------
def test_whitespace_only_tokens_are_carried_by_the_next_token():
    tokens = ["Tom", " has", " ", "4", "8", " clips", ".", "\n", "So", " he", " pays", " ", "£", "5", ".", "\n"]
    res = PruneResult("ex", "greedy", "joint", list(range(len(tokens))), tokens, [0], {},
                      example={"question": "Tom has clips.", "reasoning": "".join(tokens), "answer": "5"})
    df = label_result(res)
    assert df.category.tolist() == ["EntName", "Grammar", "SymbMath", "SymbMath", "SymbMath", "EntName", "Grammar",
                                    "MetaDisc", "MetaDisc", "CoRef", "VerbalMath", "SymbMath", "SymbMath",
                                    "SymbMath", "Grammar", "Grammar"]
    assert df.justification[2] == "whitespace before symb-number ('48')"
    assert df.justification[15].startswith("whitespace after ")  # trailing: nothing follows
    assert not any(j.startswith("whitespace") for j, t in zip(df.justification, tokens) if t.strip())
    assert label_tokens([" ", "\n"], " \n") == ["Grammar", "Grammar"]


def test_currency_signs_and_operators_beside_unit_words():
    for sign in "$€£¥₹":
        d = cats(f"He earns {sign}67/hour * 4 hours = {sign}268.", "")
        assert [c for w, c in d if not w.isalpha() and w != "."] == ["SymbMath"] * 8, d
    got = cats("There are 37 girls x 2 boys/girl = 74 boys, 6 days/week.", "")
    assert [c for w, c in got if w in ("x", "/")] == ["SymbMath"] * 3
    assert dict(cats("Let x be the amount and y be the rest.", ""))["y"] == "SymbMath"
    assert dict(cats("Cut the well-known T-shirt.", ""))["-"] == "Grammar"  # a hyphen is no minus


def test_verbs_and_adjectives_no_longer_fall_to_entname():
    q = "How many hamburgers does the family eat? Can he place the cups? Is the number able to cost more?"
    d = {w.word: (w.category, w.justification) for w in annotate_words(
        "They eat 6 hamburgers. He was able to place the cups on the whole table, so the number of cups "
        "found 12 homes.", q)}
    assert d["eat"] == ("VerbalMath", "verbal-operation-verb")
    assert d["able"] == d["whole"] == ("Grammar", "grammar-adjective")
    assert d["place"] == ("Grammar", "grammar-verb") and d["found"] == ("Grammar", "grammar-verb")
    assert d["number"][0] == "VerbalMath" and d["hamburgers"][0] == d["cups"][0] == "EntName"
    assert dict(cats("The cost of the tickets is $5.", "tickets"))["cost"] == "EntName"  # a noun after "the"
    walk = {w.word: w.justification for w in annotate_words("They walk home quickly.", "")}
    assert walk["quickly"] == "grammar-adverb-or-participle" and walk["walk"] == "grammar-verb"


def test_then_since_ordinals_per_and_dummy_it():
    assert dict(cats("If he earns 5 a day he then earns 35 a week.", ""))["then"] == "MetaDisc"
    assert dict(cats("They then arrive at the park.", ""))["then"] == "Grammar"
    got = cats("Since it takes 4 pieces a day, in a month it is the first time.", "")
    assert got[:3] == [("Since", "Grammar"), ("it", "Grammar"), ("takes", "Grammar")]
    assert [c for w, c in got if w == "a"] == ["VerbalMath", "Grammar"]  # "a day" = per day; "in a month"
    assert dict(got)["first"] == "VerbalMath" and [c for w, c in got if w == "it"][1] == "CoRef"
    assert cats("First, find it.", "")[0] == ("First", "MetaDisc")


# --- gold set, span mapping, agreement with the rules -----------------------------------------------
@pytest.fixture(scope="module")
def gold():
    from pruneprobe.analysis.gold import gold_examples, load_gold

    g = load_gold()
    return g, gold_examples(g)


def test_gold_file_is_well_formed(gold):
    from pruneprobe.analysis.gold import split_units

    g, examples = gold
    assert len(g) >= 600 and g.chain_id.nunique() >= 60 and set(examples) == set(g.chain_id)
    assert g.label.value_counts().min() >= 40 and set(g.label) == set(CATEGORIES)
    assert (g.end - g.start == g.word.str.len()).all() and not g.duplicated(["chain_id", "start"]).any()
    assert set(g.part) == {"full-chain", "sentences"} and set(g.split) == {"dev", "heldout"}
    for chain, rows in g.groupby("chain_id"):
        units = split_units(examples[chain].reasoning)
        spans = list(zip(rows.word, rows.start, rows.end))
        assert set(spans) <= set(units), chain  # every row is a unit of its chain, text included
        if rows.part.iloc[0] == "full-chain":
            assert sorted(spans, key=lambda u: u[1]) == units, chain  # every unit annotated
    # the stored chain text is what the loader gives
    from pruneprobe.data.datasets import load_examples
    for e in load_examples("gsm_symbolic", n=13, seed=0):
        if e.id in examples:
            assert (examples[e.id].question, examples[e.id].reasoning) == (e.question, e.reasoning)


def test_labels_on_spans_maps_any_segmentation():
    from pruneprobe.analysis.gold import labels_on_spans, split_units

    text = "She sold clips. Total: 5"
    units = split_units(text)
    llm = [C.WordLabel(m.group(), m.start(), m.end(), cat, "")
           for m, cat in zip(re.finditer(r"\S+", text), ["CoRef", "VerbalMath", "EntName", "VerbalMath", "SymbMath"])]
    got = labels_on_spans([(s, e) for _, s, e in units], llm)
    assert got == ["CoRef", "VerbalMath", "EntName", "EntName", "VerbalMath", "VerbalMath", "SymbMath"]
    # most overlap wins, ties go to the earlier category, no overlap is None
    assert labels_on_spans([(0, 4), (2, 4), (9, 10)], [("ab", 0, 2, "Grammar"), ("cd", 2, 4, "SymbMath")]) == [
        "SymbMath", "SymbMath", None]
    assert labels_on_spans([(0, 3)], [("abc", 0, 3, "grammar")]) == ["Grammar"]


def test_rules_agree_with_the_gold_set(gold):
    import pandas as pd

    from pruneprobe.analysis.gold import GOLD_DIR, evaluate

    g, examples = gold
    rep = evaluate(g, annotate_words, examples)
    table = pd.read_csv(GOLD_DIR / "agreement.csv")
    recorded = table.query("annotator == 'rules' and version == 'after' and subset == 'all' and metric == "
                           "'cohen_kappa'")["value"].item()
    assert rep.n == len(g) and rep.cohen_kappa >= recorded - 0.01, (rep.cohen_kappa, recorded)
    assert rep.per_category.set_index("category")["f1"].min() > 0.9
    before = table.query("version == 'before' and subset == 'all' and metric == 'cohen_kappa'")["value"].item()
    assert before < recorded
    held = evaluate(g[g.split == "heldout"], annotate_words, examples)
    assert held.n < rep.n and held.cohen_kappa > 0.9


def test_llm_annotator_units_and_gold_evaluation(gold):
    from pruneprobe.analysis.gold import evaluate, split_units

    g, examples = gold
    g = g[g.chain_id.isin(sorted(set(g.chain_id))[:3])]
    ann = LLMAnnotator(lambda p: json.dumps({"words": good_reply(p, category_of=lambda w: "EntName"
                                                                  if w.isalpha() else "SymbMath")}),
                       splitter=split_units)
    rep = evaluate(g, ann.annotate, examples)
    assert rep.n == len(g) and rep.per_category.set_index("category").loc["SymbMath", "recall"] == 1
    assert rep.rows.pred.isin(["SymbMath", "EntName"]).all()
    failing = LLMAnnotator(lambda p: "no json", max_retries=0)
    with pytest.raises(PruneprobeError, match="no gold chain"):
        evaluate(g, failing.annotate, examples)


def test_openai_endpoint_posts_chat_completions():
    from pruneprobe.analysis.categories import openai_endpoint

    seen = {}

    class Reply:
        def __init__(self, payload):
            self.payload = payload

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return json.dumps(self.payload).encode()

    def opener(req, timeout):
        seen.update(url=req.full_url, body=json.loads(req.data), auth=req.get_header("Authorization"), timeout=timeout)
        words = json.loads(re.search(r"in order:\n(\[.*?\])\n", seen["body"]["messages"][0]["content"]).group(1))
        content = json.dumps({"words": [{"word": w, "category": "grammar"} for w in words]})
        return Reply({"choices": [{"message": {"content": content}}]})

    call = openai_endpoint("http://localhost:8000/v1/", "my-model", api_key="k", timeout=5, opener=opener)
    assert [w.category for w in LLMAnnotator(call, model="my-model").annotate("So 2")] == ["Grammar", "Grammar"]
    assert seen["url"] == "http://localhost:8000/v1/chat/completions" and seen["auth"] == "Bearer k"
    assert seen["body"]["model"] == "my-model" and seen["body"]["temperature"] == 0 and seen["timeout"] == 5
    bad = openai_endpoint("http://x/v1", "m", api_key="", opener=lambda req, timeout: Reply({"error": "down"}))
    with pytest.raises(AnnotationError, match="unexpected reply"):
        bad("hi")


def test_hf_generator_decodes_only_the_continuation():
    import torch

    from pruneprobe.analysis.categories import hf_generator

    class Tok:
        chat_template, pad_token_id, eos_token_id = None, 0, 0

        def __call__(self, text, return_tensors):
            return {"input_ids": torch.tensor([[ord(c) for c in text]])}

        def decode(self, ids, skip_special_tokens):
            return "".join(chr(int(i)) for i in ids)

    class Model:
        device = torch.device("cpu")

        def generate(self, ids, max_new_tokens, do_sample, pad_token_id):
            assert not do_sample and max_new_tokens == 7
            return torch.cat([ids, torch.tensor([[ord(c) for c in "reply"]])], dim=1)

    assert hf_generator(Model(), Tok(), max_new_tokens=7)("prompt") == "reply"
