"""``pruneprobe features``: the cached attention features and category labels the notebooks read."""

from __future__ import annotations

import argparse
from pathlib import Path

from pruneprobe.analysis.features import ATTENTION_RUNS, LABEL_RUNS, compute_attention_features, compute_labels
from pruneprobe.data.models import load_pruner


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("features", help="cached attention features and category labels of the cached runs",
                              description="Cached attention features (data/features) and rule labels (data/labels) "
                              "of the cached runs, for the notebooks (data/README.md).")
    p.add_argument("--data", default="data", help="data directory (holds runs/)")
    p.add_argument("--only", choices=("labels", "attention"), default=None)
    return p


def run(args) -> int:
    data = Path(args.data)
    if args.only != "attention":
        for name in LABEL_RUNS:
            if (data / "runs" / name).exists():
                df = compute_labels(data / "runs" / name, data / "labels" / f"{name}-rules.parquet")
                print(f"labels {name}: {df.example_id.nunique()} examples, {len(df)} tokens")
    if args.only != "labels":
        pruner = load_pruner("smollm2-135m", dtype="bfloat16")
        for name in ATTENTION_RUNS:
            if (data / "runs" / name).exists():
                df = compute_attention_features(data / "runs" / name,
                                                data / "features" / f"{name}-attention.parquet", pruner)
                print(f"attention {name}: {df.example_id.nunique()} examples, {len(df)} tokens")
    return 0


__all__ = ["add_parser", "run"]
