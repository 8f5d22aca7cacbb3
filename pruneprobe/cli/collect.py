"""``pruneprobe collect STUDENTS_DIR OUT_DIR``: gather the students' tables (``make distill``'s last step)."""

from __future__ import annotations

import argparse

from pruneprobe.distill.collect import collect_student_results


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("collect", help="gather the student folders' eval tables into one folder",
                              description="Gather eval.csv, eval_examples.csv and sft_data.jsonl of every student "
                              "folder under STUDENTS_DIR into three tables in OUT_DIR (GSM8K outputs blanked).")
    p.add_argument("students_dir", metavar="STUDENTS_DIR", help="folder of student folders (pruneprobe distill --out)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder for eval.csv, eval_examples.csv and sft_data.csv")
    return p


def run(args) -> int:
    print(collect_student_results(args.students_dir, args.out_dir).to_string(index=False))
    return 0


__all__ = ["add_parser", "run"]
