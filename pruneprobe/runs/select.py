"""Which examples a run plans: the first ``n`` short enough for the pruner, or another run's.

Used by :func:`pruneprobe.runs.execute.run_pruning` (and re-exported there).
"""

from __future__ import annotations

from pathlib import Path

from pruneprobe.core.encoding import encode_example
from pruneprobe.errors import PruneprobeError
from pruneprobe.runs.tables import _read_manifest


def select_short_examples(pruner, examples, max_tokens: int, n: int | None = None, *,
                          rejected: list | None = None) -> list:
    """The first ``n`` examples, in dataset order, whose reasoning has at most ``max_tokens``
    tokens of the pruner. Those passed over (too long, or not encodable) are appended to
    ``rejected`` as ``(example, reason)`` when it is given."""
    chosen = []
    for ex in examples:
        try:
            n_reasoning = encode_example(pruner, ex).n_reasoning
        except PruneprobeError as exc:
            n_reasoning, reason = None, f"not encodable: {exc}"
        else:
            reason = f"reasoning has {n_reasoning} pruner tokens, over max_reasoning_tokens={max_tokens}"
        fits = n_reasoning is not None and n_reasoning <= max_tokens
        if not fits and rejected is not None:
            rejected.append((ex, reason))
        if fits:
            chosen.append(ex)
            if n is not None and len(chosen) == n:
                break
    if not chosen:
        raise PruneprobeError(f"no example has reasoning of at most {max_tokens} pruner tokens")
    return chosen


def examples_of_run(run_dir, examples, n: int | None = None) -> list:
    """The examples a run directory planned (its manifest's ids, in its order), first ``n``.

    Another pruner's tokenizer would select other examples by length; this keeps them the same."""
    manifest = Path(run_dir) / "manifest.json"
    if not manifest.exists():
        raise PruneprobeError(f"--examples-from {run_dir}: no run there (no manifest.json)")
    ids = [e["id"] for e in _read_manifest(Path(run_dir))["examples"]][:n]
    by_id = {ex.id: ex for ex in examples}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise PruneprobeError(f"--examples-from {run_dir}: {len(missing)} of its examples are not in this "
                              f"dataset/seed/split (first: {missing[0]!r})")
    return [by_id[i] for i in ids]
