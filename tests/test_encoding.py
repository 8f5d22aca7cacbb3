"""Locating the reasoning span by token offsets."""

import pytest

from conftest import tiny_pruner
from pruneprobe import Example, PruneprobeError
from pruneprobe.encoding import encode_example


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
