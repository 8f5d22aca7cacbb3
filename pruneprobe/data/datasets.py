"""Dataset loaders: each returns ``list[Example]`` (question, reasoning, answer) with a prompt format.

Canonical pattern::

    from pruneprobe.data.datasets import list_datasets, load_examples
    list_datasets()                                        # {"gsm_symbolic": "...", ...}
    load_examples("gsm_symbolic", n=5, seed=0)             # embedded, offline
    load_examples("gsm8k", path="path/to/gsm8k/test.jsonl", n=100)
    load_examples("math", path="openai/some-math-copy")    # a hub id needs `datasets` + internet

Gotchas:
- ``path`` may be a JSONL file, a directory holding ``{split}.jsonl``, or a hub id
  (``owner/name`` or ``owner/name:config``, loaded with the ``datasets`` package). Without
  ``path`` the file-backed datasets use their default hub id.
- ``n`` takes the first ``n`` rows of a file (in file order); ``seed`` only drives generated data
  (``gsm_symbolic``). Ids are stable: they hold the split and the row index.
- MMLU-Pro's test split has no worked chains (``cot_content`` is empty); its examples then have an
  empty reasoning, usable as teacher problems (``pruneprobe.data.teacher``) but not for pruning.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from pruneprobe.data.answers import last_boxed
from pruneprobe.data.examples import PROMPT_FORMATS, Example, strip_calculator_annotations  # noqa: F401  (re-exported)
from pruneprobe.errors import PruneprobeError

_MMLU_ANSWER = re.compile(r"\s*The answer is \(?([A-J])\)?\.?\s*$")
_LETTERS = "ABCDEFGHIJKLMNOP"
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+(?::[\w.-]+)?")


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its loader, prompt format and default hub id."""

    name: str
    description: str
    format: str
    loader: Callable[..., list[Example]]
    hub_id: str = ""


def read_jsonl(path: str | Path, n: int | None = None) -> list[tuple[int, dict]]:
    """(line index, record) pairs of a JSONL file; blank lines skipped, bad lines raise.

    The line index counts from 0 over all lines, so ids stay stable when blank lines move.
    """
    path = Path(path)
    if not path.is_file():
        raise PruneprobeError(f"data file not found: {path}")
    rows: list[tuple[int, dict]] = []
    with open(path, encoding="utf-8") as f:
        for index, line in enumerate(f):
            if n is not None and len(rows) >= n:
                break
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PruneprobeError(f"{path}: line {index + 1} is not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise PruneprobeError(f"{path}: line {index + 1} is a JSON {type(record).__name__}, not an object")
            rows.append((index, record))
    return rows


def _require(record: dict, fields: Iterable[str], where: str) -> None:
    missing = [f for f in fields if record.get(f) is None]
    if missing:
        raise PruneprobeError(f"{where}: missing field(s) {', '.join(missing)}; has {', '.join(record) or 'none'}")


def _rows(name: str, path: str | None, split: str, n: int | None, hub_id: str) -> tuple[list[tuple[int, dict]], str]:
    """Rows from a local file/directory or the hub, with a source label for ``meta``."""
    target = str(Path(path).expanduser()) if path else hub_id
    local = Path(target)
    if local.is_dir():
        local = local / f"{split}.jsonl"
        if not local.is_file():
            raise PruneprobeError(f"{name}: no {split}.jsonl in directory {target}")
    if local.is_file():
        return read_jsonl(local, n), f"file:{local}"
    if _HUB_ID.fullmatch(target) and not target.endswith((".jsonl", ".json")):
        return _hub_rows(name, target, split, n), f"hub:{target}"
    raise PruneprobeError(f"{name}: data file not found: {target} (nor a hub id like owner/name)")


def _hub_rows(name: str, hub_id: str, split: str, n: int | None) -> list[tuple[int, dict]]:
    try:
        import datasets  # the Hugging Face package, optional
    except ImportError:
        raise PruneprobeError(
            f"{name}: loading hub id {hub_id!r} needs the `datasets` package (pip install datasets); "
            "or pass path= to a local JSONL file"
        ) from None
    repo, _, config = hub_id.partition(":")
    split_spec = split if n is None else f"{split}[:{n}]"
    try:
        data = datasets.load_dataset(repo, config or None, split=split_spec)
    except Exception as exc:  # offline, unknown id, unknown split, ...
        raise PruneprobeError(
            f"{name}: could not load {hub_id!r} split {split!r} from the hub ({type(exc).__name__}: {exc}); "
            "pass path= to a local JSONL file when offline"
        ) from exc
    return list(enumerate(dict(row) for row in data))


def _split_gsm_solution(solution: str, keep_calculator: bool, where: str) -> tuple[str, str]:
    """GSM8K-style ``reasoning ... #### answer`` into (reasoning, answer)."""
    if "####" not in solution:
        raise PruneprobeError(f"{where} has no '#### <answer>' line")
    reasoning, _, answer = solution.rpartition("####")
    return _gsm_reasoning(reasoning, "gsm8k", keep_calculator), answer


def _gsm_reasoning(reasoning: str, fmt: str, keep_calculator: bool) -> str:
    """Calculator annotations removed (``gsm8k`` format, as ``Example`` does), then outer whitespace."""
    if fmt == "gsm8k" and not keep_calculator:
        reasoning = strip_calculator_annotations(reasoning)
    return reasoning.strip()


def _load_gsm_symbolic(n: int | None, split: str, path: str | None, seed: int, keep_calculator: bool) -> list[Example]:
    import reasoning_gym

    size = 500 if n is None else n  # reasoning_gym's own default size
    data = reasoning_gym.create_dataset("gsm_symbolic", size=size, seed=seed)
    examples = []
    for index in range(size):
        item = data[index]
        cot = (item.get("metadata") or {}).get("answer_cot") or ""
        ident = f"gsm_symbolic-{seed}-{index}"
        reasoning, answer = _split_gsm_solution(cot, keep_calculator, f"gsm_symbolic item {ident}: its answer_cot")
        meta = {"format": "gsm8k", "source": "reasoning_gym:gsm_symbolic", "seed": seed, "index": index,
                "source_index": item["metadata"].get("source_index")}
        examples.append(Example(item["question"], reasoning, answer.strip(), ident, meta, keep_calculator))
    return examples


def _load_gsm8k(n, split, path, seed, keep_calculator) -> list[Example]:
    rows, source = _rows("gsm8k", path, split, n, DATASETS["gsm8k"].hub_id)
    examples = []
    for index, row in rows:
        where = f"gsm8k {source} row {index + 1}"
        _require(row, ("question", "answer"), where)
        reasoning, answer = _split_gsm_solution(str(row["answer"]), keep_calculator, f"{where}: answer")
        meta = {"format": "gsm8k", "source": source, "split": split, "index": index}
        examples.append(Example(str(row["question"]), reasoning, answer.strip(), f"gsm8k-{split}-{index}", meta,
                                keep_calculator))
    return examples


def _load_math(n, split, path, seed, keep_calculator) -> list[Example]:
    rows, source = _rows("math", path, split, n, DATASETS["math"].hub_id)
    examples = []
    for index, row in rows:
        where = f"math {source} row {index + 1}"
        _require(row, ("problem", "solution"), where)
        solution = str(row["solution"]).strip()
        answer = last_boxed(solution) or (str(row["answer"]).strip() if row.get("answer") is not None else None)
        if not answer:
            raise PruneprobeError(f"{where}: solution has no \\boxed{{...}} answer and there is no answer field")
        meta = {"format": "math", "source": source, "split": split, "index": index,
                "level": row.get("level"), "type": row.get("type") or row.get("subject")}
        examples.append(Example(str(row["problem"]).strip(), solution, answer, f"math-{split}-{index}", meta))
    return examples


def format_mmlu_question(question: str, options: list[str]) -> str:
    """The question followed by its lettered options, one per line.

    >>> print(format_mmlu_question("2+2?", ["3", "4"]))
    2+2?
    A. 3
    B. 4
    """
    return question.strip() + "\n" + "\n".join(f"{_LETTERS[i]}. {str(o).strip()}" for i, o in enumerate(options))


def _load_mmlu_pro(n, split, path, seed, keep_calculator) -> list[Example]:
    rows, source = _rows("mmlu_pro", path, split, n, DATASETS["mmlu_pro"].hub_id)
    examples = []
    for index, row in rows:
        where = f"mmlu_pro {source} row {index + 1}"
        _require(row, ("question", "options"), where)
        options = row["options"]
        if not isinstance(options, list) or not options or len(options) > len(_LETTERS):
            raise PruneprobeError(f"{where}: options must be a non-empty list (at most {len(_LETTERS)})")
        answer = row.get("answer")
        if answer is None and row.get("answer_index") is not None:
            answer = _LETTERS[int(row["answer_index"])]
        answer = str(answer or "").strip().upper()
        if len(answer) != 1 or answer not in _LETTERS[: len(options)]:
            raise PruneprobeError(f"{where}: answer {row.get('answer')!r} is not one of the {len(options)} option letters")
        reasoning = str(row.get("cot_content") or "").strip()
        reasoning = re.sub(r"^A:\s*", "", reasoning)
        reasoning = _MMLU_ANSWER.sub("", reasoning).strip()
        meta = {"format": "mmlu_pro", "source": source, "split": split, "index": index,
                "category": row.get("category"), "question_id": row.get("question_id")}
        examples.append(Example(format_mmlu_question(str(row["question"]), options), reasoning, answer,
                                f"mmlu_pro-{split}-{index}", meta))
    return examples


def _load_jsonl(n, split, path, seed, keep_calculator) -> list[Example]:
    if not path:
        raise PruneprobeError("jsonl: pass path= to a JSONL file with question, reasoning and answer fields")
    rows, source = _rows("jsonl", path, split, n, "")
    stem = Path(source.removeprefix("file:")).stem
    examples = []
    for index, row in rows:
        where = f"jsonl {source} row {index + 1}"
        _require(row, ("question", "reasoning", "answer"), where)
        meta = dict(row.get("meta") or {})
        meta.setdefault("format", row.get("format", "gsm8k"))
        if meta["format"] not in PROMPT_FORMATS:
            raise PruneprobeError(f"{where}: unknown format {meta['format']!r}; known: {', '.join(PROMPT_FORMATS)}")
        meta.setdefault("source", source)
        keep = keep_calculator or bool(row.get("keep_calculator"))  # an Example.to_dict() that kept them
        examples.append(Example(str(row["question"]), _gsm_reasoning(str(row["reasoning"]), meta["format"], keep),
                                str(row["answer"]).strip(), str(row.get("id", f"{stem}-{index}")), meta, keep))
    return examples


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec("gsm_symbolic", "GSM8K-style templates generated offline by reasoning-gym, worked chains ending '#### x'",
                    "gsm8k", _load_gsm_symbolic),
        DatasetSpec("gsm8k", "GSM8K grade-school math (JSONL with question/answer, or the hub)", "gsm8k",
                    _load_gsm8k, "openai/gsm8k:main"),
        DatasetSpec("math", "MATH competition problems (hendrycks JSONL: problem/solution with \\boxed{})", "math",
                    _load_math, "HuggingFaceH4/MATH-500"),
        DatasetSpec("mmlu_pro", "MMLU-Pro 10-option multiple choice (question/options/answer/cot_content)",
                    "mmlu_pro", _load_mmlu_pro, "TIGER-Lab/MMLU-Pro"),
        DatasetSpec("jsonl", "any JSONL with question/reasoning/answer (optional id, format, meta)", "gsm8k",
                    _load_jsonl),
    ]
}


def list_datasets() -> dict[str, str]:
    """Registered dataset names with a one-line description each.

    >>> "gsm_symbolic" in list_datasets()
    True
    """
    return {name: spec.description for name, spec in DATASETS.items()}


def load_examples(name: str, n: int | None = None, split: str = "test", path: str | None = None,
                  seed: int = 0, keep_calculator: bool = False) -> list[Example]:
    """Load ``n`` examples (all when ``None``) of a registered dataset.

    GSM8K-format reasoning loses its ``<<48/2=24>>`` calculator annotations, as in ``Example``;
    ``keep_calculator=True`` keeps them.

    >>> examples = load_examples("gsm_symbolic", n=2, seed=0)
    >>> examples[0].id, examples[0].meta["format"]
    ('gsm_symbolic-0-0', 'gsm8k')
    """
    if name not in DATASETS:
        raise PruneprobeError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise PruneprobeError(f"n must be a positive integer or None, got {n!r}")
    return DATASETS[name].loader(n, split, None if path is None else str(path), seed, keep_calculator)
