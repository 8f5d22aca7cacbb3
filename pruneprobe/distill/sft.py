"""SFT data for distillation (docs/method.md, "Sufficiency and distillation"): question -> pruned
reasoning -> answer pairs, their lengths matched in the student's tokens.

Canonical pattern::

    from pruneprobe import load_pruner, load_run
    from pruneprobe.distill.sft import build_sft_data, describe_sft_data
    results = list(load_run("runs/greedy").results())
    student = load_pruner("smollm2-135m")
    data = build_sft_data(results, 0.7, student.tokenizer)     # lengths matched in student tokens
    describe_sft_data(data)                                     # achieved ratio per method

Training is :mod:`pruneprobe.distill.train`, evaluation :mod:`pruneprobe.distill.evaluate`.

Length matching: every method is compared at the same keep ratio rho *in the student's tokens*.
Chains are cut in the pruner's tokens, so per example the number ``k`` of pruner tokens deleted
(the first ``k`` of the result's deletion order) is chosen so that
``len(student_tokens(pruned)) / len(student_tokens(full))`` is closest to rho: a binary search
for the first ``k`` at or below rho (the ratio falls with ``k`` up to token merges), then a scan of
``k +- window``. ``achieved_ratio`` and ``matched`` (within ``tolerance``, default 0.005) are
recorded; short chains cannot always get within 0.005 (one token of 100 is 0.01), and
``require_match=True`` drops those. ``build_sft_data(results, 1.0, ...)`` gives the full-chain
reference data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import pandas as pd

from pruneprobe.data.models import Pruner
from pruneprobe.distill.sufficiency import assistant_prefix_prompt, group_results, result_example
from pruneprobe.errors import PruneprobeError


@dataclass(frozen=True)
class SFTExample:
    """One training pair; ``completion`` = pruned reasoning + newline + answer line."""

    example_id: str
    method: str
    system: str
    question: str
    completion: str
    answer: str
    format: str
    keep_ratio: float  # target rho
    achieved_ratio: float  # student tokens of the kept reasoning / of the full reasoning
    n_student_full: int
    n_student_kept: int
    n_pruner_deleted: int
    matched: bool  # |achieved - target| <= tolerance

    to_dict = asdict

    def prompt(self, student: Pruner) -> str:
        """The rendered prompt in ``student``'s template (the completion follows it in training)."""
        return assistant_prefix_prompt(student, self.system, self.question, "").rstrip(" ")


def _as_tokenizer(tok):
    return tok.tokenizer if isinstance(tok, Pruner) else tok


def _pruned_text(result, k: int) -> str:
    gone = set(result.deletion_order[:k])
    return "".join(t for i, t in enumerate(result.tokens) if i not in gone).strip()


def match_student_ratio(result, keep_ratio: float, count: Callable[[str], int],
                        window: int = 8) -> tuple[int, str, int, int]:
    """``(k, pruned text, student tokens kept, student tokens full)`` with the student-token ratio
    closest to ``keep_ratio`` over ``k`` pruner deletions (ties: fewer deletions)."""
    full = "".join(result.tokens).strip()
    n_full = count(full)
    if n_full == 0:
        raise PruneprobeError(f"result {result.example_id!r}: empty reasoning")
    cache: dict[int, tuple[str, int]] = {}

    def at(k: int) -> tuple[str, int]:
        if k not in cache:
            text = _pruned_text(result, k)
            cache[k] = (text, count(text) if text else 0)
        return cache[k]

    lo, hi = 0, result.n_steps
    while lo < hi:  # first k whose ratio is <= rho
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if at(mid)[1] / n_full <= keep_ratio else (mid + 1, hi)
    cands = range(max(0, lo - window), min(result.n_steps, lo + window) + 1)
    k = min(cands, key=lambda j: (abs(at(j)[1] / n_full - keep_ratio), j))
    return k, at(k)[0], at(k)[1], n_full


def build_sft_data(results, keep_ratio: float, student_tokenizer, tolerance: float = 0.005, *,
                   require_match: bool = False, window: int = 8) -> list[SFTExample]:
    """SFT pairs from PruneResults at ``keep_ratio``, lengths matched in the student's tokens.

    ``results``: ``{method: [PruneResult]}`` or a flat list; ``student_tokenizer``: a tokenizer or
    a :class:`Pruner`. ``keep_ratio=1.0`` gives the full-chain reference data.

    >>> data = build_sft_data(results, 0.7, student.tokenizer)  # doctest: +SKIP
    >>> describe_sft_data(data)                                  # doctest: +SKIP
    """
    if not 0 < keep_ratio <= 1:
        raise PruneprobeError(f"keep_ratio must be in (0, 1], got {keep_ratio!r}")
    tok = _as_tokenizer(student_tokenizer)

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    out = []
    for method, rs in group_results(results).items():
        for r in rs:
            ex = result_example(r)
            fmt = ex.prompt_format
            k, text, kept, full = match_student_ratio(r, keep_ratio, count, window)
            achieved = kept / full
            matched = abs(achieved - keep_ratio) <= tolerance + 1e-12
            if require_match and not matched:
                continue
            completion = (text + "\n" if text else "") + fmt.render_answer(str(ex.answer).strip())
            out.append(SFTExample(r.example_id, method, fmt.system_prompt, ex.question.strip(), completion,
                                  str(ex.answer).strip(), fmt.name, float(keep_ratio), achieved, full, kept, k,
                                  matched))
    return out


def describe_sft_data(data: Sequence[SFTExample]) -> pd.DataFrame:
    """Per method: n, target rho, mean achieved ratio, max deviation, share matched."""
    df = pd.DataFrame([d.to_dict() for d in data])
    if df.empty:
        return pd.DataFrame(columns=["method", "n", "keep_ratio", "achieved_mean", "max_abs_dev", "matched"])
    df["dev"] = (df.achieved_ratio - df.keep_ratio).abs()
    return df.groupby("method", sort=False).agg(
        n=("example_id", "size"), keep_ratio=("keep_ratio", "first"), achieved_mean=("achieved_ratio", "mean"),
        max_abs_dev=("dev", "max"), matched=("matched", "mean"), student_tokens_kept=("n_student_kept", "mean"),
    ).reset_index()


def encode_sft(student: Pruner, ex: SFTExample, max_seq_len: int = 1024) -> tuple[list[int], list[int], bool]:
    """Token ids and labels (``-100`` outside the completion) of one pair; ``truncated`` flag."""
    text = student.render(ex.system, ex.question, ex.completion)
    start = text.rfind(ex.completion)
    if start < 0:
        raise PruneprobeError(f"example {ex.example_id!r}: the student's template changed the completion text")
    enc = student.tokenize(text)
    ids = enc["input_ids"]
    labels = [t if e > start else -100 for t, (s, e) in zip(ids, enc["offsets"])]
    truncated = len(ids) > max_seq_len
    return ids[:max_seq_len], labels[:max_seq_len], truncated


__all__ = ["SFTExample", "match_student_ratio", "build_sft_data", "describe_sft_data", "encode_sft"]
