"""`PruneResult`: the one result type of greedy pruning and of every baseline.

Canonical pattern::

    result = greedy_prune(pruner, example)
    print(result.show())                       # chains at rho = 0.9/0.8/0.7, deletions as [-tok-]
    result.pruned_text(0.7)                    # the chain keeping 70% of its tokens
    tokens, steps = result.to_dataframe("tokens"), result.to_dataframe("steps")
    result.save("ex.json"); PruneResult.load("ex.json")

Gotchas:
- Indices in ``deletion_order`` are reasoning-token indices (0..R-1), not sequence positions.
- ``pruning_rank[i]`` is the 1-based step at which token i was deleted, ``-1`` if never deleted.
- ``candidate_scores[t, i]`` is the objective (summed log-likelihood) had token i been deleted at
  step t+1; NaN where token i was already gone. Only greedy pruning with the exact strategy fills
  every entry; shortlist strategies leave the tokens they did not re-score as NaN, and one-shot
  baselines leave it ``None`` and store their fixed per-token score in ``token_scores``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import PruneprobeError

TRACE_KEYS = ("joint_logprob", "joint_ppl", "answer_logprob", "answer_ppl", "reasoning_ppl")
SCHEMA_VERSION = 1


def n_keep_for(keep_ratio: float, n_tokens: int) -> int:
    """Number of reasoning tokens kept at ratio rho (round half up); validates rho in (0, 1]."""
    if not isinstance(keep_ratio, (int, float)) or not (0 < keep_ratio <= 1) or math.isnan(keep_ratio):
        raise PruneprobeError(f"keep_ratio must be in (0, 1], got {keep_ratio!r}")
    return int(math.floor(keep_ratio * n_tokens + 0.5))


@dataclass
class PruneResult:
    """Deletion order, ranks, objective traces and candidate scores for one example."""

    example_id: str
    method: str
    objective: str
    token_ids: list[int]
    tokens: list[str]  # character pieces; "".join(tokens) is the reasoning text
    deletion_order: list[int]
    traces: dict[str, list[float]]  # TRACE_KEYS -> values before any deletion, then after each step
    candidate_scores: np.ndarray | None = None  # [n_steps, R]
    token_scores: list[float] | None = None  # one-shot baselines: the fixed score used to rank
    example: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        r = len(self.token_ids)
        if len(self.tokens) != r:
            raise PruneprobeError("tokens and token_ids differ in length")
        if len(set(self.deletion_order)) != len(self.deletion_order) or any(
            not 0 <= i < r for i in self.deletion_order
        ):
            raise PruneprobeError("deletion_order must hold distinct reasoning-token indices")
        if self.candidate_scores is not None:
            self.candidate_scores = np.asarray(self.candidate_scores, dtype=np.float64)

    # -- derived views -------------------------------------------------------------------------
    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def n_steps(self) -> int:
        return len(self.deletion_order)

    @property
    def pruning_rank(self) -> np.ndarray:
        rank = np.full(self.n_tokens, -1, dtype=np.int64)
        rank[np.asarray(self.deletion_order, dtype=np.int64)] = np.arange(1, self.n_steps + 1)
        return rank

    def kept_mask(self, keep_ratio: float) -> np.ndarray:
        """Boolean mask over reasoning tokens kept at ratio rho."""
        n_delete = self.n_tokens - n_keep_for(keep_ratio, self.n_tokens)
        if n_delete > self.n_steps:
            raise PruneprobeError(
                f"keep_ratio {keep_ratio} needs {n_delete} deletions but this result has only "
                f"{self.n_steps}; prune further (keep_ratio=None prunes to the end)"
            )
        mask = np.ones(self.n_tokens, dtype=bool)
        mask[np.asarray(self.deletion_order[:n_delete], dtype=np.int64)] = False
        return mask

    def pruned_text(self, keep_ratio: float) -> str:
        mask = self.kept_mask(keep_ratio)
        return "".join(t for t, keep in zip(self.tokens, mask) if keep)

    def pruned_token_ids(self, keep_ratio: float) -> list[int]:
        mask = self.kept_mask(keep_ratio)
        return [t for t, keep in zip(self.token_ids, mask) if keep]

    # -- tables ----------------------------------------------------------------------------------
    def to_dataframe(self, kind: str = "tokens") -> pd.DataFrame:
        """Tidy tables: ``"tokens"`` (one row per token), ``"steps"`` (per step, 0 = before any
        deletion), ``"candidates"`` (step, token, score; only where scored)."""
        if kind == "tokens":
            rank = self.pruning_rank
            df = pd.DataFrame({
                "example_id": self.example_id, "method": self.method, "objective": self.objective,
                "index": np.arange(self.n_tokens), "token_id": self.token_ids, "token": self.tokens,
                "pruning_rank": rank,
                "normalized_rank": np.where(rank > 0, rank / max(self.n_tokens, 1), np.nan),
            })
            if self.token_scores is not None:
                df["token_score"] = self.token_scores
            return df
        if kind == "steps":
            deleted = [-1] + list(self.deletion_order)
            df = pd.DataFrame({"step": np.arange(self.n_steps + 1), "deleted_index": deleted,
                               "deleted_token": [""] + [self.tokens[i] for i in self.deletion_order],
                               "n_kept": self.n_tokens - np.arange(self.n_steps + 1)})
            for key in TRACE_KEYS:
                df[key] = self.traces.get(key, [np.nan] * (self.n_steps + 1))
            df.insert(0, "example_id", self.example_id)
            df.insert(1, "method", self.method)
            df.insert(2, "objective", self.objective)
            return df
        if kind == "candidates":
            if self.candidate_scores is None:
                return pd.DataFrame(columns=["example_id", "method", "objective", "step", "index", "score"])
            steps, idx = np.nonzero(~np.isnan(self.candidate_scores))
            return pd.DataFrame({"example_id": self.example_id, "method": self.method,
                                 "objective": self.objective, "step": steps + 1, "index": idx,
                                 "score": self.candidate_scores[steps, idx]})
        raise PruneprobeError(f"unknown table {kind!r}; use 'tokens', 'steps' or 'candidates'")

    # -- display ---------------------------------------------------------------------------------
    def marked_text(self, keep_ratio: float) -> str:
        """The chain with tokens deleted at rho shown as ``[-token-]``."""
        mask = self.kept_mask(keep_ratio)
        out, run = [], []
        for tok, keep in zip(self.tokens, mask):
            if keep:
                if run:
                    out.append("[-" + "".join(run) + "-]")
                    run = []
                out.append(tok)
            else:
                run.append(tok)
        if run:
            out.append("[-" + "".join(run) + "-]")
        return "".join(out)

    def show(self, keep_ratios=(0.9, 0.8, 0.7), file=None) -> str:
        """A readable summary; printed when ``file`` is given (e.g. ``sys.stdout``)."""
        lines = [f"example {self.example_id}  method={self.method}  objective={self.objective}  "
                 f"R={self.n_tokens} tokens, {self.n_steps} deletions"]
        jp = self.traces.get("joint_ppl", [])
        for rho in keep_ratios:
            try:
                text = self.marked_text(rho)
            except PruneprobeError as exc:
                lines.append(f"  rho={rho}: {exc}")
                continue
            k = self.n_tokens - n_keep_for(rho, self.n_tokens)
            ppl = f"  joint ppl {jp[0]:.3f} -> {jp[k]:.3f}" if len(jp) > k else ""
            lines.append(f"--- rho={rho}: keep {self.n_tokens - k}/{self.n_tokens}{ppl}")
            lines.append(text)
        if jp:
            marks = sorted({0, *(min(self.n_steps, round(f * self.n_steps)) for f in (0.25, 0.5, 0.75, 1.0))})
            lines.append("joint ppl by step: " + ", ".join(f"{s}:{jp[s]:.3f}" for s in marks))
        out = "\n".join(lines)
        if file is not None:
            print(out, file=file)
        return out

    # -- persistence (JSON, no pickle) -----------------------------------------------------------
    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.candidate_scores is not None:
            d["candidate_scores"] = [[_nan_to_none(x) for x in row] for row in self.candidate_scores.tolist()]
        d["traces"] = {k: [_nan_to_none(x) for x in v] for k, v in self.traces.items()}
        if self.token_scores is not None:
            d["token_scores"] = [_nan_to_none(x) for x in self.token_scores]
        d["schema_version"] = SCHEMA_VERSION
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PruneResult":
        d = dict(d)
        if d.pop("schema_version", SCHEMA_VERSION) > SCHEMA_VERSION:
            raise PruneprobeError("result written by a newer pruneprobe; upgrade to read it")
        if d.get("candidate_scores") is not None:
            d["candidate_scores"] = np.array(
                [[np.nan if x is None else x for x in row] for row in d["candidate_scores"]], dtype=np.float64
            ).reshape(len(d["candidate_scores"]), len(d["token_ids"]))
        d["traces"] = {k: [np.nan if x is None else x for x in v] for k, v in d["traces"].items()}
        if d.get("token_scores") is not None:
            d["token_scores"] = [np.nan if x is None else x for x in d["token_scores"]]
        return cls(**d)

    def save(self, path) -> Path:
        """Write JSON atomically (temp file + rename): a kill never leaves a half-written file."""
        return atomic_write_text(path, json.dumps(self.to_dict(), allow_nan=False))

    @classmethod
    def load(cls, path) -> "PruneResult":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise PruneprobeError(f"{path}: not a readable PruneResult ({exc})") from exc


def _nan_to_none(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temp file in the same folder, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = ["PruneResult", "n_keep_for", "atomic_write_text", "TRACE_KEYS"]
