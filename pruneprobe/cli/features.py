"""``pruneprobe features``: the cached attention features and category labels the notebooks read."""

from __future__ import annotations

import argparse
from pathlib import Path

from pruneprobe.analysis.features import ATTENTION_RUNS, LABEL_RUNS, compute_attention_features, compute_labels
from pruneprobe.data.models import load_pruner
from pruneprobe.runs.chainsets import chain_set
from pruneprobe.runs.tables import load_run


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("features", help="cached attention features and category labels of the cached runs",
                              description="Cached attention features (data/features) and rule labels (data/labels) "
                              "of the cached runs, for the notebooks (data/README.md).")
    p.add_argument("--data", default="data", help="data directory (holds runs/)")
    p.add_argument("--only", choices=("labels", "attention"), default=None)
    p.add_argument("--chains", default="gold", help="chain set whose runs to cover: gold (the 120 short gold chains, "
                   "default), gold-len128 (full-length gold chains) or self (the pruner's own chains)")
    return p


def _runs_of(chains: str) -> tuple[list[str], list[str], str]:
    """The runs to label, the runs to take attention features of, and the pruner's dtype, of a chain set."""
    if chains == "gold":
        return list(LABEL_RUNS), list(ATTENTION_RUNS), "bfloat16"
    chosen = chain_set(chains)
    return list(chosen.runs.values()), [chosen.runs["greedy joint"]], chosen.dtype


def _has_results(path: Path) -> bool:
    """A run directory with at least one finished example (a run just started has none: skipped, said)."""
    if not path.exists():
        return False
    if not load_run(path).example_ids:
        print(f"{path}: no finished examples yet, skipped")
        return False
    return True


def run(args) -> int:
    data = Path(args.data)
    label_runs, attention_runs, dtype = _runs_of(args.chains)
    if args.only != "attention":
        for name in label_runs:
            if _has_results(data / "runs" / name):
                df = compute_labels(data / "runs" / name, data / "labels" / f"{name}-rules.parquet")
                print(f"labels {name}: {df.example_id.nunique()} examples, {len(df)} tokens")
    if args.only != "labels":
        pruner = load_pruner("smollm2-135m", dtype=dtype)
        for name in attention_runs:
            if _has_results(data / "runs" / name):
                df = compute_attention_features(data / "runs" / name,
                                                data / "features" / f"{name}-attention.parquet", pruner)
                print(f"attention {name}: {df.example_id.nunique()} examples, {len(df)} tokens")
    return 0


__all__ = ["add_parser", "run"]
