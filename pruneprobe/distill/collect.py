"""Gather the students of a distillation experiment into the tables kept in the repository.

Canonical pattern (``pruneprobe collect runs/students data/distill`` is the same)::

    from pruneprobe.distill.collect import collect_student_results
    summary = collect_student_results("runs/students", "data/distill")
"""

from __future__ import annotations

from pathlib import Path

from pruneprobe.core.io import atomic_write_text
from pruneprobe.errors import PruneprobeError


def collect_student_results(students_dir, out_dir, redact_outputs: tuple[str, ...] = ("gsm8k",)):
    """Gather each student folder's ``eval.csv``, ``eval_examples.csv`` and ``sft_data.jsonl`` under
    ``students_dir`` into three tables in ``out_dir`` (``eval.csv``, ``eval_examples.csv``,
    ``sft_data.csv`` without the text); generated outputs on ``redact_outputs`` sets are blanked
    (GSM8K's licence text stays out of the repository). Returns the summary table."""
    import pandas as pd

    src, out = Path(students_dir), Path(out_dir)
    folders = sorted(p.parent for p in src.glob("*/eval.csv"))
    if not folders:
        raise PruneprobeError(f"no student results (*/eval.csv) under {src}")
    summary = pd.concat([pd.read_csv(f / "eval.csv") for f in folders], ignore_index=True)
    examples = pd.concat([pd.read_csv(f / "eval_examples.csv", dtype={"gold": str, "predicted": str})
                          for f in folders], ignore_index=True)
    examples.loc[examples.eval_set.isin(redact_outputs), "output"] = ""
    sft = [pd.read_json(f / "sft_data.jsonl", lines=True, dtype={"answer": str}).assign(student=f.name)
           for f in folders if (f / "sft_data.jsonl").exists()]
    atomic_write_text(out / "eval.csv", summary.to_csv(index=False))
    atomic_write_text(out / "eval_examples.csv", examples.to_csv(index=False))
    if sft:
        cols = ["student", "example_id", "method", "keep_ratio", "achieved_ratio", "n_student_full",
                "n_student_kept", "n_pruner_deleted", "matched"]
        atomic_write_text(out / "sft_data.csv", pd.concat(sft)[cols].to_csv(index=False))
    return summary


__all__ = ["collect_student_results"]
