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
- Files hold no NaN: ``save`` writes missing scores as ``null``. ``load`` validates the schema and
  accepts a ``NaN`` literal only where a score may be missing (``traces``, ``candidate_scores``,
  ``token_scores``); anything malformed raises a ``PruneprobeError`` naming the file and the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd

from pruneprobe.core.io import atomic_write_text
from pruneprobe.errors import PruneprobeError

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
        """Rebuild from ``to_dict`` output; a ``PruneprobeError`` names the first malformed field."""
        if not isinstance(d, dict):
            raise _SchemaError(f"expected a JSON object, got {type(d).__name__}")
        d = dict(d)
        version = d.pop("schema_version", SCHEMA_VERSION)
        if type(version) is not int:
            raise _SchemaError(f"field 'schema_version' must be an integer, got {version!r}")
        if version > SCHEMA_VERSION:
            raise PruneprobeError("result written by a newer pruneprobe; upgrade to read it")
        _validate(d)
        if d.get("candidate_scores") is not None:
            # null and NaN become NaN (numpy maps None to NaN; _NonFinite has __float__)
            d["candidate_scores"] = np.array(d["candidate_scores"], dtype=np.float64).reshape(
                len(d["candidate_scores"]), len(d["token_ids"]))
            _check_finite("candidate_scores", d["candidate_scores"])
        d["traces"] = {k: [np.nan if x is None or x is _NAN else x for x in v] for k, v in d["traces"].items()}
        for key, values in d["traces"].items():
            _check_finite(f"traces.{key}", np.asarray(values, dtype=np.float64))
        if d.get("token_scores") is not None:
            d["token_scores"] = [np.nan if x is None or x is _NAN else x for x in d["token_scores"]]
            _check_finite("token_scores", np.asarray(d["token_scores"], dtype=np.float64))
        return cls(**d)

    def save(self, path) -> Path:
        """Write JSON atomically (temp file + rename): a kill never leaves a half-written file."""
        return atomic_write_text(path, json.dumps(self.to_dict(), allow_nan=False))

    @classmethod
    def load(cls, path) -> "PruneResult":
        """Read a saved result; any damage (truncation, wrong shapes, stray NaN) raises a
        ``PruneprobeError`` naming the file and the field."""
        try:
            d = json.loads(Path(path).read_text(), parse_constant=_parse_constant)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PruneprobeError(f"{path}: not a readable PruneResult (not valid JSON: {exc}); "
                                  "the file is damaged: delete it, or rerun its run to recompute it") from None
        try:
            return cls.from_dict(d)
        except _SchemaError as exc:
            raise PruneprobeError(f"{path}: not a readable PruneResult ({exc}); the file is damaged: "
                                  "delete it, or rerun its run to recompute it") from None
        except PruneprobeError as exc:
            raise PruneprobeError(f"{path}: {exc}") from None


class _SchemaError(PruneprobeError):
    """A malformed result: a missing or mistyped field, wrong lengths, a stray non-finite literal."""


class _NonFinite:
    """A ``NaN``/``Infinity``/``-Infinity`` literal as parsed from JSON, until a field accepts it."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __float__(self) -> float:
        return float(self.name.lower())


_NAN = _NonFinite("NaN")
_INF = {"Infinity": _NonFinite("Infinity"), "-Infinity": _NonFinite("-Infinity")}
_REQUIRED = {"example_id": str, "method": str, "objective": str, "token_ids": list, "tokens": list,
             "deletion_order": list, "traces": dict}
_OPTIONAL = {"candidate_scores": list, "token_scores": list, "example": dict, "metadata": dict}
_NUMBER = {int, float, type(None), _NonFinite}  # score entries: null or NaN mean "no score"


def _parse_constant(name: str) -> _NonFinite:
    return _NAN if name == "NaN" else _INF[name]


def _validate(d: dict) -> None:
    """Check a result dict's schema: keys, types, lengths, indices; non-finite literals only as NaN
    in the score fields (``traces``, ``candidate_scores``, ``token_scores``)."""
    unknown = sorted(set(d) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise _SchemaError(f"unknown field {unknown[0]!r}")
    for key, kind in _REQUIRED.items():
        if key not in d:
            raise _SchemaError(f"field {key!r} is missing")
    for key, kind in {**_REQUIRED, **_OPTIONAL}.items():
        if key in d and not isinstance(d[key], kind) and not (key in _OPTIONAL and d[key] is None):
            raise _SchemaError(f"field {key!r} must be a {kind.__name__}, got {type(d[key]).__name__}")
    r, steps = len(d["token_ids"]), len(d["deletion_order"])
    if not set(map(type, d["token_ids"])) <= {int}:
        raise _SchemaError("field 'token_ids' must hold integers only")
    if not set(map(type, d["tokens"])) <= {str}:
        raise _SchemaError("field 'tokens' must hold strings only")
    if len(d["tokens"]) != r:
        raise _SchemaError(f"field 'tokens' has {len(d['tokens'])} entries, 'token_ids' {r}")
    order = d["deletion_order"]
    if not set(map(type, order)) <= {int} or any(not 0 <= i < r for i in order):
        raise _SchemaError(f"field 'deletion_order' must hold token indices in [0, {r})")
    if len(set(order)) != steps:
        raise _SchemaError("field 'deletion_order' holds a duplicate index")
    for key, values in d["traces"].items():
        _check_numbers(f"traces.{key}", values, steps + 1, "n_steps + 1")
    if d.get("token_scores") is not None:
        _check_numbers("token_scores", d["token_scores"], r, "n_tokens")
    rows = d.get("candidate_scores")
    if rows is not None:
        if len(rows) != steps:
            raise _SchemaError(f"field 'candidate_scores' has {len(rows)} rows, expected {steps} (n_steps)")
        bad = next((t for t, row in enumerate(rows) if type(row) is not list or len(row) != r), None)
        if bad is not None:
            _check_numbers(f"candidate_scores[{bad}]", rows[bad], r, "n_tokens")
        types = set(map(type, chain.from_iterable(rows)))
        if not types <= _NUMBER or _NonFinite in types:
            for t, row in enumerate(rows):
                _check_numbers(f"candidate_scores[{t}]", row, r, "n_tokens")
    for key in ("example", "metadata"):
        bad = _find_non_finite(d.get(key))
        if bad is not None:
            raise _SchemaError(f"field {key!r} holds a {bad} literal, which its schema does not allow")


def _check_numbers(name: str, values, length: int, what: str) -> None:
    """A list of ``length`` numbers, nulls or NaN literals (infinities are caught after conversion)."""
    if not isinstance(values, list):
        raise _SchemaError(f"field {name!r} must be a list, got {type(values).__name__}")
    if len(values) != length:
        raise _SchemaError(f"field {name!r} has {len(values)} entries, expected {length} ({what})")
    types = set(map(type, values))
    if not types <= _NUMBER:
        raise _SchemaError(f"field {name!r} must hold numbers (or null), found "
                              f"{', '.join(sorted(t.__name__ for t in types - _NUMBER))}")
    if _NonFinite in types:
        bad = next((x for x in values if isinstance(x, _NonFinite) and x is not _NAN), None)
        if bad is not None:
            raise _SchemaError(f"field {name!r} holds {bad!r}; only finite numbers, null or NaN are allowed")


def _check_finite(name: str, values: np.ndarray) -> None:
    if np.isinf(values).any():
        raise _SchemaError(f"field {name!r} holds an infinite value; only finite numbers, null or NaN are allowed")


def _find_non_finite(value):
    """The first non-finite literal inside a parsed JSON value, or None."""
    if isinstance(value, _NonFinite):
        return value
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        found = _find_non_finite(child)
        if found is not None:
            return found
    return None


def _nan_to_none(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


__all__ = ["PruneResult", "n_keep_for", "TRACE_KEYS"]
