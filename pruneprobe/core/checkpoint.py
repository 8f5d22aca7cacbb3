"""Step checkpoints: a long greedy pruning resumes mid-chain after a kill instead of from its start.

On a CPU one chain of ~100 tokens takes hours, longer than a background job may live, so losing a
whole example at every stop would mean never finishing it. ``greedy_prune(..., checkpoint=path)``
writes, atomically and at most every ``every_s`` seconds, what the finished steps recorded: the deletion
order, the traces, the candidate-score rows, the seconds and tokens spent, under a key of everything
that shapes them (example, token ids, objective, strategy, steps, model, weights, dtype, scorer,
version). Called again with the same path it resets the scorer to the chain with those tokens
deleted (one forward) and goes on; the file is removed when the pruning returns.

>>> from pruneprobe import greedy_prune
>>> result = greedy_prune(pruner, example, checkpoint="steps.json")  # doctest: +SKIP

Gotchas:
- The resumed scorer starts from a state computed afresh, not from states adopted step by step, so its
  scores equal an uninterrupted run's up to float rounding (fp32: ~1e-5 nats); an order can differ only
  at a near-tie that rounding decides.
- Exact strategy only: Shortlist and Multi carry state beyond the recorded steps (no checkpoint).
- A checkpoint whose key differs (another model, dtype, chain) or that cannot be read is ignored with
  a warning and overwritten by the new pruning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pruneprobe.core.io import atomic_write_text

logger = logging.getLogger(__name__)


@dataclass
class SavedSteps:
    """The steps a checkpoint holds: ``order`` (original indices), ``traces`` (one value per state,
    ``len(order) + 1``), ``rows`` (the candidate-score rows of those steps), seconds and tokens spent."""

    order: list[int]
    traces: dict[str, list[float]]
    rows: np.ndarray
    seconds: float
    tokens: int


def checkpoint_key(example_id: str, token_ids: list[int], **settings) -> dict:
    """What must match for a checkpoint to be resumed: the example, a hash of its token ids, and ``settings``."""
    digest = hashlib.sha1(json.dumps(token_ids).encode()).hexdigest()[:16]
    return {"example_id": example_id, "token_ids_sha1": digest, **{k: str(v) for k, v in settings.items()}}


def _finite_or_none(values) -> list:
    return [None if v is None or not math.isfinite(v) else float(v) for v in values]


@dataclass
class StepCheckpoint:
    """A greedy pruning's checkpoint file at ``path`` for ``key``; ``save`` writes at most every ``every_s``."""

    path: Path
    key: dict
    every_s: float = 60.0
    _last: float = field(default_factory=time.monotonic)

    def load(self) -> SavedSteps | None:
        """The saved steps, or ``None`` (no file; or another key, or unreadable: said in a warning)."""
        if not self.path.exists():
            return None
        try:
            data = json.loads(self.path.read_text())
            if data.get("key") != self.key:
                logger.warning("%s: checkpoint of another pruning (%s differ); starting over", self.path,
                               ", ".join(sorted(k for k in set(self.key) | set(data.get("key", {}))
                                                if self.key.get(k) != data.get("key", {}).get(k))))
                return None
            rows = np.array([[np.nan if v is None else v for v in row] for row in data["rows"]], dtype=float)
            steps = SavedSteps([int(i) for i in data["order"]],
                               {k: [np.nan if v is None else v for v in vals] for k, vals in data["traces"].items()},
                               rows.reshape(len(data["order"]), -1), float(data["seconds"]), int(data["tokens"]))
            if any(len(v) != len(steps.order) + 1 for v in steps.traces.values()):
                raise ValueError("traces do not match the order's length")
            return steps
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("%s: unreadable checkpoint (%s); starting over", self.path, exc)
            return None

    def save(self, order: list[int], traces: dict, rows: np.ndarray, seconds: float, tokens: int,
             force: bool = False) -> bool:
        """Write the steps so far when ``every_s`` has passed since the last write (or ``force``)."""
        if not force and time.monotonic() - self._last < self.every_s:
            return False
        data = {"key": self.key, "order": [int(i) for i in order], "seconds": seconds, "tokens": int(tokens),
                "traces": {k: _finite_or_none(v) for k, v in traces.items()},
                "rows": [_finite_or_none(row) for row in rows[: len(order)]]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(data, allow_nan=False))
        self._last = time.monotonic()
        return True

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


__all__ = ["StepCheckpoint", "SavedSteps", "checkpoint_key"]
