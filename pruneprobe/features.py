"""Cached per-token tables for the notebooks: attention features and category labels of a run.

Canonical pattern::

    from pruneprobe.features import compute_attention_features, compute_labels
    compute_attention_features("data/runs/smollm2-greedy-joint", "data/features/smollm2-greedy-joint-attention.parquet")
    compute_labels("data/runs/smollm2-greedy-joint", "data/labels/smollm2-greedy-joint-rules.parquet")

or ``python -m pruneprobe.features`` (``make features``), which writes the cached tables listed in
``data/README.md``.

Gotchas:
- Features are recomputed for every finished example of the run (not resumable: one eager forward
  per example, about a second each on a CPU). Feature columns are stored as float32.
- Parquet files are written to a hidden temp file in the same directory, then renamed.
- The pruner must be the run's pruner, in the run's dtype (the cached runs: SmolLM2-135M, bf16),
  so the token pieces match the result's tokens; a mismatch raises ``PruneprobeError``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import PruneprobeError

__all__ = ["compute_attention_features", "compute_labels", "write_parquet_atomic", "main"]


def write_parquet_atomic(df: pd.DataFrame, path) -> Path:
    """Write ``df`` to ``path`` via a temp file in the same directory and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def compute_attention_features(run_path, out_path, pruner="smollm2-135m", dtype="bfloat16",
                               progress: bool = True) -> pd.DataFrame:
    """``attention_features`` of every finished example of the run at ``run_path``, to parquet.

    ``pruner``: a name for ``load_pruner`` or an already loaded pruner. Returns the table (one row
    per reasoning token; ``example_id, index, token, position, surprisal, attn_L*``).
    """
    from .attention import attention_features, eager_attention
    from .data import Example
    from .runs import load_run

    run = load_run(run_path)
    results = list(run.results())
    if not results:
        raise PruneprobeError(f"{run_path}: no finished examples")
    if isinstance(pruner, str):
        from .models import load_pruner

        pruner = load_pruner(pruner, dtype=dtype)
    it = results
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(results, desc="attention", unit="ex")
    frames = []
    with eager_attention(pruner.model, True):
        for r in it:
            ex = Example.from_dict(r.example)
            f = attention_features(pruner, ex, example_id=r.example_id)
            if list(f["token"]) != list(r.tokens):
                raise PruneprobeError(f"example {r.example_id!r}: the pruner's tokens differ from the run's "
                                      "(another pruner or tokenizer?)")
            frames.append(f)
    df = pd.concat(frames, ignore_index=True)
    num = [c for c in df.columns if c.startswith("attn_") or c in ("position", "surprisal")]
    df[num] = df[num].astype(np.float32)
    df["index"] = df["index"].astype(np.int32)
    write_parquet_atomic(df, out_path)
    return df


def compute_labels(run_path, out_path, annotator=None) -> pd.DataFrame:
    """Rule labels (``label_result``) of every finished example of a run, to parquet.

    Columns: ``example_id, index, token, category, justification``.
    """
    from .categories import label_result
    from .runs import load_run

    frames = [label_result(r, annotator) for r in load_run(run_path).results()]
    if not frames:
        raise PruneprobeError(f"{run_path}: no finished examples")
    df = pd.concat(frames, ignore_index=True)
    df["index"] = df["index"].astype(np.int32)
    write_parquet_atomic(df, out_path)
    return df


# run name -> what ``main`` computes for it
ATTENTION_RUNS = ("smollm2-greedy-joint",)  # features depend on the examples, not the method
LABEL_RUNS = ("smollm2-greedy-joint", "smollm2-greedy-answer", "smollm2-uniform-joint", "gemma3-greedy-joint")


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Cached attention features and category labels for the notebooks")
    p.add_argument("--data", default="data", help="data directory (holds runs/)")
    p.add_argument("--only", choices=("labels", "attention"), default=None)
    args = p.parse_args(argv)
    data = Path(args.data)
    if args.only != "attention":
        for name in LABEL_RUNS:
            if (data / "runs" / name).exists():
                df = compute_labels(data / "runs" / name, data / "labels" / f"{name}-rules.parquet")
                print(f"labels {name}: {df.example_id.nunique()} examples, {len(df)} tokens")
    if args.only != "labels":
        from .models import load_pruner

        pruner = load_pruner("smollm2-135m", dtype="bfloat16")
        for name in ATTENTION_RUNS:
            if (data / "runs" / name).exists():
                df = compute_attention_features(data / "runs" / name,
                                                data / "features" / f"{name}-attention.parquet", pruner)
                print(f"attention {name}: {df.example_id.nunique()} examples, {len(df)} tokens")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
