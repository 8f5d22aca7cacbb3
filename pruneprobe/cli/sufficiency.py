"""``pruneprobe sufficiency --run [LABEL=]DIR ... --out DIR``: answer accuracy from question + pruned
reasoning, per run and rho, on the examples all runs finished (``summary.csv``, ``examples.csv``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pruneprobe.core.io import atomic_write_text
from pruneprobe.data.models import load_pruner
from pruneprobe.distill.sufficiency import evaluate_sufficiency, keep_shared_examples, summarize_accuracy
from pruneprobe.errors import PruneprobeError
from pruneprobe.runs.tables import load_run


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("sufficiency", help="answer accuracy from question + pruned reasoning, per run and rho")
    p.add_argument("--run", action="append", required=True, metavar="[LABEL=]DIR",
                   help="run directory, repeatable; labelled by its folder name unless LABEL= is given")
    p.add_argument("--keep", type=float, action="append", default=None, help="keep ratios (default 0.9 0.8 0.7)")
    p.add_argument("--model", default="smollm2-135m", help="the model that answers (default: the embedded pruner)")
    p.add_argument("--out", required=True, help="folder for summary.csv and examples.csv")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    p.add_argument("--no-progress", action="store_true")
    return p


def run(args) -> int:
    """Evaluate every run on the examples all of them finished; write ``summary.csv``, ``examples.csv``."""
    runs = {}
    for spec in args.run:
        label, sep, path = spec.rpartition("=")
        label = label if sep else Path(path).name
        if label in runs:
            raise PruneprobeError(f"two runs labelled {label!r}; write LABEL=DIR to tell them apart")
        runs[label] = list(load_run(path).results())
    results = keep_shared_examples(runs)
    model = load_pruner(args.model, device=args.device, dtype=args.dtype)
    per_example = evaluate_sufficiency(model, results, tuple(args.keep or (0.9, 0.8, 0.7)), args.max_new_tokens,
                                       batch_size=args.batch_size, per_example=True, progress=not args.no_progress)
    summary = summarize_accuracy(per_example, ("method", "keep_ratio"))
    summary.insert(0, "model", model.name)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "summary.csv", summary.to_csv(index=False))
    atomic_write_text(out / "examples.csv", per_example.to_csv(index=False))
    print(f"{len(next(iter(results.values())))} examples in every run; {model.name} answering")
    print(summary.to_string(index=False))
    return 0


__all__ = ["add_parser", "run"]
