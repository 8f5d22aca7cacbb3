"""Objectives and the naive reference scorer.

A *state* is ``prefix + kept reasoning + suffix`` (suffix = answer line and template closing
tokens). Scorers return log-probabilities of the tokens from the first reasoning position to the
end: the kept reasoning tokens, then the suffix. An objective maps such a vector to one number;
greedy pruning deletes the candidate whose deletion gives the highest objective.

- ``joint``: summed log-likelihood of the remaining reasoning, the answer and closing tokens
  (at one step all candidates have equal length, so this equals lowest perplexity).
- ``answer``: summed log-likelihood of the tokens after the reasoning only.
- any callable ``f(logprobs, n_reasoning) -> float`` (higher = better to delete).

``NaiveScorer`` recomputes every candidate sequence in full (batched); it is the reference every
other scorer is tested against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from pruneprobe.errors import PruneprobeError


@dataclass(frozen=True)
class Objective:
    """How a candidate's log-probability vector becomes a score."""

    name: str
    fn: Callable[[torch.Tensor, int], torch.Tensor]
    needs_reasoning_logprobs: bool = True  # False: the LM head is only needed at answer positions
    vectorized: bool = False  # True: ``fn`` takes the whole ``[C, n]`` batch at once

    def scores(self, logprobs: torch.Tensor, n_reasoning: int) -> torch.Tensor:
        """Scores of a batch ``[C, n_reasoning + n_suffix]`` of candidate log-prob vectors."""
        if self.vectorized:
            return self.fn(logprobs, n_reasoning).to(torch.float64).reshape(len(logprobs))
        return torch.tensor([float(self.fn(row, n_reasoning)) for row in logprobs], dtype=torch.float64)


def _joint(lp: torch.Tensor, n_reasoning: int) -> torch.Tensor:
    return lp.to(torch.float64).sum(-1)


def _answer(lp: torch.Tensor, n_reasoning: int) -> torch.Tensor:
    return lp[..., n_reasoning:].to(torch.float64).sum(-1)


OBJECTIVES = {
    "joint": Objective("joint", _joint, needs_reasoning_logprobs=True, vectorized=True),
    "answer": Objective("answer", _answer, needs_reasoning_logprobs=False, vectorized=True),
}


def resolve_objective(objective) -> Objective:
    if isinstance(objective, Objective):
        return objective
    if callable(objective):
        return Objective(getattr(objective, "__name__", "custom"), objective, True)
    if objective in OBJECTIVES:
        return OBJECTIVES[objective]
    raise PruneprobeError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)} or a callable")


def traces_from_state(logprobs: torch.Tensor, n_reasoning: int) -> dict[str, float]:
    """Joint / answer / reasoning objective values of one state's log-prob vector."""
    lp = logprobs.to(torch.float64)
    joint, answer, reasoning = lp.sum().item(), lp[n_reasoning:].sum().item(), lp[:n_reasoning]
    return {
        "joint_logprob": joint,
        "joint_ppl": math.exp(-joint / max(len(lp), 1)),
        "answer_logprob": answer,
        "answer_ppl": math.exp(-answer / max(len(lp) - n_reasoning, 1)),
        "reasoning_ppl": math.exp(-reasoning.mean().item()) if n_reasoning else float("nan"),
    }


def _next_token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


class NaiveScorer:
    """Reference scorer: a full forward of every candidate sequence, ``batch_tokens`` per batch.

    >>> scorer = NaiveScorer(model); scorer.reset(prefix, kept, suffix)   # doctest: +SKIP
    >>> lp = scorer.candidate_logprobs()   # [k, k - 1 + len(suffix)]        # doctest: +SKIP
    """

    name = "naive"
    check = None  # the fast scorer's failed self-check when this one stands in for it (``make_scorer``)

    def __init__(self, model, batch_tokens: int = 4096):
        self.model = model
        self.batch_tokens = batch_tokens
        self.tokens_computed = 0

    @property
    def device(self):
        return next(self.model.parameters()).device

    def reset(self, prefix: torch.Tensor, kept: torch.Tensor, suffix: torch.Tensor) -> None:
        if len(prefix) < 1:
            raise PruneprobeError("the scored sequence needs at least one token before the reasoning")
        self.prefix, self.kept, self.suffix = prefix.cpu(), kept.cpu(), suffix.cpu()

    @property
    def n_kept(self) -> int:
        return len(self.kept)

    def _sequence(self, kept: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.prefix, kept, self.suffix])

    @torch.no_grad()
    def sequence_logprobs(self, rows: torch.Tensor) -> torch.Tensor:
        """Log-probs of tokens ``P..m-1`` for equal-length rows ``[B, m]`` (P = prefix length)."""
        p = len(self.prefix)
        m = rows.shape[1]
        per_batch = max(1, self.batch_tokens // m)
        out = []
        for start in range(0, len(rows), per_batch):
            batch = rows[start : start + per_batch].to(self.device)
            logits = self.model(input_ids=batch, use_cache=False, logits_to_keep=m - p + 1).logits[:, :-1]
            out.append(_next_token_logprobs(logits, batch[:, p:]).cpu())
            self.tokens_computed += batch.numel()
        return torch.cat(out)

    def state_logprobs(self) -> torch.Tensor:
        return self.sequence_logprobs(self._sequence(self.kept)[None])[0]

    def candidate_logprobs(self, candidates: Sequence[int] | None = None, max_suffix: int | None = None) -> torch.Tensor:
        """Rows for deleting each kept index in ``candidates`` (default: all); ``max_suffix``: see
        ``window_estimate`` (computed here from the full rows, the reference for the fast scorer)."""
        cands = list(range(self.n_kept) if candidates is None else candidates)
        rows = torch.stack([self._sequence(torch.cat([self.kept[:j], self.kept[j + 1 :]])) for j in cands])
        lp = self.sequence_logprobs(rows)
        return lp if max_suffix is None else window_estimate(lp, cands, self.state_logprobs(), max_suffix)

    def delete(self, j: int) -> None:
        self.kept = torch.cat([self.kept[:j], self.kept[j + 1 :]])


def window_estimate(logprobs: torch.Tensor, candidates: Sequence[int], state: torch.Tensor, window: int) -> torch.Tensor:
    """Candidate log-prob vectors with each token more than ``window`` past its cut given its
    log-prob in the current ``state`` (``[k + S]``, reasoning then suffix).

    Deleting kept token ``j`` changes the log-probs of every later token; this keeps the change
    for the token after the cut and the ``window`` tokens after that: the local estimate the
    shortlist strategy ranks candidates by. It is exact for candidates near the end.
    """
    cuts = torch.as_tensor(list(candidates), device=logprobs.device)[:, None]
    cols = torch.arange(logprobs.shape[1], device=logprobs.device)[None, :]
    stale = state[1 : 1 + logprobs.shape[1]].to(logprobs)[None, :]
    return torch.where(cols > cuts + window, stale, logprobs)


@torch.no_grad()
def state_logprob_batch(model, prefix: torch.Tensor, kept_states: list[torch.Tensor], suffix: torch.Tensor,
                        batch_tokens: int = 4096) -> list[torch.Tensor]:
    """Log-prob vectors (reasoning then suffix) of many states of different lengths.

    Rows are right-padded: with causal attention real tokens never see the padding, so no mask
    is needed and the values equal one-at-a-time forwards.
    """
    device = next(model.parameters()).device
    seqs = [torch.cat([prefix, k, suffix]) for k in kept_states]
    p, out = len(prefix), [None] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    i = 0
    while i < len(order):
        m = len(seqs[order[i]])
        group = order[i : i + max(1, batch_tokens // m)]
        batch = torch.zeros(len(group), m, dtype=torch.long)
        for r, idx in enumerate(group):
            batch[r, : len(seqs[idx])] = seqs[idx]
        logits = model(input_ids=batch.to(device), use_cache=False, logits_to_keep=m - p + 1).logits[:, :-1]
        lp = _next_token_logprobs(logits, batch[:, p:].to(device)).cpu()
        for r, idx in enumerate(group):
            out[idx] = lp[r, : len(seqs[idx]) - p]
        i += len(group)
    return out
