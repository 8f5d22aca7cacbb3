"""Cached per-token tables for the notebooks: attention features and category labels of a run.

Canonical pattern::

    from pruneprobe.analysis.features import compute_attention_features, compute_labels
    compute_attention_features("data/runs/smollm2-greedy-joint", "data/features/smollm2-greedy-joint-attention.parquet")
    compute_labels("data/runs/smollm2-greedy-joint", "data/labels/smollm2-greedy-joint-rules.parquet")

or ``pruneprobe features`` (``make features``), which writes the cached tables listed in
``data/README.md``.

Gotchas:
- Features are recomputed for every finished example of the run (not resumable: one eager forward
  per example, about a second each on a CPU). Feature columns are stored as float32.
- Parquet files are written to a hidden temp file in the same directory, then renamed.
- The pruner must be the run's pruner, in the run's dtype (the cached runs: SmolLM2-135M, bf16),
  so the token pieces match the result's tokens; a mismatch raises ``PruneprobeError``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tqdm.auto import tqdm

from pruneprobe.analysis.attention import attention_features, eager_attention
from pruneprobe.analysis.categories import label_result
from pruneprobe.core.io import atomic_write_parquet
from pruneprobe.data.examples import Example
from pruneprobe.data.models import load_pruner
from pruneprobe.errors import PruneprobeError
from pruneprobe.runs.tables import load_run

# run name -> what ``pruneprobe features`` computes for it
ATTENTION_RUNS = ("smollm2-greedy-joint",)  # features depend on the examples, not the method
LABEL_RUNS = ("smollm2-greedy-joint", "smollm2-greedy-answer", "smollm2-uniform-joint", "gemma3-greedy-joint")

__all__ = ["compute_attention_features", "compute_labels", "ATTENTION_RUNS", "LABEL_RUNS"]


def compute_attention_features(run_path, out_path, pruner="smollm2-135m", dtype="bfloat16",
                               progress: bool = True) -> pd.DataFrame:
    """``attention_features`` of every finished example of the run at ``run_path``, to parquet.

    ``pruner``: a name for ``load_pruner`` or an already loaded pruner. Returns the table (one row
    per reasoning token; ``example_id, index, token, position, surprisal, attn_L*``).
    """
    run = load_run(run_path)
    results = list(run.results())
    if not results:
        raise PruneprobeError(f"{run_path}: no finished examples")
    if isinstance(pruner, str):
        pruner = load_pruner(pruner, dtype=dtype)
    it = results
    if progress:
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
    atomic_write_parquet(out_path, df)
    return df


def compute_labels(run_path, out_path, annotator=None) -> pd.DataFrame:
    """Rule labels (``label_result``) of every finished example of a run, to parquet.

    Columns: ``example_id, index, token, category, justification``.
    """
    frames = [label_result(r, annotator) for r in load_run(run_path).results()]
    if not frames:
        raise PruneprobeError(f"{run_path}: no finished examples")
    df = pd.concat(frames, ignore_index=True)
    df["index"] = df["index"].astype(np.int32)
    atomic_write_parquet(out_path, df)
    return df
