"""Greedy pruning of many chains in lockstep, their candidates scored in shared forwards.

Canonical pattern::

    from pruneprobe.core.batched import greedy_prune_many
    results = greedy_prune_many(pruner, examples, objective="joint", batch_examples=8)

Up to ``batch_examples`` chains advance together with the exact strategy: at each step every
candidate of every chain is scored in the same packed forwards (``multiscorer.MultiScorer``: each chain
keeps its own cached prefix, as ``FastScorer`` does), each chain deletes its best candidate, and one
transfer brings all chains' scores to the host. A finished chain leaves the batch and the next example
takes its place, so a small pruner keeps a GPU busy.

Each chain is recorded by ``greedy.GreedyRun``, the loop ``greedy_prune`` runs, so results (deletion
order, candidate scores, traces, metadata) are those of ``greedy_prune`` one example at a time, up to
float rounding (fp32: ~1e-5; bf16 rounding differs between packings, so near-ties may flip), except
``elapsed_s`` (the chain's wall time inside the batch) and ``tokens_computed`` (what was recomputed for
it here). The fast scorer's self-check runs first, as for ``greedy_prune``; where the scorer is naive
(asked for, or the check failed and ``scorer_check="warn"``) the examples are pruned one at a time.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pruneprobe.core.cost import DEFAULT_MAX_HOURS, check_max_hours, estimate_cost, planned_steps, refuse_if_too_costly
from pruneprobe.core.encoding import EncodedExample, encode_example
from pruneprobe.core.exactness import check_metadata, make_scorer
from pruneprobe.core.fastscore import FastScorer
from pruneprobe.core.greedy import Exact, GreedyRun, greedy_prune, run_metadata, step_bar
from pruneprobe.core.multiscorer import MultiScorer
from pruneprobe.core.result import TRACE_KEYS, PruneResult
from pruneprobe.core.scoring import Objective, resolve_objective
from pruneprobe.data.examples import Example
from pruneprobe.data.models import Pruner, as_pruner
from pruneprobe.errors import PruneprobeError


def greedy_prune_many(
    pruner,
    examples: Sequence[Example],
    objective="joint",
    keep_ratio: float | None = None,
    *,
    batch_examples: int = 8,
    max_steps: int | None = None,
    scorer: str = "fast",
    scorer_check: str = "warn",
    batch_tokens: int | None = None,
    progress: bool = False,
    max_hours: float | None = DEFAULT_MAX_HOURS,
) -> list[PruneResult]:
    """Greedily prune every example (exact strategy), ``batch_examples`` chains at a time; one
    ``PruneResult`` per example, in order, as ``greedy_prune`` gives it (module docstring).

    ``objective``, ``keep_ratio``, ``max_steps``, ``scorer``, ``scorer_check``, ``batch_tokens`` (packed
    tokens per forward, shared by the batch) and ``max_hours`` (checked for every example before any is
    scored) mean what they mean for ``greedy_prune``.

    >>> results = greedy_prune_many(pruner, examples, "joint", batch_examples=8)  # doctest: +SKIP
    >>> [r.deletion_order[:3] for r in results]                                  # doctest: +SKIP
    """
    pruner = as_pruner(pruner)
    examples = check_arguments(examples, batch_examples, max_steps)
    obj = resolve_objective(objective)
    check_max_hours(max_hours)
    plans = [plan_example(pruner, ex, keep_ratio, max_steps, scorer, max_hours) for ex in examples]
    if not examples:
        return []
    answer_only = not obj.needs_reasoning_logprobs
    first = make_scorer(pruner, scorer, batch_tokens, answer_only=answer_only, check=scorer_check)
    if not isinstance(first, FastScorer):  # the naive reference: one example at a time
        return [greedy_prune(pruner, ex, objective, keep_ratio, max_steps=max_steps, scorer=scorer,
                             scorer_check=scorer_check, batch_tokens=batch_tokens, progress=progress,
                             max_hours=max_hours) for ex in examples]
    packer = MultiScorer(pruner.model, batch_tokens=first.batch_tokens, reuse_tokens=first.reuse_tokens)
    bar = step_bar(progress, sum(n for _, n in plans), f"({len(examples)} examples)")
    results: list[PruneResult | None] = [None] * len(examples)
    pending, active = deque(range(len(examples))), []
    while pending or active:
        while pending and len(active) < batch_examples:
            i = pending.popleft()
            engine = first if i == 0 else make_scorer(pruner, scorer, batch_tokens, answer_only=answer_only,
                                                      check=scorer_check)
            active.append(Chain.start(i, examples[i], *plans[i], engine, obj))
        lockstep(packer, [c for c in active if not c.done], bar)
        for chain in [c for c in active if c.done]:
            results[chain.index] = chain.result(pruner)
        active = [c for c in active if not c.done]
    bar.close()
    return results


def check_arguments(examples, batch_examples, max_steps) -> list[Example]:
    """The examples as a list; a ``PruneprobeError`` naming what is wrong with the arguments."""
    if isinstance(examples, Example) or not isinstance(examples, Sequence) or isinstance(examples, str):
        raise PruneprobeError(f"examples must be a list of Example, got {type(examples).__name__}; "
                              "for one example use greedy_prune")
    bad = [type(ex).__name__ for ex in examples if not isinstance(ex, Example)]
    if bad:
        raise PruneprobeError(f"examples must all be Example objects, got {bad[0]}")
    if isinstance(batch_examples, bool) or not isinstance(batch_examples, int) or batch_examples < 1:
        raise PruneprobeError(f"batch_examples must be a whole number >= 1, got {batch_examples!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0):
        raise PruneprobeError(f"max_steps must be a whole number >= 0 or None, got {max_steps!r}")
    return list(examples)


def plan_example(pruner: Pruner, example: Example, keep_ratio, max_steps, scorer: str,
                 max_hours: float | None) -> tuple[EncodedExample, int]:
    """Encode ``example``, count its deletions, refuse it when estimated over ``max_hours``."""
    enc = encode_example(pruner, example)
    n_steps = planned_steps(enc.n_reasoning, keep_ratio, max_steps)
    if max_hours is not None:
        refuse_if_too_costly(estimate_cost(pruner, enc, n_steps, "exact", scorer, reuse_across_steps=False),
                             max_hours, example.id)  # the lockstep does not reuse states across steps
    return enc, n_steps


class StepView:
    """What ``GreedyRun`` sees of its scorer inside the lockstep: this step's candidate log-probs and
    new state, computed for every chain at once, and a deletion the lockstep has already made."""

    def __init__(self, engine: FastScorer):
        self.engine = engine
        self.logprobs: torch.Tensor | None = None
        self.deleted: int | None = None
        self.state: torch.Tensor | None = None

    def __getattr__(self, name):  # reset, n_kept, name, check, tokens_computed: the scorer's own
        if name == "engine":
            raise AttributeError(name)
        return getattr(self.engine, name)

    def candidate_logprobs(self, candidates=None, **kwargs) -> torch.Tensor:
        ready = self.logprobs is not None
        if not ready or kwargs or (candidates is not None and list(candidates) != list(range(len(self.logprobs)))):
            raise PruneprobeError("the lockstep scores every kept token of a chain at once (exact strategy only)")
        logprobs, self.logprobs = self.logprobs, None
        return logprobs

    def delete(self, j: int) -> None:
        if j != self.deleted:
            raise PruneprobeError(f"the lockstep deleted kept token {self.deleted}, not {j}")
        self.deleted = None

    def state_logprobs(self) -> torch.Tensor:
        state, self.state = self.state, None
        return state if state is not None else self.engine.state_logprobs()


@dataclass
class Chain:
    """One example in the lockstep: its encoding, its ``GreedyRun`` and its steps so far."""

    index: int
    example: Example
    enc: EncodedExample
    view: StepView
    run: GreedyRun
    started: float
    step: int = 0
    elapsed: float = 0.0

    @classmethod
    def start(cls, index: int, example: Example, enc: EncodedExample, n_steps: int, engine: FastScorer,
              objective: Objective) -> Chain:
        t0 = time.perf_counter()
        view = StepView(engine)
        chain = cls(index, example, enc, view, GreedyRun.start(view, enc, objective, Exact(), n_steps, example.id), t0)
        chain._check_done()
        return chain

    @property
    def done(self) -> bool:
        return self.step >= self.run.n_steps

    def _check_done(self) -> None:
        if self.done:
            self.elapsed = time.perf_counter() - self.started

    def advance(self, logprobs: torch.Tensor) -> int:
        """Record this step's scores (``GreedyRun.score``); the candidate to delete (first maximum)."""
        self.view.logprobs = logprobs
        _, _, scores = self.run.score(self.step)
        return int(np.argmax(scores))

    def deleted(self, pick: int, logprobs: torch.Tensor, state: torch.Tensor | None) -> None:
        """Record the deletion the lockstep made (``GreedyRun.delete``: order, traces)."""
        self.view.deleted, self.view.state = pick, state
        self.run.delete(self.run.alive[pick], logprobs[pick], self.step)
        self.step += 1
        self._check_done()

    def result(self, pruner: Pruner) -> PruneResult:
        """The ``PruneResult`` ``greedy_prune`` builds."""
        run, enc, example, engine = self.run, self.enc, self.example, self.view.engine
        return PruneResult(
            example_id=example.id, method="greedy", objective=run.objective.name,
            token_ids=enc.reasoning_ids.tolist(), tokens=list(enc.reasoning_pieces), deletion_order=run.order,
            traces={k: run.traces[k] for k in TRACE_KEYS}, candidate_scores=run.matrix,
            example=example.to_dict(), metadata=run_metadata(pruner, enc, run.objective.name, scorer=engine.name,
                                                             strategy=run.strategy.name, elapsed_s=self.elapsed,
                                                             tokens_computed=engine.tokens_computed,
                                                             reuse_across_steps=False,  # the lockstep does not
                                                             **check_metadata(engine.check)),
        )


def lockstep(packer: MultiScorer, chains: list[Chain], bar) -> None:
    """One deletion in every chain: all candidates scored together, each chain's best deleted."""
    if not chains:
        return
    engines = [c.view.engine for c in chains]
    answer_only = not chains[0].run.objective.needs_reasoning_logprobs
    logprobs = packer.candidate_logprobs(engines, answer_only=answer_only)
    picks = [chain.advance(lp) for chain, lp in zip(chains, logprobs)]
    packer.delete(engines, picks)
    # a chosen row scored only in part (answer objective): the new states, fetched together
    partial = [i for i, (lp, j) in enumerate(zip(logprobs, picks)) if torch.isnan(lp[j]).any()]
    states = dict(zip(partial, packer.state_logprobs([engines[i] for i in partial])))
    for i, (chain, lp, j) in enumerate(zip(chains, logprobs, picks)):
        chain.deleted(j, lp, states.get(i))
    bar.update(len(chains))
