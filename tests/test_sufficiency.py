"""Sufficiency: prompts, answer reading from continuations, rows and known accuracies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_pruner

from pruneprobe import Example, PruneprobeError
from pruneprobe.core.encoding import encode_example
from pruneprobe.core.result import TRACE_KEYS, PruneResult
from pruneprobe.distill.sufficiency import (
    answer_from_continuation,
    bootstrap_ci,
    evaluate_sufficiency,
    generate_greedy,
    sufficiency_prompt,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pruner():
    return tiny_pruner("llama")


def make_result(pruner, example: Example, method: str = "greedy", seed: int = 0) -> PruneResult:
    """A PruneResult on the pruner's real tokens of ``example`` with a random deletion order."""
    enc = encode_example(pruner, example)
    r = enc.n_reasoning
    order = np.random.default_rng(seed).permutation(r).tolist()
    return PruneResult(example.id, method, "joint", enc.reasoning_ids.tolist(), list(enc.reasoning_pieces), order,
                       {k: [0.0] * (r + 1) for k in TRACE_KEYS}, example=example.to_dict())


def other(example: Example, ident: str, answer: str) -> Example:
    return Example(example.question + " (variant)", example.reasoning, answer, ident)


@pytest.mark.parametrize("text, fmt, expected", [
    ('72"}', "gsm8k", "72"),
    ('72"}\n{"answer": "5"}', "gsm8k", "72"),
    ("1,000", "gsm8k", "1,000"),                       # truncated before the closing quote
    ('"}', "gsm8k", None),
    ("", "gsm8k", None),
    ("\x00\ufffd garbage ¿¿", "gsm8k", "\x00\ufffd garbage ¿¿"),
    ("\\frac{1}{2}\nThus, the final answer is: 7", "math", "\\frac{1}{2}"),
    ("(C).", "mmlu_pro", "C"),
    (None, "math", None),
])
def test_answer_from_continuation(text, fmt, expected):
    assert answer_from_continuation(text, fmt) == expected


def test_prompt_is_question_reasoning_newline_prefix(pruner, example):
    fmt = example.prompt_format
    expected = pruner.render(fmt.system_prompt, example.question, None) + "abc def\n" + fmt.answer_prefix
    assert sufficiency_prompt(pruner, example, "abc def") == expected
    none = sufficiency_prompt(pruner, example, "")
    assert none == pruner.render(fmt.system_prompt, example.question, None) + fmt.answer_prefix
    plain = tiny_pruner("gpt2")  # plain template: the space after "Answer:" is kept, as in pruning
    assert sufficiency_prompt(plain, example, "abc").endswith('\nAnswer: abc\n{"answer": "')


def test_bootstrap_ci():
    assert bootstrap_ci([1, 1, 1, 1]) == (1.0, 1.0)
    lo, hi = bootstrap_ci([0, 1] * 50, n_boot=500, seed=1)
    assert lo < 0.5 < hi and bootstrap_ci([0, 1] * 50, n_boot=500, seed=1) == (lo, hi)
    assert all(np.isnan(bootstrap_ci([])))


def test_tiny_model_returns_the_right_rows(pruner, example):
    results = {"greedy": [make_result(pruner, example, "greedy", 0)],
               "uniform": [make_result(pruner, example, "uniform", 1)]}
    df = evaluate_sufficiency(pruner, results, keep_ratios=(0.9, 0.7), max_new_tokens=3, n_boot=50)
    assert list(zip(df.method, df.keep_ratio)) == [("full", 1.0), ("none", 0.0), ("greedy", 0.9), ("greedy", 0.7),
                                                   ("uniform", 0.9), ("uniform", 0.7)]
    assert set(df.columns) >= {"n", "n_correct", "accuracy", "ci_low", "ci_high", "answered"}
    assert (df.n == 1).all() and df.accuracy.between(0, 1).all()
    flat = evaluate_sufficiency(pruner, results["greedy"], keep_ratios=(0.8,), max_new_tokens=2, include_none=False,
                                per_example=True)
    assert list(flat.method) == ["full", "greedy"] and {"continuation", "predicted", "correct"} <= set(flat.columns)


def test_fake_generate_gives_known_accuracy(pruner, example):
    ex2 = other(example, "second", "9")
    results = [make_result(pruner, example, seed=0), make_result(pruner, ex2, seed=1)]
    seen = []

    def fake(prompts):  # right on the first example whenever a chain is given; garbage without one
        seen.extend(prompts)
        out = []
        for p in prompts:
            if p.endswith('assistant\n{"answer": "'):
                out.append("\ufffd\x00 no idea")
            elif "(variant)" in p:
                out.append('8"}')  # wrong
            else:
                out.append('72"}\nmore 9')
        return out

    df = evaluate_sufficiency(pruner, results, keep_ratios=(0.5,), generate=fake, n_boot=100).set_index("method")
    assert df.loc["full", "accuracy"] == 0.5 and df.loc["greedy", "accuracy"] == 0.5
    assert df.loc["none", "accuracy"] == 0.0 and df.loc["none", "n"] == 2
    assert len(seen) == 6 and all(p.endswith('{"answer": "') for p in seen)
    pruned = results[0].pruned_text(0.5).strip()
    assert any(pruned + '\n{"answer": "' in p for p in seen)


def test_all_garbage_scores_zero(pruner, example):
    results = [make_result(pruner, example)]
    garbage = ["", '"}', "\x00\x01", "{{{{", "answer: ???", "1e999999999999"]
    df = evaluate_sufficiency(pruner, results, keep_ratios=(0.9, 0.8, 0.7, 0.5),
                              generate=lambda ps: [garbage[i % len(garbage)] for i in range(len(ps))])
    assert (df.accuracy == 0).all()


def test_errors(pruner, example):
    with pytest.raises(PruneprobeError, match="no results"):
        evaluate_sufficiency(pruner, {})
    with pytest.raises(PruneprobeError, match="reserved"):
        evaluate_sufficiency(pruner, {"full": [make_result(pruner, example)]})
    partial = make_result(pruner, example)
    partial.deletion_order = partial.deletion_order[:2]
    with pytest.raises(PruneprobeError, match="greedy result 'natalia'.*needs"):
        evaluate_sufficiency(pruner, [partial], keep_ratios=(0.5,), generate=lambda ps: ["1"] * len(ps))
    with pytest.raises(PruneprobeError, match="3 continuations for 2 prompts"):
        evaluate_sufficiency(pruner, [make_result(pruner, example)], keep_ratios=(0.5,), include_none=False,
                             generate=lambda ps: ["1"] * 3)


def test_generate_greedy_batches_match_single(pruner, example):
    prompts = [sufficiency_prompt(pruner, example, "In May she sold"), sufficiency_prompt(pruner, example, "")]
    batched = generate_greedy(pruner, prompts, max_new_tokens=4, batch_size=2)
    single = [generate_greedy(pruner, [p], max_new_tokens=4)[0] for p in prompts]
    assert batched == single


def test_sufficiency_command_writes_tables_for_labelled_runs(tmp_path, monkeypatch):
    from conftest import make_model_dir
    from test_runs import SHORT, config_for, write_jsonl

    from pruneprobe.cli import main
    from pruneprobe.runs import run_pruning

    model_dir = make_model_dir(tmp_path / "model")
    data = write_jsonl(tmp_path / "d.jsonl", SHORT[:2])
    run_pruning(config_for(model_dir, data, keep_ratio=None), tmp_path / "g", progress=False)
    run_pruning(config_for(model_dir, data, keep_ratio=None, method="uniform", n=1), tmp_path / "u", progress=False)
    out = tmp_path / "suff"
    assert main(["sufficiency", "--run", f"greedy={tmp_path / 'g'}", "--run", str(tmp_path / "u"), "--keep", "0.5",
                 "--model", str(model_dir), "--out", str(out), "--max-new-tokens", "3", "--device", "cpu",
                 "--no-progress"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert set(zip(summary.method, summary.keep_ratio)) == {("full", 1.0), ("none", 0.0), ("greedy", 0.5), ("u", 0.5)}
    assert summary.n.tolist() == [1, 1, 1, 1]  # only the example both runs finished
    assert len(pd.read_csv(out / "examples.csv")) == 4
    assert main(["sufficiency", "--run", f"x={tmp_path / 'g'}", "--run", f"x={tmp_path / 'u'}", "--model",
                 str(model_dir), "--out", str(out)]) == 2  # duplicate labels: a clear error, exit status 2


def test_paired_difference_pairs_examples_and_bootstraps():
    from pruneprobe.distill.sufficiency import paired_difference

    rows = [dict(method=m, keep_ratio=0.7, example_id=i, correct=c)
            for i, (a, b) in enumerate([(1, 0), (1, 0), (1, 1), (0, 0)]) for m, c in (("g", a), ("u", b))]
    rows.append(dict(method="u", keep_ratio=0.7, example_id=9, correct=1))  # unpaired: left out
    out = paired_difference(pd.DataFrame(rows), "g")
    assert out[["method", "n", "diff"]].values.tolist() == [["u", 4, 0.5]]
    assert 0 <= out.ci_low[0] <= 0.5 <= out.ci_high[0] <= 1
    assert paired_difference(pd.DataFrame(rows), "missing").empty
