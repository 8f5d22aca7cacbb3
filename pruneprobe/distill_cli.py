"""Distillation configurations and the ``pruneprobe distill`` command (the library is ``distill.py``).

``DistillConfig`` records a whole experiment; ``CPU_CONFIG`` is the one measured here on CPU,
``PAPER_GPU_CONFIG`` the paper-scale one (not run here). ``add_distill_parser`` and
``run_distill_command`` wire ``distill`` into the command line: one student per ``--run`` at
``--keep``, evaluated on held-out problems. This module imports no torch until the command runs.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import PruneprobeError
from .result import atomic_write_text


# -- configurations -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DistillConfig:
    """A whole distillation experiment: chains, pruner, students, training and evaluation settings."""

    name: str
    teacher: str  # "gold": the dataset's own worked chains
    pruner: str
    students: tuple[str, ...]
    train_data: str
    eval_data: tuple[str, ...]
    n_train: int | None
    n_eval: int | None
    keep_ratios: tuple[float, ...] = (0.9, 0.8, 0.7)
    methods: tuple[str, ...] = ("greedy", "surprisal", "h2o", "uniform", "tokenskip")
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lr: float = 2e-4
    epochs: int = 1
    batch_size: int = 4
    max_seq_len: int = 1024
    max_new_tokens: int = 256
    tolerance: float = 0.005
    dtype: str = "float32"
    gradient_checkpointing: bool = False
    est_minutes_per_student: float | None = None
    notes: str = ""


CPU_CONFIG = DistillConfig(
    name="cpu-smollm2", teacher="gold", pruner="smollm2-135m", students=("smollm2-135m",),
    train_data="gsm_symbolic seed 0", eval_data=("gsm_symbolic held-out (heldout_gsm_symbolic)", "gsm8k test"),
    n_train=300, n_eval=100, methods=("greedy", "surprisal", "uniform", "random"),
    est_minutes_per_student=35.0,
    notes="Measured on 2 shared CPU cores (fp32, torch 2 threads): a LoRA step of batch 4 (~200-token "
          "sequences) takes ~19 s, so 75 steps ~24 min; greedy evaluation ~0.15 s per token for a batch of 8, "
          "so 100 problems at 256 new tokens ~9 min. Pruning the chains is separate. gsm_symbolic chains are "
          "~90 student tokens: only about half the examples can get within 0.005 of rho (the mean does).")


PAPER_GPU_CONFIG = DistillConfig(
    name="paper-gpu", teacher="Qwen/Qwen2.5-7B-Instruct", pruner="Qwen/Qwen2.5-7B-Instruct",
    students=("meta-llama/Llama-2-7b-hf", "mistralai/Mistral-7B-v0.1"), train_data="gsm8k train (teacher "
    "chains by rejection sampling: temperature 0.7, up to 10 samples, first correct kept)",
    eval_data=("gsm8k test",), n_train=None, n_eval=1319, lr=1e-4, epochs=3, batch_size=16, max_seq_len=2048,
    dtype="bfloat16", gradient_checkpointing=True, est_minutes_per_student=90.0,
    notes="A configuration, not run here. Teacher/pruner, students, datasets and rho follow the paper; "
          "LoRA rank/alpha, lr, epochs and batch size are NOT given in the sources at hand: TokenSkip-style "
          "LoRA SFT defaults, to be checked against the paper's appendix. MATH and MMLU-Pro: same with "
          "their prompt formats.")


# -- command line ---------------------------------------------------------------------------------------
def add_distill_parser(subparsers):
    """Add ``distill`` to an argparse subparsers object; the handler is :func:`run_distill_command`."""
    p = subparsers.add_parser("distill", help="LoRA-tune a student on pruned chains and evaluate it",
                              description="pruneprobe distill --run runs/X --keep 0.7 --student smollm2-135m "
                              "--out students/X (rerun the same line to resume)")
    p.add_argument("--run", action="append", required=True, help="run directory; repeat for one student per run")
    p.add_argument("--same-examples-as", action="append", default=[], metavar="DIR",
                   help="also restrict to examples finished in this run (repeatable; e.g. one student per process)")
    p.add_argument("--keep", type=float, required=True, help="keep ratio rho, matched in student tokens")
    p.add_argument("--student", default="smollm2-135m", help="embedded name, local directory or hub id")
    p.add_argument("--out", required=True, help="output directory (resumed when it exists)")
    p.add_argument("--max-steps", type=int, default=None, help="training steps (default: --epochs passes)")
    p.add_argument("--epochs", type=int, default=CPU_CONFIG.epochs)
    p.add_argument("--batch-size", type=int, default=CPU_CONFIG.batch_size)
    p.add_argument("--lr", type=float, default=CPU_CONFIG.lr)
    p.add_argument("--lora-r", type=int, default=CPU_CONFIG.lora_r)
    p.add_argument("--lora-alpha", type=int, default=CPU_CONFIG.lora_alpha)
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--tolerance", type=float, default=CPU_CONFIG.tolerance)
    p.add_argument("--eval-n", type=int, default=100, help="held-out problems per evaluation set (0: skip)")
    p.add_argument("--eval", action="append", default=None, metavar="NAME[=PATH]",
                   help="evaluation set, repeatable: gsm_symbolic (held out from the runs' seed; the default "
                        "for gsm_symbolic runs) or a dataset with its data file, e.g. gsm8k=path/to/gsm8k/test.jsonl")
    p.add_argument("--eval-dataset", default=None, help=argparse.SUPPRESS)  # older spelling of --eval
    p.add_argument("--eval-path", default=None, help=argparse.SUPPRESS)
    p.add_argument("--eval-batch-size", type=int, default=8, help="prompts per generation batch")
    p.add_argument("--max-new-tokens", type=int, default=CPU_CONFIG.max_new_tokens)
    p.add_argument("--zero-shot", action="store_true", help="also evaluate the student without an adapter")
    p.add_argument("--zero-shot-only", action="store_true", help="only evaluate the student without an adapter")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    p.add_argument("--no-progress", action="store_true")
    return p


def _load_results(path) -> tuple[list, object]:
    from .runs import load_run

    run = load_run(path)
    return list(run.results()), run.config


def _eval_sets(args, configs: list, train_questions: list[str]) -> list[tuple[str, list]]:
    """``[(name, problems)]`` from ``--eval`` (and the older ``--eval-dataset/--eval-path``)."""
    from .datasets import load_examples
    from .distill import check_disjoint, heldout_gsm_symbolic

    specs = list(args.eval or [])
    if args.eval_dataset:
        specs.append(args.eval_dataset + (f"={args.eval_path}" if args.eval_path else ""))
    if not specs:
        if not all(c.dataset == "gsm_symbolic" for c in configs):
            raise PruneprobeError("pass --eval NAME[=PATH], e.g. --eval gsm8k=path/to/gsm8k/test.jsonl")
        specs = ["gsm_symbolic"]
    sets = []
    for spec in specs:
        name, _, path = spec.partition("=")
        if name == "gsm_symbolic" and not path:
            if not all(c.dataset == "gsm_symbolic" for c in configs):
                raise PruneprobeError("--eval gsm_symbolic (held out) needs gsm_symbolic runs")
            problems = heldout_gsm_symbolic(args.eval_n, configs[0].seed, max(c.n or 500 for c in configs),
                                            train_questions)
        else:
            problems = load_examples(name, n=args.eval_n, path=path or None)
            check_disjoint(train_questions, problems)
        sets.append((name, problems))
    return sets


def _common_examples(runs: list, others: list[set] = ()) -> list:
    """Every method on the same examples: keep those finished in all runs (in each run's order)."""
    from .sufficiency import keep_shared_examples

    kept = keep_shared_examples({i: results for i, (_, results, _) in enumerate(runs)}, others)
    for i, (path, results, _) in enumerate(runs):
        if len(kept[i]) < len(results):
            print(f"{path}: {len(results) - len(kept[i])} examples not finished in every run are left out")
    return [(path, kept[i], config) for i, (path, _, config) in enumerate(runs)]


def run_distill_command(args) -> int:
    """Train one student per ``--run`` at ``--keep`` (on the examples all runs finished), evaluate
    each on every ``--eval`` set; write ``eval.csv`` (accuracy, CI, timings) and ``eval_examples.csv``."""
    import pandas as pd

    from .distill import build_sft_data, describe_sft_data, evaluate_student, train_student
    from .models import load_pruner
    from .sufficiency import summarize_accuracy

    out = Path(args.out)
    progress = not args.no_progress
    others = [{r.example_id for r in _load_results(path)[0]} for path in args.same_examples_as]
    runs = _common_examples([(path, *_load_results(path)) for path in args.run], others)
    train_q = [r.example.get("question", "") for _, rs, _ in runs for r in rs]
    sets = _eval_sets(args, [c for _, _, c in runs], train_q) if args.eval_n else []
    rows, per_example = [], []

    def write() -> None:  # after every evaluation, so a kill loses at most the one in progress
        summary = pd.DataFrame(rows)
        atomic_write_text(out / "eval.csv", summary.to_csv(index=False))
        examples = pd.concat(per_example, ignore_index=True)
        examples["output"] = examples.output.fillna("").str.slice(0, 300)
        atomic_write_text(out / "eval_examples.csv", examples.to_csv(index=False))

    def evaluate(student, label: str, info: dict) -> None:
        for set_name, problems in sets:
            start = time.perf_counter()
            df = evaluate_student(student, problems, args.max_new_tokens, args.eval_batch_size, label=label,
                                  per_example=True, progress=progress)
            df.insert(1, "eval_set", set_name)
            per_example.append(df)
            summary = summarize_accuracy(df, ("label", "eval_set"))
            summary["mean_new_tokens"] = float(df.n_new_tokens.mean())
            rows.append(dict(summary.iloc[0], **info, eval_s=round(time.perf_counter() - start, 1)))
            write()

    if (args.zero_shot or args.zero_shot_only) and sets:
        base = load_pruner(args.student, device=args.device, dtype=args.dtype)
        evaluate(base, "zero-shot", dict(method="none", keep_ratio=0.0, n_train=0, train_s=0.0))
    for i, (path, results, _) in enumerate([] if args.zero_shot_only else runs):
        if not results:
            raise PruneprobeError(f"run {path} has no finished examples")
        student = load_pruner(args.student, device=args.device, dtype=args.dtype)
        data = build_sft_data(results, args.keep, student.tokenizer, args.tolerance)
        method = "full" if args.keep == 1.0 else results[0].method
        target = out if len(runs) == 1 else out / f"{i}-{method}"
        described = describe_sft_data(data)
        print(described.to_string(index=False))
        trained = train_student(student, data, target, lora_r=args.lora_r, lora_alpha=args.lora_alpha, lr=args.lr,
                                epochs=args.epochs, batch_size=args.batch_size, max_steps=args.max_steps,
                                save_every=args.save_every, progress=progress)
        atomic_write_text(target / "sft_data.jsonl", "".join(json.dumps(d.to_dict()) + "\n" for d in data))
        print(f"{target}: {trained.step}/{trained.total_steps} steps, adapter in {trained.adapter_dir}")
        info = dict(method=method, keep_ratio=float(args.keep), n_train=len(data),
                    achieved_mean=float(described.achieved_mean.iloc[0]), matched=float(described.matched.iloc[0]),
                    train_steps=trained.step, train_s=round(trained.elapsed_s, 1))
        evaluate(trained.student, "full-chain" if method == "full" else f"{method}@{args.keep}", info)
    if rows:
        print(pd.DataFrame(rows).to_string(index=False))
    return 0


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


if __name__ == "__main__":  # python -m pruneprobe.distill_cli collect runs/students data/distill
    import sys

    if len(sys.argv) != 4 or sys.argv[1] != "collect":
        sys.exit("usage: python -m pruneprobe.distill_cli collect STUDENTS_DIR OUT_DIR")
    print(collect_student_results(sys.argv[2], sys.argv[3]).to_string(index=False))


__all__ = ["DistillConfig", "CPU_CONFIG", "PAPER_GPU_CONFIG", "add_distill_parser", "run_distill_command",
           "collect_student_results"]
