"""``pruneprobe distill``: LoRA-tune one student per run on its pruned chains at ``--keep``, then
evaluate each on held-out problems (``eval.csv``: accuracy, CI, timings; ``eval_examples.csv``).

``--same-examples-as`` and several ``--run`` keep every student on the examples all runs finished.
Defaults come from ``CPU_CONFIG`` (:mod:`pruneprobe.distill.config`).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pruneprobe.core.io import atomic_write_text
from pruneprobe.data.datasets import load_examples
from pruneprobe.data.models import load_pruner
from pruneprobe.distill.config import CPU_CONFIG
from pruneprobe.distill.evaluate import check_disjoint, evaluate_student, heldout_gsm_symbolic
from pruneprobe.distill.sft import build_sft_data, describe_sft_data
from pruneprobe.distill.sufficiency import keep_shared_examples, summarize_accuracy
from pruneprobe.distill.train import train_student
from pruneprobe.errors import PruneprobeError
from pruneprobe.runs.tables import load_run


def add_parser(subparsers) -> argparse.ArgumentParser:
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


def run(args) -> int:
    """Train one student per ``--run`` at ``--keep`` (on the examples all runs finished), evaluate
    each on every ``--eval`` set; write ``eval.csv`` (accuracy, CI, timings) and ``eval_examples.csv``."""
    others = [{r.example_id for r in _load_results(path)[0]} for path in args.same_examples_as]
    runs = _common_examples([(path, *_load_results(path)) for path in args.run], others)
    train_q = [r.example.get("question", "") for _, rs, _ in runs for r in rs]
    sets = _eval_sets(args, [c for _, _, c in runs], train_q) if args.eval_n else []
    table = _EvalTable(Path(args.out), args, sets)
    if (args.zero_shot or args.zero_shot_only) and sets:
        base = load_pruner(args.student, device=args.device, dtype=args.dtype)
        table.evaluate(base, "zero-shot", dict(method="none", keep_ratio=0.0, n_train=0, train_s=0.0))
    for i, (path, results, _) in enumerate([] if args.zero_shot_only else runs):
        if not results:
            raise PruneprobeError(f"run {path} has no finished examples")
        method = "full" if args.keep == 1.0 else results[0].method
        target = table.out if len(runs) == 1 else table.out / f"{i}-{method}"
        student, info = _train_one(args, results, method, target)
        table.evaluate(student, "full-chain" if method == "full" else f"{method}@{args.keep}", info)
    if table.rows:
        print(pd.DataFrame(table.rows).to_string(index=False))
    return 0


def _train_one(args, results: list, method: str, target: Path) -> tuple:
    """Train a fresh student on ``results`` at ``--keep`` into ``target``: ``(trained student, eval.csv info)``."""
    student = load_pruner(args.student, device=args.device, dtype=args.dtype)
    data = build_sft_data(results, args.keep, student.tokenizer, args.tolerance)
    described = describe_sft_data(data)
    print(described.to_string(index=False))
    trained = train_student(student, data, target, lora_r=args.lora_r, lora_alpha=args.lora_alpha, lr=args.lr,
                            epochs=args.epochs, batch_size=args.batch_size, max_steps=args.max_steps,
                            save_every=args.save_every, progress=not args.no_progress)
    atomic_write_text(target / "sft_data.jsonl", "".join(json.dumps(d.to_dict()) + "\n" for d in data))
    print(f"{target}: {trained.step}/{trained.total_steps} steps, adapter in {trained.adapter_dir}")
    info = dict(method=method, keep_ratio=float(args.keep), n_train=len(data),
                achieved_mean=float(described.achieved_mean.iloc[0]), matched=float(described.matched.iloc[0]),
                train_steps=trained.step, train_s=round(trained.elapsed_s, 1))
    return trained.student, info


@dataclass
class _EvalTable:
    """The evaluations so far, rewritten after each one, so a kill loses at most the one in progress."""

    out: Path
    args: argparse.Namespace
    sets: list[tuple[str, list]]
    rows: list[dict] = field(default_factory=list)
    per_example: list[pd.DataFrame] = field(default_factory=list)

    def evaluate(self, student, label: str, info: dict) -> None:
        args = self.args
        for set_name, problems in self.sets:
            start = time.perf_counter()
            df = evaluate_student(student, problems, args.max_new_tokens, args.eval_batch_size, label=label,
                                  per_example=True, progress=not args.no_progress)
            df.insert(1, "eval_set", set_name)
            self.per_example.append(df)
            summary = summarize_accuracy(df, ("label", "eval_set"))
            summary["mean_new_tokens"] = float(df.n_new_tokens.mean())
            self.rows.append(dict(summary.iloc[0], **info, eval_s=round(time.perf_counter() - start, 1)))
            self._write()

    def _write(self) -> None:
        atomic_write_text(self.out / "eval.csv", pd.DataFrame(self.rows).to_csv(index=False))
        examples = pd.concat(self.per_example, ignore_index=True)
        examples["output"] = examples.output.fillna("").str.slice(0, 300)
        atomic_write_text(self.out / "eval_examples.csv", examples.to_csv(index=False))


def _load_results(path) -> tuple[list, object]:
    loaded = load_run(path)
    return list(loaded.results()), loaded.config


def _eval_sets(args, configs: list, train_questions: list[str]) -> list[tuple[str, list]]:
    """``[(name, problems)]`` from ``--eval`` (and the older ``--eval-dataset/--eval-path``)."""
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
    kept = keep_shared_examples({i: results for i, (_, results, _) in enumerate(runs)}, others)
    for i, (path, results, _) in enumerate(runs):
        if len(kept[i]) < len(results):
            print(f"{path}: {len(results) - len(kept[i])} examples not finished in every run are left out")
    return [(path, kept[i], config) for i, (path, _, config) in enumerate(runs)]


__all__ = ["add_parser", "run"]
