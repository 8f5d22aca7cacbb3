"""Locating the reasoning span by token offsets."""

from collections import Counter

import pytest
from conftest import tiny_model, tiny_pruner

from pruneprobe import Example, PruneprobeError, Pruner
from pruneprobe.core.encoding import encode_example


def test_reasoning_tokens_join_to_the_reasoning(example):
    pruner = tiny_pruner("llama")
    enc = encode_example(pruner, example)
    assert "".join(enc.reasoning_pieces) == example.reasoning
    assert pruner.tokenizer.decode(enc.reasoning_ids) == example.reasoning
    # the answer line follows the reasoning
    assert pruner.tokenizer.decode(enc.suffix_ids).startswith('\n{"answer": "72"}')
    assert enc.template == "chat" and "<|im_start|>assistant" in pruner.tokenizer.decode(enc.prefix_ids)


def test_token_merging_across_the_span_edge():
    """Plain template: ' In' merges the template's space with the first reasoning word."""
    pruner = tiny_pruner("gpt2")  # no chat template -> "Answer: <reasoning>"
    ex = Example("How many?", "In May she sold 24 clips.", "24", id="edge")
    enc = encode_example(pruner, ex)
    ids = pruner.tokenizer(enc.text, add_special_tokens=True)["input_ids"]
    assert enc.input_ids.tolist() == ids  # one tokenisation of the whole text, never re-tokenised
    first = pruner.tokenizer.convert_ids_to_tokens(enc.reasoning_ids[:1].tolist())[0]
    assert first == "ĠIn"  # straddles the edge, belongs to the reasoning (most of it is inside)
    assert enc.reasoning_pieces[0] == " In"
    assert "".join(enc.reasoning_pieces).strip() == ex.reasoning


def test_trailing_merge_goes_to_the_side_holding_its_characters():
    pruner = tiny_pruner("llama")
    ex = Example("How many?", "So 3 + 4 = 7 :", "7", id="colon")
    enc = encode_example(pruner, ex)
    assert "".join(enc.reasoning_pieces).rstrip() == ex.reasoning


@pytest.mark.parametrize("bad, message", [
    (Example("Q?", "   ", "1"), "empty reasoning"),
    (Example("Q?", "So 1.", ""), "answer missing"),
    (Example("", "So 1.", "1"), "empty question"),
])
def test_bad_examples_name_the_problem(bad, message):
    with pytest.raises(PruneprobeError, match=message):
        encode_example(tiny_pruner("llama"), bad)


def test_span_that_cannot_be_located():
    pruner = tiny_pruner("llama")
    # a template that rewrites the assistant text (upper-cases it) hides the reasoning
    pruner.tokenizer = pruner.tokenizer.__class__.from_pretrained(pruner.tokenizer.name_or_path)
    pruner.tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] | upper }}<|im_end|>\n{% endfor %}"
    )
    with pytest.raises(PruneprobeError, match="cannot be located"):
        encode_example(pruner, Example("Q?", "so we add", "1"))


def test_chain_longer_than_context():
    pruner = tiny_pruner("llama")
    pruner.model.config.max_position_embeddings = 64
    with pytest.raises(PruneprobeError, match="longer than the model's context"):
        encode_example(pruner, Example("Q?", "word " * 100, "1"))


def _check_literals_are_text(pruner, literals: list[str], template_control: list[str]):
    question = f"Is {literals[0]} a word? How many apples?"
    reasoning = f"We write {literals[1]} here{literals[2]} and {' '.join(literals)} then 3 + 4 = 7."
    example = Example(question, reasoning, f"7 {literals[-1]}", id="literal")
    enc = encode_example(pruner, example)
    assert "".join(enc.reasoning_pieces).strip() == reasoning
    control = pruner.control_token_ids()
    assert not control & set(enc.reasoning_ids.tolist())  # the literals are split like any text
    decoded = pruner.tokenizer.decode(enc.input_ids)
    assert question in decoded and f"7 {literals[-1]}" in decoded
    # question and answer too: the control tokens are exactly the template's, as in a plain exchange
    plain = encode_example(pruner, Example("How many apples?", "So 3 + 4 = 7.", "7"))
    assert Counter(t for t in enc.input_ids.tolist() if t in control) == \
        Counter(t for t in plain.input_ids.tolist() if t in control)
    for name, token_id in zip(template_control, pruner.tokenizer.convert_tokens_to_ids(template_control)):
        assert token_id in control and token_id in enc.input_ids.tolist(), name


SMOL_LITERALS = ["<|im_end|>", "<|endoftext|>", "<|im_start|>"]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])  # SmolLM2's chat template, and the plain one
def test_special_token_literals_in_content_are_text_smollm2(arch):
    pruner = tiny_pruner(arch)
    control = ["<|im_start|>", "<|im_end|>"] if pruner.template == "chat" else [pruner.tokenizer.eos_token]
    _check_literals_are_text(pruner, SMOL_LITERALS, control)


@pytest.mark.slow
def test_special_token_literals_in_content_are_text_gemma3():
    from transformers import AutoTokenizer

    from pruneprobe.data.models import materialize_embedded

    tokenizer = AutoTokenizer.from_pretrained(materialize_embedded("gemma3-270m"))
    pruner = Pruner.from_model(tiny_model("gemma3", vocab_size=len(tokenizer)), tokenizer, name="tiny-gemma3")
    control = ["<start_of_turn>", "<end_of_turn>"] if pruner.template == "chat" else ["<bos>", "<eos>"]
    _check_literals_are_text(pruner, ["<start_of_turn>", "<end_of_turn>", "<eos>"], control)


def test_ordinary_chains_tokenise_as_one_tokenisation_of_the_whole_text():
    """Without special-token literals the ids are exactly those of the whole rendered text."""
    from pruneprobe import load_examples

    for arch in ("llama", "gpt2"):
        pruner = tiny_pruner(arch)
        for example in load_examples("gsm_symbolic", n=4, seed=0):
            enc = encode_example(pruner, example)
            whole = pruner.tokenizer(enc.text, add_special_tokens=pruner.template == "plain")["input_ids"]
            assert enc.input_ids.tolist() == whole
