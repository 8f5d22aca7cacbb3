"""``pruneprobe demo``: greedy-prune a few short gsm_symbolic chains with the embedded pruner."""

from __future__ import annotations

import argparse
import sys
import time

from pruneprobe.runs.config import RunConfig
from pruneprobe.runs.execute import run_pruning


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("demo", help="prune a few short gsm_symbolic chains with the embedded pruner")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--n", type=int, default=3)
    p.add_argument("--pruner", default="smollm2-135m")
    p.add_argument("--max-reasoning-tokens", type=int, default=36)
    return p


def run(args) -> int:
    """Greedy-prune a few short gsm_symbolic chains and print them at rho = 0.9 / 0.8 / 0.7."""
    config = RunConfig(dataset="gsm_symbolic", pruner=args.pruner, n=args.n, seed=0,
                       max_reasoning_tokens=args.max_reasoning_tokens)
    start = time.perf_counter()
    pruned = run_pruning(config, args.out, progress=True)
    for result in pruned.results():
        print()
        result.show((0.9, 0.8, 0.7), file=sys.stdout)
    print(f"\n{len(pruned.files)} examples pruned to the end in {time.perf_counter() - start:.0f} s "
          f"(model {pruned.config.model_id}); run written to {pruned.path}")
    print(f"next: pruneprobe show {pruned.path} --example {pruned.example_ids[0]} --keep 0.5")
    return 0


__all__ = ["add_parser", "run"]
