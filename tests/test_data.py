"""Dataset loaders: embedded gsm_symbolic, local GSM8K / MATH / MMLU-Pro / generic JSONL, bad inputs."""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pruneprobe.data import Example, datasets, list_datasets, load_examples
from pruneprobe.data import examples as data
from pruneprobe.data.datasets import format_mmlu_question, strip_calculator_annotations
from pruneprobe.errors import PruneprobeError

FIXTURES = Path(__file__).parent / "fixtures"
GSM8K_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k"
needs_gsm8k = pytest.mark.skipif(not (GSM8K_DIR / "test.jsonl").is_file(), reason="../shared GSM8K not present")


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_list_datasets_names_and_one_line_descriptions():
    listed = list_datasets()
    assert set(listed) == {"gsm_symbolic", "gsm8k", "math", "mmlu_pro", "jsonl"}
    assert all(isinstance(d, str) and d and "\n" not in d for d in listed.values())
    assert datasets.list_datasets() == listed


def test_unknown_dataset_names_known_ones():
    with pytest.raises(PruneprobeError, match=r"unknown dataset 'gsm9k'.*gsm_symbolic.*mmlu_pro"):
        load_examples("gsm9k")


@pytest.mark.parametrize("n", [0, -2, 1.5, True])
def test_bad_n(n):
    with pytest.raises(PruneprobeError, match="n must be a positive integer"):
        load_examples("gsm_symbolic", n=n)


def test_gsm_symbolic_matches_reasoning_gym():
    import reasoning_gym

    examples = load_examples("gsm_symbolic", n=3, seed=0)
    raw = reasoning_gym.create_dataset("gsm_symbolic", size=3, seed=0)
    assert [e.id for e in examples] == ["gsm_symbolic-0-0", "gsm_symbolic-0-1", "gsm_symbolic-0-2"]
    for example, item in zip(examples, raw):
        assert example.question == item["question"]
        assert example.answer == item["answer"] == str(item["metadata"]["answer_value"])
        assert "####" not in example.reasoning and example.reasoning == example.reasoning.strip()
        assert item["metadata"]["answer_cot"].startswith(example.reasoning)
        assert example.meta["format"] == "gsm8k" and example.meta["source"] == "reasoning_gym:gsm_symbolic"
        example.validate()
    assert load_examples("gsm_symbolic", n=3, seed=0) == examples  # deterministic
    other = load_examples("gsm_symbolic", n=3, seed=1)
    assert other[0].id == "gsm_symbolic-1-0" and [e.question for e in other] != [e.question for e in examples]


def test_gsm_symbolic_item_without_answer_line_raises(monkeypatch):
    import reasoning_gym

    fake = [{"question": "q", "answer": "1", "metadata": {"answer_cot": "no answer line"}}]
    monkeypatch.setattr(reasoning_gym, "create_dataset", lambda *a, **k: fake)
    with pytest.raises(PruneprobeError, match="gsm_symbolic-0-0.*####"):
        load_examples("gsm_symbolic", n=1)


@needs_gsm8k
def test_gsm8k_local_file_strips_annotations():
    examples = load_examples("gsm8k", n=4, path=str(GSM8K_DIR / "test.jsonl"))
    raw = [json.loads(line) for line in (GSM8K_DIR / "test.jsonl").read_text().splitlines()[:4]]
    assert [e.id for e in examples] == [f"gsm8k-test-{i}" for i in range(4)]
    for example, row in zip(examples, raw):
        assert example.question == row["question"]
        assert example.answer == row["answer"].split("####")[-1].strip()
        assert "<<" not in example.reasoning and "####" not in example.reasoning
        assert example.meta["format"] == "gsm8k" and example.meta["split"] == "test"
    kept = load_examples("gsm8k", n=4, path=GSM8K_DIR / "test.jsonl", keep_calculator=True)
    assert any("<<" in e.reasoning for e in kept)
    assert [strip_calculator_annotations(e.reasoning) for e in kept] == [e.reasoning for e in examples]


@needs_gsm8k
def test_gsm8k_directory_picks_split():
    train = load_examples("gsm8k", n=2, split="train", path=str(GSM8K_DIR))
    assert [e.id for e in train] == ["gsm8k-train-0", "gsm8k-train-1"]
    with pytest.raises(PruneprobeError, match="no dev.jsonl"):
        load_examples("gsm8k", split="dev", path=str(GSM8K_DIR))


def test_gsm8k_hub_without_datasets_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(PruneprobeError, match="needs the `datasets` package.*path="):
        load_examples("gsm8k", n=2)


def test_hub_rows_go_through_datasets_load_dataset(monkeypatch):
    calls = []

    def load_dataset(repo, config, split):
        calls.append((repo, config, split))
        return [{"question": "1+1?", "answer": "1 + 1 = <<1+1=2>>2\n#### 2"}]

    monkeypatch.setitem(sys.modules, "datasets", SimpleNamespace(load_dataset=load_dataset))
    examples = load_examples("gsm8k", n=1, split="train")
    assert calls == [("openai/gsm8k", "main", "train[:1]")]
    assert examples == [Example("1+1?", "1 + 1 = 2", "2", "gsm8k-train-0",
                                {"format": "gsm8k", "source": "hub:openai/gsm8k:main", "split": "train", "index": 0})]


def test_hub_failure_is_a_clear_error(monkeypatch):
    def load_dataset(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setitem(sys.modules, "datasets", SimpleNamespace(load_dataset=load_dataset))
    with pytest.raises(PruneprobeError, match="could not load 'someone/math-copy'.*offline"):
        load_examples("math", path="someone/math-copy")


def test_math_fixture_last_boxed_answer():
    examples = load_examples("math", path=FIXTURES / "math_sample.jsonl")
    assert [e.answer for e in examples] == ["11", "\\frac{3}{4}", "\\sqrt{2}", "\\{1\\}"]
    assert [e.id for e in examples] == ["math-test-0", "math-test-1", "math-test-3", "math-test-4"]  # blank line 3
    first = examples[0]
    assert first.reasoning.endswith("so the value is $\\boxed{11}$.")  # the full solution is the reasoning
    assert first.meta == {"format": "math", "source": f"file:{FIXTURES / 'math_sample.jsonl'}", "split": "test",
                          "index": 0, "level": "Level 1", "type": "Prealgebra"}
    assert first.prompt_format.name == "math"
    assert len(load_examples("math", n=2, path=FIXTURES / "math_sample.jsonl")) == 2


def test_mmlu_pro_fixture():
    examples = load_examples("mmlu_pro", path=FIXTURES / "mmlu_pro_sample.jsonl")
    planet, times, gas = examples
    assert planet.question == "Which planet is closest to the Sun?\nA. Venus\nB. Mercury\nC. Earth\nD. Mars"
    assert planet.reasoning == ("Let's think step by step. The planets in order from the Sun start with "
                                "Mercury, then Venus.")
    assert planet.answer == "B" and planet.meta["format"] == "mmlu_pro" and planet.meta["category"] == "physics"
    assert times.question.endswith("\nJ. 52") and times.answer == "C"
    assert not times.reasoning.startswith("A:") and "The answer is" not in times.reasoning
    assert gas.answer == "C" and gas.reasoning == ""  # letter from answer_index; no chain given


def test_format_mmlu_question():
    assert format_mmlu_question(" Q? ", ["x", " y "]) == "Q?\nA. x\nB. y"


def test_generic_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "chains.jsonl", [
        {"question": "q1", "reasoning": "r1 <<1+1=2>>2", "answer": "2"},
        {"question": "q2", "reasoning": "r2", "answer": "B", "id": "custom", "format": "mmlu_pro"},
        {"question": "q3", "reasoning": "r3", "answer": 7, "meta": {"format": "math", "teacher": "t"}},
    ])
    a, b, c = load_examples("jsonl", path=str(path))
    assert (a.id, a.reasoning, a.meta["format"]) == ("chains-0", "r1 2", "gsm8k")
    assert (b.id, b.meta["format"]) == ("custom", "mmlu_pro")
    assert (c.answer, c.meta["format"], c.meta["teacher"]) == ("7", "math", "t")


def test_calculator_annotations_same_default_and_switch_in_python_and_loaders(tmp_path):
    annotated = "48/2 = <<48/2=24>>24 clips, 48 + 24 = <<48+24=72>>72"
    made = Example("Q?", annotated, "72", id="n")
    assert made.reasoning == "48/2 = 24 clips, 48 + 24 = 72"  # the default: removed, as the loaders do
    kept = Example("Q?", annotated, "72", id="n", keep_calculator=True)
    assert kept.reasoning == annotated
    assert Example("Q?", annotated, "72", meta={"format": "math"}).reasoning == annotated  # not a GSM8K chain
    assert Example.from_dict(kept.to_dict()) == kept and Example.from_dict(made.to_dict()) == made
    assert "keep_calculator" not in made.to_dict()
    path = write_jsonl(tmp_path / "c.jsonl", [{"question": "Q?", "reasoning": annotated, "answer": "72", "id": "n"}])
    loaded = load_examples("jsonl", path=path)[0]
    assert loaded.reasoning == made.reasoning
    assert load_examples("jsonl", path=path, keep_calculator=True)[0].reasoning == annotated
    assert load_examples("jsonl", path=write_jsonl(tmp_path / "k.jsonl", [kept.to_dict()]))[0].reasoning == annotated


def test_generic_jsonl_round_trips_example_to_dict(tmp_path):
    original = load_examples("mmlu_pro", n=1, path=FIXTURES / "mmlu_pro_sample.jsonl")
    path = write_jsonl(tmp_path / "x.jsonl", [e.to_dict() for e in original])
    assert load_examples("jsonl", path=path) == original


@pytest.mark.parametrize(
    "name,rows,match",
    [
        ("gsm8k", ['{"question": "q", "answer": "#### 1"}', "{not json"], r"line 2 is not valid JSON"),
        ("gsm8k", ["[1, 2]"], r"line 1 is a JSON list, not an object"),
        ("gsm8k", [{"question": "q"}], r"row 1: missing field\(s\) answer"),
        ("gsm8k", [{"question": "q", "answer": "no hashes"}], r"row 1: answer has no '#### <answer>' line"),
        ("math", [{"problem": "p", "solution": "no box"}], r"row 1: solution has no \\boxed"),
        ("math", [{"solution": "\\boxed{1}"}], r"missing field\(s\) problem"),
        ("mmlu_pro", [{"question": "q", "options": ["a", "b"], "answer": "C"}], r"answer 'C' is not one of the 2"),
        ("mmlu_pro", [{"question": "q", "options": "a b", "answer": "A"}], r"options must be a non-empty list"),
        ("mmlu_pro", [{"question": "q", "options": ["a"]}], r"answer None is not one of"),
        ("jsonl", [{"question": "q", "answer": "1"}], r"missing field\(s\) reasoning"),
        ("jsonl", [{"question": "q", "reasoning": "r", "answer": "1", "format": "latex"}], r"unknown format 'latex'"),
    ],
)
def test_bad_files(tmp_path, name, rows, match):
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(PruneprobeError, match=match):
        load_examples(name, path=str(path))


def test_missing_file_and_missing_path(tmp_path):
    with pytest.raises(PruneprobeError, match="data file not found.*nope.jsonl"):
        load_examples("mmlu_pro", path=str(tmp_path / "nope.jsonl"))
    with pytest.raises(PruneprobeError, match="jsonl: pass path="):
        load_examples("jsonl")


def test_data_module_keeps_its_definitions():
    assert set(data.PROMPT_FORMATS) == {"gsm8k", "math", "mmlu_pro"}
    assert datasets.load_examples("gsm_symbolic", n=1)[0].id == "gsm_symbolic-0-0"
