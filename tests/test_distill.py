"""Distillation: SFT data with student-token length matching, LoRA training and resume, evaluation, CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_model_dir, smol_tokenizer_dir, tiny_pruner

from pruneprobe import Example, PruneprobeError
from pruneprobe.cli.distill import add_parser as add_distill_parser
from pruneprobe.cli.distill import run as run_distill_command
from pruneprobe.core.result import TRACE_KEYS, PruneResult
from pruneprobe.distill.config import CPU_CONFIG, PAPER_GPU_CONFIG
from pruneprobe.distill.evaluate import check_disjoint, evaluate_student, heldout_gsm_symbolic, student_prompt
from pruneprobe.distill.sft import build_sft_data, describe_sft_data, encode_sft
from pruneprobe.distill.train import train_student

GSM8K_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "test.jsonl"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def student_tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_tokenizer_dir())


@pytest.fixture(scope="module")
def chains():
    from pruneprobe.data.datasets import load_examples

    return load_examples("gsm_symbolic", n=4, seed=0)


def pseudo_result(example: Example, method: str, seed: int, piece_sizes=(1, 3, 2, 4)) -> PruneResult:
    """A PruneResult whose 'pruner tokens' are character chunks (unlike the student's BPE tokens)."""
    text, pieces, i = example.reasoning.strip(), [], 0
    while i < len(text):
        size = piece_sizes[len(pieces) % len(piece_sizes)]
        pieces.append(text[i:i + size])
        i += size
    order = np.random.default_rng(seed).permutation(len(pieces)).tolist()
    return PruneResult(example.id, method, "joint", list(range(len(pieces))), pieces, order,
                       {k: [0.0] * (len(pieces) + 1) for k in TRACE_KEYS}, example=example.to_dict())


def long_example(chains) -> Example:
    reasoning = "\n".join(c.reasoning for c in chains)  # a real chain of a few hundred student tokens
    return Example(chains[0].question, reasoning, chains[0].answer, "long", dict(chains[0].meta))


def count(tok, text: str) -> int:
    return len(tok(text, add_special_tokens=False)["input_ids"])


def sft(example_id, completion, question="What is 2 + 3?", method="greedy"):
    from pruneprobe.data.examples import PROMPT_FORMATS
    from pruneprobe.distill.sft import SFTExample

    fmt = PROMPT_FORMATS["gsm8k"]
    return SFTExample(example_id, method, fmt.system_prompt, question, completion, "5", "gsm8k", 0.7, 0.7, 10, 7, 3,
                      True)


# -- SFT data ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rho", [0.9, 0.8, 0.7, 0.5])
def test_lengths_matched_in_student_tokens(chains, student_tok, rho):
    ex = long_example(chains)
    results = {"greedy": [pseudo_result(ex, "greedy", 0)], "uniform": [pseudo_result(ex, "uniform", 1, (2, 5))]}
    data = build_sft_data(results, rho, student_tok)
    assert [d.method for d in data] == ["greedy", "uniform"]
    full = ex.reasoning.strip()
    for d, r in zip(data, [results["greedy"][0], results["uniform"][0]]):
        assert d.n_student_full == count(student_tok, full) > 200
        reasoning, _, answer_line = d.completion.rpartition("\n")
        assert answer_line == '{"answer": "%s"}' % ex.answer
        kept = np.ones(r.n_tokens, bool)
        kept[r.deletion_order[:d.n_pruner_deleted]] = False  # the first k of the deletion order are gone
        assert reasoning == "".join(p for p, k in zip(r.tokens, kept) if k).strip()
        assert d.achieved_ratio == count(student_tok, reasoning) / d.n_student_full
        assert abs(d.achieved_ratio - rho) <= 0.005 and d.matched
    naive = results["greedy"][0].pruned_text(rho).strip()  # cut in pruner tokens: off in student tokens
    assert abs(count(student_tok, naive) / count(student_tok, full) - rho) > 0.005


def test_short_chains_record_closest_ratio(student_tok, example):
    results = [pseudo_result(example, "greedy", s) for s in range(3)]
    data = build_sft_data(results, 0.7, student_tok)
    assert len(data) == 3
    for d in data:
        assert d.matched == (abs(d.achieved_ratio - 0.7) <= 0.005)
        assert abs(d.achieved_ratio - 0.7) <= 1.5 / d.n_student_full  # closest achievable at this length
    kept = build_sft_data(results, 0.7, student_tok, require_match=True)
    assert len(kept) == sum(d.matched for d in data)
    full = build_sft_data(results, 1.0, student_tok)  # the full-chain reference
    assert all(d.achieved_ratio == 1.0 and d.n_pruner_deleted == 0 for d in full)
    table = describe_sft_data(data)
    assert table.loc[0, "n"] == 3 and table.loc[0, "keep_ratio"] == 0.7
    with pytest.raises(PruneprobeError, match="keep_ratio"):
        build_sft_data(results, 0.0, student_tok)


def test_labels_cover_only_the_completion():
    student = tiny_pruner("llama")
    ex = sft("a", 'Add: 2 + 3 = 5.\n{"answer": "5"}')
    ids, labels, truncated = encode_sft(student, ex)
    assert not truncated and len(ids) == len(labels)
    first = next(i for i, l in enumerate(labels) if l != -100)
    assert all(l != -100 for l in labels[first:])
    tok = student.tokenizer
    assert tok.decode(ids[:first]).endswith("<|im_start|>assistant\n")
    assert tok.decode(ids[first:]).startswith(ex.completion)
    assert student_prompt(student, Example(ex.question, "x", "5")) == tok.decode(ids[:first]) == ex.prompt(student)


# -- training -----------------------------------------------------------------------------------------------
def test_lora_steps_lower_the_loss(tmp_path):
    student = tiny_pruner("llama")
    before = {k: v.clone() for k, v in student.model.state_dict().items()}
    data = [sft("a", 'Add the two numbers: 2 + 3 = 5.\n{"answer": "5"}')]
    res = train_student(student, data, tmp_path / "s", lr=5e-2, batch_size=1, max_steps=10, warmup_ratio=0.0,
                        progress=False)
    assert res.step == res.total_steps == 10 and len(res.losses) == 10 and res.resumed_from is None
    assert res.losses[-1] < res.losses[0] - 0.1, res.losses  # random tiny model, LoRA on q/v only: slow but sure
    assert (res.adapter_dir / "adapter_config.json").exists()
    base = res.student.model.get_base_model().state_dict()
    assert all(torch.equal(before[k], base[k]) for k in before if k in base)  # only the adapter moved


def _adapter(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "adapter" / "adapter_model.safetensors"))


def test_resume_equals_straight_training(tmp_path):
    data = [sft(str(i), f"Step {i}: 2 + 3 = 5 and {i} more.\n" + '{"answer": "5"}', question=f"Q{i}: 2 + 3?")
            for i in range(6)]
    kw = dict(batch_size=2, max_steps=4, save_every=2, lr=1e-2, lora_dropout=0.1, seed=3, progress=False)
    straight = train_student(tiny_pruner("llama"), data, tmp_path / "a", **kw)

    def kill_at_3(step, loss):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_student(tiny_pruner("llama"), data, tmp_path / "b", callback=kill_at_3, **kw)
    assert sorted(p.name for p in (tmp_path / "b").glob("checkpoint-*")) == ["checkpoint-2"]
    resumed = train_student(tiny_pruner("llama"), data, tmp_path / "b", **kw)
    assert resumed.resumed_from == 2 and resumed.step == 4
    assert resumed.losses == pytest.approx(straight.losses, abs=1e-6)
    a, b = _adapter(tmp_path / "a"), _adapter(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) > 0
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6
    again = train_student(tiny_pruner("llama"), data, tmp_path / "a", **kw)  # finished: nothing to do
    assert again.resumed_from == 4 and again.step == 4
    saved = json.loads((tmp_path / "a" / "checkpoint-4" / "trainer_state.json").read_text())["train_seconds"]
    assert again.elapsed_s >= saved > 0.5 * straight.elapsed_s  # training time is kept across calls, not reset
    with pytest.raises(PruneprobeError, match="other settings .*lr"):
        train_student(tiny_pruner("llama"), data, tmp_path / "a", **dict(kw, lr=1e-3))


# -- evaluation and held-out problems -------------------------------------------------------------------------
def test_evaluate_student_known_and_garbage_outputs(example):
    student = tiny_pruner("llama")
    problems = [example, Example(example.question + " Twice?", example.reasoning, "144", "twice")]
    good = lambda ps: ['48 + 24 = 72\n{"answer": "72"}', "so 144 in total.\nThus, the final answer is: 144"]
    df = evaluate_student(student, problems, generate=good, progress=False, label="ref")
    assert df.loc[0, "label"] == "ref" and df.loc[0, "accuracy"] == 1.0 and df.loc[0, "n"] == 2
    half = evaluate_student(student, problems, generate=lambda ps: ['{"answer": "72"}', '{"answer": "7"}'],
                            progress=False)
    assert half.loc[0, "accuracy"] == 0.5
    garbage = evaluate_student(student, problems, generate=lambda ps: ["\x00\ufffd{{{", ""], progress=False)
    assert garbage.loc[0, "accuracy"] == 0.0 and garbage.loc[0, "answered"] == 0.0
    real = evaluate_student(student, problems, max_new_tokens=3, progress=False, per_example=True)
    assert list(real.example_id) == ["natalia", "twice"] and real.correct.dtype == bool


def test_heldout_gsm_symbolic_is_disjoint():
    held = heldout_gsm_symbolic(3, train_seed=0, train_n=20)
    assert all(p.meta["seed"] == 1_000_000 for p in held)
    with pytest.raises(PruneprobeError, match="1 held-out problems also appear"):
        check_disjoint([held[1].question + "  "], held)


@pytest.mark.skipif(not GSM8K_TEST.is_file(), reason="../shared GSM8K not present")
def test_gsm8k_test_problems_evaluate():
    from pruneprobe.data.datasets import load_examples

    problems = load_examples("gsm8k", path=str(GSM8K_TEST), n=3)
    outputs = ['{"answer": "%s"}' % p.answer for p in problems[:2]] + ["no answer here"]
    df = evaluate_student(tiny_pruner("llama"), problems, generate=lambda ps: outputs, progress=False)
    assert df.loc[0, "n_correct"] == 2


def test_configs():
    assert CPU_CONFIG.students == ("smollm2-135m",) and CPU_CONFIG.est_minutes_per_student
    assert PAPER_GPU_CONFIG.keep_ratios == (0.9, 0.8, 0.7) and "Qwen2.5-7B" in PAPER_GPU_CONFIG.pruner
    assert {"meta-llama/Llama-2-7b-hf", "mistralai/Mistral-7B-v0.1"} == set(PAPER_GPU_CONFIG.students)


# -- command line ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny student saved as a model directory (what ``--student`` takes)."""
    return make_model_dir(tmp_path_factory.mktemp("student") / "model")


def test_distill_command(tmp_path, monkeypatch, chains, model_dir):
    import pruneprobe.cli.distill as distill  # the command and its _load_results live there

    results = [pseudo_result(c, "greedy", i) for i, c in enumerate(chains)]
    config = SimpleNamespace(dataset="gsm_symbolic", seed=0, n=4)
    monkeypatch.setattr(distill, "_load_results", lambda path: (results, config))
    parser = argparse.ArgumentParser(prog="pruneprobe")
    add_distill_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["distill", "--run", "runs/x", "--keep", "0.7", "--student", str(model_dir), "--out",
                              str(tmp_path / "out"), "--max-steps", "2", "--eval-n", "2", "--max-new-tokens", "2",
                              "--zero-shot", "--device", "cpu", "--no-progress"])
    assert run_distill_command(args) == 0
    out = tmp_path / "out"
    assert (out / "adapter" / "adapter_config.json").exists() and (out / "checkpoint-2").is_dir()
    summary = pd.read_csv(out / "eval.csv")
    assert summary.label.tolist() == ["zero-shot", "greedy@0.7"] and set(summary.eval_set) == {"gsm_symbolic"}
    assert {"accuracy", "ci_low", "ci_high", "n_train", "train_s", "eval_s", "achieved_mean"} <= set(summary.columns)
    assert summary.n.tolist() == [2, 2] and summary.n_train.tolist() == [0, 4]
    per_example = pd.read_csv(out / "eval_examples.csv")
    assert len(per_example) == 4 and set(per_example.columns) >= {"label", "eval_set", "example_id", "correct"}
    first = json.loads((out / "sft_data.jsonl").read_text().splitlines()[0])
    assert first["method"] == "greedy" and first["keep_ratio"] == 0.7


def test_distill_command_trains_every_method_on_the_examples_all_runs_finished(tmp_path, monkeypatch, chains, model_dir):
    import pruneprobe.cli.distill as distill

    config = SimpleNamespace(dataset="gsm_symbolic", seed=0, n=4)
    by_path = {"runs/g": [pseudo_result(c, "greedy", i) for i, c in enumerate(chains[:3])],
               "runs/u": [pseudo_result(c, "uniform", i) for i, c in enumerate(chains)]}
    monkeypatch.setattr(distill, "_load_results", lambda path: (by_path[path], config))
    parser = argparse.ArgumentParser(prog="pruneprobe")
    add_distill_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["distill", "--run", "runs/g", "--run", "runs/u", "--keep", "0.8", "--student",
                              str(model_dir), "--out", str(tmp_path / "out"), "--max-steps", "1", "--eval-n", "0",
                              "--device", "cpu", "--no-progress"])
    assert run_distill_command(args) == 0
    for sub in ("0-greedy", "1-uniform"):
        lines = (tmp_path / "out" / sub / "sft_data.jsonl").read_text().splitlines()
        assert len(lines) == 3  # the fourth chain is missing from the greedy run, so left out of both
    args = parser.parse_args(["distill", "--run", "runs/u", "--same-examples-as", "runs/g", "--keep", "0.8",
                              "--student", str(model_dir), "--out", str(tmp_path / "alone"), "--max-steps", "1",
                              "--eval-n", "0", "--device", "cpu", "--no-progress"])
    assert run_distill_command(args) == 0  # one student per process, still on the shared examples
    assert len((tmp_path / "alone" / "sft_data.jsonl").read_text().splitlines()) == 3
    args = parser.parse_args(["distill", "--run", "runs/g", "--keep", "0.8", "--student", str(model_dir), "--out",
                              str(tmp_path / "bad"), "--eval", "gsm8k", "--eval-n", "1", "--device", "cpu"])
    with pytest.raises(PruneprobeError):
        run_distill_command(args)  # gsm8k without a data file and no hub: a clear error


def test_distill_command_zero_shot_only_trains_nothing(tmp_path, monkeypatch, chains, model_dir):
    import pruneprobe.cli.distill as distill

    results = [pseudo_result(c, "greedy", i) for i, c in enumerate(chains)]
    monkeypatch.setattr(distill, "_load_results", lambda path: (results, SimpleNamespace(dataset="gsm_symbolic", seed=0, n=4)))
    parser = argparse.ArgumentParser(prog="pruneprobe")
    add_distill_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["distill", "--run", "runs/x", "--keep", "1.0", "--zero-shot-only", "--student",
                              str(model_dir), "--out", str(tmp_path / "z"), "--eval-n", "2", "--max-new-tokens", "2",
                              "--device", "cpu", "--no-progress"])
    assert run_distill_command(args) == 0
    assert pd.read_csv(tmp_path / "z" / "eval.csv").label.tolist() == ["zero-shot"]
    assert not (tmp_path / "z" / "adapter").exists()


def test_collect_student_results_gathers_and_redacts(tmp_path):
    from pruneprobe.distill.collect import collect_student_results

    for name, label in [("greedy-0.7", "greedy@0.7"), ("zero-shot", "zero-shot")]:
        d = tmp_path / "students" / name
        d.mkdir(parents=True)
        pd.DataFrame([dict(label=label, eval_set=s, n=1, accuracy=1.0) for s in ("gsm_symbolic", "gsm8k")]).to_csv(
            d / "eval.csv", index=False)
        pd.DataFrame([dict(label=label, eval_set=s, example_id="x", output=f"text {s}", predicted="5", gold="05",
                           correct=True) for s in ("gsm_symbolic", "gsm8k")]).to_csv(d / "eval_examples.csv", index=False)
    summary = collect_student_results(tmp_path / "students", tmp_path / "out")
    assert summary.label.tolist() == ["greedy@0.7"] * 2 + ["zero-shot"] * 2
    ex = pd.read_csv(tmp_path / "out" / "eval_examples.csv", dtype={"gold": str}, keep_default_na=False)
    assert ex[ex.eval_set == "gsm8k"].output.tolist() == ["", ""] and ex.gold.tolist() == ["05"] * 4
    assert ex[ex.eval_set == "gsm_symbolic"].output.tolist() == ["text gsm_symbolic"] * 2
    with pytest.raises(PruneprobeError, match="no student results"):
        collect_student_results(tmp_path / "out", tmp_path / "x")
